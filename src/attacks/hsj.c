/* HopSkipJump (Chen, Jordan & Wainwright 2020), decision-based: only the predicted label of
 * each query is used. Untargeted, L2 or L-inf, following ART's HopSkipJump (defaults
 * max_iter 50, max_eval 10000, init_eval 100, init_size 100, gamma 1):
 *   start   uniform noise images until one is misclassified, then a binary search on the
 *           blend (1-a) x + a noise to the boundary (threshold 0.001)
 *   repeat  binary search between x and the current point to the boundary (L2: blend;
 *           L-inf: clip to the box of radius a; threshold theta = gamma / d^1.5 (L2),
 *           gamma / d^2 (L-inf)); gradient estimate at the boundary from
 *           min(init_eval * sqrt(t+1), max_eval) random unit directions (Gaussian for L2,
 *           uniform for L-inf) of size delta (0.1 at t = 0, then sqrt(d) theta dist (L2),
 *           d theta dist (L-inf)), queried as one batch; geometric step-size search from
 *           2 dist / sqrt(t+1), halving until the step stays adversarial
 * Against an eps budget an example stops as soon as its point is adversarial within eps
 * (success), or when its query budget (c->queries) or max_iter runs out (failure: x is
 * returned). The budget is never exceeded: a phase that would need more queries than are
 * left is cut to what is left. Per-example streams seed the noise (results do not depend on
 * the batch). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

#define HSJ_MAX_ITER 50
#define HSJ_MAX_EVAL 10000
#define HSJ_INIT_EVAL 100
#define HSJ_INIT_SIZE 100
#define HSJ_MAX_HALVINGS 30

typedef struct hsj_ctx {
    const atk_labels *o;
    int64_t row, d, left, used;
    int32_t y;
    int l2;
    advex_status st;
    float *q; /* query scratch (max_eval, d) */
    int32_t *pred;
} hsj_ctx;

/* adversarial(x_i) for m images; -1 on error or when the budget is spent */
static int hsj_query(hsj_ctx *h, const float *x, int64_t m, int32_t *adv) {
    if (m > h->left) return -1;
    if ((h->st = h->o->labels(h->o->u, x, m, h->row, h->pred))) return -1;
    h->left -= m;
    h->used += m;
    for (int64_t i = 0; i < m; i++) adv[i] = h->pred[i] != h->y;
    return 0;
}

static float dist(const float *a, const float *b, int64_t d, int l2) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) {
        double v = fabs((double)a[j] - b[j]);
        if (l2) s += v * v; else if (v > s) s = v;
    }
    return (float)(l2 ? sqrt(s) : s);
}

/* out = interpolation at a between x (a = 0) and cur: L2 blend, L-inf box clip */
static void interp(float *out, const float *x, const float *cur, int64_t d, float a, int l2) {
    for (int64_t j = 0; j < d; j++) {
        if (l2) out[j] = (1 - a) * x[j] + a * cur[j];
        else { float lo = x[j] - a, hi = x[j] + a; out[j] = cur[j] < lo ? lo : cur[j] > hi ? hi : cur[j]; }
    }
}

/* cur <- the boundary point between x and cur (cur adversarial); -1 when out of queries */
static int binary_search(hsj_ctx *h, const float *x, float *cur, float threshold, int l2) {
    float hi = l2 ? 1.0f : dist(x, cur, h->d, 0), lo = 0;
    int32_t adv;
    while (hi - lo > threshold) {
        float mid = 0.5f * (hi + lo);
        interp(h->q, x, cur, h->d, mid, l2);
        if (hsj_query(h, h->q, 1, &adv)) return -1;
        if (adv) hi = mid; else lo = mid;
    }
    interp(h->q, x, cur, h->d, hi, l2);
    memcpy(cur, h->q, (size_t)h->d * sizeof(float));
    return 0;
}

/* the starting point: random noise that is adversarial, pulled toward x */
static int hsj_init(hsj_ctx *h, const float *x, float *cur, advex_rng *r) {
    int32_t adv = 0;
    for (int t = 0; t < HSJ_INIT_SIZE && !adv; t++) {
        for (int64_t j = 0; j < h->d; j++) cur[j] = advex_rng_uniform(r);
        if (hsj_query(h, cur, 1, &adv)) return -1;
    }
    if (!adv) return -1;
    float lo = 0, hi = 1;
    while (hi - lo > 0.001f) {
        float mid = 0.5f * (hi + lo);
        interp(h->q, x, cur, h->d, mid, 1);
        if (hsj_query(h, h->q, 1, &adv)) return -1;
        if (adv) hi = mid; else lo = mid;
    }
    interp(h->q, x, cur, h->d, hi, 1);
    memcpy(cur, h->q, (size_t)h->d * sizeof(float));
    return 0;
}

