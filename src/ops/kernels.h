/* Raw kernels of the op families (float* in, explicit sizes, output first) and the
 * per-op entry points that ops_table.c wires into advex_op_defs. Internal to src/ops and
 * tests; portable *_ref kernels are naive loops that tests use to check fast paths. */
#ifndef ADVEX_OPS_KERNELS_H
#define ADVEX_OPS_KERNELS_H

#include <stdint.h>
#include "internal.h"

/* advex_attrs.auto_pad values (ONNX auto_pad strings). */
enum { ADVEX_AUTO_PAD_NOTSET = 0, ADVEX_AUTO_PAD_SAME_UPPER = 1, ADVEX_AUTO_PAD_SAME_LOWER = 2,
       ADVEX_AUTO_PAD_VALID = 3 };

/* Images [n0, n1) of thread t's share of N images over T threads. */
static inline void advex_share(int64_t N, int T, int t, int64_t *n0, int64_t *n1) {
    *n0 = N * t / T;
    *n1 = N * (t + 1) / T;
}

/* Below this many elements a loop stays serial (OpenMP start-up costs more). */
#define ADVEX_OMP_MIN 32768

/* ---- small shared helpers (ops_table.c) ------------------------------------------------ */

static inline int64_t advex_val_numel(const advex_value *v) { return advex_numel(v->ndim, v->dims); }
/* "(2,3,5)" into buf (at least 96 bytes); returns buf. */
const char *advex_shape_str(char *buf, size_t n, int ndim, const int64_t *dims);
/* Set the output value's shape. */
void advex_set_shape(advex_value *o, int ndim, const int64_t *dims);
/* Normalise an axis in [-r, r) (or [-r, r] when inclusive) to [0, r); -1 if out of range. */
int advex_norm_axis(int64_t axis, int r, int inclusive);
/* Strides (in elements) of `in` (idims, ndim_in) aligned right to an output of ndim_out
 * dims, 0 where the input dim is broadcast (size 1 or missing). */
void advex_bcast_strides(int64_t *strides, int ndim_out, const int64_t *odims, int ndim_in,
                         const int64_t *idims);
/* Numpy multidirectional broadcast of two shapes; 0 if incompatible. */
int advex_bcast_shape(int *ndim, int64_t *dims, int na, const int64_t *a, int nb, const int64_t *b);

/* ---- conv (conv.c) -------------------------------------------------------------------- */

/* Geometry of a 2-D convolution or pooling window; pads already resolved (auto_pad). */
typedef struct advex_conv2d_p {
    int64_t N, C, H, W;      /* input (N,C,H,W) */
    int64_t M;               /* output channels (conv) */
    int64_t G;               /* groups */
    int64_t KH, KW;          /* kernel */
    int64_t SH, SW;          /* strides */
    int64_t DH, DW;          /* dilations */
    int64_t PT, PL, PB, PR;  /* pads: top, left, bottom, right */
    int64_t OH, OW;          /* output spatial size */
    int algo;                /* ADVEX_CONV_AUTO, ADVEX_CONV_PRECISE (forward on the smallest,
                                most accurate Winograd tiles) or ADVEX_CONV_GEMM (im2col + sgemm) */
    int relu;                /* forward stores max(0, conv + bias) (a fused Relu) */
    const float *dmask;      /* backward, stride-2 path only (advex_conv_s2_backward): dY counts
                                only where dmask > 0 (a fused Relu's output, fuse.c) */
} advex_conv2d_p;

static inline float advex_relu_if(float v, int relu) { return relu && !(v > 0.0f) ? 0.0f : v; }
/* dy[i] = 0 where y[i] <= 0 (a fused Relu's backward applied by its producer: y is the
 * producer's stored max(0, .)); threaded from ADVEX_OMP_MIN elements, vectorised (act.c) */
void advex_relu_mask(float *dy, const float *y, int64_t n);

enum { ADVEX_CONV_AUTO = 0, ADVEX_CONV_GEMM = 1, ADVEX_CONV_PRECISE = 2 };

/* Resolve auto_pad / pads and output size for input (H,W), kernel, strides, dilations.
 * pool != 0: ceil_mode allowed and the ONNX/PyTorch "window starting in the right padding is
 * dropped" rule applies. Errors name op/node. */
