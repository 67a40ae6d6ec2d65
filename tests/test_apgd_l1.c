/* The L1 forms AutoAttack publishes: APGD's (Croce & Hein 2021, "Mind the box"), Square's and
 * the standard version at L1.
 * 1. The projection onto the L1 ball ∩ [0,1]^d (l1_proj.c) against its definition on random
 *    small problems: in the box and the ball, a feasible point is its own projection, the
 *    ball's boundary is reached when the clipped point is outside, and the variational
 *    inequality (z - P z).(p - P z) <= 0 of a projection holds for random feasible p.
 * 2. Every L1 attack against its definition on the `small` network: each returned example lies
 *    in [0,1] within eps in L1 (measured here), and the per-example success the attack reports
 *    is the model's own prediction on the returned example.
 * 3. Against the published code (tools/make_apgd_l1_fixtures.py,
 *    tests/fixtures/attacks/apgd_l1_ref.npy) on the same weights and first 200 test images, L1
 *    eps 12: (a) from the same start point (fixed draws both sides compute) APGD-CE, APGD-CE
 *    with the eps schedule and APGD-T (1 target) with it: robust counts within 2 and the same
 *    per-example outcome on 97% of the examples; on the examples both leave robust, the run's
 *    best loss within 1e-3 on 90% of them for APGD-CE (the iterates are the same but for
 *    float noise: measured 66 of 67) and on 55% with the eps schedule (measured 2/3: the
 *    published code projects the schedule's start twice, and whether the second projection
 *    clears the coordinates the first left within an ulp of x, which changes the start's
 *    sparsity, is decided by a float32 sum's rounding); (b) with each side's own randomness,
 *    robust counts of APGD-CE, APGD-T (3 targets), Square (1000 queries) and standard (first
 *    100 images) within 3 of the reference's range over 3 seeds. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"
#include "attacks/apgd_internal.h"

enum { D = 784, K = 10, NREF = 200, HEAD = 5 };

static advex_model *net;
static advex_dataset data;
static float *ref;

static int setup(void) {
    if (net) return 1;
    int ndim = 0;
    int64_t dims[6];
    return !advex_model_load_onnx(advex_test_src("tests/fixtures/attacks/small_pgd.onnx"), &net) &&
           !advex_dataset_load("fashion-mnist:test", NULL, NREF, &data) &&
           !advex_npy_load_f32(advex_test_src("tests/fixtures/attacks/apgd_l1_ref.npy"), &ref, &ndim, dims) &&
           ndim == 1 && dims[0] >= HEAD && (int)ref[0] == NREF && dims[0] == HEAD + 6 * NREF + 4 * (int64_t)ref[2];
}

static double l1(const float *a, const float *b, int64_t d) {
    double s = 0;
    for (int64_t q = 0; q < d; q++) s += fabs((double)a[q] - b[q]);
    return s;
}

TEST(projection_matches_definition) {
    enum { DM = 40 };
    advex_rng r;
    advex_rng_seed_stream(&r, 11, 0);
    double scratch[2 * DM];
    float x[DM], z[DM], p[DM], o[DM];
    for (int trial = 0; trial < 2000; trial++) {
        int d = 2 + (int)advex_rng_below(&r, DM - 1);
        double rad = 0.05 + 3.0 * advex_rng_uniform(&r), spread = trial % 4 == 0 ? 0.05 : 0.6;
        for (int q = 0; q < d; q++) {
            /* some coordinates on the box's faces, where a move outwards has no room */
            x[q] = q % 7 == 3 ? 0.0f : (q % 7 == 5 ? 1.0f : advex_rng_uniform(&r));
            z[q] = x[q] + (float)spread * advex_rng_normal(&r);
            if (trial % 9 == 0 && q % 3 == 0) z[q] = x[q]; /* coordinates that do not move */
        }
        atk_l1_project(o, x, z, d, rad, scratch);
        double n1 = l1(o, x, d), clipped = 0, in_box = 1;
        for (int q = 0; q < d; q++) {
            ASSERT_MSG(o[q] >= 0 && o[q] <= 1, "trial %d: coordinate %d at %g", trial, q, (double)o[q]);
            float c = z[q] < 0 ? 0 : (z[q] > 1 ? 1 : z[q]);
            clipped += fabs((double)c - x[q]);
            in_box = in_box && c == z[q];
        }
        ASSERT_MSG(n1 <= rad, "trial %d: ||P z - x||_1 %.9g > %.9g", trial, n1, rad);
        /* the radius solved for is rad less the float steps' error bound (l1_proj.c: below
         * 2e-4 here) */
        if (clipped <= rad - 2e-4) { /* the clipped point is feasible: it is the projection */
            for (int q = 0; q < d; q++) {
                float c = z[q] < 0 ? 0 : (z[q] > 1 ? 1 : z[q]);
                ASSERT_MSG(fabs(o[q] - c) <= 1e-6, "trial %d: feasible clipped point moved at %d (%.9g, %.9g)", trial,
                           q, (double)o[q], (double)c);
            }
            if (in_box) ASSERT(memcmp(o, z, (size_t)d * sizeof(float)) == 0);
        } else if (clipped > rad) {
            ASSERT_MSG(n1 >= rad - 2e-4, "trial %d: norm %g, radius %g", trial, n1, rad);
        }
        /* (z - o).(p - o) <= 0 for feasible p = clip(x + v), ||v||_1 <= rad - 2e-4 (clipping
         * towards the box, which holds x, only shortens v) */
        for (int s = 0; s < 200; s++) {
            double vn = 0, dot = 0, scale = 0;
            for (int q = 0; q < d; q++) {
                p[q] = s % 3 == 0 && (int)advex_rng_below(&r, (uint64_t)d) > 2 ? 0.0f : advex_rng_normal(&r);
                vn += fabs(p[q]);
            }
            double f = vn > 0 ? (rad - 2e-4) * advex_rng_uniform(&r) / vn : 0;
            for (int q = 0; q < d; q++) {
                double v = x[q] + f * p[q];
                v = v < 0 ? 0 : (v > 1 ? 1 : v);
                dot += ((double)z[q] - o[q]) * (v - o[q]);
                scale += fabs((double)z[q] - o[q]) * fabs(v - o[q]);
            }
            ASSERT_MSG(dot <= 1e-6 * (1 + scale), "trial %d sample %d: (z - Pz).(p - Pz) = %g > 0", trial, s, dot);
        }
    }
}

