/* Targets (advex/target.h), in-process: a served model (advex_server_start on a free
 * loopback port) answers exactly what the model computes; every image is counted once and
 * equals the server's count; per-example budgets are never exceeded and a query past one is
 * refused before anything is sent; Square and SimBA through HTTP return the same examples as on
 * the local model (one implementation), untargeted and targeted; HopSkipJump on a label
 * target stays within eps and its budget, and targeted it returns examples the model itself
 * classifies as the target; HopSkipJump's batched rounds return exactly what one example at a
 * time returns; the v2 codec round-trips floats exactly and rejects malformed answers. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"
#include "attacks/attack_internal.h"
#include "target/target_internal.h"

enum { N = 12, DIM = 784, K = 10 };

/* a small CNN trained on Fashion-MNIST (the transfer fixtures' surrogate) */
static advex_model *model(void) {
    advex_model *m = NULL;
    return advex_model_load_onnx(advex_test_src("tests/fixtures/transfer/surrogate.onnx"), &m) ? NULL : m;
}

/* the first N test images, labelled with the model's own predictions (all clean-correct) */
static void data(advex_model *m, advex_dataset *d) {
    memset(d, 0, sizeof *d);
    if (advex_dataset_load("fashion-mnist:test", NULL, N, d)) return;
    float z[N * K];
    advex_model_forward(m, d->x, N, z);
    advex_argmax_rows(z, N, K, d->y);
}

static advex_status open_served(advex_model *m, advex_output_kind out, advex_server **s, advex_target **t) {
    advex_serve_options so;
    advex_serve_options_default(&so);
    so.name = "net";
    so.output = out;
    advex_status st = advex_server_start(m, &so, s);
    if (st) return st;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/models/net", advex_server_port(*s));
    advex_target_options o;
    advex_target_options_default(&o);
    o.batch = 5; /* requests split */
    return advex_target_open(url, &o, t);
}

TEST(served_scores_equal_the_model) {
    advex_model *m = model();
    advex_dataset d;
    data(m, &d);
    advex_server *s = NULL;
    advex_target *t = NULL;
    ASSERT_OK(open_served(m, ADVEX_OUTPUT_LOGITS, &s, &t));
    ASSERT_EQ_INT(advex_target_num_classes(t), K);
    ASSERT_EQ_INT(advex_target_output(t), ADVEX_OUTPUT_LOGITS);
    float za[N * K], zb[N * K];
    ASSERT_OK(advex_model_forward(m, d.x, N, za));
    ASSERT_OK(advex_target_query(t, d.x, N, NULL, zb, NULL));
    /* the same numbers up to the batch size's summation order (the server ran batches of 5) */
    for (int i = 0; i < N * K; i++) ASSERT_NEAR(za[i], zb[i], 1e-5 * (1 + fabs(za[i])));
    ASSERT_EQ_INT(advex_target_queries(t), N);
    ASSERT_EQ_INT(advex_server_inferences(s), N);
    ASSERT_EQ_INT(advex_target_requests(t), 3); /* 5 + 5 + 2 */
    advex_target_free(t);
    advex_server_stop(s);
    /* a server answering probabilities: AUTO notices from the first answer */
    ASSERT_OK(open_served(m, ADVEX_OUTPUT_PROBS, &s, &t));
    ASSERT_EQ_INT(advex_target_output(t), ADVEX_OUTPUT_LOGITS); /* the metadata says FP32 [-1,K] */
    ASSERT_OK(advex_target_query(t, d.x, N, NULL, zb, NULL));
    ASSERT_EQ_INT(advex_target_output(t), ADVEX_OUTPUT_PROBS);
    advex_target_free(t);
    advex_server_stop(s);
    advex_dataset_free(&d);
    advex_model_free(m);
}

typedef struct client {
    const char *url;
    const float *x;   /* N images */
    float z[N * K];
    advex_status st;
} client;

static void *client_run(void *arg) {
    client *c = arg;
    advex_target *t = NULL;
    advex_target_options o;
    advex_target_options_default(&o);
    o.batch = 1 + (int64_t)(c->x[0] * 7); /* different request sizes */
    c->st = advex_target_open(c->url, &o, &t);
    for (int r = 0; !c->st && r < 4; r++) c->st = advex_target_query(t, c->x, N, NULL, c->z, NULL);
    advex_target_free(t);
    return NULL;
}

