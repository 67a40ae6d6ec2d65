/* Built-in architectures (small, cnn, ...) assembled with a tiny graph builder, with
 * PyTorch's default initialisation (Kaiming-uniform weights, uniform biases). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct builder {
    advex_net *net;
    advex_rng rng;
    int counter;
    advex_status st;
} builder;

static int new_value(builder *b, const char *prefix, advex_value_kind kind, int ndim, const int64_t *dims) {
    char name[64];
    if (b->st) return -1;
    snprintf(name, sizeof name, "%s%d", prefix, b->counter++);
    int id = advex_graph_add_value(&b->net->g, name, kind, ndim, dims);
    if (id < 0) b->st = ADVEX_ERR_NOMEM;
    return id;
}

/* Weight/bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both, as torch.nn's defaults. */
static int init_param(builder *b, const char *prefix, int ndim, const int64_t *dims, int64_t fan_in) {
    int id = new_value(b, prefix, ADVEX_VAL_PARAM, ndim, dims);
    if (id < 0) return -1;
    advex_value *v = &b->net->g.vals[id];
    float bound = 1.0f / sqrtf((float)fan_in);
    int64_t n = advex_numel(ndim, dims);
    for (int64_t i = 0; i < n; i++) v->data[i] = (2.0f * advex_rng_uniform(&b->rng) - 1.0f) * bound;
    return id;
}

static int add_op(builder *b, advex_op_type op, const char *prefix, int n_in, const int *in, advex_attrs *a) {
    if (b->st) return -1;
    int out = new_value(b, prefix, ADVEX_VAL_ACT, 0, NULL);
    if (out < 0) return -1;
    char name[64];
    snprintf(name, sizeof name, "%s%d", prefix, b->counter++);
    int nd = advex_graph_add_node(&b->net->g, op, name, n_in, in, out);
    if (nd < 0) { b->st = ADVEX_ERR_NOMEM; return -1; }
    if (a) b->net->g.nodes[nd].a = *a;
    return out;
}

static int conv(builder *b, int x, int64_t cin, int64_t cout, int64_t k, int64_t s, int64_t p, int bias) {
    int64_t wd[4] = {cout, cin, k, k}, bd[1] = {cout};
    int in[3];
    in[0] = x;
    in[1] = init_param(b, "conv_w", 4, wd, cin * k * k);
    in[2] = bias ? init_param(b, "conv_b", 1, bd, cin * k * k) : -1;
    advex_attrs a;
    advex_attrs_default(&a);
    a.kernel[0] = a.kernel[1] = k;
    a.stride[0] = a.stride[1] = s;
    for (int i = 0; i < 4; i++) a.pads[i] = p;
    return add_op(b, ADVEX_OP_CONV, "conv", bias ? 3 : 2, in, &a);
}

static int linear(builder *b, int x, int64_t fin, int64_t fout) {
    int64_t wd[2] = {fout, fin}, bd[1] = {fout};
    int in[3] = {x, init_param(b, "fc_w", 2, wd, fin), init_param(b, "fc_b", 1, bd, fin)};
    advex_attrs a;
    advex_attrs_default(&a);
    a.trans_b = 1;
    return add_op(b, ADVEX_OP_GEMM, "fc", 3, in, &a);
}

static int unary(builder *b, advex_op_type op, const char *prefix, int x) {
    return add_op(b, op, prefix, 1, &x, NULL);
}

static int maxpool(builder *b, int x, int64_t k, int64_t s) {
    advex_attrs a;
    advex_attrs_default(&a);
    a.kernel[0] = a.kernel[1] = k;
    a.stride[0] = a.stride[1] = s;
    return add_op(b, ADVEX_OP_MAXPOOL, "pool", 1, &x, &a);
}

static int batchnorm(builder *b, int x, int64_t c) {
    int64_t d[1] = {c};
    int in[5] = {x, new_value(b, "bn_scale", ADVEX_VAL_PARAM, 1, d), new_value(b, "bn_bias", ADVEX_VAL_PARAM, 1, d),
                 new_value(b, "bn_mean", ADVEX_VAL_STATE, 1, d), new_value(b, "bn_var", ADVEX_VAL_STATE, 1, d)};
    if (b->st) return -1;
    for (int64_t i = 0; i < c; i++) {
        b->net->g.vals[in[1]].data[i] = 1.0f;
        b->net->g.vals[in[4]].data[i] = 1.0f;
    }
    return add_op(b, ADVEX_OP_BATCHNORM, "bn", 5, in, NULL);
}

static int add2(builder *b, int x, int y) {
    int in[2] = {x, y};
    return add_op(b, ADVEX_OP_ADD, "add", 2, in, NULL);
}

/* Wong et al. 2020's MNIST network. */
static void build_small(builder *b, int x) {
    x = unary(b, ADVEX_OP_RELU, "relu", conv(b, x, 1, 16, 4, 2, 1, 1));
    x = unary(b, ADVEX_OP_RELU, "relu", conv(b, x, 16, 32, 4, 2, 1, 1));
    x = unary(b, ADVEX_OP_FLATTEN, "flatten", x);
    x = unary(b, ADVEX_OP_RELU, "relu", linear(b, x, 32 * 7 * 7, 100));
    b->net->g.output = linear(b, x, 100, 10);
}

