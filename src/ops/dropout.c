/* Dropout: identity in eval mode; in train mode y = x * mask with mask = [u >= p] / (1-p)
 * (inverted dropout), u from the context's seeded advex_rng; the mask stays in aux so
 * backward applies the very same one. */
#include <string.h>

#include "ops/kernels.h"

/* ratio from the attr (opset < 12) or, when present, the scalar input 1 (opset 12+); the
 * training_mode input is ignored: the context's train flag decides. */
static float dropout_ratio(const advex_node *nd, const advex_value *v) {
    if (nd->n_in > 1 && nd->in[1] >= 0 && v[nd->in[1]].data) return v[nd->in[1]].data[0];
    return nd->a.ratio;
}

advex_status advex_dropout_infer(const advex_node *nd, advex_value *v) {
    const advex_value *X = &v[nd->in[0]];
    if (nd->n_in > 1 && nd->in[1] >= 0 && advex_val_numel(&v[nd->in[1]]) != 1)
        return advex_set_error(ADVEX_ERR_SHAPE, "Dropout %s: ratio must be a scalar", nd->name);
    float p = dropout_ratio(nd, v);
    if (!(p >= 0.0f && p <= 1.0f))
        return advex_set_error(ADVEX_ERR_ARG, "Dropout %s: ratio %g not in [0,1]", nd->name, (double)p);
    advex_set_shape(&v[nd->out[0]], X->ndim, X->dims);
    return ADVEX_OK;
}

/* a->mode 1: ONNX training_mode=true with ratio > 0 (a randomized defence): on in every
 * pass, eval passes included */
int64_t advex_dropout_aux(const advex_node *nd, const advex_value *v, int train) {
    return train || nd->a.mode ? advex_val_numel(&v[nd->in[0]]) : 0; /* mask, one float per element */
}

static int dropout_active(const advex_node *nd, const advex_value *v, const advex_op_ctx *c) {
    return (c->train || nd->a.mode) && c->rng && c->aux && c->aux_n >= advex_val_numel(&v[nd->in[0]]);
}

void advex_dropout_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    const float *x = v[nd->in[0]].data;
    float *y = v[nd->out[0]].data;
    int64_t n = advex_val_numel(&v[nd->in[0]]);
    if (!dropout_active(nd, v, c)) {
        if (y != x) memcpy(y, x, (size_t)n * sizeof(float));
        return;
    }
    float p = dropout_ratio(nd, v), keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f, *mask = c->aux;
    for (int64_t i = 0; i < n; i++) mask[i] = advex_rng_uniform(c->rng) >= p ? keep : 0.0f;
#pragma omp parallel for schedule(static) if (n >= ADVEX_OMP_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * mask[i];
}

void advex_dropout_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    float *dx = v[nd->in[0]].grad;
    if (!dx) return;
    const float *dy = v[nd->out[0]].grad;
    int64_t n = advex_val_numel(&v[nd->in[0]]);
    const float *mask = dropout_active(nd, v, c) ? c->aux : NULL;
    if (v[nd->in[0]].grad_write) { /* gradient write mode: store */
        if (!mask) {
            memcpy(dx, dy, (size_t)n * sizeof(float));
            return;
        }
#pragma omp parallel for schedule(static) if (n >= ADVEX_OMP_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * mask[i];
        return;
    }
#pragma omp parallel for schedule(static) if (n >= ADVEX_OMP_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += mask ? dy[i] * mask[i] : dy[i];
}
