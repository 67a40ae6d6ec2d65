/* Stride-2 convolutions through space-to-depth and full-width im2col.
 *
 * Split the input into its four pixel phases
 *     x'[(c,ph,pw)][i][j] = x[c][2i+ph-PT][2j+pw-PL]        (0 in the padding)
 * and tap (ki, kj) of a stride-2 convolution reads, for output (oh, ow),
 *     x[c][2oh+ki-PT][2ow+kj-PL] = x'[(c, ki&1, kj&1)][oh + ki/2][ow + kj/2],
 * a stride-1 shift of one phase plane. A stride-1 shift over planes of width Ws can be
 * computed on the full width Ws (the last Ws-OW columns of each output row are junk,
 * dropped when written back): then the im2col row of tap (c, ki, kj) is ONE contiguous slice
 * of OH*Ws floats, and col2im one contiguous vector add, where the direct form copied
 * strided rows of 7-14 floats (a quarter of the `small` model's FGSM time went to those
 * loops). The GEMM rows keep the kernel's own order (c, ki, kj), so w and dW are used in
 * place, and odd kernels need no zero taps. The price: Ws/OW more GEMM columns (8/7 for a
 * 7-wide output) and one pass over x (and dX) for the phase shuffle. Batched like conv.c:
 * each thread takes a range of images and runs one sgemm per chunk of images. */
#include <omp.h>
#include <string.h>

#include "ops/kernels.h"

#define S2_COLS 1024 /* aim for this many GEMM columns per chunk (as conv.c) */

typedef struct s2_plan {
    int64_t C4, Hs, Ws; /* phase channels, phase planes */
    int64_t K;          /* GEMM depth C*KH*KW */
    int64_t P;          /* columns per image OH*Ws */
    int64_t plane;      /* floats of one image's x' (+ tail the junk columns read) */
    int64_t nb, cols;   /* images per chunk, their columns */
    int64_t per_thread; /* x' + col + Y + dW */
} s2_plan;

/* Ungrouped, undilated stride 2 with a kernel of at least 2 on each side (1x1 is a plain
 * strided GEMM in conv.c). */
int advex_conv_s2_ok(const advex_conv2d_p *p) {
    return p->algo != ADVEX_CONV_GEMM && p->G == 1 && p->SH == 2 && p->SW == 2 && p->DH == 1 && p->DW == 1 &&
           p->OH > 0 && p->OW > 0 && p->KH >= 2 && p->KW >= 2 && p->KH <= 16 && p->KW <= 16 && p->PT < p->KH &&
           p->PL < p->KW;
}

static s2_plan s2_make(const advex_conv2d_p *p) {
    s2_plan s;
    s.C4 = 4 * p->C;
    s.Hs = p->OH + (p->KH - 1) / 2;
    s.Ws = p->OW + (p->KW - 1) / 2;
    s.K = p->C * p->KH * p->KW;
    s.P = p->OH * s.Ws;
    s.plane = (s.C4 * s.Hs * s.Ws + (p->KW + 1) / 2 + 15) / 16 * 16;
    s.nb = (S2_COLS + s.P - 1) / s.P;
    if (s.nb > p->N) s.nb = p->N;
    if (s.nb < 1) s.nb = 1;
    s.cols = s.nb * s.P;
    s.per_thread = (s.plane + (s.K + p->M) * s.cols + p->M * s.K + 15) / 16 * 16;
    return s;
}

int64_t advex_conv_s2_scratch(const advex_conv2d_p *p, int threads) {
    if (!advex_conv_s2_ok(p)) return 0;
    if (p->C > (1LL << 24) || p->M > (1LL << 24) || p->OH > (1LL << 20) || p->OW > (1LL << 20)) return 0;
    s2_plan s = s2_make(p);
    return s.per_thread * (threads < 1 ? 1 : threads);
}

