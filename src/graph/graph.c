/* The model graph: building (values, nodes), finalising (topological order, contiguous
 * parameter storage), planning buffers for a batch size, and running forward/backward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

advex_model *advex_model_new(const char *source) {
    advex_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->source = advex_strdup(source ? source : "model");
    if (!m->source) { free(m); return NULL; }
    m->g.input = m->g.output = -1;
    advex_rng_seed(&m->rng, 0x5eed);
    return m;
}

void advex_model_free(advex_model *m) {
    if (!m) return;
    for (int i = 0; i < m->g.n_vals; i++) {
        advex_value *v = &m->g.vals[i];
        free(v->name);
        /* before finalize, constant values own their data */
        if (!m->params && !m->consts && v->kind >= ADVEX_VAL_PARAM) advex_ffree(v->data);
    }
    for (int i = 0; i < m->g.n_nodes; i++) {
        free(m->g.nodes[i].name);
        free(m->g.nodes[i].in);
    }
    free(m->g.vals);
    free(m->g.nodes);
    advex_ffree(m->params);
    advex_ffree(m->grads);
    advex_ffree(m->consts);
    advex_ffree(m->arena);
    advex_ffree(m->ws);
    free(m->bw_zero);
    free(m->plan_tmp);
    advex_model_eval_end(m);
    advex_model_free_replicas(m);
    free(m->source);
    free(m);
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
            snprintf(what, sizeof what, "tensor '%.120s'", v->name);
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

/* Kahn's algorithm over nodes in O(nodes + edges), using a CSR list of each value's
 * consumers; also checks every input value is defined exactly once. */
static advex_status topo_sort(advex_model *m) {
    advex_graph *g = &m->g;
    int nn = g->n_nodes, nv = g->n_vals;
    size_t nn1 = (size_t)nn + 1, nv1 = (size_t)nv + 1;
    int64_t n_edges = 0;
    for (int i = 0; i < nn; i++) n_edges += g->nodes[i].n_in;
    int *indeg = calloc(nn1, sizeof(int));
    int *order = malloc(nn1 * sizeof(int));
    int *cstart = calloc(nv1 + 1, sizeof(int));      /* consumers of value v: cons[cstart[v]..cstart[v+1]) */
    int *cons = malloc(((size_t)n_edges + 1) * sizeof(int));
    int *fill = calloc(nv1, sizeof(int));
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
                cstart[v + 1]++;
            }
        }
    }
    for (int v = 0; v < nv; v++) cstart[v + 1] += cstart[v];
    for (int i = 0; i < nn; i++) {
        advex_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_in; k++) {
            int v = nd->in[k];
            if (v >= 0 && g->vals[v].kind == ADVEX_VAL_ACT) cons[cstart[v] + fill[v]++] = i;
        }
    }
    int head = 0, tail = 0;
    for (int i = 0; i < nn; i++) if (indeg[i] == 0) order[tail++] = i;
    while (head < tail) {
        int o = g->nodes[order[head++]].out[0];
        for (int e = cstart[o]; e < cstart[o + 1]; e++)
            if (--indeg[cons[e]] == 0) order[tail++] = cons[e];
    }
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

/* Move PARAM values into one contiguous buffer (and CONST/STATE into another). */
static advex_status pack_storage(advex_model *m) {
    advex_graph *g = &m->g;
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
    float *params = advex_falloc(np), *grads = NULL, *consts = NULL;
    advex_status st = ADVEX_OK;
    if (!params) st = advex_alloc_error(np, "the parameters");
    else if (!(grads = advex_falloc(np))) st = advex_alloc_error(np, "the parameter gradients");
    else if (!(consts = advex_falloc(nc))) st = advex_alloc_error(nc, "the constants");
    if (st) {
        advex_ffree(params); advex_ffree(grads); advex_ffree(consts);
        return st;
    }
    memset(params, 0, (size_t)np * sizeof(float));
    memset(grads, 0, (size_t)np * sizeof(float));
    memset(consts, 0, (size_t)nc * sizeof(float));
    int64_t real_np = 0;
    for (int i = 0; i < g->n_vals; i++) {
        advex_value *v = &g->vals[i];
        if (v->kind < ADVEX_VAL_PARAM) continue;
        int64_t n = advex_numel(v->ndim, v->dims);
        float *dst = (v->kind == ADVEX_VAL_PARAM ? params : consts) + v->offset;
        memcpy(dst, v->data, (size_t)n * sizeof(float));
        advex_ffree(v->data);
        v->data = dst;
        v->grad = NULL;
        if (v->kind == ADVEX_VAL_PARAM) real_np += n;
    }
    m->params = params;
    m->grads = grads;
    m->consts = consts;
    m->n_consts = nc;
    m->n_params = np;
    (void)real_np;
    return ADVEX_OK;
}

