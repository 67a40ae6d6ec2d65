/* Evaluation results as text people read (the table) and as JSON (cJSON) other programs
 * read; the HTML report (src/report/report.c) builds on the same JSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "internal.h"

static const char *norm_name(advex_norm n) { return n == ADVEX_NORM_L2 ? "l2" : n == ADVEX_NORM_L1 ? "l1" : "linf"; }

advex_status advex_eval_table(const advex_eval_result *r, int count, char **text) {
    *text = NULL;
    advex_buf b = {0};
    int64_t n = count ? r[0].n : 0, clean = count ? r[0].clean_correct : 0;
    advex_buf_printf(&b, "examples: %lld   clean accuracy: %.2f%%\n", (long long)n,
                     n ? 100.0 * (double)clean / (double)n : 0.0);
    advex_buf_printf(&b, "%-10s %8s %16s %14s %10s  %s\n", "attack", "eps", "robust accuracy", "success rate", "seconds",
                     "notes");
    int transfer = 0;
    for (int i = 0; i < count; i++) {
        char name[32], notes[224] = "";
        snprintf(name, sizeof name, "%s%s", advex_attack_name(r[i].attack), r[i].transfer ? "*" : "");
        transfer |= r[i].transfer;
        size_t o = 0;
        if (r[i].attack != ADVEX_ATTACK_NONE && r[i].norm_count > 0 &&
            (advex_attack_is_min_norm(r[i].attack) || r[i].norm != ADVEX_NORM_LINF))
            o += (size_t)snprintf(notes + o, sizeof notes - o, "%s median %.4g mean %.4g  ", norm_name(r[i].norm),
                                  r[i].norm_median, r[i].norm_mean);
        if (r[i].queries_count > 0 && o < sizeof notes)
            o += (size_t)snprintf(notes + o, sizeof notes - o, "queries mean %.1f median %.0f  ", r[i].queries_mean,
                                  r[i].queries_median);
        if (r[i].target_hits >= 0 && o < sizeof notes)
            o += (size_t)snprintf(notes + o, sizeof notes - o, "on target %.2f%%  ",
                                  r[i].n ? 100.0 * (double)r[i].target_hits / (double)r[i].n : 0.0);
        for (int s = 0; s < r[i].n_stages && o < sizeof notes; s++)
            o += (size_t)snprintf(notes + o, sizeof notes - o, "%s%s -%lld", s ? ", " : "",
                                  advex_attack_name(r[i].stage_attack[s]), (long long)r[i].stage_removed[s]);
        advex_buf_printf(&b, "%-10s %8.4f %15.2f%% %13.2f%% %10.2f  %s\n", name, (double)r[i].eps,
                         100.0 * r[i].robust_accuracy, 100.0 * r[i].success_rate, r[i].seconds, notes);
    }
    if (transfer) advex_buf_printf(&b, "* crafted on the surrogate model, evaluated on the model\n");
    return advex_buf_take(&b, text);
}

const char *advex_float_str(float v, char buf[32]) {
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, 32, "%.*g", p, (double)v);
        if ((float)strtod(buf, NULL) == v) break;
    }
    return buf;
}

const char *advex_double_str(double v, char buf[32]) {
    if (!isfinite(v)) return snprintf(buf, 32, "null"), buf;
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, 32, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

cJSON *advex_json_number(double v) {
    char buf[32];
    return cJSON_CreateRaw(advex_double_str(v, buf));
}

cJSON *advex_json_float(float v) {
    char buf[32];
    return cJSON_CreateNumber(strtod(advex_float_str(v, buf), NULL));
}

/* warnings as an array of their texts */
cJSON *advex_json_warnings(unsigned bits) {
    cJSON *a = cJSON_CreateArray();
    for (unsigned w = 1; a && w <= ADVEX_EVAL_WARN_LAST; w <<= 1)
        if (bits & w) cJSON_AddItemToArray(a, cJSON_CreateString(advex_eval_warning_str(w)));
    return a;
}

