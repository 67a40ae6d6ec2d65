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

#include "ops/dispatch.h"

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
#if ADVEX_ISA_BASE /* geometry and sizes: compiled once (dispatch.h) */
int advex_conv_s2_ok(const advex_conv2d_p *p) {
    return p->algo != ADVEX_CONV_GEMM && p->G == 1 && p->SH == 2 && p->SW == 2 && p->DH == 1 && p->DW == 1 &&
           p->OH > 0 && p->OW > 0 && p->KH >= 2 && p->KW >= 2 && p->KH <= 16 && p->KW <= 16 && p->PT < p->KH &&
           p->PL < p->KW;
}
#endif

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

/* ---- few taps (small's two convs: 16 and 256 taps) ---------------------------------------
 * With K = C*KH*KW up to a few hundred, im2col + sgemm is mostly overhead: the im2col copy
 * (K floats per output position, 50 KB per image for small's conv2) streams through L2 and
 * OpenBLAS packs a shallow product. In the full-width form each output plane (OH x Ws, junk
 * columns included) is a sum of K scaled slices of the phase planes, summed here directly in
 * registers (s2_tile*: 4 output channels x 24 columns per block). The input gradient takes
 * the transposed form: dX' (the 4C phase planes, on width Wd = Ws) is a sum of K2 =
 * M*KH2*KW2 scaled slices of dY padded by A rows and B columns, with W''[(c,ph,pw)][(m,a,b)] =
 * w[m][c][2a+ph][2b+pw] (0 past an odd kernel's edge); then back to the pixel grid. The
 * weight gradient stays on the GEMM path. Small's conv2 (batch 128, 1 thread): forward 4.3
 * -> 2.4 ms, input gradient 4.3 -> 2.9 ms against im2col + sgemm. */
#define S2_FEW_K 256  /* stride 2: up to small's second conv (16 channels, 4x4) */
#define S2_FEW_K2 256
#define S1_FEW_K 64   /* stride 1 (above it Winograd wins) */

typedef float s2v8 __attribute__((vector_size(8 * sizeof(float))));

typedef struct s2_direct {
    int64_t KH2, KW2, A, B, Wd, K2, P2, dplane;
    int64_t per_thread; /* max(x' + Y, dY padded + dX' + one image's masked dY) */
    int64_t wn;         /* W'' (C4, K2), shared */
} s2_direct;

static int s2_few_taps(const advex_conv2d_p *p) {
    return advex_conv_s2_ok(p) && p->C * p->KH * p->KW <= S2_FEW_K &&
           p->M * ((p->KH + 1) / 2) * ((p->KW + 1) / 2) <= S2_FEW_K2;
}

/* The transposed form sums 4*KH2*KW2 taps per (input, output) channel pair: an odd kernel
 * leaves a quarter or more of them zero (a 3x3 fills 9 of 16), which only pays while the
 * im2col overhead dominates (resnet's 16-channel 3x3/2 input gradient at batch 128: 10.4 ms
 * on the GEMM path, 11.5 ms direct). */
static int s2_few_taps_dx(const advex_conv2d_p *p) {
    return s2_few_taps(p) && (p->C * p->KH * p->KW <= S1_FEW_K || (p->KH % 2 == 0 && p->KW % 2 == 0));
}

static s2_direct s2_direct_make(const advex_conv2d_p *p, const s2_plan *s) {
    s2_direct d;
    d.KH2 = (p->KH + 1) / 2;
    d.KW2 = (p->KW + 1) / 2;
    d.A = d.KH2 - 1;
    d.B = d.KW2 - 1;
    d.Wd = s->Ws; /* B + OW = Ws: a row's last slices run into the next row's B zero columns */
    d.K2 = p->M * d.KH2 * d.KW2;
    d.P2 = s->Hs * d.Wd;
    d.dplane = (s->Hs + d.A + 1) * d.Wd;
    int64_t fwd = s->plane + p->M * s->P, bwd = p->M * d.dplane + s->C4 * d.P2 + p->M * p->OH * p->OW;
    d.per_thread = ((fwd > bwd ? fwd : bwd) + 15) / 16 * 16;
    d.wn = (s->C4 * d.K2 + 15) / 16 * 16;
    return d;
}

