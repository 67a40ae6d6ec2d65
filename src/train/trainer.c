/* One optimiser step at a time (advex_trainer): craft x' in eval mode with the current
 * weights for the adversarial modes, forward and backward in train mode on the training
 * plan (parameter gradients into its contiguous buffer), the batch-mean loss of the mode,
 * then SGD (momentum, weight decay) or Adam. advex_train (train.c) drives it over epochs;
 * `advex bench --attack train` times one step. See docs/training.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"
#include "train/train_internal.h"

/* Effective settings (mode defaults resolved). */
float advex_train_eff_weight(const advex_train_config *c) {
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

/* d loss / d logits for an input gradient of the inner maximisation: CE(z, y), or
 * d KL(p || softmax(z)) / dz = softmax(z) - p, p the clean probabilities (TRADES). */
static void fill_dl(const float *z, int64_t b, int64_t k, const int32_t *y, const float *pc, float *loss, float *dl) {
    if (!pc) {
        advex_loss_forward_backward(ADVEX_LOSS_CE, z, y, b, k, loss, dl);
        return;
    }
    advex_softmax_rows(z, b, k, dl);
    for (int64_t i = 0; i < b * k; i++) dl[i] -= pc[i];
}

/* Craft xa (b rows) from x for `mode` at radius eps, step alpha, in eval mode (the handle's
 * batch-parallel passes). Random starts come from a stream seeded by (seed, step): no state
 * beyond the step count. The rows are rows skip.. of the step's batch (a data-parallel part):
 * the stream is advanced past the earlier rows' draws, so every row starts where it would in
 * one process. */
static advex_status craft(advex_trainer *t, advex_adv_mode mode, float eps, const float *x, int64_t b, int64_t skip,
                          float *xa) {
    advex_model *m = t->m;
    const advex_train_config *c = &t->c;
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const float alpha = eff_alpha(c, mode, eps);
    advex_rng r;
    advex_rng_seed_stream(&r, c->seed, 0xad7000000ull + (uint64_t)t->step);
    advex_status st = ADVEX_OK;
    int steps = 1;
    const float *pc = NULL, *z;
    switch (mode) {
    case ADVEX_ADV_FGSM:
        memcpy(xa, x, (size_t)(b * d) * sizeof(float));
        break;
    case ADVEX_ADV_FGSM_RS:
    case ADVEX_ADV_PGD:
        for (int64_t i = 0; i < skip * d; i++) (void)advex_rng_uniform(&r);
        for (int64_t i = 0; i < b * d; i++) {
            float v = x[i] + (2.0f * advex_rng_uniform(&r) - 1.0f) * eps;
            xa[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        if (mode == ADVEX_ADV_PGD) steps = eff_steps(c, mode);
        break;
    case ADVEX_ADV_TRADES:
        /* clean probabilities (fixed target of the KL), then a tiny Gaussian start */
        if ((st = advex_model_eval_forward(m, x, b, 0, &z))) return st;
        advex_softmax_rows(z, b, k, t->pc);
        pc = t->pc;
        for (int64_t i = 0; i < skip * d; i++) (void)advex_rng_normal(&r);
        for (int64_t i = 0; i < b * d; i++) {
            float v = x[i] + 0.001f * advex_rng_normal(&r);
            xa[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        steps = eff_steps(c, mode);
        break;
    case ADVEX_ADV_NONE: return ADVEX_OK;
    }
    for (int s = 0; s < steps; s++) {
        if ((st = advex_model_eval_forward(m, xa, b, 1, &z))) return st;
        fill_dl(z, b, k, t->yb, pc, t->loss, t->dl_in);
        if ((st = advex_model_eval_backward(m, t->dl_in, t->g_in))) return st;
        advex_sign_step(xa, x, t->g_in, b * d, alpha, eps);
    }
    return ADVEX_OK;
}

advex_status advex_trainer_new(advex_model *m, const advex_train_config *c, advex_trainer **out) {
    *out = NULL;
    advex_status st = advex_train_config_check(c);
    if (st) return st;
    advex_trainer *t = calloc(1, sizeof *t);
    if (!t) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    t->m = m;
    t->c = *c;
    t->c.checkpoint = NULL; /* (borrowed; the loop owns checkpoints) */
    const int adv = c->adv != ADVEX_ADV_NONE;
    const int64_t dim = advex_model_dim(m), k = m->net->classes, np = m->net->n_params, B = c->batch;
    /* rows of a training forward: [x; x'] when the clean term is in the loss */
    t->both = adv && (advex_train_eff_weight(c) > 0 || c->adv == ADVEX_ADV_TRADES);
    const int64_t R = t->both ? 2 * B : B;
    /* one allocation for everything a step needs */
    int64_t total = 2 * np + 3 * B * dim + 3 * R * k + 2 * R + 16;
    if (!(t->buf = advex_falloc(total))) {
        free(t);
        return advex_alloc_error(total, "the training buffers");
    }
    memset(t->buf, 0, (size_t)total * sizeof(float));
    t->m1 = t->buf;                           /* (np) optimiser state */
    t->m2 = t->m1 + np;                       /* (np) */
    t->xb = t->m2 + np;                       /* (2B, C,H,W): clean rows, then x' rows */
    t->dlogits = t->xb + 2 * B * dim;         /* (R, k) */
    t->pc = t->dlogits + R * k;               /* (R, k) TRADES probabilities */
    t->loss = t->pc + R * k;                  /* (R) */
    t->dl_in = t->loss + R;                   /* (R, k) the inner maximisation's dlogits */
    t->g_in = t->dl_in + R * k;               /* (B, C,H,W) its input gradient */
    t->yb = (int32_t *)(t->g_in + B * dim);   /* (R) labels */
    /* the training plan laid out up front, so steps do not allocate (but for a smaller last
     * batch) */
    advex_plan *tp;
    if ((st = advex_model_train_plan(m, R, &tp))) {
        advex_trainer_free(t);
        return st;
    }
    advex_rng_seed_stream(&tp->rng, c->seed, 0xd20); /* dropout masks */
    if (c->ranks > 1 && !(t->dp = advex_falloc(np + 2))) {
        advex_trainer_free(t);
        return advex_alloc_error(np + 2, "the data-parallel gradient buffer");
    }
    *out = t;
    return ADVEX_OK;
}

void advex_trainer_free(advex_trainer *t) {
    if (!t) return;
    advex_ffree(t->buf);
    advex_ffree(t->dp);
    free(t);
}

/* Data-parallel: sum buf (n) over the ranks. */
static advex_status dp_sum(const advex_train_config *c, float *buf, int64_t n) {
    advex_status st = c->allreduce(c->allreduce_user, buf, n);
    return st ? advex_set_error(st, "data-parallel all-reduce of %lld values failed", (long long)n) : ADVEX_OK;
}

/* Data-parallel: the parameter gradients, the loss (each rank's part of the batch mean) and
 * the rows right summed over the ranks in one all-reduce (one synchronisation a step), then
 * BatchNorm running statistics (STATE values) averaged, so every rank's eval-mode passes
 * (crafting, held-out evaluation) see the same. No-op for one process. */
static advex_status dp_reduce(advex_trainer *t, float *grads, double *l, int64_t *ok) {
    const advex_train_config *c = &t->c;
    if (c->ranks <= 1) return ADVEX_OK;
    advex_net *net = t->m->net;
    const int64_t np = net->n_params;
    memcpy(t->dp, grads, (size_t)np * sizeof(float));
    t->dp[np] = (float)*l;
    t->dp[np + 1] = (float)*ok;
    advex_status st = dp_sum(c, t->dp, np + 2);
    if (st) return st;
    memcpy(grads, t->dp, (size_t)np * sizeof(float));
    *l = t->dp[np];
    *ok = (int64_t)t->dp[np + 1];
    for (int v = 0; v < net->g.n_vals; v++) {
        const advex_value *val = &net->g.vals[v];
        if (val->kind != ADVEX_VAL_STATE) continue;
        int64_t n = advex_numel(val->ndim, val->dims);
        float *p = net->consts + val->offset;
        if ((st = dp_sum(c, p, n))) return st;
        for (int64_t i = 0; i < n; i++) p[i] *= 1.0f / (float)c->ranks;
    }
    return ADVEX_OK;
}

advex_status advex_trainer_step(advex_trainer *t, const float *x, const int32_t *y, int64_t bg, advex_adv_mode mode,
                                float eps, float lr, double *loss_out, int64_t *correct) {
    advex_model *m = t->m;
    const advex_train_config *c = &t->c;
    const int64_t dim = advex_model_dim(m), k = m->net->classes, np = m->net->n_params;
    if (bg <= 0 || bg > c->batch)
        return advex_set_error(ADVEX_ERR_ARG, "training step: %lld examples (batch %lld)", (long long)bg,
                               (long long)c->batch);
    /* this process's rows [lo, lo + b) of the batch (all of them in one process) */
    const int ranks = c->ranks > 1 ? c->ranks : 1, rank = ranks > 1 ? c->rank : 0;
    const int64_t lo = bg * rank / ranks, b = bg * (rank + 1) / ranks - lo;
    const int adv = c->adv != ADVEX_ADV_NONE;
    if (x != t->xb || lo) memmove(t->xb, x + lo * dim, (size_t)(b * dim) * sizeof(float));
    for (int64_t j = 0; j < b; j++) {
        t->yb[j] = y[lo + j];
        if (t->both) t->yb[b + j] = y[lo + j]; /* yb holds 2b labels only when both halves are used */
    }
    const float *xin = t->xb;
    int64_t rows = b;
    float *xa = t->xb + b * dim;
    advex_status st;
    if (adv && b > 0) {
        if ((st = craft(t, mode, eps, t->xb, b, lo, xa))) return st;
        if (t->both) rows = 2 * b;
        else xin = xa;
    }
    advex_plan *tp;
    if ((st = advex_model_train_plan(m, rows > 0 ? rows : 1, &tp))) return st;
    double l = 0; /* the batch-mean loss (this rank's part of it) */
    int64_t ok = 0;
    if (b > 0) {
        if ((st = advex_plan_forward(tp, xin))) return st;
        const float *z = advex_plan_output(tp);
        float beta = c->adv == ADVEX_ADV_TRADES ? (c->beta >= 0 ? c->beta : 6.0f) : -1.0f;
        l = advex_train_loss(z, t->yb, b, k, adv && t->both, advex_train_eff_weight(c), beta, t->loss, t->pc,
                             t->dlogits, bg);
        /* accuracy on the rows the attack produced (the clean ones in clean training) */
        int64_t r0 = adv && t->both ? b : 0;
        for (int64_t j = r0; j < r0 + b; j++) ok += advex_argmax(z + j * k, k) == t->yb[j];
    }
    if (ranks <= 1 && !isfinite(l)) /* (checked before the backward pass: changes nothing) */
        return advex_set_error(ADVEX_ERR_NUMERIC, "training diverged: the loss is %g at step %lld (lower --lr)", l,
                               (long long)t->step + 1);
    memset(tp->grads, 0, (size_t)np * sizeof(float));
    if (b > 0 && (st = advex_plan_backward(tp, t->dlogits))) return st;
    /* data-parallel: every rank gets the batch's gradients and loss, and stops on a
     * non-finite loss together, before the update (the parameters stay as they were) */
    if ((st = dp_reduce(t, tp->grads, &l, &ok))) return st;
    if (!isfinite(l))
        return advex_set_error(ADVEX_ERR_NUMERIC, "training diverged: the loss is %g at step %lld (lower --lr)", l,
                               (long long)t->step + 1);
    optim_step(c, lr, m->net->params, tp->grads, t->m1, t->m2, np, t->step + 1);
    t->step++;
    if (loss_out) *loss_out = l;
    if (correct) *correct = ok;
    return ADVEX_OK;
}
