/* Robust accuracy over a data set, batch by batch: clean predictions, the attack, the
 * model's own predictions on the returned examples. Results do not depend on batch size. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void advex_argmax_rows(const float *logits, int64_t n, int64_t c, int32_t *pred) {
    for (int64_t i = 0; i < n; i++) pred[i] = advex_argmax(logits + i * c, c);
}

static advex_status check_data(const advex_model *m, const advex_dataset *d) {
    return advex_data_fits(m, d, "evaluation");
}

advex_status advex_eval_clean(advex_model *m, const advex_dataset *d, int64_t batch, int64_t *correct) {
    advex_status st = check_data(m, d);
    if (st) return st;
    if (batch <= 0) batch = 256;
    int64_t dim = d->c * d->h * d->w, k = m->net->classes;
    float *logits = malloc((size_t)(batch * k) * sizeof(float));
    int32_t *pred = malloc((size_t)batch * sizeof(int32_t));
    if (!logits || !pred) { free(logits); free(pred); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); }
    *correct = 0;
    for (int64_t i = 0; i < d->n && !st; i += batch) {
        int64_t b = d->n - i < batch ? d->n - i : batch;
        advex_model_seed_batch(m, i, ADVEX_DRAW_CLEAN, 0);
        if ((st = advex_model_forward(m, d->x + i * dim, b, logits))) break;
        advex_argmax_rows(logits, b, k, pred);
        for (int64_t j = 0; j < b; j++) *correct += pred[j] == d->y[i + j];
    }
    free(logits);
    free(pred);
    return st;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void advex_mean_median(double *v, int64_t n, double *mean, double *median) {
    *mean = *median = 0;
    if (n <= 0) return;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    *mean = s / (double)n;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void advex_pert_norms(const float *x, const float *xa, int64_t d, double n3[3]) {
    double inf = 0, l2 = 0, l1 = 0;
    for (int64_t j = 0; j < d; j++) {
        double v = fabs((double)xa[j] - x[j]);
        l2 += v * v;
        l1 += v;
        if (v > inf) inf = v;
    }
    n3[0] = inf;
    n3[1] = sqrt(l2);
    n3[2] = l1;
}

/* What AutoAttack's final check reads of one returned example: its perturbation's three norms,
 * its NaN entries, its smallest and largest finite entry (adv_min > adv_max: none finite). */
void advex_eval_example_stats(const float *x, const float *xa, int64_t dim, advex_eval_example *e) {
    advex_pert_norms(x, xa, dim, e->norms);
    int64_t nan = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t k = 0; k < dim; k++) {
        float v = xa[k];
        if (isnan(v)) { nan++; continue; }
        if (!isfinite(v)) continue;
        if (v > hi) hi = v;
        if (v < lo) lo = v;
    }
    e->nan_count = nan;
    e->adv_min = hi >= lo ? lo : 1.0f;
    e->adv_max = hi >= lo ? hi : 0.0f;
}

/* Softmax probability of row i's entry at pred[i]; p: scratch (n, k). */
static void pred_conf(const float *logits, int64_t n, int64_t k, const int32_t *pred, float *p, float *conf) {
    advex_softmax_rows(logits, n, k, p);
    for (int64_t i = 0; i < n; i++) conf[i] = p[i * k + pred[i]];
}

/* The data fit both models, which have the same classes. */
static advex_status check_models(advex_model *am, advex_model *em, const advex_dataset *d) {
    advex_status st = check_data(em, d);
    if (st || am == em) return st;
    if ((st = check_data(am, d))) return st;
    if (am->net->classes != em->net->classes)
        return advex_set_error(ADVEX_ERR_SHAPE, "surrogate has %lld classes but the target has %lld",
                               (long long)am->net->classes, (long long)em->net->classes);
    return ADVEX_OK;
}

/* Examples [lo, hi) of d, crafted on `am` and judged on `em` (the same model unless transfer;
 * the models checked): outcomes into ex[lo..hi), x' into rows lo..hi of adv when not NULL. */
