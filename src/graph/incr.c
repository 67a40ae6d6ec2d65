/* Incremental forward passes for attacks that change one window of an input at a time
 * (Square, L-inf: each proposal moves one s x s window of the current best point). Each
 * slot caches one example's activations. A proposal recomputes only what the changed window
 * reaches: through each convolution or pool the window grows by the receptive field and is
 * shrunk again to the outputs that did change (a ReLU often absorbs the change); the first
 * dense layer adds W[:, changed] (new - old) to its cached output; the layers after it run in
 * full (vectors of a few hundred). Only nets that are one chain are taken:
 *   image part   Conv (any stride, padding, dilation, groups), MaxPool, BatchNorm (eval),
 *                Relu, LeakyRelu, Clip, Sigmoid, Tanh, Identity, Dropout (eval), and
 *                Add/Sub/Mul/Div by a scalar or per-channel constant
 *   then         Flatten or Reshape to (1, C*H*W), then Gemm or MatMul by a constant
 *   then         Gemm, MatMul by constants and the pointwise ops above (per-feature constants)
 * Anything else (branches, other ops, randomness) is refused: advex_incr_new returns no
 * engine and the caller runs full passes. Convolutions go through advex_conv_patch, whose
 * sums have conv_s2.c's order and rounding; the dense layers' delta form rounds differently
 * from the full pass's sgemm (tests/test_incr.c checks the logits agree to 1e-4 against full
 * passes over thousands of proposals). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ops/kernels.h"

#define INC_STEPS 8    /* pointwise steps fused into one layer */
#define INC_CHUNK 128  /* output positions per advex_conv_patch call */
#define INC_MAX_FLOATS ((int64_t)1 << 28) /* slots beyond 1 GiB: full passes (a large net's batch) */

typedef enum { PW_RELU, PW_LEAKY, PW_CLIP, PW_SIGMOID, PW_TANH, PW_ADD, PW_SUB, PW_RSUB, PW_MUL, PW_DIV, PW_RDIV } pw_kind;

/* y = f(x), f of kind with constant v (v[i] per channel or feature when per, else v[0]) or a,b */
typedef struct inc_pw {
    pw_kind kind;
    float a, b;
    const float *v;
    int per;
} inc_pw;

typedef enum { L_INPUT, L_CONV, L_POOL, L_MAP } inc_kind;

/* One cached value of the image part: (C, H, W) in, (M, OH, OW) out (p's geometry, N = 1). */
typedef struct inc_layer {
    inc_kind kind;
    advex_conv2d_p p;
    float *wt;          /* conv: group g's transposed weights (Kg, ldw) at wt + g Kg ldw (owned) */
    int64_t Kg, Mg, ldw;
    const float *bias;  /* conv bias (M) or NULL */
    float *own;         /* BatchNorm's folded scale and shift (owned) */
    inc_pw pw[INC_STEPS];
    int npw;
    int64_t off, size;  /* its output in a slot */
} inc_layer;

/* A dense layer: y (N) = alpha x bt + beta c (x (K), bt (K, N) row k contiguous, c[n cs]) */
typedef struct inc_dense {
    const float *bt;
    float *own;
    int64_t K, N;
    float alpha, beta;
    const float *c;
    int64_t cs;
} inc_dense;

/* The tail: dense layers and pointwise steps on vectors */
typedef struct inc_tail {
    int dense;          /* 1: d, else pw */
    inc_dense d;
    inc_pw pw;
} inc_tail;

typedef struct inc_box { int64_t r0, r1, c0, c1; } inc_box; /* rows [r0, r1), columns [c0, c1) */

typedef struct inc_thread {
    int64_t *uidx;      /* undo log: slot offsets and old values, in order */
    float *uold;
    int64_t nu, cap;
    int64_t last;       /* where the last image layer's entries start */
    int64_t slot;       /* the slot of the pending proposal (-1: none) */
    int dense;          /* the proposal changed z1 (z1 and z saved) */
    float *pt, *out;    /* patches (INC_CHUNK, Kmax), conv outputs (INC_CHUNK, ldw max) */
    float *z1old, *zold, *acc, *v1, *v2;
    int64_t *drow;      /* the dense input's changed entries and their changes */
    float *ddv;
} inc_thread;

struct advex_incr {
    inc_layer *L;
    int nl;
    inc_dense d1;       /* the first dense layer: z1 = its output, cached */
    inc_tail *T;
    int nt;
    int64_t z1_off, z_off, slot_n, classes, wide;
    float *slots;
    int64_t nslots;
    inc_thread *th;
    int nth;
    float *mem;         /* thread buffers (one block) */
};

/* ---- pointwise steps ---------------------------------------------------------------------- */

