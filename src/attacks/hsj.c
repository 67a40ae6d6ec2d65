/* HopSkipJump (Chen, Jordan & Wainwright 2020), decision-based: only the predicted label of
 * each query is used. L2 or L-inf, untargeted (a query is adversarial when its class is not
 * y) or targeted (when its class is the target t), following ART's HopSkipJump (defaults
 * max_iter 50, max_eval 10000, init_eval 100, init_size 100, gamma 1):
 *   start   untargeted: uniform noise images until one is adversarial; targeted: an image
 *           known to be classified as t when the caller has one (the paper starts from an
 *           image of the target class; advex_target_eval passes a data-set image the target
 *           classified as t in its clean query), else uniform noise until one is classified
 *           as t (ART without x_adv_init). Then a binary search on the blend
 *           (1-a) x + a start to the boundary (threshold 0.001)
 *   repeat  binary search between x and the current point to the boundary (L2: blend;
 *           L-inf: clip to the box of radius a; threshold theta = gamma / d^1.5 (L2),
 *           gamma / d^2 (L-inf)); gradient estimate at the boundary from
 *           min(init_eval * sqrt(t+1), max_eval) random unit directions (Gaussian for L2,
 *           uniform for L-inf) of size delta (0.1 at t = 0, then sqrt(d) theta dist (L2),
 *           d theta dist (L-inf)); geometric step-size search from 2 dist / sqrt(t+1),
 *           halving until the step stays adversarial
 * Against an eps budget an example stops as soon as its point is adversarial within eps
 * (success), or when its query budget (c->queries) or max_iter runs out (failure: x is
 * returned). The budget is never exceeded: a phase that would need more queries than are
 * left is cut to what is left. Per-example streams seed the noise and the directions.
 *
 * Batching: each example is a small state machine whose next query (one image for a search
 * step, m for a gradient estimate) is known before it is drawn. A round puts the pending
 * queries of as many running examples as fit in the oracle's batch (at least one example's)
 * into one call, and the examples left out go first in the next round. An example's queries,
 * its random draws and its arithmetic are the same whatever the other examples do, so with
 * an oracle whose answer for an image does not depend on its batch-mates the results and the
 * per-example query counts equal those of one example at a time (tests/test_target.c). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

#define HSJ_MAX_ITER 50
#define HSJ_MAX_EVAL 10000
#define HSJ_INIT_EVAL 100
#define HSJ_INIT_SIZE 100
#define HSJ_MAX_HALVINGS 30

typedef enum hsj_phase { PH_NOISE, PH_INIT_BS, PH_BS, PH_EST, PH_STEP, PH_DONE } hsj_phase;

/* one example's progress */
typedef struct hsj_ex {
    int64_t i;               /* its row in the attacked batch */
    hsj_phase ph;
    int64_t left, used, need; /* queries left and spent; images its next query takes */
    int32_t y, goal;         /* goal: the target, or -1 (untargeted) */
    int32_t lab, hi_lab;     /* the oracle's class of cur, of the binary search's hi point */
    int it, tries, halvings, ok;
    float lo, hi, delta, dprev, dcur, step;
    advex_rng r;
    float *cur, *upd;        /* (d) each */
} hsj_ex;

/* what every example of a run shares */
typedef struct hsj_run {
    const atk_labels *o;
    const advex_attack_config *c;
    const float *x;          /* (n, d) */
    float *xadv;
    advex_attack_info *info;
    int64_t d;
    int l2;
    float theta;
} hsj_run;

static int adversarial(const hsj_ex *e, int32_t p) { return e->goal >= 0 ? p == e->goal : p != e->y; }

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

/* the example is over: its point if adversarial within eps (success), else x */
static void ex_finish(const hsj_run *R, hsj_ex *e, int may_succeed) {
    const float *x = R->x + e->i * R->d;
    e->ok = may_succeed && dist(x, e->cur, R->d, R->l2) <= R->c->eps * (1 + 1e-6f);
    memcpy(R->xadv + e->i * R->d, e->ok ? e->cur : x, (size_t)R->d * sizeof(float));
    if (R->info && R->info->queries) R->info->queries[e->i] = e->used;
    if (R->info && R->info->stage) R->info->stage[e->i] = e->ok;
    if (R->o->final) R->o->final[e->i] = e->ok ? e->lab : e->y; /* x: clean-correct, its label */
    e->ph = PH_DONE;
}

