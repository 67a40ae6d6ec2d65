/* APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
 * diverse parameter-free attacks"), following auto-attack's autopgd_base.py:
 *   step size eta = 2 eps; x1 = P(x0 + eta sign/normalised grad); then
 *   z = P(x_k + eta step(grad)), x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))
 *   checkpoints w_0 = 0, w_1 = ceil(0.22 N), w_{j+1} = w_j + max(w_j - w_{j-1} - 0.03 N, 0.06 N);
 *   at a checkpoint halve eta and restart from the best point when the loss rose in at most
 *   rho = 0.75 of the steps since the last checkpoint, or eta was not halved last time and the
 *   best loss did not improve. Losses: CE, DLR, targeted DLR (APGD-T over the top-k classes).
 * Examples that succeed are frozen and leave the batch (their state does not affect others).
 * Transfer mode (c->no_early_stop): every example runs every step, restart and target class;
 * the highest-loss iterate over all of them is returned (auto-attack's best_loss=True). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

enum { A_XS, A_XA, A_XOLD, A_XBEST, A_G, A_GBEST, A_XN, A_HIST, A_STEP, A_LBEST, A_LLAST, A_RED, A_Y, A_T, A_IDX,
       A_COUNT };

/* One APGD run from the start points already in xa (a active rows); updates xadv/won/best. */
typedef struct apgd_state {
    float *xs, *xa, *xold, *xbest, *g, *gbest, *xn, *hist, *step, *lbest, *llast, *red;
    int32_t *ys, *ts;
    int64_t *idx;
    float *z, *loss, *dl;
    unsigned char *keep;
    unsigned char *tw; /* transfer mode: (n, dataset order) the kept point succeeds on this model */
} apgd_state;

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

static advex_status apgd_run(advex_model *m, const advex_attack_config *c, apgd_state *S, int64_t a, int iters,
                             atk_loss *L, float *xadv, float *best, unsigned char *won) {
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const size_t fb = sizeof(float);
    const int n2 = iters * 22 / 100 > 1 ? iters * 22 / 100 : 1;
    const int nmin = iters * 6 / 100 > 1 ? iters * 6 / 100 : 1;
    const int decr = iters * 3 / 100 > 1 ? iters * 3 / 100 : 1;
    const float rho = 0.75f;
    advex_status st;
    const int transfer = c->no_early_stop != 0;
    /* record the state of row j's iterate (z, loss at xa); transfer mode: no freezing, the
     * highest-loss iterate is kept */
#define APGD_RECORD()                                                                          \
    for (int64_t j = 0; j < a; j++) {                                                          \
        int64_t i = S->idx[j];                                                                 \
        int ok = atk_success(L, S->z + j * k, k, j);                                           \
        S->keep[j] = transfer || !ok;                                                          \
        if ((ok && !transfer) || S->loss[j] > best[i]) {                                       \
            memcpy(xadv + i * d, S->xa + j * d, (size_t)d * fb);                               \
            best[i] = ok && !transfer ? FLT_MAX : S->loss[j];                                  \
            won[i] = (unsigned char)(ok && !transfer);                                         \
            S->tw[i] = (unsigned char)ok;                                                      \
        }                                                                                      \
    }
    void *arrs[A_COUNT] = {S->xs, S->xa, S->xold, S->xbest, S->g, S->gbest, S->xn, S->hist, S->step, S->lbest,
                           S->llast, S->red, S->ys, S->ts, S->idx};
    size_t rb[A_COUNT] = {d * fb, d * fb, d * fb, d * fb, d * fb, d * fb, d * fb, (size_t)iters * fb, fb, fb, fb, fb,
                          sizeof(int32_t), sizeof(int32_t), sizeof(int64_t)};

    if ((st = advex_model_grad_loop(m, S->xa, a, atk_loss_rows, L, S->g, S->z, S->loss, S->dl))) return st;
    APGD_RECORD();
    for (int64_t j = 0; j < a; j++) {
        memcpy(S->xbest + j * d, S->xa + j * d, (size_t)d * fb);
        memcpy(S->gbest + j * d, S->g + j * d, (size_t)d * fb);
        memcpy(S->xold + j * d, S->xa + j * d, (size_t)d * fb);
        S->lbest[j] = S->loss[j];
        S->llast[j] = S->loss[j];
        S->red[j] = 1.0f;
        S->step[j] = 2.0f * c->eps;
    }
    a = atk_compact(S->keep, a, arrs, rb, A_COUNT);
    int kk = n2, counter = 0;
    for (int it = 0; it < iters && a > 0; it++) {
        float mom = it > 0 ? 0.75f : 1.0f;
        for (int64_t j = 0; j < a; j++) {
            float *xk = S->xa + j * d, *xn = S->xn + j * d, *xo = S->xold + j * d;
            apply_step(xn, xk, xo, S->xs + j * d, S->g + j * d, d, S->step[j], c->eps, c->norm, mom);
            memcpy(xo, xk, (size_t)d * fb);
            memcpy(xk, xn, (size_t)d * fb);
        }
        if ((st = advex_model_grad_loop(m, S->xa, a, atk_loss_rows, L, S->g, S->z, S->loss, S->dl))) return st;
        APGD_RECORD();
        for (int64_t j = 0; j < a; j++) {
            S->hist[j * iters + it] = S->loss[j];
            if (S->loss[j] > S->lbest[j]) {
                memcpy(S->xbest + j * d, S->xa + j * d, (size_t)d * fb);
                memcpy(S->gbest + j * d, S->g + j * d, (size_t)d * fb);
                S->lbest[j] = S->loss[j];
            }
        }
        if (++counter == kk) {
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
                    memcpy(S->xa + j * d, S->xbest + j * d, (size_t)d * fb);
                    memcpy(S->g + j * d, S->gbest + j * d, (size_t)d * fb);
                }
            }
            kk = kk - decr > nmin ? kk - decr : nmin;
            counter = 0;
        }
        a = atk_compact(S->keep, a, arrs, rb, A_COUNT);
    }
