/* The evaluation report (advex_report_write): a self-contained report.html (inline CSS,
 * images as files beside it, no network), accuracy-vs-eps curves (SVG and PNG), image grids,
 * per-class robust accuracy, confusion matrices under attack, results.json and results.csv.
 * Every number in the HTML is printed from the same values as results.json. All or nothing
 * (stage.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "report/report_internal.h"

static const char *const fixed_names[] = {"report.html", "results.json", "results.csv", "curve.svg", "curve.png"};
#define N_FIXED (int)(sizeof fixed_names / sizeof *fixed_names)

advex_status advex_report_paths(const char *dir, const advex_attack_kind *kinds, int n, char **paths) {
    *paths = NULL;
    advex_buf b = {0};
    for (int i = 0; i < N_FIXED; i++) advex_buf_printf(&b, "%s/%s\n", dir, fixed_names[i]);
    for (int a = 0; a < n; a++) {
        int dup = 0;
        for (int q = 0; q < a; q++) dup |= kinds[q] == kinds[a]; /* one grid per attack name */
        if (!dup) advex_buf_printf(&b, "%s/grid_%s.png\n", dir, advex_attack_name(kinds[a]));
    }
    return advex_buf_take(&b, paths);
}

const char *advex_report_class_label(const report *r, int64_t q, char *buf, size_t n) {
    if (r->d->class_names && q < r->d->num_classes && r->d->class_names[q]) return r->d->class_names[q];
    snprintf(buf, n, "%lld", (long long)q);
    return buf;
}


static advex_status write_grids(report *r) {
    const advex_dataset *d = r->d;
    int64_t rows = advex_sweep_kept_rows(r->s), dim = d->c * d->h * d->w;
    float *x = malloc((size_t)(rows * dim + 1) * sizeof(float));
    int32_t *y = malloc((size_t)(2 * rows + 1) * sizeof(int32_t));
    float *cc = malloc((size_t)(rows + 1) * sizeof(float));
    advex_status st = ADVEX_OK;
    if (!x || !y || !cc) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    const int32_t *cp = advex_sweep_clean_pred(r->s);
    const float *cf = advex_sweep_clean_conf(r->s);
    for (int a = 0; a < r->na && !st; a++) {
        const int64_t *idx;
        const float *xa, *af;
        const int32_t *ap;
        advex_sweep_grid(r->s, a, &idx, &xa, &ap, &af);
        for (int64_t j = 0; j < rows; j++) {
            memcpy(x + j * dim, d->x + idx[j] * dim, (size_t)dim * sizeof(float));
            y[j] = d->y[idx[j]];
            y[rows + j] = cp[idx[j]];
            cc[j] = cf[idx[j]];
        }
        const advex_eval_result *t = &r->res[advex_sweep_top_run(r->s, a)];
        advex_grid_rows g = {x, xa, rows, d->c, d->h, d->w, y, y + rows, ap, cc, af,
                             d->class_names, d->class_names ? d->num_classes : 0, t->eps, 0};
        char name[64];
        snprintf(name, sizeof name, "grid_%s.png", advex_attack_name(t->attack));
        st = advex_grid_adv_png(advex_stage_path(&r->st, name), &g);
        advex_grid_adv_size(&g, &r->grid_w, &r->grid_h);
    }
    free(x); free(y); free(cc);
    return st;
}

