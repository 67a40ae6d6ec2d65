/* ONNX import, building: each needed node either folded at load time (fold.c, fold_ext.c) or
 * translated into advex nodes (ops.c, ops_ext.c) with its output's symbolic shape inferred at
 * N = 1 and N = 2; nodes whose results turn out batch-dependent are demoted to run time;
 * Split and batch-dependent ConstantOfShape are built here as Slices and an Expand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"

static const char *label(const Onnx__NodeProto *nd, char *buf, size_t n) { return onnx_node_label(nd, buf, n); }

/* ---- building ------------------------------------------------------------------------------- */

/* The load-time value of a static name (initializers are decoded on first use). */
static advex_status get_const(ent *en, const onnx_const **out) {
    if (!en->have_c) {
        if (!en->init)
            return advex_set_error(ADVEX_ERR_FORMAT, "value '%s' is not available (an unsupported optional output?)",
                                   en->name);
        char what[160];
        snprintf(what, sizeof what, "initializer '%s'", en->name);
        advex_status st = onnx_const_from_tensor(en->init, &en->c, what);
        if (st) return st;
        en->have_c = 1;
    }
    *out = &en->c;
    return ADVEX_OK;
}

static int track_vid(importer *im, int vid, int e) {
    if (vid >= im->vid_cap) {
        int cap = im->vid_cap ? im->vid_cap * 2 : 64;
        while (cap <= vid) cap *= 2;
        int *nv = realloc(im->vid_ent, (size_t)cap * sizeof(int));
        if (!nv) return -1;
        im->vid_ent = nv;
        im->vid_cap = cap;
    }
    im->vid_ent[vid] = e;
    return 0;
}

/* Turn a load-time constant into a graph value (PARAM, STATE or CONST by its use). */
static advex_status materialise(importer *im, ent *en) {
    if (en->vid >= 0) return ADVEX_OK;
    const onnx_const *c;
    advex_status st = get_const(en, &c);
    if (st) return st;
    advex_value_kind kind = en->role == 2 ? ADVEX_VAL_PARAM : en->role == 1 ? ADVEX_VAL_STATE : ADVEX_VAL_CONST;
    int vid = advex_graph_add_value(&im->net->g, en->name, kind, c->ndim, c->dims);
    if (vid < 0) return ADVEX_ERR_NOMEM;
    float *dst = im->net->g.vals[vid].data;
    if (c->is_float && c->numel > 0) memcpy(dst, c->f, (size_t)c->numel * sizeof(float));
    for (int64_t k = 0; !c->is_float && k < c->numel; k++)
        if (onnx_const_float(c, k, &dst[k]) != 0)
            return advex_set_error(ADVEX_ERR_UNSUPPORTED, "value '%s' depends on the batch size but is used as data",
                                   en->name);
    en->vid = vid;
    /* One copy of the weights, not three: a later fold reads the graph value's floats (valid
     * until finalize packs them, after the last fold), and the file's bytes, decoded, go. */
    if (en->c.is_float && !en->c.borrowed) {
        free(en->c.f);
        en->c.f = dst;
        en->c.borrowed = 1;
    }
    if (en->init_ours && en->init->has_raw_data) { /* (protobuf-c's malloc; free_unpacked skips NULL) */
        Onnx__TensorProto *t = (Onnx__TensorProto *)en->init;
        free(t->raw_data.data);
        t->raw_data.data = NULL;
        t->raw_data.len = 0;
    }
    return track_vid(im, vid, -1) ? advex_set_error(ADVEX_ERR_NOMEM, "out of memory") : ADVEX_OK;
}

/* Infer the new node's output shape at N = 1 and N = 2 with the op's own shape function;
 * the difference gives each dimension as v + n*N. */
