/* ONNX import: parse with protobuf-c, check the graph (names, cycles, opset, every
 * unsupported node at once), fold load-time constants, translate nodes into an advex
 * graph (inferring symbolic shapes as it goes) and finalise the model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "import.h"

#define MAX_LISTED 8 /* unsupported nodes named in the message */

int onnx_im_role_rank(advex_value_kind k) { return k == ADVEX_VAL_PARAM ? 2 : k == ADVEX_VAL_STATE ? 1 : 0; }

static int add_ent(importer *im, const char *name) {
    int e = onnx_map_get(&im->map, name);
    if (e >= 0) return e;
    e = im->n_ents++;
    memset(&im->ents[e], 0, sizeof im->ents[e]);
    im->ents[e].name = name;
    im->ents[e].producer = -1;
    im->ents[e].vid = -1;
    if (onnx_map_put(&im->map, name, e) != 0) return -1;
    return e;
}

static const char *label(const Onnx__NodeProto *nd, char *buf, size_t n) { return onnx_node_label(nd, buf, n); }

/* ---- structure: names, producers, topological order ----------------------------------------- */

static advex_status index_names(importer *im) {
    const Onnx__GraphProto *gp = im->gp;
    size_t cap = gp->n_initializer + gp->n_input + 1;
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *nd = gp->node[i];
        if (!nd || !nd->op_type || !*nd->op_type) return advex_set_error(ADVEX_ERR_FORMAT, "node #%zu has no op type", i);
        cap += nd->n_output + nd->n_input;
    }
    im->ents = malloc(cap * sizeof *im->ents);
    if (!im->ents || onnx_map_init(&im->map, cap) != 0) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name || !*t->name) return advex_set_error(ADVEX_ERR_FORMAT, "initializer #%zu has no name", i);
        if (onnx_map_get(&im->map, t->name) >= 0)
            return advex_set_error(ADVEX_ERR_FORMAT, "initializer '%s' is defined twice", t->name);
        int e = add_ent(im, t->name);
        if (e < 0) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        im->ents[e].init = t;
        im->ents[e].init_ours = 1;
        im->ents[e].is_static = 1;
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *nd = gp->node[i];
        char lb[128];
        for (size_t k = 0; k < nd->n_output; k++) {
            const char *o = nd->output[k];
            if (!o || !*o) continue; /* an optional output left out (even the first, as in RNN/LSTM/GRU) */
            int e = onnx_map_get(&im->map, o);
            if (e >= 0 && (im->ents[e].producer >= 0 || im->ents[e].init))
                return advex_set_error(ADVEX_ERR_FORMAT, "value '%s' is defined twice (node '%s')", o,
                                       label(nd, lb, sizeof lb));
            if ((e = add_ent(im, o)) < 0) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
            im->ents[e].producer = (int)i;
        }
        int named = 0;
        for (size_t k = 0; k < nd->n_output; k++) named |= nd->output[k] && *nd->output[k];
        if (!named)
            return advex_set_error(ADVEX_ERR_FORMAT, "node '%s' (%s) has no output name", label(nd, lb, sizeof lb),
                                   nd->op_type);
    }
    return ADVEX_OK;
}

/* The image input: the one graph input that is not an initializer, (N,C,H,W) float. */
static advex_status find_input(importer *im, const Onnx__ValueInfoProto **out) {
    const Onnx__GraphProto *gp = im->gp;
    const Onnx__ValueInfoProto *found = NULL;
    int count = 0;
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name) return advex_set_error(ADVEX_ERR_FORMAT, "graph input #%zu has no name", i);
        int e = onnx_map_get(&im->map, vi->name);
        if (e >= 0 && im->ents[e].init) continue;
        if (e >= 0 && im->ents[e].producer >= 0)
            return advex_set_error(ADVEX_ERR_FORMAT, "graph input '%s' is also a node output", vi->name);
        if (!found) found = vi;
        count++;
    }
    if (count != 1)
        return advex_set_error(count ? ADVEX_ERR_UNSUPPORTED : ADVEX_ERR_FORMAT,
                               "model has %d inputs besides its initializers; advex needs exactly one image input",
                               count);
    const Onnx__TypeProto *tp = found->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "input '%s' is not a tensor", found->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "input '%s' has element type %d; advex needs float32",
                               found->name, tt->elem_type);
    if (!tt->shape || tt->shape->n_dim != 4)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "input '%s' must be 4-D (N,C,H,W) with a known shape",
                               found->name);
    for (int d = 1; d < 4; d++) {
        const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[d];
        if (dm->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || dm->dim_value <= 0 ||
            dm->dim_value > 65536)
            return advex_set_error(ADVEX_ERR_UNSUPPORTED,
                                   "input '%s': dimension %d must be a fixed size (C, H and W are fixed; only N "
                                   "may vary)", found->name, d);
    }
    *out = found;
    return ADVEX_OK;
}

