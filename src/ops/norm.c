/* BatchNormalization (ONNX) on (N,C,...): eval mode uses the running statistics; train
 * mode normalises with batch statistics (kept in aux for backward) and updates the running
 * mean/var in place (run = run*m + batch*(1-m), unbiased variance as PyTorch). Forward and
 * backward are compiled per ISA variant (dispatch.h; most of a resnet step's BatchNorm
 * loops vectorise only with AVX-512's masks or -fno-trapping-math), shape inference once. */
#include <math.h>

#include "ops/dispatch.h"

typedef struct bn_p { int64_t N, C, S; } bn_p; /* x viewed as (N,C,S) */

static bn_p bn_dims(const advex_value *X) {
    bn_p p = {X->dims[0], X->ndim > 1 ? X->dims[1] : 1, 1};
    for (int d = 2; d < X->ndim; d++) p.S *= X->dims[d];
    return p;
}

#if ADVEX_ISA_BASE
advex_status advex_batchnorm_infer(const advex_node *nd, advex_value *v) {
    const advex_value *X = &v[nd->in[0]];
    char bx[96], bp[96];
    static const char *names[5] = {"X", "scale", "B", "mean", "var"};
    if (X->ndim < 2)
        return advex_set_error(ADVEX_ERR_SHAPE, "BatchNormalization %s: input %s needs (N,C,...)", nd->name,
                               advex_shape_str(bx, sizeof bx, X->ndim, X->dims));
    for (int i = 1; i < 5; i++) {
        if (nd->in[i] < 0)
            return advex_set_error(ADVEX_ERR_SHAPE, "BatchNormalization %s: missing input %s", nd->name, names[i]);
        const advex_value *P = &v[nd->in[i]];
        if (P->ndim != 1 || P->dims[0] != X->dims[1])
            return advex_set_error(ADVEX_ERR_SHAPE, "BatchNormalization %s: %s %s does not match input %s (C=%lld)",
                                   nd->name, names[i], advex_shape_str(bp, sizeof bp, P->ndim, P->dims),
                                   advex_shape_str(bx, sizeof bx, X->ndim, X->dims), (long long)X->dims[1]);
    }
    if (!(nd->a.epsilon >= 0.0f))
        return advex_set_error(ADVEX_ERR_ARG, "BatchNormalization %s: epsilon %g", nd->name, (double)nd->a.epsilon);
    advex_set_shape(&v[nd->out[0]], X->ndim, X->dims);
    return ADVEX_OK;
}

/* aux: batch mean (C) then 1/sqrt(batch var + eps) (C), train mode */
int64_t advex_batchnorm_aux(const advex_node *nd, const advex_value *v, int train) {
    return train ? 2 * v[nd->in[0]].dims[1] : 0;
}
#endif

static int bn_train(const advex_node *nd, const advex_value *v, const advex_op_ctx *c) {
    return c->train && c->aux && c->aux_n >= 2 * v[nd->in[0]].dims[1];
}

