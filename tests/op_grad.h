/* A one-node graph built by hand for per-op tests (the harness of tests/test_ops.c, shared):
 * values with random data, the op planned as the planner would (infer, aux, scratch),
 * forward/backward, and gradient checks of every input against central finite differences of
 * sum(out .* r) in double, gradient write mode included. Functions are static and unused
 * ones are fine (__attribute__((unused))). */
#ifndef ADVEX_TEST_OP_GRAD_H
#define ADVEX_TEST_OP_GRAD_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"
#include "ops/kernels.h"

#define OPG_UNUSED __attribute__((unused))
/* ---- a one-node graph built by hand ------------------------------------------------------ */

#define MAXV 12
typedef struct tg {
    advex_value v[MAXV];
    int nv;
    advex_node nd;
    int in[MAXV];
    float *scratch, *aux; /* aux: the node's state from forward to backward (a plan keeps it) */
    int64_t scratch_n, aux_n;
    advex_rng rng, drop_rng;
} tg;

#define DIMS(...) (const int64_t[]){__VA_ARGS__}, (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define IDS(...) (const int[]){__VA_ARGS__}, (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

OPG_UNUSED static void tg_init(tg *g, advex_op_type op, uint64_t seed) {
    memset(g, 0, sizeof *g);
    g->nd.op = op;
    g->nd.name = "node_under_test";
    g->nd.in = g->in;
    g->nd.n_out = 1;
    g->nd.out[0] = g->nd.out[1] = -1;
    advex_attrs_default(&g->nd.a);
    advex_rng_seed(&g->rng, seed);
}

OPG_UNUSED static float *zalloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

/* A value with data uniform in [lo, hi) and a zeroed grad. */
OPG_UNUSED static int tg_val(tg *g, const int64_t *dims, int ndim, float lo, float hi) {
    int id = g->nv++;
    advex_value *v = &g->v[id];
    v->kind = ADVEX_VAL_ACT;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++) v->dims[i] = dims[i];
    v->producer = -1;
    int64_t n = advex_numel(ndim, dims);
    v->data = zalloc(n);
    v->grad = zalloc(n);
    for (int64_t i = 0; i < n; i++) v->data[i] = lo + (hi - lo) * advex_rng_uniform(&g->rng);
    return id;
}

OPG_UNUSED static void tg_inputs(tg *g, const int *ids, int n) {
    for (int i = 0; i < n; i++) g->in[i] = ids[i];
    g->nd.n_in = n;
}

/* infer + allocate the output, aux and scratch as the planner would */
OPG_UNUSED static advex_status tg_plan(tg *g, int train) {
    const advex_op_def *def = &advex_op_defs[g->nd.op];
    if (g->nd.out[0] < 0) {
        g->nd.out[0] = g->nv++;
        g->v[g->nd.out[0]].kind = ADVEX_VAL_ACT;
    }
    advex_status st = def->infer(&g->nd, g->v);
    if (st) return st;
    advex_value *o = &g->v[g->nd.out[0]];
    int64_t n = advex_numel(o->ndim, o->dims);
    free(o->data);
    free(o->grad);
    o->data = zalloc(n);
    o->grad = zalloc(n);
    free(g->aux);
    g->aux_n = def->aux ? def->aux(&g->nd, g->v, train) : 0;
    g->aux = g->aux_n ? zalloc(g->aux_n) : NULL;
    free(g->scratch);
    g->scratch_n = def->scratch ? def->scratch(&g->nd, g->v, train) : 0;
    g->scratch = g->scratch_n ? malloc((size_t)g->scratch_n * sizeof(float)) : NULL;
    return ADVEX_OK;
}

OPG_UNUSED static void tg_forward(tg *g, int train) {
    advex_rng_seed(&g->drop_rng, 1234); /* the same dropout mask on every forward */
    advex_op_ctx c = {train, &g->drop_rng, g->scratch, g->scratch_n, g->aux, g->aux_n};
    advex_op_defs[g->nd.op].forward(&g->nd, g->v, &c);
}

OPG_UNUSED static void tg_backward(tg *g, int train) {
    advex_op_ctx c = {train, &g->drop_rng, g->scratch, g->scratch_n, g->aux, g->aux_n};
    advex_op_defs[g->nd.op].backward(&g->nd, g->v, &c);
}

OPG_UNUSED static void tg_free(tg *g) {
    for (int i = 0; i < g->nv; i++) {
        free(g->v[i].data);
        free(g->v[i].grad);
    }
    free(g->aux);
    free(g->scratch);
    memset(g, 0, sizeof *g);
}

OPG_UNUSED static int64_t vnumel(const advex_value *v) { return advex_numel(v->ndim, v->dims); }

OPG_UNUSED static double objective(tg *g, int train, const float *r) {
    tg_forward(g, train);
    const advex_value *o = &g->v[g->nd.out[0]];
    double s = 0.0;
    for (int64_t i = 0; i < vnumel(o); i++) s += (double)o->data[i] * r[i];
    return s;
}

/* Gradient write mode (advex_value.grad_write): after a backward that accumulated into zeroed
 * grads (saved), (1) a second backward without write mode must add to them again (2x saved);
 * (2) a third one with every input slot the op declares in grad_write_in (and whose value no
 * other slot also reads) in write mode over a NaN-filled grad, the others zeroed, must give
 * grads equal (==) to saved. The forward state (aux) must be that of the last backward.
 * Returns the number of write-mode slots checked, or -1 after printing the first mismatches. */