/* Mark the convolutions whose outputs reach a MaxPool through value-preserving or
 * elementwise ops (activations, BatchNorm, Add/Sub/Mul/Div, Pad, Concat, Dropout,
 * Identity): their forward values decide arg-maxes, so they keep to the most accurate fast
 * algorithm (advex_attrs.precise; see winograd.c). */
/* uses[v]: how many input slots over all nodes read value v (one pass over the edges, so
 * the marking passes below stay linear in the graph's size). NULL when out of memory. */
static int *value_uses(const advex_graph *g) {
    int *uses = calloc((size_t)g->n_vals + 1, sizeof(int));
    if (!uses) return NULL;
    for (int j = 0; j < g->n_nodes; j++)
        for (int k = 0; k < g->nodes[j].n_in; k++)
            if (g->nodes[j].in[k] >= 0) uses[g->nodes[j].in[k]]++;
    return uses;
}

/* A BatchNorm whose input is a Conv's output and that output's only use: in eval mode the
 * Conv computes the BatchNorm's output itself with folded weights w * a and bias
 * (b - mean) * a + B, a = scale / sqrt(var + eps) (conv.c caches them), and the BatchNorm's
 * forward does nothing. Backward is unchanged: eval-mode BatchNorm backward reads only its
 * output gradient, and Conv backward its input and weights, so the Conv's own output buffer
 * is never read. Train mode ignores the mark. */
static void mark_bn_folds(advex_graph *g, const int *uses) {
    for (int i = 0; i < g->n_nodes; i++) {
        advex_node *b = &g->nodes[i];
        int v = b->n_in > 0 ? b->in[0] : -1;
        if (b->op != ADVEX_OP_BATCHNORM || b->n_in < 5 || v < 0 || v == g->output || g->vals[v].kind != ADVEX_VAL_ACT)
            continue;
        int pi = g->vals[v].producer;
        if (pi < 0 || g->nodes[pi].op != ADVEX_OP_CONV || g->nodes[pi].fold) continue;
        if (uses[v] != 1) continue;
        advex_node *c = &g->nodes[pi];
        c->fold = i + 1;
        c->fold_v[0] = b->out[0];
        for (int k = 1; k < 5; k++) c->fold_v[k] = b->in[k];
        c->fold_eps = b->a.epsilon;
        b->fold = -1;
    }
}

/* A Relu whose input is a Conv's, BatchNorm's or Add's output and that output's only use:
 * the producer stores max(0, y) in its own buffer, the Relu's output is that buffer, and the
 * Relu's forward does nothing (one pass over the activation less, forward). Relu backward
 * reads its input only as the mask x > 0, which max(0, x) > 0 gives the same; no producer
 * reads its own output in backward. A folded BatchNorm's Conv applies it in eval mode. */
static void mark_relu_fusion(advex_graph *g, const int *uses) {
    for (int i = 0; i < g->n_nodes; i++) {
        advex_node *r = &g->nodes[i];
        int v = r->n_in > 0 ? r->in[0] : -1;
        if (r->op != ADVEX_OP_RELU || v < 0 || v == g->output || g->vals[v].kind != ADVEX_VAL_ACT) continue;
        int pi = g->vals[v].producer;
        if (pi < 0) continue;
        advex_node *p = &g->nodes[pi];
        if (p->op != ADVEX_OP_CONV && p->op != ADVEX_OP_BATCHNORM && p->op != ADVEX_OP_ADD) continue;
        if (p->out[0] != v || uses[v] != 1) continue;
        p->relu_out = 1;
        r->relu_fused = 1;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == ADVEX_OP_CONV && g->nodes[i].fold > 0)
            g->nodes[i].fold_relu = g->nodes[g->nodes[i].fold - 1].relu_out;
}

