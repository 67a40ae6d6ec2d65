/* Attacks and evaluation through a target: the score-based (Square) and decision-based
 * (HopSkipJump) attacks see the target through their oracles (attack_internal.h), which
 * charge every image to its example's budget in advex_target_query; transfer attacks are
 * crafted on a local surrogate and judged through the target. One clean query per example
 * comes first and counts in its budget. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attacks/attack_internal.h"
#include "target/target_internal.h"

typedef struct oracle_ctx {
    advex_target *t;
    const int64_t *ids; /* budget id of each row of the attacked batch */
    int64_t *gid;       /* scratch (n) */
} oracle_ctx;

static advex_status oracle_scores(void *u, const float *x, int64_t n, const int64_t *rows, float *z) {
    oracle_ctx *o = u;
    for (int64_t i = 0; i < n; i++) o->gid[i] = o->ids[rows[i]];
    return advex_target_query(o->t, x, n, o->gid, z, NULL);
}

static advex_status oracle_labels(void *u, const float *x, int64_t n, int64_t row, int32_t *pred) {
    oracle_ctx *o = u;
    int64_t *g = malloc((size_t)n * sizeof(int64_t));
    if (!g) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) g[i] = o->ids[row];
    advex_status st = advex_target_query(o->t, x, n, g, NULL, pred);
    free(g);
    return st;
}

static int score_based(advex_attack_kind k) { return k == ADVEX_ATTACK_SQUARE || k == ADVEX_ATTACK_SIMBA; }
static int decision_based(advex_attack_kind k) { return k == ADVEX_ATTACK_HSJ; }

advex_status advex_target_attack(advex_target *t, const advex_attack_config *c, const float *x, const int32_t *y,
                                 const int64_t *ids, int64_t n, int64_t off, float *x_adv, int32_t *ok) {
    if (!score_based(c->kind) && !decision_based(c->kind))
        return advex_set_error(ADVEX_ERR_ARG, "%s needs the model's gradients: it cannot run through a target (use "
                               "square, simba or hsj, or craft it on a local --surrogate)", advex_attack_name(c->kind));
    if (score_based(c->kind) && t->output == ADVEX_OUTPUT_LABEL)
        return advex_set_error(ADVEX_ERR_ARG, "%s needs scores but %s answers labels only (use hsj)",
                               advex_attack_name(c->kind), t->spec);
    if (c->target != ADVEX_TARGET_NONE)
        return advex_set_error(ADVEX_ERR_ARG, "targeted attacks through a target are not implemented");
    if (n <= 0) return ADVEX_OK;
    int64_t left = INT64_MAX; /* the attack's own budget: what every example still has */
    for (int64_t i = 0; i < n; i++) {
        int64_t l = advex_target_left(t, ids[i]);
        left = l < left ? l : left;
    }
    advex_attack_config ac = *c;
    if (left < INT64_MAX) ac.queries = (int32_t)(left < INT32_MAX ? left : INT32_MAX);
    int32_t *stage = calloc((size_t)n, sizeof(int32_t));
    oracle_ctx o = {t, ids, malloc((size_t)n * sizeof(int64_t))};
    advex_status st = ADVEX_OK;
    if (!stage || !o.gid) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    advex_attack_info info = {NULL, stage, NULL};
    if (!st && ac.queries <= 0) memcpy(x_adv, x, (size_t)(n * t->chw[0] * t->chw[1] * t->chw[2]) * sizeof(float));
    else if (!st && score_based(c->kind)) {
        atk_scores sc = {oracle_scores, &o, {t->chw[0], t->chw[1], t->chw[2]}, t->classes,
                         t->output == ADVEX_OUTPUT_PROBS};
        st = c->kind == ADVEX_ATTACK_SIMBA ? atk_simba_run(&sc, &ac, x, y, n, off, NULL, x_adv, &info)
                                           : atk_square_run(&sc, &ac, x, y, NULL, n, off, NULL, x_adv, &info);
    } else if (!st) {
        atk_labels lb = {oracle_labels, &o, {t->chw[0], t->chw[1], t->chw[2]}};
        st = atk_hsj_run(&lb, &ac, x, y, n, off, NULL, x_adv, &info);
    }
    for (int64_t i = 0; ok && !st && i < n; i++) ok[i] = stage[i] != 0;
    free(stage);
    free(o.gid);
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
    if (c->kind != ADVEX_ATTACK_NONE && !score_based(c->kind) && !decision_based(c->kind))
        return advex_set_error(ADVEX_ERR_ARG, "%s needs the model's gradients: it cannot run through a target (use "
                               "square, simba or hsj, or craft it on a local --surrogate)", advex_attack_name(c->kind));
    if (score_based(c->kind) && t->output == ADVEX_OUTPUT_LABEL)
        return advex_set_error(ADVEX_ERR_ARG, "%s needs scores but %s answers labels only (use hsj)",
                               advex_attack_name(c->kind), t->spec);
    if (c->target != ADVEX_TARGET_NONE)
        return advex_set_error(ADVEX_ERR_ARG, "targeted attacks through a target are not implemented");
    if (!(c->eps >= 0)) return advex_set_error(ADVEX_ERR_ARG, "eps must be >= 0");
    return ADVEX_OK;
}

