/* Conv (ONNX, 2-D): im2col + cblas_sgemm forward, sgemm + col2im backward, OpenMP over
 * the batch with one sgemm per chunk of images; dW only when asked for. Also the window geometry (strides, dilations, pads, auto_pad, ceil_mode)
 * that pool.c shares, and naive reference kernels the tests check the fast path against. */
#include <math.h>
#include <omp.h>
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

/* The fast path parallelises over the batch: each OpenMP thread takes a contiguous range of
 * images and works through it in units that keep the im2col buffer in L2 cache:
 *  - small images (OH*OW small): a chunk of `nb` images, col (K, nb*P), one sgemm per chunk
 *    (the tiny per-image products of small channel counts, e.g. conv1 of `small`, 16x196x16,
 *    are call-overhead bound; batched they are not), the result scattered back to NCHW;
 *  - large images: one image in tiles of `rt` output rows, col (K, rt*OW), the sgemm
 *    writing straight into the output rows (ldc = OH*OW).
 *   forward:  col = im2col(unit); Y = W col (+ bias)
 *   backward: dW_t += dY col^T; dcol = W^T dY; dX += col2im(dcol)
 * Every sgemm runs single-threaded inside our parallel region (OpenBLAS's OpenMP build
 * notices omp_in_parallel(); see src/core/threads.c), so one thread pool does everything.
 * Per-thread dW partial sums are reduced in thread order: deterministic for a thread count. */

static int conv_direct(const advex_conv2d_p *p) {
    return p->KH == 1 && p->KW == 1 && p->SH == 1 && p->SW == 1 && p->PT == 0 && p->PL == 0 &&
           p->PB == 0 && p->PR == 0;
}

/* Aim for this many GEMM columns per sgemm call, and at most this many bytes of im2col per
 * thread. Measured on the built-in archs: tiles that fit L2 (96-384 KiB) were 5-15% slower
 * than whole-image chunks (smaller sgemm calls), so the cap only bounds scratch for large
 * images. */
#define CONV_COLS 1024
#define CONV_TILE_BYTES (4 * 1024 * 1024)

typedef struct conv_plan {
    int64_t Cg, Mg, K, P; /* K = Cg*KH*KW rows of col, P = OH*OW */
    int64_t nb;           /* images per chunk (1 when tiling rows) */
    int64_t rt;           /* output rows per tile (OH when not tiling) */
    int64_t cols;         /* columns of the col buffer */
    int64_t per_thread;   /* scratch floats per thread */
    int direct;           /* 1x1, stride 1, no pad: x is its own col */
} conv_plan;

static conv_plan conv_plan_make(const advex_conv2d_p *p) {
    conv_plan c;
    c.Cg = p->C / p->G;
    c.Mg = p->M / p->G;
    c.K = c.Cg * p->KH * p->KW;
    c.P = p->OH * p->OW;
    c.direct = conv_direct(p);
    int64_t fit = CONV_TILE_BYTES / (int64_t)sizeof(float) / (c.K > 0 ? c.K : 1); /* columns that fit */
    c.nb = 1;
    c.rt = p->OH;
    if (!c.direct && c.P > fit && p->OW > 0) { /* tile the rows of one image */
        c.rt = fit / p->OW;
        if (c.rt < 1) c.rt = 1;
        if (c.rt > p->OH) c.rt = p->OH;
    } else if (c.P > 0 && c.P < CONV_COLS) { /* batch several images per sgemm */
        int64_t want = (CONV_COLS + c.P - 1) / c.P, cap = fit / c.P;
        c.nb = want < cap ? want : cap;
        if (c.nb > p->N) c.nb = p->N;
        if (c.nb < 1) c.nb = 1;
    }
    c.cols = c.nb > 1 ? c.nb * c.P : c.rt * p->OW;
    /* col/dcol (K, cols) + gathered Y/dY (Mg, cols) + private dW (M, K) */
    c.per_thread = (c.K + c.Mg) * c.cols + p->M * c.K;
    c.per_thread = (c.per_thread + 15) / 16 * 16;
    return c;
}

