/* Broadcasting ops beyond Add/Sub/Mul/Div: Pow, Min, Max (two inputs), PRelu (slope
 * broadcast to x), Where (condition known at load time, 0/1 floats) and Expand (to a target
 * shape whose dims may be v + n*N in the batch size N). Numpy multidirectional broadcasting of
 * up to three operands; the gradient of a broadcast operand is summed over the dims it was
 * broadcast along (zeroed first in gradient write mode). */
#include <math.h>
#include <string.h>

#include "ops/kernels.h"

typedef struct bc_p {
    int nd, nin;                       /* output rank, operands */
    int64_t dims[ADVEX_MAX_DIMS];      /* output dims */
    int64_t s[3][ADVEX_MAX_DIMS];      /* operand strides (0: broadcast) */
    int64_t n, last, rows;
    int full[3];                       /* operand has the output's element count */
} bc_p;

/* Operands: the op's data inputs (Where: cond, x, y; Expand: x alone, to dims tdims). */
static advex_status bc_geom(const advex_node *nd, const advex_value *v, bc_p *p, int tnd, const int64_t *tdims) {
    const char *op = advex_op_defs[nd->op].name;
    char b0[96], b1[96];
    memset(p, 0, sizeof *p);
    p->nin = nd->op == ADVEX_OP_WHERE ? 3 : nd->op == ADVEX_OP_EXPAND ? 1 : 2;
    if (nd->n_in < p->nin) return advex_set_error(ADVEX_ERR_SHAPE, "%s %s: %d inputs", op, nd->name, nd->n_in);
    int ndim = tnd;
    int64_t dims[ADVEX_MAX_DIMS];
    for (int d = 0; d < tnd; d++) dims[d] = tdims[d];
    for (int k = 0; k < p->nin; k++) {
        const advex_value *X = &v[nd->in[k]];
        int64_t nd2[ADVEX_MAX_DIMS];
        int r;
        if (k == 0 && tnd < 0) {
            ndim = X->ndim;
            for (int d = 0; d < ndim; d++) dims[d] = X->dims[d];
            continue;
        }
        if (!advex_bcast_shape(&r, nd2, ndim, dims, X->ndim, X->dims) ||
            (nd->op == ADVEX_OP_PRELU && (r != ndim || memcmp(nd2, dims, (size_t)r * sizeof *dims) != 0)))
            return advex_set_error(ADVEX_ERR_SHAPE, "%s %s: shapes %s and %s do not broadcast", op, nd->name,
                                   advex_shape_str(b0, sizeof b0, ndim, dims),
                                   advex_shape_str(b1, sizeof b1, X->ndim, X->dims));
        ndim = r;
        memcpy(dims, nd2, (size_t)r * sizeof *dims);
    }
    p->nd = ndim;
    memcpy(p->dims, dims, (size_t)ndim * sizeof *dims);
    p->n = advex_numel(ndim, dims);
    for (int k = 0; k < p->nin; k++) {
        const advex_value *X = &v[nd->in[k]];
        advex_bcast_strides(p->s[k], ndim, dims, X->ndim, X->dims);
        p->full[k] = advex_val_numel(X) == p->n;
    }
    p->last = ndim ? dims[ndim - 1] : 1;
    p->rows = p->last > 0 ? p->n / p->last : 0;
    return ADVEX_OK;
}

/* Expand's target: v + n*N per dim, N from input 1 (the graph input's batch size) */
static advex_status expand_target(const advex_node *nd, const advex_value *v, int64_t *t) {
    int64_t N = nd->n_in > 1 && nd->in[1] >= 0 && v[nd->in[1]].ndim > 0 ? v[nd->in[1]].dims[0] : 0;
    for (int d = 0; d < nd->a.n_ints; d++) {
        int64_t cn = nd->a.ints[ADVEX_MAX_DIMS + d], nn;
        if ((cn && N <= 0) || !advex_mul_i64(cn < 0 ? -cn : cn, N, &nn) || nd->a.ints[d] < INT64_MIN / 2 ||
            nd->a.ints[d] > INT64_MAX / 2 || nn > INT64_MAX / 2)
            return advex_set_error(ADVEX_ERR_SHAPE, "Expand %s: target dimension %d overflows", nd->name, d);
        t[d] = nd->a.ints[d] + (cn < 0 ? -nn : nn);
        if (t[d] < 0) return advex_set_error(ADVEX_ERR_SHAPE, "Expand %s: negative target dimension", nd->name);
    }
    return ADVEX_OK;
}

