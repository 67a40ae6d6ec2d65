/* Outputs for other tools and CI (advex/interop.h): AutoAttack's log lines byte for byte on
 * made-up results, RobustBench's model info (fields, percent strings, eps as a fraction),
 * the gate on both sides of its threshold, JUnit XML escaping, and the sweep's running worst
 * case (robust_all) against the per-example predictions it keeps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "harness.h"
#include "internal.h"

static advex_eval_result res(advex_attack_kind kind, float eps, int64_t n, int64_t clean, int64_t robust,
                             int64_t all, double seconds) {
    advex_eval_result r;
    memset(&r, 0, sizeof r);
    r.attack = kind;
    r.eps = eps;
    r.n = n;
    r.clean_correct = clean;
    r.robust_correct = robust;
    r.robust_accuracy = (double)robust / (double)n;
    r.robust_all = all;
    r.seconds = seconds;
    r.norm = ADVEX_NORM_LINF;
    r.max_pert = 8.0 / 255;
    r.adv_max = 1.0f;
    r.adv_min = 0.0f;
    return r;
}

TEST(autoattack_log_lines) {
    advex_eval_result r[2];
    r[0] = res(ADVEX_ATTACK_APGD_CE, 8.0f / 255, 1000, 842, 501, 501, 12.31);
    r[1] = res(ADVEX_ATTACK_APGD_T, 8.0f / 255, 1000, 842, 495, 490, 3.0);
    char *text = NULL;
    ASSERT_OK(advex_eval_autoattack_log(r, 2, &text));
    const char *want = "initial accuracy: 84.20%\n"
                       "robust accuracy after APGD-CE: 50.10% (total time 12.3 s)\n"
                       "robust accuracy after APGD-T: 49.00% (total time 15.3 s)\n"
                       "max Linf perturbation: 0.03137, nan in tensor: 0, max: 1.00000, min: 0.00000\n"
                       "robust accuracy: 49.00%\n";
    ASSERT_MSG(strcmp(text, want) == 0, "got:\n%s", text);
    free(text);
    /* standard: one line per stage, from its own counts */
    advex_eval_result s = res(ADVEX_ATTACK_STANDARD, 0.1f, 200, 150, 90, 90, 2.0);
    s.n_stages = 2;
    s.stage_attack[0] = ADVEX_ATTACK_APGD_CE;
    s.stage_attack[1] = ADVEX_ATTACK_SQUARE;
    s.stage_removed[0] = 55;
    s.stage_removed[1] = 5;
    s.stage_seconds[0] = 0.5; /* the time after each stage, as AutoAttack prints it */
    s.stage_seconds[1] = 1.5;
    ASSERT_OK(advex_eval_autoattack_log(&s, 1, &text));
    ASSERT_MSG(strstr(text, "robust accuracy after APGD-CE: 47.50% (total time 0.5 s)\n"
                            "robust accuracy after SQUARE: 45.00% (total time 2.0 s)\n") != NULL, "got:\n%s", text);
    free(text);
    /* two eps: a header per block */
    r[1].eps = 0.1f;
    ASSERT_OK(advex_eval_autoattack_log(r, 2, &text));
    ASSERT(strstr(text, "eps: 0.1 (linf)\ninitial accuracy: 84.20%\n") != NULL);
    free(text);
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

TEST(robustbench_json) {
    advex_eval_result r[2];
    r[0] = res(ADVEX_ATTACK_APGD_CE, 8.0f / 255, 1000, 842, 501, 501, 1);
    r[1] = res(ADVEX_ATTACK_SQUARE, 8.0f / 255, 1000, 842, 600, 499, 1);
    char *json = NULL;
    ASSERT_OK(advex_eval_robustbench_json(r, 2, "8/255", "cifar10", 0, &json));
    cJSON *o = cJSON_Parse(json);
    ASSERT(o != NULL);
    ASSERT(strcmp(jstr(o, "clean_acc"), "84.20") == 0);
    ASSERT(strcmp(jstr(o, "autoattack_acc"), "49.90") == 0); /* the worst case */
    ASSERT(strcmp(jstr(o, "eps"), "8/255") == 0);
    ASSERT(strcmp(jstr(o, "dataset"), "cifar10") == 0);
    ASSERT(strcmp(jstr(o, "threat_model"), "Linf") == 0);
    ASSERT_EQ_INT(cJSON_GetObjectItemCaseSensitive(o, "number_forward_passes")->valueint, 1);
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "unreliable")));
    static const char *const keys[] = {"link", "name", "authors", "additional_data", "venue", "architecture", "reported"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) ASSERT(cJSON_GetObjectItemCaseSensitive(o, keys[i]) != NULL);
    cJSON_Delete(o);
    free(json);
    /* eps given as a number: the nearest k/255; a masking warning: unreliable */
    ASSERT_OK(advex_eval_robustbench_json(r, 2, "0.0313725", "cifar10", ADVEX_EVAL_WARN_ZERO_GRAD, &json));
    o = cJSON_Parse(json);
    ASSERT(strcmp(jstr(o, "eps"), "8/255") == 0);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "unreliable")));
    cJSON_Delete(o);
    free(json);
    /* L2: the number */
    r[0].norm = r[1].norm = ADVEX_NORM_L2;
    r[0].eps = r[1].eps = 0.5f;
    ASSERT_OK(advex_eval_robustbench_json(r, 2, "0.5", "cifar10", 0, &json));
    o = cJSON_Parse(json);
    ASSERT(strcmp(jstr(o, "eps"), "0.5") == 0);
    ASSERT(strcmp(jstr(o, "threat_model"), "L2") == 0);
    cJSON_Delete(o);
    free(json);
    r[1].eps = 1.0f;
    ASSERT_STATUS(advex_eval_robustbench_json(r, 2, "0.5", "cifar10", 0, &json), ADVEX_ERR_ARG);
}

