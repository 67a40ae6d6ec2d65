/* Plans: the buffers and state of passes over a net for one input shape and mode (shapes of
 * every value, the arena with activations, per-node aux, gradients and scratch, the backward
 * zeroing schedule), and the forward and backward passes themselves. A plan only reads the
 * net (except in train mode: BatchNorm running statistics), so plans over one net run at
 * once, one per thread. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *nonfinite_name(float v) { return v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf"; }

advex_status advex_plan_new(const advex_net *net, advex_plan **out) {
    *out = NULL;
    advex_plan *p = calloc(1, sizeof *p);
    size_t nv = (size_t)net->g.n_vals + 1, nn = (size_t)net->g.n_nodes + 1;
    if (p) {
        p->net = net;
        p->v = malloc(nv * sizeof *p->v);
        p->aux = calloc(nn, sizeof *p->aux);
        p->aux_n = calloc(nn, sizeof *p->aux_n);
        p->bw_zero = malloc((nn + nv) * sizeof *p->bw_zero);
        p->tmp = malloc(9 * nv * sizeof *p->tmp);
        p->ev = malloc((4 * nn + 2 * nv) * sizeof *p->ev);
        advex_rng_seed(&p->rng, 0x5eed);
    }
    if (!p || !p->v || !p->aux || !p->aux_n || !p->bw_zero || !p->tmp || !p->ev) {
        advex_plan_free(p);
        return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (a plan of %s)", net->source);
    }
    *out = p;
    return ADVEX_OK;
}

void advex_plan_free(advex_plan *p) {
    if (!p) return;
    free(p->v);
    free(p->aux);
    free(p->aux_n);
    free(p->bw_zero);
    free(p->tmp);
    free(p->ev);
    advex_ffree(p->arena);
    advex_ffree(p->grads);
    free(p);
}

/* After a backward pass: the loss gradient, the input gradient and (training) every
 * parameter gradient must be finite; else say which, rather than let NaN flow into
 * adversarial examples or weights. */
static advex_status check_grads(const advex_plan *pl, const float *dlogits) {
    const advex_graph *g = &pl->net->g;
    const advex_value *out = &pl->v[g->output], *in = &pl->v[g->input];
    int64_t no = advex_numel(out->ndim, out->dims), c = out->ndim == 2 ? out->dims[1] : 1;
    for (int64_t k = 0; k < no; k++)
        if (!isfinite(dlogits[k])) {
            const float *z = out->data;
            int bad_logits = 0;
            for (int64_t j = (k / c) * c; j < (k / c + 1) * c && j < no; j++) bad_logits |= !isfinite(z[j]);
            return advex_set_error(ADVEX_ERR_NUMERIC, "loss gradient of example %lld is %s%s", (long long)(pl->ex_base + k / c),
                                   nonfinite_name(dlogits[k]),
                                   bad_logits ? " (its logits are not finite: the model overflows on this input)" : "");
        }
    if (in->grad) {
        int64_t ni = advex_numel(in->ndim, in->dims), d = ni / (in->ndim > 0 && in->dims[0] > 0 ? in->dims[0] : 1);
        int64_t k = advex_find_nonfinite(in->grad, ni);
        if (k >= 0)
            return advex_set_error(ADVEX_ERR_NUMERIC, "gradient with respect to the input: example %lld is %s",
                                   (long long)(pl->ex_base + k / d), nonfinite_name(in->grad[k]));
    }
    if (pl->train)
        for (int i = 0; i < g->n_vals; i++) {
            const advex_value *v = &pl->v[i];
            if (v->kind != ADVEX_VAL_PARAM || !v->grad) continue;
            int64_t k = advex_find_nonfinite(v->grad, advex_numel(v->ndim, v->dims));
            if (k >= 0)
                return advex_set_error(ADVEX_ERR_NUMERIC, "gradient of weight '%s': element %lld is %s", v->name,
                                       (long long)k, nonfinite_name(v->grad[k]));
        }
    return ADVEX_OK;
}

