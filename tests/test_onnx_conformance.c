/* ONNX's own conformance tests (Debian's libonnx-testdata): every test whose ops advex
 * supports runs forward through the importer's general (any-rank) path and its outputs
 * must match the stored ones within the ONNX backend runner's tolerance (numpy
 * assert_allclose with rtol 1e-3, atol 1e-7: |out - ref| <= atol + rtol |ref|). Tests the
 * importer rejects as unsupported, or with non-float data, are counted and skipped. A test
 * with several outputs is run and its first output checked ("output 0"): advex computes one
 * output per node (LayerNormalization's Mean and InvStdDev, for one, are not). A model that
 * draws random numbers (Bernoulli, Dropout with training_mode; the reference draws come from
 * numpy's generator) is checked on the support of its draws: every element is 0 where either
 * output is 0, and the reference's value elsewhere. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"
#include "onnx/onnx_internal.h"

#define DATA_DIR "/usr/share/libonnx-testdata/data"
#define RTOL 1e-3 /* onnx/backend/test/loader: rtol = 1e-3, atol = 1e-7 unless data.json says */
#define ATOL 1e-7
#define MAX_IO 16

/* Known failures: supported by the loader but not matching, each with its reason. Keep short. */
static const struct { const char *test, *why; } known_failures[] = {
    {"", ""}, /* none */
};

static const char *known_failure(const char *test) {
    for (size_t i = 0; i < sizeof known_failures / sizeof *known_failures; i++)
        if (*known_failures[i].test && strcmp(known_failures[i].test, test) == 0) return known_failures[i].why;
    return NULL;
}

/* The net draws random numbers (ops/random.c, Dropout with training_mode). */
static int net_is_random(const advex_net *net) {
    for (int i = 0; i < net->g.n_nodes; i++) {
        advex_op_type op = net->g.nodes[i].op;
        if ((op >= ADVEX_OP_RANDOM_NORMAL_LIKE && op <= ADVEX_OP_RANDOM_UNIFORM) ||
            (op == ADVEX_OP_DROPOUT && net->g.nodes[i].a.mode))
            return 1;
    }
    return 0;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    if (b && len > 0 && fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); b = NULL; }
    fclose(f);
    *n = len > 0 ? (size_t)len : 0;
    return b;
}

static Onnx__TensorProto *load_tensor(const char *path) {
    size_t n;
    unsigned char *b = slurp(path, &n);
    if (!b) return NULL;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, n, b);
    free(b);
    return t;
}

static int64_t tensor_numel(const Onnx__TensorProto *t) {
    int64_t n = 1;
    for (size_t d = 0; d < t->n_dims; d++) n *= t->dims[d];
    return n;
}

/* The floats of a float32 TensorProto (raw_data or float_data); NULL on a size mismatch. */
static float *tensor_floats(const Onnx__TensorProto *t) {
    int64_t n = tensor_numel(t);
    if (n < 0 || n > ((int64_t)1 << 28)) return NULL;
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    if (!x) return NULL;
    if (t->has_raw_data && t->raw_data.len == (size_t)n * 4) {
        for (int64_t i = 0; i < n; i++) { /* little-endian */
            const unsigned char *p = t->raw_data.data + 4 * i;
            uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            memcpy(&x[i], &u, 4);
        }
    } else if (t->n_float_data == (size_t)n) {
        memcpy(x, t->float_data, (size_t)n * sizeof *x);
    } else {
        free(x);
        return NULL;
    }
    return x;
}

typedef struct counts {
    int tests, nomodel, unsupported, run, passed, out0, failed, known;
} counts;

/* R_PASS0: output_0 matches; the node's further outputs (LayerNormalization's Mean and
 * InvStdDev, Dropout's mask, ...) are not computed by advex and not checked */
typedef enum { R_PASS, R_PASS0, R_FAIL, R_UNSUP, R_KNOWN } result;

static int verbose;

