/* Square attack (Andriushchenko et al. 2020), L-inf, L2 and L1, following auto-attack's square.py:
 * score-based (forward passes only), random search over localised square updates. A proposal
 * is kept when the loss drops: untargeted the margin z_y - max_{j!=y} z_j, targeted the
 * cross-entropy to the target t (square.py's margin_and_loss; the paper's choice too), or
 * when it succeeds (untargeted: argmax != y; targeted: argmax == t, margin
 * max_{j!=t} z_j - z_t <= 0). s = round(sqrt(p * d / C)), p from p_init by the
 * published piecewise schedule over the budget rescaled to 10000 iterations.
 *   L-inf  start: vertical stripes x + eps * (+-1 per channel and column); each iteration one
 *          s x s window set to +-2 eps per channel around the best point, projected onto the
 *          ball and [0,1]
 *   L2     start and proposals in square_lp.c (s odd, >= 3): one window redrawn, a second
 *          zeroed, the whole perturbation kept at L2 norm eps before clipping
 *   L1     the same windows with L1 patterns and masses (square_lp.c), each point projected
 *          onto the L1 ball ∩ [0,1]
 * Queries are counted per example (the start counts one) and never exceed the budget.
 * Unlike square.py, each example draws its own windows from its own stream, so results do
 * not depend on the batch. Transfer mode (c->no_early_stop): every example spends the whole
 * budget and the lowest-margin point is returned. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

/* fraction of pixels changed at iteration it of a budget of q queries (unscaled: the schedule's
 * own iteration numbers, AutoAttack's standard Square) */
static float p_selection(float p_init, int64_t it, int64_t q, int unscaled) {
    int64_t i = unscaled ? it : (int64_t)((double)it / (double)q * 10000.0);
    if (i <= 10) return p_init;
    if (i <= 50) return p_init / 2;
    if (i <= 200) return p_init / 4;
    if (i <= 500) return p_init / 8;
    if (i <= 1000) return p_init / 16;
    if (i <= 2000) return p_init / 32;
    if (i <= 4000) return p_init / 64;
    if (i <= 6000) return p_init / 128;
    if (i <= 8000) return p_init / 256;
    return p_init / 512;
}

static float margin(const float *z, int64_t k, int32_t y, int32_t t, int targeted) {
    int32_t ref = targeted ? t : y;
    float mo = -FLT_MAX;
    for (int64_t j = 0; j < k; j++) if (j != ref && z[j] > mo) mo = z[j];
    return targeted ? mo - z[t] : z[y] - mo;
}

/* the loss a proposal must lower: untargeted the margin mg, targeted CE(z, t) (-log p_t for
 * probabilities) */
static float sq_loss(const float *z, int64_t k, int32_t t, int targeted, int probs, float mg) {
    if (!targeted) return mg;
    if (probs) return (float)-log((double)z[t]);
    float mx = -FLT_MAX;
    for (int64_t j = 0; j < k; j++) mx = z[j] > mx ? z[j] : mx;
    double s = 0;
    for (int64_t j = 0; j < k; j++) s += exp((double)(z[j] - mx));
    return (float)(log(s) + (double)(mx - z[t]));
}

static inline float clip01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

/* xb = clip(x + eps * (+-1 per channel and column)): vertical stripes */
static void linf_start(float *xb, const float *x, int64_t C, int64_t H, int64_t W, float eps, advex_rng *r) {
    for (int64_t ch = 0; ch < C; ch++)
        for (int64_t col = 0; col < W; col++) {
            float sgn = (advex_rng_u64(r) >> 63) ? eps : -eps;
            for (int64_t row = 0; row < H; row++) {
                int64_t q = (ch * H + row) * W + col;
                xb[q] = clip01(x[q] + sgn);
            }
        }
}

