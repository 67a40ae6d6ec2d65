/* Attacks and evaluation through a target: the score-based (Square, SimBA) and
 * decision-based (HopSkipJump) attacks see the target through their oracles
 * (attack_internal.h), which charge every image to its example's budget in
 * advex_target_query; transfer attacks are crafted on a local surrogate and judged through
 * the target. Evaluation queries every example once, clean, first (counted in its budget): the
 * clean classes decide which examples are attacked, give least-likely targets their scores
 * and give targeted HopSkipJump its starting images (a data-set image the target classified
 * as the target class). Targeted runs aim at advex_attack_targets' classes, seeded by each
 * example's index in the data set, as a local run does. */
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"
#include "target/target_internal.h"

typedef struct oracle_ctx {
    advex_target *t;
    const int64_t *ids; /* budget id of each row of the attacked batch */
    int64_t *gid;       /* scratch (cap) */
    int64_t cap;
} oracle_ctx;

static advex_status oracle_ids(oracle_ctx *o, const int64_t *rows, int64_t n) {
    if (n > o->cap) {
        int64_t *g = realloc(o->gid, (size_t)n * sizeof(int64_t));
        if (!g) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        o->gid = g;
        o->cap = n;
    }
    for (int64_t i = 0; i < n; i++) o->gid[i] = o->ids[rows[i]];
    return ADVEX_OK;
}

static advex_status oracle_scores(void *u, const float *x, int64_t n, const int64_t *rows, float *z) {
    oracle_ctx *o = u;
    advex_status st = oracle_ids(o, rows, n);
    return st ? st : advex_target_query(o->t, x, n, o->gid, z, NULL);
}

static advex_status oracle_labels(void *u, const float *x, int64_t n, const int64_t *rows, int32_t *pred) {
    oracle_ctx *o = u;
    advex_status st = oracle_ids(o, rows, n);
    return st ? st : advex_target_query(o->t, x, n, o->gid, NULL, pred);
}

static int score_based(advex_attack_kind k) { return k == ADVEX_ATTACK_SQUARE || k == ADVEX_ATTACK_SIMBA; }
static int decision_based(advex_attack_kind k) { return k == ADVEX_ATTACK_HSJ; }

/* what an attack through t needs: ADVEX_ERR_ARG with one line when t cannot give it */
static advex_status attack_fits(const advex_target *t, const advex_attack_config *c) {
    if (!score_based(c->kind) && !decision_based(c->kind))
        return advex_set_error(ADVEX_ERR_ARG, "%s needs the model's gradients: it cannot run through a target (use "
                               "square, simba or hsj, or craft it on a local --surrogate)", advex_attack_name(c->kind));
    if (score_based(c->kind) && t->output == ADVEX_OUTPUT_LABEL)
        return advex_set_error(ADVEX_ERR_ARG, "%s needs scores but %s answers labels only (use hsj)",
                               advex_attack_name(c->kind), t->spec);
    return ADVEX_OK;
}

/* targets that t can give: least-likely needs scores; a class must be one of t's */
static advex_status targets_fit(const advex_target *t, const advex_attack_config *c) {
    if (c->target == ADVEX_TARGET_LEAST_LIKELY && t->output == ADVEX_OUTPUT_LABEL)
        return advex_set_error(ADVEX_ERR_ARG, "least-likely targets need scores but %s answers labels only (use a "
                               "class, next or random)", t->spec);
    if (c->target == ADVEX_TARGET_LABEL && (c->target_label < 0 || (t->classes > 0 && c->target_label >= t->classes)))
        return advex_set_error(ADVEX_ERR_ARG, "target class %d is not one of %s's %lld classes", (int)c->target_label,
                               t->spec, (long long)t->classes);
    return ADVEX_OK;
}

/* the attack on a batch whose targets tg (n, or NULL) and HopSkipJump starts (n, or NULL)
 * are known; fin (n): the class t gave each returned example, from the attack's own queries */
