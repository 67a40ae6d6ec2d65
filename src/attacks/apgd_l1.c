/* APGD's L1 form (Croce & Hein 2021, "Mind the box: l1-APGD for sparse adversarial attacks
 * on image classifiers"), following auto-attack's autopgd_base.py (norm 'L1'):
 *   step     sparse: the coordinates whose |gradient| is at least its (1 - topk) d-th smallest
 *            value (about topk d of them) move by step / (how many move) each, along the sign
 *            of the gradient; then the projection onto the L1 ball ∩ [0,1]^d (l1_proj.c).
 *            No momentum.
 *   schedule step = eps (alpha 1); every max(floor(0.04 N), 1) iterations the sparsity
 *            sp = ||x_best - x||_0 of the best point sets topk = sp / d / 1.5; if sp fell
 *            below 0.95 of its value at the last checkpoint the step goes back to eps and the
 *            iterate to the best point, else the step shrinks by 1.5, never below eps / 10.
 *   start    a run from a given point (every leg of the eps schedule) begins with topk and
 *            the last sparsity from that point's own sparsity; a fresh run with topk 0.2.
 *   largereps (c->apgd_largereps, AutoAttack's standard L1): each run is three legs, at
 *            3 eps, 2 eps and eps for ceil(0.3 N), ceil(0.3 N) and the rest of the N
 *            iterations, each from the previous leg's best point projected onto the next
 *            ball. Only the last leg, at eps, can succeed or be returned.
 * Points are formed as the published code forms them (l1_proj.c), so the sparsity it counts
 * is the one counted there. Examples that succeed in the last leg are frozen as in the
 * L-inf/L2 form (apgd.c); in transfer mode the highest-loss iterate of the last legs is
 * returned. */
#include <float.h>
#include <string.h>

#include "attacks/apgd_internal.h"

/* The k-th smallest (0-based) of v (n), reordering v: quickselect, Hoare partitions around a
 * median of three. The value is the k-th entry of v sorted ascending, as a sort would give. */
static float kth_smallest(float *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (hi > lo) {
        float a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi];
        float p = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < p) i++;
            while (v[j] > p) j--;
            if (i <= j) {
                float t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    return v[k];
}

/* xn = P(xa + step * sign(g restricted to its largest entries) / count): the sparse step. */
static void sparse_step(float *xn, const float *xa, const float *xs, const float *g, int64_t d, float step,
                        float topk, float eps, apgd_state *S) {
    for (int64_t q = 0; q < d; q++) S->sel[q] = fabsf(g[q]);
    float at = (1.0f - topk) * (float)d; /* autopgd_base.py: clamp((1 - topk) d, 0, d - 1), truncated */
    int64_t kq = at > 0 ? (int64_t)(at < (float)(d - 1) ? at : (float)(d - 1)) : 0;
    float thr = kth_smallest(S->sel, d, kq);
    int64_t moved = 0;
    for (int64_t q = 0; q < d; q++) moved += g[q] != 0 && fabsf(g[q]) >= thr;
    float u = moved ? step / (float)moved : 0.0f;
    for (int64_t q = 0; q < d; q++) { /* the perturbation x_k + s - x, projected as x + it + c */
        float s = fabsf(g[q]) >= thr ? (g[q] > 0 ? u : (g[q] < 0 ? -u : 0.0f)) : 0.0f;
        xn[q] = (xa[q] + s) - xs[q];
    }
    atk_l1_project_delta(xn, xs, xn, d, (double)eps, S->proj);
}

static int64_t l0(const float *a, const float *b, int64_t d) {
    int64_t s = 0;
    for (int64_t q = 0; q < d; q++) s += a[q] != b[q];
    return s;
}

/* The checkpoint: the sparsity of the best point sets the next topk and whether the step
 * resets (sparsity fell by 5% or more) or shrinks. */
