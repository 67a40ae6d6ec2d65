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

/* ---- the kernels, on the collapsed geometry ------------------------------------------------
 * Adjacent output dims that both operands step through alike (contiguously, or both
 * broadcast) merge into one, and size-1 dims go: a Mul of (N,C,H,W) by an SE block's
 * (N,C,1,1) becomes rows of H*W elements times one scalar per row, a same-shape Add one
 * long row. Rows (or, for long rows, chunks of BIN_CHUNK elements) are the parallel units;
 * the inner loops are specialised on the last stride of each operand (1 or 0) so that they
 * vectorise. Every output element is computed by one thread in a fixed order: results do
 * not depend on the thread count. */

#define BIN_CHUNK 8192

typedef struct bin_c {
    int nd;
    int64_t dims[ADVEX_MAX_DIMS], sa[ADVEX_MAX_DIMS], sb[ADVEX_MAX_DIMS];
    int64_t L, rows, la, lb; /* last dim, rows, last strides */
} bin_c;

static void bin_collapse(const bin_p *p, bin_c *c) {
    int k = 0;
    for (int d = 0; d < p->nd; d++) {
        if (p->dims[d] == 1) continue;
        if (k > 0 && c->sa[k - 1] == p->sa[d] * p->dims[d] && c->sb[k - 1] == p->sb[d] * p->dims[d]) {
            c->dims[k - 1] *= p->dims[d];
            c->sa[k - 1] = p->sa[d];
            c->sb[k - 1] = p->sb[d];
            continue;
        }
        c->dims[k] = p->dims[d];
        c->sa[k] = p->sa[d];
        c->sb[k] = p->sb[d];
        k++;
    }
    if (k == 0) { /* one element */
        c->dims[0] = 1;
        c->sa[0] = c->sb[0] = 0;
        k = 1;
    }
    c->nd = k;
    c->L = c->dims[k - 1];
    c->rows = p->n / (c->L > 0 ? c->L : 1);
    c->la = c->sa[k - 1];
    c->lb = c->sb[k - 1];
}

/* offsets of the first element of output row `row` in A and B */
static void row_offsets(const bin_c *p, int64_t row, int64_t *ao, int64_t *bo) {
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

/* yr[j] = EXPR of x = a's and z = b's element j, for j < len, with the operands' last
 * strides la and lb specialised when 1 or 0 */
#define BIN_LOOP_(yr, ar, br, la, lb, len, EXPR)                                       \
    do {                                                                               \
        if ((la) == 1 && (lb) == 1) {                                                  \
            _Pragma("omp simd") for (int64_t j = 0; j < (len); j++) {                  \
                float x = (ar)[j], z = (br)[j];                                        \
                (yr)[j] = (EXPR);                                                      \
            }                                                                          \
        } else if ((la) == 1 && (lb) == 0) {                                           \
            float z = (br)[0];                                                         \
            _Pragma("omp simd") for (int64_t j = 0; j < (len); j++) {                  \
                float x = (ar)[j];                                                     \
                (yr)[j] = (EXPR);                                                      \
            }                                                                          \
        } else if ((la) == 0 && (lb) == 1) {                                           \
            float x = (ar)[0];                                                         \
            _Pragma("omp simd") for (int64_t j = 0; j < (len); j++) {                  \
                float z = (br)[j];                                                     \
                (yr)[j] = (EXPR);                                                      \
            }                                                                          \
        } else {                                                                       \
            for (int64_t j = 0; j < (len); j++) {                                      \
                float x = (ar)[j * (la)], z = (br)[j * (lb)];                          \
                (yr)[j] = (EXPR);                                                      \
            }                                                                          \
        }                                                                              \
    } while (0)

/* y = a + b | a - b | a * b | a / b */
void advex_binary_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    bin_p p;
    if (bin_geom(nd, v, &p)) return;
    bin_c q;
    bin_collapse(&p, &q);
    const float *a = v[nd->in[0]].data, *b = v[nd->in[1]].data;
    float *y = v[nd->out[0]].data;
    advex_op_type op = nd->op;
    int relu = nd->relu_out; /* a fused Relu (fuse.c, mark_relu_fusion; Add only) */
    int64_t L = q.L, la = q.la, lb = q.lb, nck = (L + BIN_CHUNK - 1) / BIN_CHUNK, units = q.rows * nck;
#pragma omp parallel for schedule(static) if (p.n >= ADVEX_OMP_MIN)
    for (int64_t u = 0; u < units; u++) {
        int64_t r = u / nck, j0 = (u % nck) * BIN_CHUNK, len = L - j0 < BIN_CHUNK ? L - j0 : BIN_CHUNK, ao, bo;
        row_offsets(&q, r, &ao, &bo);
        const float *ar = a + ao + j0 * la, *br = b + bo + j0 * lb;
        float *yr = y + r * L + j0;
        switch (op) {
        case ADVEX_OP_ADD: BIN_LOOP_(yr, ar, br, la, lb, len, x + z); break;
        case ADVEX_OP_SUB: BIN_LOOP_(yr, ar, br, la, lb, len, x - z); break;
        case ADVEX_OP_MUL: BIN_LOOP_(yr, ar, br, la, lb, len, x * z); break;
        default: BIN_LOOP_(yr, ar, br, la, lb, len, x / z); break;
        }
        if (relu)
#pragma omp simd
            for (int64_t j = 0; j < len; j++) yr[j] = yr[j] > 0.0f ? yr[j] : 0.0f;
    }
}

