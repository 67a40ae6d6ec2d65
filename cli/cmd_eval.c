/* advex eval: the accuracy-vs-eps table of a model under an attack, optionally as JSON. */
#include <string.h>

#include "cli.h"

#define MAX_EPS 64

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    cli_flag f[] = {
        {"--model", "FILE", "ONNX model to evaluate", NULL, 0},
        {"--data", "D", "data spec", "fashion-mnist:test", 0},
        {"--data-dir", "DIR", "directory of the named data set", NULL, 0},
        {"--limit", "N", "evaluate the first N examples (0 = all)", "0", 0},
        {"--attack", "A", "attack: fgsm, fgsm-rs, none", "fgsm", 0},
        {"--eps", "E,...", "comma-separated radii (L-inf, input units; 8/255 accepted)", "0,0.05,0.1", 0},
        {"--alpha", "A", "step size for fgsm-rs (default 1.25*eps)", NULL, 0},
        {"--target", "T", "targeted attack: a class, next, least-likely or random", NULL, 0},
        {"--batch", "B", "batch size", "256", 0},
        {"--seed", "S", "seed for random starts and random targets", "0", 0},
        {"--threads", "T", "threads (0 = all cores)", "0", 0},
        {"--json", "FILE", "also write the results as JSON", NULL, 0},
        {"--quiet", NULL, "no progress output", NULL, 0},
    };
    int r = cli_parse(cmd, "--model M.onnx --data D --eps E,... [options]",
                      "Robust accuracy of a model over a data set for each eps (a clean-misclassified example counts\n"
                      "as non-robust); success rate is over the correctly classified examples.",
                      argc, argv, f, (int)(sizeof f / sizeof *f));
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *model_path = CLI_GET(f, "--model")->value;
    if (!model_path) return cli_error(cmd, CLI_EXIT_USAGE, "--model FILE is required");
    advex_attack_config ac;
    advex_attack_config_default(&ac);
    float eps[MAX_EPS];
    int neps = 0;
    long long limit, batch, seed;
    advex_status st;
    if (cli_int(cmd, CLI_GET(f, "--limit"), 0, INT64_MAX, &limit) || cli_int(cmd, CLI_GET(f, "--batch"), 1, 1 << 20, &batch) ||
        cli_int(cmd, CLI_GET(f, "--seed"), 0, INT64_MAX, &seed) || cli_threads(cmd, CLI_GET(f, "--threads")))
        return CLI_EXIT_USAGE;
    if ((st = advex_attack_parse(CLI_GET(f, "--attack")->value, &ac.kind))) return cli_fail(cmd, st);
    if ((st = advex_parse_eps_list(CLI_GET(f, "--eps")->value, eps, MAX_EPS, &neps)))
        return cli_error(cmd, CLI_EXIT_USAGE, "--eps: %s", advex_last_error());
    if (CLI_GET(f, "--alpha")->value && (st = advex_parse_eps(CLI_GET(f, "--alpha")->value, &ac.alpha)))
        return cli_error(cmd, CLI_EXIT_USAGE, "--alpha: %s", advex_last_error());
    if (CLI_GET(f, "--target")->value &&
        (st = advex_target_parse(CLI_GET(f, "--target")->value, &ac.target, &ac.target_label)))
        return cli_error(cmd, CLI_EXIT_USAGE, "--target: %s", advex_last_error());
    ac.seed = (uint64_t)seed;
    const char *json = CLI_GET(f, "--json")->value;
    if (json && cli_check_writable(cmd, json)) return CLI_EXIT_FAIL;
    int quiet = CLI_GET(f, "--quiet")->seen;

    advex_model *m = NULL;
    advex_dataset d = {0};
    advex_eval_result res[MAX_EPS];
    cli_buf jb = {0};
    int rc = CLI_EXIT_FAIL;
    if ((r = cli_load_model(cmd, model_path, NULL, 0, &m))) { rc = r; goto done; }
    if ((r = cli_load_data(cmd, CLI_GET(f, "--data")->value, CLI_GET(f, "--data-dir")->value, limit, &d))) { rc = r; goto done; }
    if (ac.target == ADVEX_TARGET_LABEL && ac.target_label >= advex_model_num_classes(m)) {
        rc = cli_error(cmd, CLI_EXIT_USAGE, "--target: class %d but the model has %lld classes", ac.target_label,
                       (long long)advex_model_num_classes(m));
        goto done;
    }
    int64_t clean_correct = 0;
    for (int i = 0; i < neps; i++) {
        cli_progress bar;
        char label[48];
        snprintf(label, sizeof label, "%s eps=%.4g", advex_attack_name(ac.kind), (double)eps[i]);
        cli_progress_init(&bar, label, quiet);
        ac.eps = eps[i];
        st = advex_eval_attack(m, &d, &ac, batch, cli_eval_progress, &bar, NULL, &res[i]);
        cli_progress_done(&bar);
        if (st) { rc = st == ADVEX_ERR_INTERRUPTED ? 130 : cli_fail(cmd, st); if (rc == 130) cli_error(cmd, 0, "interrupted"); goto done; }
        clean_correct = res[i].clean_correct;
    }
    cli_print_eval_table(stdout, d.n, clean_correct, res, neps);
    if (json) {
        cli_eval_json(&jb, model_path, CLI_GET(f, "--data")->value, d.n, clean_correct, res, neps);
        if (jb.oom) { rc = cli_error(cmd, CLI_EXIT_FAIL, "out of memory"); goto done; }
        if (cli_write_file_atomic(cmd, json, jb.s, jb.len)) goto done;
    }
    rc = CLI_EXIT_OK;
done:
    cli_buf_free(&jb);
    advex_model_free(m);
    advex_dataset_free(&d);
    return rc;
}
