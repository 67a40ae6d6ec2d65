/* Training runs: the settings (defaults, checks, schedules), and advex_train's loop over
 * epochs: seeded shuffling, mini-batches through the trainer (trainer.c), per-epoch held-out
 * evaluation, the catastrophic-overfitting guard and checkpoints (checkpoint.c) that --resume
 * continues bit-exactly. See docs/training.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_internal.h"

void advex_train_config_default(advex_train_config *c) {
    memset(c, 0, sizeof *c);
    c->epochs = 3;
    c->batch = 128;
    c->opt = ADVEX_OPT_ADAM;
    c->lr = 3e-3f;
    c->schedule = ADVEX_LR_ONECYCLE;
    c->momentum = 0.9f;
    c->weight_decay = 0.0f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->adam_eps = 1e-8f;
    c->seed = 0;
    c->adv = ADVEX_ADV_NONE;
    c->eps = 0.0f;
    c->alpha = 0.0f;
    c->adv_weight = -1.0f;
    c->pgd_steps = 0;
    c->pgd_from_epoch = 0;
    c->beta = -1.0f;
    c->eps_ramp = 0;
    c->holdout = 0;
    c->holdout_steps = 0;
    c->overfit_drop = 0.0f;
    c->checkpoint = NULL;
    c->resume = 0;
}

static const char *adv_names[] = {"none", "fgsm", "fgsm-rs", "pgd", "trades"};

advex_status advex_adv_mode_parse(const char *s, advex_adv_mode *out) {
    for (int i = 0; i < 5; i++)
        if (s && strcmp(s, adv_names[i]) == 0) { *out = (advex_adv_mode)i; return ADVEX_OK; }
    return advex_set_error(ADVEX_ERR_ARG, "unknown adversarial training mode '%s' (none, fgsm, fgsm-rs, pgd, trades)",
                           s ? s : "");
}

const char *advex_adv_mode_name(advex_adv_mode m) {
    return (unsigned)m < 5 ? adv_names[m] : "?";
}

advex_status advex_train_config_check(const advex_train_config *c) {
    if (c->epochs < 0 || c->batch <= 0 || !(c->lr > 0) || !isfinite(c->lr))
        return advex_set_error(ADVEX_ERR_ARG, "bad training settings (epochs %d, batch %lld, lr %g)", c->epochs,
                               (long long)c->batch, (double)c->lr);
    if ((unsigned)c->adv > ADVEX_ADV_TRADES) return advex_set_error(ADVEX_ERR_ARG, "unknown adversarial mode %d", (int)c->adv);
    if (!isfinite(c->eps) || c->eps < 0 || c->eps > 1)
        return advex_set_error(ADVEX_ERR_ARG, "eps %g outside [0, 1]", (double)c->eps);
    if (c->adv != ADVEX_ADV_NONE && !(c->eps > 0))
        return advex_set_error(ADVEX_ERR_ARG, "adversarial training (%s) needs eps > 0", advex_adv_mode_name(c->adv));
    if (!isfinite(c->alpha) || c->alpha > 1) return advex_set_error(ADVEX_ERR_ARG, "alpha %g outside (0, 1]", (double)c->alpha);
    if (!isfinite(c->adv_weight) || c->adv_weight > 1)
        return advex_set_error(ADVEX_ERR_ARG, "adv-weight %g outside [0, 1]", (double)c->adv_weight);
    if (c->adv == ADVEX_ADV_TRADES && c->adv_weight > 0)
        return advex_set_error(ADVEX_ERR_ARG, "adv-weight does not apply to trades (its clean term is always there; use beta)");
    if (c->pgd_steps < 0 || c->pgd_steps > 1000) return advex_set_error(ADVEX_ERR_ARG, "pgd-steps %d outside [1, 1000]", c->pgd_steps);
    if (c->pgd_from_epoch < 0 || (c->pgd_from_epoch > 0 && c->adv != ADVEX_ADV_PGD && c->adv != ADVEX_ADV_TRADES))
        return advex_set_error(ADVEX_ERR_ARG, "pgd-from needs --adv pgd or trades (and a value >= 1)");
    if (!isfinite(c->beta) || c->beta > 1000) return advex_set_error(ADVEX_ERR_ARG, "beta %g outside [0, 1000]", (double)c->beta);
    if (c->eps_ramp < 0 || c->eps_ramp > c->epochs)
        return advex_set_error(ADVEX_ERR_ARG, "eps-ramp %d outside [0, epochs = %d]", c->eps_ramp, c->epochs);
    if (c->holdout < 0) return advex_set_error(ADVEX_ERR_ARG, "holdout %lld < 0", (long long)c->holdout);
    if (c->holdout_steps < 0 || c->holdout_steps > 1000)
        return advex_set_error(ADVEX_ERR_ARG, "holdout-steps %d outside [1, 1000]", c->holdout_steps);
    if (!isfinite(c->overfit_drop)) return advex_set_error(ADVEX_ERR_ARG, "overfit-drop is not finite");
    if (c->resume && !c->checkpoint) return advex_set_error(ADVEX_ERR_ARG, "resume needs a checkpoint file");
    if (c->ranks > 1 && (c->rank < 0 || c->rank >= c->ranks || !c->allreduce))
        return advex_set_error(ADVEX_ERR_ARG, "data-parallel training: rank %d of %d%s", c->rank, c->ranks,
                               c->allreduce ? "" : " without an all-reduce");
    return ADVEX_OK;
}

int advex_train_overfit_check(const double *pgd, const double *fgsm, int n, double drop) {
    if (n < 2 || drop > 1) return 0;
    int best = 0;
    for (int i = 1; i < n - 1; i++) if (pgd[i] > pgd[best]) best = i;
    return pgd[best] - pgd[n - 1] > drop && fgsm[n - 1] >= fgsm[best];
}

advex_status advex_lr_schedule_parse(const char *s, advex_lr_schedule *out) {
    static const char *names[] = {"constant", "cosine", "onecycle", "step"};
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, names[i]) == 0) { *out = (advex_lr_schedule)i; return ADVEX_OK; }
    return advex_set_error(ADVEX_ERR_ARG, "unknown learning-rate schedule '%s' (constant, cosine, onecycle, step)",
                           s ? s : "");
}

float advex_lr_at(advex_lr_schedule s, float lr, double t) {
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    switch (s) {
    case ADVEX_LR_COSINE: return (float)(lr * 0.5 * (1.0 + cos(3.14159265358979323846 * t)));
    case ADVEX_LR_ONECYCLE: return (float)(t < 0.4 ? lr * t / 0.4 : lr * (1.0 - t) / 0.6);
    case ADVEX_LR_STEP: return t < 0.5 ? lr : (t < 0.75 ? lr * 0.1f : lr * 0.01f);
    case ADVEX_LR_CONSTANT: break;
    }
    return lr;
}

/* Held-out accuracies (clean, FGSM, PGD-k with one random start) at the full eps. */
static advex_status holdout_eval(advex_model *m, const advex_dataset *d, int64_t n_train, const advex_train_config *c,
                                 advex_train_progress *p) {
    int64_t dim = d->c * d->h * d->w;
    advex_dataset v = *d;
    v.x = d->x + n_train * dim;
    v.y = d->y + n_train;
    v.n = c->holdout;
    int64_t correct = 0;
    advex_status st = advex_eval_clean(m, &v, 256, &correct);
    if (st) return st;
    p->val_clean = (double)correct / (double)v.n;
    p->val_fgsm = p->val_pgd = p->val_clean;
    if (!(c->eps > 0)) return ADVEX_OK;
    advex_attack_config ac;
    advex_attack_config_default(&ac);
    ac.eps = c->eps;
    ac.seed = c->seed ^ 0x401d0u;
    ac.kind = ADVEX_ATTACK_FGSM;
    advex_eval_result r;
    if ((st = advex_eval_attack(m, &v, &ac, 256, NULL, NULL, NULL, &r))) return st;
    p->val_fgsm = r.robust_accuracy;
    ac.kind = ADVEX_ATTACK_PGD;
    ac.steps = c->holdout_steps > 0 ? c->holdout_steps : 10;
    ac.restarts = 1;
    if ((st = advex_eval_attack(m, &v, &ac, 256, NULL, NULL, NULL, &r))) return st;
    p->val_pgd = r.robust_accuracy;
    return ADVEX_OK;
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* Parameters and constants (BatchNorm running statistics) of the model <-> a copy. */
static void snapshot(const advex_net *net, float *p, float *cst) {
    memcpy(p, net->params, (size_t)net->n_params * sizeof(float));
    if (net->n_consts) memcpy(cst, net->consts, (size_t)net->n_consts * sizeof(float));
}
static void restore(advex_net *net, const float *p, const float *cst) {
    memcpy(net->params, p, (size_t)net->n_params * sizeof(float));
    if (net->n_consts) memcpy(net->consts, cst, (size_t)net->n_consts * sizeof(float));
}

/* A run's state around the trainer: what a checkpoint carries (S) and the loop's progress. */
typedef struct run {
    advex_model *m;
    const advex_dataset *d;
    const advex_train_config *c;    /* the caller's, with the batch at most the training set */
    const advex_train_config *orig; /* the caller's as given (a checkpoint's identity) */
    advex_trainer *t;
    train_state S;
    float *buf;          /* best_params, best_consts, perm, hist */
    int64_t n, batches;  /* training examples (after the held-out ones), batches per epoch */
    advex_train_progress p;
    advex_train_progress_fn progress;
    void *user;
    double t0;
} run;

static advex_status run_init(run *r) {
    const advex_train_config *c = r->c;
    advex_model *m = r->m;
    int64_t np = m->net->n_params, nc = m->net->n_consts, n = r->n;
    int64_t total = np + nc + n + 4 * (int64_t)c->epochs + 16;
    if (!(r->buf = advex_falloc(total))) return advex_alloc_error(total, "the training state");
    memset(r->buf, 0, (size_t)total * sizeof(float));
    train_state *S = &r->S;
    S->best_params = r->buf;                            /* (np) weights of the best held-out PGD epoch */
    S->best_consts = S->best_params + np;               /* (nc) */
    S->perm = (int32_t *)(S->best_consts + nc);         /* (n) shuffled order */
    S->hist = (double *)(void *)(((uintptr_t)(S->perm + n) + 15) & ~(uintptr_t)15); /* (2 epochs) */
    S->m1 = r->t->m1;
    S->m2 = r->t->m2;
    S->params = m->net->params;
    S->consts = m->net->consts;
    S->n_params = np;
    S->n_consts = nc;
    S->n_train = n;
    S->batch = r->orig->batch;
    S->epochs = c->epochs;
    S->adv = (int32_t)c->adv;
    S->seed = c->seed;
    advex_rng_seed(&S->rng, c->seed);
    for (int64_t i = 0; i < n; i++) S->perm[i] = (int32_t)i;
    r->p.epochs = c->epochs;
    r->batches = (n + c->batch - 1) / c->batch;
    if (c->resume && c->checkpoint && file_exists(c->checkpoint)) {
        advex_status st = advex_ckpt_load(c->checkpoint, S);
        if (st) return st;
        if ((st = advex_net_check_weights(m->net))) /* BatchNorm statistics from the file */
            return advex_error_prefix(st, c->checkpoint);
        m->train->rng = S->model_rng;
        r->t->step = S->step;
        r->p.resumed_from = S->epochs_done;
        if (S->overfit) S->epochs_done = c->epochs; /* it had stopped: nothing left to do */
    }
    return ADVEX_OK;
}

/* One epoch of steps; returns a status (ADVEX_ERR_INTERRUPTED when progress said stop). */
static advex_status run_epoch(run *r, int ep, double *loss_sum, int64_t *seen, int64_t *correct, float *eps_t) {
    const advex_train_config *c = r->c;
    const advex_dataset *d = r->d;
    train_state *S = &r->S;
    const int64_t dim = d->c * d->h * d->w, B = c->batch;
    for (int64_t i = r->n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)advex_rng_below(&S->rng, (uint64_t)(i + 1));
        int32_t t = S->perm[i]; S->perm[i] = S->perm[j]; S->perm[j] = t;
    }
    advex_adv_mode mode = c->adv;
    if (c->pgd_from_epoch > 0 && ep + 1 < c->pgd_from_epoch) mode = ADVEX_ADV_FGSM_RS;
    int32_t *yb = r->t->yb;
    for (int64_t bi = 0; bi < r->batches; bi++) {
        int64_t off = bi * B, b = r->n - off < B ? r->n - off : B;
        for (int64_t j = 0; j < b; j++) { /* gathered straight into the trainer's batch */
            memcpy(r->t->xb + j * dim, d->x + (int64_t)S->perm[off + j] * dim, (size_t)dim * sizeof(float));
            yb[j] = d->y[S->perm[off + j]];
        }
        /* eps ramp-up: linear in the epoch position, per batch */
        *eps_t = c->eps;
        if (c->eps_ramp > 0) {
            double pos = ((double)ep + (double)(bi + 1) / (double)r->batches) / (double)c->eps_ramp;
            if (pos < 1) *eps_t = (float)(c->eps * pos);
        }
        /* schedule position at the middle of this step, so onecycle never uses lr 0 */
        double t = ((double)r->t->step + 0.5) / (double)(r->batches * c->epochs);
        double l;
        int64_t ok;
        advex_status st = advex_trainer_step(r->t, r->t->xb, yb, b, mode, *eps_t, advex_lr_at(c->schedule, c->lr, t),
                                             &l, &ok);
        if (st) {
            char where[64];
            snprintf(where, sizeof where, "epoch %d batch %lld", ep + 1, (long long)bi + 1);
            return advex_error_prefix(st, where);
        }
        *loss_sum += l * (double)b;
        *seen += b;
        *correct += ok;
        if (r->progress) {
            advex_train_progress *p = &r->p;
            p->epoch = ep + 1;
            p->batch = bi + 1;
            p->batches = r->batches;
            p->loss = *loss_sum / (double)*seen;
            p->accuracy = (double)*correct / (double)*seen;
            p->seconds = advex_now() - r->t0;
            p->eps = *eps_t;
            p->epoch_end = 0;
            if (r->progress(r->user, p)) return advex_set_error(ADVEX_ERR_INTERRUPTED, "training interrupted");
        }
    }
    return ADVEX_OK;
}

