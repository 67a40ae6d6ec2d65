/* Elementwise math of one input: Sqrt, Exp, Log, Neg, Reciprocal, Abs, Erf, Sin, Cos, Floor,
 * Ceil, HardSigmoid, HardSwish, Gelu (exact or tanh), Softplus, Softsign, Elu, Selu. One
 * switch on the op outside flat loops (no per-element dispatch); OpenMP when large. Backward
 * accumulates dx += f'(x) dy, or stores it for an input in gradient write mode. The ops
 * run these libm loops, except exact Gelu (the transformers' activation), which runs act.c's
 * vectorised kernels; the loops stay its reference and constant folding's arithmetic. */
#include <math.h>
#include <string.h>

#include "ops/kernels.h"

#define SQRT1_2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794
#define SQRT_2_PI 0.79788456080286535588 /* sqrt(2/pi) */
#define GELU_C 0.044715
#define TWO_SQRTPI 1.12837916709551257390 /* 2/sqrt(pi) */

advex_status advex_unary_infer(const advex_node *nd, advex_value *v) {
    const advex_value *X = &v[nd->in[0]];
    advex_set_shape(&v[nd->out[0]], X->ndim, X->dims);
    return ADVEX_OK;
}

/* LOOP_ for bodies that call libm (not vectorisable without a vector math library: clang
 * would warn that a `simd` request failed), LOOPV_ for plain arithmetic */
#define LOOP_(n, body)                                                            \
    _Pragma("omp parallel for schedule(static) if ((n) >= ADVEX_OMP_MIN)")        \
    for (int64_t i = 0; i < (n); i++) { body; }
#define LOOPV_(n, body)                                                           \
    _Pragma("omp parallel for simd schedule(static) if ((n) >= ADVEX_OMP_MIN)")   \
    for (int64_t i = 0; i < (n); i++) { body; }

/* tanh-approximated GELU: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) */
static inline float gelu_tanh(float x) {
    float u = (float)SQRT_2_PI * (x + (float)GELU_C * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}
static inline float gelu_tanh_grad(float x) {
    float u = (float)SQRT_2_PI * (x + (float)GELU_C * x * x * x), t = tanhf(u);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * (float)SQRT_2_PI * (1.0f + 3.0f * (float)GELU_C * x * x);
}
/* log(1 + e^x) without overflow */
static inline float softplus(float x) { return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

/* y (n) = f(x): the op's formula (alpha/beta: HardSigmoid's, Elu's alpha, Selu's alpha and
 * gamma; mode: Gelu's tanh approximation) */
void advex_unary_kernel(advex_op_type op, float alpha, float beta, int mode, float *y, const float *x, int64_t n) {
    switch (op) {
    case ADVEX_OP_SQRT: LOOP_(n, y[i] = sqrtf(x[i])) break;
    case ADVEX_OP_EXP: LOOP_(n, y[i] = expf(x[i])) break;
    case ADVEX_OP_LOG: LOOP_(n, y[i] = logf(x[i])) break;
    case ADVEX_OP_NEG: LOOPV_(n, y[i] = -x[i]) break;
    case ADVEX_OP_RECIPROCAL: LOOPV_(n, y[i] = 1.0f / x[i]) break;
    case ADVEX_OP_ABS: LOOP_(n, y[i] = fabsf(x[i])) break;
    case ADVEX_OP_ERF: LOOP_(n, y[i] = erff(x[i])) break;
    case ADVEX_OP_SIN: LOOP_(n, y[i] = sinf(x[i])) break;
    case ADVEX_OP_COS: LOOP_(n, y[i] = cosf(x[i])) break;
    case ADVEX_OP_FLOOR: LOOP_(n, y[i] = floorf(x[i])) break;
    case ADVEX_OP_CEIL: LOOP_(n, y[i] = ceilf(x[i])) break;
    /* f(x) = max(0, min(1, alpha x + beta)) */
    case ADVEX_OP_HARD_SIGMOID: LOOPV_(n, y[i] = fmaxf(0.0f, fminf(1.0f, alpha * x[i] + beta))) break;
    /* f(x) = x max(0, min(1, x/6 + 1/2)) */
    case ADVEX_OP_HARD_SWISH: LOOPV_(n, y[i] = x[i] * fmaxf(0.0f, fminf(1.0f, x[i] * (1.0f / 6.0f) + 0.5f))) break;
    /* f(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) */
    case ADVEX_OP_GELU:
        if (mode) LOOP_(n, y[i] = gelu_tanh(x[i]))
        else LOOP_(n, y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)SQRT1_2)))
        break;
    case ADVEX_OP_SOFTPLUS: LOOP_(n, y[i] = softplus(x[i])) break;
    /* f(x) = x / (1 + |x|) */
    case ADVEX_OP_SOFTSIGN: LOOP_(n, y[i] = x[i] / (1.0f + fabsf(x[i]))) break;
    /* f(x) = x if x > 0 else alpha (e^x - 1); Selu: gamma times that */
    case ADVEX_OP_ELU: LOOP_(n, y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i])) break;
    case ADVEX_OP_SELU: LOOP_(n, y[i] = beta * (x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]))) break;
    default: break;
    }
}