static void sparsity_check(apgd_state *S, int64_t a, float eps) {
    const int64_t d = S->d;
    const float lo = (float)((double)eps / 10.0);
    for (int64_t j = 0; j < a; j++) {
        float sp = (float)l0(S->xbest + j * d, S->xs + j * d, d);
        /* sp / 0 (a start at x itself) is inf or NaN there: never a reduction */
        int reset = S->spold[j] > 0 && sp / S->spold[j] < 0.95f;
        S->topk[j] = sp / (float)d / 1.5f;
        S->step[j] = reset ? eps : S->step[j] / 1.5f;
        S->step[j] = S->step[j] < lo ? lo : (S->step[j] > eps ? eps : S->step[j]);
        S->spold[j] = sp;
        if (reset) {
            memcpy(S->xa + j * d, S->xbest + j * d, (size_t)d * sizeof(float));
            memcpy(S->g + j * d, S->gbest + j * d, (size_t)d * sizeof(float));
        }
    }
}

/* One leg: iters iterations at radius eps from the points in S->xa (*a rows). warm: the run
 * starts from a given point (topk from its sparsity); final: successes count (and leave). */
static advex_status leg(advex_model *m, apgd_state *S, int64_t *pa, int iters, float eps, int warm, int final,
                        const atk_loss *L, int transfer) {
    const int64_t d = S->d;
    const size_t fb = sizeof(float);
    int64_t a = *pa;
    atk_loss *Lm = (atk_loss *)L;
    advex_status st;
    if ((st = advex_model_grad_loop(m, S->xa, a, atk_loss_rows, Lm, S->g, S->z, S->loss, S->dl))) return st;
    if (final) apgd_record(S, L, a, transfer);
    for (int64_t j = 0; j < a; j++) {
        memcpy(S->xbest + j * d, S->xa + j * d, (size_t)d * fb);
        memcpy(S->gbest + j * d, S->g + j * d, (size_t)d * fb);
        S->lbest[j] = S->loss[j];
        S->step[j] = eps;
        float sp = warm ? (float)l0(S->xa + j * d, S->xs + j * d, d) : (float)d;
        S->topk[j] = warm ? sp / (float)d / 1.5f : 0.2f;
        S->spold[j] = sp;
    }
    if (final) a = apgd_compact(S, a);
    const int every = (int)(0.04 * iters) > 1 ? (int)(0.04 * iters) : 1;
    for (int it = 0, counter = 0; it < iters && a > 0; it++) {
        for (int64_t j = 0; j < a; j++) {
            sparse_step(S->xn + j * d, S->xa + j * d, S->xs + j * d, S->g + j * d, d, S->step[j], S->topk[j], eps, S);
            memcpy(S->xa + j * d, S->xn + j * d, (size_t)d * fb);
        }
        if ((st = advex_model_grad_loop(m, S->xa, a, atk_loss_rows, Lm, S->g, S->z, S->loss, S->dl))) return st;
        if (final) apgd_record(S, L, a, transfer);
        for (int64_t j = 0; j < a; j++) {
            if (S->loss[j] > S->lbest[j]) {
                memcpy(S->xbest + j * d, S->xa + j * d, (size_t)d * fb);
                memcpy(S->gbest + j * d, S->g + j * d, (size_t)d * fb);
                S->lbest[j] = S->loss[j];
            }
        }
        if (++counter == every) {
            sparsity_check(S, a, eps);
            counter = 0;
        }
        if (final) a = apgd_compact(S, a);
    }
    *pa = a;
    return ADVEX_OK;
}

advex_status apgd_l1_run(advex_model *m, const advex_attack_config *c, apgd_state *S, int64_t a, const atk_loss *L) {
    const int iters = (int)S->iters, transfer = c->no_early_stop != 0;
    if (!c->apgd_largereps) return leg(m, S, &a, iters, c->eps, 0, 1, L, transfer);
    /* the eps schedule: 3 eps, 2 eps, eps over ceil(0.3 N), ceil(0.3 N) and the rest */
    const int n1 = (int)ceil(0.3 * iters), n3 = iters - 2 * n1;
    const float eps[3] = {(float)(3.0 * c->eps), (float)(2.0 * c->eps), c->eps};
    const int its[3] = {n1, n1, n3 > 0 ? n3 : 0};
    advex_status st = ADVEX_OK;
    for (int l = 0; l < 3 && !st; l++) {
        if (l > 0) /* from the last leg's best point, projected onto this leg's ball */
            for (int64_t j = 0; j < a; j++)
                atk_l1_project(S->xa + j * S->d, S->xs + j * S->d, S->xbest + j * S->d, S->d, (double)eps[l], S->proj);
        st = leg(m, S, &a, its[l], eps[l], 1, l == 2, L, transfer);
    }
    return st;
}
