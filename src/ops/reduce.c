/* Reductions over a set of axes: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceSumSquare,
 * ReduceL1, ReduceL2, ReduceLogSumExp (keepdims; no axes: all, or the identity with
 * noop_with_empty_axes). The input is viewed as (outer, D, inner) with the reduced axes as the
 * middle block; axes that are not one contiguous block are first permuted to the end in the
 * scratch. Sums run in double. Backward stores or adds every input's gradient once. */
#include <math.h>
#include <string.h>

#include "ops/kernels.h"

#define BLK 64 /* inner positions reduced together (accumulators on the stack) */

typedef struct red_p {
    int r;                          /* input rank */
    int red[ADVEX_MAX_DIMS];        /* axis reduced */
    int identity;                   /* noop_with_empty_axes and no axes */
    int permute;                    /* reduced axes not one block: permute them last */
    int perm[ADVEX_MAX_DIMS];       /* kept axes, then reduced ones (permute only) */
    int64_t outer, D, inner;        /* the view (after the permutation) */
} red_p;

static advex_status red_geom(const advex_node *nd, const advex_value *v, red_p *p, int *ondim, int64_t *odims) {
    const advex_value *X = &v[nd->in[0]];
    int r = X->ndim, n = nd->a.n_ints;
    memset(p, 0, sizeof *p);
    p->r = r;
    if (n < 0 || n > r)
        return advex_set_error(ADVEX_ERR_SHAPE, "%s %s: %d axes for rank %d", advex_op_defs[nd->op].name, nd->name, n, r);
    for (int j = 0; j < n; j++) {
        int ax = advex_norm_axis(nd->a.ints[j], r, 0);
        if (ax < 0 || p->red[ax])
            return advex_set_error(ADVEX_ERR_SHAPE, "%s %s: axis %lld out of range for rank %d or repeated",
                                   advex_op_defs[nd->op].name, nd->name, (long long)nd->a.ints[j], r);
        p->red[ax] = 1;
    }
    if (n == 0 && nd->a.mode) p->identity = 1;
    else if (n == 0) for (int d = 0; d < r; d++) p->red[d] = 1;
    int first = -1, last = -1, k = 0;
    for (int d = 0; d < r; d++)
        if (p->red[d] && X->dims[d] != 1) { if (first < 0) first = d; last = d; }
    for (int d = first + 1; d < last; d++) p->permute |= !p->red[d] && X->dims[d] != 1;
    p->outer = p->D = p->inner = 1;
    if (p->permute) {
        for (int d = 0; d < r; d++) if (!p->red[d]) { p->perm[k++] = d; p->outer *= X->dims[d]; }
        for (int d = 0; d < r; d++) if (p->red[d]) { p->perm[k++] = d; p->D *= X->dims[d]; }
    } else {
        for (int d = 0; d < r; d++) {
            if (p->red[d]) p->D *= X->dims[d];
            else if (first >= 0 && d > last) p->inner *= X->dims[d];
            else p->outer *= X->dims[d];
        }
    }
    if (ondim) {
        int o = 0;
        for (int d = 0; d < r; d++) {
            if (!p->red[d]) odims[o++] = X->dims[d];
            else if (nd->a.keepdims) odims[o++] = 1;
        }
        *ondim = o;
    }
    return ADVEX_OK;
}

advex_status advex_reduce_infer(const advex_node *nd, advex_value *v) {
    red_p p;
    int nd_out;
    int64_t dims[ADVEX_MAX_DIMS];
    advex_status st = red_geom(nd, v, &p, &nd_out, dims);
    if (st) return st;
    if (p.identity) advex_set_shape(&v[nd->out[0]], v[nd->in[0]].ndim, v[nd->in[0]].dims);
    else advex_set_shape(&v[nd->out[0]], nd_out, dims);
    return ADVEX_OK;
}

int64_t advex_reduce_scratch(const advex_node *nd, const advex_value *v, int train) {
    (void)train;
    red_p p;
    if (red_geom(nd, v, &p, NULL, NULL) || !p.permute) return 0;
    return 2 * advex_val_numel(&v[nd->in[0]]); /* the permuted input and its gradient */
}