static advex_status infer_sym(importer *im, int node, ent *out) {
    advex_graph *g = &im->net->g;
    advex_node *nd = &g->nodes[node];
    int64_t d[2][ADVEX_MAX_DIMS];
    int r[2];
    for (int pass = 0; pass < 2; pass++) {
        int64_t n = pass + 1;
        for (int k = 0; k < nd->n_in; k++) {
            int v = nd->in[k];
            if (v < 0 || g->vals[v].kind > ADVEX_VAL_ACT) continue;
            const ent *src = &im->ents[im->vid_ent[v]];
            g->vals[v].ndim = src->ndim;
            for (int q = 0; q < src->ndim; q++) g->vals[v].dims[q] = src->shape[q].v + src->shape[q].n * n;
        }
        advex_status st = advex_op_defs[nd->op].infer(nd, g->vals);
        if (st && pass == 1)
            return advex_set_error(st, "node '%s': works for batch size 1 only (the export fixed the batch "
                                   "size somewhere); %s", nd->name, advex_last_error());
        if (st) return st;
        const advex_value *o = &g->vals[nd->out[0]];
        r[pass] = o->ndim;
        for (int q = 0; q < o->ndim; q++) d[pass][q] = o->dims[q];
    }
    if (r[0] != r[1]) return advex_set_error(ADVEX_ERR_UNSUPPORTED, "node '%s': rank depends on the batch size", nd->name);
    out->ndim = r[0];
    for (int q = 0; q < r[0]; q++) {
        out->shape[q].n = d[1][q] - d[0][q];
        out->shape[q].v = d[0][q] - out->shape[q].n;
    }
    return ADVEX_OK;
}

static advex_status build_static(importer *im, const Onnx__NodeProto *nd) {
    const onnx_const *cin[64] = {0};
    const onnx_const **in = nd->n_input <= 64 ? cin : calloc(nd->n_input, sizeof *in);
    const ent *shape_src = NULL;
    advex_status st = ADVEX_OK;
    if (!in) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < nd->n_input && !st; k++) {
        in[k] = NULL;
        if (!nd->input[k] || !*nd->input[k]) continue;
        ent *en = &im->ents[onnx_map_get(&im->map, nd->input[k])];
        if (en->is_static) st = get_const(en, &in[k]);
        else shape_src = en; /* Shape or Size of a run-time value */
    }
    int split = strcmp(nd->op_type, "Split") == 0;
    for (size_t k = 0; !st && k < (split ? nd->n_output : 1); k++) {
        if (!nd->output[k] || !*nd->output[k]) continue;
        ent *o = &im->ents[onnx_map_get(&im->map, nd->output[k])];
        if (split) st = onnx_fold_split(nd, im->opset, in, (int)nd->n_input, (int)k, &im->fold_budget, &o->c);
        else st = onnx_fold(nd, im->opset, in, (int)nd->n_input, shape_src ? shape_src->shape : NULL,
                            shape_src ? shape_src->ndim : 0, &im->fold_budget, &o->c);
        if (!st) o->have_c = 1;
    }
    if (in != cin) free(in);
    return st;
}

/* A run-time value of the graph from a node built here: a new ACT value named `name`, node
 * `op` over ids[0..n), its symbolic shape inferred into the ent of that name. */
static advex_status add_compute(importer *im, advex_op_type op, const char *node_name, const char *name,
                                const int *ids, int n, const advex_attrs *a) {
    advex_graph *g = &im->net->g;
    int out = advex_graph_add_value(g, name, ADVEX_VAL_ACT, 0, NULL);
    if (out < 0) return ADVEX_ERR_NOMEM;
    int node = advex_graph_add_node(g, op, node_name, n, ids, out);
    if (node < 0) return ADVEX_ERR_NOMEM;
    g->nodes[node].a = *a;
    ent *o = &im->ents[onnx_map_get(&im->map, name)];
    o->vid = out;
    if (track_vid(im, out, (int)(o - im->ents))) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    return infer_sym(im, node, o);
}

