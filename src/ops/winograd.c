/* Winograd minimal-filtering convolution F(m x m, r x r) for stride-1, dilation-1,
 * ungrouped convolutions with square 3x3 or 5x5 kernels: the forward pass and the
 * gradient with respect to the input (which is itself such a convolution of the output
 * gradient with the flipped, channel-transposed kernel). Attacks spend almost all their
 * time in these two. Training also gets the weight gradient (the last section below).
 *
 * For an alpha x alpha input tile d (alpha = m + r - 1) and kernel g, one output tile is
 *     Y = A^T [ (G g G^T) .* (B^T d B) ] A
 * which costs alpha^2 multiplies per m^2 outputs instead of r^2 m^2. Summed over input
 * channels the elementwise product becomes alpha^2 independent GEMMs
 *     M_xi (K x T) = U_xi (K x C) V_xi (C x T)
 * over a chunk of T tiles (tiles of several images are batched together, so small planes
 * still make full chunks). A, G, B come from tools/gen_winograd.py (Toom-Cook at 0, +-1,
 * +-2 and infinity, exact rationals, B^T rows scaled to max |entry| 1) as straight-line
 * 1-D transforms in winograd_tf.h. Eight tiles are transformed at once with GCC vector
 * extensions (AVX with -march=native, SSE pairs otherwise), and the GEMMs use a 6x16
 * register-tile kernel written the same way (OpenBLAS on these skinny products spent more
 * time packing and zeroing than multiplying).
 *
 * Every output element is computed from its own tile only, in a fixed order: results do not
 * depend on the thread count or on how the batch is chunked. tests/test_perf_paths.c checks
 * both passes against the reference kernels. */
#include <omp.h>
#include <string.h>

#include "ops/dispatch.h"

#define WG_MAXA 8
#define WG_L 8 /* tiles per vector */

typedef float v8f __attribute__((vector_size(WG_L * sizeof(float))));

#include "ops/winograd_tf.h"

typedef void (*wg_1d)(v8f *restrict o, ptrdiff_t os, const v8f *restrict s, ptrdiff_t ss);

struct wg_prob;
typedef struct wg_lane wg_lane;
typedef void (*wg_in_fn)(float *V, int64_t ldv, const float *x, const wg_lane *L, int64_t c, const struct wg_prob *q);
typedef void (*wg_out_fn)(float *out, const float *Mx, int64_t ldm, const wg_lane *L, int64_t nl, int64_t k,
                          float bias, int accumulate, const struct wg_prob *q);
/* one transform family F(m, r): B^T and A^T as straight-line code, G as a table */
typedef struct wg_tf {
    int m, r, a;
    const float *G; /* a x r */
    wg_in_fn in;   /* data transform of WG_L tiles of one channel */
    wg_out_fn out; /* output transform of WG_L tiles of one channel */
} wg_tf;

#define WG_FAMILY(M, R) {M, R, M + R - 1, &wg_G_##M##_##R[0][0], wg_in_##M##_##R, wg_out_##M##_##R}

/* A correlation problem in Winograd form: input (N, C, H, W) read with top/left padding
 * PT, PL (zeros outside), output (N, K, OH, OW), kernel r x r, stride 1. */
struct wg_prob {
    int64_t N, C, H, W, K, OH, OW, PT, PL;
    const wg_tf *tf;
    int64_t TH, TW, TI, TT; /* tiles per column/row, per image, in all */
    int64_t Tc;             /* tiles per chunk (WG_TC) */
    int64_t Kp;             /* K rounded up to the GEMM kernel's WG_MR rows */
    int relu;               /* store max(0, y) (a fused Relu; never with accumulate) */
};
typedef struct wg_prob wg_prob;

/* Tiles per chunk = the GEMM's column count (two vectors), and rows per GEMM micro-tile.
 * A chunk's transformed data and products, a^2 (C + K) Tc floats, stay in L2 (36 * 128 * 16
 * floats = 295 KiB for 64 channels each side at alpha 6); with 64-tile chunks and OpenBLAS
 * the transforms' loads and stores missed L2 and OpenBLAS spent ~10% packing and zeroing. */
#define WG_TC 16
#define WG_MR 6

static void wg_prob_make(wg_prob *q, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t OH,
                         int64_t OW, int64_t PT, int64_t PL, const wg_tf *tf) {
    q->N = N; q->C = C; q->H = H; q->W = W; q->K = K; q->OH = OH; q->OW = OW; q->PT = PT; q->PL = PL;
    q->tf = tf;
    q->TH = (OH + tf->m - 1) / tf->m;
    q->TW = (OW + tf->m - 1) / tf->m;
    q->TI = q->TH * q->TW;
    q->TT = N * q->TI;
    q->Tc = WG_TC;
    q->Kp = (K + WG_MR - 1) / WG_MR * WG_MR;
    q->relu = 0;
}

/* Pre-padded input. Tiles that reach into the padding or past the plane's edge take wg_in's
 * copy path (a memset and a memcpy per row: 4-6% of an FGSM step); with pad 1 that is half
 * the tiles of a 28x28 plane and all of a 7x7 one. So when a problem has such tiles, each
 * thread copies the images its chunks of tiles read into a window of zero-bordered planes
 * (Hp = (TH-1) m + a rows, Wp columns: every tile interior), refilled as its chunks move on;
 * the window is sized to stay in L2 (copying whole batches first and reading them back from
 * memory was slower than the copy path). */
