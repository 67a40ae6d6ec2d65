/* Load-time constants and the constant folder: decodes TensorProtos and evaluates the
 * small integer/float subgraphs exporters emit (Shape -> Gather -> Unsqueeze -> Concat ->
 * Reshape for x.view(x.size(0), -1), Pad's pads, normalisation constants). Integers are
 * kept as v + n*N with N the symbolic batch size, so the batch never gets baked in. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* ---- constants ---------------------------------------------------------------------------- */

advex_status onnx_const_alloc(onnx_const *c, int is_float, int ndim, const int64_t *dims,
                              int64_t limit, const char *what) {
    memset(c, 0, sizeof *c);
    if (ndim < 0 || ndim > ADVEX_MAX_DIMS)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s: rank %d (advex supports up to %d)", what, ndim,
                               ADVEX_MAX_DIMS);
    for (int d = 0; d < ndim; d++)
        if (dims[d] < 0) return advex_set_error(ADVEX_ERR_FORMAT, "%s: negative dimension %lld", what, (long long)dims[d]);
    int64_t n = advex_numel(ndim, dims);
    if (n < 0 || n > limit)
        return advex_set_error(ADVEX_ERR_LIMIT, "%s: too many elements (limit %lld)", what, (long long)limit);
    if (!advex_mem_fits(n * (int64_t)(is_float ? sizeof(float) : sizeof(onnx_sym)))) {
        char a[32], b[32];
        return advex_set_error(ADVEX_ERR_LIMIT, "memory limit: %s needs %s, over the limit of %s "
                               "(raise --max-memory / advex_set_memory_limit)", what,
                               advex_fmt_bytes(n * (int64_t)(is_float ? sizeof(float) : sizeof(onnx_sym)), a),
                               advex_fmt_bytes(advex_get_memory_limit(), b));
    }
    c->is_float = is_float;
    c->ndim = ndim;
    for (int d = 0; d < ndim; d++) c->dims[d] = dims[d];
    c->numel = n;
    if (is_float) c->f = calloc((size_t)(n ? n : 1), sizeof(float));
    else c->i = calloc((size_t)(n ? n : 1), sizeof(onnx_sym));
    if (!c->f && !c->i) return advex_set_error(ADVEX_ERR_NOMEM, "%s: cannot allocate %lld elements", what, (long long)n);
    return ADVEX_OK;
}

void onnx_const_free(onnx_const *c) {
    if (!c->borrowed) free(c->f);
    free(c->i);
    memset(c, 0, sizeof *c);
}

int onnx_const_float(const onnx_const *c, int64_t k, float *out) {
    if (c->is_float) { *out = c->f[k]; return 0; }
    if (c->i[k].n != 0) return -1;
    *out = (float)c->i[k].v;
    return 0;
}

int onnx_const_int(const onnx_const *c, int64_t k, int64_t *out) {
    if (c->is_float) {
        float f = c->f[k];
        if (!(f >= -9.2e18f && f <= 9.2e18f)) return -1;
        *out = (int64_t)f;
        return 0;
    }
    if (c->i[k].n != 0) return -1;
    *out = c->i[k].v;
    return 0;
}

static uint64_t le_bytes(const uint8_t *p, int n) {
    uint64_t x = 0;
    for (int b = n - 1; b >= 0; b--) x = (x << 8) | p[b];
    return x;
}

/* Element size in bytes and whether the type decodes to floats; 0 if unsupported. */
static int dtype_info(int dt, int *is_float) {
    *is_float = 0;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: *is_float = 1; return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: *is_float = 1; return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
    default: return 0;
    }
}

static int64_t decode_int(int dt, uint64_t raw) {
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return (int32_t)(uint32_t)raw;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return (int16_t)(uint16_t)raw;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return (int8_t)(uint8_t)raw;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return raw != 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return (int64_t)raw;
    default: return (int64_t)raw; /* unsigned types: already zero-extended */
    }
}