/* y = scale * (x - mean) / sqrt(var + eps) + B */
void ADVEX_ISA_FN(advex_batchnorm_forward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    if (nd->fold < 0 && !c->train) return; /* the Conv before it wrote y (fuse.c, mark_bn_folds) */
    const advex_value *X = &v[nd->in[0]];
    bn_p p = bn_dims(X);
    const float *x = X->data, *scale = v[nd->in[1]].data, *bias = v[nd->in[2]].data;
    float *rmean = v[nd->in[3]].data, *rvar = v[nd->in[4]].data, *y = v[nd->out[0]].data;
    float eps = nd->a.epsilon, mom = nd->a.momentum;
    int train = bn_train(nd, v, c);
    float *bmean = train ? c->aux : NULL, *binv = train ? c->aux + p.C : NULL;
    int64_t cnt = p.N * p.S;
#pragma omp parallel for schedule(static) if (p.N * p.C * p.S >= ADVEX_OMP_MIN)
    for (int64_t ch = 0; ch < p.C; ch++) {
        float mean, inv;
        if (train) {
            /* per plane a vectorised float sum, planes summed in double: a double running sum
             * is one 4-cycle dependent add per element (BatchNorm was 13% of a resnet
             * training step) */
            double s = 0.0, ss = 0.0;
            for (int64_t n = 0; n < p.N; n++) {
                const float *xp = x + (n * p.C + ch) * p.S;
                float sf = 0.0f;
#pragma omp simd reduction(+ : sf)
                for (int64_t i = 0; i < p.S; i++) sf += xp[i];
                s += sf;
            }
            double m = cnt > 0 ? s / (double)cnt : 0.0;
            float mf = (float)m;
            for (int64_t n = 0; n < p.N; n++) {
                const float *xp = x + (n * p.C + ch) * p.S;
                float sf = 0.0f;
#pragma omp simd reduction(+ : sf)
                for (int64_t i = 0; i < p.S; i++) sf += (xp[i] - mf) * (xp[i] - mf);
                ss += sf;
            }
            double var = cnt > 0 ? ss / (double)cnt : 0.0;
            double unbiased = cnt > 1 ? ss / (double)(cnt - 1) : var;
            mean = (float)m;
            inv = (float)(1.0 / sqrt(var + eps));
            bmean[ch] = mean;
            binv[ch] = inv;
            rmean[ch] = rmean[ch] * mom + (float)m * (1.0f - mom);
            rvar[ch] = rvar[ch] * mom + (float)unbiased * (1.0f - mom);
        } else {
            mean = rmean[ch];
            inv = 1.0f / sqrtf(rvar[ch] + eps);
        }
        float a = scale[ch] * inv, b = bias[ch] - mean * a;
        for (int64_t n = 0; n < p.N; n++) {
            const float *xp = x + (n * p.C + ch) * p.S;
            float *yp = y + (n * p.C + ch) * p.S;
            if (nd->relu_out) { /* a fused Relu (fuse.c, mark_relu_fusion) */
#pragma omp simd
                for (int64_t i = 0; i < p.S; i++) {
                    float t = xp[i] * a + b;
                    yp[i] = t > 0.0f ? t : 0.0f;
                }
            } else {
#pragma omp simd
                for (int64_t i = 0; i < p.S; i++) yp[i] = xp[i] * a + b;
            }
        }
    }
}

/* Gradients add to the inputs' grads, or are stored for an input in gradient write mode
 * (grad_write: X, scale and B; the running mean/var always accumulate).
 * eval:  dx = dy * scale * inv; dmean = -sum(dy) * scale * inv; dvar = -0.5 sum(dy xhat) scale inv^2
 * train: dx = scale * inv / cnt * (cnt * dy - sum(dy) - xhat * sum(dy xhat))
 * both:  dscale = sum(dy xhat), dB = sum(dy) */
