/* Robust accuracy over a data set, batch by batch: clean predictions, the attack, the
 * model's own predictions on the returned examples. Results do not depend on batch size. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void advex_argmax_rows(const float *logits, int64_t n, int64_t c, int32_t *pred) {
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * c;
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++) if (z[k] > z[best]) best = k;
        pred[i] = (int32_t)best;
    }
}

static advex_status check_data(const advex_model *m, const advex_dataset *d) {
    if (!d->y) return advex_set_error(ADVEX_ERR_ARG, "evaluation needs labels");
    if (d->c != m->in_chw[0] || d->h != m->in_chw[1] || d->w != m->in_chw[2])
        return advex_set_error(ADVEX_ERR_SHAPE, "data has images %lldx%lldx%lld but the model expects %lldx%lldx%lld",
                               (long long)d->c, (long long)d->h, (long long)d->w, (long long)m->in_chw[0],
                               (long long)m->in_chw[1], (long long)m->in_chw[2]);
    for (int64_t i = 0; i < d->n; i++)
        if (d->y[i] < 0 || d->y[i] >= m->classes)
            return advex_set_error(ADVEX_ERR_ARG, "label %d of example %lld is outside the model's %lld classes",
                                   d->y[i], (long long)i, (long long)m->classes);
    return ADVEX_OK;
}

advex_status advex_eval_clean(advex_model *m, const advex_dataset *d, int64_t batch, int64_t *correct) {
    advex_status st = check_data(m, d);
    if (st) return st;
    if (batch <= 0) batch = 256;
    int64_t dim = d->c * d->h * d->w, k = m->classes;
    float *logits = malloc((size_t)(batch * k) * sizeof(float));
    int32_t *pred = malloc((size_t)batch * sizeof(int32_t));
    if (!logits || !pred) { free(logits); free(pred); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); }
    *correct = 0;
    for (int64_t i = 0; i < d->n && !st; i += batch) {
        int64_t b = d->n - i < batch ? d->n - i : batch;
        if ((st = advex_model_forward(m, d->x + i * dim, b, logits))) break;
        advex_argmax_rows(logits, b, k, pred);
        for (int64_t j = 0; j < b; j++) *correct += pred[j] == d->y[i + j];
    }
    free(logits);
    free(pred);
    return st;
}

advex_status advex_eval_attack(advex_model *m, const advex_dataset *d, const advex_attack_config *c, int64_t batch,
                               advex_progress_fn progress, void *user, float *adv_out, advex_eval_result *res) {
    advex_status st = check_data(m, d);
    if (st) return st;
    if (batch <= 0) batch = 256;
    int64_t dim = d->c * d->h * d->w, k = m->classes;
    float *logits = malloc((size_t)(batch * k) * sizeof(float));
    int32_t *pred = malloc((size_t)batch * sizeof(int32_t));
    float *xadv = adv_out ? NULL : malloc((size_t)(batch * dim) * sizeof(float));
    unsigned char *clean_ok = malloc((size_t)batch);
    if (!logits || !pred || (!adv_out && !xadv) || !clean_ok) {
        free(logits); free(pred); free(xadv); free(clean_ok);
        return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    }
    memset(res, 0, sizeof *res);
    res->attack = c->kind;
    res->eps = c->eps;
    double t0 = now_seconds();
    for (int64_t i = 0; i < d->n; i += batch) {
        int64_t b = d->n - i < batch ? d->n - i : batch;
        const float *x = d->x + i * dim;
        const int32_t *y = d->y + i;
        float *xa = adv_out ? adv_out + i * dim : xadv;
        if ((st = advex_model_forward(m, x, b, logits))) break;
        advex_argmax_rows(logits, b, k, pred);
        for (int64_t j = 0; j < b; j++) {
            clean_ok[j] = pred[j] == y[j];
            res->clean_correct += clean_ok[j];
        }
        if ((st = advex_attack_batch(m, c, x, y, b, i, xa))) break;
        if ((st = advex_model_forward(m, xa, b, logits))) break;
        advex_argmax_rows(logits, b, k, pred);
        for (int64_t j = 0; j < b; j++) res->robust_correct += clean_ok[j] && pred[j] == y[j];
        res->n += b;
        if (progress && progress(user, i + b, d->n)) {
            st = advex_set_error(ADVEX_ERR_INTERRUPTED, "evaluation interrupted");
            break;
        }
    }
    res->seconds = now_seconds() - t0;
    res->robust_accuracy = res->n ? (double)res->robust_correct / (double)res->n : 0.0;
    res->success_rate = res->clean_correct ? 1.0 - (double)res->robust_correct / (double)res->clean_correct : 0.0;
    free(logits); free(pred); free(xadv); free(clean_ok);
    return st;
}
