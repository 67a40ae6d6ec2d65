/* FAB, the fast adaptive boundary attack (Croce & Hein 2020, "Minimally distorted adversarial
 * examples with a fast adaptive boundary attack"), L-inf, L2 and L1, with the published
 * code's defaults (auto-attack's fab_base.py, standard version): 100 iterations, alpha_max
 * 0.1, eta 1.05, beta 0.9. Each iteration, from the current point x1 of an example x0:
 *   linearise: for each class q != y, f_q = z_q - z_y and w_q = grad f_q; take the q with the
 *     smallest |f_q| / ||w_q||_* (the dual norm: L1 for L-inf, L2 for L2, L-inf for L1),
 *     the nearest linearised boundary (fab-t: the one target class t, f = z_t - z_y);
 *   project x1 and x0 onto that hyperplane within [0,1]^d (fab_proj.c): d1, d2;
 *   alpha = min(||d1|| / (||d1|| + ||d2||), alpha_max) (norms floored at 1e-8);
 *   x1 = clip((x1 + eta d1)(1 - alpha) + (x0 + eta d2) alpha, 0, 1);
 *   if the model misclassifies x1: keep it when its norm beats the best so far, then step
 *     back towards x0: x1 = x0 + beta (x1 - x0).
 * Every example runs every iteration (the norm keeps shrinking after the first success).
 * Restarts: the first run starts at x0, the others at x0 + eps/2 * t / ||t|| (t uniform in
 * [-1,1]^d for L-inf, Gaussian for L2 and L1), clipped. fab-t runs over the top-k classes
 * other than the top one on x0 (k = topk, default 9), like APGD-T. An example counts as
 * broken when the best point found is misclassified and within eps (of the configured
 * norm); it is then returned, else x. Only clean-correct examples are attacked (the others
 * are returned as x and reported as successes, like DeepFool's). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

#define FAB_ALPHA_MAX 0.1f
#define FAB_ETA 1.05f
#define FAB_BETA 0.9f

double atk_norm_of(const float *v, int64_t d, advex_norm norm) {
    if (norm == ADVEX_NORM_L2) return atk_norm2(v, d);
    if (norm == ADVEX_NORM_L1) return atk_norm1(v, d);
    double m = 0;
    for (int64_t q = 0; q < d; q++) m = fabs(v[q]) > m ? fabs(v[q]) : m;
    return m;
}

/* The dual norm of the gradient (the denominator of a distance to a linear boundary). */
static double dual_norm(const float *g, int64_t d, advex_norm norm) {
    if (norm == ADVEX_NORM_LINF) return atk_norm1(g, d);
    if (norm == ADVEX_NORM_L2) return atk_norm2(g, d);
    return atk_norm_of(g, d, ADVEX_NORM_LINF);
}

/* The working rows of one run (a examples, gathered). */
typedef struct fab_buf {
    float *x0, *x1, *adv, *g, *gb, *d1, *d2, *z, *wt, *res, *fbest, *dist;
    int32_t *ys, *ts;     /* labels; targets (fab-t) */
    int64_t *rows;        /* each row's index in the caller's batch */
    atk_fab_key *keys;    /* projection scratch (d) */
} fab_buf;

/* The nearest linearised boundary of each row at x1: its gradient into gb, f into fbest. */
static advex_status fab_linearise(advex_model *m, fab_buf *B, int64_t a, int targeted, advex_norm norm) {
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const int passes = targeted ? 1 : (int)(k - 1);
    for (int64_t j = 0; j < a; j++) B->dist[j] = FLT_MAX;
    for (int p = 0; p < passes; p++) {
        memset(B->wt, 0, (size_t)(a * k) * sizeof(float));
        for (int64_t j = 0; j < a; j++) {
            int32_t q = targeted ? B->ts[j] : (p < B->ys[j] ? p : p + 1);
            B->wt[j * k + q] += 1.0f;
            B->wt[j * k + B->ys[j]] -= 1.0f;
        }
        advex_status st = advex_model_vjp(m, B->x1, a, B->wt, B->g, B->z);
        if (st) return st;
        for (int64_t j = 0; j < a; j++) {
            int32_t q = targeted ? B->ts[j] : (p < B->ys[j] ? p : p + 1);
            float f = B->z[j * k + q] - B->z[j * k + B->ys[j]];
            double dist = fabs(f) / (1e-12 + dual_norm(B->g + j * d, d, norm));
            if (dist < B->dist[j] || p == 0) {
                B->dist[j] = (float)dist;
                B->fbest[j] = f;
                memcpy(B->gb + j * d, B->g + j * d, (size_t)d * sizeof(float));
            }
        }
    }
    return ADVEX_OK;
}

