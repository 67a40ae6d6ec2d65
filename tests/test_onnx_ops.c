/* Small PyTorch exports of the architectures issue 17 made loadable (tools/make_ops_fixtures.py,
 * tests/fixtures/ops/): logits and CE input gradients against PyTorch's at batch sizes 1, 2, 3
 * and 5 (examples repeated: the symbolic batch dimension must hold for every N, and an
 * example's results must not depend on its batch), and the load-time folder's limits on
 * hostile files: huge Range/Expand/ConstantOfShape/ScatterND sizes (ADVEX_ERR_LIMIT), batch
 * arithmetic whose result changes with N (unsupported), the folding budget under a memory cap. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

static const char *fix(const char *name, const char *suffix) {
    static char rel[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(rel[k], sizeof rel[k], "tests/fixtures/ops/%s%s", name, suffix);
    return advex_test_src(rel[k]);
}

/* logits and gradients of the examples pick[0..b) (indices into the fixture's 3) */
static void check_batch(advex_model *m, const char *name, const float *x, const float *wz, const float *wg,
                        const int32_t *wy, int64_t d, int64_t c, const int *pick, int b) {
    float *xb = malloc((size_t)(b * d) * sizeof *xb), *z = malloc((size_t)(b * c) * sizeof *z),
          *g = malloc((size_t)(b * d) * sizeof *g);
    int32_t y[8];
    ASSERT(xb && z && g);
    for (int i = 0; i < b; i++) {
        memcpy(xb + i * d, x + pick[i] * d, (size_t)d * sizeof *xb);
        y[i] = wy[pick[i]];
    }
    advex_status st = advex_model_input_grad(m, xb, y, b, ADVEX_LOSS_CE, g, z, NULL);
    double zerr = 0, gerr = 0;
    for (int i = 0; !st && i < b; i++) {
        double zs = 0, gs = 0, ze = 0, ge = 0;
        for (int64_t k = 0; k < c; k++) {
            zs = fmax(zs, fabs(wz[pick[i] * c + k]));
            ze = fmax(ze, fabs((double)z[i * c + k] - wz[pick[i] * c + k]));
        }
        for (int64_t k = 0; k < d; k++) {
            gs = fmax(gs, fabs(wg[pick[i] * d + k]));
            ge = fmax(ge, fabs((double)g[i * d + k] - wg[pick[i] * d + k]));
        }
        zerr = fmax(zerr, ze / zs);
        gerr = fmax(gerr, ge / gs);
    }
    free(xb);
    free(z);
    free(g);
    ASSERT_MSG(!st, "%s at batch %d: %s", name, b, advex_last_error());
    ASSERT_MSG(zerr <= 1e-4 && gerr <= 1e-4, "%s at batch %d: logits rel err %.3g, gradient rel err %.3g", name, b,
               zerr, gerr);
}

static void check_model(const char *name) {
    advex_model *m = NULL;
    float *x = NULL, *wz = NULL, *wg = NULL;
    int nd;
    int64_t dims[6], chw[3];
    ASSERT_OK(advex_model_load_onnx(fix(name, ".onnx"), &m));
    if (advex_npy_load_f32(fix(name, "_x.npy"), &x, &nd, dims) ||
        advex_npy_load_f32(fix(name, "_logits.npy"), &wz, &nd, dims) ||
        advex_npy_load_f32(fix(name, "_grad.npy"), &wg, &nd, dims)) {
        advex_test_fail(__FILE__, __LINE__, "%s: %s", name, advex_last_error());
    } else {
        static const int32_t y[3] = {1, 3, 4}; /* the script's labels */
        advex_model_input_shape(m, chw);
        int64_t d = chw[0] * chw[1] * chw[2], c = advex_model_num_classes(m);
        ASSERT_EQ_INT(c, 5);
        check_batch(m, name, x, wz, wg, y, d, c, (const int[]){0, 1, 2}, 3);
        check_batch(m, name, x, wz, wg, y, d, c, (const int[]){1}, 1);
        check_batch(m, name, x, wz, wg, y, d, c, (const int[]){2, 0}, 2);
        check_batch(m, name, x, wz, wg, y, d, c, (const int[]){2, 0, 1, 1, 0}, 5);
    }
    advex_model_free(m);
    free(x);
    free(wz);
    free(wg);
}

TEST(window_attn) { check_model("window_attn"); }
TEST(tiny_vit) { check_model("tiny_vit"); }
TEST(tiny_convnext) { check_model("tiny_convnext"); }
TEST(tiny_shuffle) { check_model("tiny_shuffle"); }
TEST(tiny_mbv3) { check_model("tiny_mbv3"); }

static void expect_load(const char *name, advex_status want, const char *needle) {
    advex_model *m = NULL;
    advex_status st = advex_model_load_onnx(fix(name, ".onnx"), &m);
    advex_model_free(m);
    ASSERT_STATUS(st, want);
    if (needle) ASSERT_MSG(strstr(advex_last_error(), needle), "%s: no '%s' in: %s", name, needle, advex_last_error());
}

TEST(hostile_folds) {
    expect_load("hostile_range", ADVEX_ERR_LIMIT, "(Range): more elements");
    expect_load("hostile_expand", ADVEX_ERR_LIMIT, "(Expand)");
    expect_load("hostile_const_of_shape", ADVEX_ERR_LIMIT, "(ConstantOfShape)");
    expect_load("hostile_scatter", ADVEX_ERR_FORMAT, "out of range");
    expect_load("hostile_mod_batch", ADVEX_ERR_UNSUPPORTED, "depends on the batch size");
    expect_load("hostile_equal_batch", ADVEX_ERR_UNSUPPORTED, "depends on the batch size");
}

