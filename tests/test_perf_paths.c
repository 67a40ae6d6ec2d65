/* The performance paths of src/ops against the portable reference kernels: batched-chunk
 * and row-tiled convolution at odd shapes, 1 thread vs 2 threads, the split sgemm, the
 * 2x2 max-pool fast path (ties), and the attack-mode BatchNorm backward. Every test runs
 * once per kernel variant this CPU supports (generic, avx2, avx512: ops/dispatch.h). */
#include <omp.h>
#include <stdlib.h>

#include "harness.h"
#include "ops/dispatch.h"

static float *rnd(int64_t n, advex_rng *r, float lo, float hi) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * advex_rng_uniform(r);
    return p;
}
static float *zeros(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }
static float maxdiff(const float *a, const float *b, int64_t n) {
    float e = 0.0f;
    for (int64_t i = 0; i < n; i++) e = fabsf(a[i] - b[i]) > e ? fabsf(a[i] - b[i]) : e;
    return e;
}

typedef struct { int64_t N, C, H, W, M, G, KH, KW, S, P, D; } cshape;

static const cshape shapes[] = {
    {7, 1, 28, 28, 16, 1, 4, 4, 2, 1, 1},  /* conv1 of small: many images per chunk, odd N */
    {3, 1, 28, 28, 32, 1, 5, 5, 1, 2, 1},  /* conv1 of cnn: few taps, stride 1 */
    {2, 2, 9, 7, 5, 1, 3, 3, 1, 0, 1},     /* few taps, stride 1, no padding, 5 output channels */
    {5, 3, 13, 11, 6, 1, 3, 3, 1, 1, 1},   /* odd sizes */
    {9, 4, 7, 7, 8, 2, 3, 3, 1, 1, 1},     /* groups, small planes */
    {3, 6, 9, 9, 5, 1, 1, 1, 1, 0, 1},     /* 1x1 direct, batched */
    {2, 3, 11, 10, 4, 1, 3, 3, 2, 2, 2},   /* stride 2, dilation 2, pad 2 */
    {1, 16, 90, 90, 4, 1, 3, 3, 1, 1, 1},  /* im2col > 4 MiB: row tiles */
    {2, 2, 300, 7, 3, 1, 1, 1, 1, 0, 1},   /* tall 1x1 */
    /* stride 2 through space-to-depth (even kernels): odd planes, pad 0 and 2, 2x2 */
    {3, 5, 15, 13, 6, 1, 4, 4, 2, 1, 1},
    {2, 3, 9, 10, 4, 1, 4, 4, 2, 0, 1},
    {2, 2, 11, 12, 3, 1, 2, 2, 2, 0, 1},
    {2, 4, 8, 9, 5, 1, 6, 6, 2, 2, 1},
    /* ... and odd kernels (no zero taps): resnet's 3x3/2 pad 1, odd planes, pad 0, 5x5 */
    {5, 16, 28, 28, 32, 1, 3, 3, 2, 1, 1},
    {3, 5, 15, 13, 6, 1, 3, 3, 2, 1, 1},
    {2, 3, 9, 10, 4, 1, 3, 3, 2, 0, 1},
    {2, 4, 13, 12, 5, 1, 5, 5, 2, 2, 1},
    /* ... past the direct path's 256 taps: the im2col + sgemm form (resnet's 32->64 3x3/2) */
    {3, 32, 14, 14, 64, 1, 3, 3, 2, 1, 1},
    {2, 17, 11, 9, 6, 1, 4, 4, 2, 1, 1},
    /* Winograd-eligible (stride 1, 3x3 / 5x5, >= 8 channels each side) */
    {3, 16, 14, 14, 32, 1, 5, 5, 1, 2, 1}, /* conv2 of cnn: F(2,5) */
    {4, 16, 28, 28, 16, 1, 3, 3, 1, 1, 1}, /* resnet stage 1: F(4,3) */
    {3, 9, 5, 4, 10, 1, 3, 3, 1, 1, 1},    /* tiny plane: F(2,3), partial tiles */
    {2, 8, 9, 11, 8, 1, 3, 3, 1, 0, 1},    /* no padding (valid), odd sizes */
    {2, 8, 12, 10, 9, 1, 5, 5, 1, 1, 1},   /* 5x5 with pad 1 */
    {1, 8, 30, 17, 8, 1, 3, 3, 1, 2, 1},   /* pad 2 on a 3x3 (= kernel - 1) */
};

