/* report.html of an evaluation report (advex_report_write): inline CSS, the results table,
 * the curve, per-class robust accuracy, and per attack its image grid and confusion matrix.
 * The numbers carry data-v attributes equal to results.json's (tests/cli/report.sh reads
 * both). */
#include <stdio.h>

#include "report/report_internal.h"

static void html_text(advex_buf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': advex_buf_printf(b, "&lt;"); break;
        case '>': advex_buf_printf(b, "&gt;"); break;
        case '&': advex_buf_printf(b, "&amp;"); break;
        case '"': advex_buf_printf(b, "&quot;"); break;
        default: advex_buf_printf(b, "%c", *s);
        }
    }
}

static void html_head(const report *r, advex_buf *h) {
    char nb[32];
    advex_buf_printf(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>advex report: ");
    html_text(h, r->model);
    advex_buf_printf(h, "</title>\n<style>\n"
        "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}\n"
        "h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.2em;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}\n"
        ".meta{color:#555}.meta code{background:#f4f4f4;padding:1px 4px;border-radius:3px}\n"
        "table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}\n"
        "th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f6f6f6}\n"
        "td.l,th.l{text-align:left}\n"
        ".grid img{image-rendering:pixelated;border:1px solid #ddd}\n"
        ".cm td{min-width:34px}.warn{background:#fff4e5;border-left:4px solid #f0a030;padding:6px 10px;margin:6px 0}\n"
        ".cols{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}\n"
        "</style>\n</head>\n<body>\n<h1>advex robustness report</h1>\n<p class=\"meta\">model <code>");
    html_text(h, r->model);
    advex_buf_printf(h, "</code> &middot; data <code>");
    html_text(h, r->data);
    int64_t clean = r->res[0].clean_correct;
    advex_buf_printf(h, "</code> &middot; <span id=\"n\">%lld</span> examples &middot; clean accuracy "
                        "<b id=\"clean\" data-v=\"%s\">%.2f%%</b></p>\n", (long long)r->n,
                     advex_double_str(advex_frac(clean, r->n), nb),
                     100.0 * advex_frac(clean, r->n));
    unsigned warnings = advex_sweep_warnings(r->s);
    for (unsigned w = 1; w <= ADVEX_EVAL_WARN_LAST; w <<= 1)
        if (warnings & w) {
            advex_buf_printf(h, "<p class=\"warn\">warning: ");
            html_text(h, advex_eval_warning_str(w));
            advex_buf_printf(h, "</p>\n");
        }
}

static void html_results(const report *r, advex_buf *h) {
    advex_buf_printf(h, "<h2>Robust accuracy</h2>\n<p>A clean-misclassified example counts as non-robust "
                        "(AutoAttack's convention); success rate is over the correctly classified examples.</p>\n"
                        "<table id=\"results\">\n<tr><th class=\"l\">attack</th><th>eps</th><th>robust accuracy</th>"
                        "<th>success rate</th><th>robust</th><th>seconds</th></tr>\n");
    for (int i = 0; i < r->runs; i++) {
        const advex_eval_result *e = &r->res[i];
        char eb[32], ra[32], sr[32];
        advex_buf_printf(h, "<tr data-attack=\"%s\" data-eps=\"%s\"><td class=\"l\">%s%s</td><td>%.4g</td>"
                            "<td data-key=\"robust_accuracy\" data-v=\"%s\">%.2f%%</td>"
                            "<td data-key=\"success_rate\" data-v=\"%s\">%.2f%%</td>"
                            "<td data-key=\"robust_correct\" data-v=\"%lld\">%lld</td><td>%.2f</td></tr>\n",
                         advex_attack_name(e->attack), advex_float_str(e->eps, eb), advex_attack_name(e->attack),
                         e->transfer ? " (transfer)" : "", (double)e->eps, advex_double_str(e->robust_accuracy, ra),
                         100 * e->robust_accuracy, advex_double_str(e->success_rate, sr), 100 * e->success_rate, (long long)e->robust_correct,
                         (long long)e->robust_correct, e->seconds);
    }
    advex_buf_printf(h, "</table>\n<h2>Accuracy against eps</h2>\n"
                        "<p><img src=\"curve.svg\" width=\"720\" height=\"440\" alt=\"robust accuracy against eps\"></p>\n"
                        "<p>The same plot as <a href=\"curve.png\">PNG</a>; the numbers as <a href=\"results.json\">JSON"
                        "</a> and <a href=\"results.csv\">CSV</a>.</p>\n");
}

static void html_per_class(const report *r, advex_buf *h) {
    char nb[32];
    advex_buf_printf(h, "<h2>Per-class robust accuracy</h2>\n<table id=\"per-class\">\n<tr><th class=\"l\">class</th>"
                        "<th>examples</th>");
    for (int i = 0; i < r->runs; i++)
        advex_buf_printf(h, "<th>%s %.4g</th>", advex_attack_name(r->res[i].attack), (double)r->res[i].eps);
    advex_buf_printf(h, "</tr>\n");
    for (int64_t q = 0; q < r->k; q++) {
        advex_buf_printf(h, "<tr><td class=\"l\">");
        html_text(h, advex_report_class_label(r, q, nb, sizeof nb));
        advex_buf_printf(h, "</td><td>%lld</td>", (long long)r->total[q]);
        for (int i = 0; i < r->runs; i++) {
            double v = advex_frac(r->robust[i * r->k + q], r->total[q]);
            advex_buf_printf(h, "<td data-v=\"%s\" style=\"background:rgba(44,160,44,%.2f)\">%.1f%%</td>",
                             advex_double_str(v, nb), 0.45 * v, 100 * v);
        }
        advex_buf_printf(h, "</tr>\n");
    }
    advex_buf_printf(h, "</table>\n");
}

/* Attack a at its largest eps: the image grid and the confusion matrix under attack. */
static void html_attack(const report *r, int a, advex_buf *h) {
    char nb[32];
    const advex_eval_result *t = &r->res[advex_sweep_top_run(r->s, a)];
    const char *an = advex_attack_name(t->attack);
    advex_buf_printf(h, "<h2>%s at eps %.4g</h2>\n<div class=\"cols\">\n<div class=\"grid\"><img src=\"grid_%s.png\" "
                        "alt=\"clean, perturbation and adversarial examples for %s\" width=\"%d\" height=\"%d\">"
                        "<p>Clean | perturbation shown as 0.5 + &delta;/(2&epsilon;) | adversarial; "
                        "successful attacks first.</p></div>\n",
                     an, (double)t->eps, an, an, r->grid_w * 3 / 2, r->grid_h * 3 / 2);
    advex_buf_printf(h, "<div><p>Confusion matrix under attack (rows: true class, columns: prediction; a "
                        "clean mistake keeps its clean prediction)</p>\n<table class=\"cm\" data-attack=\"%s\">\n"
                        "<tr><th></th>", an);
    for (int64_t q = 0; q < r->k; q++) {
        advex_buf_printf(h, "<th title=\"");
        html_text(h, advex_report_class_label(r, q, nb, sizeof nb));
        advex_buf_printf(h, "\">%lld</th>", (long long)q);
    }
    advex_buf_printf(h, "</tr>\n");
    for (int64_t p = 0; p < r->k; p++) {
        advex_buf_printf(h, "<tr><th class=\"l\">");
        html_text(h, advex_report_class_label(r, p, nb, sizeof nb));
        advex_buf_printf(h, "</th>");
        for (int64_t q = 0; q < r->k; q++) {
            int64_t v = r->conf[(a * r->k + p) * r->k + q];
            double s = r->total[p] ? (double)v / (double)r->total[p] : 0;
            advex_buf_printf(h, "<td style=\"background:rgba(%s,%.2f)\">%lld</td>", p == q ? "44,160,44" : "214,39,40",
                             0.8 * s, (long long)v);
        }
        advex_buf_printf(h, "</tr>\n");
    }
    advex_buf_printf(h, "</table></div>\n</div>\n");
}

advex_status advex_report_html(const report *r, advex_buf *h) {
    html_head(r, h);
    html_results(r, h);
    advex_status st = advex_report_min_norm_html(r, h);
    if (st) return st;
    html_per_class(r, h);
    for (int a = 0; a < r->na; a++) {
        int dup = 0; /* one section per attack name (its grid file is per name) */
        for (int q = 0; q < a; q++) dup |= r->res[advex_sweep_top_run(r->s, q)].attack == r->res[advex_sweep_top_run(r->s, a)].attack;
        if (!dup) html_attack(r, a, h);
    }
    advex_buf_printf(h, "<p class=\"meta\">Written by advex %s.</p>\n"
        "<script>\n"
        "window.addEventListener('load', function () {\n"
        "  var imgs = document.images, ok = imgs.length > 0;\n"
        "  for (var i = 0; i < imgs.length; i++) if (!imgs[i].complete || imgs[i].naturalWidth === 0) ok = false;\n"
        "  document.body.dataset.imagesOk = ok ? 'yes' : 'no';\n"
        "  document.body.dataset.images = String(imgs.length);\n"
        "});\n</script>\n</body>\n</html>\n", ADVEX_VERSION);
    return h->oom ? advex_set_error(ADVEX_ERR_NOMEM, "out of memory (report.html)") : ADVEX_OK;
}
