/* Training loop: seeded shuffling, mini-batches, softmax cross-entropy (mean), backward
 * into the contiguous gradient buffer, then SGD (momentum, weight decay) or Adam. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

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

advex_status advex_train(advex_model *m, const advex_dataset *d, const advex_train_config *c,
                         advex_train_progress_fn progress, void *user) {
    if (!d->y) return advex_set_error(ADVEX_ERR_ARG, "training needs labels");
    if (d->c != m->in_chw[0] || d->h != m->in_chw[1] || d->w != m->in_chw[2])
        return advex_set_error(ADVEX_ERR_SHAPE, "data has images %lldx%lldx%lld but the model expects %lldx%lldx%lld",
                               (long long)d->c, (long long)d->h, (long long)d->w, (long long)m->in_chw[0],
                               (long long)m->in_chw[1], (long long)m->in_chw[2]);
    if (c->epochs < 0 || c->batch <= 0 || !(c->lr > 0) || !isfinite(c->lr))
        return advex_set_error(ADVEX_ERR_ARG, "bad training settings (epochs %d, batch %lld, lr %g)", c->epochs,
                               (long long)c->batch, (double)c->lr);
    for (int64_t i = 0; i < d->n; i++)
        if (d->y[i] < 0 || d->y[i] >= m->classes)
            return advex_set_error(ADVEX_ERR_ARG, "label %d of example %lld is outside the model's %lld classes",
                                   d->y[i], (long long)i, (long long)m->classes);
    int64_t dim = d->c * d->h * d->w, k = m->classes, n = d->n, np = m->n_params;
    int64_t B = c->batch < n ? c->batch : n;
    if (n == 0) return advex_set_error(ADVEX_ERR_ARG, "empty training set");
    /* one allocation for everything the loop needs */
    int64_t total = 2 * np + B * dim + 2 * B * k + B + n;
    float *buf = advex_falloc(total);
    if (!buf) return advex_set_error(ADVEX_ERR_NOMEM, "cannot allocate training buffers");
    memset(buf, 0, (size_t)(2 * np) * sizeof(float));
    float *m1 = buf, *m2 = m1 + np;             /* (np) optimiser state */
    float *xb = m2 + np;                        /* (B, C,H,W) batch */
    float *dlogits = xb + B * dim;              /* (B, k) */
    float *loss = dlogits + B * k;              /* (B) */
    int32_t *yb = (int32_t *)(loss + B * k);    /* (B) labels */
    int32_t *perm = yb + B;                     /* (n) shuffled order */
    advex_rng rng;
    advex_rng_seed(&rng, c->seed);
    advex_rng_seed_stream(&m->rng, c->seed, 0xd20);
    for (int64_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    advex_status st = ADVEX_OK;
    double t0 = now_seconds();
    int64_t step = 0, batches = (n + B - 1) / B;
    for (int ep = 0; ep < c->epochs && !st; ep++) {
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)advex_rng_below(&rng, (uint64_t)(i + 1));
            int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        }
        double loss_sum = 0;
        int64_t seen = 0, correct = 0;
        for (int64_t bi = 0; bi < batches; bi++) {
            int64_t off = bi * B, b = n - off < B ? n - off : B;
            for (int64_t j = 0; j < b; j++) {
                memcpy(xb + j * dim, d->x + (int64_t)perm[off + j] * dim, (size_t)dim * sizeof(float));
                yb[j] = d->y[perm[off + j]];
            }
            if ((st = advex_model_plan(m, b, 1, 1))) break;
            advex_model_run_forward(m, xb);
            const float *z = advex_model_logits(m);
            double l = advex_loss_forward_backward(ADVEX_LOSS_CE, z, yb, b, k, loss, dlogits);
            if (!isfinite(l)) {
                st = advex_set_error(ADVEX_ERR_NUMERIC, "training diverged: loss is %g at epoch %d batch %lld (lower --lr)",
                                     l, ep + 1, (long long)bi);
                break;
            }
            for (int64_t j = 0; j < b; j++) {
                const float *zj = z + j * k;
                int64_t best = 0;
                for (int64_t q = 1; q < k; q++) if (zj[q] > zj[best]) best = q;
                correct += best == yb[j];
            }
            for (int64_t j = 0; j < b * k; j++) dlogits[j] *= 1.0f / (float)b; /* mean reduction */
            memset(m->grads, 0, (size_t)np * sizeof(float));
            advex_model_run_backward(m, dlogits);
            /* schedule position at the middle of this step, so onecycle never uses lr 0 */
            double t = ((double)step + 0.5) / (double)(batches * c->epochs);
            optim_step(c, advex_lr_at(c->schedule, c->lr, t), m->params, m->grads, m1, m2, np, step + 1);
            step++;
            loss_sum += l;
            seen += b;
            if (progress) {
                advex_train_progress p = {ep + 1, c->epochs, bi + 1, batches, loss_sum / (double)seen,
                                          (double)correct / (double)seen, now_seconds() - t0};
                if (progress(user, &p)) { st = advex_set_error(ADVEX_ERR_INTERRUPTED, "training interrupted"); break; }
            }
        }
    }
    advex_ffree(buf);
    /* leave the model in eval mode for whoever uses it next */
    m->plan_n = 0;
    return st;
}
