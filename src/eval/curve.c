/* Minimal perturbations and robust-accuracy-vs-eps curves from one run: for an attack that
 * finds minimal perturbations (advex_attack_is_min_norm: C&W, DeepFool, and any attack added
 * to that list), each example's norm from its run at its largest eps, and the fraction of
 * examples whose norm exceeds t at every point t of a curve; the sweep's JSON with them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "internal.h"

double advex_sweep_min_norm(const advex_sweep *s, int a, int64_t i) {
    if (!s || a < 0 || a >= advex_sweep_attacks(s)) return NAN;
    const advex_records *r = advex_sweep_records(s);
    int top = advex_sweep_top_run(s, a);
    const advex_eval_result *res = advex_sweep_result(s, top);
    if (i < 0 || i >= r->n || !advex_attack_is_min_norm(res->attack)) return NAN;
    const int32_t *y = advex_sweep_labels(s);
    const advex_eval_example *e = &r->ex[(int64_t)top * r->n + i];
    if (e->clean_pred != y[i]) return 0.0;   /* broken before any perturbation */
    if (e->adv_pred == y[i]) return INFINITY; /* never broken */
    return e->norms[advex_norm_index(res->norm)];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The points of a curve: the sweep's eps values (sorted, once each) when there are three or
 * more, else 21 evenly from 0 to min(largest eps, largest finite norm in v (sorted)). */
static int curve_points(const advex_sweep_config *c, const double *v, int64_t n, float *e) {
    float top = 0;
    for (int j = 0; j < c->n_eps; j++) top = c->eps[j] > top ? c->eps[j] : top;
    if (c->n_eps >= 3) {
        memcpy(e, c->eps, (size_t)c->n_eps * sizeof(float));
        qsort(e, (size_t)c->n_eps, sizeof(float), cmp_float);
        int m = 0;
        for (int j = 0; j < c->n_eps; j++)
            if (m == 0 || e[j] != e[m - 1]) e[m++] = e[j];
        return m;
    }
    double upper = top;
    for (int64_t i = n - 1; i >= 0; i--)
        if (isfinite(v[i])) {
            if (v[i] < upper) upper = v[i];
            break;
        }
    for (int j = 0; j <= 20; j++) e[j] = (float)(upper * j / 20.0);
    return 21;
}

advex_status advex_curves_compute(advex_sweep *s, const advex_sweep_config *c) {
    int *count;
    float *ceps;
    double *cacc;
    advex_sweep_curve_storage(s, &count, &ceps, &cacc);
    int64_t n = advex_sweep_records(s)->n;
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    if (!v) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    for (int a = 0; a < c->n_attacks; a++) {
        count[a] = 0;
        if (!advex_attack_is_min_norm(c->attacks[a])) continue;
        for (int64_t i = 0; i < n; i++) v[i] = advex_sweep_min_norm(s, a, i);
        qsort(v, (size_t)n, sizeof(double), cmp_double);
        float *e = ceps + a * ADVEX_SWEEP_MAX_EPS;
        double *acc = cacc + a * ADVEX_SWEEP_MAX_EPS;
        count[a] = curve_points(c, v, n, e);
        for (int j = 0; j < count[a]; j++) {
            int64_t lo = 0, hi = n; /* the first norm > e[j] */
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (v[mid] > (double)e[j]) hi = mid; else lo = mid + 1;
            }
            acc[j] = n ? (double)(n - lo) / (double)n : 0.0;
        }
    }
    free(v);
    return ADVEX_OK;
}

int advex_sweep_curve(const advex_sweep *s, int a, const float **eps, const double **robust_accuracy) {
    if (!s || a < 0 || a >= advex_sweep_attacks(s)) return 0;
    int *count;
    float *ceps;
    double *cacc;
    advex_sweep_curve_storage((advex_sweep *)s, &count, &ceps, &cacc);
    if (eps) *eps = ceps + a * ADVEX_SWEEP_MAX_EPS;
    if (robust_accuracy) *robust_accuracy = cacc + a * ADVEX_SWEEP_MAX_EPS;
    return count[a];
}

void advex_curves_json(const advex_sweep *s, cJSON *o) {
    cJSON *arr = cJSON_AddArrayToObject(o, "curves");
    for (int a = 0; arr && a < advex_sweep_attacks(s); a++) {
        const float *e;
        const double *acc;
        int m = advex_sweep_curve(s, a, &e, &acc);
        if (m == 0) continue;
        const advex_eval_result *t = advex_sweep_result(s, advex_sweep_top_run(s, a));
        cJSON *c = cJSON_CreateObject(), *pts;
        cJSON_AddStringToObject(c, "attack", advex_attack_name(t->attack));
        cJSON_AddStringToObject(c, "norm", t->norm == ADVEX_NORM_L2 ? "l2" : t->norm == ADVEX_NORM_L1 ? "l1" : "linf");
        cJSON_AddItemToObject(c, "from_eps", advex_json_float(t->eps));
        pts = cJSON_AddArrayToObject(c, "points");
        for (int j = 0; j < m; j++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddItemToObject(p, "eps", advex_json_float(e[j]));
            cJSON_AddItemToObject(p, "robust_accuracy", advex_json_number(acc[j]));
            cJSON_AddItemToArray(pts, p);
        }
        cJSON_AddItemToArray(arr, c);
    }
}

advex_status advex_sweep_json(const advex_sweep *s, const char *model, const char *data, char **json) {
    *json = NULL;
    if (!s) return advex_set_error(ADVEX_ERR_ARG, "no sweep");
    cJSON *o = advex_eval_json_object(advex_sweep_result(s, 0), advex_sweep_runs(s), model, data,
                                      advex_sweep_warnings(s));
    if (o) advex_curves_json(s, o);
    return advex_json_take(o, json);
}
