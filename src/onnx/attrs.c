/* Reading ONNX node attributes with type checks (a hostile file may give "strides" as a
 * string), and the node labels used in error messages. */
#include <stdio.h>
#include <string.h>

#include "onnx_internal.h"

const char *onnx_node_label(const Onnx__NodeProto *nd, char *buf, size_t n) {
    if (nd->name && *nd->name) snprintf(buf, n, "%s", nd->name);
    else if (nd->n_output > 0 && nd->output[0] && *nd->output[0]) snprintf(buf, n, "<%s>", nd->output[0]);
    else snprintf(buf, n, "<unnamed %s>", nd->op_type ? nd->op_type : "node");
    return buf;
}

const Onnx__AttributeProto *onnx_attr(const Onnx__NodeProto *nd, const char *name) {
    for (size_t i = 0; i < nd->n_attribute; i++) {
        const Onnx__AttributeProto *at = nd->attribute[i];
        if (at && at->name && strcmp(at->name, name) == 0) return at;
    }
    return NULL;
}

static const char *type_name(int t) {
    switch (t) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return "FLOAT";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return "INT";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return "STRING";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: return "TENSOR";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return "FLOATS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return "INTS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: return "STRINGS";
    default: return "another type";
    }
}

/* The attribute's type: the declared one, or (IR < 2 files) guessed from what is set. */
static int attr_type(const Onnx__AttributeProto *at) {
    if (at->has_type && at->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return (int)at->type;
    if (at->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    if (at->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    if (at->has_s) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    if (at->t) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    if (at->n_ints) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    if (at->n_floats) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

static advex_status bad_type(const Onnx__NodeProto *nd, const Onnx__AttributeProto *at, const char *want) {
    char lb[128];
    return advex_set_error(ADVEX_ERR_FORMAT, "node '%s' (%s): attribute '%s' has type %s, expected %s",
                           onnx_node_label(nd, lb, sizeof lb), nd->op_type, at->name,
                           type_name(attr_type(at)), want);
}

advex_status onnx_attr_int(const Onnx__NodeProto *nd, const char *name, int64_t def, int64_t *out) {
    const Onnx__AttributeProto *at = onnx_attr(nd, name);
    *out = def;
    if (!at) return ADVEX_OK;
    if (attr_type(at) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) return bad_type(nd, at, "INT");
    *out = at->i;
    return ADVEX_OK;
}

advex_status onnx_attr_float(const Onnx__NodeProto *nd, const char *name, float def, float *out) {
    const Onnx__AttributeProto *at = onnx_attr(nd, name);
    *out = def;
    if (!at) return ADVEX_OK;
    if (attr_type(at) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) return bad_type(nd, at, "FLOAT");
    *out = at->f;
    return ADVEX_OK;
}

advex_status onnx_attr_ints(const Onnx__NodeProto *nd, const char *name, int64_t *out, int cap,
                            int *n) {
    const Onnx__AttributeProto *at = onnx_attr(nd, name);
    *n = -1;
    if (!at) return ADVEX_OK;
    if (attr_type(at) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) return bad_type(nd, at, "INTS");
    if (at->n_ints > (size_t)cap) {
        char lb[128];
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "node '%s' (%s): attribute '%s' has %zu values (at most %d)",
                               onnx_node_label(nd, lb, sizeof lb), nd->op_type, name, at->n_ints, cap);
    }
    for (size_t i = 0; i < at->n_ints; i++) out[i] = at->ints[i];
    *n = (int)at->n_ints;
    return ADVEX_OK;
}

advex_status onnx_attr_str(const Onnx__NodeProto *nd, const char *name, const char *def,
                           char *buf, size_t n) {
    const Onnx__AttributeProto *at = onnx_attr(nd, name);
    snprintf(buf, n, "%s", def);
    if (!at) return ADVEX_OK;
    if (attr_type(at) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING) return bad_type(nd, at, "STRING");
    size_t len = at->s.len < n - 1 ? at->s.len : n - 1;
    if (len && at->s.data) memcpy(buf, at->s.data, len);
    buf[len] = '\0';
    /* embedded NULs would make the comparison lie */
    if (memchr(buf, '\0', len) != NULL) buf[0] = '?';
    return ADVEX_OK;
}
