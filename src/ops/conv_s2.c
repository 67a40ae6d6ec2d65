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

/* ---- few taps (small's first conv: 1 input channel, 16 taps) ----------------------------
 * With K = C*KH*KW this small, im2col + sgemm is all overhead (OpenBLAS packs a 16-deep
 * product). In the full-width form each output plane (OH x Ws, junk columns included) is a
 * sum of K scaled slices of the phase planes, summed here directly in registers: 4 output
 * channels x 24 columns per block. The input gradient takes the transposed form: dX' (the 4C
 * phase planes, on width Wd = Ws + B) is a sum of K2 = M*KH2*KW2 scaled slices of dY padded by
 * A rows and B columns, with W''[(c,ph,pw)][(m,a,b)] = w[m][c][2a+ph][2b+pw] (0 past an odd
 * kernel's edge); then back to the pixel grid. The weight gradient stays on the GEMM path. */
#define S2_FEW_K 64
#define S2_FEW_K2 256

typedef float s2v8 __attribute__((vector_size(8 * sizeof(float))));

typedef struct s2_direct {
    int64_t KH2, KW2, A, B, Wd, K2, P2, dplane;
    int64_t per_thread; /* max(x' + Y, dY padded + dX') */
    int64_t wn;         /* W'' (C4, K2), shared */
} s2_direct;

static int s2_few_taps(const advex_conv2d_p *p) {
    return advex_conv_s2_ok(p) && p->C * p->KH * p->KW <= S2_FEW_K &&
           p->M * ((p->KH + 1) / 2) * ((p->KW + 1) / 2) <= S2_FEW_K2;
}

static s2_direct s2_direct_make(const advex_conv2d_p *p, const s2_plan *s) {
    s2_direct d;
    d.KH2 = (p->KH + 1) / 2;
    d.KW2 = (p->KW + 1) / 2;
    d.A = d.KH2 - 1;
    d.B = d.KW2 - 1;
    d.Wd = s->Ws + d.B;
    d.K2 = p->M * d.KH2 * d.KW2;
    d.P2 = s->Hs * d.Wd;
    d.dplane = (s->Hs + d.A + 1) * d.Wd;
    int64_t fwd = s->plane + p->M * s->P, bwd = p->M * d.dplane + s->C4 * d.P2;
    d.per_thread = ((fwd > bwd ? fwd : bwd) + 15) / 16 * 16;
    d.wn = (s->C4 * d.K2 + 15) / 16 * 16;
    return d;
}

/* (through a pointer: returning an AVX vector by value changes the ABI without -mavx, which
 * clang's -Wpsabi rejects in the portable builds) */
static inline void s2_ld(s2v8 *v, const float *p) { memcpy(v, p, sizeof *v); }

