/* A convolution evaluated at a few output positions from their gathered input patches: the
 * kernel of the incremental passes (src/graph/incr.c), which recompute only the outputs a
 * changed window of the input reaches. Compiled once per ISA variant (ops/dispatch.h), with
 * contraction on like conv_s2.c: each output is the sum over its taps in order from 0, one
 * FMA per tap where the variant has FMA, the order and rounding of conv_s2.c's slice sums
 * (so the outputs of `small`'s stride-2 convolutions come out bit for bit as the full
 * pass's). Vectorised over output channels: per tap, NV vectors of 8 channels times NP
 * positions. */
#include <string.h>

#include "ops/dispatch.h"

typedef float cp_v8 __attribute__((vector_size(8 * sizeof(float))));

/* (memcpy: an AVX vector by value changes the ABI without -mavx; see conv_s2.c) */
static inline void cp_ld(cp_v8 *v, const float *p) { memcpy(v, p, sizeof *v); }

static inline void cp_st(float *p, const cp_v8 *v) { memcpy(p, v, sizeof *v); }

/* Register tiles: out[q * ldo + 8 v ...] for NP positions q (patches x + q K) by NV vectors v
 * of 8 channels (weights wt + 8 v), every sum over all K taps in order. */
static void cp_tile4x3(float *out, int64_t ldo, const float *wt, int64_t ldw, int64_t K, const float *x) {
    cp_v8 a00 = {0}, a01 = {0}, a02 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a20 = {0}, a21 = {0}, a22 = {0}, a30 = {0}, a31 = {0}, a32 = {0};
    for (int64_t k = 0; k < K; k++) {
        cp_v8 w0, w1, w2, w3;
        cp_ld(&w0, wt + k * ldw + 0);
        cp_ld(&w1, wt + k * ldw + 8);
        cp_ld(&w2, wt + k * ldw + 16);
        cp_ld(&w3, wt + k * ldw + 24);
        float b0 = x[k];
        float b1 = x[1 * K + k];
        float b2 = x[2 * K + k];
        a00 += w0 * b0; a10 += w1 * b0; a20 += w2 * b0; a30 += w3 * b0;
        a01 += w0 * b1; a11 += w1 * b1; a21 += w2 * b1; a31 += w3 * b1;
        a02 += w0 * b2; a12 += w1 * b2; a22 += w2 * b2; a32 += w3 * b2;
    }
    cp_st(out + 0 * ldo + 0, &a00); cp_st(out + 0 * ldo + 8, &a10); cp_st(out + 0 * ldo + 16, &a20); cp_st(out + 0 * ldo + 24, &a30);
    cp_st(out + 1 * ldo + 0, &a01); cp_st(out + 1 * ldo + 8, &a11); cp_st(out + 1 * ldo + 16, &a21); cp_st(out + 1 * ldo + 24, &a31);
    cp_st(out + 2 * ldo + 0, &a02); cp_st(out + 2 * ldo + 8, &a12); cp_st(out + 2 * ldo + 16, &a22); cp_st(out + 2 * ldo + 24, &a32);
}

static void cp_tile4x1(float *out, int64_t ldo, const float *wt, int64_t ldw, int64_t K, const float *x) {
    cp_v8 a00 = {0}, a10 = {0}, a20 = {0}, a30 = {0};
    for (int64_t k = 0; k < K; k++) {
        cp_v8 w0, w1, w2, w3;
        cp_ld(&w0, wt + k * ldw + 0);
        cp_ld(&w1, wt + k * ldw + 8);
        cp_ld(&w2, wt + k * ldw + 16);
        cp_ld(&w3, wt + k * ldw + 24);
        float b0 = x[k];
        a00 += w0 * b0; a10 += w1 * b0; a20 += w2 * b0; a30 += w3 * b0;
    }
    cp_st(out + 0 * ldo + 0, &a00); cp_st(out + 0 * ldo + 8, &a10); cp_st(out + 0 * ldo + 16, &a20); cp_st(out + 0 * ldo + 24, &a30);
}

static void cp_tile2x4(float *out, int64_t ldo, const float *wt, int64_t ldw, int64_t K, const float *x) {
    cp_v8 a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
    for (int64_t k = 0; k < K; k++) {
        cp_v8 w0, w1;
        cp_ld(&w0, wt + k * ldw + 0);
        cp_ld(&w1, wt + k * ldw + 8);
        float b0 = x[k];
        float b1 = x[1 * K + k];
        float b2 = x[2 * K + k];
        float b3 = x[3 * K + k];
        a00 += w0 * b0; a10 += w1 * b0;
        a01 += w0 * b1; a11 += w1 * b1;
        a02 += w0 * b2; a12 += w1 * b2;
        a03 += w0 * b3; a13 += w1 * b3;
    }
    cp_st(out + 0 * ldo + 0, &a00); cp_st(out + 0 * ldo + 8, &a10);
    cp_st(out + 1 * ldo + 0, &a01); cp_st(out + 1 * ldo + 8, &a11);
    cp_st(out + 2 * ldo + 0, &a02); cp_st(out + 2 * ldo + 8, &a12);
    cp_st(out + 3 * ldo + 0, &a03); cp_st(out + 3 * ldo + 8, &a13);
}