advex_status advex_window_geom(advex_conv2d_p *p, const advex_attrs *a, const char *op,
                               const char *node, int pool);

/* Floats of scratch the fast conv needs with `threads` threads: per thread an im2col buffer
 * for a chunk of images, the chunk's output (or output gradient) and a private dW. */
int64_t advex_conv2d_scratch(const advex_conv2d_p *p, int threads);
/* out (N,M,OH,OW) = conv(x (N,C,H,W), w (M,C/G,KH,KW)) + b (M, may be NULL). Parallel over
 * the batch; uses as many threads as scratch_n floats of scratch allow (at least one). */
void advex_conv2d_forward(float *out, const float *x, const float *w, const float *b,
                          const advex_conv2d_p *p, float *scratch, int64_t scratch_n);
/* Same with the Winograd-transformed kernel precomputed (U may be NULL). */
void advex_conv2d_forward_u(float *out, const float *x, const float *w, const float *U, const float *b,
                            const advex_conv2d_p *p, float *scratch, int64_t scratch_n);
/* dx (N,C,H,W), dw (M,C/G,KH,KW), db (M) += J^T dout; any of them may be NULL. */
void advex_conv2d_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                           const float *w, const advex_conv2d_p *p, float *scratch, int64_t scratch_n);
/* Same, with write_dx: dx is stored (=) rather than accumulated (its old contents ignored). */
void advex_conv2d_backward_mode(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                                const float *U, const advex_conv2d_p *p, float *scratch, int64_t scratch_n,
                                int write_dx);
void advex_conv2d_forward_ref(float *out, const float *x, const float *w, const float *b,
                              const advex_conv2d_p *p);
void advex_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dout,
                               const float *x, const float *w, const advex_conv2d_p *p);

/* ---- Winograd (winograd.c): stride-1, dilation-1, ungrouped 3x3 / 5x5 convolutions ---- */

/* Whether the forward / input-gradient pass of this geometry goes through Winograd. */
int advex_wino_forward_ok(const advex_conv2d_p *p);
int advex_wino_backward_ok(const advex_conv2d_p *p);
/* Floats of scratch for either pass with `threads` threads (0 when not eligible). */
int64_t advex_wino_scratch(const advex_conv2d_p *p, int threads);
/* Floats of the transformed kernel U for the forward (grad 0) or input-gradient (grad 1)
 * pass (0 when not eligible), and U itself from the weights w (M, C, KH, KW). */
int64_t advex_wino_u_size(const advex_conv2d_p *p, int grad);
void advex_wino_weights(float *U, const float *w, const advex_conv2d_p *p, int grad);
/* out = conv(x, w) + b (written). U: the transformed kernel (advex_wino_weights), or NULL to
 * transform w into the scratch. Returns 0, doing nothing, when not eligible or when the
 * scratch is too small for even one thread. */
int advex_wino_forward(float *out, const float *x, const float *w, const float *U, const float *b,
                       const advex_conv2d_p *p, float *scratch, int64_t scratch_n);
/* dx (N,C,H,W) = (or += when accumulate) J^T dout. U as above (grad 1). Returns 0 as above. */
int advex_wino_backward_data(float *dx, const float *dout, const float *w, const float *U, const advex_conv2d_p *p,
                             int accumulate, float *scratch, int64_t scratch_n);

/* The weight gradient of the same geometries: dw (M,C,KH,KW) += dL/dw for output gradient
 * dout and input x. Needs advex_wino_dw_scratch floats; returns 0, doing nothing, when not
 * eligible or the scratch is too small. */
int advex_wino_dw_ok(const advex_conv2d_p *p);
int64_t advex_wino_dw_scratch(const advex_conv2d_p *p, int threads);
int advex_wino_backward_weights(float *dw, const float *dout, const float *x, const advex_conv2d_p *p,
                                float *scratch, int64_t scratch_n);

/* ---- stride 2 through space-to-depth (conv_s2.c) ----------------------------------------- */

int advex_conv_s2_ok(const advex_conv2d_p *p);
/* Stride-1 convolutions with at most 64 taps (C*KH*KW): direct forward (conv_s2.c). */
int advex_conv_few_s1_ok(const advex_conv2d_p *p);
int64_t advex_conv_few_s1_scratch(const advex_conv2d_p *p, int threads);
int advex_conv_few_s1_forward(float *out, const float *x, const float *w, const float *b, const advex_conv2d_p *p,
                              float *scratch, int64_t scratch_n);
