/* Loss tests: cross-entropy, C&W margin and DLR on hand-computed examples, their gradients
 * wrt the logits against central finite differences, and defensive handling of labels out
 * of range and too few classes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

static const advex_loss kinds[3] = {ADVEX_LOSS_CE, ADVEX_LOSS_CW, ADVEX_LOSS_DLR};
static const char *kind_name[3] = {"CE", "CW", "DLR"};

TEST(known_values) {
    /* CE: log(e^1 + e^2 + e^3) - 1 = 2.40760596; grad = softmax - onehot */
    float z[3] = {1, 2, 3}, g[3], l;
    int32_t y = 0;
    double s = advex_loss_forward_backward(ADVEX_LOSS_CE, z, &y, 1, 3, &l, g);
    ASSERT_NEAR(l, 2.40760596, 1e-6);
    ASSERT_NEAR(s, 2.40760596, 1e-6);
    double den = exp(1.0) + exp(2.0) + exp(3.0);
    ASSERT_NEAR(g[0], exp(1.0) / den - 1.0, 1e-6);
    ASSERT_NEAR(g[2], exp(3.0) / den, 1e-6);

    /* CW: max_{j != y} z_j - z_y = 5 - 3 = 2; grad +1 at j*=1, -1 at y=2 */
    float zc[3] = {1, 5, 3};
    y = 2;
    advex_loss_forward_backward(ADVEX_LOSS_CW, zc, &y, 1, 3, &l, g);
    ASSERT_NEAR(l, 2.0, 1e-6);
    ASSERT_NEAR(g[0], 0, 0);
    ASSERT_NEAR(g[1], 1, 0);
    ASSERT_NEAR(g[2], -1, 0);
    y = 1; /* correctly classified: negative margin 3 - 5 */
    advex_loss_forward_backward(ADVEX_LOSS_CW, zc, &y, 1, 3, &l, g);
    ASSERT_NEAR(l, -2.0, 1e-6);

    /* DLR: z = (1,5,3,0), y = 2: -(3 - 5) / (5 - 1) = 0.5 */
    float zd[4] = {1, 5, 3, 0}, gd[4];
    y = 2;
    advex_loss_forward_backward(ADVEX_LOSS_DLR, zd, &y, 1, 4, &l, gd);
    ASSERT_NEAR(l, 0.5, 1e-6);
    /* d/dz_y = -1/4; d/dz_1 = +1/4 (the max other) + num/den^2 (pi1) = 1/4 - 2/16;
     * d/dz_0 = -num/den^2 (pi3) = 2/16 */
    ASSERT_NEAR(gd[2], -0.25, 1e-6);
    ASSERT_NEAR(gd[1], 0.25 - 0.125, 1e-6);
    ASSERT_NEAR(gd[0], 0.125, 1e-6);
    ASSERT_NEAR(gd[3], 0.0, 0);
    /* y = 1 (the top class): -(5 - 3) / (5 - 1) = -0.5 */
    y = 1;
    advex_loss_forward_backward(ADVEX_LOSS_DLR, zd, &y, 1, 4, &l, gd);
    ASSERT_NEAR(l, -0.5, 1e-6);
}

TEST(batch_sum_and_null_grad) {
    float z[6] = {0.5f, -1, 2, 3, 0, 1}, l[2], g[6];
    int32_t y[2] = {2, 0};
    for (int k = 0; k < 3; k++) {
        double s = advex_loss_forward_backward(kinds[k], z, y, 2, 3, l, g);
        ASSERT_NEAR(s, (double)l[0] + l[1], 1e-6);
        float l2[2];
        double s2 = advex_loss_forward_backward(kinds[k], z, y, 2, 3, l2, NULL);
        ASSERT_NEAR(s2, s, 0);
        ASSERT_NEAR(l2[1], l[1], 0);
        /* per-example: example 1's loss does not depend on example 0 */
        double s1 = advex_loss_forward_backward(kinds[k], z + 3, y + 1, 1, 3, NULL, NULL);
        ASSERT_NEAR(s1, l[1], 1e-6);
    }
}

