/* advex eval: robust accuracy of a model for every attack in a list and every eps
 * (advex_eval_sweep), printed as a table, optionally as JSON (--json) and as an HTML report
 * (--report DIR, advex_report_write); the sanity checks' warnings on stderr. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"

/* Every file eval reads and writes, checked before any work; --report DIR; the gate. */
static int check_files(const char *cmd, cli_flag *f, int nf, const advex_sweep_config *sc, int uap, advex_gate *gate) {
    const char *report = cli_get(f, nf, "--report")->value, *dir = cli_get(f, nf, "--data-dir")->value;
    cli_files fs = {.n = 0};
    int r;
    /* first: its usage errors return before the list holds anything to free */
    if ((r = cli_eval_ci_prepare(cmd, f, nf, sc->attacks, sc->n_attacks, sc->n_eps, &fs, gate))) return r;
    cli_files_in(&fs, "--model", cli_get(f, nf, "--model")->value);
    cli_files_in(&fs, "--surrogate", cli_get(f, nf, "--surrogate")->value);
    cli_files_data(&fs, "--data", cli_get(f, nf, "--data")->value, dir);
    if (uap) cli_files_data(&fs, "--uap-data", cli_get(f, nf, "--uap-data")->value, dir);
    cli_files_out(&fs, "--json", cli_get(f, nf, "--json")->value);
    cli_files_out(&fs, "--uap-out", cli_get(f, nf, "--uap-out")->value);
    cli_files_out(&fs, "--state", cli_get(f, nf, "--state")->value);
    cli_files_out(&fs, "--per-example", cli_get(f, nf, "--per-example")->value);
    if (report && (r = cli_report_files(cmd, &fs, report, sc->attacks, sc->n_attacks))) return r;
    if ((r = cli_files_check(cmd, &fs))) return r;
    return report ? cli_report_check(cmd, report) : 0;
}

/* --version is standard's: refused when --attack does not list it. 0 or an exit code. */
static int check_version(const char *cmd, cli_flag *f, int nf, const advex_attack_kind *kinds, int n) {
    int std = 0;
    for (int a = 0; a < n; a++) std |= kinds[a] == ADVEX_ATTACK_STANDARD;
    const char *v = cli_get(f, nf, "--version")->value;
    if (!std && v && strcmp(v, "rand") != 0)
        return cli_error(cmd, CLI_EXIT_USAGE, "--version %s: applies to standard only (not in --attack)", v);
    return 0;
}

/* The files a finished sweep writes (NULL: not asked for). */
typedef struct eval_outputs {
    const char *model, *data, *json, *uap_out, *per_example, *report;
} eval_outputs;

