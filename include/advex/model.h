/* Models: a DAG of nodes with parameters, built in (arch name) or loaded from ONNX.
 * Forward gives logits; backward gives the gradient of a loss with respect to the input
 * (for attacks) and, in training, with respect to the parameters. */
#ifndef ADVEX_MODEL_H
#define ADVEX_MODEL_H

#include <stdint.h>
#include "status.h"
#include "tensor.h"
#include "memory.h"

#ifdef __cplusplus
extern "C" {
#endif
ADVEX_API_BEGIN

typedef struct advex_model advex_model;

/* Losses on logits (N, C) with integer labels. */
typedef enum advex_loss {
    ADVEX_LOSS_CE = 0,      /* softmax cross-entropy */
    ADVEX_LOSS_CW = 1,      /* Carlini-Wagner margin: max_{j!=y} z_j - z_y (kappa = 0) */
    ADVEX_LOSS_DLR = 2,     /* Croce & Hein's difference-of-logits ratio */
} advex_loss;

typedef enum advex_reduction {
    ADVEX_REDUCE_MEAN = 0,
    ADVEX_REDUCE_SUM = 1,
} advex_reduction;

/* Build a built-in architecture with freshly initialised weights (Kaiming-uniform, as
 * PyTorch's defaults). arch: "small" or "cnn" (see advex_model_arch_names()). */
advex_status advex_model_build(const char *arch, uint64_t seed, advex_model **out);

/* Comma-separated list of the built-in architecture names. */
const char *advex_model_arch_names(void);

/* Load an ONNX model (opset 7..17). Errors name the file and the node. */
advex_status advex_model_load_onnx(const char *path, advex_model **out);
/* Load from memory (same rules; `name` is used in error messages). */
advex_status advex_model_load_onnx_buffer(const void *buf, size_t len, const char *name,
                                          advex_model **out);

/* Write as ONNX opset 13, input "input" (N,C,H,W with N dynamic), output "logits".
 * Written to a temporary file and renamed: no partial file on error. */
advex_status advex_model_save_onnx(const advex_model *m, const char *path);

/* Another handle on the same model: the weights are shared (not copied), the buffers for
 * running it are its own, so two threads can attack or evaluate through two handles at once.
 * Training through one handle while another runs is not allowed. Free each handle with
 * advex_model_free; the weights go with the last. */
advex_status advex_model_share(const advex_model *m, advex_model **out);

void advex_model_free(advex_model *m);
/* Randomness inside a model (randomized defences: ONNX RandomNormalLike, RandomUniformLike,
 * RandomNormal, RandomUniform, Bernoulli, Dropout with training_mode=true): every forward
 * pass draws anew from the handle's own generators, seeded here (a new handle: seed 0).
 * The sequence of passes after a seed is reproducible for a given thread count. Attacks
 * (advex_attack_batch) and evaluations restart the generators at every batch from (this
 * seed, the index of the batch's first example): a batch draws the same whatever ran before
 * it, so resumed and sharded evaluations agree with one uninterrupted run. */
void advex_model_seed(advex_model *m, uint64_t seed);
/* 1 when the model draws random numbers in its forward pass. */
int advex_model_is_random(const advex_model *m);

/* 1 if the loaded ONNX graph ended in Softmax/LogSoftmax and advex cut it off so that
 * attacks see logits (gradients through probabilities saturate: false robustness). */
int advex_model_output_was_prob(const advex_model *m);

/* A description for people, one "key: value" line each: source, opset, input and output
 * names and shapes, parameter and node counts, the ops used with their counts. *text is
 * malloc'd (free it). */
advex_status advex_model_describe(const advex_model *m, char **text);

/* Multiply-adds of one forward pass per example (the Conv, Gemm and MatMul nodes); 0 when the
 * model cannot be planned. */
double advex_model_macs(const advex_model *m);

/* Expected input shape per example (C, H, W) and number of classes. */
void advex_model_input_shape(const advex_model *m, int64_t chw[3]);
int64_t advex_model_num_classes(const advex_model *m);
/* Number of trainable parameters (floats). */
int64_t advex_model_num_params(const advex_model *m);

/* Logits (n, classes) of a batch x (n, C, H, W), eval mode. */
advex_status advex_model_forward(advex_model *m, const float *x, int64_t n, float *logits);

/* Gradient of loss(logits(x), y) with respect to x, eval mode, parameters untouched.
 * grad: (n, C, H, W). logits (n, classes) and loss_out (per-example losses, n) may be NULL.
 * The reduction is a sum over the batch (so each example's gradient is its own). */
advex_status advex_model_input_grad(advex_model *m, const float *x, const int32_t *y,
                                    int64_t n, advex_loss loss, float *grad,
                                    float *logits, float *loss_out);

/* Gradient with respect to x of sum_i sum_k w[i,k] * logits[i,k] for a given weighting
 * w (n, classes): the general vector-Jacobian product attacks build on. */
advex_status advex_model_vjp(advex_model *m, const float *x, int64_t n, const float *w,
                             float *grad, float *logits);

/* Thread count for advex's kernels (<= 0: all cores). Process-wide. */
void advex_set_threads(int n);
int advex_get_threads(void);

/* The instruction-set variant the hot kernels run: "avx512", "avx2" or "generic" (chosen
 * once, at the first kernel call, from the CPU; the environment variable ADVEX_ISA =
 * generic|avx2|avx512 caps it), or "native" in a build configured with -DADVEX_NATIVE=ON.
 * Static string. */
const char *advex_kernel_isa(void);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