/* Runs c on the first n images through advex_attack_batch_info, or atk_apgd_noise when noise
 * is given, checking the definition: [0,1], L1 norm within eps, the reported success (stage)
 * the model's own verdict. Returns the robust count (-1 on a failed check); the returned
 * examples into xa. */
static int64_t run_checked(advex_attack_config *c, int64_t n, const float *noise, float *xa) {
    static float z[NREF * K], zc[NREF * K];
    int32_t stage[NREF];
    advex_attack_info info = {NULL, stage, NULL};
    if (advex_attack_check(net, c)) return -1;
    advex_status st = noise ? atk_apgd_noise(net, c, data.x, data.y, n, 0, NULL, noise, xa, &info)
                            : advex_attack_batch_info(net, c, data.x, data.y, n, 0, xa, &info);
    if (st || advex_model_forward(net, xa, n, z) || advex_model_forward(net, data.x, n, zc)) return -1;
    int64_t robust = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *x0 = data.x + i * D, *x1 = xa + i * D;
        double p = l1(x1, x0, D);
        for (int j = 0; j < D; j++)
            if (!(x1[j] >= 0 && x1[j] <= 1)) { fprintf(stderr, "  example %lld out of [0,1]\n", (long long)i); return -1; }
        if (!(p <= c->eps)) {
            fprintf(stderr, "  %s example %lld: L1 norm %.9g > eps %g\n", advex_attack_name(c->kind), (long long)i, p,
                    (double)c->eps);
            return -1;
        }
        int ok0 = advex_argmax(zc + i * K, K) == data.y[i], ok1 = advex_argmax(z + i * K, K) == data.y[i];
        if (ok0 && (stage[i] > 0) != !ok1) {
            fprintf(stderr, "  %s example %lld: reported %d, model says misclassified %d\n", advex_attack_name(c->kind),
                    (long long)i, stage[i], !ok1);
            return -1;
        }
        robust += ok0 && ok1;
    }
    return robust;
}

static void l1_config(advex_attack_config *c, advex_attack_kind kind, float eps) {
    advex_attack_config_default(c);
    c->kind = kind;
    c->norm = ADVEX_NORM_L1;
    c->eps = eps;
}

