/* Public model API on top of the graph runner: forward, input gradients and
 * vector-Jacobian products in eval mode, processed in chunks of bounded size. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "internal.h"


void advex_model_input_shape(const advex_model *m, int64_t chw[3]) {
    for (int i = 0; i < 3; i++) chw[i] = m->net->in_chw[i];
}

int advex_model_output_was_prob(const advex_model *m) { return m->net->output_is_prob; }

int64_t advex_model_num_classes(const advex_model *m) { return m->net->classes; }

int64_t advex_model_num_params(const advex_model *m) {
    const advex_graph *g = &m->net->g;
    int64_t n = 0;
    for (int i = 0; i < g->n_vals; i++)
        if (g->vals[i].kind == ADVEX_VAL_PARAM) n += advex_numel(g->vals[i].ndim, g->vals[i].dims);
    return n;
}

static int64_t example_size(const advex_model *m) { return advex_model_dim(m); }

static advex_status check_inputs(const advex_model *m, const float *x, int64_t n) {
    int64_t d = example_size(m);
    if (!x || n < 0) return advex_set_error(ADVEX_ERR_ARG, "forward: no input or negative batch");
    int64_t i = advex_find_nonfinite(x, n * d);
    if (i >= 0)
        return advex_set_error(ADVEX_ERR_NUMERIC, "input example %lld contains %s", (long long)(i / d),
                               isnan(x[i]) ? "NaN" : "Inf");
    return ADVEX_OK;
}

static advex_status check_labels(const advex_model *m, const int32_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->net->classes)
            return advex_set_error(ADVEX_ERR_ARG, "label %d of example %lld is outside [0, %lld)", y[i],
                                   (long long)i, (long long)m->net->classes);
    return ADVEX_OK;
}

advex_status advex_model_forward(advex_model *m, const float *x, int64_t n, float *logits) {
    advex_status st = check_inputs(m, x, n);
    if (st) return st;
    int64_t d = example_size(m), c = m->net->classes;
    for (int64_t i = 0; i < n; i += ADVEX_CHUNK) {
        int64_t b = n - i < ADVEX_CHUNK ? n - i : ADVEX_CHUNK;
        const float *z;
        if ((st = advex_model_eval_forward(m, x + i * d, b, 0, &z))) return st;
        for (int64_t k = 0; k < b * c; k++)
            if (!isfinite(z[k]))
                return advex_set_error(ADVEX_ERR_NUMERIC, "logits of example %lld are not finite (%s): the model "
                                       "overflows on this input", (long long)(i + k / c), isnan(z[k]) ? "NaN" : "Inf");
        memcpy(logits + i * c, z, (size_t)(b * c) * sizeof(float));
    }
    return ADVEX_OK;
}

/* One pass over chunk i (b examples) into grad. */
static advex_status grad_pass(advex_model *m, const float *x, int64_t i, int64_t b, advex_dl_fn fn, void *u,
                              float *grad, float *logits, float *loss, float *dl) {
    int64_t k = m->net->classes;
    const float *z;
    advex_status st = advex_model_eval_forward(m, x, b, 1, &z);
    if (st) return st;
    if (logits) memcpy(logits, z, (size_t)(b * k) * sizeof(float));
    fn(u, i, b, k, z, loss, dl);
    int64_t bad = advex_find_nonfinite(dl, b * k);
    if (bad >= 0)
        return advex_set_error(ADVEX_ERR_NUMERIC, "loss gradient of example %lld is not finite",
                               (long long)(i + bad / k));
    return advex_model_eval_backward(m, dl, grad);
}

advex_status advex_model_grad_loop(advex_model *m, const float *x, int64_t n, advex_dl_fn fn, void *u, float *grad,
                                   float *logits, float *loss, float *dl) {
    int64_t d = advex_model_dim(m), k = m->net->classes;
    float lossbuf[ADVEX_CHUNK];
    int32_t eot = m->eot > 1 ? m->eot : 1;
    if (eot > 1 && !m->eot_g && !(m->eot_g = malloc((size_t)(ADVEX_CHUNK * d) * sizeof(float))))
        return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (EOT gradient)");
    advex_status st;
    for (int64_t i = 0; i < n; i += ADVEX_CHUNK) {
        int64_t b = n - i < ADVEX_CHUNK ? n - i : ADVEX_CHUNK;
        float *g = grad + i * d;
        for (int32_t e = 0; e < eot; e++) {
            /* expectation over transformation: the mean of eot gradients, each a fresh draw */
            if ((st = grad_pass(m, x + i * d, i, b, fn, u, e ? m->eot_g : g, logits ? logits + i * k : NULL,
                                loss ? loss + i : lossbuf, dl)))
                return st;
            if (e) for (int64_t j = 0; j < b * d; j++) g[j] += m->eot_g[j];
        }
        if (eot > 1) for (int64_t j = 0; j < b * d; j++) g[j] /= (float)eot;
    }
    return ADVEX_OK;
}

