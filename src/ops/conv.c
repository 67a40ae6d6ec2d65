/* Conv (ONNX, 2-D): im2col + cblas_sgemm forward, sgemm + col2im backward; dW only when
 * asked for. Also the window geometry (strides, dilations, pads, auto_pad, ceil_mode)
 * that pool.c shares, and naive reference kernels the tests check the fast path against. */
#include <cblas.h>
#include <string.h>

#include "ops/kernels.h"

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

advex_status advex_window_geom(advex_conv2d_p *p, const advex_attrs *a, const char *op,
                               const char *node, int pool) {
    int64_t in[2] = {p->H, p->W}, k[2] = {p->KH, p->KW}, out[2], pb[2], pe[2];
    for (int i = 0; i < 2; i++) {
        int64_t s = a->stride[i], d = a->dilation[i];
        if (k[i] <= 0 || s <= 0 || d <= 0)
            return advex_set_error(ADVEX_ERR_SHAPE, "%s %s: kernel %lldx%lld, strides %lldx%lld and dilations %lldx%lld must be positive",
                                   op, node, (long long)k[0], (long long)k[1], (long long)a->stride[0],
                                   (long long)a->stride[1], (long long)a->dilation[0], (long long)a->dilation[1]);
        int64_t ek = d * (k[i] - 1) + 1;
        if (a->auto_pad == ADVEX_AUTO_PAD_SAME_UPPER || a->auto_pad == ADVEX_AUTO_PAD_SAME_LOWER) {
            out[i] = ceil_div(in[i], s);
            int64_t tot = (out[i] - 1) * s + ek - in[i];
            if (tot < 0) tot = 0;
            if (a->auto_pad == ADVEX_AUTO_PAD_SAME_UPPER) { pb[i] = tot / 2; pe[i] = tot - pb[i]; }
            else { pe[i] = tot / 2; pb[i] = tot - pe[i]; }
            continue;
        }
        if (a->auto_pad == ADVEX_AUTO_PAD_VALID) {
            pb[i] = pe[i] = 0;
        } else if (a->auto_pad == ADVEX_AUTO_PAD_NOTSET) {
            pb[i] = a->pads[i];
            pe[i] = a->pads[i + 2];
        } else {
            return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s %s: unknown auto_pad %d", op, node, a->auto_pad);
        }
        if (pb[i] < 0 || pe[i] < 0)
            return advex_set_error(ADVEX_ERR_SHAPE, "%s %s: negative pads", op, node);
        int64_t span = in[i] + pb[i] + pe[i] - ek;
        if (span < 0) {
            int64_t ekh = a->dilation[0] * (k[0] - 1) + 1, ekw = a->dilation[1] * (k[1] - 1) + 1;
            int64_t ph = in[0] + a->pads[0] + a->pads[2], pw = in[1] + a->pads[1] + a->pads[3];
            if (a->auto_pad == ADVEX_AUTO_PAD_VALID) { ph = in[0]; pw = in[1]; }
            return advex_set_error(ADVEX_ERR_SHAPE, "%s %s: kernel %lldx%lld larger than padded input %lldx%lld", op,
                                   node, (long long)ekh, (long long)ekw, (long long)ph, (long long)pw);
        }
        if (pool && a->ceil_mode && a->auto_pad == ADVEX_AUTO_PAD_NOTSET) {
            out[i] = ceil_div(span, s) + 1;
            if ((out[i] - 1) * s >= in[i] + pb[i]) out[i]--; /* last window starts in the right pad */
        } else {
            out[i] = span / s + 1;
        }
    }
    p->SH = a->stride[0]; p->SW = a->stride[1];
    p->DH = a->dilation[0]; p->DW = a->dilation[1];
    p->PT = pb[0]; p->PL = pb[1]; p->PB = pe[0]; p->PR = pe[1];
    p->OH = out[0]; p->OW = out[1];
    return ADVEX_OK;
}

/* ---- raw kernels --------------------------------------------------------------------- */

static int conv_direct(const advex_conv2d_p *p) {
    return p->KH == 1 && p->KW == 1 && p->SH == 1 && p->SW == 1 && p->PT == 0 && p->PL == 0 &&
           p->PB == 0 && p->PR == 0;
}

