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
 * L1 sorts only the coordinates its greedy move can reach (a quickselect finds them). Compiled once per ISA variant (ops/dispatch.h): FAB projects
 * every example twice per iteration, and the scalar build spent a quarter of fab-t's time
 * here. */
#include <stdlib.h>

#include "attacks/attack_internal.h"
#include "ops/dispatch.h"

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
 * F(inf) > c), the keys in three arrays. A quickselect over the breakpoints, expected O(m):
 * each round a pivot p (median of three), F(p) from one branch-free pass of sums (the keys
 * below p saturated, those above linear, those at p both: full = p slope), then the side
 * that still brackets lambda is kept (a branch-free compaction); the other side's keys are
 * saturated (their full counts) or linear (their slope counts) over everything that is left.
 * The sums are in double: their order changes lambda by a few units in the last place of a
 * double, far below the float the displacement is stored in. Reorders the keys. */
static double solve_breakpoints(double *restrict key, double *restrict full, double *restrict slope, int64_t m,
                                double c) {
    double fixed = 0, sl = 0, lam_lo = 0;
    while (m > 0) {
        double a = key[0], b = key[m / 2], e = key[m - 1];
        double p = a < b ? (b < e ? b : (a < e ? e : a)) : (a < e ? a : (b < e ? e : b));
        double full_lt = 0, full_eq = 0, slope_gt = 0, slope_eq = 0;
#pragma omp simd reduction(+ : full_lt, full_eq, slope_gt, slope_eq)
        for (int64_t j = 0; j < m; j++) {
            double kj = key[j];
            full_lt += kj < p ? full[j] : 0.0;
            full_eq += kj == p ? full[j] : 0.0;
            slope_gt += kj > p ? slope[j] : 0.0;
            slope_eq += kj == p ? slope[j] : 0.0;
        }
        int below = fixed + full_lt + full_eq + p * (sl + slope_gt) >= c; /* F(p) >= c: lambda <= p */
        if (below) {
            sl += slope_gt + slope_eq; /* the keys >= p stay linear below p */
        } else {
            fixed += full_lt + full_eq; /* lambda > p: the keys <= p are saturated */
            lam_lo = p;
        }
        int64_t w = 0;
        for (int64_t j = 0; j < m; j++) {
            double kj = key[j];
            key[w] = kj;
            full[w] = full[j];
            slope[w] = slope[j];
            w += below ? kj < p : kj > p;
        }
        m = w;
    }
    double lam = sl > 0 ? (c - fixed) / sl : lam_lo;
    return lam > lam_lo ? lam : lam_lo;
}

/* L-inf (pw = 0): d_i = dir_i min(lambda, cap_i); L2 (pw = 1): d_i = dir_i min(mu |w_i|, cap_i),
 * the smallest lambda (mu) that reaches c. Coordinates with cap_i = 0 (already at their far
 * side) add nothing to w.d at any lambda and are left out of the search. The n keys' room in
 * k holds three arrays of n doubles. Inlined with pw constant: the passes over the
 * coordinates vectorise. */
static inline __attribute__((always_inline)) void proj_pl(const float *restrict t, const float *restrict w, double c,
                                                          double s, int64_t n, float *restrict d, atk_fab_key *k,
                                                          const int pw) {
    const double wmin = pw ? 1e-8 : 0;
    double *restrict key = (double *)k, *restrict fl = key + n, *restrict sl = fl + n;
    double full = 0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        double wi = s * w[i], aw = fabs(wi), cap = wi > 0 ? t[i] : 1.0 - t[i];
        double f = aw * cap;
        int use = aw > wmin;
        key[m] = pw ? cap / aw : cap;
        fl[m] = f;
        sl[m] = pw ? aw * aw : aw; /* d(w.d)/d lambda while unsaturated */
        full += use ? f : 0.0;
        m += use & (cap > 0);
    }
    if (m == 0 || full <= c) { corner(t, w, n, s, (float)wmin, d); return; }
    double lam = c > 0 ? solve_breakpoints(key, fl, sl, m, c) : 0;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        double wi = s * w[i], aw = fabs(wi), cap = wi > 0 ? t[i] : 1.0 - t[i], dir = wi > 0 ? -1.0 : 1.0;
        double v = pw ? lam * aw : lam;
        d[i] = aw <= wmin ? 0.0f : (float)(dir * (v < cap ? v : cap));
    }
}

