/* ONNX node -> advex op: the support check run on every node before any work (so all
 * unsupported nodes are reported at once), the translation of attributes across opsets
 * (Clip/Pad/Dropout attributes vs inputs, Softmax's axis default), and input roles. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "onnx_internal.h"

/* Bound on strides, dilations, kernel sizes and pads from a file (no op overflows). */
#define MAX_GEOM ((int64_t)1 << 24)

/* Map an ONNX op type to the advex op that runs it; -1 when none. Cast (to float),
 * Squeeze and Unsqueeze on run-time values become Identity and Reshape; Split becomes
 * Slices and ConstantOfShape an Expand (the importer builds those two). */
static int compute_op(const char *op) {
    if (strcmp(op, "Cast") == 0) return ADVEX_OP_IDENTITY;
    if (strcmp(op, "Squeeze") == 0 || strcmp(op, "Unsqueeze") == 0) return ADVEX_OP_RESHAPE;
    if (strcmp(op, "Split") == 0) return ADVEX_OP_SLICE;              /* one Slice per part (import.c) */
    if (strcmp(op, "ConstantOfShape") == 0) return ADVEX_OP_EXPAND;   /* to a batch-dependent shape */
    for (int i = 0; i < ADVEX_OP_COUNT; i++)
        if (strcmp(op, advex_op_defs[i].name) == 0) return i;
    return -1;
}

advex_value_kind onnx_input_role(const char *op, int k) {
    if ((strcmp(op, "Conv") == 0 || strcmp(op, "Gemm") == 0) && (k == 1 || k == 2)) return ADVEX_VAL_PARAM;
    if (strcmp(op, "MatMul") == 0 && k == 1) return ADVEX_VAL_PARAM;
    if ((strcmp(op, "PRelu") == 0 && k == 1) || (strcmp(op, "LayerNormalization") == 0 && k >= 1))
        return ADVEX_VAL_PARAM;
    if (strcmp(op, "BatchNormalization") == 0) {
        if (k == 1 || k == 2) return ADVEX_VAL_PARAM;
        if (k == 3 || k == 4) return ADVEX_VAL_STATE;
    }
    return ADVEX_VAL_CONST;
}

static int is_window_op(const char *op) {
    return strcmp(op, "Conv") == 0 || strcmp(op, "MaxPool") == 0 || strcmp(op, "AveragePool") == 0;
}

static int auto_pad_code(const char *s) {
    if (!*s || strcmp(s, "NOTSET") == 0) return 0;
    if (strcmp(s, "SAME_UPPER") == 0) return 1;
    if (strcmp(s, "SAME_LOWER") == 0) return 2;
    if (strcmp(s, "VALID") == 0) return 3;
    return -1;
}

#define WHY(...) (snprintf(why, n, __VA_ARGS__), 0)

