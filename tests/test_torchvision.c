/* PyTorch parity on torchvision's ImageNet classifiers: 13 models with random weights,
 * exported at opset 13 by tools/make_torchvision_fixtures.py into the build directory (the
 * torchvision_fixtures ctest makes them, cached), each loaded and run here on a batch of 2
 * at 224x224 in [0,1]:
 *   logits:   max |z - z_torch| <= 1e-4 * max |z_torch| for each example (relative to the
 *             example's logit scale);
 *   gradient of the summed cross-entropy with respect to the input: per example,
 *             max |g - g_torch| <= 1e-3 * s with s = max |g_torch| (its scale);
 *   FGSM signs: sign(g) == sign(g_torch) (sign(0) = 0) everywhere except where the
 *             gradient is at float32's noise floor, |g_torch| <= SIGN_TAU * s: there the two
 *             float32 computations, summing in different orders, may round either way.
 * One line per model (loads, max relative logit error, gradient error, sign agreement) is
 * printed for the README table. ADVEX_TORCHVISION_DIR names the fixture directory (default
 * ./torchvision); test names on the command line, or ADVEX_TORCHVISION_MODELS, pick
 * models. Without torchvision (the generator's torch-missing marker) it fails, saying so:
 * the test command installs python3-torchvision, so a missing peer is a broken set-up, not
 * a reason to pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

#define BATCH 2
#define LOGIT_RTOL 1e-4
#define GRAD_COS 0.999
#define SIGN_TAU 1e-4 /* noise floor: a sign may differ where |g_torch| <= SIGN_TAU * max |g_torch| */

static const char *dir(void) {
    const char *d = getenv("ADVEX_TORCHVISION_DIR");
    return d && *d ? d : "torchvision";
}

static const char *path(const char *model, const char *file) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    if (model) snprintf(buf[k], sizeof buf[k], "%s/%s/%s", dir(), model, file);
    else snprintf(buf[k], sizeof buf[k], "%s/%s", dir(), file);
    return buf[k];
}

/* Kinks. Where a unit's input lies within float32 noise of a kink (ReLU and LeakyRelu at 0,
 * Clip at its bounds, HardSigmoid/HardSwish at theirs, a max-pool window whose two largest
 * inputs nearly tie), PyTorch and advex, summing in different orders, may take different
 * sides, and the input gradient then differs by that unit's contribution: the gradient
 * reaching the unit times the jump in its derivative, carried back to the input. This
 * computes those contributions, summed, into dev (n*d): one backward pass over an unfused
 * plan (every pre-activation visible, every gradient its own buffer) gives the gradient at
 * each unit; a second, seeded with (gradient x jump) at every near-kink unit (max-pool: +g at
 * one candidate, -g at the other), carries them to the input. Near: within KINK_RTOL of the
 * largest magnitude in that tensor (rounding noise scales with the activations, not with the
 * value). Seeds go in KINK_GROUPS backward passes whose |results| add, so that nearby
 * contributions of opposite signs cancel less. Returns the number of near-kink units, -1 on
 * error. Clears the net's fusion marks:
 * the model must not run again. */
#define KINK_RTOL 1e-5
#define KINK_GROUPS 8
#define KINK_SLACK 2.0 /* a kink may move the gradient by up to twice its estimated contribution */
typedef struct seed { int v; int64_t at; float g; int64_t unit; } seed; /* unit: near-kink unit number */

static int near(float x, float k, float tol) { return fabsf(x - k) <= tol; }

