/* Pointwise activations: Relu, LeakyRelu, Sigmoid, Tanh, Clip, Identity. Forward and
 * backward are flat loops over all elements (OpenMP when large); backward accumulates, or
 * stores when the input is in gradient write mode (advex_value.grad_write). The forward and
 * backward passes are compiled per ISA variant (dispatch.h): on AVX-512 and AVX2 the
 * selects vectorise 16 or 8 wide; shape inference is compiled once. */
#include <math.h>
#include <string.h>

#include "ops/dispatch.h"

/* Bounds from the attrs (opset < 11) or, when present, the scalar inputs 1 and 2 (opset 11+). */
static void clip_bounds(const advex_node *nd, const advex_value *v, float *lo, float *hi) {
    *lo = nd->a.min;
    *hi = nd->a.max;
    if (nd->n_in > 1 && nd->in[1] >= 0 && v[nd->in[1]].data) *lo = v[nd->in[1]].data[0];
    if (nd->n_in > 2 && nd->in[2] >= 0 && v[nd->in[2]].data) *hi = v[nd->in[2]].data[0];
}

/* ---- shape inference: compiled once (dispatch.h) --------------------------------------- */
#if ADVEX_ISA_BASE
static advex_status unary_infer(const advex_node *nd, advex_value *v) {
    const advex_value *X = &v[nd->in[0]];
    advex_set_shape(&v[nd->out[0]], X->ndim, X->dims);
    return ADVEX_OK;
}

advex_status advex_relu_infer(const advex_node *nd, advex_value *v) { return unary_infer(nd, v); }
advex_status advex_leaky_relu_infer(const advex_node *nd, advex_value *v) { return unary_infer(nd, v); }
advex_status advex_sigmoid_infer(const advex_node *nd, advex_value *v) { return unary_infer(nd, v); }
advex_status advex_tanh_infer(const advex_node *nd, advex_value *v) { return unary_infer(nd, v); }
advex_status advex_identity_infer(const advex_node *nd, advex_value *v) { return unary_infer(nd, v); }
advex_status advex_clip_infer(const advex_node *nd, advex_value *v) {
    float lo, hi;
    for (int i = 1; i < nd->n_in && i < 3; i++)
        if (nd->in[i] >= 0 && advex_val_numel(&v[nd->in[i]]) != 1)
            return advex_set_error(ADVEX_ERR_SHAPE, "Clip %s: %s must be a scalar", nd->name, i == 1 ? "min" : "max");
    clip_bounds(nd, v, &lo, &hi);
    if (lo > hi)
        return advex_set_error(ADVEX_ERR_ARG, "Clip %s: min %g > max %g", nd->name, (double)lo, (double)hi);
    return unary_infer(nd, v);
}
#endif

/* ---- forward and backward: compiled per ISA variant (dispatch.h) ------------------------ */

/* `simd`: the loops are branch-free selects, vectorised even at -O2. */
#define UNARY_LOOP_(n, body)                                                      \
    _Pragma("omp parallel for simd schedule(static) if ((n) >= ADVEX_OMP_MIN)")   \
    for (int64_t i = 0; i < (n); i++) { body; }

/* dx[i] (= or +=, per the input's grad_write) the local gradient `expr` of element i */
#define UNARY_GRAD_(write, n, expr)                \
    do {                                           \
        if (write) {                               \
            UNARY_LOOP_(n, dx[i] = (expr))         \
        } else {                                   \
            UNARY_LOOP_(n, dx[i] += (expr))        \
        }                                          \
    } while (0)

/* ---- Relu: f(x) = max(0, x); f'(x) = [x > 0] ----------------------------------------- */
void ADVEX_ISA_FN(advex_relu_forward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    if (nd->relu_fused) return; /* the producer stored max(0, x) in the shared buffer */
    const float *x = v[nd->in[0]].data;
    float *y = v[nd->out[0]].data;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    UNARY_LOOP_(n, y[i] = x[i] > 0.0f ? x[i] : 0.0f)
}
void ADVEX_ISA_FN(advex_relu_backward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    float *dx = v[nd->in[0]].grad;
    if (!dx || nd->alias_grad) return; /* (aliased: the producer applies the mask) */
    const float *x = v[nd->in[0]].data, *dy = v[nd->out[0]].grad;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    UNARY_GRAD_(v[nd->in[0]].grad_write, n, x[i] > 0.0f ? dy[i] : 0.0f);
}

