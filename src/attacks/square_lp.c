/* Square attack's L2 and L1 geometry (Andriushchenko et al. 2020, as auto-attack's square.py):
 * the start (a 5x5 grid of windows, each a signed "eta" pattern per channel) and each
 * iteration's proposal (one s x s window gets a new signed eta pattern plus its old content,
 * a second window is zeroed, and the window's mass is rebalanced against the room left in the
 * budget).
 *   L2  eta: nested squares weighted 1/(k+1)^2, unit L2; the start and every proposal scaled
 *       to L2 norm eps, then clipped to [0,1]
 *   L1  eta: nested squares weighted 1/(k+1)^4, unit L1; the start unscaled, a window's new
 *       mass (room / C + its old mass) * C (square.py's arithmetic); the start and every
 *       proposal projected onto the L1 ball of radius eps (1 - 1e-6) ∩ [0,1] (l1_proj.c)
 * Written from the paper and the published code's arithmetic; randomness per example from its
 * own stream. */
#include <string.h>

#include "attacks/attack_internal.h"

static inline float clip01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

/* the pattern's norm: L2 or L1 */
static double pnorm(const double *v, int64_t stride, int64_t rows, int64_t cols, int l1) {
    double s = 0;
    for (int64_t a = 0; a < rows; a++)
        for (int64_t b = 0; b < cols; b++) s += l1 ? fabs(v[a * stride + b]) : v[a * stride + b] * v[a * stride + b];
    return l1 ? s : sqrt(s);
}

/* out (rows x cols, row stride `stride`) = the nested-rectangles pattern: centred squares of
 * side 1, 3, 5, ... each adding 1/(k+1)^2 (L1: 1/(k+1)^4), normalised to unit norm
 * (eta_rectangles). */
static void eta_rect(double *out, int64_t stride, int64_t rows, int64_t cols, int l1) {
    for (int64_t a = 0; a < rows; a++)
        for (int64_t b = 0; b < cols; b++) out[a * stride + b] = 0.0;
    if (rows <= 0 || cols <= 0) return;
    int64_t rc = rows / 2 + 1, cc = cols / 2 + 1, r0 = rc - 1, c0 = cc - 1;
    int64_t rounds = rc > cc ? rc : cc;
    for (int64_t k = 0; k < rounds; k++, r0--, c0--) {
        int64_t ra = r0 > 0 ? r0 : 0, rb = r0 + 2 * k + 1 < rows ? r0 + 2 * k + 1 : rows;
        int64_t ca = c0 > 0 ? c0 : 0, cb = c0 + 2 * k + 1 < cols ? c0 + 2 * k + 1 : cols;
        double k2 = (double)(k + 1) * (double)(k + 1), v = 1.0 / (l1 ? k2 * k2 : k2);
        for (int64_t a = ra; a < rb; a++)
            for (int64_t b = ca; b < cb; b++) out[a * stride + b] += v;
    }
    double f = 1.0 / pnorm(out, stride, rows, cols, l1);
    for (int64_t a = 0; a < rows; a++)
        for (int64_t b = 0; b < cols; b++) out[a * stride + b] *= f;
}

/* e (s x s) = eta(s): the top s/2 rows a positive pattern, the rest a negative one, unit norm,
 * transposed with probability 1/2. */
static void eta(double *e, int64_t s, int l1, advex_rng *r) {
    int64_t top = s / 2;
    eta_rect(e, s, top, s, l1);
    eta_rect(e + top * s, s, s - top, s, l1);
    for (int64_t q = top * s; q < s * s; q++) e[q] = -e[q];
    double f = 1.0 / pnorm(e, s, s, s, l1);
    for (int64_t q = 0; q < s * s; q++) e[q] *= f;
    if (advex_rng_uniform(r) > 0.5f)
        for (int64_t a = 0; a < s; a++)
            for (int64_t b = a + 1; b < s; b++) {
                double t = e[a * s + b];
                e[a * s + b] = e[b * s + a];
                e[b * s + a] = t;
            }
}

static inline float rand_sign(advex_rng *r) { return (advex_rng_u64(r) >> 63) ? 1.0f : -1.0f; }

/* xn = the point of perturbation delta: L2 clip(x + eps delta / ||delta||_2, 0, 1); L1 the
 * projection of x + delta onto the ball of radius eps (1 - 1e-6) ∩ [0,1] */
static void apply_delta(const atk_square_lp *g, float *xn, const float *x) {
    const int64_t d = g->C * g->H * g->W;
    if (g->norm == ADVEX_NORM_L1) {
        atk_l1_project_delta(xn, x, g->delta, d, (double)g->eps * (1.0 - 1e-6), g->proj);
        return;
    }
    double ss = 0;
    for (int64_t q = 0; q < d; q++) ss += (double)g->delta[q] * g->delta[q];
    float f = (float)(g->eps / (sqrt(ss) + 1e-12));
    for (int64_t q = 0; q < d; q++) xn[q] = clip01(x[q] + g->delta[q] * f);
}

