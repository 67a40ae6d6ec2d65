/* DeepFool (Moosavi-Dezfooli et al. 2016), multi-class, L2 and L-inf: linearise the model at
 * the current point, step to the nearest linearised decision boundary among the candidate
 * classes (the top `candidates` clean classes, like Foolbox), accumulate, and overshoot:
 *   L2   r = (|f_q| + 1e-4) w_q / ||w_q||_2^2      L-inf  r = (|f_q| + 1e-4) sign(w_q) / ||w_q||_1
 *   x_i = clip(x + (1 + overshoot) r_tot, 0, 1),  f_q = z_q - z_y,  w_q = grad f_q.
 * Targeted: the only candidate is the target. Returns x when no adversarial within eps. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

#define DF_CANDIDATES 10

advex_status atk_deepfool(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y,
                          int64_t n, int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    (void)ids;
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const int steps = c->steps > 0 ? c->steps : 50;
    const float over = c->overshoot >= 0 ? c->overshoot : 0.02f;
    const int ncand = k - 1 < DF_CANDIDATES - 1 ? (int)(k - 1) : DF_CANDIDATES - 1;
    const size_t fb = sizeof(float);
    char *blk = atk_alloc((size_t)n * (sizeof(int64_t) + (size_t)(5 * d + 2 * k + 2) * fb +
                                       (size_t)(ncand + 2) * sizeof(int32_t) + 2));
    if (!blk) return ADVEX_ERR_NOMEM;
    int64_t *idx = (int64_t *)blk;
    float *xs = (float *)(idx + n), *xi = xs + n * d, *rt = xi + n * d, *g = rt + n * d, *gb = g + n * d;
    float *z = gb + n * d, *wt = z + n * k, *pbest = wt + n * k, *fq = pbest + n;
    int32_t *ys = (int32_t *)(fq + n), *ts = ys + n, *cand = ts + n;
    unsigned char *keep = (unsigned char *)(cand + (size_t)n * ncand), *won = keep + n;
    advex_status st = ADVEX_OK;
    int targeted = atk_setup_targets(m, c, x, y, n, off, z, ts, &st);
    if (targeted < 0) goto done;
    if ((st = advex_model_forward(m, x, n, z))) goto done;
    memmove(xadv, x, (size_t)(n * d) * fb);
    for (int64_t i = 0; i < n; i++) {
        idx[i] = i;
        ys[i] = y[i];
        won[i] = 0;
        /* candidates: the most likely clean classes other than y (first on ties) */
        const float *zi = z + i * k;
        for (int q = 0; q < ncand; q++) {
            int32_t best = -1;
            for (int64_t j = 0; j < k; j++) {
                if (j == y[i]) continue;
                int used = 0;
                for (int r = 0; r < q; r++) used |= cand[i * ncand + r] == j;
                if (!used && (best < 0 || zi[j] > zi[best])) best = (int32_t)j;
            }
            cand[i * ncand + q] = best;
        }
    }
    memcpy(xs, x, (size_t)(n * d) * fb);
    memcpy(xi, x, (size_t)(n * d) * fb);
    memset(rt, 0, (size_t)(n * d) * fb);
    int64_t a = n;
    void *arrs[] = {idx, xs, xi, rt, ys, ts, cand};
    size_t rb[] = {sizeof(int64_t), (size_t)d * fb, (size_t)d * fb, (size_t)d * fb, sizeof(int32_t), sizeof(int32_t),
                   (size_t)ncand * sizeof(int32_t)};
    atk_loss S = {ATK_LOSS_CW, ys, targeted ? ts : NULL, 0};
    for (int it = 0; it <= steps && a > 0; it++) {
        if ((st = advex_model_forward(m, xi, a, z))) goto done;
        for (int64_t j = 0; j < a; j++) {
            int ok = atk_success(&S, z + j * k, k, j);
            keep[j] = !ok;
            if (ok) {
                memcpy(xadv + idx[j] * d, xi + j * d, (size_t)d * fb);
                won[idx[j]] = 1;
            }
        }
        a = atk_compact(keep, a, arrs, rb, 7);
        if (it == steps || a == 0) break;
        for (int64_t j = 0; j < a; j++) pbest[j] = FLT_MAX;
        int nc = targeted ? 1 : ncand;
        for (int q = 0; q < nc; q++) {
            memset(wt, 0, (size_t)(a * k) * fb);
            for (int64_t j = 0; j < a; j++) {
                int32_t cq = targeted ? ts[j] : cand[j * ncand + q];
                wt[j * k + cq] += 1.0f;
                wt[j * k + ys[j]] -= 1.0f;
            }
            if ((st = advex_model_vjp(m, xi, a, wt, g, z))) goto done;
            for (int64_t j = 0; j < a; j++) {
                int32_t cq = targeted ? ts[j] : cand[j * ncand + q];
                float f = z[j * k + cq] - z[j * k + ys[j]];
                const float *gj = g + j * d;
                double dn = c->norm == ADVEX_NORM_L2 ? atk_norm2(gj, d) : atk_norm1(gj, d);
                if (dn < 1e-12) continue;
                double pert = fabs(f) / dn;
                if (pert < pbest[j]) {
                    pbest[j] = (float)pert;
                    memcpy(gb + j * d, gj, (size_t)d * fb);
                    fq[j] = fabsf(f);
                }
            }
        }
        for (int64_t j = 0; j < a; j++) {
            if (pbest[j] == FLT_MAX) continue; /* zero gradient: cannot move */
            const float *gj = gb + j * d;
            float *r = rt + j * d, *xj = xi + j * d;
            const float *x0 = xs + j * d;
            double f = fq[j] + 1e-4;
            if (c->norm == ADVEX_NORM_L2) {
                double n2 = atk_norm2(gj, d);
                float s = (float)(f / (n2 * n2));
                for (int64_t q = 0; q < d; q++) r[q] += s * gj[q];
            } else {
                float s = (float)(f / atk_norm1(gj, d));
                for (int64_t q = 0; q < d; q++) r[q] += s * (gj[q] > 0 ? 1.0f : (gj[q] < 0 ? -1.0f : 0.0f));
            }
            for (int64_t q = 0; q < d; q++) {
                float v = x0[q] + (1.0f + over) * r[q];
                xj[q] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
            }
        }
    }
    /* the budget: results beyond eps are returned as x */
    for (int64_t i = 0; i < n; i++) {
        if (!won[i]) continue;
        float *xa = xadv + i * d;
        const float *x0 = x + i * d;
        double nrm = 0;
        for (int64_t q = 0; q < d; q++) {
            double v = fabs((double)xa[q] - x0[q]);
            if (c->norm == ADVEX_NORM_L2) nrm += v * v; else nrm = v > nrm ? v : nrm;
        }
        if (c->norm == ADVEX_NORM_L2) nrm = sqrt(nrm);
        if (nrm > c->eps) { memcpy(xa, x0, (size_t)d * fb); won[i] = 0; }
    }
    if (info && info->stage) for (int64_t i = 0; i < n; i++) info->stage[i] = won[i];
done:
    free(blk);
    return st;
}
