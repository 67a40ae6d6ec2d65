/* advex eval: the robust-accuracy table of a model for every attack in a list and every eps,
 * optionally as JSON (one entry per attack and eps) and as an HTML report (--report DIR, written
 * by cli/eval_report.c), with sanity checks that warn. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_EPS 64
#define MAX_ATTACKS 16

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    cli_flag f[] = {
        {"--model", "FILE", "ONNX model to evaluate", NULL, 0},
        {"--data", "D", "data spec", "fashion-mnist:test", 0},
        {"--data-dir", "DIR", "directory of the named data set", NULL, 0},
        {"--limit", "N", "evaluate the first N examples (0 = all)", "0", 0},
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
    const char *model_path = CLI_GET(f, "--model")->value;
    if (!model_path) return cli_error(cmd, CLI_EXIT_USAGE, "--model FILE is required");
    advex_attack_config ac;
    advex_attack_config_default(&ac);
    float eps[MAX_EPS];
    advex_attack_kind kinds[MAX_ATTACKS];
    int neps = 0, nk = 0;
    long long limit, batch, seed;
    advex_status st;
    if (cli_int(cmd, CLI_GET(f, "--limit"), 0, INT64_MAX, &limit) || cli_int(cmd, CLI_GET(f, "--batch"), 1, 1 << 20, &batch) ||
        cli_int(cmd, CLI_GET(f, "--seed"), 0, INT64_MAX, &seed))
        return CLI_EXIT_USAGE;
    {
        const char *p = CLI_GET(f, "--attack")->value;
        for (;;) {
            const char *comma = strchr(p, ',');
            char name[64];
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (len >= sizeof name) len = sizeof name - 1;
            memcpy(name, p, len);
            name[len] = '\0';
            if (nk >= MAX_ATTACKS) return cli_error(cmd, CLI_EXIT_USAGE, "--attack: at most %d attacks", MAX_ATTACKS);
            if ((st = advex_attack_parse(name, &kinds[nk]))) return cli_fail(cmd, st);
            nk++;
            if (!comma) break;
            p = comma + 1;
        }
    }
    if ((st = advex_parse_eps_list(CLI_GET(f, "--eps")->value, eps, MAX_EPS, &neps)))
        return cli_error(cmd, CLI_EXIT_USAGE, "--eps: %s", advex_last_error());
    if ((r = cli_attack_options(cmd, f, nf, &ac))) return r;
    ac.seed = (uint64_t)seed;
    const char *json = CLI_GET(f, "--json")->value;
    int quiet = cli_opts.quiet;
    const char *report = CLI_GET(f, "--report")->value;
    long long grid_rows;
    if (cli_int(cmd, CLI_GET(f, "--report-examples"), 1, 1000, &grid_rows)) return CLI_EXIT_USAGE;
    {
        cli_files fs = {.n = 0};
        int uap = 0;
        for (int a = 0; a < nk; a++) uap |= kinds[a] == ADVEX_ATTACK_UAP;
        cli_files_in(&fs, "--model", model_path);
        cli_files_in(&fs, "--surrogate", CLI_GET(f, "--surrogate")->value);
        cli_files_data(&fs, "--data", CLI_GET(f, "--data")->value, CLI_GET(f, "--data-dir")->value);
        if (uap) cli_files_data(&fs, "--uap-data", CLI_GET(f, "--uap-data")->value, CLI_GET(f, "--data-dir")->value);
        cli_files_out(&fs, "--json", json);
        cli_files_out(&fs, "--uap-out", CLI_GET(f, "--uap-out")->value);
        if (report) cli_report_files(&fs, report, kinds, nk);
        if ((r = cli_files_check(cmd, &fs))) return r;
    }
    if (report && (r = cli_report_check(cmd, report))) return r;

    advex_model *m = NULL, *sur = NULL;
    advex_dataset d = {0};
    advex_eval_result *res = calloc((size_t)(nk * neps), sizeof *res);
    float *delta = NULL;
    cli_buf jb = {0};
    int rc = CLI_EXIT_FAIL, nres = 0;
    int32_t *clean_pred = NULL, *adv_pred = NULL;
    float *clean_conf = NULL, *adv_conf = NULL, *xadv = NULL;
    cli_report rep;
    memset(&rep, 0, sizeof rep);
    if (!res) { rc = cli_error(cmd, CLI_EXIT_FAIL, "out of memory"); goto done; }
    if ((r = cli_load_model(cmd, model_path, NULL, 0, &m))) { rc = r; goto done; }
    if ((r = cli_load_surrogate(cmd, f, nf, m, &sur))) { rc = r; goto done; }
    if ((r = cli_load_data_for(cmd, CLI_GET(f, "--data")->value, "test", CLI_GET(f, "--data-dir")->value, limit, m, &d))) { rc = r; goto done; }
    if (ac.target == ADVEX_TARGET_LABEL && ac.target_label >= advex_model_num_classes(m)) {
        rc = cli_error(cmd, CLI_EXIT_USAGE, "--target: class %d but the model has %lld classes", ac.target_label,
                       (long long)advex_model_num_classes(m));
        goto done;
    }
    for (int a = 0; a < nk; a++) { /* every attack's configuration, before running any */
        ac.kind = kinds[a];
        if ((r = cli_attack_ready(cmd, f, nf, sur ? sur : m, sur != NULL, &ac))) { rc = r; goto done; }
    }
    int64_t clean_correct = 0;
    unsigned warn = 0;
    int itop = 0; /* index of the largest eps: its run gives the image grid */
    for (int i = 1; i < neps; i++) if (eps[i] > eps[itop]) itop = i;
    if (report) {
        int64_t dim = d.c * d.h * d.w;
        clean_pred = malloc((size_t)d.n * sizeof *clean_pred);
        adv_pred = malloc((size_t)(d.n * nk * neps) * sizeof *adv_pred);
        clean_conf = malloc((size_t)d.n * sizeof *clean_conf);
        adv_conf = malloc((size_t)d.n * sizeof *adv_conf);
        xadv = malloc((size_t)(d.n * dim) * sizeof *xadv);
        if (!clean_pred || !adv_pred || !clean_conf || !adv_conf || !xadv) {
            rc = cli_error(cmd, CLI_EXIT_FAIL, "out of memory for the report (%lld examples)", (long long)d.n);
            goto done;
        }
        rep.dir = report;
        rep.model = model_path;
        rep.data = CLI_GET(f, "--data")->value;
        rep.d = &d;
        rep.k = advex_model_num_classes(m);
        if (d.class_names && d.num_classes >= rep.k) { rep.class_names = d.class_names; rep.num_names = d.num_classes; }
        rep.res = res;
        rep.nk = nk;
        rep.neps = neps;
        rep.clean_pred = clean_pred;
        rep.clean_conf = clean_conf;
        rep.adv_pred = adv_pred;
        rep.grid_rows = grid_rows < d.n ? grid_rows : d.n;
        advex_grid_rows g = {0};
        g.n = rep.grid_rows; g.c = d.c; g.h = d.h; g.w = d.w;
        advex_grid_adv_size(&g, &rep.grid_w, &rep.grid_h);
    }
    for (int a = 0; a < nk; a++) {
        ac.kind = kinds[a];
        if ((r = cli_attack_ready(cmd, f, nf, sur ? sur : m, sur != NULL, &ac))) { rc = r; goto done; }
        if (a == 0) {
            advex_attack_config chk = ac;
            chk.eps = eps[neps - 1];
            /* the determinism check reruns the attack on a few examples: skip it for the costly ones */
            warn |= cli_run_checks(cmd, f, nf, m, &d, kinds[0] == ADVEX_ATTACK_UAP ? NULL : &chk);
        }
        for (int i = 0; i < neps; i++) {
            cli_progress bar;
            char label[48];
            snprintf(label, sizeof label, "%s eps=%.4g", advex_attack_name(ac.kind), (double)eps[i]);
            cli_progress_init(&bar, label, quiet);
            ac.eps = eps[i];
            if (ac.kind == ADVEX_ATTACK_UAP && (r = cli_uap_prepare(cmd, f, nf, sur ? sur : m, &ac, batch, &delta))) {
                rc = r;
                goto done;
            }
            advex_eval_result *er = &res[nres];
            if (report) {
                advex_eval_outputs out = {i == itop ? xadv : NULL, clean_pred, adv_pred + (int64_t)nres * d.n,
                                          clean_conf, adv_conf};
                st = advex_eval_run(m, sur, &d, &ac, batch, cli_eval_progress, &bar, &out, er);
            } else {
                st = sur ? advex_eval_transfer(sur, m, &d, &ac, batch, cli_eval_progress, &bar, NULL, er)
                         : advex_eval_attack(m, &d, &ac, batch, cli_eval_progress, &bar, NULL, er);
            }
            cli_progress_done(&bar);
            if (st) { rc = st == ADVEX_ERR_INTERRUPTED ? 130 : cli_fail(cmd, st); if (rc == 130) cli_error(cmd, 0, "interrupted"); goto done; }
            clean_correct = er->clean_correct;
            if (report && i == itop && (r = cli_report_grid(cmd, &rep, nres, xadv, adv_conf))) { rc = r; goto done; }
            nres++;
        }
    }
    advex_eval_flag_masking(res, nres); /* Square beating the white-box attacks at the same eps */
    for (int i = 0; i < nres; i++)
        if (res[i].warnings & ~warn) {
            cli_print_warnings(cmd, res[i].warnings & ~warn);
            warn |= res[i].warnings;
        }
    cli_print_eval_table(stdout, d.n, clean_correct, res, nres);
    if (json) {
        for (int i = 0; i < nres; i++) res[i].warnings |= warn & ~ADVEX_EVAL_WARN_BLACKBOX_WINS;
        cli_eval_json(&jb, model_path, CLI_GET(f, "--data")->value, d.n, clean_correct, res, nres);
        if (jb.oom) { rc = cli_error(cmd, CLI_EXIT_FAIL, "out of memory"); goto done; }
        if (cli_write_file_atomic(cmd, json, jb.s, jb.len)) goto done;
    }
    if (report) {
        for (int i = 0; i < nres; i++) res[i].warnings |= warn & ~ADVEX_EVAL_WARN_BLACKBOX_WINS;
        rep.clean_correct = clean_correct;
        rep.warnings = warn;
        if ((r = cli_report_write(cmd, &rep))) { rc = r; goto done; }
        if (!quiet) fprintf(stderr, "advex %s: wrote %s/report.html\n", cmd, report);
    }
    rc = CLI_EXIT_OK;
done:
    cli_report_abort(&rep); /* a report not committed leaves nothing behind */
    free(clean_pred); free(adv_pred); free(clean_conf); free(adv_conf); free(xadv);
    cli_buf_free(&jb);
    free(res);
    free(delta);
    advex_model_free(m);
    advex_model_free(sur);
    advex_dataset_free(&d);
    return rc;
}
