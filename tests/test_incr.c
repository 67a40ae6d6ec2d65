/* Incremental passes (src/graph/incr.c) and Square on them, under every kernel variant.
 * 1. On `small` (the ONNX fixture and the built-in arch), `cnn` (stride 1, MaxPool) and `wide`
 *    (four convolutions), from real images: a slot's logits after set and after each of
 *    hundreds of window proposals (1 to 9 pixels wide, new random values, kept or undone at
 *    random, some changing nothing) agree with a full forward pass of the same image to 1e-4
 *    (relative to the logits' size); a proposal that changes nothing returns the slot's
 *    logits bit for bit; after the sequence the slot still agrees (no drift from the deltas).
 * 2. Nets it does not take (a residual branch) give no engine, so callers run full passes.
 * 3. Square L-inf on the incremental passes against the same attack on full passes (an
 *    oracle that is not the local model): the same examples broken, each with the same query
 *    count, and every returned example within eps of x. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"
#include "attacks/attack_internal.h"

enum { NX = 6, STEPS = 300 };

static advex_dataset data;

static int load_data(void) {
    return data.n || !advex_dataset_load("fashion-mnist:test", NULL, 64, &data);
}

/* |a - b| <= 1e-4 (1 + max |b|) for every class; the first offending class or -1 */
static int64_t logits_differ(const float *a, const float *b, int64_t k, double *worst) {
    double m = 0;
    for (int64_t j = 0; j < k; j++) m = fabs(b[j]) > m ? fabs(b[j]) : m;
    for (int64_t j = 0; j < k; j++) {
        double d = fabs((double)a[j] - b[j]);
        if (d > *worst) *worst = d;
        if (d > 1e-4 * (1 + m)) return j;
    }
    return -1;
}

static void check_model(advex_model *m, const char *name) {
    const int64_t C = m->net->in_chw[0], H = m->net->in_chw[1], W = m->net->in_chw[2], d = C * H * W, k = m->net->classes;
    advex_incr *e = NULL;
    ASSERT_OK(advex_incr_new(m->net, NX, 1, &e));
    ASSERT_MSG(e != NULL, "%s: no incremental engine", name);
    float *x = malloc((size_t)(NX * d) * sizeof(float)), *xn = malloc((size_t)d * sizeof(float));
    float z[64], zf[64], zc[64];
    advex_rng r;
    advex_rng_seed_stream(&r, 11, 0);
    double worst = 0;
    int kept = 0, noop = 0;
    for (int64_t i = 0; i < NX; i++) {
        memcpy(x + i * d, data.x + i * d, (size_t)d * sizeof(float));
        advex_incr_set(e, i, x + i * d, z, 0);
        ASSERT_OK(advex_model_forward(m, x + i * d, 1, zf));
        int64_t bad = logits_differ(z, zf, k, &worst);
        ASSERT_MSG(bad < 0, "%s: example %lld after set: class %lld %.7g vs full %.7g", name, (long long)i,
                   (long long)bad, z[bad < 0 ? 0 : bad], zf[bad < 0 ? 0 : bad]);
    }
    for (int step = 0; step < STEPS; step++) {
        int64_t i = (int64_t)advex_rng_below(&r, NX), s = 1 + (int64_t)advex_rng_below(&r, 9);
        int64_t r0 = (int64_t)advex_rng_below(&r, (uint64_t)(H - s + 1)), c0 = (int64_t)advex_rng_below(&r, (uint64_t)(W - s + 1));
        float *xi = x + i * d;
        memcpy(xn, xi, (size_t)d * sizeof(float));
        int change = step % 7 != 3; /* every seventh proposal changes nothing */
        for (int64_t c = 0; c < C && change; c++)
            for (int64_t a = r0; a < r0 + s; a++)
                for (int64_t b = c0; b < c0 + s; b++) xn[(c * H + a) * W + b] = advex_rng_uniform(&r);
        advex_incr_set(e, i, xi, zc, 0); /* (the slot's own logits: set again from its image) */
        advex_incr_try(e, i, xn, r0, r0 + s, c0, c0 + s, z, 0);
        if (!change) {
            noop++;
            ASSERT_MSG(!memcmp(z, zc, (size_t)k * sizeof(float)), "%s step %d: a proposal changing nothing moved the logits",
                       name, step);
        }
        ASSERT_OK(advex_model_forward(m, xn, 1, zf));
        int64_t bad = logits_differ(z, zf, k, &worst);
        ASSERT_MSG(bad < 0, "%s step %d (window %lld at %lld,%lld): class %lld %.7g vs full %.7g", name, step,
                   (long long)s, (long long)r0, (long long)c0, (long long)bad, z[bad < 0 ? 0 : bad], zf[bad < 0 ? 0 : bad]);
        if (advex_rng_uniform(&r) < 0.5f) {
            advex_incr_keep(e, 0);
            memcpy(xi, xn, (size_t)d * sizeof(float));
            kept++;
        } else {
            advex_incr_undo(e, 0);
        }
    }
    advex_incr_free(e);
    ASSERT(kept > STEPS / 4 && noop > STEPS / 10);
    free(x);
    free(xn);
}

/* The same, without re-setting the slot before each proposal: the state carried through
 * hundreds of kept deltas and undone proposals still matches full passes. */
