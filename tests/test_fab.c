/* FAB (Croce & Hein 2020) and FAB-T.
 * 1. The projection (fab_proj.c) against its definition, on random small problems in each
 *    norm: the result lies in the box and on the hyperplane, and no feasible point found by
 *    random search is closer; a hyperplane that misses the box gives the far corner.
 * 2. The attack against its definition on the `small` network: returned examples lie in
 *    [0,1] and within eps, the model misclassifies every one reported broken, and the minimal
 *    perturbations are no larger than DeepFool's (an independent minimal-perturbation attack)
 *    on the median.
 * 3. Against the published FAB (auto-attack's fab_pt.py, tools/make_fab_fixtures.py,
 *    tests/fixtures/attacks/fab_ref.npy) on the same weights and first 40 test images, each
 *    norm: robust counts of fab and fab-t (3 targets) at eps within 2 examples, and each
 *    example's minimal norm within 5% of the published one for 90% of them.
 * 4. standard's stage lists per version and norm (L1 included) are autoattack.py's, in its
 *    order; a version on another attack and an unknown version name are refused. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"
#include "attacks/attack_internal.h"

enum { D = 784, K = 10, NREF = 40 };

static advex_model *net;
static advex_dataset data;

static int setup(void) {
    if (net) return 1;
    return !advex_model_load_onnx(advex_test_src("tests/fixtures/attacks/small_pgd.onnx"), &net) &&
           !advex_dataset_load("fashion-mnist:test", NULL, NREF, &data);
}

static double nrm(const double *v, int n, advex_norm norm) {
    double s = 0;
    for (int i = 0; i < n; i++) {
        double a = fabs(v[i]);
        if (norm == ADVEX_NORM_L2) s += a * a; else if (norm == ADVEX_NORM_L1) s += a; else if (a > s) s = a;
    }
    return norm == ADVEX_NORM_L2 ? sqrt(s) : s;
}

TEST(projection_matches_definition) {
    enum { N = 5 };
    advex_rng r;
    advex_rng_seed_stream(&r, 7, 0);
    atk_fab_key keys[N];
    for (int nm = 0; nm < 3; nm++) {
        advex_norm norm = nm == 0 ? ADVEX_NORM_LINF : nm == 1 ? ADVEX_NORM_L2 : ADVEX_NORM_L1;
        for (int trial = 0; trial < 300; trial++) {
            float t[N], w[N], d[N];
            double lo = 0, hi = 0, wt = 0;
            for (int i = 0; i < N; i++) {
                t[i] = advex_rng_uniform(&r);
                w[i] = trial % 7 == 3 && i == 2 ? 0.0f : advex_rng_normal(&r);
                lo += w[i] < 0 ? w[i] : 0;
                hi += w[i] > 0 ? w[i] : 0;
                wt += (double)w[i] * t[i];
            }
            /* b inside [lo, hi] (the plane meets the box) or, every fifth trial, outside */
            double b = trial % 5 == 4 ? hi + 0.5 : lo + (hi - lo) * advex_rng_uniform(&r);
            atk_fab_project(norm, t, w, b, N, d, keys);
            double z[N], dd[N], got = 0;
            for (int i = 0; i < N; i++) {
                z[i] = (double)t[i] + d[i];
                dd[i] = d[i];
                ASSERT_MSG(z[i] >= -1e-6 && z[i] <= 1 + 1e-6, "norm %d trial %d: coordinate %d at %g", nm, trial, i, z[i]);
                got += w[i] * z[i];
            }
            if (trial % 5 == 4) { /* missed: the corner furthest towards the plane */
                for (int i = 0; i < N; i++)
                    if (w[i] != 0) ASSERT_NEAR(z[i], wt - b > 0 ? (w[i] > 0 ? 0.0 : 1.0) : (w[i] > 0 ? 1.0 : 0.0), 1e-6);
                continue;
            }
            ASSERT_MSG(fabs(got - b) <= 1e-4 * (1 + fabs(b)), "norm %d trial %d: w.z %g, b %g", nm, trial, got, b);
            double best = nrm(dd, N, norm);
            /* random feasible points: a random box point with one coordinate solved for */
            for (int s = 0; s < 3000; s++) {
                double p[N], q[N], rest = 0;
                int j = (int)advex_rng_below(&r, N);
                if (w[j] == 0) continue;
                for (int i = 0; i < N; i++) {
                    /* half the samples near t, where the closest points lie */
                    p[i] = s % 2 ? advex_rng_uniform(&r) : t[i] + (advex_rng_uniform(&r) - 0.5) * 0.4;
                    if (p[i] < 0 || p[i] > 1) p[i] = t[i];
                    if (i != j) rest += w[i] * p[i];
                }
                p[j] = (b - rest) / w[j];
                if (p[j] < 0 || p[j] > 1) continue;
                for (int i = 0; i < N; i++) q[i] = p[i] - t[i];
                ASSERT_MSG(nrm(q, N, norm) >= best - 1e-5, "norm %d trial %d: a feasible point at %g beats %g", nm,
                           trial, nrm(q, N, norm), best);
            }
        }
    }
}

