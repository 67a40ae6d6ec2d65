/* Batch-parallel evaluation passes: the batch is cut into one contiguous part per thread and
 * each part runs forward (and backward) on its own replica of the model, one thread each,
 * with no synchronisation between layers.
 *
 * Why: the networks attacked here are small (28x28 inputs, 16-64 channels). Splitting each
 * layer across the threads, as the kernels do on their own, pays a fork/join and a barrier
 * per layer and leaves the serial parts (loss, small layers) on one core; two threads gave
 * only 1.6-1.7x one thread at batch 256. A replica shares the model's parameters and
 * constants (read only in eval mode) and owns only its value table, node table (per-plan
 * aux pointers), arena (sized for its part) and backward zeroing schedule. Used for
 * eval-mode passes without parameter gradients (attacks, evaluation, the crafting half of
 * adversarial training); training's parameter-gradient passes stay on the layer-parallel
 * path.
 *
 * Results do not depend on the split: every kernel computes an example from that example
 * alone, and the parts are planned like any other batch size (the tests compare 1 and 2
 * threads). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Split only when every part gets at least this many examples. */
#define SPLIT_MIN 16

static void replica_free(advex_model *r) {
    if (!r) return;
    free(r->g.vals);
    free(r->g.nodes);
    advex_ffree(r->arena);
    advex_ffree(r->ws);
    free(r->bw_zero);
    free(r->plan_tmp);
    free(r);
}

void advex_model_free_replicas(advex_model *m) {
    for (int i = 0; i < m->n_rep; i++) replica_free(m->rep[i]);
    free(m->rep);
    m->rep = NULL;
    m->n_rep = 0;
    advex_ffree(m->zbuf);
    m->zbuf = NULL;
    m->zcap = 0;
}

/* A shallow copy: shares params, consts, names and node inputs; owns value and node tables. */
static advex_model *replica_new(const advex_model *m) {
    advex_model *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    *r = *m;
    r->g.vals = malloc((size_t)m->g.n_vals * sizeof *r->g.vals);
    r->g.nodes = malloc((size_t)(m->g.n_nodes > 0 ? m->g.n_nodes : 1) * sizeof *r->g.nodes);
    r->arena = NULL;
    r->arena_cap = 0;
    r->bw_zero = NULL; /* its own (the parts plan concurrently; freed with it) */
    r->plan_tmp = NULL;
    r->ws = NULL;
    r->ws_cap = 0;
    r->rep = NULL;
    r->n_rep = 0;
    r->zbuf = NULL;
    r->zcap = 0;
    r->plan_n = 0;
    r->split = 0;
    r->serial = 0;
    if (!r->g.vals || !r->g.nodes) {
        replica_free(r);
        return NULL;
    }
    memcpy(r->g.vals, m->g.vals, (size_t)m->g.n_vals * sizeof *r->g.vals);
    memcpy(r->g.nodes, m->g.nodes, (size_t)m->g.n_nodes * sizeof *r->g.nodes);
    return r;
}

/* Parts for a batch of b: 0 (do not split) or the thread count. */
static int split_parts(const advex_model *m, int64_t b) {
    if (omp_in_parallel()) return 0;
    int t = advex_threads();
    if (t < 2 || b < (int64_t)t * SPLIT_MIN) return 0;
    (void)m;
    return t;
}

static void part_range(int64_t b, int parts, int p, int64_t *i0, int64_t *nb) {
    int64_t a = b * p / parts, e = b * (p + 1) / parts;
    *i0 = a;
    *nb = e - a;
}

static advex_status ensure_replicas(advex_model *m, int parts, int64_t b) {
    if (m->n_rep < parts) {
        advex_model **rep = realloc(m->rep, (size_t)parts * sizeof *rep);
        if (!rep) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (model replicas)");
        m->rep = rep;
        while (m->n_rep < parts) {
            if (!(m->rep[m->n_rep] = replica_new(m))) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (model replicas)");
            m->n_rep++;
        }
    }
    int64_t need = b * m->classes;
    if (need > m->zcap) {
        float *z = advex_falloc(need);
        if (!z) return advex_alloc_error(need, "the logits of a split batch");
        advex_ffree(m->zbuf);
        m->zbuf = z;
        m->zcap = need;
    }
    return ADVEX_OK;
}

/* Run fn(part) for every part on its own thread (nested kernels single-threaded); the first
 * failing part's error (lowest index) is re-raised on the calling thread. */
typedef advex_status (*part_fn)(advex_model *m, int p, void *u);

static advex_status run_parts(advex_model *m, int parts, part_fn fn, void *u) {
    advex_status st[64] = {0};
    char msg[64][256];
    if (parts > 64) parts = 64;
#pragma omp parallel num_threads(parts)
    {
        int p = omp_get_thread_num();
        if (p < parts) {
            omp_set_num_threads(1); /* kernels inside see one thread (their shares assume it) */
            st[p] = fn(m, p, u);
            if (st[p]) snprintf(msg[p], sizeof msg[p], "%s", advex_last_error());
        }
    }
    for (int p = 0; p < parts; p++)
        if (st[p]) return advex_set_error(st[p], "%s", msg[p]);
    return ADVEX_OK;
}

typedef struct fwd_args {
    const float *x;
    int64_t b;
    int want_grad;
} fwd_args;

