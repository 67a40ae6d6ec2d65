/* The report's minimal-perturbation section: for every attack that finds minimal
 * perturbations (C&W, DeepFool), its robust-accuracy-vs-eps curve from one run
 * (advex_sweep_curve) as an inline SVG (no script, nothing fetched) and a table of its points,
 * printed from the same values as results.json's "curves". */
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

static void points_table(const report *r, advex_buf *h) {
    advex_buf_printf(h, "<table id=\"min-norm-points\">\n<tr><th class=\"l\">attack</th><th>eps</th>"
                        "<th>robust accuracy</th></tr>\n");
    for (int a = 0; a < r->na; a++) {
        const float *e;
        const double *acc;
        int m = advex_sweep_curve(r->s, a, &e, &acc);
        const char *an = advex_attack_name(r->res[advex_sweep_top_run(r->s, a)].attack);
        for (int j = 0; j < m; j++) {
            char eb[32], ab[32];
            advex_buf_printf(h, "<tr data-attack=\"%s\" data-eps=\"%s\"><td class=\"l\">%s</td><td>%.4g</td>"
                                "<td data-v=\"%s\">%.2f%%</td></tr>\n",
                             an, advex_float_str(e[j], eb), an, (double)e[j], advex_double_str(acc[j], ab),
                             100 * acc[j]);
        }
    }
    advex_buf_printf(h, "</table>\n");
}

advex_status advex_report_min_norm_html(const report *r, advex_buf *h) {
    int nc = 0;
    for (int a = 0; a < r->na; a++) nc += advex_sweep_curve(r->s, a, NULL, NULL) > 0;
    if (nc == 0) return ADVEX_OK;
    advex_curve *cv = calloc((size_t)nc, sizeof *cv);
    double *xs = calloc((size_t)nc * ADVEX_SWEEP_MAX_EPS, sizeof *xs);
    char *svg = NULL;
    advex_status st = ADVEX_OK;
    if (!cv || !xs) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    const advex_eval_result *t0 = NULL;
    for (int a = 0, c = 0; a < r->na && !st; a++) {
        const float *e;
        const double *acc;
        int m = advex_sweep_curve(r->s, a, &e, &acc);
        if (m == 0) continue;
        const advex_eval_result *t = &r->res[advex_sweep_top_run(r->s, a)];
        if (!t0) t0 = t;
        double *x = xs + c * ADVEX_SWEEP_MAX_EPS;
        for (int j = 0; j < m; j++) x[j] = e[j];
        cv[c++] = (advex_curve){advex_attack_name(t->attack), m, x, acc};
    }
    if (!st)
        st = advex_plot_svg(cv, nc, "Robust accuracy vs eps, minimal perturbations",
                            t0->norm == ADVEX_NORM_L2   ? "eps (L2)"
                            : t0->norm == ADVEX_NORM_L1 ? "eps (L1)"
                                                        : "eps (L-inf)",
                            720, 440, &svg);
    if (!st) {
        advex_buf_printf(h, "<h2>Minimal perturbations</h2>\n<p>From one run of each minimal-perturbation attack "
                            "(at its largest eps): robust accuracy at eps is the fraction of examples whose smallest "
                            "adversarial perturbation found is larger than eps, or that were never broken.</p>\n"
                            "<div id=\"min-norm-curve\">\n%s</div>\n", svg);
        points_table(r, h);
    }
    free(cv); free(xs); free(svg);
    return st;
}