/* concurrent clients, their requests merged into shared forward passes: each gets its own rows */
TEST(concurrent_requests_get_their_own_answers) {
    advex_model *m = model();
    advex_dataset d;
    data(m, &d);
    advex_serve_options so;
    advex_serve_options_default(&so);
    so.name = "net";
    so.threads = 1; /* one worker: everything queued meets in its passes */
    advex_server *s = NULL;
    ASSERT_OK(advex_server_start(m, &so, &s));
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v2/models/net", advex_server_port(s));
    enum { NC = 4 };
    static client cl[NC];
    static float xs[NC][N * DIM];
    pthread_t th[NC];
    for (int c = 0; c < NC; c++) { /* client c sends the images shifted by c */
        for (int i = 0; i < N; i++) memcpy(xs[c] + i * DIM, d.x + ((i + c) % N) * DIM, DIM * sizeof(float));
        cl[c].url = url;
        cl[c].x = xs[c];
        ASSERT(pthread_create(&th[c], NULL, client_run, &cl[c]) == 0);
    }
    for (int c = 0; c < NC; c++) pthread_join(th[c], NULL);
    float z[N * K];
    ASSERT_OK(advex_model_forward(m, d.x, N, z));
    for (int c = 0; c < NC; c++) {
        ASSERT_OK(cl[c].st);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < K; j++)
                ASSERT_NEAR(cl[c].z[i * K + j], z[((i + c) % N) * K + j], 1e-5 * (1 + fabs(z[((i + c) % N) * K + j])));
    }
    ASSERT_EQ_INT(advex_server_inferences(s), NC * 4 * N);
    advex_server_stop(s);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST(budget_is_enforced_before_sending) {
    advex_model *m = model();
    advex_dataset d;
    data(m, &d);
    advex_target *t = NULL;
    ASSERT_OK(advex_target_from_model(m, ADVEX_OUTPUT_LOGITS, &t));
    ASSERT_OK(advex_target_budget(t, 2, 3));
    int64_t ids[4] = {0, 0, 1, 0};
    int32_t lab[4];
    ASSERT_OK(advex_target_query(t, d.x, 2, ids + 2, NULL, lab)); /* ex 1, ex 0 */
    ASSERT_STATUS(advex_target_query(t, d.x, 4, ids, NULL, lab), ADVEX_ERR_LIMIT); /* ex 0 would reach 4 */
    ASSERT_EQ_INT(advex_target_queries(t), 2);
    ASSERT_EQ_INT(advex_target_spent(t, 0), 1);
    ASSERT_EQ_INT(advex_target_left(t, 0), 2);
    ASSERT_OK(advex_target_query(t, d.x, 2, ids, NULL, lab));
    ASSERT_EQ_INT(advex_target_left(t, 0), 0);
    ASSERT_STATUS(advex_target_query(t, d.x, 1, ids, NULL, lab), ADVEX_ERR_LIMIT);
    advex_target_free(t);
    advex_dataset_free(&d);
    advex_model_free(m);
}

