/* --per-example: one JSON line per example and eps, from the sweep's per-example records
 * (state.c): the label, the clean prediction, the first attack (in the sweep's order) that
 * broke it, the final prediction and perturbation norms, and each attack's own outcome. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "internal.h"

static void add_norms(cJSON *o, const double *n3) {
    cJSON_AddItemToObject(o, "linf", advex_json_number(n3[0]));
    cJSON_AddItemToObject(o, "l2", advex_json_number(n3[1]));
    cJSON_AddItemToObject(o, "l1", advex_json_number(n3[2]));
}

/* Example i at the sweep's eps e as one object. */
static cJSON *example_json(const advex_sweep *s, int64_t i, int e) {
    const advex_records *r = advex_sweep_records(s);
    const int32_t *y = advex_sweep_labels(s);
    int na = advex_sweep_attacks(s), ne = advex_sweep_eps_count(s);
    cJSON *o = cJSON_CreateObject(), *arr;
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "index", (double)i);
    cJSON_AddItemToObject(o, "eps", advex_json_float(advex_sweep_result(s, e)->eps));
    cJSON_AddNumberToObject(o, "label", y[i]);
    cJSON_AddNumberToObject(o, "clean_pred", r->ex[i].clean_pred);
    int clean_ok = r->ex[i].clean_pred == y[i], broken_by = -1;
    int64_t fin = -1; /* the record of the final example: the breaking attack's, else the last one's */
    arr = cJSON_CreateArray();
    for (int a = 0; a < na; a++) {
        int run = a * ne + e;
        const advex_eval_result *res = advex_sweep_result(s, run);
        int64_t k = (int64_t)run * r->n + i;
        const advex_eval_example *x = &r->ex[k];
        int broken = clean_ok && x->adv_pred != y[i];
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "attack", advex_attack_name(res->attack));
        cJSON_AddNumberToObject(t, "pred", x->adv_pred);
        cJSON_AddBoolToObject(t, "broken", broken);
        if (broken && res->n_stages > 0 && x->stage >= 1 && x->stage <= res->n_stages)
            cJSON_AddStringToObject(t, "stage", advex_attack_name(res->stage_attack[x->stage - 1]));
        if (x->target >= 0) cJSON_AddNumberToObject(t, "target", x->target);
        if (x->queries > 0) cJSON_AddNumberToObject(t, "queries", (double)x->queries);
        add_norms(t, x->norms);
        if (advex_attack_is_min_norm(res->attack)) {
            double mn = advex_sweep_min_norm(s, a, i); /* null: never broken */
            cJSON_AddItemToObject(t, "min_norm", isfinite(mn) ? advex_json_number(mn) : cJSON_CreateNull());
        }
        cJSON_AddItemToArray(arr, t);
        if (broken && broken_by < 0) broken_by = a;
        if (broken_by == a || (broken_by < 0 && a == na - 1)) fin = k;
    }
    if (broken_by >= 0) cJSON_AddStringToObject(o, "broken_by", advex_attack_name(advex_sweep_result(s, broken_by * ne + e)->attack));
    else cJSON_AddNullToObject(o, "broken_by");
    cJSON_AddNumberToObject(o, "pred", r->ex[fin].adv_pred);
    add_norms(o, r->ex[fin].norms);
    cJSON_AddItemToObject(o, "attacks", arr);
    return o;
}

advex_status advex_sweep_write_per_example(const advex_sweep *s, const advex_dataset *d, const char *path) {
    if (!s || !d || !path) return advex_set_error(ADVEX_ERR_ARG, "per-example: no sweep, data or path");
    const advex_records *r = advex_sweep_records(s);
    if (d->n != r->n || !d->y || memcmp(d->y, advex_sweep_labels(s), (size_t)d->n * sizeof(int32_t)) != 0)
        return advex_set_error(ADVEX_ERR_ARG, "per-example %s: not the data set the sweep ran on", path);
    if (r->n == 0) return advex_write_file(path, "", 0);
    advex_buf b = {0};
    for (int64_t i = 0; i < r->n && !b.oom; i++)
        for (int e = 0; e < advex_sweep_eps_count(s) && !b.oom; e++) {
            cJSON *o = example_json(s, i, e);
            char *line = o ? cJSON_PrintUnformatted(o) : NULL;
            cJSON_Delete(o);
            if (!line) {
                advex_buf_free(&b);
                return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (per-example %s)", path);
            }
            advex_buf_printf(&b, "%s\n", line);
            cJSON_free(line);
        }
    char *text;
    advex_status st = advex_buf_take(&b, &text);
    if (st) return st;
    st = advex_write_file(path, text, strlen(text));
    free(text);
    return st;
}