/* Madry et al.'s MNIST network. */
static void build_cnn(builder *b, int x) {
    x = maxpool(b, unary(b, ADVEX_OP_RELU, "relu", conv(b, x, 1, 32, 5, 1, 2, 1)), 2, 2);
    x = maxpool(b, unary(b, ADVEX_OP_RELU, "relu", conv(b, x, 32, 64, 5, 1, 2, 1)), 2, 2);
    x = unary(b, ADVEX_OP_FLATTEN, "flatten", x);
    x = unary(b, ADVEX_OP_RELU, "relu", linear(b, x, 64 * 7 * 7, 1024));
    b->net->g.output = linear(b, x, 1024, 10);
}

/* Residual block: conv-bn-relu-conv-bn (+ 1x1 strided projection when the shape changes), relu. */
static int res_block(builder *b, int x, int64_t cin, int64_t cout, int64_t stride) {
    int y = unary(b, ADVEX_OP_RELU, "relu", batchnorm(b, conv(b, x, cin, cout, 3, stride, 1, 0), cout));
    y = batchnorm(b, conv(b, y, cout, cout, 3, 1, 1, 0), cout);
    int skip = x;
    if (stride != 1 || cin != cout) skip = batchnorm(b, conv(b, x, cin, cout, 1, stride, 0, 0), cout);
    return unary(b, ADVEX_OP_RELU, "relu", add2(b, y, skip));
}

/* A small ResNet for 1x28x28 inputs: stem 16, stages 16/32/64, global pool, linear. */
static void build_resnet(builder *b, int x) {
    x = unary(b, ADVEX_OP_RELU, "relu", batchnorm(b, conv(b, x, 1, 16, 3, 1, 1, 0), 16));
    x = res_block(b, x, 16, 16, 1);
    x = res_block(b, x, 16, 32, 2);
    x = res_block(b, x, 32, 64, 2);
    x = unary(b, ADVEX_OP_FLATTEN, "flatten", unary(b, ADVEX_OP_GLOBAL_AVGPOOL, "gap", x));
    b->net->g.output = linear(b, x, 64, 10);
}

/* A wider CNN for adversarial training: two conv blocks of 32 and 64 channels
 * (two 3x3 convs each, stride-2 on the second), then 200-unit hidden layer. */
static void build_wide(builder *b, int x) {
    x = unary(b, ADVEX_OP_RELU, "relu", conv(b, x, 1, 32, 3, 1, 1, 1));
    x = unary(b, ADVEX_OP_RELU, "relu", conv(b, x, 32, 32, 4, 2, 1, 1));
    x = unary(b, ADVEX_OP_RELU, "relu", conv(b, x, 32, 64, 3, 1, 1, 1));
    x = unary(b, ADVEX_OP_RELU, "relu", conv(b, x, 64, 64, 4, 2, 1, 1));
    x = unary(b, ADVEX_OP_FLATTEN, "flatten", x);
    x = unary(b, ADVEX_OP_RELU, "relu", linear(b, x, 64 * 7 * 7, 200));
    b->net->g.output = linear(b, x, 200, 10);
}

typedef struct arch_entry {
    const char *name;
    void (*build)(builder *b, int x);
} arch_entry;

static const arch_entry arches[] = {
    {"small", build_small},
    {"cnn", build_cnn},
    {"wide", build_wide},
    {"resnet", build_resnet},
};

const char *advex_model_arch_names(void) { return "small,cnn,wide,resnet"; }

advex_status advex_model_build(const char *arch, uint64_t seed, advex_model **out) {
    *out = NULL;
    const arch_entry *e = NULL;
    for (size_t i = 0; i < sizeof arches / sizeof *arches; i++)
        if (arch && strcmp(arch, arches[i].name) == 0) e = &arches[i];
    if (!e)
        return advex_set_error(ADVEX_ERR_ARG, "unknown architecture '%s' (choose from %s)", arch ? arch : "",
                               advex_model_arch_names());
    builder b = {advex_net_new(arch), {{0}}, 0, ADVEX_OK};
    if (!b.net) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    advex_graph *g = &b.net->g;
    advex_rng_seed(&b.rng, seed);
    int64_t in_dims[4] = {1, 1, 28, 28};
    g->input = advex_graph_add_value(g, "input", ADVEX_VAL_INPUT, 4, in_dims);
    if (g->input < 0) b.st = ADVEX_ERR_NOMEM;
    e->build(&b, g->input);
    advex_status st = b.st;
    if (!st) {
        free(g->vals[g->output].name);
        g->vals[g->output].name = advex_strdup("logits");
        st = advex_net_finalize(b.net, 1);
    }
    if (st) { advex_net_release(b.net); return st; }
    return advex_model_wrap(b.net, out);
}