advex_status onnx_const_from_tensor(const Onnx__TensorProto *t, onnx_const *c, const char *what) {
    memset(c, 0, sizeof *c);
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s: external data files are not supported (save the "
                               "model with its weights inside)", what);
    if (t->segment) return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s: segmented tensors are not supported", what);
    int dt = t->has_data_type ? t->data_type : 0, is_float;
    int esize = dtype_info(dt, &is_float);
    if (!esize) return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s: tensor data type %d is not supported", what, dt);
    if (t->n_dims > ADVEX_MAX_DIMS)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s: rank %zu (advex supports up to %d)", what, t->n_dims,
                               ADVEX_MAX_DIMS);
    advex_status st = onnx_const_alloc(c, is_float, (int)t->n_dims, t->dims,
                                       is_float ? ADVEX_ONNX_MAX_NUMEL : ADVEX_ONNX_MAX_FOLD, what);
    if (st) return st;
    int64_t n = c->numel;
    if (t->has_raw_data) {
        if ((uint64_t)t->raw_data.len != (uint64_t)n * (uint64_t)esize) {
            onnx_const_free(c);
            return advex_set_error(ADVEX_ERR_FORMAT, "%s: raw data has %zu bytes, shape needs %lld", what,
                                   t->raw_data.len, (long long)n * esize);
        }
        const uint8_t *p = t->raw_data.data;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) { /* the file's little-endian floats as they are */
            if (n) memcpy(c->f, p, (size_t)n * sizeof(float));
            return ADVEX_OK;
        }
#endif
        for (int64_t k = 0; k < n; k++, p += esize) {
            uint64_t raw = le_bytes(p, esize);
            if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
                uint32_t u = (uint32_t)raw;
                memcpy(&c->f[k], &u, 4);
            } else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
                double d;
                memcpy(&d, &raw, 8);
                c->f[k] = (float)d;
            } else {
                c->i[k].v = decode_int(dt, raw);
            }
        }
        return ADVEX_OK;
    }
    size_t have;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: have = t->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: have = t->n_double_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: have = t->n_int64_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: have = t->n_uint64_data; break;
    default: have = t->n_int32_data; break;
    }
    if ((uint64_t)have != (uint64_t)n) {
        onnx_const_free(c);
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: has %zu values, shape needs %lld", what, have, (long long)n);
    }
    for (int64_t k = 0; k < n; k++) {
        switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: c->f[k] = t->float_data[k]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: c->f[k] = (float)t->double_data[k]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: c->i[k].v = t->int64_data[k]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: c->i[k].v = (int64_t)(uint32_t)t->uint64_data[k]; break;
        default: c->i[k].v = decode_int(dt, (uint64_t)(uint32_t)t->int32_data[k]); break;
        }
    }
    return ADVEX_OK;
}

/* ---- folding ------------------------------------------------------------------------------ */

static const char *const foldable_ops[] = {
    "Constant", "ConstantOfShape", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast",
    "Reshape", "Transpose", "Identity", "Dropout", "Add", "Sub", "Mul", "Div", "Neg", "Flatten",
};

int onnx_foldable(const char *op) {
    for (size_t i = 0; i < sizeof foldable_ops / sizeof *foldable_ops; i++)
        if (strcmp(op, foldable_ops[i]) == 0) return 1;
    return onnx_foldable_ext(op);
}

typedef onnx_fctx fctx;
#define ferr onnx_fold_err
#define alloc_out onnx_fold_alloc
#define read_ints onnx_fold_ints
#define copy_elem onnx_copy_elem
#define norm_axis onnx_norm_axis
#define strides_of onnx_strides
#define sym_add onnx_sym_add
#define sym_mul onnx_sym_mul
#define sym_div onnx_sym_div

advex_status onnx_fold_err(const fctx *f, advex_status s, const char *msg) {
    return advex_set_error(s, "%s: %s", f->label, msg);
}

void onnx_copy_elem(onnx_const *dst, int64_t k, const onnx_const *src, int64_t j) {
    if (dst->is_float) dst->f[k] = src->f[j];
    else dst->i[k] = src->i[j];
}

/* Every folded result is counted against the import's budget (ADVEX_ONNX_MAX_FOLD_BYTES). */
advex_status onnx_fold_alloc(const fctx *f, onnx_const *out, int is_float, int ndim, const int64_t *dims) {
    advex_status st = onnx_const_alloc(out, is_float, ndim, dims, ADVEX_ONNX_MAX_FOLD, f->label);
    if (st || !f->budget) return st;
    int64_t bytes = out->numel * (int64_t)(is_float ? sizeof(float) : sizeof(onnx_sym));
    if (bytes > *f->budget) {
        onnx_const_free(out);
        return advex_set_error(ADVEX_ERR_LIMIT, "%s: constants folded at load time would pass the budget (1 GiB, or "
                               "the memory limit when lower: raise --max-memory / advex_set_memory_limit)", f->label);
    }
    *f->budget -= bytes;
    return ADVEX_OK;
}

