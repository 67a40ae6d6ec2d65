/* eval's outputs for other tools and CI pipelines: --version (a protocol's attacks and
 * settings, from a table), AutoAttack's log lines on stderr, --junit FILE, --robustbench FILE,
 * and the gate --min-robust-accuracy (exit CLI_EXIT_GATE when robust accuracy falls below it).
 * The formats are library calls (advex/interop.h); this file parses flags and writes files. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"

/* Protocols by name: the attacks they run and the settings they change (flags the user gives
 * explicitly win, --attack excepted: a version sets the attacks). */
static const struct eval_version {
    const char *name;
    const char *attacks;
    int32_t eot, restarts;
    const char *what;
} versions[] = {
    {"rand", "apgd-ce,apgd-dlr", 20, 1,
     "AutoAttack's version for randomized defences: APGD-CE and APGD-DLR, 1 restart, EOT over 20 passes"},
};

int cli_eval_version(const char *cmd, cli_flag *f, int nf, advex_attack_kind *kinds, int max, int *n,
                     advex_attack_config *c) {
    cli_flag *v = cli_get(f, nf, "--version");
    if (!v || !v->value) return 0;
    const struct eval_version *ver = NULL;
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++)
        if (strcmp(v->value, versions[i].name) == 0) ver = &versions[i];
    if (!ver) return 0; /* standard or plus: the standard attack's (checked by cli_attack_options) */
    if (cli_get(f, nf, "--attack")->seen)
        return cli_error(cmd, CLI_EXIT_USAGE, "--version %s sets the attacks (%s): drop --attack", ver->name,
                         ver->attacks);
    *n = 0;
    char list[128];
    snprintf(list, sizeof list, "%s", ver->attacks);
    for (char *save = NULL, *a = strtok_r(list, ",", &save); a && *n < max; a = strtok_r(NULL, ",", &save))
        if (advex_attack_parse(a, &kinds[(*n)++])) return cli_fail(cmd, ADVEX_ERR_ARG);
    if (!cli_get(f, nf, "--eot")->seen) c->eot = ver->eot;
    if (!cli_get(f, nf, "--restarts")->seen) c->restarts = ver->restarts;
    return 0;
}

/* A flag's value; NULL when not given or not one of this command's flags (the --target path
 * of eval has the gate and --junit but not --robustbench, --eot or --version). */
static const char *value_of(cli_flag *f, int nf, const char *name) {
    cli_flag *fl = cli_get(f, nf, name);
    return fl ? fl->value : NULL;
}
static int seen(cli_flag *f, int nf, const char *name) {
    cli_flag *fl = cli_get(f, nf, name);
    return fl && fl->seen;
}

int cli_eval_ci_prepare(const char *cmd, cli_flag *f, int nf, const advex_attack_kind *kinds, int nk, int n_eps,
                        cli_files *fs, advex_gate *g) {
    memset(g, 0, sizeof *g);
    const char *gate = value_of(f, nf, "--min-robust-accuracy"), *rb = value_of(f, nf, "--robustbench");
    if (gate && advex_gate_parse(gate, kinds, nk, g))
        return cli_error(cmd, CLI_EXIT_USAGE, "%s", advex_last_error());
    if (rb && n_eps != 1)
        return cli_error(cmd, CLI_EXIT_USAGE, "--robustbench: RobustBench's model info is for one eps; give one "
                         "value to --eps (got %d)", n_eps);
    const char *norm = value_of(f, nf, "--norm");
    advex_norm nm;
    if (rb && norm && !advex_norm_parse(norm, &nm) && nm == ADVEX_NORM_L1)
        return cli_error(cmd, CLI_EXIT_USAGE, "--robustbench: RobustBench has no L1 threat model (Linf, L2)");
    int eot = 0;
    for (int a = 0; a < nk; a++) eot |= kinds[a] != ADVEX_ATTACK_SQUARE && kinds[a] != ADVEX_ATTACK_NONE;
    if (seen(f, nf, "--eot") && !eot)
        return cli_error(cmd, CLI_EXIT_USAGE, "--eot: none of the attacks takes gradients (EOT is for gradient "
                         "attacks)");
    cli_files_out(fs, "--junit", value_of(f, nf, "--junit"));
    cli_files_out(fs, "--robustbench", rb);
    return 0;
}