/* Greedy best-fit allocator over float offsets of the activation-gradient pool (planning
 * only): free blocks sorted by offset and coalesced; `top` is the pool size so far. With
 * share == 0 every allocation is new (one buffer per value) and freeing does nothing. */
typedef struct grad_pool {
    int64_t *off, *len; /* free blocks (room for 2 (n_vals + 1): at most one more than live blocks) */
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

/* Whether node i's backward pass reads the data of its input slot `slot` (-1: its own
 * output), in this plan's mode: a value nobody reads after the forward pass can give its
 * memory back as soon as its last forward consumer has run. Conservative: every op not
 * listed reads everything. An input slot holding a PARAM/CONST is never pooled, so only
 * activations matter here. */
int advex_plan_bw_reads(const advex_plan *pl, int i, int slot) {
    const advex_node *nd = &pl->net->g.nodes[i];
    const advex_value *v = pl->v;
    int out = slot < 0, train = pl->train;
#define IS_ACT_(k) (nd->n_in > (k) && nd->in[k] >= 0 && v[nd->in[k]].kind == ADVEX_VAL_ACT)
    switch (nd->op) {
    case ADVEX_OP_CONV: /* dx from dY and w; x only for dW; its output only as a fused Relu's mask */
        if (IS_ACT_(1) || IS_ACT_(2)) return 1;
        return out ? nd->relu_mask : train;
    case ADVEX_OP_BATCHNORM: /* eval: dx = dY scale / sqrt(var + eps) */
        if (train) return 1;
        return out ? nd->relu_mask : 0;
    case ADVEX_OP_ADD: case ADVEX_OP_SUB: return out ? nd->relu_mask : 0;
    case ADVEX_OP_MUL: case ADVEX_OP_DIV: return !out;
    case ADVEX_OP_RELU: case ADVEX_OP_LEAKY_RELU: case ADVEX_OP_CLIP: return !out;
    case ADVEX_OP_SIGMOID: return nd->a.mode == 1 ? !out : out; /* SiLU: from x; sigmoid: from y */
    case ADVEX_OP_TANH: case ADVEX_OP_SOFTMAX: case ADVEX_OP_LOG_SOFTMAX: return out;
    case ADVEX_OP_IDENTITY: case ADVEX_OP_FLATTEN: case ADVEX_OP_RESHAPE: case ADVEX_OP_TRANSPOSE:
    case ADVEX_OP_CONCAT: case ADVEX_OP_PAD: case ADVEX_OP_SLICE: case ADVEX_OP_GATHER: case ADVEX_OP_EXPAND:
    case ADVEX_OP_AVGPOOL: case ADVEX_OP_GLOBAL_AVGPOOL: case ADVEX_OP_DROPOUT: case ADVEX_OP_NEG:
    case ADVEX_OP_FLOOR: case ADVEX_OP_CEIL: case ADVEX_OP_REDUCE_MEAN: case ADVEX_OP_REDUCE_SUM:
        return 0;
    case ADVEX_OP_MAXPOOL: return !out && pl->aux_n[i] == 0; /* the arg-maxes are kept in aux */
    case ADVEX_OP_GEMM: case ADVEX_OP_MATMUL: /* dA = dY B^T reads B; dB = A^T dY reads A */
        if (out) return 0;
        if (slot == 0) return train || IS_ACT_(1);
        return 1;
    case ADVEX_OP_SQRT: case ADVEX_OP_EXP: case ADVEX_OP_RECIPROCAL: return out;
    case ADVEX_OP_LOG: case ADVEX_OP_ABS: case ADVEX_OP_ERF: case ADVEX_OP_SIN: case ADVEX_OP_COS:
    case ADVEX_OP_HARD_SIGMOID: case ADVEX_OP_HARD_SWISH: case ADVEX_OP_GELU: case ADVEX_OP_SOFTPLUS:
    case ADVEX_OP_SOFTSIGN: case ADVEX_OP_LAYER_NORM:
        return !out;
    default: return 1;
    }
#undef IS_ACT_
}

/* The arena's pool: activations and activation gradients placed by lifetime. Time runs
 * over the forward steps (node i at time i) and then, in a plan with gradients, the
 * backward steps (node i at time 2n-1-i). An activation's buffer (shared with the views and
 * fused Relus that alias it, fuse.c) is taken when its producer runs (or, for a BatchNorm
 * folded into the Conv before it, when that Conv writes it) and given back after the last
 * step that reads it: its last forward consumer, or the backward of a node that reads it
 * (advex_plan_bw_reads); the graph output's is never given back. An activation gradient lives from the
 * backward of its last consumer (topological order) to that of its producer: node i's input
 * ACT grads are allocated before its backward unless a later node already did, its output's
 * grad is freed after it; the graph output's grad is taken when the backward pass starts
 * (dlogits), and an output nobody consumes gets its block (zeroed) at its producer's step.
 * The graph input's grad is not pooled (callers read it after the pass). At each step the
 * new blocks are taken before the step's dead ones are given back, so no output overlaps
 * an input of the same step. Greedy best-fit over one pool; with grad_noshare (a test
 * switch) nothing is shared and every value keeps its buffer after the pass. Fills
 * goff[v] and doff[v] (-1: none), *pool_n and the zeroing schedule pl->bw_zero. Blocks are
 * multiples of 16 floats. */
static void plan_pool(advex_plan *pl, int64_t *goff, int64_t *doff, int64_t *pool_n) {
    const advex_graph *g = &pl->net->g;
    int nn = g->n_nodes, nv = g->n_vals, T = pl->want_grad ? 2 * nn : nn;
    int *zoff = pl->bw_zero, *zid = pl->bw_zero + nn + 1, nz = 0;
    int64_t *root = pl->tmp + 2 * (nv + 1), *dend = pl->tmp + 3 * (nv + 1), *dstart = pl->tmp + 8 * (nv + 1);
    grad_pool p = {pl->tmp + 4 * (nv + 1), pl->tmp + 6 * (nv + 1), 0, 0, !pl->grad_noshare};
    /* buckets of buffers by the step they are taken at (new_*) and given back after (free_*) */
    int *new_head = pl->ev, *free_head = pl->ev + T + 1, *new_next = pl->ev + 2 * (2 * nn + 1),
        *free_next = new_next + nv;
#define BLOCK(id) ((advex_numel(pl->v[id].ndim, pl->v[id].dims) + 15) / 16 * 16)
    for (int v = 0; v < nv; v++) goff[v] = doff[v] = -1, root[v] = v, dend[v] = -1, dstart[v] = g->vals[v].producer;
    for (int t = 0; t <= T; t++) new_head[t] = free_head[t] = -1;
    /* roots (aliases share their input's buffer) and the last time each buffer is read */
    for (int i = 0; i < nn; i++) {
        const advex_node *nd = &g->nodes[i];
        int o = nd->out[0];
        if ((nd->relu_fused || nd->alias_data) && nd->in[0] >= 0) root[o] = root[nd->in[0]];
        if (dend[root[o]] < i) dend[root[o]] = i;
        if (pl->want_grad && advex_plan_bw_reads(pl, i, -1)) dend[root[o]] = 2 * nn - 1 - i;
        for (int k = 0; k < nd->n_in; k++) {
            int u = nd->in[k];
            if (u < 0 || pl->v[u].kind != ADVEX_VAL_ACT) continue;
            int64_t t = i;
            if (pl->want_grad && advex_plan_bw_reads(pl, i, k)) t = 2 * nn - 1 - i;
            if (dend[root[u]] < t) dend[root[u]] = t;
        }
    }
    if (g->output >= 0 && pl->v[g->output].kind == ADVEX_VAL_ACT) dend[root[g->output]] = T; /* never */
    if (pl->grad_noshare)
        for (int v = 0; v < nv; v++) dend[v] = T;
    for (int i = 0; i < nn && !pl->train; i++) { /* a folded BatchNorm's output is written by its Conv */
        const advex_node *nd = &g->nodes[i];
        if (nd->op == ADVEX_OP_CONV && nd->fold > 0 && dstart[root[nd->fold_v[0]]] > i) dstart[root[nd->fold_v[0]]] = i;
    }
    for (int v = nv - 1; v >= 0; v--)
        if (dend[v] >= 0 && root[v] == v && pl->v[v].kind == ADVEX_VAL_ACT) {
            int64_t t0 = dstart[v] < 0 ? 0 : dstart[v];
            new_next[v] = new_head[t0];
            new_head[t0] = v;
            int64_t te = dend[v] > T ? T : dend[v];
            free_next[v] = free_head[te];
            free_head[te] = v;
        }
    for (int t = 0; t < T; t++) {
        for (int v = new_head[t]; v >= 0; v = new_next[v]) doff[v] = grad_pool_alloc(&p, BLOCK(v));
        if (t >= nn) { /* backward of node i */
            int i = 2 * nn - 1 - t;
            const advex_node *nd = &g->nodes[i];
            int o = nd->out[0];
            if (t == nn && pl->v[g->output].kind == ADVEX_VAL_ACT && goff[g->output] < 0)
                goff[g->output] = grad_pool_alloc(&p, BLOCK(g->output));
            zoff[nn - 1 - i] = nz;
            if (goff[o] < 0) { /* no consumer (every one comes later in topological order) */
                goff[o] = grad_pool_alloc(&p, BLOCK(o));
                zid[nz++] = o;
            }
            if (nd->alias_grad) { /* input 0 (this node its only use) takes over the output's block */
                goff[nd->in[0]] = goff[o];
            } else {
                for (int k = 0; k < nd->n_in; k++) {
                    int u = nd->in[k];
                    if (u < 0 || pl->v[u].kind != ADVEX_VAL_ACT || goff[u] >= 0) continue;
                    goff[u] = grad_pool_alloc(&p, BLOCK(u));
                    zid[nz++] = u;
                }
                grad_pool_free(&p, goff[o], BLOCK(o));
            }
        }
        for (int v = free_head[t]; v >= 0; v = free_next[v]) grad_pool_free(&p, doff[v], BLOCK(v));
    }
    zoff[nn] = nz;
    for (int v = 0; v < nv; v++) /* aliases: their root's buffer */
        if (pl->v[v].kind == ADVEX_VAL_ACT && root[v] != v) doff[v] = doff[root[v]];
#undef BLOCK
    *pool_n = p.top;
}

/* The plan's thread count in force for the caller's thread while it runs (kernels and the
 * OpenMP build of OpenBLAS read it per thread), restored by threads_end: nothing outlives the
 * call. */
static int threads_begin(const advex_plan *p) {
    int saved = omp_get_max_threads();
    if (p->threads > 0 && p->threads != saved) omp_set_num_threads(p->threads);
    return saved;
}
static void threads_end(const advex_plan *p, int saved) {
    if (p->threads > 0 && p->threads != saved) omp_set_num_threads(saved);
}

/* Shapes of every value for the plan's input (each node's infer), each node's aux size
 * (pl->aux_n), with the sizes the arena needs: *total a bound on it (every activation and
 * gradient its own buffer: pool offsets then fit in int64), *aux_total the floats of aux,
 * *scratch the largest scratch. */
static advex_status plan_infer(advex_plan *pl, int64_t *total, int64_t *aux_total, int64_t *scratch) {
    const advex_graph *g = &pl->net->g;
    *total = *scratch = *aux_total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const advex_node *nd = &g->nodes[i];
        const advex_op_def *def = &advex_op_defs[nd->op];
        advex_status st = def->infer(nd, pl->v);
        if (st) return st;
        const advex_value *o = &pl->v[nd->out[0]];
        int64_t numel = advex_numel(o->ndim, o->dims), a = 0, s = 0;
        if (numel < 0) return advex_set_error(ADVEX_ERR_LIMIT, "node %s: output shape overflows", nd->name);
        if (def->aux) a = def->aux(nd, pl->v, pl->train);
        if (def->scratch) s = def->scratch(nd, pl->v, pl->train);
        if (a < 0 || s < 0 || a > INT64_MAX - 16 || s > INT64_MAX - 16 || numel > INT64_MAX - 16)
            return advex_set_error(ADVEX_ERR_LIMIT, "node %s: working memory size overflows", nd->name);
        if (s > *scratch) *scratch = s;
        pl->aux_n[i] = a;
        *aux_total += (a + 15) / 16 * 16; /* (bounded by *total, checked below) */
        int64_t per = (numel + 15) / 16 * 16, add;
        /* room for the grads too (a bound on the pool): their offsets then fit in int64 */
        if (!advex_mul_i64(per, pl->want_grad ? 2 : 1, &add) || !advex_add_i64(*total, add, total) ||
            !advex_add_i64(*total, (a + 15) / 16 * 16, total))
            return advex_set_error(ADVEX_ERR_LIMIT, "model activations overflow");
    }
    const advex_value *in = &pl->v[g->input];
    int64_t in_numel = advex_numel(in->ndim, in->dims);
    if (in_numel < 0 || in_numel > INT64_MAX - 16) return advex_set_error(ADVEX_ERR_LIMIT, "input shape overflows");
    if (pl->want_grad && !advex_add_i64(*total, (in_numel + 15) / 16 * 16, total))
        return advex_set_error(ADVEX_ERR_LIMIT, "model activations overflow");
    return ADVEX_OK;
}

