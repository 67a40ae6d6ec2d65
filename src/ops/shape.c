/* Shape ops: Flatten, Reshape (copies), Transpose (any rank), Concat (any number of
 * inputs, one axis) and constant Pad (ONNX pads begin...end, negative pads crop).
 * Backward adds the gradient back through the same index map (or stores it, for an input
 * in gradient write mode: advex_value.grad_write). */
#include <math.h>
#include <string.h>

#include "ops/kernels.h"

static void copy_forward(const advex_node *nd, advex_value *v) {
    float *y = v[nd->out[0]].data;
    const float *x = v[nd->in[0]].data;
    if (y != x) memcpy(y, x, (size_t)advex_val_numel(&v[nd->in[0]]) * sizeof(float));
}

static void copy_backward(const advex_node *nd, advex_value *v) {
    float *dx = v[nd->in[0]].grad;
    if (!dx || nd->alias_grad) return; /* (aliased: dx is dy) */
    const float *dy = v[nd->out[0]].grad;
    int64_t n = advex_val_numel(&v[nd->in[0]]);
    if (v[nd->in[0]].grad_write) {
        memcpy(dx, dy, (size_t)n * sizeof(float));
        return;
    }
#pragma omp parallel for schedule(static) if (n >= ADVEX_OMP_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
}

/* ---- Flatten: (d0..d_{a-1}, d_a..) -> (prod d[:a], prod d[a:]) --------------------------- */
advex_status advex_flatten_infer(const advex_node *nd, advex_value *v) {
    const advex_value *X = &v[nd->in[0]];
    int ax = advex_norm_axis(nd->a.axis, X->ndim, 1);
    if (ax < 0)
        return advex_set_error(ADVEX_ERR_SHAPE, "Flatten %s: axis %lld out of range for rank %d", nd->name,
                               (long long)nd->a.axis, X->ndim);
    int64_t dims[2] = {advex_numel(ax, X->dims), advex_numel(X->ndim - ax, X->dims + ax)};
    advex_set_shape(&v[nd->out[0]], 2, dims);
    return ADVEX_OK;
}
void advex_flatten_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) { copy_forward(nd, v); }
void advex_flatten_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) { copy_backward(nd, v); }

/* ---- Reshape: target shape in ints (0 = copy the input dim, -1 = infer) --------------------- */
advex_status advex_reshape_infer(const advex_node *nd, advex_value *v) {
    const advex_value *X = &v[nd->in[0]];
    char bx[96], bt[96];
    int n = nd->a.n_ints, infer_at = -1;
    int64_t dims[ADVEX_MAX_DIMS], known = 1, total = advex_val_numel(X), target[ADVEX_MAX_DIMS];
    const advex_value *S = nd->n_in > 1 && nd->in[1] >= 0 ? &v[nd->in[1]] : NULL;
    if (n == 0 && S && S->data) { /* shape given as a constant input (values stored as floats) */
        int64_t k = advex_val_numel(S);
        if (S->ndim != 1 || k > ADVEX_MAX_DIMS)
            return advex_set_error(ADVEX_ERR_SHAPE, "Reshape %s: shape input must be 1-D with at most %d entries",
                                   nd->name, ADVEX_MAX_DIMS);
        n = (int)k;
        for (int i = 0; i < n; i++) target[i] = (int64_t)lrintf(S->data[i]);
    } else {
        if (n < 0 || n > ADVEX_MAX_DIMS)
            return advex_set_error(ADVEX_ERR_SHAPE, "Reshape %s: target rank %d unsupported", nd->name, n);
        for (int i = 0; i < n; i++) target[i] = nd->a.ints[i];
    }
    for (int i = 0; i < n; i++) {
        int64_t t = target[i];
        if (t == 0) {
            if (i >= X->ndim) goto bad;
            t = X->dims[i];
        } else if (t == -1) {
            if (infer_at >= 0) goto bad;
            infer_at = i;
            t = 1;
        } else if (t < 0) {
            goto bad;
        }
        dims[i] = t;
        if (!advex_mul_i64(known, t, &known)) goto bad;
    }
    if (infer_at >= 0) {
        if (known == 0 || total % known != 0) goto bad;
        dims[infer_at] = total / known;
    } else if (known != total) {
        goto bad;
    }
    advex_set_shape(&v[nd->out[0]], n, dims);
    return ADVEX_OK;
bad:
    return advex_set_error(ADVEX_ERR_SHAPE, "Reshape %s: cannot reshape %s to %s", nd->name,
                           advex_shape_str(bx, sizeof bx, X->ndim, X->dims), advex_shape_str(bt, sizeof bt, n, target));
}
void advex_reshape_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) { copy_forward(nd, v); }
void advex_reshape_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) { copy_backward(nd, v); }