/* dst[j] = src[i] where dst is src with its axes in the order perm (back: src[i] = or += dst[j]) */
static void permute_copy(float *dst, float *src, int r, const int64_t *dims, const int *perm, int back, int add) {
    int64_t st[ADVEX_MAX_DIMS], pd[ADVEX_MAX_DIMS], ps[ADVEX_MAX_DIMS], idx[ADVEX_MAX_DIMS] = {0}, s = 1, n = 1;
    for (int d = r - 1; d >= 0; d--) { st[d] = s; s *= dims[d]; }
    for (int d = 0; d < r; d++) { pd[d] = dims[perm[d]]; ps[d] = st[perm[d]]; n *= pd[d]; }
    int64_t off = 0;
    for (int64_t j = 0; j < n; j++) {
        if (!back) dst[j] = src[off];
        else if (add) src[off] += dst[j];
        else src[off] = dst[j];
        for (int d = r - 1; d >= 0; d--) {
            off += ps[d];
            if (++idx[d] < pd[d]) break;
            off -= ps[d] * pd[d];
            idx[d] = 0;
        }
    }
}

/* y (outer, inner) = reduce over D of x (outer, D, inner) */
static void reduce_fwd(advex_op_type op, float *y, const float *x, int64_t outer, int64_t D, int64_t inner) {
    int64_t nblk = (inner + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if (outer * D * inner >= ADVEX_OMP_MIN)
    for (int64_t ob = 0; ob < outer * nblk; ob++) {
        int64_t o = ob / nblk, i0 = (ob % nblk) * BLK, m = inner - i0 < BLK ? inner - i0 : BLK;
        const float *xo = x + o * D * inner + i0;
        double acc[BLK], mx[BLK];
        int maxlike = op == ADVEX_OP_REDUCE_MAX || op == ADVEX_OP_REDUCE_MIN || op == ADVEX_OP_REDUCE_LOG_SUM_EXP;
        for (int64_t i = 0; i < m; i++) acc[i] = 0.0, mx[i] = op == ADVEX_OP_REDUCE_MIN ? INFINITY : -INFINITY;
        if (maxlike) {
            for (int64_t k = 0; k < D; k++)
                for (int64_t i = 0; i < m; i++) {
                    double t = xo[k * inner + i];
                    if (op == ADVEX_OP_REDUCE_MIN ? t < mx[i] : t > mx[i]) mx[i] = t;
                    if (t != t) mx[i] = t; /* NaN propagates */
                }
        }
        switch (op) {
        case ADVEX_OP_REDUCE_SUM: case ADVEX_OP_REDUCE_MEAN:
            for (int64_t k = 0; k < D; k++) for (int64_t i = 0; i < m; i++) acc[i] += xo[k * inner + i];
            break;
        case ADVEX_OP_REDUCE_SUM_SQUARE: case ADVEX_OP_REDUCE_L2:
            for (int64_t k = 0; k < D; k++)
                for (int64_t i = 0; i < m; i++) acc[i] += (double)xo[k * inner + i] * xo[k * inner + i];
            break;
        case ADVEX_OP_REDUCE_L1:
            for (int64_t k = 0; k < D; k++) for (int64_t i = 0; i < m; i++) acc[i] += fabs((double)xo[k * inner + i]);
            break;
        case ADVEX_OP_REDUCE_LOG_SUM_EXP:
            for (int64_t k = 0; k < D; k++)
                for (int64_t i = 0; i < m; i++)
                    acc[i] += isinf(mx[i]) ? exp((double)xo[k * inner + i]) : exp(xo[k * inner + i] - mx[i]);
            break;
        default: break;
        }
        float *yo = y + o * inner + i0;
        for (int64_t i = 0; i < m; i++) {
            switch (op) {
            case ADVEX_OP_REDUCE_MEAN: yo[i] = (float)(acc[i] / (double)D); break;
            case ADVEX_OP_REDUCE_L2: yo[i] = (float)sqrt(acc[i]); break;
            case ADVEX_OP_REDUCE_MAX: case ADVEX_OP_REDUCE_MIN: yo[i] = (float)mx[i]; break;
            case ADVEX_OP_REDUCE_LOG_SUM_EXP: yo[i] = (float)((isinf(mx[i]) ? 0.0 : mx[i]) + log(acc[i])); break;
            default: yo[i] = (float)acc[i]; break;
            }
        }
    }
}

/* dx (outer, D, inner) = or += d reduce / dx * dy (outer, inner); Max/Min: the first extreme
 * element of each output gets all of dy */
static void reduce_bwd(advex_op_type op, float *dx, const float *dy, const float *x, const float *y, int64_t outer,
                       int64_t D, int64_t inner, int write) {
    int64_t nblk = (inner + BLK - 1) / BLK;
    float invD = 1.0f / (float)D;
#pragma omp parallel for schedule(static) if (outer * D * inner >= ADVEX_OMP_MIN)
    for (int64_t ob = 0; ob < outer * nblk; ob++) {
        int64_t o = ob / nblk, i0 = (ob % nblk) * BLK, m = inner - i0 < BLK ? inner - i0 : BLK;
        const float *xo = x + o * D * inner + i0, *yo = y + o * inner + i0, *g = dy + o * inner + i0;
        float *d = dx + o * D * inner + i0;
        char done[BLK] = {0};
        for (int64_t k = 0; k < D; k++)
            for (int64_t i = 0; i < m; i++) {
                float xv = xo[k * inner + i], t;
                switch (op) {
                case ADVEX_OP_REDUCE_SUM: t = g[i]; break;
                case ADVEX_OP_REDUCE_MEAN: t = g[i] * invD; break;
                case ADVEX_OP_REDUCE_SUM_SQUARE: t = 2.0f * xv * g[i]; break;
                case ADVEX_OP_REDUCE_L1: t = xv > 0.0f ? g[i] : xv < 0.0f ? -g[i] : 0.0f; break;
                case ADVEX_OP_REDUCE_L2: t = yo[i] > 0.0f ? xv / yo[i] * g[i] : 0.0f; break;
                case ADVEX_OP_REDUCE_LOG_SUM_EXP: t = expf(xv - yo[i]) * g[i]; break;
                default: /* Max, Min */
                    t = 0.0f;
                    if (!done[i] && xv == yo[i]) { t = g[i]; done[i] = 1; }
                    break;
                }
                if (write) d[k * inner + i] = t;
                else d[k * inner + i] += t;
            }
    }
}

void advex_reduce_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    red_p p;
    if (red_geom(nd, v, &p, NULL, NULL)) return;
    const advex_value *X = &v[nd->in[0]];
    float *y = v[nd->out[0]].data, *x = X->data;
    if (p.identity) {
        if (y != x) memcpy(y, x, (size_t)advex_val_numel(X) * sizeof(float));
        return;
    }
    if (p.permute) {
        permute_copy(c->scratch, x, p.r, X->dims, p.perm, 0, 0);
        x = c->scratch;
    }
    reduce_fwd(nd->op, y, x, p.outer, p.D, p.inner);
}

void advex_reduce_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    red_p p;
    advex_value *X = &v[nd->in[0]];
    if (!X->grad || red_geom(nd, v, &p, NULL, NULL)) return;
    const advex_value *Y = &v[nd->out[0]];
    int64_t n = advex_val_numel(X);
    if (p.identity) {
        for (int64_t i = 0; i < n; i++) X->grad[i] = (X->grad_write ? 0.0f : X->grad[i]) + Y->grad[i];
        return;
    }
    if (!p.permute) {
        reduce_bwd(nd->op, X->grad, Y->grad, X->data, Y->data, p.outer, p.D, p.inner, X->grad_write);
        return;
    }
    float *xp = c->scratch, *gp = c->scratch + n;
    permute_copy(xp, X->data, p.r, X->dims, p.perm, 0, 0);
    reduce_bwd(nd->op, gp, Y->grad, xp, Y->data, p.outer, p.D, p.inner, 1);
    permute_copy(gp, X->grad, p.r, X->dims, p.perm, 1, !X->grad_write);
}
