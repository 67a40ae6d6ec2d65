/* advex_eval_sweep: every attack of a list at every eps on a data set (what `advex eval` and
 * `advex demo` run): the configurations checked up front, the sanity checks, universal
 * perturbations computed per eps, the gradient-masking rule over the whole table, and what a
 * report needs kept (per-example predictions, image-grid rows). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct advex_sweep {
    int runs, n_attacks, n_eps;
    advex_eval_result *res;  /* (runs) attack-major */
    unsigned warnings;
    float **uap;             /* (runs) the uap runs' perturbations (C,H,W), else NULL */
    /* kept for a report (keep_rows > 0) */
    int64_t n, dim, rows;
    int32_t *clean_pred;     /* (n) */
    float *clean_conf;       /* (n) */
    int32_t *adv_pred;       /* (runs, n) */
    int *top;                /* (n_attacks) the run of each attack's largest eps */
    int64_t *grid_idx;       /* (n_attacks, rows) examples of its grid, successes first */
    float *grid_x;           /* (n_attacks, rows, dim) their adversarial examples */
    int32_t *grid_pred;      /* (n_attacks, rows) predictions on them */
    float *grid_conf;        /* (n_attacks, rows) and their confidences */
    /* every run's per-example records (state.c), the labels, each attack's curve (curve.c) */
    advex_records rec;
    int32_t *y;              /* (n) */
    int *curve_n;            /* (n_attacks) points of each attack's curve, 0: not minimal */
    float *curve_eps;        /* (n_attacks, ADVEX_SWEEP_MAX_EPS) */
    double *curve_acc;       /* (n_attacks, ADVEX_SWEEP_MAX_EPS) */
    /* the running worst case (advex_eval_result.robust_all) */
    unsigned char *robust;   /* (n_eps * 3 norms, n): robust to every attack so far */
};

void advex_sweep_config_default(advex_sweep_config *c) {
    memset(c, 0, sizeof *c);
    advex_attack_config_default(&c->attack);
    c->batch = 256;
    c->checks = 1;
}

void advex_sweep_free(advex_sweep *s) {
    if (!s) return;
    for (int i = 0; s->uap && i < s->runs; i++) free(s->uap[i]);
    free(s->uap);
    free(s->res);
    free(s->clean_pred); free(s->clean_conf); free(s->adv_pred); free(s->top);
    free(s->grid_idx); free(s->grid_x); free(s->grid_pred); free(s->grid_conf);
    advex_records_free(&s->rec);
    free(s->y); free(s->curve_n); free(s->curve_eps); free(s->curve_acc);
    free(s->robust);
    free(s);
}

int advex_sweep_runs(const advex_sweep *s) { return s ? s->runs : 0; }
const advex_eval_result *advex_sweep_result(const advex_sweep *s, int i) {
    return s && i >= 0 && i < s->runs ? &s->res[i] : NULL;
}
unsigned advex_sweep_warnings(const advex_sweep *s) { return s ? s->warnings : 0; }
const advex_eval_example *advex_sweep_examples(const advex_sweep *s, int i) {
    return s && i >= 0 && i < s->runs ? s->rec.ex + (int64_t)i * s->rec.n : NULL;
}
const float *advex_sweep_uap_delta(const advex_sweep *s, int i) {
    return s && i >= 0 && i < s->runs ? s->uap[i] : NULL;
}

