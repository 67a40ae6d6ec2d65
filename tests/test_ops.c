/* Per-op tests: every op built by hand as one node over a small value array, gradients
 * (inputs and parameters) against central finite differences of sum(out .* r) in double,
 * fast conv/gemm/pool paths against the naive reference kernels, known values, and
 * shape-inference errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"
#include "ops/kernels.h"
#include "ops/vmath.h"

/* ---- a one-node graph built by hand: tests/op_grad.h (shared with test_ops_ext.c) ------- */

#include "op_grad.h"

/* ---- op table ----------------------------------------------------------------------------- */

TEST(op_table) {
    for (int i = 0; i < ADVEX_OP_COUNT; i++) {
        const advex_op_def *d = &advex_op_defs[i];
        ASSERT_MSG(d->name && d->infer && d->forward && d->backward, "op %d incomplete", i);
        ASSERT_EQ_INT(advex_op_from_name(d->name), i);
        /* RandomNormal and RandomUniform draw a fixed shape from no input at all */
        int none = i == ADVEX_OP_RANDOM_NORMAL || i == ADVEX_OP_RANDOM_UNIFORM;
        ASSERT(d->min_in >= (none ? 0 : 1) && d->max_in >= d->min_in);
    }
    ASSERT_EQ_INT(advex_op_from_name("Conv"), ADVEX_OP_CONV);
    ASSERT_EQ_INT(advex_op_from_name("LogSoftmax"), ADVEX_OP_LOG_SOFTMAX);
    ASSERT_EQ_INT(advex_op_from_name("conv"), -1);
    ASSERT_EQ_INT(advex_op_from_name("Nope"), -1);
    ASSERT_EQ_INT(advex_op_from_name(NULL), -1);
    advex_attrs a;
    advex_attrs_default(&a);
    ASSERT_EQ_INT(a.stride[0], 1);
    ASSERT_EQ_INT(a.group, 1);
    ASSERT_NEAR(a.epsilon, 1e-5, 1e-12);
    ASSERT_NEAR(a.momentum, 0.9, 1e-7);
    ASSERT(isinf(a.min) && a.min < 0 && isinf(a.max) && a.max > 0);
}

/* ---- Conv ---------------------------------------------------------------------------------- */

typedef struct conv_cfg {
    int64_t N, C, H, W, M, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR, G;
} conv_cfg;

static const conv_cfg conv_cfgs[] = {
    {2, 4, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2}, /* groups 2 */
    {3, 3, 9, 8, 4, 3, 2, 2, 2, 2, 1, 0, 1, 2, 0, 1}, /* stride 2, dilation (2,1), asymmetric pads */
    {2, 5, 5, 5, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1}, /* 1x1 (direct sgemm) */
    {2, 6, 6, 7, 4, 1, 1, 2, 1, 1, 1, 0, 0, 0, 0, 1}, /* 1x1 stride (2,1) (im2col) */
    {1, 4, 5, 5, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 4}, /* depthwise, dilation 2 */
    {2, 3, 4, 4, 2, 5, 5, 1, 1, 1, 1, 2, 1, 0, 2, 1}, /* 5x5 kernel, asymmetric pads */
    {2, 3, 9, 8, 4, 4, 4, 2, 2, 1, 1, 1, 2, 0, 1, 1}, /* 4x4 stride 2, asymmetric pads (space-to-depth) */
    {2, 8, 6, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* 3x3, 8 channels each side (Winograd) */
    {1, 8, 5, 6, 9, 5, 5, 1, 1, 1, 1, 2, 1, 2, 0, 1}, /* 5x5, asymmetric pads (Winograd) */
    /* grouped and depthwise, direct (conv_group.c) */
    {2, 6, 9, 37, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6},   /* depthwise 3x3, rows wider than a 32-column tile */
    {2, 4, 11, 13, 8, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 4},  /* depthwise 5x5 stride 2, channel multiplier 2 */
    {1, 6, 8, 9, 9, 3, 3, 2, 2, 1, 1, 1, 0, 0, 1, 3},    /* groups of 2 -> 3 channels, stride 2, asymmetric pads */
    {1, 3, 10, 41, 3, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, 3},  /* depthwise 7x7 (ConvNeXt) */
    {2, 4, 12, 70, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4},  /* depthwise stride 2, 35 output columns */
};

static int conv_node(tg *g, const conv_cfg *k, int bias, uint64_t seed) {
    tg_init(g, ADVEX_OP_CONV, seed);
    int x = tg_val(g, DIMS(k->N, k->C, k->H, k->W), -1, 1);
    int w = tg_val(g, DIMS(k->M, k->C / k->G, k->KH, k->KW), -0.5f, 0.5f);
    if (bias) {
        int b = tg_val(g, DIMS(k->M), -0.5f, 0.5f);
        tg_inputs(g, IDS(x, w, b));
    } else {
        tg_inputs(g, IDS(x, w));
    }
    advex_attrs *a = &g->nd.a;
    a->stride[0] = k->SH; a->stride[1] = k->SW;
    a->dilation[0] = k->DH; a->dilation[1] = k->DW;
    a->pads[0] = k->PT; a->pads[1] = k->PL; a->pads[2] = k->PB; a->pads[3] = k->PR;
    a->group = k->G;
    return x;
}

TEST(conv_grad) {
    for (size_t i = 0; i < sizeof conv_cfgs / sizeof *conv_cfgs; i++) {
        tg g;
        conv_node(&g, &conv_cfgs[i], i != 3, 100 + i);
        ASSERT_OK(tg_plan(&g, 0));
        int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 40);
        tg_free(&g);
        ASSERT_MSG(got > 0, "conv config %zu: gradient check failed", i);
    }
}

TEST(conv_fast_vs_ref) {
    for (size_t i = 0; i < sizeof conv_cfgs / sizeof *conv_cfgs; i++) {
        const conv_cfg *k = &conv_cfgs[i];
        tg g;
        conv_node(&g, k, 1, 200 + i);
        ASSERT_OK(tg_plan(&g, 1));
        advex_conv2d_p p = {.N = k->N, .C = k->C, .H = k->H, .W = k->W, .M = k->M, .G = k->G, .KH = k->KH,
                            .KW = k->KW};
        ASSERT_OK(advex_window_geom(&p, &g.nd.a, "Conv", "t", 0));
        advex_value *o = &g.v[g.nd.out[0]];
        ASSERT_EQ_INT(o->dims[2], p.OH);
        ASSERT_EQ_INT(o->dims[3], p.OW);
        int64_t no = vnumel(o), nx = vnumel(&g.v[0]), nw = vnumel(&g.v[1]);
        float *ref = zalloc(no), *dx = zalloc(nx), *dw = zalloc(nw), *db = zalloc(k->M), *dx2 = zalloc(nx);
        tg_forward(&g, 0);
        advex_conv2d_forward_ref(ref, g.v[0].data, g.v[1].data, g.v[2].data, &p);
        float e_fwd = max_abs_diff(ref, o->data, no);
        for (int64_t j = 0; j < no; j++) o->grad[j] = 2.0f * advex_rng_uniform(&g.rng) - 1.0f;
        tg_backward(&g, 1);
        advex_conv2d_backward_ref(dx, dw, db, o->grad, g.v[0].data, g.v[1].data, &p);
        float e_dx = max_abs_diff(dx, g.v[0].grad, nx), e_dw = max_abs_diff(dw, g.v[1].grad, nw),
              e_db = max_abs_diff(db, g.v[2].grad, k->M);
        /* attack mode: weight grads not requested, input grad unchanged */
        float *keep_w = g.v[1].grad, *keep_b = g.v[2].grad, *keep_x = g.v[0].grad;
        g.v[0].grad = dx2;
        g.v[1].grad = g.v[2].grad = NULL;
        tg_backward(&g, 0);
        float e_dx2 = max_abs_diff(dx, dx2, nx);
        g.v[0].grad = keep_x;
        g.v[1].grad = keep_w;
        g.v[2].grad = keep_b;
        free(ref); free(dx); free(dw); free(db); free(dx2);
        tg_free(&g);
        ASSERT_MSG(e_fwd < 1e-4f && e_dx < 1e-4f && e_dw < 1e-4f && e_db < 1e-4f && e_dx2 < 1e-4f,
                   "conv config %zu: fast vs ref errors fwd %g dx %g dw %g db %g dx-only %g", i, e_fwd, e_dx, e_dw,
                   e_db, e_dx2);
    }
}

