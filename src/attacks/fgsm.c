/* FGSM (Goodfellow et al. 2015) and FGSM with a random start (Wong et al. 2020):
 *   untargeted  x' = clip(x + eps * sign(grad_x CE(f(x), y)), 0, 1)
 *   targeted    x' = clip(x - eps * sign(grad_x CE(f(x), t)), 0, 1)
 *   FGSM-RS     d ~ U[-eps,eps]; d <- proj_eps(d + alpha * sign(grad at x+d)); x' = clip(x + d) */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "attacks/attack_internal.h"

advex_status atk_fgsm(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                      int64_t batch_offset, const int64_t *ids, float *x_adv, advex_attack_info *info) {
    (void)info;
    (void)ids;
    int64_t d = advex_model_dim(m), k = m->net->classes;
    /* workspace: grad (n*d) | start (n*d) | logits (n*k) | targets (n ints) */
    float *ws = advex_model_workspace(m, 2 * n * d + n * k + n);
    if (!ws) return ADVEX_ERR_NOMEM;
    float *grad = ws, *start = ws + n * d, *logits = start + n * d;
    int32_t *targets = (int32_t *)(logits + n * k);
    advex_status st;
    const int32_t *labels = y;
    float dir = 1.0f;
    if (c->target != ADVEX_TARGET_NONE) {
        if (c->target == ADVEX_TARGET_LEAST_LIKELY && (st = advex_model_forward(m, x, n, logits))) return st;
        if ((st = advex_attack_targets(c, logits, y, n, k, batch_offset, targets))) return st;
        labels = targets;
        dir = -1.0f;
    }
    const float *from = x;
    float step = c->eps;
    if (c->kind == ADVEX_ATTACK_FGSM_RS) {
        step = c->alpha > 0 ? c->alpha : 1.25f * c->eps;
        for (int64_t i = 0; i < n; i++) {
            advex_rng r;
            advex_rng_seed_stream(&r, c->seed, (uint64_t)(batch_offset + i));
            for (int64_t j = 0; j < d; j++) {
                float v = x[i * d + j] + (2.0f * advex_rng_uniform(&r) - 1.0f) * c->eps;
                start[i * d + j] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
            }
        }
        from = start;
    }
    if ((st = advex_model_input_grad(m, from, labels, n, ADVEX_LOSS_CE, grad, NULL, NULL))) return st;
    /* x_adv shifted against the start point (overlapping, not the same buffer): copy first,
     * then step in place */
    size_t bytes = (size_t)(n * d) * sizeof(float);
    uintptr_t o = (uintptr_t)x_adv, f = (uintptr_t)from;
    if (o != f && o < f + bytes && f < o + bytes) {
        memmove(x_adv, from, bytes);
        from = x_adv;
    }
    advex_sign_step_from(x_adv, from, x, grad, n * d, dir * step, c->eps);
    return ADVEX_OK;
}