/* ---- Transpose: y[i_0..i_{r-1}] = x[j] with j[perm[d]] = i_d (empty perm = reverse) -------- */
static void transpose_perm(const advex_node *nd, int r, int *perm) {
    for (int d = 0; d < r; d++) perm[d] = nd->a.n_ints ? (int)nd->a.ints[d] : r - 1 - d;
}

advex_status advex_transpose_infer(const advex_node *nd, advex_value *v) {
    const advex_value *X = &v[nd->in[0]];
    int r = X->ndim, perm[ADVEX_MAX_DIMS], seen[ADVEX_MAX_DIMS] = {0};
    int64_t dims[ADVEX_MAX_DIMS];
    if (nd->a.n_ints != 0 && nd->a.n_ints != r)
        return advex_set_error(ADVEX_ERR_SHAPE, "Transpose %s: perm has %d entries for rank %d", nd->name,
                               nd->a.n_ints, r);
    for (int d = 0; d < r; d++)
        if (nd->a.n_ints && (nd->a.ints[d] < 0 || nd->a.ints[d] >= r || seen[nd->a.ints[d]]++))
            return advex_set_error(ADVEX_ERR_SHAPE, "Transpose %s: perm is not a permutation of 0..%d", nd->name, r - 1);
    transpose_perm(nd, r, perm);
    for (int d = 0; d < r; d++) dims[d] = X->dims[perm[d]];
    advex_set_shape(&v[nd->out[0]], r, dims);
    return ADVEX_OK;
}

/* For every output element i (in order), calls out[i] <-> in[src] via the mode: backward 0
 * copies forward, 1 adds the gradient back, 2 stores it (gradient write mode: a permutation
 * gives every input element exactly one). */
static void transpose_run(const advex_node *nd, const advex_value *X, const advex_value *Y, float *x,
                          float *y, int backward) {
    int r = X->ndim, perm[ADVEX_MAX_DIMS];
    int64_t istr[ADVEX_MAX_DIMS], ostr[ADVEX_MAX_DIMS], idx[ADVEX_MAX_DIMS] = {0};
    transpose_perm(nd, r, perm);
    int64_t s = 1;
    for (int d = r - 1; d >= 0; d--) { istr[d] = s; s *= X->dims[d]; }
    for (int d = 0; d < r; d++) ostr[d] = istr[perm[d]]; /* input stride of output dim d */
    int64_t n = advex_val_numel(Y);
    if (n <= 0) return;
    if (r == 0) { if (backward == 1) x[0] += y[0]; else if (backward) x[0] = y[0]; else y[0] = x[0]; return; }
    int64_t last = Y->dims[r - 1], ls = ostr[r - 1];
    for (int64_t i = 0; i < n; i += last) {
        int64_t off = 0;
        for (int d = 0; d < r - 1; d++) off += idx[d] * ostr[d];
        if (backward == 1) for (int64_t j = 0; j < last; j++) x[off + j * ls] += y[i + j];
        else if (backward) for (int64_t j = 0; j < last; j++) x[off + j * ls] = y[i + j];
        else for (int64_t j = 0; j < last; j++) y[i + j] = x[off + j * ls];
        for (int d = r - 2; d >= 0; d--) { /* odometer over all but the last dim */
            if (++idx[d] < Y->dims[d]) break;
            idx[d] = 0;
        }
    }
}