TEST(conv_auto_pad_and_accumulate) {
    conv_cfg k = {2, 3, 7, 6, 4, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1};
    static const int modes[3] = {ADVEX_AUTO_PAD_SAME_UPPER, ADVEX_AUTO_PAD_SAME_LOWER, ADVEX_AUTO_PAD_VALID};
    static const int64_t want[3][2] = {{4, 3}, {4, 3}, {3, 2}};
    for (int m = 0; m < 3; m++) {
        tg g;
        conv_node(&g, &k, 1, 300 + m);
        g.nd.a.auto_pad = modes[m];
        g.nd.a.pads[0] = 7; /* ignored with auto_pad */
        ASSERT_OK(tg_plan(&g, 0));
        ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[2], want[m][0]);
        ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[3], want[m][1]);
        advex_conv2d_p p = {.H = 7, .W = 6, .KH = 3, .KW = 3};
        ASSERT_OK(advex_window_geom(&p, &g.nd.a, "Conv", "t", 0));
        if (m == 1) { /* W: out 3, total pad (3-1)*2+3-6 = 1 -> SAME_LOWER puts it at the start */
            ASSERT_EQ_INT(p.PL, 1);
            ASSERT_EQ_INT(p.PR, 0);
        }
        if (m == 0) {
            ASSERT_EQ_INT(p.PL, 0);
            ASSERT_EQ_INT(p.PR, 1);
        }
        int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 20);
        ASSERT_MSG(got > 0, "auto_pad %d gradient check failed", modes[m]);
        /* backward accumulates: a second pass doubles the gradient */
        int64_t nx = vnumel(&g.v[0]);
        float *once = zalloc(nx);
        memcpy(once, g.v[0].grad, (size_t)nx * sizeof(float));
        tg_backward(&g, 0);
        float e = 0.0f;
        for (int64_t i = 0; i < nx; i++) e = fmaxf(e, fabsf(g.v[0].grad[i] - 2.0f * once[i]));
        free(once);
        tg_free(&g);
        ASSERT_MSG(e < 1e-5f, "conv backward does not accumulate (%g)", e);
    }
}

/* ---- Gemm / MatMul ------------------------------------------------------------------------- */

TEST(gemm_grad_and_ref) {
    static const int64_t cshape[4][3] = {{1, 5, 0}, {2, 4, 1}, {2, 1, 5}, {0, 0, 0}}; /* ndim, dims */
    for (int t = 0; t < 8; t++) {
        int ta = t & 1, tb = (t >> 1) & 1, cs = (t >> 1) & 3;
        int64_t M = 4, N = 5, K = 3;
        tg g;
        tg_init(&g, ADVEX_OP_GEMM, 400 + t);
        int a = ta ? tg_val(&g, DIMS(K, M), -1, 1) : tg_val(&g, DIMS(M, K), -1, 1);
        int b = tb ? tg_val(&g, DIMS(N, K), -1, 1) : tg_val(&g, DIMS(K, N), -1, 1);
        if (t == 7) {
            int c = tg_val(&g, DIMS(M, N), -1, 1);
            tg_inputs(&g, IDS(a, b, c));
        } else if (cshape[cs][0] > 0) {
            int c = tg_val(&g, cshape[cs] + 1, (int)cshape[cs][0], -1, 1);
            tg_inputs(&g, IDS(a, b, c));
        } else {
            tg_inputs(&g, IDS(a, b));
        }
        g.nd.a.trans_a = ta;
        g.nd.a.trans_b = tb;
        g.nd.a.alpha = 0.7f;
        g.nd.a.beta = 1.3f;
        ASSERT_OK(tg_plan(&g, 1));
        ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[0], M);
        ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[1], N);
        tg_forward(&g, 0);
        float ref[20];
        advex_gemm_ref(ref, g.v[a].data, g.v[b].data, M, N, K, ta, tb, 0.7f, 0.0f);
        if (g.nd.n_in == 3) {
            int64_t st[2];
            advex_bcast_strides(st, 2, (const int64_t[]){M, N}, g.v[2].ndim, g.v[2].dims);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) ref[i * N + j] += 1.3f * g.v[2].data[i * st[0] + j * st[1]];
        }
        float e = max_abs_diff(ref, g.v[g.nd.out[0]].data, M * N);
        int got = gradcheck(&g, 1, 1e-2, 1e-2, 0, 40);
        tg_free(&g);
        ASSERT_MSG(e < 1e-5f, "gemm case %d: forward differs from reference by %g", t, e);
        ASSERT_MSG(got > 0, "gemm case %d: gradient check failed", t);
    }
}

TEST(matmul_grad) {
    static const struct { int na; int64_t a[4]; int nb; int64_t b[4]; int no; int64_t o[4]; } cases[] = {
        {2, {3, 4}, 2, {4, 5}, 2, {3, 5}},
        {3, {2, 3, 4}, 2, {4, 5}, 3, {2, 3, 5}},           /* N-D x 2-D */
        {4, {2, 1, 3, 4}, 3, {3, 4, 2}, 4, {2, 3, 3, 2}},  /* batch broadcast both ways */
        {2, {3, 4}, 3, {2, 4, 5}, 3, {2, 3, 5}},           /* 2-D x N-D */
        {1, {4}, 2, {4, 5}, 1, {5}},                       /* vector x matrix */
        {3, {2, 3, 4}, 1, {4}, 2, {2, 3}},                 /* batch matrix x vector */
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        tg g;
        tg_init(&g, ADVEX_OP_MATMUL, 500 + t);
        int a = tg_val(&g, cases[t].a, cases[t].na, -1, 1), b = tg_val(&g, cases[t].b, cases[t].nb, -1, 1);
        tg_inputs(&g, IDS(a, b));
        ASSERT_OK(tg_plan(&g, 1));
        advex_value *o = &g.v[g.nd.out[0]];
        ASSERT_EQ_INT(o->ndim, cases[t].no);
        for (int d = 0; d < o->ndim; d++) ASSERT_EQ_INT(o->dims[d], cases[t].o[d]);
        int got = gradcheck(&g, 1, 1e-2, 1e-2, 0, 40);
        tg_free(&g);
        ASSERT_MSG(got > 0, "matmul case %zu: gradient check failed", t);
    }
    /* a known value: [[1,2],[3,4]] x [[5],[6]] = [[17],[39]] */
    tg g;
    tg_init(&g, ADVEX_OP_MATMUL, 1);
    int a = tg_val(&g, DIMS(2, 2), 0, 0), b = tg_val(&g, DIMS(2, 1), 0, 0);
    for (int i = 0; i < 4; i++) g.v[a].data[i] = (float)(i + 1);
    g.v[b].data[0] = 5; g.v[b].data[1] = 6;
    tg_inputs(&g, IDS(a, b));
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    float y0 = g.v[g.nd.out[0]].data[0], y1 = g.v[g.nd.out[0]].data[1];
    tg_free(&g);
    ASSERT_NEAR(y0, 17, 1e-5);
    ASSERT_NEAR(y1, 39, 1e-5);
}

/* ---- activations ---------------------------------------------------------------------------- */

TEST(activations_grad) {
    static const advex_op_type ops[] = {ADVEX_OP_RELU, ADVEX_OP_LEAKY_RELU, ADVEX_OP_SIGMOID,
                                        ADVEX_OP_TANH, ADVEX_OP_CLIP, ADVEX_OP_IDENTITY};
    for (size_t t = 0; t < sizeof ops / sizeof *ops; t++) {
        tg g;
        tg_init(&g, ops[t], 600 + t);
        int x = tg_val(&g, DIMS(3, 2, 5, 3), -2, 2);
        tg_inputs(&g, IDS(x));
        g.nd.a.alpha = 0.1f;
        g.nd.a.min = -0.3f;
        g.nd.a.max = 0.4f;
        ASSERT_OK(tg_plan(&g, 0));
        int got = gradcheck(&g, 0, 1e-3, 1e-2, 1, 60);
        /* known values at a few points */
        float xs[4] = {-1.5f, -0.2f, 0.3f, 1.0f}, ys[4];
        memcpy(g.v[x].data, xs, sizeof xs);
        tg_forward(&g, 0);
        memcpy(ys, g.v[g.nd.out[0]].data, sizeof ys);
        tg_free(&g);
        ASSERT_MSG(got > 0, "%s gradient check failed", advex_op_defs[ops[t]].name);
        for (int i = 0; i < 4; i++) {
            float z = xs[i], want = z;
            switch (ops[t]) {
            case ADVEX_OP_RELU: want = z > 0 ? z : 0; break;
            case ADVEX_OP_LEAKY_RELU: want = z > 0 ? z : 0.1f * z; break;
            case ADVEX_OP_SIGMOID: want = 1.0f / (1.0f + expf(-z)); break;
            case ADVEX_OP_TANH: want = tanhf(z); break;
            case ADVEX_OP_CLIP: want = fminf(fmaxf(z, -0.3f), 0.4f); break;
            default: break;
            }
            ASSERT_NEAR(ys[i], want, 1e-6);
        }
    }
}