/* Buffers in the arena: each node's aux (its first 16 floats zeroed: caches start invalid),
 * the input grad, the pool of activations and activation grads (at doff and goff; views and
 * fused Relus at their producer's buffer), then scratch. */
static void plan_layout(advex_plan *pl, const int64_t *goff, const int64_t *doff, int64_t pool_n, int64_t scratch) {
    const advex_net *net = pl->net;
    const advex_graph *g = &net->g;
    float *p = pl->arena;
    for (int i = 0; i < g->n_nodes; i++) {
        pl->aux[i] = pl->aux_n[i] ? p : NULL;
        if (pl->aux[i]) /* (caches start invalid; the rest is written before it is read) */
            memset(pl->aux[i], 0, (size_t)(pl->aux_n[i] < 16 ? pl->aux_n[i] : 16) * sizeof(float));
        p += (pl->aux_n[i] + 15) / 16 * 16;
    }
    advex_value *in = &pl->v[g->input];
    in->grad = NULL;
    if (pl->want_grad) {
        in->grad = p;
        p += (advex_numel(in->ndim, in->dims) + 15) / 16 * 16;
    }
    for (int i = 0; i < g->n_vals; i++) {
        advex_value *v = &pl->v[i];
        if (v->kind == ADVEX_VAL_ACT) {
            v->data = doff[i] >= 0 ? p + doff[i] : NULL;
            v->grad = pl->want_grad && goff[i] >= 0 ? p + goff[i] : NULL;
        } else if (v->kind == ADVEX_VAL_PARAM) {
            v->grad = pl->train && pl->want_grad ? pl->grads + v->offset : NULL;
        } else if (v->kind != ADVEX_VAL_INPUT) {
            v->grad = NULL;
        }
        if (pl->no_grad_write) v->grad_write = 0;
    }
    p += pool_n;
    pl->scratch = p;
    pl->scratch_n = scratch;
}

