/* The Euclidean projection onto {p : ||p - x||_1 <= r} ∩ [0,1]^d, the set APGD's and Square's
 * L1 forms move in (Croce & Hein 2021, "Mind the box", section 3.2; auto-attack's
 * L1_projection computes the same point by a sort and a bisection in float).
 * A perturbation v of x moves coordinate i by a_i = |v_i| towards sign(v_i), and the box
 * leaves it room_i (1 - x_i upwards, x_i downwards). The projection soft-thresholds:
 *   |p_i - x_i| = min(max(a_i - lambda, 0), b_i),  b_i = min(a_i, room_i),
 * with lambda = 0 when the box-clipped point is inside the ball, else the lambda >= 0 at which
 * the sum f(lambda) of those terms is r. f is decreasing and piecewise linear: term i is flat
 * (b_i) up to e_i = a_i - b_i, then falls with slope -1 until it reaches 0 at a_i. Sorting
 * the 2m breakpoints of the m moving coordinates and walking down f finds lambda exactly (in
 * double).
 * The point is formed as the published code forms it, the correction c_i = (p_i - x_i) - v_i
 * (rounded to float) added in float to the point it corrects: x + v (atk_l1_project_delta)
 * or z (atk_l1_project, v = z - x). So a coordinate the threshold removes comes back to
 * within an ulp of x exactly as there, which matters to L1-APGD: it counts the nonzero
 * coordinates of its perturbations (its sparsity) to steer its steps. Those float steps err
 * by at most B = u sum_{v_i != 0} (3 + 2 |v_i|) (u = 2^-24) in L1 (x + v, t - v and their sum
 * each rounded once), and the L1 norm adds up every coordinate's error: so the radius solved
 * for is r - B, and the formed point is within r (where the published code's can exceed its
 * radius by about B). */
#include <stdlib.h>

#include "attacks/attack_internal.h"

static int cmp_double(const void *a, const void *b) {
    double p = *(const double *)a, q = *(const double *)b;
    return (p > q) - (p < q);
}

/* lambda >= 0 with sum_i min(max(a_i - lambda, 0), b_i) = r, given f(0) = f0 > r: the
 * breakpoints e (m, where a term starts falling) and a (m, where it stops), both sorted. */
static double solve_lambda(const double *e, const double *a, int64_t m, double f0, double r) {
    double f = f0, at = 0;
    int64_t falling = 0, ie = 0, ia = 0;
    while (ie < m || ia < m) {
        /* the next breakpoint; at a tie a term that starts falling goes first (it adds a slope
         * that the same value's end removes: f is continuous either way) */
        int start = ia >= m || (ie < m && e[ie] <= a[ia]);
        double v = start ? e[ie] : a[ia];
        double fv = f - (double)falling * (v - at);
        if (fv <= r && falling > 0) return at + (f - r) / (double)falling;
        f = fv;
        at = v;
        falling += start ? 1 : -1;
        if (start) ie++; else ia++;
    }
    return at; /* f reached 0 <= r at the last breakpoint (not reached with r > 0) */
}

static inline double room_of(float x, float v) { return v > 0 ? 1.0 - x : (double)x; }

/* out_i = base_i + c_i (base: z, or x + v when z is NULL), v the perturbation: v_i, or z_i - x_i */
static void project(float *out, const float *x, const float *z, const float *v, int64_t d, double r,
                    double *scratch) {
    double *e = scratch, *a = scratch + d;
    int64_t m = 0;
    double f0 = 0, err = 0;
    for (int64_t i = 0; i < d; i++) {
        float vi = z ? z[i] - x[i] : v[i];
        double ai = fabs((double)vi), room = room_of(x[i], vi), bi = ai < room ? ai : room;
        if (vi != 0) err += 3.0 + 2.0 * ai;
        if (!(bi > 0)) continue; /* does not move (or cannot: x on the box face it heads for) */
        f0 += bi;
        e[m] = ai - bi;
        a[m] = ai;
        m++;
    }
    r -= err * 0x1p-24;
    if (!(r > 0)) { /* no room left for the rounding: x itself */
        for (int64_t i = 0; i < d; i++) out[i] = x[i];
        return;
    }
    double lambda = 0;
    if (f0 > r) {
        qsort(e, (size_t)m, sizeof *e, cmp_double);
        qsort(a, (size_t)m, sizeof *a, cmp_double);
        lambda = solve_lambda(e, a, m, f0, r);
    }
    for (int64_t i = 0; i < d; i++) {
        float vi = z ? z[i] - x[i] : v[i], base = z ? z[i] : x[i] + vi;
        double ai = fabs((double)vi), room = room_of(x[i], vi), bi = ai < room ? ai : room, t = ai - lambda;
        t = t < 0 ? 0 : (t > bi ? bi : t);
        float p = base + (float)((vi > 0 ? t : -t) - (double)vi);
        out[i] = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
    }
}

void atk_l1_project(float *out, const float *x, const float *z, int64_t d, double r, double *scratch) {
    project(out, x, z, NULL, d, r, scratch);
}

void atk_l1_project_delta(float *out, const float *x, const float *v, int64_t d, double r, double *scratch) {
    project(out, x, NULL, v, d, r, scratch);
}
