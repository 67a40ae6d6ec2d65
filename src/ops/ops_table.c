/* The op table: ONNX name, input-count bounds and kernels of every op, indexed by
 * advex_op_type; attribute defaults (ONNX's); small shape helpers shared by the ops. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/kernels.h"

/* gw: the input slots whose grad_write flag the backward honours (advex_op_def.grad_write_in) */
#define OP_(pfx, nm, lo, hi, scr, aux, gw) \
    {nm, lo, hi, advex_##pfx##_infer, scr, aux, advex_##pfx##_forward, advex_##pfx##_backward, gw}

const advex_op_def advex_op_defs[] = {
    /* Conv: writes X's gradient (Winograd stores it; im2col zeroes, then scatters) */
    [ADVEX_OP_CONV] = OP_(conv, "Conv", 2, 3, advex_conv_scratch, advex_conv_aux, 0x1u),
    [ADVEX_OP_GEMM] = OP_(gemm, "Gemm", 2, 3, NULL, NULL, 0x7u),
    [ADVEX_OP_MATMUL] = OP_(matmul, "MatMul", 2, 2, NULL, NULL, 0x3u),
    [ADVEX_OP_RELU] = OP_(relu, "Relu", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_LEAKY_RELU] = OP_(leaky_relu, "LeakyRelu", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_SIGMOID] = OP_(sigmoid, "Sigmoid", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_TANH] = OP_(tanh, "Tanh", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_CLIP] = OP_(clip, "Clip", 1, 3, NULL, NULL, 0x1u),
    [ADVEX_OP_MAXPOOL] = OP_(maxpool, "MaxPool", 1, 1, NULL, advex_maxpool_aux, 0x1u),
    [ADVEX_OP_AVGPOOL] = OP_(avgpool, "AveragePool", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_GLOBAL_AVGPOOL] = OP_(global_avgpool, "GlobalAveragePool", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_BATCHNORM] = OP_(batchnorm, "BatchNormalization", 5, 5, NULL, advex_batchnorm_aux, 0x7u),
    [ADVEX_OP_DROPOUT] = OP_(dropout, "Dropout", 1, 3, NULL, advex_dropout_aux, 0x1u),
    [ADVEX_OP_FLATTEN] = OP_(flatten, "Flatten", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_RESHAPE] = OP_(reshape, "Reshape", 1, 2, NULL, NULL, 0x1u),
    [ADVEX_OP_TRANSPOSE] = OP_(transpose, "Transpose", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_CONCAT] = OP_(concat, "Concat", 1, 4096, NULL, NULL, ADVEX_GW_ALL),
    [ADVEX_OP_PAD] = OP_(pad, "Pad", 1, 4, NULL, NULL, 0x1u),
    [ADVEX_OP_IDENTITY] = OP_(identity, "Identity", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_ADD] = OP_(binary, "Add", 2, 2, NULL, NULL, 0x3u),
    [ADVEX_OP_SUB] = OP_(binary, "Sub", 2, 2, NULL, NULL, 0x3u),
    [ADVEX_OP_MUL] = OP_(binary, "Mul", 2, 2, NULL, NULL, 0x3u),
    [ADVEX_OP_DIV] = OP_(binary, "Div", 2, 2, NULL, NULL, 0x3u),
    [ADVEX_OP_SOFTMAX] = OP_(softmax, "Softmax", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_LOG_SOFTMAX] = OP_(log_softmax, "LogSoftmax", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_SQRT] = OP_(unary, "Sqrt", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_EXP] = OP_(unary, "Exp", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_LOG] = OP_(unary, "Log", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_NEG] = OP_(unary, "Neg", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_RECIPROCAL] = OP_(unary, "Reciprocal", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_ABS] = OP_(unary, "Abs", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_ERF] = OP_(unary, "Erf", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_SIN] = OP_(unary, "Sin", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_COS] = OP_(unary, "Cos", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_FLOOR] = OP_(unary, "Floor", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_CEIL] = OP_(unary, "Ceil", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_HARD_SIGMOID] = OP_(unary, "HardSigmoid", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_HARD_SWISH] = OP_(unary, "HardSwish", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_GELU] = OP_(unary, "Gelu", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_SOFTPLUS] = OP_(unary, "Softplus", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_SOFTSIGN] = OP_(unary, "Softsign", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_ELU] = OP_(unary, "Elu", 1, 1, NULL, NULL, 0x1u),
    [ADVEX_OP_SELU] = OP_(unary, "Selu", 1, 1, NULL, NULL, 0x1u),
    /* a broadcast operand's grad is zeroed, then summed into (write mode honoured) */
    [ADVEX_OP_POW] = OP_(bcast, "Pow", 2, 2, NULL, NULL, 0x3u),
    [ADVEX_OP_MIN] = OP_(bcast, "Min", 2, 2, NULL, NULL, 0x3u),
    [ADVEX_OP_MAX] = OP_(bcast, "Max", 2, 2, NULL, NULL, 0x3u),
    [ADVEX_OP_PRELU] = OP_(bcast, "PRelu", 2, 2, NULL, NULL, 0x3u),
    [ADVEX_OP_WHERE] = OP_(bcast, "Where", 3, 3, NULL, NULL, 0x6u),
    /* Expand: input 1 (optional) is the graph input, read for its batch size only */
    [ADVEX_OP_EXPAND] = OP_(bcast, "Expand", 1, 2, NULL, NULL, 0x1u),
    [ADVEX_OP_REDUCE_MEAN] = OP_(reduce, "ReduceMean", 1, 1, advex_reduce_scratch, NULL, 0x1u),
    [ADVEX_OP_REDUCE_SUM] = OP_(reduce, "ReduceSum", 1, 1, advex_reduce_scratch, NULL, 0x1u),
    [ADVEX_OP_REDUCE_MAX] = OP_(reduce, "ReduceMax", 1, 1, advex_reduce_scratch, NULL, 0x1u),
    [ADVEX_OP_REDUCE_MIN] = OP_(reduce, "ReduceMin", 1, 1, advex_reduce_scratch, NULL, 0x1u),
    [ADVEX_OP_REDUCE_SUM_SQUARE] = OP_(reduce, "ReduceSumSquare", 1, 1, advex_reduce_scratch, NULL, 0x1u),
    [ADVEX_OP_REDUCE_L1] = OP_(reduce, "ReduceL1", 1, 1, advex_reduce_scratch, NULL, 0x1u),
    [ADVEX_OP_REDUCE_L2] = OP_(reduce, "ReduceL2", 1, 1, advex_reduce_scratch, NULL, 0x1u),
    [ADVEX_OP_REDUCE_LOG_SUM_EXP] = OP_(reduce, "ReduceLogSumExp", 1, 1, advex_reduce_scratch, NULL, 0x1u),
    [ADVEX_OP_LAYER_NORM] = OP_(layernorm, "LayerNormalization", 2, 3, NULL, advex_layernorm_aux, 0x7u),
    [ADVEX_OP_SLICE] = OP_(slice, "Slice", 1, 1, NULL, NULL, 0x1u),
    /* Gather: input 1 holds the indices (a constant) */
    [ADVEX_OP_GATHER] = OP_(gather, "Gather", 2, 2, NULL, NULL, 0x1u),
    /* randomness: the sample is a constant w.r.t. the input (no gradient) */
    [ADVEX_OP_RANDOM_NORMAL_LIKE] = OP_(random, "RandomNormalLike", 1, 1, NULL, NULL, 0),
    [ADVEX_OP_RANDOM_UNIFORM_LIKE] = OP_(random, "RandomUniformLike", 1, 1, NULL, NULL, 0),
    [ADVEX_OP_BERNOULLI] = OP_(random, "Bernoulli", 1, 1, NULL, NULL, 0),
    [ADVEX_OP_RANDOM_NORMAL] = OP_(random, "RandomNormal", 0, 0, NULL, NULL, 0),
    [ADVEX_OP_RANDOM_UNIFORM] = OP_(random, "RandomUniform", 0, 0, NULL, NULL, 0),
};
_Static_assert(sizeof advex_op_defs / sizeof advex_op_defs[0] == ADVEX_OP_COUNT,
               "advex_op_defs must have one entry per ADVEX_OP_LIST op");

/* Names straight from the X-macro, so a table entry with a different name is caught by
 * advex_op_from_name's tests (test_ops: op_table). */
static const char *const op_names[] = {
#define OP_NAME_(id, nm) nm,
    ADVEX_OP_LIST(OP_NAME_)
#undef OP_NAME_
};
_Static_assert(sizeof op_names / sizeof op_names[0] == ADVEX_OP_COUNT, "op name list size");

int advex_op_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < ADVEX_OP_COUNT; i++)
        if (strcmp(op_names[i], name) == 0 && advex_op_defs[i].name && strcmp(advex_op_defs[i].name, name) == 0)
            return i;
    return -1;
}

