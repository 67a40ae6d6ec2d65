/* Indexing on run-time data: Slice (per-dim start, end, step; negative steps; ONNX clamping
 * against the plan's dims, so an unsliced batch dim stays symbolic) and Gather (one axis,
 * indices known at load time, stored as floats in input 1; negative indices wrap). Backward
 * scatters the gradient back: Slice's elements are distinct (stored in write mode after
 * zeroing what no output reads), Gather's indices may repeat (always added). */
#include <math.h>
#include <string.h>

#include "ops/kernels.h"

/* ---- Slice ------------------------------------------------------------------------------ */

typedef struct slice_p {
    int r;
    int64_t b[ADVEX_MAX_DIMS], s[ADVEX_MAX_DIMS], cnt[ADVEX_MAX_DIMS], xs[ADVEX_MAX_DIMS];
} slice_p;

/* ONNX: start/end clamped to [0, dim] (step > 0) or [-1, dim-1] (step < 0) after adding dim
 * to negatives */
static advex_status slice_geom(const advex_node *nd, const advex_value *v, slice_p *p) {
    const advex_value *X = &v[nd->in[0]];
    p->r = X->ndim;
    int64_t s = 1;
    for (int d = p->r - 1; d >= 0; d--) {
        int64_t dim = X->dims[d], st = nd->a.starts[d], en = nd->a.ends[d], step = nd->a.steps[d], lo, hi;
        if (step == 0 || step == INT64_MIN)
            return advex_set_error(ADVEX_ERR_SHAPE, "Slice %s: step %lld on dim %d", nd->name, (long long)step, d);
        if (st < 0) st = st < -dim ? -dim - 1 : st + dim;
        if (en < 0) en = en < -dim ? -dim - 1 : en + dim;
        lo = step > 0 ? 0 : -1;
        hi = step > 0 ? dim : dim - 1;
        st = st < lo ? lo : st > hi ? hi : st;
        en = en < lo ? lo : en > hi ? hi : en;
        if (step > 0) p->cnt[d] = en > st ? 1 + (en - st - 1) / step : 0;
        else p->cnt[d] = st > en ? 1 + (st - en - 1) / -step : 0;
        p->b[d] = st;
        p->s[d] = step;
        p->xs[d] = s;
        s *= dim;
    }
    return ADVEX_OK;
}

advex_status advex_slice_infer(const advex_node *nd, advex_value *v) {
    slice_p p;
    advex_status st = slice_geom(nd, v, &p);
    if (st) return st;
    advex_set_shape(&v[nd->out[0]], p.r, p.cnt);
    return ADVEX_OK;
}

/* mode 0: y = x[slice]; 1: dx[slice] += dy; 2: dx[slice] = dy */
static void slice_run(const slice_p *p, float *x, float *y, int mode) {
    int r = p->r;
    int64_t n = advex_numel(r, p->cnt);
    if (n <= 0) return;
    if (r == 0) {
        if (mode == 0) y[0] = x[0];
        else x[0] = (mode == 1 ? x[0] : 0.0f) + y[0];
        return;
    }
    int64_t L = p->cnt[r - 1], ls = p->s[r - 1] * p->xs[r - 1], rows = n / L;
#pragma omp parallel for schedule(static) if (n >= ADVEX_OMP_MIN)
    for (int64_t row = 0; row < rows; row++) {
        int64_t rem = row, off = p->b[r - 1] * p->xs[r - 1];
        for (int d = r - 2; d >= 0; d--) {
            int64_t i = rem % p->cnt[d];
            rem /= p->cnt[d];
            off += (p->b[d] + i * p->s[d]) * p->xs[d];
        }
        float *xr = x + off, *yr = y + row * L;
        if (mode == 0) {
            if (ls == 1) memcpy(yr, xr, (size_t)L * sizeof(float));
            else for (int64_t j = 0; j < L; j++) yr[j] = xr[j * ls];
        } else if (mode == 1) {
            for (int64_t j = 0; j < L; j++) xr[j * ls] += yr[j];
        } else {
            for (int64_t j = 0; j < L; j++) xr[j * ls] = yr[j];
        }
    }
}

void advex_slice_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    (void)c;
    slice_p p;
    if (!slice_geom(nd, v, &p)) slice_run(&p, v[nd->in[0]].data, v[nd->out[0]].data, 0);
}