/* xn = xb with one s x s window moved by +-2 eps per channel, projected onto the ball, clipped */
static void linf_propose(float *xn, const float *x, const float *xb, int64_t C, int64_t H, int64_t W, int64_t s,
                         float eps, advex_rng *r, int64_t win[2]) {
    int64_t vh = H - s > 0 ? (int64_t)advex_rng_below(r, (uint64_t)(H - s)) : 0;
    int64_t vw = W - s > 0 ? (int64_t)advex_rng_below(r, (uint64_t)(W - s)) : 0;
    win[0] = vh;
    win[1] = vw;
    memcpy(xn, xb, (size_t)(C * H * W) * sizeof(float));
    for (int64_t ch = 0; ch < C; ch++) {
        float dv = (advex_rng_u64(r) >> 63) ? 2.0f * eps : -2.0f * eps;
        for (int64_t row = vh; row < vh + s; row++)
            for (int64_t col = vw; col < vw + s; col++) {
                int64_t q = (ch * H + row) * W + col;
                float v = xn[q] + dv, lo = x[q] - eps, hi = x[q] + eps;
                v = v < lo ? lo : (v > hi ? hi : v);
                xn[q] = clip01(v);
            }
    }
}

/* window side s = round(sqrt(p * d / C)); L2 and L1: odd, >= 3, at most the image (square.py);
 * L-inf: >= 1, at most H - 1 and W - 1 */
static int64_t window_side(float p, int64_t C, int64_t H, int64_t W, int lp) {
    int64_t s = (int64_t)lround(sqrt((double)p * (double)(C * H * W) / (double)C));
    if (lp) {
        s = s < 3 ? 3 : s;
        s += s % 2 == 0;
        s = s > H ? H : s;
        return s > W ? W : s;
    }
    if (s < 1) s = 1;
    if (s > H - 1 && H > 1) s = H - 1;
    if (s > W - 1 && W > 1) s = W - 1;
    return s;
}

advex_status atk_square(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                        int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    return atk_on_model_scores(atk_square_run, m, c, x, y, n, off, ids, xadv, info);
}

/* per-example state of a run, compacted as examples finish */
typedef struct sq_run {
    int64_t *idx, *qs;
    advex_rng *rng;
    float *xs, *xb, *mbest, *lbest;
    int32_t *ys, *ts;
} sq_run;

/* row j (example i) answered z for proposal xn: keep it if it is the start, the loss dropped
 * or it succeeds (*kept: whether it became the best point); returns 1 while the example goes
 * on */
static int sq_judge(const atk_scores *o, const advex_attack_config *c, const atk_loss *L, sq_run *r, int64_t j,
                    const float *z, const float *xn, int start, float *xadv, advex_attack_info *info, int *kept) {
    const int64_t d = o->chw[0] * o->chw[1] * o->chw[2], k = o->k, i = r->idx[j];
    const int targeted = L->t != NULL;
    float mg = margin(z, k, r->ys[j], r->ts[j], targeted);
    float ls = sq_loss(z, k, r->ts[j], targeted, o->probs, mg);
    int ok = atk_success(L, z, k, j), better = start || ls < r->lbest[j], keep = !ok;
    if (c->no_early_stop) { /* transfer: the whole budget; the lowest loss so far is kept */
        if (better && info && info->stage) info->stage[i] = ok;
        ok = 0;
        keep = 1;
    } else if (ok && info && info->stage) {
        info->stage[i] = 1;
    }
    if (better) r->lbest[j] = ls;
    *kept = better || ok;
    if (better || ok) {
        r->mbest[j] = mg;
        memcpy(r->xb + j * d, xn, (size_t)d * sizeof(float));
        memcpy(xadv + i * d, xn, (size_t)d * sizeof(float));
        if (o->final) o->final[i] = advex_argmax(z, k);
    }
    return keep;
}

/* z (k) of example i finite, else the error a full pass gives */
static advex_status sq_finite(const float *z, int64_t k, int64_t i) {
    for (int64_t q = 0; q < k; q++)
        if (!isfinite(z[q]))
            return advex_set_error(ADVEX_ERR_NUMERIC, "logits of example %lld are not finite (%s): the model overflows "
                                   "on this input", (long long)i, isnan(z[q]) ? "NaN" : "Inf");
    return ADVEX_OK;
}

