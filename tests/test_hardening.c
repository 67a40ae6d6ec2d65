/* Hardening: the memory cap (advex_set_memory_limit, --max-memory sizes), non-finite
 * weights, logits and gradients reported by name, and reproducers of fuzz findings that
 * need more than a replay (fuzz/regressions/ holds the raw crash files). */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", advex_test_tmpdir(), name);
    return buf[k];
}

TEST(parse_size) {
    int64_t b = 0;
    ASSERT_OK(advex_parse_size("512M", &b));
    ASSERT_EQ_INT(b, (int64_t)512 << 20);
    ASSERT_OK(advex_parse_size("2G", &b));
    ASSERT_EQ_INT(b, (int64_t)2 << 30);
    ASSERT_OK(advex_parse_size("1.5GiB", &b));
    ASSERT_EQ_INT(b, (int64_t)3 << 29);
    ASSERT_OK(advex_parse_size("64k", &b));
    ASSERT_EQ_INT(b, 65536);
    ASSERT_OK(advex_parse_size("1048576", &b));
    ASSERT_EQ_INT(b, 1048576);
    ASSERT_OK(advex_parse_size("3MB", &b));
    ASSERT_EQ_INT(b, (int64_t)3 << 20);
    const char *bad[] = {"", "0", "-1", "1X", "M", "1e400", "nan", "inf", "1GG", "9999999T", " ", "0.1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ASSERT_MSG(advex_parse_size(bad[i], &b) == ADVEX_ERR_ARG, "'%s' accepted as %lld", bad[i], (long long)b);
}

TEST(memory_limit_load_and_plan) {
    const char *path = advex_test_src("tests/fixtures/onnx/small_torch.onnx");
    advex_model *m = NULL;
    int64_t base = advex_memory_in_use();
    /* below the size of one weight: refused while decoding, with a clear message */
    advex_set_memory_limit(100 << 10);
    ASSERT_STATUS(advex_model_load_onnx(path, &m), ADVEX_ERR_LIMIT);
    ASSERT(m == NULL);
    ASSERT_MSG(strstr(advex_last_error(), "memory limit") && strstr(advex_last_error(), "small_torch.onnx"), "%s",
               advex_last_error());
    ASSERT_EQ_INT(advex_memory_in_use(), base); /* nothing kept after the failed load */
    /* enough for the weights, not for a batch of 256 */
    advex_set_memory_limit(4 << 20);
    ASSERT_OK(advex_model_load_onnx(path, &m));
    int64_t used = advex_memory_in_use() - base;
    ASSERT_MSG(used > (600 << 10) && used < (4 << 20), "in use %lld", (long long)used);
    int64_t n = 256, d = 28 * 28;
    float *x = calloc((size_t)(n * d), sizeof(float)), *z = calloc((size_t)(n * 10), sizeof(float));
    ASSERT(x && z);
    advex_status st = advex_model_forward(m, x, n, z);
    /* with several threads the batch is split into per-thread parts; the message says so */
    ASSERT_MSG(st == ADVEX_ERR_LIMIT && (strstr(advex_last_error(), "activations for batch 256") ||
                                         strstr(advex_last_error(), "batch 256 split over")),
               "%s: %s",
               advex_status_str(st), advex_last_error());
    /* a small batch still fits, and raising the cap lets the big one through */
    ASSERT_OK(advex_model_forward(m, x, 4, z));
    advex_set_memory_limit(0);
    ASSERT_OK(advex_model_forward(m, x, n, z));
    ASSERT(advex_memory_peak() >= advex_memory_in_use());
    advex_model_free(m);
    ASSERT_EQ_INT(advex_memory_in_use(), base);
    /* workspaces count too */
    ASSERT_OK(advex_model_build("small", 1, &m));
    advex_set_memory_limit(advex_memory_in_use() + (1 << 20));
    ASSERT(advex_model_workspace(m, 1 << 20) == NULL);
    ASSERT_MSG(strstr(advex_last_error(), "workspace"), "%s", advex_last_error());
    ASSERT(advex_model_workspace(m, 1 << 10) != NULL);
    advex_set_memory_limit(0);
    advex_model_free(m);
    free(x);
    free(z);
}

TEST(nan_weight_named_at_load) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 3, &m));
    const char *name = NULL;
    for (int i = 0; i < m->net->g.n_vals; i++)
        if (m->net->g.vals[i].kind == ADVEX_VAL_PARAM && m->net->g.vals[i].ndim == 2) {
            m->net->g.vals[i].data[7] = NAN;
            name = m->net->g.vals[i].name;
            break;
        }
    ASSERT(name);
    char want[160];
    snprintf(want, sizeof want, "weight '%s': element 7 is NaN", name);
    const char *p = tmp_path("nan.onnx");
    ASSERT_OK(advex_model_save_onnx(m, p));
    advex_model_free(m);
    m = NULL;
    ASSERT_STATUS(advex_model_load_onnx(p, &m), ADVEX_ERR_NUMERIC);
    ASSERT(m == NULL);
    ASSERT_MSG(strstr(advex_last_error(), want) && strstr(advex_last_error(), "nan.onnx"), "'%s' lacks '%s'",
               advex_last_error(), want);
}