/* Every run's configuration, before anything runs: a bad one fails at once, naming it. */
static advex_status check_config(advex_model *m, const advex_dataset *d, const advex_sweep_config *c) {
    if (c->n_attacks < 1 || c->n_attacks > ADVEX_SWEEP_MAX_ATTACKS || !c->attacks)
        return advex_set_error(ADVEX_ERR_ARG, "sweep: %d attacks (1..%d)", c->n_attacks, ADVEX_SWEEP_MAX_ATTACKS);
    if (c->n_eps < 1 || c->n_eps > ADVEX_SWEEP_MAX_EPS || !c->eps)
        return advex_set_error(ADVEX_ERR_ARG, "sweep: %d eps values (1..%d)", c->n_eps, ADVEX_SWEEP_MAX_EPS);
    if (c->shard_hi > 0 && (c->shard_lo < 0 || c->shard_lo > c->shard_hi || c->shard_hi > d->n))
        return advex_set_error(ADVEX_ERR_ARG, "sweep: shard [%lld, %lld) outside the %lld examples",
                               (long long)c->shard_lo, (long long)c->shard_hi, (long long)d->n);
    if (c->target) {
        if (c->shard_hi > 0 || c->gather || c->keep_rows > 0)
            return advex_set_error(ADVEX_ERR_ARG, "sweep: a target is evaluated by one process, without a report");
    } else if (!m) {
        return advex_set_error(ADVEX_ERR_ARG, "sweep: no model and no target");
    }
    advex_model *am = c->surrogate ? c->surrogate : m;
    for (int a = 0; a < c->n_attacks; a++) {
        advex_attack_config ac = c->attack;
        ac.kind = c->attacks[a];
        if (ac.kind != ADVEX_ATTACK_STANDARD) ac.version = ADVEX_AA_STANDARD; /* (a version is standard's) */
        if (c->default_norms) ac.norm = advex_attack_default_norm(ac.kind);
        ac.no_early_stop = c->surrogate != NULL;
        if (ac.kind == ADVEX_ATTACK_UAP) {
            static const float placeholder = 0.0f; /* (checked here; computed per eps) */
            ac.uap_delta = &placeholder;
            const advex_dataset *u = c->uap_data;
            if (!u || !u->y || u->c != d->c || u->h != d->h || u->w != d->w)
                return advex_set_error(ADVEX_ERR_ARG, "uap: no data to compute the perturbation on, or its images or "
                                       "labels do not fit the model");
        }
        if (c->target && ac.kind == ADVEX_ATTACK_UAP)
            return advex_set_error(ADVEX_ERR_ARG, "uap: not through a target");
        for (int e = 0; e < c->n_eps; e++) {
            ac.eps = c->eps[e];
            advex_status st = c->target ? advex_target_check_run(c->target, c->surrogate, d, &ac)
                                        : advex_attack_check(am, &ac);
            if (st) return st;
        }
    }
    return ADVEX_OK;
}

static advex_status keep_alloc(advex_sweep *s, const advex_sweep_config *c, int64_t n, int64_t dim) {
    s->n = n;
    s->dim = dim;
    s->rows = c->keep_rows < n ? c->keep_rows : n;
    int64_t na = c->n_attacks, rows = s->rows;
    s->clean_pred = malloc((size_t)n * sizeof(int32_t));
    s->clean_conf = malloc((size_t)n * sizeof(float));
    s->adv_pred = malloc((size_t)(s->runs * n) * sizeof(int32_t));
    s->grid_idx = malloc((size_t)(na * rows + 1) * sizeof(int64_t));
    s->grid_x = malloc((size_t)(na * rows * dim + 1) * sizeof(float));
    s->grid_pred = malloc((size_t)(na * rows + 1) * sizeof(int32_t));
    s->grid_conf = malloc((size_t)(na * rows + 1) * sizeof(float));
    if (!s->clean_pred || !s->clean_conf || !s->adv_pred || !s->grid_idx || !s->grid_x || !s->grid_pred ||
        !s->grid_conf)
        return advex_set_error(ADVEX_ERR_NOMEM, "out of memory for what a report keeps (%lld examples)", (long long)n);
    return ADVEX_OK;
}

/* After attack a's largest-eps run r: its grid rows, successes (clean-correct, now wrong)
 * first, then the rest in order. */
static void keep_grid(advex_sweep *s, const advex_dataset *d, int a, int r, const float *xadv, const float *conf) {
    const int32_t *ap = s->adv_pred + (int64_t)r * s->n;
    int64_t m = 0, *idx = s->grid_idx + a * s->rows;
    for (int pass = 0; pass < 2 && m < s->rows; pass++)
        for (int64_t i = 0; i < s->n && m < s->rows; i++) {
            int success = s->clean_pred[i] == d->y[i] && ap[i] != d->y[i];
            if (success == (pass == 0)) idx[m++] = i;
        }
    for (int64_t j = 0; j < s->rows; j++) {
        memcpy(s->grid_x + (a * s->rows + j) * s->dim, xadv + idx[j] * s->dim, (size_t)s->dim * sizeof(float));
        s->grid_pred[a * s->rows + j] = ap[idx[j]];
        s->grid_conf[a * s->rows + j] = conf[idx[j]];
    }
}