static inline float pw_apply(const inc_pw *s, int n, float x, int64_t i) {
    for (int k = 0; k < n; k++) {
        float c = s[k].v ? s[k].v[s[k].per ? i : 0] : 0.0f;
        switch (s[k].kind) {
        case PW_RELU: x = x > 0.0f ? x : 0.0f; break;
        case PW_LEAKY: x = x < 0.0f ? x * s[k].a : x; break;
        case PW_CLIP: x = x < s[k].a ? s[k].a : (x > s[k].b ? s[k].b : x); break;
        case PW_SIGMOID: x = 1.0f / (1.0f + expf(-x)); break;
        case PW_TANH: x = tanhf(x); break;
        case PW_ADD: x = x + c; break;
        case PW_SUB: x = x - c; break;
        case PW_RSUB: x = c - x; break;
        case PW_MUL: x = x * c; break;
        case PW_DIV: x = x / c; break;
        case PW_RDIV: x = c / x; break;
        }
    }
    return x;
}

/* v[e] = the steps applied to v[e], e < cnt, the constants indexed i0 + e di */
static void pw_vec(const inc_pw *s, int n, float *v, int64_t cnt, int64_t i0, int64_t di) {
    for (int k = 0; k < n; k++) {
        const inc_pw *q = &s[k];
        if (q->kind == PW_RELU) {
#pragma omp simd
            for (int64_t e = 0; e < cnt; e++) v[e] = v[e] > 0.0f ? v[e] : 0.0f;
        } else if (q->v && q->per && di == 1 && (q->kind == PW_ADD || q->kind == PW_MUL)) {
            const float *c = q->v + i0;
            if (q->kind == PW_ADD)
                for (int64_t e = 0; e < cnt; e++) v[e] = v[e] + c[e];
            else
                for (int64_t e = 0; e < cnt; e++) v[e] = v[e] * c[e];
        } else {
            for (int64_t e = 0; e < cnt; e++) v[e] = pw_apply(q, 1, v[e], i0 + e * di);
        }
    }
}

/* ---- building the chain ------------------------------------------------------------------- */

/* The constant operand of a binary op on act (the other input), per channel (image part, dims
 * (C,1,1) or (1,C,1,1)) or per feature (dense part, (N) or (1,N)), or a scalar; 0 when not. */
static int const_operand(const advex_value *v, const advex_value *act, int image, const float **data, int *per) {
    if ((v->kind != ADVEX_VAL_PARAM && v->kind != ADVEX_VAL_CONST) || !v->data) return 0;
    int64_t n = advex_numel(v->ndim, v->dims);
    *data = v->data;
    *per = 0;
    if (n == 1) return 1;
    if (image) {
        if (act->ndim != 4 || n != act->dims[1] || v->ndim < 3) return 0;
        for (int i = 0; i < v->ndim; i++)
            if (v->dims[i] != (i == v->ndim - 3 ? act->dims[1] : 1)) return 0;
    } else {
        if (act->ndim != 2 || n != act->dims[1] || v->dims[v->ndim - 1] != n) return 0;
    }
    *per = 1;
    return 1;
}

/* The pointwise step of node nd on the chain value cur; 0 when nd is not one. */
static int pw_of(const advex_node *nd, const advex_value *v, int cur, int image, inc_pw *s, int *skip) {
    memset(s, 0, sizeof *s);
    *skip = 0;
    switch (nd->op) {
    case ADVEX_OP_IDENTITY: *skip = 1; return nd->n_in == 1;
    case ADVEX_OP_DROPOUT: *skip = 1; return 1; /* eval mode */
    case ADVEX_OP_RELU: s->kind = PW_RELU; return 1;
    case ADVEX_OP_LEAKY_RELU: s->kind = PW_LEAKY; s->a = nd->a.alpha; return 1;
    case ADVEX_OP_TANH: s->kind = PW_TANH; return 1;
    case ADVEX_OP_SIGMOID: s->kind = PW_SIGMOID; return nd->a.mode == 0;
    case ADVEX_OP_CLIP:
        for (int i = 1; i < nd->n_in; i++)
            if (nd->in[i] >= 0) return 0;
        s->kind = PW_CLIP;
        s->a = nd->a.min;
        s->b = nd->a.max;
        return 1;
    case ADVEX_OP_ADD: case ADVEX_OP_SUB: case ADVEX_OP_MUL: case ADVEX_OP_DIV: {
        if (nd->n_in != 2) return 0;
        int first = nd->in[0] == cur, other = nd->in[first ? 1 : 0];
        if (other < 0 || other == cur || (!first && nd->in[1] != cur)) return 0;
        if (!const_operand(&v[other], &v[cur], image, &s->v, &s->per)) return 0;
        s->kind = nd->op == ADVEX_OP_ADD ? PW_ADD : nd->op == ADVEX_OP_MUL ? PW_MUL
                  : nd->op == ADVEX_OP_SUB ? (first ? PW_SUB : PW_RSUB) : (first ? PW_DIV : PW_RDIV);
        return 1;
    }
    default: return 0;
    }
}

