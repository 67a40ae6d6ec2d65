/* ONNX import/export: bitwise round trips of the built-in architectures, parity with
 * PyTorch exports (tests/fixtures/onnx, made by tools/make_onnx_fixtures.py), the
 * Softmax cut-off, and clear errors (never crashes) on broken or hostile files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "onnx/onnx_internal.h"

static void fill_uniform(float *x, int64_t n, uint64_t seed) {
    advex_rng r;
    advex_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = advex_rng_uniform(&r);
}

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", advex_test_tmpdir(), name);
    return buf[k];
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); b = NULL; }
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* ---- round trips ----------------------------------------------------------------------- */

/* save -> load gives bitwise identical logits and the same parameter count. */
static void check_roundtrip(advex_model *a, const char *file, int64_t n) {
    const char *path = tmp_path(file);
    advex_model *b = NULL;
    int64_t chw[3], chw2[3];
    float *x = NULL, *la = NULL, *lb = NULL;
    ASSERT_OK(advex_model_save_onnx(a, path));
    ASSERT_OK(advex_model_load_onnx(path, &b));
    advex_model_input_shape(a, chw);
    advex_model_input_shape(b, chw2);
    for (int i = 0; i < 3; i++) ASSERT_EQ_INT(chw[i], chw2[i]);
    ASSERT_EQ_INT(advex_model_num_classes(a), advex_model_num_classes(b));
    ASSERT_EQ_INT(advex_model_num_params(a), advex_model_num_params(b));
    ASSERT_EQ_INT(advex_model_output_was_prob(b), 0);
    int64_t d = chw[0] * chw[1] * chw[2], c = advex_model_num_classes(a);
    x = malloc((size_t)(n * d) * sizeof *x);
    la = malloc((size_t)(n * c) * sizeof *la);
    lb = malloc((size_t)(n * c) * sizeof *lb);
    int ok = x && la && lb;
    if (ok) {
        fill_uniform(x, n * d, 42);
        ok = advex_model_forward(a, x, n, la) == ADVEX_OK && advex_model_forward(b, x, n, lb) == ADVEX_OK;
    }
    int same = ok && memcmp(la, lb, (size_t)(n * c) * sizeof *la) == 0;
    free(x);
    free(la);
    free(lb);
    advex_model_free(b);
    ASSERT_MSG(ok, "forward failed: %s", advex_last_error());
    ASSERT_MSG(same, "%s: logits differ after the round trip", file);
}

static void roundtrip_arch(const char *arch) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build(arch, 7, &m));
    char file[64];
    snprintf(file, sizeof file, "%s.onnx", arch);
    check_roundtrip(m, file, 5);
    advex_model_free(m);
}

TEST(roundtrip_small) { roundtrip_arch("small"); }
TEST(roundtrip_cnn) { roundtrip_arch("cnn"); }
TEST(roundtrip_resnet) { roundtrip_arch("resnet"); }
TEST(roundtrip_wide) { roundtrip_arch("wide"); }

/* An imported model (Softmax cut off, constants folded) exports and re-imports unchanged. */
TEST(roundtrip_imported) {
    const char *files[] = {"softmax_torch.onnx", "mixed_torch_op9.onnx", "mixed_torch_op13.onnx",
                           "handmade_op11.onnx"};
    for (int i = 0; i < 4; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tests/fixtures/onnx/%s", files[i]);
        advex_model *m = NULL;
        ASSERT_OK(advex_model_load_onnx(advex_test_src(rel), &m));
        check_roundtrip(m, files[i], 3);
        advex_model_free(m);
        if (advex_test_failed_flag) return;
    }
}

/* ---- PyTorch parity --------------------------------------------------------------------- */

