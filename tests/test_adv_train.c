/* Adversarial training (issue 8): each mode runs and buys robustness over clean training on
 * a small subset; resume reproduces an uninterrupted run; corrupt checkpoints are clear
 * errors; presets and settings are validated; the catastrophic-overfitting guard fires on
 * synthetic accuracy sequences and on a real run configured to overfit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

static advex_dataset g_train, g_test;
static int g_loaded;

static int load_data(void) {
    if (g_loaded) return g_loaded > 0;
    g_loaded = -1;
    advex_set_threads(1); /* the fastest setting on a shared 2-core machine; results match */
    if (advex_dataset_load("fashion-mnist:train", NULL, 3000, &g_train)) return 0;
    if (advex_dataset_load("fashion-mnist:test", NULL, 500, &g_test)) return 0;
    g_loaded = 1;
    return 1;
}

/* the first n examples of the loaded training set, as a view */
static advex_dataset subset(int64_t n) {
    advex_dataset d = g_train;
    d.n = n;
    return d;
}

static double pgd_accuracy(advex_model *m, float eps) {
    advex_attack_config ac;
    advex_attack_config_default(&ac);
    ac.kind = ADVEX_ATTACK_PGD;
    ac.eps = eps;
    ac.steps = 10;
    advex_eval_result r;
    if (advex_eval_attack(m, &g_test, &ac, 256, NULL, NULL, NULL, &r)) return -1;
    return r.robust_accuracy;
}

static void base_config(advex_train_config *c) {
    advex_train_config_default(c);
    c->epochs = 3;
    c->batch = 64;
    c->opt = ADVEX_OPT_SGD;
    c->lr = 0.05f;
    c->schedule = ADVEX_LR_ONECYCLE;
    c->seed = 3;
}

TEST(overfit_detector_synthetic) {
    /* steady progress: no alarm */
    double p1[] = {0.30, 0.40, 0.45, 0.47}, f1[] = {0.40, 0.50, 0.55, 0.58};
    ASSERT_EQ_INT(advex_train_overfit_check(p1, f1, 4, 0.2), 0);
    /* PGD collapses while FGSM rises: catastrophic overfitting */
    double p2[] = {0.30, 0.42, 0.45, 0.05}, f2[] = {0.40, 0.50, 0.55, 0.85};
    ASSERT_EQ_INT(advex_train_overfit_check(p2, f2, 4, 0.2), 1);
    ASSERT_EQ_INT(advex_train_overfit_check(p2, f2, 3, 0.2), 0);  /* not yet */
    /* both collapse (divergence, not gradient masking): not this guard's case */
    double f3[] = {0.40, 0.50, 0.55, 0.10};
    ASSERT_EQ_INT(advex_train_overfit_check(p2, f3, 4, 0.2), 0);
    /* a drop within the margin */
    double p4[] = {0.50, 0.35}, f4[] = {0.5, 0.6};
    ASSERT_EQ_INT(advex_train_overfit_check(p4, f4, 2, 0.2), 0);
    ASSERT_EQ_INT(advex_train_overfit_check(p4, f4, 2, 0.1), 1);
    ASSERT_EQ_INT(advex_train_overfit_check(p2, f2, 4, 1.5), 0);  /* > 1 disables */
}

TEST(modes_and_presets_parse) {
    advex_adv_mode m;
    ASSERT_OK(advex_adv_mode_parse("trades", &m));
    ASSERT_EQ_INT(m, ADVEX_ADV_TRADES);
    ASSERT_OK(advex_adv_mode_parse("fgsm-rs", &m));
    ASSERT_EQ_INT(m, ADVEX_ADV_FGSM_RS);
    ASSERT_STATUS(advex_adv_mode_parse("fgsm_rs", &m), ADVEX_ERR_ARG);
    ASSERT(strcmp(advex_adv_mode_name(ADVEX_ADV_PGD), "pgd") == 0);
    advex_train_config c;
    const char *arch = NULL;
    int threads = -1;
    ASSERT_OK(advex_train_preset("fmnist-robust", &c, &arch, &threads));
    ASSERT(arch && strcmp(arch, "small") == 0);
    ASSERT(c.adv != ADVEX_ADV_NONE);
    ASSERT_NEAR(c.eps, 0.1, 1e-7);
    ASSERT(c.holdout > 0);
    ASSERT_OK(advex_train_config_check(&c));
    ASSERT_OK(advex_train_preset("fmnist-fast", &c, NULL, NULL));
    ASSERT_EQ_INT(c.adv, ADVEX_ADV_FGSM_RS);
    ASSERT_STATUS(advex_train_preset("cifar-robust", &c, NULL, NULL), ADVEX_ERR_ARG);
    ASSERT(strstr(advex_last_error(), "fmnist-robust") != NULL);
}