static advex_status examples_core(advex_model *am, advex_model *em, const advex_dataset *d,
                                  const advex_attack_config *cfg, int64_t batch, int64_t lo, int64_t hi,
                                  advex_progress_fn progress, void *user, advex_eval_example *ex, float *adv) {
    /* crafted on another model: transfer mode (every step on every example, no early stop) */
    advex_attack_config tc = *cfg;
    if (am != em) tc.no_early_stop = 1;
    const advex_attack_config *c = &tc;
    if (batch <= 0) batch = 256;
    int64_t dim = d->c * d->h * d->w, k = em->net->classes;
    float *logits = malloc((size_t)(2 * batch * k) * sizeof(float)), *probs = logits + batch * k;
    int32_t *pred = malloc((size_t)batch * sizeof(int32_t));
    float *xadv = adv ? NULL : malloc((size_t)(batch * dim) * sizeof(float));
    float *conf = malloc((size_t)batch * sizeof(float));
    int64_t *queries = malloc((size_t)batch * sizeof(int64_t));
    int32_t *stage = malloc((size_t)batch * sizeof(int32_t));
    int32_t *tgt = malloc((size_t)batch * sizeof(int32_t));
    float *secs = malloc((size_t)(batch * ADVEX_EVAL_MAX_STAGES) * sizeof(float));
    advex_status st = ADVEX_OK;
    if (!logits || !pred || (!adv && !xadv) || !conf || !queries || !stage || !tgt || !secs)
        st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    for (int64_t i = lo; i < hi && !st; i += batch) {
        int64_t b = hi - i < batch ? hi - i : batch;
        const float *x = d->x + i * dim;
        const int32_t *y = d->y + i;
        float *xa = adv ? adv + i * dim : xadv;
        advex_eval_example *e = ex + i;
        /* a randomized model's draws: per batch and phase, from (seed, i) alone */
        advex_model_seed_batch(em, i, ADVEX_DRAW_CLEAN, 0);
        if ((st = advex_model_forward(em, x, b, logits))) break;
        advex_argmax_rows(logits, b, k, pred);
        pred_conf(logits, b, k, pred, probs, conf);
        for (int64_t j = 0; j < b; j++) {
            memset(&e[j], 0, sizeof e[j]);
            e[j].clean_pred = pred[j];
            e[j].clean_conf = conf[j];
            e[j].target = -1;
        }
        if (c->target != ADVEX_TARGET_NONE) { /* the targets the attack aims at (least-likely: the crafting model's) */
            if (am != em && c->target == ADVEX_TARGET_LEAST_LIKELY) {
                advex_model_seed_batch(am, i, ADVEX_DRAW_CLEAN, 0);
                if ((st = advex_model_forward(am, x, b, logits))) break;
            }
            if ((st = advex_attack_targets(c, logits, y, b, k, i, tgt))) break;
            for (int64_t j = 0; j < b; j++) e[j].target = tgt[j];
        }
        memset(queries, 0, (size_t)b * sizeof *queries);
        memset(stage, 0, (size_t)b * sizeof *stage);
        memset(secs, 0, (size_t)(b * ADVEX_EVAL_MAX_STAGES) * sizeof(float));
        advex_attack_info info = {queries, stage, secs};
        /* seeded by the examples' index in d: a shard gives the outcomes of the whole run */
        if ((st = advex_attack_batch_info(am, c, x, y, b, i, xa, &info))) break;
        advex_model_seed_batch(em, i, ADVEX_DRAW_JUDGE, c->kind);
        if ((st = advex_model_forward(em, xa, b, logits))) break;
        advex_argmax_rows(logits, b, k, pred);
        pred_conf(logits, b, k, pred, probs, conf);
        for (int64_t j = 0; j < b; j++) {
            e[j].adv_pred = pred[j];
            e[j].adv_conf = conf[j];
            e[j].queries = queries[j];
            e[j].stage = stage[j];
            memcpy(e[j].stage_seconds, secs + j * ADVEX_EVAL_MAX_STAGES, sizeof e[j].stage_seconds);
            advex_eval_example_stats(x + j * dim, xa + j * dim, dim, &e[j]);
        }
        if (progress && progress(user, i + b - lo, hi - lo))
            st = advex_set_error(ADVEX_ERR_INTERRUPTED, "evaluation interrupted");
    }
    free(logits); free(pred); free(xadv); free(conf); free(queries); free(stage); free(tgt); free(secs);
    return st;
}