static advex_status attack_run(advex_target *t, const advex_attack_config *c, const float *x, const int32_t *y,
                               const int32_t *tg, const float *const *starts, const int64_t *ids, int64_t n,
                               int64_t off, float *x_adv, int32_t *fin) {
    int64_t left = INT64_MAX; /* the attack's own budget: what every example still has */
    for (int64_t i = 0; i < n; i++) {
        int64_t l = advex_target_left(t, ids[i]);
        left = l < left ? l : left;
    }
    advex_attack_config ac = *c;
    if (left < INT64_MAX) ac.queries = (int32_t)(left < INT32_MAX ? left : INT32_MAX);
    if (ac.queries <= 0) { /* nothing left: x as it is */
        memcpy(x_adv, x, (size_t)(n * t->chw[0] * t->chw[1] * t->chw[2]) * sizeof(float));
        memcpy(fin, y, (size_t)n * sizeof(int32_t));
        return ADVEX_OK;
    }
    oracle_ctx o = {t, ids, NULL, 0};
    advex_attack_info info = {NULL, NULL, NULL};
    advex_status st;
    if (score_based(c->kind)) {
        atk_scores sc = {oracle_scores, &o, {t->chw[0], t->chw[1], t->chw[2]}, t->classes,
                         t->output == ADVEX_OUTPUT_PROBS, fin};
        st = c->kind == ADVEX_ATTACK_SIMBA ? atk_simba_run(&sc, &ac, x, y, tg, n, off, ids, x_adv, &info)
                                           : atk_square_run(&sc, &ac, x, y, tg, n, off, ids, x_adv, &info);
    } else {
        atk_labels lb = {oracle_labels, &o, {t->chw[0], t->chw[1], t->chw[2]}, t->o.batch, fin};
        st = atk_hsj_run(&lb, &ac, x, y, tg, starts, n, off, ids, x_adv, &info);
    }
    free(o.gid);
    return st;
}

/* targets (n) for examples ids under c->target, as a local run picks them; z (n, K): clean
 * scores for least-likely, else NULL */
static advex_status pick_targets(const advex_target *t, const advex_attack_config *c, const float *z,
                                 const int32_t *y, const int64_t *ids, int64_t n, int32_t *tg) {
    advex_status st = ADVEX_OK;
    for (int64_t i = 0; i < n && !st; i++)
        st = advex_attack_targets(c, z ? z + i * t->classes : NULL, y + i, 1, t->classes, ids[i], tg + i);
    return st;
}

advex_status advex_target_attack(advex_target *t, const advex_attack_config *c, const float *x, const int32_t *y,
                                 const int64_t *ids, int64_t n, int64_t off, float *x_adv, int32_t *ok) {
    advex_status st = attack_fits(t, c);
    if (!st && c->target != ADVEX_TARGET_NONE) st = targets_fit(t, c);
    if (st || n <= 0) return st;
    const int targeted = c->target != ADVEX_TARGET_NONE, ll = c->target == ADVEX_TARGET_LEAST_LIKELY;
    int32_t *fin = malloc((size_t)n * sizeof(int32_t)), *tg = targeted ? malloc((size_t)n * sizeof(int32_t)) : NULL;
    float *z = ll ? malloc((size_t)(n * t->classes) * sizeof(float)) : NULL;
    if (!fin || (targeted && !tg) || (ll && !z)) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    if (!st && ll) st = advex_target_query(t, x, n, ids, z, NULL); /* clean scores, charged to the budgets */
    if (!st && targeted) st = pick_targets(t, c, z, y, ids, n, tg);
    if (!st) st = attack_run(t, c, x, y, tg, NULL, ids, n, off, x_adv, fin);
    for (int64_t i = 0; ok && !st && i < n; i++) ok[i] = tg ? fin[i] == tg[i] : fin[i] != y[i];
    free(fin);
    free(tg);
    free(z);
    return st;
}