#define WG_PAD_MAX (1 << 16) /* floats of a thread's window (256 KiB), at least the images of a chunk */

static int64_t wg_pad_h(const wg_prob *q) { return (q->TH - 1) * q->tf->m + q->tf->a; }
static int64_t wg_pad_w(const wg_prob *q) { return (q->TW - 1) * q->tf->m + q->tf->a; }

/* Images per window, 0 when every tile is interior already. */
static int64_t wg_pad_win(const wg_prob *q) {
    if (q->PT == 0 && q->PL == 0 && wg_pad_h(q) <= q->H && wg_pad_w(q) <= q->W) return 0;
    int64_t per = q->C * wg_pad_h(q) * wg_pad_w(q), need = (q->Tc - 1) / q->TI + 2, nb = WG_PAD_MAX / per;
    if (nb < need) nb = need;
    return nb > q->N ? q->N : nb;
}

/* Floats per thread: V (a^2, C, Tc), Mx (a^2, Kp, Tc) and the padded window. */
static int64_t wg_per_thread(const wg_prob *q) {
    int64_t a2 = (int64_t)q->tf->a * q->tf->a;
    return (a2 * (q->C + q->Kp) * q->Tc + wg_pad_win(q) * q->C * wg_pad_h(q) * wg_pad_w(q) + 15) / 16 * 16;
}

/* Planes of images [n0, n1) of x (N, C, H, W, padding PT/PL) into xw (n1-n0, C, Hp, Wp). */
static void wg_pad_fill(float *xw, const float *x, int64_t n0, int64_t n1, const wg_prob *q) {
    int64_t Hp = wg_pad_h(q), Wp = wg_pad_w(q), plane = Hp * Wp, HW = q->H * q->W;
    int64_t i0 = q->PT, i1 = q->PT + q->H < Hp ? q->PT + q->H : Hp; /* rows holding data */
    int64_t nw = q->W < Wp - q->PL ? q->W : Wp - q->PL;                /* columns copied per row */
    for (int64_t pc = 0; pc < (n1 - n0) * q->C; pc++) {
        float *d = xw + pc * plane;
        const float *src = x + (n0 * q->C + pc) * HW;
        memset(d, 0, (size_t)(i0 * Wp) * sizeof(float));
        for (int64_t i = i0; i < i1; i++) {
            float *row = d + i * Wp;
            for (int64_t j = 0; j < q->PL; j++) row[j] = 0.0f;
            memcpy(row + q->PL, src + (i - q->PT) * q->W, (size_t)nw * sizeof(float));
            for (int64_t j = q->PL + nw; j < Wp; j++) row[j] = 0.0f;
        }
        memset(d + i1 * Wp, 0, (size_t)((Hp - i1) * Wp) * sizeof(float));
    }
}

/* U (a^2, Kp/WG_MR, C, WG_MR: the GEMM kernel's packing; rows K..Kp-1 zero) from the kernel: g(k, c)[i][j] = w[((k*C + c)*r + i)*r + j] (forward), or,
 * when flip, the gradient problem's kernel g(c, k)[i][j] = w[((k*Cin + c)*r + r-1-i)*r + r-1-j]
 * with K = Cin output channels and C = Kout input channels. */
static void wg_weights(float *U, const float *w, const wg_prob *q, int flip) {
    const wg_tf *t = q->tf;
    int a = t->a, r = t->r;
    int64_t K = q->K, C = q->C;
    if (q->Kp > K)
        for (int64_t xi = 0; xi < (int64_t)a * a; xi++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t k = K; k < q->Kp; k++)
                    U[((xi * (q->Kp / WG_MR) + k / WG_MR) * C + c) * WG_MR + k % WG_MR] = 0.0f;
#pragma omp parallel for schedule(static) if (K * C * a * a >= ADVEX_OMP_MIN)
    for (int64_t kc = 0; kc < K * C; kc++) {
        int64_t k = kc / C, c = kc % C;
        float g[WG_MAXA][WG_MAXA], tmp[WG_MAXA][WG_MAXA];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++)
                g[i][j] = flip ? w[((c * K + k) * r + (r - 1 - i)) * r + (r - 1 - j)] : w[((k * C + c) * r + i) * r + j];
        for (int i = 0; i < a; i++) /* tmp = G g */
            for (int j = 0; j < r; j++) {
                float s = 0.0f;
                for (int l = 0; l < r; l++) s += t->G[i * r + l] * g[l][j];
                tmp[i][j] = s;
            }
        for (int i = 0; i < a; i++) /* U = tmp G^T */
            for (int j = 0; j < a; j++) {
                float s = 0.0f;
                for (int l = 0; l < r; l++) s += tmp[i][l] * t->G[j * r + l];
                U[(((int64_t)(i * a + j) * (q->Kp / WG_MR) + k / WG_MR) * C + c) * WG_MR + k % WG_MR] = s;
            }
    }
}

/* Where tile `tile` (global index) starts: image, first input row/col, first output row/col. */
struct wg_lane {
    int64_t n, oh, ow;
};

static void wg_lanes(wg_lane *L, int64_t t0, int64_t nl, const wg_prob *q) {
    int m = q->tf->m;
    for (int64_t l = 0; l < WG_L; l++) {
        int64_t t = t0 + (l < nl ? l : nl - 1);
        int64_t n = t / q->TI, ti = t % q->TI;
        L[l].n = n;
        L[l].oh = (ti / q->TW) * m;
        L[l].ow = (ti % q->TW) * m;
    }
}

