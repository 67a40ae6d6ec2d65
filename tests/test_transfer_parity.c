/* Transfer attacks match an independent transfer attack in PyTorch
 * (tools/make_transfer_fixtures.py): FGSM, BIM and MI-FGSM crafted on a surrogate network,
 * judged on a different target network, first 1000 Fashion-MNIST test images, eps 0.1, 10
 * steps. The transfer robust accuracy agrees within 1 point, the target's predictions on
 * >= 99% of the examples, and the BIM / MI-FGSM adversarial examples themselves pixel for
 * pixel. Also: in transfer mode no iterative attack returns an example unperturbed (none
 * skipped because the surrogate already misclassifies it, none stopped at its first
 * success), and the attacks that stop at the crafting model's boundary refuse it. */
#include <stdlib.h>

#include "harness.h"
#include "internal.h"

enum { D = 784, K = 10 };

static advex_model *sur, *tgt;
static advex_dataset data;

static int setup(void) {
    if (sur) return 1;
    return !advex_model_load_onnx(advex_test_src("tests/fixtures/transfer/surrogate.onnx"), &sur) &&
           !advex_model_load_onnx(advex_test_src("tests/fixtures/transfer/target.onnx"), &tgt) &&
           !advex_dataset_load("fashion-mnist:test", NULL, 1000, &data);
}

static int32_t *load_pred(const char *name, int64_t want_n) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/fixtures/transfer/%s_pred.npy", name);
    int32_t *p = NULL;
    int64_t n = 0;
    if (advex_npy_load_labels(advex_test_src(rel), &p, &n) || n != want_n) { free(p); return NULL; }
    return p;
}

TEST(transfer_matches_pytorch) {
    ASSERT(setup());
    const int64_t n = data.n;
    ASSERT_EQ_INT(n, 1000);
    int32_t *pt_clean = load_pred("clean", n), *clean = malloc((size_t)n * sizeof(int32_t)),
            *adv_pred = malloc((size_t)n * sizeof(int32_t));
    float *adv = malloc((size_t)(n * D) * sizeof(float)), *ref = NULL;
    ASSERT(pt_clean && clean && adv_pred && adv);
    const char *names[3] = {"fgsm", "bim", "mifgsm"};
    const advex_attack_kind kinds[3] = {ADVEX_ATTACK_FGSM, ADVEX_ATTACK_BIM, ADVEX_ATTACK_MIFGSM};
    for (int a = 0; a < 3; a++) {
        int32_t *want = load_pred(names[a], n);
        ASSERT_MSG(want, "%s: fixture missing", names[a]);
        advex_attack_config c;
        advex_attack_config_default(&c);
        c.kind = kinds[a];
        c.eps = 0.1f;
        c.steps = 10; /* alpha = eps / steps, mu = 1 */
        advex_eval_outputs out = {adv, clean, adv_pred, NULL, NULL};
        advex_eval_result r;
        ASSERT_OK(advex_eval_run(tgt, sur, &data, &c, 256, NULL, NULL, &out, &r));
        ASSERT(r.transfer);
        int64_t robust_pt = 0, agree = 0, clean_agree = 0;
        for (int64_t i = 0; i < n; i++) {
            robust_pt += pt_clean[i] == data.y[i] && want[i] == data.y[i];
            agree += adv_pred[i] == want[i];
            clean_agree += clean[i] == pt_clean[i];
        }
        fprintf(stderr, "  %-7s transfer robust accuracy: advex %.1f%%, PyTorch %.1f%%; predictions agree on %lld of %lld\n",
                names[a], 100.0 * (double)r.robust_correct / (double)n, 100.0 * (double)robust_pt / (double)n,
                (long long)agree, (long long)n);
        ASSERT_EQ_INT(clean_agree, n);
        ASSERT_MSG(llabs(r.robust_correct - robust_pt) * 100 <= n, "%s: robust %lld vs PyTorch's %lld (> 1 point)",
                   names[a], (long long)r.robust_correct, (long long)robust_pt);
        ASSERT_MSG(agree * 100 >= n * 99, "%s: predictions agree on only %lld of %lld", names[a], (long long)agree,
                   (long long)n);
        free(want);
        if (kinds[a] == ADVEX_ATTACK_FGSM) continue;
        /* the examples themselves (deterministic: no random start) */
        char rel[128];
        snprintf(rel, sizeof rel, "tests/fixtures/transfer/%s_adv.npy", names[a]);
        int nd;
        int64_t dims[6];
        ASSERT_OK(advex_npy_load_f32(advex_test_src(rel), &ref, &nd, dims));
        int64_t m = dims[0] * dims[1] * dims[2] * dims[3], differ = 0;
        ASSERT(nd == 4 && dims[0] <= n && m / dims[0] == D);
        for (int64_t q = 0; q < m; q++) differ += fabsf(ref[q] - adv[q]) > 1e-5f;
        fprintf(stderr, "  %-7s adversarial examples: %lld of %lld pixels differ by > 1e-5\n", names[a],
                (long long)differ, (long long)m);
        ASSERT_MSG(differ * 1000 <= m, "%s: %lld of %lld pixels differ from PyTorch's", names[a], (long long)differ,
                   (long long)m); /* a sign flip on a near-zero gradient component may move a few */
        free(ref);
        ref = NULL;
    }
    free(pt_clean); free(clean); free(adv_pred); free(adv);
}

