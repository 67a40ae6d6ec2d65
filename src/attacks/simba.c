/* SimBA (Guo et al. 2019, "Simple Black-box Adversarial Attacks"), pixel basis, score-based:
 * each example walks its own random order of the C*H*W coordinates; for coordinate q it
 * queries x + a e_q and, when that does not lower the probability of the true class, x - a e_q,
 * keeping the first that lowers it. Targeted (the paper's targeted variant): the same walk
 * keeps a step when it raises the probability of the target class, and stops when the target
 * is the top class. a: eps for L-inf (every coordinate moves at most once by
 * eps, so the point stays in the ball); c->alpha (default eps / 4) for L2, each accepted point
 * projected onto the L2 ball. Stops at misclassification, at the end of the coordinates or
 * of the example's budget (c->queries, the start's query included; default 5000). All
 * examples still active share each query batch. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

/* probability of class y from a scores row (softmax of logits, or the row itself) */
static float p_class(const float *z, int64_t k, int32_t y, int probs) {
    if (probs) return z[y];
    float mx = -FLT_MAX;
    for (int64_t j = 0; j < k; j++) mx = z[j] > mx ? z[j] : mx;
    double s = 0;
    for (int64_t j = 0; j < k; j++) s += exp((double)(z[j] - mx));
    return (float)(exp((double)(z[y] - mx)) / s);
}

static inline float clip01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

/* xn = the proposal sign * a along coordinate q from xb, clipped, in the ball */
static void propose(float *xn, const float *x, const float *xb, int64_t d, int64_t q, float a, const advex_attack_config *c) {
    memcpy(xn, xb, (size_t)d * sizeof(float));
    xn[q] = clip01(xb[q] + a);
    if (c->norm == ADVEX_NORM_L2) atk_project(xn, x, d, c->eps, ADVEX_NORM_L2);
}

/* example i's walk after row z answered its proposal xn; tg: targeted */
static void simba_judge(const atk_scores *o, const float *z, const float *xn, int64_t d, int32_t y, int32_t g, int tg,
                        float *pb, float *xa, signed char *sign, int64_t *pos, int32_t *stage) {
    const int64_t k = o->k;
    float p = p_class(z, k, g, o->probs);
    if (tg ? p > *pb : p < *pb) { /* keep it; the next coordinate starts with + */
        *pb = p;
        memcpy(xa, xn, (size_t)d * sizeof(float));
        *sign = 1;
        (*pos)++;
        int32_t top = advex_argmax(z, k);
        if (o->final) *o->final = top;
        if (tg ? top == g : top != y) {
            *sign = 0;
            if (stage) *stage = 1;
        }
    } else if (*sign > 0) {
        *sign = -1; /* the same coordinate, the other way */
    } else {
        *sign = 1;
        (*pos)++;
    }
}

advex_status atk_simba_run(const atk_scores *o, const advex_attack_config *c, const float *x, const int32_t *y,
                           const int32_t *targets, int64_t n, int64_t off, const int64_t *ids, float *xadv,
                           advex_attack_info *info) {
    const int64_t d = o->chw[0] * o->chw[1] * o->chw[2], k = o->k, Q = c->queries > 0 ? c->queries : 5000;
    const float a = c->norm == ADVEX_NORM_L2 ? (c->alpha > 0 ? c->alpha : c->eps / 4) : c->eps;
    const int tg = targets != NULL;
    const int32_t *g = tg ? targets : y; /* the class whose probability is pushed */
    float *xn = malloc((size_t)(n * d) * sizeof(float)), *z = malloc((size_t)(n * k) * sizeof(float));
    float *pb = malloc((size_t)n * sizeof(float));
    int64_t *perm = malloc((size_t)(n * d) * sizeof(int64_t)), *pos = calloc((size_t)n, sizeof(int64_t));
    int64_t *qs = calloc((size_t)n, sizeof(int64_t)), *rows = calloc((size_t)n, sizeof(int64_t));
    signed char *sign = malloc((size_t)n); /* +1: try +a next, -1: try -a, 0: done */
    int32_t *stage = info && info->stage ? info->stage : NULL;
    atk_scores oi = *o; /* o with final pointing at the example being judged */
    advex_status st = ADVEX_OK;
    if (!xn || !z || !pb || !perm || !pos || !qs || !rows || !sign) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
    memmove(xadv, x, (size_t)(n * d) * sizeof(float));
    for (int64_t i = 0; i < n; i++) { /* a Fisher-Yates order per example */
        advex_rng r;
        atk_rng(&r, c->seed, 0x51B, ATK_ID(i));
        for (int64_t j = 0; j < d; j++) perm[i * d + j] = j;
        for (int64_t j = d - 1; j > 0; j--) {
            int64_t t = (int64_t)advex_rng_below(&r, (uint64_t)(j + 1)), v = perm[i * d + j];
            perm[i * d + j] = perm[i * d + t];
            perm[i * d + t] = v;
        }
        rows[i] = i;
    }
    if ((st = o->fwd(o->u, x, n, rows, z))) goto done;
    for (int64_t i = 0; i < n; i++) {
        int32_t top = advex_argmax(z + i * k, k);
        qs[i] = 1;
        pb[i] = p_class(z + i * k, k, g[i], o->probs);
        sign[i] = (tg ? top != g[i] : top == y[i]) ? 1 : 0;
        if (stage) stage[i] = !sign[i];
        if (o->final) o->final[i] = top;
    }
    for (;;) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!sign[i] || qs[i] >= Q || pos[i] >= d) { sign[i] = 0; continue; }
            propose(xn + m * d, x + i * d, xadv + i * d, d, perm[i * d + pos[i]], sign[i] * a, c);
            rows[m++] = i;
        }
        if (m == 0) break;
        if ((st = o->fwd(o->u, xn, m, rows, z))) goto done;
        for (int64_t j = 0; j < m; j++) {
            int64_t i = rows[j];
            qs[i]++;
            oi.final = o->final ? o->final + i : NULL;
            simba_judge(&oi, z + j * k, xn + j * d, d, y[i], g[i], tg, &pb[i], xadv + i * d, &sign[i], &pos[i],
                        stage ? stage + i : NULL);
        }
    }
    for (int64_t i = 0; info && info->queries && i < n; i++) info->queries[i] = qs[i];
done:
    free(xn); free(z); free(pb); free(perm); free(pos); free(qs); free(rows); free(sign);
    return st;
}

advex_status atk_simba(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                       int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    return atk_on_model_scores(atk_simba_run, m, c, x, y, n, off, ids, xadv, info);
}