/* V[xi][c][tl + lane] for channel c of WG_L tiles: gather d (alpha x alpha per tile, one
 * vector per element across the tiles, built in registers), then B^T d B. Tiles that reach
 * into the padding are first copied into a zero-padded local tile. */
static inline __attribute__((always_inline)) void wg_in_tf_body(float *V, int64_t ldv, const float *x,
                                                                  const wg_lane *L, int64_t c, const wg_prob *q,
                                                                  const int a, const wg_1d bt) {
    float pad[WG_L][WG_MAXA * WG_MAXA];
    const float *base[WG_L];
    int64_t ld[WG_L];
    for (int l = 0; l < WG_L; l++) {
        const float *xc = x + (L[l].n * q->C + c) * q->H * q->W;
        int64_t ih0 = L[l].oh - q->PT, iw0 = L[l].ow - q->PL;
        if (ih0 >= 0 && iw0 >= 0 && ih0 + a <= q->H && iw0 + a <= q->W) {
            base[l] = xc + ih0 * q->W + iw0;
            ld[l] = q->W;
            continue;
        }
        /* rows [i0, i1) and columns [j0, j1) of the tile lie inside the plane */
        int64_t i0 = ih0 < 0 ? -ih0 : 0, i1 = q->H - ih0 < a ? q->H - ih0 : a;
        int64_t j0 = iw0 < 0 ? -iw0 : 0, j1 = q->W - iw0 < a ? q->W - iw0 : a;
        memset(pad[l], 0, sizeof pad[l]);
        for (int64_t i = i0; i < i1; i++)
            if (j1 > j0) memcpy(pad[l] + i * a + j0, xc + (ih0 + i) * q->W + iw0 + j0, (size_t)(j1 - j0) * sizeof(float));
        base[l] = pad[l];
        ld[l] = a;
    }
    v8f d[WG_MAXA * WG_MAXA], e[WG_MAXA * WG_MAXA], o[WG_MAXA];
    for (int i = 0; i < a; i++) {
        const float *r0 = base[0] + i * ld[0], *r1 = base[1] + i * ld[1], *r2 = base[2] + i * ld[2],
                    *r3 = base[3] + i * ld[3], *r4 = base[4] + i * ld[4], *r5 = base[5] + i * ld[5],
                    *r6 = base[6] + i * ld[6], *r7 = base[7] + i * ld[7];
        for (int j = 0; j < a; j++) d[i * a + j] = (v8f){r0[j], r1[j], r2[j], r3[j], r4[j], r5[j], r6[j], r7[j]};
    }
    for (int j = 0; j < a; j++) bt(e + j, a, d + j, a); /* columns: e = B^T d */
    for (int i = 0; i < a; i++) {                          /* rows: V = e B */
        bt(o, 1, e + i * a, 1);
        for (int j = 0; j < a; j++) memcpy(V + (int64_t)(i * a + j) * ldv, &o[j], sizeof(v8f));
    }
}

/* out tile(s) for channel k of WG_L tiles from Mx[xi][k][tl + lane]: A^T Mx A (+ bias),
 * written (or added) into out, cropped at the plane's edge. */
static inline __attribute__((always_inline)) void wg_out_tf_body(float *out, const float *Mx, int64_t ldm,
                                                                   const wg_lane *L, int64_t nl, int64_t k, float bias,
                                                                   int accumulate, const wg_prob *q, const int a,
                                                                   const int m, const wg_1d at) {
    v8f s[WG_MAXA * WG_MAXA], e[WG_MAXA * WG_MAXA];
    union { v8f v[WG_MAXA * WG_MAXA]; float f[WG_MAXA * WG_MAXA][WG_L]; } y;
    for (int i = 0; i < a * a; i++) memcpy(&s[i], Mx + (int64_t)i * ldm, sizeof(v8f));
    for (int j = 0; j < a; j++) at(e + j, a, s + j, a); /* e (m x a) = A^T s */
    for (int i = 0; i < m; i++) {                          /* y (m x m) = e A */
        at(y.v + i * m, 1, e + i * a, 1);
        for (int j = 0; j < m; j++) y.v[i * m + j] += bias;
    }
    for (int64_t l = 0; l < nl; l++) {
        float *o = out + (L[l].n * q->K + k) * q->OH * q->OW;
        int64_t mh = q->OH - L[l].oh < m ? q->OH - L[l].oh : m, mw = q->OW - L[l].ow < m ? q->OW - L[l].ow : m;
        for (int64_t i = 0; i < mh; i++) {
            float *orow = o + (L[l].oh + i) * q->OW + L[l].ow;
            if (accumulate)
                for (int64_t j = 0; j < mw; j++) orow[j] += y.f[i * m + j][l];
            else if (q->relu)
                for (int64_t j = 0; j < mw; j++) orow[j] = y.f[i * m + j][l] > 0.0f ? y.f[i * m + j][l] : 0.0f;
            else
                for (int64_t j = 0; j < mw; j++) orow[j] = y.f[i * m + j][l];
        }
    }
}

