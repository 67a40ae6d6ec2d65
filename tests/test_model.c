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
    advex_net *net = m->net;
    int64_t np = net->n_params;
    float *p0 = malloc(np * sizeof(float)), *v = malloc(np * sizeof(float)), *g = malloc(np * sizeof(float));
    float *st0 = malloc(net->n_consts * sizeof(float) + 4);
    memcpy(p0, net->params, np * sizeof(float));
    memcpy(st0, net->consts, net->n_consts * sizeof(float));
    advex_plan *tp;
    ASSERT_OK(advex_model_train_plan(m, n, &tp));
    ASSERT_OK(advex_plan_forward(tp, x));
    advex_loss_forward_backward(ADVEX_LOSS_CE, advex_plan_output(tp), y, n, 10, l, dl);
    memset(tp->grads, 0, np * sizeof(float));
    ASSERT_OK(advex_plan_backward(tp, dl));
    memcpy(g, tp->grads, np * sizeof(float));
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
            for (int64_t i = 0; i < np; i++) net->params[i] = p0[i] + (s ? -1 : 1) * (float)h * v[i];
            advex_plan_forward(tp, x);
            memcpy(z, advex_plan_output(tp), sizeof z);
            lv[s] = advex_loss_forward_backward(ADVEX_LOSS_CE, z, y, n, 10, l, NULL);
        }
        double fd = (lv[0] - lv[1]) / (2 * h);
        double rel = fabs(fd - dot) / (fabs(fd) + fabs(dot) + 1e-6);
        if (rel < 1e-2) good++;
        else fprintf(stderr, "  direction %d: fd %.6g analytic %.6g rel %.3g\n", t, fd, dot, rel);
    }
    ASSERT_MSG(good >= 4, "only %d of 5 parameter directional derivatives match", good);
    memcpy(net->params, p0, np * sizeof(float));
    memcpy(net->consts, st0, net->n_consts * sizeof(float));
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
        memcpy(w[rep], m->net->params + 100, sizeof w[rep]);
        free(d.x); free(d.y);
        advex_model_free(m);
    }
    ASSERT(memcmp(w[0], w[1], sizeof w[0]) == 0);
}

/* ---- gradient write mode (advex_value.grad_write) -------------------------------------------- */

enum { WG_X, WG_A, WG_C1, WG_BN1, WG_R, WG_C2, WG_BN2, WG_S, WG_Q, WG_P, WG_T, WG_F, WG_Z, WG_U, WG_N };

static int wg_param(advex_graph *g, const char *name, advex_value_kind kind, int ndim, const int64_t *dims,
                    advex_rng *r, float lo, float hi) {
    int id = advex_graph_add_value(g, name, kind, ndim, dims);
    if (id < 0) return -1;
    advex_value *v = &g->vals[id];
    for (int64_t i = 0; i < advex_numel(ndim, dims); i++) v->data[i] = lo + (hi - lo) * advex_rng_uniform(r);
    return id;
}

static int wg_node(advex_graph *g, advex_op_type op, const char *name, int n_in, const int *in, int *ids, int which,
                   advex_attrs *a) {
    int out = advex_graph_add_value(g, name, ADVEX_VAL_ACT, 0, NULL);
    if (out < 0) return -1;
    int nd = advex_graph_add_node(g, op, name, n_in, in, out);
    if (nd < 0) return -1;
    if (a) g->nodes[nd].a = *a;
    ids[which] = out;
    return out;
}

/* x (N,2,6,6) -> Sub(mean) = a -> Conv = c1 -> BN = bn1 -> Relu = r;  r -> Conv = c2 -> BN = bn2;
 * s = Add(bn2, r) (r: two consumers);  q = Mul(s, s) (one node reading s twice);  p = MaxPool 2x2 (q);
 * t = Tanh(p) (dangling output);  f = Flatten(p);  z = Gemm(f, W, b) (the logits);  u = Relu(z)
 * (dangling: the output value's one consumer must add to dlogits, not overwrite them).
 * ids[WG_*]: the activation value ids. Same seed, same weights. */
