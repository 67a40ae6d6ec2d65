/* Internal structures shared by the engine: values, nodes, graphs, the op table and
 * the model handle. Not installed; nothing here is part of the public API. */
#ifndef ADVEX_INTERNAL_H
#define ADVEX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "advex/advex.h"

/* ---- errors (src/core/status.c) ---------------------------------------------------- */

/* Set the thread's error detail (printf-style) and return s, so callers can write
 * `return advex_set_error(ADVEX_ERR_SHAPE, "conv %s: ...", name);`. */
advex_status advex_set_error(advex_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prefix the current detail with "prefix: " (e.g. the file name) and return s. */
advex_status advex_error_prefix(advex_status s, const char *prefix);

/* Overflow-checked size arithmetic: return 0 on overflow (or negative operands). */
int advex_mul_i64(int64_t a, int64_t b, int64_t *out);
int advex_add_i64(int64_t a, int64_t b, int64_t *out);
/* numel of dims, -1 on overflow or negative dim. */
int64_t advex_numel(int ndim, const int64_t *dims);
int64_t advex_find_nonfinite(const float *p, int64_t n); /* first NaN/Inf index or -1 */

/* Aligned (64-byte) allocation of n floats, counted against the memory cap
 * (src/core/memory.c); NULL on failure, overflow or past the cap. Free with advex_ffree
 * only (the block has a header). */
float *advex_falloc(int64_t n);
void advex_ffree(float *p);
/* After advex_falloc(n) returned NULL: set the error (ADVEX_ERR_LIMIT naming the cap when
 * the cap refused it, else ADVEX_ERR_NOMEM) for "what" and return it. */
advex_status advex_alloc_error(int64_t n, const char *what);
/* 1 if `bytes` more would still fit under the cap (a check before big non-engine
 * allocations, e.g. decoding ONNX initializers). */
int advex_mem_fits(int64_t bytes);
/* "1.5 MiB" into buf; returns buf. */
const char *advex_fmt_bytes(int64_t bytes, char buf[32]);
char *advex_strdup(const char *s);

/* A growable string (src/core/buf.c): appends that fail set oom and do nothing more. */
typedef struct advex_buf {
    char *s;
    size_t len, cap;
    int oom;
} advex_buf;
void advex_buf_printf(advex_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the string over (*out, malloc'd, NUL-terminated); ADVEX_ERR_NOMEM if an append failed
 * or nothing was written. The buffer is empty afterwards either way. */
advex_status advex_buf_take(advex_buf *b, char **out);
void advex_buf_free(advex_buf *b);

/* Index of a norm in the (L-inf, L2, L1) triples of per-example norms. */
static inline int advex_norm_index(advex_norm n) { return n == ADVEX_NORM_L2 ? 1 : n == ADVEX_NORM_L1 ? 2 : 0; }

/* ---- topological order (src/core/toposort.c) ------------------------------------------ */

/* Kahn's algorithm over n nodes: node i's successors are adj[start[i] .. start[i+1]),
 * indeg[i] its number of predecessor edges (consumed). Writes the order to order (n) and
 * returns how many nodes it holds: fewer than n when there is a cycle (the nodes left with
 * indeg > 0 are on or behind it). Ties go in index order, so a sorted graph keeps its order. */
int advex_kahn(int n, int *indeg, const int *start, const int *adj, int *order);

/* ---- ops ----------------------------------------------------------------------------- */

#define ADVEX_OP_LIST(X)                               \
    X(CONV, "Conv")                                    \
    X(GEMM, "Gemm")                                    \
    X(MATMUL, "MatMul")                                \
    X(RELU, "Relu")                                    \
    X(LEAKY_RELU, "LeakyRelu")                         \
    X(SIGMOID, "Sigmoid")                              \
    X(TANH, "Tanh")                                    \
    X(CLIP, "Clip")                                    \
    X(MAXPOOL, "MaxPool")                              \
    X(AVGPOOL, "AveragePool")                          \
    X(GLOBAL_AVGPOOL, "GlobalAveragePool")             \
    X(BATCHNORM, "BatchNormalization")                 \
    X(DROPOUT, "Dropout")                              \
    X(FLATTEN, "Flatten")                              \
    X(RESHAPE, "Reshape")                              \
    X(TRANSPOSE, "Transpose")                          \
    X(CONCAT, "Concat")                                \
    X(PAD, "Pad")                                      \
    X(IDENTITY, "Identity")                            \
    X(ADD, "Add")                                      \
    X(SUB, "Sub")                                      \
    X(MUL, "Mul")                                      \
    X(DIV, "Div")                                      \
    X(SOFTMAX, "Softmax")                              \
    X(LOG_SOFTMAX, "LogSoftmax")                       \
    /* elementwise math (unary.c) */                   \
    X(SQRT, "Sqrt")                                    \
    X(EXP, "Exp")                                      \
    X(LOG, "Log")                                      \
    X(NEG, "Neg")                                      \
    X(RECIPROCAL, "Reciprocal")                        \
    X(ABS, "Abs")                                      \
    X(ERF, "Erf")                                      \
    X(SIN, "Sin")                                      \
    X(COS, "Cos")                                      \
    X(FLOOR, "Floor")                                  \
    X(CEIL, "Ceil")                                    \
    X(HARD_SIGMOID, "HardSigmoid")                     \
    X(HARD_SWISH, "HardSwish")                         \
    X(GELU, "Gelu")                                    \
    X(SOFTPLUS, "Softplus")                            \
    X(SOFTSIGN, "Softsign")                            \
    X(ELU, "Elu")                                      \
    X(SELU, "Selu")                                    \
    /* broadcasting (bcast.c) */                       \
    X(POW, "Pow")                                      \
    X(MIN, "Min")                                      \
    X(MAX, "Max")                                      \
    X(PRELU, "PRelu")                                  \
    X(WHERE, "Where")                                  \
    X(EXPAND, "Expand")                                \
    /* reductions (reduce.c) */                        \
    X(REDUCE_MEAN, "ReduceMean")                       \
    X(REDUCE_SUM, "ReduceSum")                         \
    X(REDUCE_MAX, "ReduceMax")                         \
    X(REDUCE_MIN, "ReduceMin")                         \
    X(REDUCE_SUM_SQUARE, "ReduceSumSquare")            \
    X(REDUCE_L1, "ReduceL1")                           \
    X(REDUCE_L2, "ReduceL2")                           \
    X(REDUCE_LOG_SUM_EXP, "ReduceLogSumExp")           \
    /* normalisation and indexing (layernorm.c, index.c) */ \
    X(LAYER_NORM, "LayerNormalization")                \
    X(SLICE, "Slice")                                  \
    X(GATHER, "Gather")                                \
    /* randomness (random.c): randomized defences */   \
    X(RANDOM_NORMAL_LIKE, "RandomNormalLike")          \
    X(RANDOM_UNIFORM_LIKE, "RandomUniformLike")        \
    X(BERNOULLI, "Bernoulli")                          \
    X(RANDOM_NORMAL, "RandomNormal")                   \
    X(RANDOM_UNIFORM, "RandomUniform")

typedef enum advex_op_type {
#define ADVEX_OP_ENUM_(id, name) ADVEX_OP_##id,
    ADVEX_OP_LIST(ADVEX_OP_ENUM_)
#undef ADVEX_OP_ENUM_
    ADVEX_OP_COUNT
} advex_op_type;

/* Attributes of every op in one flat struct (ONNX semantics; unused fields ignored).
 * Defaults are set by advex_attrs_default(). */
typedef struct advex_attrs {
    int64_t kernel[2];      /* kh, kw (pools; conv takes it from the weight) */
    int64_t stride[2];      /* sh, sw */
    int64_t dilation[2];    /* dh, dw */
    int64_t pads[4];        /* h_begin, w_begin, h_end, w_end (ONNX order) */
    int64_t group;          /* conv groups */
    int precise;            /* Conv: forward feeds a MaxPool's arg-max (set at finalize), so
                               it keeps to the most accurate fast algorithm (winograd.c) */
    int ceil_mode;          /* pools */
    int count_include_pad;  /* AveragePool */
    float alpha, beta;      /* LeakyRelu slope (alpha); Gemm alpha, beta; HardSigmoid, Elu, Selu (gamma: beta) */
    float min, max;         /* Clip bounds */
    int trans_a, trans_b;   /* Gemm */
    int64_t axis;           /* Flatten, Concat, Softmax, LogSoftmax, Gather, LayerNormalization */
    float epsilon;          /* BatchNormalization, LayerNormalization */
    float momentum;         /* BatchNormalization, ONNX convention: run = run*m + batch*(1-m) */
    float ratio;            /* Dropout probability */
    float pad_value;        /* Pad constant */
    int n_ints;             /* Transpose perm, Reshape target shape (0 = copy, -1 = infer), */
    int64_t ints[2 * ADVEX_MAX_DIMS]; /* Pad pads (begin..., end...) */
    int auto_pad;           /* Conv, pools: 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
    /* Reduce*: axes in ints (n_ints of them; none: every axis, or the identity when mode is
     * set: noop_with_empty_axes), keepdims. Expand: target dims v in ints[0..n_ints) and
     * batch coefficients n in ints[ADVEX_MAX_DIMS + d]: dim d is v + n*N, N the batch size
     * (input 1's dim 0, the graph input). */
    int keepdims;
    /* Variant of an op: Gelu 1 = tanh approximation; Softmax/LogSoftmax 1 = the opset < 13
     * form (the input flattened to 2-D at axis); Reduce* 1 = noop_with_empty_axes. */
    int mode;
    /* Slice, per input dim: first index, step and count are resolved against the input's
     * dims when the plan is laid out (ONNX clamping; ends may be INT64_MAX) */
    int64_t starts[ADVEX_MAX_DIMS], ends[ADVEX_MAX_DIMS], steps[ADVEX_MAX_DIMS];
} advex_attrs;

void advex_attrs_default(advex_attrs *a);

/* ---- graph --------------------------------------------------------------------------- */

typedef enum advex_value_kind {
    ADVEX_VAL_INPUT = 0,    /* the image batch */
    ADVEX_VAL_ACT,          /* produced by a node */
    ADVEX_VAL_PARAM,        /* trainable weight: data in model->params, grad in model->grads */
    ADVEX_VAL_CONST,        /* fixed constant (e.g. normalisation mean/std), never trained */
    ADVEX_VAL_STATE,        /* BatchNorm running statistics: updated in train mode only */
} advex_value_kind;

/* A value of the graph. In the net (advex_net.g) only the static fields hold: name, kind,
 * producer, grad_write and, for PARAM/CONST/STATE, dims, data and offset. A plan works on its
 * own copy of the table (advex_plan.v), where INPUT/ACT values get the dims, data and grad of
 * the plan's input shape and buffers. */
typedef struct advex_value {
    char *name;
    advex_value_kind kind;
    int ndim;
    int64_t dims[ADVEX_MAX_DIMS]; /* INPUT/ACT: set by planning for the plan's input */
    float *data;  /* PARAM/CONST/STATE: net storage (owned by the value until finalize).
                     INPUT: the caller's batch (read only). ACT: plan arena. */
    float *grad;  /* accumulated gradient, or NULL when not wanted in this pass */
    int64_t offset; /* PARAM: offset in net->params; CONST/STATE: in net->consts */
    int producer;   /* node index producing it, -1 for INPUT/PARAM/CONST/STATE */
    /* Gradient write mode, set at finalize (fuse.c; 0 for values built by hand before it).
     * 1: exactly one input slot of one node consumes this INPUT/ACT value, that op
     * honours write mode on that slot (advex_op_def.grad_write_in) and the value is not the
     * graph output; advex_plan_backward then does NOT zero grad (it holds stale data, possibly
     * another value's: activation grads share memory) and the consumer's backward must
     * store (=) every element of its gradient instead of accumulating (+=). 0: grad is
     * zeroed right before the backward of its first consumer in reverse order (the input's:
     * at the start; the graph output's is set to dlogits) and every consumer accumulates. */
    int grad_write;
} advex_value;

typedef struct advex_node {
    advex_op_type op;
    char *name;
    int n_in, n_out;
    int *in;        /* value ids; -1 for an absent optional input */
    int out[2];     /* value ids (out[1] only for optional outputs we ignore: -1) */
    advex_attrs a;
    /* Eval-mode BatchNorm folding (set at finalize, see mark_bn_folds in fuse.c): on a Conv,
     * 1 + the index of the BatchNorm it folds into, and that BatchNorm's output, scale, B,
     * mean and var value ids and epsilon; on that BatchNorm, -1. */
    int fold;
    int fold_v[5];
    float fold_eps;
    /* ReLU fusion (set at finalize, see mark_relu_fusion in fuse.c): relu_out on a Conv,
     * BatchNorm or Add whose output's only use is a Relu: it stores max(0, y) itself; on that
     * Relu, relu_fused: its output shares the producer's buffer and its forward does nothing.
     * fold_relu on a Conv whose folded BatchNorm has relu_out (eval mode). */
    int relu_out, relu_fused, fold_relu;
    /* Buffer aliases (set at finalize, see mark_aliases in fuse.c). alias_data: the output
     * is input 0's buffer (Flatten, Reshape, Identity: a view), the forward does nothing.
     * alias_grad: input 0's gradient is the output's gradient buffer and the backward does
     * nothing; on a fused Relu its producer (Conv, BatchNorm, Add) masks that gradient itself:
     * relu_mask on the producer (dY[i] counts only where its stored output max(0, y)[i] > 0). */
    int alias_data, alias_grad, relu_mask;
} advex_node; /* immutable once the net is finalized: per-plan state lives in advex_op_ctx.aux */

typedef struct advex_graph {
    advex_value *vals;
    int n_vals, cap_vals;
    advex_node *nodes;   /* topologically sorted after finalize */
    int n_nodes, cap_nodes;
    int input;           /* value id of the image input */
    int output;          /* value id of the logits */
} advex_graph;

/* Context of one forward or backward pass of one node (set by the plan running it). */
typedef struct advex_op_ctx {
    int train;          /* BatchNorm batch statistics + running-stat update, dropout on */
    advex_rng *rng;     /* dropout masks */
    float *scratch;     /* temporary floats (size from op->scratch), valid for this call */
    int64_t scratch_n;
    float *aux;         /* this node's state kept from forward to backward in this plan (size
                           from op->aux), or NULL; its first 16 floats are zeroed when the
                           plan is laid out (a cache's valid flag), the rest is not */
    int64_t aux_n;
} advex_op_ctx;

typedef struct advex_op_def {
    const char *name;   /* ONNX op type */
    int min_in, max_in; /* input count bounds (absent optional inputs count, as -1) */
    /* Validate input shapes/attributes and set output dims. Errors via advex_set_error,
     * naming nd->name. Called at every plan (input dims known). */
    advex_status (*infer)(const advex_node *nd, advex_value *v);
    /* Floats of scratch needed by forward or backward for the planned shapes (may be NULL). */
    int64_t (*scratch)(const advex_node *nd, const advex_value *v, int train);
    /* Floats of aux state kept from forward to backward (may be NULL). */
    int64_t (*aux)(const advex_node *nd, const advex_value *v, int train);
    /* out = f(in). Must not allocate. */
    void (*forward)(const advex_node *nd, advex_value *v, advex_op_ctx *c);
    /* For every input i with v[in[i]].grad != NULL: grad_i += J^T grad_out, or, when
     * v[in[i]].grad_write is set (only ever on slots the op declares in grad_write_in),
     * grad_i = J^T grad_out over every element of grad_i (its old contents are garbage).
     * Must not allocate. The output's data and grad and the inputs' data are valid. */
    void (*backward)(const advex_node *nd, advex_value *v, advex_op_ctx *c);
    /* Input slots whose grad_write flag backward honours: bit i for slot i, bit 31 for
     * every slot >= 31 (ADVEX_GW_ALL: all slots). 0: always accumulates, and the planner
     * zeroes the grads of this op's inputs before each backward pass. */
    uint32_t grad_write_in;
} advex_op_def;

#define ADVEX_GW_ALL 0xffffffffu
/* 1 if def's backward honours grad_write on input slot `slot`. */
static inline int advex_op_grad_write_ok(const advex_op_def *def, int slot) {
    return (int)((def->grad_write_in >> (slot < 31 ? slot : 31)) & 1u);
}

extern const advex_op_def advex_op_defs[ADVEX_OP_COUNT];
/* Op by ONNX name, -1 if unknown. */
int advex_op_from_name(const char *name);

/* ---- net: the immutable model (src/graph/net.c, fuse.c) --------------------------------- */

/* A loaded or built model: the graph (values and nodes in topological order, with the fusion
 * marks of fuse.c), the packed parameters and constants, and what it takes and gives. Built
 * once (advex_net_new, advex_graph_add_value/_node, advex_net_finalize), then read by any
 * number of plans at once. Only training writes it (parameters, BatchNorm running
 * statistics), and no other plan may run meanwhile. Model handles share it (refs). */
typedef struct advex_net {
    advex_graph g;
    float *params;       /* (n_params) all trainable weights, contiguous */
    int64_t n_params;
    float *consts;       /* (n_consts) CONST and STATE values */
    int64_t n_consts;
    int64_t in_chw[3];   /* images: (C, H, W) per example; 0s for a general net */
    int64_t classes;     /* logits per example; 0 for a general net */
    int output_is_prob;  /* graph ended in Softmax/LogSoftmax and it was cut off (see onnx) */
    char *source;        /* file or arch name, for messages */
    int64_t opset;       /* ONNX default-domain opset it was loaded from (0: built here) */
    int refs;            /* model handles sharing it (advex_model_share); atomic */
} advex_net;

advex_net *advex_net_new(const char *source);
/* Drop one reference; frees the net with the last. */
void advex_net_release(advex_net *net);
/* Values made with data own it until advex_net_finalize() packs them into contiguous
 * storage. Return the new id, or -1 with the error set. */
int advex_graph_add_value(advex_graph *g, const char *name, advex_value_kind kind, int ndim,
                          const int64_t *dims);
/* Linear search by name (tests, messages); the importer keeps its own hash map. */
int advex_graph_find_value(const advex_graph *g, const char *name);
/* Adds a node; `in` copied. Output values (ACT) are created by the caller. Returns index. */
int advex_graph_add_node(advex_graph *g, advex_op_type op, const char *name, int n_in,
                         const int *in, int out);
/* Topologically sort (cycles -> error), check every input is defined, pack parameter
 * storage, check weights, mark fusions (fuse.c). images != 0: the input is an image batch
 * (N, C, H, W) and the output logits (N, classes): in_chw and classes are learnt from a
 * plan at N = 1. */
advex_status advex_net_finalize(advex_net *net, int images);
/* The fusion marks and gradient write flags (fuse.c), from the sorted graph. */
advex_status advex_net_mark(advex_net *net);
/* Before finalize: chains that exporters emit for one op (PyTorch's LayerNorm below opset 17,
 * exact GELU through Erf) become that op, when their inner values have no other use
 * (src/graph/patterns.c). The fused steps' nodes are removed. */
advex_status advex_graph_fuse_patterns(advex_graph *g);
/* Uses of each value as a node input (n_vals ints, malloc'd; a node reading it twice counts
 * twice); NULL with the error set on allocation failure. */
int *advex_graph_uses(const advex_graph *g);

/* Per-example bounds (src/graph/checks.c): input values, and floats of activations,
 * per-op state and scratch in a plan (at 4 bytes each: 4 GiB). A hostile file can declare
 * a 1x65536x65536 input or a Pad that multiplies a tiny input; these are refused before
 * anything is allocated, whatever --max-memory says. */
#define ADVEX_MAX_EXAMPLE_INPUT ((int64_t)1 << 26)
#define ADVEX_MAX_EXAMPLE_FLOATS ((int64_t)1 << 30)
/* Weights and constants finite, BatchNorm statistics usable (var + eps > 0, finite scale);
 * errors name the node and tensor. At finalize and after restoring saved state. */
advex_status advex_net_check_weights(const advex_net *net);

/* ---- plan: one way of running a net (src/graph/plan.c) -------------------------------- */

/* The buffers and state of passes over a net for one input shape and mode: the value table
 * as this plan sees it, the arena (activations, per-node aux, the input gradient, the
 * activation-gradient pool, scratch), parameter gradients when training, the dropout RNG.
 * Any number of plans may run over one net at once (eval mode), one per thread. */
typedef struct advex_plan {
    const advex_net *net;
    advex_value *v;      /* (n_vals) the net's values with this plan's shapes and buffers */
    float **aux;         /* (n_nodes) each node's aux state in the arena, or NULL */
    int64_t *aux_n;      /* (n_nodes) */
    int ndim;            /* input shape it is laid out for; 0: not laid out */
    int64_t in_dims[ADVEX_MAX_DIMS];
    int train, want_grad;
    float *grads;        /* (n_params) parameter gradients (training plans): backward adds */
    float *arena;        /* activations, aux, the input grad, the activation-grad pool, scratch */
    int64_t arena_cap;
    /* Activations and their gradients share one pool by lifetime (plan_pool in plan.c): an
     * activation lives from its producer's forward to the last step that reads it (its last
     * forward consumer, or a backward that needs it), the grad of an ACT value from the
     * backward of its last consumer (topological order) to that of its producer, packed with
     * a greedy best-fit allocator. Only the graph input's grad (read after the pass) has a
     * buffer of its own: after a pass only the output, the input grad and parameter grads are
     * meaningful (unless grad_noshare). */
    int64_t grad_pool;   /* floats of the pool */
    /* Backward zeroing schedule: step s (node n_nodes-1-s) first zeroes, where grad_write is 0,
     * the grads of values bw_zero[n_nodes+1 + bw_zero[s] .. n_nodes+1 + bw_zero[s+1]) (its
     * inputs whose first consumer in reverse order it is, and its own output when nobody
     * consumes it). (n_nodes + 1 + n_vals) ints; tmp: 9 * (n_vals + 1) int64 of planning
     * workspace. Allocated once, so re-planning does not allocate. */
    int *bw_zero;
    int64_t *tmp;
    int *ev;             /* (4 (n_nodes + 1) + 2 (n_vals + 1)) planning workspace (plan_pool) */
    float *scratch;
    int64_t scratch_n;
    advex_rng rng;       /* dropout */
    int threads;         /* kernels' threads in this plan's passes; 0: the caller's */
    int64_t ex_base;     /* index of the plan's first example in the caller's batch (messages) */
    /* shapes only (set before laying out): advex_plan_shape infers every value's shape and
     * allocates nothing (the plan is then not runnable: ndim stays 0) */
    int shapes_only;
    /* test switches, set before laying out: every activation and activation grad gets its own
     * buffer (valid after the pass); every consumer accumulates (grad_write ignored) */
    int grad_noshare, no_grad_write;
} advex_plan;

advex_status advex_plan_new(const advex_net *net, advex_plan **out);
/* Whether node i's backward pass, in plan p's mode, reads the data of its input slot `slot`
 * (-1: of its output): what keeps an activation's buffer alive into the backward pass. */
int advex_plan_bw_reads(const advex_plan *p, int i, int slot);
void advex_plan_free(advex_plan *p);
/* Lay the plan out for an input of shape (ndim, dims) in a mode; no-op when unchanged.
 * want_grad: backward possible (activation gradients). train: BatchNorm batch statistics,
 * dropout, parameter gradients (with want_grad). */
advex_status advex_plan_shape(advex_plan *p, int ndim, const int64_t *dims, int train, int want_grad);
/* The same for an image batch of n (n, C, H, W) of the net's in_chw. */
advex_status advex_plan_images(advex_plan *p, int64_t n, int train, int want_grad);
/* Forward on x (the laid-out shape); the output is advex_plan_output() afterwards. */
advex_status advex_plan_forward(advex_plan *p, const float *x);
/* Backward from the output's gradient dout: the input gradient lands in
 * advex_plan_input_grad(); a training plan adds parameter gradients into p->grads. Checks
 * that every gradient is finite. */
advex_status advex_plan_backward(advex_plan *p, const float *dout);
static inline const float *advex_plan_output(const advex_plan *p) { return p->v[p->net->g.output].data; }
static inline const advex_value *advex_plan_output_value(const advex_plan *p) { return &p->v[p->net->g.output]; }
static inline const float *advex_plan_input_grad(const advex_plan *p) { return p->v[p->net->g.input].grad; }
/* Multiply-adds of one forward pass as laid out (Conv, Gemm and MatMul nodes), and how many
 * such layers there are (layers may be NULL). */
double advex_plan_macs(const advex_plan *p, int *layers);
/* ADVEX_ERR_LIMIT naming the input or the largest activation when one example of the plan,
 * needing `floats` floats of arena in all, passes the per-example bounds above. */
advex_status advex_plan_check_size(const advex_plan *p, int64_t floats);

/* ---- model handle: a net and the plans that run it (src/graph/exec.c, model_api.c) ------- */

struct advex_model {
    advex_net *net;      /* shared with advex_model_share'd handles */
    advex_plan *plan;    /* eval passes over a whole batch (too small to split) */
    advex_plan *train;   /* training passes (created on first use) */
    /* batch-parallel eval passes (exec.c): one plan per thread, each running a part */
    advex_plan **part;
    int n_part;
    int split;           /* parts of the last advex_model_eval_forward (0: not split) */
    int64_t split_b;     /* its batch size */
    float *zbuf;         /* (split_b, classes) gathered logits of a split pass */
    int64_t zcap;
    float *ws;           /* grow-only workspace for attacks/training (advex_model_workspace) */
    int32_t eot;         /* > 1: advex_model_grad_loop averages eot passes (set per attack) */
    uint64_t seed;       /* randomness inside the model: plan streams (advex_model_seed) */
    uint64_t rng_key;    /* the eval plans' streams now: seed, or a batch's (advex_model_seed_batch) */
    int random;          /* advex_model_is_random: eval passes never split */
    float *eot_g;        /* (ADVEX_CHUNK, C,H,W) the gradient sum of an EOT loop */
    int64_t ws_cap;
};

/* Randomized models (m->random): the draws of one batch of an evaluation come from streams
 * keyed by (m->seed, offset, phase, attack) alone, offset being the index of the batch's first
 * example in the data set, so a batch draws the same whatever ran before it: an evaluation
 * resumed from its state, or cut into shards of whole batches, gives the results of one
 * uninterrupted run. Each phase of a batch restarts its own stream, so one phase's draws do not
 * depend on how many the one before took: the clean pass (eval.c; attack 0, the same for every
 * run of a sweep: one set of clean predictions), the attack (advex_attack_batch_info, with
 * every step, restart and EOT pass in it drawing in sequence from there), and the model's own
 * verdict on what the attack returned. `attack` (an advex_attack_kind) keys the last two: the
 * runs of two attacks draw independently, so a sweep's worst case over them is judged by
 * independent verdict passes, as AutoAttack judges each attack's output by a pass of its own
 * (one shared verdict draw would make an example that drew lucky noise survive every attack).
 * A no-op for a deterministic model. */
typedef enum advex_draw_phase { ADVEX_DRAW_CLEAN = 0, ADVEX_DRAW_ATTACK, ADVEX_DRAW_JUDGE } advex_draw_phase;
void advex_model_seed_batch(advex_model *m, int64_t offset, advex_draw_phase phase, int attack);

/* A model handle over a finalized net (taking over the caller's reference). */
advex_status advex_model_wrap(advex_net *net, advex_model **out);
/* Per-example input size C*H*W. */
static inline int64_t advex_model_dim(const advex_model *m) {
    return m->net->in_chw[0] * m->net->in_chw[1] * m->net->in_chw[2];
}

/* Eval-mode pass over a batch of b (at most one chunk): runs forward and points *z at the
 * (b, classes) logits. With several threads and a large enough batch the batch is split
 * across per-thread plans (exec.c). want_grad: a backward may follow. */
advex_status advex_model_eval_forward(advex_model *m, const float *x, int64_t b, int want_grad, const float **z);
/* Backward of the last advex_model_eval_forward (want_grad) seeded with dl (b, classes);
 * writes the (b, C, H, W) input gradient to grad. */
advex_status advex_model_eval_backward(advex_model *m, const float *dl, float *grad);
/* Gradients with respect to the input of the batch x (n, C,H,W) in eval mode, chunk by chunk
 * (ADVEX_CHUNK examples): forward, fn fills the per-example loss (b) and d loss / d logits
 * (b, k) of rows i0..i0+b-1 from their logits z, backward into grad (n, C,H,W). With
 * m->eot > 1 (expectation over transformation) each chunk runs eot passes and grad is their
 * mean; logits and loss are the last pass's. logits (n, k)
 * and loss (n) may be NULL; dl is scratch of ADVEX_CHUNK * k floats. A non-finite dl is
 * ADVEX_ERR_NUMERIC naming the example. Never allocates (the plans aside). What the public
 * input_grad/vjp and every gradient attack run. */
#define ADVEX_CHUNK 256
typedef void (*advex_dl_fn)(void *u, int64_t i0, int64_t b, int64_t k, const float *z, float *loss, float *dl);
advex_status advex_model_grad_loop(advex_model *m, const float *x, int64_t n, advex_dl_fn fn, void *u, float *grad,
                                   float *logits, float *loss, float *dl);
/* The data set fits the model: labels present, images of the model's input shape, labels
 * in [0, classes). `use` names the caller in the message ("training needs labels"). */
advex_status advex_data_fits(const advex_model *m, const advex_dataset *d, const char *use);
/* The training plan laid out for a batch of n (train mode, parameter gradients). */
advex_status advex_model_train_plan(advex_model *m, int64_t n, advex_plan **p);

/* A grow-only float workspace owned by the model (attacks, training): returns NULL (with
 * the error set) on allocation failure. Contents are undefined; valid until the next call. */
float *advex_model_workspace(advex_model *m, int64_t n);

/* ---- incremental passes (src/graph/incr.c) ------------------------------------------------ */

/* Forward passes that recompute only what a changed window of the input reaches, over slots
 * that each cache one example's activations (Square's L-inf proposals). NULL from
 * advex_incr_new (and ADVEX_OK) when the net is not a chain it takes, or the slots do not fit
 * the memory cap: the caller runs full passes. threads: the callers' thread indices th are
 * below it, each with its own scratch and pending proposal. */
typedef struct advex_incr advex_incr;
advex_status advex_incr_new(const advex_net *net, int64_t slots, int threads, advex_incr **out);
void advex_incr_free(advex_incr *e);
/* A full pass of x (C,H,W) into slot's cache; its logits into z (classes). */
void advex_incr_set(advex_incr *e, int64_t slot, const float *x, float *z, int th);
/* The logits z of x, which differs from slot's cached input only in rows [r0, r1) and columns
 * [c0, c1) (every channel); the slot then holds x's activations, pending: advex_incr_keep
 * makes them its state, advex_incr_undo restores the state before. */
void advex_incr_try(advex_incr *e, int64_t slot, const float *x, int64_t r0, int64_t r1, int64_t c0, int64_t c1,
                    float *z, int th);
void advex_incr_keep(advex_incr *e, int th);
void advex_incr_undo(advex_incr *e, int th);

/* ---- losses (src/ops/loss.c) ----------------------------------------------------------- */

/* Per-example loss (n) and its gradient wrt logits (n, c), unreduced (sum reduction).
 * Returns the summed loss. dlogits may be NULL. */
double advex_loss_forward_backward(advex_loss kind, const float *logits, const int32_t *y,
                                   int64_t n, int64_t c, float *loss, float *dlogits);
/* Softmax of each row of z (n, c) into p (n, c), in double internally. */
void advex_softmax_rows(const float *z, int64_t n, int64_t c, float *p);
/* Index of the largest z_j (the first on ties). */
int32_t advex_argmax(const float *z, int64_t c);
/* The training losses, batch means, with d loss / d logits into dl:
 *   rows2 == 0:            CE over z (b, c)
 *   rows2, beta < 0:       w * CE(x) + (1 - w) * CE(x') over z = [x rows; x' rows] (2b, c), y (2b)
 *   rows2, beta >= 0:      TRADES, CE(x) + beta * KL(p(x) || p(x')) (Zhang et al. 2019)
 * loss (2b) and p (2b, c) are scratch. Returns the loss. Means are over bdiv examples (b, or
 * the global batch of a data-parallel step whose b rows are one process's part of it). */
double advex_train_loss(const float *z, const int32_t *y, int64_t b, int64_t c, int rows2, float w, float beta,
                        float *loss, float *p, float *dl, int64_t bdiv);

/* AutoAttack's final check on one returned example (x, x': dim): the three norms of x' - x,
 * its NaN entries and its finite range, into e (src/eval/eval.c). */
void advex_eval_example_stats(const float *x, const float *xa, int64_t dim, advex_eval_example *e);

/* ---- evaluation through a target, run by run (src/target/attack_target.c) ------------------ */
/* One run (attack c) of an evaluation whose records are ex (d->n entries): open checks the
 * run (advex_target_check_run), sets every example's query budget and sends the clean query
 * of examples [lo, n) (ex[0, lo) hold a resumed run's records: their clean classes give
 * targeted hsj's starts without a query); run_batch attacks examples [i0, i1) (at most
 * `batch`, clean-correct only) and completes their records, x' into adv (i1 - i0 rows) when
 * not NULL. Every image sent is charged to an example (ex[i].queries). */
typedef struct advex_target_run advex_target_run;
advex_status advex_target_check_run(struct advex_target *t, advex_model *sur, const advex_dataset *d,
                                    const advex_attack_config *c);
advex_status advex_target_run_open(struct advex_target *t, advex_model *sur, const advex_dataset *d,
                                   const advex_attack_config *c, int64_t batch, int64_t lo, advex_eval_example *ex,
                                   advex_target_run **out);
advex_status advex_target_run_batch(advex_target_run *r, int64_t i0, int64_t i1, float *adv);
void advex_target_run_close(advex_target_run *r);
/* advex_eval_summarize plus the target's accounting: queries_total is the sum of the records'
 * queries, the queries per success are counted for every attack (transfer's included). */
advex_status advex_target_summarize(const advex_dataset *d, const advex_attack_config *c, int transfer,
                                    const advex_eval_example *ex, double seconds, advex_eval_result *res);

/* ---- per-example records of a sweep and its state file (src/eval/state.c) ------------------ */
/* Mean and median of v (n; sorted in place); 0 and 0 when n is 0. */
void advex_mean_median(double *v, int64_t n, double *mean, double *median);
/* Linf, L2 and L1 norms of xa - x (d), in double. */
void advex_pert_norms(const float *x, const float *xa, int64_t d, double n3[3]);
/* What every run of a sweep did to every example; the arrays point into buf, which is the
 * state file's contents (header, the arrays, a checksum). */
typedef struct advex_records {
    unsigned char *buf;
    size_t size;
    int64_t n;
    int runs;
    int64_t *done;           /* (runs) examples done, from the first, in batches */
    double *seconds;         /* (runs) time spent on them */
    advex_eval_example *ex;  /* (runs, n) every example's outcome in every run */
    const char *path;        /* the state file (borrowed); NULL: in memory only */
    int read_only;           /* read path, never write it */
    int64_t resumed;         /* example-runs read back from the file */
} advex_records;

/* The records of sweep c over d on m, read back from c->state when that file exists. */
advex_status advex_records_open(advex_records *r, advex_model *m, const advex_dataset *d, const advex_sweep_config *c);
void advex_records_free(advex_records *r);
/* Run `run` (attack config ac) over the examples of its shard (c->shard_lo/hi) it has not
 * done, batch by batch, saving the state after each and calling c->progress; then c->gather
 * completes the records; then its result from the records. adv: x' (d->n rows) or NULL. */
advex_status advex_records_run(advex_records *r, int run, advex_model *m, const advex_dataset *d,
                               const advex_sweep_config *c, const advex_attack_config *ac, float *adv,
                               advex_eval_result *res);
/* The state file's checks on bytes already read (the fuzz harness's entry): ADVEX_OK when
 * they are a valid state for r's shape (n, runs) and a model of `classes` classes. */
advex_status advex_records_check(const advex_records *r, int64_t classes, int64_t batch, const char *path);

/* ---- JSON (src/eval/results.c, cJSON) -------------------------------------------------------- */
struct cJSON;
/* The shortest decimal that reads back as float v (0.05f: "0.05"), or as double v exactly
 * (15-17 digits; "null" when not finite), into buf; returns buf. JSON, CSV and HTML print
 * every number with these, so all three carry the same values. */
const char *advex_float_str(float v, char buf[32]);
const char *advex_double_str(double v, char buf[32]);
/* A JSON number printed by advex_double_str (cJSON's own printer may drop the last bit). */
struct cJSON *advex_json_number(double v);
/* The shortest decimal that reads back as v; the warning texts of bits; the results object
 * of advex_eval_json (to extend, e.g. the report's results.json). NULL when out of memory. */
struct cJSON *advex_json_float(float v);
struct cJSON *advex_json_warnings(unsigned bits);
struct cJSON *advex_eval_json_object(const advex_eval_result *r, int count, const char *model, const char *data,
                                     unsigned warnings);
/* Print o (and delete it) into a malloc'd string ending in a newline. */
advex_status advex_json_take(struct cJSON *o, char **json);

/* ---- what a report reads from a sweep (src/eval/sweep.c), when it kept rows ---------------- */
/* AutoAttack's check_randomized (src/eval/checks.c): five forward passes of x (n examples)
 * differ (rows normalised to unit L2 norm, any entry by more than 1e-4, or the count of
 * correct predictions changes): ADVEX_EVAL_WARN_RANDOMIZED into *warnings. */
advex_status advex_eval_check_randomized(advex_model *m, const float *x, const int32_t *y, int64_t n,
                                         unsigned *warnings);
int64_t advex_sweep_kept_rows(const advex_sweep *s);
int advex_sweep_attacks(const advex_sweep *s);
int advex_sweep_eps_count(const advex_sweep *s);
int advex_sweep_top_run(const advex_sweep *s, int attack);
const int32_t *advex_sweep_clean_pred(const advex_sweep *s);
const float *advex_sweep_clean_conf(const advex_sweep *s);
const int32_t *advex_sweep_adv_pred(const advex_sweep *s, int run);
/* The records of every run (state.c), the labels (n), and each attack's curve storage: counts
 * (attacks), eps and robust accuracy (attacks, ADVEX_SWEEP_MAX_EPS), filled by
 * advex_curves_compute (curve.c) once the runs are done. */
const advex_records *advex_sweep_records(const advex_sweep *s);
const int32_t *advex_sweep_labels(const advex_sweep *s);
void advex_sweep_curve_storage(advex_sweep *s, int **count, float **eps, double **acc);
advex_status advex_curves_compute(advex_sweep *s, const advex_sweep_config *c);
/* "curves": [...] of advex_sweep_json, added to o (the report's results.json too). */
void advex_curves_json(const advex_sweep *s, struct cJSON *o);
/* Attack a's grid: kept_rows example indices, adversarial examples, predictions, confidences. */
void advex_sweep_grid(const advex_sweep *s, int a, const int64_t **idx, const float **xadv, const int32_t **pred,
                      const float **conf);

/* ---- threads and time ---------------------------------------------------------------------- */
int advex_threads(void);
/* Seconds on the monotonic clock (src/core/threads.c). */
double advex_now(void);

#endif
