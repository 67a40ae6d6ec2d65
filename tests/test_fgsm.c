/* FGSM and FGSM-RS properties, checked independently of the attack code: L-inf bound,
 * [0,1] range, eps = 0 is the identity, the loss rises (untargeted) or the target's
 * probability rises (targeted), determinism for a seed; eps and target parsing. */
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"
#include "harness.h"
#include "internal.h"

enum { N = 32, D = 784, K = 10 };

static float *make_batch(uint64_t seed) {
    float *x = malloc(N * D * sizeof(float));
    advex_rng r;
    advex_rng_seed(&r, seed);
    for (int i = 0; i < N * D; i++) {
        float u = advex_rng_uniform(&r);
        x[i] = u < 0.3f ? 0.0f : (u > 0.9f ? 1.0f : u); /* many pixels at the bounds, like real images */
    }
    return x;
}

static void labels(int32_t *y) { for (int i = 0; i < N; i++) y[i] = (i * 3) % K; }

static double mean_ce(advex_model *m, const float *x, const int32_t *y) {
    float z[N * K], l[N];
    advex_model_forward(m, x, N, z);
    return advex_loss_forward_backward(ADVEX_LOSS_CE, z, y, N, K, l, NULL) / N;
}

static double mean_prob(advex_model *m, const float *x, const int32_t *t) {
    float z[N * K];
    advex_model_forward(m, x, N, z);
    double s = 0;
    for (int i = 0; i < N; i++) {
        double mx = z[i * K], den = 0;
        for (int k = 1; k < K; k++) if (z[i * K + k] > mx) mx = z[i * K + k];
        for (int k = 0; k < K; k++) den += exp(z[i * K + k] - mx);
        s += exp(z[i * K + t[i]] - mx) / den;
    }
    return s / N;
}

static void check_bounds(const float *x, const float *xa, float eps, int *ok) {
    *ok = 1;
    for (int i = 0; i < N * D; i++)
        if (fabsf(xa[i] - x[i]) > eps * (1 + 1e-6f) + 1e-7f || xa[i] < 0 || xa[i] > 1 || !isfinite(xa[i])) {
            fprintf(stderr, "  element %d: x %g x' %g eps %g\n", i, x[i], xa[i], eps);
            *ok = 0;
            return;
        }
}

TEST(fgsm_bounds_and_loss_rises) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 1, &m));
    float *x = make_batch(1), *xa = malloc(N * D * sizeof(float));
    int32_t y[N];
    labels(y);
    advex_attack_config c;
    advex_attack_config_default(&c);
    const float eps_list[] = {0.01f, 0.05f, 0.1f, 0.3f};
    double base = mean_ce(m, x, y);
    for (int e = 0; e < 4; e++) {
        c.eps = eps_list[e];
        ASSERT_OK(advex_attack_batch(m, &c, x, y, N, 0, xa));
        int ok;
        check_bounds(x, xa, c.eps, &ok);
        ASSERT(ok);
        double after = mean_ce(m, xa, y);
        ASSERT_MSG(after > base, "eps %g: mean CE %g did not rise above %g", (double)c.eps, after, base);
        /* FGSM moves every pixel whose gradient is non-zero by eps unless clipped */
        int moved = 0;
        for (int i = 0; i < N * D; i++) moved += xa[i] != x[i];
        ASSERT_MSG(moved > N * D / 4, "only %d pixels moved", moved);
    }
    free(x); free(xa);
    advex_model_free(m);
}

