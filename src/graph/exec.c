/* Eval-mode passes of a model handle over a batch, on the plans it owns: the whole batch on
 * one plan (its kernels splitting each layer across the threads, or on one thread when the
 * layers are too small to pay for a fork), or the batch cut into one contiguous part per
 * thread, each running forward (and backward) on its own plan with no synchronisation
 * between layers.
 *
 * Why parts: the networks attacked here are small (28x28 inputs, 16-64 channels). Splitting
 * each layer across the threads pays a fork/join and a barrier per layer and leaves the
 * serial parts (loss, small layers) on one core; two threads gave only 1.6-1.7x one thread
 * at batch 256. A part's plan reads the net's parameters and constants (eval mode) and owns
 * its value table, arena and aux. Used for eval-mode passes without parameter gradients
 * (attacks, evaluation, the crafting half of adversarial training); training passes run on
 * the model's training plan.
 *
 * Results do not depend on the split: every kernel computes an example from that example
 * alone, and the parts are planned like any other batch size (the tests compare 1 and 2
 * threads). A model that draws random numbers (advex_model_is_random) never splits: its draws
 * come from one generator in one order, whatever the thread count, and a fixed-shape draw
 * (RandomNormal) is one per pass for the whole batch. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Split only when every part gets at least this many examples. */
#define SPLIT_MIN 16

/* A pass this small (batch 1 of a small net) runs on one thread: below ~1 M multiply-adds
 * per layer (~50 us on one core) a parallel region's fork/join and the idle thread's spinning
 * (on SMT siblings it slows the working thread) cost more than the second thread gives:
 * `small` at batch 1 ran at 2 600 img/s on 2 threads against 3 300 on one. */
#define SERIAL_MACS_PER_LAYER 1e6

static void free_parts(advex_model *m) {
    for (int i = 0; i < m->n_part; i++) advex_plan_free(m->part[i]);
    free(m->part);
    m->part = NULL;
    m->n_part = 0;
    advex_ffree(m->zbuf);
    m->zbuf = NULL;
    m->zcap = 0;
}

/* Parts for a batch of b: 0 (do not split) or the thread count. */
static int split_parts(int64_t b) {
    if (omp_in_parallel()) return 0;
    int t = advex_threads();
    if (t < 2 || b < (int64_t)t * SPLIT_MIN) return 0;
    return t > 64 ? 64 : t;
}

static void part_range(int64_t b, int parts, int p, int64_t *i0, int64_t *nb) {
    int64_t a = b * p / parts, e = b * (p + 1) / parts;
    *i0 = a;
    *nb = e - a;
}

static advex_status ensure_parts(advex_model *m, int parts, int64_t b) {
    if (m->n_part < parts) {
        advex_plan **part = realloc(m->part, (size_t)parts * sizeof *part);
        if (!part) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (per-thread plans)");
        m->part = part;
        while (m->n_part < parts) {
            advex_status st = advex_plan_new(m->net, &m->part[m->n_part]);
            if (st) return st;
            m->part[m->n_part]->threads = 1; /* kernels inside a part see one thread */
            /* its own random stream (randomized models): parts never repeat each other's draws */
            advex_rng_seed_stream(&m->part[m->n_part]->rng, m->rng_key, (uint64_t)m->n_part + 1);
            m->n_part++;
        }
    }
    int64_t need = b * m->net->classes;
    if (need > m->zcap) {
        float *z = advex_falloc(need);
        if (!z) return advex_alloc_error(need, "the logits of a split batch");
        advex_ffree(m->zbuf);
        m->zbuf = z;
        m->zcap = need;
    }
    return ADVEX_OK;
}

/* Run fn(part) for every part on its own thread; the first failing part's error (lowest
 * index) is re-raised on the calling thread. */
typedef advex_status (*part_fn)(advex_model *m, int p, void *u);