int64_t advex_conv2d_scratch(const advex_conv2d_p *p, int threads) {
    conv_plan c = conv_plan_make(p);
    if (threads < 1) threads = 1;
    /* conv_plan_make's sum again, overflow-checked: -1 (the plan reports it) when a hostile
     * geometry makes it unrepresentable */
    int64_t a, b, t;
    if (!advex_add_i64(c.K, c.Mg, &a) || !advex_mul_i64(a, c.cols, &a) || !advex_mul_i64(p->M, c.K, &b) ||
        !advex_add_i64(a, b, &a) || !advex_add_i64(a, 15, &a) || !advex_mul_i64(a / 16 * 16, threads, &t))
        return -1;
    if (t < (1LL << 40)) { /* geometries this small cannot overflow the Winograd sum */
        int64_t wn = advex_wino_scratch(p, threads);
        if (wn > t) t = wn;
        int64_t sn = advex_conv_s2_scratch(p, threads);
        if (sn > t) t = sn;
        sn = advex_conv_few_s1_scratch(p, threads);
        if (sn > t) t = sn;
        sn = advex_conv_group_scratch(p, threads);
        if (sn > t) t = sn;
    }
    return t;
}

/* Threads to use: bounded by the scratch we were given, the batch, and the work. */
static int conv_threads(const advex_conv2d_p *p, const conv_plan *c, int64_t scratch_n) {
    int64_t t = omp_get_max_threads();
    if (t > scratch_n / c->per_thread) t = scratch_n / c->per_thread;
    if (t > p->N) t = p->N;
    if ((double)p->N * (double)c->P * (double)c->K * (double)c->Mg * (double)p->G < 200000.0) t = 1;
    return t < 1 ? 1 : (int)t;
}

/* col (Cg*KH*KW, ldc) <- patches of x (Cg,H,W) for output rows [oh0, oh1) (column
 * (oh-oh0)*OW + ow); zero where the window is in padding. */
static void im2col(float *col, int64_t ldc, const float *x, int64_t Cg, const advex_conv2d_p *p, int64_t oh0,
                   int64_t oh1) {
    int64_t H = p->H, W = p->W, OW = p->OW, SW = p->SW;
    float *dst = col - oh0 * OW;
    for (int64_t c = 0; c < Cg; c++) {
        const float *xc = x + c * H * W;
        for (int64_t ki = 0; ki < p->KH; ki++)
            for (int64_t kj = 0; kj < p->KW; kj++, dst += ldc) {
                int64_t off = kj * p->DW - p->PL; /* iw = ow*SW + off */
                /* valid ow: 0 <= ow*SW + off < W */
                int64_t ow0 = off >= 0 ? 0 : (-off + SW - 1) / SW;
                int64_t ow1 = W - off <= 0 ? 0 : (W - off + SW - 1) / SW;
                if (ow1 > OW) ow1 = OW;
                if (ow0 > ow1) ow0 = ow1;
                for (int64_t oh = oh0; oh < oh1; oh++) {
                    int64_t ih = oh * p->SH - p->PT + ki * p->DH;
                    float *d = dst + oh * OW;
                    if (ih < 0 || ih >= H) {
                        memset(d, 0, (size_t)OW * sizeof(float));
                        continue;
                    }
                    const float *xr = xc + ih * W;
                    for (int64_t ow = 0; ow < ow0; ow++) d[ow] = 0.0f;
                    if (SW == 1)
                        memcpy(d + ow0, xr + ow0 + off, (size_t)(ow1 - ow0) * sizeof(float));
                    else
                        for (int64_t ow = ow0; ow < ow1; ow++) d[ow] = xr[ow * SW + off];
                    for (int64_t ow = ow1; ow < OW; ow++) d[ow] = 0.0f;
                }
            }
    }
}