/* The near-kink units of node nd: seeds (value, element, amount) into s (capacity cap). */
static int64_t node_kinks(const advex_node *nd, const advex_value *v, seed *s, int64_t cap, int64_t ns,
                          int64_t *units) {
    const advex_value *in = &v[nd->in[0]], *out = &v[nd->out[0]];
    int64_t n = advex_numel(in->ndim, in->dims);
    float scale = 0.0f, tol;
    for (int64_t q = 0; q < n; q++) scale = fmaxf(scale, fabsf(in->data[q]));
    tol = (float)KINK_RTOL * scale;
    if (nd->op == ADVEX_OP_MAXPOOL) {
        int64_t NC = in->dims[0] * in->dims[1], H = in->dims[2], W = in->dims[3], OH = out->dims[2], OW = out->dims[3];
        for (int64_t o = 0; o < NC * OH * OW; o++) {
            int64_t c = o / (OH * OW), oh = o / OW % OH, ow = o % OW, pb = -1, ps = -1;
            float best = -INFINITY, second = -INFINITY;
            for (int64_t kh = 0; kh < nd->a.kernel[0]; kh++)
                for (int64_t kw = 0; kw < nd->a.kernel[1]; kw++) {
                    int64_t h = oh * nd->a.stride[0] - nd->a.pads[0] + kh * nd->a.dilation[0];
                    int64_t w = ow * nd->a.stride[1] - nd->a.pads[1] + kw * nd->a.dilation[1];
                    if (h < 0 || h >= H || w < 0 || w >= W) continue;
                    int64_t at = (c * H + h) * W + w;
                    if (in->data[at] > best) { second = best; ps = pb; best = in->data[at]; pb = at; }
                    else if (in->data[at] > second) { second = in->data[at]; ps = at; }
                }
            if (ps < 0 || best - second > tol || (best == 0.0f && second == 0.0f) || ns + 2 > cap) continue;
            s[ns] = (seed){nd->in[0], pb, out->grad[o], *units};
            s[ns + 1] = (seed){nd->in[0], ps, -out->grad[o], (*units)++};
            ns += 2;
        }
        return ns;
    }
    for (int64_t q = 0; q < n && ns < cap; q++) {
        float x = in->data[q], jump = 0.0f;
        switch (nd->op) {
        case ADVEX_OP_RELU: jump = near(x, 0, tol) ? 1.0f : 0.0f; break;
        case ADVEX_OP_LEAKY_RELU: jump = near(x, 0, tol) ? 1.0f - nd->a.alpha : 0.0f; break;
        case ADVEX_OP_CLIP: jump = near(x, nd->a.min, tol) || near(x, nd->a.max, tol) ? 1.0f : 0.0f; break;
        case ADVEX_OP_HARD_SIGMOID:
            jump = near(nd->a.alpha * x + nd->a.beta, 0, tol) || near(nd->a.alpha * x + nd->a.beta, 1, tol) ? nd->a.alpha : 0;
            break;
        case ADVEX_OP_HARD_SWISH: jump = near(x, -3, tol) || near(x, 3, tol) ? 0.5f : 0.0f; break;
        default: return ns;
        }
        if (jump != 0.0f) s[ns++] = (seed){nd->in[0], q, jump * out->grad[q], (*units)++};
    }
    return ns;
}

static void zero_grads(advex_plan *pl) {
    for (int v = 0; v < pl->net->g.n_vals; v++)
        if (pl->v[v].grad && (pl->v[v].kind == ADVEX_VAL_ACT || pl->v[v].kind == ADVEX_VAL_INPUT))
            memset(pl->v[v].grad, 0, (size_t)advex_numel(pl->v[v].ndim, pl->v[v].dims) * sizeof(float));
}

