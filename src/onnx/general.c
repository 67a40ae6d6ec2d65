/* The general (internal, test-only) form of an imported model: any input rank, every
 * shape fixed at load time, any output rank. ONNX's conformance tests run through it so
 * the op kernels see the real test data; the public model API stays images -> logits. */
#include <string.h>

#include "onnx_internal.h"

/* Plan buffers once (eval mode, no gradients): shapes are fixed by the given input. */
advex_status onnx_general_finish(advex_model *m) {
    advex_graph *g = &m->g;
    int64_t total = 0, scratch = 0;
    if (g->input < 0 || g->output < 0) return advex_set_error(ADVEX_ERR_FORMAT, "model has no input or no output");
    for (int i = 0; i < g->n_nodes; i++) {
        advex_node *nd = &g->nodes[i];
        const advex_op_def *def = &advex_op_defs[nd->op];
        if (nd->n_in < def->min_in || nd->n_in > def->max_in)
            return advex_set_error(ADVEX_ERR_FORMAT, "node %s (%s): %d inputs (expected %d..%d)", nd->name,
                                   def->name, nd->n_in, def->min_in, def->max_in);
        advex_status st = def->infer(nd, g->vals);
        if (st) return st;
        int64_t numel = advex_numel(g->vals[nd->out[0]].ndim, g->vals[nd->out[0]].dims);
        int64_t a = def->aux ? def->aux(nd, g->vals, 0) : 0, s = def->scratch ? def->scratch(nd, g->vals, 0) : 0;
        if (numel < 0 || a < 0 || s < 0 || numel > ((int64_t)1 << 32) || a > ((int64_t)1 << 32))
            return advex_set_error(ADVEX_ERR_LIMIT, "node %s: output too large", nd->name);
        if (s > scratch) scratch = s;
        total += (numel + 15) / 16 * 16 + (a + 15) / 16 * 16;
    }
    total += (scratch + 15) / 16 * 16;
    m->arena = advex_falloc(total > 0 ? total : 16);
    if (!m->arena) return advex_alloc_error(total, "the activations");
    m->arena_cap = total;
    float *p = m->arena;
    for (int i = 0; i < g->n_nodes; i++) {
        advex_node *nd = &g->nodes[i];
        const advex_op_def *def = &advex_op_defs[nd->op];
        advex_value *o = &g->vals[nd->out[0]];
        o->data = p;
        o->grad = NULL;
        p += (advex_numel(o->ndim, o->dims) + 15) / 16 * 16;
        nd->aux_n = def->aux ? def->aux(nd, g->vals, 0) : 0;
        nd->aux = nd->aux_n ? p : NULL;
        p += (nd->aux_n + 15) / 16 * 16;
    }
    m->scratch = p;
    m->scratch_n = scratch;
    m->plan_n = -1; /* never a public plan */
    return ADVEX_OK;
}

advex_status advex_onnx_general_forward(advex_model *m, const float *x, int *ndim, int64_t *dims,
                                        const float **y) {
    advex_graph *g = &m->g;
    if (!m->arena || m->plan_n != -1) return advex_set_error(ADVEX_ERR_ARG, "not a model from advex_onnx_load_general");
    advex_op_ctx c = {0, &m->rng, m->scratch, m->scratch_n};
    g->vals[g->input].data = (float *)x; /* read only */
    for (int i = 0; i < g->n_nodes; i++) advex_op_defs[g->nodes[i].op].forward(&g->nodes[i], g->vals, &c);
    const advex_value *o = &g->vals[g->output];
    *ndim = o->ndim;
    memcpy(dims, o->dims, sizeof o->dims);
    *y = o->data;
    return ADVEX_OK;
}