/* dx (Cg,H,W) += col2im(col (Cg*KH*KW, ldc)) for output rows [oh0, oh1). */
static void col2im_add(float *dx, const float *col, int64_t ldc, int64_t Cg, const advex_conv2d_p *p,
                       int64_t oh0, int64_t oh1) {
    int64_t H = p->H, W = p->W, OW = p->OW, SW = p->SW;
    for (int64_t c = 0; c < Cg; c++) {
        float *dxc = dx + c * H * W;
        for (int64_t ki = 0; ki < p->KH; ki++)
            for (int64_t kj = 0; kj < p->KW; kj++) {
                const float *src = col + ((c * p->KH + ki) * p->KW + kj) * ldc - oh0 * OW;
                int64_t off = kj * p->DW - p->PL;
                int64_t ow0 = off >= 0 ? 0 : (-off + SW - 1) / SW;
                int64_t ow1 = W - off <= 0 ? 0 : (W - off + SW - 1) / SW;
                if (ow1 > OW) ow1 = OW;
                for (int64_t oh = oh0; oh < oh1; oh++) {
                    int64_t ih = oh * p->SH - p->PT + ki * p->DH;
                    if (ih < 0 || ih >= H) continue;
                    float *dr = dxc + ih * W;
                    const float *s = src + oh * OW;
                    if (SW == 1) {
                        for (int64_t ow = ow0; ow < ow1; ow++) dr[ow + off] += s[ow];
                    } else {
                        for (int64_t ow = ow0; ow < ow1; ow++) dr[ow * SW + off] += s[ow];
                    }
                }
            }
    }
}


/* col (K, ld) columns [j*P, (j+1)*P) <- image xs (Cg,H,W), all rows */
static void fill_col(float *col, int64_t ld, const float *xs, const conv_plan *c, const advex_conv2d_p *p) {
    if (c->direct)
        for (int64_t r = 0; r < c->K; r++) memcpy(col + r * ld, xs + r * c->P, (size_t)c->P * sizeof(float));
    else
        im2col(col, ld, xs, c->Cg, p, 0, p->OH);
}

/* out[n,m] = sum_{c,ki,kj} w[m,c,ki,kj] * x[n, g*Cg+c, oh*sh-pt+ki*dh, ow*sw-pl+kj*dw] + b[m] */
void advex_conv2d_forward(float *out, const float *x, const float *w, const float *b,
                          const advex_conv2d_p *p, float *scratch, int64_t scratch_n) {
    advex_conv2d_forward_u(out, x, w, NULL, b, p, scratch, scratch_n);
}

