/* MaxPool (argmax kept in aux for backward, ties -> first max), AveragePool (PyTorch's
 * divisor rule for count_include_pad and ceil_mode) and GlobalAveragePool, on (N,C,H,W),
 * parallel over the N*C planes; plus naive reference kernels for the tests. Backward
 * stores rather than adds when the input is in gradient write mode (grad_write). */
#include <math.h>
#include <string.h>

#include "ops/kernels.h"

/* ---- raw kernels ----------------------------------------------------------------------- */

/* Which input gets a window's gradient: the first (in window order) whose value is within
 * a relative 1e-5 of the maximum. Inputs that tie in exact arithmetic (flat
 * image backgrounds make many) come out of a convolution a few ulps apart depending on
 * summation order; breaking such ties by position rather than by rounding noise makes
 * the input gradient independent of the GEMM blocking and thread count, and agree with
 * PyTorch's (measured on tests/test_parity.c's VGG: 18 of 64 examples differed with exact
 * argmax, 7 with 1e-6, 1 with 1e-5, 4 with 4e-5). The forward value is always the true
 * maximum. */
static inline float tie_floor(float best) { return best - 1e-5f * fabsf(best); }

/* out[n,c,oh,ow] = max_{ki,kj} x[n,c, oh*sh-pt+ki*dh, ow*sw-pl+kj*dw] (padding ignored) */
/* 2x2 windows, stride 2, no padding or dilation: the common case, without bounds tests. */
static void maxpool_2x2s2(float *out, int32_t *argmax, const float *x, const advex_conv2d_p *p) {
    int64_t NC = p->N * p->C, HW = p->H * p->W, P = p->OH * p->OW, W = p->W;
#pragma omp parallel for schedule(static) if (NC * P * 4 >= ADVEX_OMP_MIN)
    for (int64_t nc = 0; nc < NC; nc++) {
        const float *xp = x + nc * HW;
        float *op = out + nc * P;
        int32_t *ap = argmax ? argmax + nc * P : NULL;
        for (int64_t oh = 0; oh < p->OH; oh++) {
            const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
            float *o = op + oh * p->OW;
            int32_t *a = ap ? ap + oh * p->OW : NULL, base = (int32_t)(2 * oh * W), w32 = (int32_t)W;
            /* branch-free selects (random data mispredicts branches); ties keep the first */
#pragma omp simd
            for (int64_t ow = 0; ow < p->OW; ow++) {
                int32_t i = (int32_t)(2 * ow), bi = i;
                float v0 = r0[i], v1 = r0[i + 1], v2 = r1[i], v3 = r1[i + 1];
                float m01 = v0 > v1 ? v0 : v1, m23 = v2 > v3 ? v2 : v3; /* fmaxf was a libm call here */
                float best = m01 > m23 ? m01 : m23, t = tie_floor(best);
                /* first of the four (row-major) reaching the tie floor */
                bi = v3 >= t ? w32 + i + 1 : bi;
                bi = v2 >= t ? w32 + i : bi;
                bi = v1 >= t ? i + 1 : bi;
                bi = v0 >= t ? i : bi;
                o[ow] = best;
                if (a) a[ow] = base + bi;
            }
        }
    }
}