int64_t advex_conv2d_scratch(const advex_conv2d_p *p) {
    if (conv_direct(p)) return 0;
    return (p->C / p->G) * p->KH * p->KW * p->OH * p->OW;
}

/* col (Cg*KH*KW, OH*OW) <- patches of x (Cg,H,W); zero where the window is in padding.
 * Serial on purpose, like col2im_add: it runs between sgemm calls, and OpenMP workers left
 * spinning after a parallel region take the cores from OpenBLAS's own (pthread) workers
 * (measured 3-10x slower conv on 2 cores). */
static void im2col(float *col, const float *x, int64_t Cg, const advex_conv2d_p *p) {
    int64_t K = Cg * p->KH * p->KW, P = p->OH * p->OW, H = p->H, W = p->W;
    for (int64_t r = 0; r < K; r++) {
        int64_t c = r / (p->KH * p->KW), ki = (r / p->KW) % p->KH, kj = r % p->KW;
        const float *xc = x + c * H * W;
        float *dst = col + r * P;
        for (int64_t oh = 0; oh < p->OH; oh++) {
            int64_t ih = oh * p->SH - p->PT + ki * p->DH;
            float *d = dst + oh * p->OW;
            if (ih < 0 || ih >= H) {
                memset(d, 0, (size_t)p->OW * sizeof(float));
                continue;
            }
            const float *xr = xc + ih * W;
            for (int64_t ow = 0; ow < p->OW; ow++) {
                int64_t iw = ow * p->SW - p->PL + kj * p->DW;
                d[ow] = (iw >= 0 && iw < W) ? xr[iw] : 0.0f;
            }
        }
    }
}

/* dx (Cg,H,W) += col2im(col (Cg*KH*KW, OH*OW)). Serial (see im2col). */
static void col2im_add(float *dx, const float *col, int64_t Cg, const advex_conv2d_p *p) {
    int64_t P = p->OH * p->OW, H = p->H, W = p->W;
    for (int64_t c = 0; c < Cg; c++) {
        float *dxc = dx + c * H * W;
        for (int64_t ki = 0; ki < p->KH; ki++)
            for (int64_t kj = 0; kj < p->KW; kj++) {
                const float *src = col + ((c * p->KH + ki) * p->KW + kj) * P;
                for (int64_t oh = 0; oh < p->OH; oh++) {
                    int64_t ih = oh * p->SH - p->PT + ki * p->DH;
                    if (ih < 0 || ih >= H) continue;
                    float *dr = dxc + ih * W;
                    const float *s = src + oh * p->OW;
                    for (int64_t ow = 0; ow < p->OW; ow++) {
                        int64_t iw = ow * p->SW - p->PL + kj * p->DW;
                        if (iw >= 0 && iw < W) dr[iw] += s[ow];
                    }
                }
            }
    }
}

/* out[n,m] = sum_{c,ki,kj} w[m,c,ki,kj] * x[n, g*Cg+c, oh*sh-pt+ki*dh, ow*sw-pl+kj*dw] + b[m] */
void advex_conv2d_forward(float *out, const float *x, const float *w, const float *b,
                          const advex_conv2d_p *p, float *scratch) {
    int64_t Cg = p->C / p->G, Mg = p->M / p->G, K = Cg * p->KH * p->KW, P = p->OH * p->OW;
    int direct = conv_direct(p);
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t g = 0; g < p->G; g++) {
            const float *xg = x + (n * p->C + g * Cg) * p->H * p->W; // (Cg,H,W)
            const float *col = xg;                                    // (K, P)
            if (!direct) {
                im2col(scratch, xg, Cg, p);
                col = scratch;
            }
            float *og = out + (n * p->M + g * Mg) * P; // (Mg, P)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Mg, (int)P, (int)K, 1.0f,
                        w + g * Mg * K, (int)K, col, (int)P, 0.0f, og, (int)P);
        }
    if (!b) return;
#pragma omp parallel for schedule(static) if (p->N * p->M * P >= ADVEX_OMP_MIN)
    for (int64_t nm = 0; nm < p->N * p->M; nm++) {
        float bv = b[nm % p->M], *o = out + nm * P;
        for (int64_t i = 0; i < P; i++) o[i] += bv;
    }
}