/* Plain integers of a 1-D (or scalar) constant into v[cap]. */
advex_status onnx_fold_ints(const fctx *f, const onnx_const *c, int64_t *v, int cap, int *n, const char *what) {
    char msg[160];
    if (!c) { snprintf(msg, sizeof msg, "%s is missing", what); return ferr(f, ADVEX_ERR_FORMAT, msg); }
    if (c->ndim > 1 || c->numel > cap) {
        snprintf(msg, sizeof msg, "%s must be a list of at most %d integers", what, cap);
        return ferr(f, ADVEX_ERR_UNSUPPORTED, msg);
    }
    for (int64_t k = 0; k < c->numel; k++)
        if (c->is_float || onnx_const_int(c, k, &v[k]) != 0) {
            snprintf(msg, sizeof msg, "%s must be integers known at load time", what);
            return ferr(f, ADVEX_ERR_UNSUPPORTED, msg);
        }
    *n = (int)c->numel;
    return ADVEX_OK;
}

/* Axes from the attribute (old opsets) or input 1 (opset >= 13 for (Un)Squeeze). */
static advex_status get_axes(const fctx *f, int opset, const onnx_const *const *in, int n_in, int64_t *axes,
                             int *n) {
    if (opset >= 13) {
        *n = -1;
        if (n_in > 1 && in[1]) return read_ints(f, in[1], axes, ADVEX_MAX_DIMS, n, "axes");
        return ADVEX_OK;
    }
    return onnx_attr_ints(f->nd, "axes", axes, ADVEX_MAX_DIMS, n);
}

int onnx_norm_axis(int64_t ax, int r, int64_t *out) {
    if (ax < -(int64_t)r || ax >= r) return 0;
    *out = ax < 0 ? ax + r : ax;
    return 1;
}

void onnx_strides(int ndim, const int64_t *dims, int64_t *st) {
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) { st[d] = s; s *= dims[d]; }
}

int onnx_sym_add(onnx_sym a, onnx_sym b, int neg, onnx_sym *o) {
    if (neg) {
        if (__builtin_sub_overflow(a.v, b.v, &o->v) || __builtin_sub_overflow(a.n, b.n, &o->n)) return 0;
    } else {
        if (__builtin_add_overflow(a.v, b.v, &o->v) || __builtin_add_overflow(a.n, b.n, &o->n)) return 0;
    }
    return 1;
}

int onnx_sym_mul(onnx_sym a, onnx_sym b, onnx_sym *o) {
    if (a.n != 0 && b.n != 0) return 0; /* N*N */
    if (a.n != 0) { onnx_sym t = a; a = b; b = t; }
    /* a plain */
    if (__builtin_mul_overflow(b.v, a.v, &o->v) || __builtin_mul_overflow(b.n, a.v, &o->n)) return 0;
    return 1;
}

int onnx_sym_div(onnx_sym a, onnx_sym b, onnx_sym *o) {
    if (b.n != 0 || b.v == 0 || (b.v == -1 && (a.v == INT64_MIN || a.n == INT64_MIN))) return 0;
    if (a.n != 0 && (a.v % b.v != 0 || a.n % b.v != 0)) return 0;
    o->v = a.v / b.v;
    o->n = a.n / b.v;
    return 1;
}

/* Add, Sub, Mul, Div (numpy broadcasting) and Neg. */
static advex_status fold_arith(const fctx *f, const char *op, const onnx_const *a, const onnx_const *b,
                               onnx_const *out) {
    if (!a || !b) return ferr(f, ADVEX_ERR_FORMAT, "needs two inputs");
    if (a->is_float != b->is_float) return ferr(f, ADVEX_ERR_FORMAT, "mixes float and integer inputs");
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t dims[ADVEX_MAX_DIMS], sa[ADVEX_MAX_DIMS], sb[ADVEX_MAX_DIMS], ta[ADVEX_MAX_DIMS], tb[ADVEX_MAX_DIMS];
    strides_of(a->ndim, a->dims, ta);
    strides_of(b->ndim, b->dims, tb);
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t x = da >= 0 ? a->dims[da] : 1, y = db >= 0 ? b->dims[db] : 1;
        if (x != y && x != 1 && y != 1) return ferr(f, ADVEX_ERR_SHAPE, "input shapes do not broadcast");
        dims[d] = x == 1 ? y : x;
        sa[d] = (da >= 0 && x != 1) ? ta[da] : 0;
        sb[d] = (db >= 0 && y != 1) ? tb[db] : 0;
    }
    advex_status st = alloc_out(f, out, a->is_float, nd, dims);
    if (st) return st;
    int ok = 1;
    for (int64_t k = 0; k < out->numel; k++) {
        int64_t rem = k, ia = 0, ib = 0;
        for (int d = nd - 1; d >= 0; d--) {
            int64_t i = rem % dims[d];
            rem /= dims[d];
            ia += i * sa[d];
            ib += i * sb[d];
        }
        if (a->is_float) {
            float x = a->f[ia], y = b->f[ib];
            out->f[k] = op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : op[0] == 'M' ? x * y : x / y;
        } else {
            onnx_sym x = a->i[ia], y = b->i[ib];
            ok = op[0] == 'A'   ? sym_add(x, y, 0, &out->i[k])
                 : op[0] == 'S' ? sym_add(x, y, 1, &out->i[k])
                 : op[0] == 'M' ? sym_mul(x, y, &out->i[k])
                                : sym_div(x, y, &out->i[k]);
            if (!ok) break;
        }
    }
    if (!ok) {
        onnx_const_free(out);
        return ferr(f, ADVEX_ERR_UNSUPPORTED, "integer arithmetic that overflows, divides by zero or "
                                              "cannot be expressed in the batch size");
    }
    return ADVEX_OK;
}

