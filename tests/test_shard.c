/* The library's sharding hooks (what `mpirun -np N advex eval|attack|train` runs on): a sweep split
 * into shards of whole batches whose gather completes the outcomes gives the whole sweep's
 * results and per-example outcomes exactly;
 * advex_eval_examples over two shards + advex_eval_summarize equals advex_eval_run; a failing
 * gather fails the sweep with its status; a shard outside the data is refused; data-parallel
 * training steps on two ranks (two threads, an all-reduce through shared memory) keep both
 * ranks' models identical and match one process's to float rounding. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "advex/advex.h"
#include "harness.h"

#define N 40
#define DIM 784
#define RUNS 3

static void make_data(advex_dataset *d) {
    memset(d, 0, sizeof *d);
    d->n = N; d->c = 1; d->h = 28; d->w = 28; d->num_classes = 10;
    d->x = malloc(sizeof(float) * N * DIM);
    d->y = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N * DIM; i++) d->x[i] = (float)((i * 7919) % 1000) / 1000.0f;
    for (int i = 0; i < N; i++) d->y[i] = i % 10;
}

static const advex_attack_kind kinds[RUNS] = {ADVEX_ATTACK_FGSM_RS, ADVEX_ATTACK_PGD, ADVEX_ATTACK_SQUARE};
static const float eps[1] = {0.1f};

static void config(advex_sweep_config *c) {
    advex_sweep_config_default(c);
    c->attacks = kinds;
    c->n_attacks = RUNS;
    c->eps = eps;
    c->n_eps = 1;
    c->attack.steps = 3;
    c->attack.queries = 30;
    c->attack.seed = 5;
    c->batch = 7; /* batches straddle the shard boundary */
    c->checks = 0;
    c->keep_rows = 4;
}

/* The other shard's outcomes, kept by the first sweep's gather and given to the second's. */
static struct {
    int64_t lo, hi;
    advex_eval_example ex[RUNS][N];
    float adv[RUNS][N * DIM];
    int calls, fail_run;
    int64_t progress_total;
} other;

static advex_status keep_gather(void *user, int run, advex_status st, advex_eval_example *ex, float *adv, int64_t n,
                                int64_t dim) {
    (void)user;
    memcpy(other.ex[run] + other.lo, ex + other.lo, (size_t)(other.hi - other.lo) * sizeof *ex);
    if (adv) memcpy(other.adv[run] + other.lo * dim, adv + other.lo * dim, (size_t)((other.hi - other.lo) * dim) * sizeof(float));
    (void)n;
    return st;
}

static advex_status fill_gather(void *user, int run, advex_status st, advex_eval_example *ex, float *adv, int64_t n,
                                int64_t dim) {
    (void)user; (void)n;
    other.calls++;
    if (run == other.fail_run) return ADVEX_ERR_IO;
    memcpy(ex + other.lo, other.ex[run] + other.lo, (size_t)(other.hi - other.lo) * sizeof *ex);
    if (adv) memcpy(adv + other.lo * dim, other.adv[run] + other.lo * dim, (size_t)((other.hi - other.lo) * dim) * sizeof(float));
    return st;
}

static int on_progress(void *user, const advex_sweep_progress *p) {
    (void)user;
    other.progress_total = p->total;
    return 0;
}