/* (through a pointer: returning an AVX vector by value changes the ABI without -mavx, which
 * clang's -Wpsabi rejects in the portable builds) */
static inline void s2_ld(s2v8 *v, const float *p) { memcpy(v, p, sizeof *v); }

static inline void s2_st(float *p, const s2v8 *v) { memcpy(p, v, sizeof *v); }

/* The register tiles of s2_slice_sums: rows [r, r+RB) (weights Wt + r*K, outputs out + r*ldo)
 * by columns [i, i+8*VB), reduced over all K taps. Each tap loads VB slice vectors and
 * broadcasts RB weights for RB*VB FMAs, with RB*VB (>= 8) independent sums in flight: 4x3
 * over the bulk of a plane; the last one or two vectors of a row take 8x1 or 4x2 (a 4x1
 * tail waits on FMA latency, 4 sums for 4-cycle FMAs: a third of conv2's time in `small`). */
static void s2_tile4x3(float *o, int64_t ldo, const float *w, int64_t K, const float *const *src, int64_t i) {
    const float *w0 = w, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
    s2v8 a00 = {0}, a01 = {0}, a02 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a20 = {0}, a21 = {0}, a22 = {0}, a30 = {0},
         a31 = {0}, a32 = {0};
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
    float *o0 = o + i, *o1 = o0 + ldo, *o2 = o1 + ldo, *o3 = o2 + ldo;
    s2_st(o0, &a00); s2_st(o0 + 8, &a01); s2_st(o0 + 16, &a02);
    s2_st(o1, &a10); s2_st(o1 + 8, &a11); s2_st(o1 + 16, &a12);
    s2_st(o2, &a20); s2_st(o2 + 8, &a21); s2_st(o2 + 16, &a22);
    s2_st(o3, &a30); s2_st(o3 + 8, &a31); s2_st(o3 + 16, &a32);
}

static void s2_tile4x2(float *o, int64_t ldo, const float *w, int64_t K, const float *const *src, int64_t i) {
    const float *w0 = w, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
    s2v8 a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0}, a30 = {0}, a31 = {0};
    for (int64_t k = 0; k < K; k++) {
        const float *sk = src[k] + i;
        s2v8 s0, s1;
        s2_ld(&s0, sk);
        s2_ld(&s1, sk + 8);
        float b0 = w0[k], b1 = w1[k], b2 = w2[k], b3 = w3[k];
        a00 += b0 * s0; a01 += b0 * s1;
        a10 += b1 * s0; a11 += b1 * s1;
        a20 += b2 * s0; a21 += b2 * s1;
        a30 += b3 * s0; a31 += b3 * s1;
    }
    float *o0 = o + i, *o1 = o0 + ldo, *o2 = o1 + ldo, *o3 = o2 + ldo;
    s2_st(o0, &a00); s2_st(o0 + 8, &a01);
    s2_st(o1, &a10); s2_st(o1 + 8, &a11);
    s2_st(o2, &a20); s2_st(o2 + 8, &a21);
    s2_st(o3, &a30); s2_st(o3 + 8, &a31);
}

static void s2_tile8x1(float *o, int64_t ldo, const float *w, int64_t K, const float *const *src, int64_t i) {
    s2v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
    for (int64_t k = 0; k < K; k++) {
        s2v8 s0;
        s2_ld(&s0, src[k] + i);
        a0 += w[k] * s0; a1 += w[K + k] * s0; a2 += w[2 * K + k] * s0; a3 += w[3 * K + k] * s0;
        a4 += w[4 * K + k] * s0; a5 += w[5 * K + k] * s0; a6 += w[6 * K + k] * s0; a7 += w[7 * K + k] * s0;
    }
    o += i;
    s2_st(o, &a0); s2_st(o + ldo, &a1); s2_st(o + 2 * ldo, &a2); s2_st(o + 3 * ldo, &a3);
    s2_st(o + 4 * ldo, &a4); s2_st(o + 5 * ldo, &a5); s2_st(o + 6 * ldo, &a6); s2_st(o + 7 * ldo, &a7);
}