void ADVEX_ISA_FN(advex_batchnorm_backward)(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    const advex_value *X = &v[nd->in[0]];
    bn_p p = bn_dims(X);
    const float *x = X->data, *scale = v[nd->in[1]].data;
    float *dy = v[nd->out[0]].grad;
    /* a fused Relu's backward (fuse.c, mark_aliases): dy *= [y > 0], y our stored output */
    const float *mk = nd->relu_mask ? v[nd->out[0]].data : NULL;
    float *dx = X->grad, *dscale = v[nd->in[1]].grad, *dbias = v[nd->in[2]].grad;
    float *dmean = v[nd->in[3]].grad, *dvar = v[nd->in[4]].grad;
    const float *rmean = v[nd->in[3]].data, *rvar = v[nd->in[4]].data;
    float eps = nd->a.epsilon;
    int train = bn_train(nd, v, c);
    int wx = X->grad_write, wscale = v[nd->in[1]].grad_write, wbias = v[nd->in[2]].grad_write;
    int64_t cnt = p.N * p.S;
#pragma omp parallel for schedule(static) if (p.N * p.C * p.S >= ADVEX_OMP_MIN)
    for (int64_t ch = 0; ch < p.C; ch++) {
        float mean = train ? c->aux[ch] : rmean[ch];
        float inv = train ? c->aux[p.C + ch] : 1.0f / sqrtf(rvar[ch] + eps);
        if (!train && !dscale && !dbias && !dmean && !dvar) { /* attacks: dx = dy * scale * inv only */
            if (!dx) continue;
            float a = scale[ch] * inv;
            for (int64_t n = 0; n < p.N; n++) {
                const float *dp = dy + (n * p.C + ch) * p.S;
                float *dxp = dx + (n * p.C + ch) * p.S;
                if (mk) {
                    const float *mp = mk + (n * p.C + ch) * p.S;
                    if (wx) {
#pragma omp simd
                        for (int64_t i = 0; i < p.S; i++) {
                            float g = a * dp[i];
                            dxp[i] = mp[i] > 0.0f ? g : 0.0f;
                        }
                    } else {
#pragma omp simd
                        for (int64_t i = 0; i < p.S; i++) {
                            float g = a * dp[i];
                            dxp[i] += mp[i] > 0.0f ? g : 0.0f;
                        }
                    }
                    continue;
                }
                if (wx) {
#pragma omp simd
                    for (int64_t i = 0; i < p.S; i++) dxp[i] = a * dp[i];
                } else {
#pragma omp simd
                    for (int64_t i = 0; i < p.S; i++) dxp[i] += a * dp[i];
                }
            }
            continue;
        }
        double sdy = 0.0, sdyx = 0.0; /* per plane vectorised float sums (see forward) */
        for (int64_t n = 0; n < p.N; n++) {
            const float *xp = x + (n * p.C + ch) * p.S;
            float *dp = dy + (n * p.C + ch) * p.S;
            float a1 = 0.0f, a2 = 0.0f;
            if (mk) advex_relu_mask(dp, mk + (n * p.C + ch) * p.S, p.S); /* in place: the dx pass reads it again */
#pragma omp simd reduction(+ : a1, a2)
            for (int64_t i = 0; i < p.S; i++) {
                a1 += dp[i];
                a2 += dp[i] * (xp[i] - mean);
            }
            sdy += a1;
            sdyx += (double)a2 * inv;
        }
        if (dscale) dscale[ch] = (wscale ? 0.0f : dscale[ch]) + (float)sdyx;
        if (dbias) dbias[ch] = (wbias ? 0.0f : dbias[ch]) + (float)sdy;
        if (!train && dmean) dmean[ch] += (float)(-sdy * scale[ch] * inv);
        if (!train && dvar) dvar[ch] += (float)(-0.5 * sdyx * scale[ch] * inv * inv);
        if (!dx) continue;
        float a = scale[ch] * inv;
        float k1 = train && cnt > 0 ? (float)(sdy / (double)cnt) : 0.0f;
        float k2 = train && cnt > 0 ? (float)(sdyx / (double)cnt) : 0.0f;
        for (int64_t n = 0; n < p.N; n++) {
            const float *xp = x + (n * p.C + ch) * p.S, *dp = dy + (n * p.C + ch) * p.S;
            float *dxp = dx + (n * p.C + ch) * p.S;
            if (wx) {
#pragma omp simd
                for (int64_t i = 0; i < p.S; i++) {
                    float xhat = (xp[i] - mean) * inv;
                    dxp[i] = a * (dp[i] - k1 - xhat * k2);
                }
            } else {
#pragma omp simd
                for (int64_t i = 0; i < p.S; i++) {
                    float xhat = (xp[i] - mean) * inv;
                    dxp[i] += a * (dp[i] - k1 - xhat * k2);
                }
            }
        }
    }
}