/* The two transforms instantiated per family, so the straight-line 1-D transforms inline. */
#define WG_INST(M, R)                                                                                      \
    static void wg_in_##M##_##R(float *V, int64_t ldv, const float *x, const wg_lane *L, int64_t c,     \
                                const struct wg_prob *q) {                                                \
        wg_in_tf_body(V, ldv, x, L, c, q, M + R - 1, wg_bt_##M##_##R);                                    \
    }                                                                                                     \
    static void wg_out_##M##_##R(float *out, const float *Mx, int64_t ldm, const wg_lane *L, int64_t nl, \
                                 int64_t k, float bias, int accumulate, const struct wg_prob *q) {        \
        wg_out_tf_body(out, Mx, ldm, L, nl, k, bias, accumulate, q, M + R - 1, M, wg_at_##M##_##R);      \
    }
WG_INST(2, 3)
WG_INST(4, 3)
WG_INST(2, 5)

static const wg_tf tf_2_3 = WG_FAMILY(2, 3), tf_4_3 = WG_FAMILY(4, 3), tf_2_5 = WG_FAMILY(2, 5);

/* Which tile size. F(4,3) does 4x fewer multiplies than direct 3x3 convolution (F(2,3):
 * 2.25x) but its error is larger: ~2e-6 of the output's scale against ~3e-7, and relative
 * to small outputs up to 1e-4. That is harmless except where a forward value decides an
 * arg-max: on the ONNX parity models (tests/test_parity.c), F(4,3) forwards sent the gradient
 * to the other input of a max-pool near-tie in 24 of 64 VGG examples against PyTorch (1 with
 * im2col). So a conv whose output reaches a MaxPool (fuse.c marks it `precise`) runs its
 * forward on F(2,3); every other forward and every input-gradient pass (which only feeds
 * the attack's step) use F(4,3) where the plane holds 4x4 tiles. 5x5 kernels use F(2,5). */
static const wg_tf *wg_pick(int r, int64_t OH, int64_t OW, int precise) {
    if (r == 5) return &tf_2_5;
    if (r == 3) return (!precise && OH >= 6 && OW >= 6) ? &tf_4_3 : &tf_2_3;
    return NULL;
}

/* The 6x16 register tile shared by the forward GEMM (reducing over channels) and the weight
 * gradient (reducing over tiles): acc[i][h] = sum_{n < len} u[n us + i] v[n vs + 8h .. 8h+8]
 * for h < nv (1 or 2; acc[i][1] is left 0 when nv is 1). */
static inline __attribute__((always_inline)) void wg_tile(v8f acc[WG_MR][2], const float *restrict u, int64_t us,
                                                         const float *restrict v, int64_t vs, int64_t len, int nv) {
    v8f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0}, c40 = {0},
        c41 = {0}, c50 = {0}, c51 = {0};
    if (nv == 2) {
        for (int64_t n = 0; n < len; n++, u += us, v += vs) {
            v8f v0, v1;
            memcpy(&v0, v, sizeof v0);
            memcpy(&v1, v + WG_L, sizeof v1);
            c00 += u[0] * v0; c01 += u[0] * v1;
            c10 += u[1] * v0; c11 += u[1] * v1;
            c20 += u[2] * v0; c21 += u[2] * v1;
            c30 += u[3] * v0; c31 += u[3] * v1;
            c40 += u[4] * v0; c41 += u[4] * v1;
            c50 += u[5] * v0; c51 += u[5] * v1;
        }
    } else {
        for (int64_t n = 0; n < len; n++, u += us, v += vs) {
            v8f v0;
            memcpy(&v0, v, sizeof v0);
            c00 += u[0] * v0; c10 += u[1] * v0; c20 += u[2] * v0;
            c30 += u[3] * v0; c40 += u[4] * v0; c50 += u[5] * v0;
        }
    }
    acc[0][0] = c00; acc[0][1] = c01; acc[1][0] = c10; acc[1][1] = c11; acc[2][0] = c20; acc[2][1] = c21;
    acc[3][0] = c30; acc[3][1] = c31; acc[4][0] = c40; acc[4][1] = c41; acc[5][0] = c50; acc[5][1] = c51;
}

/* Mx (Kp, WG_TC) = U (packed WG_MR-row panels, (Kp/WG_MR, C, WG_MR)) V (C, WG_TC): no
 * packing of V (a chunk is already L1/L2 resident), no zeroing pass. nv = 1 computes only the
 * first 8 columns. */
static void wg_gemm(float *restrict Mx, const float *restrict U, const float *restrict V, int64_t Kp, int64_t C,
                    int nv) {
    for (int64_t kb = 0; kb < Kp; kb += WG_MR) {
        v8f acc[WG_MR][2];
        wg_tile(acc, U + kb * C, WG_MR, V, WG_TC, C, nv);
        for (int i = 0; i < WG_MR; i++) memcpy(Mx + (kb + i) * WG_TC, acc[i], sizeof acc[i]);
    }
}