TEST(sweep_shards_equal_whole) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 1, &m));
    advex_dataset d;
    make_data(&d);
    advex_sweep_config c;
    config(&c);
    advex_sweep *whole = NULL, *a = NULL, *b = NULL;
    ASSERT_OK(advex_eval_sweep(m, &d, &c, &whole));
    /* shard A = [0, 21) keeps its outcomes; shard B = [21, 40) gets them in its gather */
    other.lo = 0; other.hi = 21; other.fail_run = -1;
    c.shard_lo = 0; c.shard_hi = 21;
    c.gather = keep_gather;
    ASSERT_OK(advex_eval_sweep(m, &d, &c, &a));
    c.shard_lo = 21; c.shard_hi = N;
    c.gather = fill_gather;
    c.progress = on_progress;
    ASSERT_OK(advex_eval_sweep(m, &d, &c, &b));
    ASSERT_EQ_INT(other.calls, RUNS);
    ASSERT_EQ_INT(other.progress_total, N - 21); /* progress counts the shard */
    int some_success = 0;
    for (int r = 0; r < RUNS; r++) {
        advex_eval_result w = *advex_sweep_result(whole, r), s = *advex_sweep_result(b, r);
        w.seconds = s.seconds = 0;
        ASSERT_MSG(memcmp(&w, &s, sizeof w) == 0, "run %d: the sharded result differs", r);
        const advex_eval_example *ew = advex_sweep_examples(whole, r), *es = advex_sweep_examples(b, r);
        for (int i = 0; i < N; i++)
            ASSERT_MSG(memcmp(&ew[i], &es[i], sizeof *ew) == 0, "run %d example %d: %d %d %a %a %d %d %lld %a / %d %d %a %a %d %d %lld %a", r, i,
                       ew[i].clean_pred, ew[i].adv_pred, ew[i].clean_conf, ew[i].adv_conf, ew[i].target, ew[i].stage,
                       (long long)ew[i].queries, ew[i].norms[0], es[i].clean_pred, es[i].adv_pred, es[i].clean_conf,
                       es[i].adv_conf, es[i].target, es[i].stage, (long long)es[i].queries, es[i].norms[0]);
        some_success |= w.robust_correct < w.clean_correct;
    }
    ASSERT(some_success); /* the attacks did something, so the comparison means something */
    advex_sweep_free(whole); advex_sweep_free(a); advex_sweep_free(b);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST(gather_failure_fails_sweep) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 1, &m));
    advex_dataset d;
    make_data(&d);
    advex_sweep_config c;
    config(&c);
    advex_sweep *s = (advex_sweep *)&c;
    other.lo = 0; other.hi = 10; other.fail_run = 1; other.calls = 0;
    c.shard_lo = 10; c.shard_hi = N;
    c.gather = fill_gather;
    ASSERT_STATUS(advex_eval_sweep(m, &d, &c, &s), ADVEX_ERR_IO);
    ASSERT(s == NULL);
    ASSERT_EQ_INT(other.calls, 2); /* it stopped at the failing run */
    c.shard_lo = 30; c.shard_hi = N + 1;
    ASSERT_STATUS(advex_eval_sweep(m, &d, &c, &s), ADVEX_ERR_ARG);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST(examples_in_shards_equal_run) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 1, &m));
    advex_dataset d;
    make_data(&d);
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_PGD;
    c.eps = 0.1f;
    c.steps = 4;
    c.target = ADVEX_TARGET_RANDOM;
    c.seed = 3;
    static float adv1[N * DIM], adv2[N * DIM];
    advex_eval_outputs o = {adv1, NULL, NULL, NULL, NULL};
    advex_eval_result r1, r2;
    ASSERT_OK(advex_eval_run(m, NULL, &d, &c, 8, NULL, NULL, &o, &r1));
    static advex_eval_example ex[N];
    ASSERT_OK(advex_eval_examples(m, NULL, &d, &c, 8, 24, N, NULL, NULL, ex, adv2));
    ASSERT_OK(advex_eval_examples(m, NULL, &d, &c, 8, 0, 24, NULL, NULL, ex, adv2));
    ASSERT_OK(advex_eval_summarize(&d, &c, 0, ex, r1.seconds, &r2));
    ASSERT(memcmp(&r1, &r2, sizeof r1) == 0);
    ASSERT(memcmp(adv1, adv2, sizeof adv1) == 0);
    ASSERT(r1.target_hits >= 0);
    ASSERT_STATUS(advex_eval_examples(m, NULL, &d, &c, 5, 30, 20, NULL, NULL, ex, NULL), ADVEX_ERR_ARG);
    advex_dataset_free(&d);
    advex_model_free(m);
}

/* ---- data-parallel training: 2 ranks as 2 threads ------------------------------------------- */

static struct {
    pthread_barrier_t bar;
    float *slot[2];
    int calls[2];
} ar;

/* Sum over the 2 "ranks" in the same order on both (as MPI_Allreduce gives one result). */
static advex_status fake_allreduce(void *user, float *buf, int64_t n) {
    int rank = *(int *)user;
    ar.slot[rank] = buf;
    ar.calls[rank]++;
    pthread_barrier_wait(&ar.bar);
    float *tmp = malloc((size_t)n * sizeof(float));
    if (!tmp) return ADVEX_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) tmp[i] = ar.slot[0][i] + ar.slot[1][i];
    pthread_barrier_wait(&ar.bar); /* both have read both */
    memcpy(buf, tmp, (size_t)n * sizeof(float));
    free(tmp);
    return ADVEX_OK;
}