static advex_status build_write_graph(uint64_t seed, advex_model **out, int *ids) {
    advex_net *net = advex_net_new("write-mode graph");
    advex_graph *m = &net->g; /* (the builders' first argument) */
    advex_rng r;
    advex_rng_seed(&r, seed);
    int64_t xd[4] = {1, 2, 6, 6}, md[4] = {1, 2, 1, 1}, w1d[4] = {4, 2, 3, 3}, w2d[4] = {4, 4, 3, 3}, cd[1] = {4},
            wfd[2] = {5, 36}, bfd[1] = {5};
    m->input = ids[WG_X] = advex_graph_add_value(m, "x", ADVEX_VAL_INPUT, 4, xd);
    advex_attrs conv, pool, fc;
    advex_attrs_default(&conv);
    for (int i = 0; i < 4; i++) conv.pads[i] = 1;
    advex_attrs_default(&pool);
    pool.kernel[0] = pool.kernel[1] = pool.stride[0] = pool.stride[1] = 2;
    advex_attrs_default(&fc);
    fc.trans_b = 1;
    int in[5];
    in[0] = ids[WG_X];
    in[1] = wg_param(m, "mean", ADVEX_VAL_CONST, 4, md, &r, 0.3f, 0.6f);
    wg_node(m, ADVEX_OP_SUB, "a", 2, in, ids, WG_A, NULL);
    in[0] = ids[WG_A];
    in[1] = wg_param(m, "w1", ADVEX_VAL_PARAM, 4, w1d, &r, -0.4f, 0.4f);
    in[2] = wg_param(m, "b1", ADVEX_VAL_PARAM, 1, cd, &r, -0.2f, 0.2f);
    wg_node(m, ADVEX_OP_CONV, "c1", 3, in, ids, WG_C1, &conv);
    for (int k = 0; k < 2; k++) {
        in[0] = ids[k ? WG_C2 : WG_C1];
        in[1] = wg_param(m, "bn_scale", ADVEX_VAL_PARAM, 1, cd, &r, 0.5f, 1.5f);
        in[2] = wg_param(m, "bn_bias", ADVEX_VAL_PARAM, 1, cd, &r, -0.3f, 0.3f);
        in[3] = wg_param(m, "bn_mean", ADVEX_VAL_STATE, 1, cd, &r, -0.2f, 0.2f);
        in[4] = wg_param(m, "bn_var", ADVEX_VAL_STATE, 1, cd, &r, 0.5f, 1.5f);
        wg_node(m, ADVEX_OP_BATCHNORM, k ? "bn2" : "bn1", 5, in, ids, k ? WG_BN2 : WG_BN1, NULL);
        if (k) break;
        wg_node(m, ADVEX_OP_RELU, "r", 1, &ids[WG_BN1], ids, WG_R, NULL);
        in[0] = ids[WG_R];
        in[1] = wg_param(m, "w2", ADVEX_VAL_PARAM, 4, w2d, &r, -0.3f, 0.3f);
        wg_node(m, ADVEX_OP_CONV, "c2", 2, in, ids, WG_C2, &conv);
    }
    in[0] = ids[WG_BN2];
    in[1] = ids[WG_R];
    wg_node(m, ADVEX_OP_ADD, "s", 2, in, ids, WG_S, NULL);
    in[0] = in[1] = ids[WG_S];
    wg_node(m, ADVEX_OP_MUL, "q", 2, in, ids, WG_Q, NULL);
    wg_node(m, ADVEX_OP_MAXPOOL, "p", 1, &ids[WG_Q], ids, WG_P, &pool);
    wg_node(m, ADVEX_OP_TANH, "t", 1, &ids[WG_P], ids, WG_T, NULL);
    wg_node(m, ADVEX_OP_FLATTEN, "f", 1, &ids[WG_P], ids, WG_F, NULL);
    in[0] = ids[WG_F];
    in[1] = wg_param(m, "fc_w", ADVEX_VAL_PARAM, 2, wfd, &r, -0.3f, 0.3f);
    in[2] = wg_param(m, "fc_b", ADVEX_VAL_PARAM, 1, bfd, &r, -0.1f, 0.1f);
    m->output = wg_node(m, ADVEX_OP_GEMM, "z", 3, in, ids, WG_Z, &fc);
    wg_node(m, ADVEX_OP_RELU, "u", 1, &ids[WG_Z], ids, WG_U, NULL);
    advex_status st = advex_net_finalize(net, 1);
    if (st) {
        advex_net_release(net);
        return st;
    }
    return advex_model_wrap(net, out);
}

/* Every consumer accumulates again, as before write mode existed: in the net (plans laid out
 * later) and in the model's plans already laid out. */