/* The L1 greedy move's definition, by a full sort: coordinates in decreasing |w_i| (the lower
 * index first on ties), whole while they do not reach what is left of c, the last one partly. */
typedef struct l1_ref_key { double aw; int64_t i; } l1_ref_key;
static int l1_ref_cmp(const void *a, const void *b) {
    const l1_ref_key *p = a, *q = b;
    return p->aw > q->aw ? -1 : p->aw < q->aw ? 1 : (p->i > q->i) - (p->i < q->i);
}
static void l1_ref(const float *t, const float *w, double b, int64_t n, float *d) {
    static l1_ref_key k[D];
    double wt = 0, full = 0;
    for (int64_t i = 0; i < n; i++) wt += (double)w[i] * t[i];
    double s = wt - b >= 0 ? 1.0 : -1.0, c = s * (wt - b);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        double wi = s * w[i], aw = fabs(wi), cap = wi > 0 ? t[i] : 1.0 - t[i];
        d[i] = 0.0f;
        if (aw < 1e-8) continue;
        full += aw * cap;
        k[m++] = (l1_ref_key){aw, i};
    }
    ASSERT(m > 0 && full > c); /* (the test's problems meet the box) */
    qsort(k, (size_t)m, sizeof *k, l1_ref_cmp);
    double rem = c;
    for (int64_t j = 0; j < m && rem > 0; j++) {
        int64_t i = k[j].i;
        double wi = s * w[i], aw = fabs(wi), cap = wi > 0 ? t[i] : 1.0 - t[i], dir = wi > 0 ? -1.0 : 1.0;
        double mv = aw * cap >= rem ? rem / aw : cap;
        d[i] = (float)(dir * mv);
        rem -= aw * mv;
    }
}

/* The L1 projection sorts only the coordinates its move can reach (a quickselect picks them):
 * bit for bit the result of sorting all of them, on image-sized problems with ties (|w|
 * quantised to a few levels), zero weights, coordinates at their caps, and planes that take
 * one coordinate or most of the box. */