static void check_torch(const char *onnx_file, const char *x_file, const char *logits_file, int want_prob,
                        int64_t want_params) {
    char rel[3][128];
    snprintf(rel[0], sizeof rel[0], "tests/fixtures/onnx/%s", onnx_file);
    snprintf(rel[1], sizeof rel[1], "tests/fixtures/onnx/%s", x_file);
    snprintf(rel[2], sizeof rel[2], "tests/fixtures/onnx/%s", logits_file);
    advex_model *m = NULL;
    float *x = NULL, *want = NULL;
    int nd1, nd2;
    int64_t d1[6], d2[6];
    ASSERT_OK(advex_npy_load_f32(advex_test_src(rel[1]), &x, &nd1, d1));
    advex_status st = advex_npy_load_f32(advex_test_src(rel[2]), &want, &nd2, d2);
    if (st == ADVEX_OK) st = advex_model_load_onnx(advex_test_src(rel[0]), &m);
    float *got = NULL;
    int ok = 0;
    if (st == ADVEX_OK && nd1 == 4 && nd2 == 2) {
        got = malloc((size_t)(d2[0] * d2[1]) * sizeof *got);
        ok = got && advex_model_forward(m, x, d1[0], got) == ADVEX_OK;
    }
    double worst = 0;
    if (ok) {
        for (int64_t i = 0; i < d2[0] * d2[1]; i++) {
            double e = fabs((double)got[i] - want[i]) / (1.0 + fabs(want[i]));
            if (e > worst) worst = e;
        }
    }
    int prob = m ? advex_model_output_was_prob(m) : -1;
    int64_t classes = m ? advex_model_num_classes(m) : -1, params = m ? advex_model_num_params(m) : -1;
    free(x);
    free(want);
    free(got);
    advex_model_free(m);
    ASSERT_OK(st);
    ASSERT_MSG(ok, "%s: forward failed: %s", onnx_file, advex_last_error());
    ASSERT_EQ_INT(classes, d2[1]);
    ASSERT_EQ_INT(prob, want_prob);
    if (want_params > 0) ASSERT_EQ_INT(params, want_params);
    ASSERT_MSG(worst <= 1e-4, "%s: logits differ from PyTorch's by %.3g (relative)", onnx_file, worst);
}

TEST(torch_small) { check_torch("small_torch.onnx", "small_x.npy", "small_logits.npy", 0, 166406); }
TEST(torch_view_chain) { check_torch("view_torch.onnx", "small_x.npy", "view_logits.npy", 0, -1); }
TEST(torch_softmax_cut) { check_torch("softmax_torch.onnx", "small_x.npy", "softmax_logits.npy", 1, -1); }
TEST(torch_mixed_opset13) { check_torch("mixed_torch_op13.onnx", "mixed_x.npy", "mixed_logits.npy", 0, -1); }
TEST(torch_mixed_opset9) { check_torch("mixed_torch_op9.onnx", "mixed_x.npy", "mixed_logits.npy", 0, -1); }
/* auto_pad SAME_UPPER/SAME_LOWER/VALID, Clip bounds as inputs, (Un)Squeeze/Cast at run time */
TEST(handmade_opset11) { check_torch("handmade_op11.onnx", "handmade_x.npy", "handmade_logits.npy", 0, -1); }

/* Parameter roles: conv/linear weights and BatchNorm affine trainable, normalisation
 * constants and running statistics not. */
TEST(value_kinds) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/onnx/mixed_torch_op13.onnx"), &m));
    int kinds[8] = {0};
    const char *names[] = {"c1.weight", "bn.weight", "bn.running_mean", "mean", "std", "fc.bias"};
    const advex_value_kind want[] = {ADVEX_VAL_PARAM, ADVEX_VAL_PARAM, ADVEX_VAL_STATE, ADVEX_VAL_CONST,
                                     ADVEX_VAL_CONST, ADVEX_VAL_PARAM};
    for (int i = 0; i < 6; i++) {
        int v = advex_graph_find_value(&m->net->g, names[i]);
        kinds[i] = v >= 0 ? (int)m->net->g.vals[v].kind : -1;
    }
    /* (8*3*3*... ) conv 6*3*3*3+6, c2 4*6*3*3, c3 4*3+4, bn 6+6, fc 7*200+7 */
    int64_t params = advex_model_num_params(m);
    advex_model_free(m);
    for (int i = 0; i < 6; i++) ASSERT_MSG(kinds[i] == (int)want[i], "%s: kind %d, want %d", names[i], kinds[i], want[i]);
    ASSERT_EQ_INT(params, 6 * 27 + 6 + 4 * 54 + 4 * 3 + 4 + 12 + 7 * 200 + 7);
}

TEST(load_from_buffer) {
    size_t n;
    unsigned char *b = read_file(advex_test_src("tests/fixtures/onnx/view_torch.onnx"), &n);
    ASSERT(b != NULL);
    advex_model *m = NULL;
    advex_status st = advex_model_load_onnx_buffer(b, n, "mem.onnx", &m);
    free(b);
    ASSERT_OK(st);
    ASSERT_EQ_INT(advex_model_num_classes(m), 10);
    advex_model_free(m);
}