static void force_accumulate(advex_model *m) {
    for (int i = 0; i < m->net->g.n_vals; i++) m->net->g.vals[i].grad_write = 0;
    advex_plan *pl[2] = {m->plan, m->train};
    for (int k = 0; k < 2; k++) {
        if (!pl[k]) continue;
        pl[k]->no_grad_write = 1;
        for (int i = 0; pl[k]->ndim && i < m->net->g.n_vals; i++) pl[k]->v[i].grad_write = 0;
    }
}

/* The model's whole-batch eval plan (train 0) or its training plan, laid out for n with
 * gradients; NULL if that fails. */
static advex_plan *plan_for(advex_model *m, int64_t n, int train) {
    advex_plan *p = m->plan;
    advex_status st = train ? advex_model_train_plan(m, n, &p) : advex_plan_images(p, n, 0, 1);
    return st ? NULL : p;
}

static int same_floats(const float *a, const float *b, int64_t n) { /* == (so -0 == +0) */
    for (int64_t i = 0; i < n; i++)
        if (!(a[i] == b[i])) return 0;
    return 1;
}

/* The planner's flags on the graph above, and its gradients (input and, in train mode,
 * parameters) equal to those with every flag off (all grads zeroed, every op accumulating);
 * a second backward over the stale grads of a first equals a fresh model's bit for bit. */
TEST(grad_write_mode_graph) {
    const int n = 3, d = 72, c = 5;
    int ids[WG_N], ids2[WG_N];
    advex_model *m = NULL, *off = NULL, *fresh = NULL;
    ASSERT_OK(build_write_graph(21, &m, ids));
    ASSERT(plan_for(m, n, 0));
    const advex_graph *mg = &m->net->g;
    static const int want[WG_N] = {[WG_X] = 1, [WG_A] = 1, [WG_C1] = 1, [WG_BN1] = 1, [WG_R] = 0, [WG_C2] = 1,
                                   [WG_BN2] = 1, [WG_S] = 0, [WG_Q] = 1, [WG_P] = 0, [WG_T] = 0, [WG_F] = 1,
                                   [WG_Z] = 0, [WG_U] = 0};
    for (int k = 0; k < WG_N; k++)
        ASSERT_MSG(m->plan->v[ids[k]].grad_write == want[k], "value %s: grad_write %d, want %d", mg->vals[ids[k]].name,
                   m->plan->v[ids[k]].grad_write, want[k]);
    for (int i = 0; i < mg->n_vals; i++)
        if (mg->vals[i].kind >= ADVEX_VAL_PARAM) ASSERT(m->plan->v[i].grad_write == 0);

    float x1[3 * 72], x2[3 * 72], w[3 * 5], g1[3 * 72], g2[3 * 72], goff[3 * 72], gfresh[3 * 72];
    fill_uniform(x1, n * d, 31);
    fill_uniform(x2, n * d, 32);
    fill_uniform(w, n * c, 33);
    for (int i = 0; i < n * c; i++) w[i] -= 0.5f;
    ASSERT_OK(build_write_graph(21, &off, ids2));
    ASSERT(plan_for(off, n, 0));
    force_accumulate(off);
    /* eval plan (the attacks' one): the input gradient */
    ASSERT_OK(advex_model_vjp(m, x1, n, w, g1, NULL));
    ASSERT_OK(advex_model_vjp(off, x1, n, w, goff, NULL));
    ASSERT_MSG(same_floats(g1, goff, n * d), "input gradient differs with write mode");
    double norm = 0.0;
    for (int i = 0; i < n * d; i++) norm += fabs(g1[i]);
    ASSERT(norm > 1e-3);
    ASSERT_OK(advex_model_vjp(m, x2, n, w, g2, NULL)); /* over the first pass's grads */
    ASSERT_OK(build_write_graph(21, &fresh, ids2));
    ASSERT_OK(advex_model_vjp(fresh, x2, n, w, gfresh, NULL));
    ASSERT_MSG(memcmp(g2, gfresh, sizeof g2) == 0, "second backward differs from a fresh model's");
    ASSERT_MSG(!same_floats(g1, g2, n * d), "the two inputs gave the same gradient");
    ASSERT_OK(advex_model_vjp(off, x2, n, w, goff, NULL));
    ASSERT_MSG(same_floats(g2, goff, n * d), "input gradient (second input) differs with write mode");

    /* train plan: BatchNorm batch statistics; parameter gradients too */
    advex_model *mm[2] = {m, off};
    float *pg[2];
    float gi[2][3 * 72];
    int64_t np = m->net->n_params;
    for (int k = 0; k < 2; k++) {
        advex_plan *tp = plan_for(mm[k], n, 1);
        ASSERT(tp);
        if (k) force_accumulate(mm[k]);
        pg[k] = calloc((size_t)np, sizeof(float));
        for (int rep = 0; rep < 2; rep++) { /* the second pass over the first's grads */
            advex_plan_forward(tp, rep ? x2 : x1);
            memset(tp->grads, 0, (size_t)np * sizeof(float));
            ASSERT_OK(advex_plan_backward(tp, w));
        }
        memcpy(pg[k], tp->grads, (size_t)np * sizeof(float));
        memcpy(gi[k], advex_plan_input_grad(tp), sizeof gi[k]);
    }
    ASSERT(m->train->v[ids[WG_BN1]].grad_write == 1 && off->train->v[ids2[WG_BN1]].grad_write == 0);
    int same_p = same_floats(pg[0], pg[1], np), same_i = same_floats(gi[0], gi[1], n * d);
    free(pg[0]);
    free(pg[1]);
    advex_model_free(m);
    advex_model_free(off);
    advex_model_free(fresh);
    ASSERT_MSG(same_p, "train-mode parameter gradients differ with write mode");
    ASSERT_MSG(same_i, "train-mode input gradient differs with write mode");
}