/* SiLU (Sigmoid in mode 1, patterns.c): gradient and values; both modes against the libm
 * reference over a wide range (within 1e-6 relative; absolutely within 1e-37 where the
 * result is below 1e-31), and the vectorised exp against expf */
TEST(sigmoid_silu) {
    tg g;
    tg_init(&g, ADVEX_OP_SIGMOID, 650);
    int x = tg_val(&g, DIMS(3, 2, 5, 3), -4, 4);
    tg_inputs(&g, IDS(x));
    g.nd.a.mode = 1;
    ASSERT_OK(tg_plan(&g, 0));
    int got = gradcheck(&g, 0, 1e-3, 1e-2, 0, 60);
    tg_free(&g);
    ASSERT_MSG(got > 0, "SiLU gradient check failed");
    enum { N = 40000 };
    float *xs = zalloc(N), *ref = zalloc(N);
    for (int i = 0; i < N; i++) xs[i] = -120.0f + 240.0f * (float)i / N;
    xs[0] = -INFINITY;
    xs[1] = INFINITY;
    xs[2] = 0.0f;
    xs[3] = -0.0f;
    for (int mode = 0; mode < 2; mode++) {
        tg_init(&g, ADVEX_OP_SIGMOID, 651 + mode);
        int xi = tg_val(&g, DIMS(N), 0, 1);
        tg_inputs(&g, IDS(xi));
        g.nd.a.mode = mode;
        ASSERT_OK(tg_plan(&g, 0));
        memcpy(g.v[xi].data, xs, N * sizeof(float));
        tg_forward(&g, 0);
        advex_sigmoid_ref(ref, xs, N, mode);
        const float *y = g.v[g.nd.out[0]].data;
        double worst = 0;
        for (int i = 0; i < N; i++) {
            if (isnan(ref[i])) { /* SiLU at -Inf: -Inf * 0 */
                ASSERT(isnan(y[i]) || y[i] == 0.0f);
                continue;
            }
            /* relative, except below float's normal range (x < -87: 1 / (1 + e^-x) flushes to 0) */
            double e = fabs((double)y[i] - ref[i]) / (fabs(ref[i]) + 1e-31);
            if (e > worst) worst = e;
        }
        tg_free(&g);
        ASSERT_MSG(worst < 1e-6, "%s: relative error %g against libm", mode ? "SiLU" : "Sigmoid", worst);
    }
    free(xs);
    free(ref);
    /* advex_vexpf against expf: every 1021st float of [-104, 89], within 2 ulp */
    int64_t worst_ulp = 0;
    for (float v = -104.0f; v < 89.0f;) {
        float a = advex_vexpf(v), b = expf(v);
        int32_t ia, ib;
        memcpy(&ia, &a, sizeof ia);
        memcpy(&ib, &b, sizeof ib);
        int64_t d = isinf(a) && isinf(b) ? 0 : llabs((long long)ia - (long long)ib);
        ASSERT_MSG(d <= 2, "advex_vexpf(%.9g) = %.9g, expf %.9g", (double)v, (double)a, (double)b);
        if (d > worst_ulp) worst_ulp = d;
        /* the next float 1021 representable values up: a negative one's magnitude shrinks
         * (to +0 when it would cross zero), a positive one's grows; unsigned, so no overflow */
        uint32_t u;
        memcpy(&u, &v, sizeof u);
        if (u & 0x80000000u) u = (u & 0x7fffffffu) > 1021u ? u - 1021u : 0u;
        else u += 1021u;
        memcpy(&v, &u, sizeof u);
    }
    ASSERT(isnan(advex_vexpf(NAN)) && advex_vexpf(-INFINITY) == 0.0f && isinf(advex_vexpf(INFINITY)));
    ASSERT(isinf(advex_vexpf(89.0f)) && advex_vexpf(-104.0f) == 0.0f && advex_vexpf(0.0f) == 1.0f);
}

/* The vectorised GELU (forward and gradient) and contiguous-row softmax against their libm
 * references: GELU within 2e-6 |ref| + 1e-7 max(1, |x|) (both compute 1 + erf(x / sqrt 2)
 * in float, which for x below -3 keeps only float's absolute precision near -1), softmax
 * within 4e-6 relative of the double-precision form (x - max rounds in float: up to 2^-24 of
 * |x - max|, here up to 30, relative in e^(x - max)). */
TEST(vmath_kernels) {
    enum { N = 20000 };
    float *x = zalloc(N), *y = zalloc(N), *r = zalloc(N), *dy = zalloc(N), *dx = zalloc(N), *dr = zalloc(N);
    advex_rng rng;
    advex_rng_seed(&rng, 77);
    for (int i = 0; i < N; i++) {
        x[i] = -12.0f + 24.0f * (float)i / N;
        dy[i] = 2.0f * advex_rng_uniform(&rng) - 1.0f;
    }
    advex_gelu_kernel(y, x, N);
    advex_unary_kernel(ADVEX_OP_GELU, 0, 0, 0, r, x, N);
    double worst = 0;
#define GELU_ERR_(a, b, xv) (fabs((double)(a) - (b)) / (2e-6 * fabs(b) + 1e-7 * fmax(1.0, fabs(xv))))
    for (int i = 0; i < N; i++) worst = fmax(worst, GELU_ERR_(y[i], r[i], x[i]));
    ASSERT_MSG(worst <= 1, "Gelu: error %g of the tolerance against libm", worst);
    for (int write = 0; write < 2; write++) {
        for (int i = 0; i < N; i++) dx[i] = dr[i] = write ? NAN : 0.25f;
        advex_gelu_grad_kernel(dx, dy, x, N, write);
        advex_unary_backward_kernel(ADVEX_OP_GELU, 0, 0, 0, dr, dy, x, r, N, write);
        worst = 0;
        for (int i = 0; i < N; i++) worst = fmax(worst, GELU_ERR_(dx[i], dr[i], x[i]));
        ASSERT_MSG(worst <= 1, "Gelu gradient (write %d): error %g of the tolerance against libm", write, worst);
    }
    static const int64_t lens[] = {1, 7, 49, 197, 1000};
    for (size_t t = 0; t < sizeof lens / sizeof *lens; t++) {
        int64_t D = lens[t];
        for (int64_t k = 0; k < D; k++) x[k] = 30.0f * advex_rng_uniform(&rng) - 15.0f;
        advex_softmax_row(y, x, D);
        double mx = -INFINITY, s = 0;
        for (int64_t k = 0; k < D; k++) mx = fmax(mx, x[k]);
        for (int64_t k = 0; k < D; k++) s += exp((double)x[k] - mx);
        for (int64_t k = 0; k < D; k++) {
            double want = exp((double)x[k] - mx) / s;
            ASSERT_MSG(fabs(y[k] - want) <= 4e-6 * want + 1e-30, "softmax of %lld: element %lld is %.9g, want %.9g",
                       (long long)D, (long long)k, (double)y[k], want);
        }
    }
#undef GELU_ERR_
    free(x); free(y); free(r); free(dy); free(dx); free(dr);
}

/* ---- pools --------------------------------------------------------------------------------- */

typedef struct pool_cfg {
    int64_t N, C, H, W, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
    int ceil, include_pad;
} pool_cfg;

static const pool_cfg pool_cfgs[] = {
    {2, 3, 6, 6, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0},
    {2, 2, 7, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1}, /* pads, ceil, include pad */
    {1, 3, 5, 7, 3, 2, 2, 3, 1, 1, 1, 0, 0, 1, 1, 0}, /* asymmetric pads, ceil */
    {2, 2, 9, 8, 3, 3, 1, 2, 2, 2, 2, 1, 2, 1, 0, 1}, /* dilation (max only) */
    {2, 2, 5, 5, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1}, /* ceil drops a window starting in the pad */
    {2, 3, 7, 5, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0}, /* 2x2 s2, odd sizes: last row/col in no window */
    {2, 3, 7, 5, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 1, 0}, /* the same with ceil: partial windows */
};

static void pool_node(tg *g, advex_op_type op, const pool_cfg *k, uint64_t seed) {
    tg_init(g, op, seed);
    int x = tg_val(g, DIMS(k->N, k->C, k->H, k->W), -1, 1);
    tg_inputs(g, IDS(x));
    advex_attrs *a = &g->nd.a;
    a->kernel[0] = k->KH; a->kernel[1] = k->KW;
    a->stride[0] = k->SH; a->stride[1] = k->SW;
    a->dilation[0] = op == ADVEX_OP_MAXPOOL ? k->DH : 1;
    a->dilation[1] = op == ADVEX_OP_MAXPOOL ? k->DW : 1;
    a->pads[0] = k->PT; a->pads[1] = k->PL; a->pads[2] = k->PB; a->pads[3] = k->PR;
    a->ceil_mode = k->ceil;
    a->count_include_pad = k->include_pad;
}