/* ---- errors ----------------------------------------------------------------------------- */

/* Load must fail with `want`, leave *out NULL, and name the file (and `needle`). */
static void expect_fail(const char *path, advex_status want, const char *needle, const char *needle2) {
    advex_model *m = (advex_model *)&m; /* must be overwritten with NULL */
    advex_status st = advex_model_load_onnx(path, &m);
    if (st == ADVEX_OK) advex_model_free(m);
    ASSERT_STATUS(st, want);
    ASSERT(m == NULL);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    ASSERT_MSG(strstr(advex_last_error(), base) != NULL, "message does not name the file: %s", advex_last_error());
    if (needle) ASSERT_MSG(strstr(advex_last_error(), needle) != NULL, "no '%s' in: %s", needle, advex_last_error());
    if (needle2) ASSERT_MSG(strstr(advex_last_error(), needle2) != NULL, "no '%s' in: %s", needle2, advex_last_error());
}

TEST(error_missing_file) { expect_fail(tmp_path("no_such_model.onnx"), ADVEX_ERR_IO, "No such file", NULL); }

TEST(error_empty_file) {
    const char *p = tmp_path("empty.onnx");
    ASSERT(write_file(p, "", 0) == 0);
    expect_fail(p, ADVEX_ERR_FORMAT, "empty", NULL);
}

TEST(error_truncated) {
    size_t n;
    unsigned char *b = read_file(advex_test_src("tests/fixtures/onnx/small_torch.onnx"), &n);
    ASSERT(b != NULL);
    const char *p = tmp_path("truncated.onnx");
    int w = write_file(p, b, n / 2);
    free(b);
    ASSERT(w == 0);
    expect_fail(p, ADVEX_ERR_FORMAT, "not a valid ONNX model", NULL);
}

TEST(error_random_bytes) {
    unsigned char b[4096];
    advex_rng r;
    advex_rng_seed(&r, 99);
    for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)advex_rng_u64(&r);
    const char *p = tmp_path("random.onnx");
    ASSERT(write_file(p, b, sizeof b) == 0);
    expect_fail(p, ADVEX_ERR_FORMAT, "not a valid ONNX model", NULL);
}

TEST(error_unsupported_nodes_all_named) {
    expect_fail(advex_test_src("tests/fixtures/onnx/unsupported.onnx"), ADVEX_ERR_UNSUPPORTED, "'n3' (Resize",
                "'n7' (Pad mode=reflect)");
    ASSERT(strstr(advex_last_error(), "2 unsupported nodes") != NULL);
}

TEST(error_missing_initializer) {
    expect_fail(advex_test_src("tests/fixtures/onnx/missing_init.onnx"), ADVEX_ERR_FORMAT, "b_missing", NULL);
}

TEST(error_cycle) { expect_fail(advex_test_src("tests/fixtures/onnx/cycle.onnx"), ADVEX_ERR_FORMAT, "cycle", NULL); }

TEST(save_errors_leave_nothing) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 1, &m));
    const char *p = tmp_path("no_such_dir/model.onnx");
    advex_status st = advex_model_save_onnx(m, p);
    ASSERT_STATUS(st, ADVEX_ERR_IO);
    ASSERT(strstr(advex_last_error(), "no_such_dir/model.onnx") != NULL);
    /* overwriting an existing file replaces it whole; no temporaries stay behind */
    const char *q = tmp_path("replace.onnx");
    ASSERT(write_file(q, "old", 3) == 0);
    ASSERT_OK(advex_model_save_onnx(m, q));
    advex_model_free(m);
    m = NULL;
    ASSERT_OK(advex_model_load_onnx(q, &m));
    advex_model_free(m);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", advex_test_tmpdir());
    ASSERT_MSG(system(cmd) != 0, "a temporary file was left in %s", advex_test_tmpdir());
}

/* ---- hostile files built field by field --------------------------------------------------- */

/* input (N,1,4,4) -> Flatten -> Gemm(W (3,16), b (3), transB=1) -> logits */
typedef struct tiny {
    Onnx__ModelProto mp;
    Onnx__GraphProto gp;
    Onnx__OperatorSetIdProto os, *osp[1];
    Onnx__NodeProto n[2], *np[2];
    Onnx__TensorProto w, b, *ip[2];
    float wd[48], bd[3];
    int64_t wdims[3], bdims[1];
    Onnx__ValueInfoProto in, out, *inp[1], *outp[1];
    Onnx__TypeProto tp;
    Onnx__TypeProto__Tensor tt;
    Onnx__TensorShapeProto sp;
    Onnx__TensorShapeProto__Dimension d[4], *dp[4];
    char *n0_in[1], *n0_out[1], *n1_in[3], *n1_out[1];
    Onnx__AttributeProto at, *atp[1];
} tiny;

