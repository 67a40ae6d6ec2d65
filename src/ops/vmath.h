/* Vectorisable elementary functions: branch-free float code that gcc and clang turn into
 * SIMD inside `omp simd` loops (libm's expf and erff are calls, one element at a time).
 * Included by the files compiled once per ISA variant (dispatch.h), so each variant gets
 * them at its own width: SSE2 4, AVX2 8, AVX-512 16 floats. No FMA contraction happens
 * (-std=c11 turns it off), so every variant rounds the same way.
 *
 * advex_vexpf: Cephes' expf (range reduction by ln 2 in two parts, a degree-6 polynomial),
 * scaled by 2^n in two steps so that results down to the smallest subnormal and up to
 * overflow come out as expf's do. Checked against expf on every float in [-104, 89]
 * (tests/test_ops.c, sigmoid_silu): at most 2 ulp apart; NaN propagates, -Inf gives 0, +Inf
 * +Inf. Measured on all of them: at most 1 ulp.
 *
 * advex_verff: Norbert Juffa's erff (two polynomials, the one for |x| > 0.9277 through
 * 1 - e^p(|x|)), both computed and one selected. Measured on every float in [-10, 10]
 * against the correctly rounded erf: at most 1 ulp. */
#ifndef ADVEX_OPS_VMATH_H
#define ADVEX_OPS_VMATH_H

#include <stdint.h>
#include <string.h>

static inline float advex_f_from_bits_(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* e^x, within 2 ulp of expf (subnormal results within 1 ulp of the subnormal grid). */
static inline float advex_vexpf(float x) {
    /* clamp (a NaN passes through: both comparisons are false) */
    float xc = x < -104.0f ? -104.0f : x;
    xc = xc > 89.0f ? 89.0f : xc;
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (exact for |t| < 2^22) */
    float t = xc * 1.44269504088896341f;
    float n = (t + 12582912.0f) - 12582912.0f;
    /* r = x - n ln 2, ln 2 = C1 + C2 with C1 exact in 9 bits (Cephes) */
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    /* p * 2^n as p * 2^n1 * 2^n2, n1 = n / 2: both factors normal for n in [-150, 129] */
    n = n == n ? n : 0.0f; /* (a NaN's p is NaN already; converting it would be undefined) */
    int32_t ni = (int32_t)n;
    int32_t n1 = ni / 2, n2 = ni - n1;
    float s1 = advex_f_from_bits_((uint32_t)(n1 + 127) << 23), s2 = advex_f_from_bits_((uint32_t)(n2 + 127) << 23);
    return (p * s1) * s2;
}

/* 1 / (1 + e^-x) as 1 / (1 + e) for x >= 0 and e / (1 + e) below, e = e^-|x| (one exp, no
 * overflow: libm's two-branch form, branch-free). */
static inline float advex_vsigmoidf(float x) {
    float e = advex_vexpf(x < 0.0f ? x : -x);
    return (x < 0.0f ? e : 1.0f) / (1.0f + e);
}


/* erf(x), within 1 ulp of the correctly rounded value (NaN propagates, +-Inf give +-1) */
static inline float advex_verff(float a) {
    float t = a < 0.0f ? -a : a, s = a * a;
    float r = -1.72853470e-5f * t + 3.83197126e-4f; /* |a| > 0.927734375: 1 - e^r */
    float u = -3.88396438e-3f * t + 2.42546219e-2f;
    r = r * s + u;
    r = r * t + -1.06777877e-1f;
    r = r * t + -6.34846687e-1f;
    r = r * t + -1.28717512e-1f;
    r = r * t + -t;
    float big = 1.0f - advex_vexpf(r);
    big = a < 0.0f ? -big : big;
    float q = -5.96761703e-4f; /* below: a + a q(a^2) */
    q = q * s + 4.99119423e-3f;
    q = q * s + -2.67681349e-2f;
    q = q * s + 1.12819925e-1f;
    q = q * s + -3.76125336e-1f;
    q = q * s + 1.28379166e-1f;
    float small = q * a + a;
    return t > 0.927734375f ? big : small;
}

#endif