/* General mode: the non-initializer graph inputs get the caller's values, in order. The
 * first float one stays the run-time input (its shape fixed by the value); the others
 * become load-time constants, like initializers. */
static advex_status general_inputs(importer *im, const Onnx__ValueInfoProto **out) {
    const Onnx__GraphProto *gp = im->gp;
    int k = 0;
    *out = NULL;
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name) return advex_set_error(ADVEX_ERR_FORMAT, "graph input #%zu has no name", i);
        int e = onnx_map_get(&im->map, vi->name);
        if (e >= 0 && im->ents[e].init) continue;
        if (e >= 0) return advex_set_error(ADVEX_ERR_FORMAT, "graph input '%s' is also a node output", vi->name);
        if (k >= im->n_gen_in || !im->gen_in[k])
            return advex_set_error(ADVEX_ERR_ARG, "no value given for graph input '%s'", vi->name);
        const Onnx__TensorProto *t = im->gen_in[k++];
        if (vi->type && vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
            return advex_set_error(ADVEX_ERR_UNSUPPORTED, "input '%s' is not a tensor", vi->name);
        if (!*out && t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && t->n_dims >= 1 &&
            t->n_dims <= ADVEX_MAX_DIMS) {
            for (size_t d = 0; d < t->n_dims; d++)
                if (t->dims[d] <= 0 || t->dims[d] > ((int64_t)1 << 24))
                    return advex_set_error(ADVEX_ERR_UNSUPPORTED, "input '%s': empty or huge dimension", vi->name);
            *out = vi;
            im->gen_x = t;
            continue;
        }
        if ((e = add_ent(im, vi->name)) < 0) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        im->ents[e].init = t;
        im->ents[e].is_static = 1;
    }
    if (k != im->n_gen_in) return advex_set_error(ADVEX_ERR_ARG, "%d input values for %d graph inputs", im->n_gen_in, k);
    if (!*out) return advex_set_error(ADVEX_ERR_UNSUPPORTED, "no float32 input of rank 1..%d", ADVEX_MAX_DIMS);
    return ADVEX_OK;
}

/* Kahn's algorithm over ONNX nodes (files should be sorted but need not be); also checks
 * that every input names something. */
static advex_status topo_sort(importer *im) {
    const Onnx__GraphProto *gp = im->gp;
    size_t nn = gp->n_node, edges = 0;
    advex_status st = ADVEX_OK;
    char lb[128];
    for (size_t i = 0; i < nn; i++) edges += gp->node[i]->n_input;
    int *indeg = calloc(nn + 1, sizeof(int)), *start = calloc(nn + 2, sizeof(int));
    int *adj = malloc((edges + 1) * sizeof(int));
    im->order = malloc((nn + 1) * sizeof(int));
    if (!indeg || !start || !adj || !im->order) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < nn; i++) {
        const Onnx__NodeProto *nd = gp->node[i];
        for (size_t k = 0; k < nd->n_input; k++) {
            const char *in = nd->input[k];
            if (!in || !*in) continue;
            int e = onnx_map_get(&im->map, in);
            if (e < 0 || (im->ents[e].producer < 0 && !im->ents[e].init && !im->ents[e].is_input)) {
                st = advex_set_error(ADVEX_ERR_FORMAT, "node '%s' (%s): input '%s' is not defined (no initializer, "
                                     "graph input or node output has that name)", label(nd, lb, sizeof lb),
                                     nd->op_type, in);
                goto done;
            }
            if (im->ents[e].producer >= 0) { start[im->ents[e].producer + 1]++; indeg[i]++; }
        }
    }
    for (size_t i = 0; i < nn; i++) start[i + 1] += start[i];
    {
        int *fill = calloc(nn + 1, sizeof(int));
        if (!fill) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
        for (size_t i = 0; i < nn; i++) {
            const Onnx__NodeProto *nd = gp->node[i];
            for (size_t k = 0; k < nd->n_input; k++) {
                const char *in = nd->input[k];
                if (!in || !*in) continue;
                int p = im->ents[onnx_map_get(&im->map, in)].producer;
                if (p >= 0) adj[start[p] + fill[p]++] = (int)i;
            }
        }
        free(fill);
    }
    size_t tail = (size_t)advex_kahn((int)nn, indeg, start, adj, im->order);
    if (tail != nn)
        for (size_t i = 0; i < nn; i++)
            if (indeg[i] > 0) {
                st = advex_set_error(ADVEX_ERR_FORMAT, "graph has a cycle (through node '%s' (%s))",
                                     label(gp->node[i], lb, sizeof lb), gp->node[i]->op_type);
                break;
            }