/* d loss / d logits for input_grad (a loss on labels) and vjp (given weights). */
typedef struct api_dl {
    advex_loss loss;
    const int32_t *y;
    const float *w;
} api_dl;

static void api_rows(void *u, int64_t i0, int64_t b, int64_t k, const float *z, float *loss, float *dl) {
    const api_dl *a = u;
    if (a->w) memcpy(dl, a->w + i0 * k, (size_t)(b * k) * sizeof(float));
    else advex_loss_forward_backward(a->loss, z, a->y + i0, b, k, loss, dl);
}

static advex_status grad_chunked(advex_model *m, const float *x, int64_t n, const int32_t *y, advex_loss loss,
                                 const float *w, float *grad, float *logits, float *loss_out) {
    advex_status st = check_inputs(m, x, n);
    if (st) return st;
    if (y && (st = check_labels(m, y, n))) return st;
    float *dl = malloc((size_t)(ADVEX_CHUNK * m->net->classes) * sizeof(float));
    if (!dl) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    api_dl a = {loss, y, w};
    st = advex_model_grad_loop(m, x, n, api_rows, &a, grad, logits, loss_out, dl);
    free(dl);
    return st;
}

advex_status advex_model_input_grad(advex_model *m, const float *x, const int32_t *y, int64_t n,
                                    advex_loss loss, float *grad, float *logits, float *loss_out) {
    if (!y) return advex_set_error(ADVEX_ERR_ARG, "input_grad: labels required");
    if (loss == ADVEX_LOSS_DLR && m->net->classes < 3)
        return advex_set_error(ADVEX_ERR_ARG, "DLR loss needs at least 3 classes (model has %lld)",
                               (long long)m->net->classes);
    return grad_chunked(m, x, n, y, loss, NULL, grad, logits, loss_out);
}

advex_status advex_model_vjp(advex_model *m, const float *x, int64_t n, const float *w, float *grad,
                             float *logits) {
    if (!w) return advex_set_error(ADVEX_ERR_ARG, "vjp: weights required");
    return grad_chunked(m, x, n, NULL, ADVEX_LOSS_CE, w, grad, logits, NULL);
}

advex_status advex_model_describe(const advex_model *m, char **text) {
    *text = NULL;
    const advex_net *net = m->net;
    const advex_graph *g = &net->g;
    advex_buf b = {0};
    advex_buf_printf(&b, "model:      %s\n", net->source);
    if (net->opset) advex_buf_printf(&b, "opset:      %lld\n", (long long)net->opset);
    advex_buf_printf(&b, "input:      %s  N x %lld x %lld x %lld (float32, [0,1])\n", g->vals[g->input].name,
              (long long)net->in_chw[0], (long long)net->in_chw[1], (long long)net->in_chw[2]);
    advex_buf_printf(&b, "output:     %s  N x %lld%s\n", g->vals[g->output].name, (long long)net->classes,
              net->output_is_prob ? "  (logits before the model's final Softmax, which advex removed)" : "");
    advex_buf_printf(&b, "parameters: %lld\n", (long long)advex_model_num_params(m));
    advex_buf_printf(&b, "nodes:      %d\nops:       ", g->n_nodes);
    int count[ADVEX_OP_COUNT] = {0};
    for (int i = 0; i < g->n_nodes; i++) count[g->nodes[i].op]++;
    for (int op = 0; op < ADVEX_OP_COUNT; op++)
        if (count[op]) advex_buf_printf(&b, " %s x%d", advex_op_defs[op].name, count[op]);
    advex_buf_printf(&b, "\n");
    return advex_buf_take(&b, text);
}

double advex_model_macs(const advex_model *m) {
    advex_plan *p;
    if (advex_plan_new(m->net, &p)) return 0;
    double macs = advex_plan_images(p, 1, 0, 0) ? 0 : advex_plan_macs(p, NULL);
    advex_plan_free(p);
    return macs;
}

advex_status advex_data_fits(const advex_model *m, const advex_dataset *d, const char *use) {
    const int64_t *chw = m->net->in_chw;
    if (!d->y) return advex_set_error(ADVEX_ERR_ARG, "%s needs labels", use);
    if (d->c != chw[0] || d->h != chw[1] || d->w != chw[2])
        return advex_set_error(ADVEX_ERR_SHAPE, "data has images %lldx%lldx%lld but the model expects %lldx%lldx%lld",
                               (long long)d->c, (long long)d->h, (long long)d->w, (long long)chw[0], (long long)chw[1],
                               (long long)chw[2]);
    for (int64_t i = 0; i < d->n; i++)
        if (d->y[i] < 0 || d->y[i] >= m->net->classes)
            return advex_set_error(ADVEX_ERR_ARG, "label %d of example %lld is outside the model's %lld classes",
                                   d->y[i], (long long)i, (long long)m->net->classes);
    return ADVEX_OK;
}
