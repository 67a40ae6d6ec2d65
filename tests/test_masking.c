/* The gradient-masking warning (advex_eval_flag_masking): AutoAttack's rule with a floor for
 * small evaluations. On made-up results: no warning when Square only beats FGSM, when it
 * removes a few examples (up to max(3, 0.2% of n)), at another eps or norm, or against a
 * transfer run; a warning past the margin. On real models: the masked fixture (a hard
 * threshold in front of a trained network, tools/make_masking_fixture.py) lets Square do far
 * better than APGD and warns, both in `standard` and in an eval of apgd-ce and square; the
 * unmasked `small` fixture does not. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

static advex_eval_result res(advex_attack_kind kind, float eps, int64_t n, int64_t robust) {
    advex_eval_result r;
    memset(&r, 0, sizeof r);
    r.attack = kind;
    r.eps = eps;
    r.n = n;
    r.robust_correct = robust;
    r.norm = ADVEX_NORM_LINF;
    return r;
}

static advex_eval_result standard(int64_t n, int64_t apgd, int64_t apgdt, int64_t square) {
    advex_eval_result r = res(ADVEX_ATTACK_STANDARD, 0.1f, n, n / 2);
    r.n_stages = 3;
    r.stage_attack[0] = ADVEX_ATTACK_APGD_CE;
    r.stage_attack[1] = ADVEX_ATTACK_APGD_T;
    r.stage_attack[2] = ADVEX_ATTACK_SQUARE;
    r.stage_removed[0] = apgd;
    r.stage_removed[1] = apgdt;
    r.stage_removed[2] = square;
    return r;
}

TEST(margin_rule) {
    ASSERT_EQ_INT(advex_eval_masking_margin(200), 3);
    ASSERT_EQ_INT(advex_eval_masking_margin(10000), 20);
    ASSERT_EQ_INT(advex_eval_masking_margin(10001), 21);
    advex_eval_result r[4];
    /* standard: Square removing 1, or 3 of 200, is noise; 4 is past the margin */
    r[0] = standard(200, 50, 3, 1);
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 1), 0);
    r[0] = standard(200, 50, 3, 3);
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 1), 0);
    ASSERT_EQ_INT(r[0].warnings, 0);
    r[0] = standard(200, 50, 3, 4);
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 1), 1);
    ASSERT(r[0].warnings & ADVEX_EVAL_WARN_BLACKBOX_WINS);
    r[0] = standard(10000, 3000, 50, 20); /* 0.2% of 10000 */
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 1), 0);
    r[0] = standard(10000, 3000, 50, 21);
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 1), 1);
    /* Square far below FGSM alone: no iterative white-box attack to compare with */
    r[0] = res(ADVEX_ATTACK_FGSM, 0.1f, 200, 140);
    r[1] = res(ADVEX_ATTACK_SQUARE, 0.1f, 200, 100);
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 2), 0);
    /* against PGD: 2 below is noise, 10 below warns, on Square's result only */
    r[2] = res(ADVEX_ATTACK_PGD, 0.1f, 200, 102);
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 3), 0);
    r[2].robust_correct = 110;
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 3), 1);
    ASSERT(r[1].warnings & ADVEX_EVAL_WARN_BLACKBOX_WINS);
    ASSERT_EQ_INT(r[0].warnings | r[2].warnings, 0);
    /* the strongest white-box attack counts: APGD close to Square clears it */
    r[1].warnings = 0;
    r[3] = res(ADVEX_ATTACK_APGD_CE, 0.1f, 200, 101);
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 4), 0);
    /* another eps, another norm, or a transfer run is no comparison */
    r[3].eps = 0.2f;
    r[2].norm = ADVEX_NORM_L2;
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 4), 0);
    r[2].norm = ADVEX_NORM_LINF;
    r[2].transfer = 1;
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 4), 0);
    r[2].transfer = 0;
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 4), 1);
}

static void config(advex_attack_config *c, advex_attack_kind kind) {
    advex_attack_config_default(c);
    c->kind = kind;
    c->eps = 0.1f;
    c->steps = 25;
    c->queries = 300;
    c->topk = 3;
}

TEST(masked_model_warns) {
    advex_model *m = NULL;
    advex_dataset d = {0};
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/attacks/masked.onnx"), &m));
    ASSERT_OK(advex_dataset_load("fashion-mnist:test", NULL, 64, &d));
    advex_attack_config c;
    advex_eval_result r[2], s;
    config(&c, ADVEX_ATTACK_STANDARD);
    ASSERT_OK(advex_eval_attack(m, &d, &c, 64, NULL, NULL, NULL, &s));
    fprintf(stderr, "  masked, standard: removed %lld / %lld / %lld\n", (long long)s.stage_removed[0],
            (long long)s.stage_removed[1], (long long)s.stage_removed[2]);
    ASSERT(s.warnings & ADVEX_EVAL_WARN_BLACKBOX_WINS);
    config(&c, ADVEX_ATTACK_APGD_CE);
    ASSERT_OK(advex_eval_attack(m, &d, &c, 64, NULL, NULL, NULL, &r[0]));
    config(&c, ADVEX_ATTACK_SQUARE);
    ASSERT_OK(advex_eval_attack(m, &d, &c, 64, NULL, NULL, NULL, &r[1]));
    fprintf(stderr, "  masked: apgd-ce robust %lld, square robust %lld of %lld\n", (long long)r[0].robust_correct,
            (long long)r[1].robust_correct, (long long)r[0].n);
    ASSERT_EQ_INT(r[1].warnings & ADVEX_EVAL_WARN_BLACKBOX_WINS, 0); /* alone, no comparison */
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 2), 1);
    ASSERT(r[1].warnings & ADVEX_EVAL_WARN_BLACKBOX_WINS);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST(unmasked_model_does_not_warn) {
    advex_model *m = NULL;
    advex_dataset d = {0};
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/attacks/small_pgd.onnx"), &m));
    ASSERT_OK(advex_dataset_load("fashion-mnist:test", NULL, 64, &d));
    advex_attack_config c;
    advex_eval_result r[3], s;
    config(&c, ADVEX_ATTACK_STANDARD);
    ASSERT_OK(advex_eval_attack(m, &d, &c, 64, NULL, NULL, NULL, &s));
    fprintf(stderr, "  small, standard: removed %lld / %lld / %lld\n", (long long)s.stage_removed[0],
            (long long)s.stage_removed[1], (long long)s.stage_removed[2]);
    ASSERT_EQ_INT(s.warnings & ADVEX_EVAL_WARN_BLACKBOX_WINS, 0);
    const advex_attack_kind kinds[3] = {ADVEX_ATTACK_FGSM, ADVEX_ATTACK_APGD_CE, ADVEX_ATTACK_SQUARE};
    for (int a = 0; a < 3; a++) {
        config(&c, kinds[a]);
        ASSERT_OK(advex_eval_attack(m, &d, &c, 64, NULL, NULL, NULL, &r[a]));
    }
    ASSERT_EQ_INT(advex_eval_flag_masking(r, 3), 0);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST_MAIN(TEST_ENTRY(margin_rule), TEST_ENTRY(masked_model_warns), TEST_ENTRY(unmasked_model_does_not_warn))