void ADVEX_ISA_FN(advex_relu_mask)(float *dy, const float *y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= ADVEX_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float g = dy[i]; /* (read unconditionally: a plain vector load, not a masked one) */
        dy[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

/* ---- LeakyRelu: f(x) = x if x > 0 else alpha x ---------------------------------------- */
void ADVEX_ISA_FN(advex_leaky_relu_forward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    const float *x = v[nd->in[0]].data;
    float *y = v[nd->out[0]].data, a = nd->a.alpha;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    UNARY_LOOP_(n, y[i] = x[i] > 0.0f ? x[i] : a * x[i])
}
void ADVEX_ISA_FN(advex_leaky_relu_backward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    float *dx = v[nd->in[0]].grad, a = nd->a.alpha;
    if (!dx) return;
    const float *x = v[nd->in[0]].data, *dy = v[nd->out[0]].grad;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    UNARY_GRAD_(v[nd->in[0]].grad_write, n, x[i] > 0.0f ? dy[i] : a * dy[i]);
}

/* ---- Sigmoid: f(x) = 1 / (1 + e^-x); f' = y (1 - y) ---------------------------------- */
void ADVEX_ISA_FN(advex_sigmoid_forward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    const float *x = v[nd->in[0]].data;
    float *y = v[nd->out[0]].data;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    UNARY_LOOP_(n, y[i] = x[i] >= 0.0f ? 1.0f / (1.0f + expf(-x[i])) : expf(x[i]) / (1.0f + expf(x[i])))
}
void ADVEX_ISA_FN(advex_sigmoid_backward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    float *dx = v[nd->in[0]].grad;
    if (!dx) return;
    const float *y = v[nd->out[0]].data, *dy = v[nd->out[0]].grad;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    UNARY_GRAD_(v[nd->in[0]].grad_write, n, dy[i] * y[i] * (1.0f - y[i]));
}

/* ---- Tanh: f(x) = tanh x; f' = 1 - y^2 ----------------------------------------------- */
void ADVEX_ISA_FN(advex_tanh_forward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    const float *x = v[nd->in[0]].data;
    float *y = v[nd->out[0]].data;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    UNARY_LOOP_(n, y[i] = tanhf(x[i]))
}
void ADVEX_ISA_FN(advex_tanh_backward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    float *dx = v[nd->in[0]].grad;
    if (!dx) return;
    const float *y = v[nd->out[0]].data, *dy = v[nd->out[0]].grad;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    UNARY_GRAD_(v[nd->in[0]].grad_write, n, dy[i] * (1.0f - y[i] * y[i]));
}

/* ---- Clip: f(x) = min(max(x, lo), hi); f' = [lo <= x <= hi] (PyTorch's clamp) ------------ */
void ADVEX_ISA_FN(advex_clip_forward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    const float *x = v[nd->in[0]].data;
    float *y = v[nd->out[0]].data, lo, hi;
    clip_bounds(nd, v, &lo, &hi);
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    UNARY_LOOP_(n, y[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]))
}
void ADVEX_ISA_FN(advex_clip_backward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    float *dx = v[nd->in[0]].grad, lo, hi;
    if (!dx) return;
    clip_bounds(nd, v, &lo, &hi);
    const float *x = v[nd->in[0]].data, *dy = v[nd->out[0]].grad;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    UNARY_GRAD_(v[nd->in[0]].grad_write, n, (x[i] >= lo && x[i] <= hi) ? dy[i] : 0.0f);
}

/* ---- Identity: f(x) = x ---------------------------------------------------------------- */
void ADVEX_ISA_FN(advex_identity_forward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    if (v[nd->out[0]].data != v[nd->in[0]].data)
        memcpy(v[nd->out[0]].data, v[nd->in[0]].data, (size_t)n * sizeof(float));
}
void ADVEX_ISA_FN(advex_identity_backward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    float *dx = v[nd->in[0]].grad;
    if (!dx || nd->alias_grad) return; /* (aliased: dx is dy) */
    const float *dy = v[nd->out[0]].grad;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    if (v[nd->in[0]].grad_write) {
        memcpy(dx, dy, (size_t)n * sizeof(float));
        return;
    }
    UNARY_LOOP_(n, dx[i] += dy[i])
}