advex_status advex_eval_examples(advex_model *m, advex_model *surrogate, const advex_dataset *d,
                                 const advex_attack_config *c, int64_t batch, int64_t lo, int64_t hi,
                                 advex_progress_fn progress, void *user, advex_eval_example *ex, float *adv) {
    advex_model *am = surrogate ? surrogate : m;
    advex_status st = check_models(am, m, d);
    if (st) return st;
    if (lo < 0 || lo > hi || hi > d->n)
        return advex_set_error(ADVEX_ERR_ARG, "examples [%lld, %lld) outside the %lld examples", (long long)lo,
                               (long long)hi, (long long)d->n);
    return examples_core(am, m, d, c, batch, lo, hi, progress, user, ex, adv);
}

static int counts_queries(advex_attack_kind k) {
    return k == ADVEX_ATTACK_SQUARE || k == ADVEX_ATTACK_STANDARD || k == ADVEX_ATTACK_HSJ || k == ADVEX_ATTACK_SIMBA;
}

/* The start of a result: attack, eps, norm, its stages, whether it counts target hits. */
static void result_init(const advex_attack_config *c, int transfer, advex_eval_result *res) {
    memset(res, 0, sizeof *res);
    res->attack = c->kind;
    res->eps = c->eps;
    res->norm = advex_attack_norm(c);
    res->transfer = transfer;
    res->n_stages = advex_attack_stages(c, res->stage_attack, ADVEX_EVAL_MAX_STAGES);
    res->target_hits = c->target != ADVEX_TARGET_NONE ? 0 : -1;
}

advex_status advex_eval_summarize(const advex_dataset *d, const advex_attack_config *c, int transfer,
                                  const advex_eval_example *ex, double seconds, advex_eval_result *res) {
    int64_t n = d->n;
    double *nv = malloc((size_t)(n ? n : 1) * sizeof(double)), *qv = malloc((size_t)(n ? n : 1) * sizeof(double));
    if (!nv || !qv) { free(nv); free(qv); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); }
    result_init(c, transfer, res);
    int ni = advex_norm_index(res->norm), cq = counts_queries(c->kind), finite = 0;
    for (int64_t i = 0; i < n; i++) {
        const advex_eval_example *e = &ex[i];
        int clean_ok = e->clean_pred == d->y[i], robust = clean_ok && e->adv_pred == d->y[i];
        res->clean_correct += clean_ok;
        res->robust_correct += robust;
        if (res->target_hits >= 0) res->target_hits += e->adv_pred == e->target;
        /* AutoAttack's final check: the largest perturbation, NaN entries, the finite range */
        if (e->norms[ni] > res->max_pert) res->max_pert = e->norms[ni];
        res->nan_count += e->nan_count;
        for (int s = 0; s < ADVEX_EVAL_MAX_STAGES; s++) res->stage_seconds[s] += e->stage_seconds[s];
        if (e->adv_min <= e->adv_max) {
            if (!finite || e->adv_min < res->adv_min) res->adv_min = e->adv_min;
            if (!finite || e->adv_max > res->adv_max) res->adv_max = e->adv_max;
            finite = 1;
        }
        if (!clean_ok || robust) continue;
        /* a success: its norm, its queries, the stage that found it */
        nv[res->norm_count++] = e->norms[ni];
        if (cq && e->queries > 0) qv[res->queries_count++] = (double)e->queries;
        if (res->n_stages && e->stage >= 1 && e->stage <= res->n_stages) res->stage_removed[e->stage - 1]++;
    }
    res->n = n;
    res->seconds = seconds;
    res->robust_all = res->robust_correct; /* a sweep makes it the running worst case */
    double staged = 0;
    for (int s = 0; s < ADVEX_EVAL_MAX_STAGES; s++) staged += res->stage_seconds[s];
    for (int s = 0; s < ADVEX_EVAL_MAX_STAGES; s++) res->stage_seconds[s] *= staged > 0 ? seconds / staged : 0;
    res->robust_accuracy = n ? (double)res->robust_correct / (double)n : 0.0;
    res->success_rate = res->clean_correct ? 1.0 - (double)res->robust_correct / (double)res->clean_correct : 0.0;
    advex_mean_median(nv, res->norm_count, &res->norm_mean, &res->norm_median);
    advex_mean_median(qv, res->queries_count, &res->queries_mean, &res->queries_median);
    advex_eval_flag_masking(res, 1);
    free(nv);
    free(qv);
    return ADVEX_OK;
}