static advex_status run_parts(advex_model *m, int parts, part_fn fn, void *u) {
    advex_status st[64] = {0};
    char msg[64][256];
#pragma omp parallel num_threads(parts)
    {
        int p = omp_get_thread_num();
        if (p < parts) {
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
    advex_plan *r = m->part[p];
    int64_t i0, nb, d = advex_model_dim(m), k = m->net->classes;
    part_range(a->b, m->split, p, &i0, &nb);
    r->ex_base = i0;
    advex_status st = advex_plan_images(r, nb, 0, a->want_grad);
    if (st) {
        char pre[96];
        snprintf(pre, sizeof pre, "batch %lld split over %d threads", (long long)a->b, m->split);
        return advex_error_prefix(st, pre);
    }
    if ((st = advex_plan_forward(r, a->x + i0 * d))) return st;
    memcpy(m->zbuf + i0 * k, advex_plan_output(r), (size_t)(nb * k) * sizeof(float));
    return ADVEX_OK;
}

advex_status advex_model_eval_forward(advex_model *m, const float *x, int64_t b, int want_grad, const float **z) {
    advex_status st;
    int parts = m->random ? 0 : split_parts(b);
    m->split = 0;
    if (!parts) {
        advex_plan *pl = m->plan;
        pl->ex_base = 0;
        pl->threads = 0; /* the caller's while planning: scratch for every thread */
        if ((st = advex_plan_images(pl, b, 0, want_grad))) return st;
        int layers;
        double macs = advex_plan_macs(pl, &layers);
        pl->threads = advex_threads() > 1 && !omp_in_parallel() && layers > 0 && macs / layers < SERIAL_MACS_PER_LAYER;
        if ((st = advex_plan_forward(pl, x))) return st;
        *z = advex_plan_output(pl);
        return ADVEX_OK;
    }
    if ((st = ensure_parts(m, parts, b))) return st;
    m->split = parts;
    m->split_b = b;
    fwd_args a = {x, b, want_grad};
    if ((st = run_parts(m, parts, part_forward, &a))) {
        m->split = 0;
        /* give back what the parts that did plan hold (a memory limit may have stopped the
         * others: a smaller batch must still fit afterwards) */
        free_parts(m);
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
    advex_plan *r = m->part[p];
    int64_t i0, nb, d = advex_model_dim(m);
    part_range(m->split_b, m->split, p, &i0, &nb);
    advex_status st = advex_plan_backward(r, a->dl + i0 * m->net->classes);
    if (st) return st;
    memcpy(a->grad + i0 * d, advex_plan_input_grad(r), (size_t)(nb * d) * sizeof(float));
    return ADVEX_OK;
}

advex_status advex_model_eval_backward(advex_model *m, const float *dl, float *grad) {
    if (!m->split) {
        advex_plan *pl = m->plan;
        advex_status st = advex_plan_backward(pl, dl);
        if (st) return st;
        const advex_value *in = &pl->v[m->net->g.input];
        memcpy(grad, in->grad, (size_t)advex_numel(in->ndim, in->dims) * sizeof(float));
        return ADVEX_OK;
    }
    bwd_args a = {dl, grad};
    return run_parts(m, m->split, part_backward, &a);
}

advex_status advex_model_train_plan(advex_model *m, int64_t n, advex_plan **p) {
    advex_status st;
    if (!m->train && (st = advex_plan_new(m->net, &m->train))) return st;
    if ((st = advex_plan_images(m->train, n, 1, 1))) return st;
    *p = m->train;
    return ADVEX_OK;
}

/* ---- the handle ---------------------------------------------------------------------------- */

advex_status advex_model_wrap(advex_net *net, advex_model **out) {
    *out = NULL;
    advex_model *m = calloc(1, sizeof *m);
    if (!m) {
        advex_net_release(net);
        return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    }
    m->net = net;
    advex_status st = advex_plan_new(net, &m->plan);
    if (st) {
        advex_model_free(m);
        return st;
    }
    advex_model_seed(m, 0);
    m->random = advex_model_is_random(m);
    *out = m;
    return ADVEX_OK;
}

advex_status advex_model_share(const advex_model *m, advex_model **out) {
#pragma omp atomic
    m->net->refs++;
    return advex_model_wrap(m->net, out);
}

/* The eval plans' generators restarted at the streams of `key`: the whole-batch plan stream 0,
 * part i stream i + 1. */
static void seed_plans(advex_model *m, uint64_t key) {
    m->rng_key = key;
    advex_rng_seed_stream(&m->plan->rng, key, 0);
    for (int i = 0; i < m->n_part; i++) advex_rng_seed_stream(&m->part[i]->rng, key, (uint64_t)i + 1);
}

void advex_model_seed(advex_model *m, uint64_t seed) {
    m->seed = seed;
    seed_plans(m, seed);
}

/* splitmix64's finaliser: every input bit flips about half of the output bits */
static uint64_t fmix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void advex_model_seed_batch(advex_model *m, int64_t offset, advex_draw_phase phase, int attack) {
    if (!m->random) return; /* nothing draws */
    uint64_t z = fmix64(m->seed ^ 0x243f6a8885a308d3ULL);
    z = fmix64(z + ((uint64_t)offset + 1) * 0x9e3779b97f4a7c15ULL);
    z = fmix64(z ^ ((uint64_t)phase + 1) * 0xc2b2ae3d27d4eb4fULL);
    z = fmix64(z + ((uint64_t)attack + 1) * 0x165667b19e3779f9ULL);
    seed_plans(m, z);
}

int advex_model_is_random(const advex_model *m) {
    const advex_graph *g = &m->net->g;
    for (int i = 0; i < g->n_nodes; i++) {
        advex_op_type op = g->nodes[i].op;
        if ((op >= ADVEX_OP_RANDOM_NORMAL_LIKE && op <= ADVEX_OP_RANDOM_UNIFORM) ||
            (op == ADVEX_OP_DROPOUT && g->nodes[i].a.mode))
            return 1;
    }
    return 0;
}

void advex_model_free(advex_model *m) {
    if (!m) return;
    free_parts(m);
    advex_plan_free(m->plan);
    advex_plan_free(m->train);
    advex_ffree(m->ws);
    free(m->eot_g);
    advex_net_release(m->net);
    free(m);
}

float *advex_model_workspace(advex_model *m, int64_t n) {
    if (n > m->ws_cap) {
        float *w = advex_falloc(n);
        if (!w) {
            advex_alloc_error(n, "the attack/training workspace");
            return NULL;
        }
        advex_ffree(m->ws);
        m->ws = w;
        m->ws_cap = n;
    }
    return m->ws;
}