/* Run r = attack a at eps e. */
static advex_status run_one(advex_model *m, const advex_dataset *d, const advex_sweep_config *c, advex_sweep *s,
                            int a, int e, float *xadv, float *conf) {
    int r = a * c->n_eps + e;
    advex_attack_config ac = c->attack;
    ac.kind = c->attacks[a];
    if (ac.kind != ADVEX_ATTACK_STANDARD) ac.version = ADVEX_AA_STANDARD;
    if (c->default_norms) ac.norm = advex_attack_default_norm(ac.kind);
    ac.eps = c->eps[e];
    advex_status st;
    if (ac.kind == ADVEX_ATTACK_UAP) {
        const advex_dataset *u = c->uap_data;
        int64_t dim = d->c * d->h * d->w;
        if (!(s->uap[r] = malloc((size_t)dim * sizeof(float))))
            return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        if ((st = advex_uap_compute(c->surrogate ? c->surrogate : m, &ac, u->x, u->y, u->n,
                                    c->uap_epochs > 0 ? c->uap_epochs : 5, c->uap_batch > 0 ? c->uap_batch : 128,
                                    s->uap[r])))
            return st;
        ac.uap_delta = s->uap[r];
    }
    float *adv = s->rows > 0 && r == s->top[a] ? xadv : NULL; /* the report's grid: x' of this run */
    if ((st = advex_records_run(&s->rec, r, m, d, c, &ac, adv, &s->res[r]))) return st;
    const advex_eval_example *ex = s->rec.ex + (int64_t)r * d->n;
    for (int64_t j = 0; s->rows > 0 && j < d->n; j++) {
        s->clean_pred[j] = ex[j].clean_pred;
        s->clean_conf[j] = ex[j].clean_conf;
        s->adv_pred[(int64_t)r * d->n + j] = ex[j].adv_pred;
        conf[j] = ex[j].adv_conf;
    }
    /* the worst case so far at this eps and norm, example by example (from the records, so a
     * resumed sweep has it too) */
    unsigned char *rb = s->robust + ((int64_t)e * 3 + advex_norm_index(s->res[r].norm)) * d->n;
    int64_t all = 0;
    for (int64_t j = 0; j < d->n; j++) {
        rb[j] &= ex[j].clean_pred == d->y[j] && ex[j].adv_pred == d->y[j];
        all += rb[j];
    }
    s->res[r].robust_all = all;
    if (s->rows > 0 && r == s->top[a]) keep_grid(s, d, a, r, xadv, conf);
    return ADVEX_OK;
}