void advex_unary_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    (void)c;
    if (nd->op == ADVEX_OP_GELU && !nd->a.mode) { /* vectorised (act.c) */
        advex_gelu_kernel(v[nd->out[0]].data, v[nd->in[0]].data, advex_val_numel(&v[nd->out[0]]));
        return;
    }
    advex_unary_kernel(nd->op, nd->a.alpha, nd->a.beta, nd->a.mode, v[nd->out[0]].data, v[nd->in[0]].data,
                       advex_val_numel(&v[nd->out[0]]));
}

/* dx (n) = or += f'(x) dy, from x and y = f(x) */
#define GRAD_(expr)                                   \
    do {                                              \
        if (write) { LOOP_(n, dx[i] = (expr)) }       \
        else { LOOP_(n, dx[i] += (expr)) }            \
    } while (0)

void advex_unary_backward_kernel(advex_op_type op, float alpha, float beta, int mode, float *dx, const float *dy,
                                 const float *x, const float *y, int64_t n, int write) {
    switch (op) {
    case ADVEX_OP_SQRT: GRAD_(dy[i] * 0.5f / y[i]); break;
    case ADVEX_OP_EXP: GRAD_(dy[i] * y[i]); break;
    case ADVEX_OP_LOG: GRAD_(dy[i] / x[i]); break;
    case ADVEX_OP_NEG: GRAD_(-dy[i]); break;
    case ADVEX_OP_RECIPROCAL: GRAD_(-dy[i] * y[i] * y[i]); break;
    case ADVEX_OP_ABS: GRAD_(x[i] > 0.0f ? dy[i] : x[i] < 0.0f ? -dy[i] : 0.0f); break;
    case ADVEX_OP_ERF: GRAD_(dy[i] * (float)TWO_SQRTPI * expf(-x[i] * x[i])); break;
    case ADVEX_OP_SIN: GRAD_(dy[i] * cosf(x[i])); break;
    case ADVEX_OP_COS: GRAD_(-dy[i] * sinf(x[i])); break;
    case ADVEX_OP_FLOOR: case ADVEX_OP_CEIL: GRAD_(0.0f); break;
    case ADVEX_OP_HARD_SIGMOID:
        GRAD_(alpha * x[i] + beta > 0.0f && alpha * x[i] + beta < 1.0f ? alpha * dy[i] : 0.0f);
        break;
    case ADVEX_OP_HARD_SWISH:
        GRAD_(x[i] < -3.0f ? 0.0f : x[i] > 3.0f ? dy[i] : dy[i] * (x[i] * (1.0f / 3.0f) + 0.5f));
        break;
    /* exact: Phi(x) + x phi(x) */
    case ADVEX_OP_GELU:
        if (mode) GRAD_(dy[i] * gelu_tanh_grad(x[i]));
        else GRAD_(dy[i] * (0.5f * (1.0f + erff(x[i] * (float)SQRT1_2)) +
                            x[i] * (float)INV_SQRT_2PI * expf(-0.5f * x[i] * x[i])));
        break;
    case ADVEX_OP_SOFTPLUS: GRAD_(dy[i] / (1.0f + expf(-x[i]))); break;
    case ADVEX_OP_SOFTSIGN: GRAD_(dy[i] / ((1.0f + fabsf(x[i])) * (1.0f + fabsf(x[i])))); break;
    case ADVEX_OP_ELU: GRAD_(x[i] > 0.0f ? dy[i] : dy[i] * (y[i] + alpha)); break;
    case ADVEX_OP_SELU: GRAD_(x[i] > 0.0f ? beta * dy[i] : dy[i] * (y[i] + alpha * beta)); break;
    default: break;
    }
}
#undef GRAD_
#undef LOOP_
#undef LOOPV_

void advex_unary_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    (void)c;
    advex_value *X = &v[nd->in[0]];
    if (!X->grad) return;
    const advex_value *Y = &v[nd->out[0]];
    if (nd->op == ADVEX_OP_GELU && !nd->a.mode) {
        advex_gelu_grad_kernel(X->grad, Y->grad, X->data, advex_val_numel(Y), X->grad_write);
        return;
    }
    advex_unary_backward_kernel(nd->op, nd->a.alpha, nd->a.beta, nd->a.mode, X->grad, Y->grad, X->data, Y->data,
                                advex_val_numel(Y), X->grad_write);
}