TEST(pool_grad_and_ref) {
    for (size_t i = 0; i < sizeof pool_cfgs / sizeof *pool_cfgs; i++)
        for (int mx = 0; mx < 2; mx++) {
            const pool_cfg *k = &pool_cfgs[i];
            tg g;
            pool_node(&g, mx ? ADVEX_OP_MAXPOOL : ADVEX_OP_AVGPOOL, k, 700 + 2 * i + mx);
            ASSERT_OK(tg_plan(&g, 0));
            int got = gradcheck(&g, 0, 1e-3, 1e-2, mx, 60);
            advex_conv2d_p p = {.N = k->N, .C = k->C, .H = k->H, .W = k->W, .M = k->C, .G = 1, .KH = k->KH,
                                .KW = k->KW};
            ASSERT_OK(advex_window_geom(&p, &g.nd.a, "Pool", "t", 1));
            advex_value *o = &g.v[g.nd.out[0]];
            int64_t no = vnumel(o), nx = vnumel(&g.v[0]);
            ASSERT_EQ_INT(o->dims[2], p.OH);
            ASSERT_EQ_INT(o->dims[3], p.OW);
            float *ref = zalloc(no), *dx = zalloc(nx);
            tg_forward(&g, 0);
            for (int64_t j = 0; j < no; j++) o->grad[j] = advex_rng_uniform(&g.rng) - 0.5f;
            memset(g.v[0].grad, 0, (size_t)nx * sizeof(float));
            tg_backward(&g, 0);
            if (mx) {
                advex_maxpool2d_forward_ref(ref, g.v[0].data, &p);
                advex_maxpool2d_backward_ref(dx, o->grad, g.v[0].data, &p);
            } else {
                advex_avgpool2d_forward_ref(ref, g.v[0].data, &p, k->include_pad);
                advex_avgpool2d_backward_ref(dx, o->grad, &p, k->include_pad);
            }
            float ef = max_abs_diff(ref, o->data, no), eb = max_abs_diff(dx, g.v[0].grad, nx);
            free(ref);
            free(dx);
            tg_free(&g);
            ASSERT_MSG(got > 0, "pool config %zu (%s): gradient check failed", i, mx ? "max" : "avg");
            ASSERT_MSG(ef < 1e-5f && eb < 1e-5f, "pool config %zu (%s): fast vs ref fwd %g bwd %g", i,
                       mx ? "max" : "avg", ef, eb);
        }
}

TEST(pool_known_values) {
    /* MaxPool k2 s2 pad1 ceil on 5x5: ceil((5+2-2)/2)+1 = 4, but the 4th window would start in
     * the right padding and is dropped (PyTorch/ONNX) -> 3x3 */
    pool_cfg k = {1, 1, 5, 5, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0};
    tg g;
    pool_node(&g, ADVEX_OP_MAXPOOL, &k, 1);
    for (int i = 0; i < 25; i++) g.v[0].data[i] = (float)i;
    ASSERT_OK(tg_plan(&g, 0));
    ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[2], 3);
    ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[3], 3);
    tg_forward(&g, 0);
    static const float want_max[9] = {0, 2, 4, 10, 12, 14, 20, 22, 24};
    for (int i = 0; i < 9; i++) ASSERT_NEAR(g.v[g.nd.out[0]].data[i], want_max[i], 0);
    g.nd.a.ceil_mode = 0;
    ASSERT_OK(tg_plan(&g, 0));
    ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[2], 3);
    tg_free(&g);

    /* MaxPool ties -> the first max gets the gradient */
    pool_cfg kt = {1, 1, 2, 2, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0};
    pool_node(&g, ADVEX_OP_MAXPOOL, &kt, 1);
    for (int i = 0; i < 4; i++) g.v[0].data[i] = 1.0f;
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    g.v[g.nd.out[0]].grad[0] = 1.0f;
    tg_backward(&g, 0);
    ASSERT_NEAR(g.v[0].grad[0], 1, 0);
    ASSERT_NEAR(g.v[0].grad[1] + g.v[0].grad[2] + g.v[0].grad[3], 0, 0);
    tg_free(&g);

    /* AveragePool 3x3 s1 pad1 on ones(3x3): corner 4/9 with count_include_pad, 1 without */
    pool_cfg ka = {1, 1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1};
    for (int inc = 0; inc < 2; inc++) {
        ka.include_pad = inc;
        pool_node(&g, ADVEX_OP_AVGPOOL, &ka, 1);
        for (int i = 0; i < 9; i++) g.v[0].data[i] = 1.0f;
        ASSERT_OK(tg_plan(&g, 0));
        tg_forward(&g, 0);
        float corner = g.v[g.nd.out[0]].data[0], edge = g.v[g.nd.out[0]].data[1], mid = g.v[g.nd.out[0]].data[4];
        tg_free(&g);
        ASSERT_NEAR(corner, inc ? 4.0 / 9.0 : 1.0, 1e-6);
        ASSERT_NEAR(edge, inc ? 6.0 / 9.0 : 1.0, 1e-6);
        ASSERT_NEAR(mid, 1.0, 1e-6);
    }

    /* AveragePool k3 s2 ceil on arange(16) as 4x4, count_include_pad: the last window is
     * clipped to the input (PyTorch divisor rule): window (1,1) = mean(10,11,14,15) = 12.5 */
    pool_cfg kc = {1, 1, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1};
    pool_node(&g, ADVEX_OP_AVGPOOL, &kc, 1);
    for (int i = 0; i < 16; i++) g.v[0].data[i] = (float)i;
    ASSERT_OK(tg_plan(&g, 0));
    ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[2], 2);
    tg_forward(&g, 0);
    float last = g.v[g.nd.out[0]].data[3], first = g.v[g.nd.out[0]].data[0];
    tg_free(&g);
    ASSERT_NEAR(first, 5.0, 1e-5);
    ASSERT_NEAR(last, 12.5, 1e-5);
}

TEST(global_avgpool) {
    tg g;
    tg_init(&g, ADVEX_OP_GLOBAL_AVGPOOL, 800);
    int x = tg_val(&g, DIMS(3, 4, 3, 5), -1, 1);
    tg_inputs(&g, IDS(x));
    ASSERT_OK(tg_plan(&g, 0));
    advex_value *o = &g.v[g.nd.out[0]];
    ASSERT_EQ_INT(o->ndim, 4);
    ASSERT_EQ_INT(o->dims[1], 4);
    ASSERT_EQ_INT(o->dims[2], 1);
    tg_forward(&g, 0);
    double s = 0.0;
    for (int i = 0; i < 15; i++) s += g.v[x].data[15 + i];
    ASSERT_NEAR(o->data[1], s / 15.0, 1e-5);
    int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 40);
    tg_free(&g);
    ASSERT(got > 0);
}

/* ---- BatchNormalization ----------------------------------------------------------------------- */

static void bn_node(tg *g, int64_t N, int64_t C, int64_t H, int64_t W, uint64_t seed) {
    tg_init(g, ADVEX_OP_BATCHNORM, seed);
    int x = tg_val(g, DIMS(N, C, H, W), -1, 2);
    int sc = tg_val(g, DIMS(C), 0.5f, 1.5f), b = tg_val(g, DIMS(C), -0.5f, 0.5f);
    int mean = tg_val(g, DIMS(C), -0.3f, 0.3f), var = tg_val(g, DIMS(C), 0.5f, 1.5f);
    g->v[mean].kind = g->v[var].kind = ADVEX_VAL_STATE;
    tg_inputs(g, IDS(x, sc, b, mean, var));
    g->nd.a.epsilon = 1e-3f;
    g->nd.a.momentum = 0.8f;
}

TEST(batchnorm_eval) {
    tg g;
    bn_node(&g, 3, 4, 3, 2, 900);
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    /* y = scale (x - mean) / sqrt(var + eps) + B at one point: n=1, c=2, position 4 */
    int64_t i = (1 * 4 + 2) * 6 + 4;
    double want = g.v[1].data[2] * (g.v[0].data[i] - g.v[3].data[2]) / sqrt(g.v[4].data[2] + 1e-3) + g.v[2].data[2];
    ASSERT_NEAR(g.v[g.nd.out[0]].data[i], want, 1e-5);
    int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 30); /* incl. d/dmean and d/dvar */
    tg_free(&g);
    ASSERT(got > 0);
}

