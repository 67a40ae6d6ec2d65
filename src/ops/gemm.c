/* Gemm (Y = alpha * op(A) op(B) + beta * C, C broadcast to Y) and MatMul (numpy matmul
 * with batch broadcasting) through cblas_sgemm; weight gradients only when asked for.
 * advex_sgemm splits large products over the OpenMP threads (single-threaded BLAS each).
 * Backward accumulates into the input grads, or stores (beta 0) for an input in gradient
 * write mode (grad_write). */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "ops/kernels.h"

void advex_gemm_ref(float *c, const float *a, const float *b, int64_t M, int64_t N, int64_t K,
                    int ta, int tb, float alpha, float beta) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++)
                s += (double)(ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]);
            c[i * N + j] = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * c[i * N + j]));
        }
}

/* Products below this many multiply-adds stay on one thread. */
#define SGEMM_PAR_MIN (1 << 20)

void advex_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                 const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    int T = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (M <= 0 || N <= 0) return;
    if (T <= 1 || (double)M * (double)N * (double)K < SGEMM_PAR_MIN) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                    (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
        return;
    }
    /* split the side whose operand is smaller: every thread reads all of the other one */
    int by_rows = M >= N;
    int64_t len = by_rows ? M : N;
    if (len < 16 * T) by_rows = !by_rows, len = by_rows ? M : N;
    if (len < 2 * T) T = len < 2 ? 1 : (int)(len / 2);
#pragma omp parallel num_threads(T) if (T > 1)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t blk = (len + nt - 1) / nt;
        blk = (blk + 15) / 16 * 16;
        int64_t s0 = (int64_t)t * blk, s1 = s0 + blk < len ? s0 + blk : len;
        if (s0 < s1) {
            if (by_rows)
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)(s1 - s0),
                            (int)N, (int)K, alpha, ta ? A + s0 : A + s0 * lda, (int)lda, B, (int)ldb, beta, C + s0 * ldc,
                            (int)ldc);
            else
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M,
                            (int)(s1 - s0), (int)K, alpha, A, (int)lda, tb ? B + s0 * ldb : B + s0, (int)ldb, beta,
                            C + s0, (int)ldc);
        }
    }
}

/* ---- Gemm ---------------------------------------------------------------------------- */

typedef struct gemm_p {
    int64_t M, N, K;
    int64_t cs[2]; /* strides of C broadcast to (M,N) */
    int has_c;
} gemm_p;

static advex_status gemm_geom(const advex_node *nd, const advex_value *v, gemm_p *p) {
    const advex_value *A = &v[nd->in[0]], *B = &v[nd->in[1]];
    char ba[96], bb[96];
    if (A->ndim != 2 || B->ndim != 2)
        return advex_set_error(ADVEX_ERR_SHAPE, "Gemm %s: A %s and B %s must be 2-D", nd->name,
                               advex_shape_str(ba, sizeof ba, A->ndim, A->dims),
                               advex_shape_str(bb, sizeof bb, B->ndim, B->dims));
    int ta = nd->a.trans_a, tb = nd->a.trans_b;
    p->M = ta ? A->dims[1] : A->dims[0];
    p->K = ta ? A->dims[0] : A->dims[1];
    p->N = tb ? B->dims[0] : B->dims[1];
    int64_t kb = tb ? B->dims[1] : B->dims[0];
    if (kb != p->K)
        return advex_set_error(ADVEX_ERR_SHAPE, "Gemm %s: A %s%s and B %s%s have inner sizes %lld and %lld", nd->name,
                               advex_shape_str(ba, sizeof ba, A->ndim, A->dims), ta ? "^T" : "",
                               advex_shape_str(bb, sizeof bb, B->ndim, B->dims), tb ? "^T" : "", (long long)p->K,
                               (long long)kb);
    p->has_c = nd->n_in > 2 && nd->in[2] >= 0;
    p->cs[0] = p->cs[1] = 0;
    if (p->has_c) {
        const advex_value *C = &v[nd->in[2]];
        int64_t y[2] = {p->M, p->N};
        int ok = C->ndim <= 2;
        for (int d = 0; ok && d < C->ndim; d++) {
            int64_t cd = C->dims[d], yd = y[2 - C->ndim + d];
            ok = cd == yd || cd == 1;
        }
        if (!ok)
            return advex_set_error(ADVEX_ERR_SHAPE, "Gemm %s: C %s does not broadcast to (%lld,%lld)", nd->name,
                                   advex_shape_str(ba, sizeof ba, C->ndim, C->dims), (long long)p->M, (long long)p->N);
        advex_bcast_strides(p->cs, 2, y, C->ndim, C->dims);
    }
    return ADVEX_OK;
}

advex_status advex_gemm_infer(const advex_node *nd, advex_value *v) {
    gemm_p p;
    advex_status st = gemm_geom(nd, v, &p);
    if (st) return st;
    int64_t dims[2] = {p.M, p.N};
    advex_set_shape(&v[nd->out[0]], 2, dims);
    return ADVEX_OK;
}