int onnx_check_node(const Onnx__NodeProto *nd, int opset, char *why, size_t n) {
    const char *op = nd->op_type;
    char s[64];
    int64_t v, ints[2 * ADVEX_MAX_DIMS];
    int cnt;
    if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx") != 0) return WHY("%s.%s", nd->domain, op);
    int code = compute_op(op);
    if (code < 0) return WHY("%s, opset %d", op, opset);
    if (onnx_is_ext_op((advex_op_type)code)) {
        int ok = onnx_check_ext(nd, (advex_op_type)code, why, n);
        if (ok <= 0) return ok;
    }
    if (onnx_is_random_op((advex_op_type)code)) return onnx_check_random(nd, why, n);
    if (is_window_op(op)) {
        if (onnx_attr_str(nd, "auto_pad", "NOTSET", s, sizeof s)) return -1;
        if (auto_pad_code(s) < 0) return WHY("%s auto_pad=%s", op, s);
        if (onnx_attr_ints(nd, "kernel_shape", ints, 2 * ADVEX_MAX_DIMS, &cnt)) return -1;
        if (cnt >= 0 && cnt != 2) return WHY("%s with a %d-D kernel; advex supports 2-D", op, cnt);
        if (cnt < 0 && strcmp(op, "Conv") != 0) return WHY("%s without kernel_shape", op);
        if (onnx_attr_ints(nd, "strides", ints, 2 * ADVEX_MAX_DIMS, &cnt)) return -1;
        if (cnt >= 0 && cnt != 2) return WHY("%s with %d strides", op, cnt);
        if (onnx_attr_ints(nd, "dilations", ints, 2 * ADVEX_MAX_DIMS, &cnt)) return -1;
        if (cnt >= 0 && cnt != 2) return WHY("%s with %d dilations", op, cnt);
        if (onnx_attr_ints(nd, "pads", ints, 2 * ADVEX_MAX_DIMS, &cnt)) return -1;
        if (cnt >= 0 && cnt != 4) return WHY("%s with %d pads", op, cnt);
    }
    if (opset < 7) { /* opset 6 (general mode only): legacy attributes */
        if ((strcmp(op, "Add") == 0 || strcmp(op, "Sub") == 0 || strcmp(op, "Mul") == 0 || strcmp(op, "Div") == 0) &&
            onnx_attr(nd, "axis"))
            return WHY("%s with legacy axis broadcasting (opset %d)", op, opset);
        if (strcmp(op, "PRelu") == 0) return WHY("PRelu with legacy slope broadcasting (opset %d)", opset);
        if (strcmp(op, "BatchNormalization") == 0 || strcmp(op, "Dropout") == 0) {
            if (onnx_attr_int(nd, "is_test", 0, &v)) return -1;
            if (v == 0) return WHY("%s is_test=0 (opset %d)", op, opset);
        }
    }
    if (strcmp(op, "MaxPool") == 0) {
        if (onnx_attr_int(nd, "storage_order", 0, &v)) return -1;
        if (v != 0) return WHY("MaxPool storage_order=%lld", (long long)v);
        if (nd->n_output > 1 && nd->output[1] && *nd->output[1]) return WHY("MaxPool with an Indices output");
    } else if (strcmp(op, "BatchNormalization") == 0) {
        if (onnx_attr_int(nd, "training_mode", 0, &v)) return -1;
        if (v != 0) return WHY("BatchNormalization training_mode=%lld", (long long)v);
        if (onnx_attr_int(nd, "spatial", 1, &v)) return -1;
        if (v != 1) return WHY("BatchNormalization spatial=%lld", (long long)v);
    } else if (strcmp(op, "Pad") == 0) {
        if (onnx_attr_str(nd, "mode", "constant", s, sizeof s)) return -1;
        if (strcmp(s, "constant") != 0) return WHY("Pad mode=%s", s);
        if (nd->n_input > 3 && nd->input[3] && *nd->input[3]) return WHY("Pad with axes");
    } else if (strcmp(op, "Cast") == 0) {
        if (onnx_attr_int(nd, "to", 0, &v)) return -1;
        if (v != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) return WHY("Cast to type %lld on run-time data", (long long)v);
    } else if (strcmp(op, "Dropout") == 0 || strcmp(op, "Clip") == 0) {
        /* checked at translation (their extra inputs must be known at load time) */
    }
    return 1;
}

/* ---- translation -------------------------------------------------------------------------- */

typedef struct tctx {
    const Onnx__NodeProto *nd;
    char label[160];
} tctx;

static advex_status terr(const tctx *t, advex_status s, const char *msg) {
    return advex_set_error(s, "%s: %s", t->label, msg);
}

/* A scalar float from a load-time input (Clip bounds, Dropout ratio, Pad value). */
static advex_status scalar_input(const tctx *t, const onnx_input *in, float *out, const char *what) {
    char msg[128];
    if (!in->c || in->c->numel != 1 || onnx_const_float(in->c, 0, out) != 0) {
        snprintf(msg, sizeof msg, "%s must be a single number known at load time", what);
        return terr(t, ADVEX_ERR_UNSUPPORTED, msg);
    }
    return ADVEX_OK;
}

/* Strides, dilations, pads (explicit, or resolved from auto_pad with the known spatial
 * input size), ceil_mode. */