int64_t advex_conv_s2_scratch(const advex_conv2d_p *p, int threads);
/* Return 0, doing nothing, when not eligible or the scratch is too small. */
int advex_conv_s2_forward(float *out, const float *x, const float *w, const float *b, const advex_conv2d_p *p,
                          float *scratch, int64_t scratch_n);
/* dx stored (write_dx) or accumulated, dw accumulated (either may be NULL); not db. */
int advex_conv_s2_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                           const advex_conv2d_p *p, float *scratch, int64_t scratch_n, int write_dx);

/* ---- a convolution at a few output positions (conv_patch.c) -------------------------------- */

/* out[p * ldo + m] = sum_k wt[k * ldw + m] * pt[p * K + k] (p < P, m < ldw): the outputs of
 * P positions from their patches pt (P, K) and the transposed weights wt (K, ldw), ldw and
 * ldo multiples of 8; each sum over k in order from 0 (conv_s2.c's order and rounding). */
void advex_conv_patch(float *out, int64_t ldo, const float *wt, int64_t ldw, int64_t K, const float *pt, int64_t P);
/* acc[n] += sum_u dv[u] * b[row[u] * N + n] (n < N, u < cnt): a dense layer's change from
 * a few changed inputs (rows of its (K, N) weights). */
void advex_rows_axpy(float *acc, int64_t N, const float *b, const int64_t *row, const float *dv, int64_t cnt);

/* ---- grouped convolutions with few taps, depthwise included (conv_group.c) ------------ */

int advex_conv_group_ok(const advex_conv2d_p *p);
int64_t advex_conv_group_scratch(const advex_conv2d_p *p, int threads);
/* Return 0, doing nothing, when not eligible or the scratch is too small. */
int advex_conv_group_forward(float *out, const float *x, const float *w, const float *b, const advex_conv2d_p *p,
                             float *scratch, int64_t scratch_n);
/* dx stored (write_dx) or accumulated; the weight gradient is conv.c's. */
int advex_conv_group_backward_data(float *dx, const float *dout, const float *w, const advex_conv2d_p *p, int write_dx,
                                   float *scratch, int64_t scratch_n);

/* ---- gemm (gemm.c) -------------------------------------------------------------------- */

/* Row-major C (M,N) = alpha op(A) op(B) + beta C through cblas_sgemm; split over the OpenMP
 * threads (by rows or columns) when large and not already inside a parallel region. */
void advex_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                 const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* c (M,N) = alpha * op(a) op(b) + beta * c, naive loops (a (M,K) or (K,M) if ta). */
void advex_gemm_ref(float *c, const float *a, const float *b, int64_t M, int64_t N, int64_t K,
                    int ta, int tb, float alpha, float beta);

/* ---- pool (pool.c) -------------------------------------------------------------------- */

/* out (N,C,OH,OW); argmax (N,C,OH,OW) plane index of the max (first on ties), -1 if the
 * window holds no input; argmax may be NULL. */
void advex_maxpool2d_forward(float *out, int32_t *argmax, const float *x, const advex_conv2d_p *p);
void advex_maxpool2d_backward(float *dx, const float *dout, const int32_t *argmax,
                              const float *x, const advex_conv2d_p *p);
void advex_avgpool2d_forward(float *out, const float *x, const advex_conv2d_p *p, int include_pad);
void advex_avgpool2d_backward(float *dx, const float *dout, const advex_conv2d_p *p, int include_pad);
void advex_maxpool2d_forward_ref(float *out, const float *x, const advex_conv2d_p *p);
void advex_maxpool2d_backward_ref(float *dx, const float *dout, const float *x, const advex_conv2d_p *p);
void advex_avgpool2d_forward_ref(float *out, const float *x, const advex_conv2d_p *p, int include_pad);
void advex_avgpool2d_backward_ref(float *dx, const float *dout, const advex_conv2d_p *p, int include_pad);

/* ---- elementwise math (unary.c), layer normalisation (layernorm.c) --------------------- */

/* y (n) = sigmoid(x), or x sigmoid(x) (silu), with libm's expf: the reference the
 * vectorised Sigmoid kernels (act.c, vmath.h) are tested against. */