/* One step of row j: project x1 and x0 onto the row's hyperplane, move x1 (see above). */
static void fab_move(fab_buf *B, int64_t j, int64_t d, advex_norm norm) {
    const float *w = B->gb + j * d, *x0 = B->x0 + j * d;
    float *x1 = B->x1 + j * d, *d1 = B->d1 + j * d, *d2 = B->d2 + j * d;
    double wx = 0;
    for (int64_t q = 0; q < d; q++) wx += (double)w[q] * x1[q];
    double b = wx - B->fbest[j]; /* the hyperplane f(x1) + w.(x - x1) = 0 */
    atk_fab_project(norm, x1, w, b, d, d1, B->keys);
    atk_fab_project(norm, x0, w, b, d, d2, B->keys);
    double a1 = atk_norm_of(d1, d, norm), a2 = atk_norm_of(d2, d, norm);
    if (a1 < 1e-8) a1 = 1e-8;
    if (a2 < 1e-8) a2 = 1e-8;
    double al = a1 / (a1 + a2);
    float alpha = (float)(al < FAB_ALPHA_MAX ? al : FAB_ALPHA_MAX);
    for (int64_t q = 0; q < d; q++) {
        float v = (x1[q] + FAB_ETA * d1[q]) * (1.0f - alpha) + (x0[q] + d2[q] * FAB_ETA) * alpha;
        x1[q] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    }
}

/* One run (fab_base.py's attack_single_run) on a rows whose x1 holds the start: the best
 * adversarial point of each row into adv, its norm into res (FLT_MAX: none found). */
static advex_status fab_run(advex_model *m, const advex_attack_config *c, fab_buf *B, int64_t a, int targeted) {
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const int iters = c->steps > 0 ? c->steps : 100;
    for (int64_t j = 0; j < a; j++) B->res[j] = FLT_MAX;
    for (int it = 0; it < iters; it++) {
        advex_status st = fab_linearise(m, B, a, targeted, c->norm);
        if (st) return st;
        for (int64_t j = 0; j < a; j++) fab_move(B, j, d, c->norm);
        if ((st = advex_model_forward(m, B->x1, a, B->z))) return st;
        for (int64_t j = 0; j < a; j++) {
            if (advex_argmax(B->z + j * k, k) == B->ys[j]) continue;
            float *x1 = B->x1 + j * d;
            const float *x0 = B->x0 + j * d;
            for (int64_t q = 0; q < d; q++) B->d1[j * d + q] = x1[q] - x0[q];
            double t = atk_norm_of(B->d1 + j * d, d, c->norm);
            if (t < B->res[j]) {
                memcpy(B->adv + j * d, x1, (size_t)d * sizeof(float));
                B->res[j] = (float)t;
            }
            for (int64_t q = 0; q < d; q++) x1[q] = x0[q] + (x1[q] - x0[q]) * FAB_BETA;
        }
    }
    return ADVEX_OK;
}