/* One test_data_set: inputs -> forward -> compare output_0. */
static result run_set(const char *test, const char *model_path, const unsigned char *mbuf, size_t mlen,
                      const char *set_dir, char *why, size_t nwhy) {
    Onnx__TensorProto *in[MAX_IO] = {0}, *ref = NULL;
    char path[2048];
    int n_in = 0;
    result r = R_FAIL;
    advex_net *net = NULL;
    advex_plan *plan = NULL;
    float *x = NULL, *want = NULL;
    for (; n_in < MAX_IO; n_in++) {
        snprintf(path, sizeof path, "%s/input_%d.pb", set_dir, n_in);
        FILE *f = fopen(path, "rb");
        if (!f) break;
        fclose(f);
        if (!(in[n_in] = load_tensor(path))) { snprintf(why, nwhy, "cannot read %.300s", path); goto done; }
    }
    snprintf(path, sizeof path, "%s/output_1.pb", set_dir);
    FILE *f1 = fopen(path, "rb");
    int several = f1 != NULL;
    if (f1) fclose(f1);
    snprintf(path, sizeof path, "%s/output_0.pb", set_dir);
    if (!(ref = load_tensor(path))) { snprintf(why, nwhy, "cannot read %.300s", path); goto done; }
    if (ref->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        r = R_UNSUP;
        snprintf(why, nwhy, "output type %d", (int)ref->data_type);
        goto done;
    }
    int xi = -1;
    for (int k = 0; k < n_in && xi < 0; k++)
        if (in[k]->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && in[k]->n_dims >= 1 &&
            in[k]->n_dims <= ADVEX_MAX_DIMS)
            xi = k;
    if (xi < 0) { r = R_UNSUP; snprintf(why, nwhy, "no float input"); goto done; }
    advex_status st = advex_onnx_load_general(mbuf, mlen, model_path, (const Onnx__TensorProto *const *)in, n_in, &net);
    if (st == ADVEX_ERR_UNSUPPORTED) {
        r = R_UNSUP;
        snprintf(why, nwhy, "%s", advex_last_error());
        goto done;
    }
    if (st) { snprintf(why, nwhy, "load: %s: %s", advex_status_str(st), advex_last_error()); goto done; }
    if (!(x = tensor_floats(in[xi])) || !(want = tensor_floats(ref))) {
        snprintf(why, nwhy, "bad float tensor data");
        goto done;
    }
    const advex_value *xin = &net->g.vals[net->g.input];
    if ((st = advex_plan_new(net, &plan)) || (st = advex_plan_shape(plan, xin->ndim, xin->dims, 0, 0)) ||
        (st = advex_plan_forward(plan, x))) {
        snprintf(why, nwhy, "forward: %s", advex_last_error());
        goto done;
    }
    const advex_value *out = advex_plan_output_value(plan);
    int ndim = out->ndim;
    const int64_t *dims = out->dims;
    const float *y = out->data;
    if (ndim != (int)ref->n_dims) { snprintf(why, nwhy, "rank %d, want %zu", ndim, ref->n_dims); goto done; }
    for (int d = 0; d < ndim; d++)
        if (dims[d] != ref->dims[d]) {
            snprintf(why, nwhy, "dim %d is %lld, want %lld", d, (long long)dims[d], (long long)ref->dims[d]);
            goto done;
        }
    int64_t n = tensor_numel(ref), bad = 0, worst = -1;
    double worst_ex = 0;
    int random = net_is_random(net);
    for (int64_t i = 0; i < n; i++) {
        double a = y[i], b = want[i];
        if (isnan(a) && isnan(b)) continue;
        if (a == b) continue; /* infinities */
        if (random && (a == 0 || b == 0)) continue; /* dropped or not: another draw */
        double ex = fabs(a - b) - (ATOL + RTOL * fabs(b));
        if (!(ex <= 0)) {
            bad++;
            if (worst < 0 || !(ex <= worst_ex)) { worst = i; worst_ex = ex; }
        }
    }
    if (bad) {
        snprintf(why, nwhy, "%lld of %lld outside tolerance; worst [%lld] %.9g vs %.9g", (long long)bad,
                 (long long)n, (long long)worst, (double)y[worst], (double)want[worst]);
        goto done;
    }
    r = several ? R_PASS0 : R_PASS;
done:
    if (r == R_FAIL && known_failure(test)) r = R_KNOWN;
    advex_plan_free(plan);
    advex_net_release(net);
    free(x);
    free(want);
    for (int k = 0; k < n_in; k++) onnx__tensor_proto__free_unpacked(in[k], NULL);
    if (ref) onnx__tensor_proto__free_unpacked(ref, NULL);
    return r;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted subdirectory names of dir starting with prefix (caller frees). */
static int list_dirs(const char *dir, const char *prefix, char ***out) {
    DIR *d = opendir(dir);
    int n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        names[n++] = advex_strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

static void run_kind(const char *kind, counts *c) {
    char dir[512], path[1024], why[512];
    char **tests = NULL;
    snprintf(dir, sizeof dir, "%s/%s", DATA_DIR, kind);
    int nt = list_dirs(dir, "test_", &tests);
    memset(c, 0, sizeof *c);
    if (nt < 0) {
        advex_test_fail(__FILE__, __LINE__, "%s: cannot open (install libonnx-testdata)", dir);
        return;
    }
    for (int t = 0; t < nt; t++) {
        size_t mlen;
        snprintf(path, sizeof path, "%s/%s/model.onnx", dir, tests[t]);
        unsigned char *mbuf = slurp(path, &mlen);
        c->tests++;
        if (!mbuf) { c->nomodel++; free(tests[t]); continue; } /* real/: download URLs only */
        char **sets = NULL, sdir[1024];
        snprintf(sdir, sizeof sdir, "%s/%s", dir, tests[t]);
        int ns = list_dirs(sdir, "test_data_set_", &sets);
        result worst = R_PASS;
        why[0] = '\0';
        for (int s = 0; s < ns; s++) {
            char setp[1536], w[512] = "";
            snprintf(setp, sizeof setp, "%s/%s", sdir, sets[s]);
            result r = run_set(tests[t], path, mbuf, mlen, setp, w, sizeof w);
            if (r > worst || (r == R_FAIL && worst != R_FAIL)) { worst = r; snprintf(why, sizeof why, "%s", w); }
            if (r == R_FAIL) worst = R_FAIL;
            free(sets[s]);
        }
        free(sets);
        if (ns <= 0) { worst = R_FAIL; snprintf(why, sizeof why, "no test data sets"); }
        free(mbuf);
        switch (worst) {
        case R_UNSUP:
            c->unsupported++;
            if (verbose) printf("  unsupported %s/%s: %s\n", kind, tests[t], why);
            break;
        case R_PASS: c->run++; c->passed++; if (verbose) printf("  pass %s/%s\n", kind, tests[t]); break;
        case R_PASS0:
            c->run++;
            c->out0++;
            if (verbose) printf("  pass (output 0 of several) %s/%s\n", kind, tests[t]);
            break;
        case R_KNOWN:
            c->run++;
            c->known++;
            printf("  known failure %s/%s: %s (%s)\n", kind, tests[t], known_failure(tests[t]), why);
            break;
        case R_FAIL:
            c->run++;
            c->failed++;
            printf("  FAIL %s/%s: %s\n", kind, tests[t], why);
            break;
        }
        free(tests[t]);
    }
    free(tests);
}

TEST(conformance) {
    static const char *kinds[] = {"node", "pytorch-converted", "pytorch-operator", "simple", "real"};
    counts c[5], tot = {0};
    const char *v = getenv("ADVEX_CONFORMANCE_VERBOSE");
    verbose = v && *v && *v != '0';
    for (int k = 0; k < 5; k++) {
        run_kind(kinds[k], &c[k]);
        tot.tests += c[k].tests; tot.nomodel += c[k].nomodel; tot.unsupported += c[k].unsupported;
        tot.run += c[k].run; tot.passed += c[k].passed; tot.failed += c[k].failed; tot.known += c[k].known;
        tot.out0 += c[k].out0;
    }
    printf("%-18s %6s %6s %7s %9s %12s %9s\n", "onnx conformance", "tests", "run", "passed", "output 0", "unsupported",
           "no model");
    for (int k = 0; k < 5; k++)
        printf("%-18s %6d %6d %7d %9d %12d %9d\n", kinds[k], c[k].tests, c[k].run, c[k].passed, c[k].out0,
               c[k].unsupported, c[k].nomodel);
    printf("%-18s %6d %6d %7d %9d %12d %9d   (%d failed, %d known failures)\n", "total", tot.tests, tot.run,
           tot.passed, tot.out0, tot.unsupported, tot.nomodel, tot.failed, tot.known);
    ASSERT_MSG(tot.failed == 0, "%d supported conformance tests fail", tot.failed);
    ASSERT_MSG(tot.run > 0, "no conformance test ran");
}

TEST_MAIN(TEST_ENTRY(conformance))