typedef struct dp_rank {
    int rank;
    advex_model *m;
    const advex_dataset *d;
    advex_status st;
    double loss;
} dp_rank;

#define DP_STEPS 4
#define DP_BATCH 10 /* 5 rows a rank */

static void train_config(advex_train_config *tc) {
    advex_train_config_default(tc);
    tc->batch = DP_BATCH;
    tc->adv = ADVEX_ADV_FGSM_RS; /* random starts: each rank's rows must start where one process's do */
    tc->eps = 0.1f;
    tc->seed = 9;
}

static void *dp_run(void *arg) {
    dp_rank *r = arg;
    advex_train_config tc;
    train_config(&tc);
    tc.ranks = 2;
    tc.rank = r->rank;
    tc.allreduce = fake_allreduce;
    tc.allreduce_user = &r->rank;
    advex_trainer *t = NULL;
    if ((r->st = advex_trainer_new(r->m, &tc, &t))) return NULL;
    for (int s = 0; s < DP_STEPS && !r->st; s++)
        r->st = advex_trainer_step(t, r->d->x + s * DP_BATCH * DIM, r->d->y + s * DP_BATCH, DP_BATCH, tc.adv, tc.eps,
                                   1e-3f, &r->loss, NULL);
    advex_trainer_free(t);
    return NULL;
}

TEST(trainer_data_parallel) {
    advex_set_threads(1);
    advex_dataset d;
    make_data(&d);
    advex_model *one = NULL, *m0 = NULL, *m1 = NULL;
    ASSERT_OK(advex_model_build("small", 2, &one));
    ASSERT_OK(advex_model_build("small", 2, &m0));
    ASSERT_OK(advex_model_build("small", 2, &m1));
    advex_train_config tc;
    train_config(&tc);
    advex_trainer *t = NULL;
    double loss1 = 0;
    ASSERT_OK(advex_trainer_new(one, &tc, &t));
    for (int s = 0; s < DP_STEPS; s++)
        ASSERT_OK(advex_trainer_step(t, d.x + s * DP_BATCH * DIM, d.y + s * DP_BATCH, DP_BATCH, tc.adv, tc.eps, 1e-3f,
                                     &loss1, NULL));
    advex_trainer_free(t);
    pthread_barrier_init(&ar.bar, NULL, 2);
    dp_rank r[2] = {{0, m0, &d, ADVEX_OK, 0}, {1, m1, &d, ADVEX_OK, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) ASSERT(pthread_create(&th[i], NULL, dp_run, &r[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&ar.bar);
    ASSERT_OK(r[0].st);
    ASSERT_OK(r[1].st);
    ASSERT_EQ_INT(ar.calls[0], DP_STEPS); /* one all-reduce a step */
    ASSERT(r[0].loss == r[1].loss);
    ASSERT_NEAR(r[0].loss, loss1, 1e-5);
    static float z1[N * 10], z0[N * 10], zr[N * 10];
    ASSERT_OK(advex_model_forward(one, d.x, N, z1));
    ASSERT_OK(advex_model_forward(m0, d.x, N, z0));
    ASSERT_OK(advex_model_forward(m1, d.x, N, zr));
    ASSERT(memcmp(z0, zr, sizeof z0) == 0); /* the ranks applied the same updates */
    double diff = 0, ref = 0;
    for (int i = 0; i < N * 10; i++) {
        double e = z0[i] - z1[i];
        diff = e > diff ? e : (-e > diff ? -e : diff);
        ref = z1[i] > ref ? z1[i] : ref;
    }
    ASSERT_MSG(diff < 1e-4 * (ref > 1 ? ref : 1), "2-rank logits differ from one process's by %g", diff);
    advex_model_free(one); advex_model_free(m0); advex_model_free(m1);
    advex_dataset_free(&d);
}

TEST_MAIN(TEST_ENTRY(sweep_shards_equal_whole), TEST_ENTRY(gather_failure_fails_sweep),
          TEST_ENTRY(examples_in_shards_equal_run), TEST_ENTRY(trainer_data_parallel))