static int64_t kink_deviation(advex_model *m, const float *x, const float *dlogits, int64_t n, float *dev) {
    advex_graph *g = &m->net->g;
    advex_plan *pl = NULL;
    int64_t ns = 0, cap = 1 << 22, units = 0;
    int last = -1;
    seed *s = malloc((size_t)cap * sizeof *s);
    for (int k = 0; k < g->n_nodes; k++) { /* unfused: no folded BatchNorm, fused Relu or shared buffer */
        advex_node *nd = &g->nodes[k];
        nd->fold = nd->relu_out = nd->relu_fused = nd->fold_relu = nd->relu_mask = nd->alias_data = nd->alias_grad = 0;
    }
    if (!s || advex_plan_new(m->net, &pl)) { free(s); return -1; }
    pl->grad_noshare = pl->no_grad_write = 1;
    if (advex_plan_images(pl, n, 0, 1) || advex_plan_forward(pl, x) || advex_plan_backward(pl, dlogits)) {
        advex_plan_free(pl);
        free(s);
        return -1;
    }
    for (int k = 0; k < g->n_nodes; k++) {
        int64_t before = ns;
        ns = node_kinks(&g->nodes[k], pl->v, s, cap, ns, &units);
        if (ns > before) last = k;
    }
    /* seeds in KINK_GROUPS passes (seed j in pass j % KINK_GROUPS), |result| summed: nearby
     * contributions of opposite signs do not cancel each other as much as in one pass */
    const advex_value *xin = &pl->v[g->input];
    int64_t ni = advex_numel(xin->ndim, xin->dims);
    memset(dev, 0, (size_t)ni * sizeof *dev);
    advex_op_ctx ctx = {0, &pl->rng, pl->scratch, pl->scratch_n, NULL, 0};
    for (int grp = 0; grp < KINK_GROUPS && ns > 0; grp++) {
        zero_grads(pl);
        for (int64_t j = 0; j < ns; j++)
            if (s[j].unit % KINK_GROUPS == grp) pl->v[s[j].v].grad[s[j].at] += s[j].g;
        for (int k = last - 1; k >= 0; k--) { /* from the deepest kink down to the input */
            ctx.aux = pl->aux[k];
            ctx.aux_n = pl->aux_n[k];
            advex_op_defs[g->nodes[k].op].backward(&g->nodes[k], pl->v, &ctx);
        }
        for (int64_t k = 0; k < ni; k++) dev[k] += fabsf(xin->grad[k]);
    }
    advex_plan_free(pl);
    free(s);
    return units;
}

typedef struct stats {
    double zerr, gerr, gerr_k, cos_min;        /* logits and gradient errors (gerr_k: beyond kinks) */
    int64_t agree, flips, unexplained, by_kink, zero_logits;
} stats;

/* Compare logits z (n, c) and gradients g (n, d) with PyTorch's; dev: the kink contributions
 * (kink_deviation), or NULL before they are computed. */
static stats compare(const float *z, const float *wz, const float *g, const float *wg, const float *dev, int64_t n,
                     int64_t c, int64_t d) {
    stats t = {0, 0, 0, 1, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        double zs = 0, ze = 0, gs = 0, ge = 0, gek = 0, dot = 0, na = 0, nb = 0;
        for (int64_t k = 0; k < c; k++) {
            zs = fmax(zs, fabs((double)wz[i * c + k]));
            ze = fmax(ze, fabs((double)z[i * c + k] - wz[i * c + k]));
        }
        t.zero_logits += !(zs > 0);
        t.zerr = fmax(t.zerr, ze / fmax(zs, 1e-30));
        for (int64_t k = 0; k < d; k++) gs = fmax(gs, fabs((double)wg[i * d + k]));
        for (int64_t k = 0; k < d; k++) {
            double a = g[i * d + k], b = wg[i * d + k], slack = dev ? KINK_SLACK * dev[i * d + k] : 0.0;
            int sa = (a > 0) - (a < 0), sb = (b > 0) - (b < 0);
            ge = fmax(ge, fabs(a - b));
            gek = fmax(gek, fabs(a - b) - slack);
            dot += a * b;
            na += a * a;
            nb += b * b;
            if (sa == sb) { t.agree++; continue; }
            t.flips++;
            if (fabs(b) <= SIGN_TAU * gs) continue; /* the noise floor */
            if (fabs(b) <= slack) t.by_kink++;
            else t.unexplained++;
        }
        t.gerr = fmax(t.gerr, ge / fmax(gs, 1e-30));
        t.gerr_k = fmax(t.gerr_k, gek / fmax(gs, 1e-30));
        t.cos_min = fmin(t.cos_min, dot / fmax(sqrt(na * nb), 1e-300));
    }
    return t;
}

