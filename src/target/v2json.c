/* Open Inference Protocol v2 JSON, both directions, with cJSON: infer requests and
 * responses, model metadata. Used by the HTTP client (http.c) and the server (src/serve/).
 * Every parse checks shapes, datatypes and finiteness, and bounds what it accepts. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "target/target_internal.h"

/* shortest decimal that reads back as v: requests stay small (0.5 not 0.5000000000000000) */
static cJSON *f32(float v) {
    char buf[32];
    return cJSON_CreateRaw(advex_float_str(v, buf));
}

static cJSON *shape_array(const int64_t *dims, int nd) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < nd; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)dims[i]));
    return a;
}

static char *print_free(cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *v2_infer_request(const char *name, const float *x, int64_t n, const int64_t chw[3]) {
    cJSON *o = cJSON_CreateObject(), *ins = cJSON_AddArrayToObject(o, "inputs"), *in = cJSON_CreateObject();
    cJSON_AddItemToArray(ins, in);
    int64_t dims[4] = {n, chw[0], chw[1], chw[2]}, m = n * chw[0] * chw[1] * chw[2];
    cJSON_AddStringToObject(in, "name", name);
    cJSON_AddItemToObject(in, "shape", shape_array(dims, 4));
    cJSON_AddStringToObject(in, "datatype", "FP32");
    cJSON *data = cJSON_AddArrayToObject(in, "data");
    for (int64_t i = 0; data && i < m; i++) cJSON_AddItemToArray(data, f32(x[i]));
    return print_free(o);
}

char *v2_infer_response(const char *model, advex_output_kind out, const float *scores, const int32_t *labels,
                        int64_t n, int64_t k) {
    cJSON *o = cJSON_CreateObject(), *outs;
    cJSON_AddStringToObject(o, "model_name", model);
    outs = cJSON_AddArrayToObject(o, "outputs");
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToArray(outs, r);
    int label = out == ADVEX_OUTPUT_LABEL;
    int64_t dims[2] = {n, k};
    cJSON_AddStringToObject(r, "name", label ? "label" : out == ADVEX_OUTPUT_PROBS ? "probabilities" : "logits");
    cJSON_AddItemToObject(r, "shape", shape_array(dims, label ? 1 : 2));
    cJSON_AddStringToObject(r, "datatype", label ? "INT64" : "FP32");
    cJSON *data = cJSON_AddArrayToObject(r, "data");
    for (int64_t i = 0; data && i < (label ? n : n * k); i++)
        cJSON_AddItemToArray(data, label ? cJSON_CreateNumber(labels[i]) : f32(scores[i]));
    return print_free(o);
}

char *v2_metadata(const char *model, const int64_t chw[3], int64_t k, advex_output_kind out) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", model);
    cJSON_AddStringToObject(o, "platform", "advex");
    cJSON *ins = cJSON_AddArrayToObject(o, "inputs"), *in = cJSON_CreateObject();
    cJSON_AddItemToArray(ins, in);
    int64_t di[4] = {-1, chw[0], chw[1], chw[2]}, dout[2] = {-1, k};
    cJSON_AddStringToObject(in, "name", "input");
    cJSON_AddStringToObject(in, "datatype", "FP32");
    cJSON_AddItemToObject(in, "shape", shape_array(di, 4));
    cJSON *outs = cJSON_AddArrayToObject(o, "outputs"), *ot = cJSON_CreateObject();
    cJSON_AddItemToArray(outs, ot);
    int label = out == ADVEX_OUTPUT_LABEL;
    cJSON_AddStringToObject(ot, "name", label ? "label" : out == ADVEX_OUTPUT_PROBS ? "probabilities" : "logits");
    cJSON_AddStringToObject(ot, "datatype", label ? "INT64" : "FP32");
    cJSON_AddItemToObject(ot, "shape", shape_array(dout, label ? 1 : 2));
    return print_free(o);
}

/* the integer dims of a "shape" array (at most cap, each in [-1, 2^31)); -1 on junk */
static int read_shape(const cJSON *s, int64_t *dims, int cap) {
    if (!cJSON_IsArray(s)) return -1;
    int nd = cJSON_GetArraySize(s);
    if (nd > cap) return -1;
    int i = 0;
    for (const cJSON *e = s->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < -1 ||
            e->valuedouble > 2147483647.0)
            return -1;
        dims[i] = (int64_t)e->valuedouble;
    }
    return nd;
}