/* Y (M,N) = alpha * op(A) op(B) + beta * C */
void advex_gemm_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    gemm_p p;
    if (gemm_geom(nd, v, &p)) return;
    const float *A = v[nd->in[0]].data, *B = v[nd->in[1]].data;
    float *Y = v[nd->out[0]].data;
    float alpha = nd->a.alpha, beta = nd->a.beta, gb = 0.0f;
    int ta = nd->a.trans_a, tb = nd->a.trans_b;
    if (p.has_c && beta != 0.0f) {
        const float *C = v[nd->in[2]].data;
        for (int64_t i = 0; i < p.M; i++)
            for (int64_t j = 0; j < p.N; j++) Y[i * p.N + j] = beta * C[i * p.cs[0] + j * p.cs[1]];
        gb = 1.0f;
    }
    advex_sgemm(ta, tb, (int)p.M, (int)p.N,
                (int)p.K, alpha, A, ta ? (int)p.M : (int)p.K, B, tb ? (int)p.K : (int)p.N, gb, Y, (int)p.N);
}

void advex_gemm_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    gemm_p p;
    if (gemm_geom(nd, v, &p)) return;
    const advex_value *Av = &v[nd->in[0]], *Bv = &v[nd->in[1]];
    const float *dY = v[nd->out[0]].grad; // (M,N)
    float alpha = nd->a.alpha;
    int ta = nd->a.trans_a, tb = nd->a.trans_b;
    int M = (int)p.M, N = (int)p.N, K = (int)p.K;
    /* beta 0 stores (gradient write mode), 1 accumulates */
    float ba = Av->grad_write ? 0.0f : 1.0f, bb = Bv->grad_write ? 0.0f : 1.0f;
    if (Av->grad) {
        if (!ta) // dA (M,K) += alpha dY (M,N) op(B)^T (N,K)
            advex_sgemm(0, !tb, M, K, N, alpha, dY, N, Bv->data,
                        tb ? K : N, ba, Av->grad, K);
        else // dA (K,M) += alpha op(B) (K,N) dY^T (N,M)
            advex_sgemm(tb, 1, K, M, N, alpha, Bv->data,
                        tb ? K : N, dY, N, ba, Av->grad, M);
    }
    if (Bv->grad) {
        if (!tb) // dB (K,N) += alpha op(A)^T (K,M) dY (M,N)
            advex_sgemm(!ta, 0, K, N, M, alpha, Av->data,
                        ta ? M : K, dY, N, bb, Bv->grad, N);
        else // dB (N,K) += alpha dY^T (N,M) op(A) (M,K)
            advex_sgemm(1, ta, N, K, M, alpha, dY, N, Av->data,
                        ta ? M : K, bb, Bv->grad, K);
    }
    if (p.has_c && v[nd->in[2]].grad) { // dC += beta * sum over broadcast dims of dY
        float *dC = v[nd->in[2]].grad, beta = nd->a.beta;
        if (v[nd->in[2]].grad_write) memset(dC, 0, (size_t)advex_val_numel(&v[nd->in[2]]) * sizeof(float));
        for (int64_t i = 0; i < p.M; i++)
            for (int64_t j = 0; j < p.N; j++) dC[i * p.cs[0] + j * p.cs[1]] += beta * dY[i * p.N + j];
    }
}

/* ---- MatMul ---------------------------------------------------------------------------- */

typedef struct matmul_p {
    int64_t M, N, K;
    int nb;                         /* batch dims of the output */
    int64_t bdims[ADVEX_MAX_DIMS];  /* output batch dims */
    int64_t as[ADVEX_MAX_DIMS], bs[ADVEX_MAX_DIMS]; /* batch strides (in matrices) of A, B */
    int64_t nbatch;
    int b_flat;                     /* B has no batch dims: fold A's batch into rows */
} matmul_p;

static advex_status matmul_geom(const advex_node *nd, const advex_value *v, matmul_p *p, int *ondim,
                                int64_t *odims) {
    const advex_value *A = &v[nd->in[0]], *B = &v[nd->in[1]];
    char ba[96], bb[96];
    if (A->ndim < 1 || B->ndim < 1)
        return advex_set_error(ADVEX_ERR_SHAPE, "MatMul %s: scalar operand", nd->name);
    int a1 = A->ndim == 1, b1 = B->ndim == 1;
    p->M = a1 ? 1 : A->dims[A->ndim - 2];
    p->K = A->dims[A->ndim - 1];
    int64_t kb = b1 ? B->dims[0] : B->dims[B->ndim - 2];
    p->N = b1 ? 1 : B->dims[B->ndim - 1];
    int na = A->ndim > 2 ? A->ndim - 2 : 0, nbb = B->ndim > 2 ? B->ndim - 2 : 0;
    if (kb != p->K || !advex_bcast_shape(&p->nb, p->bdims, na, A->dims, nbb, B->dims))
        return advex_set_error(ADVEX_ERR_SHAPE, "MatMul %s: shapes %s and %s do not match", nd->name,
                               advex_shape_str(ba, sizeof ba, A->ndim, A->dims),
                               advex_shape_str(bb, sizeof bb, B->ndim, B->dims));
    advex_bcast_strides(p->as, p->nb, p->bdims, na, A->dims);
    advex_bcast_strides(p->bs, p->nb, p->bdims, nbb, B->dims);
    p->nbatch = advex_numel(p->nb, p->bdims);
    p->b_flat = nbb == 0 && na == p->nb; /* A carries every batch dim, contiguously */
    if (ondim) {
        int k = 0;
        for (int d = 0; d < p->nb; d++) odims[k++] = p->bdims[d];
        if (!a1) odims[k++] = p->M;
        if (!b1) odims[k++] = p->N;
        *ondim = k;
    }
    return ADVEX_OK;
}