OPG_UNUSED static int check_write_mode(tg *g, int train) {
    const advex_op_def *def = &advex_op_defs[g->nd.op];
    float *saved[MAXV] = {0};
    int checked = 0, bad = 0;
    for (int k = 0; k < g->nd.n_in; k++) { /* (1) accumulate onto saved */
        int id = g->in[k];
        if (id < 0 || !g->v[id].grad || saved[id]) continue;
        int64_t n = vnumel(&g->v[id]);
        saved[id] = zalloc(n);
        memcpy(saved[id], g->v[id].grad, (size_t)n * sizeof(float));
    }
    tg_backward(g, train);
    for (int id = 0; id < g->nv; id++) {
        if (!saved[id]) continue;
        const advex_value *x = &g->v[id];
        for (int64_t i = 0; i < vnumel(x); i++) {
            double want = 2.0 * saved[id][i];
            if (!(fabs(x->grad[i] - want) <= 1e-5 * (1.0 + fabs(want))) && bad++ < 5)
                fprintf(stderr, "    %s value %d [%lld]: a second backward gives %.9g, not twice %.9g\n", def->name,
                        id, (long long)i, x->grad[i], saved[id][i]);
        }
    }
    for (int k = 0; k < g->nd.n_in; k++) { /* (2) write mode */
        int id = g->in[k], first = 1, shared = 0;
        if (id < 0 || !g->v[id].grad) continue;
        for (int j = 0; j < g->nd.n_in; j++)
            if (j != k && g->in[j] == id) { shared = 1; first &= j > k; }
        if (!first) continue;
        advex_value *x = &g->v[id];
        int64_t n = vnumel(x);
        if (!shared && advex_op_grad_write_ok(def, k)) {
            for (int64_t i = 0; i < n; i++) x->grad[i] = NAN; /* stale contents must not leak */
            x->grad_write = 1;
            checked++;
        } else {
            memset(x->grad, 0, (size_t)n * sizeof(float));
        }
    }
    tg_backward(g, train);
    for (int id = 0; id < g->nv; id++) {
        if (!saved[id]) continue;
        advex_value *x = &g->v[id];
        int64_t n = vnumel(x);
        for (int64_t i = 0; i < n; i++)
            if (!(x->grad[i] == saved[id][i]) && bad++ < 5)
                fprintf(stderr, "    %s value %d [%lld]%s: %.9g, accumulated %.9g\n", def->name, id, (long long)i,
                        x->grad_write ? " (write mode)" : "", x->grad[i], saved[id][i]);
        memcpy(x->grad, saved[id], (size_t)n * sizeof(float));
        x->grad_write = 0;
        free(saved[id]);
    }
    return bad ? -1 : checked;
}

/* Gradient check of every input that has a grad buffer. Returns the number of points checked
 * (>= 0) or -1 after printing the first mismatches. kinky: skip points where the one-sided
 * differences disagree (ReLU at 0, max-pool near-ties, Clip bounds). */
OPG_UNUSED static int gradcheck(tg *g, int train, double h, double rtol, int kinky, int maxcheck) {
    advex_value *o = &g->v[g->nd.out[0]];
    int64_t no = vnumel(o);
    float *r = zalloc(no);
    for (int64_t i = 0; i < no; i++) r[i] = 2.0f * advex_rng_uniform(&g->rng) - 1.0f;
    for (int k = 0; k < g->nd.n_in; k++) {
        advex_value *x = &g->v[g->in[k]];
        if (g->in[k] >= 0 && x->grad) memset(x->grad, 0, (size_t)vnumel(x) * sizeof(float));
    }
    tg_forward(g, train);
    memcpy(o->grad, r, (size_t)no * sizeof(float));
    tg_backward(g, train);
    int checked = 0, bad = 0;
    if (check_write_mode(g, train) < 0) bad++;
    for (int k = 0; k < g->nd.n_in; k++) {
        if (g->in[k] < 0) continue;
        int dup = 0; /* the same value twice (Add(x, x)): check once, its grad holds both */
        for (int j = 0; j < k; j++) dup |= g->in[j] == g->in[k];
        advex_value *x = &g->v[g->in[k]];
        if (!x->grad || dup) continue;
        int64_t n = vnumel(x);
        int cnt = n < maxcheck ? (int)n : maxcheck;
        for (int t = 0; t < cnt; t++) {
            int64_t i = n <= maxcheck ? t : (int64_t)advex_rng_below(&g->rng, (uint64_t)n);
            float x0 = x->data[i];
            x->data[i] = x0 + (float)h;
            double fp = objective(g, train, r);
            x->data[i] = x0 - (float)h;
            double fm = objective(g, train, r);
            x->data[i] = x0;
            double f0 = objective(g, train, r);
            double hp = (double)(x0 + (float)h) - x0, hm = x0 - (double)(x0 - (float)h);
            double num = (fp - fm) / (hp + hm), ana = x->grad[i];
            if (kinky && fabs((fp - f0) / hp - (f0 - fm) / hm) > 0.05 * (1.0 + fabs(num))) continue;
            checked++;
            if (fabs(num - ana) > 2e-3 + rtol * fmax(fabs(num), fabs(ana))) {
                if (bad++ < 5)
                    fprintf(stderr, "    %s input %d [%lld]: analytic %.6g numeric %.6g\n",
                            advex_op_defs[g->nd.op].name, k, (long long)i, ana, num);
            }
        }
    }
    free(r);
    return bad ? -1 : checked;
}

OPG_UNUSED static float max_abs_diff(const float *a, const float *b, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}


#endif