void advex_maxpool2d_forward(float *out, int32_t *argmax, const float *x, const advex_conv2d_p *p) {
    int64_t NC = p->N * p->C, HW = p->H * p->W, P = p->OH * p->OW;
    if (p->KH == 2 && p->KW == 2 && p->SH == 2 && p->SW == 2 && p->DH == 1 && p->DW == 1 && p->PT == 0 &&
        p->PL == 0 && 2 * p->OH <= p->H && 2 * p->OW <= p->W) {
        maxpool_2x2s2(out, argmax, x, p);
        return;
    }
#pragma omp parallel for schedule(static) if (NC * P * p->KH * p->KW >= ADVEX_OMP_MIN)
    for (int64_t nc = 0; nc < NC; nc++) {
        const float *xp = x + nc * HW;
        float *op = out + nc * P;
        for (int64_t oh = 0; oh < p->OH; oh++)
            for (int64_t ow = 0; ow < p->OW; ow++) {
                int64_t hs = oh * p->SH - p->PT, ws = ow * p->SW - p->PL, bi = -1;
                float best = 0.0f;
                for (int64_t ki = 0; ki < p->KH; ki++) {
                    int64_t ih = hs + ki * p->DH;
                    if (ih < 0 || ih >= p->H) continue;
                    for (int64_t kj = 0; kj < p->KW; kj++) {
                        int64_t iw = ws + kj * p->DW;
                        if (iw < 0 || iw >= p->W) continue;
                        float val = xp[ih * p->W + iw];
                        if (bi < 0 || val > best) { best = val; bi = ih * p->W + iw; }
                    }
                }
                if (bi >= 0 && argmax) { /* second pass: the first input within the tie floor */
                    float t = tie_floor(best);
                    int64_t first = -1;
                    for (int64_t ki = 0; ki < p->KH && first < 0; ki++) {
                        int64_t ih = hs + ki * p->DH;
                        if (ih < 0 || ih >= p->H) continue;
                        for (int64_t kj = 0; kj < p->KW; kj++) {
                            int64_t iw = ws + kj * p->DW;
                            if (iw < 0 || iw >= p->W) continue;
                            if (xp[ih * p->W + iw] >= t) { first = ih * p->W + iw; break; }
                        }
                    }
                    bi = first;
                }
                op[oh * p->OW + ow] = bi >= 0 ? best : 0.0f;
                if (argmax) argmax[nc * P + oh * p->OW + ow] = (int32_t)bi;
            }
    }
}

/* dx[argmax] += dout; without argmax (NULL) the max is found again from x. */
void advex_maxpool2d_backward(float *dx, const float *dout, const int32_t *argmax,
                              const float *x, const advex_conv2d_p *p) {
    if (!argmax) {
        advex_maxpool2d_backward_ref(dx, dout, x, p);
        return;
    }
    int64_t NC = p->N * p->C, HW = p->H * p->W, P = p->OH * p->OW;
#pragma omp parallel for schedule(static) if (NC * P >= ADVEX_OMP_MIN)
    for (int64_t nc = 0; nc < NC; nc++) {
        float *dxp = dx + nc * HW;
        const float *dop = dout + nc * P;
        const int32_t *ap = argmax + nc * P;
        for (int64_t i = 0; i < P; i++)
            if (ap[i] >= 0) dxp[ap[i]] += dop[i];
    }
}

/* Window rows [*h0,*h1) x cols [*w0,*w1) clipped to the input; returns the divisor. */
static int64_t avg_window(const advex_conv2d_p *p, int64_t oh, int64_t ow, int include_pad, int64_t *h0,
                          int64_t *h1, int64_t *w0, int64_t *w1) {
    int64_t hs = oh * p->SH - p->PT, ws = ow * p->SW - p->PL;
    int64_t he = hs + p->KH, we = ws + p->KW;
    if (he > p->H + p->PB) he = p->H + p->PB;
    if (we > p->W + p->PR) we = p->W + p->PR;
    int64_t padded = (he - hs) * (we - ws);
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = he > p->H ? p->H : he;
    *w1 = we > p->W ? p->W : we;
    return include_pad ? padded : (*h1 - *h0) * (*w1 - *w0);
}

/* out = sum(window) / (window size within the padded input, or real elements only) */
void advex_avgpool2d_forward(float *out, const float *x, const advex_conv2d_p *p, int include_pad) {
    int64_t NC = p->N * p->C, HW = p->H * p->W, P = p->OH * p->OW;
#pragma omp parallel for schedule(static) if (NC * P * p->KH * p->KW >= ADVEX_OMP_MIN)
    for (int64_t nc = 0; nc < NC; nc++) {
        const float *xp = x + nc * HW;
        for (int64_t oh = 0; oh < p->OH; oh++)
            for (int64_t ow = 0; ow < p->OW; ow++) {
                int64_t h0, h1, w0, w1, div = avg_window(p, oh, ow, include_pad, &h0, &h1, &w0, &w1);
                float s = 0.0f;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * p->W + iw];
                out[nc * P + oh * p->OW + ow] = div > 0 ? s / (float)div : 0.0f;
            }
    }
}