/* Reshape(x, [w, 4]) with w computed from N through Mul, Mod, Div, Greater and Where: the
 * same for every N, so x comes out as (N, 4) at any batch size */
TEST(batch_arith) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_load_onnx(fix("batch_arith_ok", ".onnx"), &m));
    float x[7 * 4], z[7 * 4];
    for (int i = 0; i < 28; i++) x[i] = (float)i;
    for (int b = 1; b <= 7; b += 3) {
        advex_status st = advex_model_forward(m, x, b, z);
        if (st) advex_model_free(m);
        ASSERT_OK(st);
        for (int i = 0; i < 4 * b; i++) ASSERT_NEAR(z[i], x[i], 0);
    }
    advex_model_free(m);
}

TEST(fold_budget) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_load_onnx(fix("fold_chain", ".onnx"), &m)); /* 84 MiB of folds: under 1 GiB */
    float x[4] = {1, 2, 3, 4}, z[4];
    advex_status st = advex_model_forward(m, x, 1, z);
    advex_model_free(m);
    ASSERT_OK(st);
    ASSERT_NEAR(z[3], 4.0 + 21 * 0.25, 1e-6); /* c20 = 21 * 0.25 everywhere */
    int64_t old = advex_get_memory_limit();
    advex_set_memory_limit((int64_t)48 << 20);
    st = advex_model_load_onnx(fix("fold_chain", ".onnx"), &m);
    advex_set_memory_limit(old);
    advex_model_free(m);
    ASSERT_STATUS(st, ADVEX_ERR_LIMIT);
    ASSERT_MSG(strstr(advex_last_error(), "budget"), "no 'budget' in: %s", advex_last_error());
}

/* the ops a loaded model runs, counted by type */
static int count_ops(const advex_model *m, advex_op_type op) {
    int n = 0;
    for (int i = 0; i < m->net->g.n_nodes; i++) n += m->net->g.nodes[i].op == op;
    return n;
}

/* PyTorch's LayerNorm and GELU decompositions become single ops (src/graph/patterns.c); the
 * results were checked against PyTorch above */
TEST(fused_patterns) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_load_onnx(fix("tiny_convnext", ".onnx"), &m));
    int ln = count_ops(m, ADVEX_OP_LAYER_NORM), gelu = count_ops(m, ADVEX_OP_GELU);
    int left = count_ops(m, ADVEX_OP_REDUCE_MEAN) + count_ops(m, ADVEX_OP_POW) + count_ops(m, ADVEX_OP_SQRT) +
               count_ops(m, ADVEX_OP_ERF);
    advex_model_free(m);
    ASSERT_EQ_INT(ln, 5);   /* stem, 2 blocks, downsampling, head */
    ASSERT_EQ_INT(gelu, 2); /* one per block */
    ASSERT_EQ_INT(left, 0);
}

/* Export writes the new ops in their opset-13 form (round trip: the same logits), and refuses
 * ops with none (HardSwish, Gelu, LayerNormalization) naming the node */
TEST(export_round_trip) {
    static const char *names[] = {"tiny_shuffle", "tiny_mbv3"};
    for (int k = 0; k < 2; k++) {
        advex_model *m = NULL, *m2 = NULL;
        float *x = NULL, z[15], z2[15];
        int nd;
        int64_t dims[6];
        char out[1024];
        snprintf(out, sizeof out, "%s/%s_saved.onnx", advex_test_tmpdir(), names[k]);
        ASSERT_OK(advex_npy_load_f32(fix(names[k], "_x.npy"), &x, &nd, dims));
        advex_status st = advex_model_load_onnx(fix(names[k], ".onnx"), &m);
        if (!st) st = advex_model_save_onnx(m, out);
        if (!st) st = advex_model_load_onnx(out, &m2);
        if (!st) st = advex_model_forward(m, x, 3, z);
        if (!st) st = advex_model_forward(m2, x, 3, z2);
        advex_model_free(m);
        advex_model_free(m2);
        free(x);
        ASSERT_OK(st);
        for (int i = 0; i < 15; i++) ASSERT_NEAR(z2[i], z[i], 0);
    }
    advex_model *m = NULL;
    char out[1024];
    snprintf(out, sizeof out, "%s/vit_saved.onnx", advex_test_tmpdir());
    ASSERT_OK(advex_model_load_onnx(fix("tiny_vit", ".onnx"), &m));
    advex_status st = advex_model_save_onnx(m, out);
    advex_model_free(m);
    ASSERT_STATUS(st, ADVEX_ERR_UNSUPPORTED);
    ASSERT_MSG(strstr(advex_last_error(), "no opset-13 form"), "message: %s", advex_last_error());
    FILE *f = fopen(out, "rb");
    if (f) fclose(f);
    ASSERT_MSG(!f, "a refused export left %s", out);
}

TEST_MAIN(TEST_ENTRY(window_attn), TEST_ENTRY(tiny_vit), TEST_ENTRY(tiny_convnext), TEST_ENTRY(tiny_shuffle),
          TEST_ENTRY(tiny_mbv3), TEST_ENTRY(hostile_folds), TEST_ENTRY(batch_arith), TEST_ENTRY(fold_budget),
          TEST_ENTRY(fused_patterns), TEST_ENTRY(export_round_trip))
