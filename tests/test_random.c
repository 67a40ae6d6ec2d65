/* Randomized models (src/ops/random.c, tools/make_random_fixtures.py): each random op draws
 * from its distribution (moments over 4096 draws), anew on every pass, reproducibly for a
 * seed; gradients treat the sample as a constant (x + noise passes the gradient, Bernoulli's
 * and Dropout's masks multiply it, checked against the mask of the very same pass); export
 * keeps the ops' attributes; EOT's gradient is exactly the mean of K single gradients drawn
 * in sequence; AutoAttack's checks fire on the randomized and the masked models and stay
 * quiet on the deterministic one. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

#define NB 256 /* batch: 256 x 16 = 4096 draws */
#define D 16

static advex_model *load(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/fixtures/random/%s.onnx", name);
    advex_model *m = NULL;
    if (advex_model_load_onnx(advex_test_src(rel), &m)) {
        fprintf(stderr, "load %s: %s\n", name, advex_last_error());
        return NULL;
    }
    advex_model_seed(m, 1);
    return m;
}

static void fill(float *x, float v) { for (int i = 0; i < NB * D; i++) x[i] = v; }

/* mean and standard deviation of the draws r = logits - x */
static void moments(const float *z, const float *x, double *mean, double *sd, double *lo, double *hi) {
    double s = 0, s2 = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < NB * D; i++) {
        double r = (double)z[i] - x[i];
        s += r;
        s2 += r * r;
        if (r < *lo) *lo = r;
        if (r > *hi) *hi = r;
    }
    *mean = s / (NB * D);
    *sd = sqrt(s2 / (NB * D) - *mean * *mean);
}

TEST(draws_follow_their_distribution) {
    static float x[NB * D], z[NB * D], z2[NB * D];
    double mean, sd, lo, hi;
    fill(x, 0.25f);
    const char *like[2] = {"normal_like", "normal"};
    for (int k = 0; k < 2; k++) { /* mean 0.5, scale 2 */
        advex_model *m = load(like[k]);
        ASSERT(m);
        ASSERT_OK(advex_model_forward(m, x, NB, z));
        moments(z, x, &mean, &sd, &lo, &hi);
        fprintf(stderr, "  %s: mean %.3f sd %.3f\n", like[k], mean, sd);
        ASSERT_NEAR(mean, 0.5, k ? 1.5 : 0.15); /* RandomNormal: 16 draws broadcast over the batch */
        ASSERT_NEAR(sd, 2.0, k ? 1.5 : 0.15);
        ASSERT_OK(advex_model_forward(m, x, NB, z2));
        ASSERT(memcmp(z, z2, sizeof z) != 0); /* anew on every pass */
        if (k == 1) /* a fixed shape [1,16]: every example sees the same draw within a pass */
            for (int i = 1; i < NB; i++) ASSERT(memcmp(z, z + i * D, D * sizeof(float)) == 0);
        advex_model_free(m);
    }
    const char *unif[2] = {"uniform_like", "uniform"};
    for (int k = 0; k < 2; k++) { /* low -1, high 2 */
        advex_model *m = load(unif[k]);
        ASSERT(m);
        ASSERT_OK(advex_model_forward(m, x, NB, z));
        moments(z, x, &mean, &sd, &lo, &hi);
        fprintf(stderr, "  %s: mean %.3f min %.3f max %.3f\n", unif[k], mean, lo, hi);
        ASSERT(lo >= -1.0 - 1e-6 && hi < 2.0 + 1e-6);
        if (!k) {
            ASSERT_NEAR(mean, 0.5, 0.06);
            ASSERT_NEAR(sd, 3.0 / sqrt(12.0), 0.05);
        }
        advex_model_free(m);
    }
    /* Bernoulli(x) * x with x = 0.3: 0.3 with probability 0.3, else 0 */
    advex_model *m = load("bernoulli");
    ASSERT(m);
    fill(x, 0.3f);
    ASSERT_OK(advex_model_forward(m, x, NB, z));
    int ones = 0;
    for (int i = 0; i < NB * D; i++) {
        ASSERT(z[i] == 0.0f || fabsf(z[i] - 0.3f) < 1e-6f);
        ones += z[i] != 0.0f;
    }
    fprintf(stderr, "  bernoulli: %d of %d\n", ones, NB * D);
    ASSERT_NEAR(ones / (double)(NB * D), 0.3, 0.03);
    advex_model_free(m);
    /* Dropout(ratio 0.5, training_mode=true): 0 or 2x, in eval passes too */
    m = load("dropout_id");
    ASSERT(m);
    ASSERT_OK(advex_model_forward(m, x, NB, z));
    ones = 0;
    for (int i = 0; i < NB * D; i++) {
        ASSERT(z[i] == 0.0f || fabsf(z[i] - 0.6f) < 1e-6f);
        ones += z[i] != 0.0f;
    }
    ASSERT_NEAR(ones / (double)(NB * D), 0.5, 0.03);
    advex_model_free(m);
}