static advex_status add_layer(advex_incr *e, inc_kind kind) {
    inc_layer *L = realloc(e->L, (size_t)(e->nl + 1) * sizeof *L);
    if (!L) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (incremental passes)");
    e->L = L;
    memset(&L[e->nl], 0, sizeof *L);
    L[e->nl].kind = kind;
    e->nl++;
    return ADVEX_OK;
}

static int add_step(inc_layer *l, const inc_pw *s) {
    if (l->npw >= INC_STEPS) return 0;
    l->pw[l->npw++] = *s;
    return 1;
}

/* conv layer from node nd on value x (1, C, H, W) */
static advex_status conv_layer(inc_layer *l, const advex_node *nd, const advex_value *v, int *ok) {
    const advex_value *X = &v[nd->in[0]], *Wv = &v[nd->in[1]];
    *ok = 0;
    if (nd->in[0] < 0 || nd->in[1] < 0 || X->ndim != 4 || Wv->ndim != 4 || !Wv->data ||
        (Wv->kind != ADVEX_VAL_PARAM && Wv->kind != ADVEX_VAL_CONST))
        return ADVEX_OK;
    advex_conv2d_p *p = &l->p;
    p->N = 1; p->C = X->dims[1]; p->H = X->dims[2]; p->W = X->dims[3];
    p->M = Wv->dims[0]; p->KH = Wv->dims[2]; p->KW = Wv->dims[3];
    p->G = nd->a.group;
    if (p->G <= 0 || p->C % p->G || p->M % p->G || Wv->dims[1] * p->G != p->C) return ADVEX_OK;
    if (advex_window_geom(p, &nd->a, "Conv", nd->name, 0)) return ADVEX_OK;
    if (nd->n_in > 2 && nd->in[2] >= 0) {
        const advex_value *B = &v[nd->in[2]];
        if (!B->data || (B->kind != ADVEX_VAL_PARAM && B->kind != ADVEX_VAL_CONST)) return ADVEX_OK;
        l->bias = B->data;
    }
    l->Kg = Wv->dims[1] * p->KH * p->KW;
    l->Mg = p->M / p->G;
    l->ldw = (l->Mg + 7) / 8 * 8;
    l->wt = calloc((size_t)(p->G * l->Kg * l->ldw), sizeof(float));
    if (!l->wt) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (incremental passes)");
    for (int64_t g = 0; g < p->G; g++)
        for (int64_t m = 0; m < l->Mg; m++)
            for (int64_t k = 0; k < l->Kg; k++)
                l->wt[(g * l->Kg + k) * l->ldw + m] = Wv->data[(g * l->Mg + m) * l->Kg + k];
    *ok = 1;
    return ADVEX_OK;
}

/* dense layer from a Gemm or MatMul node on x (1, K); 0 when not of the form taken */
static advex_status dense_of(inc_dense *d, const advex_node *nd, const advex_value *v, int cur, int *ok) {
    *ok = 0;
    memset(d, 0, sizeof *d);
    if (nd->in[0] != cur || nd->in[1] < 0 || nd->in[1] == cur) return ADVEX_OK;
    const advex_value *A = &v[cur], *B = &v[nd->in[1]];
    if (A->ndim != 2 || A->dims[0] != 1 || B->ndim != 2 || !B->data ||
        (B->kind != ADVEX_VAL_PARAM && B->kind != ADVEX_VAL_CONST))
        return ADVEX_OK;
    int tb = 0;
    d->alpha = 1.0f;
    if (nd->op == ADVEX_OP_GEMM) {
        if (nd->a.trans_a) return ADVEX_OK;
        tb = nd->a.trans_b;
        d->alpha = nd->a.alpha;
        if (nd->n_in > 2 && nd->in[2] >= 0) {
            const advex_value *C = &v[nd->in[2]];
            if (!C->data || C->kind == ADVEX_VAL_INPUT || C->kind == ADVEX_VAL_ACT) return ADVEX_OK;
            d->c = C->data;
            d->beta = nd->a.beta;
        }
    } else if (nd->n_in != 2) {
        return ADVEX_OK;
    }
    d->K = tb ? B->dims[1] : B->dims[0];
    d->N = tb ? B->dims[0] : B->dims[1];
    if (d->K != A->dims[1]) return ADVEX_OK;
    if (d->c) {
        const advex_value *C = &v[nd->in[2]];
        int64_t n = advex_numel(C->ndim, C->dims);
        if (n == d->N && C->dims[C->ndim - 1] == d->N) d->cs = 1;
        else if (n == 1) d->cs = 0;
        else return ADVEX_OK;
    }
    if (!tb) {
        d->bt = B->data;
    } else {
        if (!(d->own = malloc((size_t)(d->K * d->N) * sizeof(float))))
            return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (incremental passes)");
        for (int64_t n = 0; n < d->N; n++)
            for (int64_t k = 0; k < d->K; k++) d->own[k * d->N + n] = B->data[n * d->K + k];
        d->bt = d->own;
    }
    *ok = 1;
    return ADVEX_OK;
}