/* Views and fused Relus that need no buffer of their own. A Flatten, Reshape or Identity of
 * an activation whose only use it is: its output is the same floats (alias_data) and the
 * gradient of its input is its output's gradient (alias_grad), so neither pass copies. A
 * fused Relu (relu_fused, after a Conv, BatchNorm or Add): the Relu's output gradient,
 * unmasked, becomes the producer's output gradient, and the producer's backward applies the
 * mask [y > 0] (relu_mask) as it reads dY (a pass and a buffer less: conv_s2.c folds it into
 * its dY copy, BatchNorm into its first pass, Add into its copies). Not for the
 * graph output (its gradient is dlogits, checked after backward). */
static void mark_aliases(advex_graph *g, const int *uses) {
    for (int i = 0; i < g->n_nodes; i++) {
        advex_node *nd = &g->nodes[i];
        int u = nd->n_in > 0 ? nd->in[0] : -1, o = nd->out[0];
        if (u < 0 || u == g->output || o == g->output || g->vals[u].kind != ADVEX_VAL_ACT || uses[u] != 1)
            continue;
        if (nd->n_in > 1 && nd->in[1] >= 0 && g->vals[nd->in[1]].kind == ADVEX_VAL_ACT) continue; /* (its grad) */
        if (nd->op == ADVEX_OP_FLATTEN || nd->op == ADVEX_OP_RESHAPE || nd->op == ADVEX_OP_IDENTITY) {
            nd->alias_data = nd->alias_grad = 1;
        } else if (nd->op == ADVEX_OP_RELU && nd->relu_fused) { /* producer: Conv, BatchNorm or Add */
            g->nodes[g->vals[u].producer].relu_mask = 1;
            nd->alias_grad = 1;
        }
    }
}

static advex_status mark_precise_convs(advex_graph *g) {
    int *stack = malloc(((size_t)g->n_vals + 1) * sizeof(int));
    char *seen = calloc((size_t)g->n_vals + 1, 1);
    if (!stack || !seen) {
        free(stack);
        free(seen);
        return advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory");
    }
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != ADVEX_OP_MAXPOOL || g->nodes[i].in[0] < 0) continue;
        int top = 0;
        if (!seen[g->nodes[i].in[0]]) { stack[top++] = g->nodes[i].in[0]; seen[g->nodes[i].in[0]] = 1; }
        while (top > 0) {
            int v = stack[--top], pi = g->vals[v].producer;
            if (pi < 0) continue;
            advex_node *p = &g->nodes[pi];
            switch (p->op) {
            case ADVEX_OP_CONV:
                p->a.precise = 1;
                continue;
            case ADVEX_OP_RELU: case ADVEX_OP_LEAKY_RELU: case ADVEX_OP_SIGMOID: case ADVEX_OP_TANH:
            case ADVEX_OP_CLIP: case ADVEX_OP_BATCHNORM: case ADVEX_OP_DROPOUT: case ADVEX_OP_IDENTITY:
            case ADVEX_OP_PAD: case ADVEX_OP_CONCAT: case ADVEX_OP_ADD: case ADVEX_OP_SUB: case ADVEX_OP_MUL:
            case ADVEX_OP_DIV:
                for (int k = 0; k < p->n_in; k++) {
                    int u = p->in[k];
                    if (u >= 0 && !seen[u] && g->vals[u].kind == ADVEX_VAL_ACT) { seen[u] = 1; stack[top++] = u; }
                }
                continue;
            default:
                continue;
            }
        }
    }
    free(stack);
    free(seen);
    return ADVEX_OK;
}

