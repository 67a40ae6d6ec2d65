/* Fusion of exporters' decompositions into single-pass ops, on a graph being built (before
 * finalize): PyTorch exports F.layer_norm at opsets below 17 as ReduceMean, Sub, Pow,
 * ReduceMean, Add eps, Sqrt, Div, Mul scale, Add bias, exact GELU as
 * 0.5 * x * (1 + erf(x / sqrt 2)) and SiLU as x * sigmoid(x). Each such chain whose inner
 * values have no other use becomes one LayerNormalization (scale and bias made trainable
 * parameters), one Gelu or one Sigmoid in SiLU mode: one pass over the activation instead of
 * nine, five or two, and no buffers for the steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct pctx {
    advex_graph *g;
    int *prod;  /* (n_vals) producing node, -1 */
    int *uses;  /* (n_vals) consuming input slots */
    int *cons;  /* (n_vals) a node consuming it (the one when uses is 1), -1 */
    char *dead; /* (n_nodes) removed by a fusion */
} pctx;

/* The node producing v if it is `op`, v's only use is one slot and it is still there; else -1. */
static int only(const pctx *c, int v, advex_op_type op) {
    if (v < 0 || c->uses[v] != 1 || c->g->vals[v].kind != ADVEX_VAL_ACT) return -1;
    int p = c->prod[v];
    return p >= 0 && !c->dead[p] && c->g->nodes[p].op == op ? p : -1;
}

/* The node consuming v if it is `op` and v's only use; else -1. */
static int next(const pctx *c, int v, advex_op_type op) {
    if (v < 0 || c->uses[v] != 1) return -1;
    int p = c->cons[v];
    return p >= 0 && !c->dead[p] && c->g->nodes[p].op == op ? p : -1;
}

/* 1 if v is a one-element constant within tol of want (any want when tol < 0); *got its value */
static int scalar(const pctx *c, int v, double want, double tol, float *got) {
    const advex_value *x = v >= 0 ? &c->g->vals[v] : NULL;
    if (!x || (x->kind != ADVEX_VAL_CONST && x->kind != ADVEX_VAL_PARAM) || !x->data || advex_numel(x->ndim, x->dims) != 1)
        return 0;
    if (got) *got = x->data[0];
    return tol < 0 || fabs(x->data[0] - want) <= tol;
}

/* Input of binary node n other than `v` (n reads v in one of its two slots); -1 if neither. */
static int other(const advex_node *n, int v) {
    if (n->n_in != 2) return -1;
    return n->in[0] == v ? n->in[1] : n->in[1] == v ? n->in[0] : -1;
}

/* A ReduceMean over the last k axes of a rank-r input, keepdims: k, else 0. */
static int trailing_mean(const pctx *c, const advex_node *n) {
    int r = c->g->vals[n->in[0]].ndim, seen[ADVEX_MAX_DIMS] = {0}, k = n->a.n_ints;
    if (n->op != ADVEX_OP_REDUCE_MEAN || !n->a.keepdims || k < 1 || r < 1) return 0;
    for (int j = 0; j < k; j++) {
        int64_t ax = n->a.ints[j] < 0 ? n->a.ints[j] + r : n->a.ints[j];
        if (ax < r - k || ax >= r || seen[ax]++) return 0;
    }
    return k;
}

/* A per-row parameter for LayerNormalization: a constant of D elements (trainable from now). */
static int row_param(pctx *c, int v, int64_t D) {
    advex_value *x = v >= 0 ? &c->g->vals[v] : NULL;
    if (!x || (x->kind != ADVEX_VAL_CONST && x->kind != ADVEX_VAL_PARAM) || advex_numel(x->ndim, x->dims) != D) return 0;
    for (int d = 0; d + 1 < x->ndim; d++)
        if (x->dims[d] != 1 && advex_numel(x->ndim - d, x->dims + d) != D) return 0;
    return 1;
}

