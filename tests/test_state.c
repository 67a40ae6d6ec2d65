/* Tests for resumable sweeps and minimal-perturbation curves (src/eval/state.c, curve.c): a
 * sweep stopped by its progress callback twice and resumed from its state file ends with the
 * results of an uninterrupted sweep, field for field; a state for other settings is refused
 * and left alone; the DeepFool curve is monotone, follows the per-example minimal norms and
 * equals the fixed-eps runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "advex/advex.h"
#include "harness.h"

#define N 40

static const advex_attack_kind kinds[2] = {ADVEX_ATTACK_PGD, ADVEX_ATTACK_DEEPFOOL};
static const float eps[3] = {0.1f, 0.02f, 0.05f}; /* unsorted on purpose */

/* A data set the random small net gets about half right: labels are its own predictions for
 * even examples and another class for odd ones. */
static void make_data(advex_model *m, advex_dataset *d) {
    memset(d, 0, sizeof *d);
    d->n = N; d->c = 1; d->h = 28; d->w = 28; d->num_classes = 10;
    d->x = malloc(sizeof(float) * N * 784);
    d->y = malloc(sizeof(int32_t) * N);
    uint32_t s = 12345;
    for (int i = 0; i < N * 784; i++) {
        s = s * 1664525u + 1013904223u;
        d->x[i] = (float)(s >> 8) / 16777216.0f;
    }
    float z[N * 10];
    ASSERT_OK(advex_model_forward(m, d->x, N, z));
    for (int i = 0; i < N; i++) {
        int32_t p = 0;
        for (int k = 1; k < 10; k++) if (z[i * 10 + k] > z[i * 10 + p]) p = k;
        d->y[i] = i % 2 ? (p + 1) % 10 : p;
    }
}

static void config(advex_sweep_config *c, const char *state) {
    advex_sweep_config_default(c);
    c->attacks = kinds;
    c->n_attacks = 2;
    c->eps = eps;
    c->n_eps = 3;
    c->batch = 8;
    c->attack.steps = 5;
    c->state = state;
}

/* Stops the sweep after `left` batches: a run's first report (where it starts, before any
 * batch) is not a batch. */
typedef struct stopper { int left, run; } stopper;
static int stop_after(void *user, const advex_sweep_progress *p) {
    stopper *s = user;
    if (p->run != s->run) {
        s->run = p->run;
        return 0;
    }
    return --s->left < 0;
}

static void same_result(const advex_eval_result *a, const advex_eval_result *b) {
    ASSERT_EQ_INT(a->attack, b->attack);
    ASSERT(a->eps == b->eps);
    ASSERT_EQ_INT(a->n, b->n);
    ASSERT_EQ_INT(a->clean_correct, b->clean_correct);
    ASSERT_EQ_INT(a->robust_correct, b->robust_correct);
    ASSERT(a->robust_accuracy == b->robust_accuracy && a->success_rate == b->success_rate);
    ASSERT_EQ_INT(a->norm_count, b->norm_count);
    ASSERT(a->norm_median == b->norm_median && a->norm_mean == b->norm_mean);
    ASSERT_EQ_INT(a->warnings, b->warnings);
}