#undef APGD_RECORD
    return ADVEX_OK;
}

advex_status atk_apgd(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                      int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const int iters = c->steps > 0 ? c->steps : 100;
    const int runs = c->restarts > 1 ? c->restarts : 1;
    const int random_start = c->restarts > 0;
    const size_t fb = sizeof(float);
    int topk = c->kind == ADVEX_ATTACK_APGD_T ? (c->topk > 0 ? c->topk : 9) : 1;
    if (topk > k - 1) topk = (int)(k - 1);

    size_t bytes = (size_t)(7 * n * d + n * iters + 4 * n + 2 * n * k + ADVEX_CHUNK * k + 2 * n) * fb +
                   (size_t)n * (4 * sizeof(int32_t) + sizeof(int64_t) + 2 * sizeof(int32_t) + 3);
    char *blk = atk_alloc(bytes);
    if (!blk) return ADVEX_ERR_NOMEM;
    apgd_state S;
    S.idx = (int64_t *)blk; /* first: keeps the int64 array aligned */
    float *p = (float *)(S.idx + n);
    S.xs = p; p += n * d;
    S.xa = p; p += n * d;
    S.xold = p; p += n * d;
    S.xbest = p; p += n * d;
    S.g = p; p += n * d;
    S.gbest = p; p += n * d;
    S.xn = p; p += n * d;
    S.hist = p; p += n * iters;
    S.step = p; p += n;
    S.lbest = p; p += n;
    S.llast = p; p += n;
    S.red = p; p += n;
    S.z = p; p += n * k;
    float *zclean = p; p += n * k;
    S.loss = p; p += n;
    float *best = p; p += n;
    S.dl = p; p += ADVEX_CHUNK * k;
    S.ys = (int32_t *)p;
    S.ts = S.ys + n;
    int32_t *tfull = S.ts + n;
    S.keep = (unsigned char *)(tfull + n);
    unsigned char *won = S.keep + n;
    S.tw = won + n;

    advex_status st = ADVEX_OK;
    int targeted = atk_setup_targets(m, c, x, y, n, off, zclean, tfull, &st);
    if (targeted < 0) goto done;
    if (c->kind == ADVEX_ATTACK_APGD_T && (st = advex_model_forward(m, x, n, zclean))) goto done;
    memmove(xadv, x, (size_t)(n * d) * fb);
    for (int64_t i = 0; i < n; i++) { best[i] = -FLT_MAX; won[i] = 0; }

    for (int tc = 0; tc < topk && !st; tc++) {
        for (int run = 0; run < runs && !st; run++) {
            int64_t a = 0;
            for (int64_t i = 0; i < n; i++) {
                if (won[i]) continue;
                S.idx[a] = i;
                S.ys[a] = y[i];
                if (c->kind == ADVEX_ATTACK_APGD_T) {
                    /* the (tc+2)-th most likely clean class (the top one is y when correct) */
                    S.ts[a] = atk_ranked_class(zclean + i * k, k, tc + 1);
                } else {
                    S.ts[a] = tfull[i];
                }
                memcpy(S.xs + a * d, x + i * d, (size_t)d * fb);
                if (random_start) {
                    /* auto-attack: x + eps * t / ||t||, t ~ U[-1,1]^d (L-inf) or N(0,1)^d (L2) */
                    advex_rng r;
                    atk_rng(&r, c->seed, 0xA0 + (uint64_t)(tc * 1000 + run), ATK_ID(i));
                    float *xa = S.xa + a * d;
                    double mx = 0;
                    for (int64_t q = 0; q < d; q++) {
                        xa[q] = c->norm == ADVEX_NORM_LINF ? 2.0f * advex_rng_uniform(&r) - 1.0f : advex_rng_normal(&r);
                        mx = c->norm == ADVEX_NORM_LINF ? (fabs(xa[q]) > mx ? fabs(xa[q]) : mx) : mx + (double)xa[q] * xa[q];
                    }
                    if (c->norm == ADVEX_NORM_L2) mx = sqrt(mx);
                    float f = mx > 0 ? (float)(c->eps / mx) : 0.0f;
                    for (int64_t q = 0; q < d; q++) xa[q] = x[i * d + q] + f * xa[q];
                    atk_project(xa, x + i * d, d, c->eps, c->norm);
                } else {
                    memcpy(S.xa + a * d, x + i * d, (size_t)d * fb);
                }
                a++;
            }
            if (a == 0) break;
            atk_loss L = {ATK_LOSS_CE, S.ys, NULL, 0};
            if (c->kind == ADVEX_ATTACK_APGD_T) { L.kind = ATK_LOSS_DLR_T; L.t = S.ts; L.untargeted_success = 1; }
            else {
                L.kind = c->kind == ADVEX_ATTACK_APGD_DLR ? ATK_LOSS_DLR : ATK_LOSS_CE;
                L.t = targeted ? S.ts : NULL;
            }
            st = apgd_run(m, c, &S, a, iters, &L, xadv, best, won);
        }
    }
    if (info && info->stage)
        for (int64_t i = 0; i < n; i++) info->stage[i] = c->no_early_stop ? S.tw[i] : won[i];
done:
    free(blk);
    return st;
}