/* End of an epoch: held-out evaluation, the guard, the checkpoint, the epoch's progress call.
 * *stop: the run ends here (overfitting, or progress asked). */
static advex_status run_epoch_end(run *r, int ep, double loss_sum, int64_t seen, int64_t correct, float eps_t,
                                  int *stop) {
    const advex_train_config *c = r->c;
    train_state *S = &r->S;
    advex_train_progress *p = &r->p;
    advex_status st;
    p->holdout = c->holdout;
    p->overfit = 0;
    if (c->holdout > 0) {
        if ((st = holdout_eval(r->m, r->d, r->n, c, p))) return st;
        S->hist[ep] = p->val_pgd;
        S->hist[c->epochs + ep] = p->val_fgsm;
        if (S->best_epoch == 0 || p->val_pgd > S->hist[S->best_epoch - 1]) {
            S->best_epoch = ep + 1;
            snapshot(r->m->net, S->best_params, S->best_consts);
        }
        const double drop = c->overfit_drop > 0 ? c->overfit_drop : 0.2;
        if (c->adv != ADVEX_ADV_NONE && advex_train_overfit_check(S->hist, S->hist + c->epochs, ep + 1, drop)) {
            restore(r->m->net, S->best_params, S->best_consts);
            S->overfit = 1;
            p->overfit = 1;
        }
    }
    p->best_epoch = S->best_epoch;
    S->epochs_done = ep + 1;
    S->step = r->t->step;
    S->model_rng = r->m->train->rng;
    if (c->checkpoint && (c->ranks <= 1 || c->rank == 0) && (st = advex_ckpt_save(c->checkpoint, S))) return st;
    *stop = S->overfit;
    if (r->progress) {
        p->epoch = ep + 1;
        p->batch = p->batches = r->batches;
        p->loss = seen ? loss_sum / (double)seen : 0;
        p->accuracy = seen ? (double)correct / (double)seen : 0;
        p->seconds = advex_now() - r->t0;
        p->eps = eps_t;
        p->epoch_end = 1;
        int halt = r->progress(r->user, p);
        if (!S->overfit && halt) return advex_set_error(ADVEX_ERR_INTERRUPTED, "training interrupted");
    }
    return ADVEX_OK;
}