static advex_status fold_constant(const fctx *f, onnx_const *out) {
    const Onnx__NodeProto *nd = f->nd;
    const Onnx__AttributeProto *at;
    if ((at = onnx_attr(nd, "value")) && at->t) return onnx_const_from_tensor(at->t, out, f->label);
    if ((at = onnx_attr(nd, "value_float")) && at->has_f) {
        advex_status st = alloc_out(f, out, 1, 0, NULL);
        if (!st) out->f[0] = at->f;
        return st;
    }
    if ((at = onnx_attr(nd, "value_int")) && at->has_i) {
        advex_status st = alloc_out(f, out, 0, 0, NULL);
        if (!st) out->i[0].v = at->i;
        return st;
    }
    if ((at = onnx_attr(nd, "value_floats"))) {
        int64_t d = (int64_t)at->n_floats;
        advex_status st = alloc_out(f, out, 1, 1, &d);
        if (!st) for (int64_t k = 0; k < d; k++) out->f[k] = at->floats[k];
        return st;
    }
    if ((at = onnx_attr(nd, "value_ints"))) {
        int64_t d = (int64_t)at->n_ints;
        advex_status st = alloc_out(f, out, 0, 1, &d);
        if (!st) for (int64_t k = 0; k < d; k++) out->i[k].v = at->ints[k];
        return st;
    }
    return ferr(f, ADVEX_ERR_UNSUPPORTED, "only tensor, float(s) and int(s) values are supported");
}

static advex_status fold_gather(const fctx *f, const onnx_const *data, const onnx_const *idx, onnx_const *out) {
    if (!data || !idx) return ferr(f, ADVEX_ERR_FORMAT, "needs data and indices");
    if (idx->is_float) return ferr(f, ADVEX_ERR_FORMAT, "indices must be integers");
    int64_t axis, ax;
    advex_status st = onnx_attr_int(f->nd, "axis", 0, &axis);
    if (st) return st;
    int r = data->ndim;
    if (r < 1 || !norm_axis(axis, r, &ax)) return ferr(f, ADVEX_ERR_FORMAT, "axis out of range");
    int ond = r - 1 + idx->ndim;
    if (ond > ADVEX_MAX_DIMS) return ferr(f, ADVEX_ERR_UNSUPPORTED, "result rank too large");
    int64_t dims[ADVEX_MAX_DIMS], outer = 1, inner = 1, dax = data->dims[ax];
    int k = 0;
    for (int d = 0; d < ax; d++) { dims[k++] = data->dims[d]; outer *= data->dims[d]; }
    for (int d = 0; d < idx->ndim; d++) dims[k++] = idx->dims[d];
    for (int d = (int)ax + 1; d < r; d++) { dims[k++] = data->dims[d]; inner *= data->dims[d]; }
    if ((st = alloc_out(f, out, data->is_float, ond, dims))) return st;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < idx->numel; j++) {
            int64_t id;
            if (onnx_const_int(idx, j, &id) != 0 || id < -dax || id >= dax) {
                onnx_const_free(out);
                return ferr(f, ADVEX_ERR_FORMAT, "index out of range");
            }
            if (id < 0) id += dax;
            for (int64_t q = 0; q < inner; q++)
                copy_elem(out, (o * idx->numel + j) * inner + q, data, (o * dax + id) * inner + q);
        }
    return ADVEX_OK;
}