void advex_avgpool2d_backward(float *dx, const float *dout, const advex_conv2d_p *p, int include_pad) {
    int64_t NC = p->N * p->C, HW = p->H * p->W, P = p->OH * p->OW;
#pragma omp parallel for schedule(static) if (NC * P * p->KH * p->KW >= ADVEX_OMP_MIN)
    for (int64_t nc = 0; nc < NC; nc++) {
        float *dxp = dx + nc * HW;
        for (int64_t oh = 0; oh < p->OH; oh++)
            for (int64_t ow = 0; ow < p->OW; ow++) {
                int64_t h0, h1, w0, w1, div = avg_window(p, oh, ow, include_pad, &h0, &h1, &w0, &w1);
                if (div <= 0) continue;
                float g = dout[nc * P + oh * p->OW + ow] / (float)div;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) dxp[ih * p->W + iw] += g;
            }
    }
}

/* Reference kernels: one output at a time, every kernel tap tested against the bounds.
 * ref_max_index: the first true maximum; ref_argmax: the first within the tie floor. */
static int64_t ref_max_index(const float *xp, const advex_conv2d_p *p, int64_t oh, int64_t ow) {
    int64_t bi = -1;
    for (int64_t ki = 0; ki < p->KH; ki++)
        for (int64_t kj = 0; kj < p->KW; kj++) {
            int64_t ih = oh * p->SH - p->PT + ki * p->DH, iw = ow * p->SW - p->PL + kj * p->DW;
            if (ih >= 0 && ih < p->H && iw >= 0 && iw < p->W && (bi < 0 || xp[ih * p->W + iw] > xp[bi]))
                bi = ih * p->W + iw;
        }
    return bi;
}

static int64_t ref_argmax(const float *xp, const advex_conv2d_p *p, int64_t oh, int64_t ow) {
    int64_t mi = ref_max_index(xp, p, oh, ow);
    if (mi < 0) return mi;
    float t = tie_floor(xp[mi]);
    for (int64_t ki = 0; ki < p->KH; ki++)
        for (int64_t kj = 0; kj < p->KW; kj++) {
            int64_t ih = oh * p->SH - p->PT + ki * p->DH, iw = ow * p->SW - p->PL + kj * p->DW;
            if (ih >= 0 && ih < p->H && iw >= 0 && iw < p->W && xp[ih * p->W + iw] >= t) return ih * p->W + iw;
        }
    return mi;
}

void advex_maxpool2d_forward_ref(float *out, const float *x, const advex_conv2d_p *p) {
    for (int64_t nc = 0; nc < p->N * p->C; nc++)
        for (int64_t oh = 0; oh < p->OH; oh++)
            for (int64_t ow = 0; ow < p->OW; ow++) {
                const float *xp = x + nc * p->H * p->W;
                int64_t bi = ref_max_index(xp, p, oh, ow);
                out[(nc * p->OH + oh) * p->OW + ow] = bi >= 0 ? xp[bi] : 0.0f;
            }
}

void advex_maxpool2d_backward_ref(float *dx, const float *dout, const float *x, const advex_conv2d_p *p) {
    for (int64_t nc = 0; nc < p->N * p->C; nc++)
        for (int64_t oh = 0; oh < p->OH; oh++)
            for (int64_t ow = 0; ow < p->OW; ow++) {
                int64_t bi = ref_argmax(x + nc * p->H * p->W, p, oh, ow);
                if (bi >= 0) dx[nc * p->H * p->W + bi] += dout[(nc * p->OH + oh) * p->OW + ow];
            }
}

