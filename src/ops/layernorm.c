/* LayerNormalization (opset 17): each row of D = prod(dims[axis:]) elements normalised,
 * y = (x - mean) / sqrt(var + eps) * scale + bias, scale and bias of D elements (bias
 * optional). One pass per row over data in cache; mean and 1/std stay in aux (2 floats per
 * row) for backward: dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy scale. */
#include <math.h>
#include <string.h>

#include "ops/kernels.h"

typedef struct ln_p { int64_t rows, D; } ln_p;

static advex_status ln_geom(const advex_node *nd, const advex_value *v, ln_p *p) {
    const advex_value *X = &v[nd->in[0]];
    char bx[96];
    int ax = advex_norm_axis(nd->a.axis, X->ndim, 0);
    if (ax < 0)
        return advex_set_error(ADVEX_ERR_SHAPE, "LayerNormalization %s: axis %lld out of range for %s", nd->name,
                               (long long)nd->a.axis, advex_shape_str(bx, sizeof bx, X->ndim, X->dims));
    p->rows = advex_numel(ax, X->dims);
    p->D = advex_numel(X->ndim - ax, X->dims + ax);
    for (int k = 1; k < nd->n_in && k < 3; k++)
        if (nd->in[k] >= 0 && advex_val_numel(&v[nd->in[k]]) != p->D)
            return advex_set_error(ADVEX_ERR_SHAPE, "LayerNormalization %s: %s has %lld elements, rows have %lld",
                                   nd->name, k == 1 ? "scale" : "bias", (long long)advex_val_numel(&v[nd->in[k]]),
                                   (long long)p->D);
    return ADVEX_OK;
}

advex_status advex_layernorm_infer(const advex_node *nd, advex_value *v) {
    ln_p p;
    advex_status st = ln_geom(nd, v, &p);
    if (st) return st;
    advex_set_shape(&v[nd->out[0]], v[nd->in[0]].ndim, v[nd->in[0]].dims);
    return ADVEX_OK;
}

int64_t advex_layernorm_aux(const advex_node *nd, const advex_value *v, int train) {
    (void)train;
    ln_p p;
    return ln_geom(nd, v, &p) ? 0 : 2 * p.rows;
}

/* y (rows, D) = layernorm(x); stat (rows, 2): mean, 1/sqrt(var + eps). b may be NULL. */
void advex_layernorm_rows(float *y, float *stat, const float *x, const float *s, const float *b, int64_t rows,
                          int64_t D, float eps) {
#pragma omp parallel for schedule(static) if (rows * D >= ADVEX_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double m = 0.0, q = 0.0;
        for (int64_t j = 0; j < D; j++) m += xr[j];
        m /= (double)D;
        for (int64_t j = 0; j < D; j++) q += (xr[j] - m) * (xr[j] - m);
        float mf = (float)m, rs = (float)(1.0 / sqrt(q / (double)D + eps));
        stat[2 * r] = mf;
        stat[2 * r + 1] = rs;
        if (b) {
#pragma omp simd
            for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mf) * rs * s[j] + b[j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mf) * rs * s[j];
        }
    }
}

void advex_layernorm_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    ln_p p;
    if (ln_geom(nd, v, &p) || c->aux_n < 2 * p.rows) return;
    const float *b = nd->n_in > 2 && nd->in[2] >= 0 ? v[nd->in[2]].data : NULL;
    advex_layernorm_rows(v[nd->out[0]].data, c->aux, v[nd->in[0]].data, v[nd->in[1]].data, b, p.rows, p.D,
                         nd->a.epsilon);
}

void advex_layernorm_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    ln_p p;
    if (ln_geom(nd, v, &p) || c->aux_n < 2 * p.rows) return;
    advex_value *X = &v[nd->in[0]], *S = &v[nd->in[1]];
    advex_value *B = nd->n_in > 2 && nd->in[2] >= 0 ? &v[nd->in[2]] : NULL;
    const float *x = X->data, *s = S->data, *dy = v[nd->out[0]].grad, *stat = c->aux;
    int64_t D = p.D;
    if (X->grad) {
        float *dx = X->grad;
        int write = X->grad_write;
#pragma omp parallel for schedule(static) if (p.rows * D >= ADVEX_OMP_MIN)
        for (int64_t r = 0; r < p.rows; r++) {
            const float *xr = x + r * D, *g = dy + r * D;
            float *d = dx + r * D, m = stat[2 * r], rs = stat[2 * r + 1];
            double sg = 0.0, sgx = 0.0;
            for (int64_t j = 0; j < D; j++) {
                float gj = g[j] * s[j];
                sg += gj;
                sgx += (double)gj * ((xr[j] - m) * rs);
            }
            float a = (float)(sg / (double)D), bb = (float)(sgx / (double)D);
            if (write) {
#pragma omp simd
                for (int64_t j = 0; j < D; j++) d[j] = rs * (g[j] * s[j] - a - (xr[j] - m) * rs * bb);
            } else {
#pragma omp simd
                for (int64_t j = 0; j < D; j++) d[j] += rs * (g[j] * s[j] - a - (xr[j] - m) * rs * bb);
            }
        }
    }
    /* parameter gradients (training, or a scale/bias computed at run time): serial over rows */
    float *ds = S->grad, *db = B ? B->grad : NULL;
    if (ds && S->grad_write) memset(ds, 0, (size_t)D * sizeof(float));
    if (db && B->grad_write) memset(db, 0, (size_t)D * sizeof(float));
    if (!ds && !db) return;
    for (int64_t r = 0; r < p.rows; r++) {
        const float *xr = x + r * D, *g = dy + r * D;
        float m = stat[2 * r], rs = stat[2 * r + 1];
        if (ds)
            for (int64_t j = 0; j < D; j++) ds[j] += g[j] * (xr[j] - m) * rs;
        if (db)
            for (int64_t j = 0; j < D; j++) db[j] += g[j];
    }
}
