/* Training loop: seeded shuffling, mini-batches, softmax cross-entropy (mean), backward
 * into the contiguous gradient buffer, then SGD (momentum, weight decay) or Adam.
 * Adversarial modes craft x' in eval mode with the current weights (craft.c style loops
 * below), then update in train mode; per-epoch held-out evaluation, the catastrophic-
 * overfitting guard and checkpoints (checkpoint.c). See docs/training.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attacks/attack_internal.h"
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

/* Effective settings (mode defaults resolved). */
static float eff_weight(const advex_train_config *c) {
    if (c->adv_weight >= 0) return c->adv_weight;
    return c->adv == ADVEX_ADV_FGSM ? 0.5f : 0.0f;
}
static int eff_steps(const advex_train_config *c, advex_adv_mode mode) {
    if (c->pgd_steps > 0) return c->pgd_steps;
    return mode == ADVEX_ADV_TRADES ? 5 : 7;
}
static float eff_alpha(const advex_train_config *c, advex_adv_mode mode, float eps) {
    /* alpha scales with the ramped eps: the configured alpha is relative to c->eps */
    float scale = c->eps > 0 ? eps / c->eps : 0.0f;
    if (c->alpha > 0 && mode == c->adv) return c->alpha * scale;
    switch (mode) {
    case ADVEX_ADV_FGSM: return eps;
    case ADVEX_ADV_FGSM_RS: return 1.25f * eps;
    default: return 2.5f * eps / (float)eff_steps(c, mode);
    }
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

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* p -= lr * update; m1, m2: optimiser state (n). step: 1-based step count (Adam bias correction). */
static void optim_step(const advex_train_config *c, float lr, float *p, const float *g, float *m1, float *m2,
                       int64_t n, int64_t step) {
    const float wd = c->weight_decay;
    if (c->opt == ADVEX_OPT_SGD) {
        const float mu = c->momentum;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];           /* L2 weight decay, as torch.optim.SGD */
            m1[i] = mu * m1[i] + gi;
            p[i] -= lr * (mu > 0 ? m1[i] : gi);
        }
    } else {
        const float b1 = c->beta1, b2 = c->beta2;
        const float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
        const float step_size = lr / bc1, rbc2 = 1.0f / sqrtf(bc2);
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];           /* torch.optim.Adam's weight_decay */
            m1[i] = b1 * m1[i] + (1.0f - b1) * gi;
            m2[i] = b2 * m2[i] + (1.0f - b2) * gi * gi;
            p[i] -= step_size * m1[i] / (sqrtf(m2[i]) * rbc2 + c->adam_eps);
        }
    }
}


/* Input gradient of the batch xa (b rows) in eval mode into g (b, C,H,W): dl (b, k) is
 * filled by `fill` from the logits. Runs like the attacks' passes (split across threads,
 * see src/graph/split.c); allocates only on the first step (the per-thread replicas). */
typedef void (*dl_fill_fn)(const float *z, int64_t b, int64_t k, const int32_t *y, const float *pc, float *loss,
                           float *dl);
static void fill_ce(const float *z, int64_t b, int64_t k, const int32_t *y, const float *pc, float *loss, float *dl) {
    (void)pc;
    advex_loss_forward_backward(ADVEX_LOSS_CE, z, y, b, k, loss, dl);
}
/* d KL(p || softmax(z)) / dz = softmax(z) - p, p the clean probabilities (TRADES' inner max). */
static void fill_kl(const float *z, int64_t b, int64_t k, const int32_t *y, const float *pc, float *loss, float *dl) {
    (void)y; (void)loss;
    for (int64_t i = 0; i < b; i++) {
        const float *zi = z + i * k;
        float mx = zi[0];
        for (int64_t j = 1; j < k; j++) mx = zi[j] > mx ? zi[j] : mx;
        double sum = 0;
        for (int64_t j = 0; j < k; j++) sum += exp((double)(zi[j] - mx));
        for (int64_t j = 0; j < k; j++) dl[i * k + j] = (float)(exp((double)(zi[j] - mx)) / sum) - pc[i * k + j];
    }
}

