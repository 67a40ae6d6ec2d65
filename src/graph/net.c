/* The net: building a graph (values, nodes), finalising it (topological order, contiguous
 * parameter storage, weight checks, the fusion marks of fuse.c) and sharing it between model
 * handles. Plans (plan.c) run it. */
#include <math.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

advex_net *advex_net_new(const char *source) {
    advex_net *net = calloc(1, sizeof *net);
    if (!net) return NULL;
    net->source = advex_strdup(source ? source : "model");
    if (!net->source) { free(net); return NULL; }
    net->g.input = net->g.output = -1;
    net->refs = 1;
    return net;
}

void advex_net_release(advex_net *net) {
    if (!net) return;
    int left;
#pragma omp atomic capture
    left = --net->refs;
    if (left > 0) return;
    for (int i = 0; i < net->g.n_vals; i++) {
        advex_value *v = &net->g.vals[i];
        free(v->name);
        /* before finalize, constant values own their data */
        if (!net->params && !net->consts && v->kind >= ADVEX_VAL_PARAM) advex_ffree(v->data);
    }
    for (int i = 0; i < net->g.n_nodes; i++) {
        free(net->g.nodes[i].name);
        free(net->g.nodes[i].in);
    }
    free(net->g.vals);
    free(net->g.nodes);
    advex_ffree(net->params);
    advex_ffree(net->consts);
    free(net->source);
    free(net);
}