static advex_status eval_check(advex_target *t, advex_model *sur, const advex_dataset *d, const advex_attack_config *c,
                               int64_t Q) {
    if (!d->y) return advex_set_error(ADVEX_ERR_ARG, "evaluation needs labels");
    if (d->c != t->chw[0] || d->h != t->chw[1] || d->w != t->chw[2])
        return advex_set_error(ADVEX_ERR_SHAPE, "data is %lldx%lldx%lld but %s takes %lldx%lldx%lld", (long long)d->c,
                               (long long)d->h, (long long)d->w, t->spec, (long long)t->chw[0], (long long)t->chw[1],
                               (long long)t->chw[2]);
    if (t->classes <= 0) advex_target_set_classes(t, d->num_classes);
    for (int64_t i = 0; i < d->n; i++)
        if (d->y[i] < 0 || (t->classes > 0 && d->y[i] >= t->classes))
            return advex_set_error(ADVEX_ERR_ARG, "label %d of example %lld is not one of %s's %lld classes",
                                   (int)d->y[i], (long long)i, t->spec, (long long)t->classes);
    if (c->target != ADVEX_TARGET_NONE && t->classes < 2)
        return advex_set_error(ADVEX_ERR_ARG, "a targeted attack needs the number of %s's classes (--target-classes)",
                               t->spec);
    if (sur) {
        int64_t chw[3];
        advex_model_input_shape(sur, chw);
        if (chw[0] != t->chw[0] || chw[1] != t->chw[1] || chw[2] != t->chw[2] ||
            advex_model_num_classes(sur) != t->classes)
            return advex_set_error(ADVEX_ERR_SHAPE, "the surrogate's input or classes differ from %s's", t->spec);
        if (Q < 2) return advex_set_error(ADVEX_ERR_ARG, "transfer needs 2 queries per example (clean, adversarial)");
        advex_attack_config tc = *c;
        tc.no_early_stop = 1;
        return advex_attack_check(sur, &tc);
    }
    advex_status st = c->kind != ADVEX_ATTACK_NONE ? attack_fits(t, c) : ADVEX_OK;
    if (!st && c->target != ADVEX_TARGET_NONE) st = targets_fit(t, c);
    if (!st && !(c->eps >= 0)) st = advex_set_error(ADVEX_ERR_ARG, "eps must be >= 0");
    return st;
}

/* each example's query budget in an evaluation (--queries, default 5000) */
static int64_t budget_of(const advex_attack_config *c) { return c->queries > 0 ? c->queries : 5000; }

advex_status advex_target_check_run(advex_target *t, advex_model *sur, const advex_dataset *d,
                                    const advex_attack_config *c) {
    return eval_check(t, sur, d, c, budget_of(c));
}

/* One run of an evaluation through a target (advex_target_run_open). */
struct advex_target_run {
    advex_target *t;
    advex_model *sur;
    const advex_dataset *d;
    advex_attack_config c;
    int64_t batch;
    advex_eval_example *ex; /* (n) the caller's records */
    const float **first;    /* (K) targeted hsj: the first image the target classified as each class */
    /* per batch (b): */
    float *gx, *z, *p;      /* (2b, d): the attacked and their results; (b, K) scores, probabilities */
    float *xa;              /* (b, d) x' when the caller keeps none */
    int64_t *ids;
    int32_t *gy, *gt, *fin;
    const float **gs;
};

void advex_target_run_close(advex_target_run *r) {
    if (!r) return;
    free(r->first); free(r->gx); free(r->z); free(r->p); free(r->xa); free(r->ids); free(r->gy); free(r->gs);
    free(r);
}

/* The clean query of examples [lo, n), in batches: classes, confidences from the scores (0 for
 * a label-only target) and targets into the records. */
static advex_status run_clean(advex_target_run *r, int64_t lo) {
    const advex_dataset *d = r->d;
    const int64_t dim = d->c * d->h * d->w, k = r->t->classes;
    const int scores = r->t->output != ADVEX_OUTPUT_LABEL;
    const int targeted = r->c.target != ADVEX_TARGET_NONE && !r->sur;
    const int ll = r->c.target == ADVEX_TARGET_LEAST_LIKELY;
    advex_status st = ADVEX_OK;
    for (int64_t i = lo; i < d->n && !st; i += r->batch) {
        int64_t b = d->n - i < r->batch ? d->n - i : r->batch;
        int32_t *pred = r->gy; /* scratch */
        for (int64_t j = 0; j < b; j++) r->ids[j] = i + j;
        if ((st = advex_target_query(r->t, d->x + i * dim, b, r->ids, scores ? r->z : NULL, pred))) break;
        for (int64_t j = 0; j < b; j++) {
            advex_eval_example *e = &r->ex[i + j];
            memset(e, 0, sizeof *e);
            e->clean_pred = e->adv_pred = pred[j];
            e->target = -1;
        }
        if (scores) { /* the clean class's probability */
            const int probs = r->t->output == ADVEX_OUTPUT_PROBS;
            if (!probs) advex_softmax_rows(r->z, b, k, r->p);
            const float *p = probs ? r->z : r->p;
            for (int64_t j = 0; j < b; j++) {
                float cf = p[j * k + pred[j]];
                r->ex[i + j].clean_conf = cf < 0 ? 0 : cf > 1 ? 1 : cf;
            }
        }
        if (targeted) {
            int32_t *tg = r->fin; /* scratch */
            if ((st = pick_targets(r->t, &r->c, ll ? r->z : NULL, d->y + i, r->ids, b, tg))) break;
            for (int64_t j = 0; j < b; j++) r->ex[i + j].target = tg[j];
        }
    }
    return st;
}