/* The greedy L1 move over keys k[0..m) in key_cmp order (largest |w_i| first, then the lower
 * index): whole coordinates while they do not reach rem, the last one partly. Returns what is
 * left of c when the keys ran out first (> 0), else <= 0. */
static double l1_fill(const float *t, const float *w, double s, const atk_fab_key *k, int64_t m, double rem, float *d) {
    for (int64_t j = 0; j < m && rem > 0; j++) {
        int64_t i = k[j].i;
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        double mv = aw * cap >= rem ? rem / aw : cap;
        d[i] = (float)(dir * mv);
        rem -= aw * mv;
    }
    return rem;
}

/* Reorder k[0..m) so that a prefix k[0..p) holds every key <= some tau (whole tie groups)
 * whose fulls sum to at least `want`, as short as a three-way quickselect finds it (expected
 * O(m)); returns p (m when all of them are needed). */
static int64_t l1_prefix(atk_fab_key *k, int64_t m, double want) {
    int64_t lo = 0, hi = m; /* k[0..lo) is in the prefix; the boundary is inside [lo, hi) */
    double acc = 0;
    while (lo < hi) {
        double a = k[lo].key, b = k[lo + (hi - lo) / 2].key, e = k[hi - 1].key;
        double p = a < b ? (b < e ? b : (a < e ? e : a)) : (a < e ? a : (b < e ? e : b));
        /* three-way partition of [lo, hi): < p, == p, > p (Dijkstra) */
        int64_t lt = lo, i = lo, gt = hi;
        double sum_lt = 0, sum_eq = 0;
        while (i < gt) {
            atk_fab_key v = k[i];
            if (v.key < p) { sum_lt += v.full; k[i] = k[lt]; k[lt++] = v; i++; }
            else if (v.key > p) { k[i] = k[--gt]; k[gt] = v; }
            else { sum_eq += v.full; i++; }
        }
        if (acc + sum_lt >= want) { hi = lt; continue; }               /* inside the keys < p */
        if (acc + sum_lt + sum_eq >= want) return gt;                   /* the tie group at p ends it */
        acc += sum_lt + sum_eq;                                         /* all of them, and more */
        lo = gt;
    }
    return lo;
}

/* L1: the greedy move in decreasing |w_i|. Only the coordinates it can reach are sorted: a
 * prefix in sort order whose fulls sum to 2c (l1_prefix); should the fill run past it (the
 * remainder of c left positive by rounding), every key is sorted and the fill redone, so the
 * result is always that of sorting them all. */
static void proj_l1(const float *t, const float *w, double c, double s, int64_t n, float *d, atk_fab_key *k) {
    double full = 0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        double aw, dir, cap = cap_of(t, w, i, s, &aw, &dir);
        d[i] = 0.0f;
        if (aw < 1e-8) continue;
        full += aw * cap;
        k[m].key = -aw; /* largest |w_i| first: the most change of w.d per unit of L1 */
        k[m].full = aw * cap;
        k[m].i = i;
        m++;
    }
    if (m == 0 || full <= c) { corner(t, w, n, s, 1e-8f, d); return; }
    int64_t p = l1_prefix(k, m, 2 * c);
    qsort(k, (size_t)p, sizeof *k, key_cmp);
    if (l1_fill(t, w, s, k, p, c, d) > 0 && p < m) {
        for (int64_t j = 0; j < p; j++) d[k[j].i] = 0.0f;
        qsort(k, (size_t)m, sizeof *k, key_cmp);
        l1_fill(t, w, s, k, m, c, d);
    }
}

void ADVEX_ISA_FN(atk_fab_project)(advex_norm norm, const float *t, const float *w, double b, int64_t n, float *d,
                                   atk_fab_key *scratch) {
    double wt = 0;
    for (int64_t i = 0; i < n; i++) wt += (double)w[i] * t[i];
    double s = wt - b >= 0 ? 1.0 : -1.0, c = s * (wt - b);
    if (norm == ADVEX_NORM_L2) proj_pl(t, w, c, s, n, d, scratch, 1);
    else if (norm == ADVEX_NORM_LINF) proj_pl(t, w, c, s, n, d, scratch, 0);
    else proj_l1(t, w, c, s, n, d, scratch);
}