/* The start of row j for run `run` (0: x0 itself). */
static void fab_start(const advex_attack_config *c, fab_buf *B, int64_t j, int64_t d, int run, int tc, int64_t id) {
    float *x1 = B->x1 + j * d;
    const float *x0 = B->x0 + j * d;
    memcpy(x1, x0, (size_t)d * sizeof(float));
    if (run == 0) return;
    /* without a budget, the published defaults for the start radius: 0.3, 1, 5 */
    float eps = c->eps < 1e30f ? c->eps : (c->norm == ADVEX_NORM_LINF ? 0.3f : c->norm == ADVEX_NORM_L2 ? 1.0f : 5.0f);
    advex_rng r;
    atk_rng(&r, c->seed, 0xFAB0 + (uint64_t)(tc * 1000 + run), id);
    float *t = B->d1 + j * d;
    for (int64_t q = 0; q < d; q++)
        t[q] = c->norm == ADVEX_NORM_LINF ? 2.0f * advex_rng_uniform(&r) - 1.0f : advex_rng_normal(&r);
    double nt = atk_norm_of(t, d, c->norm);
    float f = nt > 0 ? (float)(0.5 * eps / nt) : 0.0f;
    for (int64_t q = 0; q < d; q++) {
        float v = x0[q] + f * t[q];
        x1[q] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    }
}

advex_status atk_fab(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                     int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const int targeted = c->kind == ADVEX_ATTACK_FAB_T;
    const int runs = c->restarts > 1 ? c->restarts : 1;
    int topk = targeted ? (c->topk > 0 ? c->topk : 9) : 1;
    if (topk > k - 1) topk = (int)(k - 1);
    const size_t fb = sizeof(float);
    char *blk = atk_alloc((size_t)n * (sizeof(int64_t) + (size_t)(7 * d + 3 * k + 3) * fb + 2 * sizeof(int32_t) + 1) +
                          (size_t)d * sizeof(atk_fab_key));
    if (!blk) return ADVEX_ERR_NOMEM;
    fab_buf B;
    B.rows = (int64_t *)blk;
    B.keys = (atk_fab_key *)(B.rows + n);
    float *p = (float *)(B.keys + d), *zc;
    B.x0 = p; p += n * d;
    B.x1 = p; p += n * d;
    B.adv = p; p += n * d;
    B.g = p; p += n * d;
    B.gb = p; p += n * d;
    B.d1 = p; p += n * d;
    B.d2 = p; p += n * d;
    B.z = p; p += n * k;
    B.wt = p; p += n * k;
    zc = p; p += n * k;
    B.res = p; p += n;
    B.fbest = p; p += n;
    B.dist = p; p += n;
    B.ys = (int32_t *)p;
    B.ts = B.ys + n;
    unsigned char *done = (unsigned char *)(B.ts + n);
    advex_status st = advex_model_forward(m, x, n, zc);
    memmove(xadv, x, (size_t)(n * d) * fb);
    for (int64_t i = 0; i < n && !st; i++) done[i] = advex_argmax(zc + i * k, k) != y[i]; /* not attacked */
    for (int tc = 0; tc < topk && !st; tc++) {
        for (int run = 0; run < runs && !st; run++) {
            int64_t a = 0;
            for (int64_t i = 0; i < n; i++) {
                if (done[i]) continue;
                B.rows[a] = i;
                B.ys[a] = y[i];
                B.ts[a] = targeted ? atk_ranked_class(zc + i * k, k, tc + 1) : y[i];
                memcpy(B.x0 + a * d, x + i * d, (size_t)d * fb);
                fab_start(c, &B, a, d, run, tc, ATK_ID(i));
                a++;
            }
            if (a == 0) break;
            if ((st = fab_run(m, c, &B, a, targeted))) break;
            for (int64_t j = 0; j < a; j++) {
                if (!(B.res[j] < FLT_MAX && B.res[j] <= c->eps)) continue; /* none found, or beyond the budget */
                int64_t i = B.rows[j];
                memcpy(xadv + i * d, B.adv + j * d, (size_t)d * fb);
                done[i] = 2;
            }
        }
    }
    if (!st && info && info->stage)
        for (int64_t i = 0; i < n; i++) info->stage[i] = done[i] != 0; /* (misclassified as given: x itself) */
    free(blk);
    return st;
}