static void tiny_init(tiny *t) {
    memset(t, 0, sizeof *t);
    onnx__model_proto__init(&t->mp);
    onnx__graph_proto__init(&t->gp);
    onnx__operator_set_id_proto__init(&t->os);
    t->os.domain = "";
    t->os.has_version = 1;
    t->os.version = 13;
    t->osp[0] = &t->os;
    t->mp.has_ir_version = 1;
    t->mp.ir_version = 7;
    t->mp.n_opset_import = 1;
    t->mp.opset_import = t->osp;
    t->mp.graph = &t->gp;
    for (int i = 0; i < 48; i++) t->wd[i] = (float)(i % 7) * 0.25f - 0.5f;
    for (int i = 0; i < 3; i++) t->bd[i] = (float)i;
    t->wdims[0] = 3;
    t->wdims[1] = 16;
    t->bdims[0] = 3;
    Onnx__TensorProto *ts[2] = {&t->w, &t->b};
    for (int i = 0; i < 2; i++) {
        onnx__tensor_proto__init(ts[i]);
        ts[i]->has_data_type = 1;
        ts[i]->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->ip[i] = ts[i];
    }
    t->w.name = "W";
    t->w.n_dims = 2;
    t->w.dims = t->wdims;
    t->w.n_float_data = 48;
    t->w.float_data = t->wd;
    t->b.name = "B";
    t->b.n_dims = 1;
    t->b.dims = t->bdims;
    t->b.n_float_data = 3;
    t->b.float_data = t->bd;
    t->gp.n_initializer = 2;
    t->gp.initializer = t->ip;
    for (int i = 0; i < 2; i++) {
        onnx__node_proto__init(&t->n[i]);
        t->np[i] = &t->n[i];
    }
    t->n0_in[0] = "x";
    t->n0_out[0] = "flat";
    t->n[0].op_type = "Flatten";
    t->n[0].name = "flatten";
    t->n[0].n_input = 1;
    t->n[0].input = t->n0_in;
    t->n[0].n_output = 1;
    t->n[0].output = t->n0_out;
    t->n1_in[0] = "flat";
    t->n1_in[1] = "W";
    t->n1_in[2] = "B";
    t->n1_out[0] = "y";
    t->n[1].op_type = "Gemm";
    t->n[1].name = "fc";
    t->n[1].n_input = 3;
    t->n[1].input = t->n1_in;
    t->n[1].n_output = 1;
    t->n[1].output = t->n1_out;
    onnx__attribute_proto__init(&t->at);
    t->at.name = "transB";
    t->at.has_type = 1;
    t->at.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    t->at.has_i = 1;
    t->at.i = 1;
    t->atp[0] = &t->at;
    t->n[1].n_attribute = 1;
    t->n[1].attribute = t->atp;
    t->gp.n_node = 2;
    t->gp.node = t->np;
    onnx__value_info_proto__init(&t->in);
    onnx__value_info_proto__init(&t->out);
    onnx__type_proto__init(&t->tp);
    onnx__type_proto__tensor__init(&t->tt);
    onnx__tensor_shape_proto__init(&t->sp);
    for (int i = 0; i < 4; i++) {
        onnx__tensor_shape_proto__dimension__init(&t->d[i]);
        t->d[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        t->d[i].dim_value = i == 1 ? 1 : 4;
        t->dp[i] = &t->d[i];
    }
    t->d[0].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    t->d[0].dim_param = "batch";
    t->sp.n_dim = 4;
    t->sp.dim = t->dp;
    t->tt.has_elem_type = 1;
    t->tt.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->tt.shape = &t->sp;
    t->tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tp.tensor_type = &t->tt;
    t->in.name = "x";
    t->in.type = &t->tp;
    t->inp[0] = &t->in;
    t->out.name = "y";
    t->outp[0] = &t->out;
    t->gp.n_input = 1;
    t->gp.input = t->inp;
    t->gp.n_output = 1;
    t->gp.output = t->outp;
}

static advex_status tiny_load(const tiny *t, advex_model **m) {
    size_t n = onnx__model_proto__get_packed_size(&t->mp);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return ADVEX_ERR_NOMEM;
    onnx__model_proto__pack(&t->mp, buf);
    advex_status st = advex_model_load_onnx_buffer(buf, n, "tiny.onnx", m);
    free(buf);
    return st;
}

static void expect_tiny(const tiny *t, advex_status want, const char *needle) {
    advex_model *m = NULL;
    advex_status st = tiny_load(t, &m);
    if (st == ADVEX_OK) advex_model_free(m);
    ASSERT_STATUS(st, want);
    ASSERT_MSG(strstr(advex_last_error(), "tiny.onnx") != NULL, "no file name in: %s", advex_last_error());
    if (needle) ASSERT_MSG(strstr(advex_last_error(), needle) != NULL, "no '%s' in: %s", needle, advex_last_error());
}

TEST(tiny_valid) {
    tiny t;
    tiny_init(&t);
    advex_model *m = NULL;
    ASSERT_OK(tiny_load(&t, &m));
    float x[2 * 16], y[2 * 3];
    fill_uniform(x, 32, 5);
    advex_status st = advex_model_forward(m, x, 2, y);
    advex_model_free(m);
    ASSERT_OK(st);
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 3; j++) {
            double s = t.bd[j];
            for (int k = 0; k < 16; k++) s += (double)t.wd[j * 16 + k] * x[n * 16 + k];
            ASSERT_NEAR(y[n * 3 + j], s, 1e-5);
        }
}