static int64_t ref_avg_div(const advex_conv2d_p *p, int64_t oh, int64_t ow, int include_pad) {
    int64_t cnt = 0;
    for (int64_t ki = 0; ki < p->KH; ki++)
        for (int64_t kj = 0; kj < p->KW; kj++) {
            int64_t ih = oh * p->SH - p->PT + ki, iw = ow * p->SW - p->PL + kj;
            if (include_pad) cnt += ih < p->H + p->PB && iw < p->W + p->PR;
            else cnt += ih >= 0 && ih < p->H && iw >= 0 && iw < p->W;
        }
    return cnt;
}

void advex_avgpool2d_forward_ref(float *out, const float *x, const advex_conv2d_p *p, int include_pad) {
    for (int64_t nc = 0; nc < p->N * p->C; nc++)
        for (int64_t oh = 0; oh < p->OH; oh++)
            for (int64_t ow = 0; ow < p->OW; ow++) {
                double s = 0.0;
                int64_t div = ref_avg_div(p, oh, ow, include_pad);
                for (int64_t ki = 0; ki < p->KH; ki++)
                    for (int64_t kj = 0; kj < p->KW; kj++) {
                        int64_t ih = oh * p->SH - p->PT + ki, iw = ow * p->SW - p->PL + kj;
                        if (ih >= 0 && ih < p->H && iw >= 0 && iw < p->W) s += x[(nc * p->H + ih) * p->W + iw];
                    }
                out[(nc * p->OH + oh) * p->OW + ow] = div > 0 ? (float)(s / (double)div) : 0.0f;
            }
}

void advex_avgpool2d_backward_ref(float *dx, const float *dout, const advex_conv2d_p *p, int include_pad) {
    for (int64_t nc = 0; nc < p->N * p->C; nc++)
        for (int64_t oh = 0; oh < p->OH; oh++)
            for (int64_t ow = 0; ow < p->OW; ow++) {
                int64_t div = ref_avg_div(p, oh, ow, include_pad);
                if (div <= 0) continue;
                for (int64_t ki = 0; ki < p->KH; ki++)
                    for (int64_t kj = 0; kj < p->KW; kj++) {
                        int64_t ih = oh * p->SH - p->PT + ki, iw = ow * p->SW - p->PL + kj;
                        if (ih >= 0 && ih < p->H && iw >= 0 && iw < p->W)
                            dx[(nc * p->H + ih) * p->W + iw] += dout[(nc * p->OH + oh) * p->OW + ow] / (float)div;
                    }
            }
}

/* ---- MaxPool / AveragePool ops ---------------------------------------------------------- */

static advex_status pool_geom(const advex_node *nd, const advex_value *v, const char *op, advex_conv2d_p *p) {
    const advex_value *X = &v[nd->in[0]];
    char bx[96];
    if (X->ndim != 4)
        return advex_set_error(ADVEX_ERR_SHAPE, "%s %s: need a 2-D pool on (N,C,H,W), got input %s", op, nd->name,
                               advex_shape_str(bx, sizeof bx, X->ndim, X->dims));
    memset(p, 0, sizeof *p);
    p->N = X->dims[0]; p->C = X->dims[1]; p->H = X->dims[2]; p->W = X->dims[3];
    p->M = p->C; p->G = 1;
    p->KH = nd->a.kernel[0]; p->KW = nd->a.kernel[1];
    return advex_window_geom(p, &nd->a, op, nd->name, 1);
}

static advex_status pool_infer(const advex_node *nd, advex_value *v, const char *op) {
    advex_conv2d_p p;
    advex_status st = pool_geom(nd, v, op, &p);
    if (st) return st;
    /* the kernels index a plane with int32 (MaxPool's argmax) and count the work as
     * N*C*OH*OW*KH*KW in int64: refuse shapes where either would overflow */
    int64_t plane, work;
    if (!advex_mul_i64(p.H, p.W, &plane) || plane > INT32_MAX || !advex_mul_i64(p.N, p.C, &work) ||
        !advex_mul_i64(work, p.OH, &work) || !advex_mul_i64(work, p.OW, &work) || !advex_mul_i64(work, p.KH, &work) ||
        !advex_mul_i64(work, p.KW, &work))
        return advex_set_error(ADVEX_ERR_LIMIT, "%s %s: input plane %lldx%lld or window work too large", op, nd->name,
                               (long long)p.H, (long long)p.W);
    int64_t dims[4] = {p.N, p.C, p.OH, p.OW};
    advex_set_shape(&v[nd->out[0]], 4, dims);
    return ADVEX_OK;
}