/* L-inf on the local model's incremental passes (src/graph/incr.c; slot i: example i's best
 * point): each example spends its budget on its own, examples spread over the threads. The
 * proposals, the decisions and the queries are the batched loop's (an example's never
 * depend on another's); only the logits round differently (the dense layers' delta form).
 * The starts (xn) are drawn. */
static advex_status sq_linf_incr(advex_incr *inc, const atk_scores *o, const advex_attack_config *c, const atk_loss *L,
                                 sq_run *r, float *xn, float *z, int64_t n, int64_t Q, float p_init, float *xadv,
                                 advex_attack_info *info) {
    const int64_t C = o->chw[0], H = o->chw[1], W = o->chw[2], d = C * H * W, k = o->k;
    int64_t *queries = info && info->queries ? info->queries : NULL;
    advex_status st = ADVEX_OK;
    int T = advex_threads();
    char msg[256] = "";
#pragma omp parallel for schedule(dynamic, 1) num_threads(T) if (T > 1 && n > 1)
    for (int64_t j = 0; j < n; j++) {
        int th = omp_get_thread_num(), kept;
        float *xj = xn + j * d, *zj = z + j * k;
        advex_status sj = ADVEX_OK;
        advex_incr_set(inc, j, xj, zj, th);
        if (queries) queries[j] = 1;
        sj = sq_finite(zj, k, j);
        int go = !sj && sq_judge(o, c, L, r, j, zj, xj, 1, xadv, info, &kept); /* the start is always kept */
        for (int64_t it = 0; it < Q - 1 && go; it++) {
            int64_t s = window_side(p_selection(p_init, it, Q, c->square_unscaled), C, H, W, 0), win[2];
            linf_propose(xj, r->xs + j * d, r->xb + j * d, C, H, W, s, c->eps, &r->rng[j], win);
            advex_incr_try(inc, j, xj, win[0], win[0] + s, win[1], win[1] + s, zj, th);
            r->qs[j]++;
            if (queries) queries[j] = r->qs[j];
            if ((sj = sq_finite(zj, k, j))) break;
            go = sq_judge(o, c, L, r, j, zj, xj, 0, xadv, info, &kept);
            if (kept) advex_incr_keep(inc, th);
            else advex_incr_undo(inc, th);
        }
        if (sj) {
#pragma omp critical
            if (!st || j < 0) {
                st = sj;
                snprintf(msg, sizeof msg, "%s", advex_last_error());
            }
        }
    }
    return st ? advex_set_error(st, "%s", msg) : ADVEX_OK;
}