/* out = corr(x, kernel of U) (+ bias): chunks of Tc tiles spread over the threads. */
static void wg_run(float *out, const float *x, const float *U, const float *bias, int accumulate,
                   const wg_prob *q, float *scratch, int T) {
    int a = q->tf->a;
    int64_t a2 = (int64_t)a * a, per = wg_per_thread(q), Tc = q->Tc;
    int64_t nchunks = (q->TT + Tc - 1) / Tc;
    wg_in_fn in = q->tf->in;
    wg_out_fn out_tf = q->tf->out;
    int64_t win = wg_pad_win(q);
    wg_prob qp; /* the padded window's problem: unpadded, same tiles */
    wg_prob_make(&qp, q->N, q->C, wg_pad_h(q), wg_pad_w(q), q->K, q->OH, q->OW, 0, 0, q->tf);
#pragma omp parallel num_threads(T) if (T > 1)
    {
        int tid = omp_get_thread_num();
        float *V = scratch + (int64_t)tid * per; /* (a2, C, Tc) */
        float *Mx = V + a2 * q->C * Tc;          /* (a2, Kp, Tc) */
        float *xw = Mx + a2 * q->Kp * Tc;        /* padded window: images [pa, pb) */
        int64_t pa = 0, pb = 0;
        wg_lane L[WG_L];
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < nchunks; ch++) {
            int64_t t0 = ch * Tc, tn = q->TT - t0 < Tc ? q->TT - t0 : Tc;
            int64_t tnp = (tn + WG_L - 1) / WG_L * WG_L; /* GEMM columns (padded lanes repeat a tile) */
            if (win && (t0 / q->TI < pa || (t0 + tn - 1) / q->TI >= pb)) {
                pa = t0 / q->TI;
                pb = pa + win < q->N ? pa + win : q->N;
                wg_pad_fill(xw, x, pa, pb, q);
            }
            for (int64_t tl = 0; tl < tn; tl += WG_L) {
                wg_lanes(L, t0 + tl, tn - tl < WG_L ? tn - tl : WG_L, q);
                if (win)
                    for (int l = 0; l < WG_L; l++) L[l].n -= pa;
                for (int64_t c = 0; c < q->C; c++)
                    in(V + c * Tc + tl, q->C * Tc, win ? xw : x, L, c, win ? &qp : q);
            }
            for (int64_t xi = 0; xi < a2; xi++)
                wg_gemm(Mx + xi * q->Kp * Tc, U + xi * q->Kp * q->C, V + xi * q->C * Tc, q->Kp, q->C, tnp > WG_L ? 2 : 1);
            for (int64_t tl = 0; tl < tn; tl += WG_L) {
                int64_t nl = tn - tl < WG_L ? tn - tl : WG_L;
                wg_lanes(L, t0 + tl, nl, q);
                for (int64_t k = 0; k < q->K; k++)
                    out_tf(out, Mx + k * Tc + tl, q->Kp * Tc, L, nl, k, bias ? bias[k] : 0.0f, accumulate, q);
            }
        }
    }
}

/* ---- public entry points ---------------------------------------------------------------- */

#if ADVEX_ISA_BASE /* geometry and sizes: compiled once (dispatch.h) */
/* Worth it? Winograd needs enough channels on both sides for its GEMMs and enough output to
 * amortise the transforms; otherwise im2col is as fast. */
static int wg_shape_ok(const advex_conv2d_p *p) {
    return p->G == 1 && p->SH == 1 && p->SW == 1 && p->DH == 1 && p->DW == 1 && p->KH == p->KW &&
           (p->KH == 3 || p->KH == 5) && p->PT < p->KH && p->PL < p->KW && p->PB < p->KH && p->PR < p->KW &&
           p->OH >= 2 && p->OW >= 2;
}

int advex_wino_forward_ok(const advex_conv2d_p *p) {
    return p->algo != ADVEX_CONV_GEMM && wg_shape_ok(p) && p->C >= 8 && p->M >= 8;
}

int advex_wino_backward_ok(const advex_conv2d_p *p) {
    return p->algo != ADVEX_CONV_GEMM && wg_shape_ok(p) && p->C >= 8 && p->M >= 8;
}

int advex_wino_dw_ok(const advex_conv2d_p *p) {
    return p->algo != ADVEX_CONV_GEMM && wg_shape_ok(p) && p->C >= 8 && p->M >= 8;
}
#endif

static void fwd_prob(wg_prob *q, const advex_conv2d_p *p) {
    wg_prob_make(q, p->N, p->C, p->H, p->W, p->M, p->OH, p->OW, p->PT, p->PL,
                 wg_pick((int)p->KH, p->OH, p->OW, p->algo == ADVEX_CONV_PRECISE));
}

/* dX = corr(dY padded by r-1-P, flipped kernel, channels swapped): output (N, C, H, W). */
static void bwd_prob(wg_prob *q, const advex_conv2d_p *p) {
    wg_prob_make(q, p->N, p->M, p->OH, p->OW, p->C, p->H, p->W, p->KH - 1 - p->PT, p->KW - 1 - p->PL,
                 wg_pick((int)p->KH, p->H, p->W, 0));
}

#if ADVEX_ISA_BASE
static int64_t prob_scratch(const wg_prob *q, int threads) {
    int64_t a2 = (int64_t)q->tf->a * q->tf->a;
    return (a2 * q->Kp * q->C + 15) / 16 * 16 + wg_per_thread(q) * threads;
}

int64_t advex_wino_scratch(const advex_conv2d_p *p, int threads) {
    int64_t n = 0;
    wg_prob q;
    if (threads < 1) threads = 1;
    if (advex_wino_forward_ok(p)) {
        fwd_prob(&q, p);
        n = prob_scratch(&q, threads);
    }
    if (advex_wino_backward_ok(p)) {
        bwd_prob(&q, p);
        int64_t b = prob_scratch(&q, threads);
        if (b > n) n = b;
    }
    return n;
}