TEST(l1_projection_equals_full_sort) {
    static float t[D], w[D], d[D], want[D];
    static atk_fab_key keys[D];
    advex_rng r;
    advex_rng_seed_stream(&r, 11, 0);
    for (int trial = 0; trial < 400; trial++) {
        int levels = trial % 4 == 0 ? 3 : trial % 4 == 1 ? 50 : 0; /* 0: continuous */
        double lo = 0, hi = 0;
        for (int i = 0; i < D; i++) {
            float u = advex_rng_uniform(&r);
            t[i] = trial % 3 == 0 && u < 0.3f ? (u < 0.15f ? 0.0f : 1.0f) : advex_rng_uniform(&r);
            float g = advex_rng_normal(&r);
            if (levels) g = (float)(round(g * levels) / levels);
            w[i] = trial % 5 == 2 && i % 7 == 0 ? 0.0f : g;
            lo += w[i] < 0 ? w[i] : 0;
            hi += w[i] > 0 ? w[i] : 0;
        }
        double wt = 0;
        for (int i = 0; i < D; i++) wt += (double)w[i] * t[i];
        /* b from just off t's own plane to near a corner of the box */
        double frac = trial % 6 == 0 ? 1e-4 : trial % 6 == 1 ? 0.95 : advex_rng_uniform(&r);
        double b = advex_rng_uniform(&r) < 0.5 ? wt + (hi - wt) * frac : wt - (wt - lo) * frac;
        l1_ref(t, w, b, D, want);
        atk_fab_project(ADVEX_NORM_L1, t, w, b, D, d, keys);
        ASSERT_MSG(memcmp(d, want, sizeof d) == 0, "trial %d: the L1 projection differs from the full sort's", trial);
    }
}

static double pert(const float *a, const float *b, advex_norm norm) {
    double v[D];
    for (int j = 0; j < D; j++) v[j] = (double)a[j] - b[j];
    return nrm(v, D, norm);
}

/* Runs c on the NREF images: per-example norms of the broken ones (-1: not broken) into out
 * (may be NULL); returns the robust count (clean-correct and not broken), -1 on error. Checks
 * the definition: [0,1], within eps, misclassified when reported broken. */
