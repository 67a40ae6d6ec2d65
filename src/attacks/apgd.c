/* APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
 * diverse parameter-free attacks"), following auto-attack's autopgd_base.py:
 *   step size eta = 2 eps; x1 = P(x0 + eta sign/normalised grad); then
 *   z = P(x_k + eta step(grad)), x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))
 *   checkpoints w_0 = 0, w_1 = ceil(0.22 N), w_{j+1} = w_j + max(w_j - w_{j-1} - 0.03 N, 0.06 N);
 *   at a checkpoint halve eta and restart from the best point when the loss rose in at most
 *   rho = 0.75 of the steps since the last checkpoint, or eta was not halved last time and the
 *   best loss did not improve. Losses: CE, DLR, targeted DLR (APGD-T over the top-k classes).
 * L1 (Croce & Hein 2021, "Mind the box") has its own step and schedule: apgd_l1.c.
 * Examples that succeed are frozen and leave the batch (their state does not affect others).
 * Transfer mode (c->no_early_stop): every example runs every step, restart and target class;
 * the highest-loss iterate over all of them is returned (auto-attack's best_loss=True). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/apgd_internal.h"

static void apply_step(float *out, const float *xk, const float *xprev, const float *xs, const float *g, int64_t d,
                       float eta, float eps, advex_norm norm, float a) {
    /* z = P(x_k + eta * dir(g)) */
    if (norm == ADVEX_NORM_LINF) {
        for (int64_t q = 0; q < d; q++) out[q] = xk[q] + eta * (g[q] > 0 ? 1.0f : (g[q] < 0 ? -1.0f : 0.0f));
    } else {
        double n2 = atk_norm2(g, d);
        float f = n2 > 1e-12 ? (float)(eta / n2) : 0.0f;
        for (int64_t q = 0; q < d; q++) out[q] = xk[q] + f * g[q];
    }
    atk_project(out, xs, d, eps, norm);
    /* momentum: x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1})) */
    for (int64_t q = 0; q < d; q++) out[q] = xk[q] + a * (out[q] - xk[q]) + (1.0f - a) * (xk[q] - xprev[q]);
    atk_project(out, xs, d, eps, norm);
}

void apgd_record(apgd_state *S, const atk_loss *L, int64_t a, int transfer) {
    const int64_t d = S->d, k = S->k;
    for (int64_t j = 0; j < a; j++) {
        int64_t i = S->idx[j];
        int ok = atk_success(L, S->z + j * k, k, j);
        S->keep[j] = transfer || !ok;
        if ((ok && !transfer) || S->loss[j] > S->best[i]) {
            memcpy(S->xadv + i * d, S->xa + j * d, (size_t)d * sizeof(float));
            S->best[i] = ok && !transfer ? FLT_MAX : S->loss[j];
            S->won[i] = (unsigned char)(ok && !transfer);
            S->tw[i] = (unsigned char)ok;
        }
    }
}

int64_t apgd_compact(apgd_state *S, int64_t a) {
    const size_t fb = sizeof(float), db = (size_t)S->d * fb;
    void *arrs[A_COUNT] = {S->xs,   S->xa,   S->xold,  S->xbest, S->g,    S->gbest, S->xn,  S->hist, S->step,
                           S->lbest, S->llast, S->red, S->topk,  S->spold, S->ys,   S->ts,   S->idx};
    size_t rb[A_COUNT] = {db, db, db, db, db, db, db, (size_t)S->iters * fb, fb, fb, fb, fb, fb, fb,
                          sizeof(int32_t), sizeof(int32_t), sizeof(int64_t)};
    return atk_compact(S->keep, a, arrs, rb, A_COUNT);
}

/* At a checkpoint (kk steps since the last, the last at iteration it): halve the step and go
 * back to the best point where the loss rose in at most rho kk of them, or where the step was
 * not halved last time and the best loss did not improve. */
static void checkpoint(apgd_state *S, int64_t a, int it, int kk) {
    const int64_t d = S->d, iters = S->iters;
    const float rho = 0.75f;
    for (int64_t j = 0; j < a; j++) {
        const float *h = S->hist + j * iters;
        int rises = 0;
        for (int q = 0; q < kk; q++) {
            int cur = it - q, prev = it - q - 1;
            /* auto-attack reads an unwritten (zero) slot before the first iterate */
            float hp = prev >= 0 ? h[prev] : 0.0f;
            rises += h[cur] > hp;
        }
        int osc = rises <= kk * rho;
        int no_impr = S->red[j] == 0.0f && S->llast[j] >= S->lbest[j];
        int reduce = osc || no_impr;
        S->red[j] = (float)reduce;
        S->llast[j] = S->lbest[j];
        if (reduce) {
            S->step[j] *= 0.5f;
            memcpy(S->xa + j * d, S->xbest + j * d, (size_t)d * sizeof(float));
            memcpy(S->g + j * d, S->gbest + j * d, (size_t)d * sizeof(float));
        }
    }
}

