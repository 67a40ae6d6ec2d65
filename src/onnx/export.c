/* ONNX export: the advex graph as an opset-13 model (input "input" (N,C,H,W) with a
 * symbolic batch, output "logits" (N, classes), weights as raw little-endian float
 * initializers), written atomically (temporary file, fsync, rename). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "onnx_internal.h"

#define EXPORT_OPSET 13
#define EXPORT_IR 7
#define MAX_NODE_ATTRS 8

typedef struct exporter {
    const advex_net *net;
    void **allocs;              /* everything below is freed in one sweep */
    size_t n_allocs, cap_allocs;
    int failed;                 /* an allocation failed */
    onnx_map used;              /* names taken */
    const char **vname;         /* export name of each value */
    Onnx__TensorProto **inits;
    size_t n_inits;
    Onnx__NodeProto **nodes;
    size_t n_nodes;
} exporter;

static void *xalloc(exporter *x, size_t n) {
    if (x->failed) return NULL;
    if (x->n_allocs == x->cap_allocs) {
        size_t cap = x->cap_allocs ? x->cap_allocs * 2 : 256;
        void **na = realloc(x->allocs, cap * sizeof *na);
        if (!na) { x->failed = 1; return NULL; }
        x->allocs = na;
        x->cap_allocs = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (!p) { x->failed = 1; return NULL; }
    x->allocs[x->n_allocs++] = p;
    return p;
}

static char *xprintf(exporter *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *xprintf(exporter *x, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? xalloc(x, (size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A name not used yet: base itself, else base_1, base_2, ... */
static const char *unique_name(exporter *x, const char *base) {
    if (!base || !*base) base = "v";
    char *s = xprintf(x, "%s", base);
    for (int k = 1; s && onnx_map_get(&x->used, s) >= 0; k++) s = xprintf(x, "%s_%d", base, k);
    if (!s || onnx_map_put(&x->used, s, 1) != 0) { x->failed = 1; return NULL; }
    return s;
}

/* ---- tensors ---------------------------------------------------------------------------- */

static Onnx__TensorProto *new_tensor(exporter *x, const char *name, int dtype, int ndim, const int64_t *dims) {
    Onnx__TensorProto *t = xalloc(x, sizeof *t);
    int64_t *d = xalloc(x, (size_t)(ndim ? ndim : 1) * sizeof *d);
    if (!t || !d) return NULL;
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)ndim;
    t->dims = d;
    for (int i = 0; i < ndim; i++) d[i] = dims[i];
    t->has_raw_data = 1;
    return t;
}

static void add_init(exporter *x, Onnx__TensorProto *t) {
    if (t) x->inits[x->n_inits++] = t;
}

/* Float data as raw little-endian bytes: points at the model's storage on little-endian
 * hosts (no copy). */
static Onnx__TensorProto *float_tensor(exporter *x, const char *name, int ndim, const int64_t *dims,
                                       const float *data) {
    Onnx__TensorProto *t = new_tensor(x, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, dims);
    int64_t n = advex_numel(ndim, dims);
    if (!t || n < 0) return NULL;
    t->raw_data.len = (size_t)n * 4;
    if (advex_host_is_le()) {
        t->raw_data.data = (uint8_t *)data;
    } else {
        uint8_t *b = xalloc(x, (size_t)n * 4);
        if (!b) return NULL;
        for (int64_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &data[i], 4);
            for (int k = 0; k < 4; k++) b[i * 4 + k] = (uint8_t)(u >> (8 * k));
        }
        t->raw_data.data = b;
    }
    return t;
}

static Onnx__TensorProto *int64_tensor(exporter *x, const char *name, int n, const int64_t *v) {
    int64_t d = n;
    Onnx__TensorProto *t = new_tensor(x, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, &d);
    uint8_t *b = xalloc(x, (size_t)(n ? n : 1) * 8);
    if (!t || !b) return NULL;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 8; k++) b[i * 8 + k] = (uint8_t)((uint64_t)v[i] >> (8 * k));
    t->raw_data.data = b;
    t->raw_data.len = (size_t)n * 8;
    return t;
}

/* A scalar float initializer for an input such as Clip's min; returns its name. */
static const char *scalar_init(exporter *x, const char *node, const char *what, float v) {
    const char *name = unique_name(x, xprintf(x, "%s_%s", node, what));
    float *p = xalloc(x, sizeof *p);
    if (!name || !p) return NULL;
    *p = v;
    add_init(x, float_tensor(x, name, 0, NULL, p));
    return name;
}

/* ---- nodes -------------------------------------------------------------------------------- */

typedef struct xnode {
    Onnx__NodeProto *p;
    Onnx__AttributeProto **attrs;
} xnode;

static Onnx__AttributeProto *new_attr(exporter *x, xnode *n, const char *name, int type) {
    Onnx__AttributeProto *a = xalloc(x, sizeof *a);
    if (!a || n->p->n_attribute >= MAX_NODE_ATTRS) { x->failed = 1; return NULL; }
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = (Onnx__AttributeProto__AttributeType)type;
    n->attrs[n->p->n_attribute++] = a;
    return a;
}

static void attr_int(exporter *x, xnode *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = new_attr(x, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) { a->has_i = 1; a->i = v; }
}

static void attr_float(exporter *x, xnode *n, const char *name, float v) {
    Onnx__AttributeProto *a = new_attr(x, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) { a->has_f = 1; a->f = v; }
}

static void attr_ints(exporter *x, xnode *n, const char *name, int cnt, const int64_t *v) {
    Onnx__AttributeProto *a = new_attr(x, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *c = xalloc(x, (size_t)(cnt ? cnt : 1) * sizeof *c);
    if (!a || !c) return;
    for (int i = 0; i < cnt; i++) c[i] = v[i];
    a->n_ints = (size_t)cnt;
    a->ints = c;
}

static void attr_str(exporter *x, xnode *n, const char *name, const char *s) {
    Onnx__AttributeProto *a = new_attr(x, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (!a) return;
    a->has_s = 1;
    a->s.data = (uint8_t *)s;
    a->s.len = strlen(s);
}

static void window_attrs(exporter *x, xnode *n, const advex_attrs *a, int64_t kh, int64_t kw, int pool) {
    int64_t k[2] = {kh, kw};
    attr_ints(x, n, "kernel_shape", 2, k);
    attr_ints(x, n, "strides", 2, a->stride);
    attr_ints(x, n, "pads", 4, a->pads);
    if (!pool || a->dilation[0] != 1 || a->dilation[1] != 1) attr_ints(x, n, "dilations", 2, a->dilation);
    if (pool) attr_int(x, n, "ceil_mode", a->ceil_mode);
}

static advex_status refuse(const advex_node *nd, const char *why) {
    return advex_set_error(ADVEX_ERR_UNSUPPORTED, "node '%s' (%s): %s has no opset-%d form in advex's export", nd->name,
                           advex_op_defs[nd->op].name, why, EXPORT_OPSET);
}

/* The ops of issue 17: attributes and load-time inputs in their opset-13 form. Ops newer
 * than opset 13 (HardSwish, Gelu, LayerNormalization), a float Where condition and an
 * Expand to a batch-dependent shape are refused. */
static advex_status export_ext(exporter *x, xnode *n, const advex_node *nd, char **ins, int *n_in) {
    const advex_attrs *a = &nd->a;
    const char *nm = n->p->name;
    switch (nd->op) {
    case ADVEX_OP_HARD_SIGMOID:
        attr_float(x, n, "alpha", a->alpha);
        attr_float(x, n, "beta", a->beta);
        break;
    case ADVEX_OP_ELU: attr_float(x, n, "alpha", a->alpha); break;
    case ADVEX_OP_SELU:
        attr_float(x, n, "alpha", a->alpha);
        attr_float(x, n, "gamma", a->beta);
        break;
    case ADVEX_OP_HARD_SWISH: case ADVEX_OP_GELU: case ADVEX_OP_LAYER_NORM: return refuse(nd, "the op");
    case ADVEX_OP_WHERE: return refuse(nd, "a float condition");
    case ADVEX_OP_EXPAND:
        for (int d = 0; d < a->n_ints; d++)
            if (a->ints[ADVEX_MAX_DIMS + d]) return refuse(nd, "a shape in the batch size");
        ins[1] = (char *)unique_name(x, xprintf(x, "%s_shape", nm));
        add_init(x, int64_tensor(x, ins[1], a->n_ints, a->ints));
        *n_in = 2;
        break;
    case ADVEX_OP_GATHER: { /* indices as int64 (the graph holds them as floats) */
        const advex_value *iv = &x->net->g.vals[nd->in[1]];
        int64_t cnt = advex_numel(iv->ndim, iv->dims);
        const char *name = unique_name(x, xprintf(x, "%s_indices", nm));
        Onnx__TensorProto *t = new_tensor(x, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, iv->ndim, iv->dims);
        uint8_t *b = xalloc(x, (size_t)(cnt > 0 ? cnt : 1) * 8);
        if (!t || !b || cnt < 0) return ADVEX_ERR_NOMEM;
        for (int64_t k = 0; k < cnt; k++)
            for (int q = 0; q < 8; q++) b[k * 8 + q] = (uint8_t)((uint64_t)(int64_t)iv->data[k] >> (8 * q));
        t->raw_data.data = b;
        t->raw_data.len = (size_t)cnt * 8;
        add_init(x, t);
        ins[1] = (char *)name;
        attr_int(x, n, "axis", a->axis);
        break;
    }
    case ADVEX_OP_SLICE: {
        int64_t v[4][ADVEX_MAX_DIMS];
        int k = 0;
        for (int d = 0; d < ADVEX_MAX_DIMS; d++)
            if (a->starts[d] != 0 || a->ends[d] != INT64_MAX || a->steps[d] != 1) {
                v[0][k] = a->starts[d];
                v[1][k] = a->ends[d];
                v[2][k] = d;
                v[3][k++] = a->steps[d];
            }
        static const char *const what[4] = {"starts", "ends", "axes", "steps"};
        for (int j = 0; j < 4; j++) {
            ins[1 + j] = (char *)unique_name(x, xprintf(x, "%s_%s", nm, what[j]));
            add_init(x, int64_tensor(x, ins[1 + j], k, v[j]));
        }
        *n_in = 5;
        break;
    }
    default:
        if (nd->op >= ADVEX_OP_REDUCE_MEAN && nd->op <= ADVEX_OP_REDUCE_LOG_SUM_EXP) {
            attr_int(x, n, "keepdims", a->keepdims);
            if (nd->op == ADVEX_OP_REDUCE_SUM) {
                attr_int(x, n, "noop_with_empty_axes", a->mode);
                if (a->n_ints) {
                    ins[1] = (char *)unique_name(x, xprintf(x, "%s_axes", nm));
                    add_init(x, int64_tensor(x, ins[1], a->n_ints, a->ints));
                    *n_in = 2;
                }
            } else {
                if (a->mode && !a->n_ints) return refuse(nd, "noop_with_empty_axes");
                if (a->n_ints) attr_ints(x, n, "axes", a->n_ints, a->ints);
            }
        }
        break;
    }
    return x->failed ? ADVEX_ERR_NOMEM : ADVEX_OK;
}

static advex_status export_node(exporter *x, const advex_node *nd, int idx) {
    const advex_graph *g = &x->net->g;
    const advex_attrs *a = &nd->a;
    xnode n;
    n.p = xalloc(x, sizeof *n.p);
    n.attrs = xalloc(x, MAX_NODE_ATTRS * sizeof *n.attrs);
    char **ins = xalloc(x, (size_t)(nd->n_in + 5) * sizeof *ins); /* Slice: data + 4 int64 inputs */
    char **outs = xalloc(x, sizeof *outs);
    if (!n.p || !n.attrs || !ins || !outs) return ADVEX_ERR_NOMEM;
    onnx__node_proto__init(n.p);
    n.p->name = nd->name && *nd->name ? nd->name : xprintf(x, "node%d", idx);
    n.p->op_type = (char *)advex_op_defs[nd->op].name;
    n.p->attribute = n.attrs;
    n.p->input = ins;
    n.p->output = outs;
    n.p->n_output = 1;
    outs[0] = (char *)x->vname[nd->out[0]];
    int n_in = 0;
    for (int k = 0; k < nd->n_in; k++) ins[n_in++] = (char *)(nd->in[k] >= 0 ? x->vname[nd->in[k]] : "");
    while (n_in > 0 && !*ins[n_in - 1]) n_in--;
    const char *nm = n.p->name;
    if (!nm) return ADVEX_ERR_NOMEM;
    switch (nd->op) {
    case ADVEX_OP_CONV: {
        const advex_value *w = nd->n_in > 1 && nd->in[1] >= 0 ? &g->vals[nd->in[1]] : NULL;
        int64_t kh = w && w->ndim == 4 ? w->dims[2] : a->kernel[0], kw = w && w->ndim == 4 ? w->dims[3] : a->kernel[1];
        window_attrs(x, &n, a, kh, kw, 0);
        attr_int(x, &n, "group", a->group);
        break;
    }
    case ADVEX_OP_MAXPOOL:
        window_attrs(x, &n, a, a->kernel[0], a->kernel[1], 1);
        break;
    case ADVEX_OP_AVGPOOL:
        window_attrs(x, &n, a, a->kernel[0], a->kernel[1], 1);
        attr_int(x, &n, "count_include_pad", a->count_include_pad);
        break;
    case ADVEX_OP_GEMM:
        attr_float(x, &n, "alpha", a->alpha);
        attr_float(x, &n, "beta", a->beta);
        attr_int(x, &n, "transA", a->trans_a);
        attr_int(x, &n, "transB", a->trans_b);
        break;
    case ADVEX_OP_LEAKY_RELU:
        attr_float(x, &n, "alpha", a->alpha);
        break;
    case ADVEX_OP_RANDOM_NORMAL_LIKE: case ADVEX_OP_RANDOM_NORMAL: /* randomness (ops/random.c) */
        attr_float(x, &n, "mean", a->alpha);
        attr_float(x, &n, "scale", a->beta);
        if (nd->op == ADVEX_OP_RANDOM_NORMAL) attr_ints(x, &n, "shape", a->n_ints, a->ints);
        break;
    case ADVEX_OP_BERNOULLI:
        return refuse(nd, "Bernoulli (opset 15)");
    case ADVEX_OP_RANDOM_UNIFORM_LIKE: case ADVEX_OP_RANDOM_UNIFORM:
        attr_float(x, &n, "low", a->min);
        attr_float(x, &n, "high", a->max);
        if (nd->op == ADVEX_OP_RANDOM_UNIFORM) attr_ints(x, &n, "shape", a->n_ints, a->ints);
        break;
    case ADVEX_OP_CLIP:
        n_in = 1;
        if (a->min != -INFINITY) ins[1] = (char *)scalar_init(x, nm, "min", a->min), n_in = 2;
        else ins[1] = "";
        if (a->max != INFINITY) ins[2] = (char *)scalar_init(x, nm, "max", a->max), n_in = 3;
        break;
    case ADVEX_OP_BATCHNORM:
        attr_float(x, &n, "epsilon", a->epsilon);
        attr_float(x, &n, "momentum", a->momentum);
        break;
    case ADVEX_OP_DROPOUT:
        if (a->mode) return refuse(nd, "Dropout with training_mode=true");
        ins[1] = (char *)scalar_init(x, nm, "ratio", a->ratio);
        n_in = 2;
        break;
    case ADVEX_OP_FLATTEN:
    case ADVEX_OP_CONCAT:
        attr_int(x, &n, "axis", a->axis);
        break;
    case ADVEX_OP_RESHAPE: {
        const char *s = unique_name(x, xprintf(x, "%s_shape", nm));
        add_init(x, int64_tensor(x, s, a->n_ints, a->ints));
        ins[1] = (char *)s;
        n_in = 2;
        break;
    }
    case ADVEX_OP_TRANSPOSE:
        attr_ints(x, &n, "perm", a->n_ints, a->ints);
        break;
    case ADVEX_OP_PAD: {
        const char *s = unique_name(x, xprintf(x, "%s_pads", nm));
        add_init(x, int64_tensor(x, s, a->n_ints, a->ints));
        attr_str(x, &n, "mode", "constant");
        ins[1] = (char *)s;
        ins[2] = (char *)scalar_init(x, nm, "value", a->pad_value);
        n_in = 3;
        break;
    }
    case ADVEX_OP_SOFTMAX:
    case ADVEX_OP_LOG_SOFTMAX:
        attr_int(x, &n, "axis", a->axis);
        if (a->mode) return refuse(nd, "the opset < 13 flattened form");
        break;
    case ADVEX_OP_SIGMOID:
        if (a->mode == 1) return refuse(nd, "SiLU (a fused Mul(x, Sigmoid(x)))");
        break;
    default:
        if (nd->op >= ADVEX_OP_SQRT) {
            advex_status st = export_ext(x, &n, nd, ins, &n_in);
            if (st) return st;
        }
        break;
    }
    n.p->n_input = (size_t)n_in;
    for (int k = 0; k < n_in; k++)
        if (!ins[k]) return ADVEX_ERR_NOMEM;
    x->nodes[x->n_nodes++] = n.p;
    return x->failed ? ADVEX_ERR_NOMEM : ADVEX_OK;
}

static Onnx__ValueInfoProto *value_info(exporter *x, const char *name, int ndim, const int64_t *dims) {
    Onnx__ValueInfoProto *vi = xalloc(x, sizeof *vi);
    Onnx__TypeProto *tp = xalloc(x, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = xalloc(x, sizeof *tt);
    Onnx__TensorShapeProto *sp = xalloc(x, sizeof *sp);
    Onnx__TensorShapeProto__Dimension **dv = xalloc(x, (size_t)ndim * sizeof *dv);
    if (!vi || !tp || !tt || !sp || !dv) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sp);
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = xalloc(x, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (i == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = "N";
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        dv[i] = d;
    }
    sp->n_dim = (size_t)ndim;
    sp->dim = dv;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = (char *)name;
    vi->type = tp;
    return vi;
}

/* Build the ModelProto and serialise it into *buf (malloc'd). */
static advex_status build_and_pack(exporter *x, uint8_t **buf, size_t *len) {
    const advex_net *m = x->net;
    const advex_graph *g = &m->g;
    size_t n_extra = 0;
    if (onnx_map_init(&x->used, (size_t)g->n_vals + (size_t)g->n_nodes * 4) != 0) return ADVEX_ERR_NOMEM;
    x->vname = xalloc(x, (size_t)(g->n_vals ? g->n_vals : 1) * sizeof *x->vname);
    if (!x->vname) return ADVEX_ERR_NOMEM;
    /* fixed names first, so no other value can take them */
    x->vname[g->input] = unique_name(x, "input");
    x->vname[g->output] = unique_name(x, "logits");
    for (int i = 0; i < g->n_vals; i++)
        if (i != g->input && i != g->output) x->vname[i] = unique_name(x, g->vals[i].name);
    if (x->failed) return ADVEX_ERR_NOMEM;
    for (int i = 0; i < g->n_nodes; i++) {
        advex_op_type op = g->nodes[i].op;
        n_extra += op == ADVEX_OP_CLIP ? 2 : (op == ADVEX_OP_PAD ? 2 : (op == ADVEX_OP_RESHAPE || op == ADVEX_OP_DROPOUT));
        n_extra += op == ADVEX_OP_SLICE ? 4 : (op == ADVEX_OP_EXPAND || op == ADVEX_OP_GATHER || op == ADVEX_OP_REDUCE_SUM);
    }
    x->inits = xalloc(x, ((size_t)g->n_vals + n_extra + 1) * sizeof *x->inits);
    x->nodes = xalloc(x, ((size_t)g->n_nodes + 1) * sizeof *x->nodes);
    if (!x->inits || !x->nodes) return ADVEX_ERR_NOMEM;
    for (int i = 0; i < g->n_vals; i++) {
        const advex_value *v = &g->vals[i];
        if (v->kind < ADVEX_VAL_PARAM) continue;
        add_init(x, float_tensor(x, x->vname[i], v->ndim, v->dims, v->data));
    }
    for (int i = 0; i < g->n_nodes; i++) {
        advex_status st = export_node(x, &g->nodes[i], i);
        if (st) return st;
    }
    int64_t in_dims[4] = {0, m->in_chw[0], m->in_chw[1], m->in_chw[2]}, out_dims[2] = {0, m->classes};
    Onnx__ValueInfoProto *vin = value_info(x, x->vname[g->input], 4, in_dims);
    Onnx__ValueInfoProto *vout = value_info(x, x->vname[g->output], 2, out_dims);
    Onnx__GraphProto *gp = xalloc(x, sizeof *gp);
    Onnx__ModelProto *mp = xalloc(x, sizeof *mp);
    Onnx__OperatorSetIdProto *os = xalloc(x, sizeof *os);
    Onnx__OperatorSetIdProto **osl = xalloc(x, sizeof *osl);
    Onnx__ValueInfoProto **ins = xalloc(x, sizeof *ins), **outs = xalloc(x, sizeof *outs);
    if (x->failed || !vin || !vout || !gp || !mp || !os || !osl || !ins || !outs) return ADVEX_ERR_NOMEM;
    onnx__graph_proto__init(gp);
    onnx__model_proto__init(mp);
    onnx__operator_set_id_proto__init(os);
    ins[0] = vin;
    outs[0] = vout;
    gp->name = "advex";
    gp->n_node = x->n_nodes;
    gp->node = x->nodes;
    gp->n_initializer = x->n_inits;
    gp->initializer = x->inits;
    gp->n_input = 1;
    gp->input = ins;
    gp->n_output = 1;
    gp->output = outs;
    os->domain = "";
    os->has_version = 1;
    os->version = EXPORT_OPSET;
    osl[0] = os;
    mp->has_ir_version = 1;
    mp->ir_version = EXPORT_IR;
    mp->n_opset_import = 1;
    mp->opset_import = osl;
    mp->producer_name = "advex";
    mp->producer_version = ADVEX_VERSION;
    mp->graph = gp;
    size_t n = onnx__model_proto__get_packed_size(mp);
    *buf = malloc(n ? n : 1);
    if (!*buf) return ADVEX_ERR_NOMEM;
    *len = onnx__model_proto__pack(mp, *buf);
    return ADVEX_OK;
}

advex_status advex_model_save_onnx(const advex_model *m, const char *path) {
    if (!m) return advex_set_error(ADVEX_ERR_ARG, "save_onnx: no model");
    if (!path || !*path) return advex_set_error(ADVEX_ERR_ARG, "save_onnx: empty file name");
    if (m->net->g.input < 0 || m->net->g.output < 0 || !m->net->classes)
        return advex_set_error(ADVEX_ERR_ARG, "%s: model is not finalised", path);
    exporter x;
    memset(&x, 0, sizeof x);
    x.net = m->net;
    uint8_t *buf = NULL;
    size_t len = 0;
    advex_status st = build_and_pack(&x, &buf, &len);
    if (st == ADVEX_ERR_NOMEM) advex_set_error(st, "%s: out of memory while building the ONNX model", path);
    for (size_t i = 0; i < x.n_allocs; i++) free(x.allocs[i]);
    free(x.allocs);
    onnx_map_free(&x.used);
    if (!st) {
        advex_afile f;
        st = advex_afile_open(&f, path);
        if (!st) st = advex_afile_write(&f, buf, len);
        if (!st) st = advex_afile_commit(&f);
    }
    free(buf);
    return st;
}