static int64_t run_checked(advex_attack_config *c, double *out) {
    static float xa[NREF * D], z[NREF * K], zc[NREF * K];
    int32_t stage[NREF];
    advex_attack_info info = {NULL, stage, NULL};
    if (advex_attack_batch_info(net, c, data.x, data.y, NREF, 0, xa, &info)) return -1;
    if (advex_model_forward(net, xa, NREF, z) || advex_model_forward(net, data.x, NREF, zc)) return -1;
    int64_t robust = 0;
    for (int i = 0; i < NREF; i++) {
        const float *x0 = data.x + (size_t)i * D, *x1 = xa + (size_t)i * D;
        double p = pert(x1, x0, c->norm);
        for (int j = 0; j < D; j++) if (!(x1[j] >= 0 && x1[j] <= 1)) return -1;
        if (!(p <= c->eps * (1 + 1e-6))) { fprintf(stderr, "  example %d: norm %g > eps %g\n", i, p, (double)c->eps); return -1; }
        int ok0 = advex_argmax(zc + i * K, K) == data.y[i], ok1 = advex_argmax(z + i * K, K) == data.y[i];
        if (stage[i] && ok1) { fprintf(stderr, "  example %d reported broken, still classified right\n", i); return -1; }
        if (!stage[i] && ok0 && p != 0) { fprintf(stderr, "  example %d: not broken but moved\n", i); return -1; }
        robust += ok0 && ok1;
        if (out) out[i] = stage[i] && ok0 ? p : -1;
    }
    return robust;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(const double *v, int n) {
    double s[NREF];
    int m = 0;
    for (int i = 0; i < n; i++) if (v[i] >= 0) s[m++] = v[i];
    qsort(s, (size_t)m, sizeof *s, cmp_d);
    return m ? s[m / 2] : -1;
}

TEST(fab_matches_definition_and_beats_deepfool) {
    ASSERT(setup());
    for (int nm = 0; nm < 2; nm++) {
        advex_attack_config c;
        advex_attack_config_default(&c);
        c.norm = nm ? ADVEX_NORM_L2 : ADVEX_NORM_LINF;
        c.eps = FLT_MAX;
        c.kind = ADVEX_ATTACK_FAB;
        double fab[NREF], df[NREF];
        ASSERT_MSG(run_checked(&c, fab) >= 0, "fab %s: definition", nm ? "L2" : "Linf");
        c.kind = ADVEX_ATTACK_DEEPFOOL;
        c.steps = 0;
        ASSERT(run_checked(&c, df) >= 0);
        /* on the examples both broke */
        int nb = 0, nf = 0;
        for (int i = 0; i < NREF; i++) {
            nf += fab[i] >= 0;
            if (fab[i] < 0 || df[i] < 0) fab[i] = df[i] = -1;
            else nb++;
        }
        double mf = median_of(fab, NREF), md = median_of(df, NREF);
        fprintf(stderr, "  %s: fab broke %d, both %d; median minimal norm fab %.5f, deepfool %.5f\n",
                nm ? "L2" : "Linf", nf, nb, mf, md);
        ASSERT_MSG(nb >= 10 && mf > 0 && mf <= md, "fab's median norm %g above deepfool's %g", mf, md);
        /* within a budget: the same definition, and the budget is honoured */
        c.kind = ADVEX_ATTACK_FAB_T;
        c.eps = nm ? 1.0f : 0.05f;
        c.steps = 20;
        c.topk = 2;
        ASSERT_MSG(run_checked(&c, NULL) >= 0, "fab-t %s at eps: definition", nm ? "L2" : "Linf");
    }
}

TEST(fab_matches_published_code) {
    ASSERT(setup());
    float *ref = NULL;
    int ndim = 0;
    int64_t dims[6];
    ASSERT_OK(advex_npy_load_f32(advex_test_src("tests/fixtures/attacks/fab_ref.npy"), &ref, &ndim, dims));
    ASSERT_EQ_INT(dims[0], 3 * (3 + NREF));
    const advex_norm norms[3] = {ADVEX_NORM_LINF, ADVEX_NORM_L2, ADVEX_NORM_L1};
    const float eps[3] = {0.1f, 1.0f, 8.0f}; /* as tools/make_fab_fixtures.py */
    for (int nm = 0; nm < 3; nm++) {
        const float *row = ref + nm * (3 + NREF);
        advex_attack_config c;
        advex_attack_config_default(&c);
        c.kind = ADVEX_ATTACK_FAB;
        c.norm = norms[nm];
        c.eps = FLT_MAX;
        double got[NREF];
        ASSERT(run_checked(&c, got) >= 0);
        /* one run from x: robust at eps = not found or beyond eps */
        int64_t r_fab = 0, close = 0, both = 0, clean = 0;
        for (int i = 0; i < NREF; i++) {
            float zc[K];
            ASSERT_OK(advex_model_forward(net, data.x + (size_t)i * D, 1, zc));
            int ok0 = advex_argmax(zc, K) == data.y[i];
            clean += ok0;
            r_fab += ok0 && !(got[i] >= 0 && got[i] <= eps[nm]);
            double want = row[3 + i];
            if (got[i] >= 0 && want < 1e9) {
                both++;
                close += fabs(got[i] - want) <= 0.05 * want + 1e-4;
            }
        }
        c.kind = ADVEX_ATTACK_FAB_T;
        c.eps = eps[nm];
        c.topk = 3;
        int64_t r_fabt = run_checked(&c, NULL);
        fprintf(stderr, "  %s eps %g: robust fab %lld (published %d), fab-t %lld (%d), clean %lld (%d); minimal norms "
                "within 5%% on %lld of %lld\n", nm == 0 ? "Linf" : nm == 1 ? "L2" : "L1", (double)eps[nm],
                (long long)r_fab, (int)row[0], (long long)r_fabt, (int)row[1], (long long)clean, (int)row[2],
                (long long)close, (long long)both);
        ASSERT_EQ_INT(clean, (int64_t)row[2]);
        ASSERT_MSG(llabs(r_fab - (int64_t)row[0]) <= 2 && llabs(r_fabt - (int64_t)row[1]) <= 2,
                   "norm %d: robust counts off by more than 2", nm);
        ASSERT_MSG(both >= clean * 8 / 10 && close * 10 >= both * 9, "norm %d: %lld of %lld minimal norms close", nm,
                   (long long)close, (long long)both);
    }
    free(ref);
}

/* standard's stage lists are autoattack.py's set_version, in its order */
TEST(standard_versions_follow_autoattack) {
    ASSERT(setup());
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_STANDARD;
    advex_attack_kind st[ADVEX_ATTACK_MAX_STAGES];
    const advex_attack_kind std4[] = {ADVEX_ATTACK_APGD_CE, ADVEX_ATTACK_APGD_T, ADVEX_ATTACK_FAB_T, ADVEX_ATTACK_SQUARE};
    const advex_attack_kind plus6[] = {ADVEX_ATTACK_APGD_CE, ADVEX_ATTACK_APGD_DLR, ADVEX_ATTACK_FAB,
                                       ADVEX_ATTACK_SQUARE,  ADVEX_ATTACK_APGD_T,   ADVEX_ATTACK_FAB_T};
    for (int nm = 0; nm < 2; nm++) {
        c.norm = nm ? ADVEX_NORM_L2 : ADVEX_NORM_LINF;
        c.version = ADVEX_AA_STANDARD;
        ASSERT_EQ_INT(advex_attack_stages(&c, st, ADVEX_ATTACK_MAX_STAGES), 4);
        for (int s = 0; s < 4; s++) ASSERT_EQ_INT(st[s], std4[s]);
        c.version = ADVEX_AA_PLUS;
        ASSERT_OK(advex_attack_check(net, &c));
        ASSERT_EQ_INT(advex_attack_stages(&c, st, ADVEX_ATTACK_MAX_STAGES), 6);
        for (int s = 0; s < 6; s++) ASSERT_EQ_INT(st[s], plus6[s]);
    }
    c.norm = ADVEX_NORM_L1; /* AutoAttack's L1 lists: the same attacks (standard's APGD with its eps schedule) */
    c.version = ADVEX_AA_STANDARD;
    ASSERT_OK(advex_attack_check(net, &c));
    ASSERT_EQ_INT(advex_attack_stages(&c, st, ADVEX_ATTACK_MAX_STAGES), 4);
    for (int s = 0; s < 4; s++) ASSERT_EQ_INT(st[s], std4[s]);
    c.version = ADVEX_AA_PLUS;
    ASSERT_OK(advex_attack_check(net, &c));
    ASSERT_EQ_INT(advex_attack_stages(&c, st, ADVEX_ATTACK_MAX_STAGES), 6);
    for (int s = 0; s < 6; s++) ASSERT_EQ_INT(st[s], plus6[s]);
    c.version = ADVEX_AA_STANDARD;
    /* a version on another attack, an unknown one, by name */
    c.norm = ADVEX_NORM_LINF;
    c.kind = ADVEX_ATTACK_PGD;
    c.version = ADVEX_AA_PLUS;
    ASSERT_STATUS(advex_attack_check(net, &c), ADVEX_ERR_ARG);
    int32_t v = -1;
    ASSERT_OK(advex_aa_version_parse("plus", &v));
    ASSERT_EQ_INT(v, ADVEX_AA_PLUS);
    ASSERT_STATUS(advex_aa_version_parse("rand2", &v), ADVEX_ERR_ARG);
    ASSERT(strstr(advex_last_error(), "standard, plus"));
}

TEST(teardown) {
    advex_model_free(net);
    advex_dataset_free(&data);
    net = NULL;
}

TEST_MAIN(TEST_ENTRY(projection_matches_definition), TEST_ENTRY(l1_projection_equals_full_sort),
          TEST_ENTRY(fab_matches_definition_and_beats_deepfool),
          TEST_ENTRY(fab_matches_published_code), TEST_ENTRY(standard_versions_follow_autoattack), TEST_ENTRY(teardown))