static advex_status window_attrs(const tctx *t, const onnx_input *x, advex_attrs *a) {
    const Onnx__NodeProto *nd = t->nd;
    int64_t st2[2] = {1, 1}, dl[2] = {1, 1}, pads[4] = {0, 0, 0, 0}, cm;
    int c1, c2, c3;
    char s[64];
    advex_status st;
    if ((st = onnx_attr_ints(nd, "strides", st2, 2, &c1)) || (st = onnx_attr_ints(nd, "dilations", dl, 2, &c2)) ||
        (st = onnx_attr_ints(nd, "pads", pads, 4, &c3)) || (st = onnx_attr_int(nd, "ceil_mode", 0, &cm)) ||
        (st = onnx_attr_str(nd, "auto_pad", "NOTSET", s, sizeof s)))
        return st;
    if (c1 < 0) st2[0] = st2[1] = 1;
    if (c2 < 0) dl[0] = dl[1] = 1;
    if (c3 < 0) pads[0] = pads[1] = pads[2] = pads[3] = 0;
    for (int i = 0; i < 2; i++)
        if (st2[i] <= 0 || dl[i] <= 0 || st2[i] > MAX_GEOM || dl[i] > MAX_GEOM)
            return terr(t, ADVEX_ERR_FORMAT, "strides and dilations must be in 1..2^24");
    for (int i = 0; i < 4; i++)
        if (pads[i] < 0 || pads[i] > MAX_GEOM) return terr(t, ADVEX_ERR_UNSUPPORTED, "pads must be in 0..2^24");
    int ap = auto_pad_code(s);
    if (ap == 3) {
        pads[0] = pads[1] = pads[2] = pads[3] = 0;
    } else if (ap == 1 || ap == 2) {
        if (x->ndim != 4 || x->shape[2].n || x->shape[3].n)
            return terr(t, ADVEX_ERR_UNSUPPORTED, "auto_pad SAME needs a 4-D input of fixed spatial size");
        for (int i = 0; i < 2; i++) {
            int64_t in = x->shape[2 + i].v, out = (in + st2[i] - 1) / st2[i];
            int64_t total = (out - 1) * st2[i] + (a->kernel[i] - 1) * dl[i] + 1 - in;
            if (total < 0) total = 0;
            pads[i] = ap == 1 ? total / 2 : total - total / 2;
            pads[2 + i] = total - pads[i];
        }
    }
    for (int i = 0; i < 2; i++) {
        a->stride[i] = st2[i];
        a->dilation[i] = dl[i];
    }
    for (int i = 0; i < 4; i++) a->pads[i] = pads[i];
    a->ceil_mode = cm != 0;
    return ADVEX_OK;
}

static int sym_eq(onnx_sym a, onnx_sym b) { return a.v == b.v && a.n == b.n; }

/* Reshape target from a load-time shape: a dim equal to the input's dim at the same
 * position becomes 0 (copy: keeps the batch dynamic), one other batch-dependent dim
 * becomes -1 (inferred). */
static advex_status reshape_target(const tctx *t, const onnx_sym *tg, int n, const onnx_input *x, int allowzero,
                                   advex_attrs *a) {
    int nsym = 0, neg1 = 0;
    for (int d = 0; d < n; d++) {
        if (tg[d].n == 0 && tg[d].v > ((int64_t)1 << 40)) return terr(t, ADVEX_ERR_LIMIT, "target dimension too large");
        if (tg[d].n == 0 && tg[d].v == -1) neg1++;
        if (tg[d].n == 0 && tg[d].v < -1) return terr(t, ADVEX_ERR_FORMAT, "negative dimension in shape");
        if (tg[d].n == 0 && tg[d].v == 0 && allowzero)
            return terr(t, ADVEX_ERR_UNSUPPORTED, "allowzero=1 with a zero dimension");
    }
    for (int d = 0; d < n; d++) {
        if (tg[d].n == 0) {
            a->ints[d] = tg[d].v;
        } else if (d < x->ndim && sym_eq(tg[d], x->shape[d])) {
            a->ints[d] = 0;
        } else {
            nsym++;
            a->ints[d] = -1;
        }
    }
    if (nsym > 1 || (nsym == 1 && neg1))
        return terr(t, ADVEX_ERR_UNSUPPORTED, "target shape depends on the batch size in a way advex cannot express");
    a->n_ints = n;
    return ADVEX_OK;
}