/* One L-inf or L2 run from the start points already in S->xa (a active rows). */
static advex_status apgd_run(advex_model *m, const advex_attack_config *c, apgd_state *S, int64_t a,
                             const atk_loss *L) {
    const int64_t d = S->d;
    const int iters = (int)S->iters;
    const int n2 = iters * 22 / 100 > 1 ? iters * 22 / 100 : 1;
    const int nmin = iters * 6 / 100 > 1 ? iters * 6 / 100 : 1;
    const int decr = iters * 3 / 100 > 1 ? iters * 3 / 100 : 1;
    const size_t fb = sizeof(float);
    const int transfer = c->no_early_stop != 0;
    atk_loss *Lm = (atk_loss *)L;
    advex_status st;

    if ((st = advex_model_grad_loop(m, S->xa, a, atk_loss_rows, Lm, S->g, S->z, S->loss, S->dl))) return st;
    apgd_record(S, L, a, transfer);
    for (int64_t j = 0; j < a; j++) {
        memcpy(S->xbest + j * d, S->xa + j * d, (size_t)d * fb);
        memcpy(S->gbest + j * d, S->g + j * d, (size_t)d * fb);
        memcpy(S->xold + j * d, S->xa + j * d, (size_t)d * fb);
        S->lbest[j] = S->loss[j];
        S->llast[j] = S->loss[j];
        S->red[j] = 1.0f;
        S->step[j] = 2.0f * c->eps;
    }
    a = apgd_compact(S, a);
    int kk = n2, counter = 0;
    for (int it = 0; it < iters && a > 0; it++) {
        float mom = it > 0 ? 0.75f : 1.0f;
        for (int64_t j = 0; j < a; j++) {
            float *xk = S->xa + j * d, *xn = S->xn + j * d, *xo = S->xold + j * d;
            apply_step(xn, xk, xo, S->xs + j * d, S->g + j * d, d, S->step[j], c->eps, c->norm, mom);
            memcpy(xo, xk, (size_t)d * fb);
            memcpy(xk, xn, (size_t)d * fb);
        }
        if ((st = advex_model_grad_loop(m, S->xa, a, atk_loss_rows, Lm, S->g, S->z, S->loss, S->dl))) return st;
        apgd_record(S, L, a, transfer);
        for (int64_t j = 0; j < a; j++) {
            S->hist[j * iters + it] = S->loss[j];
            if (S->loss[j] > S->lbest[j]) {
                memcpy(S->xbest + j * d, S->xa + j * d, (size_t)d * fb);
                memcpy(S->gbest + j * d, S->g + j * d, (size_t)d * fb);
                S->lbest[j] = S->loss[j];
            }
        }
        if (++counter == kk) {
            checkpoint(S, a, it, kk);
            kk = kk - decr > nmin ? kk - decr : nmin;
            counter = 0;
        }
        a = apgd_compact(S, a);
    }
    return ADVEX_OK;
}

/* Row a's start point in S->xa for example i (x0 = x + i * d). auto-attack: x + eps t / ||t||
 * with t ~ U[-1,1]^d (L-inf) or N(0,1)^d (L2); L1: P(x + t), t ~ N(0,1)^d unscaled, projected
 * onto the ball of radius eps (3 eps when the run starts its eps schedule, apgd_l1.c). Without
 * a random start (restarts 0): x itself. */
static void start_point(const advex_attack_config *c, const apgd_state *S, int64_t a, const float *x0,
                        int random_start, advex_rng *r, const float *noise) {
    const int64_t d = S->d;
    float *xa = S->xa + a * d;
    if (!random_start) {
        memcpy(xa, x0, (size_t)d * sizeof(float));
        return;
    }
    if (c->norm == ADVEX_NORM_L1) { /* as autopgd_base.py forms it: x + t + c, or (x + t) + c */
        for (int64_t q = 0; q < d; q++) xa[q] = noise ? noise[q] : advex_rng_normal(r);
        if (!c->apgd_largereps) {
            atk_l1_project_delta(xa, x0, xa, d, (double)c->eps, S->proj);
            return;
        }
        for (int64_t q = 0; q < d; q++) xa[q] += x0[q];
        atk_l1_project(xa, x0, xa, d, 3.0 * (double)c->eps, S->proj);
        return;
    }
    double mx = 0;
    for (int64_t q = 0; q < d; q++) {
        xa[q] = c->norm == ADVEX_NORM_LINF ? 2.0f * advex_rng_uniform(r) - 1.0f : advex_rng_normal(r);
        mx = c->norm == ADVEX_NORM_LINF ? (fabs(xa[q]) > mx ? fabs(xa[q]) : mx) : mx + (double)xa[q] * xa[q];
    }
    if (c->norm == ADVEX_NORM_L2) mx = sqrt(mx);
    float f = mx > 0 ? (float)(c->eps / mx) : 0.0f;
    for (int64_t q = 0; q < d; q++) xa[q] = x0[q] + f * xa[q];
    atk_project(xa, x0, d, c->eps, c->norm);
}