TEST(settings_validated) {
    advex_train_config c;
    base_config(&c);
    ASSERT_OK(advex_train_config_check(&c));
    c.adv = ADVEX_ADV_PGD;
    ASSERT_STATUS(advex_train_config_check(&c), ADVEX_ERR_ARG);  /* eps 0 */
    c.eps = 0.1f;
    ASSERT_OK(advex_train_config_check(&c));
    c.eps_ramp = 4;  /* > epochs */
    ASSERT_STATUS(advex_train_config_check(&c), ADVEX_ERR_ARG);
    c.eps_ramp = 1;
    c.adv_weight = 1.5f;
    ASSERT_STATUS(advex_train_config_check(&c), ADVEX_ERR_ARG);
    c.adv_weight = -1;
    c.resume = 1;  /* no checkpoint */
    ASSERT_STATUS(advex_train_config_check(&c), ADVEX_ERR_ARG);
    c.resume = 0;
    c.adv = ADVEX_ADV_FGSM_RS;
    c.pgd_from_epoch = 2;  /* only for pgd/trades */
    ASSERT_STATUS(advex_train_config_check(&c), ADVEX_ERR_ARG);
    c.pgd_from_epoch = 0;
    c.eps = 1.5f;
    ASSERT_STATUS(advex_train_config_check(&c), ADVEX_ERR_ARG);
    c.eps = 0.1f;
    c.adv = ADVEX_ADV_TRADES;
    c.adv_weight = 0.5f;
    ASSERT_STATUS(advex_train_config_check(&c), ADVEX_ERR_ARG);
    if (!load_data()) return;
    /* holdout swallowing the data set */
    advex_model *m;
    ASSERT_OK(advex_model_build("small", 1, &m));
    base_config(&c);
    advex_dataset d = subset(100);
    c.holdout = 100;
    ASSERT_STATUS(advex_train(m, &d, &c, NULL, NULL), ADVEX_ERR_ARG);
    advex_model_free(m);
}

/* Every mode trains and is more robust than clean training with the same budget. */
TEST(modes_improve_robustness) {
    if (!load_data()) { printf("  (skipped: no Fashion-MNIST)\n"); return; }
    advex_dataset d = subset(2000);
    const advex_adv_mode modes[] = {ADVEX_ADV_NONE, ADVEX_ADV_FGSM, ADVEX_ADV_FGSM_RS, ADVEX_ADV_PGD, ADVEX_ADV_TRADES};
    double rob[5];
    for (int i = 0; i < 5; i++) {
        advex_model *m;
        ASSERT_OK(advex_model_build("small", 1, &m));
        advex_train_config c;
        base_config(&c);
        c.adv = modes[i];
        c.eps = modes[i] == ADVEX_ADV_NONE ? 0.0f : 0.1f;
        c.pgd_steps = 3;
        c.beta = 3;
        ASSERT_OK(advex_train(m, &d, &c, NULL, NULL));
        rob[i] = pgd_accuracy(m, 0.1f);
        int64_t correct;
        ASSERT_OK(advex_eval_clean(m, &g_test, 256, &correct));
        printf("  %-8s clean %.1f%%  PGD-10 %.1f%%\n", advex_adv_mode_name(modes[i]), 100.0 * (double)correct / 500.0,
               100 * rob[i]);
        ASSERT((double)correct / 500.0 > 0.45);
        advex_model_free(m);
        if (i > 0) ASSERT_MSG(rob[i] > rob[0] + 0.05, "%s: PGD accuracy %.3f not above clean training's %.3f",
                              advex_adv_mode_name(modes[i]), rob[i], rob[0]);
    }
}

typedef struct stopper { int epoch, batch; } stopper;
/* stop at (epoch, batch) (batch 0: at the end of that epoch) */
static int stop_at(void *u, const advex_train_progress *p) {
    const stopper *s = u;
    if (p->epoch != s->epoch) return 0;
    return s->batch == 0 ? p->epoch_end : (!p->epoch_end && p->batch == s->batch);
}