/* The local gradient of operand `which` at one element: dy d, a's x, b's z. */
#define BIN_LOCAL_(op, which, d, x, z)                                                           \
    ((which) == 0 ? ((op) == ADVEX_OP_MUL ? (d) * (z) : (op) == ADVEX_OP_DIV ? (d) / (z) : (d))   \
                  : ((op) == ADVEX_OP_ADD   ? (d)                                                 \
                     : (op) == ADVEX_OP_SUB ? -(d)                                                \
                     : (op) == ADVEX_OP_MUL ? (d) * (x)                                           \
                                            : -((d) * (x) / ((z) * (z)))))

/* A full-size operand's grad (one term per element): gr[j] = or += local, j < len. */
static void bin_grad_full(advex_op_type op, int which, float *gr, const float *d, const float *ar, const float *br,
                          int64_t la, int64_t lb, int64_t len, int write) {
/* the expression per (op, which) with `d` the dy row: BIN_LOOP_ reads d as a third operand
 * through the pointer arithmetic below */
#define BIN_FULL_(OP, W)                                                                        \
    do {                                                                                        \
        if (write) BIN_LOOP3_(gr, d, ar, br, la, lb, len, BIN_LOCAL_(OP, W, dd, x, z), =);      \
        else BIN_LOOP3_(gr, d, ar, br, la, lb, len, BIN_LOCAL_(OP, W, dd, x, z), +=);          \
    } while (0)
#define BIN_LOOP3_(gr, d, ar, br, la, lb, len, EXPR, ASSIGN)                                   \
    do {                                                                                        \
        if ((la) == 1 && (lb) == 1) {                                                           \
            _Pragma("omp simd") for (int64_t j = 0; j < (len); j++) {                           \
                float dd = (d)[j], x = (ar)[j], z = (br)[j];                                    \
                (gr)[j] ASSIGN(EXPR);                                                           \
            }                                                                                   \
        } else if ((la) == 1 && (lb) == 0) {                                                    \
            float z = (br)[0];                                                                  \
            _Pragma("omp simd") for (int64_t j = 0; j < (len); j++) {                           \
                float dd = (d)[j], x = (ar)[j];                                                 \
                (gr)[j] ASSIGN(EXPR);                                                           \
            }                                                                                   \
        } else if ((la) == 0 && (lb) == 1) {                                                    \
            float x = (ar)[0];                                                                  \
            _Pragma("omp simd") for (int64_t j = 0; j < (len); j++) {                           \
                float dd = (d)[j], z = (br)[j];                                                 \
                (gr)[j] ASSIGN(EXPR);                                                           \
            }                                                                                   \
        } else {                                                                                \
            for (int64_t j = 0; j < (len); j++) {                                               \
                float dd = (d)[j], x = (ar)[j * (la)], z = (br)[j * (lb)];                      \
                (gr)[j] ASSIGN(EXPR);                                                           \
            }                                                                                   \
        }                                                                                       \
    } while (0)
    if (which == 0) {
        switch (op) {
        case ADVEX_OP_MUL: BIN_FULL_(ADVEX_OP_MUL, 0); break;
        case ADVEX_OP_DIV: BIN_FULL_(ADVEX_OP_DIV, 0); break;
        default: BIN_FULL_(ADVEX_OP_ADD, 0); break;
        }
    } else {
        switch (op) {
        case ADVEX_OP_ADD: BIN_FULL_(ADVEX_OP_ADD, 1); break;
        case ADVEX_OP_SUB: BIN_FULL_(ADVEX_OP_SUB, 1); break;
        case ADVEX_OP_MUL: BIN_FULL_(ADVEX_OP_MUL, 1); break;
        default: BIN_FULL_(ADVEX_OP_DIV, 1); break;
        }
    }
#undef BIN_FULL_
}