/* The arena of a plan did not fit: say what it is for, part by part, and which node's own
 * state (weight caches, arg-maxes, statistics) is the largest. */
static advex_status plan_alloc_error(const advex_plan *pl, int64_t total, int64_t aux_total, int64_t pool_n,
                                     int64_t scratch, int want_grad) {
    const advex_graph *g = &pl->net->g;
    int big = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (pl->aux_n[i] > 0 && (big < 0 || pl->aux_n[i] > pl->aux_n[big])) big = i;
    char what[512], a[32], b[32], c[32], d[32];
    int o = snprintf(what, sizeof what, "the %s plan for batch %lld (activations%s %s, scratch %s",
                     pl->train ? "training" : want_grad ? "gradient" : "forward", (long long)pl->v[g->input].dims[0],
                     want_grad ? " and their gradients" : "", advex_fmt_bytes(pool_n * 4, a),
                     advex_fmt_bytes(scratch * 4, b));
    if (big >= 0 && o > 0 && o < (int)sizeof what) {
        const advex_node *nd = &g->nodes[big];
        const char *kind = nd->op == ADVEX_OP_CONV ? "transformed and folded weights of" : "state of";
        o += snprintf(what + o, sizeof what - (size_t)o, ", per-node state %s, the most: %s %s '%.80s', %s",
                      advex_fmt_bytes(aux_total * 4, c), kind, advex_op_defs[nd->op].name, nd->name,
                      advex_fmt_bytes(pl->aux_n[big] * 4, d));
    }
    if (o > 0 && o < (int)sizeof what - 1) snprintf(what + o, sizeof what - (size_t)o, ")");
    return advex_alloc_error(total, what);
}

