/* Whole-model checks: built-in architectures build with the right shapes, forward is
 * deterministic and batch-independent, input and parameter gradients agree with central
 * finite differences (directional, in double), and a training step lowers the loss. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

static void fill_uniform(float *x, int64_t n, uint64_t seed) {
    advex_rng r;
    advex_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = advex_rng_uniform(&r);
}

TEST(builds_all_archs) {
    const char *names[] = {"small", "cnn", "wide", "resnet"};
    const int64_t want_params[] = {166406, 3274634, -1, -1};
    for (int i = 0; i < 4; i++) {
        advex_model *m = NULL;
        ASSERT_OK(advex_model_build(names[i], 1, &m));
        int64_t chw[3];
        advex_model_input_shape(m, chw);
        ASSERT_EQ_INT(chw[0], 1);
        ASSERT_EQ_INT(chw[1], 28);
        ASSERT_EQ_INT(chw[2], 28);
        ASSERT_EQ_INT(advex_model_num_classes(m), 10);
        if (want_params[i] > 0) ASSERT_EQ_INT(advex_model_num_params(m), want_params[i]);
        advex_model_free(m);
    }
    advex_model *m = NULL;
    ASSERT_STATUS(advex_model_build("nope", 1, &m), ADVEX_ERR_ARG);
    ASSERT(m == NULL);
    ASSERT(strstr(advex_last_error(), "nope") != NULL);
}

/* Logits of an example do not depend on the batch it is in (eval mode). */
TEST(forward_batch_independent) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("resnet", 3, &m));
    float *x = malloc(5 * 784 * sizeof(float)), z5[50], z1[10];
    fill_uniform(x, 5 * 784, 7);
    ASSERT_OK(advex_model_forward(m, x, 5, z5));
    for (int i = 0; i < 5; i++) {
        ASSERT_OK(advex_model_forward(m, x + i * 784, 1, z1));
        for (int k = 0; k < 10; k++) ASSERT_NEAR(z1[k], z5[i * 10 + k], 1e-5 * (1 + fabs(z1[k])));
    }
    x[3] = NAN;
    ASSERT_STATUS(advex_model_forward(m, x, 5, z5), ADVEX_ERR_NUMERIC);
    free(x);
    advex_model_free(m);
}

static double total_loss(advex_model *m, const float *x, const int32_t *y, int n) {
    float z[64 * 10], l[64];
    advex_model_forward(m, x, n, z);
    return advex_loss_forward_backward(ADVEX_LOSS_CE, z, y, n, 10, l, NULL);
}

/* <grad, v> against (L(x + h v) - L(x - h v)) / 2h for random directions v. */
static void check_input_grad(const char *arch) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build(arch, 11, &m));
    const int n = 3, d = 784;
    float *x = malloc(n * d * sizeof(float)), *g = malloc(n * d * sizeof(float)), *xp = malloc(n * d * sizeof(float));
    int32_t y[3] = {1, 4, 9};
    fill_uniform(x, n * d, 5);
    ASSERT_OK(advex_model_input_grad(m, x, y, n, ADVEX_LOSS_CE, g, NULL, NULL));
    advex_rng r;
    advex_rng_seed(&r, 99);
    int good = 0;
    double gn = 0;
    for (int i = 0; i < n * d; i++) gn += (double)g[i] * g[i];
    gn = sqrt(gn) + 1e-30;
    for (int t = 0; t < 6; t++) {
        /* direction: the normalised gradient plus a random part, so the derivative is
         * large against float32 rounding of the loss, yet every element is exercised */
        static float v[3 * 784];
        double rn = 0, dot = 0, h = 1e-2;
        for (int i = 0; i < n * d; i++) { v[i] = advex_rng_normal(&r); rn += (double)v[i] * v[i]; }
        rn = sqrt(rn);
        for (int i = 0; i < n * d; i++) { v[i] = (float)(g[i] / gn + 0.7 * v[i] / rn); dot += (double)g[i] * v[i]; }
        for (int i = 0; i < n * d; i++) xp[i] = x[i] + (float)h * v[i];
        double lp = total_loss(m, xp, y, n);
        for (int i = 0; i < n * d; i++) xp[i] = x[i] - (float)h * v[i];
        double lm = total_loss(m, xp, y, n);
        double fd = (lp - lm) / (2 * h);
        double rel = fabs(fd - dot) / (fabs(fd) + fabs(dot) + 1e-6);
        if (rel < 1e-2) good++;
        else fprintf(stderr, "  %s direction %d: fd %.6g analytic %.6g rel %.3g\n", arch, t, fd, dot, rel);
    }
    ASSERT_MSG(good >= 5, "%s: only %d of 6 directional derivatives match", arch, good);
    free(x); free(g); free(xp);
    advex_model_free(m);
}

