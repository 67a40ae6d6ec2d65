/* SimBA (Guo et al. 2019, "Simple Black-box Adversarial Attacks"), pixel basis, score-based:
 * each example walks its own random order of the C*H*W coordinates; for coordinate q it
 * queries x + a e_q and, when that does not lower the probability of the true class, x - a e_q,
 * keeping the first that lowers it. a: eps for L-inf (every coordinate moves at most once by
 * eps, so the point stays in the ball); c->alpha (default eps / 4) for L2, each accepted point
 * projected onto the L2 ball. Stops at misclassification, at the end of the coordinates or
 * of the example's budget (c->queries, the start's query included; default 5000). All
 * examples still active share each query batch. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

/* probability of class y from a scores row (softmax of logits, or the row itself) */
static float p_true(const float *z, int64_t k, int32_t y, int probs) {
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

advex_status atk_simba_run(const atk_scores *o, const advex_attack_config *c, const float *x, const int32_t *y,
                           int64_t n, int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    const int64_t d = o->chw[0] * o->chw[1] * o->chw[2], k = o->k, Q = c->queries > 0 ? c->queries : 5000;
    const float a = c->norm == ADVEX_NORM_L2 ? (c->alpha > 0 ? c->alpha : c->eps / 4) : c->eps;
    float *xn = malloc((size_t)(n * d) * sizeof(float)), *z = malloc((size_t)(n * k) * sizeof(float));
    float *pb = malloc((size_t)n * sizeof(float));
    int64_t *perm = malloc((size_t)(n * d) * sizeof(int64_t)), *pos = calloc((size_t)n, sizeof(int64_t));
    int64_t *qs = calloc((size_t)n, sizeof(int64_t)), *rows = calloc((size_t)n, sizeof(int64_t));
    signed char *sign = malloc((size_t)n); /* +1: try +a next, -1: try -a, 0: done */
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
        qs[i] = 1;
        pb[i] = p_true(z + i * k, k, y[i], o->probs);
        sign[i] = advex_argmax(z + i * k, k) == y[i] ? 1 : 0;
        if (info && info->stage) info->stage[i] = !sign[i];
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
            float p = p_true(z + j * k, k, y[i], o->probs);
            if (p < pb[i]) { /* keep it; the next coordinate starts with + */
                pb[i] = p;
                memcpy(xadv + i * d, xn + j * d, (size_t)d * sizeof(float));
                sign[i] = 1;
                pos[i]++;
                if (advex_argmax(z + j * k, k) != y[i]) {
                    sign[i] = 0;
                    if (info && info->stage) info->stage[i] = 1;
                }
            } else if (sign[i] > 0) {
                sign[i] = -1; /* the same coordinate, the other way */
            } else {
                sign[i] = 1;
                pos[i]++;
            }
        }
    }
    for (int64_t i = 0; info && info->queries && i < n; i++) info->queries[i] = qs[i];
done:
    free(xn); free(z); free(pb); free(perm); free(pos); free(qs); free(rows); free(sign);
    return st;
}

static advex_status model_scores(void *u, const float *x, int64_t n, const int64_t *rows, float *z) {
    (void)rows;
    return advex_model_forward(u, x, n, z);
}

advex_status atk_simba(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                       int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    atk_scores o = {model_scores, m, {m->net->in_chw[0], m->net->in_chw[1], m->net->in_chw[2]}, m->net->classes, 0};
    return atk_simba_run(&o, c, x, y, n, off, ids, xadv, info);
}