static void score_attack_over_http(advex_attack_kind kind) {
    advex_model *m = model();
    advex_dataset d;
    data(m, &d);
    advex_server *s = NULL;
    advex_target *t = NULL, *lt = NULL;
    ASSERT_OK(open_served(m, ADVEX_OUTPUT_LOGITS, &s, &t));
    ASSERT_OK(advex_target_from_model(m, ADVEX_OUTPUT_LOGITS, &lt));
    lt->o.batch = 5; /* the forward passes the server ran: bit-identical scores */
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = kind;
    c.eps = 0.05f;
    c.queries = 40;
    static float a1[N * DIM], a2[N * DIM];
    advex_eval_result r1, r2;
    ASSERT_OK(advex_target_eval(t, NULL, &d, &c, 5, NULL, NULL, a1, &r1));
    ASSERT_OK(advex_target_eval(lt, NULL, &d, &c, 5, NULL, NULL, a2, &r2));
    ASSERT(memcmp(a1, a2, sizeof a1) == 0);
    ASSERT_EQ_INT(r1.robust_correct, r2.robust_correct);
    ASSERT_EQ_INT(r1.queries_total, advex_server_inferences(s));
    ASSERT_EQ_INT(r1.queries_total, r2.queries_total);
    ASSERT_EQ_INT(r1.clean_correct, N);
    for (int i = 0; i < N; i++) {
        ASSERT_MSG(advex_target_spent(t, i) <= 40, "example %d spent %lld", i, (long long)advex_target_spent(t, i));
        for (int j = 0; j < DIM; j++) ASSERT(fabsf(a1[i * DIM + j] - d.x[i * DIM + j]) <= 0.05f + 1e-6f);
    }
    /* the robust ones spent the whole budget; the total is the sum of the per-example counts */
    int64_t sum = 0;
    for (int i = 0; i < N; i++) sum += advex_target_spent(t, i);
    ASSERT_EQ_INT(sum, r1.queries_total);
    advex_target_free(t);
    advex_target_free(lt);
    advex_server_stop(s);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST(square_over_http_is_square_on_the_model) { score_attack_over_http(ADVEX_ATTACK_SQUARE); }
TEST(simba_over_http_is_simba_on_the_model) { score_attack_over_http(ADVEX_ATTACK_SIMBA); }

TEST(hsj_label_target_within_eps_and_budget) {
    advex_model *m = model();
    advex_dataset d;
    data(m, &d);
    advex_server *s = NULL;
    advex_target *t = NULL;
    ASSERT_OK(open_served(m, ADVEX_OUTPUT_LABEL, &s, &t));
    ASSERT_EQ_INT(advex_target_output(t), ADVEX_OUTPUT_LABEL);
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_HSJ;
    c.norm = ADVEX_NORM_L2;
    c.eps = 4.0f;
    c.queries = 300;
    static float a[N * DIM];
    advex_eval_result r;
    ASSERT_OK(advex_target_eval(t, NULL, &d, &c, 6, NULL, NULL, a, &r));
    ASSERT_EQ_INT(r.queries_total, advex_server_inferences(s));
    ASSERT(r.queries_total <= N * 300);
    float z[K];
    for (int i = 0; i < N; i++) {
        double l2 = 0;
        for (int j = 0; j < DIM; j++) l2 += (a[i * DIM + j] - d.x[i * DIM + j]) * (double)(a[i * DIM + j] - d.x[i * DIM + j]);
        ASSERT(sqrt(l2) <= 4.0 * (1 + 1e-5));
        ASSERT_OK(advex_model_forward(m, a + i * DIM, 1, z));
        if (sqrt(l2) > 0) ASSERT(advex_argmax(z, K) != d.y[i]); /* a returned change is a success */
    }
    ASSERT(r.robust_correct < N / 2); /* L2 4 within 300 labels breaks most */
    /* scores-only attacks are refused on labels */
    c.kind = ADVEX_ATTACK_SQUARE;
    ASSERT_STATUS(advex_target_eval(t, NULL, &d, &c, 6, NULL, NULL, a, &r), ADVEX_ERR_ARG);
    c.kind = ADVEX_ATTACK_PGD;
    ASSERT_STATUS(advex_target_eval(t, NULL, &d, &c, 6, NULL, NULL, a, &r), ADVEX_ERR_ARG);
    advex_target_free(t);
    advex_server_stop(s);
    advex_dataset_free(&d);
    advex_model_free(m);
}

/* Where the model ranks class t for image x: 1 first, 0 not first, and 2 (first) or -1 (not)
 * when t is within the last bits that a forward pass's batch-mates change of the top class
 * (HopSkipJump returns points within its binary search's threshold of the boundary). */
static int rank_first(advex_model *m, const float *x, int32_t t) {
    float z[K];
    if (advex_model_forward(m, x, 1, z)) return 0;
    int first = advex_argmax(z, K) == t;
    float other = -INFINITY;
    for (int j = 0; j < K; j++) if (j != t && z[j] > other) other = z[j];
    if (fabsf(z[t] - other) <= 1e-4f * (1 + fabsf(other))) return first ? 2 : -1;
    return first;
}

/* the model's own verdicts on the returned examples agree with the reported target hits, up
 * to near ties; every example within eps (L-inf or L2) and [0,1]; *out: the examples on their
 * target, near ties included */
static void check_targeted(advex_model *m, const advex_dataset *d, const float *a, const int32_t *tg, float eps,
                           int l2, int64_t reported, int64_t *out) {
    int64_t hits = 0, ties = 0, near = 0;
    *out = -1;
    for (int i = 0; i < N; i++) {
        double n2 = 0, ninf = 0;
        for (int j = 0; j < DIM; j++) {
            double v = fabs((double)a[i * DIM + j] - d->x[i * DIM + j]);
            n2 += v * v;
            ninf = v > ninf ? v : ninf;
            ASSERT(a[i * DIM + j] >= 0 && a[i * DIM + j] <= 1);
        }
        ASSERT_MSG((l2 ? sqrt(n2) : ninf) <= eps * (1 + 1e-5), "example %d: %g beyond eps %g", i, l2 ? sqrt(n2) : ninf,
                   (double)eps);
        int r = rank_first(m, a + i * DIM, tg[i]);
        hits += r == 1 || r == 2;
        ties += r == 2 || r == -1;
        near += r != 0;
    }
    ASSERT_MSG(llabs(hits - reported) <= ties, "the model puts %lld on their target, reported %lld (%lld near ties)",
               (long long)hits, (long long)reported, (long long)ties);
    *out = near;
}

/* targeted Square and SimBA: through HTTP the same examples as on the local model, aimed at
 * the targets a local run picks (random: seeded by the example's index), each counted */
static void targeted_score_attack_over_http(advex_attack_kind kind) {
    advex_model *m = model();
    advex_dataset d;
    data(m, &d);
    advex_server *s = NULL;
    advex_target *t = NULL, *lt = NULL;
    ASSERT_OK(open_served(m, ADVEX_OUTPUT_LOGITS, &s, &t));
    ASSERT_OK(advex_target_from_model(m, ADVEX_OUTPUT_LOGITS, &lt));
    lt->o.batch = 5; /* the forward passes the server ran: bit-identical scores */
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = kind;
    c.eps = 0.2f;
    c.queries = kind == ADVEX_ATTACK_SIMBA ? 600 : 150; /* SimBA moves one pixel a query */
    c.target = ADVEX_TARGET_RANDOM;
    c.seed = 3;
    static float a1[N * DIM], a2[N * DIM];
    advex_eval_result r1, r2;
    ASSERT_OK(advex_target_eval(t, NULL, &d, &c, 5, NULL, NULL, a1, &r1));
    ASSERT_OK(advex_target_eval(lt, NULL, &d, &c, 5, NULL, NULL, a2, &r2));
    ASSERT(memcmp(a1, a2, sizeof a1) == 0);
    ASSERT_EQ_INT(r1.target_hits, r2.target_hits);
    ASSERT_EQ_INT(r1.queries_total, advex_server_inferences(s));
    int64_t sum = 0;
    for (int i = 0; i < N; i++) {
        ASSERT(advex_target_spent(t, i) <= c.queries);
        sum += advex_target_spent(t, i);
    }
    ASSERT_EQ_INT(sum, r1.queries_total);
    int32_t tg[N];
    ASSERT_OK(advex_attack_targets(&c, NULL, d.y, N, K, 0, tg));
    int64_t hits;
    check_targeted(m, &d, a1, tg, c.eps, 0, r1.target_hits, &hits);
    ASSERT_MSG(hits >= 2, "%s: %lld of %d reach their target", advex_attack_name(kind), (long long)hits, N);
    ASSERT(r1.robust_correct <= N - r1.target_hits); /* on its target is off its label */
    advex_target_free(t);
    advex_target_free(lt);
    advex_server_stop(s);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST(targeted_square_over_http_is_square_on_the_model) { targeted_score_attack_over_http(ADVEX_ATTACK_SQUARE); }
TEST(targeted_simba_over_http_is_simba_on_the_model) { targeted_score_attack_over_http(ADVEX_ATTACK_SIMBA); }

/* targeted HopSkipJump on labels alone: the examples it returns changed are classified as the
 * target by the model itself, within eps, within the budget; a least-likely target (which needs
 * scores) and a class the target does not have are refused */
TEST(hsj_targeted_on_labels) {
    advex_model *m = model();
    advex_dataset d;
    data(m, &d);
    advex_server *s = NULL;
    advex_target *t = NULL;
    ASSERT_OK(open_served(m, ADVEX_OUTPUT_LABEL, &s, &t));
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_HSJ;
    c.norm = ADVEX_NORM_L2;
    c.eps = 4.0f;
    c.queries = 500;
    c.target = ADVEX_TARGET_NEXT;
    static float a[N * DIM];
    advex_eval_result r;
    ASSERT_OK(advex_target_eval(t, NULL, &d, &c, 6, NULL, NULL, a, &r));
    ASSERT_EQ_INT(r.queries_total, advex_server_inferences(s));
    for (int i = 0; i < N; i++) ASSERT(advex_target_spent(t, i) <= 500);
    int32_t tg[N];
    ASSERT_OK(advex_attack_targets(&c, NULL, d.y, N, K, 0, tg));
    int64_t hits;
    check_targeted(m, &d, a, tg, c.eps, 1, r.target_hits, &hits);
    ASSERT_MSG(hits + 1 >= N / 3, "%lld of %d reach their target", (long long)hits, N);
    for (int i = 0; i < N; i++) /* a returned change is a success: on the target, up to the last bits */
        if (memcmp(a + i * DIM, d.x + i * DIM, DIM * sizeof(float)) != 0) ASSERT(rank_first(m, a + i * DIM, tg[i]) != 0);
    c.target = ADVEX_TARGET_LEAST_LIKELY;
    ASSERT_STATUS(advex_target_eval(t, NULL, &d, &c, 6, NULL, NULL, a, &r), ADVEX_ERR_ARG);
    ASSERT(strstr(advex_last_error(), "least-likely targets need scores") != NULL);
    c.target = ADVEX_TARGET_LABEL;
    c.target_label = K;
    ASSERT_STATUS(advex_target_eval(t, NULL, &d, &c, 6, NULL, NULL, a, &r), ADVEX_ERR_ARG);
    advex_target_free(t);
    advex_server_stop(s);
    advex_dataset_free(&d);
    advex_model_free(m);
}

/* a labels oracle that runs one image at a time (its answers cannot depend on batch-mates)
 * and counts its calls */
typedef struct one_by_one {
    advex_model *m;
    int64_t calls, images;
} one_by_one;

static advex_status one_labels(void *u, const float *x, int64_t n, const int64_t *rows, int32_t *pred) {
    (void)rows;
    one_by_one *o = u;
    float z[K];
    o->calls++;
    o->images += n;
    for (int64_t i = 0; i < n; i++) {
        advex_status st = advex_model_forward(o->m, x + i * DIM, 1, z);
        if (st) return st;
        pred[i] = advex_argmax(z, K);
    }
    return ADVEX_OK;
}

/* HopSkipJump's rounds batch the pending queries of every running example; each example's
 * queries, results and counts are those of one example at a time (batch 1), in far fewer calls */
TEST(hsj_batched_rounds_change_nothing_per_example) {
    advex_model *m = model();
    advex_dataset d;
    data(m, &d);
    int32_t tg[N];
    const float *starts[N];
    for (int i = 0; i < N; i++) { /* targeted: the next class, from an image the model puts there */
        tg[i] = (d.y[i] + 1) % K;
        starts[i] = NULL;
        for (int j = 0; j < N; j++) if (d.y[j] == tg[i] && !starts[i]) starts[i] = d.x + j * DIM;
    }
    for (int targeted = 0; targeted < 2; targeted++) {
        advex_attack_config c;
        advex_attack_config_default(&c);
        c.kind = ADVEX_ATTACK_HSJ;
        c.norm = targeted ? ADVEX_NORM_L2 : ADVEX_NORM_LINF;
        c.eps = targeted ? 3.0f : 0.1f;
        c.queries = 300;
        static float a[2][N * DIM];
        int64_t q[2][N], calls[2], images[2];
        int32_t stage[2][N], fin[2][N];
        for (int b = 0; b < 2; b++) {
            one_by_one o = {m, 0, 0};
            atk_labels lb = {one_labels, &o, {1, 28, 28}, b ? 64 : 1, fin[b]};
            advex_attack_info info = {q[b], stage[b], NULL};
            ASSERT_OK(atk_hsj_run(&lb, &c, d.x, d.y, targeted ? tg : NULL, targeted ? starts : NULL, N, 0, NULL,
                                  a[b], &info));
            calls[b] = o.calls;
            images[b] = o.images;
        }
        ASSERT(memcmp(a[0], a[1], sizeof a[0]) == 0);
        ASSERT(memcmp(q[0], q[1], sizeof q[0]) == 0);
        ASSERT(memcmp(stage[0], stage[1], sizeof stage[0]) == 0);
        ASSERT(memcmp(fin[0], fin[1], sizeof fin[0]) == 0);
        ASSERT_EQ_INT(images[0], images[1]);
        int64_t sum = 0, ok = 0;
        for (int i = 0; i < N; i++) {
            sum += q[0][i];
            ok += stage[0][i];
            ASSERT(q[0][i] <= 300);
        }
        ASSERT_EQ_INT(sum, images[0]);
        ASSERT_MSG(ok >= 2, "%s hsj: %lld successes", targeted ? "targeted" : "untargeted", (long long)ok);
        ASSERT_MSG(calls[1] * 4 < calls[0], "%lld calls batched, %lld one example at a time", (long long)calls[1],
                   (long long)calls[0]);
    }
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST(codec_roundtrip_and_rejects) {
    float x[6] = {0.1f, 1.0f / 3, 0, 1, 1e-8f, 0.999999f}, y[6] = {0};
    int64_t chw[3] = {1, 2, 3}, n = 0;
    char *req = v2_infer_request("input", x, 1, chw);
    float *back = NULL;
    ASSERT_OK(v2_parse_request(req, strlen(req), chw, 4, &back, &n));
    ASSERT_EQ_INT(n, 1);
    ASSERT(memcmp(back, x, sizeof x) == 0);
    free(back);
    ASSERT_STATUS(v2_parse_request(req, strlen(req), chw, 0, &back, &n), ADVEX_ERR_LIMIT);
    int64_t other[3] = {1, 3, 2};
    ASSERT_STATUS(v2_parse_request(req, strlen(req), other, 4, &back, &n), ADVEX_ERR_FORMAT);
    free(req);
    char *resp = v2_infer_response("m", ADVEX_OUTPUT_LOGITS, x, NULL, 2, 3);
    ASSERT_OK(v2_parse_response(resp, strlen(resp), ADVEX_OUTPUT_LOGITS, 2, 3, "t", y, NULL));
    ASSERT(memcmp(x, y, sizeof x) == 0);
    ASSERT_STATUS(v2_parse_response(resp, strlen(resp), ADVEX_OUTPUT_LOGITS, 3, 2, "t", y, NULL), ADVEX_ERR_FORMAT);
    free(resp);
    const char *bad[] = {"<html>502</html>", "{\"outputs\":[]}", "{\"outputs\":[{\"shape\":[2,3],\"data\":[1,2,3,4,5]}]}",
                         "{\"outputs\":[{\"shape\":[2,3],\"data\":[1,2,3,4,5,1e999]}]}",
                         "{\"outputs\":[{\"shape\":[2,3],\"data\":[1,2,3,4,5,NaN]}]}"};
    for (int i = 0; i < 5; i++)
        ASSERT_STATUS(v2_parse_response(bad[i], strlen(bad[i]), ADVEX_OUTPUT_LOGITS, 2, 3, "t", y, NULL), ADVEX_ERR_FORMAT);
    int32_t lab[2];
    const char *labs = "{\"outputs\":[{\"shape\":[2],\"datatype\":\"INT64\",\"data\":[3,10]}]}";
    ASSERT_STATUS(v2_parse_response(labs, strlen(labs), ADVEX_OUTPUT_LABEL, 2, 10, "t", NULL, lab), ADVEX_ERR_FORMAT);
    ASSERT_OK(v2_parse_response(labs, strlen(labs), ADVEX_OUTPUT_LABEL, 2, 11, "t", NULL, lab));
    ASSERT_EQ_INT(lab[1], 10);
}

TEST(open_errors_name_the_target) {
    advex_target *t = NULL;
    ASSERT_STATUS(advex_target_open("ftp://x/v2/models/m", NULL, &t), ADVEX_ERR_ARG);
    ASSERT_STATUS(advex_target_open("http://127.0.0.1:1/nomodel", NULL, &t), ADVEX_ERR_ARG);
    advex_target_options o;
    advex_target_options_default(&o);
    o.retries = 0;
    o.timeout_s = 2;
    ASSERT(advex_target_open("http://127.0.0.1:1/v2/models/m", &o, &t) != ADVEX_OK);
    ASSERT(strstr(advex_last_error(), "127.0.0.1:1") != NULL);
    ASSERT(t == NULL);
}

TEST_MAIN(TEST_ENTRY(served_scores_equal_the_model), TEST_ENTRY(concurrent_requests_get_their_own_answers), TEST_ENTRY(budget_is_enforced_before_sending),
          TEST_ENTRY(square_over_http_is_square_on_the_model),
          TEST_ENTRY(simba_over_http_is_simba_on_the_model), TEST_ENTRY(hsj_label_target_within_eps_and_budget),
          TEST_ENTRY(targeted_square_over_http_is_square_on_the_model),
          TEST_ENTRY(targeted_simba_over_http_is_simba_on_the_model), TEST_ENTRY(hsj_targeted_on_labels),
          TEST_ENTRY(hsj_batched_rounds_change_nothing_per_example),
          TEST_ENTRY(codec_roundtrip_and_rejects), TEST_ENTRY(open_errors_name_the_target))