TEST(resume_equals_uninterrupted) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 1, &m));
    advex_dataset d;
    make_data(m, &d);
    advex_sweep_config c;
    advex_sweep *ref = NULL, *s = NULL;
    config(&c, NULL);
    ASSERT_OK(advex_eval_sweep(m, &d, &c, &ref));
    ASSERT_EQ_INT(advex_sweep_resumed(ref), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/sweep.state", advex_test_tmpdir());
    unlink(path);
    config(&c, path);
    stopper st = {3, -1};
    c.progress = stop_after;
    c.user = &st;
    ASSERT_STATUS(advex_eval_sweep(m, &d, &c, &s), ADVEX_ERR_INTERRUPTED); /* 4 batches of run 0 */
    ASSERT(s == NULL);
    st = (stopper){7, -1}; /* run 0's last batch, then into run 1 */
    ASSERT_STATUS(advex_eval_sweep(m, &d, &c, &s), ADVEX_ERR_INTERRUPTED);
    c.progress = NULL;
    ASSERT_OK(advex_eval_sweep(m, &d, &c, &s));
    ASSERT_EQ_INT(advex_sweep_resumed(s), N + N + 2 * 8); /* runs 0 and 1, two batches of run 2 */
    ASSERT_EQ_INT(advex_sweep_runs(s), 6);
    for (int r = 0; r < 6; r++) same_result(advex_sweep_result(ref, r), advex_sweep_result(s, r));
    char *j1, *j2;
    ASSERT_OK(advex_sweep_json(ref, "m", "d", &j1));
    ASSERT_OK(advex_sweep_json(s, "m", "d", &j2));
    ASSERT(strstr(j1, "\"curves\"") != NULL);
    char *p1 = strstr(j1, "\"curves\""), *p2 = strstr(j2, "\"curves\"");
    ASSERT(p1 && p2 && strcmp(p1, p2) == 0); /* the curves, bit for bit (timings come before) */
    free(j1);
    free(j2);
    advex_sweep_free(s);
    /* another setting: refused, the file left alone */
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    static unsigned char before[1 << 16], after[1 << 16];
    size_t nb = fread(before, 1, sizeof before, f);
    fclose(f);
    config(&c, path);
    c.attack.steps = 6;
    ASSERT_STATUS(advex_eval_sweep(m, &d, &c, &s), ADVEX_ERR_ARG);
    ASSERT(strstr(advex_last_error(), "different value of an attack setting") != NULL);
    config(&c, path);
    c.batch = 4;
    ASSERT_STATUS(advex_eval_sweep(m, &d, &c, &s), ADVEX_ERR_ARG);
    config(&c, path);
    c.attack.seed = 9;
    ASSERT_STATUS(advex_eval_sweep(m, &d, &c, &s), ADVEX_ERR_ARG);
    config(&c, path);
    c.keep_rows = 2;
    ASSERT_STATUS(advex_eval_sweep(m, &d, &c, &s), ADVEX_ERR_ARG);
    f = fopen(path, "rb");
    ASSERT(f != NULL);
    size_t na = fread(after, 1, sizeof after, f);
    fclose(f);
    ASSERT(nb == na && memcmp(before, after, nb) == 0);
    advex_sweep_free(ref);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST(min_norm_curve) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 2, &m));
    advex_dataset d;
    make_data(m, &d);
    advex_sweep_config c;
    advex_sweep *s = NULL;
    config(&c, NULL);
    ASSERT_OK(advex_eval_sweep(m, &d, &c, &s));
    const float *ce;
    const double *ca;
    ASSERT_EQ_INT(advex_sweep_curve(s, 0, &ce, &ca), 0); /* pgd: no curve */
    ASSERT(isnan(advex_sweep_min_norm(s, 0, 0)));
    ASSERT_EQ_INT(advex_sweep_curve(s, 1, &ce, &ca), 3);
    ASSERT(ce[0] == 0.02f && ce[1] == 0.05f && ce[2] == 0.1f);
    int broken = 0;
    for (int j = 0; j < 3; j++) {
        if (j) ASSERT(ca[j] <= ca[j - 1]);
        int robust = 0;
        for (int64_t i = 0; i < N; i++) {
            double mn = advex_sweep_min_norm(s, 1, i);
            ASSERT(mn >= 0);
            robust += mn > (double)ce[j];
            broken += j == 0 && isfinite(mn) && mn > 0;
        }
        ASSERT(ca[j] == (double)robust / N);
        /* the deepfool run at this eps (runs 3..5 in the order of eps[]) */
        for (int e = 0; e < 3; e++)
            if (eps[e] == ce[j]) ASSERT(advex_sweep_result(s, 3 + e)->robust_accuracy == ca[j]);
    }
    ASSERT(broken > 0);
    ASSERT(ca[2] < ca[0]);
    /* the sweep's batch-by-batch runs equal one advex_eval_attack over the whole set with the
     * same batch size (the slices seed their examples by their index in the data set; another
     * batch size may change logits in the last bits, README's known limits) */
    for (int r = 0; r < 6; r++) {
        advex_attack_config ac = c.attack;
        ac.kind = kinds[r / 3];
        ac.eps = eps[r % 3];
        ac.norm = ADVEX_NORM_LINF;
        advex_eval_result whole;
        ASSERT_OK(advex_eval_attack(m, &d, &ac, 8, NULL, NULL, NULL, &whole));
        same_result(&whole, advex_sweep_result(s, r));
    }
    advex_sweep_free(s);
    advex_dataset_free(&d);
    advex_model_free(m);
}

