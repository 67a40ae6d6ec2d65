/* Translation of the ONNX ops of issue 17 (elementwise math, Pow/Min/Max/PRelu/Where,
 * Expand, Reduce*, LayerNormalization, Slice, Gather on run-time data): their attributes
 * across opsets 7-18 and the inputs that must be known at load time (axes, starts/ends,
 * indices, Where's condition, Expand's shape, whose dims may be v + n*N in the batch size). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "onnx_internal.h"

#define ERR(st, ...) (snprintf(msg, sizeof msg, __VA_ARGS__), advex_set_error(st, "%s: %s", label, msg))

static int is_reduce(advex_op_type op) { return op >= ADVEX_OP_REDUCE_MEAN && op <= ADVEX_OP_REDUCE_LOG_SUM_EXP; }

int onnx_is_ext_op(advex_op_type op) { return op >= ADVEX_OP_SQRT && op <= ADVEX_OP_GATHER; }

int onnx_check_ext(const Onnx__NodeProto *nd, advex_op_type op, char *why, size_t n) {
    char s[32];
    if ((op == ADVEX_OP_MIN || op == ADVEX_OP_MAX) && nd->n_input > 2)
        return snprintf(why, n, "%s of %zu inputs", nd->op_type, nd->n_input), 0;
    if (op == ADVEX_OP_GELU) {
        if (onnx_attr_str(nd, "approximate", "none", s, sizeof s)) return -1;
        if (strcmp(s, "none") && strcmp(s, "tanh")) return snprintf(why, n, "Gelu approximate=%s", s), 0;
    }
    if (op == ADVEX_OP_SLICE && strcmp(nd->op_type, "Split") == 0 && nd->n_output > 64)
        return snprintf(why, n, "Split into %zu parts", nd->n_output), 0;
    return 1;
}

/* Plain integers of a load-time input (up to cap); -1 in *cnt when absent. */
static advex_status const_ints(const char *label, const onnx_input *in, int64_t *v, int cap, int *cnt, const char *what) {
    char msg[160];
    *cnt = -1;
    if (!in->present) return ADVEX_OK;
    const onnx_const *c = in->c;
    if (!c || c->is_float || c->ndim > 1 || c->numel > cap)
        return ERR(ADVEX_ERR_UNSUPPORTED, "%s must be at most %d integers known at load time", what, cap);
    for (int64_t k = 0; k < c->numel; k++)
        if (onnx_const_int(c, k, &v[k]) != 0) return ERR(ADVEX_ERR_UNSUPPORTED, "%s depend on the batch size", what);
    *cnt = (int)c->numel;
    return ADVEX_OK;
}

static advex_status tr_reduce(const Onnx__NodeProto *nd, const char *label, int opset, advex_op_type op,
                              const onnx_input *in, int n_in, advex_attrs *a, int *keep) {
    char msg[160];
    int64_t kd, noop;
    int cnt;
    advex_status st;
    if ((st = onnx_attr_int(nd, "keepdims", 1, &kd)) || (st = onnx_attr_int(nd, "noop_with_empty_axes", 0, &noop)))
        return st;
    if (opset >= (op == ADVEX_OP_REDUCE_SUM ? 13 : 18)) {
        if ((st = const_ints(label, n_in > 1 ? &in[1] : &(onnx_input){0}, a->ints, ADVEX_MAX_DIMS, &cnt, "axes")))
            return st;
        for (int k = 1; k < n_in; k++) keep[k] = 0;
    } else if ((st = onnx_attr_ints(nd, "axes", a->ints, ADVEX_MAX_DIMS, &cnt))) {
        return st;
    }
    if (cnt > in[0].ndim) return ERR(ADVEX_ERR_FORMAT, "%d axes for rank %d", cnt, in[0].ndim);
    a->n_ints = cnt < 0 ? 0 : cnt;
    a->keepdims = kd != 0;
    a->mode = noop != 0;
    return ADVEX_OK;
}