void advex_conv2d_forward_u(float *out, const float *x, const float *w, const float *U, const float *b,
                            const advex_conv2d_p *p, float *scratch, int64_t scratch_n) {
    if (advex_wino_forward(out, x, w, U, b, p, scratch, scratch_n)) return;
    if (advex_conv_s2_forward(out, x, w, b, p, scratch, scratch_n)) return;
    if (advex_conv_few_s1_forward(out, x, w, b, p, scratch, scratch_n)) return;
    if (advex_conv_group_forward(out, x, w, b, p, scratch, scratch_n)) return;
    conv_plan c = conv_plan_make(p);
    int T = conv_threads(p, &c, scratch_n);
    int64_t K = c.K, P = c.P, Mg = c.Mg, Cg = c.Cg, HW = p->H * p->W, OW = p->OW;
#pragma omp parallel num_threads(T) if (T > 1)
    {
        int t = omp_get_thread_num();
        int64_t n0, n1;
        advex_share(p->N, T, t, &n0, &n1);
        float *col = scratch + (int64_t)t * c.per_thread; /* (K, cols) */
        float *yc = col + K * c.cols;                      /* (Mg, cols) */
        for (int64_t n = n0; n < n1; n += c.nb) {
            int64_t nb = n1 - n < c.nb ? n1 - n : c.nb, ld = nb * P;
            for (int64_t g = 0; g < p->G; g++) {
                const float *wg = w + g * Mg * K;
                if (nb == 1) { /* row tiles straight into the output */
                    const float *xs = x + (n * p->C + g * Cg) * HW;
                    float *og = out + (n * p->M + g * Mg) * P;
                    for (int64_t oh0 = 0; oh0 < p->OH; oh0 += c.rt) {
                        int64_t oh1 = oh0 + c.rt < p->OH ? oh0 + c.rt : p->OH, nc = (oh1 - oh0) * OW;
                        const float *src = xs;
                        int64_t lds = P;
                        if (!c.direct) { im2col(col, nc, xs, Cg, p, oh0, oh1); src = col; lds = nc; }
                        advex_sgemm(0, 0, Mg, nc, K, 1.0f, wg, K, src, lds, 0.0f, og + oh0 * OW, P);
                        if (b || p->relu)
                            for (int64_t m = 0; m < Mg; m++) {
                                float bv = b ? b[g * Mg + m] : 0.0f, *o = og + m * P + oh0 * OW;
                                for (int64_t i = 0; i < nc; i++) o[i] = advex_relu_if(o[i] + bv, p->relu);
                            }
                    }
                    continue;
                }
                for (int64_t j = 0; j < nb; j++) fill_col(col + j * P, ld, x + ((n + j) * p->C + g * Cg) * HW, &c, p);
                advex_sgemm(0, 0, Mg, ld, K, 1.0f, wg, K, col, ld, 0.0f, yc, ld);
                for (int64_t j = 0; j < nb; j++)
                    for (int64_t m = 0; m < Mg; m++) {
                        float *o = out + ((n + j) * p->M + g * Mg + m) * P;
                        const float *s = yc + m * ld + j * P;
                        float bv = b ? b[g * Mg + m] : 0.0f;
                        for (int64_t i = 0; i < P; i++) o[i] = advex_relu_if(s[i] + bv, p->relu);
                    }
            }
        }
    }
}

void advex_conv2d_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                           const float *w, const advex_conv2d_p *p, float *scratch, int64_t scratch_n) {
    advex_conv2d_backward_mode(dx, dw, db, dout, x, w, NULL, p, scratch, scratch_n, 0);
}