advex_status advex_model_finalize(advex_model *m) {
    advex_graph *g = &m->g;
    if (g->input < 0 || g->output < 0)
        return advex_set_error(ADVEX_ERR_FORMAT, "model has no input or no output");
    advex_value *in = &g->vals[g->input];
    if (in->ndim != 4)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "input '%s' has rank %d; advex expects images (N,C,H,W)",
                               in->name, in->ndim);
    for (int i = 1; i < 4; i++)
        if (in->dims[i] <= 0 || in->dims[i] > 65536)
            return advex_set_error(ADVEX_ERR_UNSUPPORTED, "input '%s': dimension %d is %lld (need a fixed size 1..65536)",
                                   in->name, i, (long long)in->dims[i]);
    for (int i = 0; i < g->n_nodes; i++) {
        advex_node *nd = &g->nodes[i];
        const advex_op_def *def = &advex_op_defs[nd->op];
        if (nd->n_in < def->min_in || nd->n_in > def->max_in)
            return advex_set_error(ADVEX_ERR_FORMAT, "node %s (%s): %d inputs (expected %d..%d)", nd->name,
                                   def->name, nd->n_in, def->min_in, def->max_in);
    }
    advex_status st = topo_sort(m);
    if (st) return st;
    st = pack_storage(m);
    if (st) return st;
    if ((st = mark_precise_convs(g))) return st;
    int *uses = value_uses(g);
    if (!uses) return advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory");
    mark_bn_folds(g, uses);
    mark_relu_fusion(g, uses);
    mark_aliases(g, uses);
    free(uses);
    st = advex_model_check_weights(m);
    if (st) return st;
    for (int i = 0; i < 3; i++) m->in_chw[i] = in->dims[i + 1];
    st = advex_model_plan(m, 1, 0, 0);
    if (st) return st;
    advex_value *out = &g->vals[g->output];
    if (out->ndim != 2 || out->dims[0] != 1)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED,
                               "output '%s' has shape of rank %d; advex expects logits (N, classes)",
                               out->name, out->ndim);
    m->classes = out->dims[1];
    return ADVEX_OK;
}

/* Gradient write mode (advex_value.grad_write): an INPUT/ACT value consumed through exactly
 * one input slot of one node (a node reading it twice counts twice) whose op honours write
 * mode on that slot gets its gradient stored by that consumer, so run_backward need not zero
 * it first. Never the graph output (its grad starts as dlogits and consumers add to it);
 * never PARAM/CONST/STATE (parameter grads accumulate across passes in model->grads). */
static advex_status plan_grad_write(advex_graph *g) {
    int *uses = calloc((size_t)g->n_vals + 1, sizeof(int)); /* consumer edges per value */
    int *slot_ok = calloc((size_t)g->n_vals + 1, sizeof(int)); /* last consumer honours write */
    if (!uses || !slot_ok) {
        free(uses);
        free(slot_ok);
        return advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory");
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const advex_node *nd = &g->nodes[i];
        const advex_op_def *def = &advex_op_defs[nd->op];
        for (int k = 0; k < nd->n_in; k++) {
            int u = nd->in[k];
            if (u < 0) continue;
            uses[u]++;
            slot_ok[u] = advex_op_grad_write_ok(def, k);
        }
    }
    for (int u = 0; u < g->n_vals; u++) {
        advex_value *v = &g->vals[u];
        v->grad_write = (v->kind == ADVEX_VAL_INPUT || v->kind == ADVEX_VAL_ACT) && u != g->output && uses[u] == 1 &&
                        slot_ok[u];
    }
    free(uses);
    free(slot_ok);
    return ADVEX_OK;
}

/* Greedy best-fit allocator over float offsets of the activation-gradient pool (planning
 * only): free blocks sorted by offset and coalesced; `top` is the pool size so far. With
 * share == 0 every allocation is new (one buffer per value) and freeing does nothing. */
typedef struct grad_pool {
    int64_t *off, *len; /* free blocks (room for n_vals + 1: at most one more than live blocks) */
    int n;
    int64_t top;
    int share;
} grad_pool;

static int64_t grad_pool_alloc(grad_pool *p, int64_t size) {
    if (p->share && size > 0) {
        int best = -1;
        for (int k = 0; k < p->n; k++)
            if (p->len[k] >= size && (best < 0 || p->len[k] < p->len[best])) best = k;
        if (best >= 0) { /* the smallest block that fits (lowest offset on ties); take its front */
            int64_t o = p->off[best];
            p->off[best] += size;
            p->len[best] -= size;
            if (!p->len[best]) {
                memmove(p->off + best, p->off + best + 1, (size_t)(p->n - best - 1) * sizeof(int64_t));
                memmove(p->len + best, p->len + best + 1, (size_t)(p->n - best - 1) * sizeof(int64_t));
                p->n--;
            }
            return o;
        }
        if (p->n && p->off[p->n - 1] + p->len[p->n - 1] == p->top) { /* grow the free block at the top */
            int64_t o = p->off[--p->n];
            p->top = o + size;
            return o;
        }
    }
    int64_t o = p->top;
    p->top += size;
    return o;
}

