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
 * do not move. L-inf and L2 find their lambda by a quickselect over the breakpoints of the
 * piecewise-linear function (expected linear time; the published code sorts, then bisects);
 * L1 sorts the coordinates. */
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

/* The smallest lambda >= 0 with F(lambda) = sum_j min(lambda * slope_j, full_j) >= c, F
 * increasing and piecewise linear with breakpoints key_j = full_j / slope_j (m > 0 keys,
 * F(inf) > c). A quickselect over the breakpoints (three-way partitions around a pivot),
 * expected O(m): the keys on one side are then saturated (their full counts) or linear
 * (their slope counts) over the whole remaining interval. Reorders k. */
static double solve_breakpoints(atk_fab_key *k, int64_t m, double c) {
    double fixed = 0, slope = 0, lam_lo = 0;
    int64_t lo = 0, hi = m;
    while (hi > lo) {
        double p = k[lo + (hi - lo) / 2].key;
        /* [lo, lt) < p, [lt, gt) == p, [gt, hi) > p */
        int64_t lt = lo, i = lo, gt = hi;
        double full_le = 0, slope_ge = 0;
        while (i < gt) {
            atk_fab_key e = k[i];
            if (e.key < p) { full_le += e.full; k[i++] = k[lt]; k[lt++] = e; }
            else if (e.key > p) { slope_ge += e.slope; k[i] = k[--gt]; k[gt] = e; }
            else { full_le += e.full; slope_ge += e.slope; i++; }
        }
        /* F(p): keys <= p saturated, keys > p linear (the keys == p are both: full = p slope) */
        double eq_slope = 0;
        for (int64_t j = lt; j < gt; j++) eq_slope += k[j].slope;
        double Fp = fixed + full_le + p * (slope + slope_ge - eq_slope);
        if (Fp >= c) { /* lambda <= p: the keys >= p stay linear below p */
            slope += slope_ge;
            hi = lt;
        } else {       /* lambda > p: the keys <= p are saturated */
            fixed += full_le;
            lam_lo = p;
            lo = gt;
        }
    }
    double lam = slope > 0 ? (c - fixed) / slope : lam_lo;
    return lam > lam_lo ? lam : lam_lo;
}

/* L-inf (pw = 0): d_i = dir_i min(lambda, cap_i); L2 (pw = 1): d_i = dir_i min(mu |w_i|, cap_i),
 * the smallest lambda (mu) that reaches c. */
static void proj_pl(const float *t, const float *w, double c, double s, int64_t n, float *d, atk_fab_key *k, int pw) {
    const double wmin = pw ? 1e-8 : 0;
    double full = 0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        if (aw <= wmin) continue;
        double sl = pw ? aw * aw : aw; /* d(w.d)/d lambda while unsaturated */
        k[m].full = aw * cap;
        k[m].slope = sl;
        k[m].key = pw ? cap / aw : cap;
        full += aw * cap;
        m++;
    }
    if (m == 0 || full <= c) { corner(t, w, n, s, (float)wmin, d); return; }
    double lam = c > 0 ? solve_breakpoints(k, m, c) : 0;
    for (int64_t i = 0; i < n; i++) {
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        double v = pw ? lam * aw : lam;
        d[i] = aw <= wmin ? 0.0f : (float)(dir * (v < cap ? v : cap));
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
    if (norm == ADVEX_NORM_L2) proj_pl(t, w, c, s, n, d, scratch, 1);
    else if (norm == ADVEX_NORM_LINF) proj_pl(t, w, c, s, n, d, scratch, 0);
    else proj_l1(t, w, c, s, n, d, scratch);
}