static advex_status geom(const advex_node *nd, const advex_value *v, bc_p *p) {
    if (nd->op != ADVEX_OP_EXPAND) return bc_geom(nd, v, p, -1, NULL);
    int64_t t[ADVEX_MAX_DIMS];
    if (nd->a.n_ints < 0 || nd->a.n_ints > ADVEX_MAX_DIMS)
        return advex_set_error(ADVEX_ERR_SHAPE, "Expand %s: target rank %d", nd->name, nd->a.n_ints);
    advex_status st = expand_target(nd, v, t);
    return st ? st : bc_geom(nd, v, p, nd->a.n_ints, t);
}

advex_status advex_bcast_infer(const advex_node *nd, advex_value *v) {
    bc_p p;
    advex_status st = geom(nd, v, &p);
    if (st) return st;
    if (nd->op == ADVEX_OP_WHERE) { /* the condition must be known (a constant of 0s and 1s) */
        const advex_value *C = &v[nd->in[0]];
        if (!C->data || C->kind == ADVEX_VAL_ACT || C->kind == ADVEX_VAL_INPUT)
            return advex_set_error(ADVEX_ERR_UNSUPPORTED, "Where %s: the condition must be known at load time",
                                   nd->name);
    }
    advex_set_shape(&v[nd->out[0]], p.nd, p.dims);
    return ADVEX_OK;
}

/* offset of output row `row`'s first element in each operand */
static void row_offsets(const bc_p *p, int64_t row, int64_t *off) {
    for (int k = 0; k < p->nin; k++) off[k] = 0;
    for (int d = p->nd - 2; d >= 0; d--) {
        int64_t i = row % p->dims[d];
        row /= p->dims[d];
        for (int k = 0; k < p->nin; k++) off[k] += i * p->s[k][d];
    }
}

static inline float pow_f(float a, float b) {
    if (b == 2.0f) return a * a;
    if (b == 1.0f) return a;
    if (b == 0.5f) return sqrtf(a);
    return powf(a, b);
}

void advex_bcast_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    (void)c;
    bc_p p;
    if (geom(nd, v, &p)) return;
    const float *in[3] = {0};
    for (int k = 0; k < p.nin; k++) in[k] = v[nd->in[k]].data;
    float *y = v[nd->out[0]].data;
    advex_op_type op = nd->op;
    int64_t L = p.last, l0 = p.nd ? p.s[0][p.nd - 1] : 0, l1 = p.nd ? p.s[1][p.nd - 1] : 0,
            l2 = p.nd ? p.s[2][p.nd - 1] : 0;
#pragma omp parallel for schedule(static) if (p.n >= ADVEX_OMP_MIN)
    for (int64_t r = 0; r < p.rows; r++) {
        int64_t off[3];
        row_offsets(&p, r, off);
        const float *a = in[0] + off[0], *b = p.nin > 1 ? in[1] + off[1] : NULL, *cc = p.nin > 2 ? in[2] + off[2] : NULL;
        float *yr = y + r * L;
        switch (op) {
        case ADVEX_OP_POW:
            if (l1 == 0) { /* one exponent for the row (the usual x^2) */
                float e = b[0];
                if (e == 2.0f) for (int64_t j = 0; j < L; j++) yr[j] = a[j * l0] * a[j * l0];
                else for (int64_t j = 0; j < L; j++) yr[j] = pow_f(a[j * l0], e);
            } else {
                for (int64_t j = 0; j < L; j++) yr[j] = pow_f(a[j * l0], b[j * l1]);
            }
            break;
        case ADVEX_OP_MIN: for (int64_t j = 0; j < L; j++) yr[j] = fminf(a[j * l0], b[j * l1]); break;
        case ADVEX_OP_MAX: for (int64_t j = 0; j < L; j++) yr[j] = fmaxf(a[j * l0], b[j * l1]); break;
        case ADVEX_OP_PRELU:
            for (int64_t j = 0; j < L; j++) yr[j] = a[j * l0] > 0.0f ? a[j * l0] : a[j * l0] * b[j * l1];
            break;
        case ADVEX_OP_WHERE: for (int64_t j = 0; j < L; j++) yr[j] = a[j * l0] != 0.0f ? b[j * l1] : cc[j * l2]; break;
        default: /* Expand */
            if (l0 == 1) memcpy(yr, a, (size_t)L * sizeof(float));
            else for (int64_t j = 0; j < L; j++) yr[j] = a[j * l0];
            break;
        }
    }
}