TEST(overflowing_logits_and_gradients_reported) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 3, &m));
    /* positive 1e20 weights in both linear layers: finite inputs, logits overflow to Inf */
    for (int i = 0; i < m->net->g.n_vals; i++) {
        advex_value *v = &m->net->g.vals[i];
        if (v->kind == ADVEX_VAL_PARAM && v->ndim == 2)
            for (int64_t k = 0; k < advex_numel(2, v->dims); k++) v->data[k] = 1e20f;
    }
    float x[2 * 784], z[20], g[2 * 784];
    int32_t y[2] = {1, 2};
    for (int i = 0; i < 2 * 784; i++) x[i] = 0.5f;
    ASSERT_STATUS(advex_model_forward(m, x, 2, z), ADVEX_ERR_NUMERIC);
    ASSERT_MSG(strstr(advex_last_error(), "logits of example 0"), "%s", advex_last_error());
    ASSERT_STATUS(advex_model_input_grad(m, x, y, 2, ADVEX_LOSS_CE, g, NULL, NULL), ADVEX_ERR_NUMERIC);
    ASSERT_MSG(strstr(advex_last_error(), "example 0"), "%s", advex_last_error());
    advex_model_free(m);

    /* training: a parameter gradient that is not finite is named */
    ASSERT_OK(advex_model_build("small", 3, &m));
    advex_plan *tp;
    ASSERT_OK(advex_model_train_plan(m, 2, &tp));
    const advex_value *w = NULL;
    for (int i = 0; i < m->net->g.n_vals; i++)
        if (tp->v[i].kind == ADVEX_VAL_PARAM) { w = &tp->v[i]; break; }
    ASSERT(w && w->grad);
    memset(tp->grads, 0, (size_t)m->net->n_params * sizeof(float));
    w->grad[3] = INFINITY;
    ASSERT_OK(advex_plan_forward(tp, x));
    float dl[20] = {0};
    dl[0] = 1.0f;
    ASSERT_STATUS(advex_plan_backward(tp, dl), ADVEX_ERR_NUMERIC);
    char want[160];
    snprintf(want, sizeof want, "gradient of weight '%s': element 3 is +Inf", w->name);
    ASSERT_MSG(strstr(advex_last_error(), want), "'%s' lacks '%s'", advex_last_error(), want);
    /* a NaN loss gradient is reported before anything else */
    memset(tp->grads, 0, (size_t)m->net->n_params * sizeof(float));
    ASSERT_OK(advex_plan_forward(tp, x));
    dl[13] = NAN;
    ASSERT_STATUS(advex_plan_backward(tp, dl), ADVEX_ERR_NUMERIC);
    ASSERT_MSG(strstr(advex_last_error(), "loss gradient of example 1 is NaN"), "%s", advex_last_error());
    advex_model_free(m);
}