/* Independent recomputation: x' equals clip(x + eps sign(g)) with g from input_grad. */
TEST(fgsm_matches_definition) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("cnn", 2, &m));
    float *x = make_batch(2), *xa = malloc(N * D * sizeof(float)), *g = malloc(N * D * sizeof(float));
    int32_t y[N];
    labels(y);
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.eps = 0.07f;
    ASSERT_OK(advex_attack_batch(m, &c, x, y, N, 0, xa));
    ASSERT_OK(advex_model_input_grad(m, x, y, N, ADVEX_LOSS_CE, g, NULL, NULL));
    for (int i = 0; i < N * D; i++) {
        float s = g[i] > 0 ? 1.0f : (g[i] < 0 ? -1.0f : 0.0f);
        float want = fminf(1.0f, fmaxf(0.0f, x[i] + c.eps * s));
        ASSERT_MSG(xa[i] == want, "element %d: got %g want %g (g %g)", i, xa[i], want, g[i]);
    }
    /* in place (x_adv == x): the step reads each element before it writes it; also for
     * FGSM-RS, whose step starts from its random point */
    float *xi = malloc(N * D * sizeof(float)), *xr = malloc(N * D * sizeof(float));
    ASSERT(xi && xr);
    advex_attack_kind kinds[] = {ADVEX_ATTACK_FGSM, ADVEX_ATTACK_FGSM_RS};
    for (int k = 0; k < 2; k++) {
        c.kind = kinds[k];
        ASSERT_OK(advex_attack_batch(m, &c, x, y, N, 0, xr));
        memcpy(xi, x, N * D * sizeof(float));
        ASSERT_OK(advex_attack_batch(m, &c, xi, y, N, 0, xi));
        ASSERT_MSG(memcmp(xi, xr, N * D * sizeof(float)) == 0, "%s in place differs", k ? "FGSM-RS" : "FGSM");
    }
    free(xi); free(xr);
    free(x); free(xa); free(g);
    advex_model_free(m);
}

TEST(eps_zero_is_identity) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 1, &m));
    float *x = make_batch(3), *xa = malloc(N * D * sizeof(float));
    int32_t y[N];
    labels(y);
    advex_attack_config c;
    advex_attack_config_default(&c);
    advex_attack_kind kinds[] = {ADVEX_ATTACK_FGSM, ADVEX_ATTACK_FGSM_RS};
    for (int k = 0; k < 2; k++) {
        c.kind = kinds[k];
        c.eps = 0;
        ASSERT_OK(advex_attack_batch(m, &c, x, y, N, 0, xa));
        ASSERT(memcmp(x, xa, N * D * sizeof(float)) == 0);
    }
    c.eps = -0.1f;
    ASSERT_STATUS(advex_attack_batch(m, &c, x, y, N, 0, xa), ADVEX_ERR_ARG);
    c.eps = NAN;
    ASSERT_STATUS(advex_attack_batch(m, &c, x, y, N, 0, xa), ADVEX_ERR_ARG);
    free(x); free(xa);
    advex_model_free(m);
}

TEST(targeted_raises_target_probability) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 4, &m));
    float *x = make_batch(4), *xa = malloc(N * D * sizeof(float));
    float z[N * K];
    int32_t y[N], t[N];
    labels(y);
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.eps = 0.05f;
    advex_target_mode modes[] = {ADVEX_TARGET_NEXT, ADVEX_TARGET_LEAST_LIKELY, ADVEX_TARGET_RANDOM, ADVEX_TARGET_LABEL};
    for (int k = 0; k < 4; k++) {
        c.target = modes[k];
        c.target_label = 6;
        c.seed = 9;
        ASSERT_OK(advex_model_forward(m, x, N, z));
        ASSERT_OK(advex_attack_targets(&c, z, y, N, K, 0, t));
        for (int i = 0; i < N; i++) {
            ASSERT(t[i] >= 0 && t[i] < K);
            if (modes[k] != ADVEX_TARGET_LABEL && modes[k] != ADVEX_TARGET_LEAST_LIKELY) ASSERT(t[i] != y[i]);
            if (modes[k] == ADVEX_TARGET_NEXT) ASSERT_EQ_INT(t[i], (y[i] + 1) % K);
            if (modes[k] == ADVEX_TARGET_LABEL) ASSERT_EQ_INT(t[i], 6);
            if (modes[k] == ADVEX_TARGET_LEAST_LIKELY)
                for (int q = 0; q < K; q++) ASSERT(z[i * K + t[i]] <= z[i * K + q]);
        }
        double before = mean_prob(m, x, t);
        ASSERT_OK(advex_attack_batch(m, &c, x, y, N, 0, xa));
        int ok;
        check_bounds(x, xa, c.eps, &ok);
        ASSERT(ok);
        double after = mean_prob(m, xa, t);
        ASSERT_MSG(after > before, "mode %d: target probability %g -> %g", k, before, after);
    }
    free(x); free(xa);
    advex_model_free(m);
}