void advex_sigmoid_ref(float *y, const float *x, int64_t n, int silu);
/* Exact GELU, forward y = x Phi(x) and dx (= or += by write) dy (Phi(x) + x phi(x)), and a
 * softmax of one contiguous row (max subtracted), vectorised (act.c, vmath.h); threaded
 * from ADVEX_OMP_MIN elements (not the row kernel). advex_unary_kernel and
 * advex_unary_backward_kernel (libm, also used for constant folding) are their reference. */
void advex_gelu_kernel(float *y, const float *x, int64_t n);
void advex_gelu_grad_kernel(float *dx, const float *dy, const float *x, int64_t n, int write);
void advex_softmax_row(float *y, const float *x, int64_t D);

/* y (n) = f(x) for a unary math op (Sqrt ... Selu); alpha, beta, mode: the op's attributes. */
void advex_unary_kernel(advex_op_type op, float alpha, float beta, int mode, float *y, const float *x, int64_t n);
/* dx (n) = f'(x) dy (write) or += it; y = f(x) */
void advex_unary_backward_kernel(advex_op_type op, float alpha, float beta, int mode, float *dx, const float *dy,
                                 const float *x, const float *y, int64_t n, int write);
/* y (rows, D) = (x - mean) / sqrt(var + eps) * s + b per row (b may be NULL); stat (rows, 2)
 * receives each row's mean and 1/sqrt(var + eps). */
void advex_layernorm_rows(float *y, float *stat, const float *x, const float *s, const float *b, int64_t rows,
                          int64_t D, float eps);

/* ---- op entry points (one set per op, see advex_op_def) ----------------------------- */

#define ADVEX_OP_FN_DECL_(pfx)                                                            \
    advex_status advex_##pfx##_infer(const advex_node *nd, advex_value *v);                      \
    void advex_##pfx##_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c);           \
    void advex_##pfx##_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c);
#define ADVEX_OP_SIZE_DECL_(fn) int64_t advex_##fn(const advex_node *nd, const advex_value *v, int train);

ADVEX_OP_FN_DECL_(conv)
ADVEX_OP_SIZE_DECL_(conv_scratch)
ADVEX_OP_SIZE_DECL_(conv_aux)
ADVEX_OP_FN_DECL_(gemm)
ADVEX_OP_FN_DECL_(matmul)
ADVEX_OP_FN_DECL_(relu)
ADVEX_OP_FN_DECL_(leaky_relu)
ADVEX_OP_FN_DECL_(sigmoid)
ADVEX_OP_FN_DECL_(tanh)
ADVEX_OP_FN_DECL_(clip)
ADVEX_OP_FN_DECL_(identity)
ADVEX_OP_FN_DECL_(maxpool)
ADVEX_OP_SIZE_DECL_(maxpool_aux)
ADVEX_OP_FN_DECL_(avgpool)
ADVEX_OP_FN_DECL_(global_avgpool)
ADVEX_OP_FN_DECL_(batchnorm)
ADVEX_OP_SIZE_DECL_(batchnorm_aux)
ADVEX_OP_FN_DECL_(dropout)
ADVEX_OP_SIZE_DECL_(dropout_aux)
ADVEX_OP_FN_DECL_(flatten)
ADVEX_OP_FN_DECL_(reshape)
ADVEX_OP_FN_DECL_(transpose)
ADVEX_OP_FN_DECL_(concat)
ADVEX_OP_FN_DECL_(pad)
ADVEX_OP_FN_DECL_(binary)
ADVEX_OP_FN_DECL_(softmax)
ADVEX_OP_FN_DECL_(log_softmax)
ADVEX_OP_FN_DECL_(unary)
ADVEX_OP_FN_DECL_(bcast)
ADVEX_OP_FN_DECL_(reduce)
ADVEX_OP_SIZE_DECL_(reduce_scratch)
ADVEX_OP_FN_DECL_(layernorm)
ADVEX_OP_SIZE_DECL_(layernorm_aux)
ADVEX_OP_FN_DECL_(slice)
ADVEX_OP_FN_DECL_(gather)
ADVEX_OP_FN_DECL_(random)

#undef ADVEX_OP_FN_DECL_
#undef ADVEX_OP_SIZE_DECL_

#endif