advex_status advex_plan_shape(advex_plan *pl, int ndim, const int64_t *dims, int train, int want_grad) {
    const advex_net *net = pl->net;
    const advex_graph *g = &net->g;
    if (pl->ndim == ndim && !memcmp(pl->in_dims, dims, (size_t)ndim * sizeof *dims) && pl->train == train &&
        pl->want_grad >= want_grad && pl->arena)
        return ADVEX_OK;
    if (ndim <= 0 || ndim > ADVEX_MAX_DIMS) return advex_set_error(ADVEX_ERR_ARG, "input of rank %d", ndim);
    for (int i = 0; i < ndim; i++)
        if (dims[i] <= 0) return advex_set_error(ADVEX_ERR_ARG, "batch size %lld", (long long)dims[0]);
    pl->ndim = 0; /* no valid layout until this one completes */
    if (train && want_grad && !pl->grads) {
        if (!(pl->grads = advex_falloc(net->n_params))) return advex_alloc_error(net->n_params, "the parameter gradients");
        memset(pl->grads, 0, (size_t)net->n_params * sizeof(float));
    }
    /* the net's values, then this plan's shapes and buffers */
    memcpy(pl->v, g->vals, (size_t)g->n_vals * sizeof *pl->v);
    pl->train = train;
    pl->want_grad = want_grad;
    advex_value *in = &pl->v[g->input];
    in->ndim = ndim;
    memcpy(in->dims, dims, (size_t)ndim * sizeof *dims);
    int saved = threads_begin(pl); /* scratch is sized for the threads the kernels will see */
    int64_t total, aux_total, scratch, pool_n = 0, *goff = pl->tmp, *doff = pl->tmp + g->n_vals + 1;
    advex_status st = plan_infer(pl, &total, &aux_total, &scratch);
    threads_end(pl, saved);
    if (st) return st;
    if (pl->shapes_only) /* the sizes checked against a buffer per activation (the pool's bound) */
        return advex_add_i64(total, (scratch + 15) / 16 * 16, &total) ? advex_plan_check_size(pl, total)
                                                                       : advex_set_error(ADVEX_ERR_LIMIT, "model activations overflow");
    /* the bound counted a buffer per activation and grad; the pool needs pool_n floats */
    plan_pool(pl, goff, doff, &pool_n);
    total = aux_total + pool_n;
    if (want_grad) total += (advex_numel(in->ndim, in->dims) + 15) / 16 * 16;
    if (!advex_add_i64(total, (scratch + 15) / 16 * 16, &total))
        return advex_set_error(ADVEX_ERR_LIMIT, "model activations overflow");
    if ((st = advex_plan_check_size(pl, total))) return st;
    if (total > pl->arena_cap) { /* (the old layout is void already: give its memory back first) */
        advex_ffree(pl->arena);
        pl->arena = NULL;
        pl->arena_cap = 0;
        float *a = advex_falloc(total);
        if (!a) return plan_alloc_error(pl, total, aux_total, pool_n, scratch, want_grad);
        pl->arena = a;
        pl->arena_cap = total;
    }
    plan_layout(pl, goff, doff, pool_n, scratch);
    pl->grad_pool = pool_n;
    pl->ndim = ndim;
    memcpy(pl->in_dims, dims, (size_t)ndim * sizeof *dims);
    return ADVEX_OK;
}