void advex_conv2d_backward_mode(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                                const float *U, const advex_conv2d_p *p, float *scratch, int64_t scratch_n,
                                int write_dx) {
    if (dx && advex_wino_backward_data(dx, dout, w, U, p, !write_dx, scratch, scratch_n)) dx = NULL; /* dW below */
    if (dx && advex_conv_group_backward_data(dx, dout, w, p, write_dx, scratch, scratch_n)) dx = NULL;
    if (dw && advex_wino_backward_weights(dw, dout, x, p, scratch, scratch_n)) dw = NULL;
    if ((dx || dw) && advex_conv_s2_backward(dx, dw, dout, x, w, p, scratch, scratch_n, write_dx))
        dx = dw = NULL; /* db below */
    if (dx && write_dx) { /* the im2col path scatters with += */
        int64_t nx = p->N * p->C * p->H * p->W;
#pragma omp parallel for schedule(static) if (nx >= ADVEX_OMP_MIN)
        for (int64_t i = 0; i < nx; i++) dx[i] = 0.0f;
    }
    conv_plan c = conv_plan_make(p);
    int T = conv_threads(p, &c, scratch_n);
    int64_t K = c.K, P = c.P, Mg = c.Mg, Cg = c.Cg, HW = p->H * p->W, OW = p->OW;
    if (dx || dw) {
#pragma omp parallel num_threads(T) if (T > 1)
        {
            int t = omp_get_thread_num();
            int64_t n0, n1;
            advex_share(p->N, T, t, &n0, &n1);
            float *col = scratch + (int64_t)t * c.per_thread; /* (K, cols): col, then dcol */
            float *dyc = col + K * c.cols;                     /* (Mg, cols) */
            float *dwt = dyc + Mg * c.cols;                    /* (M, K) this thread's dW */
            if (dw) memset(dwt, 0, (size_t)(p->M * K) * sizeof(float));
            for (int64_t n = n0; n < n1; n += c.nb) {
                int64_t nb = n1 - n < c.nb ? n1 - n : c.nb, ld = nb * P;
                for (int64_t g = 0; g < p->G; g++) {
                    const float *wg = w + g * Mg * K;
                    if (nb == 1) { /* row tiles of one image; dY read in place (ld P) */
                        const float *xs = x + (n * p->C + g * Cg) * HW;
                        const float *dyg = dout + (n * p->M + g * Mg) * P;
                        float *dxs = dx ? dx + (n * p->C + g * Cg) * HW : NULL;
                        for (int64_t oh0 = 0; oh0 < p->OH; oh0 += c.rt) {
                            int64_t oh1 = oh0 + c.rt < p->OH ? oh0 + c.rt : p->OH, nc = (oh1 - oh0) * OW;
                            const float *dyt = dyg + oh0 * OW;
                            if (dw) { /* dW (Mg,K) += dY (Mg, nc) col^T (nc, K) */
                                if (c.direct) {
                                    advex_sgemm(0, 1, Mg, K, nc, 1.0f, dyt, P, xs + oh0 * OW, P, 1.0f, dwt + g * Mg * K, K);
                                } else {
                                    im2col(col, nc, xs, Cg, p, oh0, oh1);
                                    advex_sgemm(0, 1, Mg, K, nc, 1.0f, dyt, P, col, nc, 1.0f, dwt + g * Mg * K, K);
                                }
                            }
                            if (!dxs) continue;
                            if (c.direct) { /* dX (C, nc) += W^T dY */
                                advex_sgemm(1, 0, K, nc, Mg, 1.0f, wg, K, dyt, P, 1.0f, dxs + oh0 * OW, P);
                                continue;
                            }
                            advex_sgemm(1, 0, K, nc, Mg, 1.0f, wg, K, dyt, P, 0.0f, col, nc);
                            col2im_add(dxs, col, nc, Cg, p, oh0, oh1);
                        }
                        continue;
                    }
                    for (int64_t j = 0; j < nb; j++) /* gather dY (Mg, ld) */
                        for (int64_t m = 0; m < Mg; m++)
                            memcpy(dyc + m * ld + j * P, dout + ((n + j) * p->M + g * Mg + m) * P,
                                   (size_t)P * sizeof(float));
                    if (dw) { /* dW (Mg,K) += dY (Mg, ld) col^T (ld, K) */
                        for (int64_t j = 0; j < nb; j++)
                            fill_col(col + j * P, ld, x + ((n + j) * p->C + g * Cg) * HW, &c, p);
                        advex_sgemm(0, 1, Mg, K, ld, 1.0f, dyc, ld, col, ld, 1.0f, dwt + g * Mg * K, K);
                    }
                    if (!dx) continue;
                    /* dcol (K, ld) = W^T (K,Mg) dY (Mg, ld) */
                    advex_sgemm(1, 0, K, ld, Mg, 1.0f, wg, K, dyc, ld, 0.0f, col, ld);
                    for (int64_t j = 0; j < nb; j++) {
                        float *dxs = dx + ((n + j) * p->C + g * Cg) * HW;
                        if (c.direct) {
                            for (int64_t r = 0; r < K; r++) {
                                float *d = dxs + r * P;
                                const float *s = col + r * ld + j * P;
                                for (int64_t i = 0; i < P; i++) d[i] += s[i];
                            }
                        } else {
                            col2im_add(dxs, col + j * P, ld, Cg, p, 0, p->OH);
                        }
                    }
                }
            }
        }
        if (dw) { /* reduce the per-thread partial sums in thread order */
            int64_t MK = p->M * K, off = (K + Mg) * c.cols;
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1 && MK * T >= ADVEX_OMP_MIN)
            for (int64_t i = 0; i < MK; i++) {
                float s = 0.0f;
                for (int t = 0; t < T; t++) s += scratch[(int64_t)t * c.per_thread + off + i];
                dw[i] += s;
            }
        }
    }
    if (db) { /* dB[m] += sum over n and positions of dY */
#pragma omp parallel for schedule(static) if (p->N * p->M * P >= ADVEX_OMP_MIN)
        for (int64_t m = 0; m < p->M; m++) {
            double s = 0.0;
            for (int64_t n = 0; n < p->N; n++) {
                const float *d = dout + (n * p->M + m) * P;
                float sf = 0.0f;
                for (int64_t i = 0; i < P; i++) sf += d[i];
                s += sf;
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
    p->algo = nd->a.precise ? ADVEX_CONV_PRECISE : ADVEX_CONV_AUTO;
    return advex_window_geom(p, &nd->a, "Conv", nd->name, 0);
}

advex_status advex_conv_infer(const advex_node *nd, advex_value *v) {
    advex_conv2d_p p;
    advex_status st = conv_geom(nd, v, &p);
    if (st) return st;
    int64_t dims[4] = {p.N, p.M, p.OH, p.OW};
    advex_set_shape(&v[nd->out[0]], 4, dims);
    return ADVEX_OK;
}

/* Folded weights that only feed the Winograd transform live in scratch, past what the
 * convolution itself needs (conv_cache below). */
static int conv_fold_in_scratch(const advex_node *nd, const advex_conv2d_p *p, int train) {
    return !train && nd->fold > 0 && advex_wino_u_size(p, 0) > 0;
}

int64_t advex_conv_scratch(const advex_node *nd, const advex_value *v, int train) {
    advex_conv2d_p p;
    if (conv_geom(nd, v, &p)) return 0;
    /* for the threads the kernels will see: a plan lays itself out with its own thread count
     * in force (one for a batch-parallel part, plan.c) */
    int threads = omp_get_max_threads();
    int64_t n = advex_conv2d_scratch(&p, threads);
    if (train && n >= 0) { /* the Winograd weight gradient */
        int64_t w = advex_wino_dw_scratch(&p, threads);
        if (w > n) n = w;
    }
    if (n >= 0 && conv_fold_in_scratch(nd, &p, train)) {
        const advex_value *W = &v[nd->in[1]];
        n = (n + 15) / 16 * 16 + (advex_numel(W->ndim, W->dims) + 15) / 16 * 16;
    }
    return n;
}

/* aux: a cache of the Winograd-transformed kernels, valid while the weights have the
 * signature kept next to them (attacks call the same weights thousands of times; at batch 1
 * the transform cost 10x the convolution). Layout: [valid, pad, signature of w (8 words)]
 * [U fwd][U grad], then in eval plans of a Conv that folds the BatchNorm after it (fuse.c,
 * mark_bn_folds) [copy of BatchNorm scale, B, mean, var and the conv bias][folded w, unless
 * only the Winograd transform reads it: then in scratch, past the convolution's own][folded
 * bias], U fwd then being the folded kernel's. Laying a plan out zeroes the valid flag, so a
 * new plan starts invalid; training changes the weights every step and simply re-transforms.
 * The signature (conv_sig) replaced a full copy of w: the caches of resnet18 held 7.5 times
 * its weights. */
typedef struct conv_cache {
    float *valid, *sig, *uf, *ub;
    float *key, *wf, *bf; /* folding (NULL when not) */
    int64_t nw, M;
    int64_t own;          /* scratch the convolution uses; wf in scratch lies past it */
} conv_cache;

/* Signature of the weights: 8 lanes of h = (h ^ word) * odd over their bit patterns. Each step
 * is a bijection of h for a fixed word and of the word for a fixed h, so a change to any one
 * weight always changes its lane; several changes cancel in a lane with probability about
 * 2^-32, in all eight at once (a training step changes them all) about 2^-256. One pass
 * over w, as the memcmp against a copy was. */
static void conv_sig(const float *w, int64_t n, uint32_t h[8]) {
    for (int k = 0; k < 8; k++) h[k] = 0x811c9dc5u + 0x9e3779b9u * (uint32_t)k;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            uint32_t u;
            memcpy(&u, w + i + k, sizeof u);
            h[k] = (h[k] ^ u) * 0x01000193u;
        }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, w + i, sizeof u);
        h[i & 7] = (h[i & 7] ^ u) * 0x01000193u;
    }
    h[0] ^= (uint32_t)n;
}