TEST(seeded_and_reproducible) {
    static float x[NB * D], a[NB * D], b[NB * D], c[NB * D];
    fill(x, 0.5f);
    advex_model *m = load("uniform_like");
    ASSERT(m);
    advex_model_seed(m, 7);
    ASSERT_OK(advex_model_forward(m, x, NB, a));
    ASSERT_OK(advex_model_forward(m, x, NB, c));
    advex_model_seed(m, 7);
    ASSERT_OK(advex_model_forward(m, x, NB, b));
    ASSERT(memcmp(a, b, sizeof a) == 0);
    ASSERT(memcmp(a, c, sizeof a) != 0);
    advex_model_seed(m, 8);
    ASSERT_OK(advex_model_forward(m, x, NB, b));
    ASSERT(memcmp(a, b, sizeof a) != 0);
    /* export keeps the op and its attributes: the same draws for the same seed */
    char path[512];
    snprintf(path, sizeof path, "%s/u.onnx", advex_test_tmpdir());
    ASSERT_OK(advex_model_save_onnx(m, path));
    advex_model *r = NULL;
    ASSERT_OK(advex_model_load_onnx(path, &r));
    ASSERT(advex_model_is_random(r));
    advex_model_seed(r, 7);
    ASSERT_OK(advex_model_forward(r, x, NB, b));
    ASSERT(memcmp(a, b, sizeof a) == 0);
    advex_model_free(r);
    advex_model_free(m);
    /* Bernoulli (opset 15) has no opset-13 form: refused, no file */
    m = load("bernoulli");
    ASSERT(m);
    snprintf(path, sizeof path, "%s/b.onnx", advex_test_tmpdir());
    ASSERT_STATUS(advex_model_save_onnx(m, path), ADVEX_ERR_UNSUPPORTED);
    advex_model_free(m);
    /* a hostile fixed shape is refused at load, naming the node */
    ASSERT_STATUS(advex_model_load_onnx(advex_test_src("tests/fixtures/random/huge_shape.onnx"), &m), ADVEX_ERR_SHAPE);
    ASSERT(strstr(advex_last_error(), "shape entry") != NULL);
    /* a deterministic model says so */
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/attacks/small_pgd.onnx"), &m));
    ASSERT_EQ_INT(advex_model_is_random(m), 0);
    advex_model_free(m);
}

/* The input gradient of sum(w .* logits) with the sample held constant: w for x + noise,
 * w .* mask for Bernoulli and Dropout, the mask read off the same pass's logits. */
TEST(gradient_treats_sample_as_constant) {
    static float x[NB * D], w[NB * D], g[NB * D], z[NB * D];
    fill(x, 0.3f);
    advex_rng r;
    advex_rng_seed(&r, 3);
    for (int i = 0; i < NB * D; i++) w[i] = advex_rng_normal(&r);
    const char *names[4] = {"normal_like", "uniform", "bernoulli", "dropout_id"};
    for (int k = 0; k < 4; k++) {
        advex_model *m = load(names[k]);
        ASSERT(m);
        ASSERT_OK(advex_model_vjp(m, x, NB, w, g, z));
        int masked = 0;
        for (int i = 0; i < NB * D; i++) {
            float want = k < 2 ? w[i] : w[i] * z[i] / x[i]; /* mask = z / x: 0/1 or 0/2 */
            ASSERT_MSG(fabsf(g[i] - want) <= 1e-5f * (1 + fabsf(want)), "%s: grad %d: %g want %g", names[k], i,
                       (double)g[i], (double)want);
            masked += k >= 2 && z[i] == 0.0f;
        }
        if (k >= 2) ASSERT(masked > 0 && masked < NB * D);
        advex_model_free(m);
    }
}

/* EOT (m->eot, set by advex_attack_batch from advex_attack_config.eot): the mean of K
 * gradients, each a fresh draw, equal to K single gradients in sequence averaged here. */