advex_status advex_plan_images(advex_plan *p, int64_t n, int train, int want_grad) {
    if (n <= 0) return advex_set_error(ADVEX_ERR_ARG, "batch size %lld", (long long)n);
    const int64_t *chw = p->net->in_chw;
    int64_t dims[4] = {n, chw[0], chw[1], chw[2]};
    return advex_plan_shape(p, 4, dims, train, want_grad);
}

advex_status advex_plan_forward(advex_plan *pl, const float *x) {
    const advex_graph *g = &pl->net->g;
    if (!pl->ndim) return advex_set_error(ADVEX_ERR_INTERNAL, "forward on a plan that is not laid out");
    advex_op_ctx c = {pl->train, &pl->rng, pl->scratch, pl->scratch_n, NULL, 0};
    pl->v[g->input].data = (float *)x; /* read only: no op writes its inputs */
    int saved = threads_begin(pl);
    for (int i = 0; i < g->n_nodes; i++) {
        const advex_node *nd = &g->nodes[i];
        c.aux = pl->aux[i];
        c.aux_n = pl->aux_n[i];
        advex_op_defs[nd->op].forward(nd, pl->v, &c);
    }
    threads_end(pl, saved);
    return ADVEX_OK;
}

advex_status advex_plan_backward(advex_plan *pl, const float *dout) {
    const advex_graph *g = &pl->net->g;
    if (!pl->ndim || !pl->want_grad) return advex_set_error(ADVEX_ERR_INTERNAL, "backward without a gradient plan");
    advex_op_ctx c = {pl->train, &pl->rng, pl->scratch, pl->scratch_n, NULL, 0};
    /* Grads that consumers accumulate into are zeroed: the input's (its own buffer) now, an
     * activation's (a pool block, shared over time) right before its first consumer's
     * backward (bw_zero). Those in write mode (grad_write) are stored whole by their single
     * consumer; the output's is set to dout. */
    advex_value *in = &pl->v[g->input];
    if (!in->grad_write) memset(in->grad, 0, (size_t)advex_numel(in->ndim, in->dims) * sizeof(float));
    advex_value *out = &pl->v[g->output];
    if (out->grad) memcpy(out->grad, dout, (size_t)advex_numel(out->ndim, out->dims) * sizeof(float));
    const int nn = g->n_nodes, *zoff = pl->bw_zero, *zid = pl->bw_zero + nn + 1;
    int saved = threads_begin(pl);
    for (int i = nn - 1; i >= 0; i--) {
        for (int e = zoff[nn - 1 - i]; e < zoff[nn - i]; e++) {
            advex_value *v = &pl->v[zid[e]];
            if (!v->grad_write) memset(v->grad, 0, (size_t)advex_numel(v->ndim, v->dims) * sizeof(float));
        }
        const advex_node *nd = &g->nodes[i];
        c.aux = pl->aux[i];
        c.aux_n = pl->aux_n[i];
        advex_op_defs[nd->op].backward(nd, pl->v, &c);
    }
    threads_end(pl, saved);
    return check_grads(pl, dout);
}

double advex_plan_macs(const advex_plan *pl, int *layers) {
    const advex_graph *g = &pl->net->g;
    double macs = 0;
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const advex_node *nd = &g->nodes[i];
        if ((nd->op != ADVEX_OP_CONV && nd->op != ADVEX_OP_GEMM && nd->op != ADVEX_OP_MATMUL) || nd->n_in < 2) continue;
        const advex_value *o = &pl->v[nd->out[0]], *a = &pl->v[nd->in[0]], *w = &pl->v[nd->in[1]];
        double k = nd->op == ADVEX_OP_CONV ? (double)(w->ndim == 4 ? w->dims[1] * w->dims[2] * w->dims[3] : 1)
                                           : (double)(nd->op == ADVEX_OP_GEMM && nd->a.trans_a ? a->dims[0]
                                                                                          : a->dims[a->ndim - 1]);
        macs += (double)advex_numel(o->ndim, o->dims) * k;
        n++;
    }
    if (layers) *layers = n;
    return macs;
}