static advex_status write_curves(report *r) {
    advex_curve *cv = calloc((size_t)r->na, sizeof *cv);
    double *pts = calloc((size_t)(2 * r->runs), sizeof *pts);
    char *svg = NULL;
    advex_status st = ADVEX_OK;
    if (!cv || !pts) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    for (int a = 0; a < r->na && !st; a++) { /* points sorted by eps */
        double *x = pts + 2 * a * r->neps, *y = x + r->neps;
        for (int i = 0; i < r->neps; i++) {
            double e = r->res[a * r->neps + i].eps, v = r->res[a * r->neps + i].robust_accuracy;
            int p = i;
            while (p > 0 && x[p - 1] > e) { x[p] = x[p - 1]; y[p] = y[p - 1]; p--; }
            x[p] = e;
            y[p] = v;
        }
        cv[a] = (advex_curve){advex_attack_name(r->res[a * r->neps].attack), r->neps, x, y};
    }
    const char *xl = r->res[0].norm == ADVEX_NORM_L2 ? "eps (L2)" : r->res[0].norm == ADVEX_NORM_L1 ? "eps (L1)" : "eps (L-inf)";
    if (!st) st = advex_plot_svg(cv, r->na, "Robust accuracy vs eps", xl, 720, 440, &svg);
    if (!st) st = advex_write_file(advex_stage_path(&r->st, "curve.svg"), svg, strlen(svg));
    if (!st) st = advex_plot_png(cv, r->na, "Robust accuracy vs eps", xl, 720, 440, advex_stage_path(&r->st, "curve.png"));
    free(cv); free(pts); free(svg);
    return st;
}

/* results.json: advex_eval_json's object plus class names, per-class counts and confusion. */
static advex_status write_json(report *r) {
    cJSON *o = advex_eval_json_object(r->res, r->runs, r->model, r->data, advex_sweep_warnings(r->s));
    char nb[32];
    if (!o) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    advex_curves_json(r->s, o);
    cJSON *cl = cJSON_AddArrayToObject(o, "classes"), *tot = cJSON_AddArrayToObject(o, "class_total");
    for (int64_t q = 0; q < r->k; q++) {
        cJSON_AddItemToArray(cl, cJSON_CreateString(advex_report_class_label(r, q, nb, sizeof nb)));
        cJSON_AddItemToArray(tot, cJSON_CreateNumber((double)r->total[q]));
    }
    cJSON *pc = cJSON_AddArrayToObject(o, "per_class");
    for (int i = 0; i < r->runs; i++) {
        cJSON *e = cJSON_CreateObject(), *rb = cJSON_AddArrayToObject(e, "robust"), *ra;
        cJSON_AddStringToObject(e, "attack", advex_attack_name(r->res[i].attack));
        cJSON_AddItemToObject(e, "eps", advex_json_float(r->res[i].eps));
        ra = cJSON_AddArrayToObject(e, "robust_accuracy");
        for (int64_t q = 0; q < r->k; q++) {
            cJSON_AddItemToArray(rb, cJSON_CreateNumber((double)r->robust[i * r->k + q]));
            cJSON_AddItemToArray(ra, advex_json_number(advex_frac(r->robust[i * r->k + q], r->total[q])));
        }
        cJSON_AddItemToArray(pc, e);
    }
    cJSON *cm = cJSON_AddArrayToObject(o, "confusion");
    for (int a = 0; a < r->na; a++) {
        const advex_eval_result *t = &r->res[advex_sweep_top_run(r->s, a)];
        cJSON *e = cJSON_CreateObject(), *mx;
        cJSON_AddStringToObject(e, "attack", advex_attack_name(t->attack));
        cJSON_AddItemToObject(e, "eps", advex_json_float(t->eps));
        mx = cJSON_AddArrayToObject(e, "matrix");
        for (int64_t p = 0; p < r->k; p++) {
            cJSON *row = cJSON_CreateArray();
            for (int64_t q = 0; q < r->k; q++)
                cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r->conf[(a * r->k + p) * r->k + q]));
            cJSON_AddItemToArray(mx, row);
        }
        cJSON_AddItemToArray(cm, e);
    }
    char *text;
    advex_status st = advex_json_take(o, &text);
    if (st) return st;
    st = advex_write_file(advex_stage_path(&r->st, "results.json"), text, strlen(text));
    free(text);
    return st;
}