TEST(batchnorm_train) {
    tg g;
    int64_t N = 4, C = 3, S = 5;
    bn_node(&g, N, C, 1, S, 901);
    ASSERT_OK(tg_plan(&g, 1));
    ASSERT(g.aux_n >= 2 * C);
    float rm0[3], rv0[3];
    memcpy(rm0, g.v[3].data, sizeof rm0);
    memcpy(rv0, g.v[4].data, sizeof rv0);
    tg_forward(&g, 1);
    for (int64_t ch = 0; ch < C; ch++) {
        double s = 0, ss = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < S; k++) s += g.v[0].data[(n * C + ch) * S + k];
        double m = s / (double)(N * S);
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < S; k++) {
                double d = g.v[0].data[(n * C + ch) * S + k] - m;
                ss += d * d;
            }
        ASSERT_NEAR(g.v[3].data[ch], rm0[ch] * 0.8 + m * 0.2, 1e-5);
        ASSERT_NEAR(g.v[4].data[ch], rv0[ch] * 0.8 + ss / (double)(N * S - 1) * 0.2, 1e-5);
        /* output uses the batch statistics (biased variance) */
        double want = g.v[1].data[ch] * (g.v[0].data[ch * S] - m) / sqrt(ss / (double)(N * S) + 1e-3) + g.v[2].data[ch];
        ASSERT_NEAR(g.v[g.nd.out[0]].data[ch * S], want, 1e-5);
    }
    /* running statistics are not inputs of the train-mode output: no grads for them */
    free(g.v[3].grad);
    free(g.v[4].grad);
    g.v[3].grad = g.v[4].grad = NULL;
    int got = gradcheck(&g, 1, 1e-2, 2e-2, 0, 30);
    tg_free(&g);
    ASSERT_MSG(got > 0, "train-mode BatchNorm gradient (through batch statistics) failed");
}

/* ---- Dropout -------------------------------------------------------------------------------- */

TEST(dropout) {
    tg g;
    tg_init(&g, ADVEX_OP_DROPOUT, 1000);
    int x = tg_val(&g, DIMS(8, 50, 50), 0.5f, 1.5f);
    tg_inputs(&g, IDS(x));
    g.nd.a.ratio = 0.3f;
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    advex_value *o = &g.v[g.nd.out[0]];
    int64_t n = vnumel(o);
    ASSERT(max_abs_diff(o->data, g.v[x].data, n) == 0.0f);
    for (int64_t i = 0; i < n; i++) o->grad[i] = 1.0f + (float)(i % 7);
    tg_backward(&g, 0);
    ASSERT(max_abs_diff(o->grad, g.v[x].grad, n) == 0.0f);

    memset(g.v[x].grad, 0, (size_t)n * sizeof(float));
    ASSERT_OK(tg_plan(&g, 1));
    ASSERT(g.aux_n >= n);
    tg_forward(&g, 1);
    for (int64_t i = 0; i < n; i++) o->grad[i] = 1.0f + (float)(i % 7);
    tg_backward(&g, 1);
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; i++) {
        int dropped = o->data[i] == 0.0f;
        zeros += dropped;
        float wy = dropped ? 0.0f : g.v[x].data[i] / 0.7f, wg = dropped ? 0.0f : o->grad[i] / 0.7f;
        ASSERT_MSG(fabsf(o->data[i] - wy) <= 1e-5f && fabsf(g.v[x].grad[i] - wg) <= 1e-5f,
                   "element %lld: y %g (want %g), dx %g (want %g)", (long long)i, o->data[i], wy, g.v[x].grad[i], wg);
    }
    double rate = (double)zeros / (double)n;
    tg_free(&g);
    ASSERT_NEAR(rate, 0.3, 0.01);
}

/* ---- shape ops --------------------------------------------------------------------------------- */

TEST(flatten_reshape_transpose) {
    tg g;
    /* Flatten axis -1 and 0 */
    static const int64_t axes[3] = {-1, 0, 2};
    static const int64_t want[3][2] = {{24, 5}, {1, 120}, {6, 20}};
    for (int t = 0; t < 3; t++) {
        tg_init(&g, ADVEX_OP_FLATTEN, 1100 + t);
        int x = tg_val(&g, DIMS(2, 3, 4, 5), -1, 1);
        tg_inputs(&g, IDS(x));
        g.nd.a.axis = axes[t];
        ASSERT_OK(tg_plan(&g, 0));
        ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[0], want[t][0]);
        ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[1], want[t][1]);
        int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 20);
        tg_free(&g);
        ASSERT(got > 0);
    }
    /* Reshape (0, -1, 2) of (3,4,6) -> (3,12,2) */
    tg_init(&g, ADVEX_OP_RESHAPE, 1110);
    int x = tg_val(&g, DIMS(3, 4, 6), -1, 1);
    tg_inputs(&g, IDS(x));
    g.nd.a.n_ints = 3;
    g.nd.a.ints[0] = 0; g.nd.a.ints[1] = -1; g.nd.a.ints[2] = 2;
    ASSERT_OK(tg_plan(&g, 0));
    ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[1], 12);
    ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[2], 2);
    int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 20);
    ASSERT(got > 0);
    g.nd.a.ints[2] = 5; /* 72 not divisible by 3*5 */
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    ASSERT(strstr(advex_last_error(), "node_under_test") != NULL);
    tg_free(&g);

    /* Transpose perm (2,0,3,1) and the default reverse */
    for (int t = 0; t < 2; t++) {
        tg_init(&g, ADVEX_OP_TRANSPOSE, 1120 + t);
        x = tg_val(&g, DIMS(2, 3, 4, 5), -1, 1);
        tg_inputs(&g, IDS(x));
        if (t == 0) {
            g.nd.a.n_ints = 4;
            g.nd.a.ints[0] = 2; g.nd.a.ints[1] = 0; g.nd.a.ints[2] = 3; g.nd.a.ints[3] = 1;
        }
        ASSERT_OK(tg_plan(&g, 0));
        advex_value *o = &g.v[g.nd.out[0]];
        tg_forward(&g, 0);
        /* y[i0,i1,i2,i3] = x[j] with j[perm[d]] = i_d; check element y[1,1,2,0] */
        int64_t yi, xv;
        if (t == 0) { /* out (4,2,5,3): x[1,0,... ] with x idx (i1, i3, i0, i2) = (1,0,1,2) */
            ASSERT_EQ_INT(o->dims[0], 4); ASSERT_EQ_INT(o->dims[3], 3);
            yi = ((1 * 2 + 1) * 5 + 2) * 3 + 0;
            xv = ((1 * 3 + 0) * 4 + 1) * 5 + 2;
        } else { /* out (5,4,3,2): x idx (i3,i2,i1,i0) = (0,2,1,1) */
            ASSERT_EQ_INT(o->dims[0], 5); ASSERT_EQ_INT(o->dims[3], 2);
            yi = ((1 * 4 + 1) * 3 + 2) * 2 + 0;
            xv = ((0 * 3 + 2) * 4 + 1) * 5 + 1;
        }
        ASSERT_NEAR(o->data[yi], g.v[x].data[xv], 0);
        got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 30);
        tg_free(&g);
        ASSERT(got > 0);
    }
}

TEST(concat_pad) {
    tg g;
    static const int64_t axes[2] = {1, -1};
    for (int t = 0; t < 2; t++) {
        tg_init(&g, ADVEX_OP_CONCAT, 1200 + t);
        int a = t ? tg_val(&g, DIMS(2, 3, 2), -1, 1) : tg_val(&g, DIMS(2, 1, 4), -1, 1);
        int b = t ? tg_val(&g, DIMS(2, 3, 1), -1, 1) : tg_val(&g, DIMS(2, 3, 4), -1, 1);
        int c = t ? tg_val(&g, DIMS(2, 3, 3), -1, 1) : tg_val(&g, DIMS(2, 2, 4), -1, 1);
        tg_inputs(&g, IDS(a, b, c, a));
        g.nd.a.axis = axes[t];
        ASSERT_OK(tg_plan(&g, 0));
        advex_value *o = &g.v[g.nd.out[0]];
        ASSERT_EQ_INT(o->dims[t ? 2 : 1], t ? 8 : 7);
        tg_forward(&g, 0);
        if (t == 0) ASSERT_NEAR(o->data[(1 * 7 + 2) * 4 + 3], g.v[b].data[(1 * 3 + 1) * 4 + 3], 0);
        else ASSERT_NEAR(o->data[(1 * 3 + 2) * 8 + 2], g.v[b].data[1 * 3 + 2], 0);
        int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 30); /* a appears twice: grads add */
        tg_free(&g);
        ASSERT(got > 0);
    }
    tg_init(&g, ADVEX_OP_CONCAT, 1210);
    int a = tg_val(&g, DIMS(2, 3), 0, 1), b = tg_val(&g, DIMS(3, 3), 0, 1);
    tg_inputs(&g, IDS(a, b));
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    ASSERT(strstr(advex_last_error(), "Concat node_under_test") != NULL);
    tg_free(&g);

    /* Pad: begin (0,1,2,-1), end (1,0,-1,2) on (2,3,4,5) -> (3,4,5,6), value 0.25 */
    tg_init(&g, ADVEX_OP_PAD, 1220);
    int x = tg_val(&g, DIMS(2, 3, 4, 5), -1, 1);
    tg_inputs(&g, IDS(x));
    static const int64_t pads[8] = {0, 1, 2, -1, 1, 0, -1, 2};
    g.nd.a.n_ints = 8;
    memcpy(g.nd.a.ints, pads, sizeof pads);
    g.nd.a.pad_value = 0.25f;
    ASSERT_OK(tg_plan(&g, 0));
    advex_value *o = &g.v[g.nd.out[0]];
    ASSERT_EQ_INT(o->dims[0], 3); ASSERT_EQ_INT(o->dims[1], 4);
    ASSERT_EQ_INT(o->dims[2], 5); ASSERT_EQ_INT(o->dims[3], 6);
    tg_forward(&g, 0);
    /* y[n,c,h,w] = x[n, c-1, h-2, w+1] */
    ASSERT_NEAR(o->data[((1 * 4 + 2) * 5 + 3) * 6 + 0], g.v[x].data[((1 * 3 + 1) * 4 + 1) * 5 + 1], 0);
    ASSERT_NEAR(o->data[((1 * 4 + 0) * 5 + 3) * 6 + 0], 0.25, 0);  /* c pad */
    ASSERT_NEAR(o->data[((2 * 4 + 2) * 5 + 3) * 6 + 0], 0.25, 0);  /* n pad */
    ASSERT_NEAR(o->data[((1 * 4 + 2) * 5 + 3) * 6 + 5], 0.25, 0);  /* w pad */
    int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 40);
    tg_free(&g);
    ASSERT(got > 0);
}

