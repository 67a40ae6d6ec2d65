/* FGSM (Goodfellow et al. 2015) and FGSM with a random start (Wong et al. 2020):
 *   untargeted  x' = clip(x + eps * sign(grad_x CE(f(x), y)), 0, 1)
 *   targeted    x' = clip(x - eps * sign(grad_x CE(f(x), t)), 0, 1)
 *   FGSM-RS     d ~ U[-eps,eps]; d <- proj_eps(d + alpha * sign(grad at x+d)); x' = clip(x + d)
 * L2 (the fast gradient method, FGM, of the same papers): the step is along g / ||g||_2
 * (x' = clip(x + eps * g / ||g||_2)); FGSM-RS starts from a Gaussian direction scaled to
 * eps * U[0,1] (as PGD L2) and its step of alpha is projected onto the L2 ball, then clipped. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "attacks/attack_internal.h"

/* L2: x_adv = P(from + dir * step * g / ||g||_2), from = x (FGM, step eps) or an L2 random
 * start (FGSM-RS, step alpha). x_adv may be x (row i of x is read before it is written). */
static advex_status fgm_l2(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *labels,
                           int64_t n, int64_t batch_offset, float dir, float *grad, float *start, float *x_adv) {
    const int64_t d = advex_model_dim(m);
    const int rs = c->kind == ADVEX_ATTACK_FGSM_RS;
    const float step = rs ? (c->alpha > 0 ? c->alpha : 1.25f * c->eps) : c->eps;
    if (rs)
        for (int64_t i = 0; i < n; i++) {
            advex_rng r;
            advex_rng_seed_stream(&r, c->seed, (uint64_t)(batch_offset + i));
            atk_random_start(start + i * d, x + i * d, d, c->eps, ADVEX_NORM_L2, &r);
        }
    else
        memcpy(start, x, (size_t)(n * d) * sizeof(float));
    advex_status st = advex_model_input_grad(m, start, labels, n, ADVEX_LOSS_CE, grad, NULL, NULL);
    if (st) return st;
    for (int64_t i = 0; i < n; i++) {
        const float *g = grad + i * d, *s0 = start + i * d;
        double n2 = atk_norm2(g, d);
        float f = n2 > 0 ? (float)(dir * step / n2) : 0.0f;
        float *o = start + i * d; /* stepped in place, then moved: x_adv may be x */
        for (int64_t q = 0; q < d; q++) o[q] = s0[q] + f * g[q];
        atk_project(o, x + i * d, d, c->eps, ADVEX_NORM_L2);
        memmove(x_adv + i * d, o, (size_t)d * sizeof(float));
    }
    return ADVEX_OK;
}

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
    if (c->norm == ADVEX_NORM_L2) return fgm_l2(m, c, x, labels, n, batch_offset, dir, grad, start, x_adv);
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
