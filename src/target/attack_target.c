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
#include <time.h>

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

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
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

/* what an evaluation keeps across batches */
typedef struct eval_ctx {
    advex_target *t;
    advex_model *sur;
    const advex_dataset *d;
    const advex_attack_config *c;
    int32_t *cpred;        /* (n) the target's clean classes */
    int32_t *tgt;          /* (n) targets, or NULL (untargeted; transfer: the surrogate's attack picks
                              them, batch by batch, and clean-misclassified examples count no hit) */
    const float **first;   /* (K) targeted hsj: the first image the target classified as each class */
    /* per batch (b): */
    float *gx, *z;         /* (2b, d): the attacked and their results; (b, K) scores */
    int64_t *ids;
    int32_t *gy, *gt, *fin;
    const float **gs;
    double *qv;            /* (n) queries of each success */
    advex_eval_result *res;
} eval_ctx;

/* the clean query of every example, in batches of b: classes, targets and hsj's starts */
static advex_status eval_clean(eval_ctx *E, int64_t batch) {
    const advex_dataset *d = E->d;
    const int64_t dim = d->c * d->h * d->w;
    const int ll = E->c->target == ADVEX_TARGET_LEAST_LIKELY && !E->sur;
    advex_status st = ADVEX_OK;
    for (int64_t i = 0; i < d->n && !st; i += batch) {
        int64_t b = d->n - i < batch ? d->n - i : batch;
        for (int64_t j = 0; j < b; j++) E->ids[j] = i + j;
        st = advex_target_query(E->t, d->x + i * dim, b, E->ids, ll ? E->z : NULL, E->cpred + i);
        if (!st && E->tgt) st = pick_targets(E->t, E->c, ll ? E->z : NULL, d->y + i, E->ids, b, E->tgt + i);
    }
    for (int64_t i = d->n - 1; E->first && !st && i >= 0; i--) E->first[E->cpred[i]] = d->x + i * dim;
    return st;
}

/* one batch [i0, i0+b): the attack on the clean-correct, the verdicts */
static advex_status eval_batch(eval_ctx *E, int64_t i0, int64_t b, float *xa) {
    const advex_dataset *d = E->d;
    const advex_attack_config *c = E->c;
    const int64_t dim = d->c * d->h * d->w;
    const float *x = d->x + i0 * dim;
    advex_eval_result *res = E->res;
    memcpy(xa, x, (size_t)(b * dim) * sizeof(float));
    int64_t m = 0; /* gather the clean-correct */
    for (int64_t j = 0; j < b; j++) {
        if (E->cpred[i0 + j] != d->y[i0 + j]) {
            if (E->tgt) res->target_hits += E->cpred[i0 + j] == E->tgt[i0 + j];
            continue;
        }
        res->clean_correct++;
        memcpy(E->gx + m * dim, x + j * dim, (size_t)dim * sizeof(float));
        E->gy[m] = d->y[i0 + j];
        if (E->tgt) E->gt[m] = E->tgt[i0 + j];
        if (E->first) E->gs[m] = E->first[E->gt[m]];
        E->ids[m++] = i0 + j;
    }
    if (m == 0 || c->kind == ADVEX_ATTACK_NONE || c->eps == 0) {
        res->robust_correct += m;
        for (int64_t j = 0; E->tgt && j < m; j++) res->target_hits += E->gy[j] == E->gt[j];
        return ADVEX_OK;
    }
    float *ga = E->gx + m * dim;
    const int32_t *gt = E->tgt ? E->gt : NULL;
    advex_status st;
    if (E->sur) { /* transfer: craft locally, judge with one query each */
        advex_attack_config tc = *c;
        tc.no_early_stop = 1;
        if ((st = advex_attack_batch(E->sur, &tc, E->gx, E->gy, m, E->ids[0], ga))) return st;
        if ((st = advex_target_query(E->t, ga, m, E->ids, NULL, E->fin))) return st;
        if (c->target != ADVEX_TARGET_NONE) { /* the targets the surrogate's attack aimed at */
            if (c->target == ADVEX_TARGET_LEAST_LIKELY && (st = advex_model_forward(E->sur, E->gx, m, E->z))) return st;
            if ((st = advex_attack_targets(c, E->z, E->gy, m, E->t->classes, E->ids[0], E->gt))) return st;
            gt = E->gt;
        }
    } else if ((st = attack_run(E->t, c, E->gx, E->gy, gt, E->first ? E->gs : NULL, E->ids, m, E->ids[0], ga,
                                E->fin))) {
        return st;
    }
    for (int64_t j = 0; j < m; j++) {
        memcpy(xa + (E->ids[j] - i0) * dim, ga + j * dim, (size_t)dim * sizeof(float));
        if (gt) res->target_hits += E->fin[j] == gt[j];
        if (E->fin[j] == E->gy[j]) { res->robust_correct++; continue; }
        E->qv[res->queries_count++] = (double)advex_target_spent(E->t, E->ids[j]);
    }
    return ADVEX_OK;
}