static advex_status copy_reshaped(const fctx *f, const onnx_const *src, int ndim, const int64_t *dims,
                                  onnx_const *out) {
    advex_status st = alloc_out(f, out, src->is_float, ndim, dims);
    if (st) return st;
    if (out->numel != src->numel) {
        onnx_const_free(out);
        return ferr(f, ADVEX_ERR_SHAPE, "element count changes");
    }
    for (int64_t k = 0; k < src->numel; k++) copy_elem(out, k, src, k);
    return ADVEX_OK;
}

static advex_status fold_unsqueeze(const fctx *f, int opset, const onnx_const *const *in, int n_in, int squeeze,
                                   onnx_const *out) {
    const onnx_const *x = in[0];
    int64_t axes[ADVEX_MAX_DIMS], dims[ADVEX_MAX_DIMS];
    int n, r = x->ndim;
    advex_status st = get_axes(f, opset, in, n_in, axes, &n);
    if (st) return st;
    if (squeeze) {
        int keep[ADVEX_MAX_DIMS], k = 0;
        for (int d = 0; d < r; d++) keep[d] = n < 0 ? x->dims[d] != 1 : 1;
        for (int j = 0; j < n; j++) {
            int64_t ax;
            if (!norm_axis(axes[j], r, &ax) || x->dims[ax] != 1) return ferr(f, ADVEX_ERR_SHAPE, "bad squeeze axis");
            keep[ax] = 0;
        }
        for (int d = 0; d < r; d++) if (keep[d]) dims[k++] = x->dims[d];
        return copy_reshaped(f, x, k, dims, out);
    }
    if (n < 0) return ferr(f, ADVEX_ERR_FORMAT, "axes are missing");
    int orank = r + n;
    if (orank > ADVEX_MAX_DIMS) return ferr(f, ADVEX_ERR_UNSUPPORTED, "result rank too large");
    int mark[ADVEX_MAX_DIMS] = {0};
    for (int j = 0; j < n; j++) {
        int64_t ax;
        if (!norm_axis(axes[j], orank, &ax) || mark[ax]) return ferr(f, ADVEX_ERR_FORMAT, "bad unsqueeze axes");
        mark[ax] = 1;
    }
    for (int d = 0, k = 0; d < orank; d++) dims[d] = mark[d] ? 1 : x->dims[k++];
    return copy_reshaped(f, x, orank, dims, out);
}

static advex_status fold_concat(const fctx *f, const onnx_const *const *in, int n_in, onnx_const *out) {
    int64_t axis, ax;
    advex_status st = onnx_attr_int(f->nd, "axis", INT64_MIN, &axis);
    if (st) return st;
    const onnx_const *first = NULL;
    for (int k = 0; k < n_in; k++) if (in[k]) { first = in[k]; break; }
    if (!first) return ferr(f, ADVEX_ERR_FORMAT, "no inputs");
    int r = first->ndim;
    if (r < 1 || !norm_axis(axis, r, &ax)) return ferr(f, ADVEX_ERR_FORMAT, "axis missing or out of range");
    int64_t dims[ADVEX_MAX_DIMS], outer = 1, inner = 1;
    for (int d = 0; d < r; d++) dims[d] = first->dims[d];
    dims[ax] = 0;
    for (int k = 0; k < n_in; k++) {
        const onnx_const *c = in[k];
        if (!c) continue;
        if (c->is_float != first->is_float || c->ndim != r) return ferr(f, ADVEX_ERR_FORMAT, "inputs differ in type or rank");
        for (int d = 0; d < r; d++)
            if (d != ax && c->dims[d] != first->dims[d]) return ferr(f, ADVEX_ERR_SHAPE, "input shapes differ");
        if (!advex_add_i64(dims[ax], c->dims[ax], &dims[ax])) return ferr(f, ADVEX_ERR_LIMIT, "too large");
    }
    for (int d = 0; d < ax; d++) outer *= dims[d];
    for (int d = (int)ax + 1; d < r; d++) inner *= dims[d];
    if ((st = alloc_out(f, out, first->is_float, r, dims))) return st;
    int64_t pos = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < n_in; k++) {
            if (!in[k]) continue;
            int64_t chunk = in[k]->dims[ax] * inner;
            for (int64_t q = 0; q < chunk; q++) copy_elem(out, pos++, in[k], o * chunk + q);
        }
    return ADVEX_OK;
}