void advex_incr_free(advex_incr *e) {
    if (!e) return;
    for (int i = 0; i < e->nl; i++) {
        free(e->L[i].wt);
        free(e->L[i].own);
    }
    free(e->L);
    free(e->d1.own);
    for (int i = 0; i < e->nt; i++) free(e->T[i].d.own);
    free(e->T);
    free(e->th);
    advex_ffree(e->slots);
    advex_ffree(e->mem);
    free(e);
}

/* Walk the graph from the input; *ok = 0 when it is not a chain of the ops taken. */
static advex_status build_chain(advex_incr *e, const advex_net *net, const advex_value *v, const int *uses, int *ok) {
    const advex_graph *g = &net->g;
    advex_status st;
    int cur = g->input, phase = 0; /* 0 image part, 1 flattened, 2 after the first dense layer */
    *ok = 0;
    if ((st = add_layer(e, L_INPUT))) return st;
    e->L[0].p.C = e->L[0].p.M = net->in_chw[0];
    e->L[0].p.H = e->L[0].p.OH = net->in_chw[1];
    e->L[0].p.W = e->L[0].p.OW = net->in_chw[2];
    for (int i = 0; i < g->n_nodes; i++) {
        const advex_node *nd = &g->nodes[i];
        if (uses[cur] != 1 || cur == g->output) return ADVEX_OK; /* a branch, or nodes past the output */
        int on = 0;
        for (int k = 0; k < nd->n_in; k++) on += nd->in[k] == cur;
        if (on != 1 || nd->out[0] < 0 || (nd->n_out > 1 && nd->out[1] >= 0 && uses[nd->out[1]])) return ADVEX_OK;
        const advex_value *out = &v[nd->out[0]];
        inc_pw s;
        int skip, okl;
        if (phase == 0) {
            inc_layer *last = &e->L[e->nl - 1];
            if (nd->op == ADVEX_OP_CONV) {
                if (nd->in[0] != cur) return ADVEX_OK;
                if ((st = add_layer(e, L_CONV))) return st;
                if ((st = conv_layer(&e->L[e->nl - 1], nd, v, &okl)) || !okl) return st;
            } else if (nd->op == ADVEX_OP_MAXPOOL) {
                const advex_value *X = &v[cur];
                if (nd->in[0] != cur || X->ndim != 4) return ADVEX_OK;
                if ((st = add_layer(e, L_POOL))) return st;
                advex_conv2d_p *p = &e->L[e->nl - 1].p;
                p->N = 1; p->C = p->M = X->dims[1]; p->H = X->dims[2]; p->W = X->dims[3]; p->G = 1;
                p->KH = nd->a.kernel[0]; p->KW = nd->a.kernel[1];
                if (advex_window_geom(p, &nd->a, "MaxPool", nd->name, 1)) return ADVEX_OK;
            } else if (nd->op == ADVEX_OP_BATCHNORM) {
                if (nd->in[0] != cur || nd->n_in != 5 || v[cur].ndim != 4) return ADVEX_OK;
                int64_t C = v[cur].dims[1];
                for (int k = 1; k < 5; k++)
                    if (nd->in[k] < 0 || !v[nd->in[k]].data || advex_numel(v[nd->in[k]].ndim, v[nd->in[k]].dims) != C)
                        return ADVEX_OK;
                if (last->kind == L_INPUT || last->npw + 2 > INC_STEPS) {
                    if ((st = add_layer(e, L_MAP))) return st;
                    last = &e->L[e->nl - 1];
                }
                float *f = last->own ? NULL : malloc((size_t)(2 * C) * sizeof(float));
                if (!f) return last->own ? ADVEX_OK : advex_set_error(ADVEX_ERR_NOMEM, "out of memory (incremental passes)");
                last->own = f;
                const float *sc = v[nd->in[1]].data, *bb = v[nd->in[2]].data, *mu = v[nd->in[3]].data,
                            *var = v[nd->in[4]].data;
                for (int64_t c = 0; c < C; c++) { /* y = x a + (B - mean a), a = scale / sqrt(var + eps) */
                    float a = sc[c] * (1.0f / sqrtf(var[c] + nd->a.epsilon));
                    f[c] = a;
                    f[C + c] = bb[c] - mu[c] * a;
                }
                inc_pw m = {PW_MUL, 0, 0, f, 1}, ad = {PW_ADD, 0, 0, f + C, 1};
                add_step(last, &m);
                add_step(last, &ad);
            } else if (pw_of(nd, v, cur, 1, &s, &skip)) {
                if (v[cur].ndim != 4) return ADVEX_OK;
                if (!skip) {
                    if (last->kind == L_INPUT || last->npw >= INC_STEPS) {
                        if ((st = add_layer(e, L_MAP))) return st;
                        last = &e->L[e->nl - 1];
                    }
                    add_step(last, &s);
                }
            } else if (nd->op == ADVEX_OP_FLATTEN || nd->op == ADVEX_OP_RESHAPE) {
                if (nd->in[0] != cur || out->ndim != 2 || out->dims[0] != 1 ||
                    out->dims[1] != advex_numel(v[cur].ndim, v[cur].dims))
                    return ADVEX_OK;
                phase = 1;
            } else {
                return ADVEX_OK;
            }
            inc_layer *l = &e->L[e->nl - 1];
            if ((nd->op == ADVEX_OP_CONV || nd->op == ADVEX_OP_MAXPOOL) &&
                (out->ndim != 4 || out->dims[1] != l->p.M || out->dims[2] != l->p.OH || out->dims[3] != l->p.OW))
                return ADVEX_OK;
            if (l->kind == L_MAP && l->p.C == 0) { /* a new pointwise layer: the shape of its input */
                const advex_value *X = &v[cur];
                l->p.N = 1; l->p.C = l->p.M = X->dims[1]; l->p.H = l->p.OH = X->dims[2]; l->p.W = l->p.OW = X->dims[3];
                l->p.KH = l->p.KW = l->p.SH = l->p.SW = l->p.DH = l->p.DW = 1;
            }
        } else if (nd->op == ADVEX_OP_GEMM || nd->op == ADVEX_OP_MATMUL) {
            inc_dense d;
            if ((st = dense_of(&d, nd, v, cur, &okl)) || !okl) return st;
            if (phase == 1) {
                e->d1 = d;
                phase = 2;
            } else {
                inc_tail *T = realloc(e->T, (size_t)(e->nt + 1) * sizeof *T);
                if (!T) { free(d.own); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (incremental passes)"); }
                e->T = T;
                memset(&T[e->nt], 0, sizeof *T);
                T[e->nt].dense = 1;
                T[e->nt++].d = d;
            }
        } else if (phase == 2 && pw_of(nd, v, cur, 0, &s, &skip)) {
            if (v[cur].ndim != 2 || out->ndim != 2) return ADVEX_OK;
            if (!skip) {
                inc_tail *T = realloc(e->T, (size_t)(e->nt + 1) * sizeof *T);
                if (!T) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (incremental passes)");
                e->T = T;
                memset(&T[e->nt], 0, sizeof *T);
                T[e->nt++].pw = s;
            }
        } else if (phase == 2 && (nd->op == ADVEX_OP_FLATTEN || nd->op == ADVEX_OP_RESHAPE)) {
            if (nd->in[0] != cur || out->ndim != 2 || v[cur].ndim != 2 || out->dims[1] != v[cur].dims[1]) return ADVEX_OK;
        } else {
            return ADVEX_OK;
        }
        cur = nd->out[0];
    }
    if (cur != g->output || phase != 2) return ADVEX_OK;
    /* the slot: the image part's values, z1, the logits */
    int64_t off = 0, kmax = 1, wmax = 8;
    for (int i = 0; i < e->nl; i++) {
        inc_layer *l = &e->L[i];
        l->off = off;
        l->size = l->p.M * l->p.OH * l->p.OW;
        off += l->size;
        if (l->kind == L_CONV) {
            kmax = l->Kg > kmax ? l->Kg : kmax;
            wmax = l->ldw > wmax ? l->ldw : wmax;
        }
    }
    if (e->L[e->nl - 1].size != e->d1.K) return ADVEX_OK;
    int64_t width = e->d1.N;
    for (int i = 0; i < e->nt; i++)
        if (e->T[i].dense) {
            if (e->T[i].d.K != width) return ADVEX_OK;
            width = e->T[i].d.N;
        }
    if (width != net->classes) return ADVEX_OK;
    e->z1_off = off;
    off += e->d1.N;
    e->z_off = off;
    e->classes = net->classes;
    off += net->classes;
    e->slot_n = (off + 15) / 16 * 16;
    e->wide = e->d1.N;
    for (int i = 0; i < e->nt; i++)
        if (e->T[i].dense) e->wide = e->T[i].d.N > e->wide ? e->T[i].d.N : e->wide;
    /* per thread: undo log (slot_n offsets and values), patches, conv outputs, saved z1 and z,
     * three vectors */
    const int64_t K1 = (e->d1.K + 1) / 2 * 2;
    int64_t per = 3 * e->slot_n + 3 * K1 + INC_CHUNK * (kmax + wmax) + 16 + e->d1.N + e->classes + 3 * e->wide;
    per = (per + 15) / 16 * 16;
    if (!(e->mem = advex_falloc(per * e->nth))) return advex_alloc_error(per * e->nth, "incremental passes");
    for (int t = 0; t < e->nth; t++) {
        inc_thread *T = &e->th[t];
        float *b = e->mem + per * t;
        T->uidx = (int64_t *)b; /* (slot_n int64: the room of 2 slot_n floats; per and slot_n are even) */
        T->uold = b + 2 * e->slot_n;
        T->cap = e->slot_n;
        T->drow = (int64_t *)(T->uold + e->slot_n);
        T->ddv = T->uold + e->slot_n + 2 * K1;
        T->pt = T->ddv + K1;
        T->out = T->pt + INC_CHUNK * kmax + 16; /* (+ 16: the gather's whole-vector copies) */
        T->z1old = T->out + INC_CHUNK * wmax;
        T->zold = T->z1old + e->d1.N;
        T->acc = T->zold + e->classes;
        T->v1 = T->acc + e->wide;
        T->v2 = T->v1 + e->wide;
        T->slot = -1;
    }
    *ok = 1;
    return ADVEX_OK;
}

advex_status advex_incr_new(const advex_net *net, int64_t slots, int threads, advex_incr **out) {
    *out = NULL;
    if (!net->classes || !net->in_chw[0] || slots <= 0) return ADVEX_OK;
    advex_plan *p;
    advex_status st = advex_plan_new(net, &p);
    if (st) return st;
    p->shapes_only = 1;
    int *uses = NULL;
    advex_incr *e = NULL;
    int ok = 0;
    if ((st = advex_plan_images(p, 1, 0, 0))) goto done;
    if (!(uses = advex_graph_uses(&net->g))) { st = ADVEX_ERR_NOMEM; goto done; }
    if (!(e = calloc(1, sizeof *e))) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
    e->nth = threads < 1 ? 1 : threads;
    if (!(e->th = calloc((size_t)e->nth, sizeof *e->th))) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto done; }
    if ((st = build_chain(e, net, p->v, uses, &ok)) || !ok) goto done;
    /* the slots, when they fit (else full passes) */
    int64_t total;
    /* (+ 16: the gather reads whole vectors; past the last slot's end they are never used) */
    ok = advex_mul_i64(e->slot_n, slots, &total) && advex_add_i64(total, 16, &total) && total <= INC_MAX_FLOATS &&
         advex_mem_fits(total * (int64_t)sizeof(float)) && (e->slots = advex_falloc(total)) != NULL;
    e->nslots = slots;
done:
    free(uses);
    advex_plan_free(p);
    if (st || !ok) {
        advex_incr_free(e);
        return st;
    }
    *out = e;
    return ADVEX_OK;
}