/* Split of a run-time value: one Slice per output, along the axis. */
static advex_status build_split(importer *im, const Onnx__NodeProto *nd, const onnx_input *in, int n_in) {
    char lb[128];
    const onnx_const *cin[2] = {NULL, n_in > 1 ? in[1].c : NULL};
    int64_t axis, ax, sz[64], b = 0;
    advex_status st = onnx_attr_int(nd, "axis", 0, &axis);
    if (st) return st;
    label(nd, lb, sizeof lb);
    if (axis < -in[0].ndim || axis >= in[0].ndim)
        return advex_set_error(ADVEX_ERR_FORMAT, "node '%s' (Split): axis out of range", lb);
    ax = axis < 0 ? axis + in[0].ndim : axis;
    if (in[0].shape[ax].n != 0)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "node '%s' (Split): splits the batch dimension", lb);
    if (n_in > 1 && in[1].present && !in[1].c)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "node '%s' (Split): sizes must be known at load time", lb);
    if ((st = onnx_split_sizes(nd, im->opset, cin, n_in, in[0].shape[ax].v, (int)nd->n_output, sz))) return st;
    int x = im->ents[onnx_map_get(&im->map, nd->input[0])].vid;
    for (size_t k = 0; k < nd->n_output; b += sz[k++]) {
        if (!nd->output[k] || !*nd->output[k]) continue;
        advex_attrs a;
        advex_attrs_default(&a);
        a.starts[ax] = b;
        a.ends[ax] = b + sz[k];
        if ((st = add_compute(im, ADVEX_OP_SLICE, nd->output[k], nd->output[k], &x, 1, &a))) return st;
    }
    return ADVEX_OK;
}

/* ConstantOfShape to a batch-dependent shape: an Expand of its value (a CONST scalar). */
static advex_status build_const_of_shape(importer *im, const Onnx__NodeProto *nd, const onnx_input *in) {
    onnx_const val = {0};
    float v = 0.0f;
    char lb[128];
    advex_status st;
    const Onnx__AttributeProto *at = onnx_attr(nd, "value");
    if (at && at->t) {
        if ((st = onnx_const_from_tensor(at->t, &val, nd->output[0]))) return st;
        int bad = val.numel != 1 || onnx_const_float(&val, 0, &v) != 0;
        onnx_const_free(&val);
        if (bad) return advex_set_error(ADVEX_ERR_FORMAT, "node '%s' (ConstantOfShape): value must have one element",
                                        label(nd, lb, sizeof lb));
    }
    advex_graph *g = &im->net->g;
    char name[256];
    snprintf(name, sizeof name, "%s/value", nd->output[0]);
    int ids[2] = {advex_graph_add_value(g, name, ADVEX_VAL_CONST, 0, NULL), g->input};
    if (ids[0] < 0) return ADVEX_ERR_NOMEM;
    g->vals[ids[0]].data[0] = v;
    if (track_vid(im, ids[0], -1)) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    advex_attrs a;
    advex_attrs_default(&a);
    int keep[2];
    onnx_input ein[2] = {{1, NULL, 0, NULL}, in[0]};
    if ((st = onnx_translate_ext(nd, nd->output[0], im->opset, ein, 2, &(advex_op_type){ADVEX_OP_EXPAND}, &a, keep)))
        return st;
    return add_compute(im, ADVEX_OP_EXPAND, nd->name && *nd->name ? nd->name : nd->output[0], nd->output[0], ids, 2, &a);
}