/* ---- elementwise ------------------------------------------------------------------------------- */

TEST(elementwise_broadcast) {
    static const advex_op_type ops[4] = {ADVEX_OP_ADD, ADVEX_OP_SUB, ADVEX_OP_MUL, ADVEX_OP_DIV};
    static const struct { int na; int64_t a[4]; int nb; int64_t b[4]; int no; int64_t o[4]; } cases[] = {
        {3, {2, 3, 4}, 3, {2, 3, 4}, 3, {2, 3, 4}},
        {3, {2, 3, 4}, 2, {3, 1}, 3, {2, 3, 4}},
        {3, {2, 1, 4}, 2, {3, 1}, 3, {2, 3, 4}},
        {1, {1}, 4, {2, 3, 1, 2}, 4, {2, 3, 1, 2}},
        {4, {2, 3, 2, 2}, 4, {1, 3, 1, 1}, 4, {2, 3, 2, 2}}, /* per-channel normalisation */
        {2, {3, 2}, 0, {0}, 2, {3, 2}},                      /* scalar */
        {4, {2, 3, 5, 4}, 4, {2, 3, 1, 1}, 4, {2, 3, 5, 4}}, /* squeeze-excitation gate: one scalar per row */
        {2, {3, 9000}, 1, {9000}, 2, {3, 9000}},             /* long rows in chunks, b summed over rows */
        {2, {1, 9000}, 2, {3, 1}, 2, {3, 9000}},             /* each operand broadcast along the other's dim */
    };
    for (int op = 0; op < 4; op++)
        for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
            tg g;
            tg_init(&g, ops[op], 1300 + 10 * op + t);
            int a = tg_val(&g, cases[t].a, cases[t].na, -1, 1), b = tg_val(&g, cases[t].b, cases[t].nb, 0.5f, 1.5f);
            tg_inputs(&g, IDS(a, b));
            ASSERT_OK(tg_plan(&g, 0));
            advex_value *o = &g.v[g.nd.out[0]];
            ASSERT_EQ_INT(o->ndim, cases[t].no);
            for (int d = 0; d < o->ndim; d++) ASSERT_EQ_INT(o->dims[d], cases[t].o[d]);
            tg_forward(&g, 0);
            /* known value: the last element combines the last elements of both operands */
            float av = g.v[a].data[vnumel(&g.v[a]) - 1], bv = g.v[b].data[vnumel(&g.v[b]) - 1], want =
                ops[op] == ADVEX_OP_ADD ? av + bv : ops[op] == ADVEX_OP_SUB ? av - bv : ops[op] == ADVEX_OP_MUL ? av * bv : av / bv;
            ASSERT_NEAR(o->data[vnumel(o) - 1], want, 1e-6);
            int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 30);
            tg_free(&g);
            ASSERT_MSG(got > 0, "%s case %zu: gradient check failed", advex_op_defs[ops[op]].name, t);
        }
    /* Add(x, x): both gradients land in the same buffer */
    tg g;
    tg_init(&g, ADVEX_OP_MUL, 1399);
    int x = tg_val(&g, DIMS(3, 4), -1, 1);
    tg_inputs(&g, IDS(x, x));
    ASSERT_OK(tg_plan(&g, 0));
    int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 12);
    ASSERT(got > 0);
    tg_free(&g);
    tg_init(&g, ADVEX_OP_ADD, 1398);
    int a = tg_val(&g, DIMS(2, 3), 0, 1), b = tg_val(&g, DIMS(2, 4), 0, 1);
    tg_inputs(&g, IDS(a, b));
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    ASSERT(strstr(advex_last_error(), "node_under_test") != NULL);
    ASSERT(strstr(advex_last_error(), "(2,3)") != NULL);
    tg_free(&g);
}

/* ---- softmax ----------------------------------------------------------------------------------- */

TEST(softmax_grad) {
    static const int64_t axes[3] = {1, -1, 0};
    for (int lg = 0; lg < 2; lg++)
        for (int t = 0; t < 3; t++) {
            tg g;
            tg_init(&g, lg ? ADVEX_OP_LOG_SOFTMAX : ADVEX_OP_SOFTMAX, 1400 + 3 * lg + t);
            int x = tg_val(&g, DIMS(3, 4, 5), -3, 3);
            tg_inputs(&g, IDS(x));
            g.nd.a.axis = axes[t];
            ASSERT_OK(tg_plan(&g, 0));
            tg_forward(&g, 0);
            /* along the axis the probabilities sum to one */
            advex_value *o = &g.v[g.nd.out[0]];
            int ax = advex_norm_axis(axes[t], 3, 0);
            int64_t stride = ax == 2 ? 1 : ax == 1 ? 5 : 20;
            double s = 0.0;
            for (int64_t k = 0; k < o->dims[ax]; k++) s += lg ? exp(o->data[k * stride]) : o->data[k * stride];
            ASSERT_NEAR(s, 1.0, 1e-5);
            int got = gradcheck(&g, 0, 1e-2, 1e-2, 0, 30);
            tg_free(&g);
            ASSERT_MSG(got > 0, "%s axis %lld: gradient check failed", lg ? "LogSoftmax" : "Softmax",
                       (long long)axes[t]);
        }
    /* large logits stay finite */
    tg g;
    tg_init(&g, ADVEX_OP_LOG_SOFTMAX, 1410);
    int x = tg_val(&g, DIMS(1, 3), 0, 0);
    g.v[x].data[0] = 1000; g.v[x].data[1] = 0; g.v[x].data[2] = -1000;
    tg_inputs(&g, IDS(x));
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    float y0 = g.v[g.nd.out[0]].data[0], y1 = g.v[g.nd.out[0]].data[1];
    tg_free(&g);
    ASSERT_NEAR(y0, 0.0, 1e-6);
    ASSERT_NEAR(y1, -1000.0, 1e-3);
}

/* ---- opset 11+ scalar inputs in place of attributes ------------------------------------------ */

