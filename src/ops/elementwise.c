/* Add, Sub, Mul, Div with numpy multidirectional broadcasting. Backward sums the gradient
 * over broadcast dims (serially for a broadcast operand, in parallel for a full-size one);
 * it stores rather than adds for an operand in gradient write mode (grad_write). */
#include <string.h>

#include "ops/kernels.h"

typedef struct bin_p {
    int nd;                          /* output rank */
    int64_t dims[ADVEX_MAX_DIMS];    /* output dims */
    int64_t sa[ADVEX_MAX_DIMS], sb[ADVEX_MAX_DIMS];
    int64_t n, last, rows;
    int a_full, b_full;              /* operand has the output's shape */
} bin_p;

static const char *bin_name(advex_op_type op) {
    return op == ADVEX_OP_ADD ? "Add" : op == ADVEX_OP_SUB ? "Sub" : op == ADVEX_OP_MUL ? "Mul" : "Div";
}

static advex_status bin_geom(const advex_node *nd, const advex_value *v, bin_p *p) {
    const advex_value *A = &v[nd->in[0]], *B = &v[nd->in[1]];
    char ba[96], bb[96];
    if (!advex_bcast_shape(&p->nd, p->dims, A->ndim, A->dims, B->ndim, B->dims))
        return advex_set_error(ADVEX_ERR_SHAPE, "%s %s: shapes %s and %s do not broadcast", bin_name(nd->op), nd->name,
                               advex_shape_str(ba, sizeof ba, A->ndim, A->dims),
                               advex_shape_str(bb, sizeof bb, B->ndim, B->dims));
    advex_bcast_strides(p->sa, p->nd, p->dims, A->ndim, A->dims);
    advex_bcast_strides(p->sb, p->nd, p->dims, B->ndim, B->dims);
    p->n = advex_numel(p->nd, p->dims);
    p->last = p->nd ? p->dims[p->nd - 1] : 1;
    p->rows = p->last > 0 ? p->n / p->last : 0;
    p->a_full = advex_val_numel(A) == p->n;
    p->b_full = advex_val_numel(B) == p->n;
    return ADVEX_OK;
}

advex_status advex_binary_infer(const advex_node *nd, advex_value *v) {
    bin_p p;
    advex_status st = bin_geom(nd, v, &p);
    if (st) return st;
    advex_set_shape(&v[nd->out[0]], p.nd, p.dims);
    return ADVEX_OK;
}

/* offsets of the first element of output row `row` in A and B */
static void row_offsets(const bin_p *p, int64_t row, int64_t *ao, int64_t *bo) {
    int64_t a = 0, b = 0;
    for (int d = p->nd - 2; d >= 0; d--) {
        int64_t i = row % p->dims[d];
        row /= p->dims[d];
        a += i * p->sa[d];
        b += i * p->sb[d];
    }
    *ao = a;
    *bo = b;
}

/* y = a + b | a - b | a * b | a / b */
void advex_binary_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    bin_p p;
    if (bin_geom(nd, v, &p)) return;
    const float *a = v[nd->in[0]].data, *b = v[nd->in[1]].data;
    float *y = v[nd->out[0]].data;
    advex_op_type op = nd->op;
    int relu = nd->relu_out; /* a fused Relu (fuse.c, mark_relu_fusion; Add only) */
    int64_t la = p.nd ? p.sa[p.nd - 1] : 0, lb = p.nd ? p.sb[p.nd - 1] : 0, L = p.last;
#pragma omp parallel for schedule(static) if (p.n >= ADVEX_OMP_MIN)
    for (int64_t r = 0; r < p.rows; r++) {
        int64_t ao, bo;
        row_offsets(&p, r, &ao, &bo);
        const float *ar = a + ao, *br = b + bo;
        float *yr = y + r * L;
        if (op == ADVEX_OP_ADD && la == 1 && lb == 1) { /* same shape: contiguous, vectorised */
            if (relu) {
#pragma omp simd
                for (int64_t j = 0; j < L; j++) {
                    float t = ar[j] + br[j];
                    yr[j] = t > 0.0f ? t : 0.0f;
                }
            } else {
#pragma omp simd
                for (int64_t j = 0; j < L; j++) yr[j] = ar[j] + br[j];
            }
            continue;
        }
        switch (op) {
        case ADVEX_OP_ADD: for (int64_t j = 0; j < L; j++) yr[j] = ar[j * la] + br[j * lb]; break;
        case ADVEX_OP_SUB: for (int64_t j = 0; j < L; j++) yr[j] = ar[j * la] - br[j * lb]; break;
        case ADVEX_OP_MUL: for (int64_t j = 0; j < L; j++) yr[j] = ar[j * la] * br[j * lb]; break;
        default: for (int64_t j = 0; j < L; j++) yr[j] = ar[j * la] / br[j * lb]; break;
        }
        if (relu)
            for (int64_t j = 0; j < L; j++) yr[j] = yr[j] > 0.0f ? yr[j] : 0.0f;
    }
}