TEST(attacks_match_definition) {
    ASSERT(setup());
    enum { N = 48 };
    static float xa[N * D];
    const advex_attack_kind kinds[] = {ADVEX_ATTACK_APGD_CE, ADVEX_ATTACK_APGD_DLR, ADVEX_ATTACK_APGD_T,
                                       ADVEX_ATTACK_SQUARE};
    for (size_t a = 0; a < sizeof kinds / sizeof *kinds; a++) {
        for (int variant = 0; variant < 3; variant++) {
            advex_attack_config c;
            l1_config(&c, kinds[a], variant == 2 ? 4.0f : 10.0f);
            c.steps = 30;
            c.queries = 300;
            c.topk = 2;
            c.restarts = variant == 0 ? 0 : 2; /* from x itself, or random starts */
            c.apgd_largereps = variant == 1;
            c.seed = 3;
            int64_t r = run_checked(&c, N, NULL, xa);
            fprintf(stderr, "  %-8s L1 eps %g restarts %d%s: robust %lld of %d\n", advex_attack_name(c.kind),
                    (double)c.eps, c.restarts, c.apgd_largereps ? " eps schedule" : "", (long long)r, N);
            ASSERT_MSG(r >= 0, "%s: definition", advex_attack_name(c.kind));
        }
    }
}

/* Every other attack refuses L1 with one line naming the attacks that take it. */
TEST(other_attacks_refuse_l1) {
    ASSERT(setup());
    for (int kind = ADVEX_ATTACK_FGSM; kind < ADVEX_ATTACK_COUNT_; kind++) {
        advex_attack_config c;
        l1_config(&c, (advex_attack_kind)kind, 5.0f);
        int takes = kind == ADVEX_ATTACK_APGD_CE || kind == ADVEX_ATTACK_APGD_DLR || kind == ADVEX_ATTACK_APGD_T ||
                    kind == ADVEX_ATTACK_FAB || kind == ADVEX_ATTACK_FAB_T || kind == ADVEX_ATTACK_SQUARE ||
                    kind == ADVEX_ATTACK_STANDARD;
        if (takes) { ASSERT_OK(advex_attack_check(net, &c)); continue; }
        ASSERT_STATUS(advex_attack_check(net, &c), ADVEX_ERR_ARG);
        const char *e = advex_last_error();
        int names = kind == ADVEX_ATTACK_CW ? strstr(e, "L2 only") != NULL
                                            : strstr(e, "apgd-ce") && strstr(e, "square") && strstr(e, "standard");
        ASSERT_MSG(strstr(e, advex_attack_name(c.kind)) && strstr(e, "L1") && names && !strchr(e, '\n'), "%s: '%s'",
                   advex_attack_name(c.kind), e);
    }
}

/* The fixed start draws tools/make_apgd_l1_fixtures.py gives the published code: uniform on
 * [-2, 2) from a multiplicative hash of (example, coordinate). */
static void fixed_noise(float *t, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t q = 0; q < D; q++) {
            uint64_t h = ((uint64_t)(i * D + q) * 2654435761u) % 4294967296u;
            t[i * D + q] = (float)(4.0 * ((double)h / 4294967296.0) - 2.0);
        }
}

