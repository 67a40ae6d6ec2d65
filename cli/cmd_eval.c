/* advex eval: robust accuracy of a model for every attack in a list and every eps
 * (advex_eval_sweep), printed as a table, optionally as JSON (--json) and as an HTML report
 * (--report DIR, advex_report_write); the sanity checks' warnings on stderr. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"

/* Parse --attack A,B,... into kinds (at most max); 0 or an exit code. */
static int parse_attacks(const char *cmd, const char *list, advex_attack_kind *kinds, int max, int *n) {
    *n = 0;
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        char name[64];
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, p, len);
        name[len] = '\0';
        if (*n >= max) return cli_error(cmd, CLI_EXIT_USAGE, "--attack: at most %d attacks", max);
        advex_status st = advex_attack_parse(name, &kinds[*n]);
        if (st) return cli_fail(cmd, st);
        (*n)++;
        if (!comma) return 0;
        p = comma + 1;
    }
}

/* The progress bar of the run in progress: a new one when the run changes. */
typedef struct eval_ui {
    cli_progress bar;
    int run;
    char label[48];
} eval_ui;

static int on_progress(void *user, const advex_sweep_progress *p) {
    eval_ui *ui = user;
    if (p->run != ui->run) {
        if (ui->run >= 0) cli_progress_done(&ui->bar);
        ui->run = p->run;
        snprintf(ui->label, sizeof ui->label, "%s eps=%.4g", advex_attack_name(p->attack), (double)p->eps);
        cli_progress_init(&ui->bar, ui->label, cli_opts.quiet);
    }
    int64_t done = p->done, total = p->total;
    cli_dist_progress(&done, &total); /* the whole job's, in a distributed run */
    cli_progress_update(&ui->bar, done, total, NULL);
    return cli_interrupted;
}

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    cli_flag f[] = {
        {"--model", "FILE", "ONNX model to evaluate", NULL, 0},
        {"--data", "D", "data spec", "fashion-mnist:test", 0},
        {"--data-dir", "DIR", "directory of the named data set", NULL, 0},
        {"--limit", "N", "evaluate the first N examples (0 = all)", "0", 0},
        CLI_DATA_FLAGS,
        {"--attack", "A,...", "comma-separated attacks: none, fgsm, fgsm-rs, bim, pgd, mifgsm, apgd-ce, apgd-dlr, "
                              "apgd-t, square, standard, cw, deepfool, uap", "fgsm", 0},
        {"--eps", "E,...", "comma-separated radii (input units; 8/255 accepted)", "0,0.05,0.1", 0},
        {"--target", "T", "targeted attack: a class, next, least-likely or random", NULL, 0},
        {"--batch", "B", "batch size", "256", 0},
        {"--seed", "S", "seed for random starts and random targets", "0", 0},
        {"--json", "FILE", "also write the results as JSON", NULL, 0},
        {"--report", "DIR", "write report.html with plots, image grids, per-class accuracy, confusion matrices, "
                            "results.json and results.csv into DIR", NULL, 0},
        {"--report-examples", "N", "rows of examples in each report image grid", "8", 0},
        CLI_ATTACK_FLAGS,
    };
    const int nf = (int)(sizeof f / sizeof *f);
    int r = cli_parse(cmd, "--model M.onnx --data D --attack A,... --eps E,... [options]",
                      "Robust accuracy of a model over a data set for each attack and eps (a clean-misclassified\n"
                      "example counts as non-robust); success rate is over the correctly classified examples.\n"
                      "`standard` is AutoAttack's protocol: APGD-CE, APGD-T and Square, each on what is still robust.",
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
    if ((r = parse_attacks(cmd, CLI_GET(f, "--attack")->value, kinds, ADVEX_SWEEP_MAX_ATTACKS, &sc.n_attacks))) return r;
    if (advex_parse_eps_list(CLI_GET(f, "--eps")->value, eps, ADVEX_SWEEP_MAX_EPS, &sc.n_eps))
        return cli_error(cmd, CLI_EXIT_USAGE, "--eps: %s", advex_last_error());
    if ((r = cli_attack_options(cmd, f, nf, &sc.attack))) return r;
    sc.attacks = kinds;
    sc.eps = eps;
    sc.attack.seed = (uint64_t)seed;
    sc.default_norms = !CLI_GET(f, "--norm")->value;
    sc.batch = batch;
    sc.checks = !CLI_GET(f, "--no-checks")->seen;
    const char *json = CLI_GET(f, "--json")->value, *report = CLI_GET(f, "--report")->value;
    const char *uap_out = CLI_GET(f, "--uap-out")->value;
    int uap = 0;
    for (int a = 0; a < sc.n_attacks; a++) uap |= kinds[a] == ADVEX_ATTACK_UAP;
    {
        cli_files fs = {.n = 0};
        cli_files_in(&fs, "--model", model_path);
        cli_files_in(&fs, "--surrogate", CLI_GET(f, "--surrogate")->value);
        cli_files_data(&fs, "--data", data_spec, CLI_GET(f, "--data-dir")->value);
        if (uap) cli_files_data(&fs, "--uap-data", CLI_GET(f, "--uap-data")->value, CLI_GET(f, "--data-dir")->value);
        cli_files_out(&fs, "--json", json);
        cli_files_out(&fs, "--uap-out", uap_out);
        if (report && (r = cli_report_files(cmd, &fs, report, kinds, sc.n_attacks))) return r;
        if ((r = cli_files_check(cmd, &fs))) return r;
    }
    if (report && (r = cli_report_check(cmd, report))) return r;

    advex_model *m = NULL, *sur = NULL;
    advex_dataset d = {0}, u = {0};
    advex_sweep *s = NULL;
    char *text = NULL;
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
    sc.surrogate = sur;
    sc.uap_data = uap ? &u : NULL;
    sc.uap_epochs = (int32_t)atoi(CLI_GET(f, "--uap-epochs")->value);
    sc.keep_rows = report ? grid_rows : 0;
    eval_ui ui = {.run = -1};
    sc.progress = on_progress;
    sc.user = &ui;
    cli_dist_sweep(&sc, d.n); /* mpirun: this rank's batches; rank 0 writes (cli/dist.h) */
    st = advex_eval_sweep(m, &d, &sc, &s);
    if (ui.run >= 0) cli_progress_done(&ui.bar);
    if (st) { rc = cli_dist_fail(cmd, st); goto done; }
    if (cli_dist_rank() != 0) { rc = CLI_EXIT_OK; goto done; }
    unsigned warn = advex_sweep_warnings(s);
    /* the load already warned about a cut-off Softmax */
    cli_print_warnings(cmd, advex_model_output_was_prob(m) ? warn & ~ADVEX_EVAL_WARN_PROB_OUTPUT : warn);
    int runs = advex_sweep_runs(s);
    if ((st = advex_eval_table(advex_sweep_result(s, 0), runs, &text))) { rc = cli_fail(cmd, st); goto done; }
    fputs(text, stdout);
    free(text);
    text = NULL;
    if (json) {
        if ((st = advex_eval_json(advex_sweep_result(s, 0), runs, model_path, data_spec, warn, &text))) {
            rc = cli_fail(cmd, st);
            goto done;
        }
        if (cli_write_file_atomic(cmd, json, text, strlen(text))) goto done;
    }
    if (uap_out && (r = cli_write_uap(cmd, s, uap_out, m))) { rc = r; goto done; }
    if (report) {
        if ((st = advex_report_write(s, &d, advex_model_num_classes(m), model_path, data_spec, report))) {
            rc = cli_fail(cmd, st);
            goto done;
        }
        if (!cli_opts.quiet) fprintf(stderr, "advex %s: wrote %s/report.html\n", cmd, report);
    }
    rc = CLI_EXIT_OK;
done:
    free(text);
    advex_sweep_free(s);
    advex_model_free(m);
    advex_model_free(sur);
    advex_dataset_free(&d);
    advex_dataset_free(&u);
    return rc;
}