TEST(eot_is_the_mean_gradient) {
    advex_model *m = NULL;
    advex_dataset d = {0};
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/random/noise.onnx"), &m));
    ASSERT_OK(advex_dataset_load("fashion-mnist:test", NULL, 8, &d));
    const int K = 5;
    int64_t dim = 784, n = 8;
    float *ge = malloc(n * dim * sizeof(float)), *g1 = malloc(n * dim * sizeof(float));
    float *sum = calloc(n * dim, sizeof(float));
    ASSERT(ge && g1 && sum);
    advex_model_seed(m, 11);
    m->eot = K;
    ASSERT_OK(advex_model_input_grad(m, d.x, d.y, n, ADVEX_LOSS_CE, ge, NULL, NULL));
    m->eot = 1;
    advex_model_seed(m, 11);
    double diff1 = 0;
    for (int e = 0; e < K; e++) {
        ASSERT_OK(advex_model_input_grad(m, d.x, d.y, n, ADVEX_LOSS_CE, g1, NULL, NULL));
        for (int64_t j = 0; j < n * dim; j++) {
            if (e == 1) diff1 += fabs((double)g1[j] - sum[j]); /* draws differ pass to pass */
            sum[j] += g1[j];
        }
    }
    ASSERT(diff1 > 0);
    for (int64_t j = 0; j < n * dim; j++) ASSERT_MSG(ge[j] == sum[j] / (float)K, "element %lld: %g vs %g", (long long)j,
                                                     (double)ge[j], (double)(sum[j] / K));
    /* and through the attack config: two EOT runs with one seed agree, EOT 1 differs */
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_PGD;
    c.eps = 0.1f;
    c.steps = 3;
    c.eot = 4;
    advex_model_seed(m, 5);
    ASSERT_OK(advex_attack_batch(m, &c, d.x, d.y, n, 0, ge));
    advex_model_seed(m, 5);
    ASSERT_OK(advex_attack_batch(m, &c, d.x, d.y, n, 0, g1));
    ASSERT(memcmp(ge, g1, n * dim * sizeof(float)) == 0);
    ASSERT_EQ_INT(m->eot, 1); /* restored after the attack */
    c.eot = 1;
    advex_model_seed(m, 5);
    ASSERT_OK(advex_attack_batch(m, &c, d.x, d.y, n, 0, g1));
    ASSERT(memcmp(ge, g1, n * dim * sizeof(float)) != 0);
    free(ge); free(g1); free(sum);
    advex_dataset_free(&d);
    advex_model_free(m);
}

/* apgd-ce with EOT on noise.onnx over examples [lo, d->n) of d in batches of 8: per example
 * the clean and adversarial predictions and the perturbation norms (ex[lo..n)). */
#define SN 32
#define SB 8
typedef struct shard_out {
    advex_eval_example ex[SN];
} shard_out;

static advex_status run_shard(advex_model *m, const advex_dataset *d, int64_t lo, advex_attack_kind kind,
                              shard_out *o) {
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = kind;
    c.eps = 0.1f;
    c.steps = 4;
    c.eot = 3;
    c.seed = 2;
    memset(o, 0, sizeof *o);
    return advex_eval_examples(m, NULL, d, &c, SB, lo, d->n, NULL, NULL, o->ex, NULL);
}

static int same_example(const advex_eval_example *a, const advex_eval_example *b) {
    return a->clean_pred == b->clean_pred && a->adv_pred == b->adv_pred && a->clean_conf == b->clean_conf &&
           a->adv_conf == b->adv_conf && memcmp(a->norms, b->norms, sizeof a->norms) == 0;
}

/* A randomized model's draws in an evaluation come per batch from (seed, index of the batch's
 * first example), not from a generator running across batches: a run over examples [16, 32)
 * gives, example for example, what a run over [0, 32) gave them (a shard of whole batches, or
 * a resumed run); draws made in between change nothing; another seed changes the draws. */