/* sum over j < len of the local gradient (a row reduced into one element of a broadcast operand) */
static float bin_grad_sum(advex_op_type op, int which, const float *d, const float *ar, const float *br, int64_t la,
                          int64_t lb, int64_t len) {
    float s = 0.0f;
#define BIN_SUM_(OP, W)                                                                          \
    do {                                                                                         \
        if (la == 1 && lb == 0) {                                                                \
            float z = br[0];                                                                     \
            _Pragma("omp simd reduction(+ : s)") for (int64_t j = 0; j < len; j++) {             \
                float dd = d[j], x = ar[j];                                                      \
                s += BIN_LOCAL_(OP, W, dd, x, z);                                                \
            }                                                                                    \
        } else if (la == 0 && lb == 1) {                                                         \
            float x = ar[0];                                                                     \
            _Pragma("omp simd reduction(+ : s)") for (int64_t j = 0; j < len; j++) {             \
                float dd = d[j], z = br[j];                                                      \
                s += BIN_LOCAL_(OP, W, dd, x, z);                                                \
            }                                                                                    \
        } else {                                                                                 \
            for (int64_t j = 0; j < len; j++) {                                                  \
                float dd = d[j], x = ar[j * la], z = br[j * lb];                                 \
                s += BIN_LOCAL_(OP, W, dd, x, z);                                                \
            }                                                                                    \
        }                                                                                        \
    } while (0)
    if (which == 0) {
        switch (op) {
        case ADVEX_OP_MUL: BIN_SUM_(ADVEX_OP_MUL, 0); break;
        case ADVEX_OP_DIV: BIN_SUM_(ADVEX_OP_DIV, 0); break;
        default: BIN_SUM_(ADVEX_OP_ADD, 0); break;
        }
    } else {
        switch (op) {
        case ADVEX_OP_ADD: BIN_SUM_(ADVEX_OP_ADD, 1); break;
        case ADVEX_OP_SUB: BIN_SUM_(ADVEX_OP_SUB, 1); break;
        case ADVEX_OP_MUL: BIN_SUM_(ADVEX_OP_MUL, 1); break;
        default: BIN_SUM_(ADVEX_OP_DIV, 1); break;
        }
    }
#undef BIN_SUM_
    return s;
}

