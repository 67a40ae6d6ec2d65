/* The L-inf sign step of FGSM, PGD and adversarial training (advex_sign_step_from; the
 * in-place advex_sign_step is in common.c). Compiled once per ISA variant (ops/dispatch.h):
 * it runs once per attack step over the whole batch. */
#include "attacks/attack_internal.h"
#include "ops/dispatch.h"

/* Branch-free selects (gradient signs are random: branches mispredict), vectorised. Every
 * comparison is evaluated unconditionally (a comparison only under another's outcome is not
 * if-converted with -ftrapping-math), with the same results as the scalar definition:
 * sign(0) = sign(NaN) = 0, a NaN x leaves the eps-projection out and a NaN xa stays NaN
 * (comparisons with NaN are false).
 * out = the step from `from` (out may be from, or x: element i is read before it is written;
 * a partial overlap is the caller's to avoid). Saves FGSM the copy of x into out first. */
void ADVEX_ISA_FN(advex_sign_step_from)(float *out, const float *from, const float *x, const float *g, int64_t n,
                                        float step, float eps) {
#pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        float s = (float)((gi > 0.0f) - (gi < 0.0f)); /* sign(0) = 0 */
        float v = from[i] + step * s;
        float lo = x[i] - eps, hi = x[i] + eps;
        int below = v < lo, above = v > hi; /* both of the unprojected v, as the nested select */
        float r = above ? hi : v;
        r = below ? lo : r;
        r = r < 0.0f ? 0.0f : r; /* r < 0 and r > 1 exclude each other (or r is NaN) */
        out[i] = r > 1.0f ? 1.0f : r;
    }
}