void advex_conv2d_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                           const float *w, const advex_conv2d_p *p, float *scratch) {
    int64_t Cg = p->C / p->G, Mg = p->M / p->G, K = Cg * p->KH * p->KW, P = p->OH * p->OW;
    int direct = conv_direct(p);
    for (int64_t n = 0; n < p->N && (dx || dw); n++)
        for (int64_t g = 0; g < p->G; g++) {
            const float *dog = dout + (n * p->M + g * Mg) * P; // (Mg, P)
            const float *wg = w + g * Mg * K;                  // (Mg, K)
            if (dw) {                                          // dW (Mg,K) += dY (Mg,P) col^T
                const float *xg = x + (n * p->C + g * Cg) * p->H * p->W;
                const float *col = xg;
                if (!direct) {
                    im2col(scratch, xg, Cg, p);
                    col = scratch;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Mg, (int)K, (int)P, 1.0f, dog,
                            (int)P, col, (int)P, 1.0f, dw + g * Mg * K, (int)K);
            }
            if (dx) { // dcol (K,P) = W^T (K,Mg) dY (Mg,P); dX += col2im(dcol)
                float *dxg = dx + (n * p->C + g * Cg) * p->H * p->W;
                if (direct) {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)Mg, 1.0f, wg,
                                (int)K, dog, (int)P, 1.0f, dxg, (int)P);
                } else {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)Mg, 1.0f, wg,
                                (int)K, dog, (int)P, 0.0f, scratch, (int)P);
                    col2im_add(dxg, scratch, Cg, p);
                }
            }
        }
    if (db) { /* dB[m] += sum over n and positions of dY (after the sgemm calls, see im2col) */
#pragma omp parallel for schedule(static) if (p->N * p->M * P >= ADVEX_OMP_MIN)
        for (int64_t m = 0; m < p->M; m++) {
            double s = 0.0;
            for (int64_t n = 0; n < p->N; n++) {
                const float *d = dout + (n * p->M + m) * P;
                for (int64_t i = 0; i < P; i++) s += d[i];
            }
            db[m] += (float)s;
        }
    }
}

void advex_conv2d_forward_ref(float *out, const float *x, const float *w, const float *b,
                              const advex_conv2d_p *p) {
    int64_t Cg = p->C / p->G, Mg = p->M / p->G;
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t m = 0; m < p->M; m++)
            for (int64_t oh = 0; oh < p->OH; oh++)
                for (int64_t ow = 0; ow < p->OW; ow++) {
                    double s = b ? b[m] : 0.0;
                    int64_t g = m / Mg;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t ki = 0; ki < p->KH; ki++)
                            for (int64_t kj = 0; kj < p->KW; kj++) {
                                int64_t ih = oh * p->SH - p->PT + ki * p->DH, iw = ow * p->SW - p->PL + kj * p->DW;
                                if (ih < 0 || ih >= p->H || iw < 0 || iw >= p->W) continue;
                                s += (double)w[((m * Cg + c) * p->KH + ki) * p->KW + kj] *
                                     x[((n * p->C + g * Cg + c) * p->H + ih) * p->W + iw];
                            }
                    out[((n * p->M + m) * p->OH + oh) * p->OW + ow] = (float)s;
                }
}

void advex_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dout,
                               const float *x, const float *w, const advex_conv2d_p *p) {
    int64_t Cg = p->C / p->G, Mg = p->M / p->G;
    for (int64_t n = 0; n < p->N; n++)
        for (int64_t m = 0; m < p->M; m++)
            for (int64_t oh = 0; oh < p->OH; oh++)
                for (int64_t ow = 0; ow < p->OW; ow++) {
                    float d = dout[((n * p->M + m) * p->OH + oh) * p->OW + ow];
                    int64_t g = m / Mg;
                    if (db) db[m] += d;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t ki = 0; ki < p->KH; ki++)
                            for (int64_t kj = 0; kj < p->KW; kj++) {
                                int64_t ih = oh * p->SH - p->PT + ki * p->DH, iw = ow * p->SW - p->PL + kj * p->DW;
                                if (ih < 0 || ih >= p->H || iw < 0 || iw >= p->W) continue;
                                int64_t xi = ((n * p->C + g * Cg + c) * p->H + ih) * p->W + iw;
                                int64_t wi = ((m * Cg + c) * p->KH + ki) * p->KW + kj;
                                if (dx) dx[xi] += d * w[wi];
                                if (dw) dw[wi] += d * x[xi];
                            }
                }
}