/* the numbers of a (possibly nested) "data" array into out (exactly m of them) */
static int read_data(const cJSON *a, double *out, int64_t m, int64_t *got, int depth) {
    if (!cJSON_IsArray(a) || depth > 8) return -1;
    for (const cJSON *e = a->child; e; e = e->next) {
        if (cJSON_IsArray(e)) {
            if (read_data(e, out, m, got, depth + 1)) return -1;
            continue;
        }
        if (!cJSON_IsNumber(e) || *got >= m) return -1;
        out[(*got)++] = e->valuedouble;
    }
    return 0;
}

static const cJSON *first_of(const cJSON *o, const char *key) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsArray(a) ? a->child : NULL;
}

advex_status v2_parse_request(const char *body, size_t len, const int64_t chw[3], int64_t max_n, float **x,
                              int64_t *n) {
    *x = NULL;
    cJSON *o = cJSON_ParseWithLength(body, len);
    if (!o) return advex_set_error(ADVEX_ERR_FORMAT, "request body is not JSON");
    advex_status st = ADVEX_OK;
    const cJSON *in = first_of(o, "inputs");
    const cJSON *dt = in ? cJSON_GetObjectItemCaseSensitive(in, "datatype") : NULL;
    int64_t dims[8];
    int nd = in ? read_shape(cJSON_GetObjectItemCaseSensitive(in, "shape"), dims, 8) : -1;
    double *buf = NULL;
    if (!in) st = advex_set_error(ADVEX_ERR_FORMAT, "request has no \"inputs\" array with an input");
    else if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "FP32") != 0)
        st = advex_set_error(ADVEX_ERR_FORMAT, "input datatype must be \"FP32\"");
    else if (nd != 4 || dims[0] < 1 || dims[1] != chw[0] || dims[2] != chw[1] || dims[3] != chw[2])
        st = advex_set_error(ADVEX_ERR_FORMAT, "input shape must be [N,%lld,%lld,%lld] with N >= 1",
                             (long long)chw[0], (long long)chw[1], (long long)chw[2]);
    else if (dims[0] > max_n)
        st = advex_set_error(ADVEX_ERR_LIMIT, "batch of %lld images is over this server's limit of %lld",
                             (long long)dims[0], (long long)max_n);
    if (st) goto done;
    int64_t m = dims[0] * chw[0] * chw[1] * chw[2], got = 0;
    buf = malloc((size_t)m * sizeof(double));
    *x = malloc((size_t)m * sizeof(float));
    if (!buf || !*x) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
    if (read_data(cJSON_GetObjectItemCaseSensitive(in, "data"), buf, m, &got, 0) || got != m) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "input data must be %lld numbers (the shape's product)", (long long)m);
        goto done;
    }
    for (int64_t i = 0; i < m; i++) {
        if (!(fabs(buf[i]) <= FLT_MAX)) { /* NaN, inf, or a double beyond float's range */
            st = advex_set_error(ADVEX_ERR_FORMAT, "input data has a number that is not a finite float (%g)", buf[i]);
            goto done;
        }
        (*x)[i] = (float)buf[i];
    }
    *n = dims[0];
done:
    if (st) { free(*x); *x = NULL; }
    free(buf);
    cJSON_Delete(o);
    return st;
}

static advex_status not_v2(const char *what, const char *body, size_t len, const char *why) {
    /* show the start of what came back: an HTML error page is recognisable at once */
    char head[64];
    size_t h = len < sizeof head - 1 ? len : sizeof head - 1;
    for (size_t i = 0; i < h; i++) head[i] = body[i] >= 32 && body[i] < 127 ? body[i] : ' ';
    head[h] = '\0';
    return advex_set_error(ADVEX_ERR_FORMAT, "%s: %s (response starts \"%s\")", what, why, head);
}

