/* Per-op tests of the issue-17 ops (unary math, Pow/Min/Max/PRelu/Where/Expand, Reduce*,
 * LayerNormalization, Slice, Gather, flattened Softmax): input and parameter gradients against
 * central finite differences of sum(out .* r) in double on one hand-built node
 * (tests/op_grad.h), kinks excluded where the op has them, gradient write mode, known values
 * and shape errors. */
#include "op_grad.h"

/* a value whose gradient is not wanted (a condition, indices, the batch reference) */
static int tg_const(tg *g, const int64_t *dims, int ndim, const float *vals) {
    int id = tg_val(g, dims, ndim, 0, 1);
    advex_value *v = &g->v[id];
    v->kind = ADVEX_VAL_CONST;
    free(v->grad);
    v->grad = NULL;
    for (int64_t i = 0; vals && i < vnumel(v); i++) v->data[i] = vals[i];
    return id;
}

/* ---- elementwise math ---------------------------------------------------------------------- */

TEST(unary_grad) {
    static const struct { advex_op_type op; float lo, hi; int kinky; } cases[] = {
        {ADVEX_OP_SQRT, 0.5f, 2, 0}, {ADVEX_OP_EXP, -2, 2, 0}, {ADVEX_OP_LOG, 0.5f, 2, 0}, {ADVEX_OP_NEG, -2, 2, 0},
        {ADVEX_OP_RECIPROCAL, 0.5f, 2, 0}, {ADVEX_OP_ABS, -2, 2, 1}, {ADVEX_OP_ERF, -2, 2, 0}, {ADVEX_OP_SIN, -3, 3, 0},
        {ADVEX_OP_COS, -3, 3, 0}, {ADVEX_OP_FLOOR, -3, 3, 1}, {ADVEX_OP_CEIL, -3, 3, 1},
        {ADVEX_OP_HARD_SIGMOID, -4, 4, 1}, {ADVEX_OP_HARD_SWISH, -5, 5, 1}, {ADVEX_OP_GELU, -3, 3, 0},
        {ADVEX_OP_SOFTPLUS, -4, 4, 0}, {ADVEX_OP_SOFTSIGN, -3, 3, 0}, {ADVEX_OP_ELU, -2, 2, 1}, {ADVEX_OP_SELU, -2, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int mode = 0; mode < (cases[i].op == ADVEX_OP_GELU ? 2 : 1); mode++) {
            tg g;
            tg_init(&g, cases[i].op, 700 + i);
            int x = tg_val(&g, DIMS(2, 3, 5), cases[i].lo, cases[i].hi);
            tg_inputs(&g, IDS(x));
            g.nd.a.mode = mode;
            if (cases[i].op == ADVEX_OP_HARD_SIGMOID) { g.nd.a.alpha = 0.2f; g.nd.a.beta = 0.5f; }
            if (cases[i].op == ADVEX_OP_ELU) g.nd.a.alpha = 0.7f;
            if (cases[i].op == ADVEX_OP_SELU) { g.nd.a.alpha = 1.6732632f; g.nd.a.beta = 1.0507010f; }
            ASSERT_OK(tg_plan(&g, 0));
            int got = gradcheck(&g, 0, 1e-3, 1e-2, cases[i].kinky, 30);
            tg_free(&g);
            ASSERT_MSG(got > 0, "%s (mode %d): gradient check failed", advex_op_defs[cases[i].op].name, mode);
        }
}

TEST(unary_known_values) {
    static const float x[6] = {-4.0f, -1.0f, 0.0f, 0.5f, 1.0f, 4.0f};
    float y[6];
    advex_unary_kernel(ADVEX_OP_HARD_SWISH, 0, 0, 0, y, x, 6); /* x relu6(x + 3) / 6 */
    for (int i = 0; i < 6; i++) ASSERT_NEAR(y[i], x[i] * fminf(fmaxf(x[i] + 3.0f, 0.0f), 6.0f) / 6.0f, 1e-6);
    advex_unary_kernel(ADVEX_OP_HARD_SIGMOID, 0.2f, 0.5f, 0, y, x, 6);
    ASSERT_NEAR(y[0], 0.0, 0);
    ASSERT_NEAR(y[3], 0.6, 1e-7);
    ASSERT_NEAR(y[5], 1.0, 0);
    advex_unary_kernel(ADVEX_OP_GELU, 0, 0, 0, y, x, 6); /* x Phi(x) */
    for (int i = 0; i < 6; i++) ASSERT_NEAR(y[i], 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0))), 1e-6);
    advex_unary_kernel(ADVEX_OP_GELU, 0, 0, 1, y, x, 6); /* tanh approximation: within 1e-3 of exact */
    for (int i = 0; i < 6; i++) ASSERT_NEAR(y[i], 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0))), 1e-3);
    advex_unary_kernel(ADVEX_OP_SOFTPLUS, 0, 0, 0, y, (const float[]){100.0f, -100.0f}, 2); /* no overflow */
    ASSERT_NEAR(y[0], 100.0, 1e-5);
    ASSERT_NEAR(y[1], 0.0, 1e-30);
}