/* ---- passes ------------------------------------------------------------------------------- */

static inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* The outputs of a window op (conv, pool) that the input box reaches; 0 when none. */
static int win_box(const advex_conv2d_p *p, const inc_box *in, inc_box *o) {
    int64_t eh = (p->KH - 1) * p->DH, ew = (p->KW - 1) * p->DW;
    o->r0 = -floor_div(-(in->r0 + p->PT - eh), p->SH);
    o->r1 = floor_div(in->r1 - 1 + p->PT, p->SH) + 1;
    o->c0 = -floor_div(-(in->c0 + p->PL - ew), p->SW);
    o->c1 = floor_div(in->c1 - 1 + p->PL, p->SW) + 1;
    if (o->r0 < 0) o->r0 = 0;
    if (o->c0 < 0) o->c0 = 0;
    if (o->r1 > p->OH) o->r1 = p->OH;
    if (o->c1 > p->OW) o->c1 = p->OW;
    return o->r0 < o->r1 && o->c0 < o->c1;
}

static const inc_box box_none = {INT64_MAX, INT64_MIN, INT64_MAX, INT64_MIN};

/* base[q] = v at position (r, c) of its plane; when the bits change: the old value into the
 * undo log (log) and the changed box grown */
static inline void put(float *base, int64_t q, float v, inc_thread *t, inc_box *chg, int64_t r, int64_t c, int log) {
    uint32_t a, b;
    memcpy(&a, &base[q], sizeof a);
    memcpy(&b, &v, sizeof b);
    if (a == b) return;
    if (log) {
        t->uidx[t->nu] = q;
        t->uold[t->nu++] = base[q];
    }
    base[q] = v;
    if (r < chg->r0) chg->r0 = r;
    if (r + 1 > chg->r1) chg->r1 = r + 1;
    if (c < chg->c0) chg->c0 = c;
    if (c + 1 > chg->c1) chg->c1 = c + 1;
}