/* Lays the state out in one block for n examples; NULL when out of memory. */
static char *layout(apgd_state *S, int64_t n, int64_t d, int64_t k, int iters, float **zclean, int32_t **tfull) {
    const size_t fb = sizeof(float);
    size_t bytes = (size_t)(2 * d) * sizeof(double) + (size_t)n * sizeof(int64_t) +
                   (size_t)(7 * n * d + n * iters + 6 * n + 2 * n * k + ADVEX_CHUNK * k + 2 * n + d) * fb +
                   (size_t)n * (3 * sizeof(int32_t) + 3);
    char *blk = atk_alloc(bytes);
    if (!blk) return NULL;
    S->d = d;
    S->k = k;
    S->iters = iters;
    S->proj = (double *)blk; /* doubles and int64 first: aligned */
    S->idx = (int64_t *)(S->proj + 2 * d);
    float *p = (float *)(S->idx + n);
    float **rows[] = {&S->xs, &S->xa, &S->xold, &S->xbest, &S->g, &S->gbest, &S->xn};
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) { *rows[r] = p; p += n * d; }
    S->hist = p; p += n * iters;
    float **cols[] = {&S->step, &S->lbest, &S->llast, &S->red, &S->topk, &S->spold, &S->loss, &S->best};
    for (size_t r = 0; r < sizeof cols / sizeof *cols; r++) { *cols[r] = p; p += n; }
    S->z = p; p += n * k;
    *zclean = p; p += n * k;
    S->dl = p; p += ADVEX_CHUNK * k;
    S->sel = p; p += d;
    S->ys = (int32_t *)p;
    S->ts = S->ys + n;
    *tfull = S->ts + n;
    S->keep = (unsigned char *)(*tfull + n);
    S->won = S->keep + n;
    S->tw = S->won + n;
    return blk;
}

advex_status atk_apgd(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                      int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    return atk_apgd_noise(m, c, x, y, n, off, ids, NULL, xadv, info);
}

advex_status atk_apgd_noise(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y,
                            int64_t n, int64_t off, const int64_t *ids, const float *noise, float *xadv,
                            advex_attack_info *info) {
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const int iters = c->steps > 0 ? c->steps : 100;
    const int runs = c->restarts > 1 ? c->restarts : 1;
    const int random_start = c->restarts > 0;
    const int apgd_t = c->kind == ADVEX_ATTACK_APGD_T;
    int topk = apgd_t ? (c->topk > 0 ? c->topk : 9) : 1;
    if (topk > k - 1) topk = (int)(k - 1);

    apgd_state S;
    float *zclean;
    int32_t *tfull;
    char *blk = layout(&S, n, d, k, iters, &zclean, &tfull);
    if (!blk) return ADVEX_ERR_NOMEM;
    S.xadv = xadv;
    advex_status st = ADVEX_OK;
    int targeted = atk_setup_targets(m, c, x, y, n, off, zclean, tfull, &st);
    if (targeted < 0) goto done;
    if (apgd_t && (st = advex_model_forward(m, x, n, zclean))) goto done;
    memmove(xadv, x, (size_t)(n * d) * sizeof(float));
    for (int64_t i = 0; i < n; i++) { S.best[i] = -FLT_MAX; S.won[i] = 0; }

    for (int tc = 0; tc < topk && !st; tc++) {
        for (int run = 0; run < runs && !st; run++) {
            int64_t a = 0;
            for (int64_t i = 0; i < n; i++) {
                if (S.won[i]) continue;
                S.idx[a] = i;
                S.ys[a] = y[i];
                /* APGD-T: the (tc+2)-th most likely clean class (the top one is y when correct) */
                S.ts[a] = apgd_t ? atk_ranked_class(zclean + i * k, k, tc + 1) : tfull[i];
                memcpy(S.xs + a * d, x + i * d, (size_t)d * sizeof(float));
                advex_rng r;
                atk_rng(&r, c->seed, 0xA0 + (uint64_t)(tc * 1000 + run), ATK_ID(i));
                start_point(c, &S, a, x + i * d, random_start, &r, noise ? noise + i * d : NULL);
                a++;
            }
            if (a == 0) break;
            atk_loss L = {ATK_LOSS_CE, S.ys, NULL, 0};
            if (apgd_t) { L.kind = ATK_LOSS_DLR_T; L.t = S.ts; L.untargeted_success = 1; }
            else {
                L.kind = c->kind == ADVEX_ATTACK_APGD_DLR ? ATK_LOSS_DLR : ATK_LOSS_CE;
                L.t = targeted ? S.ts : NULL;
            }
            st = c->norm == ADVEX_NORM_L1 ? apgd_l1_run(m, c, &S, a, &L) : apgd_run(m, c, &S, a, &L);
        }
    }
    if (info && info->stage)
        for (int64_t i = 0; i < n; i++) info->stage[i] = c->no_early_stop ? S.tw[i] : S.won[i];
done:
    free(blk);
    return st;
}