/* ---- broadcasting ------------------------------------------------------------------------------ */

TEST(bcast_grad) {
    static const struct { advex_op_type op; int64_t a[4], b[4]; int na, nb; float lo, hi; int kinky; } cases[] = {
        {ADVEX_OP_POW, {2, 3, 4}, {1}, 3, 1, 0.5f, 2, 0},          /* x^e, one exponent */
        {ADVEX_OP_POW, {2, 3, 4}, {3, 1}, 3, 2, 0.5f, 2, 0},       /* exponent broadcast over a dim */
        {ADVEX_OP_POW, {4}, {2, 3, 4}, 1, 3, 0.5f, 1.5f, 0},       /* base broadcast */
        {ADVEX_OP_MIN, {2, 3, 4}, {3, 4}, 3, 2, -1, 1, 1},
        {ADVEX_OP_MAX, {2, 1, 4}, {2, 3, 1}, 3, 3, -1, 1, 1},   /* both broadcast */
        {ADVEX_OP_PRELU, {2, 3, 4, 5}, {3, 1, 1}, 4, 3, -1, 1, 1},
        {ADVEX_OP_PRELU, {2, 3, 4}, {1}, 3, 1, -1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tg g;
        tg_init(&g, cases[i].op, 800 + i);
        int a = tg_val(&g, cases[i].a, cases[i].na, cases[i].lo, cases[i].hi);
        int b = tg_val(&g, cases[i].b, cases[i].nb, cases[i].op == ADVEX_OP_POW ? -1.0f : cases[i].lo,
                       cases[i].op == ADVEX_OP_POW ? 2.5f : cases[i].hi);
        tg_inputs(&g, IDS(a, b));
        ASSERT_OK(tg_plan(&g, 0));
        int got = gradcheck(&g, 0, 1e-3, 1e-2, cases[i].kinky, 40);
        tg_free(&g);
        ASSERT_MSG(got > 0, "%s case %zu: gradient check failed", advex_op_defs[cases[i].op].name, i);
    }
    /* x^2 fast path equals x * x; Pow(x, 0.5) equals sqrt */
    tg g;
    tg_init(&g, ADVEX_OP_POW, 810);
    int x = tg_val(&g, DIMS(7), 0.1f, 3);
    int e = tg_const(&g, DIMS(1), (const float[]){2.0f});
    tg_inputs(&g, IDS(x, e));
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    for (int i = 0; i < 7; i++) ASSERT_NEAR(g.v[g.nd.out[0]].data[i], g.v[x].data[i] * g.v[x].data[i], 0);
    g.v[e].data[0] = 0.5f;
    tg_forward(&g, 0);
    for (int i = 0; i < 7; i++) ASSERT_NEAR(g.v[g.nd.out[0]].data[i], sqrtf(g.v[x].data[i]), 0);
    tg_free(&g);
}

TEST(where_grad) {
    tg g;
    tg_init(&g, ADVEX_OP_WHERE, 820);
    float cv[12];
    for (int i = 0; i < 12; i++) cv[i] = (float)((i * 7) % 3 == 0);
    int c = tg_const(&g, DIMS(3, 4), cv);
    int x = tg_val(&g, DIMS(2, 3, 4), -1, 1);
    int y = tg_val(&g, DIMS(4), -1, 1); /* broadcast: its gradient sums the unselected places */
    tg_inputs(&g, IDS(c, x, y));
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    const float *o = g.v[g.nd.out[0]].data;
    for (int i = 0; i < 24; i++) ASSERT_NEAR(o[i], cv[i % 12] ? g.v[x].data[i] : g.v[y].data[i % 4], 0);
    int got = gradcheck(&g, 0, 1e-3, 1e-2, 0, 40);
    tg_free(&g);
    ASSERT_MSG(got > 0, "Where: gradient check failed");
    /* a condition computed at run time is refused */
    tg_init(&g, ADVEX_OP_WHERE, 821);
    c = tg_val(&g, DIMS(4), 0, 1);
    x = tg_val(&g, DIMS(4), 0, 1);
    tg_inputs(&g, IDS(c, x, x));
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_UNSUPPORTED);
    tg_free(&g);
}