static void geom(const cshape *s, advex_conv2d_p *p) {
    advex_attrs a;
    advex_attrs_default(&a);
    a.stride[0] = a.stride[1] = s->S;
    a.dilation[0] = a.dilation[1] = s->D;
    for (int i = 0; i < 4; i++) a.pads[i] = s->P;
    memset(p, 0, sizeof *p);
    p->N = s->N; p->C = s->C; p->H = s->H; p->W = s->W; p->M = s->M; p->G = s->G; p->KH = s->KH; p->KW = s->KW;
    advex_window_geom(p, &a, "Conv", "t", 0);
}

/* run the fast conv forward+backward with T threads; outputs into fresh buffers */
static void fast_conv(const advex_conv2d_p *p, int T, const float *x, const float *w, const float *b,
                      const float *dy, float **y, float **dx, float **dw, float **db) {
    int64_t no = p->N * p->M * p->OH * p->OW, nx = p->N * p->C * p->H * p->W, nw = p->M * (p->C / p->G) * p->KH * p->KW;
    int64_t sn = advex_conv2d_scratch(p, T);
    float *scratch = malloc((size_t)sn * sizeof(float));
    *y = zeros(no); *dx = zeros(nx); *dw = zeros(nw); *db = zeros(p->M);
    int keep = omp_get_max_threads();
    omp_set_num_threads(T);
    advex_conv2d_forward(*y, x, w, b, p, scratch, sn);
    advex_conv2d_backward(*dx, *dw, *db, dy, x, w, p, scratch, sn);
    omp_set_num_threads(keep);
    free(scratch);
}

TEST(conv_fast_paths_vs_ref) {
    advex_rng r;
    advex_rng_seed(&r, 42);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        advex_conv2d_p p;
        geom(&shapes[i], &p);
        int64_t no = p.N * p.M * p.OH * p.OW, nx = p.N * p.C * p.H * p.W, nw = p.M * (p.C / p.G) * p.KH * p.KW;
        float *x = rnd(nx, &r, -1, 1), *w = rnd(nw, &r, -0.5f, 0.5f), *b = rnd(p.M, &r, -0.5f, 0.5f),
              *dy = rnd(no, &r, -1, 1);
        float *ry = zeros(no), *rdx = zeros(nx), *rdw = zeros(nw), *rdb = zeros(p.M);
        advex_conv2d_forward_ref(ry, x, w, b, &p);
        advex_conv2d_backward_ref(rdx, rdw, rdb, dy, x, w, &p);
        float *y[2], *dx[2], *dw[2], *db[2];
        for (int t = 0; t < 2; t++) fast_conv(&p, t + 1, x, w, b, dy, &y[t], &dx[t], &dw[t], &db[t]);
        float tol = 1e-4f * (float)(p.C * p.KH * p.KW), tolw = 1e-4f * (float)(p.N * p.OH * p.OW);
        float e[2][4];
        for (int t = 0; t < 2; t++) {
            e[t][0] = maxdiff(ry, y[t], no);
            e[t][1] = maxdiff(rdx, dx[t], nx);
            e[t][2] = maxdiff(rdw, dw[t], nw);
            e[t][3] = maxdiff(rdb, db[t], p.M);
        }
        float e12 = maxdiff(y[0], y[1], no), e12x = maxdiff(dx[0], dx[1], nx);
        for (int t = 0; t < 2; t++) { free(y[t]); free(dx[t]); free(dw[t]); free(db[t]); }
        free(x); free(w); free(b); free(dy); free(ry); free(rdx); free(rdw); free(rdb);
        for (int t = 0; t < 2; t++)
            ASSERT_MSG(e[t][0] < tol && e[t][1] < tol && e[t][2] < tolw && e[t][3] < tolw,
                       "shape %zu, %d thread(s): fwd %g dx %g dw %g db %g", i, t + 1, e[t][0], e[t][1], e[t][2], e[t][3]);
        /* 1 vs 2 threads: only the sgemm blocking (chunk boundaries) differs: rounding only */
        ASSERT_MSG(e12 < 1e-5f * (float)(p.C * p.KH * p.KW) && e12x < 1e-5f * (float)(p.M * p.KH * p.KW), "shape %zu: 1 vs 2 threads differ (fwd %g dx %g)", i, e12, e12x);
    }
}