/* Cut the value of every "seconds" key out of a JSON text; returns how many. */
static int blank_seconds(char *j) {
    int n = 0;
    for (char *p = j; (p = strstr(p, "\"seconds\":")); n++) {
        p += 10;
        size_t len = strcspn(p, ",}\n");
        memmove(p, p + len, strlen(p + len) + 1);
    }
    return n;
}

/* A randomized defence (Gaussian noise on the input) under AutoAttack's rand attacks with EOT:
 * stopped twice and resumed, the sweep ends with the uninterrupted one's results and JSON (its
 * batches draw from (seed, first example), not from a generator the stop would have lost). */
TEST(resume_randomized_equals_uninterrupted) {
    static const advex_attack_kind rk[2] = {ADVEX_ATTACK_APGD_CE, ADVEX_ATTACK_APGD_DLR};
    static const float reps[1] = {0.1f};
    advex_model *m = NULL;
    advex_dataset d = {0};
    ASSERT_OK(advex_model_load_onnx(advex_test_src("tests/fixtures/random/noise.onnx"), &m));
    ASSERT(advex_model_is_random(m));
    ASSERT_OK(advex_dataset_load("fashion-mnist:test", NULL, 32, &d));
    char path[512];
    snprintf(path, sizeof path, "%s/rand.state", advex_test_tmpdir());
    unlink(path);
    advex_sweep *ref = NULL, *s = NULL;
    for (int pass = 0; pass < 4; pass++) { /* reference; stopped twice; resumed to the end */
        advex_sweep_config c;
        config(&c, pass ? path : NULL);
        c.attacks = rk;
        c.eps = reps;
        c.n_eps = 1;
        c.attack.steps = 4;
        c.attack.eot = 3;
        c.attack.seed = 6;
        advex_model_seed(m, 6);
        stopper st = {pass == 1 ? 1 : 2, -1};
        c.progress = pass == 1 || pass == 2 ? stop_after : NULL;
        c.user = &st;
        advex_status want = pass == 1 || pass == 2 ? ADVEX_ERR_INTERRUPTED : ADVEX_OK;
        ASSERT_STATUS(advex_eval_sweep(m, &d, &c, pass ? &s : &ref), want);
    }
    ASSERT_EQ_INT(advex_sweep_resumed(s), 32 + 8); /* run 0, then 1 batch of run 1 */
    for (int r = 0; r < 2; r++) same_result(advex_sweep_result(ref, r), advex_sweep_result(s, r));
    char *j1, *j2;
    ASSERT_OK(advex_sweep_json(ref, "m", "d", &j1));
    ASSERT_OK(advex_sweep_json(s, "m", "d", &j2));
    ASSERT(blank_seconds(j1) == 2 && blank_seconds(j2) == 2); /* equal but for the timings */
    ASSERT_MSG(strcmp(j1, j2) == 0, "%s\n%s", j1, j2);
    free(j1);
    free(j2);
    advex_sweep_free(ref);
    advex_sweep_free(s);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST_MAIN(TEST_ENTRY(resume_equals_uninterrupted), TEST_ENTRY(min_norm_curve),
          TEST_ENTRY(resume_randomized_equals_uninterrupted))