TEST(expand_grad) {
    tg g;
    tg_init(&g, ADVEX_OP_EXPAND, 830);
    int x = tg_val(&g, DIMS(3, 1), -1, 1);
    tg_inputs(&g, IDS(x));
    g.nd.a.n_ints = 3; /* to (2, 3, 4) */
    g.nd.a.ints[0] = 2;
    g.nd.a.ints[1] = 1; /* 1: keeps the input's 3 (numpy broadcasting, both ways) */
    g.nd.a.ints[2] = 4;
    ASSERT_OK(tg_plan(&g, 0));
    ASSERT_EQ_INT(g.v[g.nd.out[0]].ndim, 3);
    ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[1], 3);
    int got = gradcheck(&g, 0, 1e-3, 1e-2, 0, 40);
    tg_free(&g);
    ASSERT_MSG(got > 0, "Expand: gradient check failed");
    /* batch-dependent target: dim 0 is 0 + 2 N, N from input 1's dim 0 (5) */
    tg_init(&g, ADVEX_OP_EXPAND, 831);
    x = tg_val(&g, DIMS(1, 4), -1, 1);
    int ref = tg_const(&g, DIMS(5, 2), NULL);
    tg_inputs(&g, IDS(x, ref));
    g.nd.a.n_ints = 2;
    g.nd.a.ints[0] = 0;
    g.nd.a.ints[ADVEX_MAX_DIMS] = 2;
    g.nd.a.ints[1] = 4;
    ASSERT_OK(tg_plan(&g, 0));
    ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[0], 10);
    got = gradcheck(&g, 0, 1e-3, 1e-2, 0, 40);
    tg_free(&g);
    ASSERT_MSG(got > 0, "Expand with the batch size: gradient check failed");
    /* a target that does not broadcast */
    tg_init(&g, ADVEX_OP_EXPAND, 832);
    x = tg_val(&g, DIMS(3), -1, 1);
    tg_inputs(&g, IDS(x));
    g.nd.a.n_ints = 1;
    g.nd.a.ints[0] = 4;
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    tg_free(&g);
}

/* ---- reductions --------------------------------------------------------------------------------- */