static advex_status fold_slice(const fctx *f, int opset, const onnx_const *const *in, int n_in, onnx_const *out) {
    const onnx_const *x = in[0];
    int r = x->ndim, ns, ne, na = -1, nst = -1;
    int64_t starts[ADVEX_MAX_DIMS], ends[ADVEX_MAX_DIMS], axes[ADVEX_MAX_DIMS], steps[ADVEX_MAX_DIMS];
    advex_status st;
    if (opset < 10) {
        if ((st = onnx_attr_ints(f->nd, "starts", starts, ADVEX_MAX_DIMS, &ns)) ||
            (st = onnx_attr_ints(f->nd, "ends", ends, ADVEX_MAX_DIMS, &ne)) ||
            (st = onnx_attr_ints(f->nd, "axes", axes, ADVEX_MAX_DIMS, &na)))
            return st;
    } else {
        if ((st = read_ints(f, n_in > 1 ? in[1] : NULL, starts, ADVEX_MAX_DIMS, &ns, "starts")) ||
            (st = read_ints(f, n_in > 2 ? in[2] : NULL, ends, ADVEX_MAX_DIMS, &ne, "ends")))
            return st;
        if (n_in > 3 && in[3] && (st = read_ints(f, in[3], axes, ADVEX_MAX_DIMS, &na, "axes"))) return st;
        if (n_in > 4 && in[4] && (st = read_ints(f, in[4], steps, ADVEX_MAX_DIMS, &nst, "steps"))) return st;
    }
    if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns) || ns > r)
        return ferr(f, ADVEX_ERR_FORMAT, "starts, ends, axes and steps differ in length");
    int64_t b[ADVEX_MAX_DIMS], s[ADVEX_MAX_DIMS], dims[ADVEX_MAX_DIMS], xs[ADVEX_MAX_DIMS];
    int seen[ADVEX_MAX_DIMS] = {0};
    for (int d = 0; d < r; d++) { b[d] = 0; s[d] = 1; dims[d] = x->dims[d]; }
    for (int j = 0; j < ns; j++) {
        int64_t ax, step = nst >= 0 ? steps[j] : 1, dim, lo, hi;
        if (!norm_axis(na >= 0 ? axes[j] : j, r, &ax) || seen[ax] || step == 0)
            return ferr(f, ADVEX_ERR_FORMAT, "bad axes or zero step");
        seen[ax] = 1;
        dim = x->dims[ax];
        int64_t st0 = starts[j], en = ends[j];
        if (st0 < 0) st0 += dim;
        if (en < 0) en += dim;
        if (step > 0) {
            lo = 0;
            hi = dim;
        } else {
            lo = -1;
            hi = dim - 1;
        }
        st0 = st0 < lo ? lo : st0 > hi ? hi : st0;
        en = en < lo ? lo : en > hi ? hi : en;
        int64_t cnt;
        if (step > 0) cnt = en > st0 ? 1 + (en - st0 - 1) / step : 0;
        else cnt = st0 > en ? 1 + (st0 - en - 1) / (step == INT64_MIN ? INT64_MAX : -step) : 0;
        b[ax] = st0;
        s[ax] = step;
        dims[ax] = cnt;
    }
    if ((st = alloc_out(f, out, x->is_float, r, dims))) return st;
    strides_of(r, x->dims, xs);
    for (int64_t k = 0; k < out->numel; k++) {
        int64_t rem = k, off = 0;
        for (int d = r - 1; d >= 0; d--) {
            int64_t i = rem % dims[d];
            rem /= dims[d];
            off += (b[d] + i * s[d]) * xs[d];
        }
        copy_elem(out, k, x, off);
    }
    return ADVEX_OK;
}

static advex_status fold_cast(const fctx *f, const onnx_const *x, onnx_const *out) {
    int64_t to;
    int to_float;
    advex_status st = onnx_attr_int(f->nd, "to", 0, &to);
    if (st) return st;
    if (to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 || to == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16) to_float = 1;
    else if (!dtype_info((int)to, &to_float)) return ferr(f, ADVEX_ERR_UNSUPPORTED, "unsupported target type");
    if ((st = alloc_out(f, out, to_float, x->ndim, x->dims))) return st;
    for (int64_t k = 0; k < x->numel; k++) {
        if (to_float) {
            if (onnx_const_float(x, k, &out->f[k]) != 0) {
                onnx_const_free(out);
                return ferr(f, ADVEX_ERR_UNSUPPORTED, "cannot convert a batch-size dependent integer to float");
            }
        } else if (x->is_float) {
            if (onnx_const_int(x, k, &out->i[k].v) != 0) {
                onnx_const_free(out);
                return ferr(f, ADVEX_ERR_NUMERIC, "float out of integer range");
            }
            if (to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL) out->i[k].v = x->f[k] != 0.0f;
        } else {
            out->i[k] = x->i[k];
            if (to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL && x->i[k].n == 0) out->i[k].v = x->i[k].v != 0;
        }
    }
    return ADVEX_OK;
}