/* Random targets and random starts depend on the seed and the example index only. */
TEST(deterministic_for_seed_and_batching) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 6, &m));
    float *x = make_batch(6), *a = malloc(N * D * sizeof(float)), *b = malloc(N * D * sizeof(float));
    int32_t y[N];
    labels(y);
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_FGSM_RS;
    c.eps = 0.1f;
    c.target = ADVEX_TARGET_RANDOM;
    c.seed = 1234;
    ASSERT_OK(advex_attack_batch(m, &c, x, y, N, 0, a));
    /* same examples attacked in two halves with the right offsets */
    ASSERT_OK(advex_attack_batch(m, &c, x, y, N / 2, 0, b));
    ASSERT_OK(advex_attack_batch(m, &c, x + N / 2 * D, y + N / 2, N / 2, N / 2, b + N / 2 * D));
    for (int i = 0; i < N * D; i++) ASSERT_NEAR(a[i], b[i], 1e-6);
    int ok;
    check_bounds(x, a, c.eps, &ok);
    ASSERT(ok);
    c.seed = 1235;
    ASSERT_OK(advex_attack_batch(m, &c, x, y, N, 0, b));
    ASSERT(memcmp(a, b, N * D * sizeof(float)) != 0);
    free(x); free(a); free(b);
    advex_model_free(m);
}

TEST(fgsm_rs_step_and_projection) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 7, &m));
    float *x = make_batch(7), *xa = malloc(N * D * sizeof(float));
    int32_t y[N];
    labels(y);
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_FGSM_RS;
    c.eps = 0.1f;
    c.alpha = 0.5f; /* far larger than eps: every moved pixel ends on the eps-sphere or a bound */
    ASSERT_OK(advex_attack_batch(m, &c, x, y, N, 0, xa));
    int ok;
    check_bounds(x, xa, c.eps, &ok);
    ASSERT(ok);
    int on_sphere = 0;
    for (int i = 0; i < N * D; i++) on_sphere += fabsf(fabsf(xa[i] - x[i]) - c.eps) < 1e-6f || xa[i] == 0 || xa[i] == 1;
    ASSERT_MSG(on_sphere > N * D * 9 / 10, "%d of %d on the sphere or a bound", on_sphere, N * D);
    free(x); free(xa);
    advex_model_free(m);
}