/* layer li's outputs in box ob from layer li-1's (slot base) */
static void layer_run(const advex_incr *e, int li, float *base, const inc_box *ob, inc_thread *t, inc_box *chg,
                      int log) {
    const inc_layer *l = &e->L[li];
    const advex_conv2d_p *p = &l->p;
    const float *in = base + e->L[li - 1].off;
    const int64_t H = p->H, W = p->W, OH = p->OH, OW = p->OW, ow_n = ob->c1 - ob->c0;
    if (l->kind == L_MAP) {
        float *v = t->out;
        for (int64_t c = 0; c < p->C; c++)
            for (int64_t r = ob->r0; r < ob->r1; r++) {
                int64_t i = (c * H + r) * W + ob->c0;
                memcpy(v, in + i, (size_t)ow_n * sizeof(float));
                pw_vec(l->pw, l->npw, v, ow_n, c, 0);
                for (int64_t q = 0; q < ow_n; q++) put(base, l->off + i + q, v[q], t, chg, r, ob->c0 + q, log);
            }
        return;
    }
    if (l->kind == L_POOL) {
        for (int64_t c = 0; c < p->C; c++)
            for (int64_t oh = ob->r0; oh < ob->r1; oh++)
                for (int64_t ow = ob->c0; ow < ob->c1; ow++) {
                    float mx = 0.0f;
                    int any = 0;
                    for (int64_t kh = 0; kh < p->KH; kh++) {
                        int64_t ih = oh * p->SH - p->PT + kh * p->DH;
                        if (ih < 0 || ih >= H) continue;
                        for (int64_t kw = 0; kw < p->KW; kw++) {
                            int64_t iw = ow * p->SW - p->PL + kw * p->DW;
                            if (iw < 0 || iw >= W) continue;
                            float x = in[(c * H + ih) * W + iw];
                            if (!any || x > mx) mx = x;
                            any = 1;
                        }
                    }
                    put(base, l->off + (c * OH + oh) * OW + ow, pw_apply(l->pw, l->npw, mx, c), t, chg, oh, ow, log);
                }
        return;
    }
    /* conv: chunks of positions, per group the patches then advex_conv_patch */
    const int64_t Cg = p->C / p->G, P = (ob->r1 - ob->r0) * ow_n;
    for (int64_t p0 = 0; p0 < P; p0 += INC_CHUNK) {
        int64_t np = P - p0 < INC_CHUNK ? P - p0 : INC_CHUNK;
        for (int64_t g = 0; g < p->G; g++) {
            float *pt = t->pt;
            for (int64_t j = 0; j < np; j++) {
                int64_t oh = ob->r0 + (p0 + j) / ow_n, ow = ob->c0 + (p0 + j) % ow_n;
                const int64_t iw0 = ow * p->SW - p->PL, inner = iw0 >= 0 && iw0 + (p->KW - 1) * p->DW < W;
                for (int64_t cl = 0; cl < Cg; cl++) {
                    const float *ic = in + (g * Cg + cl) * H * W;
                    for (int64_t kh = 0; kh < p->KH; kh++, pt += p->KW) {
                        int64_t ih = oh * p->SH - p->PT + kh * p->DH;
                        if (ih < 0 || ih >= H) {
                            for (int64_t kw = 0; kw < p->KW; kw++) pt[kw] = 0.0f;
                            continue;
                        }
                        const float *row = ic + ih * W + iw0;
                        if (inner && p->DW == 1 && p->KW <= 8) {
                            memcpy(pt, row, 8 * sizeof(float)); /* (one vector: the rest is overwritten next) */
                        } else if (inner && p->DW == 1) {
                            memcpy(pt, row, (size_t)p->KW * sizeof(float));
                        } else {
                            for (int64_t kw = 0; kw < p->KW; kw++) {
                                int64_t iw = iw0 + kw * p->DW;
                                pt[kw] = iw >= 0 && iw < W ? row[kw * p->DW] : 0.0f;
                            }
                        }
                    }
                }
            }
            advex_conv_patch(t->out, l->ldw, l->wt + g * l->Kg * l->ldw, l->ldw, l->Kg, t->pt, np);
            for (int64_t j = 0; j < np; j++) {
                int64_t oh = ob->r0 + (p0 + j) / ow_n, ow = ob->c0 + (p0 + j) % ow_n;
                float *v = t->out + j * l->ldw;
                const float *bias = l->bias ? l->bias + g * l->Mg : NULL;
                if (bias)
                    for (int64_t ml = 0; ml < l->Mg; ml++) v[ml] = v[ml] + bias[ml];
                else
                    for (int64_t ml = 0; ml < l->Mg; ml++) v[ml] = v[ml] + 0.0f;
                pw_vec(l->pw, l->npw, v, l->Mg, g * l->Mg, 1);
                float *o = base + l->off + (g * l->Mg * OH + oh) * OW + ow;
                for (int64_t ml = 0; ml < l->Mg; ml++, o += OH * OW) {
                    uint32_t a, b;
                    memcpy(&a, o, sizeof a);
                    memcpy(&b, &v[ml], sizeof b);
                    if (a != b) put(base, o - base, v[ml], t, chg, oh, ow, log);
                }
            }
        }
    }
}