static int64_t conv_cache_base(const advex_conv2d_p *p) {
    return 16 + advex_wino_u_size(p, 0) + advex_wino_u_size(p, 1);
}

static int64_t conv_cache_fold(int64_t nw, int64_t M, int wf_in_aux) {
    return (5 * M + 15) / 16 * 16 + (wf_in_aux ? (nw + 15) / 16 * 16 : 0) + (M + 15) / 16 * 16;
}

static int conv_cache_at(conv_cache *cc, const advex_node *nd, const advex_value *v, const advex_op_ctx *c,
                         const advex_conv2d_p *p) {
    if (!c->aux) return 0;
    const advex_value *W = &v[nd->in[1]];
    cc->nw = advex_numel(W->ndim, W->dims);
    cc->M = p->M;
    cc->valid = c->aux;
    cc->sig = c->aux + 8;
    int64_t nf = advex_wino_u_size(p, 0), base = conv_cache_base(p);
    cc->uf = nf ? c->aux + 16 : NULL;
    cc->ub = advex_wino_u_size(p, 1) ? c->aux + 16 + nf : NULL;
    cc->key = cc->wf = cc->bf = NULL;
    cc->own = c->scratch_n;
    int in_scratch = conv_fold_in_scratch(nd, p, c->train);
    if (nd->fold > 0 && c->aux_n >= base + conv_cache_fold(cc->nw, p->M, !in_scratch)) {
        cc->key = c->aux + base;
        float *after = cc->key + (5 * p->M + 15) / 16 * 16;
        if (in_scratch) { /* past the convolution's own scratch (advex_conv_scratch added the room) */
            int64_t own = (advex_conv2d_scratch(p, omp_get_max_threads()) + 15) / 16 * 16;
            if (own < 0 || own + cc->nw > c->scratch_n) return 0; /* (cannot happen: no cache then) */
            cc->own = own;
            cc->wf = c->scratch + own;
            cc->bf = after;
        } else {
            cc->wf = after;
            cc->bf = cc->wf + (cc->nw + 15) / 16 * 16;
        }
    }
    return 1;
}