int64_t advex_wino_u_size(const advex_conv2d_p *p, int grad) {
    if (grad ? !advex_wino_backward_ok(p) : !advex_wino_forward_ok(p)) return 0;
    wg_prob q;
    if (grad) bwd_prob(&q, p);
    else fwd_prob(&q, p);
    return ((int64_t)q.tf->a * q.tf->a * q.Kp * q.C + 15) / 16 * 16;
}
#endif

/* (dispatched too: with FMAs the transform rounds as the kernels' own U == NULL path does) */
void ADVEX_ISA_FN(advex_wino_weights)(float *U, const float *w, const advex_conv2d_p *p, int grad) {
    wg_prob q;
    if (grad) bwd_prob(&q, p);
    else fwd_prob(&q, p);
    wg_weights(U, w, &q, grad);
}

static int wg_threads(const wg_prob *q, int64_t scratch_n) {
    int64_t a2 = (int64_t)q->tf->a * q->tf->a;
    int64_t avail = scratch_n - (a2 * q->Kp * q->C + 15) / 16 * 16;
    int64_t t = omp_get_max_threads(), per = wg_per_thread(q);
    if (avail < per) return 0;
    if (t > avail / per) t = avail / per;
    int64_t nchunks = (q->TT + q->Tc - 1) / q->Tc;
    if (t > nchunks) t = nchunks;
    return t < 1 ? 1 : (int)t;
}

int ADVEX_ISA_FN(advex_wino_forward)(float *out, const float *x, const float *w, const float *U, const float *b,
                                     const advex_conv2d_p *p, float *scratch, int64_t scratch_n) {
    if (!advex_wino_forward_ok(p)) return 0;
    wg_prob q;
    fwd_prob(&q, p);
    q.relu = p->relu;
    int T = wg_threads(&q, scratch_n);
    if (!T) return 0;
    int64_t un = advex_wino_u_size(p, 0);
    if (!U) {
        wg_weights(scratch, w, &q, 0);
        U = scratch;
    }
    wg_run(out, x, U, b, 0, &q, scratch + un, T);
    return 1;
}

int ADVEX_ISA_FN(advex_wino_backward_data)(float *dx, const float *dout, const float *w, const float *U,
                                           const advex_conv2d_p *p, int accumulate, float *scratch,
                                           int64_t scratch_n) {
    if (!advex_wino_backward_ok(p)) return 0;
    wg_prob q;
    bwd_prob(&q, p);
    int T = wg_threads(&q, scratch_n);
    if (!T) return 0;
    int64_t un = advex_wino_u_size(p, 1);
    if (!U) {
        wg_weights(scratch, w, &q, 1);
        U = scratch;
    }
    wg_run(dx, dout, U, NULL, accumulate, &q, scratch + un, T);
    return 1;
}

/* ---- weight gradient ----------------------------------------------------------------------
 *
 * Differentiating the tile identity Y = A^T [(G g G^T) .* (B^T d B)] A with respect to g:
 *     dg = G^T [ sum over tiles (A dY A^T) .* (B^T d B) ] G
 * where dY is the output tile's gradient (zero past the plane's edge). Per position xi of the
 * alpha x alpha tile the sum is a GEMM dU_xi (K x C) = Yd_xi (K x T) V_xi (C x T)^T whose long
 * dimension is the tile count, so here the vector lanes run over channels (8 channels of one
 * tile per vector): V is stored (xi, tile, C) and Yd (xi, tile, K), the GEMM broadcasts a
 * panel of 6 output channels of Yd against 16 input channels of V and reduces over the
 * tiles of a chunk. Each thread sums its own dU over contiguous chunks of tiles; the threads'
 * sums are added in thread order, then transformed by G^T . G once per (k, c). */

#define WG_TW 32 /* tiles per weight-gradient chunk: V and Yd of one xi stay in L1 */

typedef struct wg_dwl {
    int64_t LV, LY; /* V row: C rounded up to 8; Yd / dU row: K rounded up to 8, then to WG_MR */
} wg_dwl;

static wg_dwl wg_dw_layout(const wg_prob *q) {
    wg_dwl d;
    d.LV = (q->C + 7) / 8 * 8;
    d.LY = ((q->K + 7) / 8 * 8 + WG_MR - 1) / WG_MR * WG_MR;
    return d;
}

/* Floats per thread: V (a^2, TW, LV), Yd (a^2, TW, LY), dU (a^2, LY, LV). */
static int64_t wg_dw_per_thread(const wg_prob *q) {
    wg_dwl d = wg_dw_layout(q);
    int64_t a2 = (int64_t)q->tf->a * q->tf->a;
    return (a2 * (WG_TW * (d.LV + d.LY) + d.LY * d.LV) + 15) / 16 * 16;
}

/* *o = lanes l < nl from s[l * stride], zero beyond (through a pointer: see conv_s2.c's s2_ld) */
static inline void wg_gather8(v8f *o, const float *s, int64_t stride, int nl) {
    if (nl == WG_L) {
        *o = (v8f){s[0], s[stride], s[2 * stride], s[3 * stride], s[4 * stride], s[5 * stride], s[6 * stride],
                   s[7 * stride]};
        return;
    }
    union { v8f v; float f[WG_L]; } u = {{0}};
    for (int l = 0; l < nl; l++) u.f[l] = s[l * stride];
    *o = u.v;
}