static advex_status tr_reshape(const tctx *t, const onnx_input *in, int n_in, advex_attrs *a, int *keep) {
    if (n_in < 2 || !in[1].c) return terr(t, ADVEX_ERR_UNSUPPORTED, "the target shape must be known at load time");
    const onnx_const *c = in[1].c;
    if (c->is_float || c->ndim != 1 || c->numel > ADVEX_MAX_DIMS)
        return terr(t, ADVEX_ERR_UNSUPPORTED, "target shape must be a list of at most 6 integers");
    int64_t allowzero;
    advex_status st = onnx_attr_int(t->nd, "allowzero", 0, &allowzero);
    if (st) return st;
    keep[1] = 0;
    return reshape_target(t, c->i, (int)c->numel, &in[0], allowzero != 0, a);
}

/* (Un)squeeze of a run-time value as a Reshape to the known result shape. */
static advex_status tr_squeeze(const tctx *t, int opset, const onnx_input *in, int n_in, int squeeze,
                               advex_attrs *a, int *keep) {
    int64_t axes[ADVEX_MAX_DIMS];
    int n = -1, r = in[0].ndim;
    onnx_sym out[ADVEX_MAX_DIMS];
    advex_status st;
    if (opset >= 13) {
        if (n_in > 1 && in[1].present) {
            const onnx_const *c = in[1].c;
            if (!c || c->is_float || c->ndim > 1 || c->numel > ADVEX_MAX_DIMS)
                return terr(t, ADVEX_ERR_UNSUPPORTED, "axes must be known at load time");
            for (int64_t k = 0; k < c->numel; k++)
                if (onnx_const_int(c, k, &axes[k]) != 0) return terr(t, ADVEX_ERR_UNSUPPORTED, "bad axes");
            n = (int)c->numel;
            keep[1] = 0;
        }
    } else if ((st = onnx_attr_ints(t->nd, "axes", axes, ADVEX_MAX_DIMS, &n))) {
        return st;
    }
    int on = 0, mark[2 * ADVEX_MAX_DIMS] = {0};
    if (squeeze) {
        for (int j = 0; j < n; j++) {
            int64_t ax = axes[j] < 0 ? axes[j] + r : axes[j];
            if (ax < 0 || ax >= r || in[0].shape[ax].n != 0 || in[0].shape[ax].v != 1)
                return terr(t, ADVEX_ERR_SHAPE, "bad squeeze axis");
            mark[ax] = 1;
        }
        for (int d = 0; d < r; d++) {
            int drop = n < 0 ? (in[0].shape[d].n == 0 && in[0].shape[d].v == 1) : mark[d];
            if (!drop) out[on++] = in[0].shape[d];
        }
    } else {
        on = r + (n < 0 ? 0 : n);
        if (n < 0 || on > ADVEX_MAX_DIMS) return terr(t, ADVEX_ERR_UNSUPPORTED, "bad unsqueeze axes or rank");
        for (int j = 0; j < n; j++) {
            int64_t ax = axes[j] < 0 ? axes[j] + on : axes[j];
            if (ax < 0 || ax >= on || mark[ax]) return terr(t, ADVEX_ERR_FORMAT, "bad unsqueeze axes");
            mark[ax] = 1;
        }
        for (int d = 0, k = 0; d < on; d++) {
            if (mark[d]) { out[d].v = 1; out[d].n = 0; }
            else out[d] = in[0].shape[k++];
        }
    }
    return reshape_target(t, out, on, &in[0], 0, a);
}

/* Pad: pads (an attribute before opset 11, then a load-time integer input) and the constant value. */
static advex_status tr_pad(tctx *t, int opset, const onnx_input *in, int n_in, advex_attrs *a, int *keep) {
    advex_status st;
    int r = in[0].ndim, np = -1;
    if (opset < 11) {
        if ((st = onnx_attr_ints(t->nd, opset < 2 ? "paddings" : "pads", a->ints, 2 * ADVEX_MAX_DIMS, &np)) ||
            (st = onnx_attr_float(t->nd, "value", 0.0f, &a->pad_value)))
            return st;
    } else {
        const onnx_const *c = n_in > 1 ? in[1].c : NULL;
        if (!c || c->is_float || c->numel > 2 * ADVEX_MAX_DIMS)
            return terr(t, ADVEX_ERR_UNSUPPORTED, "pads must be integers known at load time");
        for (int64_t k = 0; k < c->numel; k++)
            if (onnx_const_int(c, k, &a->ints[k]) != 0) return terr(t, ADVEX_ERR_UNSUPPORTED, "pads depend on the batch size");
        np = (int)c->numel;
        if (n_in > 2 && in[2].present && (st = scalar_input(t, &in[2], &a->pad_value, "constant_value"))) return st;
        for (int k = 1; k < n_in; k++) keep[k] = 0;
    }
    if (np != 2 * r) return terr(t, ADVEX_ERR_FORMAT, "pads must have 2 values per input dimension");
    for (int k = 0; k < np; k++)
        if (a->ints[k] < -MAX_GEOM || a->ints[k] > MAX_GEOM) return terr(t, ADVEX_ERR_UNSUPPORTED, "pads beyond 2^24");
    a->n_ints = np;
    return ADVEX_OK;
}