/* out[r][i] (rows ldo apart) = sum_k Wt[r][k] * src[k][i], r < R, i < P (Wt is R x K) */
static void s2_slice_sums(float *out, int64_t ldo, const float *Wt, int64_t R, int64_t K, const float *const *src,
                          int64_t P) {
    int64_t r = 0;
    for (; r + 4 <= R; r += 4) {
        const float *w0 = Wt + r * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        float *o0 = out + r * ldo, *o1 = o0 + ldo, *o2 = o1 + ldo, *o3 = o2 + ldo;
        int64_t i = 0;
        for (; i + 24 <= P; i += 24) {
            s2v8 a00 = {0}, a01 = {0}, a02 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a20 = {0}, a21 = {0}, a22 = {0},
                 a30 = {0}, a31 = {0}, a32 = {0};
            for (int64_t k = 0; k < K; k++) {
                const float *sk = src[k] + i;
                s2v8 s0, s1, s2;
                s2_ld(&s0, sk);
                s2_ld(&s1, sk + 8);
                s2_ld(&s2, sk + 16);
                float b0 = w0[k], b1 = w1[k], b2 = w2[k], b3 = w3[k];
                a00 += b0 * s0; a01 += b0 * s1; a02 += b0 * s2;
                a10 += b1 * s0; a11 += b1 * s1; a12 += b1 * s2;
                a20 += b2 * s0; a21 += b2 * s1; a22 += b2 * s2;
                a30 += b3 * s0; a31 += b3 * s1; a32 += b3 * s2;
            }
            memcpy(o0 + i, &a00, 32); memcpy(o0 + i + 8, &a01, 32); memcpy(o0 + i + 16, &a02, 32);
            memcpy(o1 + i, &a10, 32); memcpy(o1 + i + 8, &a11, 32); memcpy(o1 + i + 16, &a12, 32);
            memcpy(o2 + i, &a20, 32); memcpy(o2 + i + 8, &a21, 32); memcpy(o2 + i + 16, &a22, 32);
            memcpy(o3 + i, &a30, 32); memcpy(o3 + i + 8, &a31, 32); memcpy(o3 + i + 16, &a32, 32);
        }
        for (; i + 8 <= P; i += 8) {
            s2v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int64_t k = 0; k < K; k++) {
                s2v8 s0;
                s2_ld(&s0, src[k] + i);
                a0 += w0[k] * s0; a1 += w1[k] * s0; a2 += w2[k] * s0; a3 += w3[k] * s0;
            }
            memcpy(o0 + i, &a0, 32); memcpy(o1 + i, &a1, 32); memcpy(o2 + i, &a2, 32); memcpy(o3 + i, &a3, 32);
        }
        for (; i < P; i++) {
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                float v = src[k][i];
                a0 += w0[k] * v; a1 += w1[k] * v; a2 += w2[k] * v; a3 += w3[k] * v;
            }
            o0[i] = a0; o1[i] = a1; o2[i] = a2; o3[i] = a3;
        }
    }
    for (; r < R; r++) {
        const float *wr = Wt + r * K;
        float *o = out + r * ldo;
        for (int64_t i = 0; i < P; i++) o[i] = 0.0f;
        for (int64_t k = 0; k < K; k++) {
            const float *sk = src[k];
            float b = wr[k];
#pragma omp simd
            for (int64_t i = 0; i < P; i++) o[i] += b * sk[i];
        }
    }
}