static void check_drift(advex_model *m, const char *name) {
    const int64_t C = m->net->in_chw[0], H = m->net->in_chw[1], W = m->net->in_chw[2], d = C * H * W, k = m->net->classes;
    advex_incr *e = NULL;
    ASSERT_OK(advex_incr_new(m->net, 1, 1, &e));
    ASSERT(e != NULL);
    float *x = malloc((size_t)d * sizeof(float)), *xn = malloc((size_t)d * sizeof(float));
    float z[64], zf[64], zk[64];
    advex_rng r;
    advex_rng_seed_stream(&r, 12, 0);
    double worst = 0;
    memcpy(x, data.x + 7 * d, (size_t)d * sizeof(float));
    advex_incr_set(e, 0, x, zk, 0);
    for (int step = 0; step < 2 * STEPS; step++) {
        int64_t s = 1 + (int64_t)advex_rng_below(&r, 4);
        int64_t r0 = (int64_t)advex_rng_below(&r, (uint64_t)(H - s + 1)), c0 = (int64_t)advex_rng_below(&r, (uint64_t)(W - s + 1));
        memcpy(xn, x, (size_t)d * sizeof(float));
        for (int64_t c = 0; c < C; c++)
            for (int64_t a = r0; a < r0 + s; a++)
                for (int64_t b = c0; b < c0 + s; b++) {
                    float v = xn[(c * H + a) * W + b] + (advex_rng_uniform(&r) < 0.5f ? 0.1f : -0.1f);
                    xn[(c * H + a) * W + b] = v < 0 ? 0 : v > 1 ? 1 : v;
                }
        advex_incr_try(e, 0, xn, r0, r0 + s, c0, c0 + s, z, 0);
        if (advex_rng_uniform(&r) < 0.6f) {
            advex_incr_keep(e, 0);
            memcpy(x, xn, (size_t)d * sizeof(float));
            memcpy(zk, z, sizeof z);
        } else {
            advex_incr_undo(e, 0);
        }
    }
    ASSERT_OK(advex_model_forward(m, x, 1, zf));
    int64_t bad = logits_differ(zk, zf, k, &worst);
    ASSERT_MSG(bad < 0, "%s: after the sequence class %lld %.7g vs full %.7g", name, (long long)bad, zk[bad < 0 ? 0 : bad],
               zf[bad < 0 ? 0 : bad]);
    /* a proposal equal to the state: the kept logits, bit for bit */
    advex_incr_try(e, 0, x, 0, H, 0, W, z, 0);
    ASSERT(!memcmp(z, zk, (size_t)k * sizeof(float)));
    advex_incr_undo(e, 0);
    advex_incr_free(e);
    free(x);
    free(xn);
}

TEST(incremental_logits_match_full_passes) {
    ASSERT(load_data());
    advex_model *m = NULL;
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/attacks/small_pgd.onnx"), &m));
    check_model(m, "small_pgd.onnx");
    check_drift(m, "small_pgd.onnx");
    advex_model_free(m);
    const char *arches[] = {"small", "cnn", "wide"};
    for (int a = 0; a < 3; a++) {
        ASSERT_OK(advex_model_build(arches[a], 5, &m));
        check_model(m, arches[a]);
        check_drift(m, arches[a]);
        advex_model_free(m);
    }
}

TEST(other_graphs_get_full_passes) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("resnet", 5, &m));
    advex_incr *e = (advex_incr *)&m; /* (overwritten) */
    ASSERT_OK(advex_incr_new(m->net, 4, 1, &e));
    ASSERT(e == NULL);
    advex_model_free(m);
}

/* the local model behind an oracle that is not atk_on_model_scores's: full passes */
static advex_status full_scores(void *u, const float *x, int64_t n, const int64_t *rows, float *z) {
    (void)rows;
    return advex_model_forward(u, x, n, z);
}

TEST(square_incremental_matches_full_passes) {
    ASSERT(load_data());
    enum { N = 40 };
    advex_model *m = NULL;
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/attacks/small_pgd.onnx"), &m));
    const int64_t d = advex_model_dim(m);
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_SQUARE;
    c.norm = ADVEX_NORM_LINF;
    c.eps = 0.08f;
    c.queries = 300;
    float *xa = malloc((size_t)(2 * N * d) * sizeof(float)), *xb = xa + N * d;
    int64_t qa[N], qb[N];
    int32_t sa[N], sb[N];
    memset(sa, 0, sizeof sa); /* (the attack marks the broken ones) */
    memset(sb, 0, sizeof sb);
    advex_attack_info ia = {qa, sa, NULL}, ib = {qb, sb, NULL};
    ASSERT_OK(atk_square(m, &c, data.x, data.y, N, 0, NULL, xa, &ia));
    atk_scores o = {full_scores, m, {m->net->in_chw[0], m->net->in_chw[1], m->net->in_chw[2]}, m->net->classes, 0, NULL};
    ASSERT(atk_scores_model(&o) == NULL);
    ASSERT_OK(atk_square_run(&o, &c, data.x, data.y, NULL, N, 0, NULL, xb, &ib));
    int broken = 0;
    for (int64_t i = 0; i < N; i++) {
        ASSERT_MSG(sa[i] == sb[i], "example %lld: broken %d incremental, %d full", (long long)i, sa[i], sb[i]);
        if (sa[i]) {
            broken++;
            ASSERT_MSG(qa[i] == qb[i], "example %lld: %lld queries incremental, %lld full", (long long)i,
                       (long long)qa[i], (long long)qb[i]);
        }
        for (int64_t j = 0; j < d; j++) ASSERT(fabsf(xa[i * d + j] - data.x[i * d + j]) <= c.eps + 1e-6f);
    }
    ASSERT_MSG(broken >= 5, "only %d examples broken: the comparison says little", broken);
    free(xa);
    advex_model_free(m);
}

TEST(teardown) { advex_dataset_free(&data); }

TEST_MAIN_EACH_ISA(TEST_ENTRY(incremental_logits_match_full_passes), TEST_ENTRY(other_graphs_get_full_passes),
                   TEST_ENTRY(square_incremental_matches_full_passes), TEST_ENTRY(teardown))