TEST(reduce_grad) {
    static const advex_op_type ops[] = {ADVEX_OP_REDUCE_MEAN, ADVEX_OP_REDUCE_SUM, ADVEX_OP_REDUCE_MAX,
                                        ADVEX_OP_REDUCE_MIN, ADVEX_OP_REDUCE_SUM_SQUARE, ADVEX_OP_REDUCE_L1,
                                        ADVEX_OP_REDUCE_L2, ADVEX_OP_REDUCE_LOG_SUM_EXP};
    /* axes, count, keepdims, noop: trailing, middle, leading, scattered (permuted), all, none */
    static const struct { int64_t axes[3]; int n, keep, noop; int64_t out[4]; int on; } cfg[] = {
        {{-1}, 1, 1, 0, {2, 3, 4, 1}, 4}, {{1, 2}, 2, 0, 0, {2, 5}, 2}, {{0}, 1, 0, 0, {3, 4, 5}, 3},
        {{0, 2}, 2, 1, 0, {1, 3, 1, 5}, 4}, {{0}, 0, 0, 0, {0}, 0}, {{0}, 0, 1, 1, {2, 3, 4, 5}, 4},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        for (size_t k = 0; k < sizeof cfg / sizeof *cfg; k++) {
            tg g;
            tg_init(&g, ops[i], 900 + 10 * i + k);
            int x = tg_val(&g, DIMS(2, 3, 4, 5), -1, 1);
            tg_inputs(&g, IDS(x));
            g.nd.a.n_ints = cfg[k].n;
            for (int j = 0; j < cfg[k].n; j++) g.nd.a.ints[j] = cfg[k].axes[j];
            g.nd.a.keepdims = cfg[k].keep;
            g.nd.a.mode = cfg[k].noop;
            ASSERT_OK(tg_plan(&g, 0));
            const advex_value *o = &g.v[g.nd.out[0]];
            ASSERT_EQ_INT(o->ndim, cfg[k].on);
            for (int d = 0; d < o->ndim; d++) ASSERT_EQ_INT(o->dims[d], cfg[k].out[d]);
            int kinky = ops[i] == ADVEX_OP_REDUCE_MAX || ops[i] == ADVEX_OP_REDUCE_MIN || ops[i] == ADVEX_OP_REDUCE_L1;
            int got = gradcheck(&g, 0, 1e-3, 1e-2, kinky, 30);
            tg_free(&g);
            ASSERT_MSG(got > 0, "%s config %zu: gradient check failed", advex_op_defs[ops[i]].name, k);
        }
}

TEST(reduce_known_values) {
    tg g;
    tg_init(&g, ADVEX_OP_REDUCE_MEAN, 950);
    int x = tg_const(&g, DIMS(2, 3), (const float[]){1, 2, 3, 4, 5, 6});
    tg_inputs(&g, IDS(x));
    g.nd.a.n_ints = 1;
    g.nd.a.ints[0] = 0;
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    ASSERT_NEAR(g.v[g.nd.out[0]].data[0], 2.5, 0);
    ASSERT_NEAR(g.v[g.nd.out[0]].data[2], 4.5, 0);
    g.nd.op = ADVEX_OP_REDUCE_LOG_SUM_EXP;
    g.v[x].data[0] = 1000.0f; /* no overflow: the max is subtracted */
    tg_forward(&g, 0);
    ASSERT_NEAR(g.v[g.nd.out[0]].data[0], 1000.0, 1e-3);
    g.nd.a.ints[0] = 3; /* axis out of range */
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    tg_free(&g);
}

/* ---- LayerNormalization ------------------------------------------------------------------------ */

TEST(layernorm_grad) {
    static const struct { int64_t axis; int bias; int64_t sdims[2]; int sn; } cfg[] = {
        {-1, 1, {5}, 1}, {1, 0, {3, 5}, 2}, {-2, 1, {3, 5}, 2},
    };
    for (size_t k = 0; k < sizeof cfg / sizeof *cfg; k++)
        for (int train = 0; train < 2; train++) {
            tg g;
            tg_init(&g, ADVEX_OP_LAYER_NORM, 960 + k);
            int x = tg_val(&g, DIMS(4, 3, 5), -2, 2);
            int s = tg_val(&g, cfg[k].sdims, cfg[k].sn, 0.5f, 1.5f);
            if (cfg[k].bias) {
                int b = tg_val(&g, cfg[k].sdims, cfg[k].sn, -1, 1);
                tg_inputs(&g, IDS(x, s, b));
            } else {
                tg_inputs(&g, IDS(x, s));
            }
            g.nd.a.axis = cfg[k].axis;
            g.nd.a.epsilon = 1e-5f;
            ASSERT_OK(tg_plan(&g, train));
            tg_forward(&g, train);
            /* rows of y/scale - bias have mean 0 and variance 1 / (1 + eps/var) */
            int64_t D = vnumel(&g.v[s]), rows = 60 / D;
            const float *y = g.v[g.nd.out[0]].data, *sc = g.v[s].data, *bi = cfg[k].bias ? g.v[g.in[2]].data : NULL;
            for (int64_t r = 0; r < rows; r++) {
                double m = 0, q = 0;
                for (int64_t j = 0; j < D; j++) m += (y[r * D + j] - (bi ? bi[j] : 0)) / sc[j];
                for (int64_t j = 0; j < D; j++) {
                    double t = (y[r * D + j] - (bi ? bi[j] : 0)) / sc[j] - m / D;
                    q += t * t;
                }
                ASSERT_NEAR(m / D, 0.0, 1e-5);
                ASSERT_NEAR(q / D, 1.0, 1e-3);
            }
            int got = gradcheck(&g, train, 1e-3, 1e-2, 0, 40);
            tg_free(&g);
            ASSERT_MSG(got > 0, "LayerNormalization config %zu: gradient check failed", k);
        }
    tg g;
    tg_init(&g, ADVEX_OP_LAYER_NORM, 970);
    int x = tg_val(&g, DIMS(2, 6), -1, 1), s = tg_val(&g, DIMS(5), 0, 1);
    tg_inputs(&g, IDS(x, s));
    g.nd.a.axis = -1;
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE); /* scale of 5 for rows of 6 */
    tg_free(&g);
}