int advex_graph_add_value(advex_graph *g, const char *name, advex_value_kind kind, int ndim,
                          const int64_t *dims) {
    if (ndim < 0 || ndim > ADVEX_MAX_DIMS) {
        advex_set_error(ADVEX_ERR_UNSUPPORTED, "value %s: rank %d (advex supports up to %d)",
                        name ? name : "?", ndim, ADVEX_MAX_DIMS);
        return -1;
    }
    if (g->n_vals == g->cap_vals) {
        int cap = g->cap_vals ? g->cap_vals * 2 : 32;
        advex_value *nv = realloc(g->vals, (size_t)cap * sizeof *nv);
        if (!nv) { advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory"); return -1; }
        g->vals = nv;
        g->cap_vals = cap;
    }
    advex_value *v = &g->vals[g->n_vals];
    memset(v, 0, sizeof *v);
    v->name = advex_strdup(name ? name : "");
    if (!v->name) { advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory"); return -1; }
    v->kind = kind;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++) v->dims[i] = dims ? dims[i] : 0;
    v->producer = -1;
    if (kind >= ADVEX_VAL_PARAM) {
        int64_t n = advex_numel(ndim, v->dims);
        if (n < 0) {
            advex_set_error(ADVEX_ERR_LIMIT, "value %s: shape overflows", v->name);
            free(v->name);
            return -1;
        }
        v->data = advex_falloc(n);
        if (!v->data) {
            char what[160];
            snprintf(what, sizeof what, "%s '%.120s'",
                     kind == ADVEX_VAL_PARAM ? "the weights" : kind == ADVEX_VAL_STATE ? "the running statistics"
                                                                                       : "the constant", v->name);
            advex_alloc_error(n, what);
            free(v->name);
            return -1;
        }
        memset(v->data, 0, (size_t)n * sizeof(float));
    }
    return g->n_vals++;
}

int advex_graph_find_value(const advex_graph *g, const char *name) {
    for (int i = g->n_vals - 1; i >= 0; i--)
        if (strcmp(g->vals[i].name, name) == 0) return i;
    return -1;
}

int advex_graph_add_node(advex_graph *g, advex_op_type op, const char *name, int n_in,
                         const int *in, int out) {
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 32;
        advex_node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) { advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory"); return -1; }
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    advex_node *nd = &g->nodes[g->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->name = advex_strdup(name ? name : "");
    nd->in = malloc((size_t)(n_in > 0 ? n_in : 1) * sizeof(int));
    if (!nd->name || !nd->in) {
        free(nd->name);
        free(nd->in);
        advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory");
        return -1;
    }
    if (n_in > 0) memcpy(nd->in, in, (size_t)n_in * sizeof(int));
    nd->n_in = n_in;
    nd->n_out = 1;
    nd->out[0] = out;
    nd->out[1] = -1;
    advex_attrs_default(&nd->a);
    return g->n_nodes++;
}

/* Nodes in topological order (advex_kahn over each node's consumers, a CSR list); also
 * checks every input value is defined exactly once. */
static advex_status topo_sort(advex_graph *g) {
    int nn = g->n_nodes, nv = g->n_vals;
    size_t nn1 = (size_t)nn + 1;
    int64_t n_edges = 0;
    for (int i = 0; i < nn; i++) n_edges += g->nodes[i].n_in;
    int *indeg = calloc(nn1, sizeof(int));
    int *order = malloc(nn1 * sizeof(int));
    int *cstart = calloc(nn1 + 1, sizeof(int));      /* consumers of node p: cons[cstart[p]..cstart[p+1]) */
    int *cons = malloc(((size_t)n_edges + 1) * sizeof(int));
    int *fill = calloc(nn1, sizeof(int));
    advex_node *sorted = NULL;
    advex_status st = ADVEX_OK;
    if (!indeg || !order || !cstart || !cons || !fill) { st = advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory"); goto done; }
    for (int i = 0; i < nv; i++) g->vals[i].producer = -1;
    for (int i = 0; i < nn; i++) {
        int o = g->nodes[i].out[0];
        if (o < 0 || o >= nv) { st = advex_set_error(ADVEX_ERR_FORMAT, "node %s: bad output", g->nodes[i].name); goto done; }
        if (g->vals[o].kind != ADVEX_VAL_ACT || g->vals[o].producer >= 0) {
            st = advex_set_error(ADVEX_ERR_FORMAT, "node %s: output '%s' is already defined",
                                 g->nodes[i].name, g->vals[o].name);
            goto done;
        }
        g->vals[o].producer = i;
    }
    for (int i = 0; i < nn; i++) {
        advex_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_in; k++) {
            int v = nd->in[k];
            if (v < 0) continue;
            if (v >= nv) { st = advex_set_error(ADVEX_ERR_FORMAT, "node %s: bad input", nd->name); goto done; }
            if (g->vals[v].kind == ADVEX_VAL_ACT) {
                if (g->vals[v].producer < 0) {
                    st = advex_set_error(ADVEX_ERR_FORMAT, "node %s: input '%s' is never produced (missing initializer?)",
                                         nd->name, g->vals[v].name);
                    goto done;
                }
                indeg[i]++;
                cstart[g->vals[v].producer + 1]++;
            }
        }
    }
    for (int p = 0; p < nn; p++) cstart[p + 1] += cstart[p];
    for (int i = 0; i < nn; i++) {
        advex_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_in; k++) {
            int v = nd->in[k];
            if (v < 0 || g->vals[v].kind != ADVEX_VAL_ACT) continue;
            int p = g->vals[v].producer;
            cons[cstart[p] + fill[p]++] = i;
        }
    }
    int tail = advex_kahn(nn, indeg, cstart, cons, order);
    if (tail != nn) {
        for (int i = 0; i < nn; i++)
            if (indeg[i] > 0) {
                st = advex_set_error(ADVEX_ERR_FORMAT, "graph has a cycle (through node %s)", g->nodes[i].name);
                goto done;
            }
    }
    sorted = malloc(nn1 * sizeof *sorted);
    if (!sorted) { st = advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory"); goto done; }
    for (int i = 0; i < nn; i++) sorted[i] = g->nodes[order[i]];
    free(g->nodes);
    g->nodes = sorted;
    g->cap_nodes = nn ? nn : 1;
    for (int i = 0; i < nn; i++) g->vals[g->nodes[i].out[0]].producer = i;
done:
    free(indeg);
    free(order);
    free(cstart);
    free(cons);
    free(fill);
    return st;
}

/* Move PARAM values into one contiguous buffer (and CONST/STATE into another), one value at
 * a time, each block given back as soon as it is copied: the new buffers' pages become
 * resident only as they are written, so the move holds about one copy of the weights, not
 * two (vgg11's 0.5 GB). Only the padding between values is zeroed. */
static advex_status pack_storage(advex_net *net) {
    advex_graph *g = &net->g;
    int64_t np = 0, nc = 0;
    for (int i = 0; i < g->n_vals; i++) {
        advex_value *v = &g->vals[i];
        if (v->kind < ADVEX_VAL_PARAM) continue;
        int64_t n = advex_numel(v->ndim, v->dims);
        int64_t *acc = v->kind == ADVEX_VAL_PARAM ? &np : &nc;
        v->offset = *acc;
        if (!advex_add_i64(*acc, (n + 15) / 16 * 16, acc))
            return advex_set_error(ADVEX_ERR_LIMIT, "model parameters overflow");
    }
    float *params = advex_falloc(np), *consts = NULL;
    advex_status st = ADVEX_OK;
    /* (until the copy below the weights are counted twice: as tensors and as this block) */
    if (!params) st = advex_alloc_error(np, "the model's weights, moved into one block");
    else if (!(consts = advex_falloc(nc))) st = advex_alloc_error(nc, "the model's constants, moved into one block");
    if (st) {
        advex_ffree(params); advex_ffree(consts);
        return st;
    }
    int64_t freed = 0;
    for (int i = 0; i < g->n_vals; i++) {
        advex_value *v = &g->vals[i];
        if (v->kind < ADVEX_VAL_PARAM) continue;
        int64_t n = advex_numel(v->ndim, v->dims), pad = (n + 15) / 16 * 16 - n;
        float *dst = (v->kind == ADVEX_VAL_PARAM ? params : consts) + v->offset;
        memcpy(dst, v->data, (size_t)n * sizeof(float));
        memset(dst + n, 0, (size_t)pad * sizeof(float));
        advex_ffree(v->data);
        v->data = dst;
        v->grad = NULL;
        freed += n;
#ifdef __GLIBC__
        if (freed >= (16 << 20)) { /* blocks below glibc's mmap threshold stay resident unless trimmed */
            malloc_trim(0);
            freed = 0;
        }
#endif
    }
    net->params = params;
    net->consts = consts;
    net->n_consts = nc;
    net->n_params = np;
    return ADVEX_OK;
}

advex_status advex_net_finalize(advex_net *net, int images) {
    advex_graph *g = &net->g;
    if (g->input < 0 || g->output < 0)
        return advex_set_error(ADVEX_ERR_FORMAT, "model has no input or no output");
    advex_value *in = &g->vals[g->input];
    if (images) {
        if (in->ndim != 4)
            return advex_set_error(ADVEX_ERR_UNSUPPORTED, "input '%s' has rank %d; advex expects images (N,C,H,W)",
                                   in->name, in->ndim);
        for (int i = 1; i < 4; i++)
            if (in->dims[i] <= 0 || in->dims[i] > 65536)
                return advex_set_error(ADVEX_ERR_UNSUPPORTED,
                                       "input '%s': dimension %d is %lld (need a fixed size 1..65536)", in->name, i,
                                       (long long)in->dims[i]);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        advex_node *nd = &g->nodes[i];
        const advex_op_def *def = &advex_op_defs[nd->op];
        if (nd->n_in < def->min_in || nd->n_in > def->max_in)
            return advex_set_error(ADVEX_ERR_FORMAT, "node %s (%s): %d inputs (expected %d..%d)", nd->name,
                                   def->name, nd->n_in, def->min_in, def->max_in);
    }
    advex_status st;
    if ((st = topo_sort(g)) || (st = pack_storage(net)) || (st = advex_net_mark(net))) return st;
    if (!images) return ADVEX_OK; /* a general net (ONNX conformance tests): its constants are test data */
    if ((st = advex_net_check_weights(net))) return st;
    for (int i = 0; i < 3; i++) net->in_chw[i] = in->dims[i + 1];
    /* a plan's shapes at N = 1 check every shape and tell the class count (no buffers) */
    advex_plan *p;
    if ((st = advex_plan_new(net, &p))) return st;
    p->shapes_only = 1;
    st = advex_plan_images(p, 1, 0, 0);
    const advex_value *out = st ? NULL : advex_plan_output_value(p);
    if (!st && (out->ndim != 2 || out->dims[0] != 1))
        st = advex_set_error(ADVEX_ERR_UNSUPPORTED, "output '%s' has shape of rank %d; advex expects logits (N, classes)",
                             out->name, out->ndim);
    if (!st) net->classes = out->dims[1];
    advex_plan_free(p);
    return st;
}