TEST(tiny_hostile_tensors) {
    tiny t;
    tiny_init(&t);
    t.wdims[0] = -3;
    expect_tiny(&t, ADVEX_ERR_FORMAT, "negative");
    tiny_init(&t);
    t.w.n_dims = 3;
    t.wdims[0] = (int64_t)1 << 40;
    t.wdims[1] = (int64_t)1 << 40;
    t.wdims[2] = 1;
    expect_tiny(&t, ADVEX_ERR_LIMIT, "'W'");
    tiny_init(&t);
    t.w.n_float_data = 47;
    expect_tiny(&t, ADVEX_ERR_FORMAT, "'W'");
    tiny_init(&t);
    t.w.n_float_data = 0;
    t.w.has_raw_data = 1;
    t.w.raw_data.data = (uint8_t *)t.wd;
    t.w.raw_data.len = 48 * 4 - 1;
    expect_tiny(&t, ADVEX_ERR_FORMAT, "raw data");
    tiny_init(&t);
    t.w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__STRING;
    expect_tiny(&t, ADVEX_ERR_UNSUPPORTED, "'W'");
    tiny_init(&t);
    t.wdims[1] = 15; /* consistent tensor, wrong shape for the Gemm */
    t.w.n_float_data = 45;
    expect_tiny(&t, ADVEX_ERR_SHAPE, NULL);
}

TEST(tiny_hostile_graph) {
    tiny t;
    tiny_init(&t);
    t.os.version = 19;
    expect_tiny(&t, ADVEX_ERR_UNSUPPORTED, "opset 19");
    tiny_init(&t);
    t.os.version = 6;
    expect_tiny(&t, ADVEX_ERR_UNSUPPORTED, "opset 6");
    tiny_init(&t);
    t.mp.n_opset_import = 0;
    expect_tiny(&t, ADVEX_ERR_FORMAT, "opset");
    tiny_init(&t);
    t.sp.n_dim = 3;
    expect_tiny(&t, ADVEX_ERR_UNSUPPORTED, "4-D");
    tiny_init(&t);
    t.d[2].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    t.d[2].dim_param = "H";
    expect_tiny(&t, ADVEX_ERR_UNSUPPORTED, "fixed");
    tiny_init(&t);
    t.n1_in[2] = "nowhere";
    expect_tiny(&t, ADVEX_ERR_FORMAT, "'nowhere'");
    tiny_init(&t);
    t.n[1].op_type = "";
    expect_tiny(&t, ADVEX_ERR_FORMAT, "op type");
    tiny_init(&t);
    t.n1_out[0] = "";
    expect_tiny(&t, ADVEX_ERR_FORMAT, "output");
    tiny_init(&t);
    t.n1_out[0] = "flat"; /* defined twice */
    expect_tiny(&t, ADVEX_ERR_FORMAT, "twice");
    tiny_init(&t);
    t.at.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    t.at.has_i = 0;
    t.at.has_f = 1;
    expect_tiny(&t, ADVEX_ERR_FORMAT, "transB");
    tiny_init(&t);
    t.out.name = "x"; /* output is the input itself */
    expect_tiny(&t, ADVEX_ERR_UNSUPPORTED, "does not depend");
    tiny_init(&t);
    t.gp.n_output = 0;
    expect_tiny(&t, ADVEX_ERR_FORMAT, "no output");
    tiny_init(&t);
    t.n[1].domain = "com.example";
    expect_tiny(&t, ADVEX_ERR_UNSUPPORTED, "com.example.Gemm");
    tiny_init(&t);
    t.n[0].name = "";
    t.n[0].op_type = "Resize";
    expect_tiny(&t, ADVEX_ERR_UNSUPPORTED, "'<flat>' (Resize, opset 13)");
}