static void resume_config(advex_train_config *c, const char *ckpt) {
    base_config(c);
    c->epochs = 3;
    c->adv = ADVEX_ADV_PGD;
    c->eps = 0.1f;
    c->pgd_steps = 2;
    c->pgd_from_epoch = 2;
    c->eps_ramp = 2;
    c->opt = ADVEX_OPT_ADAM;
    c->lr = 3e-3f;
    c->weight_decay = 1e-4f;
    c->holdout = 60;
    c->holdout_steps = 2;
    c->checkpoint = ckpt;
}

TEST(resume_reproduces_uninterrupted_run) {
    if (!load_data()) { printf("  (skipped: no Fashion-MNIST)\n"); return; }
    advex_dataset d = subset(300);
    char straight[512], cut[512];
    snprintf(straight, sizeof straight, "%s/straight.ckpt", advex_test_tmpdir());
    snprintf(cut, sizeof cut, "%s/cut.ckpt", advex_test_tmpdir());
    advex_train_config c;
    advex_model *a, *b;
    ASSERT_OK(advex_model_build("resnet", 5, &a));  /* BatchNorm: running stats must resume too */
    resume_config(&c, straight);
    ASSERT_OK(advex_train(a, &d, &c, NULL, NULL));
    /* killed at the end of epoch 1, then mid-epoch 2 (that epoch is lost), then resumed */
    ASSERT_OK(advex_model_build("resnet", 5, &b));
    resume_config(&c, cut);
    stopper s1 = {1, 0}, s2 = {2, 2};
    ASSERT_STATUS(advex_train(b, &d, &c, stop_at, &s1), ADVEX_ERR_INTERRUPTED);
    advex_model_free(b);
    ASSERT_OK(advex_model_build("resnet", 5, &b));
    c.resume = 1;
    ASSERT_STATUS(advex_train(b, &d, &c, stop_at, &s2), ADVEX_ERR_INTERRUPTED);
    advex_model_free(b);
    ASSERT_OK(advex_model_build("resnet", 5, &b));
    ASSERT_OK(advex_train(b, &d, &c, NULL, NULL));
    double maxdiff = 0;
    for (int64_t i = 0; i < a->net->n_params; i++) {
        double df = fabs((double)a->net->params[i] - (double)b->net->params[i]);
        if (df > maxdiff) maxdiff = df;
    }
    for (int64_t i = 0; i < a->net->n_consts; i++) {
        double df = fabs((double)a->net->consts[i] - (double)b->net->consts[i]);
        if (df > maxdiff) maxdiff = df;
    }
    printf("  max |straight - resumed| = %g over %lld parameters\n", maxdiff, (long long)a->net->n_params);
    ASSERT(maxdiff <= 1e-6);
    advex_model_free(a);
    advex_model_free(b);
}