/* The built-in architectures (residual Adds, BatchNorm, MaxPool, Flatten, Gemm): input
 * gradients with write mode equal those with every flag off, and a second backward equals
 * a fresh model's bit for bit. */
TEST(grad_write_mode_archs) {
    const char *names[] = {"resnet", "cnn", "small"};
    const int n = 2, d = 784;
    float *x1 = malloc(n * d * sizeof(float)), *x2 = malloc(n * d * sizeof(float)), w[20];
    float *g = malloc(n * d * sizeof(float)), *goff = malloc(n * d * sizeof(float)),
          *gfresh = malloc(n * d * sizeof(float));
    fill_uniform(x1, n * d, 41);
    fill_uniform(x2, n * d, 42);
    fill_uniform(w, 20, 43);
    int writes = 0, bad = -1;
    for (int a = 0; a < 3 && bad < 0; a++) {
        advex_model *m = NULL, *off = NULL, *fresh = NULL;
        if (advex_model_build(names[a], 7, &m) || advex_model_build(names[a], 7, &off) ||
            advex_model_build(names[a], 7, &fresh) || !plan_for(m, n, 0) || !plan_for(off, n, 0)) {
            bad = 10 * a;
        } else {
            force_accumulate(off);
            for (int i = 0; i < m->net->g.n_vals; i++) writes += m->plan->v[i].grad_write;
            if (advex_model_vjp(m, x1, n, w, g, NULL) || advex_model_vjp(off, x1, n, w, goff, NULL) ||
                !same_floats(g, goff, n * d))
                bad = 10 * a + 1;
            else if (advex_model_vjp(m, x2, n, w, g, NULL) || advex_model_vjp(fresh, x2, n, w, gfresh, NULL) ||
                     memcmp(g, gfresh, n * d * sizeof(float)) != 0)
                bad = 10 * a + 2;
        }
        advex_model_free(m);
        advex_model_free(off);
        advex_model_free(fresh);
    }
    free(x1); free(x2); free(g); free(goff); free(gfresh);
    ASSERT_MSG(bad < 0, "%s: %s", names[bad / 10],
               bad % 10 == 0 ? "build/plan failed" : bad % 10 == 1 ? "gradient differs with write mode"
                                                                 : "second backward differs from a fresh model's");
    ASSERT(writes > 10);
}

/* ---- activations and their gradients share memory by lifetime (plan_pool) --------------- */

/* v's buffer owner: the value whose data buffer v's is through views and fused Relus
 * (alias_data, relu_fused), or whose gradient buffer v's is through alias_grad nodes (a
 * node's input 0 takes its output's block) */
static int data_root(const advex_graph *g, int v) {
    int p = g->vals[v].producer;
    if (p >= 0 && (g->nodes[p].alias_data || g->nodes[p].relu_fused)) return data_root(g, g->nodes[p].in[0]);
    return v;
}
static int grad_root(const advex_graph *g, int v) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].alias_grad && g->nodes[i].in[0] == v) return grad_root(g, g->nodes[i].out[0]);
    return v;
}