advex_status advex_maxpool_infer(const advex_node *nd, advex_value *v) { return pool_infer(nd, v, "MaxPool"); }

int64_t advex_maxpool_aux(const advex_node *nd, const advex_value *v, int train) {
    return advex_val_numel(&v[nd->out[0]]); /* int32 argmax per output */
}

static int32_t *maxpool_argmax(const advex_node *nd, const advex_value *v, const advex_op_ctx *c) {
    if (!c->aux || c->aux_n < advex_val_numel(&v[nd->out[0]])) return NULL;
    return (int32_t *)(void *)c->aux;
}

void advex_maxpool_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    advex_conv2d_p p;
    if (pool_geom(nd, v, "MaxPool", &p)) return;
    advex_maxpool2d_forward(v[nd->out[0]].data, maxpool_argmax(nd, v, c), v[nd->in[0]].data, &p);
}

/* Write mode of the 2x2 stride-2 case (the forward's maxpool_2x2s2 geometry): windows do
 * not overlap, so each input gets its window's gradient or 0, stored without a prior
 * memset; rows/columns no window covers (odd H or W) are zeroed. One output row: r0, r1 the
 * two input rows under it, a the argmax (plane index) of each window, base = r0's index. */
static void maxpool_2x2s2_write_row(float *restrict r0, float *restrict r1, const float *restrict g,
                                    const int32_t *restrict a, int32_t ow_n, int32_t base, int32_t w32) {
#pragma omp simd
    for (int32_t ow = 0; ow < ow_n; ow++) {
        int32_t k = a[ow] - base - 2 * ow; /* 0, 1, W or W+1 */
        float gv = g[ow];
        r0[2 * ow] = k == 0 ? gv : 0.0f;
        r0[2 * ow + 1] = k == 1 ? gv : 0.0f;
        r1[2 * ow] = k == w32 ? gv : 0.0f;
        r1[2 * ow + 1] = k == w32 + 1 ? gv : 0.0f;
    }
}

static void maxpool_2x2s2_backward_write(float *dx, const float *dout, const int32_t *argmax,
                                         const advex_conv2d_p *p) {
    int64_t NC = p->N * p->C, HW = p->H * p->W, P = p->OH * p->OW, W = p->W, OH = p->OH, OW = p->OW;
#pragma omp parallel for schedule(static) if (NC * HW >= ADVEX_OMP_MIN)
    for (int64_t nc = 0; nc < NC; nc++) {
        float *dxp = dx + nc * HW;
        for (int64_t oh = 0; oh < OH; oh++) {
            float *r0 = dxp + 2 * oh * W;
            maxpool_2x2s2_write_row(r0, r0 + W, dout + nc * P + oh * OW, argmax + nc * P + oh * OW, (int32_t)OW,
                                    (int32_t)(2 * oh * W), (int32_t)W);
            if (2 * OW < W) {
                memset(r0 + 2 * OW, 0, (size_t)(W - 2 * OW) * sizeof(float));
                memset(r0 + W + 2 * OW, 0, (size_t)(W - 2 * OW) * sizeof(float));
            }
        }
        if (2 * OH < p->H) memset(dxp + 2 * OH * W, 0, (size_t)((p->H - 2 * OH) * W) * sizeof(float));
    }
}