/* da += dy * (1 | 1 | b | 1/b);  db += dy * (1 | -1 | a | -a/b^2), summed over broadcast dims.
 * write (the operand's grad_write): store instead of add. A full-size operand's elements
 * each get exactly one term, so they are stored directly; a broadcast operand's grad is a
 * sum over several output elements, so it is zeroed first and accumulated. */
static void bin_grad(const bin_p *p, advex_op_type op, int which, float *g, const float *dy, const float *a,
                     const float *b, int64_t gn, int write) {
    int64_t la = p->nd ? p->sa[p->nd - 1] : 0, lb = p->nd ? p->sb[p->nd - 1] : 0, L = p->last;
    int full = which == 0 ? p->a_full : p->b_full;
    if (write && !full) {
        memset(g, 0, (size_t)gn * sizeof(float));
        write = 0;
    }
/* g[j*lg] = val or += val; the branch is loop-invariant */
#define BIN_PUT_(idx, val)                      \
    do {                                        \
        if (write) gr[idx] = (val);             \
        else gr[idx] += (val);                  \
    } while (0)
#pragma omp parallel for schedule(static) if (full && p->n >= ADVEX_OMP_MIN)
    for (int64_t r = 0; r < p->rows; r++) {
        int64_t ao, bo;
        row_offsets(p, r, &ao, &bo);
        const float *ar = a + ao, *br = b + bo, *d = dy + r * L;
        float *gr = g + (which == 0 ? ao : bo);
        int64_t lg = which == 0 ? la : lb;
        if (op == ADVEX_OP_ADD && lg == 1) { /* contiguous, vectorised */
            if (write) {
#pragma omp simd
                for (int64_t j = 0; j < L; j++) gr[j] = d[j];
            } else {
#pragma omp simd
                for (int64_t j = 0; j < L; j++) gr[j] += d[j];
            }
            continue;
        }
        if (which == 0) {
            switch (op) {
            case ADVEX_OP_ADD: case ADVEX_OP_SUB: for (int64_t j = 0; j < L; j++) BIN_PUT_(j * lg, d[j]); break;
            case ADVEX_OP_MUL: for (int64_t j = 0; j < L; j++) BIN_PUT_(j * lg, d[j] * br[j * lb]); break;
            default: for (int64_t j = 0; j < L; j++) BIN_PUT_(j * lg, d[j] / br[j * lb]); break;
            }
        } else {
            switch (op) {
            case ADVEX_OP_ADD: for (int64_t j = 0; j < L; j++) BIN_PUT_(j * lg, d[j]); break;
            case ADVEX_OP_SUB: for (int64_t j = 0; j < L; j++) BIN_PUT_(j * lg, -d[j]); break;
            case ADVEX_OP_MUL: for (int64_t j = 0; j < L; j++) BIN_PUT_(j * lg, d[j] * ar[j * la]); break;
            default:
                for (int64_t j = 0; j < L; j++) {
                    float bv = br[j * lb];
                    BIN_PUT_(j * lg, -(d[j] * ar[j * la] / (bv * bv)));
                }
                break;
            }
        }
    }
#undef BIN_PUT_
}

void advex_binary_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    bin_p p;
    if (bin_geom(nd, v, &p)) return;
    const advex_value *A = &v[nd->in[0]], *B = &v[nd->in[1]];
    float *dy = v[nd->out[0]].grad;
    if (nd->relu_mask) { /* a fused Relu's backward (fuse.c, mark_aliases): dy *= [y > 0] */
        const float *y = v[nd->out[0]].data;
        int64_t n = advex_val_numel(&v[nd->out[0]]);
        float *ga = A->grad, *gb = B->grad;
        if (nd->op == ADVEX_OP_ADD && p.a_full && p.b_full && ga && gb && ga != gb && p.nd && p.sa[p.nd - 1] == 1 &&
            p.sb[p.nd - 1] == 1) { /* residual Add (same shapes): one pass, each grad stored or added */
#define ADD_MASKED_(A_, B_)                                                          \
    _Pragma("omp parallel for simd schedule(static) if (n >= ADVEX_OMP_MIN)")        \
    for (int64_t i = 0; i < n; i++) {                                                \
        float g = dy[i];                                                             \
        g = y[i] > 0.0f ? g : 0.0f;                                                  \
        ga[i] = A_;                                                                  \
        gb[i] = B_;                                                                  \
    }
            int wa = A->grad_write, wb = B->grad_write;
            if (wa && wb) {
                ADD_MASKED_(g, g)
            } else if (wa) {
                ADD_MASKED_(g, gb[i] + g)
            } else if (wb) {
                ADD_MASKED_(ga[i] + g, g)
            } else {
                ADD_MASKED_(ga[i] + g, gb[i] + g)
            }
#undef ADD_MASKED_
            return;
        }
        advex_relu_mask(dy, y, n);
    }
    if (A->grad) bin_grad(&p, nd->op, 0, A->grad, dy, A->data, B->data, advex_val_numel(A), A->grad_write);
    if (B->grad) bin_grad(&p, nd->op, 1, B->grad, dy, A->data, B->data, advex_val_numel(B), B->grad_write);
}