done:
    free(indeg);
    free(start);
    free(adj);
    return st;
}

/* Which nodes the output depends on, which of them fold to constants, and whether the
 * last node is a Softmax to cut off. */
static advex_status analyse(importer *im) {
    const Onnx__GraphProto *gp = im->gp;
    size_t nn = gp->n_node;
    im->needed = calloc(nn + 1, 1);
    im->node_static = calloc(nn + 1, 1);
    if (!im->needed || !im->node_static) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    if (gp->n_output < 1 || !gp->output[0]->name || !*gp->output[0]->name)
        return advex_set_error(ADVEX_ERR_FORMAT, "graph has no output");
    im->out_name = gp->output[0]->name;
    int e = onnx_map_get(&im->map, im->out_name);
    if (e < 0) return advex_set_error(ADVEX_ERR_FORMAT, "graph output '%s' is not produced by any node", im->out_name);
    int p = im->ents[e].producer;
    if (p >= 0 && !im->general) {
        const Onnx__NodeProto *nd = gp->node[p];
        if ((strcmp(nd->op_type, "Softmax") == 0 || strcmp(nd->op_type, "LogSoftmax") == 0) &&
            (!nd->domain || !*nd->domain) && nd->n_input >= 1 && nd->input[0] && *nd->input[0]) {
            im->drop = p;
            im->out_name = nd->input[0];
            e = onnx_map_get(&im->map, im->out_name);
            p = im->ents[e].producer;
        }
    }
    if (p >= 0) im->needed[p] = 1;
    for (size_t j = nn; j-- > 0;) {
        int i = im->order[j];
        if (!im->needed[i]) continue;
        const Onnx__NodeProto *nd = gp->node[i];
        for (size_t k = 0; k < nd->n_input; k++) {
            if (!nd->input[k] || !*nd->input[k]) continue;
            int q = im->ents[onnx_map_get(&im->map, nd->input[k])].producer;
            if (q >= 0) im->needed[q] = 1;
        }
    }
    for (size_t j = 0; j < nn; j++) {
        int i = im->order[j];
        const Onnx__NodeProto *nd = gp->node[i];
        if (!im->needed[i]) continue;
        int st = 0;
        if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx") != 0) st = 0;
        else if (strcmp(nd->op_type, "Constant") == 0 || strcmp(nd->op_type, "Shape") == 0 ||
                 (strcmp(nd->op_type, "Size") == 0 && nd->n_input == 1))
            st = 1;
        else if (onnx_foldable(nd->op_type) && nd->n_input > 0) {
            st = 1;
            for (size_t k = 0; k < nd->n_input; k++)
                if (nd->input[k] && *nd->input[k] && !im->ents[onnx_map_get(&im->map, nd->input[k])].is_static) st = 0;
        }
        if (!nd->output[0] || !*nd->output[0]) st = 0; /* only an optional output used: unsupported below */
        im->node_static[i] = (char)st;
        for (size_t k = 0; st && k < (strcmp(nd->op_type, "Split") == 0 ? nd->n_output : 1); k++)
            if (nd->output[k] && *nd->output[k]) im->ents[onnx_map_get(&im->map, nd->output[k])].is_static = 1;
    }
    return ADVEX_OK;
}