int64_t advex_conv_aux(const advex_node *nd, const advex_value *v, int train) {
    advex_conv2d_p p;
    if (conv_geom(nd, v, &p)) return 0;
    int64_t nf = advex_wino_u_size(&p, 0), nb = advex_wino_u_size(&p, 1);
    int fold = !train && nd->fold > 0;
    if (!nf && !nb && !fold) return 0;
    const advex_value *W = &v[nd->in[1]];
    int64_t nw = advex_numel(W->ndim, W->dims);
    return conv_cache_base(&p) + (fold ? conv_cache_fold(nw, p.M, !conv_fold_in_scratch(nd, &p, train)) : 0);
}

/* The folded BatchNorm's parameters and the conv bias equal the cached key? Copies them in
 * when not. */
static int fold_key_same(conv_cache *cc, const advex_node *nd, const advex_value *v, const float *b) {
    int same = 1;
    for (int k = 0; k < 5; k++) {
        const float *src = k < 4 ? v[nd->fold_v[k + 1]].data : b;
        float *dst = cc->key + k * cc->M;
        if (!src) {
            for (int64_t m = 0; m < cc->M; m++) {
                same &= dst[m] == 0.0f;
                dst[m] = 0.0f;
            }
        } else if (memcmp(dst, src, (size_t)cc->M * sizeof(float))) {
            same = 0;
            memcpy(dst, src, (size_t)cc->M * sizeof(float));
        }
    }
    return same;
}

/* Transformed kernels (and folded weights) for the current weights: from the cache,
 * refreshed when w (or the folded BatchNorm) changed. */