/* Winograd directly: taken for the eligible shapes, error relative to the output's scale
 * close to float rounding (forward, input gradient, weight gradient on 1 and 2 threads),
 * accumulate mode adds, and the gemm-only switch turns it off. */
TEST(winograd_vs_ref) {
    advex_rng r;
    advex_rng_seed(&r, 5);
    size_t first = 19; /* the Winograd-eligible shapes */
    for (size_t i = first; i < sizeof shapes / sizeof *shapes; i++) {
        advex_conv2d_p p;
        geom(&shapes[i], &p);
        ASSERT_MSG(advex_wino_forward_ok(&p) && advex_wino_backward_ok(&p), "shape %zu not eligible", i);
        int64_t no = p.N * p.M * p.OH * p.OW, nx = p.N * p.C * p.H * p.W, nw = p.M * p.C * p.KH * p.KW;
        float *x = rnd(nx, &r, 0, 1), *w = rnd(nw, &r, -0.5f, 0.5f), *b = rnd(p.M, &r, -0.5f, 0.5f),
              *dy = rnd(no, &r, -1, 1);
        float *ry = zeros(no), *rdx = zeros(nx), *y = zeros(no), *dx = rnd(nx, &r, -1, 1), *dx0 = zeros(nx);
        memcpy(dx0, dx, (size_t)nx * sizeof(float));
        advex_conv2d_forward_ref(ry, x, w, b, &p);
        advex_conv2d_backward_ref(rdx, NULL, NULL, dy, x, w, &p);
        for (int64_t k = 0; k < nx; k++) rdx[k] += dx0[k];
        int64_t sn = advex_wino_scratch(&p, 2);
        float *scratch = malloc((size_t)sn * sizeof(float));
        int keep = omp_get_max_threads();
        omp_set_num_threads(2);
        int okf = advex_wino_forward(y, x, w, NULL, b, &p, scratch, sn);
        int okb = advex_wino_backward_data(dx, dy, w, NULL, &p, 1, scratch, sn);
        omp_set_num_threads(keep);
        float sy = 0.0f, sx = 0.0f; /* scales: largest reference magnitude */
        for (int64_t k = 0; k < no; k++) sy = fabsf(ry[k]) > sy ? fabsf(ry[k]) : sy;
        for (int64_t k = 0; k < nx; k++) sx = fabsf(rdx[k]) > sx ? fabsf(rdx[k]) : sx;
        float ey = maxdiff(y, ry, no) / sy, ex = maxdiff(dx, rdx, nx) / sx;
        /* weight gradient: adds into dw; 1 and 2 threads */
        float *rdw = zeros(nw), *dw0 = rnd(nw, &r, -1, 1), *dw = zeros(nw), sw = 0.0f, ew = 0.0f;
        advex_conv2d_backward_ref(NULL, rdw, NULL, dy, x, w, &p);
        for (int64_t k = 0; k < nw; k++) sw = fabsf(rdw[k]) > sw ? fabsf(rdw[k]) : sw;
        for (int64_t k = 0; k < nw; k++) rdw[k] += dw0[k];
        int64_t swn = advex_wino_dw_scratch(&p, 2);
        float *sw_scratch = malloc((size_t)swn * sizeof(float));
        int okw = 1;
        for (int t = 1; t <= 2; t++) {
            memcpy(dw, dw0, (size_t)nw * sizeof(float));
            omp_set_num_threads(t);
            okw &= advex_wino_backward_weights(dw, dy, x, &p, sw_scratch, swn);
            float e = maxdiff(dw, rdw, nw) / sw;
            ew = e > ew ? e : ew;
        }
        omp_set_num_threads(keep);
        free(rdw); free(dw0); free(dw); free(sw_scratch);
        ASSERT_MSG(okw && ew < 1e-5f, "shape %zu: Winograd weight gradient (taken %d) relative error %g", i, okw, ew);
        /* precise (the conv feeds a max-pool): F(2,3) forward, an order of magnitude closer */
        p.algo = ADVEX_CONV_PRECISE;
        advex_wino_forward(y, x, w, NULL, b, &p, scratch, sn);
        float ep = maxdiff(y, ry, no) / sy;
        p.algo = ADVEX_CONV_GEMM;
        int off = advex_wino_forward_ok(&p) || advex_wino_forward(y, x, w, NULL, b, &p, scratch, sn);
        free(x); free(w); free(b); free(dy); free(ry); free(rdx); free(y); free(dx); free(dx0); free(scratch);
        ASSERT_MSG(okf && okb, "shape %zu: Winograd declined (%d %d)", i, okf, okb);
        ASSERT_MSG(ey < 1e-5f && ex < 1e-5f, "shape %zu: relative error fwd %g dx %g", i, ey, ex);
        ASSERT_MSG(!off, "shape %zu: ADVEX_CONV_GEMM did not turn Winograd off", i);
        ASSERT_MSG(ep < (p.KH == 3 ? 5e-7f : 2e-6f), "shape %zu: precise forward relative error %g", i, ep);
    }
}