/* the next query takes `need` images; over when they are not left */
static void ex_wait(const hsj_run *R, hsj_ex *e, hsj_phase ph, int64_t need, int may_succeed) {
    e->ph = ph;
    e->need = need;
    if (need > e->left) ex_finish(R, e, may_succeed);
}

static void ex_iter(const hsj_run *R, hsj_ex *e);

/* the start's binary search on the blend: the next step, or on to the iterations */
static void ex_init_bs(const hsj_run *R, hsj_ex *e) {
    if (e->hi - e->lo > 0.001f) { ex_wait(R, e, PH_INIT_BS, 1, 0); return; }
    const float *x = R->x + e->i * R->d;
    float *t = e->upd; /* scratch until the first estimate */
    interp(t, x, e->cur, R->d, e->hi, 1);
    memcpy(e->cur, t, (size_t)R->d * sizeof(float));
    e->lab = e->hi_lab;
    e->dprev = dist(x, e->cur, R->d, R->l2);
    e->it = 0;
    ex_iter(R, e);
}

/* an iteration's binary search: the next step, or its end and the gradient estimate */
static void ex_bs(const hsj_run *R, hsj_ex *e) {
    if (e->hi - e->lo > R->theta) { ex_wait(R, e, PH_BS, 1, 1); return; }
    const float *x = R->x + e->i * R->d;
    float *t = e->upd; /* the last update is no longer needed */
    interp(t, x, e->cur, R->d, e->hi, R->l2);
    memcpy(e->cur, t, (size_t)R->d * sizeof(float));
    e->lab = e->hi_lab;
    e->dcur = dist(x, e->cur, R->d, R->l2);
    if (e->dcur <= R->c->eps) { ex_finish(R, e, 1); return; }
    int64_t m = (int64_t)(HSJ_INIT_EVAL * sqrt((double)e->it + 1));
    m = m < HSJ_MAX_EVAL ? m : HSJ_MAX_EVAL;
    if (m > e->left - 1) m = e->left - 1; /* keep one for the step */
    if (m < 2) { ex_finish(R, e, 1); return; }
    ex_wait(R, e, PH_EST, m, 1);
}

/* an iteration starts: binary search from the current point */
static void ex_iter(const hsj_run *R, hsj_ex *e) {
    if (e->it >= HSJ_MAX_ITER) { ex_finish(R, e, 1); return; }
    e->delta = e->it == 0 ? 0.1f : (R->l2 ? (float)sqrt((double)R->d) : (float)R->d) * R->theta * e->dprev;
    e->lo = 0;
    e->hi = R->l2 ? 1.0f : dist(R->x + e->i * R->d, e->cur, R->d, 0);
    e->hi_lab = e->lab;
    ex_bs(R, e);
}

/* set example i up: from a known start (targeted) or from noise */
static void ex_start(const hsj_run *R, hsj_ex *e, int64_t i, int32_t y, int32_t goal, const float *start,
                     int64_t budget, int64_t id) {
    float *cur = e->cur, *upd = e->upd;
    memset(e, 0, sizeof *e);
    e->cur = cur;
    e->upd = upd;
    e->i = i;
    e->y = y;
    e->goal = goal;
    e->left = budget;
    atk_rng(&e->r, R->c->seed, 0x45A, id);
    if (!start) { ex_wait(R, e, PH_NOISE, 1, 0); return; }
    memcpy(e->cur, start, (size_t)R->d * sizeof(float));
    e->lab = e->hi_lab = goal;
    e->lo = 0;
    e->hi = 1;
    ex_init_bs(R, e);
}