/* n: the Div of (x - mean) by sqrt(var + eps). Rewrites the chain's last node (Div, Mul by
 * the scale, or Add of the bias) into LayerNormalization(x, scale, bias). */
static void fuse_layernorm(pctx *c, int div) {
    advex_graph *g = c->g;
    advex_node *dv = &g->nodes[div];
    int sub = c->prod[dv->in[0]], sq = only(c, dv->in[1], ADVEX_OP_SQRT), v_d = dv->in[0];
    if (sub < 0 || sq < 0 || g->nodes[sub].op != ADVEX_OP_SUB || c->uses[v_d] != 2) return;
    advex_node *sb = &g->nodes[sub];
    int x = sb->in[0], m1 = only(c, sb->in[1], ADVEX_OP_REDUCE_MEAN);
    int add = only(c, g->nodes[sq].in[0], ADVEX_OP_ADD);
    if (m1 < 0 || add < 0 || g->nodes[m1].in[0] != x) return;
    int k = trailing_mean(c, &g->nodes[m1]);
    advex_node *ad = &g->nodes[add];
    float eps;
    int var = scalar(c, ad->in[1], 0, -1, &eps) ? ad->in[0] : scalar(c, ad->in[0], 0, -1, &eps) ? ad->in[1] : -1;
    int m2 = only(c, var, ADVEX_OP_REDUCE_MEAN);
    int pw = m2 >= 0 ? only(c, g->nodes[m2].in[0], ADVEX_OP_POW) : -1;
    if (!k || m2 < 0 || pw < 0 || trailing_mean(c, &g->nodes[m2]) != k || g->nodes[pw].in[0] != v_d ||
        !scalar(c, g->nodes[pw].in[1], 2.0, 0.0, NULL) || !(eps >= 0.0f))
        return;
    for (int j = 0; j < k; j++) /* the same axes */
        if ((g->nodes[m1].a.ints[j] - g->nodes[m2].a.ints[j]) % g->vals[x].ndim) return;
    const advex_value *X = &g->vals[x];
    int64_t D = advex_numel(k, X->dims + X->ndim - k);
    int last = div, scale = -1, bias = -1, mul, badd;
    if ((mul = next(c, dv->out[0], ADVEX_OP_MUL)) >= 0 && row_param(c, other(&g->nodes[mul], dv->out[0]), D)) {
        scale = other(&g->nodes[mul], dv->out[0]);
        last = mul;
        if ((badd = next(c, g->nodes[mul].out[0], ADVEX_OP_ADD)) >= 0 &&
            row_param(c, other(&g->nodes[badd], g->nodes[mul].out[0]), D)) {
            bias = other(&g->nodes[badd], g->nodes[mul].out[0]);
            last = badd;
        }
    }
    if (scale < 0) { /* no affine part: a scale of ones */
        scale = advex_graph_add_value(g, "layernorm_ones", ADVEX_VAL_CONST, 1, &D);
        if (scale < 0) return;
        for (int64_t j = 0; j < D; j++) g->vals[scale].data[j] = 1.0f;
    }
    for (int w = 0; w < 2; w++) {
        advex_value *p = &g->vals[w ? bias : scale];
        if ((w ? bias : scale) >= 0 && p->kind == ADVEX_VAL_CONST) p->kind = ADVEX_VAL_PARAM;
    }
    advex_node *o = &g->nodes[last];
    int *in = realloc(o->in, 3 * sizeof(int));
    if (!in) return;
    o->in = in;
    o->in[0] = x;
    o->in[1] = scale;
    o->in[2] = bias;
    o->n_in = bias >= 0 ? 3 : 2;
    advex_attrs_default(&o->a);
    o->op = ADVEX_OP_LAYER_NORM;
    o->a.axis = -k;
    o->a.epsilon = eps;
    int steps[8] = {m1, sub, pw, m2, add, sq, div, mul};
    for (int j = 0; j < 8; j++)
        if (steps[j] >= 0 && steps[j] != last && (j < 7 || last != div)) c->dead[steps[j]] = 1;
}