static void grad_pool_free(grad_pool *p, int64_t o, int64_t size) {
    if (!p->share || size <= 0) return;
    int k = 0;
    while (k < p->n && p->off[k] < o) k++;
    int prev = k > 0 && p->off[k - 1] + p->len[k - 1] == o, next = k < p->n && o + size == p->off[k];
    if (prev && next) {
        p->len[k - 1] += size + p->len[k];
        memmove(p->off + k, p->off + k + 1, (size_t)(p->n - k - 1) * sizeof(int64_t));
        memmove(p->len + k, p->len + k + 1, (size_t)(p->n - k - 1) * sizeof(int64_t));
        p->n--;
    } else if (prev) {
        p->len[k - 1] += size;
    } else if (next) {
        p->off[k] = o;
        p->len[k] += size;
    } else {
        memmove(p->off + k + 1, p->off + k, (size_t)(p->n - k) * sizeof(int64_t));
        memmove(p->len + k + 1, p->len + k, (size_t)(p->n - k) * sizeof(int64_t));
        p->off[k] = o;
        p->len[k] = size;
        p->n++;
    }
}

/* Pool offsets of the activation gradients, by lifetime in the backward pass. Walking the
 * nodes in reverse (the order backward runs them), node i's input ACT grads are allocated
 * before its backward unless a later node (earlier in this walk) already did, its output's
 * grad is freed after it; the graph output's grad is live from the start (dlogits) and an
 * output nobody consumes gets its block (zeroed) at its producer's step. The graph input's
 * grad is not pooled (callers read it after the pass). Fills goff[v] (-1: no pooled grad),
 * *pool_n and the zeroing schedule m->bw_zero. Blocks are multiples of 16 floats. */
static void plan_grad_pool(advex_model *m, int64_t *goff, int64_t *pool_n) {
    advex_graph *g = &m->g;
    int nn = g->n_nodes, nv = g->n_vals;
    int *zoff = m->bw_zero, *zid = m->bw_zero + nn + 1, nz = 0;
    grad_pool p = {m->plan_tmp + (nv + 1), m->plan_tmp + 2 * (nv + 1), 0, 0, !m->grad_noshare};
#define GRAD_BLOCK(v) ((advex_numel(g->vals[v].ndim, g->vals[v].dims) + 15) / 16 * 16)
    for (int v = 0; v < nv; v++) goff[v] = -1;
    if (g->vals[g->output].kind == ADVEX_VAL_ACT) goff[g->output] = grad_pool_alloc(&p, GRAD_BLOCK(g->output));
    for (int i = nn - 1; i >= 0; i--) {
        const advex_node *nd = &g->nodes[i];
        int o = nd->out[0];
        zoff[nn - 1 - i] = nz;
        if (goff[o] < 0) { /* no consumer (every one comes later in topological order) */
            goff[o] = grad_pool_alloc(&p, GRAD_BLOCK(o));
            zid[nz++] = o;
        }
        if (nd->alias_grad) { /* input 0 (this node its only use) takes over the output's block */
            goff[nd->in[0]] = goff[o];
            continue;
        }
        for (int k = 0; k < nd->n_in; k++) {
            int u = nd->in[k];
            if (u < 0 || g->vals[u].kind != ADVEX_VAL_ACT || goff[u] >= 0) continue;
            goff[u] = grad_pool_alloc(&p, GRAD_BLOCK(u));
            zid[nz++] = u;
        }
        grad_pool_free(&p, goff[o], GRAD_BLOCK(o));
    }
    zoff[nn] = nz;
#undef GRAD_BLOCK
    *pool_n = p.top;
}