/* the example's next query into q (e->need images) */
static void ex_produce(const hsj_run *R, hsj_ex *e, float *q) {
    const int64_t d = R->d;
    const float *x = R->x + e->i * d;
    if (e->ph == PH_NOISE) {
        for (int64_t j = 0; j < d; j++) q[j] = advex_rng_uniform(&e->r);
    } else if (e->ph == PH_INIT_BS || e->ph == PH_BS) {
        interp(q, x, e->cur, d, 0.5f * (e->hi + e->lo), e->ph == PH_INIT_BS || R->l2);
    } else if (e->ph == PH_EST) { /* need random unit directions of size delta around cur */
        for (int64_t i = 0; i < e->need; i++) {
            float *p = q + i * d;
            double s = 0;
            for (int64_t j = 0; j < d; j++) {
                p[j] = R->l2 ? advex_rng_normal(&e->r) : 2.0f * advex_rng_uniform(&e->r) - 1.0f;
                s += (double)p[j] * p[j];
            }
            float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0;
            for (int64_t j = 0; j < d; j++) {
                float v = e->cur[j] + e->delta * p[j] * inv;
                p[j] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
        }
    } else { /* PH_STEP */
        e->step *= 0.5f;
        for (int64_t j = 0; j < d; j++) {
            float v = e->cur[j] + e->step * e->upd[j];
            q[j] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    }
}

/* upd (d): the estimated gradient direction at cur from the m probes q and their classes */
static void estimate(const hsj_run *R, hsj_ex *e, const float *q, const int32_t *pred, int64_t m) {
    const int64_t d = R->d;
    double mean = 0;
    for (int64_t i = 0; i < m; i++) mean += adversarial(e, pred[i]) ? 1.0 : -1.0;
    mean /= (double)m;
    double nrm = 0;
    for (int64_t j = 0; j < d; j++) {
        double g = 0;
        for (int64_t i = 0; i < m; i++) {
            double f = adversarial(e, pred[i]) ? 1.0 : -1.0, u = (q[i * d + j] - e->cur[j]) / e->delta;
            g += (fabs(mean) == 1.0 ? mean : f - mean) * u;
        }
        e->upd[j] = (float)(g / (double)m);
        nrm += (double)e->upd[j] * e->upd[j];
    }
    for (int64_t j = 0; j < d; j++)
        e->upd[j] = R->l2 ? (nrm > 0 ? (float)(e->upd[j] / sqrt(nrm)) : 0) : (e->upd[j] > 0) - (e->upd[j] < 0);
}

/* the answers to the example's query (images q, classes pred) move it on */
static void ex_consume(const hsj_run *R, hsj_ex *e, const float *q, const int32_t *pred) {
    e->left -= e->need;
    e->used += e->need;
    int adv = adversarial(e, pred[0]);
    switch (e->ph) {
    case PH_NOISE:
        if (adv) {
            memcpy(e->cur, q, (size_t)R->d * sizeof(float));
            e->lab = e->hi_lab = pred[0];
            e->lo = 0;
            e->hi = 1;
            ex_init_bs(R, e);
        } else if (++e->tries >= HSJ_INIT_SIZE) {
            ex_finish(R, e, 0);
        } else {
            ex_wait(R, e, PH_NOISE, 1, 0);
        }
        break;
    case PH_INIT_BS:
    case PH_BS: {
        float mid = 0.5f * (e->hi + e->lo);
        if (adv) { e->hi = mid; e->hi_lab = pred[0]; } else e->lo = mid;
        if (e->ph == PH_INIT_BS) ex_init_bs(R, e); else ex_bs(R, e);
        break;
    }
    case PH_EST:
        estimate(R, e, q, pred, e->need);
        e->step = 2.0f * e->dcur / (float)sqrt((double)e->it + 1);
        e->halvings = 0;
        ex_wait(R, e, PH_STEP, 1, 1);
        break;
    case PH_STEP:
        if (adv) {
            memcpy(e->cur, q, (size_t)R->d * sizeof(float));
            e->lab = pred[0];
            e->dprev = e->dcur;
            e->it++;
            ex_iter(R, e);
        } else if (++e->halvings >= HSJ_MAX_HALVINGS) {
            ex_finish(R, e, 1);
        } else {
            ex_wait(R, e, PH_STEP, 1, 1);
        }
        break;
    case PH_DONE:
        break;
    }
}

/* a queue of running examples and the free slots */
typedef struct hsj_queue {
    hsj_ex **run, **tmp, **free;
    int64_t nrun, nfree;
} hsj_queue;

/* one round: the pending queries of the running examples that fit in cap images (at least
 * the first's) in one call; the ones left out go first next time, finished ones free their
 * slot */
static advex_status round_once(const hsj_run *R, hsj_queue *Qu, int64_t cap, float *q, int32_t *pred, int64_t *rows) {
    const int64_t d = R->d;
    int64_t total = 0, nin = 0, nout = 0;
    for (int64_t j = 0; j < Qu->nrun; j++) { /* taken: tmp[0..nin); left out: run[0..nout) */
        hsj_ex *e = Qu->run[j];
        if (total == 0 || total + e->need <= cap) {
            ex_produce(R, e, q + total * d);
            for (int64_t r = 0; r < e->need; r++) rows[total + r] = e->i;
            total += e->need;
            Qu->tmp[nin++] = e;
        } else {
            Qu->run[nout++] = e;
        }
    }
    advex_status st = R->o->labels(R->o->u, q, total, rows, pred);
    if (st) return st;
    total = 0;
    for (int64_t j = 0; j < nin; j++) {
        hsj_ex *e = Qu->tmp[j];
        int64_t m = e->need;
        ex_consume(R, e, q + total * d, pred + total);
        total += m;
        if (e->ph != PH_DONE) Qu->run[nout++] = e;
        else Qu->free[Qu->nfree++] = e;
    }
    Qu->nrun = nout;
    return ADVEX_OK;
}

advex_status atk_hsj_run(const atk_labels *o, const advex_attack_config *c, const float *x, const int32_t *y,
                         const int32_t *targets, const float *const *starts, int64_t n, int64_t off,
                         const int64_t *ids, float *xadv, advex_attack_info *info) {
    const int64_t d = o->chw[0] * o->chw[1] * o->chw[2];
    const int64_t Q = c->queries > 0 ? c->queries : 5000, cap = o->batch > 0 ? o->batch : 256;
    const int64_t maxm = Q < HSJ_MAX_EVAL ? Q : HSJ_MAX_EVAL; /* the largest single query */
    const int64_t rows_max = cap > maxm ? cap : maxm;
    int64_t slots = ((int64_t)1 << 24) / (2 * d); /* examples in flight: 64 MiB of points and updates */
    slots = slots < 1 ? 1 : slots > n ? n : slots;
    hsj_run R = {o, c, x, xadv, info, d, c->norm == ADVEX_NORM_L2, 0};
    R.theta = R.l2 ? (float)(1.0 / (sqrt((double)d) * (double)d)) : (float)(1.0 / ((double)d * (double)d));
    float *pts = malloc((size_t)(2 * slots * d) * sizeof(float)), *q = malloc((size_t)(rows_max * d) * sizeof(float));
    int32_t *pred = malloc((size_t)rows_max * sizeof(int32_t));
    int64_t *rows = malloc((size_t)rows_max * sizeof(int64_t));
    hsj_ex *ex = calloc((size_t)slots, sizeof *ex), **qs = malloc((size_t)slots * 3 * sizeof *qs);
    if (!pts || !q || !pred || !rows || !ex || !qs) {
        free(pts); free(q); free(pred); free(rows); free(ex); free(qs);
        return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    }
    hsj_queue Qu = {qs, qs + slots, qs + 2 * slots, 0, 0};
    for (int64_t s = slots - 1; s >= 0; s--) {
        ex[s].cur = pts + 2 * s * d;
        ex[s].upd = ex[s].cur + d;
        Qu.free[Qu.nfree++] = &ex[s];
    }
    advex_status st = ADVEX_OK;
    for (int64_t next = 0; !st && (Qu.nrun > 0 || next < n);) {
        while (Qu.nfree > 0 && next < n) { /* start examples in the free slots */
            hsj_ex *e = Qu.free[--Qu.nfree];
            ex_start(&R, e, next, y[next], targets ? targets[next] : -1, targets && starts ? starts[next] : NULL, Q,
                     ATK_ID(next));
            next++;
            if (e->ph != PH_DONE) Qu.run[Qu.nrun++] = e;
            else Qu.free[Qu.nfree++] = e;
        }
        if (Qu.nrun > 0) st = round_once(&R, &Qu, cap, q, pred, rows);
    }
    free(pts); free(q); free(pred); free(rows); free(ex); free(qs);
    return st;
}

/* the local model as a labels oracle */
static advex_status model_labels(void *u, const float *x, int64_t n, const int64_t *rows, int32_t *pred) {
    (void)rows;
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
    const int64_t k = m->net->classes;
    float *z = malloc((size_t)(n * k) * sizeof(float));
    int32_t *ts = malloc((size_t)n * sizeof(int32_t));
    advex_status st = ADVEX_OK;
    if (!z || !ts) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    int targeted = st ? -1 : atk_setup_targets(m, c, x, y, n, off, z, ts, &st);
    atk_labels o = {model_labels, m, {m->net->in_chw[0], m->net->in_chw[1], m->net->in_chw[2]}, 256, NULL};
    if (targeted >= 0) st = atk_hsj_run(&o, c, x, y, targeted ? ts : NULL, NULL, n, off, ids, xadv, info);
    free(z);
    free(ts);
    return st;
}