/* V[xi][lanes] = B^T d B for channels c0 .. c0+nl-1 of the input tile at output (oh0, ow0) of
 * image n; entries in the padding are zero. */
static inline __attribute__((always_inline)) void wg_dw_in_body(float *V, int64_t ldv, const float *x, int64_t n,
                                                                  int64_t oh0, int64_t ow0, int64_t c0, int nl,
                                                                  const wg_prob *q, const int a, const wg_1d bt) {
    int64_t HW = q->H * q->W, ih0 = oh0 - q->PT, iw0 = ow0 - q->PL;
    int64_t i0 = ih0 < 0 ? -ih0 : 0, i1 = q->H - ih0 < a ? q->H - ih0 : a;
    int64_t j0 = iw0 < 0 ? -iw0 : 0, j1 = q->W - iw0 < a ? q->W - iw0 : a;
    const float *xc = x + (n * q->C + c0) * HW;
    v8f d[WG_MAXA * WG_MAXA], e[WG_MAXA * WG_MAXA], o[WG_MAXA];
    for (int i = 0; i < a * a; i++) d[i] = (v8f){0};
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++) wg_gather8(&d[i * a + j], xc + (ih0 + i) * q->W + iw0 + j, HW, nl);
    for (int j = 0; j < a; j++) bt(e + j, a, d + j, a);
    for (int i = 0; i < a; i++) {
        bt(o, 1, e + i * a, 1);
        for (int j = 0; j < a; j++) memcpy(V + (int64_t)(i * a + j) * ldv, &o[j], sizeof(v8f));
    }
}

/* Yd[xi][lanes] = A dY A^T for output channels k0 .. k0+nl-1 of the m x m output tile at
 * (oh0, ow0) of image n; zero past the plane's edge. */
static inline __attribute__((always_inline)) void wg_dw_dy_body(float *Yd, int64_t ldy, const float *dy, int64_t n,
                                                                  int64_t oh0, int64_t ow0, int64_t k0, int nl,
                                                                  const wg_prob *q, const int a, const int m,
                                                                  const wg_1d at_t) {
    int64_t P = q->OH * q->OW;
    int64_t mh = q->OH - oh0 < m ? q->OH - oh0 : m, mw = q->OW - ow0 < m ? q->OW - ow0 : m;
    const float *yc = dy + (n * q->K + k0) * P;
    v8f s[WG_MAXA * WG_MAXA], e[WG_MAXA * WG_MAXA], o[WG_MAXA];
    for (int i = 0; i < m * m; i++) s[i] = (v8f){0};
    for (int64_t i = 0; i < mh; i++)
        for (int64_t j = 0; j < mw; j++) wg_gather8(&s[i * m + j], yc + (oh0 + i) * q->OW + ow0 + j, P, nl);
    for (int j = 0; j < m; j++) at_t(e + j, m, s + j, m); /* e (a x m) = A s */
    for (int i = 0; i < a; i++) {                          /* Yd (a x a) = e A^T */
        at_t(o, 1, e + i * m, 1);
        for (int j = 0; j < a; j++) memcpy(Yd + (int64_t)(i * a + j) * ldy, &o[j], sizeof(v8f));
    }
}

/* The tile transforms of one image position for all channels, per family. */
typedef void (*wg_dw_tile_fn)(float *V, float *Yd, const float *x, const float *dy, int64_t n, int64_t oh0,
                              int64_t ow0, const wg_prob *q, const wg_dwl *d);