static advex_status fold_reshape(const fctx *f, const onnx_const *x, const onnx_const *shp, onnx_const *out) {
    int64_t t[ADVEX_MAX_DIMS], known = 1;
    int n, infer = -1;
    int64_t allowzero;
    advex_status st = read_ints(f, shp, t, ADVEX_MAX_DIMS, &n, "shape");
    if (st || (st = onnx_attr_int(f->nd, "allowzero", 0, &allowzero))) return st;
    for (int d = 0; d < n; d++) {
        if (t[d] == 0 && !allowzero) {
            if (d >= x->ndim) return ferr(f, ADVEX_ERR_SHAPE, "0 in shape beyond the input's rank");
            t[d] = x->dims[d];
        }
        if (t[d] == -1) {
            if (infer >= 0) return ferr(f, ADVEX_ERR_SHAPE, "more than one -1 in shape");
            infer = d;
        } else if (t[d] < 0 || !advex_mul_i64(known, t[d], &known)) {
            return ferr(f, ADVEX_ERR_SHAPE, "bad target shape");
        }
    }
    if (infer >= 0) {
        if (known == 0 || x->numel % known) return ferr(f, ADVEX_ERR_SHAPE, "cannot infer -1");
        t[infer] = x->numel / known;
    }
    return copy_reshaped(f, x, n, t, out);
}

static advex_status fold_transpose(const fctx *f, const onnx_const *x, onnx_const *out) {
    int64_t perm[ADVEX_MAX_DIMS], dims[ADVEX_MAX_DIMS], xs[ADVEX_MAX_DIMS], ps[ADVEX_MAX_DIMS];
    int n, r = x->ndim, seen[ADVEX_MAX_DIMS] = {0};
    advex_status st = onnx_attr_ints(f->nd, "perm", perm, ADVEX_MAX_DIMS, &n);
    if (st) return st;
    if (n < 0) { n = r; for (int d = 0; d < r; d++) perm[d] = r - 1 - d; }
    if (n != r) return ferr(f, ADVEX_ERR_FORMAT, "perm does not match the rank");
    for (int d = 0; d < r; d++) {
        if (perm[d] < 0 || perm[d] >= r || seen[perm[d]]) return ferr(f, ADVEX_ERR_FORMAT, "perm is not a permutation");
        seen[perm[d]] = 1;
        dims[d] = x->dims[perm[d]];
    }
    strides_of(r, x->dims, xs);
    for (int d = 0; d < r; d++) ps[d] = xs[perm[d]];
    if ((st = alloc_out(f, out, x->is_float, r, dims))) return st;
    for (int64_t k = 0; k < out->numel; k++) {
        int64_t rem = k, off = 0;
        for (int d = r - 1; d >= 0; d--) {
            off += (rem % dims[d]) * ps[d];
            rem /= dims[d];
        }
        copy_elem(out, k, x, off);
    }
    return ADVEX_OK;
}

static advex_status fold_const_of_shape(const fctx *f, const onnx_const *shp, onnx_const *out) {
    int64_t dims[ADVEX_MAX_DIMS];
    int n;
    if (onnx_const_batch_dependent(shp)) return ONNX_FOLD_RUNTIME; /* (N, ...): built as an Expand */
    advex_status st = read_ints(f, shp, dims, ADVEX_MAX_DIMS, &n, "shape");
    if (st) return st;
    onnx_const val = {0};
    const Onnx__AttributeProto *at = onnx_attr(f->nd, "value");
    if (at && at->t) {
        if ((st = onnx_const_from_tensor(at->t, &val, f->label))) return st;
        if (val.numel != 1) { onnx_const_free(&val); return ferr(f, ADVEX_ERR_FORMAT, "value must have one element"); }
    } else if ((st = alloc_out(f, &val, 1, 0, NULL))) {
        return st;
    }
    if (!(st = alloc_out(f, out, val.is_float, n, dims)))
        for (int64_t k = 0; k < out->numel; k++) copy_elem(out, k, &val, 0);
    onnx_const_free(&val);
    return st;
}