static void cp_tile2x1(float *out, int64_t ldo, const float *wt, int64_t ldw, int64_t K, const float *x) {
    cp_v8 a00 = {0}, a10 = {0};
    for (int64_t k = 0; k < K; k++) {
        cp_v8 w0, w1;
        cp_ld(&w0, wt + k * ldw + 0);
        cp_ld(&w1, wt + k * ldw + 8);
        float b0 = x[k];
        a00 += w0 * b0; a10 += w1 * b0;
    }
    cp_st(out + 0 * ldo + 0, &a00); cp_st(out + 0 * ldo + 8, &a10);
}

static void cp_tile1x4(float *out, int64_t ldo, const float *wt, int64_t ldw, int64_t K, const float *x) {
    cp_v8 a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0};
    for (int64_t k = 0; k < K; k++) {
        cp_v8 w0;
        cp_ld(&w0, wt + k * ldw + 0);
        float b0 = x[k];
        float b1 = x[1 * K + k];
        float b2 = x[2 * K + k];
        float b3 = x[3 * K + k];
        a00 += w0 * b0;
        a01 += w0 * b1;
        a02 += w0 * b2;
        a03 += w0 * b3;
    }
    cp_st(out + 0 * ldo + 0, &a00);
    cp_st(out + 1 * ldo + 0, &a01);
    cp_st(out + 2 * ldo + 0, &a02);
    cp_st(out + 3 * ldo + 0, &a03);
}

static void cp_tile1x1(float *out, int64_t ldo, const float *wt, int64_t ldw, int64_t K, const float *x) {
    cp_v8 a00 = {0};
    for (int64_t k = 0; k < K; k++) {
        cp_v8 w0;
        cp_ld(&w0, wt + k * ldw + 0);
        float b0 = x[k];
        a00 += w0 * b0;
    }
    cp_st(out + 0 * ldo + 0, &a00);
}

/* out[p * ldo + m] = sum_k wt[k * ldw + m] * pt[p * K + k] for p < P and m < ldw (ldw a
 * multiple of 8: the channels padded with zero weights; ldo >= ldw, a multiple of 8). */
void ADVEX_ISA_FN(advex_conv_patch)(float *out, int64_t ldo, const float *wt, int64_t ldw, int64_t K, const float *pt,
                                     int64_t P) {
    int64_t m0 = 0;
    for (; m0 + 32 <= ldw; m0 += 32) {
        int64_t p = 0;
        for (; p + 3 <= P; p += 3) cp_tile4x3(out + p * ldo + m0, ldo, wt + m0, ldw, K, pt + p * K);
        for (; p < P; p++) cp_tile4x1(out + p * ldo + m0, ldo, wt + m0, ldw, K, pt + p * K);
    }
    for (; m0 + 16 <= ldw; m0 += 16) {
        int64_t p = 0;
        for (; p + 4 <= P; p += 4) cp_tile2x4(out + p * ldo + m0, ldo, wt + m0, ldw, K, pt + p * K);
        for (; p < P; p++) cp_tile2x1(out + p * ldo + m0, ldo, wt + m0, ldw, K, pt + p * K);
    }
    for (; m0 < ldw; m0 += 8) {
        int64_t p = 0;
        for (; p + 4 <= P; p += 4) cp_tile1x4(out + p * ldo + m0, ldo, wt + m0, ldw, K, pt + p * K);
        for (; p < P; p++) cp_tile1x1(out + p * ldo + m0, ldo, wt + m0, ldw, K, pt + p * K);
    }
}

/* acc[n] += sum_u dv[u] * b[row[u] * N + n] for n < N, u < cnt, each acc[n] summed over u in
 * order: the first dense layer's change from the changed entries of its input (incr.c).
 * Blocks of 32 accumulators stay in registers over all the rows. */
void ADVEX_ISA_FN(advex_rows_axpy)(float *acc, int64_t N, const float *b, const int64_t *row, const float *dv,
                                    int64_t cnt) {
    int64_t n0 = 0;
    for (; n0 + 32 <= N; n0 += 32) {
        cp_v8 a0, a1, a2, a3;
        cp_ld(&a0, acc + n0);
        cp_ld(&a1, acc + n0 + 8);
        cp_ld(&a2, acc + n0 + 16);
        cp_ld(&a3, acc + n0 + 24);
        for (int64_t u = 0; u < cnt; u++) {
            const float *r = b + row[u] * N + n0;
            float d = dv[u];
            cp_v8 w0, w1, w2, w3;
            cp_ld(&w0, r);
            cp_ld(&w1, r + 8);
            cp_ld(&w2, r + 16);
            cp_ld(&w3, r + 24);
            a0 += d * w0;
            a1 += d * w1;
            a2 += d * w2;
            a3 += d * w3;
        }
        cp_st(acc + n0, &a0);
        cp_st(acc + n0 + 8, &a1);
        cp_st(acc + n0 + 16, &a2);
        cp_st(acc + n0 + 24, &a3);
    }
    for (; n0 + 8 <= N; n0 += 8) {
        cp_v8 a0;
        cp_ld(&a0, acc + n0);
        for (int64_t u = 0; u < cnt; u++) {
            cp_v8 w0;
            cp_ld(&w0, b + row[u] * N + n0);
            a0 += dv[u] * w0;
        }
        cp_st(acc + n0, &a0);
    }
    for (; n0 < N; n0++) {
        float a = acc[n0];
        for (int64_t u = 0; u < cnt; u++) a += dv[u] * b[row[u] * N + n0];
        acc[n0] = a;
    }
}