void advex_transpose_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    transpose_run(nd, &v[nd->in[0]], &v[nd->out[0]], v[nd->in[0]].data, v[nd->out[0]].data, 0);
}
void advex_transpose_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    if (!v[nd->in[0]].grad) return;
    transpose_run(nd, &v[nd->in[0]], &v[nd->out[0]], v[nd->in[0]].grad, v[nd->out[0]].grad,
                  v[nd->in[0]].grad_write ? 2 : 1);
}

/* ---- Concat: y = [x_0, x_1, ...] along axis ---------------------------------------------- */
advex_status advex_concat_infer(const advex_node *nd, advex_value *v) {
    char b0[96], bi[96];
    if (nd->n_in < 1 || nd->in[0] < 0) return advex_set_error(ADVEX_ERR_SHAPE, "Concat %s: no inputs", nd->name);
    const advex_value *X0 = &v[nd->in[0]];
    int ax = advex_norm_axis(nd->a.axis, X0->ndim, 0);
    if (ax < 0)
        return advex_set_error(ADVEX_ERR_SHAPE, "Concat %s: axis %lld out of range for rank %d", nd->name,
                               (long long)nd->a.axis, X0->ndim);
    int64_t dims[ADVEX_MAX_DIMS];
    for (int d = 0; d < X0->ndim; d++) dims[d] = X0->dims[d];
    dims[ax] = 0;
    for (int i = 0; i < nd->n_in; i++) {
        if (nd->in[i] < 0) return advex_set_error(ADVEX_ERR_SHAPE, "Concat %s: input %d absent", nd->name, i);
        const advex_value *Xi = &v[nd->in[i]];
        int ok = Xi->ndim == X0->ndim;
        for (int d = 0; ok && d < X0->ndim; d++) ok = d == ax || Xi->dims[d] == X0->dims[d];
        if (!ok)
            return advex_set_error(ADVEX_ERR_SHAPE, "Concat %s: input %d %s does not match input 0 %s on axis %d",
                                   nd->name, i, advex_shape_str(bi, sizeof bi, Xi->ndim, Xi->dims),
                                   advex_shape_str(b0, sizeof b0, X0->ndim, X0->dims), ax);
        dims[ax] += Xi->dims[ax];
    }
    advex_set_shape(&v[nd->out[0]], X0->ndim, dims);
    return ADVEX_OK;
}

static void concat_run(const advex_node *nd, advex_value *v, int backward) {
    const advex_value *Y = &v[nd->out[0]];
    int ax = advex_norm_axis(nd->a.axis, Y->ndim, 0);
    int64_t outer = advex_numel(ax, Y->dims), inner = advex_numel(Y->ndim - ax - 1, Y->dims + ax + 1);
    int64_t yrow = Y->dims[ax] * inner, at = 0;
    for (int i = 0; i < nd->n_in; i++) {
        advex_value *X = &v[nd->in[i]];
        int64_t xrow = X->dims[ax] * inner;
        if (backward && X->grad) {
            for (int64_t o = 0; o < outer; o++) {
                float *dx = X->grad + o * xrow;
                const float *dy = Y->grad + o * yrow + at;
                if (X->grad_write) memcpy(dx, dy, (size_t)xrow * sizeof(float));
                else for (int64_t j = 0; j < xrow; j++) dx[j] += dy[j];
            }
        } else if (!backward) {
            for (int64_t o = 0; o < outer; o++)
                memcpy(Y->data + o * yrow + at, X->data + o * xrow, (size_t)xrow * sizeof(float));
        }
        at += xrow;
    }
}
void advex_concat_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) { concat_run(nd, v, 0); }
void advex_concat_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) { concat_run(nd, v, 1); }

