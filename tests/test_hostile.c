/* Hostile inputs, round 2: files built here (no fixtures) that used to crash, hang, eat
 * memory or give silent wrong results: deeply nested protobuf messages, huge declared
 * input shapes, a 100 000-node graph, BatchNorm with a negative variance, a NaN checkpoint,
 * long paths in error messages, outputs that are fifos or directories, 16-bit PNGs and PNG
 * text chunks, gzip IDX bombs, $ADVEX_DATA. Each test names the failure it guards. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "harness.h"
#include "internal.h"
#include "onnx.pb-c.h"

static const char *tmp_path(const char *name) {
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

/* A growable protobuf encoder: enough to write small ONNX models field by field. */
typedef struct pbuf { unsigned char *p; size_t n, cap; } pbuf;

static void pb_raw(pbuf *b, const void *d, size_t n) {
    if (b->n + n + 16 > b->cap) {
        b->cap = (b->n + n + 16) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void pb_varint(pbuf *b, uint64_t v) {
    unsigned char t[10];
    pb_raw(b, t, put_varint(t, v));
}
static void pb_int(pbuf *b, int field, int64_t v) { pb_varint(b, (uint64_t)field << 3); pb_varint(b, (uint64_t)v); }
static void pb_bytes(pbuf *b, int field, const void *d, size_t n) {
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, n);
    pb_raw(b, d, n);
}
static void pb_str(pbuf *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }
/* Append sub as message field `field` and free it. */
static void pb_sub(pbuf *b, int field, pbuf *sub) {
    pb_bytes(b, field, sub->p ? sub->p : (unsigned char *)"", sub->n);
    free(sub->p);
    memset(sub, 0, sizeof *sub);
}

/* ValueInfoProto: float tensor; a dimension < 0 is the symbolic "N". */
static void onnx_value(pbuf *g, int field, const char *name, const int64_t *dims, int nd) {
    pbuf shape = {0}, tt = {0}, type = {0}, vi = {0};
    for (int i = 0; i < nd; i++) {
        pbuf dim = {0};
        if (dims[i] < 0) pb_str(&dim, 2, "N");
        else pb_int(&dim, 1, dims[i]);
        pb_sub(&shape, 1, &dim);
    }
    pb_int(&tt, 1, 1); /* elem_type FLOAT */
    pb_sub(&tt, 2, &shape);
    pb_sub(&type, 1, &tt);
    pb_str(&vi, 1, name);
    pb_sub(&vi, 2, &type);
    pb_sub(g, field, &vi);
}

/* NodeProto op(in...) -> out, named out. */
static void onnx_node(pbuf *g, const char *op, const char *in0, const char *in1, const char *out) {
    pbuf nd = {0};
    if (in0) pb_str(&nd, 1, in0);
    if (in1) pb_str(&nd, 1, in1);
    pb_str(&nd, 2, out);
    pb_str(&nd, 3, out);
    pb_str(&nd, 4, op);
    pb_sub(g, 1, &nd);
}

/* An initializer: float (raw data) or int64 values. */
static void onnx_init(pbuf *g, const char *name, const int64_t *dims, int nd, const float *f, const int64_t *iv,
                      int64_t n) {
    pbuf t = {0};
    for (int i = 0; i < nd; i++) pb_int(&t, 1, dims[i]);
    pb_int(&t, 2, f ? 1 : 7);
    pb_str(&t, 8, name);
    if (f) pb_bytes(&t, 9, f, (size_t)n * sizeof(float)); /* little-endian host */
    else for (int64_t i = 0; i < n; i++) pb_int(&t, 7, iv[i]);
    pb_sub(g, 5, &t);
}

/* ModelProto (opset 13) around graph g, with input x of shape (N, c, h, w) and output y. */
static pbuf onnx_model(pbuf *g, int64_t c, int64_t h, int64_t w) {
    pbuf m = {0}, os = {0};
    int64_t in[4] = {-1, c, h, w}, out[2] = {-1, -1};
    pb_str(g, 2, "g");
    onnx_value(g, 11, "x", in, 4);
    onnx_value(g, 12, "y", out, 2);
    pb_int(&m, 1, 8); /* ir_version */
    pb_int(&os, 2, 13);
    pb_sub(&m, 8, &os);
    pb_sub(&m, 7, g);
    return m;
}

static advex_status load_pb(pbuf *m, const char *name, advex_model **out) {
    advex_status st = advex_model_load_onnx_buffer(m->p, m->n, name, out);
    free(m->p);
    memset(m, 0, sizeof *m);
    return st;
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

/* The encoder itself: a Relu model loads and computes. */
TEST(pb_encoder_model_loads) {
    pbuf g = {0};
    onnx_node(&g, "Relu", "x", NULL, "r");
    onnx_node(&g, "Flatten", "r", NULL, "y");
    pbuf m = onnx_model(&g, 1, 2, 2);
    advex_model *md = NULL;
    ASSERT_OK(load_pb(&m, "relu.onnx", &md));
    float x[4] = {-1, 2, -3, 4}, z[4];
    ASSERT_OK(advex_model_forward(md, x, 1, z));
    ASSERT(z[0] == 0 && z[1] == 2 && z[2] == 0 && z[3] == 4);
    advex_model_free(md);
}

/* A 1x65536x65536 input (each dimension within the old per-axis limit) asked for 16 GiB at
 * plan time; refused now before anything is allocated, naming the input. */
TEST(huge_input_refused) {
    pbuf g = {0};
    onnx_node(&g, "Relu", "x", NULL, "r");
    onnx_node(&g, "Flatten", "r", NULL, "y");
    pbuf m = onnx_model(&g, 1, 65536, 65536);
    advex_model *md = NULL;
    int64_t base = advex_memory_in_use();
    ASSERT_STATUS(load_pb(&m, "wide.onnx", &md), ADVEX_ERR_LIMIT);
    ASSERT_MSG(strstr(advex_last_error(), "wide.onnx: input 'x' is 1x65536x65536") &&
                   strstr(advex_last_error(), "values per example"), "%s", advex_last_error());
    ASSERT_EQ_INT(advex_memory_in_use(), base);
}

/* A tiny input padded to 46341x46341 (8 GiB of activations for one example). */
TEST(huge_activation_refused) {
    pbuf g = {0};
    int64_t pd[1] = {8}, pads[8] = {0, 0, 0, 0, 0, 0, 46340, 46340};
    onnx_init(&g, "pads", pd, 1, NULL, pads, 8);
    onnx_node(&g, "Pad", "x", "pads", "p");
    onnx_node(&g, "Flatten", "p", NULL, "y");
    pbuf m = onnx_model(&g, 1, 1, 1);
    advex_model *md = NULL;
    ASSERT_STATUS(load_pb(&m, "pad.onnx", &md), ADVEX_ERR_LIMIT);
    ASSERT_MSG(strstr(advex_last_error(), "pad.onnx: the activations of one example need") &&
                   strstr(advex_last_error(), "node 'p'"), "%s", advex_last_error());
}

/* 100 000 nodes (the limit): the finalize passes counted each value's uses by scanning
 * every node, per node (40 000 nodes took 6 s, 100 000 about 40 s in advex info). Every
 * pass is linear now; this loads, runs and differentiates the largest graph allowed. */
TEST(graph_of_100k_nodes) {
    pbuf g = {0};
    char a[16], b[16];
    for (int i = 0; i < 99999; i++) {
        snprintf(a, sizeof a, i ? "v%d" : "x", i - 1);
        snprintf(b, sizeof b, "v%d", i);
        onnx_node(&g, i % 2 ? "Relu" : "Identity", a, NULL, b);
    }
    onnx_node(&g, "Flatten", b, NULL, "y");
    pbuf m = onnx_model(&g, 1, 2, 2);
    advex_model *md = NULL;
    ASSERT_OK(load_pb(&m, "chain.onnx", &md));
    ASSERT_EQ_INT(md->net->g.n_nodes, 100000);
    float x[8] = {-1, 2, -3, 4, 5, -6, 7, -8}, z[8], gx[8], w[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    ASSERT_OK(advex_model_forward(md, x, 2, z));
    for (int i = 0; i < 8; i++) ASSERT(z[i] == (x[i] > 0 ? x[i] : 0));
    ASSERT_OK(advex_model_vjp(md, x, 2, w, gx, NULL));
    for (int i = 0; i < 8; i++) ASSERT(gx[i] == (x[i] > 0 ? 1.0f : 0.0f));
    advex_model_free(md);
    /* one node more is refused before parsing */
    g = (pbuf){0};
    for (int i = 0; i < 100001; i++) onnx_node(&g, "Relu", "x", NULL, "r");
    m = onnx_model(&g, 1, 2, 2);
    ASSERT_STATUS(load_pb(&m, "big.onnx", &md), ADVEX_ERR_LIMIT);
    ASSERT_MSG(strstr(advex_last_error(), "big.onnx: a graph has more than 100000 nodes"), "%s", advex_last_error());
}

/* x -> Conv(1x1, weight 1) -> BatchNormalization(scale, B, mean, var) -> Relu -> Flatten. */
static pbuf bn_model(float scale, float var) {
    pbuf g = {0};
    int64_t w4[4] = {1, 1, 1, 1}, c1[1] = {1};
    float one = 1, zero = 0;
    onnx_init(&g, "w", w4, 4, &one, NULL, 1);
    onnx_init(&g, "bn.scale", c1, 1, &scale, NULL, 1);
    onnx_init(&g, "bn.bias", c1, 1, &zero, NULL, 1);
    onnx_init(&g, "bn.mean", c1, 1, &zero, NULL, 1);
    onnx_init(&g, "bn.var", c1, 1, &var, NULL, 1);
    onnx_node(&g, "Conv", "x", "w", "c");
    pbuf nd = {0};
    const char *in[] = {"c", "bn.scale", "bn.bias", "bn.mean", "bn.var"};
    for (int i = 0; i < 5; i++) pb_str(&nd, 1, in[i]);
    pb_str(&nd, 2, "b");
    pb_str(&nd, 3, "bn1");
    pb_str(&nd, 4, "BatchNormalization");
    pb_sub(&g, 1, &nd);
    onnx_node(&g, "Relu", "b", NULL, "r");
    onnx_node(&g, "Flatten", "r", NULL, "y");
    return onnx_model(&g, 1, 2, 2);
}

/* A negative running variance made scale / sqrt(var + eps) NaN; the Relu after it turned
 * the NaN into 0, so predict printed finite, wrong logits and exited 0. Refused at load
 * now, naming the node and the tensor; so is a scale that overflows. */
TEST(batchnorm_bad_statistics_refused) {
    advex_model *md = NULL;
    pbuf m = bn_model(1.0f, -0.5f);
    ASSERT_STATUS(load_pb(&m, "bn.onnx", &md), ADVEX_ERR_NUMERIC);
    ASSERT_MSG(strstr(advex_last_error(), "bn.onnx: node 'bn1' (BatchNormalization): variance 'bn.var' element 0 is -0.5"),
               "%s", advex_last_error());
    m = bn_model(3e38f, 1e-30f);
    ASSERT_STATUS(load_pb(&m, "bn.onnx", &md), ADVEX_ERR_NUMERIC);
    ASSERT_MSG(strstr(advex_last_error(), "scale 'bn.scale' / sqrt(var + epsilon) overflows"), "%s", advex_last_error());
    m = bn_model(2.0f, 4.0f); /* a sane one loads: y = relu(2 x / sqrt(4 + 1e-5)) */
    ASSERT_OK(load_pb(&m, "bn.onnx", &md));
    float x[4] = {0.5f, 1, 0, 0.25f}, z[4];
    ASSERT_OK(advex_model_forward(md, x, 1, z));
    ASSERT_NEAR(z[1], 1.0, 1e-5);
    advex_model_free(md);
}

/* A checkpoint whose weights are NaN but whose crc32 matches (a checksum proves no sanity)
 * resumed into "training diverged: loss is nan"; it is reported as a corrupt checkpoint. */
TEST(nan_checkpoint_is_corrupt) {
    advex_dataset d = {0};
    d.n = 20; d.c = 1; d.h = 28; d.w = 28; d.num_classes = 10;
    d.x = calloc(20 * 784, sizeof(float));
    d.y = calloc(20, sizeof(int32_t));
    ASSERT(d.x && d.y);
    for (int i = 0; i < 20; i++) d.y[i] = i % 10;
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 0, &m));
    advex_train_config c;
    advex_train_config_default(&c);
    c.epochs = 1;
    c.batch = 10;
    c.checkpoint = tmp_path("nan.ckpt");
    ASSERT_OK(advex_train(m, &d, &c, NULL, NULL));
    FILE *f = fopen(c.checkpoint, "r+b");
    ASSERT(f);
    ASSERT(fseek(f, 0, SEEK_END) == 0);
    long len = ftell(f);
    unsigned char *b = malloc((size_t)len);
    rewind(f);
    ASSERT(fread(b, 1, (size_t)len, f) == (size_t)len);
    float nan = NAN;
    memcpy(b + 168 + 16 * c.epochs + 4 * 7, &nan, 4); /* header, history, then weight 7 */
    uint32_t crc = (uint32_t)crc32(0, b, (uInt)(len - 4));
    memcpy(b + len - 4, &crc, 4);
    rewind(f);
    ASSERT(fwrite(b, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    free(b);
    c.resume = 1;
    advex_status st = advex_train(m, &d, &c, NULL, NULL);
    advex_model_free(m);
    advex_dataset_free(&d);
    ASSERT_MSG(st == ADVEX_ERR_FORMAT && strstr(advex_last_error(), "nan.ckpt: corrupt checkpoint: weights element 7 is nan"),
               "%s: %s", advex_status_str(st), advex_last_error());
}

static int ends_with(const char *s, const char *end) {
    size_t a = strlen(s), b = strlen(end);
    return a >= b && strcmp(s + a - b, end) == 0;
}

/* The error detail was cut at 1 KiB, so a long path lost the reason. Paths up to PATH_MAX
 * fit whole now, and a longer message loses its middle, never its end. */
TEST(long_path_keeps_the_reason) {
    char *p = malloc(30000);
    ASSERT(p);
    for (size_t len = 3000; len < 30000; len += 20000) {
        snprintf(p, 30000, "%s/", advex_test_tmpdir());
        size_t n = strlen(p);
        while (n < len) { p[n] = (n % 100 == 99) ? '/' : 'a'; n++; }
        memcpy(p + n, "/x.npy", 7);
        float *x = NULL;
        int nd;
        int64_t dims[6];
        ASSERT(advex_npy_load_f32(p, &x, &nd, dims) != ADVEX_OK);
        const char *e = advex_last_error();
        ASSERT_MSG(ends_with(e, ": No such file or directory") || ends_with(e, ": File name too long"), "%.80s...%s",
                   e, strlen(e) > 80 ? e + strlen(e) - 80 : "");
        ASSERT(strncmp(e, p, 200) == 0); /* the path's start is there too */
        if (len < 4096) ASSERT(strstr(e, p) == e); /* whole */
    }
    /* a long prefix (the model file) in front of a detail */
    memset(p, 'b', 20000);
    p[20000] = '\0';
    advex_model *m = NULL;
    ASSERT(advex_model_load_onnx_buffer("garbage", 7, p, &m) == ADVEX_ERR_FORMAT);
    ASSERT_MSG(strncmp(advex_last_error(), "bbbb", 4) == 0 &&
                   ends_with(advex_last_error(), ": not a valid ONNX model (protobuf wire type 7)"),
               "%.100s", advex_last_error());
    free(p);
}

/* ---- PNG --------------------------------------------------------------------------------- */

static void be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* Append a chunk; `claim` (when nonzero) is written as its length instead of n. */
static void png_chunk(pbuf *b, const char *type, const void *d, size_t n, uint32_t claim) {
    unsigned char h[8];
    be32(h, claim ? claim : (uint32_t)n);
    memcpy(h + 4, type, 4);
    pb_raw(b, h, 8);
    if (n) pb_raw(b, d, n);
    uLong crc = crc32(crc32(0, (const Bytef *)type, 4), d, (uInt)n);
    be32(h, (uint32_t)crc);
    pb_raw(b, h, 4);
}

/* A w x h PNG of the given depth and colour type from filtered rows `raw`; `mid` (may be
 * NULL) is called between IHDR and IDAT to add chunks. */
static pbuf png_file(uint32_t w, uint32_t h, int depth, int ctype, const unsigned char *raw, size_t rawlen,
                     void (*mid)(pbuf *)) {
    pbuf b = {0};
    unsigned char ihdr[13] = {0};
    be32(ihdr, w);
    be32(ihdr + 4, h);
    ihdr[8] = (unsigned char)depth;
    ihdr[9] = (unsigned char)ctype;
    pb_raw(&b, "\x89PNG\r\n\x1a\n", 8);
    png_chunk(&b, "IHDR", ihdr, 13, 0);
    if (mid) mid(&b);
    uLongf zl = compressBound((uLong)rawlen);
    unsigned char *z = malloc(zl);
    compress(z, &zl, raw, (uLong)rawlen);
    png_chunk(&b, "IDAT", z, zl, 0);
    free(z);
    png_chunk(&b, "IEND", NULL, 0, 0);
    return b;
}

/* 16-bit samples went through the simplified API's linear-to-sRGB conversion: 0x8000 read
 * as 0.737 instead of 0.50001. Now every depth reads exactly v / (2^depth - 1). */
TEST(png_16bit_exact) {
    float *x = NULL;
    int64_t c, h, w;
    const uint16_t v[4] = {0x8000, 0x4000, 0x1234, 0xfffe};
    unsigned char grey[9] = {0}, rgb[13] = {0}, rgba[17] = {0};
    for (int i = 0; i < 4; i++) { grey[1 + 2 * i] = (unsigned char)(v[i] >> 8); grey[2 + 2 * i] = (unsigned char)v[i]; }
    pbuf b = png_file(4, 1, 16, 0, grey, sizeof grey, NULL);
    ASSERT_OK(advex_png_decode(b.p, b.n, &x, &c, &h, &w));
    free(b.p);
    ASSERT_EQ_INT(c, 1);
    for (int i = 0; i < 4; i++) ASSERT_NEAR(x[i], v[i] / 65535.0, 1e-7);
    free(x);
    /* 2 pixels RGB16: (v0, v1, v2), (v3, v0, v1) */
    for (int i = 0; i < 6; i++) { rgb[1 + 2 * i] = (unsigned char)(v[i % 4] >> 8); rgb[2 + 2 * i] = (unsigned char)v[i % 4]; }
    b = png_file(2, 1, 16, 2, rgb, sizeof rgb, NULL);
    ASSERT_OK(advex_png_decode(b.p, b.n, &x, &c, &h, &w));
    free(b.p);
    ASSERT_EQ_INT(c, 3);
    ASSERT_NEAR(x[0], v[0] / 65535.0, 1e-7); /* R of pixel 0 */
    ASSERT_NEAR(x[1], v[3] / 65535.0, 1e-7); /* R of pixel 1 */
    ASSERT_NEAR(x[2 + 1], v[0] / 65535.0, 1e-7); /* G of pixel 1 */
    free(x);
    /* RGBA16: opaque pixel exact, half-transparent black over white = 1 - a */
    const uint16_t px[8] = {0x1234, 0x4000, 0x8000, 0xffff, 0, 0, 0, 0x8000};
    for (int i = 0; i < 8; i++) { rgba[1 + 2 * i] = (unsigned char)(px[i] >> 8); rgba[2 + 2 * i] = (unsigned char)px[i]; }
    b = png_file(2, 1, 16, 6, rgba, sizeof rgba, NULL);
    ASSERT_OK(advex_png_decode(b.p, b.n, &x, &c, &h, &w));
    free(b.p);
    ASSERT_NEAR(x[0], 0x1234 / 65535.0, 1e-7);
    ASSERT_NEAR(x[4], 0x8000 / 65535.0, 1e-7);
    ASSERT_NEAR(x[1], 1.0 - 0x8000 / 65535.0, 1e-6);
    free(x);
}

static void mid_text_claim(pbuf *b) { png_chunk(b, "tEXt", "k\0vvvv", 6, 0x7fffff00u); }
static void mid_texts(pbuf *b) {
    unsigned char *big = calloc(1, 3u << 20);
    unsigned long zl = compressBound(3u << 20);
    unsigned char *z = malloc(zl + 4);
    memcpy(z, "k\0\0", 3); /* keyword, NUL, compression method 0 */
    compress(z + 3, &zl, big, 3u << 20);
    for (int i = 0; i < 4; i++) png_chunk(b, "zTXt", z, zl + 3, 0);
    memcpy(big, "comment\0", 8);
    png_chunk(b, "tEXt", big, 2u << 20, 0); /* an honest 2 MiB text */
    png_chunk(b, "iTXt", "k\0\0\0\0\0text", 10, 0);
    free(big);
    free(z);
}

static long max_rss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A tEXt chunk claiming 2 GiB in a 100-byte file cost 2 GiB (libpng zeroes the buffer it
 * reads the chunk into). Text chunks are skipped unread now: the file is just truncated. */
TEST(png_text_chunks_cost_nothing) {
    unsigned char raw[3] = {0, 10, 20};
    float *x = NULL;
    int64_t c, h, w;
    long before = max_rss_kib();
    pbuf b = png_file(2, 1, 8, 0, raw, sizeof raw, mid_text_claim);
    advex_status st = advex_png_decode(b.p, b.n, &x, &c, &h, &w);
    free(b.p);
    ASSERT_MSG(st == ADVEX_ERR_FORMAT && strstr(advex_last_error(), "PNG: not a readable PNG: truncated PNG data"), "%s",
               advex_last_error());
    ASSERT_MSG(max_rss_kib() - before < (256 << 10), "peak memory grew by %ld KiB", max_rss_kib() - before);
    /* zTXt bombs, a large honest tEXt and an iTXt: skipped, the pixels decode */
    b = png_file(2, 1, 8, 0, raw, sizeof raw, mid_texts);
    ASSERT_OK(advex_png_decode(b.p, b.n, &x, &c, &h, &w));
    free(b.p);
    ASSERT(c == 1 && h == 1 && w == 2);
    ASSERT_NEAR(x[1], 20 / 255.0, 1e-7);
    free(x);
}

/* The atomic writers renamed their temporary over whatever the path named: as root that
 * replaced a device node (/dev/sda) by a regular file. Anything that exists and is not a
 * regular file is refused now, except the null device, which is written through. */
TEST(writers_refuse_non_regular_outputs) {
    const char *fifo = tmp_path("out.fifo"), *dir = tmp_path("out.dir");
    ASSERT(mkfifo(fifo, 0600) == 0);
    ASSERT(mkdir(dir, 0700) == 0);
    float x[4] = {0, 0.25f, 0.5f, 1};
    int64_t dims[2] = {2, 2};
    const char *paths[2] = {fifo, dir};
    for (int i = 0; i < 2; i++) {
        ASSERT_STATUS(advex_npy_save_f32(paths[i], x, 2, dims), ADVEX_ERR_ARG);
        ASSERT_MSG(strstr(advex_last_error(), "exists and is not a regular file"), "%s", advex_last_error());
        ASSERT_STATUS(advex_png_write(paths[i], x, 1, 2, 2), ADVEX_ERR_ARG);
    }
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 0, &m));
    ASSERT_STATUS(advex_model_save_onnx(m, fifo), ADVEX_ERR_ARG);
    struct stat sb;
    ASSERT(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    ASSERT(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
    /* /dev/null: written through, still the device afterwards, no temporary in /dev */
    ASSERT_OK(advex_npy_save_f32("/dev/null", x, 2, dims));
    ASSERT_OK(advex_model_save_onnx(m, "/dev/null"));
    advex_model_free(m);
    ASSERT(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
    ASSERT(system("ls -a /dev | grep -q 'null\\.tmp'") != 0);
}

/* ---- data sets ------------------------------------------------------------------------- */

#define ASSERT_ERR_HAS(needle) \
    ASSERT_MSG(strstr(advex_last_error(), needle) != NULL, "error '%s' lacks '%s'", advex_last_error(), needle)

/* An IDX header (magic, dims) followed by n bytes of data; returns the size. */
static size_t make_idx(unsigned char *buf, uint32_t magic, int ndim, const uint32_t *dims, const unsigned char *data,
                       size_t n) {
    uint32_t words[4] = {magic, 0, 0, 0};
    for (int i = 0; i < ndim; i++) words[1 + i] = dims[i];
    for (int i = 0; i <= ndim; i++) be32(buf + 4 * i, words[i]);
    if (n) memcpy(buf + 4 * (ndim + 1), data, n);
    return 4 * (size_t)(ndim + 1) + n;
}

static int write_gz(const char *path, const void *data, size_t n) {
    gzFile g = gzopen(path, "wb");
    if (!g) return 0;
    int w = gzwrite(g, data, (unsigned)n);
    return gzclose(g) == Z_OK && (size_t)w == n;
}

/* $ADVEX_DATA naming a missing directory (or one without the files) fell back to the
 * system copy without a word: the user got other data than they asked for. */
TEST(dataset_env_dir_missing) {
    advex_dataset ds;
    ASSERT(setenv("ADVEX_DATA", tmp_path("not-there"), 1) == 0);
    advex_status s = advex_dataset_load("fashion-mnist:test", NULL, 10, &ds);
    unsetenv("ADVEX_DATA");
    ASSERT_STATUS(s, ADVEX_ERR_IO);
    ASSERT_ERR_HAS("$ADVEX_DATA is '");
    ASSERT_ERR_HAS("not-there': No such file or directory");
    ASSERT(mkdir(tmp_path("env-empty"), 0755) == 0);
    ASSERT(setenv("ADVEX_DATA", tmp_path("env-empty"), 1) == 0);
    s = advex_dataset_load("fashion-mnist:test", NULL, 10, &ds);
    unsetenv("ADVEX_DATA");
    ASSERT_STATUS(s, ADVEX_ERR_IO);
    ASSERT_ERR_HAS("env-empty ($ADVEX_DATA)");
}

/* An IDX image file of n 28x28 images (header) whose gzip stream holds `good` images of
 * data and then garbage: inflating past those fails. */
static void write_bomb(const char *path, uint32_t n, uint32_t h, uint32_t w, int good) {
    unsigned char hdr[16] = {0};
    const uint32_t d[3] = {n, h, w};
    make_idx(hdr, 0x803, 3, d, NULL, 0);
    size_t body = (size_t)good * h * w;
    unsigned char *data = calloc(1, 16 + body);
    memcpy(data, hdr, 16);
    for (size_t i = 0; i < body; i++) data[16 + i] = (unsigned char)(i % 251);
    unsigned char *z = malloc(4096);
    gzFile g = gzopen(path, "wb");
    gzwrite(g, data, (unsigned)(16 + body));
    gzflush(g, Z_FULL_FLUSH);
    gzclose(g);
    FILE *f = fopen(path, "ab"); /* garbage where the rest of the deflate stream should be */
    memset(z, 0xff, 4096);
    fwrite(z, 1, 4096, f);
    fclose(f);
    free(z);
    free(data);
}

/* A gzip IDX file was inflated whole before its header was compared with anything: a
 * bomb behind the first images cost time and memory even with --limit, a 32x32 file for a
 * 28x28 model was read to the end before the mismatch. Headers first now: the image size
 * against the consumer, the count against the labels, the size of what is kept against the
 * memory cap and the machine; only the first `limit` images are inflated. */
TEST(idx_header_checked_before_inflating) {
    const char *xb = tmp_path("bomb-images.gz"), *yl = tmp_path("bomb-labels.gz");
    unsigned char lb[1024 + 8];
    unsigned char l[1024];
    for (int i = 0; i < 1024; i++) l[i] = (unsigned char)(i % 10);
    const uint32_t dl[1] = {1024};
    size_t nl = make_idx(lb, 0x801, 1, dl, l, 1024);
    ASSERT(write_gz(yl, lb, nl));
    write_bomb(xb, 1024, 28, 28, 10); /* 10 good images, then a corrupt stream */
    char spec[1200];
    snprintf(spec, sizeof spec, "idx:%s,%s", xb, yl);
    advex_dataset ds;
    advex_data_expect want = {1, 28, 28, 10};
    ASSERT_OK(advex_dataset_load_expect(spec, NULL, NULL, 10, &want, &ds));
    ASSERT_EQ_INT(ds.n, 10);
    ASSERT_EQ_INT(ds.num_classes, 10); /* labels still counted over the whole file */
    ASSERT_NEAR(ds.x[783], (783 % 251) / 255.0, 1e-7);
    advex_dataset_free(&ds);
    ASSERT_STATUS(advex_dataset_load_expect(spec, NULL, NULL, 11, &want, &ds), ADVEX_ERR_FORMAT); /* the 11th is bad */
    ASSERT_ERR_HAS("bomb-images.gz: truncated");
    /* a 32x32 file for a 28x28 model: refused from its header, naming the file */
    write_bomb(xb, 1024, 32, 32, 0);
    ASSERT_STATUS(advex_dataset_load_expect(spec, NULL, NULL, 0, &want, &ds), ADVEX_ERR_SHAPE);
    ASSERT_ERR_HAS("bomb-images.gz: images are 1x32x32 but the model expects 1x28x28");
    /* the count against the labels' header */
    write_bomb(xb, 1000000, 28, 28, 0);
    ASSERT_STATUS(advex_dataset_load_expect(spec, NULL, NULL, 0, &want, &ds), ADVEX_ERR_SHAPE);
    ASSERT_ERR_HAS("count mismatch");
    /* 10^8 images of 256x256 (26 TB as floats): more than any machine, and than the cap */
    write_bomb(xb, 100000000, 256, 256, 0);
    snprintf(spec, sizeof spec, "idx:%s", xb);
    ASSERT_STATUS(advex_dataset_load_expect(spec, NULL, NULL, 0, NULL, &ds), ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("bomb-images.gz: 100000000 examples need");
    ASSERT_ERR_HAS("more than this machine's memory");
    advex_set_memory_limit(1 << 20);
    write_bomb(xb, 1000, 28, 28, 0);
    advex_status st = advex_dataset_load_expect(spec, NULL, NULL, 0, NULL, &ds);
    advex_set_memory_limit(0);
    ASSERT_STATUS(st, ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("bomb-images.gz: memory limit: 1000 examples need 3.0 MiB");
}

/* Labels outside the consumer's classes and images of the wrong shape name the file. */
TEST(dataset_expect_names_the_file) {
    float x[2 * 4] = {0};
    int32_t y[2] = {1, 7};
    int64_t dx[4] = {2, 1, 2, 2};
    ASSERT_OK(advex_npy_save_f32(tmp_path("ex.npy"), x, 4, dx));
    ASSERT_OK(advex_npy_save_i32(tmp_path("ey.npy"), y, 2));
    char spec[1200];
    snprintf(spec, sizeof spec, "npy:%s,%s", tmp_path("ex.npy"), tmp_path("ey.npy"));
    advex_dataset ds;
    advex_data_expect want = {1, 2, 2, 5};
    ASSERT_STATUS(advex_dataset_load_expect(spec, NULL, NULL, 0, &want, &ds), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("ey.npy: label 7 of example 1 is outside the model's 5 classes");
    ASSERT_OK(advex_dataset_load_expect(spec, NULL, NULL, 1, &want, &ds)); /* only the kept ones count */
    advex_dataset_free(&ds);
    want.h = 3;
    ASSERT_STATUS(advex_dataset_load_expect(spec, NULL, NULL, 0, &want, &ds), ADVEX_ERR_SHAPE);
    ASSERT_ERR_HAS("ex.npy: images are 1x2x2 but the model expects 1x3x2");
}

TEST_MAIN(TEST_ENTRY(dataset_env_dir_missing), TEST_ENTRY(idx_header_checked_before_inflating),
          TEST_ENTRY(dataset_expect_names_the_file), TEST_ENTRY(writers_refuse_non_regular_outputs), TEST_ENTRY(png_16bit_exact), TEST_ENTRY(png_text_chunks_cost_nothing), TEST_ENTRY(long_path_keeps_the_reason), TEST_ENTRY(nan_checkpoint_is_corrupt), TEST_ENTRY(batchnorm_bad_statistics_refused), TEST_ENTRY(graph_of_100k_nodes), TEST_ENTRY(pb_encoder_model_loads), TEST_ENTRY(huge_input_refused), TEST_ENTRY(huge_activation_refused),
          TEST_ENTRY(nested_protobuf_refused), TEST_ENTRY(nested_protobuf_at_limit), TEST_ENTRY(wire_scan_malformed))