advex_status advex_model_plan(advex_model *m, int64_t n, int train, int want_grad) {
    advex_graph *g = &m->g;
    if (m->plan_n == n && m->plan_train == train && m->plan_grad >= want_grad && m->arena &&
        (!m->plan_grad || m->plan_noshare == m->grad_noshare))
        return ADVEX_OK;
    if (n <= 0) return advex_set_error(ADVEX_ERR_ARG, "batch size %lld", (long long)n);
    m->plan_n = 0; /* shapes change below: no valid plan until this one completes */
    if (want_grad && !m->bw_zero) {
        m->bw_zero = malloc(((size_t)g->n_nodes + 1 + (size_t)g->n_vals) * sizeof(int));
        m->plan_tmp = malloc(3 * ((size_t)g->n_vals + 1) * sizeof(int64_t));
        if (!m->bw_zero || !m->plan_tmp) {
            free(m->bw_zero);
            free(m->plan_tmp);
            m->bw_zero = NULL;
            m->plan_tmp = NULL;
            return advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory");
        }
    }
    advex_value *in = &g->vals[g->input];
    in->ndim = 4;
    in->dims[0] = n;
    for (int i = 0; i < 3; i++) in->dims[i + 1] = m->in_chw[i] ? m->in_chw[i] : in->dims[i + 1];
    int64_t total = 0, scratch = 0;
    /* shapes, sizes */
    for (int i = 0; i < g->n_nodes; i++) {
        advex_node *nd = &g->nodes[i];
        const advex_op_def *def = &advex_op_defs[nd->op];
        advex_status st = def->infer(nd, g->vals);
        if (st) return st;
        advex_value *o = &g->vals[nd->out[0]];
        int64_t numel = advex_numel(o->ndim, o->dims), a = 0, s = 0;
        if (numel < 0) return advex_set_error(ADVEX_ERR_LIMIT, "node %s: output shape overflows", nd->name);
        if (def->aux) a = def->aux(nd, g->vals, train);
        if (def->scratch) s = def->scratch(nd, g->vals, train);
        if (a < 0 || s < 0 || a > INT64_MAX - 16 || s > INT64_MAX - 16 || numel > INT64_MAX - 16)
            return advex_set_error(ADVEX_ERR_LIMIT, "node %s: working memory size overflows", nd->name);
        if (s > scratch) scratch = s;
        int64_t per = (numel + 15) / 16 * 16, add;
        /* room for the grads too (a bound on the pool): their offsets then fit in int64 */
        if (!advex_mul_i64(per, want_grad ? 2 : 1, &add) || !advex_add_i64(total, add, &total) ||
            !advex_add_i64(total, (a + 15) / 16 * 16, &total))
            return advex_set_error(ADVEX_ERR_LIMIT, "model activations overflow");
    }
    int64_t in_numel = advex_numel(4, in->dims);
    if (in_numel < 0 || in_numel > INT64_MAX - 16) return advex_set_error(ADVEX_ERR_LIMIT, "input shape overflows");
    if (want_grad && !advex_add_i64(total, (in_numel + 15) / 16 * 16, &total))
        return advex_set_error(ADVEX_ERR_LIMIT, "model activations overflow");
    int64_t pool_n = 0, *goff = m->plan_tmp;
    if (want_grad) {
        /* the bound above counted a grad per node output; the pool needs pool_n of them */
        int64_t all = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            const advex_value *o = &g->vals[g->nodes[i].out[0]];
            all += (advex_numel(o->ndim, o->dims) + 15) / 16 * 16;
        }
        plan_grad_pool(m, goff, &pool_n);
        total = total - all + pool_n;
    }
    if (!advex_add_i64(total, (scratch + 15) / 16 * 16, &total))
        return advex_set_error(ADVEX_ERR_LIMIT, "model activations overflow");
    advex_status sz = advex_check_example_size(m, n, total);
    if (sz) return sz;
    if (total > m->arena_cap) {
        float *a = advex_falloc(total);
        if (!a) {
            char what[96];
            snprintf(what, sizeof what, "the activations for batch %lld", (long long)n);
            return advex_alloc_error(total, what);
        }
        advex_ffree(m->arena);
        m->arena = a;
        m->arena_cap = total;
    }
    /* lay out */
    float *p = m->arena;
    for (int i = 0; i < g->n_nodes; i++) {
        advex_node *nd = &g->nodes[i];
        const advex_op_def *def = &advex_op_defs[nd->op];
        advex_value *o = &g->vals[nd->out[0]];
        int64_t per = (advex_numel(o->ndim, o->dims) + 15) / 16 * 16;
        if (nd->relu_fused || nd->alias_data) /* the producer's buffer (mark_relu_fusion, mark_aliases) */
            o->data = g->vals[nd->in[0]].data;
        else {
            o->data = p;
            p += per;
        }
        nd->aux_n = def->aux ? def->aux(nd, g->vals, train) : 0;
        nd->aux = nd->aux_n ? p : NULL;
        if (nd->aux) memset(nd->aux, 0, (size_t)nd->aux_n * sizeof(float)); /* caches start invalid */
        p += (nd->aux_n + 15) / 16 * 16;
    }
    in->grad = NULL;
    if (want_grad) { in->grad = p; p += (in_numel + 15) / 16 * 16; }
    for (int i = 0; i < g->n_vals; i++)
        if (g->vals[i].kind == ADVEX_VAL_ACT) g->vals[i].grad = want_grad && goff[i] >= 0 ? p + goff[i] : NULL;
    p += pool_n;
    m->scratch = p;
    m->scratch_n = scratch;
    for (int i = 0; i < g->n_vals; i++) {
        advex_value *v = &g->vals[i];
        if (v->kind == ADVEX_VAL_PARAM) v->grad = (train && want_grad) ? m->grads + v->offset : NULL;
        else if (v->kind == ADVEX_VAL_CONST || v->kind == ADVEX_VAL_STATE) v->grad = NULL;
    }
    advex_status st = plan_grad_write(g);
    if (st) return st;
    m->plan_n = n;
    m->plan_train = train;
    m->plan_grad = want_grad;
    m->plan_noshare = m->grad_noshare;
    m->plan_grad_pool = pool_n;
    return ADVEX_OK;
}