/* Transfer mode: every example is attacked to the end, whatever the surrogate says about it. */
TEST(transfer_mode_attacks_every_example) {
    ASSERT(setup());
    const int64_t n = 48;
    float *xa = malloc((size_t)(n * D) * sizeof(float)), z[48 * K];
    int32_t stage[48];
    ASSERT(xa);
    ASSERT_OK(advex_model_forward(sur, data.x, n, z));
    int64_t sur_wrong = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t p = 0;
        for (int k = 1; k < K; k++) if (z[i * K + k] > z[i * K + p]) p = k;
        sur_wrong += p != data.y[i];
    }
    ASSERT(sur_wrong > 0); /* the test needs examples the surrogate already misclassifies */
    const advex_attack_kind kinds[] = {ADVEX_ATTACK_BIM, ADVEX_ATTACK_PGD, ADVEX_ATTACK_MIFGSM, ADVEX_ATTACK_APGD_CE,
                                       ADVEX_ATTACK_APGD_T, ADVEX_ATTACK_SQUARE};
    for (size_t q = 0; q < sizeof kinds / sizeof *kinds; q++) {
        advex_attack_config c;
        advex_attack_config_default(&c);
        c.kind = kinds[q];
        c.eps = 0.1f;
        c.steps = 10;
        c.topk = 2;
        c.queries = 100;
        c.no_early_stop = 1;
        advex_attack_info info = {NULL, stage, NULL};
        ASSERT_OK(advex_attack_batch_info(sur, &c, data.x, data.y, n, 0, xa, &info));
        ASSERT_OK(advex_model_forward(sur, xa, n, z));
        int64_t untouched = 0;
        for (int64_t i = 0; i < n; i++) {
            double mx = 0;
            for (int j = 0; j < D; j++) {
                double v = fabs((double)xa[i * D + j] - data.x[i * D + j]);
                mx = v > mx ? v : mx;
            }
            ASSERT_MSG(mx <= c.eps + 1e-6, "%s: example %lld leaves the ball", advex_attack_name(c.kind), (long long)i);
            untouched += mx == 0;
            int32_t p = 0;
            for (int k = 1; k < K; k++) if (z[i * K + k] > z[i * K + p]) p = k;
            ASSERT_MSG(stage[i] == (p != data.y[i]), "%s example %lld: reported %d", advex_attack_name(c.kind),
                       (long long)i, stage[i]);
        }
        ASSERT_MSG(untouched == 0, "%s: %lld examples returned unperturbed", advex_attack_name(c.kind),
                   (long long)untouched);
    }
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.eps = 0.1f;
    c.no_early_stop = 1;
    c.kind = ADVEX_ATTACK_STANDARD;
    ASSERT_STATUS(advex_attack_batch(sur, &c, data.x, data.y, 4, 0, xa), ADVEX_ERR_ARG);
    c.kind = ADVEX_ATTACK_DEEPFOOL;
    ASSERT_STATUS(advex_attack_batch(sur, &c, data.x, data.y, 4, 0, xa), ADVEX_ERR_ARG);
    advex_eval_result r;
    ASSERT_STATUS(advex_eval_transfer(sur, tgt, &data, &c, 256, NULL, NULL, NULL, &r), ADVEX_ERR_ARG);
    free(xa);
}

TEST(teardown) {
    advex_model_free(sur);
    advex_model_free(tgt);
    advex_dataset_free(&data);
    sur = tgt = NULL;
}

TEST_MAIN(TEST_ENTRY(transfer_matches_pytorch), TEST_ENTRY(transfer_mode_attacks_every_example), TEST_ENTRY(teardown))