static advex_status build_compute(importer *im, const Onnx__NodeProto *nd) {
    int n_in = (int)nd->n_input;
    onnx_input *in = calloc((size_t)n_in + 1, sizeof *in);
    onnx_sym *shapes = calloc(((size_t)n_in + 1) * ADVEX_MAX_DIMS, sizeof *shapes);
    int *keep = calloc((size_t)n_in + 1, sizeof(int)), *ids = calloc((size_t)n_in + 1, sizeof(int));
    advex_status st = ADVEX_OK;
    advex_op_type op;
    advex_attrs a;
    char lb[128];
    if (!in || !shapes || !keep || !ids) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
    for (int k = 0; k < n_in; k++) {
        ids[k] = -1;
        if (!nd->input[k] || !*nd->input[k]) continue;
        ent *en = &im->ents[onnx_map_get(&im->map, nd->input[k])];
        in[k].present = 1;
        if (en->is_static) {
            if ((st = get_const(en, &in[k].c))) goto done;
            in[k].ndim = in[k].c->ndim;
            for (int q = 0; q < in[k].ndim; q++) shapes[k * ADVEX_MAX_DIMS + q].v = in[k].c->dims[q];
            in[k].shape = &shapes[k * ADVEX_MAX_DIMS];
        } else {
            if (en->vid < 0) {
                st = advex_set_error(ADVEX_ERR_UNSUPPORTED, "node '%s' (%s): input '%s' is an optional output "
                                     "advex does not compute", label(nd, lb, sizeof lb), nd->op_type, en->name);
                goto done;
            }
            in[k].ndim = en->ndim;
            in[k].shape = en->shape;
        }
    }
    if (strcmp(nd->op_type, "Split") == 0) { st = build_split(im, nd, in, n_in); goto done; }
    if (strcmp(nd->op_type, "ConstantOfShape") == 0) { st = build_const_of_shape(im, nd, in); goto done; }
    if ((st = onnx_translate(nd, im->opset, in, n_in, &op, &a, keep))) goto done;
    int n_keep = 0;
    for (int k = 0; k < n_in; k++) {
        if (!keep[k]) continue;
        ent *en = &im->ents[onnx_map_get(&im->map, nd->input[k])];
        if (en->is_static && (st = materialise(im, en))) goto done;
        ids[k] = en->vid;
        n_keep = k + 1;
    }
    if (op == ADVEX_OP_EXPAND && onnx_expand_needs_batch(&a)) { /* the graph input gives N */
        ids[1] = im->net->g.input;
        n_keep = 2;
    }
    /* the op's shape function runs before finalize checks arities: check them here */
    const advex_op_def *def = &advex_op_defs[op];
    int bad_arity = n_keep < def->min_in || n_keep > def->max_in;
    for (int k = 0; k < def->min_in && k < n_keep; k++) bad_arity |= ids[k] < 0;
    if (bad_arity) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "node '%s' (%s): %d inputs, or a required one missing (expected %d..%d)",
                             label(nd, lb, sizeof lb), nd->op_type, n_keep, def->min_in, def->max_in);
        goto done;
    }
    advex_graph *g = &im->net->g;
    int out = advex_graph_add_value(g, nd->output[0], ADVEX_VAL_ACT, 0, NULL);
    if (out < 0) { st = ADVEX_ERR_NOMEM; goto done; }
    int node = advex_graph_add_node(g, op, nd->name && *nd->name ? nd->name : nd->output[0], n_keep, ids, out);
    if (node < 0) { st = ADVEX_ERR_NOMEM; goto done; }
    g->nodes[node].a = a;
    ent *o = &im->ents[onnx_map_get(&im->map, nd->output[0])];
    o->vid = out;
    if (track_vid(im, out, (int)(o - im->ents))) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
    st = infer_sym(im, node, o);
done:
    free(in);
    free(shapes);
    free(keep);
    free(ids);
    return st;
}

/* 1 when every input of a static node is still known at load time (Shape, Size and Constant
 * need no known inputs). */
static int inputs_static(importer *im, const Onnx__NodeProto *nd) {
    if (!strcmp(nd->op_type, "Shape") || !strcmp(nd->op_type, "Size") || !strcmp(nd->op_type, "Constant")) return 1;
    for (size_t k = 0; k < nd->n_input; k++)
        if (nd->input[k] && *nd->input[k] && !im->ents[onnx_map_get(&im->map, nd->input[k])].is_static) return 0;
    return 1;
}