int64_t advex_conv_s2_scratch(const advex_conv2d_p *p, int threads) {
    if (!advex_conv_s2_ok(p)) return 0;
    if (p->C > (1LL << 24) || p->M > (1LL << 24) || p->OH > (1LL << 20) || p->OW > (1LL << 20)) return 0;
    s2_plan s = s2_make(p);
    int64_t n = s.per_thread * (threads < 1 ? 1 : threads);
    if (s2_few_taps(p)) {
        s2_direct d = s2_direct_make(p, &s);
        int64_t dn = d.wn + d.per_thread * (threads < 1 ? 1 : threads);
        if (dn > n) n = dn;
    }
    return n;
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

/* dx (C,H,W) (+)= the pixel-grid positions of dx' (C4 planes cs floats apart, Hs rows rw
 * floats apart, of which the first Ws count) */
static void s2_out(float *dx, const float *dxs, int64_t cs, int64_t rw, const advex_conv2d_p *p, const s2_plan *s,
                   int write) {
    for (int64_t c = 0; c < p->C; c++) {
        float *dc = dx + c * p->H * p->W;
        for (int64_t ih = 0; ih < p->H; ih++) {
            int64_t a = ih + p->PT, i = a >> 1, ph = a & 1;
            float *drow = dc + ih * p->W;
            if (i >= s->Hs) { /* rows no output window reaches */
                if (write) memset(drow, 0, (size_t)p->W * sizeof(float));
                continue;
            }
            const float *r0 = dxs + (c * 4 + ph * 2) * cs + i * rw; /* phase pw = 0 */
            const float *r1 = r0 + cs;                            /* phase pw = 1 */
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

/* out (M, OH, OW) of one image = y's M full-width planes (ldy floats apart, rows rw floats
 * apart, of which the first OW count) + bias, through the fused Relu when p->relu */
static void s2_store(float *out, const float *y, int64_t ldy, int64_t rw, const float *b, const advex_conv2d_p *p) {
    int64_t OHW = p->OH * p->OW;
    for (int64_t m = 0; m < p->M; m++) {
        float bv = b ? b[m] : 0.0f, *o = out + m * OHW;
        const float *ym = y + m * ldy;
        for (int64_t oh = 0; oh < p->OH; oh++)
            for (int64_t ow = 0; ow < p->OW; ow++) o[oh * p->OW + ow] = advex_relu_if(ym[oh * rw + ow] + bv, p->relu);
    }
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

/* Threads for the few-taps path (at most T, bounded by its scratch); 0 when it does not fit. */
static int64_t s2_direct_threads(const advex_conv2d_p *p, const s2_direct *d, int T, int64_t scratch_n) {
    int64_t t = (scratch_n - d->wn) / d->per_thread;
    if (t > T) t = T;
    if (t > p->N) t = p->N;
    return t < 0 ? 0 : t;
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
    if (s2_few_taps(p)) {
        s2_direct d = s2_direct_make(p, &s);
        int64_t Td = s2_direct_threads(p, &d, T, scratch_n);
        if (Td) {
#pragma omp parallel for schedule(static) num_threads((int)Td) if (Td > 1)
            for (int64_t n = 0; n < p->N; n++) {
                float *xs = scratch + d.wn + (int64_t)omp_get_thread_num() * d.per_thread, *yf = xs + s.plane;
                const float *src[S2_FEW_K];
                s2_in(xs, x + n * p->C * p->H * p->W, p, &s);
                int64_t k = 0;
                for (int64_t c = 0; c < p->C; c++)
                    for (int64_t ki = 0; ki < p->KH; ki++)
                        for (int64_t kj = 0; kj < p->KW; kj++) src[k++] = xs + s2_tap(c, ki, kj, &s);
                s2_slice_sums(yf, s.P, w, p->M, s.K, src, s.P);
                s2_store(out + n * p->M * OHW, yf, s.P, s.Ws, b, p);
            }
            return 1;
        }
    }
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
            for (int64_t j = 0; j < nb; j++) s2_store(out + (n + j) * p->M * OHW, yc + j * s.P, ld, s.Ws, b, p);
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
    if (dx && s2_few_taps(p)) {
        s2_direct d = s2_direct_make(p, &s);
        int64_t Td = s2_direct_threads(p, &d, T, scratch_n);
        if (Td) {
            float *w2 = scratch; /* W'' (C4, K2) */
            for (int64_t c = 0; c < p->C; c++)
                for (int ph = 0; ph < 2; ph++)
                    for (int pw = 0; pw < 2; pw++)
                        for (int64_t m = 0; m < p->M; m++)
                            for (int64_t a = 0; a < d.KH2; a++)
                                for (int64_t bb = 0; bb < d.KW2; bb++) {
                                    int64_t ki = 2 * a + ph, kj = 2 * bb + pw;
                                    w2[(c * 4 + ph * 2 + pw) * d.K2 + (m * d.KH2 + a) * d.KW2 + bb] =
                                        ki < p->KH && kj < p->KW ? w[((m * p->C + c) * p->KH + ki) * p->KW + kj] : 0.0f;
                                }
#pragma omp parallel for schedule(static) num_threads((int)Td) if (Td > 1)
            for (int64_t n = 0; n < p->N; n++) {
                float *dp = scratch + d.wn + (int64_t)omp_get_thread_num() * d.per_thread, *dx2 = dp + p->M * d.dplane;
                const float *src[S2_FEW_K2];
                memset(dp, 0, (size_t)(p->M * d.dplane) * sizeof(float));
                for (int64_t m = 0; m < p->M; m++)
                    for (int64_t oh = 0; oh < p->OH; oh++)
                        memcpy(dp + m * d.dplane + (oh + d.A) * d.Wd + d.B, dout + ((n * p->M + m) * p->OH + oh) * p->OW,
                               (size_t)p->OW * sizeof(float));
                int64_t k = 0;
                for (int64_t m = 0; m < p->M; m++)
                    for (int64_t a = 0; a < d.KH2; a++)
                        for (int64_t bb = 0; bb < d.KW2; bb++) src[k++] = dp + m * d.dplane + (d.A - a) * d.Wd + d.B - bb;
                s2_slice_sums(dx2, d.P2, w2, s.C4, d.K2, src, d.P2);
                s2_out(dx + n * p->C * HW, dx2, d.P2, d.Wd, p, &s, write_dx);
            }
            dx = NULL;
            if (!dw) return 1;
        }
    }
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
                s2_out(dx + (n + j) * p->C * HW, xs, s.Hs * s.Ws, s.Ws, p, &s, write_dx);
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

/* ---- few taps, stride 1 (cnn's and resnet's first conv: one input channel) --------------
 * The same register-blocked slice sums over the zero-padded input planes (Hp x Wp, the
 * output computed on the full width Wp = OW + KW - 1): the forward pass only; the input
 * gradient stays on im2col + sgemm, whose depth there is the output channel count. */
typedef struct s1_few {
    int64_t Hp, Wp, K, P, plane, per_thread;
} s1_few;

int advex_conv_few_s1_ok(const advex_conv2d_p *p) {
    return p->algo != ADVEX_CONV_GEMM && p->G == 1 && p->SH == 1 && p->SW == 1 && p->DH == 1 && p->DW == 1 &&
           p->OH > 0 && p->OW > 0 && (p->KH > 1 || p->KW > 1) && p->C * p->KH * p->KW <= S2_FEW_K &&
           p->PT < p->KH && p->PL < p->KW;
}

static s1_few s1_make(const advex_conv2d_p *p) {
    s1_few f;
    f.Hp = p->OH + p->KH - 1;
    f.Wp = p->OW + p->KW - 1;
    f.K = p->C * p->KH * p->KW;
    f.P = p->OH * f.Wp;
    f.plane = (p->C * f.Hp * f.Wp + p->KW + 15) / 16 * 16;
    f.per_thread = f.plane + (p->M * f.P + 15) / 16 * 16;
    return f;
}

int64_t advex_conv_few_s1_scratch(const advex_conv2d_p *p, int threads) {
    if (!advex_conv_few_s1_ok(p) || p->M > (1LL << 24) || p->OH > (1LL << 20) || p->OW > (1LL << 20)) return 0;
    return s1_make(p).per_thread * (threads < 1 ? 1 : threads);
}

int advex_conv_few_s1_forward(float *out, const float *x, const float *w, const float *b, const advex_conv2d_p *p,
                              float *scratch, int64_t scratch_n) {
    if (!advex_conv_few_s1_ok(p)) return 0;
    s1_few f = s1_make(p);
    int64_t T = scratch_n / f.per_thread, OHW = p->OH * p->OW, HW = p->H * p->W;
    if (T > omp_get_max_threads()) T = omp_get_max_threads();
    if (T > p->N) T = p->N;
    if (T < 1) return 0;
#pragma omp parallel for schedule(static) num_threads((int)T) if (T > 1)
    for (int64_t n = 0; n < p->N; n++) {
        float *xp = scratch + (int64_t)omp_get_thread_num() * f.per_thread, *yf = xp + f.plane;
        const float *src[S2_FEW_K];
        memset(xp, 0, (size_t)f.plane * sizeof(float));
        for (int64_t c = 0; c < p->C; c++) /* xp[c][i][j] = x[c][i - PT][j - PL] */
            for (int64_t ih = 0; ih < p->H; ih++) {
                int64_t i = ih + p->PT;
                if (i >= f.Hp) break;
                int64_t j0 = p->PL, nw = p->W < f.Wp - j0 ? p->W : f.Wp - j0;
                if (nw > 0)
                    memcpy(xp + (c * f.Hp + i) * f.Wp + j0, x + (n * p->C + c) * HW + ih * p->W, (size_t)nw * sizeof(float));
            }
        int64_t k = 0;
        for (int64_t c = 0; c < p->C; c++)
            for (int64_t ki = 0; ki < p->KH; ki++)
                for (int64_t kj = 0; kj < p->KW; kj++) src[k++] = xp + (c * f.Hp + ki) * f.Wp + kj;
        s2_slice_sums(yf, f.P, w, p->M, f.K, src, f.P);
        s2_store(out + n * p->M * OHW, yf, f.P, f.Wp, b, p);
    }
    return 1;
}
