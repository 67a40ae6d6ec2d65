/* End to end on real data: train `small` briefly on a Fashion-MNIST subset, save and
 * reload it as ONNX, attack it with FGSM: accuracy falls as eps grows, and the returned
 * examples are checked with the model's own predictions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

TEST(train_save_load_attack) {
    advex_dataset train = {0}, test = {0};
    ASSERT_OK(advex_dataset_load("fashion-mnist:train", NULL, 6000, &train));
    ASSERT_OK(advex_dataset_load("fashion-mnist:test", NULL, 1000, &test));
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 0, &m));
    advex_train_config c;
    advex_train_config_default(&c);
    c.epochs = 1;
    c.batch = 64;
    ASSERT_OK(advex_train(m, &train, &c, NULL, NULL));
    int64_t correct = 0;
    ASSERT_OK(advex_eval_clean(m, &test, 128, &correct));
    double acc = (double)correct / (double)test.n;
    ASSERT_MSG(acc > 0.70, "clean accuracy after one short epoch: %.3f", acc);

    char path[512];
    snprintf(path, sizeof path, "%s/small.onnx", advex_test_tmpdir());
    ASSERT_OK(advex_model_save_onnx(m, path));
    advex_model *m2 = NULL;
    ASSERT_OK(advex_model_load_onnx(path, &m2));
    float z1[10 * 10], z2[10 * 10];
    ASSERT_OK(advex_model_forward(m, test.x, 10, z1));
    ASSERT_OK(advex_model_forward(m2, test.x, 10, z2));
    ASSERT(memcmp(z1, z2, sizeof z1) == 0);

    const float eps[] = {0.0f, 0.02f, 0.05f, 0.1f, 0.2f};
    double prev = 2.0;
    int64_t dim = 784;
    float *adv = malloc((size_t)(test.n * dim) * sizeof(float)), *logits = malloc((size_t)test.n * 10 * sizeof(float));
    int32_t *pred = malloc((size_t)test.n * sizeof(int32_t));
    for (int i = 0; i < 5; i++) {
        advex_attack_config ac;
        advex_attack_config_default(&ac);
        ac.eps = eps[i];
        advex_eval_result r;
        ASSERT_OK(advex_eval_attack(m2, &test, &ac, 100, NULL, NULL, adv, &r));
        ASSERT_EQ_INT(r.n, test.n);
        if (i == 0) ASSERT_EQ_INT(r.robust_correct, correct);
        ASSERT_MSG(r.robust_accuracy < prev || (i == 0), "eps %g: robust accuracy %.3f did not fall below %.3f",
                   (double)eps[i], r.robust_accuracy, prev);
        /* independent check of the reported numbers */
        ASSERT_OK(advex_model_forward(m2, adv, test.n, logits));
        advex_argmax_rows(logits, test.n, 10, pred);
        int64_t still = 0, clean_ok = 0;
        float zc[10];
        for (int64_t j = 0; j < test.n; j++) {
            ASSERT_OK(advex_model_forward(m2, test.x + j * dim, 1, zc));
            int32_t pc;
            advex_argmax_rows(zc, 1, 10, &pc);
            clean_ok += pc == test.y[j];
            still += pc == test.y[j] && pred[j] == test.y[j];
            for (int64_t q = 0; q < dim; q++) {
                float dlt = fabsf(adv[j * dim + q] - test.x[j * dim + q]);
                ASSERT(dlt <= eps[i] + 1e-6f && adv[j * dim + q] >= 0 && adv[j * dim + q] <= 1);
            }
        }
        ASSERT_EQ_INT(still, r.robust_correct);
        ASSERT_EQ_INT(clean_ok, r.clean_correct);
        prev = r.robust_accuracy;
    }
    ASSERT_MSG(prev < 0.2, "FGSM at eps 0.2 leaves %.3f accuracy", prev);
    free(adv); free(logits); free(pred);
    advex_model_free(m);
    advex_model_free(m2);
    advex_dataset_free(&train);
    advex_dataset_free(&test);
}

TEST_MAIN(TEST_ENTRY(train_save_load_attack))
