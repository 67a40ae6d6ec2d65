/* examples/report.c: the evaluation report of `advex eval --report DIR`, written by a C
 * program through the library alone: load a model and a data set, sweep FGSM and PGD over
 * two radii (advex_eval_sweep), print the results table, and write report.html,
 * results.json, results.csv, plots and image grids into DIR (advex_report_write).
 * Build: part of the advex build (example_report), or
 *   cc report.c $(pkg-config --cflags --libs advex) -o report
 * Run:   example_report model.onnx DIR [DATA [N]]
 *        (DATA defaults to fashion-mnist:test, N to 500 examples) */
#include <stdio.h>
#include <stdlib.h>

#include "advex/advex.h"

static int fail(const char *what, advex_status st) {
    fprintf(stderr, "example_report: %s: %s (%s)\n", what, advex_status_str(st), advex_last_error());
    return 1;
}

/* Called after every batch of every run; returning non-zero would stop the sweep. */
static int progress(void *user, const advex_sweep_progress *p) {
    (void)user;
    if (p->done == p->total)
        fprintf(stderr, "run %d/%d: %s eps %g done\n", p->run + 1, p->runs, advex_attack_name(p->attack),
                (double)p->eps);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s model.onnx DIR [DATA [N]]\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1], *dir = argv[2];
    const char *data = argc > 3 ? argv[3] : "fashion-mnist:test";
    int64_t n = argc > 4 ? strtoll(argv[4], NULL, 10) : 500;

    advex_model *m = NULL;
    advex_dataset d = {0};
    advex_sweep *s = NULL;
    char *table = NULL;
    int rc = 1;
    advex_status st;
    if ((st = advex_model_load_onnx(model_path, &m))) return fail(model_path, st);
    if ((st = advex_dataset_load(data, NULL, n, &d))) { rc = fail(data, st); goto done; }

    const advex_attack_kind attacks[] = {ADVEX_ATTACK_FGSM, ADVEX_ATTACK_PGD};
    const float eps[] = {0.05f, 0.1f};
    advex_sweep_config c;
    advex_sweep_config_default(&c);
    c.attacks = attacks;
    c.n_attacks = 2;
    c.eps = eps;
    c.n_eps = 2;
    c.keep_rows = 8; /* what the report's image grids need */
    c.progress = progress;
    if ((st = advex_eval_sweep(m, &d, &c, &s))) { rc = fail("sweep", st); goto done; }

    /* the table the CLI prints, built from the same results as the report */
    int runs = advex_sweep_runs(s);
    advex_eval_result *r = malloc((size_t)runs * sizeof *r);
    if (!r) { rc = fail("results", ADVEX_ERR_NOMEM); goto done; }
    for (int i = 0; i < runs; i++) r[i] = *advex_sweep_result(s, i);
    st = advex_eval_table(r, runs, &table);
    free(r);
    if (st) { rc = fail("table", st); goto done; }
    fputs(table, stdout);
    for (unsigned bit = 1; bit; bit <<= 1)
        if (advex_sweep_warnings(s) & bit) printf("warning: %s\n", advex_eval_warning_str(bit));

    if ((st = advex_report_write(s, &d, advex_model_num_classes(m), model_path, data, dir))) {
        rc = fail(dir, st);
        goto done;
    }
    printf("wrote %s/report.html\n", dir);
    rc = 0;
done:
    free(table);
    advex_sweep_free(s);
    advex_dataset_free(&d);
    advex_model_free(m);
    return rc;
}