advex_status advex_train(advex_model *m, const advex_dataset *d, const advex_train_config *c,
                         advex_train_progress_fn progress, void *user) {
    advex_status st = advex_data_fits(m, d, "training");
    if (st || (st = advex_train_config_check(c))) return st;
    if (d->n == 0) return advex_set_error(ADVEX_ERR_ARG, "empty training set");
    if (c->holdout >= d->n)
        return advex_set_error(ADVEX_ERR_ARG, "holdout %lld leaves no training examples (of %lld)", (long long)c->holdout,
                               (long long)d->n);
    run r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.d = d;
    r.orig = c;
    r.n = d->n - c->holdout;
    r.progress = progress;
    r.user = user;
    advex_train_config tc = *c;
    if (tc.batch > r.n) tc.batch = r.n; /* a batch is at most the training set */
    r.c = &tc;
    if ((st = advex_trainer_new(m, &tc, &r.t)) || (st = run_init(&r))) goto out;
    r.t0 = advex_now();
    for (int ep = r.S.epochs_done; ep < c->epochs; ep++) {
        double loss_sum = 0;
        int64_t seen = 0, correct = 0;
        float eps_t = 0;
        int stop = 0;
        if ((st = run_epoch(&r, ep, &loss_sum, &seen, &correct, &eps_t)) ||
            (st = run_epoch_end(&r, ep, loss_sum, seen, correct, eps_t, &stop)) || stop)
            break;
    }
out:
    advex_trainer_free(r.t);
    advex_ffree(r.buf);
    return st;
}