static advex_status part_forward(advex_model *m, int p, void *u) {
    const fwd_args *a = u;
    advex_model *r = m->rep[p];
    int64_t i0, nb, d = m->in_chw[0] * m->in_chw[1] * m->in_chw[2];
    part_range(a->b, m->split, p, &i0, &nb);
    r->ex_base = i0;
    advex_status st = advex_model_plan(r, nb, 0, a->want_grad);
    if (st) {
        char pre[96];
        snprintf(pre, sizeof pre, "batch %lld split over %d threads", (long long)a->b, m->split);
        return advex_error_prefix(st, pre);
    }
    if ((st = advex_model_run_forward(r, a->x + i0 * d))) return st;
    memcpy(m->zbuf + i0 * m->classes, advex_model_logits(r), (size_t)(nb * m->classes) * sizeof(float));
    return ADVEX_OK;
}

/* Multiply-adds per Conv/Gemm/MatMul node of the planned pass, on average. */
double advex_model_plan_macs(const advex_model *m, int *layers) {
    double macs = 0;
    int n = 0;
    for (int i = 0; i < m->g.n_nodes; i++) {
        const advex_node *nd = &m->g.nodes[i];
        if ((nd->op != ADVEX_OP_CONV && nd->op != ADVEX_OP_GEMM && nd->op != ADVEX_OP_MATMUL) || nd->n_in < 2) continue;
        const advex_value *o = &m->g.vals[nd->out[0]], *a = &m->g.vals[nd->in[0]], *w = &m->g.vals[nd->in[1]];
        double k = nd->op == ADVEX_OP_CONV ? (double)(w->ndim == 4 ? w->dims[1] * w->dims[2] * w->dims[3] : 1)
                                           : (double)(nd->op == ADVEX_OP_GEMM && nd->a.trans_a ? a->dims[0]
                                                                                          : a->dims[a->ndim - 1]);
        macs += (double)advex_numel(o->ndim, o->dims) * k;
        n++;
    }
    if (layers) *layers = n;
    return macs;
}

void advex_model_eval_end(advex_model *m) {
    if (m->serial) {
        advex_set_threads(m->serial);
        m->serial = 0;
    }
}

/* A pass this small (batch 1 of a small net) runs on one thread: below ~1 M multiply-adds
 * per layer (~50 us on one core) a parallel region's fork/join and the idle thread's spinning
 * (on SMT siblings it slows the working thread) cost more than the second thread gives:
 * `small` at batch 1 ran at 2 600 img/s on 2 threads against 3 300 on one. */
#define SERIAL_MACS_PER_LAYER 1e6

advex_status advex_model_eval_forward(advex_model *m, const float *x, int64_t b, int want_grad, const float **z) {
    advex_status st;
    advex_model_eval_end(m); /* a previous forward's backward never came (the caller failed in between) */
    int parts = split_parts(m, b);
    m->split = 0;
    if (!parts) {
        if ((st = advex_model_plan(m, b, 0, want_grad))) return st;
        int t = advex_threads();
        int layers;
        double macs = advex_model_plan_macs(m, &layers);
        if (t > 1 && !omp_in_parallel() && layers > 0 && macs / layers < SERIAL_MACS_PER_LAYER) {
            m->serial = t;
            advex_set_threads(1);
        }
        st = advex_model_run_forward(m, x);
        if (!want_grad || st) advex_model_eval_end(m);
        if (st) return st;
        *z = advex_model_logits(m);
        return ADVEX_OK;
    }
    if ((st = ensure_replicas(m, parts, b))) return st;
    m->split = parts;
    m->split_b = b;
    fwd_args a = {x, b, want_grad};
    if ((st = run_parts(m, parts, part_forward, &a))) {
        m->split = 0;
        /* give back what the parts that did plan hold (a memory limit may have stopped the
         * others: a smaller batch must still fit afterwards) */
        advex_model_free_replicas(m);
        return st;
    }
    *z = m->zbuf;
    return ADVEX_OK;
}

typedef struct bwd_args {
    const float *dl;
    float *grad;
} bwd_args;

static advex_status part_backward(advex_model *m, int p, void *u) {
    const bwd_args *a = u;
    advex_model *r = m->rep[p];
    int64_t i0, nb, d = m->in_chw[0] * m->in_chw[1] * m->in_chw[2];
    part_range(m->split_b, m->split, p, &i0, &nb);
    advex_status st = advex_model_run_backward(r, a->dl + i0 * m->classes);
    if (st) return st;
    memcpy(a->grad + i0 * d, r->g.vals[r->g.input].grad, (size_t)(nb * d) * sizeof(float));
    return ADVEX_OK;
}

advex_status advex_model_eval_backward(advex_model *m, const float *dl, float *grad) {
    advex_status st;
    if (!m->split) {
        st = advex_model_run_backward(m, dl);
        advex_model_eval_end(m); /* the forward may have gone serial */
        if (st) return st;
        const advex_value *in = &m->g.vals[m->g.input];
        memcpy(grad, in->grad, (size_t)advex_numel(4, in->dims) * sizeof(float));
        return ADVEX_OK;
    }
    bwd_args a = {dl, grad};
    return run_parts(m, m->split, part_backward, &a);
}