TEST(gradients_fd) {
    advex_rng r;
    advex_rng_seed(&r, 42);
    enum { N = 6, C = 7 };
    float z[N * C], g[N * C], l[N];
    int32_t y[N];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < N * C; i++) z[i] = 4.0f * advex_rng_normal(&r);
        for (int i = 0; i < N; i++) y[i] = (int32_t)advex_rng_below(&r, C);
        advex_loss_forward_backward(kinds[k], z, y, N, C, l, g);
        int checked = 0;
        for (int i = 0; i < N * C; i++) {
            const double h = 1e-2;
            float z0 = z[i];
            z[i] = z0 + (float)h;
            double fp = advex_loss_forward_backward(kinds[k], z, y, N, C, NULL, NULL);
            z[i] = z0 - (float)h;
            double fm = advex_loss_forward_backward(kinds[k], z, y, N, C, NULL, NULL);
            z[i] = z0;
            double f0 = advex_loss_forward_backward(kinds[k], z, y, N, C, NULL, NULL);
            /* CW and DLR are piecewise smooth: skip points where the order of logits changes */
            if (fabs((fp - f0) - (f0 - fm)) / h > 0.05 * (1.0 + fabs((fp - fm) / (2 * h)))) continue;
            double num = (fp - fm) / (2 * h);
            checked++;
            ASSERT_MSG(fabs(num - g[i]) <= 2e-3 + 1e-2 * fabs(num),
                       "%s logit %d: analytic %.6g numeric %.6g", kind_name[k], i, (double)g[i], num);
        }
        ASSERT_MSG(checked > N * C / 2, "%s: only %d of %d points checked", kind_name[k], checked, N * C);
    }
}

TEST(ce_stable_for_large_logits) {
    float z[3] = {1000, 0, -1000}, g[3], l;
    int32_t y = 1;
    advex_loss_forward_backward(ADVEX_LOSS_CE, z, &y, 1, 3, &l, g);
    ASSERT(isfinite(l));
    ASSERT_NEAR(l, 1000.0, 1e-3);
    ASSERT_NEAR(g[0], 1.0, 1e-6);
    ASSERT_NEAR(g[1], -1.0, 1e-6);
}

TEST(defensive_labels) {
    float z[8] = {1, 2, 3, 4, 4, 3, 2, 1}, g[8], l[2];
    int32_t y[2] = {-1, 4};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 8; i++) g[i] = 99.0f;
        double s = advex_loss_forward_backward(kinds[k], z, y, 2, 4, l, g);
        ASSERT_NEAR(s, 0, 0);
        ASSERT_NEAR(l[0], 0, 0);
        ASSERT_NEAR(l[1], 0, 0);
        for (int i = 0; i < 8; i++) ASSERT_NEAR(g[i], 0, 0);
    }
    /* DLR needs three classes: two give a zero loss and gradient instead of reading past z */
    float z2[2] = {1, 2}, g2[2];
    int32_t y2 = 0;
    ASSERT_NEAR(advex_loss_forward_backward(ADVEX_LOSS_DLR, z2, &y2, 1, 2, NULL, g2), 0, 0);
    ASSERT_NEAR(g2[0], 0, 0);
    ASSERT_NEAR(g2[1], 0, 0);
    /* one class: CE 0, CW 0 */
    float z1 = 3.0f, g1 = 5.0f;
    ASSERT_NEAR(advex_loss_forward_backward(ADVEX_LOSS_CE, &z1, &y2, 1, 1, NULL, &g1), 0, 1e-7);
    ASSERT_NEAR(g1, 0, 1e-7);
    ASSERT_NEAR(advex_loss_forward_backward(ADVEX_LOSS_CW, &z1, &y2, 1, 1, NULL, &g1), 0, 0);
}

TEST_MAIN(TEST_ENTRY(known_values), TEST_ENTRY(batch_sum_and_null_grad), TEST_ENTRY(gradients_fd),
          TEST_ENTRY(ce_stable_for_large_logits), TEST_ENTRY(defensive_labels))