/* ONNX defaults. Two fields are shared by ops whose ONNX defaults differ:
 *  - alpha: Gemm's 1.0 here; LeakyRelu's ONNX default is 0.01, so whoever builds a
 *    LeakyRelu node (importer, arch builders) sets alpha explicitly when it is absent;
 *  - axis: 1 (Flatten; Concat requires it); Softmax/LogSoftmax opset 13 default to -1,
 *    which is the same axis for (N, classes) logits. */
void advex_attrs_default(advex_attrs *a) {
    memset(a, 0, sizeof *a);
    a->stride[0] = a->stride[1] = 1;
    a->dilation[0] = a->dilation[1] = 1;
    a->group = 1;
    a->alpha = 1.0f;
    a->beta = 1.0f;
    a->min = -INFINITY;
    a->max = INFINITY;
    a->axis = 1;
    a->epsilon = 1e-5f;
    a->momentum = 0.9f;
    a->ratio = 0.5f;
    a->pad_value = 0.0f;
    a->n_ints = 0;
    a->auto_pad = ADVEX_AUTO_PAD_NOTSET;
    a->keepdims = 1;
    a->mode = 0;
    for (int d = 0; d < ADVEX_MAX_DIMS; d++) {
        a->starts[d] = 0;
        a->ends[d] = INT64_MAX;
        a->steps[d] = 1;
    }
}

