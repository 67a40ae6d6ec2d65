/* Softmax and LogSoftmax along one axis (ONNX opset 13, negative axis allowed), computed
 * with the max subtracted; x viewed as (outer, D, inner). Mode 1 is the opset < 13 form: the
 * input flattened to 2-D at axis, so D spans every dim from axis on (inner 1). Softmax over
 * contiguous rows (inner 1: attention's) runs vectorised in float (act.c's
 * advex_softmax_row); other cases sum in double with libm's exp. */
#include <math.h>

#include "ops/kernels.h"

typedef struct sm_p { int64_t outer, D, inner; } sm_p;

static advex_status sm_geom(const advex_node *nd, const advex_value *v, const char *op, sm_p *p) {
    const advex_value *X = &v[nd->in[0]];
    int ax = advex_norm_axis(nd->a.axis, X->ndim, 0);
    if (ax < 0)
        return advex_set_error(ADVEX_ERR_SHAPE, "%s %s: axis %lld out of range for rank %d", op, nd->name,
                               (long long)nd->a.axis, X->ndim);
    p->outer = advex_numel(ax, X->dims);
    p->D = nd->a.mode ? advex_numel(X->ndim - ax, X->dims + ax) : X->dims[ax];
    p->inner = nd->a.mode ? 1 : advex_numel(X->ndim - ax - 1, X->dims + ax + 1);
    return ADVEX_OK;
}

static advex_status sm_infer(const advex_node *nd, advex_value *v, const char *op) {
    sm_p p;
    advex_status st = sm_geom(nd, v, op, &p);
    if (st) return st;
    advex_set_shape(&v[nd->out[0]], v[nd->in[0]].ndim, v[nd->in[0]].dims);
    return ADVEX_OK;
}

/* softmax: y = e^(x - max) / sum e^(x - max);  log: y = x - max - log sum e^(x - max) */
static void sm_forward(const advex_node *nd, advex_value *v, int logp, const char *op) {
    sm_p p;
    if (sm_geom(nd, v, op, &p)) return;
    const float *x = v[nd->in[0]].data;
    float *y = v[nd->out[0]].data;
    if (!logp && p.inner == 1) { /* rows along the last axis (attention): vectorised (act.c) */
#pragma omp parallel for schedule(static) if (p.outer * p.D >= ADVEX_OMP_MIN)
        for (int64_t o = 0; o < p.outer; o++) advex_softmax_row(y + o * p.D, x + o * p.D, p.D);
        return;
    }
#pragma omp parallel for schedule(static) if (p.outer * p.D * p.inner >= ADVEX_OMP_MIN)
    for (int64_t oi = 0; oi < p.outer * p.inner; oi++) {
        int64_t o = oi / p.inner, i = oi % p.inner, base = o * p.D * p.inner + i;
        float mx = -INFINITY;
        for (int64_t k = 0; k < p.D; k++) mx = fmaxf(mx, x[base + k * p.inner]);
        double s = 0.0;
        for (int64_t k = 0; k < p.D; k++) s += exp((double)x[base + k * p.inner] - mx);
        float ls = (float)log(s);
        for (int64_t k = 0; k < p.D; k++) {
            float z = x[base + k * p.inner] - mx;
            y[base + k * p.inner] = logp ? z - ls : (float)(exp((double)z) / s);
        }
    }
}

/* softmax: dx = y (dy - sum dy y);  log: dx = dy - e^y sum dy (added, or stored in gradient
 * write mode) */
static void sm_backward(const advex_node *nd, advex_value *v, int logp, const char *op) {
    sm_p p;
    float *dx = v[nd->in[0]].grad;
    if (!dx || sm_geom(nd, v, op, &p)) return;
    const float *y = v[nd->out[0]].data, *dy = v[nd->out[0]].grad;
    int write = v[nd->in[0]].grad_write;
    if (!logp && p.inner == 1) { /* rows along the last axis: dx = y (dy - sum dy y), vectorised */
#pragma omp parallel for schedule(static) if (p.outer * p.D >= ADVEX_OMP_MIN)
        for (int64_t o = 0; o < p.outer; o++) {
            const float *yr = y + o * p.D, *dr = dy + o * p.D;
            float *xr = dx + o * p.D, s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int64_t k = 0; k < p.D; k++) s += dr[k] * yr[k];
            if (write) {
#pragma omp simd
                for (int64_t k = 0; k < p.D; k++) xr[k] = yr[k] * (dr[k] - s);
            } else {
#pragma omp simd
                for (int64_t k = 0; k < p.D; k++) xr[k] += yr[k] * (dr[k] - s);
            }
        }
        return;
    }
#pragma omp parallel for schedule(static) if (p.outer * p.D * p.inner >= ADVEX_OMP_MIN)
    for (int64_t oi = 0; oi < p.outer * p.inner; oi++) {
        int64_t o = oi / p.inner, i = oi % p.inner, base = o * p.D * p.inner + i;
        double s = 0.0;
        for (int64_t k = 0; k < p.D; k++) {
            int64_t j = base + k * p.inner;
            s += logp ? dy[j] : (double)dy[j] * y[j];
        }
        for (int64_t k = 0; k < p.D; k++) {
            int64_t j = base + k * p.inner;
            float g = logp ? (float)(dy[j] - exp((double)y[j]) * s) : (float)(y[j] * (dy[j] - s));
            dx[j] = write ? g : dx[j] + g;
        }
    }
}

advex_status advex_softmax_infer(const advex_node *nd, advex_value *v) { return sm_infer(nd, v, "Softmax"); }
void advex_softmax_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) { sm_forward(nd, v, 0, "Softmax"); }
void advex_softmax_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) { sm_backward(nd, v, 0, "Softmax"); }

advex_status advex_log_softmax_infer(const advex_node *nd, advex_value *v) { return sm_infer(nd, v, "LogSoftmax"); }
void advex_log_softmax_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    sm_forward(nd, v, 1, "LogSoftmax");
}
void advex_log_softmax_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    sm_backward(nd, v, 1, "LogSoftmax");
}