/* x' of one image (C,H,W) into xs (C4, Hs, Ws) + zero tail */
static void s2_in(float *xs, const float *x, const advex_conv2d_p *p, const s2_plan *s) {
    for (int64_t c = 0; c < p->C; c++) {
        const float *xc = x + c * p->H * p->W;
        for (int ph = 0; ph < 2; ph++)
            for (int pw = 0; pw < 2; pw++) {
                float *o = xs + (c * 4 + ph * 2 + pw) * s->Hs * s->Ws;
                /* columns j with 0 <= 2j+pw-PL < W */
                int64_t off = pw - p->PL;
                int64_t j0 = off >= 0 ? 0 : (-off + 1) / 2, j1 = (p->W - off + 1) / 2;
                if (j1 > s->Ws) j1 = s->Ws;
                if (j0 > j1) j0 = j1;
                for (int64_t i = 0; i < s->Hs; i++) {
                    int64_t ih = 2 * i + ph - p->PT;
                    float *orow = o + i * s->Ws;
                    if (ih < 0 || ih >= p->H) {
                        memset(orow, 0, (size_t)s->Ws * sizeof(float));
                        continue;
                    }
                    const float *xr = xc + ih * p->W;
                    for (int64_t j = 0; j < j0; j++) orow[j] = 0.0f;
                    for (int64_t j = j0; j < j1; j++) orow[j] = xr[2 * j + off];
                    for (int64_t j = j1; j < s->Ws; j++) orow[j] = 0.0f;
                }
            }
    }
    memset(xs + s->C4 * s->Hs * s->Ws, 0, (size_t)(s->plane - s->C4 * s->Hs * s->Ws) * sizeof(float));
}

/* dx (C,H,W) (+)= the pixel-grid positions of dx' (C4, Hs, Ws) */
static void s2_out(float *dx, const float *dxs, const advex_conv2d_p *p, const s2_plan *s, int write) {
    for (int64_t c = 0; c < p->C; c++) {
        float *dc = dx + c * p->H * p->W;
        for (int64_t ih = 0; ih < p->H; ih++) {
            int64_t a = ih + p->PT, i = a >> 1, ph = a & 1;
            float *drow = dc + ih * p->W;
            if (i >= s->Hs) { /* rows no output window reaches */
                if (write) memset(drow, 0, (size_t)p->W * sizeof(float));
                continue;
            }
            const float *r0 = dxs + ((c * 4 + ph * 2) * s->Hs + i) * s->Ws; /* phase pw = 0 */
            const float *r1 = r0 + s->Hs * s->Ws;                         /* phase pw = 1 */
            for (int64_t iw = 0; iw < p->W; iw++) {
                int64_t b = iw + p->PL, j = b >> 1;
                float v = j < s->Ws ? ((b & 1) ? r1[j] : r0[j]) : 0.0f;
                drow[iw] = write ? v : drow[iw] + v;
            }
        }
    }
}

/* Where tap (c, ki, kj)'s slice starts in x' */
static inline int64_t s2_tap(int64_t c, int64_t ki, int64_t kj, const s2_plan *s) {
    return ((c * 4 + (ki & 1) * 2 + (kj & 1)) * s->Hs + ki / 2) * s->Ws + kj / 2;
}

/* col (K, ld) columns [j*P, (j+1)*P) <- x' of one image: one slice per tap */
static void s2_col(float *col, int64_t ld, const float *xs, const advex_conv2d_p *p, const s2_plan *s) {
    int64_t r = 0;
    for (int64_t c = 0; c < p->C; c++)
        for (int64_t ki = 0; ki < p->KH; ki++)
            for (int64_t kj = 0; kj < p->KW; kj++, r++)
                memcpy(col + r * ld, xs + s2_tap(c, ki, kj, s), (size_t)s->P * sizeof(float));
}

static int s2_threads(const advex_conv2d_p *p, const s2_plan *s, int64_t scratch_n) {
    int64_t t = omp_get_max_threads();
    if (t > scratch_n / s->per_thread) t = scratch_n / s->per_thread;
    if (t > p->N) t = p->N;
    if ((double)p->N * (double)s->P * (double)s->K * (double)p->M < 200000.0) t = 1;
    return t < 1 ? 1 : (int)t;
}

/* Plan and thread count; 0 when the path does not apply. */
static int s2_begin(s2_plan *s, const advex_conv2d_p *p, int64_t scratch_n) {
    if (!advex_conv_s2_ok(p) || scratch_n < advex_conv_s2_scratch(p, 1)) return 0;
    *s = s2_make(p);
    return s2_threads(p, s, scratch_n);
}

/* col (K, ld) for images [n, n+nb) of x, x' of each built in xs */
static void s2_fill(float *col, int64_t ld, float *xs, const float *x, int64_t n, int64_t nb,
                    const advex_conv2d_p *p, const s2_plan *s) {
    for (int64_t j = 0; j < nb; j++) {
        s2_in(xs, x + (n + j) * p->C * p->H * p->W, p, s);
        s2_col(col + j * s->P, ld, xs, p, s);
    }
}

