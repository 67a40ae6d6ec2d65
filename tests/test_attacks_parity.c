/* PGD L-inf without a random start matches PyTorch: the same network (exported by
 * tools/make_attack_fixtures.py), the first 200 Fashion-MNIST test images, eps 0.1, alpha 0.01,
 * 20 steps; predictions on the adversarial examples agree on >= 99.5%. */
#include <stdlib.h>

#include "harness.h"
#include "internal.h"

TEST(pgd_matches_pytorch) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/attacks/small_pgd.onnx"), &m));
    int32_t *want = NULL;
    int64_t n = 0;
    ASSERT_OK(advex_npy_load_labels(advex_test_src("tests/fixtures/attacks/pgd_pred.npy"), &want, &n));
    advex_dataset d = {0};
    ASSERT_OK(advex_dataset_load("fashion-mnist:test", NULL, n, &d));
    ASSERT_EQ_INT(d.n, n);
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_PGD;
    c.eps = 0.1f;
    c.alpha = 0.01f;
    c.steps = 20;
    c.restarts = 0; /* one run from x, no random start */
    float *xa = malloc((size_t)(n * 784) * sizeof(float)), *z = malloc((size_t)(n * 10) * sizeof(float));
    int32_t *pred = malloc((size_t)n * sizeof(int32_t));
    ASSERT_OK(advex_attack_batch(m, &c, d.x, d.y, n, 0, xa));
    ASSERT_OK(advex_model_forward(m, xa, n, z));
    advex_argmax_rows(z, n, 10, pred);
    int64_t agree = 0;
    for (int64_t i = 0; i < n; i++) agree += pred[i] == want[i];
    fprintf(stderr, "  predictions agree on %lld of %lld\n", (long long)agree, (long long)n);
    ASSERT_MSG(agree * 1000 >= n * 995, "only %lld of %lld agree", (long long)agree, (long long)n);
    free(xa); free(z); free(pred); free(want);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST_MAIN(TEST_ENTRY(pgd_matches_pytorch))
