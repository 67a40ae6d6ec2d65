/* Checks of a net's numbers: weights and constants from a file (finite; BatchNorm
 * statistics that give a finite scale), and the sizes one example of a plan needs (input
 * and activations, bounded before anything is allocated). Gradients are checked after each
 * backward pass (plan.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *nonfinite_name(float v) { return v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf"; }

/* Weights from a file are untrusted: a NaN or Inf in one would poison every result. */
static advex_status check_finite(const advex_net *net) {
    const advex_graph *g = &net->g;
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

/* A BatchNorm computes scale / sqrt(var + eps) per channel: a negative variance (or
 * var + eps <= 0, an infinite quotient) gives NaN or Inf that the next Relu turns into
 * plausible but wrong numbers. Checked where the statistics are known at load time. */
static advex_status check_batchnorm(const advex_net *net) {
    const advex_graph *g = &net->g;
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

advex_status advex_net_check_weights(const advex_net *net) {
    advex_status st = check_finite(net);
    return st ? st : check_batchnorm(net);
}

advex_status advex_plan_check_size(const advex_plan *p, int64_t floats) {
    const advex_graph *g = &p->net->g;
    const advex_value *in = &p->v[g->input];
    int64_t n = in->ndim > 0 ? in->dims[0] : 1;
    int64_t per = in->ndim > 1 ? advex_numel(in->ndim - 1, in->dims + 1) : 1; /* -1: overflows */
    char a[32], b[32];
    if (per < 0 || per > ADVEX_MAX_EXAMPLE_INPUT) {
        char shape[160];
        size_t o = 0;
        for (int i = 1; i < in->ndim && o < sizeof shape; i++)
            o += (size_t)snprintf(shape + o, sizeof shape - o, i > 1 ? "x%lld" : "%lld", (long long)in->dims[i]);
        char count[32] = "too many";
        if (per >= 0) snprintf(count, sizeof count, "%lld", (long long)per);
        return advex_set_error(ADVEX_ERR_LIMIT, "input '%s' is %s: %s values per example, more than the %lld advex "
                               "takes", in->name, shape, count, (long long)ADVEX_MAX_EXAMPLE_INPUT);
    }
    if (n > 0 && floats / n > ADVEX_MAX_EXAMPLE_FLOATS) {
        /* name the largest activation: that is usually where a hostile shape blows up */
        const advex_node *big = NULL;
        int64_t most = -1;
        for (int i = 0; i < g->n_nodes; i++) {
            const advex_value *o = &p->v[g->nodes[i].out[0]];
            int64_t k = advex_numel(o->ndim, o->dims);
            if (k > most) { most = k; big = &g->nodes[i]; }
        }
        return advex_set_error(ADVEX_ERR_LIMIT, "the activations of one example need %s (node '%s' alone outputs %lld "
                               "values), more than the %s advex allows per example", advex_fmt_bytes(floats / n * 4, a),
                               big ? big->name : "?", (long long)most, advex_fmt_bytes(ADVEX_MAX_EXAMPLE_FLOATS * 4, b));
    }
    return ADVEX_OK;
}