/* All unsupported nodes in one message; also records how constants are used. */
static advex_status check_support(importer *im) {
    const Onnx__GraphProto *gp = im->gp;
    char msg[1024], why[160], lb[128];
    int bad = 0;
    size_t len = 0;
    msg[0] = '\0';
    for (size_t j = 0; j < gp->n_node; j++) {
        int i = im->order[j];
        const Onnx__NodeProto *nd = gp->node[i];
        if (!im->needed[i] || im->node_static[i]) continue;
        int ok = onnx_check_node(nd, im->opset, why, sizeof why);
        if (ok < 0) return ADVEX_ERR_FORMAT;
        if (ok && (!nd->output[0] || !*nd->output[0])) { /* needed for an output advex does not compute */
            ok = 0;
            snprintf(why, sizeof why, "%s without its first output", nd->op_type);
        }
        if (!ok) {
            if (bad < MAX_LISTED && len < sizeof msg)
                len += (size_t)snprintf(msg + len, sizeof msg - len, "%s'%s' (%s)", bad ? ", " : "",
                                        label(nd, lb, sizeof lb), why);
            bad++;
            continue;
        }
        for (size_t k = 0; k < nd->n_input; k++) {
            if (!nd->input[k] || !*nd->input[k]) continue;
            ent *en = &im->ents[onnx_map_get(&im->map, nd->input[k])];
            int r = onnx_im_role_rank(onnx_input_role(nd->op_type, (int)k));
            if (r > en->role) en->role = r;
        }
    }
    if (bad) {
        if (bad > MAX_LISTED) snprintf(why, sizeof why, " and %d more", bad - MAX_LISTED);
        else why[0] = '\0';
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%d unsupported node%s: %s%s", bad, bad > 1 ? "s" : "", msg, why);
    }
    return ADVEX_OK;
}

static void importer_free(importer *im) {
    if (im->ents)
        for (int i = 0; i < im->n_ents; i++) onnx_const_free(&im->ents[i].c);
    free(im->ents);
    onnx_map_free(&im->map);
    free(im->order);
    free(im->needed);
    free(im->node_static);
    free(im->vid_ent);
}

static advex_status import_model(importer *im, const Onnx__ModelProto *mp) {
    const Onnx__GraphProto *gp = mp->graph;
    if (!gp) return advex_set_error(ADVEX_ERR_FORMAT, "not a valid ONNX model (no graph)");
    im->gp = gp;
    im->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *os = mp->opset_import[i];
        if ((!os->domain || !*os->domain || strcmp(os->domain, "ai.onnx") == 0) && os->has_version)
            im->opset = (int)(os->version > 1000 ? 1000 : os->version < -1 ? -1 : os->version);
    }
    if (im->opset < 0 && mp->n_opset_import) /* valid ONNX, e.g. only ai.onnx.preview.training */
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "no default-domain (ai.onnx) opset imported");
    if (im->opset < 0) return advex_set_error(ADVEX_ERR_FORMAT, "not a valid ONNX model (no ONNX opset imported)");
    /* general mode (conformance tests) also reads opset 6, checking its legacy attributes */
    if (im->opset < ADVEX_ONNX_MIN_OPSET - im->general || im->opset > ADVEX_ONNX_MAX_OPSET)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "opset %d (advex reads opsets %d..%d)", im->opset,
                               ADVEX_ONNX_MIN_OPSET, ADVEX_ONNX_MAX_OPSET);
    if (gp->n_node > ADVEX_ONNX_MAX_NODES || gp->n_initializer > ADVEX_ONNX_MAX_NODES)
        return advex_set_error(ADVEX_ERR_LIMIT, "%zu nodes and %zu initializers (limit %d each)", gp->n_node,
                               gp->n_initializer, ADVEX_ONNX_MAX_NODES);
    if (gp->n_node == 0) return advex_set_error(ADVEX_ERR_FORMAT, "graph has no nodes");
    im->drop = -1;
    advex_status st;
    const Onnx__ValueInfoProto *input = NULL;
    if ((st = index_names(im))) return st;
    if ((st = im->general ? general_inputs(im, &input) : find_input(im, &input))) return st;
    int e = add_ent(im, input->name);
    if (e < 0) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    im->ents[e].is_input = 1;
    if ((st = topo_sort(im)) || (st = analyse(im)) || (st = check_support(im))) return st;
    im->net = advex_net_new(im->name);
    if (!im->net) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    im->net->opset = im->opset;
    if ((st = onnx_im_build(im, input)) || (st = advex_graph_fuse_patterns(&im->net->g))) return st;
    return advex_net_finalize(im->net, !im->general);
}

