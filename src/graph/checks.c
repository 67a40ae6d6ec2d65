/* Checks of a model's numbers: weights and constants from a file (finite; BatchNorm
 * statistics that give a finite scale), the sizes one example needs (input and
 * activations, bounded before anything is allocated), and gradients after each backward. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *nonfinite_name(float v) { return v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf"; }

/* Weights from a file are untrusted: a NaN or Inf in one would poison every result. */
static advex_status check_finite(const advex_model *m) {
    const advex_graph *g = &m->g;
    for (int i = 0; i < g->n_vals; i++) {
        const advex_value *v = &g->vals[i];
        if (v->kind < ADVEX_VAL_PARAM || !v->data) continue;
        int64_t n = advex_numel(v->ndim, v->dims);
        for (int64_t k = 0; k < n; k++)
            if (!isfinite(v->data[k]))
                return advex_set_error(ADVEX_ERR_NUMERIC, "%s '%s': element %lld is %s", 
                                       v->kind == ADVEX_VAL_PARAM ? "weight" : "constant", v->name, (long long)k,
                                       nonfinite_name(v->data[k]));
    }
    return ADVEX_OK;
}

/* After a backward pass: the loss gradient, the input gradient and (training) every
 * parameter gradient must be finite; else say which, rather than let NaN flow into
 * adversarial examples or weights. */
advex_status advex_model_check_grads(const advex_model *m, const float *dlogits) {
    const advex_graph *g = &m->g;
    const advex_value *out = &g->vals[g->output], *in = &g->vals[g->input];
    int64_t no = advex_numel(out->ndim, out->dims), c = out->ndim == 2 ? out->dims[1] : 1;
    for (int64_t k = 0; k < no; k++)
        if (!isfinite(dlogits[k])) {
            const float *z = out->data;
            int bad_logits = 0;
            for (int64_t j = (k / c) * c; j < (k / c + 1) * c && j < no; j++) bad_logits |= !isfinite(z[j]);
            return advex_set_error(ADVEX_ERR_NUMERIC, "loss gradient of example %lld is %s%s", (long long)(m->ex_base + k / c),
                                   nonfinite_name(dlogits[k]),
                                   bad_logits ? " (its logits are not finite: the model overflows on this input)" : "");
        }
    if (in->grad) {
        int64_t ni = advex_numel(4, in->dims), d = ni / (in->dims[0] > 0 ? in->dims[0] : 1);
        int64_t k = advex_find_nonfinite(in->grad, ni);
        if (k >= 0)
            return advex_set_error(ADVEX_ERR_NUMERIC, "gradient with respect to the input: example %lld is %s",
                                   (long long)(m->ex_base + k / d), nonfinite_name(in->grad[k]));
    }
    if (m->plan_train)
        for (int i = 0; i < g->n_vals; i++) {
            const advex_value *v = &g->vals[i];
            if (v->kind != ADVEX_VAL_PARAM || !v->grad) continue;
            int64_t k = advex_find_nonfinite(v->grad, advex_numel(v->ndim, v->dims));
            if (k >= 0)
                return advex_set_error(ADVEX_ERR_NUMERIC, "gradient of weight '%s': element %lld is %s", v->name,
                                       (long long)k, nonfinite_name(v->grad[k]));
        }
    return ADVEX_OK;
}


/* A BatchNorm computes scale / sqrt(var + eps) per channel: a negative variance (or
 * var + eps <= 0, an infinite quotient) gives NaN or Inf that the next Relu turns into
 * plausible but wrong numbers. Checked where the statistics are known at load time. */
static advex_status check_batchnorm(const advex_model *m) {
    const advex_graph *g = &m->g;
    for (int i = 0; i < g->n_nodes; i++) {
        const advex_node *nd = &g->nodes[i];
        if (nd->op != ADVEX_OP_BATCHNORM || nd->n_in < 5 || nd->in[1] < 0 || nd->in[4] < 0) continue;
        const advex_value *sc = &g->vals[nd->in[1]], *var = &g->vals[nd->in[4]];
        if (sc->kind < ADVEX_VAL_PARAM || var->kind < ADVEX_VAL_PARAM || !sc->data || !var->data) continue;
        float eps = nd->a.epsilon;
        if (!isfinite(eps) || eps < 0)
            return advex_set_error(ADVEX_ERR_NUMERIC, "node '%s' (BatchNormalization): epsilon is %g", nd->name,
                                   (double)eps);
        int64_t n = advex_numel(var->ndim, var->dims), ns = advex_numel(sc->ndim, sc->dims);
        for (int64_t c = 0; c < n; c++) {
            float d = var->data[c] + eps;
            if (!(d > 0))
                return advex_set_error(ADVEX_ERR_NUMERIC, "node '%s' (BatchNormalization): variance '%s' element %lld "
                                       "is %g, so var + epsilon = %g is not positive (a corrupt model)", nd->name,
                                       var->name, (long long)c, (double)var->data[c], (double)d);
            if (c < ns && !isfinite(sc->data[c] / sqrtf(d)))
                return advex_set_error(ADVEX_ERR_NUMERIC, "node '%s' (BatchNormalization): scale '%s' / sqrt(var + "
                                       "epsilon) overflows at element %lld (%g / sqrt(%g))", nd->name, sc->name,
                                       (long long)c, (double)sc->data[c], (double)d);
        }
    }
    return ADVEX_OK;
}

advex_status advex_model_check_weights(const advex_model *m) {
    advex_status st = check_finite(m);
    return st ? st : check_batchnorm(m);
}

advex_status advex_check_example_size(const advex_model *m, int64_t n, int64_t floats) {
    const advex_value *in = &m->g.vals[m->g.input];
    int64_t per = 1;
    for (int i = 1; i < in->ndim; i++) per *= in->dims[i]; /* each at most 65536: no overflow in 3 */
    char a[32], b[32];
    if (per > ADVEX_MAX_EXAMPLE_INPUT)
        return advex_set_error(ADVEX_ERR_LIMIT, "input '%s' is %lldx%lldx%lld: %lld values per example, more than "
                               "the %lld advex takes", in->name, (long long)in->dims[1], (long long)in->dims[2],
                               (long long)in->dims[3], (long long)per, (long long)ADVEX_MAX_EXAMPLE_INPUT);
    if (n > 0 && floats / n > ADVEX_MAX_EXAMPLE_FLOATS) {
        /* name the largest activation: that is usually where a hostile shape blows up */
        const advex_node *big = NULL;
        int64_t most = -1;
        for (int i = 0; i < m->g.n_nodes; i++) {
            const advex_value *o = &m->g.vals[m->g.nodes[i].out[0]];
            int64_t k = advex_numel(o->ndim, o->dims);
            if (k > most) { most = k; big = &m->g.nodes[i]; }
        }
        return advex_set_error(ADVEX_ERR_LIMIT, "the activations of one example need %s (node '%s' alone outputs %lld "
                               "values), more than the %s advex allows per example", advex_fmt_bytes(floats / n * 4, a),
                               big ? big->name : "?", (long long)most, advex_fmt_bytes(ADVEX_MAX_EXAMPLE_FLOATS * 4, b));
    }
    return ADVEX_OK;
}