static void s2_tile4x1(float *o, int64_t ldo, const float *w, int64_t K, const float *const *src, int64_t i) {
    s2v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int64_t k = 0; k < K; k++) {
        s2v8 s0;
        s2_ld(&s0, src[k] + i);
        a0 += w[k] * s0; a1 += w[K + k] * s0; a2 += w[2 * K + k] * s0; a3 += w[3 * K + k] * s0;
    }
    o += i;
    s2_st(o, &a0); s2_st(o + ldo, &a1); s2_st(o + 2 * ldo, &a2); s2_st(o + 3 * ldo, &a3);
}

/* out[r][i] (rows ldo apart) = sum_k Wt[r][k] * src[k][i], r < R, i < P (Wt is R x K) */
static void s2_slice_sums(float *out, int64_t ldo, const float *Wt, int64_t R, int64_t K, const float *const *src,
                          int64_t P) {
    int64_t R4 = R / 4 * 4, R8 = R / 8 * 8, P24 = P / 24 * 24, P8 = P / 8 * 8;
    for (int64_t r = 0; r < R4; r += 4)
        for (int64_t i = 0; i < P24; i += 24) s2_tile4x3(out + r * ldo, ldo, Wt + r * K, K, src, i);
    if (P8 - P24 == 16) {
        for (int64_t r = 0; r < R4; r += 4) s2_tile4x2(out + r * ldo, ldo, Wt + r * K, K, src, P24);
    } else if (P8 - P24 == 8) {
        for (int64_t r = 0; r < R8; r += 8) s2_tile8x1(out + r * ldo, ldo, Wt + r * K, K, src, P24);
        for (int64_t r = R8; r < R4; r += 4) s2_tile4x1(out + r * ldo, ldo, Wt + r * K, K, src, P24);
    }
    for (int64_t r = 0; r < R4; r++) { /* the last P - P8 columns */
        const float *wr = Wt + r * K;
        float *o = out + r * ldo;
        for (int64_t i = P8; i < P; i++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++) acc += wr[k] * src[k][i];
            o[i] = acc;
        }
    }
    for (int64_t r = R4; r < R; r++) { /* the last R - R4 rows, all columns */
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

#if ADVEX_ISA_BASE
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
#endif

/* Input column iw lands in phase (iw+PL)&1 at column (iw+PL)>>1: even columns 2t in phase
 * PL&1 at t + PL/2, odd ones 2t+1 in the other phase at t + (PL+1)/2. Only the first wn
 * columns (and hn rows) reach x' (the rest fall past Ws or Hs). */
typedef struct s2_cols {
    int64_t wn, hn, oe, oo;
    int swap; /* even columns go to phase pw = 1 */
} s2_cols;

static s2_cols s2_cols_of(const advex_conv2d_p *p, const s2_plan *s) {
    s2_cols k;
    k.wn = 2 * s->Ws - p->PL < p->W ? 2 * s->Ws - p->PL : p->W;
    k.hn = 2 * s->Hs - p->PT < p->H ? 2 * s->Hs - p->PT : p->H;
    k.oe = p->PL >> 1;
    k.oo = (p->PL + 1) >> 1;
    k.swap = (int)(p->PL & 1);
    return k;
}

/* x' of one image (C,H,W) into xs (C4, Hs, Ws) + zero tail: zero it, then each input row
 * splits into its two phase rows (one pass; the even/odd split vectorises on wide rows) */
static void s2_in(float *xs, const float *x, const advex_conv2d_p *p, const s2_plan *s) {
    s2_cols k = s2_cols_of(p, s);
    int64_t HsWs = s->Hs * s->Ws, half = k.wn >> 1;
    memset(xs, 0, (size_t)s->plane * sizeof(float));
    for (int64_t c = 0; c < p->C; c++)
        for (int64_t ih = 0; ih < k.hn; ih++) {
            int64_t a = ih + p->PT;
            const float *restrict xr = x + (c * p->H + ih) * p->W;
            float *r0 = xs + (c * 4 + (a & 1) * 2) * HsWs + (a >> 1) * s->Ws, *r1 = r0 + HsWs;
            float *restrict e = (k.swap ? r1 : r0) + k.oe, *restrict o = (k.swap ? r0 : r1) + k.oo;
            for (int64_t t = 0; t < half; t++) {
                e[t] = xr[2 * t];
                o[t] = xr[2 * t + 1];
            }
            if (k.wn & 1) e[half] = xr[k.wn - 1];
        }
}

/* dx (C,H,W) (+)= the pixel-grid positions of dx' (C4 planes cs floats apart, Hs rows rw
 * floats apart, of which the first Ws count): the inverse of s2_in's split */
static void s2_out(float *dx, const float *dxs, int64_t cs, int64_t rw, const advex_conv2d_p *p, const s2_plan *s,
                   int write) {
    s2_cols k = s2_cols_of(p, s);
    int64_t half = k.wn >> 1;
    for (int64_t c = 0; c < p->C; c++)
        for (int64_t ih = 0; ih < p->H; ih++) {
            float *restrict d = dx + (c * p->H + ih) * p->W;
            if (ih >= k.hn) { /* rows no output window reaches */
                if (write) memset(d, 0, (size_t)p->W * sizeof(float));
                continue;
            }
            int64_t a = ih + p->PT;
            const float *r0 = dxs + (c * 4 + (a & 1) * 2) * cs + (a >> 1) * rw, *r1 = r0 + cs;
            const float *restrict e = (k.swap ? r1 : r0) + k.oe, *restrict o = (k.swap ? r0 : r1) + k.oo;
            if (write) {
                for (int64_t t = 0; t < half; t++) {
                    d[2 * t] = e[t];
                    d[2 * t + 1] = o[t];
                }
                if (k.wn & 1) d[k.wn - 1] = e[half];
                for (int64_t iw = k.wn; iw < p->W; iw++) d[iw] = 0.0f;
            } else {
                for (int64_t t = 0; t < half; t++) {
                    d[2 * t] += e[t];
                    d[2 * t + 1] += o[t];
                }
                if (k.wn & 1) d[k.wn - 1] += e[half];
            }
        }
}

/* d[i] = dY[i], or 0 where a fused Relu's mask m (its output) is not positive (vectorised: a
 * branch on the mask mispredicts half the time) */
static inline void s2_dy(float *restrict d, const float *restrict g, const float *restrict m, int64_t n) {
    if (m) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float v = g[i]; /* (read unconditionally: a plain load, not a masked one) */
            d[i] = m[i] > 0.0f ? v : 0.0f;
        }
    } else
        for (int64_t i = 0; i < n; i++) d[i] = g[i];
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
        float bv = b ? b[m] : 0.0f, *restrict o = out + m * OHW;
        const float *restrict ym = y + m * ldy;
        for (int64_t oh = 0; oh < p->OH; oh++, o += p->OW, ym += rw)
            if (p->relu) {
#pragma omp simd
                for (int64_t ow = 0; ow < p->OW; ow++) o[ow] = advex_relu_if(ym[ow] + bv, 1);
            } else {
#pragma omp simd
                for (int64_t ow = 0; ow < p->OW; ow++) o[ow] = ym[ow] + bv;
            }
    }
}