/* ---- Slice, Gather ------------------------------------------------------------------------------ */

TEST(slice_grad) {
    static const struct { int64_t st[3], en[3], sp[3]; int64_t out[3]; } cfg[] = {
        {{0, 1, 0}, {INT64_MAX, 3, INT64_MAX}, {1, 1, 2}, {4, 2, 3}},    /* middle dim, every other */
        {{-1, 0, -2}, {INT64_MIN, INT64_MAX, -6}, {-1, 2, -1}, {4, 2, 4}}, /* negative steps, to the start */
        {{1, -10, 2}, {3, 10, 4}, {1, 1, 1}, {2, 3, 2}},                  /* clamped bounds */
        {{2, 0, 5}, {2, 3, 6}, {1, 1, 1}, {0, 3, 1}},                     /* empty */
    };
    for (size_t k = 0; k < sizeof cfg / sizeof *cfg; k++) {
        tg g;
        tg_init(&g, ADVEX_OP_SLICE, 980 + k);
        int x = tg_val(&g, DIMS(4, 3, 6), -1, 1);
        tg_inputs(&g, IDS(x));
        for (int d = 0; d < 3; d++) {
            g.nd.a.starts[d] = cfg[k].st[d];
            g.nd.a.ends[d] = cfg[k].en[d];
            g.nd.a.steps[d] = cfg[k].sp[d];
        }
        ASSERT_OK(tg_plan(&g, 0));
        for (int d = 0; d < 3; d++) ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[d], cfg[k].out[d]);
        if (vnumel(&g.v[g.nd.out[0]]) == 0) { tg_free(&g); continue; }
        tg_forward(&g, 0);
        if (k == 1) /* y[i][j][l] = x[3 - i][2 j][4 - l] */
            ASSERT_NEAR(g.v[g.nd.out[0]].data[1 * 8 + 1 * 4 + 2], g.v[x].data[2 * 18 + 2 * 6 + 2], 0);
        int got = gradcheck(&g, 0, 1e-3, 1e-2, 0, 72);
        tg_free(&g);
        ASSERT_MSG(got > 0, "Slice config %zu: gradient check failed", k);
    }
}