/* da += dy * (1 | 1 | b | 1/b);  db += dy * (1 | -1 | a | -a/b^2), summed over broadcast dims.
 * write (the operand's grad_write): store instead of add. A full-size operand's elements
 * each get exactly one term: stored or added in parallel over rows (and chunks of long
 * rows). A broadcast operand's grad is a sum over several output elements, zeroed first in
 * write mode: when its last stride is 0 each row reduces into one element (rows in parallel
 * when no two rows share an element); when it is 1, rows add into the same slice, in
 * parallel over column chunks; otherwise serially. */
static void bin_grad(const bin_c *p, int64_t n, int full, advex_op_type op, int which, float *g, const float *dy,
                     const float *a, const float *b, int64_t gn, int write) {
    int64_t L = p->L, la = p->la, lb = p->lb, lg = which == 0 ? la : lb, nck = (L + BIN_CHUNK - 1) / BIN_CHUNK;
    const int64_t *sg = which == 0 ? p->sa : p->sb;
    if (full) {
        int64_t units = p->rows * nck;
#pragma omp parallel for schedule(static) if (n >= ADVEX_OMP_MIN)
        for (int64_t u = 0; u < units; u++) {
            int64_t r = u / nck, j0 = (u % nck) * BIN_CHUNK, len = L - j0 < BIN_CHUNK ? L - j0 : BIN_CHUNK, ao, bo;
            row_offsets(p, r, &ao, &bo);
            bin_grad_full(op, which, g + (which == 0 ? ao : bo) + j0 * lg, dy + r * L + j0, a + ao + j0 * la,
                          b + bo + j0 * lb, la, lb, len, write);
        }
        return;
    }
    if (write) memset(g, 0, (size_t)gn * sizeof(float));
    if (lg == 0) {
        int distinct = 1; /* every row its own element: no outer dim broadcast */
        for (int d = 0; d + 1 < p->nd; d++) distinct &= sg[d] != 0;
#pragma omp parallel for schedule(static) if (distinct && n >= ADVEX_OMP_MIN)
        for (int64_t r = 0; r < p->rows; r++) {
            int64_t ao, bo;
            row_offsets(p, r, &ao, &bo);
            g[which == 0 ? ao : bo] += bin_grad_sum(op, which, dy + r * L, a + ao, b + bo, la, lb, L);
        }
        return;
    }
    if (lg == 1) {
#pragma omp parallel for schedule(static) if (n >= ADVEX_OMP_MIN && nck > 1)
        for (int64_t ck = 0; ck < nck; ck++) {
            int64_t j0 = ck * BIN_CHUNK, len = L - j0 < BIN_CHUNK ? L - j0 : BIN_CHUNK;
            for (int64_t r = 0; r < p->rows; r++) {
                int64_t ao, bo;
                row_offsets(p, r, &ao, &bo);
                bin_grad_full(op, which, g + (which == 0 ? ao : bo) + j0, dy + r * L + j0, a + ao + j0 * la,
                              b + bo + j0 * lb, la, lb, len, 0);
            }
        }
        return;
    }
    for (int64_t r = 0; r < p->rows; r++) { /* (not reached after collapsing: a stride is 0 or 1 or the operand full) */
        int64_t ao, bo;
        row_offsets(p, r, &ao, &bo);
        float *gr = g + (which == 0 ? ao : bo);
        for (int64_t j = 0; j < L; j++) {
            float dd = dy[r * L + j], x = a[ao + j * la], z = b[bo + j * lb];
            gr[j * lg] += BIN_LOCAL_(op, which, dd, x, z);
        }
    }
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
    bin_c q;
    bin_collapse(&p, &q);
    if (A->grad) bin_grad(&q, p.n, p.a_full, nd->op, 0, A->grad, dy, A->data, B->data, advex_val_numel(A), A->grad_write);
    if (B->grad) bin_grad(&q, p.n, p.b_full, nd->op, 1, B->grad, dy, A->data, B->data, advex_val_numel(B), B->grad_write);
}
