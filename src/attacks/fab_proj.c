/* FAB's projection step (Croce & Hein 2020, section 3.1): the smallest displacement d, in
 * the L-inf, L2 or L1 norm, that moves a point t onto the hyperplane {z : w.z = b} while
 * staying in the box [0,1]^n. Each is solved exactly from the problem's structure:
 *   flip (w, b) so that c = w.t - b >= 0; every coordinate may move towards its far side
 *   (down when w_i > 0, up when w_i < 0) by at most cap_i (t_i or 1 - t_i), lowering w.d by
 *   |w_i| per unit, and w.d must reach -c.
 *   L-inf  d_i = -sign(w_i) min(lambda, cap_i): the smallest lambda that reaches -c
 *   L2     d_i = -sign(w_i) min(mu |w_i|, cap_i) (KKT): the smallest mu that reaches -c
 *   L1     move whole coordinates in decreasing |w_i| order, the last one partly
 * When the hyperplane misses the box, d is the far corner (every coordinate at its cap), as
 * the published projections return. Coordinates with w_i = 0 (L2: |w_i| < 1e-8, as there)
 * do not move. The search is a sort and one scan (the published code bisects the same
 * piecewise-linear function). */
#include <stdlib.h>

#include "attacks/attack_internal.h"

static int key_cmp(const void *a, const void *b) {
    const atk_fab_key *p = a, *q = b;
    return p->key < q->key ? -1 : (p->key > q->key ? 1 : (p->i > q->i) - (p->i < q->i));
}

/* |w_i|, cap_i and the direction of coordinate i once (w, b) are flipped (s = +-1). */
static inline double cap_of(const float *t, const float *w, int64_t i, double s, double *aw, double *dir) {
    double wi = s * w[i];
    *aw = fabs(wi);
    *dir = wi > 0 ? -1.0 : 1.0;
    return wi > 0 ? t[i] : 1.0 - t[i];
}

static void corner(const float *t, const float *w, int64_t n, double s, float wmin, float *d) {
    for (int64_t i = 0; i < n; i++) {
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        d[i] = aw > wmin ? (float)(dir * cap) : 0.0f;
    }
}

static void proj_linf(const float *t, const float *w, double c, double s, int64_t n, float *d, atk_fab_key *k) {
    /* h(lambda) = sum_i |w_i| min(lambda, cap_i), increasing; find h(lambda) = c */
    double wsum = 0, full = 0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        if (aw == 0) continue;
        wsum += aw;
        full += aw * cap;
        k[m].key = cap;
        k[m].i = i;
        m++;
    }
    if (m == 0 || full <= c) { corner(t, w, n, s, 0.0f, d); return; }
    qsort(k, (size_t)m, sizeof *k, key_cmp);
    double below = 0, rest = wsum, lambda = 0;  /* below: sum of |w| cap over caps <= lambda */
    for (int64_t j = 0; j < m; j++) {
        double aw = fabs(w[k[j].i]);
        /* on [cap_(j-1), cap_(j)]: h = below + lambda * rest */
        if (below + k[j].key * rest >= c) { lambda = (c - below) / rest; break; }
        below += aw * k[j].key;
        rest -= aw;
    }
    if (lambda < 0) lambda = 0;
    for (int64_t i = 0; i < n; i++) {
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        d[i] = aw == 0 ? 0.0f : (float)(dir * (lambda < cap ? lambda : cap));
    }
}

static void proj_l2(const float *t, const float *w, double c, double s, int64_t n, float *d, atk_fab_key *k) {
    /* g(mu) = sum_i |w_i| min(mu |w_i|, cap_i), increasing; breakpoints cap_i / |w_i| */
    double w2 = 0, full = 0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        if (aw < 1e-8) continue;
        w2 += aw * aw;
        full += aw * cap;
        k[m].key = cap / aw;
        k[m].i = i;
        m++;
    }
    if (m == 0 || full <= c) { corner(t, w, n, s, 1e-8f, d); return; }
    qsort(k, (size_t)m, sizeof *k, key_cmp);
    double below = 0, rest = w2, mu = 0;
    for (int64_t j = 0; j < m; j++) {
        double aw = fabs(w[k[j].i]);
        if (below + k[j].key * rest >= c) { mu = (c - below) / rest; break; }
        below += aw * aw * k[j].key;
        rest -= aw * aw;
    }
    if (mu < 0) mu = 0;
    for (int64_t i = 0; i < n; i++) {
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        double v = mu * aw;
        d[i] = aw < 1e-8 ? 0.0f : (float)(dir * (v < cap ? v : cap));
    }
}

static void proj_l1(const float *t, const float *w, double c, double s, int64_t n, float *d, atk_fab_key *k) {
    double full = 0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        d[i] = 0.0f;
        if (aw < 1e-8) continue;
        full += aw * cap;
        k[m].key = -aw; /* largest |w_i| first: the most change of w.d per unit of L1 */
        k[m].i = i;
        m++;
    }
    if (m == 0 || full <= c) { corner(t, w, n, s, 1e-8f, d); return; }
    qsort(k, (size_t)m, sizeof *k, key_cmp);
    double rem = c;
    for (int64_t j = 0; j < m && rem > 0; j++) {
        int64_t i = k[j].i;
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        double mv = aw * cap >= rem ? rem / aw : cap;
        d[i] = (float)(dir * mv);
        rem -= aw * mv;
    }
}

void atk_fab_project(advex_norm norm, const float *t, const float *w, double b, int64_t n, float *d,
                     atk_fab_key *scratch) {
    double wt = 0;
    for (int64_t i = 0; i < n; i++) wt += (double)w[i] * t[i];
    double s = wt - b >= 0 ? 1.0 : -1.0, c = s * (wt - b);
    if (norm == ADVEX_NORM_L2) proj_l2(t, w, c, s, n, d, scratch);
    else if (norm == ADVEX_NORM_LINF) proj_linf(t, w, c, s, n, d, scratch);
    else proj_l1(t, w, c, s, n, d, scratch);
}