/* one batch [i0, i0+b): clean query, the attack on the clean-correct, the verdicts */
static advex_status eval_batch(advex_target *t, advex_model *sur, const advex_dataset *d, const advex_attack_config *c,
                               int64_t i0, int64_t b, float *xa, int64_t *ids, int32_t *pred, int32_t *ok,
                               float *gx, int32_t *gy, advex_eval_result *res, double *qv) {
    const int64_t dim = d->c * d->h * d->w;
    const float *x = d->x + i0 * dim;
    for (int64_t j = 0; j < b; j++) ids[j] = i0 + j;
    advex_status st = advex_target_query(t, x, b, ids, NULL, pred);
    if (st) return st;
    memcpy(xa, x, (size_t)(b * dim) * sizeof(float));
    int64_t m = 0; /* gather the clean-correct */
    for (int64_t j = 0; j < b; j++) {
        if (pred[j] != d->y[i0 + j]) continue;
        res->clean_correct++;
        memcpy(gx + m * dim, x + j * dim, (size_t)dim * sizeof(float));
        gy[m] = d->y[i0 + j];
        ids[m++] = i0 + j;
    }
    if (m == 0 || c->kind == ADVEX_ATTACK_NONE || c->eps == 0) {
        res->robust_correct += m;
        return ADVEX_OK;
    }
    float *ga = gx + m * dim;
    if (sur) { /* transfer: craft locally, judge with one query each */
        advex_attack_config tc = *c;
        tc.no_early_stop = 1;
        if ((st = advex_attack_batch(sur, &tc, gx, gy, m, ids[0], ga))) return st;
        if ((st = advex_target_query(t, ga, m, ids, NULL, pred))) return st;
        for (int64_t j = 0; j < m; j++) ok[j] = pred[j] != gy[j];
    } else if ((st = advex_target_attack(t, c, gx, gy, ids, m, ids[0], ga, ok))) {
        return st;
    }
    for (int64_t j = 0; j < m; j++) {
        memcpy(xa + (ids[j] - i0) * dim, ga + j * dim, (size_t)dim * sizeof(float));
        if (!ok[j]) { res->robust_correct++; continue; }
        qv[res->queries_count++] = (double)advex_target_spent(t, ids[j]);
    }
    return ADVEX_OK;
}

advex_status advex_target_eval(advex_target *t, advex_model *surrogate, const advex_dataset *d,
                               const advex_attack_config *c, int64_t batch, advex_progress_fn progress, void *user,
                               float *adv_out, advex_eval_result *res) {
    const int64_t Q = c->queries > 0 ? c->queries : 5000;
    advex_status st = eval_check(t, surrogate, d, c, Q);
    if (st) return st;
    if ((st = advex_target_budget(t, d->n, Q))) return st;
    if (batch <= 0) batch = 256;
    const int64_t dim = d->c * d->h * d->w;
    float *xa = malloc((size_t)(batch * dim) * sizeof(float)), *gx = malloc((size_t)(2 * batch * dim) * sizeof(float));
    int64_t *ids = malloc((size_t)batch * sizeof(int64_t));
    int32_t *pred = malloc((size_t)batch * sizeof(int32_t)), *ok = calloc((size_t)batch, sizeof(int32_t));
    int32_t *gy = malloc((size_t)batch * sizeof(int32_t));
    double *qv = malloc((size_t)(d->n ? d->n : 1) * sizeof(double));
    if (!xa || !gx || !ids || !pred || !ok || !gy || !qv) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    memset(res, 0, sizeof *res);
    res->attack = c->kind;
    res->eps = c->eps;
    res->norm = c->norm;
    res->transfer = surrogate != NULL;
    res->target_hits = -1;
    const int64_t q0 = advex_target_queries(t);
    const double t0 = now_s();
    for (int64_t i = 0; i < d->n && !st; i += batch) {
        int64_t b = d->n - i < batch ? d->n - i : batch;
        st = eval_batch(t, surrogate, d, c, i, b, adv_out ? adv_out + i * dim : xa, ids, pred, ok, gx, gy, res, qv);
        res->n += st ? 0 : b;
        if (!st && progress && progress(user, i + b, d->n))
            st = advex_set_error(ADVEX_ERR_INTERRUPTED, "evaluation interrupted");
    }
    res->seconds = now_s() - t0;
    res->queries_total = advex_target_queries(t) - q0;
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
    free(xa); free(gx); free(ids); free(pred); free(ok); free(gy); free(qv);
    return st;
}
