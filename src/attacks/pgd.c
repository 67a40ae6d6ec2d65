/* Iterative gradient attacks sharing one loop: BIM / I-FGSM (Kurakin et al. 2017), PGD
 * (Madry et al. 2018; L-inf sign steps or L2 normalised steps, random starts) and MI-FGSM
 * (Dong et al. 2018; g <- mu g + grad/||grad||_1, step along sign(g)).
 * Every iterate is checked: an example that succeeds is frozen and returned; otherwise the
 * highest-loss iterate over all steps and restarts is returned. Transfer mode
 * (c->no_early_stop): every example runs every step of every run; the last iterate of the
 * run whose last iterate has the highest loss is returned. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

advex_status atk_pgd(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                     int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const int steps = c->steps > 0 ? c->steps : 10;
    const advex_norm norm = c->norm;
    const int is_pgd = c->kind == ADVEX_ATTACK_PGD, is_mi = c->kind == ADVEX_ATTACK_MIFGSM;
    const float alpha = c->alpha > 0 ? c->alpha : (is_pgd ? 2.5f : 1.0f) * c->eps / (float)steps;
    const float mu = c->momentum >= 0 ? c->momentum : 1.0f;
    const int runs = is_pgd && c->restarts > 1 ? c->restarts : 1;
    const int random_start = is_pgd && c->restarts > 0;
    const int transfer = c->no_early_stop != 0;

    /* per-call buffers (never inside the step loop) */
    size_t fb = sizeof(float);
    char *blk = atk_alloc((size_t)(4 * n * d + n * k + 2 * n + ADVEX_CHUNK * k) * fb + (size_t)n * (2 * sizeof(int32_t) +
                          sizeof(int64_t) + 3));
    if (!blk) return ADVEX_ERR_NOMEM;
    int64_t *idx = (int64_t *)blk;     /* (n) dataset row of each active example (first: aligned) */
    float *xs = (float *)(idx + n);    /* (n,d) clean inputs of the active examples */
    float *xa = xs + n * d;            /* (n,d) current iterates */
    float *g = xa + n * d;             /* (n,d) gradients */
    float *mom = g + n * d;            /* (n,d) MI-FGSM momentum */
    float *z = mom + n * d;            /* (n,k) logits */
    float *loss = z + n * k;           /* (n) */
    float *best = loss + n;            /* (n) best loss per example (by dataset order) */
    float *dl = best + n;              /* (CHUNK,k) */
    int32_t *ys = (int32_t *)(dl + ADVEX_CHUNK * k), *ts = ys + n;
    unsigned char *keep = (unsigned char *)(ts + n), *won = keep + n;
    unsigned char *tw = won + n; /* transfer mode: the kept point succeeds on this model */

    advex_status st = ADVEX_OK;
    int32_t *tfull = ts; /* targets in dataset order, gathered below */
    int targeted = atk_setup_targets(m, c, x, y, n, off, z, tfull, &st);
    if (targeted < 0) goto done;
    int32_t *tsave = malloc((size_t)n * sizeof(int32_t));
    if (!tsave) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
    memcpy(tsave, tfull, (size_t)n * sizeof(int32_t));
    memmove(xadv, x, (size_t)(n * d) * fb);
    for (int64_t i = 0; i < n; i++) { best[i] = -FLT_MAX; won[i] = 0; }

    for (int run = 0; run < runs && !st; run++) {
        /* gather the examples not yet broken */
        int64_t a = 0;
        for (int64_t i = 0; i < n; i++) {
            if (won[i]) continue;
            idx[a] = i;
            ys[a] = y[i];
            ts[a] = tsave[i];
            memcpy(xs + a * d, x + i * d, (size_t)d * fb);
            if (random_start) {
                advex_rng r;
                atk_rng(&r, c->seed, 0x70 + (uint64_t)run, ATK_ID(i));
                atk_random_start(xa + a * d, x + i * d, d, c->eps, norm, &r);
            } else {
                memcpy(xa + a * d, x + i * d, (size_t)d * fb);
            }
            a++;
        }
        memset(mom, 0, (size_t)(a * d) * fb);
        atk_loss L = {ATK_LOSS_CE, ys, targeted ? ts : NULL, 0};
        for (int s = 0; s <= steps && a > 0; s++) {
            if (s < steps) st = advex_model_grad_loop(m, xa, a, atk_loss_rows, &L, g, z, loss, dl);
            else if (!(st = advex_model_forward(m, xa, a, z))) atk_loss_rows(&L, 0, a, k, z, loss, NULL);
            if (st) break;
            /* record: success freezes the example; else keep the highest-loss iterate.
             * Transfer mode: every example runs every step; the last iterate of the run
             * with the highest loss is kept */
            for (int64_t j = 0; j < a; j++) {
                int64_t i = idx[j];
                int ok = atk_success(&L, z + j * k, k, j);
                if (transfer) {
                    keep[j] = 1;
                    if (s == steps && loss[j] > best[i]) {
                        memcpy(xadv + i * d, xa + j * d, (size_t)d * fb);
                        best[i] = loss[j];
                        tw[i] = (unsigned char)ok;
                    }
                    continue;
                }
                keep[j] = !ok;
                if (ok || loss[j] > best[i]) {
                    memcpy(xadv + i * d, xa + j * d, (size_t)d * fb);
                    best[i] = ok ? FLT_MAX : loss[j];
                    won[i] = (unsigned char)ok;
                }
            }
            void *arrs[] = {xs, xa, g, mom, ys, ts, idx};
            size_t rb[] = {(size_t)d * fb, (size_t)d * fb, (size_t)d * fb, (size_t)d * fb, sizeof(int32_t),
                           sizeof(int32_t), sizeof(int64_t)};
            a = atk_compact(keep, a, arrs, rb, 7);
            if (s == steps) break;
            /* step */
            for (int64_t j = 0; j < a; j++) {
                float *gj = g + j * d, *dir = gj;
                if (is_mi) {
                    double n1 = atk_norm1(gj, d);
                    float inv = n1 > 0 ? (float)(1.0 / n1) : 0.0f;
                    float *mj = mom + j * d;
                    for (int64_t q = 0; q < d; q++) mj[q] = mu * mj[q] + gj[q] * inv;
                    dir = mj;
                }
                float *xj = xa + j * d;
                if (norm == ADVEX_NORM_LINF) {
                    advex_sign_step(xj, xs + j * d, dir, d, alpha, c->eps);
                } else {
                    double n2 = atk_norm2(dir, d);
                    float f = n2 > 0 ? (float)(alpha / n2) : 0.0f;
                    for (int64_t q = 0; q < d; q++) xj[q] += f * dir[q];
                    atk_project(xj, xs + j * d, d, c->eps, norm);
                }
            }
        }
    }
    if (info && info->stage) for (int64_t i = 0; i < n; i++) info->stage[i] = transfer ? tw[i] : won[i];
    free(tsave);
done:
    free(blk);
    return st;
}