/* Slice on run-time data: per input dim start, end, step. A start or end equal to the
 * dim itself, batch dim included, clamps like INT64_MAX. */
static advex_status tr_slice(const Onnx__NodeProto *nd, const char *label, int opset, const onnx_input *in, int n_in,
                             advex_attrs *a, int *keep) {
    char msg[160];
    int r = in[0].ndim, ns, ne, na = -1, nst = -1, seen[ADVEX_MAX_DIMS] = {0};
    onnx_sym se[2][ADVEX_MAX_DIMS];
    int64_t axes[ADVEX_MAX_DIMS], steps[ADVEX_MAX_DIMS], raw[ADVEX_MAX_DIMS];
    advex_status st;
    if (opset < 10) {
        if ((st = onnx_attr_ints(nd, "starts", raw, ADVEX_MAX_DIMS, &ns))) return st;
        for (int j = 0; j < ns; j++) se[0][j] = (onnx_sym){raw[j], 0};
        if ((st = onnx_attr_ints(nd, "ends", raw, ADVEX_MAX_DIMS, &ne))) return st;
        for (int j = 0; j < ne; j++) se[1][j] = (onnx_sym){raw[j], 0};
        if ((st = onnx_attr_ints(nd, "axes", axes, ADVEX_MAX_DIMS, &na))) return st;
    } else {
        for (int w = 0; w < 2; w++) {
            const onnx_const *c = n_in > 1 + w ? in[1 + w].c : NULL;
            if (!c || c->is_float || c->ndim != 1 || c->numel > ADVEX_MAX_DIMS)
                return ERR(ADVEX_ERR_UNSUPPORTED, "%s must be integers known at load time", w ? "ends" : "starts");
            for (int64_t j = 0; j < c->numel; j++) se[w][j] = c->i[j];
            if (w) ne = (int)c->numel;
            else ns = (int)c->numel;
        }
        if (n_in > 3 && (st = const_ints(label, &in[3], axes, ADVEX_MAX_DIMS, &na, "axes"))) return st;
        if (n_in > 4 && (st = const_ints(label, &in[4], steps, ADVEX_MAX_DIMS, &nst, "steps"))) return st;
        for (int k = 1; k < n_in; k++) keep[k] = 0;
    }
    if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns) || ns > r)
        return ERR(ADVEX_ERR_FORMAT, "starts, ends, axes and steps differ in length");
    for (int j = 0; j < ns; j++) {
        int64_t ax = na >= 0 ? axes[j] : j, v[2];
        if (ax < -r || ax >= r || seen[ax < 0 ? ax + r : ax]++) return ERR(ADVEX_ERR_FORMAT, "bad or repeated axis");
        if (ax < 0) ax += r;
        for (int w = 0; w < 2; w++) {
            onnx_sym s = se[w][j], dim = in[0].shape[ax];
            if (s.n == dim.n && s.v == dim.v) v[w] = INT64_MAX; /* the whole dim, whatever N is */
            else if (s.n != 0) return ERR(ADVEX_ERR_UNSUPPORTED, "slice bounds depend on the batch size");
            else v[w] = s.v;
        }
        int64_t step = nst >= 0 ? steps[j] : 1;
        if (step == 0 || step == INT64_MIN) return ERR(ADVEX_ERR_FORMAT, "step 0");
        if (step < 0 && v[0] == INT64_MAX) v[0] = INT64_MAX - 1; /* (clamped to dim - 1) */
        a->starts[ax] = v[0];
        a->ends[ax] = v[1];
        a->steps[ax] = step;
    }
    return ADVEX_OK;
}