TEST(inputs_as_attributes) {
    tg g;
    /* Clip(x, min, max) with the bounds as scalar inputs; an absent min (-1) keeps -inf */
    tg_init(&g, ADVEX_OP_CLIP, 1500);
    int x = tg_val(&g, DIMS(4, 5), -2, 2), lo = tg_val(&g, NULL, 0, -0.5f, -0.5f), hi = tg_val(&g, NULL, 0, 0.25f, 0.25f);
    tg_inputs(&g, IDS(x, lo, hi));
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    for (int i = 0; i < 20; i++)
        ASSERT_NEAR(g.v[g.nd.out[0]].data[i], fminf(fmaxf(g.v[x].data[i], -0.5f), 0.25f), 0);
    free(g.v[lo].grad); /* the bounds are constants */
    free(g.v[hi].grad);
    g.v[lo].grad = g.v[hi].grad = NULL;
    int got = gradcheck(&g, 0, 1e-3, 1e-2, 1, 20);
    ASSERT(got > 0);
    g.in[1] = -1; /* absent min: -inf */
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    for (int i = 0; i < 20; i++) ASSERT_NEAR(g.v[g.nd.out[0]].data[i], fminf(g.v[x].data[i], 0.25f), 0);
    g.in[1] = lo;
    g.v[hi].data[0] = -3.0f; /* min > max */
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_ARG);
    tg_free(&g);

    /* Dropout(x, ratio) */
    tg_init(&g, ADVEX_OP_DROPOUT, 1501);
    x = tg_val(&g, DIMS(100, 100), 1, 2);
    int ratio = tg_val(&g, NULL, 0, 0.75f, 0.75f);
    tg_inputs(&g, IDS(x, ratio));
    ASSERT_OK(tg_plan(&g, 1));
    tg_forward(&g, 1);
    int64_t zeros = 0;
    for (int i = 0; i < 10000; i++) zeros += g.v[g.nd.out[0]].data[i] == 0.0f;
    ASSERT_NEAR((double)zeros / 10000.0, 0.75, 0.02);
    g.v[ratio].data[0] = 1.5f;
    ASSERT_STATUS(tg_plan(&g, 1), ADVEX_ERR_ARG);
    tg_free(&g);

    /* Reshape(x, shape) with the shape as a constant 1-D input */
    tg_init(&g, ADVEX_OP_RESHAPE, 1502);
    x = tg_val(&g, DIMS(2, 3, 4), -1, 1);
    int shp = tg_val(&g, DIMS(2), 0, 0);
    g.v[shp].data[0] = -1.0f;
    g.v[shp].data[1] = 6.0f;
    tg_inputs(&g, IDS(x, shp));
    ASSERT_OK(tg_plan(&g, 0));
    ASSERT_EQ_INT(g.v[g.nd.out[0]].ndim, 2);
    ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[0], 4);
    ASSERT_EQ_INT(g.v[g.nd.out[0]].dims[1], 6);
    tg_free(&g);
}

/* ---- shapes large enough for the OpenMP paths ------------------------------------------------- */

TEST(large_shapes_parallel) {
    /* conv: bias and dB loops above ADVEX_OMP_MIN */
    conv_cfg k = {3, 16, 24, 22, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2};
    tg g;
    conv_node(&g, &k, 1, 1600);
    ASSERT_OK(tg_plan(&g, 1));
    advex_conv2d_p p = {.N = k.N, .C = k.C, .H = k.H, .W = k.W, .M = k.M, .G = k.G, .KH = 3, .KW = 3};
    ASSERT_OK(advex_window_geom(&p, &g.nd.a, "Conv", "t", 0));
    advex_value *o = &g.v[g.nd.out[0]];
    int64_t no = vnumel(o), nx = vnumel(&g.v[0]), nw = vnumel(&g.v[1]);
    float *ref = zalloc(no), *dx = zalloc(nx), *dw = zalloc(nw), *db = zalloc(k.M);
    tg_forward(&g, 1);
    advex_conv2d_forward_ref(ref, g.v[0].data, g.v[1].data, g.v[2].data, &p);
    float ef = max_abs_diff(ref, o->data, no);
    for (int64_t j = 0; j < no; j++) o->grad[j] = advex_rng_uniform(&g.rng) - 0.5f;
    tg_backward(&g, 1);
    advex_conv2d_backward_ref(dx, dw, db, o->grad, g.v[0].data, g.v[1].data, &p);
    float ex = max_abs_diff(dx, g.v[0].grad, nx), ew = max_abs_diff(dw, g.v[1].grad, nw),
          eb = max_abs_diff(db, g.v[2].grad, k.M);
    free(ref); free(dx); free(dw); free(db);
    tg_free(&g);
    ASSERT_MSG(ef < 1e-4f && ex < 1e-4f && ew < 1e-3f && eb < 1e-3f, "large conv: fwd %g dx %g dw %g db %g", ef, ex,
               ew, eb);

    /* pools */
    pool_cfg pk = {4, 8, 33, 31, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int mx = 0; mx < 2; mx++) {
        pool_node(&g, mx ? ADVEX_OP_MAXPOOL : ADVEX_OP_AVGPOOL, &pk, 1610 + mx);
        ASSERT_OK(tg_plan(&g, 0));
        advex_conv2d_p pp = {.N = pk.N, .C = pk.C, .H = pk.H, .W = pk.W, .M = pk.C, .G = 1, .KH = 3, .KW = 3};
        ASSERT_OK(advex_window_geom(&pp, &g.nd.a, "Pool", "t", 1));
        o = &g.v[g.nd.out[0]];
        no = vnumel(o);
        nx = vnumel(&g.v[0]);
        ref = zalloc(no);
        dx = zalloc(nx);
        tg_forward(&g, 0);
        for (int64_t j = 0; j < no; j++) o->grad[j] = advex_rng_uniform(&g.rng) - 0.5f;
        tg_backward(&g, 0);
        if (mx) {
            advex_maxpool2d_forward_ref(ref, g.v[0].data, &pp);
            advex_maxpool2d_backward_ref(dx, o->grad, g.v[0].data, &pp);
        } else {
            advex_avgpool2d_forward_ref(ref, g.v[0].data, &pp, 1);
            advex_avgpool2d_backward_ref(dx, o->grad, &pp, 1);
        }
        ef = max_abs_diff(ref, o->data, no);
        ex = max_abs_diff(dx, g.v[0].grad, nx);
        free(ref);
        free(dx);
        tg_free(&g);
        ASSERT_MSG(ef < 1e-5f && ex < 1e-5f, "large %s pool: fwd %g bwd %g", mx ? "max" : "avg", ef, ex);
    }

    /* (N,C,H,W) - (1,C,1,1): full-size operand in parallel, broadcast one summed */
    tg_init(&g, ADVEX_OP_SUB, 1620);
    int a = tg_val(&g, DIMS(8, 3, 40, 40), -1, 1), b = tg_val(&g, DIMS(1, 3, 1, 1), -1, 1);
    tg_inputs(&g, IDS(a, b));
    ASSERT_OK(tg_plan(&g, 0));
    tg_forward(&g, 0);
    o = &g.v[g.nd.out[0]];
    no = vnumel(o);
    for (int64_t j = 0; j < no; j++) o->grad[j] = (float)(j % 5) - 2.0f;
    tg_backward(&g, 0);
    double want_db[3] = {0, 0, 0};
    float e = 0.0f;
    for (int64_t j = 0; j < no; j++) {
        int64_t ch = (j / 1600) % 3;
        want_db[ch] -= o->grad[j];
        e = fmaxf(e, fabsf(o->data[j] - (g.v[a].data[j] - g.v[b].data[ch])));
        e = fmaxf(e, fabsf(g.v[a].grad[j] - o->grad[j]));
    }
    for (int ch = 0; ch < 3; ch++) e = fmaxf(e, fabsf(g.v[b].grad[ch] - (float)want_db[ch]));
    tg_free(&g);
    ASSERT_MSG(e < 1e-3f, "large broadcast Sub: error %g", e);

    /* BatchNorm train on a large batch: each channel comes out with mean B and variance scale^2 */
    bn_node(&g, 16, 4, 24, 24, 1630);
    ASSERT_OK(tg_plan(&g, 1));
    tg_forward(&g, 1);
    o = &g.v[g.nd.out[0]];
    for (int ch = 0; ch < 4; ch++) { /* normalised output: per-channel mean B, variance ~scale^2 */
        double s = 0.0, ss = 0.0;
        for (int n = 0; n < 16; n++)
            for (int i = 0; i < 576; i++) {
                double y = o->data[(n * 4 + ch) * 576 + i];
                s += y;
                ss += y * y;
            }
        double m = s / (16 * 576), var = ss / (16 * 576) - m * m, sc = g.v[1].data[ch];
        ASSERT_NEAR(m, g.v[2].data[ch], 1e-4);
        ASSERT_NEAR(var, sc * sc, 0.01); /* x ~ U(-1,2): var 0.75 >> eps */
    }
    tg_free(&g);
}

/* ---- gradient write mode on the OpenMP paths ---------------------------------------------------- */

/* forward, a random output gradient, backward into zeroed grads, then check_write_mode */
static int write_check(tg *g, int train) {
    advex_value *o = &g->v[g->nd.out[0]];
    tg_forward(g, train);
    for (int64_t j = 0; j < vnumel(o); j++) o->grad[j] = advex_rng_uniform(&g->rng) - 0.5f;
    for (int k = 0; k < g->nd.n_in; k++)
        if (g->in[k] >= 0 && g->v[g->in[k]].grad)
            memset(g->v[g->in[k]].grad, 0, (size_t)vnumel(&g->v[g->in[k]]) * sizeof(float));
    tg_backward(g, train);
    return check_write_mode(g, train);
}