void advex_slice_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    (void)c;
    slice_p p;
    advex_value *X = &v[nd->in[0]];
    if (!X->grad || slice_geom(nd, v, &p)) return;
    if (X->grad_write) memset(X->grad, 0, (size_t)advex_val_numel(X) * sizeof(float));
    slice_run(&p, X->grad, v[nd->out[0]].grad, X->grad_write ? 2 : 1);
}

/* ---- Gather ----------------------------------------------------------------------------- */

typedef struct gather_p {
    int ax;
    int64_t outer, dax, inner, nidx;
} gather_p;

static advex_status gather_geom(const advex_node *nd, const advex_value *v, gather_p *p, int *ondim, int64_t *odims) {
    const advex_value *X = &v[nd->in[0]], *I = &v[nd->in[1]];
    int r = X->ndim;
    p->ax = advex_norm_axis(nd->a.axis, r, 0);
    if (p->ax < 0 || r + I->ndim - 1 > ADVEX_MAX_DIMS)
        return advex_set_error(ADVEX_ERR_SHAPE, "Gather %s: axis %lld out of range for rank %d, or result rank over %d",
                               nd->name, (long long)nd->a.axis, r, ADVEX_MAX_DIMS);
    p->outer = advex_numel(p->ax, X->dims);
    p->dax = X->dims[p->ax];
    p->inner = advex_numel(r - p->ax - 1, X->dims + p->ax + 1);
    p->nidx = advex_val_numel(I);
    if (ondim) {
        int k = 0;
        for (int d = 0; d < p->ax; d++) odims[k++] = X->dims[d];
        for (int d = 0; d < I->ndim; d++) odims[k++] = I->dims[d];
        for (int d = p->ax + 1; d < r; d++) odims[k++] = X->dims[d];
        *ondim = k;
    }
    return ADVEX_OK;
}

static inline int64_t gather_index(float f, int64_t dax) {
    int64_t id = (int64_t)f;
    return id < 0 ? id + dax : id;
}

advex_status advex_gather_infer(const advex_node *nd, advex_value *v) {
    gather_p p;
    int ond;
    int64_t dims[ADVEX_MAX_DIMS];
    advex_status st = gather_geom(nd, v, &p, &ond, dims);
    if (st) return st;
    const advex_value *I = &v[nd->in[1]];
    if (!I->data || I->kind == ADVEX_VAL_ACT || I->kind == ADVEX_VAL_INPUT)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "Gather %s: the indices must be known at load time", nd->name);
    for (int64_t j = 0; j < p.nidx; j++) { /* whole numbers within [-dim, dim) */
        float f = I->data[j];
        if (!(f == floorf(f) && f >= -(float)p.dax && f < (float)p.dax))
            return advex_set_error(ADVEX_ERR_SHAPE, "Gather %s: index %g out of range for dimension %lld", nd->name,
                                   (double)f, (long long)p.dax);
    }
    advex_set_shape(&v[nd->out[0]], ond, dims);
    return ADVEX_OK;
}

void advex_gather_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    (void)c;
    gather_p p;
    if (gather_geom(nd, v, &p, NULL, NULL)) return;
    const float *x = v[nd->in[0]].data, *idx = v[nd->in[1]].data;
    float *y = v[nd->out[0]].data;
#pragma omp parallel for schedule(static) if (p.outer * p.nidx * p.inner >= ADVEX_OMP_MIN)
    for (int64_t oj = 0; oj < p.outer * p.nidx; oj++) {
        int64_t o = oj / p.nidx, j = oj % p.nidx, id = gather_index(idx[j], p.dax);
        memcpy(y + oj * p.inner, x + (o * p.dax + id) * p.inner, (size_t)p.inner * sizeof(float));
    }
}

void advex_gather_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    (void)c;
    gather_p p;
    advex_value *X = &v[nd->in[0]];
    if (!X->grad || gather_geom(nd, v, &p, NULL, NULL)) return;
    if (X->grad_write) memset(X->grad, 0, (size_t)advex_val_numel(X) * sizeof(float));
    const float *idx = v[nd->in[1]].data, *dy = v[nd->out[0]].grad;
#pragma omp parallel for schedule(static) if (p.outer * p.nidx * p.inner >= ADVEX_OMP_MIN)
    for (int64_t o = 0; o < p.outer; o++) /* repeated indices add: serial within an outer row */
        for (int64_t j = 0; j < p.nidx; j++) {
            float *dx = X->grad + (o * p.dax + gather_index(idx[j], p.dax)) * p.inner;
            const float *g = dy + (o * p.nidx + j) * p.inner;
            for (int64_t q = 0; q < p.inner; q++) dx[q] += g[q];
        }
}