TEST(gate_both_sides) {
    const advex_attack_kind kinds[2] = {ADVEX_ATTACK_APGD_CE, ADVEX_ATTACK_SQUARE};
    advex_gate g;
    ASSERT_OK(advex_gate_parse("apgd-ce=0.5,45%", kinds, 2, &g));
    ASSERT_EQ_INT(g.n, 2);
    ASSERT_EQ_INT(g.attack[0], ADVEX_ATTACK_APGD_CE);
    ASSERT_EQ_INT(g.attack[1], ADVEX_GATE_WORST);
    ASSERT_NEAR(g.min[1], 0.45, 1e-12);
    ASSERT_STATUS(advex_gate_parse("pgd=0.5", kinds, 2, &g), ADVEX_ERR_ARG);     /* not in the run */
    ASSERT_STATUS(advex_gate_parse("45", kinds, 2, &g), ADVEX_ERR_ARG);          /* 45 of what? */
    ASSERT_STATUS(advex_gate_parse("apgd-ce=", kinds, 2, &g), ADVEX_ERR_ARG);
    ASSERT_STATUS(advex_gate_parse("nope=0.1", kinds, 2, &g), ADVEX_ERR_ARG);
    advex_eval_result r[2];
    r[0] = res(ADVEX_ATTACK_APGD_CE, 0.1f, 1000, 900, 500, 500, 1);
    r[1] = res(ADVEX_ATTACK_SQUARE, 0.1f, 1000, 900, 700, 450, 1);
    char *text = NULL;
    ASSERT_OK(advex_gate_parse("apgd-ce=0.5,45%", kinds, 2, &g));
    ASSERT_EQ_INT(advex_gate_check(r, 2, &g, &text), 0); /* exactly at both minimums */
    ASSERT(text == NULL);
    r[0].robust_correct = 499; /* one example under */
    ASSERT_EQ_INT(advex_gate_check(r, 2, &g, &text), 1);
    ASSERT(text && strstr(text, "apgd-ce") && strstr(text, "49.90%"));
    free(text);
    r[1].robust_all = 449;
    ASSERT_EQ_INT(advex_gate_check(r, 2, &g, &text), 2);
    ASSERT(strstr(text, "worst-case robust accuracy 44.90%"));
    free(text);
}

TEST(junit_escapes) {
    advex_eval_result r = res(ADVEX_ATTACK_APGD_CE, 0.1f, 100, 90, 40, 40, 1);
    advex_gate g = {1, {ADVEX_ATTACK_APGD_CE}, {0.5}};
    char *xml = NULL;
    ASSERT_OK(advex_eval_junit(&r, 1, &g, "a<b>&\"c'\x01.onnx", "npy:x.npy,y.npy", 0, &xml));
    ASSERT(strstr(xml, "value=\"a&lt;b&gt;&amp;&quot;c&apos;?.onnx\"") != NULL);
    ASSERT(strstr(xml, "tests=\"1\" failures=\"1\"") != NULL);
    ASSERT(strstr(xml, "<failure type=\"robust-accuracy\"") != NULL);
    free(xml);
}

/* The running worst case equals the per-example intersection of the kept predictions. */
TEST(sweep_worst_case) {
    advex_model *m = NULL;
    advex_dataset d = {0};
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/attacks/small_pgd.onnx"), &m));
    ASSERT_OK(advex_dataset_load("fashion-mnist:test", NULL, 96, &d));
    const advex_attack_kind kinds[3] = {ADVEX_ATTACK_FGSM, ADVEX_ATTACK_PGD, ADVEX_ATTACK_SQUARE};
    const float eps[2] = {0.05f, 0.1f};
    advex_sweep_config c;
    advex_sweep_config_default(&c);
    c.attacks = kinds;
    c.n_attacks = 3;
    c.eps = eps;
    c.n_eps = 2;
    c.attack.queries = 60;
    c.keep_rows = 1;
    c.checks = 0;
    advex_sweep *s = NULL;
    ASSERT_OK(advex_eval_sweep(m, &d, &c, &s));
    const int32_t *cp = advex_sweep_clean_pred(s);
    for (int e = 0; e < 2; e++) {
        int64_t all = 0;
        for (int64_t i = 0; i < d.n; i++) {
            int ok = cp[i] == d.y[i];
            for (int a = 0; a < 3; a++) ok &= advex_sweep_adv_pred(s, a * 2 + e)[i] == d.y[i];
            all += ok;
        }
        ASSERT_EQ_INT(advex_sweep_result(s, 4 + e)->robust_all, all);
        ASSERT_EQ_INT(advex_sweep_result(s, e)->robust_all, advex_sweep_result(s, e)->robust_correct);
        ASSERT(advex_sweep_result(s, 4 + e)->robust_all <= advex_sweep_result(s, 2 + e)->robust_correct);
        const advex_eval_result *r = advex_sweep_result(s, 2 + e);
        ASSERT(r->max_pert <= eps[e] * (1 + 1e-6) && r->max_pert > 0.5 * eps[e]);
        ASSERT_EQ_INT(r->nan_count, 0);
        ASSERT(r->adv_min >= 0.0f && r->adv_max <= 1.0f);
    }
    advex_sweep_free(s);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST_MAIN(TEST_ENTRY(autoattack_log_lines), TEST_ENTRY(robustbench_json), TEST_ENTRY(gate_both_sides),
          TEST_ENTRY(junit_escapes), TEST_ENTRY(sweep_worst_case))