static advex_status fold_shape(const fctx *f, const onnx_const *x, const onnx_sym *shape, int r, onnx_const *out) {
    onnx_sym s[ADVEX_MAX_DIMS];
    if (x) {
        r = x->ndim;
        for (int d = 0; d < r; d++) { s[d].v = x->dims[d]; s[d].n = 0; }
    } else {
        if (!shape) return ferr(f, ADVEX_ERR_INTERNAL, "input shape unknown");
        for (int d = 0; d < r; d++) s[d] = shape[d];
    }
    int64_t b, e;
    advex_status st;
    if ((st = onnx_attr_int(f->nd, "start", 0, &b)) || (st = onnx_attr_int(f->nd, "end", r, &e))) return st;
    if (b < 0) b += r;
    if (e < 0) e += r;
    b = b < 0 ? 0 : b > r ? r : b;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t n = e > b ? e - b : 0;
    if ((st = alloc_out(f, out, 0, 1, &n))) return st;
    for (int64_t k = 0; k < n; k++) out->i[k] = s[b + k];
    return ADVEX_OK;
}

static advex_status fold_flatten(const fctx *f, const onnx_const *x, onnx_const *out) {
    int64_t axis, ax, dims[2] = {1, 1};
    advex_status st = onnx_attr_int(f->nd, "axis", 1, &axis);
    if (st) return st;
    if (axis == x->ndim) ax = axis;
    else if (!norm_axis(axis, x->ndim, &ax)) return ferr(f, ADVEX_ERR_FORMAT, "axis out of range");
    for (int d = 0; d < x->ndim; d++) dims[d < ax ? 0 : 1] *= x->dims[d];
    return copy_reshaped(f, x, 2, dims, out);
}

advex_status onnx_fold(const Onnx__NodeProto *nd, int opset, const onnx_const *const *in, int n_in,
                       const onnx_sym *shape, int shape_ndim, int64_t *budget, onnx_const *out) {
    fctx f;
    char lb[128];
    const char *op = nd->op_type;
    f.nd = nd;
    f.budget = budget;
    f.opset = opset;
    snprintf(f.label, sizeof f.label, "node '%s' (%s)", onnx_node_label(nd, lb, sizeof lb), op);
    memset(out, 0, sizeof *out);
    if (strcmp(op, "Constant") == 0) return fold_constant(&f, out);
    if (strcmp(op, "Shape") == 0) return fold_shape(&f, n_in > 0 ? in[0] : NULL, shape, shape_ndim, out);
    if (n_in < 1 || !in[0]) return ferr(&f, ADVEX_ERR_FORMAT, "first input is missing");
    const onnx_const *x = in[0], *y = n_in > 1 ? in[1] : NULL;
    if (strcmp(op, "ConstantOfShape") == 0) return fold_const_of_shape(&f, x, out);
    if (strcmp(op, "Gather") == 0) return fold_gather(&f, x, y, out);
    if (strcmp(op, "Unsqueeze") == 0) return fold_unsqueeze(&f, opset, in, n_in, 0, out);
    if (strcmp(op, "Squeeze") == 0) return fold_unsqueeze(&f, opset, in, n_in, 1, out);
    if (strcmp(op, "Concat") == 0) return fold_concat(&f, in, n_in, out);
    if (strcmp(op, "Slice") == 0) return fold_slice(&f, opset, in, n_in, out);
    if (strcmp(op, "Cast") == 0) return fold_cast(&f, x, out);
    if (strcmp(op, "Reshape") == 0) return fold_reshape(&f, x, y, out);
    if (strcmp(op, "Transpose") == 0) return fold_transpose(&f, x, out);
    if (strcmp(op, "Flatten") == 0) return fold_flatten(&f, x, out);
    if (strcmp(op, "Identity") == 0 || strcmp(op, "Dropout") == 0) return copy_reshaped(&f, x, x->ndim, x->dims, out);
    if (strcmp(op, "Neg") == 0) {
        onnx_const zero;
        advex_status st = alloc_out(&f, &zero, x->is_float, 0, NULL);
        if (st) return st;
        st = fold_arith(&f, "Sub", &zero, x, out);
        onnx_const_free(&zero);
        return st;
    }
    if (strcmp(op, "Add") == 0 || strcmp(op, "Sub") == 0 || strcmp(op, "Mul") == 0 || strcmp(op, "Div") == 0)
        return fold_arith(&f, op, x, y, out);
    return onnx_fold_ext(&f, in, n_in, shape, shape_ndim, out);
}