/* update (d): the estimated gradient direction at the boundary point cur from m probes */
static int estimate(hsj_ctx *h, const float *cur, int64_t m, float delta, advex_rng *r, float *update, int32_t *adv) {
    const int64_t d = h->d;
    for (int64_t i = 0; i < m; i++) {
        float *p = h->q + i * d;
        double s = 0;
        for (int64_t j = 0; j < d; j++) {
            p[j] = h->l2 ? advex_rng_normal(r) : 2.0f * advex_rng_uniform(r) - 1.0f;
            s += (double)p[j] * p[j];
        }
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0;
        for (int64_t j = 0; j < d; j++) {
            float v = cur[j] + delta * p[j] * inv;
            p[j] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    }
    if (hsj_query(h, h->q, m, adv)) return -1;
    double mean = 0;
    for (int64_t i = 0; i < m; i++) mean += adv[i] ? 1.0 : -1.0;
    mean /= (double)m;
    double nrm = 0;
    for (int64_t j = 0; j < d; j++) {
        double g = 0;
        for (int64_t i = 0; i < m; i++) {
            double f = adv[i] ? 1.0 : -1.0, u = (h->q[i * d + j] - cur[j]) / delta;
            g += (fabs(mean) == 1.0 ? mean : f - mean) * u;
        }
        update[j] = (float)(g / (double)m);
        nrm += (double)update[j] * update[j];
    }
    for (int64_t j = 0; j < d; j++)
        update[j] = h->l2 ? (nrm > 0 ? (float)(update[j] / sqrt(nrm)) : 0) : (update[j] > 0) - (update[j] < 0);
    return 0;
}

/* one example: xa = its adversarial point within eps, or x; returns 1 on success */
static int hsj_one(hsj_ctx *h, const advex_attack_config *c, const float *x, float *xa, float *cur, float *upd,
                   int32_t *adv, advex_rng *r) {
    const int64_t d = h->d;
    const int l2 = h->l2;
    const float theta = l2 ? (float)(1.0 / (sqrt((double)d) * (double)d)) : (float)(1.0 / ((double)d * (double)d));
    memcpy(xa, x, (size_t)d * sizeof(float));
    if (hsj_init(h, x, cur, r)) return 0;
    float dprev = dist(x, cur, d, l2);
    for (int it = 0; it < HSJ_MAX_ITER; it++) {
        float delta = it == 0 ? 0.1f : (l2 ? (float)sqrt((double)d) : (float)d) * theta * dprev;
        if (binary_search(h, x, cur, theta, l2)) break;
        float dcur = dist(x, cur, d, l2);
        if (dcur <= c->eps) break;
        int64_t m = (int64_t)(HSJ_INIT_EVAL * sqrt((double)it + 1));
        m = m < HSJ_MAX_EVAL ? m : HSJ_MAX_EVAL;
        if (m > h->left - 1) m = h->left - 1; /* keep one for the step */
        if (m < 2 || estimate(h, cur, m, delta, r, upd, adv)) break;
        float step = 2.0f * dcur / (float)sqrt((double)it + 1);
        int ok = 0;
        for (int k = 0; k < HSJ_MAX_HALVINGS && !ok; k++) {
            step *= 0.5f;
            for (int64_t j = 0; j < d; j++) {
                float v = cur[j] + step * upd[j];
                h->q[j] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
            if (hsj_query(h, h->q, 1, adv)) break;
            ok = adv[0];
        }
        if (!ok) break;
        memcpy(cur, h->q, (size_t)d * sizeof(float));
        dprev = dcur;
    }
    if (h->st) return 0;
    /* cur is adversarial (every point it took was); success if within eps */
    if (dist(x, cur, d, l2) <= c->eps * (1 + 1e-6f)) {
        memcpy(xa, cur, (size_t)d * sizeof(float));
        return 1;
    }
    return 0;
}

advex_status atk_hsj_run(const atk_labels *o, const advex_attack_config *c, const float *x, const int32_t *y,
                         int64_t n, int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    const int64_t d = o->chw[0] * o->chw[1] * o->chw[2];
    const int64_t Q = c->queries > 0 ? c->queries : 5000;
    const int64_t rows = Q < HSJ_MAX_EVAL ? Q : HSJ_MAX_EVAL; /* the most one query batch can hold */
    float *cur = malloc((size_t)(2 * d) * sizeof(float)), *q = malloc((size_t)(rows * d) * sizeof(float));
    int32_t *adv = malloc((size_t)rows * sizeof(int32_t)), *pred = malloc((size_t)rows * sizeof(int32_t));
    advex_status st = ADVEX_OK;
    if (!cur || !q || !adv || !pred) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n && !st; i++) {
        advex_rng r;
        atk_rng(&r, c->seed, 0x45A, ATK_ID(i));
        hsj_ctx h = {o, i, d, Q, 0, y[i], c->norm == ADVEX_NORM_L2, ADVEX_OK, q, pred};
        int ok = hsj_one(&h, c, x + i * d, xadv + i * d, cur, cur + d, adv, &r);
        if ((st = h.st)) break;
        if (info && info->queries) info->queries[i] = h.used;
        if (info && info->stage) info->stage[i] = ok;
    }
    free(cur); free(q); free(adv); free(pred);
    return st;
}

/* the local model as a labels oracle */
static advex_status model_labels(void *u, const float *x, int64_t n, int64_t row, int32_t *pred) {
    (void)row;
    advex_model *m = u;
    int64_t k = m->net->classes;
    float *z = malloc((size_t)(n * k) * sizeof(float));
    if (!z) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    advex_status st = advex_model_forward(m, x, n, z);
    for (int64_t i = 0; !st && i < n; i++) pred[i] = advex_argmax(z + i * k, k);
    free(z);
    return st;
}

advex_status atk_hsj(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                     int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    atk_labels o = {model_labels, m, {m->net->in_chw[0], m->net->in_chw[1], m->net->in_chw[2]}};
    return atk_hsj_run(&o, c, x, y, n, off, ids, xadv, info);
}
