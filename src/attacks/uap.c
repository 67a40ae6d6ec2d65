/* Universal adversarial perturbation: one delta for a whole data set. Computed by
 * stochastic gradient ascent on the summed CE loss of clip(x + delta) over mini-batches,
 * with sign steps (L-inf) or normalised steps (L2) and projection onto the eps-ball
 * (Shafahi et al. 2020, "Universal adversarial training"; the original DeepFool-based
 * algorithm of Moosavi-Dezfooli et al. 2017 is far slower for the same fooling rate).
 * Applying it: x' = clip(x + delta, 0, 1). */
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

static inline float clip01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

advex_status atk_uap_apply(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                           int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    (void)y; (void)off; (void)ids; (void)info;
    const int64_t d = advex_model_dim(m);
    /* the delta is used as given (its norm is the caller's choice), clipped to the image box */
    for (int64_t i = 0; i < n; i++)
        for (int64_t q = 0; q < d; q++) xadv[i * d + q] = clip01(x[i * d + q] + c->uap_delta[q]);
    return ADVEX_OK;
}

advex_status advex_uap_compute(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y,
                               int64_t n, int32_t epochs, int64_t batch, float *delta) {
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    if (!(c->eps >= 0) || !isfinite(c->eps)) return advex_set_error(ADVEX_ERR_ARG, "uap: eps must be >= 0");
    if (n <= 0) return advex_set_error(ADVEX_ERR_ARG, "uap: no examples to compute the perturbation on");
    if (epochs <= 0) epochs = 5;
    if (batch <= 0) batch = 128;
    if (batch > n) batch = n;
    memset(delta, 0, (size_t)d * sizeof(float));
    if (c->eps == 0) return ADVEX_OK;
    const float alpha = c->alpha > 0 ? c->alpha : c->eps / 10.0f;
    float *xb = atk_alloc((size_t)(2 * batch * d + ADVEX_CHUNK * k + d + 1) * sizeof(float));
    if (!xb) return ADVEX_ERR_NOMEM;
    float *g = xb + batch * d, *dl = g + batch * d, *gs = dl + ADVEX_CHUNK * k, *zero = gs + d;
    (void)zero;
    advex_status st = ADVEX_OK;
    for (int e = 0; e < epochs && !st; e++) {
        for (int64_t i = 0; i < n && !st; i += batch) {
            int64_t b = n - i < batch ? n - i : batch;
            for (int64_t r = 0; r < b; r++)
                for (int64_t q = 0; q < d; q++) xb[r * d + q] = clip01(x[(i + r) * d + q] + delta[q]);
            atk_loss L = {ATK_LOSS_CE, y + i, NULL, 0};
            if ((st = advex_model_grad_loop(m, xb, b, atk_loss_rows, &L, g, NULL, NULL, dl))) break;
            memset(gs, 0, (size_t)d * sizeof(float));
            for (int64_t r = 0; r < b; r++)
                for (int64_t q = 0; q < d; q++) gs[q] += g[r * d + q];
            if (c->norm == ADVEX_NORM_LINF) {
                for (int64_t q = 0; q < d; q++) {
                    float v = delta[q] + alpha * (gs[q] > 0 ? 1.0f : (gs[q] < 0 ? -1.0f : 0.0f));
                    delta[q] = v < -c->eps ? -c->eps : (v > c->eps ? c->eps : v);
                }
            } else {
                double n2 = atk_norm2(gs, d);
                float f = n2 > 0 ? (float)(alpha / n2) : 0.0f;
                for (int64_t q = 0; q < d; q++) delta[q] += f * gs[q];
                double nd = atk_norm2(delta, d);
                if (nd > c->eps) {
                    float s = (float)(c->eps / nd * (1.0 - 1e-6));
                    for (int64_t q = 0; q < d; q++) delta[q] *= s;
                }
            }
        }
    }
    free(xb);
    return st;
}