int advex_conv_s2_forward(float *out, const float *x, const float *w, const float *b, const advex_conv2d_p *p,
                          float *scratch, int64_t scratch_n) {
    s2_plan s;
    int T = s2_begin(&s, p, scratch_n);
    if (!T) return 0;
    int64_t OHW = p->OH * p->OW;
#pragma omp parallel num_threads(T) if (T > 1)
    {
        int t = omp_get_thread_num();
        int64_t n0, n1;
        advex_share(p->N, T, t, &n0, &n1);
        float *xs = scratch + (int64_t)t * s.per_thread, *col = xs + s.plane, *yc = col + s.K * s.cols;
        for (int64_t n = n0; n < n1; n += s.nb) {
            int64_t nb = n1 - n < s.nb ? n1 - n : s.nb, ld = nb * s.P;
            s2_fill(col, ld, xs, x, n, nb, p, &s);
            advex_sgemm(0, 0, p->M, ld, s.K, 1.0f, w, s.K, col, ld, 0.0f, yc, ld);
            for (int64_t j = 0; j < nb; j++)
                for (int64_t m = 0; m < p->M; m++) {
                    float bv = b ? b[m] : 0.0f, *o = out + ((n + j) * p->M + m) * OHW;
                    const float *y = yc + m * ld + j * s.P;
                    for (int64_t oh = 0; oh < p->OH; oh++)
                        for (int64_t ow = 0; ow < p->OW; ow++) o[oh * p->OW + ow] = y[oh * s.Ws + ow] + bv;
                }
        }
    }
    return 1;
}

/* dx (written when write_dx, else accumulated) and dw (accumulated) of a stride-2 conv; db is
 * left to the caller. */
int advex_conv_s2_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                           const advex_conv2d_p *p, float *scratch, int64_t scratch_n, int write_dx) {
    if (!dx && !dw) return advex_conv_s2_ok(p) && scratch_n >= advex_conv_s2_scratch(p, 1);
    s2_plan s;
    int T = s2_begin(&s, p, scratch_n);
    if (!T) return 0;
    int64_t HW = p->H * p->W, OHW = p->OH * p->OW;
#pragma omp parallel num_threads(T) if (T > 1)
    {
        int t = omp_get_thread_num();
        int64_t n0, n1;
        advex_share(p->N, T, t, &n0, &n1);
        float *xs = scratch + (int64_t)t * s.per_thread, *col = xs + s.plane, *dyc = col + s.K * s.cols;
        float *dwt = dyc + p->M * s.cols; /* (M, K) this thread's dW */
        if (dw) memset(dwt, 0, (size_t)(p->M * s.K) * sizeof(float));
        for (int64_t n = n0; n < n1; n += s.nb) {
            int64_t nb = n1 - n < s.nb ? n1 - n : s.nb, ld = nb * s.P;
            for (int64_t j = 0; j < nb; j++) /* dY' (M, ld): full width, junk columns 0 */
                for (int64_t m = 0; m < p->M; m++) {
                    float *d = dyc + m * ld + j * s.P;
                    const float *g = dout + ((n + j) * p->M + m) * OHW;
                    for (int64_t oh = 0; oh < p->OH; oh++) {
                        memcpy(d + oh * s.Ws, g + oh * p->OW, (size_t)p->OW * sizeof(float));
                        for (int64_t ow = p->OW; ow < s.Ws; ow++) d[oh * s.Ws + ow] = 0.0f;
                    }
                }
            if (dw) {
                s2_fill(col, ld, xs, x, n, nb, p, &s);
                advex_sgemm(0, 1, p->M, s.K, ld, 1.0f, dyc, ld, col, ld, 1.0f, dwt, s.K);
            }
            if (!dx) continue;
            advex_sgemm(1, 0, s.K, ld, p->M, 1.0f, w, s.K, dyc, ld, 0.0f, col, ld); /* dcol */
            for (int64_t j = 0; j < nb; j++) {
                memset(xs, 0, (size_t)s.plane * sizeof(float));
                int64_t r = 0;
                for (int64_t c = 0; c < p->C; c++)
                    for (int64_t ki = 0; ki < p->KH; ki++)
                        for (int64_t kj = 0; kj < p->KW; kj++, r++) {
                            float *d = xs + s2_tap(c, ki, kj, &s);
                            const float *g = col + r * ld + j * s.P;
#pragma omp simd
                            for (int64_t i = 0; i < s.P; i++) d[i] += g[i];
                        }
                s2_out(dx + (n + j) * p->C * HW, xs, p, &s, write_dx);
            }
        }
    }
    if (dw) { /* add the per-thread dW in thread order */
        int64_t off = s.plane + (s.K + p->M) * s.cols;
        for (int64_t i = 0; i < p->M * s.K; i++) {
            float a = 0.0f;
            for (int t = 0; t < T; t++) a += scratch[(int64_t)t * s.per_thread + off + i];
            dw[i] += a;
        }
    }
    return 1;
}
