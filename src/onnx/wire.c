/* A pre-scan of protobuf wire data along the protobuf-c descriptors, before the recursive
 * unpacker runs: message nesting depth (protobuf-c recurses once per level, so a file of
 * nested subgraphs or TypeProto sequences could overflow the stack), how many messages
 * the unpacker would allocate, and roughly how many bytes. One linear pass, no recursion. */
#include <string.h>

#include "onnx_internal.h"

typedef struct frame {
    const ProtobufCMessageDescriptor *desc;
    size_t end;      /* offset one past this message's bytes */
    int64_t nodes;   /* GraphProto: node entries so far */
    int64_t inits;   /* GraphProto: initializer entries so far */
} frame;

/* Varint at *pos (at most 10 bytes, inside end); 0 when malformed. */
static int read_varint(const uint8_t *b, size_t end, size_t *pos, uint64_t *v) {
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (*pos >= end) return 0;
        uint8_t c = b[(*pos)++];
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) { *v = x; return 1; }
    }
    return 0;
}

/* Bytes the unpacked C representation of one scalar element takes at most. */
static int64_t scalar_bytes(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return 4;
    }
}

/* Bytes of unpacked C data per byte of a packed repeated field, at most: fixed-width
 * elements keep their size, a varint can be a single byte. */
static int64_t packed_factor(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_DOUBLE: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_BYTES:
        return 1;
    default:
        return scalar_bytes(t);
    }
}

/* Within a GraphProto: count node (1) and initializer (5) entries against the limits. */
static advex_status count_graph_entry(frame *f, uint32_t id) {
    if (f->desc != &onnx__graph_proto__descriptor) return ADVEX_OK;
    int64_t *c = id == 1 ? &f->nodes : id == 5 ? &f->inits : NULL;
    if (c && ++*c > ADVEX_ONNX_MAX_NODES)
        return advex_set_error(ADVEX_ERR_LIMIT, "a graph has more than %d %s (the limit)", ADVEX_ONNX_MAX_NODES,
                               id == 1 ? "nodes" : "initializers");
    return ADVEX_OK;
}

advex_status onnx_wire_scan(const void *buf, size_t len, const ProtobufCMessageDescriptor *root, onnx_wire_stats *out) {
    const uint8_t *b = buf;
    frame st[ADVEX_ONNX_MAX_DEPTH + 1];
    int top = 0;
    size_t pos = 0;
    memset(out, 0, sizeof *out);
    memset(st, 0, sizeof st[0]);
    st[0].desc = root;
    st[0].end = len;
    out->messages = 1;
    out->bytes = (int64_t)root->sizeof_message;
    while (pos < len || top > 0) {
        while (top > 0 && pos == st[top].end) top--; /* a nested message ends */
        if (pos >= st[top].end) break;
        frame *f = &st[top];
        uint64_t tag, v;
        if (!read_varint(b, f->end, &pos, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
            return advex_set_error(ADVEX_ERR_FORMAT, "not a valid ONNX model (bad protobuf tag at byte %zu)", pos);
        uint32_t id = (uint32_t)(tag >> 3);
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(f->desc, id);
        switch (tag & 7) {
        case 0:
            if (!read_varint(b, f->end, &pos, &v))
                return advex_set_error(ADVEX_ERR_FORMAT, "not a valid ONNX model (bad protobuf varint at byte %zu)", pos);
            if (fd) out->bytes += scalar_bytes(fd->type);
            break;
        case 1: case 5: {
            size_t w = (tag & 7) == 1 ? 8 : 4;
            if (f->end - pos < w)
                return advex_set_error(ADVEX_ERR_FORMAT, "not a valid ONNX model (protobuf field past its message)");
            pos += w;
            if (fd) out->bytes += 8;
            break;
        }
        case 2:
            if (!read_varint(b, f->end, &pos, &v) || v > f->end - pos)
                return advex_set_error(ADVEX_ERR_FORMAT, "not a valid ONNX model (protobuf field past its message)");
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                advex_status s = count_graph_entry(f, id);
                if (s) return s;
                if (top == ADVEX_ONNX_MAX_DEPTH)
                    return advex_set_error(ADVEX_ERR_LIMIT, "protobuf messages nested more than %d deep (subgraphs "
                                           "or types inside each other); refused before parsing",
                                           ADVEX_ONNX_MAX_DEPTH);
                const ProtobufCMessageDescriptor *d = fd->descriptor;
                if (++out->messages > ADVEX_ONNX_MAX_MESSAGES)
                    return advex_set_error(ADVEX_ERR_LIMIT, "more than %lld protobuf messages (the limit)",
                                           (long long)ADVEX_ONNX_MAX_MESSAGES);
                out->bytes += (int64_t)d->sizeof_message + 16;
                top++;
                memset(&st[top], 0, sizeof st[top]);
                st[top].desc = d;
                st[top].end = pos + (size_t)v;
                if (top > out->depth) out->depth = top;
                continue; /* scan inside it */
            }
            /* strings and bytes are copied; packed varints widen (a 1-byte varint to 8 bytes) */
            if (fd) out->bytes += 16 + (int64_t)v * packed_factor(fd->type);
            pos += (size_t)v;
            break;
        default: /* groups (3, 4) and 6, 7: protobuf-c rejects them too */
            return advex_set_error(ADVEX_ERR_FORMAT, "not a valid ONNX model (protobuf wire type %u)",
                                   (unsigned)(tag & 7));
        }
    }
    return ADVEX_OK;
}