/* e = Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5) (operands in either order) -> Gelu(x) */
static void fuse_gelu(pctx *c, int erf) {
    advex_graph *g = c->g;
    int div = only(c, g->nodes[erf].in[0], ADVEX_OP_DIV);
    int add = next(c, g->nodes[erf].out[0], ADVEX_OP_ADD);
    if (div < 0 || add < 0 || !scalar(c, g->nodes[div].in[1], 1.41421356237, 1e-6, NULL) ||
        !scalar(c, other(&g->nodes[add], g->nodes[erf].out[0]), 1.0, 0.0, NULL))
        return;
    int x = g->nodes[div].in[0], m1 = next(c, g->nodes[add].out[0], ADVEX_OP_MUL);
    if (m1 < 0 || other(&g->nodes[m1], g->nodes[add].out[0]) != x) return;
    int m2 = next(c, g->nodes[m1].out[0], ADVEX_OP_MUL);
    if (m2 < 0 || !scalar(c, other(&g->nodes[m2], g->nodes[m1].out[0]), 0.5, 0.0, NULL)) return;
    advex_node *o = &g->nodes[m2];
    o->in[0] = x;
    o->n_in = 1;
    advex_attrs_default(&o->a);
    o->op = ADVEX_OP_GELU;
    c->dead[div] = c->dead[erf] = c->dead[add] = c->dead[m1] = 1;
}

/* Mul(x, Sigmoid(x)) (operands in either order) -> Sigmoid(x) in SiLU mode (act.c): one pass
 * and no buffer for the sigmoid, whose value the backward pass recomputes from x. */
static void fuse_silu(pctx *c, int sig) {
    advex_graph *g = c->g;
    int s = g->nodes[sig].out[0], x = g->nodes[sig].in[0], mul = next(c, s, ADVEX_OP_MUL);
    if (mul < 0 || x < 0 || other(&g->nodes[mul], s) != x || g->nodes[mul].in[0] == g->nodes[mul].in[1]) return;
    advex_node *o = &g->nodes[mul];
    o->in[0] = x;
    o->n_in = 1;
    advex_attrs_default(&o->a);
    o->op = ADVEX_OP_SIGMOID;
    o->a.mode = 1;
    c->dead[sig] = 1;
}

advex_status advex_graph_fuse_patterns(advex_graph *g) {
    pctx c = {g, malloc(((size_t)g->n_vals + 1) * sizeof(int)), calloc((size_t)g->n_vals + 1, sizeof(int)),
              malloc(((size_t)g->n_vals + 1) * sizeof(int)), calloc((size_t)g->n_nodes + 1, 1)};
    if (!c.prod || !c.uses || !c.cons || !c.dead) {
        free(c.prod); free(c.uses); free(c.cons); free(c.dead);
        return advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory");
    }
    for (int v = 0; v < g->n_vals; v++) c.prod[v] = c.cons[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        c.prod[g->nodes[i].out[0]] = i;
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0) {
                c.uses[g->nodes[i].in[k]]++;
                c.cons[g->nodes[i].in[k]] = i;
            }
    }
    if (g->output >= 0) c.uses[g->output]++; /* the graph output is used */
    for (int i = 0; i < g->n_nodes; i++) {
        if (c.dead[i]) continue;
        if (g->nodes[i].op == ADVEX_OP_DIV) fuse_layernorm(&c, i);
        else if (g->nodes[i].op == ADVEX_OP_ERF) fuse_gelu(&c, i);
        else if (g->nodes[i].op == ADVEX_OP_SIGMOID && g->nodes[i].a.mode == 0) fuse_silu(&c, i);
    }
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) { /* drop the fused steps (their values stay, unused) */
        if (c.dead[i]) {
            free(g->nodes[i].name);
            free(g->nodes[i].in);
            continue;
        }
        g->nodes[n++] = g->nodes[i];
    }
    g->n_nodes = n;
    free(c.prod);
    free(c.uses);
    free(c.cons);
    free(c.dead);
    return ADVEX_OK;
}