TEST(batch_draws_follow_seed_and_offset) {
    advex_model *m = NULL;
    advex_dataset d = {0};
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/random/noise.onnx"), &m));
    ASSERT_OK(advex_dataset_load("fashion-mnist:test", NULL, SN, &d));
    static shard_out all, again, tail, other;
    static float z[SN * 10];
    const advex_attack_kind kinds[2] = {ADVEX_ATTACK_APGD_CE, ADVEX_ATTACK_PGD};
    for (int a = 0; a < 2; a++) {
        advex_model_seed(m, 9);
        ASSERT_OK(run_shard(m, &d, 0, kinds[a], &all));
        /* the generator moved on by other passes: the same results */
        for (int i = 0; i < 3; i++) ASSERT_OK(advex_model_forward(m, d.x, SN, z));
        ASSERT_OK(run_shard(m, &d, 0, kinds[a], &again));
        for (int i = 0; i < SN; i++) ASSERT_MSG(same_example(&all.ex[i], &again.ex[i]), "example %d differs", i);
        /* the second half alone, seeded by its place in the data set */
        ASSERT_OK(run_shard(m, &d, SN / 2, kinds[a], &tail));
        for (int j = SN / 2; j < SN; j++)
            ASSERT_MSG(same_example(&tail.ex[j], &all.ex[j]), "example %d: %d/%d vs %d/%d", j, tail.ex[j].clean_pred,
                       tail.ex[j].adv_pred, all.ex[j].clean_pred, all.ex[j].adv_pred);
        /* the same examples placed elsewhere in the data set draw otherwise */
        advex_dataset v = d;
        v.x = d.x + (SN / 2) * 784;
        v.y = d.y + SN / 2;
        v.n = SN / 2;
        ASSERT_OK(run_shard(m, &v, 0, kinds[a], &other));
        int differ = 0;
        for (int i = 0; i < SN / 2; i++) differ |= memcmp(other.ex[i].norms, tail.ex[SN / 2 + i].norms, sizeof(double) * 3);
        ASSERT(differ);
        /* another seed: other draws */
        advex_model_seed(m, 10);
        ASSERT_OK(run_shard(m, &d, 0, kinds[a], &other));
        differ = 0;
        for (int i = 0; i < SN; i++) differ |= memcmp(other.ex[i].norms, all.ex[i].norms, sizeof(double) * 3);
        ASSERT(differ);
    }
    advex_dataset_free(&d);
    advex_model_free(m);
}

static unsigned checks_of(const char *path, int fashion, int eot) {
    advex_model *m = NULL;
    advex_dataset d = {0};
    unsigned w = 0;
    if (advex_model_load_onnx(advex_test_src(path), &m)) return 0x80000000u;
    if (fashion) {
        if (advex_dataset_load("fashion-mnist:test", NULL, 32, &d)) return 0x80000000u;
    } else { /* (N,1,4,4) inputs, half of the pixels 0 */
        d.n = 32, d.c = 1, d.h = 4, d.w = 4;
        d.x = calloc(32 * 16, sizeof(float));
        d.y = calloc(32, sizeof(int32_t));
        for (int i = 0; i < 32 * 16; i++) d.x[i] = i % 2 ? 0.7f : 0.0f;
    }
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_FGSM;
    c.eps = 0.1f;
    c.eot = eot;
    if (advex_eval_checks(m, &d, &c, &w)) w |= 0x80000000u;
    if (fashion) advex_dataset_free(&d);
    else { free(d.x); free(d.y); }
    advex_model_free(m);
    return w;
}

TEST(autoattack_checks) {
    unsigned w = checks_of("tests/fixtures/random/noise.onnx", 1, 1);
    ASSERT_EQ_INT(w, ADVEX_EVAL_WARN_RANDOMIZED);
    w = checks_of("tests/fixtures/random/dropout.onnx", 1, 1);
    ASSERT_EQ_INT(w, ADVEX_EVAL_WARN_RANDOMIZED);
    w = checks_of("tests/fixtures/random/noise.onnx", 1, 4); /* attacked with EOT: the answer to it */
    ASSERT_EQ_INT(w, 0);
    w = checks_of("tests/fixtures/attacks/small_pgd.onnx", 1, 1);
    ASSERT_EQ_INT(w, 0);
    w = checks_of("tests/fixtures/random/sqrt.onnx", 0, 1);
    ASSERT_EQ_INT(w, ADVEX_EVAL_WARN_NONFINITE_GRAD);
    w = checks_of("tests/fixtures/random/floor.onnx", 0, 1);
    ASSERT_EQ_INT(w, ADVEX_EVAL_WARN_ZERO_GRAD);
    ASSERT(strncmp(advex_eval_warning_str(ADVEX_EVAL_WARN_RANDOMIZED), "check_randomized:", 17) == 0);
}

TEST_MAIN(TEST_ENTRY(draws_follow_their_distribution), TEST_ENTRY(seeded_and_reproducible),
          TEST_ENTRY(gradient_treats_sample_as_constant), TEST_ENTRY(eot_is_the_mean_gradient),
          TEST_ENTRY(autoattack_checks), TEST_ENTRY(batch_draws_follow_seed_and_offset))
