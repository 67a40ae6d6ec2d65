/* AutoAttack's check that the model is randomized (checks.check_randomized): repeated
 * forward passes of one batch differ. The other checks (probabilities, zero and non-finite
 * gradients, determinism of the attack) are advex_eval_checks (eval.c); the masking rule is
 * advex_eval_flag_masking. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RAND_PASSES 5
#define RAND_ALPHA 1e-4

/* Rows of z (n, k) scaled to unit L2 norm (+1e-10, as AutoAttack). */
static void unit_rows(float *z, int64_t n, int64_t k) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < k; j++) s += (double)z[i * k + j] * z[i * k + j];
        double inv = 1.0 / (sqrt(s) + 1e-10);
        for (int64_t j = 0; j < k; j++) z[i * k + j] = (float)(z[i * k + j] * inv);
    }
}

advex_status advex_eval_check_randomized(advex_model *m, const float *x, const int32_t *y, int64_t n,
                                         unsigned *warnings) {
    int64_t k = m->net->classes;
    if (n <= 0) return ADVEX_OK;
    float *z = malloc((size_t)(RAND_PASSES * n * k) * sizeof(float));
    if (!z) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    advex_status st = ADVEX_OK;
    int64_t correct[RAND_PASSES] = {0};
    for (int p = 0; p < RAND_PASSES && !st; p++) {
        float *zp = z + p * n * k;
        if ((st = advex_model_forward(m, x, n, zp))) break;
        for (int64_t i = 0; i < n; i++) correct[p] += advex_argmax(zp + i * k, k) == y[i];
        unit_rows(zp, n, k);
    }
    int differ = 0;
    for (int p = 1; p < RAND_PASSES && !st && !differ; p++) {
        differ = correct[p] != correct[0];
        for (int q = 0; q < p && !differ; q++)
            for (int64_t i = 0; i < n && !differ; i++) {
                double s = 0; /* L2 distance of row i between passes p and q */
                for (int64_t j = 0; j < k; j++) {
                    double dv = (double)z[(p * n + i) * k + j] - z[(q * n + i) * k + j];
                    s += dv * dv;
                }
                differ = sqrt(s) > RAND_ALPHA;
            }
    }
    if (differ) *warnings |= ADVEX_EVAL_WARN_RANDOMIZED;
    free(z);
    return st;
}
