/* Carlini & Wagner L2 (2017): minimise ||x' - x||_2^2 + c * max(f(x'), -kappa) over
 * x' = (tanh(w) + 1) / 2 with Adam, f = z_y - max_{j!=y} z_j (targeted: max_{j!=t} z_j - z_t),
 * and a per-example binary search over c (x10 until the first success, then bisection).
 * Each binary step restarts from w = atanh(2x - 1). Abort early (Carlini's code, Foolbox): every
 * steps/10 iterations an example whose objective fell by less than 0.01% since the last check
 * stops for this binary step (and leaves the batch). Returns the smallest-L2 success whose
 * norm is within eps; x itself when none (the example then counts as robust). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

typedef struct cw_loss {
    const int32_t *y, *t; /* (a) labels and targets of the active rows (t NULL: untargeted) */
    const float *cst;     /* (a) the trade-off constant per active row */
    float kappa;
} cw_loss;

/* margin f (untargeted z_y - max_{j!=y} z_j; targeted max_{j!=t} z_j - z_t): lower is better */
static float cw_margin(const float *z, int64_t k, int32_t y, const int32_t *t, int32_t *o_out) {
    int32_t ref = t ? *t : y;
    int32_t o = -1;
    for (int64_t j = 0; j < k; j++) if (j != ref && (o < 0 || z[j] > z[o])) o = (int32_t)j;
    *o_out = o;
    return t ? z[o] - z[ref] : z[ref] - z[o];
}

/* loss_i = c_i * max(f_i, -kappa); gradient on the logits */
static void cw_rows(void *u, int64_t i0, int64_t b, int64_t k, const float *z, float *loss, float *dl) {
    const cw_loss *L = u;
    for (int64_t r = 0; r < b; r++) {
        int64_t i = i0 + r;
        int32_t o;
        const int32_t *t = L->t ? L->t + i : NULL;
        float f = cw_margin(z + r * k, k, L->y[i], t, &o);
        float *g = dl + r * k;
        memset(g, 0, (size_t)k * sizeof(float));
        loss[r] = L->cst[i] * (f > -L->kappa ? f : -L->kappa);
        if (f > -L->kappa) {
            int32_t ref = t ? *t : L->y[i];
            float s = L->cst[i];
            if (t) { g[o] += s; g[ref] -= s; } else { g[ref] += s; g[o] -= s; }
        }
    }
}

enum { CW_XS, CW_W, CW_AM, CW_AV, CW_CST, CW_PREV, CW_Y, CW_T, CW_IDX, CW_NARR };