const char *advex_shape_str(char *buf, size_t n, int ndim, const int64_t *dims) {
    size_t k = 0;
    if (n == 0) return buf;
    buf[0] = '\0';
    k += (size_t)snprintf(buf + k, n - k, "(");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (k < n) snprintf(buf + k, n - k, ")");
    return buf;
}

void advex_set_shape(advex_value *o, int ndim, const int64_t *dims) {
    o->ndim = ndim;
    for (int i = 0; i < ndim; i++) o->dims[i] = dims[i];
    for (int i = ndim; i < ADVEX_MAX_DIMS; i++) o->dims[i] = 0;
}

int advex_norm_axis(int64_t axis, int r, int inclusive) {
    int64_t hi = inclusive ? r : r - 1;
    if (axis < -(int64_t)r || axis > hi) return -1;
    return (int)(axis < 0 ? axis + r : axis);
}

void advex_bcast_strides(int64_t *strides, int ndim_out, const int64_t *odims, int ndim_in,
                         const int64_t *idims) {
    int64_t s = 1;
    for (int d = ndim_out - 1; d >= 0; d--) {
        int di = d - (ndim_out - ndim_in);
        if (di < 0 || idims[di] == 1 || odims[d] == 1) {
            strides[d] = 0;
        } else {
            strides[d] = s;
        }
        if (di >= 0) s *= idims[di];
    }
}

int advex_bcast_shape(int *ndim, int64_t *dims, int na, const int64_t *a, int nb, const int64_t *b) {
    int n = na > nb ? na : nb;
    for (int d = 0; d < n; d++) {
        int da = d - (n - na), db = d - (n - nb);
        int64_t x = da >= 0 ? a[da] : 1, y = db >= 0 ? b[db] : 1;
        if (x == y || y == 1) dims[d] = x;
        else if (x == 1) dims[d] = y;
        else return 0;
    }
    *ndim = n;
    return 1;
}