/* The pool as plan.c promises it, checked from the graph: on a time line of forward steps
 * (node i at i) and backward steps (node i at 2n-1-i), an activation's buffer is live from
 * its producer (a folded BatchNorm's: its Conv, eval) to its last forward consumer or the
 * last backward that reads it (advex_plan_bw_reads), the output's to the end; an ACT grad
 * from its last consumer's backward (the output's: the backward's start; nobody's: its
 * producer's) to its producer's. No two buffers live at the same time overlap unless they
 * are the same buffer, none overlaps the input grad, and all lie in the arena. Returns NULL
 * or what is wrong. */
static const char *pool_overlap(const advex_plan *pl) {
    static char why[256];
    const advex_graph *g = &pl->net->g;
    const advex_value *vals = pl->v;
    int nn = g->n_nodes, nv = g->n_vals, T = pl->want_grad ? 2 * nn : nn;
    /* blocks: 2v data, 2v+1 grad */
    int *from = malloc((size_t)2 * nv * sizeof(int)), *to = malloc((size_t)2 * nv * sizeof(int));
    const char *bad = NULL;
    for (int b = 0; b < 2 * nv; b++) from[b] = T + 1, to[b] = -1;
    for (int i = 0; i < nn; i++) {
        const advex_node *nd = &g->nodes[i];
        int o = data_root(g, nd->out[0]), bt = 2 * nn - 1 - i;
        if (from[2 * o] > i) from[2 * o] = i;
        if (to[2 * o] < i) to[2 * o] = i;
        if (pl->want_grad && advex_plan_bw_reads(pl, i, -1) && to[2 * o] < bt) to[2 * o] = bt;
        if (!pl->train && nd->op == ADVEX_OP_CONV && nd->fold > 0) {
            int f = data_root(g, nd->fold_v[0]);
            if (from[2 * f] > i) from[2 * f] = i;
        }
        if (pl->want_grad) {
            to[2 * nd->out[0] + 1] = bt;
            if (from[2 * nd->out[0] + 1] > bt) from[2 * nd->out[0] + 1] = bt;
        }
        for (int k = 0; k < nd->n_in; k++) {
            int u = nd->in[k];
            if (u < 0 || vals[u].kind != ADVEX_VAL_ACT) continue;
            int r = data_root(g, u), t = pl->want_grad && advex_plan_bw_reads(pl, i, k) ? bt : i;
            if (to[2 * r] < t) to[2 * r] = t;
            if (pl->want_grad && from[2 * u + 1] > bt) from[2 * u + 1] = bt;
        }
    }
    to[2 * data_root(g, g->output)] = T;
    if (pl->want_grad) from[2 * g->output + 1] = nn;
    const advex_value *in = &vals[g->input];
    const float *lo = pl->arena, *hi = pl->arena + pl->arena_cap, *ia = in->grad,
                *ib = in->grad ? in->grad + advex_numel(in->ndim, in->dims) : NULL;
    for (int a = 0; a < 2 * nv && !bad; a++) {
        const advex_value *va = &vals[a / 2];
        const float *pa = a % 2 ? va->grad : va->data;
        if (va->kind != ADVEX_VAL_ACT || to[a] < 0 || (a % 2 && !pl->want_grad)) continue;
        int64_t na = advex_numel(va->ndim, va->dims);
        int ra = a % 2 ? grad_root(g, a / 2) : data_root(g, a / 2);
        if (!pa || pa < lo || pa + na > hi) {
            snprintf(why, sizeof why, "%s of %s outside the arena", a % 2 ? "grad" : "data", va->name);
            bad = why;
            break;
        }
        if (ia && pa < ib && ia < pa + na) {
            snprintf(why, sizeof why, "%s of %s overlaps the input grad", a % 2 ? "grad" : "data", va->name);
            bad = why;
        }
        for (int b = a + 1; b < 2 * nv && !bad; b++) {
            const advex_value *vb = &vals[b / 2];
            const float *pb = b % 2 ? vb->grad : vb->data;
            if (vb->kind != ADVEX_VAL_ACT || to[b] < 0 || !pb || (b % 2 && !pl->want_grad)) continue;
            int rb = b % 2 ? grad_root(g, b / 2) : data_root(g, b / 2);
            if (a % 2 == b % 2 && ra == rb) continue; /* one buffer */
            int64_t nb = advex_numel(vb->ndim, vb->dims);
            if (from[a % 2 ? a : 2 * ra] <= to[b % 2 ? b : 2 * rb] && from[b % 2 ? b : 2 * rb] <= to[a % 2 ? a : 2 * ra] &&
                pa < pb + nb && pb < pa + na) {
                snprintf(why, sizeof why, "%s of %s and %s of %s overlap while both are live", a % 2 ? "grad" : "data",
                         va->name, b % 2 ? "grad" : "data", vb->name);
                bad = why;
            }
        }
    }
    free(from);
    free(to);
    return bad;
}