/* The stride-2 path's fused ReLU mask (p->dmask, set by a Conv whose Relu hands it its
 * gradient): dx and dW equal the reference's on dY * [mask > 0], on the direct and the
 * im2col paths, 1 and 2 threads. */
TEST(conv_s2_relu_mask_vs_ref) {
    advex_rng r;
    advex_rng_seed(&r, 13);
    int checked = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        advex_conv2d_p p;
        geom(&shapes[i], &p);
        if (!advex_conv_s2_ok(&p)) continue;
        int64_t no = p.N * p.M * p.OH * p.OW, nx = p.N * p.C * p.H * p.W, nw = p.M * p.C * p.KH * p.KW;
        float *x = rnd(nx, &r, -1, 1), *w = rnd(nw, &r, -0.5f, 0.5f), *dy = rnd(no, &r, -1, 1);
        float *mask = rnd(no, &r, -1, 1), *dym = zeros(no), *rdx = zeros(nx), *rdw = zeros(nw);
        for (int64_t k = 0; k < no; k++) dym[k] = mask[k] > 0.0f ? dy[k] : 0.0f;
        advex_conv2d_backward_ref(rdx, rdw, NULL, dym, x, w, &p);
        for (int t = 1; t <= 2; t++) {
            int64_t sn = advex_conv2d_scratch(&p, t);
            float *scratch = malloc((size_t)sn * sizeof(float)), *dx = zeros(nx), *dw = zeros(nw);
            advex_conv2d_p pm = p;
            pm.dmask = mask;
            int keep = omp_get_max_threads();
            omp_set_num_threads(t);
            int ok = advex_conv_s2_backward(dx, dw, dy, x, w, &pm, scratch, sn, 1);
            omp_set_num_threads(keep);
            float ex = maxdiff(rdx, dx, nx), ew = maxdiff(rdw, dw, nw);
            free(scratch); free(dx); free(dw);
            ASSERT_MSG(ok, "shape %zu: stride-2 path not taken", i);
            ASSERT_MSG(ex < 1e-4f * (float)(p.M * p.KH * p.KW) && ew < 1e-4f * (float)(p.N * p.OH * p.OW),
                       "shape %zu, %d thread(s): masked dx %g dW %g", i, t, ex, ew);
        }
        free(x); free(w); free(dy); free(mask); free(dym); free(rdx); free(rdw);
        checked++;
    }
    ASSERT_MSG(checked >= 8, "only %d stride-2 shapes", checked);
}

TEST(conv_scratch_limits_threads) {
    /* scratch for one thread only: the kernel must fall back to one thread, not overrun */
    advex_rng r;
    advex_rng_seed(&r, 7);
    advex_conv2d_p p;
    geom(&shapes[1], &p);
    int64_t no = p.N * p.M * p.OH * p.OW, nx = p.N * p.C * p.H * p.W, nw = p.M * p.C * p.KH * p.KW;
    int64_t sn = advex_conv2d_scratch(&p, 1);
    float *x = rnd(nx, &r, -1, 1), *w = rnd(nw, &r, -1, 1), *y = zeros(no), *ry = zeros(no);
    float *scratch = malloc((size_t)(sn + 1) * sizeof(float));
    scratch[sn] = 12345.0f;
    int keep = omp_get_max_threads();
    omp_set_num_threads(4);
    advex_conv2d_forward(y, x, w, NULL, &p, scratch, sn);
    omp_set_num_threads(keep);
    advex_conv2d_forward_ref(ry, x, w, NULL, &p);
    float e = maxdiff(y, ry, no), guard = scratch[sn];
    free(x); free(w); free(y); free(ry); free(scratch);
    ASSERT_MSG(e < 1e-3f, "fwd error %g", e);
    ASSERT_NEAR(guard, 12345.0f, 0);
}

