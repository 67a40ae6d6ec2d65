/* The fusion marks of a finalized net, read by the kernels and the planner: convolutions that
 * must stay precise (they feed a MaxPool's arg-max), BatchNorms folded into the Conv before
 * them (eval mode), Relus fused into their producer, views and gradients that alias a buffer,
 * and the gradient write mode of each value. Everything here follows from the graph alone,
 * so it is computed once, at finalize. */
#include <stdlib.h>

#include "internal.h"

int *advex_graph_uses(const advex_graph *g) {
    int *uses = calloc((size_t)g->n_vals + 1, sizeof(int));
    if (!uses) {
        advex_set_error(ADVEX_ERR_NOMEM, "graph: out of memory");
        return NULL;
    }
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

/* Mark the convolutions whose outputs reach a MaxPool through value-preserving or
 * elementwise ops (activations and elementwise math, BatchNorm, Add/Sub/Mul/Div/Pow/Min/Max/
 * PRelu/Where, Pad, Concat, Slice, Gather, Expand, Dropout, Identity): their forward values
 * decide arg-maxes, so they keep to the most accurate fast algorithm (advex_attrs.precise;
 * see winograd.c). */
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
            case ADVEX_OP_DIV: case ADVEX_OP_POW: case ADVEX_OP_MIN: case ADVEX_OP_MAX: case ADVEX_OP_PRELU:
            case ADVEX_OP_WHERE: case ADVEX_OP_EXPAND: case ADVEX_OP_SLICE: case ADVEX_OP_GATHER:
                for (int k = 0; k < p->n_in; k++) {
                    int u = p->in[k];
                    if (u >= 0 && !seen[u] && g->vals[u].kind == ADVEX_VAL_ACT) { seen[u] = 1; stack[top++] = u; }
                }
                continue;
            default:
                if (p->op >= ADVEX_OP_SQRT && p->op <= ADVEX_OP_SELU) { /* elementwise math (unary.c) */
                    int u = p->in[0];
                    if (u >= 0 && !seen[u] && g->vals[u].kind == ADVEX_VAL_ACT) { seen[u] = 1; stack[top++] = u; }
                }
                continue;
            }
        }
    }
    free(stack);
    free(seen);
    return ADVEX_OK;
}

/* Gradient write mode (advex_value.grad_write): an INPUT/ACT value consumed through exactly
 * one input slot of one node (a node reading it twice counts twice) whose op honours write
 * mode on that slot gets its gradient stored by that consumer, so the backward pass need not
 * zero it first. Never the graph output (its grad starts as dlogits and consumers add to it);
 * never PARAM/CONST/STATE (parameter grads accumulate in a training plan's grads). */
static void mark_grad_write(advex_graph *g, const int *uses) {
    for (int u = 0; u < g->n_vals; u++) g->vals[u].grad_write = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const advex_node *nd = &g->nodes[i];
        const advex_op_def *def = &advex_op_defs[nd->op];
        for (int k = 0; k < nd->n_in; k++) {
            int u = nd->in[k];
            if (u < 0) continue;
            advex_value *v = &g->vals[u];
            v->grad_write = (v->kind == ADVEX_VAL_INPUT || v->kind == ADVEX_VAL_ACT) && u != g->output &&
                            uses[u] == 1 && advex_op_grad_write_ok(def, k);
        }
    }
}

advex_status advex_net_mark(advex_net *net) {
    advex_graph *g = &net->g;
    advex_status st = mark_precise_convs(g);
    if (st) return st;
    int *uses = advex_graph_uses(g);
    if (!uses) return ADVEX_ERR_NOMEM;
    mark_bn_folds(g, uses);
    mark_relu_fusion(g, uses);
    mark_aliases(g, uses);
    mark_grad_write(g, uses);
    free(uses);
    return ADVEX_OK;
}