void advex_maxpool_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    advex_conv2d_p p;
    advex_value *X = &v[nd->in[0]];
    if (!X->grad || pool_geom(nd, v, "MaxPool", &p)) return;
    const int32_t *am = maxpool_argmax(nd, v, c);
    if (X->grad_write && am && p.KH == 2 && p.KW == 2 && p.SH == 2 && p.SW == 2 && p.DH == 1 && p.DW == 1 &&
        p.PT == 0 && p.PL == 0 && 2 * p.OH <= p.H && 2 * p.OW <= p.W) {
        maxpool_2x2s2_backward_write(X->grad, v[nd->out[0]].grad, am, &p);
        return;
    }
    /* other geometries in write mode: zero, then the accumulating scatter */
    if (X->grad_write) memset(X->grad, 0, (size_t)advex_val_numel(X) * sizeof(float));
    advex_maxpool2d_backward(X->grad, v[nd->out[0]].grad, am, X->data, &p);
}

advex_status advex_avgpool_infer(const advex_node *nd, advex_value *v) {
    if (nd->a.dilation[0] != 1 || nd->a.dilation[1] != 1)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "AveragePool %s: dilations are not supported", nd->name);
    return pool_infer(nd, v, "AveragePool");
}

void advex_avgpool_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    advex_conv2d_p p;
    if (pool_geom(nd, v, "AveragePool", &p)) return;
    advex_avgpool2d_forward(v[nd->out[0]].data, v[nd->in[0]].data, &p, nd->a.count_include_pad);
}

void advex_avgpool_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    advex_conv2d_p p;
    if (!v[nd->in[0]].grad || pool_geom(nd, v, "AveragePool", &p)) return;
    if (v[nd->in[0]].grad_write) /* windows may overlap or skip inputs: zero, then accumulate */
        memset(v[nd->in[0]].grad, 0, (size_t)advex_val_numel(&v[nd->in[0]]) * sizeof(float));
    advex_avgpool2d_backward(v[nd->in[0]].grad, v[nd->out[0]].grad, &p, nd->a.count_include_pad);
}

/* ---- GlobalAveragePool: y[n,c] = mean over all spatial positions of x[n,c] ------------------ */

advex_status advex_global_avgpool_infer(const advex_node *nd, advex_value *v) {
    const advex_value *X = &v[nd->in[0]];
    char bx[96];
    if (X->ndim < 3)
        return advex_set_error(ADVEX_ERR_SHAPE, "GlobalAveragePool %s: input %s needs spatial dims", nd->name,
                               advex_shape_str(bx, sizeof bx, X->ndim, X->dims));
    int64_t dims[ADVEX_MAX_DIMS];
    for (int d = 0; d < X->ndim; d++) dims[d] = d < 2 ? X->dims[d] : 1;
    advex_set_shape(&v[nd->out[0]], X->ndim, dims);
    return ADVEX_OK;
}

void advex_global_avgpool_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    const advex_value *X = &v[nd->in[0]];
    int64_t NC = X->dims[0] * X->dims[1], S = advex_val_numel(X) / (NC > 0 ? NC : 1);
    const float *x = X->data; // (N,C,S)
    float *y = v[nd->out[0]].data; // (N,C)
#pragma omp parallel for schedule(static) if (NC * S >= ADVEX_OMP_MIN)
    for (int64_t nc = 0; nc < NC; nc++) {
        float s = 0.0f;
        for (int64_t i = 0; i < S; i++) s += x[nc * S + i];
        y[nc] = S > 0 ? s / (float)S : 0.0f;
    }
}

void advex_global_avgpool_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    const advex_value *X = &v[nd->in[0]];
    if (!X->grad) return;
    int64_t NC = X->dims[0] * X->dims[1], S = advex_val_numel(X) / (NC > 0 ? NC : 1);
    float *dx = X->grad;
    const float *dy = v[nd->out[0]].grad;
    int write = X->grad_write;
#pragma omp parallel for schedule(static) if (NC * S >= ADVEX_OMP_MIN)
    for (int64_t nc = 0; nc < NC; nc++) {
        float g = dy[nc] / (float)S;
        if (write)
            for (int64_t i = 0; i < S; i++) dx[nc * S + i] = g;
        else
            for (int64_t i = 0; i < S; i++) dx[nc * S + i] += g;
    }
}