/* RobustBench's dataset name: a named set's name ("cifar10:DIR" -> "cifar10"), "custom" for
 * files (npy, idx, folder). */
static void dataset_name(const char *spec, char out[64]) {
    size_t len = strcspn(spec, ":");
    snprintf(out, 64, "%.*s", (int)(len < 63 ? len : 63), spec);
    if (!strcmp(out, "npy") || !strcmp(out, "idx") || !strcmp(out, "folder")) snprintf(out, 64, "custom");
}

int cli_eval_ci_finish(const char *cmd, cli_flag *f, int nf, const advex_sweep *s, const char *model,
                       const char *data, unsigned warn, const advex_gate *g) {
    const advex_eval_result *r = advex_sweep_result(s, 0);
    int runs = advex_sweep_runs(s);
    const char *junit = value_of(f, nf, "--junit"), *rb = value_of(f, nf, "--robustbench");
    char *text = NULL;
    advex_status st;
    if (!cli_opts.quiet && cli_get(f, nf, "--version")) { /* (eval of a model, not of a --target) */
        /* AutoAttack's first line: "using rand version including apgd-ce, apgd-dlr."; standard
         * alone is its version (standard unless --version says plus), listed by its stages */
        const char *ver = value_of(f, nf, "--version");
        int all_std = runs > 0;
        for (int a = 0; a < runs; a++) all_std &= r[a].n_stages > 0;
        fprintf(stderr, "using %s version including ", ver ? ver : all_std ? "standard" : "custom");
        advex_attack_kind seen[64];
        int ns = 0;
        for (int a = 0; a < runs; a++) { /* each attack once, in order */
            int m = r[a].n_stages > 0 ? r[a].n_stages : 1;
            for (int q = 0; q < m; q++) {
                advex_attack_kind k = r[a].n_stages > 0 ? r[a].stage_attack[q] : r[a].attack;
                int dup = 0;
                for (int b = 0; b < ns; b++) dup |= seen[b] == k;
                if (dup || ns == (int)(sizeof seen / sizeof *seen)) continue;
                fprintf(stderr, "%s%s", ns ? ", " : "", advex_attack_name(k));
                seen[ns++] = k;
            }
        }
        fprintf(stderr, ".\n");
        if ((st = advex_eval_autoattack_log(r, runs, &text))) return cli_fail(cmd, st);
        fputs(text, stderr);
        free(text);
    }
    if (junit) {
        if ((st = advex_eval_junit(r, runs, g, model, data, warn, &text))) return cli_fail(cmd, st);
        int w = cli_write_file_atomic(cmd, junit, text, strlen(text));
        free(text);
        if (w) return CLI_EXIT_FAIL;
    }
    if (rb) {
        char ds[64];
        dataset_name(data, ds);
        if ((st = advex_eval_robustbench_json(r, runs, value_of(f, nf, "--eps"), ds, warn, &text)))
            return cli_fail(cmd, st);
        int w = cli_write_file_atomic(cmd, rb, text, strlen(text));
        free(text);
        if (w) return CLI_EXIT_FAIL;
    }
    int fails = advex_gate_check(r, runs, g, &text);
    if (fails < 0) return cli_error(cmd, CLI_EXIT_FAIL, "out of memory");
    if (fails == 0) return CLI_EXIT_OK;
    for (char *p = text, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        fprintf(stderr, "advex %s: gate failed: %.*s\n", cmd, (int)(nl - p), p);
    }
    free(text);
    return CLI_EXIT_GATE;
}

int cli_sweep_progress(void *user, const advex_sweep_progress *p) {
    cli_sweep_ui *ui = user;
    int64_t done = p->done, total = p->total;
    cli_dist_progress(&done, &total); /* the whole job's, in a distributed run */
    if (p->run != ui->run) { /* reported first with what a resumed run finds done */
        if (ui->run >= 0) cli_progress_done(&ui->bar);
        ui->run = p->run;
        snprintf(ui->label, sizeof ui->label, "%s eps=%.4g", advex_attack_name(p->attack), (double)p->eps);
        cli_progress_init(&ui->bar, ui->label, cli_opts.quiet);
        ui->bar.done0 = done;
    }
    cli_progress_update(&ui->bar, done, total, NULL);
    return cli_interrupted;
}
