/* Carlini & Wagner L2 (2017): minimise ||x' - x||_2^2 + c * max(f(x'), -kappa) over
 * x' = (tanh(w) + 1) / 2 with Adam, f = z_y - max_{j!=y} z_j (targeted: max_{j!=t} z_j - z_t),
 * and a per-example binary search over c (x10 until the first success, then bisection).
 * Each binary step restarts from w = atanh(2x - 1). Returns the smallest-L2 success whose
 * norm is within eps; x itself when none (the example then counts as robust). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

typedef struct cw_loss {
    const int32_t *y, *t;
    const float *cst;  /* (n) the trade-off constant per example */
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

advex_status atk_cw(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                    int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    (void)ids;
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const int steps = c->steps > 0 ? c->steps : 100;
    const int bsteps = c->binary_steps > 0 ? c->binary_steps : 9;
    const float lr = c->lr > 0 ? c->lr : 0.01f, c0 = c->c_init > 0 ? c->c_init : 1e-3f, kappa = c->kappa;
    const float b1 = 0.9f, b2 = 0.999f;
    const size_t fb = sizeof(float);
    float *blk = atk_alloc((size_t)(5 * n * d + n * k + 6 * n + ATK_CHUNK * k) * fb + (size_t)n * sizeof(int32_t) + n);
    if (!blk) return ADVEX_ERR_NOMEM;
    float *w = blk, *xp = w + n * d, *g = xp + n * d, *am = g + n * d, *av = am + n * d, *z = av + n * d;
    float *cst = z + n * k, *lo = cst + n, *hi = lo + n, *bestl2 = hi + n, *loss = bestl2 + n, *dl = loss + n;
    float *spare = dl + ATK_CHUNK * k;
    int32_t *ts = (int32_t *)(spare + n);
    unsigned char *hit = (unsigned char *)(ts + n);
    advex_status st = ADVEX_OK;
    int targeted = atk_setup_targets(m, c, x, y, n, off, z, ts, &st);
    if (targeted < 0) goto done;
    memmove(xadv, x, (size_t)(n * d) * fb);
    for (int64_t i = 0; i < n; i++) { cst[i] = c0; lo[i] = 0; hi[i] = 1e10f; bestl2[i] = FLT_MAX; }
    cw_loss L = {y, targeted ? ts : NULL, cst, kappa};
    for (int bs = 0; bs < bsteps && !st; bs++) {
        for (int64_t q = 0; q < n * d; q++) {
            float v = (2.0f * x[q] - 1.0f) * 0.999999f;
            w[q] = atanhf(v);
        }
        memset(am, 0, (size_t)(n * d) * fb);
        memset(av, 0, (size_t)(n * d) * fb);
        memset(hit, 0, (size_t)n);
        for (int it = 0; it < steps; it++) {
            for (int64_t q = 0; q < n * d; q++) xp[q] = 0.5f * (tanhf(w[q]) + 1.0f);
            if ((st = atk_grad(m, xp, n, cw_rows, &L, g, z, loss, dl))) break;
            for (int64_t i = 0; i < n; i++) {
                const float *xi = x + i * d, *pi = xp + i * d;
                double l2 = 0;
                for (int64_t q = 0; q < d; q++) l2 += (double)(pi[q] - xi[q]) * (pi[q] - xi[q]);
                int32_t o;
                float f = cw_margin(z + i * k, k, y[i], targeted ? ts + i : NULL, &o);
                atk_loss S = {ATK_LOSS_CW, y, targeted ? ts : NULL, 0};
                int ok = f + kappa < 0 && atk_success(&S, z + i * k, k, i);
                if (ok) {
                    hit[i] = 1;
                    if (sqrt(l2) < bestl2[i] && sqrt(l2) <= c->eps) {
                        bestl2[i] = (float)sqrt(l2);
                        memcpy(xadv + i * d, pi, (size_t)d * fb);
                    }
                }
            }
            /* Adam on w: d/dw [||x'-x||^2 + loss] = (2 (x'-x) + dloss/dx') * (1 - tanh^2 w) / 2 */
            float bc1 = 1.0f - powf(b1, (float)(it + 1)), bc2 = 1.0f - powf(b2, (float)(it + 1));
            for (int64_t q = 0; q < n * d; q++) {
                float th = 2.0f * xp[q] - 1.0f;
                float gw = (2.0f * (xp[q] - x[q]) + g[q]) * 0.5f * (1.0f - th * th);
                am[q] = b1 * am[q] + (1 - b1) * gw;
                av[q] = b2 * av[q] + (1 - b2) * gw * gw;
                w[q] -= lr * (am[q] / bc1) / (sqrtf(av[q] / bc2) + 1e-8f);
            }
        }
        for (int64_t i = 0; i < n; i++) { /* binary search over c */
            if (hit[i]) {
                hi[i] = hi[i] < cst[i] ? hi[i] : cst[i];
                cst[i] = 0.5f * (lo[i] + hi[i]);
            } else {
                lo[i] = lo[i] > cst[i] ? lo[i] : cst[i];
                cst[i] = hi[i] < 1e9f ? 0.5f * (lo[i] + hi[i]) : cst[i] * 10.0f;
            }
        }
    }
    if (info && info->stage) for (int64_t i = 0; i < n; i++) info->stage[i] = bestl2[i] < FLT_MAX;
done:
    free(blk);
    return st;
}