advex_status atk_square_run(const atk_scores *o, const advex_attack_config *c, const float *x, const int32_t *y,
                            const int32_t *targets, int64_t n, int64_t off, const int64_t *ids, float *xadv,
                            advex_attack_info *info) {
    const int64_t C = o->chw[0], H = o->chw[1], W = o->chw[2], d = C * H * W, k = o->k;
    const int64_t Q = c->queries > 0 ? c->queries : 5000;
    const float p_init = c->p_init > 0 ? (c->p_init < 1 ? c->p_init : 1.0f) : 0.8f;
    const float eps = c->eps;
    const size_t fb = sizeof(float);
    const int lp = c->norm != ADVEX_NORM_LINF, l1 = c->norm == ADVEX_NORM_L1;
    /* L2 and L1 scratch: eta patterns (H*W + C*H*W doubles), L1's projection (2d doubles) and
     * the perturbation being edited (d) */
    const size_t nd = lp ? (size_t)(H * W + d + (l1 ? 2 * d : 0)) : 0;
    const size_t lpb = lp ? (nd * sizeof(double) + (size_t)d * fb + 7) / 8 * 8 : 0;
    char *blk = atk_alloc(lpb + (size_t)n * (sizeof(int64_t) * 2 + sizeof(advex_rng) + (size_t)(3 * d + k + 2) * fb +
                                             2 * sizeof(int32_t) + 1));
    if (!blk) return ADVEX_ERR_NOMEM;
    atk_square_lp geo = {c->norm, C, H, W, eps, (double *)blk, (double *)blk + H * W + d,
                         (float *)(blk + nd * sizeof(double))};
    sq_run r;
    r.idx = (int64_t *)(blk + lpb);
    r.qs = r.idx + n;
    r.rng = (advex_rng *)(r.qs + n);
    r.xs = (float *)(r.rng + n);
    r.xb = r.xs + n * d;
    float *xn = r.xb + n * d, *z = xn + n * d;
    r.mbest = z + n * k;
    r.lbest = r.mbest + n;
    r.ys = (int32_t *)(r.lbest + n);
    r.ts = r.ys + n;
    unsigned char *keep = (unsigned char *)(r.ts + n);
    int64_t *queries = info && info->queries ? info->queries : NULL;

    advex_status st = ADVEX_OK;
    advex_incr *inc = NULL;
    advex_model *local = atk_scores_model(o);
    if (!lp && local && !local->random && (st = advex_incr_new(local->net, n, advex_threads(), &inc))) goto done;
    if (targets) memcpy(r.ts, targets, (size_t)n * sizeof(int32_t));
    else memset(r.ts, 0, (size_t)n * sizeof(int32_t));
    atk_loss L = {ATK_LOSS_CW, r.ys, targets ? r.ts : NULL, 0};
    /* start: vertical stripes (L-inf) or the grid of eta windows (L2, L1) */
    for (int64_t i = 0; i < n; i++) {
        r.idx[i] = i;
        r.ys[i] = y[i];
        r.qs[i] = 1;
        r.lbest[i] = FLT_MAX;
        atk_rng(&r.rng[i], c->seed, 0x5A, ATK_ID(i));
        memcpy(r.xs + i * d, x + i * d, (size_t)d * fb);
        if (lp) atk_square_lp_init(&geo, xn + i * d, x + i * d, &r.rng[i]);
        else linf_start(xn + i * d, x + i * d, C, H, W, eps, &r.rng[i]);
    }
    int kept;
    int64_t win[2];
    if (inc) {
        st = sq_linf_incr(inc, o, c, &L, &r, xn, z, n, Q, p_init, xadv, info);
        goto done;
    }
    if ((st = o->fwd(o->u, xn, n, r.idx, z))) goto done;
    for (int64_t i = 0; i < n; i++) { /* the start is always kept */
        if (queries) queries[i] = 1;
        keep[i] = (uint8_t)sq_judge(o, c, &L, &r, i, z + i * k, xn + i * d, 1, xadv, info, &kept);
    }
    void *arrs[] = {r.idx, r.qs, r.rng, r.xs, r.xb, r.mbest, r.lbest, r.ys, r.ts};
    size_t rb[] = {sizeof(int64_t), sizeof(int64_t), sizeof(advex_rng), (size_t)d * fb, (size_t)d * fb, fb, fb,
                   sizeof(int32_t), sizeof(int32_t)};
    int64_t a = atk_compact(keep, n, arrs, rb, 9);
    for (int64_t it = 0; it < Q - 1 && a > 0; it++) {
        int64_t s = window_side(p_selection(p_init, it, Q, c->square_unscaled), C, H, W, lp);
        for (int64_t j = 0; j < a; j++) {
            if (lp) atk_square_lp_propose(&geo, xn + j * d, r.xs + j * d, r.xb + j * d, s, &r.rng[j]);
            else linf_propose(xn + j * d, r.xs + j * d, r.xb + j * d, C, H, W, s, eps, &r.rng[j], win);
        }
        if ((st = o->fwd(o->u, xn, a, r.idx, z))) goto done;
        for (int64_t j = 0; j < a; j++) {
            r.qs[j]++;
            if (queries) queries[r.idx[j]] = r.qs[j];
            keep[j] = (uint8_t)sq_judge(o, c, &L, &r, j, z + j * k, xn + j * d, 0, xadv, info, &kept);
        }
        a = atk_compact(keep, a, arrs, rb, 9);
    }
done:
    advex_incr_free(inc);
    free(blk);
    return st;
}