advex_status advex_model_run_forward(advex_model *m, const float *x) {
    advex_graph *g = &m->g;
    advex_op_ctx c = {m->plan_train, &m->rng, m->scratch, m->scratch_n};
    g->vals[g->input].data = (float *)x; /* read only: no op writes its inputs */
    for (int i = 0; i < g->n_nodes; i++) {
        advex_node *nd = &g->nodes[i];
        advex_op_defs[nd->op].forward(nd, g->vals, &c);
    }
    return ADVEX_OK;
}

advex_status advex_model_run_backward(advex_model *m, const float *dlogits) {
    advex_graph *g = &m->g;
    if (!m->plan_grad) return advex_set_error(ADVEX_ERR_INTERNAL, "backward without a gradient plan");
    advex_op_ctx c = {m->plan_train, &m->rng, m->scratch, m->scratch_n};
    /* Grads that consumers accumulate into are zeroed: the input's (its own buffer) now, an
     * activation's (a pool block, shared over time) right before its first consumer's
     * backward (bw_zero). Those in write mode (grad_write) are stored whole by their single
     * consumer; the output's is set to dlogits. */
    advex_value *in = &g->vals[g->input];
    if (!in->grad_write) memset(in->grad, 0, (size_t)advex_numel(4, in->dims) * sizeof(float));
    advex_value *out = &g->vals[g->output];
    if (out->grad) memcpy(out->grad, dlogits, (size_t)advex_numel(out->ndim, out->dims) * sizeof(float));
    const int nn = g->n_nodes, *zoff = m->bw_zero, *zid = m->bw_zero + nn + 1;
    for (int i = nn - 1; i >= 0; i--) {
        for (int e = zoff[nn - 1 - i]; e < zoff[nn - i]; e++) {
            advex_value *v = &g->vals[zid[e]];
            if (!v->grad_write) memset(v->grad, 0, (size_t)advex_numel(v->ndim, v->dims) * sizeof(float));
        }
        advex_node *nd = &g->nodes[i];
        advex_op_defs[nd->op].backward(nd, g->vals, &c);
    }
    return advex_model_check_grads(m, dlogits);
}

float *advex_model_workspace(advex_model *m, int64_t n) {
    if (n > m->ws_cap) {
        float *w = advex_falloc(n);
        if (!w) {
            advex_alloc_error(n, "the attack/training workspace");
            return NULL;
        }
        advex_ffree(m->ws);
        m->ws = w;
        m->ws_cap = n;
    }
    return m->ws;
}