void atk_square_lp_init(const atk_square_lp *g, float *xb, const float *x, advex_rng *r) {
    const int64_t C = g->C, H = g->H, W = g->W, d = C * H * W;
    const int64_t s = H / 5 > 0 ? H / 5 : 1, sp = (H - 5 * s) / 2 > 0 ? (H - 5 * s) / 2 : 0;
    const int l1 = g->norm == ADVEX_NORM_L1;
    float *delta = g->delta;
    memset(delta, 0, (size_t)d * sizeof(float));
    for (int64_t bh = 0, vh = sp; bh < H / s; bh++, vh += s)
        for (int64_t bw = 0, vw = sp; bw < W / s; bw++, vw += s) {
            eta(g->eta_buf, s, l1, r);
            for (int64_t ch = 0; ch < C; ch++) {
                float sg = rand_sign(r);
                for (int64_t a = 0; a < s && vh + a < H; a++)
                    for (int64_t b = 0; b < s && vw + b < W; b++)
                        delta[(ch * H + vh + a) * W + vw + b] += (float)g->eta_buf[a * s + b] * sg;
            }
        }
    apply_delta(g, xb, x);
}

/* Window 1's new content per channel into nw (C x s x s): a signed eta plus the old content
 * normalised, rescaled to the mass the norm leaves it. img: ||delta|| (L2: its square). */
static void new_windows(const atk_square_lp *g, double *nw, int64_t s, int64_t vh, int64_t vw, int64_t vh2,
                        int64_t vw2, double img, advex_rng *r) {
    const int64_t C = g->C, H = g->H, W = g->W;
    const int l1 = g->norm == ADVEX_NORM_L1;
    const double *e = g->eta_buf;
    for (int64_t ch = 0; ch < C; ch++) {
        const float *dc = g->delta + ch * H * W;
        double w1 = 0, wu = 0; /* window 1's mass, and that of both windows together */
        for (int64_t a = 0; a < H; a++)
            for (int64_t b = 0; b < W; b++) {
                int in1 = a >= vh && a < vh + s && b >= vw && b < vw + s;
                int in2 = a >= vh2 && a < vh2 + s && b >= vw2 && b < vw2 + s;
                double v = l1 ? fabs((double)dc[a * W + b]) : (double)dc[a * W + b] * dc[a * W + b];
                if (in1) w1 += v;
                if (in1 || in2) wu += v;
            }
        double n1 = (l1 ? w1 : sqrt(w1)) + 1e-12, sg = rand_sign(r);
        double *o = nw + ch * s * s;
        for (int64_t a = 0; a < s; a++)
            for (int64_t b = 0; b < s; b++) o[a * s + b] = e[a * s + b] * sg + dc[(vh + a) * W + vw + b] / n1;
        double nn = pnorm(o, s, s, s, l1) + 1e-12, eps = g->eps, f;
        if (l1) {
            double room = eps - img;
            f = ((room > 0 ? room : 0) / (double)C + wu) * (double)C / nn;
        } else {
            double room = eps * eps - img;
            f = sqrt((room > 0 ? room : 0) / (double)C + wu) / nn;
        }
        for (int64_t q = 0; q < s * s; q++) o[q] *= f;
    }
}

void atk_square_lp_propose(const atk_square_lp *g, float *xn, const float *x, const float *xb, int64_t s,
                           advex_rng *r) {
    const int64_t C = g->C, H = g->H, W = g->W, d = C * H * W;
    const int l1 = g->norm == ADVEX_NORM_L1;
    int64_t vh = H - s > 0 ? (int64_t)advex_rng_below(r, (uint64_t)(H - s)) : 0;
    int64_t vw = W - s > 0 ? (int64_t)advex_rng_below(r, (uint64_t)(W - s)) : 0;
    int64_t vh2 = H - s > 0 ? (int64_t)advex_rng_below(r, (uint64_t)(H - s)) : 0;
    int64_t vw2 = W - s > 0 ? (int64_t)advex_rng_below(r, (uint64_t)(W - s)) : 0;
    double img = 0;
    for (int64_t q = 0; q < d; q++) {
        g->delta[q] = xb[q] - x[q];
        img += l1 ? fabs((double)g->delta[q]) : (double)g->delta[q] * g->delta[q];
    }
    eta(g->eta_buf, s, l1, r);
    /* the rebalanced windows follow the eta pattern in eta_buf (C*s*s more doubles) */
    double *nw = g->eta_buf + s * s;
    new_windows(g, nw, s, vh, vw, vh2, vw2, img, r);
    for (int64_t ch = 0; ch < C; ch++) {
        float *dc = g->delta + ch * H * W;
        for (int64_t a = 0; a < s; a++)
            for (int64_t b = 0; b < s; b++) dc[(vh2 + a) * W + vw2 + b] = 0.0f;
        for (int64_t a = 0; a < s; a++)
            for (int64_t b = 0; b < s; b++) dc[(vh + a) * W + vw + b] = (float)nw[ch * s * s + a * s + b];
    }
    apply_delta(g, xn, x);
}