advex_status advex_eval_sweep(advex_model *m, const advex_dataset *d, const advex_sweep_config *c, advex_sweep **out) {
    *out = NULL;
    advex_status st = check_config(m, d, c);
    if (st) return st;
    advex_sweep *s = calloc(1, sizeof *s);
    if (!s) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    s->n_attacks = c->n_attacks;
    s->n_eps = c->n_eps;
    s->runs = c->n_attacks * c->n_eps;
    s->res = calloc((size_t)s->runs, sizeof *s->res);
    s->uap = calloc((size_t)s->runs, sizeof *s->uap);
    s->top = calloc((size_t)c->n_attacks, sizeof(int));
    s->y = malloc((size_t)(d->n ? d->n : 1) * sizeof(int32_t));
    s->curve_n = calloc((size_t)c->n_attacks, sizeof(int));
    s->curve_eps = malloc((size_t)c->n_attacks * ADVEX_SWEEP_MAX_EPS * sizeof(float));
    s->curve_acc = malloc((size_t)c->n_attacks * ADVEX_SWEEP_MAX_EPS * sizeof(double));
    float *xadv = NULL, *conf = NULL;
    int64_t dim = d->c * d->h * d->w;
    s->robust = malloc((size_t)(c->n_eps * 3 * d->n + 1));
    if (!s->res || !s->uap || !s->top || !s->y || !s->curve_n || !s->curve_eps || !s->curve_acc || !s->robust) {
        st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        goto done;
    }
    memset(s->robust, 1, (size_t)(c->n_eps * 3 * d->n));
    memcpy(s->y, d->y, (size_t)d->n * sizeof(int32_t));
    for (int a = 0; a < c->n_attacks; a++) {
        s->top[a] = a * c->n_eps;
        for (int e = 1; e < c->n_eps; e++)
            if (c->eps[e] > c->eps[s->top[a] - a * c->n_eps]) s->top[a] = a * c->n_eps + e;
    }
    if ((st = advex_records_open(&s->rec, m, d, c))) goto done;
    if (c->keep_rows > 0 && d->n > 0) {
        if ((st = keep_alloc(s, c, d->n, dim))) goto done;
        xadv = malloc((size_t)(d->n * dim) * sizeof(float));
        conf = malloc((size_t)d->n * sizeof(float));
        if (!xadv || !conf) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory for the report's grids"); goto done; }
    }
    if (c->checks && !c->target) { /* (they need the model's gradients) */
        /* the determinism check reruns the first attack (at the last eps) on a few examples;
         * a uap has no perturbation yet. A failing check is not fatal: the runs report errors. */
        advex_attack_config chk = c->attack;
        chk.kind = c->attacks[0];
        if (chk.kind != ADVEX_ATTACK_STANDARD) chk.version = ADVEX_AA_STANDARD;
        if (c->default_norms) chk.norm = advex_attack_default_norm(chk.kind);
        chk.eps = c->eps[c->n_eps - 1];
        if (advex_eval_checks(m, d, chk.kind == ADVEX_ATTACK_UAP ? NULL : &chk, &s->warnings)) advex_clear_error();
    }
    for (int a = 0; a < c->n_attacks && !st; a++)
        for (int e = 0; e < c->n_eps && !st; e++) st = run_one(m, d, c, s, a, e, xadv, conf);
    if (!st) {
        advex_eval_flag_masking(s->res, s->runs);
        for (int r = 0; r < s->runs; r++) s->warnings |= s->res[r].warnings;
        st = advex_curves_compute(s, c);
    }
done:
    free(xadv);
    free(conf);
    if (st) advex_sweep_free(s);
    else *out = s;
    return st;
}

/* ---- what the report reads (internal.h) --------------------------------------------------- */

int64_t advex_sweep_kept_rows(const advex_sweep *s) { return s->rows; }
int advex_sweep_attacks(const advex_sweep *s) { return s->n_attacks; }
int advex_sweep_eps_count(const advex_sweep *s) { return s->n_eps; }
int advex_sweep_top_run(const advex_sweep *s, int a) { return s->top[a]; }
int64_t advex_sweep_resumed(const advex_sweep *s) { return s ? s->rec.resumed : 0; }
const advex_records *advex_sweep_records(const advex_sweep *s) { return &s->rec; }
const int32_t *advex_sweep_labels(const advex_sweep *s) { return s->y; }
void advex_sweep_curve_storage(advex_sweep *s, int **count, float **eps, double **acc) {
    *count = s->curve_n;
    *eps = s->curve_eps;
    *acc = s->curve_acc;
}
const int32_t *advex_sweep_clean_pred(const advex_sweep *s) { return s->clean_pred; }
const float *advex_sweep_clean_conf(const advex_sweep *s) { return s->clean_conf; }
const int32_t *advex_sweep_adv_pred(const advex_sweep *s, int r) { return s->adv_pred + (int64_t)r * s->n; }
void advex_sweep_grid(const advex_sweep *s, int a, const int64_t **idx, const float **xadv, const int32_t **pred,
                      const float **conf) {
    *idx = s->grid_idx + a * s->rows;
    *xadv = s->grid_x + a * s->rows * s->dim;
    *pred = s->grid_pred + a * s->rows;
    *conf = s->grid_conf + a * s->rows;
}