advex_status advex_target_run_open(advex_target *t, advex_model *sur, const advex_dataset *d,
                                   const advex_attack_config *c, int64_t batch, int64_t lo, advex_eval_example *ex,
                                   advex_target_run **out) {
    *out = NULL;
    advex_status st = advex_target_check_run(t, sur, d, c);
    if (st) return st;
    if (lo < 0 || lo > d->n) return advex_set_error(ADVEX_ERR_ARG, "examples from %lld outside the %lld examples",
                                                    (long long)lo, (long long)d->n);
    if ((st = advex_target_budget(t, d->n, budget_of(c)))) return st;
    advex_target_run *r = calloc(1, sizeof *r);
    if (!r) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    if (batch <= 0) batch = 256;
    const int64_t dim = d->c * d->h * d->w, k = t->classes > 0 ? t->classes : 1;
    const int targeted = c->target != ADVEX_TARGET_NONE && !sur;
    *r = (advex_target_run){.t = t, .sur = sur, .d = d, .c = *c, .batch = batch, .ex = ex};
    r->gx = malloc((size_t)(2 * batch * dim) * sizeof(float));
    r->z = malloc((size_t)(batch * k) * sizeof(float));
    r->p = malloc((size_t)(batch * k) * sizeof(float));
    r->xa = malloc((size_t)(batch * dim) * sizeof(float));
    r->ids = malloc((size_t)batch * sizeof(int64_t));
    r->gy = malloc((size_t)batch * 3 * sizeof(int32_t));
    r->gt = r->gy ? r->gy + batch : NULL;
    r->fin = r->gy ? r->gy + 2 * batch : NULL;
    r->gs = malloc((size_t)batch * sizeof(float *));
    r->first = targeted && c->kind == ADVEX_ATTACK_HSJ ? calloc((size_t)k, sizeof(float *)) : NULL;
    if (!r->gx || !r->z || !r->p || !r->xa || !r->ids || !r->gy || !r->gs || (targeted && c->kind == ADVEX_ATTACK_HSJ && !r->first))
        st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    /* examples [0, lo) are recorded in ex already (a resumed run); the others' clean query now,
     * so that targeted hsj's starts come from the whole data set as in an uninterrupted run */
    if (!st) st = run_clean(r, lo);
    for (int64_t i = d->n - 1; r->first && !st && i >= 0; i--) r->first[ex[i].clean_pred] = d->x + i * dim;
    if (st) advex_target_run_close(r);
    else *out = r;
    return st;
}