/* y (N) = alpha x bt + beta c, acc (N) scratch; zero entries of x skipped */
static void dense_full(const inc_dense *d, const float *x, float *y, float *acc) {
    const int64_t N = d->N;
    for (int64_t n = 0; n < N; n++) acc[n] = 0.0f;
    for (int64_t k = 0; k < d->K; k++) {
        float xk = x[k];
        if (xk == 0.0f) continue;
        const float *b = d->bt + k * N;
#pragma omp simd
        for (int64_t n = 0; n < N; n++) acc[n] += xk * b[n];
    }
    for (int64_t n = 0; n < N; n++) y[n] = d->alpha * acc[n] + (d->c ? d->beta * d->c[n * d->cs] : 0.0f);
}

/* z (classes) from z1 through the tail */
static void tail_run(const advex_incr *e, const float *z1, float *z, inc_thread *t) {
    const float *x = z1;
    int64_t n = e->d1.N;
    float *buf[2] = {t->v1, t->v2};
    int w = 0;
    for (int i = 0; i < e->nt; i++) {
        float *y = buf[w];
        w ^= 1;
        if (e->T[i].dense) {
            dense_full(&e->T[i].d, x, y, t->acc);
            n = e->T[i].d.N;
        } else {
            memcpy(y, x, (size_t)n * sizeof(float));
            pw_vec(&e->T[i].pw, 1, y, n, 0, 1);
        }
        x = y;
    }
    memcpy(z, x, (size_t)e->classes * sizeof(float));
}