TEST(parse_eps) {
    float e;
    ASSERT_OK(advex_parse_eps("0.1", &e));
    ASSERT_NEAR(e, 0.1, 1e-7);
    ASSERT_OK(advex_parse_eps("8/255", &e));
    ASSERT_NEAR(e, 8.0 / 255.0, 1e-7);
    ASSERT_OK(advex_parse_eps("0", &e));
    ASSERT_EQ_INT(e == 0.0f, 1);
    const char *bad[] = {"-0.1", "nan", "inf", "abc", "0.1x", "1/0", "", "/2", "1/-2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) ASSERT_STATUS(advex_parse_eps(bad[i], &e), ADVEX_ERR_ARG);
    float list[8];
    int n;
    ASSERT_OK(advex_parse_eps_list("0,0.05,8/255", list, 8, &n));
    ASSERT_EQ_INT(n, 3);
    ASSERT_NEAR(list[2], 8.0 / 255.0, 1e-7);
    ASSERT_STATUS(advex_parse_eps_list("0,,0.1", list, 8, &n), ADVEX_ERR_ARG);
    ASSERT_STATUS(advex_parse_eps_list("0.1,-1", list, 8, &n), ADVEX_ERR_ARG);
    advex_target_mode mode;
    int32_t lab;
    ASSERT_OK(advex_target_parse("least-likely", &mode, &lab));
    ASSERT_EQ_INT(mode, ADVEX_TARGET_LEAST_LIKELY);
    ASSERT_OK(advex_target_parse("3", &mode, &lab));
    ASSERT_EQ_INT(mode, ADVEX_TARGET_LABEL);
    ASSERT_EQ_INT(lab, 3);
    ASSERT_STATUS(advex_target_parse("-1", &mode, &lab), ADVEX_ERR_ARG);
    ASSERT_STATUS(advex_target_parse("foo", &mode, &lab), ADVEX_ERR_ARG);
    advex_attack_kind k;
    ASSERT_STATUS(advex_attack_parse("pgdx", &k), ADVEX_ERR_ARG);
}

/* advex_sign_step (vectorised selects) against its scalar definition, bit for bit, over
 * random values mixed with the special ones: g = +-0 or NaN (sign 0), NaN x or xa, negative
 * or NaN eps, negative step; n not a multiple of any vector width. */
static void sign_step_scalar(float *xa, const float *x, const float *g, int64_t n, float step, float eps) {
    for (int64_t i = 0; i < n; i++) {
        float s = g[i] > 0 ? 1.0f : (g[i] < 0 ? -1.0f : 0.0f);
        float v = xa[i] + step * s;
        float lo = x[i] - eps, hi = x[i] + eps;
        v = v < lo ? lo : (v > hi ? hi : v);
        xa[i] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    }
}

TEST(sign_step_matches_scalar) {
    enum { M = 1003 };
    static float x[M], g[M], xa[M], xb[M], xc[M], xf[M];
    static const float specials[] = {0.0f, -0.0f, NAN, 1.0f, -1.0f, 1e-30f, -1e-30f, 0.5f, 2.0f, -0.5f};
    static const float eps[] = {0.1f, 0.0f, 0.3f, -0.05f, NAN};
    static const float step[] = {0.25f, -0.25f, 0.0f, 0.01f};
    advex_rng r;
    advex_rng_seed(&r, 77);
    for (int e = 0; e < 5; e++)
        for (int t = 0; t < 4; t++) {
            for (int i = 0; i < M; i++) {
                uint64_t k = advex_rng_below(&r, 4);
                const int ns = (int)(sizeof specials / sizeof *specials);
                x[i] = k == 0 ? specials[advex_rng_below(&r, ns)] : advex_rng_uniform(&r);
                g[i] = k == 1 ? specials[advex_rng_below(&r, ns)] : advex_rng_uniform(&r) - 0.5f;
                xa[i] = k == 2 ? specials[advex_rng_below(&r, ns)] : x[i] + 0.4f * (advex_rng_uniform(&r) - 0.5f);
                xb[i] = xa[i];
            }
            memcpy(xf, xa, sizeof xf);
            advex_sign_step_from(xc, xf, x, g, M, step[t], eps[e]); /* into another buffer */
            advex_sign_step(xa, x, g, M, step[t], eps[e]);
            sign_step_scalar(xb, x, g, M, step[t], eps[e]);
            for (int i = 0; i < M; i++) {
                ASSERT_MSG(memcmp(&xa[i], &xb[i], sizeof(float)) == 0 || (isnan(xa[i]) && isnan(xb[i])),
                           "eps %g step %g element %d (x %g g %g): %.9g, scalar %.9g", eps[e], step[t], i, x[i], g[i],
                           xa[i], xb[i]);
                ASSERT_MSG(memcmp(&xc[i], &xb[i], sizeof(float)) == 0 || (isnan(xc[i]) && isnan(xb[i])),
                           "sign_step_from: element %d %.9g, scalar %.9g", i, xc[i], xb[i]);
            }
        }
}

TEST_MAIN_EACH_ISA(TEST_ENTRY(sign_step_matches_scalar), TEST_ENTRY(fgsm_bounds_and_loss_rises), TEST_ENTRY(fgsm_matches_definition), TEST_ENTRY(eps_zero_is_identity),
          TEST_ENTRY(targeted_raises_target_probability), TEST_ENTRY(deterministic_for_seed_and_batching),
          TEST_ENTRY(fgsm_rs_step_and_projection), TEST_ENTRY(parse_eps))