/* One whole evaluation: every example's outcome, then the result and the caller's outputs. */
static advex_status eval_core(advex_model *am, advex_model *em, const advex_dataset *d, const advex_attack_config *c,
                              int64_t batch, advex_progress_fn progress, void *user, const advex_eval_outputs *out,
                              advex_eval_result *res) {
    static const advex_eval_outputs none = {0};
    if (!out) out = &none;
    advex_status st = check_models(am, em, d);
    if (st) return st;
    advex_eval_example *ex = malloc((size_t)(d->n ? d->n : 1) * sizeof *ex);
    if (!ex) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory for %lld examples' outcomes", (long long)d->n);
    double t0 = advex_now();
    st = examples_core(am, em, d, c, batch, 0, d->n, progress, user, ex, out->adv);
    if (!st) st = advex_eval_summarize(d, c, am != em, ex, advex_now() - t0, res);
    for (int64_t i = 0; !st && i < d->n; i++) {
        if (out->clean_pred) out->clean_pred[i] = ex[i].clean_pred;
        if (out->clean_conf) out->clean_conf[i] = ex[i].clean_conf;
        if (out->adv_pred) out->adv_pred[i] = ex[i].adv_pred;
        if (out->adv_conf) out->adv_conf[i] = ex[i].adv_conf;
    }
    free(ex);
    return st;
}

advex_status advex_eval_attack(advex_model *m, const advex_dataset *d, const advex_attack_config *c, int64_t batch,
                               advex_progress_fn progress, void *user, float *adv_out, advex_eval_result *res) {
    advex_eval_outputs o = {0};
    o.adv = adv_out;
    return eval_core(m, m, d, c, batch, progress, user, &o, res);
}

advex_status advex_eval_run(advex_model *m, advex_model *surrogate, const advex_dataset *d, const advex_attack_config *c,
                            int64_t batch, advex_progress_fn progress, void *user, const advex_eval_outputs *out,
                            advex_eval_result *res) {
    return eval_core(surrogate ? surrogate : m, m, d, c, batch, progress, user, out, res);
}

advex_status advex_eval_transfer(advex_model *surrogate, advex_model *target, const advex_dataset *d,
                                 const advex_attack_config *c, int64_t batch, advex_progress_fn progress, void *user,
                                 float *adv_out, advex_eval_result *res) {
    advex_eval_outputs o = {0};
    o.adv = adv_out;
    return eval_core(surrogate, target, d, c, batch, progress, user, &o, res);
}

advex_status advex_eval_uap(advex_model *m, const advex_dataset *d, const float *delta, float eps, int64_t batch,
                            double *fooling_rate, advex_eval_result *res) {
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_UAP;
    c.eps = eps;
    c.uap_delta = delta;
    advex_status st = check_data(m, d);
    if (st) return st;
    if (batch <= 0) batch = 256;
    int64_t dim = d->c * d->h * d->w, k = m->net->classes;
    float *z = malloc((size_t)(batch * k) * sizeof(float)), *xa = malloc((size_t)(batch * dim) * sizeof(float));
    int32_t *p0 = malloc((size_t)batch * sizeof(int32_t)), *p1 = malloc((size_t)batch * sizeof(int32_t));
    if (!z || !xa || !p0 || !p1) { free(z); free(xa); free(p0); free(p1); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); }
    int64_t changed = 0;
    for (int64_t i = 0; i < d->n && !st; i += batch) {
        int64_t b = d->n - i < batch ? d->n - i : batch;
        advex_model_seed_batch(m, i, ADVEX_DRAW_CLEAN, 0);
        if ((st = advex_model_forward(m, d->x + i * dim, b, z))) break;
        advex_argmax_rows(z, b, k, p0);
        if ((st = advex_attack_batch(m, &c, d->x + i * dim, d->y + i, b, i, xa))) break;
        advex_model_seed_batch(m, i, ADVEX_DRAW_JUDGE, c.kind);
        if ((st = advex_model_forward(m, xa, b, z))) break;
        advex_argmax_rows(z, b, k, p1);
        for (int64_t j = 0; j < b; j++) changed += p0[j] != p1[j];
    }
    free(z); free(xa); free(p0); free(p1);
    if (st) return st;
    *fooling_rate = d->n ? (double)changed / (double)d->n : 0.0;
    return advex_eval_attack(m, d, &c, batch, NULL, NULL, NULL, res);
}