advex_status advex_matmul_infer(const advex_node *nd, advex_value *v) {
    matmul_p p;
    int nd_out;
    int64_t dims[ADVEX_MAX_DIMS];
    advex_status st = matmul_geom(nd, v, &p, &nd_out, dims);
    if (st) return st;
    advex_set_shape(&v[nd->out[0]], nd_out, dims);
    return ADVEX_OK;
}

/* offsets (in matrices) of batch bi in A and B */
static void matmul_offsets(const matmul_p *p, int64_t bi, int64_t *ao, int64_t *bo) {
    int64_t a = 0, b = 0;
    for (int d = p->nb - 1; d >= 0; d--) {
        int64_t i = bi % p->bdims[d];
        bi /= p->bdims[d];
        a += i * p->as[d];
        b += i * p->bs[d];
    }
    *ao = a;
    *bo = b;
}

/* Y[b] (M,N) = A[b] (M,K) B[b] (K,N) */
void advex_matmul_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    matmul_p p;
    if (matmul_geom(nd, v, &p, NULL, NULL)) return;
    const float *A = v[nd->in[0]].data, *B = v[nd->in[1]].data;
    float *Y = v[nd->out[0]].data;
    int M = (int)p.M, N = (int)p.N, K = (int)p.K;
    if (p.b_flat) {
        advex_sgemm(0, 0, (int)(p.nbatch * p.M), N, K, 1.0f, A, K, B, N, 0.0f, Y, N);
        return;
    }
    for (int64_t bi = 0; bi < p.nbatch; bi++) {
        int64_t ao, bo;
        matmul_offsets(&p, bi, &ao, &bo);
        advex_sgemm(0, 0, M, N, K, 1.0f, A + ao * p.M * p.K, K,
                    B + bo * p.K * p.N, N, 0.0f, Y + bi * p.M * p.N, N);
    }
}

void advex_matmul_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    matmul_p p;
    if (matmul_geom(nd, v, &p, NULL, NULL)) return;
    const advex_value *Av = &v[nd->in[0]], *Bv = &v[nd->in[1]];
    const float *dY = v[nd->out[0]].grad;
    int M = (int)p.M, N = (int)p.N, K = (int)p.K;
    if (p.b_flat) { /* one product per operand: beta 0 stores (gradient write mode) */
        int R = (int)(p.nbatch * p.M);
        if (Av->grad) // dA (R,K) += dY (R,N) B^T
            advex_sgemm(0, 1, R, K, N, 1.0f, dY, N, Bv->data, N, Av->grad_write ? 0.0f : 1.0f, Av->grad, K);
        if (Bv->grad) // dB (K,N) += A^T (K,R) dY (R,N)
            advex_sgemm(1, 0, K, N, R, 1.0f, Av->data, K, dY, N, Bv->grad_write ? 0.0f : 1.0f, Bv->grad, N);
        return;
    }
    /* batched: an operand broadcast over batches sums several products; zero, then add */
    if (Av->grad && Av->grad_write) memset(Av->grad, 0, (size_t)advex_val_numel(Av) * sizeof(float));
    if (Bv->grad && Bv->grad_write) memset(Bv->grad, 0, (size_t)advex_val_numel(Bv) * sizeof(float));
    for (int64_t bi = 0; bi < p.nbatch; bi++) { // serial: broadcast batches accumulate
        int64_t ao, bo;
        matmul_offsets(&p, bi, &ao, &bo);
        const float *dy = dY + bi * p.M * p.N;
        if (Av->grad)
            advex_sgemm(0, 1, M, K, N, 1.0f, dy, N, Bv->data + bo * p.K * p.N, N,
                        1.0f, Av->grad + ao * p.M * p.K, K);
        if (Bv->grad)
            advex_sgemm(1, 0, K, N, M, 1.0f, Av->data + ao * p.M * p.K, K, dy, N,
                        1.0f, Bv->grad + bo * p.K * p.N, N);
    }
}