/* Activations and their gradients of resnet at batch 64 take at least 60% less memory pooled
 * than with a buffer each (grad_noshare; aliases share one either way), the arena shrinks by
 * exactly that, and the pool keeps lifetimes apart (eval and train plans of every built-in
 * architecture, with and without gradients). */
TEST(grad_pool_memory) {
    advex_model *sh = NULL, *ns = NULL;
    ASSERT_OK(advex_model_build("resnet", 3, &sh));
    ASSERT_OK(advex_model_build("resnet", 3, &ns));
    ns->plan->grad_noshare = 1;
    advex_plan *psh = plan_for(sh, 64, 0), *pns = plan_for(ns, 64, 0);
    ASSERT(psh && pns);
    int64_t all = 0; /* a data block per node output and a grad block, less what aliasing nodes share */
    for (int i = 0; i < ns->net->g.n_nodes; i++) {
        const advex_node *nd = &ns->net->g.nodes[i];
        const advex_value *o = &pns->v[nd->out[0]];
        int64_t blk = (advex_numel(o->ndim, o->dims) + 15) / 16 * 16;
        all += 2 * blk;
        if (nd->alias_grad) all -= blk;
        if (nd->alias_data || nd->relu_fused) all -= blk;
    }
    int64_t cap_sh = psh->arena_cap, cap_ns = pns->arena_cap, pool = psh->grad_pool;
    printf("  resnet batch 64 with gradients: arena %.1f MB shared, %.1f MB unshared (activations and grads %.1f -> "
           "%.1f MB)\n", cap_sh * 4e-6, cap_ns * 4e-6, all * 4e-6, pool * 4e-6);
    ASSERT_EQ_INT(pns->grad_pool, all);
    ASSERT_EQ_INT(cap_ns - cap_sh, all - pool);
    ASSERT_MSG(pool <= 0.4 * all, "pool %lld floats, %lld with a buffer each: less than 60%% saved",
               (long long)pool, (long long)all);
    const char *bad = pool_overlap(psh);
    ASSERT_MSG(!bad, "resnet eval plan: %s", bad);
    advex_model_free(sh);
    advex_model_free(ns);

    const char *names[] = {"resnet", "cnn", "small", "wide"};
    for (int a = 0; a < 4; a++) {
        advex_model *m = NULL;
        ASSERT_OK(advex_model_build(names[a], 5, &m));
        for (int train = 0; train < 2 && !bad; train++) {
            advex_plan *pl = plan_for(m, 3, train);
            bad = pl ? pool_overlap(pl) : "plan failed";
        }
        if (!bad) { /* forward only: every buffer given back after its last forward use */
            advex_plan *pl = NULL;
            if (advex_plan_new(m->net, &pl) || advex_plan_images(pl, 3, 0, 0)) bad = "forward plan failed";
            else bad = pool_overlap(pl);
            advex_plan_free(pl);
        }
        advex_model_free(m);
        ASSERT_MSG(!bad, "%s: %s", names[a], bad);
    }
}

/* Input and parameter gradients with shared activation grads equal, bit for bit, those with
 * a buffer per activation: eval and train plans, two consecutive backward passes with
 * different inputs (the second over the first's stale pool), the shared pool filled with NaN
 * before the first; and the batch-parallel (split) path. */