advex_status atk_cw(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                    int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    (void)ids;
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    /* defaults: Carlini & Wagner's and Foolbox's (lr 0.01, 9 binary steps, c0 1e-3, abort early)
     * with 1000 steps instead of 10000 (docs/attacks.md has the measurements) */
    const int steps = c->steps > 0 ? c->steps : 1000;
    const int bsteps = c->binary_steps > 0 ? c->binary_steps : 9;
    const float lr = c->lr > 0 ? c->lr : 0.01f, c0 = c->c_init > 0 ? c->c_init : 1e-3f, kappa = c->kappa;
    const int check = steps / 10 > 0 ? steps / 10 : 1; /* abort-early period */
    const float b1 = 0.9f, b2 = 0.999f;
    const size_t fb = sizeof(float);
    /* active rows: xs w am av (a,d) | xp g (a,d) scratch | cst prev loss (a) | y t (a) | idx (a);
     * dataset order: cst_full lo hi bestl2 (n) | targets (n) | hit (n) */
    char *blk = atk_alloc((size_t)n * sizeof(int64_t) + (size_t)(6 * n * d + n * k + 7 * n + ADVEX_CHUNK * k) * fb +
                          (size_t)n * 3 * sizeof(int32_t) + (size_t)n);
    if (!blk) return ADVEX_ERR_NOMEM;
    int64_t *idx = (int64_t *)blk;
    float *xs = (float *)(idx + n), *w = xs + n * d, *am = w + n * d, *av = am + n * d, *xp = av + n * d;
    float *g = xp + n * d, *z = g + n * d, *cst = z + n * k, *prev = cst + n, *loss = prev + n, *dl = loss + n;
    float *cfull = dl + ADVEX_CHUNK * k, *lo = cfull + n, *hi = lo + n, *bestl2 = hi + n;
    int32_t *ya = (int32_t *)(bestl2 + n), *ta = ya + n, *tfull = ta + n;
    unsigned char *hit = (unsigned char *)(tfull + n);
    advex_status st = ADVEX_OK;
    int targeted = atk_setup_targets(m, c, x, y, n, off, z, tfull, &st);
    if (targeted < 0) goto done;
    memmove(xadv, x, (size_t)(n * d) * fb);
    for (int64_t i = 0; i < n; i++) { cfull[i] = c0; lo[i] = 0; hi[i] = 1e10f; bestl2[i] = FLT_MAX; }
    void *arrs[CW_NARR] = {xs, w, am, av, cst, prev, ya, ta, idx};
    const size_t rb[CW_NARR] = {(size_t)d * fb, (size_t)d * fb, (size_t)d * fb, (size_t)d * fb, fb, fb,
                                sizeof(int32_t), sizeof(int32_t), sizeof(int64_t)};
    unsigned char *keep = (unsigned char *)xp; /* xp is free while compacting */
    for (int bs = 0; bs < bsteps && !st; bs++) {
        int64_t a = n;
        memcpy(xs, x, (size_t)(n * d) * fb);
        for (int64_t i = 0; i < n; i++) {
            idx[i] = i;
            ya[i] = y[i];
            ta[i] = tfull[i];
            cst[i] = cfull[i];
            prev[i] = FLT_MAX;
            hit[i] = 0;
        }
        for (int64_t q = 0; q < n * d; q++) w[q] = atanhf((2.0f * x[q] - 1.0f) * 0.999999f);
        memset(am, 0, (size_t)(n * d) * fb);
        memset(av, 0, (size_t)(n * d) * fb);
        for (int it = 0; it < steps && a > 0; it++) {
            for (int64_t q = 0; q < a * d; q++) xp[q] = 0.5f * (tanhf(w[q]) + 1.0f);
            cw_loss L = {ya, targeted ? ta : NULL, cst, kappa};
            if ((st = advex_model_grad_loop(m, xp, a, cw_rows, &L, g, z, loss, dl))) break;
            atk_loss S = {ATK_LOSS_CW, ya, targeted ? ta : NULL, 0};
            for (int64_t j = 0; j < a; j++) {
                const float *xj = xs + j * d, *pj = xp + j * d;
                double l2 = 0;
                for (int64_t q = 0; q < d; q++) l2 += (double)(pj[q] - xj[q]) * (pj[q] - xj[q]);
                loss[j] += (float)l2; /* the objective, for abort-early */
                int32_t o;
                float f = cw_margin(z + j * k, k, ya[j], targeted ? ta + j : NULL, &o);
                int64_t i = idx[j];
                if (f + kappa < 0 && atk_success(&S, z + j * k, k, j)) {
                    hit[i] = 1;
                    double nrm = sqrt(l2);
                    if (nrm < bestl2[i] && nrm <= c->eps) {
                        bestl2[i] = (float)nrm;
                        memcpy(xadv + i * d, pj, (size_t)d * fb);
                    }
                }
            }
            /* Adam on w: d/dw [||x'-x||^2 + loss] = (2 (x'-x) + dloss/dx') * (1 - tanh^2 w) / 2 */
            float bc1 = 1.0f - powf(b1, (float)(it + 1)), bc2 = 1.0f - powf(b2, (float)(it + 1));
            for (int64_t q = 0; q < a * d; q++) {
                float th = 2.0f * xp[q] - 1.0f;
                float gw = (2.0f * (xp[q] - xs[q]) + g[q]) * 0.5f * (1.0f - th * th);
                am[q] = b1 * am[q] + (1 - b1) * gw;
                av[q] = b2 * av[q] + (1 - b2) * gw * gw;
                w[q] -= lr * (am[q] / bc1) / (sqrtf(av[q] / bc2) + 1e-8f);
            }
            if ((it + 1) % check == 0) { /* abort early: no 0.01% progress since the last check */
                for (int64_t j = 0; j < a; j++) {
                    keep[j] = loss[j] < 0.9999f * prev[j]; /* equal (a flat 0: nothing to do) stops too */
                    prev[j] = loss[j];
                }
                a = atk_compact(keep, a, arrs, rb, CW_NARR);
            }
        }
        for (int64_t i = 0; i < n; i++) { /* binary search over c */
            if (hit[i]) {
                hi[i] = hi[i] < cfull[i] ? hi[i] : cfull[i];
                cfull[i] = 0.5f * (lo[i] + hi[i]);
            } else {
                lo[i] = lo[i] > cfull[i] ? lo[i] : cfull[i];
                cfull[i] = hi[i] < 1e9f ? 0.5f * (lo[i] + hi[i]) : cfull[i] * 10.0f;
            }
        }
    }
    if (info && info->stage) for (int64_t i = 0; i < n; i++) info->stage[i] = bestl2[i] < FLT_MAX;
done:
    free(blk);
    return st;
}
