/* Run-time ISA dispatch of the hot kernels (docs/performance.md, "Portable builds").
 *
 * The files in CMakeLists.txt's ADVEX_ISA_SOURCES are compiled once per ISA variant: as
 * part of the library with the baseline flags ("generic": SSE2 on x86-64, NEON on aarch64),
 * and on x86-64 again with -mavx2 -mfma ("avx2") and with AVX-512 F/VL/BW/DQ ("avx512"),
 * each time with ADVEX_ISA_BUILD naming the variant. In those files every kernel in
 * ADVEX_KERNELS below is defined as ADVEX_ISA_FN(name), which appends the variant
 * (advex_wino_forward_avx2), and everything that must exist once (geometry, scratch sizes)
 * sits inside #if ADVEX_ISA_BASE. dispatch.c defines the plain names (advex_wino_forward)
 * as calls through one table of function pointers, picked once, at first use, from the CPU
 * (or from ADVEX_ISA=generic|avx2|avx512): callers and tests see the ordinary names.
 *
 * To add a kernel: define it as ADVEX_ISA_FN(advex_x) in a file of ADVEX_ISA_SOURCES,
 * declare advex_x as usual (kernels.h) and add one X(...) line to ADVEX_KERNELS. */
#ifndef ADVEX_OPS_DISPATCH_H
#define ADVEX_OPS_DISPATCH_H

#include "attacks/attack_internal.h"
#include "ops/kernels.h"

/* The variants, in increasing order of what they need from the CPU. */
typedef enum advex_isa {
    ADVEX_ISA_GENERIC = 0, /* the baseline compile (or -march=native with ADVEX_NATIVE) */
    ADVEX_ISA_AVX2 = 1,    /* x86-64: AVX2 + FMA */
    ADVEX_ISA_AVX512 = 2,  /* x86-64: AVX-512 F, VL, BW, DQ (+ AVX2, FMA) */
    ADVEX_ISA_COUNT
} advex_isa;

/* X(return type, name, (parameters), (arguments)): every dispatched kernel. The return type
 * is one token (a void kernel's wrapper must not `return`). */
#define ADVEX_KERNELS(X)                                                                                          \
    X(void, advex_wino_weights, (float *U, const float *w, const advex_conv2d_p *p, int grad), (U, w, p, grad))    \
    X(int, advex_wino_forward,                                                                                    \
      (float *out, const float *x, const float *w, const float *U, const float *b, const advex_conv2d_p *p,       \
       float *scratch, int64_t scratch_n),                                                                         \
      (out, x, w, U, b, p, scratch, scratch_n))                                                                    \
    X(int, advex_wino_backward_data,                                                                              \
      (float *dx, const float *dout, const float *w, const float *U, const advex_conv2d_p *p, int accumulate,     \
       float *scratch, int64_t scratch_n),                                                                         \
      (dx, dout, w, U, p, accumulate, scratch, scratch_n))                                                         \
    X(int, advex_wino_backward_weights,                                                                           \
      (float *dw, const float *dout, const float *x, const advex_conv2d_p *p, float *scratch, int64_t scratch_n), \
      (dw, dout, x, p, scratch, scratch_n))                                                                        \
    X(int, advex_conv_s2_forward,                                                                                 \
      (float *out, const float *x, const float *w, const float *b, const advex_conv2d_p *p, float *scratch,       \
       int64_t scratch_n),                                                                                         \
      (out, x, w, b, p, scratch, scratch_n))                                                                       \
    X(int, advex_conv_s2_backward,                                                                                \
      (float *dx, float *dw, const float *dout, const float *x, const float *w, const advex_conv2d_p *p,          \
       float *scratch, int64_t scratch_n, int write_dx),                                                           \
      (dx, dw, dout, x, w, p, scratch, scratch_n, write_dx))                                                       \
    X(int, advex_conv_few_s1_forward,                                                                             \
      (float *out, const float *x, const float *w, const float *b, const advex_conv2d_p *p, float *scratch,       \
       int64_t scratch_n),                                                                                         \
      (out, x, w, b, p, scratch, scratch_n))                                                                       \
    X(int, advex_conv_group_forward,                                                                              \
      (float *out, const float *x, const float *w, const float *b, const advex_conv2d_p *p, float *scratch,       \
       int64_t scratch_n),                                                                                         \
      (out, x, w, b, p, scratch, scratch_n))                                                                       \
    X(int, advex_conv_group_backward_data,                                                                        \
      (float *dx, const float *dout, const float *w, const advex_conv2d_p *p, int write_dx, float *scratch,       \
       int64_t scratch_n),                                                                                         \
      (dx, dout, w, p, write_dx, scratch, scratch_n))                                                              \
    ADVEX_OP_KERNELS_(X, batchnorm)                                                                               \
    ADVEX_OP_KERNELS_(X, relu)                                                                                    \
    ADVEX_OP_KERNELS_(X, leaky_relu)                                                                              \
    ADVEX_OP_KERNELS_(X, sigmoid)                                                                                 \
    ADVEX_OP_KERNELS_(X, tanh)                                                                                    \
    ADVEX_OP_KERNELS_(X, clip)                                                                                    \
    ADVEX_OP_KERNELS_(X, identity)                                                                                \
    X(void, advex_relu_mask, (float *dy, const float *y, int64_t n), (dy, y, n))                                  \
    X(void, advex_gelu_kernel, (float *y, const float *x, int64_t n), (y, x, n))                                  \
    X(void, advex_gelu_grad_kernel, (float *dx, const float *dy, const float *x, int64_t n, int write),          \
      (dx, dy, x, n, write))                                                                                       \
    X(void, advex_softmax_row, (float *y, const float *x, int64_t D), (y, x, D))                                  \
    X(void, advex_sign_step_from,                                                                                 \
      (float *out, const float *from, const float *x, const float *g, int64_t n, float step, float eps),         \
      (out, from, x, g, n, step, eps))                                                                         \
    X(void, advex_conv_patch,                                                                                     \
      (float *out, int64_t ldo, const float *wt, int64_t ldw, int64_t K, const float *pt, int64_t P),             \
      (out, ldo, wt, ldw, K, pt, P))                                                                               \
    X(void, advex_rows_axpy,                                                                                      \
      (float *acc, int64_t N, const float *b, const int64_t *row, const float *dv, int64_t cnt),                \
      (acc, N, b, row, dv, cnt))                                                                                   \
    X(void, atk_fab_project,                                                                                      \
      (advex_norm norm, const float *t, const float *w, double b, int64_t n, float *d, atk_fab_key *scratch),    \
      (norm, t, w, b, n, d, scratch))