TEST(grad_pool_bit_identical) {
    const char *names[] = {"resnet", "cnn", "small"};
    const int n = 4, d = 784, c = 10, nsplit = 40;
    float *x = malloc((size_t)nsplit * d * sizeof(float)), *x2 = malloc((size_t)nsplit * d * sizeof(float));
    float *w = malloc((size_t)nsplit * c * sizeof(float));
    float *gs = malloc((size_t)nsplit * d * sizeof(float)), *gn = malloc((size_t)nsplit * d * sizeof(float));
    fill_uniform(x, nsplit * d, 51);
    fill_uniform(x2, nsplit * d, 52);
    fill_uniform(w, nsplit * c, 53);
    for (int i = 0; i < nsplit * c; i++) w[i] -= 0.5f;
    const char *bad = NULL;
    int bad_arch = 0;
    for (int a = 0; a < 3 && !bad; a++) {
        advex_model *m[2] = {NULL, NULL}; /* shared, unshared */
        bad_arch = a;
        if (advex_model_build(names[a], 9, &m[0]) || advex_model_build(names[a], 9, &m[1])) {
            bad = "build failed";
            break;
        }
        int64_t np = m[0]->net->n_params;
        float *pg[2] = {calloc((size_t)np, sizeof(float)), calloc((size_t)np, sizeof(float))};
        for (int train = 0; train < 2 && !bad; train++) {
            advex_plan *pl[2];
            for (int k = 0; k < 2 && !bad; k++) {
                if (k && !m[1]->train && advex_plan_new(m[1]->net, &m[1]->train)) bad = "plan failed";
                if (k) m[1]->plan->grad_noshare = m[1]->train->grad_noshare = 1;
                if (!bad && !(pl[k] = plan_for(m[k], n, train))) bad = "plan failed";
                for (int v = 0; !k && !bad && v < m[k]->net->g.n_vals; v++) { /* stale garbage must not leak */
                    advex_value *val = &pl[k]->v[v];
                    if (val->kind == ADVEX_VAL_ACT)
                        for (int64_t e = 0; e < advex_numel(val->ndim, val->dims); e++) val->grad[e] = NAN;
                }
            }
            for (int rep = 0; rep < 2 && !bad; rep++) {
                for (int k = 0; k < 2 && !bad; k++) {
                    advex_plan_forward(pl[k], rep ? x2 : x);
                    if (train) memset(pl[k]->grads, 0, (size_t)np * sizeof(float));
                    if (advex_plan_backward(pl[k], w)) bad = train ? "train backward failed" : "eval backward failed";
                    else {
                        memcpy(k ? gn : gs, advex_plan_input_grad(pl[k]), (size_t)n * d * sizeof(float));
                        if (train) memcpy(pg[k], pl[k]->grads, (size_t)np * sizeof(float));
                    }
                }
                double norm = 0;
                for (int i = 0; !bad && i < n * d; i++) norm += fabs(gs[i]);
                if (bad) break;
                if (norm < 1e-6) bad = "input gradient is zero";
                else if (memcmp(gs, gn, (size_t)n * d * sizeof(float)) != 0)
                    bad = train ? "train-mode input gradient differs" : "eval-mode input gradient differs";
                else if (memcmp(pg[0], pg[1], (size_t)np * sizeof(float)) != 0)
                    bad = train ? "train-mode parameter gradients differ" : "eval-mode parameter grads touched";
            }
        }
        /* split across two per-thread replicas (each plans its own pool) */
        int threads = advex_threads();
        advex_set_threads(2);
        for (int rep = 0; rep < 2 && !bad; rep++) {
            if (advex_model_vjp(m[0], rep ? x2 : x, nsplit, w, gs, NULL) ||
                advex_model_vjp(m[1], rep ? x2 : x, nsplit, w, gn, NULL))
                bad = "split vjp failed";
            else if (memcmp(gs, gn, (size_t)nsplit * d * sizeof(float)) != 0)
                bad = "split input gradient differs";
        }
        if (!bad && (m[0]->split != 2 || m[0]->n_part < 2)) bad = "the vjp did not split";
        advex_set_threads(threads);
        free(pg[0]);
        free(pg[1]);
        advex_model_free(m[0]);
        advex_model_free(m[1]);
    }
    free(x); free(x2); free(w); free(gs); free(gn);
    ASSERT_MSG(!bad, "%s: %s", names[bad_arch], bad);
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


/* ---- eval-mode BatchNorm folding and Relu fusion (graph.c) ------------------------------ */

/* Randomise every BatchNorm's scale, B, running mean and var (built models start at 1/0/0/1,
 * which would make folding trivially right). */
static void randomise_bn(advex_model *m, uint64_t seed) {
    advex_rng r;
    advex_rng_seed(&r, seed);
    static const float lo[4] = {0.5f, -0.2f, -0.1f, 0.5f}, hi[4] = {1.5f, 0.2f, 0.1f, 2.0f};
    const advex_graph *g = &m->net->g;
    for (int i = 0; i < g->n_nodes; i++) {
        const advex_node *nd = &g->nodes[i];
        if (nd->op != ADVEX_OP_BATCHNORM) continue;
        for (int k = 1; k < 5; k++) {
            const advex_value *v = &g->vals[nd->in[k]];
            for (int64_t j = 0; j < advex_numel(v->ndim, v->dims); j++)
                v->data[j] = lo[k - 1] + (hi[k - 1] - lo[k - 1]) * advex_rng_uniform(&r);
        }
    }
}

static float rel_diff(const float *a, const float *b, int64_t n) {
    float e = 0.0f, s = 1e-30f;
    for (int64_t i = 0; i < n; i++) {
        e = fabsf(a[i] - b[i]) > e ? fabsf(a[i] - b[i]) : e;
        s = fabsf(b[i]) > s ? fabsf(b[i]) : s;
    }
    return e / s;
}

/* The fused graph (folded BatchNorms in eval mode, Relus stored by their producers, views and
 * Relu gradients sharing buffers, every fused Relu's mask applied by its producer: small has
 * a Flatten and two masking Convs, resnet masking BatchNorms and Adds) gives
 * the logits, input gradients (eval) and parameter gradients (train) of the same graph with
 * every mark cleared, to rounding; and the marks are there. */
TEST(fusion_matches_unfused) {
    const char *names[] = {"resnet", "small", "cnn", "wide"};
    const int n = 3, d = 784;
    int32_t y[3] = {1, 4, 9};
    float *x = malloc(n * d * sizeof(float)), *ga = malloc(n * d * sizeof(float)), *gb = malloc(n * d * sizeof(float));
    fill_uniform(x, n * d, 77);
    for (int a = 0; a < 4; a++) {
        advex_model *m = NULL, *u = NULL;
        ASSERT_OK(advex_model_build(names[a], 5, &m));
        ASSERT_OK(advex_model_build(names[a], 5, &u));
        randomise_bn(m, 9);
        randomise_bn(u, 9);
        int folds = 0, relus = 0, aliases = 0;
        for (int i = 0; i < u->net->g.n_nodes; i++) {
            advex_node *nd = &u->net->g.nodes[i];
            folds += nd->fold > 0;
            relus += nd->relu_fused;
            aliases += nd->alias_grad;
            nd->fold = nd->relu_out = nd->relu_fused = nd->fold_relu = 0;
            nd->alias_data = nd->alias_grad = nd->relu_mask = 0;
        }
        /* (no plan of u is laid out yet: the first one sees the net without the marks) */
        ASSERT_MSG(relus > 0 && (a != 0 || (folds == 9 && relus == 7)) && (a != 1 || aliases == 3) && aliases >= relus,
                   "%s: %d folds, %d fused relus, %d aliases", names[a], folds, relus, aliases);
        float za[30], zb[30];
        ASSERT_OK(advex_model_input_grad(m, x, y, n, ADVEX_LOSS_CE, ga, za, NULL));
        ASSERT_OK(advex_model_input_grad(u, x, y, n, ADVEX_LOSS_CE, gb, zb, NULL));
        float ez = rel_diff(za, zb, n * 10), eg = rel_diff(ga, gb, n * d);
        ASSERT_MSG(ez < 1e-5f && eg < 1e-5f, "%s eval: logits %g, input gradient %g", names[a], ez, eg);
        float dl[30], l[3];
        int64_t np = m->net->n_params;
        float *pg = malloc(np * sizeof(float));
        advex_plan *tp = NULL;
        for (int k = 0; k < 2; k++) {
            advex_model *t = k ? u : m;
            ASSERT((tp = plan_for(t, n, 1)));
            advex_plan_forward(tp, x);
            advex_loss_forward_backward(ADVEX_LOSS_CE, advex_plan_output(tp), y, n, 10, l, dl);
            memset(tp->grads, 0, np * sizeof(float));
            advex_plan_backward(tp, dl);
            if (!k) memcpy(pg, tp->grads, np * sizeof(float));
        }
        float ep = rel_diff(pg, tp->grads, np);
        free(pg);
        advex_model_free(m);
        advex_model_free(u);
        ASSERT_MSG(ep < 1e-5f, "%s train: parameter gradients %g", names[a], ep);
    }
    free(x); free(ga); free(gb);
}

TEST_MAIN(TEST_ENTRY(lr_schedules), TEST_ENTRY(builds_all_archs), TEST_ENTRY(forward_batch_independent), TEST_ENTRY(input_grad_small),
          TEST_ENTRY(input_grad_cnn), TEST_ENTRY(input_grad_resnet), TEST_ENTRY(param_grad_resnet_train_mode),
          TEST_ENTRY(training_lowers_loss), TEST_ENTRY(training_deterministic), TEST_ENTRY(grad_write_mode_graph),
          TEST_ENTRY(grad_write_mode_archs),
          TEST_ENTRY(grad_pool_memory), TEST_ENTRY(grad_pool_bit_identical), TEST_ENTRY(fusion_matches_unfused))