/* s2_store for y in scratch (written): bias and Relu over each whole full-width plane (one
 * vectorised pass; the 7-wide rows of `small`'s conv2 left masked or scalar loops), then the
 * rows copied by whole 8-float vectors in increasing order, each vector's spill past OW
 * overwritten by the next row (the next channel's first for a channel's last row); rows whose
 * vectors would pass the end of the output or of y are copied exactly. */
static void s2_store_fast(float *out, float *y, int64_t ldy, int64_t rw, const float *b, const advex_conv2d_p *p) {
    int64_t OHW = p->OH * p->OW, n = p->OH * rw, nv = (p->OW + 7) / 8;
    if (p->OW > 32) { s2_store(out, y, ldy, rw, b, p); return; }
    for (int64_t m = 0; m < p->M; m++) {
        float bv = b ? b[m] : 0.0f, *restrict ym = y + m * ldy;
        if (p->relu) {
#pragma omp simd
            for (int64_t i = 0; i < n; i++) ym[i] = advex_relu_if(ym[i] + bv, 1);
        } else {
#pragma omp simd
            for (int64_t i = 0; i < n; i++) ym[i] = ym[i] + bv;
        }
    }
    const float *out_end = out + p->M * OHW, *y_end = y + (p->M - 1) * ldy + n;
    for (int64_t m = 0; m < p->M; m++)
        for (int64_t oh = 0; oh < p->OH; oh++) {
            float *o = out + m * OHW + oh * p->OW;
            const float *src = y + m * ldy + oh * rw;
            if (o + 8 * nv > out_end || src + 8 * nv > y_end) { /* the last rows: exactly */
                memcpy(o, src, (size_t)p->OW * sizeof(float));
                continue;
            }
            for (int64_t v = 0; v < nv; v++) memcpy(o + 8 * v, src + 8 * v, 8 * sizeof(float));
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

int ADVEX_ISA_FN(advex_conv_s2_forward)(float *out, const float *x, const float *w, const float *b,
                                        const advex_conv2d_p *p, float *scratch, int64_t scratch_n) {
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
                s2_store_fast(out + n * p->M * OHW, yf, s.P, s.Ws, b, p);
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

/* dx (written when write_dx, else accumulated) and dw (accumulated) of a stride-2 conv, dY
 * masked by p->dmask when set; db is left to the caller. With dx and dw NULL: whether this
 * path takes the convolution (scratch_n floats of scratch). */
int ADVEX_ISA_FN(advex_conv_s2_backward)(float *dx, float *dw, const float *dout, const float *x, const float *w,
                                         const advex_conv2d_p *p, float *scratch, int64_t scratch_n, int write_dx) {
    if (!dx && !dw) return advex_conv_s2_ok(p) && scratch_n >= advex_conv_s2_scratch(p, 1);
    s2_plan s;
    int T = s2_begin(&s, p, scratch_n);
    if (!T) return 0;
    int64_t HW = p->H * p->W, OHW = p->OH * p->OW;
    if (dx && s2_few_taps_dx(p)) {
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
                const float *g = dout + n * p->M * OHW;
                if (p->dmask) { /* this image's dY, masked (one vectorised pass in L1) */
                    float *gm = dx2 + s.C4 * d.P2;
                    s2_dy(gm, g, p->dmask + n * p->M * OHW, p->M * OHW);
                    g = gm;
                }
                for (int64_t m = 0; m < p->M; m++)
                    for (int64_t oh = 0; oh < p->OH; oh++)
                        memcpy(dp + m * d.dplane + (oh + d.A) * d.Wd + d.B, g + (m * p->OH + oh) * p->OW,
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
                    int64_t o = ((n + j) * p->M + m) * OHW;
                    for (int64_t oh = 0; oh < p->OH; oh++) {
                        s2_dy(d + oh * s.Ws, dout + o + oh * p->OW, p->dmask ? p->dmask + o + oh * p->OW : NULL, p->OW);
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

#if ADVEX_ISA_BASE
int advex_conv_few_s1_ok(const advex_conv2d_p *p) {
    return p->algo != ADVEX_CONV_GEMM && p->G == 1 && p->SH == 1 && p->SW == 1 && p->DH == 1 && p->DW == 1 &&
           p->OH > 0 && p->OW > 0 && (p->KH > 1 || p->KW > 1) && p->C * p->KH * p->KW <= S1_FEW_K &&
           p->PT < p->KH && p->PL < p->KW;
}

int64_t advex_conv_few_s1_scratch(const advex_conv2d_p *p, int threads) {
    if (!advex_conv_few_s1_ok(p) || p->M > (1LL << 24) || p->OH > (1LL << 20) || p->OW > (1LL << 20)) return 0;
    return s1_make(p).per_thread * (threads < 1 ? 1 : threads);
}
#endif

int ADVEX_ISA_FN(advex_conv_few_s1_forward)(float *out, const float *x, const float *w, const float *b,
                                            const advex_conv2d_p *p, float *scratch, int64_t scratch_n) {
    if (!advex_conv_few_s1_ok(p)) return 0;
    s1_few f = s1_make(p);
    int64_t T = scratch_n / f.per_thread, OHW = p->OH * p->OW, HW = p->H * p->W;
    if (T > omp_get_max_threads()) T = omp_get_max_threads();
    if (T > p->N) T = p->N;
    if (T < 1) return 0;
#pragma omp parallel for schedule(static) num_threads((int)T) if (T > 1)
    for (int64_t n = 0; n < p->N; n++) {
        float *xp = scratch + (int64_t)omp_get_thread_num() * f.per_thread, *yf = xp + f.plane;
        const float *src[S1_FEW_K];
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
        s2_store_fast(out + n * p->M * OHW, yf, f.P, f.Wp, b, p);
    }
    return 1;
}