static void conv_cache_refresh(conv_cache *cc, const advex_node *nd, const advex_value *v, const float *w,
                               const float *b, const advex_conv2d_p *p) {
    uint32_t h[8];
    conv_sig(w, cc->nw, h);
    int same = cc->valid[0] == 1.0f && !memcmp(cc->sig, h, sizeof h);
    if (cc->key) same &= fold_key_same(cc, nd, v, b); /* always run: it refreshes the key */
    if (same) return;
    if (cc->key) { /* BatchNorm(conv(x, w) + b) = conv(x, w a) + b a + (B - mean a), a = scale / sqrt(var + eps) */
        const float *scale = cc->key, *bb = cc->key + cc->M, *mean = cc->key + 2 * cc->M, *var = cc->key + 3 * cc->M,
                    *cb = cc->key + 4 * cc->M;
        int64_t per = cc->nw / cc->M;
        for (int64_t m = 0; m < cc->M; m++) {
            float a = scale[m] * (1.0f / sqrtf(var[m] + nd->fold_eps));
            for (int64_t i = 0; i < per; i++) cc->wf[m * per + i] = w[m * per + i] * a;
            cc->bf[m] = cb[m] * a + (bb[m] - mean[m] * a);
        }
    }
    if (cc->uf) advex_wino_weights(cc->uf, cc->key ? cc->wf : w, p, 0);
    if (cc->ub) advex_wino_weights(cc->ub, w, p, 1);
    memcpy(cc->sig, h, sizeof h);
    cc->valid[0] = 1.0f;
}

void advex_conv_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    advex_conv2d_p p;
    if (conv_geom(nd, v, &p)) return;
    const float *b = (nd->n_in > 2 && nd->in[2] >= 0) ? v[nd->in[2]].data : NULL, *w = v[nd->in[1]].data;
    float *out = v[nd->out[0]].data;
    conv_cache cc = {0};
    const float *U = NULL;
    if (conv_cache_at(&cc, nd, v, c, &p)) {
        conv_cache_refresh(&cc, nd, v, w, b, &p);
        U = cc.uf;
        if (cc.key && !c->train) { /* the BatchNorm after it is folded in: write its output */
            w = cc.wf;
            b = cc.bf;
            out = v[nd->fold_v[0]].data;
            p.relu = nd->fold_relu;
        }
    }
    if (out == v[nd->out[0]].data) p.relu = nd->relu_out;
    /* (with the folded weights in scratch, the convolution gets only its own part of it:
     * they stay intact through the call, though with U given it does not read them) */
    advex_conv2d_forward_u(out, v[nd->in[0]].data, w, U, b, &p, c->scratch, U && cc.wf ? cc.own : c->scratch_n);
}

void advex_conv_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    advex_conv2d_p p;
    if (conv_geom(nd, v, &p)) return;
    float *db = (nd->n_in > 2 && nd->in[2] >= 0) ? v[nd->in[2]].grad : NULL;
    const float *w = v[nd->in[1]].data, *U = NULL;
    conv_cache cc;
    if (v[nd->in[0]].grad && conv_cache_at(&cc, nd, v, c, &p)) {
        /* w is the forward's (updates come after backward) */
        conv_cache_refresh(&cc, nd, v, w, (nd->n_in > 2 && nd->in[2] >= 0) ? v[nd->in[2]].data : NULL, &p);
        U = cc.ub;
    }
    float *dy = v[nd->out[0]].grad;
    if (nd->relu_mask) { /* a fused Relu's backward (fuse.c, mark_aliases): dY *= [y > 0] */
        const float *y = v[nd->out[0]].data;
        if (!db && advex_conv_s2_backward(NULL, NULL, NULL, NULL, NULL, &p, c->scratch, c->scratch_n, 0))
            p.dmask = y; /* applied as the stride-2 path copies dY */
        else
            advex_relu_mask(dy, y, p.N * p.M * p.OH * p.OW);
    }
    advex_conv2d_backward_mode(v[nd->in[0]].grad, v[nd->in[1]].grad, db, dy, v[nd->in[0]].data, w, U, &p, c->scratch,
                               c->scratch_n, v[nd->in[0]].grad_write);
}