TEST(corrupt_checkpoint_is_an_error) {
    if (!load_data()) { printf("  (skipped: no Fashion-MNIST)\n"); return; }
    advex_dataset d = subset(600);
    char path[512];
    snprintf(path, sizeof path, "%s/corrupt.ckpt", advex_test_tmpdir());
    advex_train_config c;
    base_config(&c);
    c.epochs = 1;
    c.checkpoint = path;
    advex_model *m;
    ASSERT_OK(advex_model_build("small", 1, &m));
    ASSERT_OK(advex_train(m, &d, &c, NULL, NULL));
    /* read, flip one byte in the middle, write back */
    FILE *f = fopen(path, "rb");
    ASSERT(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len);
    ASSERT(buf && fread(buf, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    ASSERT(memcmp(buf, "ADVXCKPT", 8) == 0);
    c.resume = 1;
    /* a different batch size: refused, naming the setting */
    c.batch = 32;
    ASSERT_STATUS(advex_train(m, &d, &c, NULL, NULL), ADVEX_ERR_ARG);
    ASSERT(strstr(advex_last_error(), "batch") != NULL);
    c.batch = 64;
    buf[len / 2] ^= 0x40;
    f = fopen(path, "wb");
    fwrite(buf, 1, (size_t)len, f);
    fclose(f);
    ASSERT_STATUS(advex_train(m, &d, &c, NULL, NULL), ADVEX_ERR_FORMAT);
    ASSERT(strstr(advex_last_error(), "crc32") != NULL);
    /* truncated */
    f = fopen(path, "wb");
    fwrite(buf, 1, (size_t)len / 3, f);
    fclose(f);
    ASSERT_STATUS(advex_train(m, &d, &c, NULL, NULL), ADVEX_ERR_FORMAT);
    /* not a checkpoint at all */
    f = fopen(path, "wb");
    fputs("hello, this is not a checkpoint at all; it is long enough to have a header though....."
          "...............................................................................................", f);
    fclose(f);
    ASSERT_STATUS(advex_train(m, &d, &c, NULL, NULL), ADVEX_ERR_FORMAT);
    ASSERT(strstr(advex_last_error(), "magic") != NULL);
    free(buf);
    advex_model_free(m);
}

typedef struct co_log { int overfit, best_epoch, epochs; double pgd[16], fgsm[16]; } co_log;
static int co_progress(void *u, const advex_train_progress *p) {
    co_log *l = u;
    if (!p->epoch_end || p->epoch > 16) return 0;
    l->epochs = p->epoch;
    l->overfit |= p->overfit;
    l->best_epoch = p->best_epoch;
    l->pgd[p->epoch - 1] = p->val_pgd;
    l->fgsm[p->epoch - 1] = p->val_fgsm;
    printf("  epoch %d: held-out clean %.1f%% FGSM %.1f%% PGD %.1f%%%s\n", p->epoch, 100 * p->val_clean,
           100 * p->val_fgsm, 100 * p->val_pgd, p->overfit ? "  <- catastrophic overfitting, best restored" : "");
    return 0;
}

/* A short real run of the overfitting-prone recipe (FGSM without a random start, eps ramped
 * to a large 0.25, constant Adam) with a tight guard margin. Catastrophic overfitting
 * itself is not reliably provoked in this budget (docs/training.md), so the test checks
 * the guard is consistent on the real held-out sequence: it fires exactly when the
 * detector says so on the logged accuracies, and when it fires, the model it leaves has
 * the best epoch's held-out PGD accuracy again. */
TEST(overfit_guard_real_run) {
    if (!load_data()) { printf("  (skipped: no Fashion-MNIST)\n"); return; }
    advex_dataset d = subset(2000);
    advex_train_config c;
    base_config(&c);
    c.epochs = 5;
    c.adv = ADVEX_ADV_FGSM;
    c.adv_weight = 0;
    c.eps = 0.25f;
    c.eps_ramp = 3;
    c.opt = ADVEX_OPT_ADAM;
    c.lr = 3e-3f;
    c.schedule = ADVEX_LR_CONSTANT;
    c.holdout = 400;
    c.holdout_steps = 5;
    c.overfit_drop = 0.01f;
    advex_model *m;
    ASSERT_OK(advex_model_build("small", 2, &m));
    co_log l;
    memset(&l, 0, sizeof l);
    ASSERT_OK(advex_train(m, &d, &c, co_progress, &l));
    int fired_at = 0;
    for (int e = 1; e <= l.epochs && !fired_at; e++)
        if (advex_train_overfit_check(l.pgd, l.fgsm, e, 0.01)) fired_at = e;
    ASSERT_EQ_INT(l.overfit, fired_at != 0);
    if (fired_at) {
        ASSERT_EQ_INT(l.epochs, fired_at);  /* stopped there */
        ASSERT(l.best_epoch >= 1 && l.best_epoch < fired_at);
        advex_dataset v = g_train;
        v.x = g_train.x + 1600 * 784;
        v.y = g_train.y + 1600;
        v.n = 400;
        advex_attack_config ac;
        advex_attack_config_default(&ac);
        ac.kind = ADVEX_ATTACK_PGD;
        ac.eps = c.eps;
        ac.steps = 5;
        ac.restarts = 1;
        ac.seed = c.seed ^ 0x401d0u;
        advex_eval_result r;
        ASSERT_OK(advex_eval_attack(m, &v, &ac, 256, NULL, NULL, NULL, &r));
        ASSERT_NEAR(r.robust_accuracy, l.pgd[l.best_epoch - 1], 1e-9);
    } else {
        ASSERT_EQ_INT(l.epochs, c.epochs);
    }
    advex_model_free(m);
}

TEST_MAIN(TEST_ENTRY(overfit_detector_synthetic), TEST_ENTRY(modes_and_presets_parse), TEST_ENTRY(settings_validated),
          TEST_ENTRY(modes_improve_robustness), TEST_ENTRY(resume_reproduces_uninterrupted_run),
          TEST_ENTRY(corrupt_checkpoint_is_an_error), TEST_ENTRY(overfit_guard_real_run))