TEST(input_grad_small) { check_input_grad("small"); }
TEST(input_grad_cnn) { check_input_grad("cnn"); }
TEST(input_grad_resnet) { check_input_grad("resnet"); }

/* Parameter gradients of the mean CE in train mode (BatchNorm batch statistics), whole
 * model, against a directional finite difference in parameter space. */
TEST(param_grad_resnet_train_mode) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("resnet", 2, &m));
    const int n = 4, d = 784;
    float *x = malloc(n * d * sizeof(float));
    int32_t y[4] = {0, 3, 5, 7};
    float z[40], l[4], dl[40];
    fill_uniform(x, n * d, 8);
    int64_t np = m->n_params;
    float *p0 = malloc(np * sizeof(float)), *v = malloc(np * sizeof(float)), *g = malloc(np * sizeof(float));
    float *st0 = malloc(m->n_consts * sizeof(float) + 4);
    memcpy(p0, m->params, np * sizeof(float));
    memcpy(st0, m->consts, m->n_consts * sizeof(float));
    ASSERT_OK(advex_model_plan(m, n, 1, 1));
    advex_model_run_forward(m, x);
    advex_loss_forward_backward(ADVEX_LOSS_CE, advex_model_logits(m), y, n, 10, l, dl);
    memset(m->grads, 0, np * sizeof(float));
    advex_model_run_backward(m, dl);
    memcpy(g, m->grads, np * sizeof(float));
    advex_rng r;
    advex_rng_seed(&r, 4);
    int good = 0;
    double gn = 0;
    for (int64_t i = 0; i < np; i++) gn += (double)g[i] * g[i];
    gn = sqrt(gn) + 1e-30;
    for (int t = 0; t < 5; t++) {
        double dot = 0, h = 1e-3, rn = 0;
        for (int64_t i = 0; i < np; i++) { v[i] = advex_rng_normal(&r); rn += (double)v[i] * v[i]; }
        rn = sqrt(rn);
        for (int64_t i = 0; i < np; i++) { v[i] = (float)(g[i] / gn + 0.7 * v[i] / rn); dot += (double)g[i] * v[i]; }
        double lv[2];
        for (int s = 0; s < 2; s++) {
            for (int64_t i = 0; i < np; i++) m->params[i] = p0[i] + (s ? -1 : 1) * (float)h * v[i];
            advex_model_run_forward(m, x);
            memcpy(z, advex_model_logits(m), sizeof z);
            lv[s] = advex_loss_forward_backward(ADVEX_LOSS_CE, z, y, n, 10, l, NULL);
        }
        double fd = (lv[0] - lv[1]) / (2 * h);
        double rel = fabs(fd - dot) / (fabs(fd) + fabs(dot) + 1e-6);
        if (rel < 1e-2) good++;
        else fprintf(stderr, "  direction %d: fd %.6g analytic %.6g rel %.3g\n", t, fd, dot, rel);
    }
    ASSERT_MSG(good >= 4, "only %d of 5 parameter directional derivatives match", good);
    memcpy(m->params, p0, np * sizeof(float));
    memcpy(m->consts, st0, m->n_consts * sizeof(float));
    free(x); free(p0); free(v); free(g); free(st0);
    advex_model_free(m);
}

