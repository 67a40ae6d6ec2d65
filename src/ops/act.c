/* Pointwise activations: Relu, LeakyRelu, Sigmoid, Tanh, Clip, Identity. Forward and
 * backward are flat loops over all elements (OpenMP when large); backward accumulates, or
 * stores when the input is in gradient write mode (advex_value.grad_write). The forward and
 * backward passes are compiled per ISA variant (dispatch.h): on AVX-512 and AVX2 the
 * selects vectorise 16 or 8 wide; shape inference is compiled once. */
#include <math.h>
#include <string.h>

#include "ops/dispatch.h"
#include "ops/vmath.h"

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

/* ---- Sigmoid: f(x) = 1 / (1 + e^-x); f' = y (1 - y) ----------------------------------
 * mode 1 (patterns.c, fuse_silu): SiLU, f(x) = x s(x) with s the sigmoid, the exporters'
 * Mul(x, Sigmoid(x)); f' = s (1 + x (1 - s)), s recomputed from x in the backward pass.
 * e^x by advex_vexpf (vmath.h), vectorised at the variant's width; advex_sigmoid_ref is the
 * libm reference the tests compare with (within 2 ulp of e^x: a few ulp of the result). */
#if ADVEX_ISA_BASE
void advex_sigmoid_ref(float *y, const float *x, int64_t n, int silu) {
    for (int64_t i = 0; i < n; i++) {
        float s = x[i] >= 0.0f ? 1.0f / (1.0f + expf(-x[i])) : expf(x[i]) / (1.0f + expf(x[i]));
        y[i] = silu ? x[i] * s : s;
    }
}
#endif

/* dy f'(x) of SiLU */
static inline float silu_grad(float x, float dy) {
    float s = advex_vsigmoidf(x);
    return dy * (s * (1.0f + x * (1.0f - s)));
}

void ADVEX_ISA_FN(advex_sigmoid_forward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    const float *x = v[nd->in[0]].data;
    float *y = v[nd->out[0]].data;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    if (nd->a.mode == 1) {
        UNARY_LOOP_(n, y[i] = x[i] * advex_vsigmoidf(x[i]))
    } else {
        UNARY_LOOP_(n, y[i] = advex_vsigmoidf(x[i]))
    }
}
void ADVEX_ISA_FN(advex_sigmoid_backward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    float *dx = v[nd->in[0]].grad;
    if (!dx) return;
    const float *y = v[nd->out[0]].data, *dy = v[nd->out[0]].grad, *x = v[nd->in[0]].data;
    int64_t n = advex_val_numel(&v[nd->out[0]]);
    if (nd->a.mode == 1) {
        UNARY_GRAD_(v[nd->in[0]].grad_write, n, silu_grad(x[i], dy[i]));
        return;
    }
    UNARY_GRAD_(v[nd->in[0]].grad_write, n, dy[i] * y[i] * (1.0f - y[i]));
}

/* ---- GELU (exact): f(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); f' = Phi(x) + x phi(x) ----
 * Raw kernels for unary.c (Gelu, and the exporters' erf form that patterns.c fuses), with
 * advex_verff and advex_vexpf (vmath.h); unary.c keeps the libm form as the reference. */
#define GELU_SQRT1_2 0.70710678118654752440f
#define GELU_INV_SQRT_2PI 0.39894228040143267794f

static inline float gelu_grad(float x, float dy) {
    float phi = 0.5f * (1.0f + advex_verff(x * GELU_SQRT1_2));
    return dy * (phi + x * GELU_INV_SQRT_2PI * advex_vexpf(-0.5f * x * x));
}

void ADVEX_ISA_FN(advex_gelu_kernel)(float *y, const float *x, int64_t n) {
    UNARY_LOOP_(n, y[i] = 0.5f * x[i] * (1.0f + advex_verff(x[i] * GELU_SQRT1_2)))
}

void ADVEX_ISA_FN(advex_gelu_grad_kernel)(float *dx, const float *dy, const float *x, int64_t n, int write) {
    UNARY_GRAD_(write, n, gelu_grad(x[i], dy[i]));
}

/* ---- Softmax of one contiguous row: y = e^(x - max) / sum e^(x - max) ---------------------
 * (softmax.c: rows along the last axis, one call per row inside its parallel loop; the sum
 * in float, in order) */
void ADVEX_ISA_FN(advex_softmax_row)(float *y, const float *x, int64_t D) {
    float mx = -INFINITY, s = 0.0f;
    for (int64_t k = 0; k < D; k++) mx = x[k] > mx ? x[k] : mx;
#pragma omp simd
    for (int64_t k = 0; k < D; k++) y[k] = advex_vexpf(x[k] - mx);
    for (int64_t k = 0; k < D; k++) s += y[k];
    float inv = 1.0f / s;
#pragma omp simd
    for (int64_t k = 0; k < D; k++) y[k] *= inv;
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