advex_status advex_target_run_batch(advex_target_run *r, int64_t i0, int64_t i1, float *adv) {
    const advex_dataset *d = r->d;
    const advex_attack_config *c = &r->c;
    const int64_t dim = d->c * d->h * d->w;
    if (i0 < 0 || i0 > i1 || i1 > d->n || i1 - i0 > r->batch)
        return advex_set_error(ADVEX_ERR_ARG, "batch [%lld, %lld) outside the run", (long long)i0, (long long)i1);
    const int64_t b = i1 - i0;
    const float *x = d->x + i0 * dim;
    float *xa = adv ? adv : r->xa;
    advex_eval_example *ex = r->ex;
    memcpy(xa, x, (size_t)(b * dim) * sizeof(float));
    int64_t m = 0; /* gather the clean-correct */
    for (int64_t j = 0; j < b; j++) {
        advex_eval_example *e = &ex[i0 + j];
        e->adv_pred = e->clean_pred;
        e->queries = advex_target_spent(r->t, i0 + j);
        advex_eval_example_stats(x + j * dim, x + j * dim, dim, e);
        if (e->clean_pred != d->y[i0 + j]) continue;
        memcpy(r->gx + m * dim, x + j * dim, (size_t)dim * sizeof(float));
        r->gy[m] = d->y[i0 + j];
        if (e->target >= 0) r->gt[m] = e->target;
        if (r->first) r->gs[m] = r->first[r->gt[m]];
        r->ids[m++] = i0 + j;
    }
    if (m == 0 || c->kind == ADVEX_ATTACK_NONE || c->eps == 0) return ADVEX_OK;
    float *ga = r->gx + m * dim;
    const int32_t *gt = c->target != ADVEX_TARGET_NONE && !r->sur ? r->gt : NULL;
    advex_status st;
    if (r->sur) { /* transfer: craft locally, judge with one query each */
        advex_attack_config tc = *c;
        tc.no_early_stop = 1;
        if ((st = advex_attack_batch(r->sur, &tc, r->gx, r->gy, m, r->ids[0], ga))) return st;
        if ((st = advex_target_query(r->t, ga, m, r->ids, NULL, r->fin))) return st;
        if (c->target != ADVEX_TARGET_NONE) { /* the targets the surrogate's attack aimed at */
            if (c->target == ADVEX_TARGET_LEAST_LIKELY && (st = advex_model_forward(r->sur, r->gx, m, r->z))) return st;
            if ((st = advex_attack_targets(c, r->z, r->gy, m, r->t->classes, r->ids[0], r->gt))) return st;
            for (int64_t j = 0; j < m; j++) ex[r->ids[j]].target = r->gt[j];
        }
    } else if ((st = attack_run(r->t, c, r->gx, r->gy, gt, r->first ? r->gs : NULL, r->ids, m, r->ids[0], ga,
                                r->fin))) {
        return st;
    }
    for (int64_t j = 0; j < m; j++) {
        advex_eval_example *e = &ex[r->ids[j]];
        memcpy(xa + (r->ids[j] - i0) * dim, ga + j * dim, (size_t)dim * sizeof(float));
        e->adv_pred = r->fin[j];
        e->queries = advex_target_spent(r->t, r->ids[j]);
        advex_eval_example_stats(r->gx + j * dim, ga + j * dim, dim, e);
    }
    return ADVEX_OK;
}

advex_status advex_target_summarize(const advex_dataset *d, const advex_attack_config *c, int transfer,
                                    const advex_eval_example *ex, double seconds, advex_eval_result *res) {
    advex_status st = advex_eval_summarize(d, c, transfer, ex, seconds, res);
    if (st) return st;
    /* every image sent was charged to an example: their sum is what the target answered; the
     * queries of a success include its clean query (and a transfer's judging one) */
    double *qv = malloc((size_t)(d->n ? d->n : 1) * sizeof(double));
    if (!qv) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    res->queries_total = 0;
    res->queries_count = 0;
    for (int64_t i = 0; i < d->n; i++) {
        res->queries_total += ex[i].queries;
        if (ex[i].clean_pred == d->y[i] && ex[i].adv_pred != d->y[i]) qv[res->queries_count++] = (double)ex[i].queries;
    }
    advex_mean_median(qv, res->queries_count, &res->queries_mean, &res->queries_median);
    free(qv);
    return ADVEX_OK;
}

advex_status advex_target_eval(advex_target *t, advex_model *surrogate, const advex_dataset *d,
                               const advex_attack_config *c, int64_t batch, advex_progress_fn progress, void *user,
                               float *adv_out, advex_eval_result *res) {
    memset(res, 0, sizeof *res);
    if (batch <= 0) batch = 256;
    const int64_t dim = d->c * d->h * d->w;
    advex_eval_example *ex = malloc((size_t)(d->n ? d->n : 1) * sizeof *ex);
    if (!ex) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory for %lld examples' outcomes", (long long)d->n);
    advex_target_run *r = NULL;
    const double t0 = advex_now();
    advex_status st = advex_target_run_open(t, surrogate, d, c, batch, 0, ex, &r);
    for (int64_t i = 0; i < d->n && !st; i += batch) {
        int64_t b = d->n - i < batch ? d->n - i : batch;
        st = advex_target_run_batch(r, i, i + b, adv_out ? adv_out + i * dim : NULL);
        if (!st && progress && progress(user, i + b, d->n))
            st = advex_set_error(ADVEX_ERR_INTERRUPTED, "evaluation interrupted");
    }
    advex_target_run_close(r);
    if (!st) st = advex_target_summarize(d, c, surrogate != NULL, ex, advex_now() - t0, res);
    free(ex);
    return st;
}