/* ---- the Conv op ------------------------------------------------------------------------ */

static advex_status conv_geom(const advex_node *nd, const advex_value *v, advex_conv2d_p *p) {
    const advex_value *X = &v[nd->in[0]], *W = &v[nd->in[1]];
    char bx[96], bw[96];
    if (X->ndim != 4 || W->ndim != 4)
        return advex_set_error(ADVEX_ERR_SHAPE, "Conv %s: need 2-D convolution, input %s and weight %s of rank 4",
                               nd->name, advex_shape_str(bx, sizeof bx, X->ndim, X->dims),
                               advex_shape_str(bw, sizeof bw, W->ndim, W->dims));
    memset(p, 0, sizeof *p);
    p->N = X->dims[0]; p->C = X->dims[1]; p->H = X->dims[2]; p->W = X->dims[3];
    p->M = W->dims[0]; p->KH = W->dims[2]; p->KW = W->dims[3];
    p->G = nd->a.group;
    if (p->G <= 0 || p->C % p->G != 0 || p->M % p->G != 0 || W->dims[1] * p->G != p->C)
        return advex_set_error(ADVEX_ERR_SHAPE, "Conv %s: input %s, weight %s and group %lld do not match", nd->name,
                               advex_shape_str(bx, sizeof bx, X->ndim, X->dims),
                               advex_shape_str(bw, sizeof bw, W->ndim, W->dims), (long long)nd->a.group);
    if ((nd->a.kernel[0] && nd->a.kernel[0] != p->KH) || (nd->a.kernel[1] && nd->a.kernel[1] != p->KW))
        return advex_set_error(ADVEX_ERR_SHAPE, "Conv %s: kernel_shape %lldx%lld differs from weight %s", nd->name,
                               (long long)nd->a.kernel[0], (long long)nd->a.kernel[1],
                               advex_shape_str(bw, sizeof bw, W->ndim, W->dims));
    if (nd->n_in > 2 && nd->in[2] >= 0) {
        const advex_value *B = &v[nd->in[2]];
        if (B->ndim != 1 || B->dims[0] != p->M)
            return advex_set_error(ADVEX_ERR_SHAPE, "Conv %s: bias %s, expected (%lld)", nd->name,
                                   advex_shape_str(bx, sizeof bx, B->ndim, B->dims), (long long)p->M);
    }
    return advex_window_geom(p, &nd->a, "Conv", nd->name, 0);
}

advex_status advex_conv_infer(advex_node *nd, advex_value *v) {
    advex_conv2d_p p;
    advex_status st = conv_geom(nd, v, &p);
    if (st) return st;
    int64_t dims[4] = {p.N, p.M, p.OH, p.OW};
    advex_set_shape(&v[nd->out[0]], 4, dims);
    return ADVEX_OK;
}

int64_t advex_conv_scratch(const advex_node *nd, const advex_value *v, int train) {
    advex_conv2d_p p;
    if (conv_geom(nd, v, &p)) return 0;
    return advex_conv2d_scratch(&p);
}

void advex_conv_forward(advex_node *nd, advex_value *v, advex_op_ctx *c) {
    advex_conv2d_p p;
    if (conv_geom(nd, v, &p)) return;
    const float *b = (nd->n_in > 2 && nd->in[2] >= 0) ? v[nd->in[2]].data : NULL;
    advex_conv2d_forward(v[nd->out[0]].data, v[nd->in[0]].data, v[nd->in[1]].data, b, &p, c->scratch);
}

void advex_conv_backward(advex_node *nd, advex_value *v, advex_op_ctx *c) {
    advex_conv2d_p p;
    if (conv_geom(nd, v, &p)) return;
    float *db = (nd->n_in > 2 && nd->in[2] >= 0) ? v[nd->in[2]].grad : NULL;
    advex_conv2d_backward(v[nd->in[0]].grad, v[nd->in[1]].grad, db, v[nd->out[0]].grad, v[nd->in[0]].data,
                          v[nd->in[1]].data, &p, c->scratch);
}