TEST(sgemm_split_vs_ref) {
    advex_rng r;
    advex_rng_seed(&r, 9);
    static const int64_t dims[][3] = {{257, 129, 65}, {3, 1031, 517}, {700, 5, 401}, {64, 64, 300}};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t M = dims[i][0], N = dims[i][1], K = dims[i][2];
                float *a = rnd(M * K, &r, -1, 1), *b = rnd(K * N, &r, -1, 1), *c = rnd(M * N, &r, -1, 1);
                float *c2 = malloc((size_t)(M * N) * sizeof(float));
                memcpy(c2, c, (size_t)(M * N) * sizeof(float));
                int keep = omp_get_max_threads();
                omp_set_num_threads(2);
                advex_sgemm(ta, tb, M, N, K, 0.5f, a, ta ? M : K, b, tb ? K : N, 0.25f, c, N);
                omp_set_num_threads(keep);
                advex_gemm_ref(c2, a, b, M, N, K, ta, tb, 0.5f, 0.25f);
                float e = maxdiff(c, c2, M * N);
                free(a); free(b); free(c); free(c2);
                ASSERT_MSG(e < 1e-3f, "sgemm %lldx%lldx%lld ta %d tb %d: error %g", (long long)M, (long long)N,
                           (long long)K, ta, tb, e);
            }
}

TEST(maxpool_2x2_fast_vs_ref) {
    advex_rng r;
    advex_rng_seed(&r, 11);
    static const int64_t hw[][2] = {{28, 28}, {7, 9}, {14, 15}};
    for (size_t s = 0; s < sizeof hw / sizeof *hw; s++) {
        advex_attrs a;
        advex_attrs_default(&a);
        a.kernel[0] = a.kernel[1] = 2;
        a.stride[0] = a.stride[1] = 2;
        advex_conv2d_p p = {.N = 3, .C = 5, .H = hw[s][0], .W = hw[s][1], .M = 5, .G = 1, .KH = 2, .KW = 2};
        ASSERT_OK(advex_window_geom(&p, &a, "MaxPool", "t", 1));
        int64_t nx = p.N * p.C * p.H * p.W, no = p.N * p.C * p.OH * p.OW;
        float *x = rnd(nx, &r, -1, 1);
        for (int64_t i = 0; i < nx; i += 3) x[i] = 0.5f; /* ties: the first maximum wins */
        float *y = zeros(no), *ry = zeros(no), *dy = rnd(no, &r, -1, 1), *dx = zeros(nx), *rdx = zeros(nx);
        int32_t *am = malloc((size_t)no * sizeof(int32_t));
        advex_maxpool2d_forward(y, am, x, &p);
        advex_maxpool2d_backward(dx, dy, am, x, &p);
        advex_maxpool2d_forward_ref(ry, x, &p);
        advex_maxpool2d_backward_ref(rdx, dy, x, &p);
        float e = maxdiff(y, ry, no), ex = maxdiff(dx, rdx, nx);
        free(x); free(y); free(ry); free(dy); free(dx); free(rdx); free(am);
        ASSERT_MSG(e == 0.0f && ex == 0.0f, "maxpool %zu: fwd %g dx %g", s, e, ex);
    }
}

/* The dispatch point: generic always exists, the variant in use is one this CPU runs and
 * advex_kernel_isa names it, and forcing one this CPU (or build) lacks changes nothing. */
TEST(isa_dispatch) {
    advex_isa cur = advex_isa_active();
    ASSERT(advex_isa_available(ADVEX_ISA_GENERIC));
    ASSERT(advex_isa_available(cur));
    ASSERT(strcmp(advex_kernel_isa(), advex_isa_str(cur)) == 0);
    for (int i = 0; i <= ADVEX_ISA_COUNT; i++)
        if (!advex_isa_available((advex_isa)i)) {
            ASSERT(!advex_isa_force((advex_isa)i));
            ASSERT_EQ_INT(advex_isa_active(), cur);
        }
}

TEST_MAIN_EACH_ISA(TEST_ENTRY(isa_dispatch), TEST_ENTRY(conv_fast_paths_vs_ref), TEST_ENTRY(winograd_vs_ref), TEST_ENTRY(conv_s2_relu_mask_vs_ref), TEST_ENTRY(conv_scratch_limits_threads), TEST_ENTRY(sgemm_split_vs_ref),
          TEST_ENTRY(maxpool_2x2_fast_vs_ref))