#define WG_DW_INST(M, R)                                                                                     \
    static void wg_dw_tile_##M##_##R(float *V, float *Yd, const float *x, const float *dy, int64_t n,         \
                                     int64_t oh0, int64_t ow0, const wg_prob *q, const wg_dwl *d) {          \
        for (int64_t c = 0; c < q->C; c += WG_L)                                                            \
            wg_dw_in_body(V + c, WG_TW * d->LV, x, n, oh0, ow0, c, q->C - c < WG_L ? (int)(q->C - c) : WG_L, \
                          q, M + R - 1, wg_bt_##M##_##R);                                                   \
        for (int64_t k = 0; k < q->K; k += WG_L)                                                            \
            wg_dw_dy_body(Yd + k, WG_TW * d->LY, dy, n, oh0, ow0, k, q->K - k < WG_L ? (int)(q->K - k) : WG_L, \
                          q, M + R - 1, M, wg_a_##M##_##R);                                                 \
    }
WG_DW_INST(2, 3)
WG_DW_INST(4, 3)
WG_DW_INST(2, 5)

/* dU (LY x LV) += Yd^T V over tn tiles: Yd (tn, LY), V (tn, LV); 6 x 16 register tile. */
static void wg_dw_gemm(float *restrict dU, const float *restrict Yd, const float *restrict V, int64_t tn, int64_t LY,
                       int64_t LV) {
    for (int64_t kb = 0; kb < LY; kb += WG_MR)
        for (int64_t cb = 0; cb < LV; cb += 2 * WG_L) {
            int two = LV - cb >= 2 * WG_L;
            v8f acc[WG_MR][2];
            wg_tile(acc, Yd + kb, LY, V + cb, LV, tn, two ? 2 : 1);
            for (int i = 0; i < WG_MR; i++)
                for (int h = 0; h < 1 + two; h++) {
                    float *o = dU + (kb + i) * LV + cb + h * WG_L;
                    v8f s;
                    memcpy(&s, o, sizeof s);
                    s += acc[i][h];
                    memcpy(o, &s, sizeof s);
                }
        }
}

/* The family for the weight gradient (see advex_wino_backward_weights). */
static const wg_tf *wg_pick_dw(int r, int64_t OH, int64_t OW) {
    if (r == 5) return &tf_2_5;
    if (r == 3) return (OH >= 6 && OW >= 6) ? &tf_4_3 : &tf_2_3;
    return NULL;
}

static wg_dw_tile_fn wg_dw_tile(const wg_tf *t) {
    return t == &tf_2_3 ? wg_dw_tile_2_3 : t == &tf_4_3 ? wg_dw_tile_4_3 : wg_dw_tile_2_5;
}

static void dw_prob(wg_prob *q, const advex_conv2d_p *p) {
    wg_prob_make(q, p->N, p->C, p->H, p->W, p->M, p->OH, p->OW, p->PT, p->PL, wg_pick_dw((int)p->KH, p->OH, p->OW));
}

#if ADVEX_ISA_BASE
int64_t advex_wino_dw_scratch(const advex_conv2d_p *p, int threads) {
    if (!advex_wino_dw_ok(p)) return 0;
    wg_prob q;
    dw_prob(&q, p);
    return wg_dw_per_thread(&q) * (threads < 1 ? 1 : threads);
}
#endif

int ADVEX_ISA_FN(advex_wino_backward_weights)(float *dw, const float *dout, const float *x, const advex_conv2d_p *p,
                                              float *scratch, int64_t scratch_n) {
    if (!advex_wino_dw_ok(p)) return 0;
    wg_prob q;
    dw_prob(&q, p);
    wg_dwl d = wg_dw_layout(&q);
    int a = q.tf->a, r = q.tf->r, m = q.tf->m;
    int64_t a2 = (int64_t)a * a, per = wg_dw_per_thread(&q), nchunks = (q.TT + WG_TW - 1) / WG_TW;
    int64_t t = omp_get_max_threads();
    if (t > scratch_n / per) t = scratch_n / per;
    if (t > nchunks) t = nchunks;
    if (t < 1) return 0;
    int T = (int)t;
    wg_dw_tile_fn tile = wg_dw_tile(q.tf);
    int64_t LV = d.LV, LY = d.LY, dUn = a2 * LY * LV;
#pragma omp parallel num_threads(T) if (T > 1)
    {
        int tid = omp_get_thread_num();
        float *V = scratch + (int64_t)tid * per; /* (a2, TW, LV) */
        float *Yd = V + a2 * WG_TW * LV;         /* (a2, TW, LY) */
        float *dU = Yd + a2 * WG_TW * LY;        /* (a2, LY, LV) */
        memset(dU, 0, (size_t)dUn * sizeof(float));
        /* Yd's columns past K rounded to 8 are never written by the transforms */
        int64_t k8 = (q.K + 7) / 8 * 8;
        if (LY > k8)
            for (int64_t row = 0; row < a2 * WG_TW; row++) memset(Yd + row * LY + k8, 0, (size_t)(LY - k8) * sizeof(float));
        int64_t c0, c1;
        advex_share(nchunks, T, tid, &c0, &c1);
        for (int64_t ch = c0; ch < c1; ch++) {
            int64_t t0 = ch * WG_TW, tn = q.TT - t0 < WG_TW ? q.TT - t0 : WG_TW;
            for (int64_t tl = 0; tl < tn; tl++) {
                int64_t tt = t0 + tl, n = tt / q.TI, ti = tt % q.TI;
                tile(V + tl * LV, Yd + tl * LY, x, dout, n, (ti / q.TW) * m, (ti % q.TW) * m, &q, &d);
            }
            for (int64_t xi = 0; xi < a2; xi++)
                wg_dw_gemm(dU + xi * LY * LV, Yd + xi * WG_TW * LY, V + xi * WG_TW * LV, tn, LY, LV);
        }
    }
    /* dw[k][c] += G^T (sum over threads of dU[.][k][c]) G */
    int64_t KC = q.K * q.C;
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1 && KC * a2 >= ADVEX_OMP_MIN)
    for (int64_t kc = 0; kc < KC; kc++) {
        int64_t k = kc / q.C, c = kc % q.C;
        float s[WG_MAXA][WG_MAXA], tmp[WG_MAXA][WG_MAXA];
        for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++) {
                float v = 0.0f;
                for (int th = 0; th < T; th++)
                    v += scratch[(int64_t)th * per + a2 * WG_TW * (LV + LY) + ((int64_t)(i * a + j) * LY + k) * LV + c];
                s[i][j] = v;
            }
        for (int i = 0; i < r; i++) /* tmp (r x a) = G^T s */
            for (int j = 0; j < a; j++) {
                float v = 0.0f;
                for (int l = 0; l < a; l++) v += q.tf->G[l * r + i] * s[l][j];
                tmp[i][j] = v;
            }
        float *o = dw + kc * r * r;
        for (int i = 0; i < r; i++) /* dg (r x r) = tmp G */
            for (int j = 0; j < r; j++) {
                float v = 0.0f;
                for (int l = 0; l < a; l++) v += tmp[i][l] * q.tf->G[l * r + j];
                o[i * r + j] += v;
            }
    }
    return 1;
}
