/* Plain tensors and the xoshiro256** random generator (seeded by splitmix64). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int64_t advex_tensor_numel(const advex_tensor *t) { return advex_numel(t->ndim, t->dims); }

advex_status advex_tensor_alloc(advex_tensor *t, int ndim, const int64_t *dims) {
    int64_t n = advex_numel(ndim, dims);
    memset(t, 0, sizeof *t);
    if (n < 0) return advex_set_error(ADVEX_ERR_LIMIT, "tensor: shape overflows");
    t->data = advex_falloc(n);
    if (!t->data) return advex_alloc_error(n, "a tensor (advex_tensor_alloc)");
    memset(t->data, 0, (size_t)n * sizeof(float));
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->dims[i] = dims[i];
    return ADVEX_OK;
}

/* Index of the first NaN or Inf in p[0..n), or -1. The common case (none) is one
 * vectorised pass over the exponent bits, threaded on large arrays (attack steps check
 * every input and input gradient); the offender is looked up only when there is one. */
int64_t advex_find_nonfinite(const float *p, int64_t n) {
    int bad = 0;
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (n >= 65536)
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, p + i, sizeof b);
        bad |= (b & 0x7f800000u) == 0x7f800000u;
    }
    if (!bad) return -1;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return i;
    return -1;
}

void advex_tensor_free(advex_tensor *t) {
    if (!t) return;
    advex_ffree(t->data);
    memset(t, 0, sizeof *t);
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void advex_rng_seed(advex_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void advex_rng_seed_stream(advex_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL + 0x8bb84b93962eacc9ULL);
    (void)splitmix64(&x);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t advex_rng_u64(advex_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float advex_rng_uniform(advex_rng *r) {
    return (float)(advex_rng_u64(r) >> 40) * (1.0f / 16777216.0f); /* 24 bits */
}

uint64_t advex_rng_below(advex_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = advex_rng_u64(r); while (x >= limit);
    return x % n;
}

float advex_rng_normal(advex_rng *r) {
    double u1 = ((double)(advex_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(advex_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