static advex_status input_grad(advex_model *m, const float *xa, int64_t b, const int32_t *y, const float *pc,
                               dl_fill_fn fill, float *loss, float *dl, float *g) {
    const float *z;
    advex_status st = advex_model_eval_forward(m, xa, b, 1, &z);
    if (st) return st;
    fill(z, b, m->net->classes, y, pc, loss, dl);
    return advex_model_eval_backward(m, dl, g);
}

static void softmax_rows(const float *z, int64_t b, int64_t k, float *p) {
    for (int64_t i = 0; i < b; i++) {
        const float *zi = z + i * k;
        float mx = zi[0];
        for (int64_t j = 1; j < k; j++) mx = zi[j] > mx ? zi[j] : mx;
        double sum = 0;
        for (int64_t j = 0; j < k; j++) sum += exp((double)(zi[j] - mx));
        for (int64_t j = 0; j < k; j++) p[i * k + j] = (float)(exp((double)(zi[j] - mx)) / sum);
    }
}

/* Craft xa (b rows) from x for `mode` at radius eps, step alpha, in eval mode. Random starts
 * come from a stream seeded by (seed, step): no state beyond the step count. */
static advex_status craft(advex_model *m, const advex_train_config *c, advex_adv_mode mode, float eps, int64_t step,
                          const float *x, const int32_t *y, int64_t b, float *xa, float *pc, float *loss, float *dl,
                          float *g) {
    const int64_t d = advex_model_dim(m);
    const float alpha = eff_alpha(c, mode, eps);
    advex_rng r;
    advex_rng_seed_stream(&r, c->seed, 0xad7000000ull + (uint64_t)step);
    advex_status st = ADVEX_OK;
    int steps = 1;
    dl_fill_fn fill = fill_ce;
    switch (mode) {
    case ADVEX_ADV_FGSM:
        memcpy(xa, x, (size_t)(b * d) * sizeof(float));
        break;
    case ADVEX_ADV_FGSM_RS:
    case ADVEX_ADV_PGD:
        for (int64_t i = 0; i < b * d; i++) {
            float v = x[i] + (2.0f * advex_rng_uniform(&r) - 1.0f) * eps;
            xa[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        if (mode == ADVEX_ADV_PGD) steps = eff_steps(c, mode);
        break;
    case ADVEX_ADV_TRADES: {
        /* clean probabilities (fixed target of the KL), then a tiny Gaussian start */
        const float *z;
        if ((st = advex_model_eval_forward(m, x, b, 0, &z))) return st;
        softmax_rows(z, b, m->net->classes, pc);
        for (int64_t i = 0; i < b * d; i++) {
            float v = x[i] + 0.001f * advex_rng_normal(&r);
            xa[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        steps = eff_steps(c, mode);
        fill = fill_kl;
        break;
    }
    case ADVEX_ADV_NONE: return ADVEX_OK;
    }
    for (int s = 0; s < steps; s++) {
        if ((st = input_grad(m, xa, b, y, pc, fill, loss, dl, g))) return st;
        advex_sign_step(xa, x, g, b * d, alpha, eps);
    }
    return ADVEX_OK;
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

advex_status advex_train(advex_model *m, const advex_dataset *d, const advex_train_config *c,
                         advex_train_progress_fn progress, void *user) {
    if (!d->y) return advex_set_error(ADVEX_ERR_ARG, "training needs labels");
    if (d->c != m->net->in_chw[0] || d->h != m->net->in_chw[1] || d->w != m->net->in_chw[2])
        return advex_set_error(ADVEX_ERR_SHAPE, "data has images %lldx%lldx%lld but the model expects %lldx%lldx%lld",
                               (long long)d->c, (long long)d->h, (long long)d->w, (long long)m->net->in_chw[0],
                               (long long)m->net->in_chw[1], (long long)m->net->in_chw[2]);
    advex_status st = advex_train_config_check(c);
    if (st) return st;
    for (int64_t i = 0; i < d->n; i++)
        if (d->y[i] < 0 || d->y[i] >= m->net->classes)
            return advex_set_error(ADVEX_ERR_ARG, "label %d of example %lld is outside the model's %lld classes",
                                   d->y[i], (long long)i, (long long)m->net->classes);
    if (d->n == 0) return advex_set_error(ADVEX_ERR_ARG, "empty training set");
    if (c->holdout >= d->n)
        return advex_set_error(ADVEX_ERR_ARG, "holdout %lld leaves no training examples (of %lld)", (long long)c->holdout,
                               (long long)d->n);
    const int adv = c->adv != ADVEX_ADV_NONE;
    const float w = eff_weight(c);
    const float beta = c->beta >= 0 ? c->beta : 6.0f;
    const double drop = c->overfit_drop > 0 ? c->overfit_drop : 0.2;
    int64_t dim = d->c * d->h * d->w, k = m->net->classes, n = d->n - c->holdout, np = m->net->n_params, nc = m->net->n_consts;
    int64_t B = c->batch < n ? c->batch : n;
    /* rows of a training forward: [x; x'] when the clean term is in the loss */
    const int both = adv && (w > 0 || c->adv == ADVEX_ADV_TRADES);
    int64_t R = both ? 2 * B : B;
    /* one allocation for everything the loop needs */
    int64_t total = 4 * np + 2 * nc + 3 * B * dim + 3 * R * k + R + B + n + 4 * (int64_t)c->epochs + 16;
    float *buf = advex_falloc(total);
    if (!buf) return advex_set_error(ADVEX_ERR_NOMEM, "cannot allocate training buffers");
    memset(buf, 0, (size_t)total * sizeof(float));
    train_state S;
    memset(&S, 0, sizeof S);
    S.m1 = buf;                                  /* (np) optimiser state */
    S.m2 = S.m1 + np;                            /* (np) */
    S.best_params = S.m2 + np;                   /* (np) weights of the best held-out PGD epoch */
    S.best_consts = S.best_params + np;          /* (nc) */
    float *xb = S.best_consts + nc;              /* (2B, C,H,W): clean rows, then x' rows */
    float *dlogits = xb + 2 * B * dim;           /* (R, k) */
    float *pc = dlogits + R * k;                 /* (R, k) TRADES clean probabilities */
    float *loss = pc + R * k;                    /* (R) */
    float *dl_in = loss + R;                     /* (R, k) scratch for the inner maximisation */
    float *g_in = dl_in + R * k;                 /* (B, C,H,W) its input gradient */
    int32_t *yb = (int32_t *)(g_in + B * dim);   /* (R) labels */
    S.perm = yb + R;                             /* (n) shuffled order */
    S.hist = (double *)(void *)(((uintptr_t)(S.perm + n) + 15) & ~(uintptr_t)15); /* (2 epochs) */
    S.params = m->net->params;
    S.consts = m->net->consts;
    S.n_params = np;
    S.n_consts = nc;
    S.n_train = n;
    S.batch = c->batch;
    S.epochs = c->epochs;
    S.adv = (int32_t)c->adv;
    S.seed = c->seed;
    advex_rng_seed(&S.rng, c->seed);
    /* the training plan, laid out up front so the loop does not allocate (but for a smaller
     * last batch); its RNG draws the dropout masks */
    advex_plan *tp = NULL;
    if ((st = advex_model_train_plan(m, R, &tp))) goto out;
    advex_rng_seed_stream(&tp->rng, c->seed, 0xd20);
    for (int64_t i = 0; i < n; i++) S.perm[i] = (int32_t)i;
    advex_train_progress p;
    memset(&p, 0, sizeof p);
    p.epochs = c->epochs;
    if (c->resume && c->checkpoint && file_exists(c->checkpoint)) {
        if ((st = advex_ckpt_load(c->checkpoint, &S))) goto out;
        if ((st = advex_net_check_weights(m->net))) { /* BatchNorm statistics from the file */
            advex_error_prefix(st, c->checkpoint);
            goto out;
        }
        tp->rng = S.model_rng;
        p.resumed_from = S.epochs_done;
        if (S.overfit) S.epochs_done = c->epochs; /* it had stopped: nothing left to do */
    }
    double t0 = now_seconds();
    int64_t batches = (n + B - 1) / B;
    for (int ep = S.epochs_done; ep < c->epochs && !st; ep++) {
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)advex_rng_below(&S.rng, (uint64_t)(i + 1));
            int32_t t = S.perm[i]; S.perm[i] = S.perm[j]; S.perm[j] = t;
        }
        advex_adv_mode mode = c->adv;
        if (c->pgd_from_epoch > 0 && ep + 1 < c->pgd_from_epoch) mode = ADVEX_ADV_FGSM_RS;
        double loss_sum = 0;
        int64_t seen = 0, correct = 0;
        float eps_t = 0;
        for (int64_t bi = 0; bi < batches; bi++) {
            int64_t off = bi * B, b = n - off < B ? n - off : B;
            for (int64_t j = 0; j < b; j++) {
                memcpy(xb + j * dim, d->x + (int64_t)S.perm[off + j] * dim, (size_t)dim * sizeof(float));
                yb[j] = d->y[S.perm[off + j]];
                if (both) yb[b + j] = yb[j]; /* yb holds R = 2B labels only when both halves are used */
            }
            /* eps ramp-up: linear in the epoch position, per batch */
            eps_t = c->eps;
            if (c->eps_ramp > 0) {
                double pos = ((double)ep + (double)(bi + 1) / (double)batches) / (double)c->eps_ramp;
                if (pos < 1) eps_t = (float)(c->eps * pos);
            }
            const float *xin = xb;
            int64_t rows = b;
            float *xa = xb + b * dim;
            if (adv) {
                if ((st = craft(m, c, mode, eps_t, S.step, xb, yb, b, xa, pc, loss, dl_in, g_in))) break;
                if (both) rows = 2 * b;
                else xin = xa;
            }
            if ((st = advex_model_train_plan(m, rows, &tp)) || (st = advex_plan_forward(tp, xin))) break;
            const float *z = advex_plan_output(tp);
            double l;
            if (!adv || !both) {
                l = advex_loss_forward_backward(ADVEX_LOSS_CE, z, yb, rows, k, loss, dlogits) / (double)b;
                for (int64_t j = 0; j < rows * k; j++) dlogits[j] *= 1.0f / (float)b; /* mean reduction */
            } else if (c->adv != ADVEX_ADV_TRADES) {
                /* w * CE(x) + (1 - w) * CE(x') */
                double lc = advex_loss_forward_backward(ADVEX_LOSS_CE, z, yb, rows, k, loss, dlogits), la = 0;
                for (int64_t j = b; j < rows; j++) la += loss[j];
                l = (w * (lc - la) + (1.0 - w) * la) / (double)b;
                for (int64_t j = 0; j < b * k; j++) dlogits[j] *= w / (float)b;
                for (int64_t j = b * k; j < rows * k; j++) dlogits[j] *= (1.0f - w) / (float)b;
            } else {
                /* TRADES: CE(x) + beta * KL(p(x) || p(x')), batch mean, gradients into both halves */
                double lc = advex_loss_forward_backward(ADVEX_LOSS_CE, z, yb, b, k, loss, dlogits), kl = 0;
                softmax_rows(z, rows, k, pc);
                for (int64_t i = 0; i < b; i++) {
                    const float *pi = pc + i * k, *qi = pc + (b + i) * k;
                    double kli = 0;
                    for (int64_t j = 0; j < k; j++)
                        if (pi[j] > 0) kli += (double)pi[j] * (log((double)pi[j]) - log((double)qi[j] + 1e-30));
                    kl += kli;
                    for (int64_t j = 0; j < k; j++) {
                        double lj = pi[j] > 0 ? log((double)pi[j]) - log((double)qi[j] + 1e-30) : 0;
                        dlogits[i * k + j] = (dlogits[i * k + j] + beta * (float)((double)pi[j] * (lj - kli))) / (float)b;
                        dlogits[(b + i) * k + j] = beta * (qi[j] - pi[j]) / (float)b;
                    }
                }
                l = (lc + beta * kl) / (double)b;
            }
            if (!isfinite(l)) {
                st = advex_set_error(ADVEX_ERR_NUMERIC, "training diverged: loss is %g at epoch %d batch %lld (lower --lr)",
                                     l, ep + 1, (long long)bi);
                break;
            }
            /* running accuracy on the rows the attack produced (the clean ones in clean training) */
            int64_t r0 = adv && both ? b : 0;
            for (int64_t j = r0; j < r0 + b; j++) {
                const float *zj = z + j * k;
                int64_t best = 0;
                for (int64_t q = 1; q < k; q++) if (zj[q] > zj[best]) best = q;
                correct += best == yb[j];
            }
            memset(tp->grads, 0, (size_t)np * sizeof(float));
            if ((st = advex_plan_backward(tp, dlogits))) break;
            /* schedule position at the middle of this step, so onecycle never uses lr 0 */
            double t = ((double)S.step + 0.5) / (double)(batches * c->epochs);
            optim_step(c, advex_lr_at(c->schedule, c->lr, t), m->net->params, tp->grads, S.m1, S.m2, np, S.step + 1);
            S.step++;
            loss_sum += l * (double)b;
            seen += b;
            if (progress) {
                p.epoch = ep + 1;
                p.batch = bi + 1;
                p.batches = batches;
                p.loss = loss_sum / (double)seen;
                p.accuracy = (double)correct / (double)seen;
                p.seconds = now_seconds() - t0;
                p.eps = eps_t;
                p.epoch_end = 0;
                if (progress(user, &p)) { st = advex_set_error(ADVEX_ERR_INTERRUPTED, "training interrupted"); break; }
            }
        }
        if (st) break;
        /* end of epoch: held-out evaluation, the guard, the checkpoint */
        p.holdout = c->holdout;
        p.overfit = 0;
        if (c->holdout > 0) {
            if ((st = holdout_eval(m, d, n, c, &p))) break;
            S.hist[ep] = p.val_pgd;
            S.hist[c->epochs + ep] = p.val_fgsm;
            if (S.best_epoch == 0 || p.val_pgd > S.hist[S.best_epoch - 1]) {
                S.best_epoch = ep + 1;
                snapshot(m->net, S.best_params, S.best_consts);
            }
            if (adv && advex_train_overfit_check(S.hist, S.hist + c->epochs, ep + 1, drop)) {
                restore(m->net, S.best_params, S.best_consts);
                S.overfit = 1;
                p.overfit = 1;
            }
        }
        p.best_epoch = S.best_epoch;
        S.epochs_done = ep + 1;
        S.model_rng = tp->rng;
        if (c->checkpoint && (st = advex_ckpt_save(c->checkpoint, &S))) break;
        if (progress) {
            p.epoch = ep + 1;
            p.batch = p.batches = batches;
            p.loss = seen ? loss_sum / (double)seen : 0;
            p.accuracy = seen ? (double)correct / (double)seen : 0;
            p.seconds = now_seconds() - t0;
            p.eps = eps_t;
            p.epoch_end = 1;
            int stop = progress(user, &p);
            if (S.overfit) break;
            if (stop) { st = advex_set_error(ADVEX_ERR_INTERRUPTED, "training interrupted"); break; }
        }
        if (S.overfit) break;
    }
out:
    advex_ffree(buf);
    return st;
}