/* ---- Pad (constant): y[i + begin] = x[i], elsewhere pad_value ------------------------------- */
#define ADVEX_PAD_MAX ((int64_t)1 << 40) /* |pad| bound: dims (< 2^62) + two pads never overflow */
advex_status advex_pad_infer(const advex_node *nd, advex_value *v) {
    const advex_value *X = &v[nd->in[0]];
    char bx[96];
    int r = X->ndim;
    int64_t dims[ADVEX_MAX_DIMS];
    if (nd->a.n_ints != 2 * r)
        return advex_set_error(ADVEX_ERR_SHAPE, "Pad %s: %d pads for input %s (need %d)", nd->name, nd->a.n_ints,
                               advex_shape_str(bx, sizeof bx, X->ndim, X->dims), 2 * r);
    for (int d = 0; d < r; d++) {
        /* pads come from files: add with overflow checks (signed overflow is UB) */
        int64_t b = nd->a.ints[d], e = nd->a.ints[d + r];
        if (b < -ADVEX_PAD_MAX || b > ADVEX_PAD_MAX || e < -ADVEX_PAD_MAX || e > ADVEX_PAD_MAX)
            return advex_set_error(ADVEX_ERR_SHAPE, "Pad %s: pad of dim %d beyond +-2^40", nd->name, d);
        dims[d] = X->dims[d] + b + e;
        if (dims[d] < 0)
            return advex_set_error(ADVEX_ERR_SHAPE, "Pad %s: pads crop dim %d of %s below zero", nd->name, d,
                                   advex_shape_str(bx, sizeof bx, X->ndim, X->dims));
    }
    advex_set_shape(&v[nd->out[0]], r, dims);
    return ADVEX_OK;
}

/* Walk the input by rows of its last dim; copy (or add back) the part landing in y. */
static void pad_run(const advex_node *nd, advex_value *v, int backward) {
    advex_value *X = &v[nd->in[0]], *Y = &v[nd->out[0]];
    int r = X->ndim;
    const int64_t *b = nd->a.ints;
    int64_t n = advex_val_numel(X);
    if (backward && X->grad_write && r > 0) /* negative pads crop: not every x gets a gradient */
        memset(X->grad, 0, (size_t)(n > 0 ? n : 0) * sizeof(float));
    if (r == 0 || n <= 0) {
        if (r == 0 && !backward) Y->data[0] = X->data[0];
        if (r == 0 && backward && X->grad) X->grad[0] = (X->grad_write ? 0.0f : X->grad[0]) + Y->grad[0];
        return;
    }
    int64_t last = X->dims[r - 1], olast = Y->dims[r - 1];
    int64_t j0 = -b[r - 1] > 0 ? -b[r - 1] : 0, j1 = olast - b[r - 1] < last ? olast - b[r - 1] : last;
    for (int64_t row = 0; row < n / last; row++) {
        int64_t rem = row, orow = 0, ostride = 1, inside = 1;
        for (int d = r - 2; d >= 0; d--) {
            int64_t i = rem % X->dims[d], o = i + b[d];
            rem /= X->dims[d];
            if (o < 0 || o >= Y->dims[d]) { inside = 0; break; }
            orow += o * ostride;
            ostride *= Y->dims[d];
        }
        if (!inside || j1 <= j0) continue;
        int64_t yo = orow * olast + b[r - 1], xo = row * last;
        if (backward) for (int64_t j = j0; j < j1; j++) X->grad[xo + j] += Y->grad[yo + j];
        else memcpy(Y->data + yo + j0, X->data + xo + j0, (size_t)(j1 - j0) * sizeof(float));
    }
}

void advex_pad_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    advex_value *Y = &v[nd->out[0]];
    int64_t n = advex_val_numel(Y);
    for (int64_t i = 0; i < n; i++) Y->data[i] = nd->a.pad_value;
    pad_run(nd, v, 0);
}
void advex_pad_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    if (v[nd->in[0]].grad) pad_run(nd, v, 1);
}