int64_t advex_eval_masking_margin(int64_t n) {
    int64_t frac = (2 * n + 999) / 1000; /* ceil(0.002 n) */
    return frac > 3 ? frac : 3;
}

static int iterative_white_box(advex_attack_kind k) {
    return k == ADVEX_ATTACK_BIM || k == ADVEX_ATTACK_PGD || k == ADVEX_ATTACK_MIFGSM || k == ADVEX_ATTACK_APGD_CE ||
           k == ADVEX_ATTACK_APGD_DLR || k == ADVEX_ATTACK_APGD_T;
}

int advex_eval_flag_masking(advex_eval_result *r, int count) {
    int flagged = 0;
    for (int i = 0; i < count; i++) {
        int64_t margin = advex_eval_masking_margin(r[i].n), found = 0;
        if (r[i].transfer) continue;
        if (r[i].attack == ADVEX_ATTACK_STANDARD) {
            for (int s = 0; s < r[i].n_stages; s++)
                if (r[i].stage_attack[s] == ADVEX_ATTACK_SQUARE) found += r[i].stage_removed[s];
        } else if (r[i].attack == ADVEX_ATTACK_SQUARE) {
            int64_t best = -1; /* lowest white-box robust count */
            for (int j = 0; j < count; j++)
                if (iterative_white_box(r[j].attack) && !r[j].transfer && r[j].eps == r[i].eps &&
                    r[j].norm == r[i].norm && r[j].n == r[i].n && (best < 0 || r[j].robust_correct < best))
                    best = r[j].robust_correct;
            if (best >= 0) found = best - r[i].robust_correct;
        }
        if (found > margin) {
            r[i].warnings |= ADVEX_EVAL_WARN_BLACKBOX_WINS;
            flagged++;
        }
    }
    return flagged;
}

const char *advex_eval_warning_str(unsigned bit) {
    switch (bit) {
    case ADVEX_EVAL_WARN_PROB_OUTPUT:
        return "check_range_output: the model's outputs look like probabilities (rows in [0,1] summing to 1): "
               "attacks need logits, gradients through a softmax saturate and overstate robustness";
    case ADVEX_EVAL_WARN_ZERO_GRAD:
        return "check_zero_gradients: the input gradient is exactly zero for many examples: gradient attacks "
               "cannot move them (gradient masking?); trust the black-box results";
    case ADVEX_EVAL_WARN_BLACKBOX_WINS:
        return "check_square_sr: the black-box Square attack broke more examples than every white-box attack at "
               "the same eps missed (beyond max(3 examples, 0.2%), AutoAttack's rule): a sign of gradient masking; "
               "the white-box numbers overstate robustness";
    case ADVEX_EVAL_WARN_NONDETERMINISTIC:
        return "check_determinism: two runs of the attack with the same seed gave different results: the model or "
               "attack is not deterministic (train-mode layers?)";
    case ADVEX_EVAL_WARN_RANDOMIZED:
        return "check_randomized: repeated forward passes of the same input differ: a randomized defence; attack "
               "it with expectation over transformation (--version rand, --eot K)";
    case ADVEX_EVAL_WARN_NONFINITE_GRAD:
        return "check_nonfinite_gradients: the input gradient has NaN or Inf entries: gradient attacks cannot use it "
               "(gradient masking?); trust the black-box results";
    default: return "unknown warning";
    }
}