/* results.csv: one row per run, per-class robust accuracy in the last columns. */
static advex_status write_csv(report *r) {
    advex_buf c = {0};
    char nb[32];
    advex_buf_printf(&c, "attack,eps,n,clean_accuracy,robust_accuracy,success_rate,robust_correct,seconds");
    for (int64_t q = 0; q < r->k; q++) {
        const char *s = advex_report_class_label(r, q, nb, sizeof nb);
        advex_buf_printf(&c, ",\"robust_accuracy[");
        for (; *s; s++) advex_buf_printf(&c, *s == '"' ? "\"\"" : "%c", *s);
        advex_buf_printf(&c, "]\"");
    }
    advex_buf_printf(&c, "\n");
    for (int i = 0; i < r->runs; i++) {
        const advex_eval_result *e = &r->res[i];
        char b[5][32];
        advex_buf_printf(&c, "%s,%s,%lld,%s,%s,%s,%lld,%s", advex_attack_name(e->attack), advex_float_str(e->eps, b[0]),
                         (long long)r->n, advex_double_str(advex_frac(e->clean_correct, r->n), b[1]),
                         advex_double_str(e->robust_accuracy, b[2]), advex_double_str(e->success_rate, b[3]),
                         (long long)e->robust_correct, advex_double_str(e->seconds, b[4]));
        for (int64_t q = 0; q < r->k; q++)
            advex_buf_printf(&c, ",%s", advex_double_str(advex_frac(r->robust[i * r->k + q], r->total[q]), b[0]));
        advex_buf_printf(&c, "\n");
    }
    char *text;
    advex_status st = advex_buf_take(&c, &text);
    if (st) return st;
    st = advex_write_file(advex_stage_path(&r->st, "results.csv"), text, strlen(text));
    free(text);
    return st;
}

static advex_status count_classes(report *r) {
    const int32_t *cp = advex_sweep_clean_pred(r->s);
    advex_status st = ADVEX_OK;
    for (int i = 0; i < r->runs && !st; i++)
        st = advex_class_counts(r->d->y, cp, advex_sweep_adv_pred(r->s, i), r->n, r->k, r->total, r->robust + i * r->k,
                                NULL);
    for (int a = 0; a < r->na && !st; a++)
        st = advex_class_counts(r->d->y, cp, advex_sweep_adv_pred(r->s, advex_sweep_top_run(r->s, a)), r->n, r->k, NULL,
                                NULL, r->conf + (int64_t)a * r->k * r->k);
    return st;
}

advex_status advex_report_write(const advex_sweep *s, const advex_dataset *d, int64_t classes, const char *model,
                                const char *data, const char *dir) {
    if (!s || !d || !dir || advex_sweep_kept_rows(s) <= 0 || advex_sweep_runs(s) < 1 || classes < 1)
        return advex_set_error(ADVEX_ERR_ARG, "report %s: the sweep kept nothing for a report (keep_rows)", dir ? dir : "");
    report r = {s, d, model ? model : "", data ? data : "", advex_sweep_runs(s), advex_sweep_attacks(s),
                advex_sweep_eps_count(s), d->n, classes, advex_sweep_result(s, 0), NULL, NULL, NULL, {0}, 0, 0};
    r.total = calloc((size_t)r.k, sizeof *r.total);
    r.robust = calloc((size_t)(r.k * r.runs), sizeof *r.robust);
    r.conf = calloc((size_t)(r.k * r.k * r.na), sizeof *r.conf);
    advex_buf h = {0};
    advex_status st = ADVEX_OK;
    if (!r.total || !r.robust || !r.conf) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    if (!st) st = count_classes(&r);
    if (!st) st = advex_stage_open(&r.st, dir);
    if (!st) st = write_grids(&r);
    if (!st) st = write_curves(&r);
    if (!st) st = write_json(&r);
    if (!st) st = write_csv(&r);
    if (!st) st = advex_report_html(&r, &h);
    char *html = NULL;
    if (!st) st = advex_buf_take(&h, &html);
    if (!st) st = advex_write_file(advex_stage_path(&r.st, "report.html"), html, strlen(html));
    if (!st) st = advex_stage_commit(&r.st);
    advex_stage_abort(&r.st);
    advex_buf_free(&h);
    free(html); free(r.total); free(r.robust); free(r.conf);
    return st;
}