static void check(const char *name) {
    advex_model *m = NULL;
    float *x = NULL, *want_z = NULL, *want_g = NULL, *sgn = NULL, *z = NULL, *g = NULL, *dev = NULL, *dl = NULL;
    int32_t *y = NULL;
    int64_t n = 0, dims[6], kinks = 0;
    int nd;
    char err[512] = "";
    FILE *st = fopen(path(name, "stamp"), "r");
    if (!st) {
        advex_test_fail(__FILE__, __LINE__, "%s: no fixture (%s): did the torchvision_fixtures test run?", name,
                        path(name, "stamp"));
        return;
    }
    fclose(st);
    if (advex_model_load_onnx(path(name, "model.onnx"), &m)) {
        printf("  %-20s loads: no (%s)\n", name, advex_last_error());
        advex_test_fail(__FILE__, __LINE__, "%s: %s", name, advex_last_error());
        return;
    }
    if (advex_npy_load_f32(path(NULL, "x.npy"), &x, &nd, dims) || advex_npy_load_labels(path(NULL, "y.npy"), &y, &n) ||
        advex_npy_load_f32(path(name, "logits.npy"), &want_z, &nd, dims) ||
        advex_npy_load_f32(path(name, "grad.npy"), &want_g, &nd, dims) ||
        advex_npy_load_f32(path(name, "sign.npy"), &sgn, &nd, dims)) {
        snprintf(err, sizeof err, "fixture: %s", advex_last_error());
        goto done;
    }
    int64_t chw[3], c = advex_model_num_classes(m);
    advex_model_input_shape(m, chw);
    int64_t d = chw[0] * chw[1] * chw[2];
    if (n != BATCH || c != 1000 || d != 3 * 224 * 224) {
        snprintf(err, sizeof err, "shapes: batch %lld, classes %lld, input %lld", (long long)n, (long long)c, (long long)d);
        goto done;
    }
    z = malloc((size_t)(n * c) * sizeof *z);
    g = malloc((size_t)(n * d) * sizeof *g);
    dev = malloc((size_t)(n * d) * sizeof *dev);
    dl = malloc((size_t)(n * c) * sizeof *dl);
    if (!z || !g || !dev || !dl) { snprintf(err, sizeof err, "out of memory"); goto done; }
    if (advex_model_input_grad(m, x, y, n, ADVEX_LOSS_CE, g, z, NULL)) {
        snprintf(err, sizeof err, "input_grad: %s", advex_last_error());
        goto done;
    }
    for (int64_t k = 0; k < n * d; k++)
        if ((want_g[k] > 0) - (want_g[k] < 0) != (int)sgn[k]) {
            snprintf(err, sizeof err, "fixture: sign.npy disagrees with grad.npy at %lld", (long long)k);
            goto done;
        }
    stats t = compare(z, want_z, g, want_g, NULL, n, c, d);
    if (t.unexplained) { /* signs differ above the noise floor: are they kinks? */
        advex_softmax_rows(z, n, c, dl); /* d(sum CE)/dz = softmax(z) - onehot(y) */
        for (int64_t i = 0; i < n; i++) dl[i * c + y[i]] -= 1.0f;
        if ((kinks = kink_deviation(m, x, dl, n, dev)) < 0) { /* (the model is unfused from here on) */
            snprintf(err, sizeof err, "kink scan: %s", advex_last_error());
            goto done;
        }
        t = compare(z, want_z, g, want_g, dev, n, c, d);
    }
    if (getenv("ADVEX_TORCHVISION_DUMP")) { /* debugging aid: advex's gradient beside the fixture's */
        char out[1024];
        int64_t gd[4] = {n, chw[0], chw[1], chw[2]};
        snprintf(out, sizeof out, "%s/%s_grad_advex.npy", getenv("ADVEX_TORCHVISION_DUMP"), name);
        advex_npy_save_f32(out, g, 4, gd);
    }
    printf("  %-20s loads: yes  logits max rel err %.1e  grad max rel err %.1e (%.1e beyond kinks), cosine %.7f  "
           "signs agree %lld/%lld (%.4f%%), %lld differ (%lld above the noise floor: %lld at kinks, %lld "
           "unexplained); near-kink units %lld\n",
           name, t.zerr, t.gerr, kinks ? t.gerr_k : t.gerr, t.cos_min, (long long)t.agree, (long long)(n * d),
           100.0 * (double)t.agree / (double)(n * d), (long long)t.flips, (long long)(t.by_kink + t.unexplained),
           (long long)t.by_kink, (long long)t.unexplained, (long long)kinks);
    if (t.zero_logits) snprintf(err, sizeof err, "degenerate fixture: all-zero logits");
    else if (t.zerr > LOGIT_RTOL) snprintf(err, sizeof err, "logits: max rel err %.3g > %g", t.zerr, LOGIT_RTOL);
    else if (t.cos_min < GRAD_COS) snprintf(err, sizeof err, "gradient: cosine %.7f < %g", t.cos_min, GRAD_COS);
    else if (t.unexplained)
        snprintf(err, sizeof err, "%lld FGSM signs differ above the noise floor and away from kinks",
                 (long long)t.unexplained);
done:
    if (*err) advex_test_fail(__FILE__, __LINE__, "%s: %s", name, err);
    advex_model_free(m);
    free(x); free(y); free(want_z); free(want_g); free(sgn); free(z); free(g); free(dev); free(dl);
}