/* A node check_support took for load-time folding runs at run time after all (its result
 * has a batch-dependent shape, or an input of it does): check it as a run-time node now. */
static advex_status demote(importer *im, int i) {
    const Onnx__NodeProto *nd = im->gp->node[i];
    char why[160], lb[128];
    im->node_static[i] = 0;
    for (size_t k = 0; k < nd->n_output; k++)
        if (nd->output[k] && *nd->output[k]) im->ents[onnx_map_get(&im->map, nd->output[k])].is_static = 0;
    int ok = onnx_check_node(nd, im->opset, why, sizeof why);
    if (ok < 0) return ADVEX_ERR_FORMAT;
    if (!ok)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "1 unsupported node: '%s' (%s; its result depends on the batch "
                               "size, so it would run at run time)", label(nd, lb, sizeof lb), why);
    for (size_t k = 0; k < nd->n_input; k++) {
        if (!nd->input[k] || !*nd->input[k]) continue;
        ent *en = &im->ents[onnx_map_get(&im->map, nd->input[k])];
        int r = onnx_im_role_rank(onnx_input_role(nd->op_type, (int)k));
        if (r > en->role) en->role = r;
    }
    return ADVEX_OK;
}

advex_status onnx_im_build(importer *im, const Onnx__ValueInfoProto *input) {
    const Onnx__GraphProto *gp = im->gp;
    advex_graph *g = &im->net->g;
    int64_t dims[ADVEX_MAX_DIMS] = {1, 0, 0, 0};
    int rank = 4;
    if (im->general) { /* every dimension fixed by the given value */
        rank = (int)im->gen_x->n_dims;
        for (int d = 0; d < rank; d++) dims[d] = im->gen_x->dims[d];
    } else {
        for (int d = 1; d < 4; d++) dims[d] = input->type->tensor_type->shape->dim[d]->dim_value;
    }
    int e = onnx_map_get(&im->map, input->name);
    ent *in = &im->ents[e];
    g->input = advex_graph_add_value(g, input->name, ADVEX_VAL_INPUT, rank, dims);
    if (g->input < 0) return ADVEX_ERR_NOMEM;
    in->vid = g->input;
    in->ndim = rank;
    for (int d = 0; d < rank; d++) in->shape[d].v = dims[d];
    if (!im->general) {
        in->shape[0].v = 0;
        in->shape[0].n = 1;
    }
    if (track_vid(im, g->input, e)) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    /* folded constants are plain allocations: bounded by 1 GiB, and by the memory cap when set */
    int64_t cap = advex_get_memory_limit();
    im->fold_budget = cap > 0 && cap < ADVEX_ONNX_MAX_FOLD_BYTES ? cap : ADVEX_ONNX_MAX_FOLD_BYTES;
    for (size_t j = 0; j < gp->n_node; j++) {
        int i = im->order[j];
        if (!im->needed[i]) continue;
        const Onnx__NodeProto *nd = gp->node[i];
        advex_status st = ADVEX_OK;
        if (im->node_static[i] && !inputs_static(im, nd)) st = demote(im, i); /* an input turned run-time */
        if (!st && im->node_static[i]) {
            st = build_static(im, nd);
            if (st == ONNX_FOLD_RUNTIME) st = demote(im, i); /* a result of batch-dependent shape */
            else if (st) return st;
            else continue;
        }
        if (st || (st = build_compute(im, nd))) return st;
    }
    const ent *out = &im->ents[onnx_map_get(&im->map, im->out_name)];
    if (out->vid < 0 || out->is_static || out->vid == g->input)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "output '%s' does not depend on the input through any op",
                               im->out_name);
    g->output = out->vid;
    im->net->output_is_prob = im->drop >= 0;
    return ADVEX_OK;
}