TEST(gather_grad) {
    static const struct { int64_t axis; int64_t idims[2]; int ni; float idx[6]; int64_t out[4]; int on; } cfg[] = {
        {1, {2, 2}, 2, {0, 2, -1, 0}, {4, 2, 2, 5}, 4}, /* repeated and negative indices */
        {0, {1}, 0, {3}, {3, 5}, 2},                    /* a scalar index drops the axis */
        {-1, {3}, 1, {4, 0, 4}, {4, 3, 3}, 3},
    };
    for (size_t k = 0; k < sizeof cfg / sizeof *cfg; k++) {
        tg g;
        tg_init(&g, ADVEX_OP_GATHER, 990 + k);
        int x = tg_val(&g, DIMS(4, 3, 5), -1, 1);
        int idx = tg_const(&g, cfg[k].idims, cfg[k].ni, cfg[k].idx);
        tg_inputs(&g, IDS(x, idx));
        g.nd.a.axis = cfg[k].axis;
        ASSERT_OK(tg_plan(&g, 0));
        ASSERT_EQ_INT(g.v[g.nd.out[0]].ndim, cfg[k].on);
        for (int d = 0; d < cfg[k].on; d++) ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[d], cfg[k].out[d]);
        int got = gradcheck(&g, 0, 1e-3, 1e-2, 0, 60);
        tg_free(&g);
        ASSERT_MSG(got > 0, "Gather config %zu: gradient check failed", k);
    }
    tg g;
    tg_init(&g, ADVEX_OP_GATHER, 999);
    int x = tg_val(&g, DIMS(4, 3), -1, 1), idx = tg_const(&g, DIMS(1), (const float[]){4});
    tg_inputs(&g, IDS(x, idx));
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE); /* index 4 of a dimension of 4 */
    tg_free(&g);
}

/* ---- Softmax over the flattened trailing dims (opset < 13) ------------------------------------- */

TEST(softmax_flattened) {
    for (int op = 0; op < 2; op++) {
        tg g;
        tg_init(&g, op ? ADVEX_OP_LOG_SOFTMAX : ADVEX_OP_SOFTMAX, 1000 + op);
        int x = tg_val(&g, DIMS(2, 3, 4), -2, 2);
        tg_inputs(&g, IDS(x));
        g.nd.a.axis = 1;
        g.nd.a.mode = 1;
        ASSERT_OK(tg_plan(&g, 0));
        tg_forward(&g, 0);
        for (int r = 0; r < 2; r++) { /* each example's 12 values form one distribution */
            double s = 0;
            for (int j = 0; j < 12; j++) {
                float v = g.v[g.nd.out[0]].data[r * 12 + j];
                s += op ? exp(v) : v;
            }
            ASSERT_NEAR(s, 1.0, 1e-5);
        }
        int got = gradcheck(&g, 0, 1e-3, 1e-2, 0, 24);
        tg_free(&g);
        ASSERT_MSG(got > 0, "flattened softmax %d: gradient check failed", op);
    }
}

TEST_MAIN(TEST_ENTRY(unary_grad), TEST_ENTRY(unary_known_values), TEST_ENTRY(bcast_grad), TEST_ENTRY(where_grad),
          TEST_ENTRY(expand_grad), TEST_ENTRY(reduce_grad), TEST_ENTRY(reduce_known_values),
          TEST_ENTRY(layernorm_grad), TEST_ENTRY(slice_grad), TEST_ENTRY(gather_grad), TEST_ENTRY(softmax_flattened))