TEST(grad_write_large) {
    tg g;
    int got;
    /* MaxPool 2x2 s2 (odd width) and 3x3 padded, AveragePool: planes in parallel */
    static const pool_cfg pks[3] = {{4, 8, 34, 33, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0},
                                    {4, 8, 33, 31, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1},
                                    {4, 8, 33, 31, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1}};
    for (int t = 0; t < 3; t++) {
        pool_node(&g, t < 2 ? ADVEX_OP_MAXPOOL : ADVEX_OP_AVGPOOL, &pks[t], 1700 + t);
        ASSERT_OK(tg_plan(&g, 0));
        got = write_check(&g, 0);
        tg_free(&g);
        ASSERT_MSG(got == 1, "large pool %d: write mode differs from accumulate", t);
    }
    /* unary ops */
    static const advex_op_type un[] = {ADVEX_OP_RELU, ADVEX_OP_SIGMOID, ADVEX_OP_IDENTITY, ADVEX_OP_FLATTEN,
                                       ADVEX_OP_GLOBAL_AVGPOOL, ADVEX_OP_DROPOUT};
    for (size_t t = 0; t < sizeof un / sizeof *un; t++) {
        tg_init(&g, un[t], 1710 + t);
        int x = tg_val(&g, DIMS(8, 16, 16, 17), -1, 1);
        tg_inputs(&g, IDS(x));
        ASSERT_OK(tg_plan(&g, 1));
        got = write_check(&g, 1);
        tg_free(&g);
        ASSERT_MSG(got == 1, "large %s: write mode differs from accumulate", advex_op_defs[un[t]].name);
    }
    /* Add same shape; Sub and Mul with a per-channel broadcast operand */
    static const advex_op_type bin[] = {ADVEX_OP_ADD, ADVEX_OP_SUB, ADVEX_OP_MUL};
    for (int t = 0; t < 3; t++) {
        tg_init(&g, bin[t], 1720 + t);
        int a = tg_val(&g, DIMS(8, 3, 40, 40), -1, 1);
        int b = t == 0 ? tg_val(&g, DIMS(8, 3, 40, 40), -1, 1) : tg_val(&g, DIMS(1, 3, 1, 1), -1, 1);
        tg_inputs(&g, IDS(a, b));
        ASSERT_OK(tg_plan(&g, 0));
        got = write_check(&g, 0);
        tg_free(&g);
        ASSERT_MSG(got == 2, "large %s: write mode differs from accumulate", advex_op_defs[bin[t]].name);
    }
    /* BatchNorm eval (the attack path: X only, then with scale/B grads) and train */
    for (int t = 0; t < 3; t++) {
        bn_node(&g, 16, 4, 24, 24, 1730 + t);
        if (t == 0)
            for (int k = 1; k < 5; k++) { free(g.v[k].grad); g.v[k].grad = NULL; }
        if (t == 2)
            for (int k = 3; k < 5; k++) { free(g.v[k].grad); g.v[k].grad = NULL; }
        ASSERT_OK(tg_plan(&g, t == 2));
        got = write_check(&g, t == 2);
        tg_free(&g);
        ASSERT_MSG(got == (t == 0 ? 1 : 3), "large BatchNorm case %d: write mode differs from accumulate", t);
    }
    /* Gemm large enough for advex_sgemm's thread split */
    tg_init(&g, ADVEX_OP_GEMM, 1740);
    int a = tg_val(&g, DIMS(64, 300), -1, 1), b = tg_val(&g, DIMS(200, 300), -1, 1), c = tg_val(&g, DIMS(200), -1, 1);
    tg_inputs(&g, IDS(a, b, c));
    g.nd.a.trans_b = 1;
    ASSERT_OK(tg_plan(&g, 1));
    got = write_check(&g, 1);
    tg_free(&g);
    ASSERT_MSG(got == 3, "large Gemm: write mode differs from accumulate");
}

/* ---- shape inference errors ------------------------------------------------------------------ */

TEST(infer_errors) {
    tg g;
    /* conv kernel 5x5 on a 3x3 input without pads */
    conv_cfg k = {1, 2, 3, 3, 4, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1};
    conv_node(&g, &k, 1, 1);
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    ASSERT_MSG(strstr(advex_last_error(), "Conv node_under_test: kernel 5x5 larger than padded input 3x3"),
               "message: %s", advex_last_error());
    g.nd.a.pads[0] = g.nd.a.pads[1] = g.nd.a.pads[2] = g.nd.a.pads[3] = 1;
    ASSERT_OK(tg_plan(&g, 0));
    tg_free(&g);
    /* conv channels: weight expects 3 input channels, input has 2 */
    conv_cfg k2 = {1, 2, 5, 5, 4, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1};
    conv_node(&g, &k2, 0, 1);
    g.v[1].dims[1] = 3;
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    ASSERT(strstr(advex_last_error(), "node_under_test"));
    g.v[1].dims[1] = 2;
    g.v[0].ndim = 3; /* rank-3 input */
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    tg_free(&g);
    /* Gemm inner mismatch */
    tg_init(&g, ADVEX_OP_GEMM, 1);
    int a = tg_val(&g, DIMS(2, 3), 0, 1), b = tg_val(&g, DIMS(4, 5), 0, 1);
    tg_inputs(&g, IDS(a, b));
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    ASSERT(strstr(advex_last_error(), "Gemm node_under_test"));
    g.nd.a.trans_a = 1; /* (3,2)^T... still 2 vs 4 */
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    tg_free(&g);
    /* MatMul batch mismatch */
    tg_init(&g, ADVEX_OP_MATMUL, 1);
    a = tg_val(&g, DIMS(2, 3, 4), 0, 1);
    b = tg_val(&g, DIMS(3, 4, 5), 0, 1);
    tg_inputs(&g, IDS(a, b));
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    ASSERT(strstr(advex_last_error(), "MatMul node_under_test"));
    tg_free(&g);
    /* BatchNorm scale of the wrong size */
    bn_node(&g, 2, 3, 2, 2, 1);
    g.v[1].dims[0] = 4;
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    ASSERT(strstr(advex_last_error(), "BatchNormalization node_under_test"));
    tg_free(&g);
    /* MaxPool without a kernel, pool on a rank-2 input, bad softmax axis, bad transpose perm */
    pool_cfg pk = {1, 1, 4, 4, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    pool_node(&g, ADVEX_OP_MAXPOOL, &pk, 1);
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    ASSERT(strstr(advex_last_error(), "MaxPool node_under_test"));
    tg_free(&g);
    tg_init(&g, ADVEX_OP_SOFTMAX, 1);
    a = tg_val(&g, DIMS(2, 3), 0, 1);
    tg_inputs(&g, IDS(a));
    g.nd.a.axis = 2;
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    g.nd.a.axis = -2;
    ASSERT_OK(tg_plan(&g, 0));
    tg_free(&g);
    tg_init(&g, ADVEX_OP_TRANSPOSE, 1);
    a = tg_val(&g, DIMS(2, 3, 4), 0, 1);
    tg_inputs(&g, IDS(a));
    g.nd.a.n_ints = 3;
    g.nd.a.ints[0] = 0; g.nd.a.ints[1] = 0; g.nd.a.ints[2] = 1;
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    tg_free(&g);
    tg_init(&g, ADVEX_OP_PAD, 1);
    a = tg_val(&g, DIMS(2, 3), 0, 1);
    tg_inputs(&g, IDS(a));
    g.nd.a.n_ints = 2;
    ASSERT_STATUS(tg_plan(&g, 0), ADVEX_ERR_SHAPE);
    tg_free(&g);
}

TEST_MAIN_EACH_ISA(TEST_ENTRY(op_table), TEST_ENTRY(conv_grad), TEST_ENTRY(conv_fast_vs_ref),
          TEST_ENTRY(conv_auto_pad_and_accumulate), TEST_ENTRY(gemm_grad_and_ref), TEST_ENTRY(matmul_grad),
          TEST_ENTRY(activations_grad), TEST_ENTRY(sigmoid_silu), TEST_ENTRY(vmath_kernels), TEST_ENTRY(pool_grad_and_ref), TEST_ENTRY(pool_known_values),
          TEST_ENTRY(global_avgpool), TEST_ENTRY(batchnorm_eval), TEST_ENTRY(batchnorm_train),
          TEST_ENTRY(dropout), TEST_ENTRY(flatten_reshape_transpose), TEST_ENTRY(concat_pad),
          TEST_ENTRY(elementwise_broadcast), TEST_ENTRY(softmax_grad), TEST_ENTRY(inputs_as_attributes),
          TEST_ENTRY(large_shapes_parallel), TEST_ENTRY(grad_write_large), TEST_ENTRY(infer_errors))
