/* Fuzz target: the CLI's argument handling. The input is split at NUL bytes into argv
 * (after the command name) and goes through cli_parse with a flag table like eval's,
 * then through the value parsers every command uses: integers, floats, eps lists,
 * attack names, targets, norms, sizes (--max-memory), --resize/--crop and the shared attack
 * options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advex/advex.h"
#include "cli.h"
#include "fuzz_common.h"

#define MAX_ARGS 32

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "eval";
    for (size_t i = 0; i <= size && argc < MAX_ARGS + 1;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    cli_flag f[] = {
        {"--model", "FILE", "model", NULL, 0},
        {"--data", "D", "data", "fashion-mnist:test", 0},
        {"--limit", "N", "limit", "0", 0},
        {"--attack", "A,...", "attacks", "fgsm", 0},
        {"--eps", "E,...", "radii", "0,0.05,0.1", 0},
        {"--target", "T", "target", NULL, 0},
        {"--batch", "B", "batch", "256", 0},
        {"--seed", "S", "seed", "0", 0},
        {"--quiet", NULL, "quiet", NULL, 0},
        CLI_DATA_FLAGS,
        CLI_ATTACK_FLAGS,
    };
    const int nf = (int)(sizeof f / sizeof *f);
    int64_t saved_limit = advex_get_memory_limit();
    int r = cli_parse("eval", "[options]", "fuzzed", argc, argv, f, nf);
    if (r == 0) {
        const advex_data_prep *p = &cli_opts.prep;
        if (p->resize < 0 || p->resize > 65536 || p->crop < 0 || p->crop > 65536 || !p->fit) abort();
        long long v;
        double d;
        (void)cli_int("eval", cli_get(f, nf, "--limit"), 0, INT64_MAX, &v);
        (void)cli_int("eval", cli_get(f, nf, "--batch"), 1, 1 << 20, &v);
        (void)cli_float("eval", cli_get(f, nf, "--seed"), -1e9, 1e9, &d);
        float eps[64];
        int neps = 0;
        if (advex_parse_eps_list(cli_get(f, nf, "--eps")->value, eps, 64, &neps) == ADVEX_OK && (neps < 0 || neps > 64))
            abort();
        const char *a = cli_get(f, nf, "--attack")->value;
        advex_attack_kind kind;
        (void)advex_attack_parse(a, &kind);
        advex_attack_config ac;
        advex_attack_config_default(&ac);
        (void)cli_attack_options("eval", f, nf, &ac);
        const char *mm = cli_get(f, nf, "--model")->value;
        int64_t bytes;
        if (mm && advex_parse_size(mm, &bytes) == ADVEX_OK && bytes <= 0) abort();
    }
    advex_set_memory_limit(saved_limit);
    free(buf);
    return 0;
}