/* A few Adam steps on one batch lower its loss (sanity of the whole training path). */
TEST(training_lowers_loss) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 5, &m));
    advex_dataset d = {0};
    d.n = 64; d.c = 1; d.h = 28; d.w = 28; d.num_classes = 10;
    d.x = malloc(64 * 784 * sizeof(float));
    d.y = malloc(64 * sizeof(int32_t));
    fill_uniform(d.x, 64 * 784, 3);
    for (int i = 0; i < 64; i++) d.y[i] = i % 10;
    double before = total_loss(m, d.x, d.y, 64);
    advex_train_config c;
    advex_train_config_default(&c);
    c.epochs = 20;
    c.batch = 16;
    ASSERT_OK(advex_train(m, &d, &c, NULL, NULL));
    double after = total_loss(m, d.x, d.y, 64);
    ASSERT_MSG(after < 0.5 * before, "loss %g -> %g", before, after);
    free(d.x); free(d.y);
    advex_model_free(m);
}

/* Same seed, same result; different seed, different weights. */
TEST(training_deterministic) {
    float w[2][4];
    for (int rep = 0; rep < 2; rep++) {
        advex_model *m = NULL;
        ASSERT_OK(advex_model_build("small", 5, &m));
        advex_dataset d = {0};
        d.n = 40; d.c = 1; d.h = 28; d.w = 28; d.num_classes = 10;
        d.x = malloc(40 * 784 * sizeof(float));
        d.y = malloc(40 * sizeof(int32_t));
        fill_uniform(d.x, 40 * 784, 3);
        for (int i = 0; i < 40; i++) d.y[i] = (i * 7) % 10;
        advex_train_config c;
        advex_train_config_default(&c);
        c.epochs = 2; c.batch = 8; c.seed = 17;
        ASSERT_OK(advex_train(m, &d, &c, NULL, NULL));
        memcpy(w[rep], m->params + 100, sizeof w[rep]);
        free(d.x); free(d.y);
        advex_model_free(m);
    }
    ASSERT(memcmp(w[0], w[1], sizeof w[0]) == 0);
}

TEST(lr_schedules) {
    ASSERT_NEAR(advex_lr_at(ADVEX_LR_CONSTANT, 0.1f, 0.7), 0.1, 1e-7);
    ASSERT_NEAR(advex_lr_at(ADVEX_LR_COSINE, 0.1f, 0.0), 0.1, 1e-7);
    ASSERT_NEAR(advex_lr_at(ADVEX_LR_COSINE, 0.1f, 0.5), 0.05, 1e-7);
    ASSERT_NEAR(advex_lr_at(ADVEX_LR_COSINE, 0.1f, 1.0), 0.0, 1e-7);
    ASSERT_NEAR(advex_lr_at(ADVEX_LR_ONECYCLE, 0.1f, 0.2), 0.05, 1e-7);
    ASSERT_NEAR(advex_lr_at(ADVEX_LR_ONECYCLE, 0.1f, 0.4), 0.1, 1e-7);
    ASSERT_NEAR(advex_lr_at(ADVEX_LR_ONECYCLE, 0.1f, 0.7), 0.05, 1e-7);
    ASSERT_NEAR(advex_lr_at(ADVEX_LR_STEP, 0.1f, 0.6), 0.01, 1e-7);
    ASSERT_NEAR(advex_lr_at(ADVEX_LR_STEP, 0.1f, 0.9), 0.001, 1e-7);
    advex_lr_schedule s;
    ASSERT_OK(advex_lr_schedule_parse("onecycle", &s));
    ASSERT_EQ_INT(s, ADVEX_LR_ONECYCLE);
    ASSERT_STATUS(advex_lr_schedule_parse("linear", &s), ADVEX_ERR_ARG);
}

TEST_MAIN(TEST_ENTRY(lr_schedules), TEST_ENTRY(builds_all_archs), TEST_ENTRY(forward_batch_independent), TEST_ENTRY(input_grad_small),
          TEST_ENTRY(input_grad_cnn), TEST_ENTRY(input_grad_resnet), TEST_ENTRY(param_grad_resnet_train_mode),
          TEST_ENTRY(training_lowers_loss), TEST_ENTRY(training_deterministic))