static advex_status tr_expand(const char *label, const onnx_input *in, int n_in, advex_attrs *a, int *keep) {
    char msg[160];
    const onnx_const *c = n_in > 1 ? in[1].c : NULL;
    if (!c || c->is_float || c->ndim != 1 || c->numel > ADVEX_MAX_DIMS)
        return ERR(ADVEX_ERR_UNSUPPORTED, "the shape must be at most %d integers known at load time", ADVEX_MAX_DIMS);
    for (int64_t d = 0; d < c->numel; d++) {
        if (c->i[d].v < 0 || c->i[d].n < 0 || c->i[d].v > ((int64_t)1 << 40) || c->i[d].n > ((int64_t)1 << 40))
            return ERR(ADVEX_ERR_LIMIT, "shape dimension %lld out of range", (long long)d);
        a->ints[d] = c->i[d].v;
        a->ints[ADVEX_MAX_DIMS + d] = c->i[d].n;
    }
    a->n_ints = (int)c->numel;
    keep[1] = 0;
    return ADVEX_OK;
}

/* 1 when an Expand's target depends on the batch size: the importer then passes the graph
 * input as input 1 (for its dim 0). */
int onnx_expand_needs_batch(const advex_attrs *a) {
    for (int d = 0; d < a->n_ints; d++)
        if (a->ints[ADVEX_MAX_DIMS + d]) return 1;
    return 0;
}

advex_status onnx_translate_ext(const Onnx__NodeProto *nd, const char *label, int opset, const onnx_input *in,
                                int n_in, advex_op_type *op, advex_attrs *a, int *keep) {
    char msg[160], s[32];
    advex_status st = ADVEX_OK;
    switch (*op) {
    case ADVEX_OP_HARD_SIGMOID:
        if ((st = onnx_attr_float(nd, "alpha", 0.2f, &a->alpha))) return st;
        return onnx_attr_float(nd, "beta", 0.5f, &a->beta);
    case ADVEX_OP_ELU: return onnx_attr_float(nd, "alpha", 1.0f, &a->alpha);
    case ADVEX_OP_SELU:
        if ((st = onnx_attr_float(nd, "alpha", 1.67326319217681884765625f, &a->alpha))) return st;
        return onnx_attr_float(nd, "gamma", 1.05070102214813232421875f, &a->beta);
    case ADVEX_OP_GELU:
        if ((st = onnx_attr_str(nd, "approximate", "none", s, sizeof s))) return st;
        a->mode = strcmp(s, "tanh") == 0;
        return ADVEX_OK;
    case ADVEX_OP_MIN: case ADVEX_OP_MAX:
        if (n_in == 1) *op = ADVEX_OP_IDENTITY; /* Max(x) = x */
        else if (n_in != 2) return ERR(ADVEX_ERR_UNSUPPORTED, "%d inputs", n_in);
        return ADVEX_OK;
    case ADVEX_OP_WHERE:
        if (n_in != 3 || !in[0].c) return ERR(ADVEX_ERR_UNSUPPORTED, "the condition must be known at load time");
        if (onnx_const_batch_dependent(in[0].c)) return ERR(ADVEX_ERR_UNSUPPORTED, "condition depends on the batch size");
        return ADVEX_OK;
    case ADVEX_OP_EXPAND: return tr_expand(label, in, n_in, a, keep);
    case ADVEX_OP_LAYER_NORM:
        if ((st = onnx_attr_int(nd, "axis", -1, &a->axis))) return st;
        return onnx_attr_float(nd, "epsilon", 1e-5f, &a->epsilon);
    case ADVEX_OP_SLICE: return tr_slice(nd, label, opset, in, n_in, a, keep);
    case ADVEX_OP_GATHER:
        if ((st = onnx_attr_int(nd, "axis", 0, &a->axis))) return st;
        if (n_in != 2 || !in[1].c || in[1].c->is_float)
            return ERR(ADVEX_ERR_UNSUPPORTED, "indices must be integers known at load time");
        for (int64_t k = 0; k < in[1].c->numel; k++) {
            int64_t id;
            if (onnx_const_int(in[1].c, k, &id) || id < -(1 << 24) || id >= (1 << 24))
                return ERR(ADVEX_ERR_UNSUPPORTED, "index beyond 2^24 or depending on the batch size");
        }
        return ADVEX_OK;
    default:
        if (is_reduce(*op)) return tr_reduce(nd, label, opset, *op, in, n_in, a, keep);
        return ADVEX_OK;
    }
}