void advex_incr_set(advex_incr *e, int64_t slot, const float *x, float *z, int th) {
    float *base = e->slots + slot * e->slot_n;
    inc_thread *t = &e->th[th];
    memcpy(base, x, (size_t)e->L[0].size * sizeof(float));
    for (int li = 1; li < e->nl; li++) {
        const inc_layer *l = &e->L[li];
        inc_box all = {0, l->p.OH, 0, l->p.OW}, chg = box_none;
        memset(base + l->off, 0, (size_t)l->size * sizeof(float)); /* (defined bits for put's comparison) */
        layer_run(e, li, base, &all, t, &chg, 0);
    }
    dense_full(&e->d1, base + e->L[e->nl - 1].off, base + e->z1_off, t->acc);
    tail_run(e, base + e->z1_off, base + e->z_off, t);
    memcpy(z, base + e->z_off, (size_t)e->classes * sizeof(float));
    t->slot = -1;
}

void advex_incr_try(advex_incr *e, int64_t slot, const float *x, int64_t r0, int64_t r1, int64_t c0, int64_t c1,
                    float *z, int th) {
    float *base = e->slots + slot * e->slot_n;
    inc_thread *t = &e->th[th];
    const inc_layer *l0 = &e->L[0];
    t->nu = 0;
    t->slot = slot;
    t->dense = 0;
    t->last = e->nl == 1 ? 0 : -1;
    inc_box chg = box_none;
    for (int64_t c = 0; c < l0->p.C; c++)
        for (int64_t r = r0; r < r1; r++)
            for (int64_t q = c0; q < c1; q++) {
                int64_t i = (c * l0->p.H + r) * l0->p.W + q;
                put(base, i, x[i], t, &chg, r, q, 1);
            }
    for (int li = 1; li < e->nl && chg.r0 < chg.r1; li++) {
        const inc_layer *l = &e->L[li];
        inc_box ob = chg;
        chg = box_none;
        if (l->kind != L_MAP && !win_box(&l->p, &ob, &ob)) break;
        if (li == e->nl - 1) t->last = t->nu;
        layer_run(e, li, base, &ob, t, &chg, 1);
    }
    if (t->last < 0) t->last = t->nu;
    if (t->nu > t->last) { /* the dense input changed: z1 += alpha W[:, changed] (new - old) */
        const inc_dense *d = &e->d1;
        const int64_t off = e->L[e->nl - 1].off, N = d->N;
        float *acc = t->acc, *z1 = base + e->z1_off;
        int64_t cnt = 0, *row = t->drow;
        float *dv = t->ddv;
        for (int64_t u = t->last; u < t->nu; u++) {
            float v = base[t->uidx[u]] - t->uold[u];
            if (v == 0.0f) continue;
            row[cnt] = t->uidx[u] - off;
            dv[cnt++] = v;
        }
        for (int64_t n = 0; n < N; n++) acc[n] = 0.0f;
        advex_rows_axpy(acc, N, d->bt, row, dv, cnt);
        memcpy(t->z1old, z1, (size_t)N * sizeof(float));
        memcpy(t->zold, base + e->z_off, (size_t)e->classes * sizeof(float));
        for (int64_t n = 0; n < N; n++) z1[n] += d->alpha * acc[n];
        tail_run(e, z1, base + e->z_off, t);
        t->dense = 1;
    }
    memcpy(z, base + e->z_off, (size_t)e->classes * sizeof(float));
}

void advex_incr_keep(advex_incr *e, int th) { e->th[th].slot = -1; }

void advex_incr_undo(advex_incr *e, int th) {
    inc_thread *t = &e->th[th];
    if (t->slot < 0) return;
    float *base = e->slots + t->slot * e->slot_n;
    for (int64_t u = t->nu - 1; u >= 0; u--) base[t->uidx[u]] = t->uold[u];
    if (t->dense) {
        memcpy(base + e->z1_off, t->z1old, (size_t)e->d1.N * sizeof(float));
        memcpy(base + e->z_off, t->zold, (size_t)e->classes * sizeof(float));
    }
    t->slot = -1;
}