advex_status advex_eval_checks(advex_model *m, const advex_dataset *d, const advex_attack_config *c,
                               unsigned *warnings) {
    advex_status st = check_data(m, d);
    if (st) return st;
    int64_t n = d->n < 64 ? d->n : 64, dim = d->c * d->h * d->w, k = m->net->classes;
    if (n == 0) return ADVEX_OK;
    unsigned before = *warnings;
    float *z = malloc((size_t)(n * k) * sizeof(float)), *g = malloc((size_t)(n * dim) * sizeof(float));
    float *a1 = malloc((size_t)(8 * dim) * sizeof(float)), *a2 = malloc((size_t)(8 * dim) * sizeof(float));
    if (!z || !g || !a1 || !a2) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
    if ((st = advex_model_forward(m, d->x, n, z))) goto done;
    int prob_rows = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        int in01 = 1;
        for (int64_t j = 0; j < k; j++) { s += z[i * k + j]; in01 &= z[i * k + j] >= 0 && z[i * k + j] <= 1; }
        prob_rows += in01 && fabs(s - 1.0) < 1e-3;
    }
    if (advex_model_output_was_prob(m) || prob_rows == n) *warnings |= ADVEX_EVAL_WARN_PROB_OUTPUT;
    if ((st = advex_eval_check_randomized(m, d->x, d->y, n, warnings))) goto done;
    if ((st = advex_model_input_grad(m, d->x, d->y, n, ADVEX_LOSS_CE, g, NULL, NULL))) {
        if (st != ADVEX_ERR_NUMERIC) goto done;
        advex_clear_error(); /* a non-finite gradient is what this check looks for */
        *warnings |= ADVEX_EVAL_WARN_NONFINITE_GRAD;
        st = ADVEX_OK;
        goto done;
    }
    int64_t zero = 0;
    for (int64_t i = 0; i < n; i++) {
        int allz = 1;
        for (int64_t j = 0; j < dim && allz; j++) allz = g[i * dim + j] == 0.0f;
        zero += allz;
    }
    if (zero * 10 > n) *warnings |= ADVEX_EVAL_WARN_ZERO_GRAD; /* more than 10% */
    if (c && c->kind != ADVEX_ATTACK_NONE && c->eps > 0) {
        /* any budget shows a model that is not deterministic: capped, so the check of a costly
         * attack (C&W's 9 x 1000 steps, standard) stays cheap */
        advex_attack_config q = *c;
        q.steps = q.steps > 0 && q.steps < 20 ? q.steps : 20;
        q.binary_steps = q.binary_steps > 0 && q.binary_steps < 2 ? q.binary_steps : 2;
        q.queries = q.queries > 0 && q.queries < 200 ? q.queries : 200;
        q.topk = q.topk > 0 && q.topk < 2 ? q.topk : 2;
        q.restarts = q.restarts < 1 ? q.restarts : 1;
        int64_t r = n < 8 ? n : 8;
        if ((st = advex_attack_batch(m, &q, d->x, d->y, r, 0, a1))) goto done;
        if ((st = advex_attack_batch(m, &q, d->x, d->y, r, 0, a2))) goto done;
        /* (a randomized model explains it: that warning is the one to read) */
        if (memcmp(a1, a2, (size_t)(r * dim) * sizeof(float)) != 0 && !(*warnings & ADVEX_EVAL_WARN_RANDOMIZED))
            *warnings |= ADVEX_EVAL_WARN_NONDETERMINISTIC;
    }
done:
    /* attacking with EOT is the answer to a randomized model (AutoAttack's rand version skips
     * check_randomized): its runs differ by design */
    if (c && c->eot > 1)
        *warnings &= before | ~(ADVEX_EVAL_WARN_RANDOMIZED | ADVEX_EVAL_WARN_NONDETERMINISTIC);
    free(z); free(g); free(a1); free(a2);
    return st;
}