/* The local gradient of operand k at output element j of a row: dy * d y / d in_k. */
static inline float local_grad(advex_op_type op, int k, float g, float a, float b, float cond) {
    switch (op) {
    case ADVEX_OP_POW:
        if (k == 0) return b == 2.0f ? 2.0f * a * g : g * b * pow_f(a, b - 1.0f);
        return a > 0.0f ? g * pow_f(a, b) * logf(a) : 0.0f;
    case ADVEX_OP_MIN: return (k == 0) == (a <= b) ? g : 0.0f;
    case ADVEX_OP_MAX: return (k == 0) == (a >= b) ? g : 0.0f;
    case ADVEX_OP_PRELU: return k == 0 ? (a > 0.0f ? g : g * b) : (a > 0.0f ? 0.0f : g * a);
    case ADVEX_OP_WHERE: return (k == 1) == (cond != 0.0f) ? g : 0.0f;
    default: return g; /* Expand */
    }
}

/* gk (operand k's grad) = or += the gradient; a full-size operand in parallel (one term per
 * element), a broadcast one serially after zeroing in write mode */
static void bc_grad(const bc_p *p, advex_op_type op, int k, float *gk, int64_t gn, int write, const float *dy,
                    const float *const *in) {
    int full = p->full[k];
    if (write && !full) {
        memset(gk, 0, (size_t)gn * sizeof(float));
        write = 0;
    }
    int64_t L = p->last, lk = p->nd ? p->s[k][p->nd - 1] : 0;
    int xa = op == ADVEX_OP_WHERE ? 1 : 0; /* operands the formula reads as (a, b) */
    int64_t la = p->nd ? p->s[xa][p->nd - 1] : 0, lb = p->nd && p->nin > xa + 1 ? p->s[xa + 1][p->nd - 1] : 0,
            lc = p->nd ? p->s[0][p->nd - 1] : 0;
#pragma omp parallel for schedule(static) if (full && p->n >= ADVEX_OMP_MIN)
    for (int64_t r = 0; r < p->rows; r++) {
        int64_t off[3];
        row_offsets(p, r, off);
        const float *d = dy + r * L, *a = in[xa] + off[xa], *b = p->nin > xa + 1 ? in[xa + 1] + off[xa + 1] : a,
                    *cond = in[0] + off[0];
        float *gr = gk + off[k];
        if (op == ADVEX_OP_EXPAND && lk == 1) {
            if (write) memcpy(gr, d, (size_t)L * sizeof(float));
            else for (int64_t j = 0; j < L; j++) gr[j] += d[j];
            continue;
        }
        for (int64_t j = 0; j < L; j++) {
            float t = local_grad(op, k, d[j], a[j * la], b[j * lb], cond[j * lc]);
            if (write) gr[j * lk] = t;
            else gr[j * lk] += t;
        }
    }
}

void advex_bcast_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    (void)c;
    bc_p p;
    if (geom(nd, v, &p)) return;
    const float *in[3] = {0};
    for (int k = 0; k < p.nin; k++) in[k] = v[nd->in[k]].data;
    const float *dy = v[nd->out[0]].grad;
    for (int k = nd->op == ADVEX_OP_WHERE ? 1 : 0; k < p.nin; k++) { /* (Where: no gradient for the condition) */
        advex_value *X = &v[nd->in[k]];
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= nd->in[j] == nd->in[k];
        if (!X->grad || dup) continue;
        bc_grad(&p, nd->op, k, X->grad, advex_val_numel(X), X->grad_write, dy, in);
        for (int j = k + 1; j < p.nin; j++) /* the same value again (Max(x, x)): add its part too */
            if (nd->in[j] == nd->in[k]) bc_grad(&p, nd->op, j, X->grad, advex_val_numel(X), 0, dy, in);
    }
}