#define MODEL_TEST(nm) \
    TEST(nm) { check(#nm); }
MODEL_TEST(resnet18)
MODEL_TEST(resnet50)
MODEL_TEST(mobilenet_v2)
MODEL_TEST(efficientnet_b0)
MODEL_TEST(vgg11_bn)
MODEL_TEST(squeezenet1_1)
MODEL_TEST(densenet121)
MODEL_TEST(regnet_y_400mf)
MODEL_TEST(mobilenet_v3_small)
MODEL_TEST(shufflenet_v2_x1_0)
MODEL_TEST(convnext_tiny)
MODEL_TEST(vit_b_16)
MODEL_TEST(swin_t)

int main(int argc, char **argv) {
    static const advex_test_entry tests[] = {
        TEST_ENTRY(resnet18),           TEST_ENTRY(resnet50),       TEST_ENTRY(mobilenet_v2),
        TEST_ENTRY(efficientnet_b0),    TEST_ENTRY(vgg11_bn),       TEST_ENTRY(squeezenet1_1),
        TEST_ENTRY(densenet121),        TEST_ENTRY(regnet_y_400mf), TEST_ENTRY(mobilenet_v3_small),
        TEST_ENTRY(shufflenet_v2_x1_0), TEST_ENTRY(convnext_tiny),  TEST_ENTRY(vit_b_16),
        TEST_ENTRY(swin_t),
    };
    FILE *f = fopen(path(NULL, "torch-missing"), "r");
    if (f) {
        fclose(f);
        printf("FAIL: the fixture generator found no torchvision (install python3-torchvision)\n");
        return 1;
    }
    /* ADVEX_TORCHVISION_MODELS="a b": run those only (the sanitizer build's reduced set) */
    const char *only = getenv("ADVEX_TORCHVISION_MODELS");
    char *names[16] = {argv[0]}, buf[512];
    if (argc == 1 && only && *only) {
        snprintf(buf, sizeof buf, "%s", only);
        argc = 1;
        for (char *t = strtok(buf, " ,"); t && argc < 16; t = strtok(NULL, " ,")) names[argc++] = t;
        argv = names;
    }
    return advex_test_main(argc, argv, tests, (int)(sizeof tests / sizeof *tests));
}
