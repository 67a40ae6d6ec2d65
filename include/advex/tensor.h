/* A plain float32 tensor (row-major, NCHW for images) and the seeded random generator.
 * Tensors are plain structs so bindings can mirror them; advex never hides their memory. */
#ifndef ADVEX_TENSOR_H
#define ADVEX_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif
ADVEX_API_BEGIN

#define ADVEX_MAX_DIMS 6

typedef struct advex_tensor {
    float *data;                    /* numel floats, row-major; owned by whoever allocated it */
    int ndim;                       /* 0..ADVEX_MAX_DIMS */
    int64_t dims[ADVEX_MAX_DIMS];
} advex_tensor;

/* Product of dims (1 for ndim 0); -1 if it would overflow int64. */
int64_t advex_tensor_numel(const advex_tensor *t);

/* Allocate t->data (zeroed) for the given shape. On error t is left empty. */
advex_status advex_tensor_alloc(advex_tensor *t, int ndim, const int64_t *dims);

/* Free t->data and reset t to empty. Safe on an empty tensor. */
void advex_tensor_free(advex_tensor *t);

/* xoshiro256** generator: explicit state, never global, reproducible for a seed. */
typedef struct advex_rng {
    uint64_t s[4];
} advex_rng;

void advex_rng_seed(advex_rng *r, uint64_t seed);
uint64_t advex_rng_u64(advex_rng *r);
/* Uniform in [0,1). */
float advex_rng_uniform(advex_rng *r);
/* Uniform integer in [0, n), n > 0, unbiased. */
uint64_t advex_rng_below(advex_rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
float advex_rng_normal(advex_rng *r);
/* Independent stream k derived from a seed (for per-example or per-thread streams). */
void advex_rng_seed_stream(advex_rng *r, uint64_t seed, uint64_t stream);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