static void eval_summary(advex_eval_result *res, double *qv) {
    res->robust_all = res->robust_correct;
    res->robust_accuracy = res->n ? (double)res->robust_correct / (double)res->n : 0.0;
    res->success_rate = res->clean_correct ? 1.0 - (double)res->robust_correct / (double)res->clean_correct : 0.0;
    if (res->queries_count > 0) {
        double s = 0;
        for (int64_t i = 0; i < res->queries_count; i++) s += qv[i];
        res->queries_mean = s / (double)res->queries_count;
        qsort(qv, (size_t)res->queries_count, sizeof *qv, cmp_d);
        int64_t h = res->queries_count;
        res->queries_median = h % 2 ? qv[h / 2] : 0.5 * (qv[h / 2 - 1] + qv[h / 2]);
    }
}

advex_status advex_target_eval(advex_target *t, advex_model *surrogate, const advex_dataset *d,
                               const advex_attack_config *c, int64_t batch, advex_progress_fn progress, void *user,
                               float *adv_out, advex_eval_result *res) {
    const int64_t Q = c->queries > 0 ? c->queries : 5000;
    advex_status st = eval_check(t, surrogate, d, c, Q);
    if (st) return st;
    if ((st = advex_target_budget(t, d->n, Q))) return st;
    if (batch <= 0) batch = 256;
    const int64_t dim = d->c * d->h * d->w, k = t->classes > 0 ? t->classes : 1, nn = d->n ? d->n : 1;
    const int targeted = c->target != ADVEX_TARGET_NONE && !surrogate;
    eval_ctx E = {.t = t, .sur = surrogate, .d = d, .c = c, .res = res};
    float *xa = malloc((size_t)(batch * dim) * sizeof(float));
    E.gx = malloc((size_t)(2 * batch * dim) * sizeof(float));
    E.z = malloc((size_t)(batch * k) * sizeof(float));
    E.ids = malloc((size_t)batch * sizeof(int64_t));
    E.gy = malloc((size_t)batch * 3 * sizeof(int32_t));
    E.gt = E.gy ? E.gy + batch : NULL;
    E.fin = E.gy ? E.gy + 2 * batch : NULL;
    E.gs = malloc((size_t)batch * sizeof(float *));
    E.cpred = malloc((size_t)nn * sizeof(int32_t));
    E.tgt = targeted ? malloc((size_t)nn * sizeof(int32_t)) : NULL;
    E.first = targeted && c->kind == ADVEX_ATTACK_HSJ ? calloc((size_t)k, sizeof(float *)) : NULL;
    E.qv = malloc((size_t)nn * sizeof(double));
    if (!xa || !E.gx || !E.z || !E.ids || !E.gy || !E.gs || !E.cpred || (targeted && !E.tgt) ||
        (targeted && c->kind == ADVEX_ATTACK_HSJ && !E.first) || !E.qv)
        st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    memset(res, 0, sizeof *res);
    res->attack = c->kind;
    res->eps = c->eps;
    res->norm = c->norm;
    res->transfer = surrogate != NULL;
    res->target_hits = c->target != ADVEX_TARGET_NONE ? 0 : -1;
    const int64_t q0 = advex_target_queries(t);
    const double t0 = now_s();
    if (!st) st = eval_clean(&E, batch);
    for (int64_t i = 0; i < d->n && !st; i += batch) {
        int64_t b = d->n - i < batch ? d->n - i : batch;
        st = eval_batch(&E, i, b, adv_out ? adv_out + i * dim : xa);
        res->n += st ? 0 : b;
        if (!st && progress && progress(user, i + b, d->n))
            st = advex_set_error(ADVEX_ERR_INTERRUPTED, "evaluation interrupted");
    }
    res->seconds = now_s() - t0;
    res->queries_total = advex_target_queries(t) - q0;
    eval_summary(res, E.qv);
    free(xa); free(E.gx); free(E.z); free(E.ids); free(E.gy); free(E.gs); free(E.cpred); free(E.tgt); free(E.first);
    free(E.qv);
    return st;
}
