/* Square attack's L2 geometry (Andriushchenko et al. 2020, as auto-attack's square.py):
 * the start (a 5x5 grid of windows, each a signed "eta" pattern per channel, scaled to an
 * L2 norm of eps) and each iteration's proposal (one s x s window gets a new signed eta
 * pattern plus its old content, a second window is zeroed, and the mass is rebalanced so the
 * whole perturbation has L2 norm eps before clipping to [0,1]). Written from the paper and the
 * published code's arithmetic; randomness per example from its own stream. */
#include <string.h>

#include "attacks/attack_internal.h"

static inline float clip01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

/* out (rows x cols, row stride `stride`) = the nested-rectangles pattern: centred squares of
 * side 1, 3, 5, ... each adding 1/(k+1)^2, normalised to unit L2 (eta_rectangles). */
static void eta_rect(double *out, int64_t stride, int64_t rows, int64_t cols) {
    for (int64_t a = 0; a < rows; a++)
        for (int64_t b = 0; b < cols; b++) out[a * stride + b] = 0.0;
    if (rows <= 0 || cols <= 0) return;
    int64_t rc = rows / 2 + 1, cc = cols / 2 + 1, r0 = rc - 1, c0 = cc - 1;
    int64_t rounds = rc > cc ? rc : cc;
    for (int64_t k = 0; k < rounds; k++, r0--, c0--) {
        int64_t ra = r0 > 0 ? r0 : 0, rb = r0 + 2 * k + 1 < rows ? r0 + 2 * k + 1 : rows;
        int64_t ca = c0 > 0 ? c0 : 0, cb = c0 + 2 * k + 1 < cols ? c0 + 2 * k + 1 : cols;
        double v = 1.0 / ((double)(k + 1) * (double)(k + 1));
        for (int64_t a = ra; a < rb; a++)
            for (int64_t b = ca; b < cb; b++) out[a * stride + b] += v;
    }
    double ss = 0;
    for (int64_t a = 0; a < rows; a++)
        for (int64_t b = 0; b < cols; b++) ss += out[a * stride + b] * out[a * stride + b];
    double f = 1.0 / sqrt(ss);
    for (int64_t a = 0; a < rows; a++)
        for (int64_t b = 0; b < cols; b++) out[a * stride + b] *= f;
}

/* e (s x s) = eta(s): the top s/2 rows a positive pattern, the rest a negative one, unit L2,
 * transposed with probability 1/2. */
static void eta(double *e, int64_t s, advex_rng *r) {
    int64_t top = s / 2;
    eta_rect(e, s, top, s);
    eta_rect(e + top * s, s, s - top, s);
    double ss = 0;
    for (int64_t q = top * s; q < s * s; q++) e[q] = -e[q];
    for (int64_t q = 0; q < s * s; q++) ss += e[q] * e[q];
    double f = 1.0 / sqrt(ss);
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

/* xn = clip(x + eps * delta / ||delta||_2, 0, 1) */
static void apply_delta(float *xn, const float *x, const float *delta, int64_t d, float eps) {
    double ss = 0;
    for (int64_t q = 0; q < d; q++) ss += (double)delta[q] * delta[q];
    float f = (float)(eps / (sqrt(ss) + 1e-12));
    for (int64_t q = 0; q < d; q++) xn[q] = clip01(x[q] + delta[q] * f);
}

void atk_square_l2_init(float *xb, const float *x, int64_t C, int64_t H, int64_t W, float eps, advex_rng *r,
                        double *eta_buf, float *delta) {
    const int64_t d = C * H * W, s = H / 5 > 0 ? H / 5 : 1, sp = (H - 5 * s) / 2 > 0 ? (H - 5 * s) / 2 : 0;
    memset(delta, 0, (size_t)d * sizeof(float));
    for (int64_t bh = 0, vh = sp; bh < H / s; bh++, vh += s)
        for (int64_t bw = 0, vw = sp; bw < W / s; bw++, vw += s) {
            eta(eta_buf, s, r);
            for (int64_t ch = 0; ch < C; ch++) {
                float sg = rand_sign(r);
                for (int64_t a = 0; a < s && vh + a < H; a++)
                    for (int64_t b = 0; b < s && vw + b < W; b++)
                        delta[(ch * H + vh + a) * W + vw + b] += (float)eta_buf[a * s + b] * sg;
            }
        }
    apply_delta(xb, x, delta, d, eps);
}

void atk_square_l2_propose(float *xn, const float *x, const float *xb, int64_t C, int64_t H, int64_t W, int64_t s,
                           float eps, advex_rng *r, double *eta_buf, float *delta) {
    const int64_t d = C * H * W;
    int64_t vh = H - s > 0 ? (int64_t)advex_rng_below(r, (uint64_t)(H - s)) : 0;
    int64_t vw = W - s > 0 ? (int64_t)advex_rng_below(r, (uint64_t)(W - s)) : 0;
    int64_t vh2 = H - s > 0 ? (int64_t)advex_rng_below(r, (uint64_t)(H - s)) : 0;
    int64_t vw2 = W - s > 0 ? (int64_t)advex_rng_below(r, (uint64_t)(W - s)) : 0;
    double img2 = 0;
    for (int64_t q = 0; q < d; q++) {
        delta[q] = xb[q] - x[q];
        img2 += (double)delta[q] * delta[q];
    }
    eta(eta_buf, s, r);
    /* the rebalanced window per channel; eta_buf[s*s..] holds it (C*s*s more doubles) */
    double *nw = eta_buf + s * s;
    for (int64_t ch = 0; ch < C; ch++) {
        const float *dc = delta + ch * H * W;
        double w1 = 0, wu = 0;
        for (int64_t a = 0; a < H; a++)
            for (int64_t b = 0; b < W; b++) {
                int in1 = a >= vh && a < vh + s && b >= vw && b < vw + s;
                int in2 = a >= vh2 && a < vh2 + s && b >= vw2 && b < vw2 + s;
                double v = (double)dc[a * W + b] * dc[a * W + b];
                if (in1) w1 += v;
                if (in1 || in2) wu += v;
            }
        double n1 = sqrt(w1) + 1e-12, sg = rand_sign(r), nn = 0;
        double *o = nw + ch * s * s;
        for (int64_t a = 0; a < s; a++)
            for (int64_t b = 0; b < s; b++) {
                o[a * s + b] = eta_buf[a * s + b] * sg + dc[(vh + a) * W + vw + b] / n1;
                nn += o[a * s + b] * o[a * s + b];
            }
        double room = (double)eps * eps - img2;
        double f = sqrt((room > 0 ? room : 0) / (double)C + wu) / (sqrt(nn) + 1e-12);
        for (int64_t q = 0; q < s * s; q++) o[q] *= f;
    }
    for (int64_t ch = 0; ch < C; ch++) {
        float *dc = delta + ch * H * W;
        for (int64_t a = 0; a < s; a++)
            for (int64_t b = 0; b < s; b++) dc[(vh2 + a) * W + vw2 + b] = 0.0f;
        for (int64_t a = 0; a < s; a++)
            for (int64_t b = 0; b < s; b++) dc[(vh + a) * W + vw + b] = (float)nw[ch * s * s + a * s + b];
    }
    apply_delta(xn, x, delta, d, eps);
}