/* An op's forward and backward entry points (kernels.h's ADVEX_OP_FN_DECL_). */
#define ADVEX_OP_KERNELS_(X, op)                                                                       \
    X(void, advex_##op##_forward, (const advex_node * nd, advex_value * v, advex_op_ctx * c), (nd, v, c)) \
    X(void, advex_##op##_backward, (const advex_node * nd, advex_value * v, advex_op_ctx * c), (nd, v, c))

/* ---- inside a file of ADVEX_ISA_SOURCES ---------------------------------------------- */

#define ADVEX_ISA_CAT2_(a, b) a##_##b
#define ADVEX_ISA_CAT_(a, b) ADVEX_ISA_CAT2_(a, b)
#ifndef ADVEX_ISA_BUILD
#define ADVEX_ISA_BUILD generic
#define ADVEX_ISA_BASE 1 /* the compile that also defines the ISA-independent functions */
#else
#define ADVEX_ISA_BASE 0
#endif
#define ADVEX_ISA_FN(name) ADVEX_ISA_CAT_(name, ADVEX_ISA_BUILD)

/* Every variant's definitions (those not compiled into this build are never referenced). */
#define ADVEX_KERNEL_DECL_(ret, name, params, args) \
    ret name##_generic params;                      \
    ret name##_avx2 params;                         \
    ret name##_avx512 params;
ADVEX_KERNELS(ADVEX_KERNEL_DECL_)
#undef ADVEX_KERNEL_DECL_

/* ---- the dispatch point (dispatch.c) --------------------------------------------------- */

/* The table of the variant in use. */
#define ADVEX_KERNEL_PTR_(ret, name, params, args) ret(*name) params;
typedef struct advex_kernel_table {
    advex_isa isa;
    ADVEX_KERNELS(ADVEX_KERNEL_PTR_)
} advex_kernel_table;
#undef ADVEX_KERNEL_PTR_

/* Whether this build has variant `isa` and this CPU can run it. */
int advex_isa_available(advex_isa isa);
/* The variant in use; chosen at the first call (of this or any kernel): the best available,
 * capped by the environment variable ADVEX_ISA (generic, avx2 or avx512) when set. */
advex_isa advex_isa_active(void);
/* "generic", "avx2", "avx512" ("native" for the generic variant of an ADVEX_NATIVE build). */
const char *advex_isa_str(advex_isa isa);
/* Switch every kernel to variant `isa` (tests: run the same computation under each
 * variant); 0, changing nothing, when it is not available. Not thread-safe: call it while
 * no kernel runs. */
int advex_isa_force(advex_isa isa);

#endif