/* Warnings, the table, then --json, --uap-out, --per-example and --report; 0 or an exit code. */
static int write_outputs(const char *cmd, advex_sweep *s, advex_model *m, const advex_dataset *d,
                         const eval_outputs *o) {
    char *text = NULL;
    int r;
    advex_status st;
    unsigned warn = advex_sweep_warnings(s);
    /* the load already warned about a cut-off Softmax */
    cli_print_warnings(cmd, advex_model_output_was_prob(m) ? warn & ~ADVEX_EVAL_WARN_PROB_OUTPUT : warn);
    if ((st = advex_eval_table(advex_sweep_result(s, 0), advex_sweep_runs(s), &text))) return cli_fail(cmd, st);
    fputs(text, stdout);
    free(text);
    if (o->json) {
        if ((st = advex_sweep_json(s, o->model, o->data, &text))) return cli_fail(cmd, st);
        r = cli_write_file_atomic(cmd, o->json, text, strlen(text));
        free(text);
        if (r) return CLI_EXIT_FAIL;
    }
    if (o->uap_out && (r = cli_write_uap(cmd, s, o->uap_out, m))) return r;
    if (o->per_example && (st = advex_sweep_write_per_example(s, d, o->per_example))) return cli_fail(cmd, st);
    if (o->report) {
        if ((st = advex_report_write(s, d, advex_model_num_classes(m), o->model, o->data, o->report)))
            return cli_fail(cmd, st);
        if (!cli_opts.quiet) fprintf(stderr, "advex %s: wrote %s/report.html\n", cmd, o->report);
    }
    return CLI_EXIT_OK;
}

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    if (cli_target_wanted(argc, argv)) return cli_target_main(cmd, argc, argv); /* a model behind an API */
    cli_flag f[] = {
        {"--model", "FILE", "ONNX model to evaluate", NULL, 0},
        {"--data", "D", "data spec", "fashion-mnist:test", 0},
        {"--data-dir", "DIR", "directory of the named data set", NULL, 0},
        {"--limit", "N", "evaluate the first N examples (0 = all)", "0", 0},
        CLI_DATA_FLAGS,
        {"--attack", "A,...", "comma-separated attacks: none, fgsm, fgsm-rs, bim, pgd, mifgsm, apgd-ce, apgd-dlr, "
                              "apgd-t, square, standard, cw, deepfool, uap, fab, fab-t, hsj, simba", "fgsm", 0},
        {"--eps", "E,...", "comma-separated radii (input units; 8/255 accepted)", "0,0.05,0.1", 0},
        {"--target", "T", "targeted attack: a class, next, least-likely or random; or a model behind an API: "
                          "http://HOST:PORT/v2/models/NAME or exec:COMMAND (see --target URL --help)", NULL, 0},
        {"--batch", "B", "batch size", "256", 0},
        {"--seed", "S", "seed for random starts, random targets and the model's own randomness", "0", 0},
        {"--json", "FILE", "also write the results as JSON", NULL, 0},
        {"--report", "DIR", "write report.html with plots, image grids, per-class accuracy, confusion matrices, "
                            "results.json and results.csv into DIR", NULL, 0},
        {"--report-examples", "N", "rows of examples in each report image grid", "8", 0},
        {"--state", "FILE", "record progress in FILE after every batch; the same command resumes from it "
                            "(refused when any setting differs; not with --report or uap)", NULL, 0},
        {"--per-example", "FILE", "write one JSON line per example and eps: label, clean prediction, the attack "
                                  "that broke it, final prediction, perturbation norms", NULL, 0},
        CLI_ATTACK_FLAGS,
        CLI_EVAL_CI_FLAGS,
    };
    const int nf = (int)(sizeof f / sizeof *f);
    int r = cli_parse(cmd, "--model M.onnx --data D --attack A,... --eps E,... [options]",
                      "Robust accuracy of a model over a data set for each attack and eps (a clean-misclassified\n"
                      "example counts as non-robust); success rate is over the correctly classified examples.\n"
                      "`standard` is AutoAttack's protocol: APGD-CE, APGD-T, FAB-T and Square, each on what is still\n"
                      "robust (--version plus: APGD-CE, APGD-DLR, FAB, Square, APGD-T, FAB-T; --version rand: APGD-CE\n"
                      "and APGD-DLR with EOT). AutoAttack's log lines go to stderr. Exit status: 0 done, 1 runtime\n"
                      "error, 2 bad usage, 3 robust accuracy below --min-robust-accuracy (every output written),\n"
                      "130 interrupted.",
                      argc, argv, f, nf);
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *model_path = CLI_GET(f, "--model")->value, *data_spec = CLI_GET(f, "--data")->value;
    if (!model_path) return cli_error(cmd, CLI_EXIT_USAGE, "--model FILE is required");
    advex_sweep_config sc;
    advex_sweep_config_default(&sc);
    float eps[ADVEX_SWEEP_MAX_EPS];
    advex_attack_kind kinds[ADVEX_SWEEP_MAX_ATTACKS];
    long long limit, batch, seed, grid_rows;
    if (cli_int(cmd, CLI_GET(f, "--limit"), 0, INT64_MAX, &limit) || cli_int(cmd, CLI_GET(f, "--batch"), 1, 1 << 20, &batch) ||
        cli_int(cmd, CLI_GET(f, "--seed"), 0, INT64_MAX, &seed) ||
        cli_int(cmd, CLI_GET(f, "--report-examples"), 1, 1000, &grid_rows))
        return CLI_EXIT_USAGE;
    if ((r = cli_parse_attacks(cmd, CLI_GET(f, "--attack")->value, kinds, ADVEX_SWEEP_MAX_ATTACKS, &sc.n_attacks))) return r;
    if (advex_parse_eps_list(CLI_GET(f, "--eps")->value, eps, ADVEX_SWEEP_MAX_EPS, &sc.n_eps))
        return cli_error(cmd, CLI_EXIT_USAGE, "--eps: %s", advex_last_error());
    if ((r = cli_attack_options(cmd, f, nf, &sc.attack))) return r;
    if ((r = cli_eval_version(cmd, f, nf, kinds, ADVEX_SWEEP_MAX_ATTACKS, &sc.n_attacks, &sc.attack))) return r;
    if ((r = check_version(cmd, f, nf, kinds, sc.n_attacks))) return r;
    advex_gate gate;
    sc.attacks = kinds;
    sc.eps = eps;
    sc.attack.seed = (uint64_t)seed;
    sc.default_norms = !CLI_GET(f, "--norm")->value;
    sc.batch = batch;
    sc.checks = !CLI_GET(f, "--no-checks")->seen;
    const char *json = CLI_GET(f, "--json")->value, *report = CLI_GET(f, "--report")->value;
    const char *uap_out = CLI_GET(f, "--uap-out")->value;
    const char *state = CLI_GET(f, "--state")->value, *per_example = CLI_GET(f, "--per-example")->value;
    int uap = 0;
    for (int a = 0; a < sc.n_attacks; a++) uap |= kinds[a] == ADVEX_ATTACK_UAP;
    if (state && (report || uap))
        return cli_error(cmd, CLI_EXIT_USAGE, "--state: not with %s (a resumed run keeps per-example records, not "
                         "adversarial examples)", report ? "--report" : "uap");
    if ((r = check_files(cmd, f, nf, &sc, uap, &gate))) return r;

    advex_model *m = NULL, *sur = NULL;
    advex_dataset d = {0}, u = {0};
    advex_sweep *s = NULL;
    int rc = CLI_EXIT_FAIL;
    advex_status st;
    if ((r = cli_load_model(cmd, model_path, NULL, 0, &m)) || (r = cli_load_surrogate(cmd, f, nf, m, &sur)) ||
        (r = cli_load_data_for(cmd, data_spec, "test", CLI_GET(f, "--data-dir")->value, limit, m, &d)) ||
        (uap && (r = cli_load_uap_data(cmd, f, nf, m, &u)))) {
        rc = r;
        goto done;
    }
    if (sc.attack.target == ADVEX_TARGET_LABEL && sc.attack.target_label >= advex_model_num_classes(m)) {
        rc = cli_error(cmd, CLI_EXIT_USAGE, "--target: class %d but the model has %lld classes", sc.attack.target_label,
                       (long long)advex_model_num_classes(m));
        goto done;
    }
    advex_model_seed(m, (uint64_t)seed); /* randomness inside the model (randomized defences) */
    sc.surrogate = sur;
    sc.uap_data = uap ? &u : NULL;
    sc.uap_epochs = (int32_t)atoi(CLI_GET(f, "--uap-epochs")->value);
    sc.keep_rows = report ? grid_rows : 0;
    cli_sweep_ui ui = {.run = -1};
    sc.progress = cli_sweep_progress;
    sc.user = &ui;
    sc.state = state;
    cli_dist_sweep(&sc, d.n); /* mpirun: this rank's batches; rank 0 writes (cli/dist.h) */
    st = advex_eval_sweep(m, &d, &sc, &s);
    if (ui.run >= 0) cli_progress_done(&ui.bar);
    if (st) { rc = cli_dist_fail(cmd, st); goto done; }
    cli_dist_synced();
    if (cli_dist_rank() != 0) { rc = CLI_EXIT_OK; goto done; } /* rank 0 reports and writes */
    if (advex_sweep_resumed(s) && !cli_opts.quiet)
        fprintf(stderr, "advex %s: resumed from %s (%lld of %lld example runs were recorded there)\n", cmd, state,
                (long long)advex_sweep_resumed(s), (long long)(d.n * advex_sweep_runs(s)));
    eval_outputs o = {model_path, data_spec, json, uap_out, per_example, report};
    if ((rc = write_outputs(cmd, s, m, &d, &o)) != CLI_EXIT_OK) goto done;
    rc = cli_eval_ci_finish(cmd, f, nf, s, model_path, data_spec, advex_sweep_warnings(s), &gate);
done:
    advex_sweep_free(s);
    advex_model_free(m);
    advex_model_free(sur);
    advex_dataset_free(&d);
    advex_dataset_free(&u);
    return rc;
}