advex_status v2_parse_response(const char *body, size_t len, advex_output_kind out, int64_t n, int64_t k,
                               const char *what, float *scores, int32_t *labels) {
    cJSON *o = cJSON_ParseWithLength(body, len);
    if (!o && (strstr(body, "NaN") || strstr(body, "Infinity")))
        return not_v2(what, body, len, "the response has non-finite scores (NaN or Infinity, not even JSON)");
    if (!o) return not_v2(what, body, len, "the response is not JSON");
    advex_status st = ADVEX_OK;
    const cJSON *r = first_of(o, "outputs");
    int label = out == ADVEX_OUTPUT_LABEL;
    int64_t dims[4], m = label ? n : n * k, got = 0;
    int nd = r ? read_shape(cJSON_GetObjectItemCaseSensitive(r, "shape"), dims, 4) : -1;
    double *buf = malloc((size_t)(m ? m : 1) * sizeof(double));
    if (!buf) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
    if (!r) { st = not_v2(what, body, len, "no \"outputs\" in the response"); goto done; }
    if (label && (!(nd == 1 || (nd == 2 && dims[1] == 1)) || dims[0] != n)) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: output shape is not [%lld] (labels) for a batch of %lld", what,
                             (long long)n, (long long)n);
        goto done;
    }
    if (!label && (nd != 2 || dims[0] != n || dims[1] != k)) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: output shape is not [%lld,%lld] for a batch of %lld", what,
                             (long long)n, (long long)k, (long long)n);
        goto done;
    }
    if (read_data(cJSON_GetObjectItemCaseSensitive(r, "data"), buf, m, &got, 0) || got != m) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: output data is not %lld numbers", what, (long long)m);
        goto done;
    }
    for (int64_t i = 0; i < m && !st; i++) {
        if (!isfinite(buf[i]) || (label && (buf[i] != floor(buf[i]) || buf[i] < 0 || (k > 0 && buf[i] >= (double)k) ||
                                            buf[i] > 2147483647.0)))
            st = advex_set_error(ADVEX_ERR_FORMAT, label ? "%s: label %g is not a class" : "%s: non-finite score %g",
                                 what, buf[i]);
        else if (label) labels[i] = (int32_t)buf[i];
        else if (fabs(buf[i]) > FLT_MAX) st = advex_set_error(ADVEX_ERR_FORMAT, "%s: score %g overflows float", what, buf[i]);
        else scores[i] = (float)buf[i];
    }
done:
    free(buf);
    cJSON_Delete(o);
    return st;
}

advex_status v2_parse_metadata(const char *body, size_t len, const char *what, int64_t chw[3],
                               advex_output_kind *out, int64_t *k, char *in_name, size_t cap) {
    cJSON *o = cJSON_ParseWithLength(body, len);
    if (!o) return not_v2(what, body, len, "model metadata is not JSON");
    advex_status st = ADVEX_OK;
    const cJSON *in = first_of(o, "inputs"), *ot = first_of(o, "outputs");
    int64_t di[8], dout[8];
    int ni = in ? read_shape(cJSON_GetObjectItemCaseSensitive(in, "shape"), di, 8) : -1;
    int no = ot ? read_shape(cJSON_GetObjectItemCaseSensitive(ot, "shape"), dout, 8) : -1;
    const cJSON *nm = in ? cJSON_GetObjectItemCaseSensitive(in, "name") : NULL;
    const cJSON *dt = ot ? cJSON_GetObjectItemCaseSensitive(ot, "datatype") : NULL;
    if (ni != 4 || di[1] < 1 || di[2] < 1 || di[3] < 1 || di[1] * di[2] * di[3] > (1 << 26))
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: metadata input shape is not [-1,C,H,W]", what);
    else if (!cJSON_IsString(nm) || strlen(nm->valuestring) >= cap)
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: metadata input has no name", what);
    else if (!cJSON_IsString(dt))
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: metadata output has no datatype", what);
    else if (strcmp(dt->valuestring, "FP32") == 0 && no == 2 && dout[1] >= 2 && dout[1] <= 1000000) {
        *out = ADVEX_OUTPUT_LOGITS;
        *k = dout[1];
    } else if ((strcmp(dt->valuestring, "INT64") == 0 || strcmp(dt->valuestring, "INT32") == 0) &&
               (no == 1 || (no == 2 && dout[1] == 1))) {
        *out = ADVEX_OUTPUT_LABEL;
        *k = 0;
    } else
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: metadata output is neither FP32 [-1,K] scores nor INT64 [-1] "
                             "labels", what);
    if (!st) {
        for (int i = 0; i < 3; i++) chw[i] = di[i + 1];
        strcpy(in_name, nm->valuestring);
    }
    cJSON_Delete(o);
    return st;
}