/* owned: buf itself, when the caller hands it over: freed as soon as protobuf-c has copied
 * what it needs (before the weights are decoded: one copy of them less at the peak). */
static advex_status load_buffer(importer *im_in, const void *buf, size_t len, const char *name, advex_net **out,
                                void *owned) {
    importer im = *im_in;
    if (!name || !*name) name = "model.onnx";
    if (!out) {
        free(owned);
        return advex_set_error(ADVEX_ERR_ARG, "%s: no output handle", name);
    }
    *out = NULL;
    im.name = name;
    if (!buf || len == 0) {
        free(owned);
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: empty file (not an ONNX model)", name);
    }
    /* protobuf-c unpacks recursively and allocates per message: bound both first */
    onnx_wire_stats ws;
    advex_status wst = onnx_wire_scan(buf, len, &onnx__model_proto__descriptor, &ws);
    if (wst) {
        free(owned);
        return advex_error_prefix(wst, name);
    }
    if (!advex_mem_fits(ws.bytes)) {
        char a[32], b[32];
        free(owned);
        return advex_set_error(ADVEX_ERR_LIMIT, "%s: memory limit: parsing the file needs about %s, over the limit "
                               "of %s (raise --max-memory / advex_set_memory_limit)", name,
                               advex_fmt_bytes(ws.bytes, a), advex_fmt_bytes(advex_get_memory_limit(), b));
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    free(owned); /* (protobuf-c copies strings and bytes) */
    if (!mp) return advex_set_error(ADVEX_ERR_FORMAT, "%s: not a valid ONNX model (protobuf parse failed)", name);
    advex_status st = import_model(&im, mp);
    /* what the file holds is never a caller's bad argument (an op's attribute check may say
     * ARG, e.g. Clip min > max): a bad model file is a runtime error, exit 1 in the CLI */
    if (st == ADVEX_ERR_ARG && !im.general) st = ADVEX_ERR_FORMAT;
    if (st) {
        if (!advex_last_error()[0]) advex_set_error(st, "%s", advex_status_str(st));
        advex_error_prefix(st, name);
        advex_net_release(im.net);
    } else {
        *out = im.net;
    }
    importer_free(&im);
    onnx__model_proto__free_unpacked(mp, NULL);
    return st;
}

advex_status advex_model_load_onnx_buffer(const void *buf, size_t len, const char *name, advex_model **out) {
    importer im;
    memset(&im, 0, sizeof im);
    advex_net *net;
    if (out) *out = NULL;
    advex_status st = load_buffer(&im, buf, len, name, &net, NULL);
    return st ? st : advex_model_wrap(net, out);
}

advex_status advex_onnx_load_general(const void *buf, size_t len, const char *name,
                                     const Onnx__TensorProto *const *inputs, int n_inputs, advex_net **out) {
    importer im;
    memset(&im, 0, sizeof im);
    im.general = 1;
    im.gen_in = inputs;
    im.n_gen_in = n_inputs;
    return load_buffer(&im, buf, len, name, out, NULL);
}

advex_status advex_model_load_onnx(const char *path, advex_model **out) {
    if (out) *out = NULL;
    if (!path || !*path) return advex_set_error(ADVEX_ERR_ARG, "no ONNX file name given");
    FILE *f = fopen(path, "rb");
    if (!f) return advex_set_error(ADVEX_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return advex_set_error(ADVEX_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > ((uint64_t)1 << 32)) {
        fclose(f);
        return advex_set_error(ADVEX_ERR_LIMIT, "%s: file larger than 4 GiB", path);
    }
    size_t len = (size_t)sb.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return advex_set_error(ADVEX_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (got != len) {
        free(buf);
        return advex_set_error(ADVEX_ERR_IO, "%s: read failed: %s", path, err ? strerror(err) : "file changed size");
    }
    importer im;
    memset(&im, 0, sizeof im);
    advex_net *net;
    advex_status st = load_buffer(&im, buf, len, path, &net, buf); /* (frees buf) */
    return st ? st : advex_model_wrap(net, out);
}