/* A NaN or Inf input is refused with the example it is in, on the threaded check (batches of
 * 65536 floats and more) and the plain one, by forward and by the input gradient. */
TEST(nonfinite_input_named) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 3, &m));
    const int64_t n = 100, d = 784;
    float *x = calloc((size_t)(n * d), sizeof(float)), *g = calloc((size_t)(n * d), sizeof(float));
    float z[1000];
    int32_t y[100] = {0};
    ASSERT_OK(advex_model_forward(m, x, n, z));
    x[97 * d + 5] = NAN;
    ASSERT_STATUS(advex_model_forward(m, x, n, z), ADVEX_ERR_NUMERIC);
    ASSERT_MSG(strstr(advex_last_error(), "input example 97 contains NaN"), "%s", advex_last_error());
    x[3 * d + 783] = -INFINITY; /* the first offender is named */
    ASSERT_STATUS(advex_model_input_grad(m, x, y, n, ADVEX_LOSS_CE, g, NULL, NULL), ADVEX_ERR_NUMERIC);
    ASSERT_MSG(strstr(advex_last_error(), "input example 3 contains Inf"), "%s", advex_last_error());
    x[97 * d + 5] = 0.0f;
    x[3 * d + 783] = 0.0f;
    x[1 * d] = INFINITY; /* 2 examples: below the threaded check's size */
    ASSERT_STATUS(advex_model_forward(m, x, 2, z), ADVEX_ERR_NUMERIC);
    ASSERT_MSG(strstr(advex_last_error(), "input example 1 contains Inf"), "%s", advex_last_error());
    free(x);
    free(g);
    advex_model_free(m);
}

TEST(idx_empty_body_regression) {
    /* fuzz/regressions/idx/labels-truncated-empty-body-ub: a label header promising 2048
     * labels and no data did pointer arithmetic on NULL (UBSan) */
    const unsigned char bytes[] = {0x00, 0x00, 0x08, 0x01, 0x00, 0x00, 0x08, 0x00};
    const char *p = tmp_path("empty_labels.idx");
    FILE *f = fopen(p, "wb");
    ASSERT(f);
    fwrite(bytes, 1, sizeof bytes, f);
    fclose(f);
    int32_t *y = NULL;
    int64_t n = 0;
    ASSERT_STATUS(advex_idx_load_labels(p, &y, &n), ADVEX_ERR_FORMAT);
    ASSERT(y == NULL);
    ASSERT_MSG(strstr(advex_last_error(), "truncated"), "%s", advex_last_error());
}

TEST(falloc_overflow_and_accounting) {
    int64_t base = advex_memory_in_use();
    ASSERT(advex_falloc(-1) == NULL);
    ASSERT(advex_falloc(INT64_MAX) == NULL);
    ASSERT(advex_falloc(INT64_MAX / 4) == NULL);
    ASSERT_EQ_INT(advex_memory_in_use(), base);
    float *a = advex_falloc(0), *b = advex_falloc(1000);
    ASSERT(a && b);
    ASSERT_EQ_INT((uintptr_t)a % 64, 0);
    ASSERT_EQ_INT((uintptr_t)b % 64, 0);
    ASSERT(advex_memory_in_use() >= base + 4000);
    advex_ffree(a);
    advex_ffree(b);
    advex_ffree(NULL);
    ASSERT_EQ_INT(advex_memory_in_use(), base);
}

TEST_MAIN(TEST_ENTRY(parse_size), TEST_ENTRY(memory_limit_load_and_plan), TEST_ENTRY(nan_weight_named_at_load),
          TEST_ENTRY(overflowing_logits_and_gradients_reported), TEST_ENTRY(idx_empty_body_regression), TEST_ENTRY(nonfinite_input_named),
          TEST_ENTRY(falloc_overflow_and_accounting))