TEST(tiny_too_many_nodes) {
    tiny t;
    tiny_init(&t);
    size_t n = ADVEX_ONNX_MAX_NODES + 1;
    Onnx__NodeProto **many = malloc(n * sizeof *many);
    ASSERT(many != NULL);
    for (size_t i = 0; i < n; i++) many[i] = &t.n[0];
    t.gp.n_node = n;
    t.gp.node = many;
    advex_model *m = NULL;
    advex_status st = tiny_load(&t, &m);
    free(many);
    ASSERT_STATUS(st, ADVEX_ERR_LIMIT);
    ASSERT(m == NULL);
}

/* Flipped bytes and truncations of a real model: any status, never a crash or a leak
 * (run under ASan to see the latter). */
TEST(fuzz_mutations) {
    size_t n;
    unsigned char *orig = read_file(advex_test_src("tests/fixtures/onnx/mixed_torch_op13.onnx"), &n);
    ASSERT(orig != NULL);
    unsigned char *b = malloc(n);
    ASSERT(b != NULL);
    advex_rng r;
    advex_rng_seed(&r, 1234);
    int loaded = 0;
    for (int it = 0; it < 300; it++) {
        memcpy(b, orig, n);
        size_t len = n;
        int flips = 1 + (int)advex_rng_below(&r, 4);
        for (int k = 0; k < flips; k++) b[advex_rng_below(&r, n)] = (unsigned char)advex_rng_u64(&r);
        if (it % 3 == 0) len = (size_t)advex_rng_below(&r, n);
        advex_model *m = NULL;
        if (advex_model_load_onnx_buffer(b, len, "fuzz.onnx", &m) == ADVEX_OK) {
            float x[3 * 12 * 12], y[64];
            fill_uniform(x, 3 * 12 * 12, (uint64_t)it);
            if (advex_model_num_classes(m) <= 64) (void)advex_model_forward(m, x, 1, y);
            advex_model_free(m);
            loaded++;
        } else {
            ASSERT_MSG(strstr(advex_last_error(), "fuzz.onnx") != NULL, "message without file name: %s",
                       advex_last_error());
        }
    }
    free(b);
    free(orig);
    printf("  %d of 300 mutated files still loaded\n", loaded);
}

TEST_MAIN(TEST_ENTRY(roundtrip_small), TEST_ENTRY(roundtrip_cnn), TEST_ENTRY(roundtrip_resnet),
          TEST_ENTRY(roundtrip_wide), TEST_ENTRY(roundtrip_imported), TEST_ENTRY(torch_small),
          TEST_ENTRY(torch_view_chain), TEST_ENTRY(torch_softmax_cut), TEST_ENTRY(torch_mixed_opset13),
          TEST_ENTRY(torch_mixed_opset9), TEST_ENTRY(handmade_opset11), TEST_ENTRY(value_kinds), TEST_ENTRY(load_from_buffer),
          TEST_ENTRY(error_missing_file), TEST_ENTRY(error_empty_file), TEST_ENTRY(error_truncated),
          TEST_ENTRY(error_random_bytes), TEST_ENTRY(error_unsupported_nodes_all_named),
          TEST_ENTRY(error_missing_initializer), TEST_ENTRY(error_cycle), TEST_ENTRY(save_errors_leave_nothing),
          TEST_ENTRY(tiny_valid), TEST_ENTRY(tiny_hostile_tensors), TEST_ENTRY(tiny_hostile_graph),
          TEST_ENTRY(tiny_too_many_nodes), TEST_ENTRY(fuzz_mutations))