advex_status onnx_translate(const Onnx__NodeProto *nd, int opset, const onnx_input *in, int n_in,
                            advex_op_type *op_out, advex_attrs *a, int *keep) {
    tctx t;
    char lb[128];
    const char *op = nd->op_type;
    advex_status st = ADVEX_OK;
    int64_t v;
    t.nd = nd;
    snprintf(t.label, sizeof t.label, "node '%s' (%s)", onnx_node_label(nd, lb, sizeof lb), op);
    int code = compute_op(op);
    if (code < 0) return terr(&t, ADVEX_ERR_UNSUPPORTED, "unsupported op");
    *op_out = (advex_op_type)code;
    advex_attrs_default(a);
    for (int k = 0; k < n_in; k++) keep[k] = in[k].present;
    if (onnx_is_random_op(*op_out)) return onnx_translate_random(nd, t.label, *op_out, n_in, a);
    if (n_in < 1 || !in[0].present) return terr(&t, ADVEX_ERR_FORMAT, "first input is missing");

    if (strcmp(op, "Conv") == 0 || strcmp(op, "MaxPool") == 0 || strcmp(op, "AveragePool") == 0) {
        int64_t ks[2];
        int nk;
        if ((st = onnx_attr_ints(nd, "kernel_shape", ks, 2, &nk))) return st;
        if (nk < 0) { /* Conv: from the weight (M, C/G, KH, KW) */
            if (n_in < 2 || in[1].ndim != 4 || in[1].shape[2].n || in[1].shape[3].n)
                return terr(&t, ADVEX_ERR_UNSUPPORTED, "weight must be 4-D (2-D convolution)");
            ks[0] = in[1].shape[2].v;
            ks[1] = in[1].shape[3].v;
        }
        if (ks[0] <= 0 || ks[1] <= 0 || ks[0] > MAX_GEOM || ks[1] > MAX_GEOM)
            return terr(&t, ADVEX_ERR_FORMAT, "kernel size must be in 1..2^24");
        a->kernel[0] = ks[0];
        a->kernel[1] = ks[1];
        if ((st = window_attrs(&t, &in[0], a))) return st;
        if (strcmp(op, "Conv") == 0) {
            if ((st = onnx_attr_int(nd, "group", 1, &a->group))) return st;
            if (a->group <= 0 || a->group > MAX_GEOM) return terr(&t, ADVEX_ERR_FORMAT, "group must be positive");
        } else if (strcmp(op, "AveragePool") == 0) {
            if ((st = onnx_attr_int(nd, "count_include_pad", 0, &v))) return st;
            a->count_include_pad = v != 0;
        }
    } else if (strcmp(op, "Gemm") == 0) {
        int64_t ta, tb;
        if ((st = onnx_attr_float(nd, "alpha", 1.0f, &a->alpha)) || (st = onnx_attr_float(nd, "beta", 1.0f, &a->beta)) ||
            (st = onnx_attr_int(nd, "transA", 0, &ta)) || (st = onnx_attr_int(nd, "transB", 0, &tb)))
            return st;
        a->trans_a = ta != 0;
        a->trans_b = tb != 0;
    } else if (strcmp(op, "LeakyRelu") == 0) {
        st = onnx_attr_float(nd, "alpha", 0.01f, &a->alpha);
    } else if (strcmp(op, "Clip") == 0) {
        if (opset < 11) {
            if ((st = onnx_attr_float(nd, "min", -INFINITY, &a->min)) ||
                (st = onnx_attr_float(nd, "max", INFINITY, &a->max)))
                return st;
        } else {
            if (n_in > 1 && in[1].present && (st = scalar_input(&t, &in[1], &a->min, "min"))) return st;
            if (n_in > 2 && in[2].present && (st = scalar_input(&t, &in[2], &a->max, "max"))) return st;
        }
        for (int k = 1; k < n_in; k++) keep[k] = 0;
    } else if (strcmp(op, "BatchNormalization") == 0) {
        if (n_in != 5) return terr(&t, ADVEX_ERR_FORMAT, "needs 5 inputs (x, scale, bias, mean, var)");
        if ((st = onnx_attr_float(nd, "epsilon", 1e-5f, &a->epsilon)) ||
            (st = onnx_attr_float(nd, "momentum", 0.9f, &a->momentum)))
            return st;
    } else if (strcmp(op, "Dropout") == 0) {
        if (opset < 12) {
            if ((st = onnx_attr_float(nd, "ratio", 0.5f, &a->ratio))) return st;
        } else {
            if (n_in > 1 && in[1].present && (st = scalar_input(&t, &in[1], &a->ratio, "ratio"))) return st;
            if (n_in > 2 && in[2].present) {
                float tm;
                if ((st = scalar_input(&t, &in[2], &tm, "training_mode"))) return st;
                /* PyTorch's F.dropout(p=0) exports training_mode=true: still the identity; with
                 * p > 0 a randomized defence: dropout in every pass (mode 1), eval included */
                if (tm != 0.0f && a->ratio != 0.0f) a->mode = 1;
                else if (tm != 0.0f) *op_out = ADVEX_OP_IDENTITY;
            }
        }
        for (int k = 1; k < n_in; k++) keep[k] = 0;
    } else if (strcmp(op, "Flatten") == 0) {
        st = onnx_attr_int(nd, "axis", 1, &a->axis);
    } else if (strcmp(op, "Reshape") == 0) {
        if (opset < 5) return terr(&t, ADVEX_ERR_UNSUPPORTED, "shape attribute (opset < 5)");
        st = tr_reshape(&t, in, n_in, a, keep);
    } else if (strcmp(op, "Squeeze") == 0 || strcmp(op, "Unsqueeze") == 0) {
        st = tr_squeeze(&t, opset, in, n_in, op[0] == 'S', a, keep);
    } else if (strcmp(op, "Transpose") == 0) {
        int np, r = in[0].ndim;
        if ((st = onnx_attr_ints(nd, "perm", a->ints, ADVEX_MAX_DIMS, &np))) return st;
        if (np < 0) {
            np = r;
            for (int d = 0; d < r; d++) a->ints[d] = r - 1 - d;
        }
        a->n_ints = np;
    } else if (strcmp(op, "Concat") == 0) {
        if ((st = onnx_attr_int(nd, "axis", INT64_MIN, &a->axis))) return st;
        if (a->axis == INT64_MIN) return terr(&t, ADVEX_ERR_FORMAT, "axis attribute is missing");
    } else if (strcmp(op, "Pad") == 0) {
        st = tr_pad(&t, opset, in, n_in, a, keep);
    } else if (strcmp(op, "Softmax") == 0 || strcmp(op, "LogSoftmax") == 0) {
        int r = in[0].ndim;
        if ((st = onnx_attr_int(nd, "axis", opset < 13 ? 1 : -1, &a->axis))) return st;
        int64_t ax = a->axis < 0 ? a->axis + r : a->axis;
        if (ax < 0 || ax >= r) return terr(&t, ADVEX_ERR_FORMAT, "axis out of range");
        /* before opset 13 the input is coerced to 2-D at axis: the softmax spans dims[axis:] */
        if (opset < 13 && ax != r - 1) a->mode = 1;
    } else if (strcmp(op, "Cast") == 0) {
        for (int k = 1; k < n_in; k++) keep[k] = 0;
    } else if (onnx_is_ext_op(*op_out)) {
        st = onnx_translate_ext(nd, t.label, opset, in, n_in, op_out, a, keep);
    }
    return st;
}