TEST(trajectories_match_published_code) {
    ASSERT(setup());
    static float noise[NREF * D], xa[NREF * D], z[NREF * K], zc[NREF * K];
    fixed_noise(noise, NREF);
    const float eps = ref[1];
    ASSERT_OK(advex_model_forward(net, data.x, NREF, zc));
    const char *names[3] = {"apgd-ce", "apgd-ce, eps schedule", "apgd-t, eps schedule"};
    for (int a = 0; a < 3; a++) {
        const float *st = ref + HEAD + a * 2 * NREF, *lb = st + NREF;
        advex_attack_config c;
        l1_config(&c, a == 2 ? ADVEX_ATTACK_APGD_T : ADVEX_ATTACK_APGD_CE, eps);
        c.steps = 100;
        c.topk = 1;
        c.apgd_largereps = a > 0;
        int64_t robust = run_checked(&c, NREF, noise, xa);
        ASSERT_MSG(robust >= 0, "%s: definition", names[a]);
        ASSERT_OK(advex_model_forward(net, xa, NREF, z));
        int64_t same = 0, clean = 0, both = 0, close = 0, ref_robust = 0;
        for (int64_t i = 0; i < NREF; i++) {
            int ok0 = advex_argmax(zc + i * K, K) == data.y[i], ok1 = advex_argmax(z + i * K, K) == data.y[i];
            int mine = ok0 ? !ok1 : -1;
            ASSERT_EQ_INT(mine < 0, st[i] < 0); /* the same clean predictions */
            clean += ok0;
            ref_robust += st[i] == 0;
            same += ok0 && mine == (int)st[i];
            if (!ok0 || mine != 0 || st[i] != 0) continue;
            /* both robust: the loss of the returned point (the run's highest) against the best loss */
            int32_t t = atk_ranked_class(zc + i * K, K, 1);
            atk_loss L = {a == 2 ? ATK_LOSS_DLR_T : ATK_LOSS_CE, data.y + i, a == 2 ? &t : NULL, a == 2};
            float loss;
            atk_loss_rows(&L, 0, 1, K, z + i * K, &loss, NULL);
            both++;
            close += fabs((double)loss - lb[i]) <= 1e-3 * (1 + fabs((double)lb[i]));
        }
        fprintf(stderr, "  %-21s from the same start: robust %lld (published %lld) of %lld clean; same outcome on "
                "%lld; best loss within 1e-3 on %lld of the %lld both leave robust\n", names[a], (long long)robust,
                (long long)ref_robust, (long long)clean, (long long)same, (long long)close, (long long)both);
        ASSERT_MSG(llabs(robust - ref_robust) <= 2, "%s: robust %lld, published %lld", names[a], (long long)robust,
                   (long long)ref_robust);
        ASSERT_MSG(same * 100 >= clean * 97, "%s: the same outcome on only %lld of %lld", names[a], (long long)same,
                   (long long)clean);
        /* one run: the same iterates but for float noise; the eps schedule: see the top */
        ASSERT_MSG(a == 0 ? close * 10 >= both * 9 : close * 100 >= both * 55, "%s: best loss close on only %lld of %lld",
                   names[a], (long long)close, (long long)both);
    }
}

TEST(counts_match_published_code) {
    ASSERT(setup());
    static float xa[NREF * D];
    const float eps = ref[1];
    const int64_t seeds = (int64_t)ref[2], nstd = (int64_t)ref[3];
    const float *counts = ref + HEAD + 6 * NREF;
    const advex_attack_kind kinds[4] = {ADVEX_ATTACK_APGD_CE, ADVEX_ATTACK_APGD_T, ADVEX_ATTACK_SQUARE,
                                        ADVEX_ATTACK_STANDARD};
    for (int a = 0; a < 4; a++) {
        int64_t lo = INT64_MAX, hi = 0;
        for (int64_t s = 0; s < seeds; s++) {
            int64_t v = (int64_t)counts[a * seeds + s];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        advex_attack_config c; /* as tools/make_apgd_l1_fixtures.py: 3 targets, 1000 queries */
        l1_config(&c, kinds[a], eps);
        if (c.kind != ADVEX_ATTACK_STANDARD) {
            c.topk = 3;
            c.queries = 1000;
        }
        int64_t n = c.kind == ADVEX_ATTACK_STANDARD ? nstd : NREF, got = run_checked(&c, n, NULL, xa);
        ASSERT_MSG(got >= 0, "%s: definition", advex_attack_name(c.kind));
        fprintf(stderr, "  %-8s L1 eps %g: advex robust %lld of %lld, published %lld..%lld over %lld seeds\n",
                advex_attack_name(c.kind), (double)eps, (long long)got, (long long)n, (long long)lo, (long long)hi,
                (long long)seeds);
        ASSERT_MSG(got >= lo - 3 && got <= hi + 3, "%s L1: robust %lld outside the published %lld..%lld (+-3)",
                   advex_attack_name(c.kind), (long long)got, (long long)lo, (long long)hi);
    }
}

TEST(teardown) {
    advex_model_free(net);
    advex_dataset_free(&data);
    free(ref);
    net = NULL;
}

TEST_MAIN(TEST_ENTRY(projection_matches_definition), TEST_ENTRY(attacks_match_definition),
          TEST_ENTRY(other_attacks_refuse_l1), TEST_ENTRY(trajectories_match_published_code), TEST_ENTRY(counts_match_published_code),
          TEST_ENTRY(teardown))