static cJSON *result_json(const advex_eval_result *r, unsigned shared) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "attack", advex_attack_name(r->attack));
    cJSON_AddItemToObject(o, "eps", advex_json_float(r->eps));
    cJSON_AddItemToObject(o, "robust_accuracy", advex_json_number(r->robust_accuracy));
    cJSON_AddItemToObject(o, "success_rate", advex_json_number(r->success_rate));
    cJSON_AddItemToObject(o, "seconds", advex_json_number(r->seconds));
    cJSON_AddNumberToObject(o, "robust_correct", (double)r->robust_correct);
    /* the running worst case (robust to this and every earlier attack at this eps) and
     * AutoAttack's final check of the returned examples */
    cJSON_AddNumberToObject(o, "worst_case_robust_correct", (double)r->robust_all);
    cJSON_AddItemToObject(o, "max_perturbation", advex_json_number(r->max_pert));
    cJSON_AddNumberToObject(o, "nan_count", (double)r->nan_count);
    cJSON_AddStringToObject(o, "norm", norm_name(r->norm));
    if (r->norm_count > 0) {
        cJSON *p = cJSON_AddObjectToObject(o, "perturbation");
        cJSON_AddNumberToObject(p, "count", (double)r->norm_count);
        cJSON_AddItemToObject(p, "median", advex_json_number(r->norm_median));
        cJSON_AddItemToObject(p, "mean", advex_json_number(r->norm_mean));
    }
    if (r->queries_total > 0) cJSON_AddNumberToObject(o, "queries_total", (double)r->queries_total);
    if (r->queries_count > 0) {
        cJSON *q = cJSON_AddObjectToObject(o, "queries");
        cJSON_AddNumberToObject(q, "count", (double)r->queries_count);
        cJSON_AddItemToObject(q, "mean", advex_json_number(r->queries_mean));
        cJSON_AddItemToObject(q, "median", advex_json_number(r->queries_median));
    }
    if (r->target_hits >= 0) cJSON_AddNumberToObject(o, "target_hits", (double)r->target_hits);
    if (r->n_stages > 0) {
        cJSON *st = cJSON_AddArrayToObject(o, "stages");
        for (int s = 0; s < r->n_stages; s++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "attack", advex_attack_name(r->stage_attack[s]));
            cJSON_AddNumberToObject(e, "removed", (double)r->stage_removed[s]);
            cJSON_AddItemToArray(st, e);
        }
    }
    if (r->transfer) cJSON_AddTrueToObject(o, "transfer");
    unsigned w = r->warnings | shared;
    if (w) cJSON_AddItemToObject(o, "warnings", advex_json_warnings(w));
    return o;
}

cJSON *advex_eval_json_object(const advex_eval_result *r, int count, const char *model, const char *data,
                              unsigned warnings) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int64_t n = count ? r[0].n : 0, clean = count ? r[0].clean_correct : 0;
    cJSON_AddStringToObject(o, "model", model ? model : "");
    cJSON_AddStringToObject(o, "data", data ? data : "");
    cJSON_AddNumberToObject(o, "n", (double)n);
    cJSON_AddItemToObject(o, "clean_accuracy", advex_json_number(n ? (double)clean / (double)n : 0.0));
    /* every result lists the warnings of the whole evaluation too, but the masking one, which
     * is about a result */
    unsigned shared = warnings & ~ADVEX_EVAL_WARN_BLACKBOX_WINS;
    cJSON_AddItemToObject(o, "warnings", advex_json_warnings(warnings));
    cJSON *res = cJSON_AddArrayToObject(o, "results");
    for (int i = 0; i < count; i++) cJSON_AddItemToArray(res, result_json(&r[i], shared));
    return o;
}

advex_status advex_json_take(cJSON *o, char **json) {
    *json = NULL;
    char *s = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!s) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (JSON output)");
    size_t len = strlen(s);
    char *t = malloc(len + 2); /* cJSON's allocator may differ from free(): copy, end with a newline */
    if (t) {
        memcpy(t, s, len);
        t[len] = '\n';
        t[len + 1] = '\0';
    }
    cJSON_free(s);
    if (!t) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (JSON output)");
    *json = t;
    return ADVEX_OK;
}

advex_status advex_eval_json(const advex_eval_result *r, int count, const char *model, const char *data,
                             unsigned warnings, char **json) {
    return advex_json_take(advex_eval_json_object(r, count, model, data, warnings), json);
}
