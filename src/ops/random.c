/* Randomness inside a model (randomized defences): RandomNormalLike, RandomUniformLike and
 * Bernoulli draw a tensor of their input's shape, RandomNormal and RandomUniform one of a
 * fixed shape, from the plan's seeded advex_rng (advex_model_seed), anew on every forward
 * pass. The sample is a constant with respect to the input: no gradient flows through these
 * ops (x + noise passes the gradient through the Add, Dropout's multiplies by its mask). The
 * ONNX `seed` attribute is not honoured: advex seeds the whole model instead. */
#include <string.h>

#include "ops/kernels.h"

/* attrs: RandomNormal* mean in alpha, scale in beta; RandomUniform* low in min, high in max;
 * RandomNormal/RandomUniform the shape in ints[0..n_ints). */
advex_status advex_random_infer(const advex_node *nd, advex_value *v) {
    advex_value *y = &v[nd->out[0]];
    if (nd->op == ADVEX_OP_RANDOM_NORMAL || nd->op == ADVEX_OP_RANDOM_UNIFORM) {
        if (nd->a.n_ints < 1 || nd->a.n_ints > ADVEX_MAX_DIMS)
            return advex_set_error(ADVEX_ERR_SHAPE, "%s: shape of %d dims", nd->name, nd->a.n_ints);
        int64_t numel = 1;
        for (int d = 0; d < nd->a.n_ints; d++) { /* bounded: a hostile file cannot overflow the size */
            if (nd->a.ints[d] < 1 || nd->a.ints[d] > ((int64_t)1 << 24) || (numel *= nd->a.ints[d]) > ((int64_t)1 << 31))
                return advex_set_error(ADVEX_ERR_SHAPE, "%s: shape entry %lld (each in 1..2^24, %s)", nd->name,
                                       (long long)nd->a.ints[d], "at most 2^31 elements");
        }
        advex_set_shape(y, nd->a.n_ints, nd->a.ints);
        return ADVEX_OK;
    }
    const advex_value *x = &v[nd->in[0]];
    advex_set_shape(y, x->ndim, x->dims);
    return ADVEX_OK;
}

void advex_random_forward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    advex_value *y = &v[nd->out[0]];
    int64_t n = advex_val_numel(y);
    const advex_attrs *a = &nd->a;
    switch (nd->op) {
    case ADVEX_OP_RANDOM_NORMAL_LIKE: case ADVEX_OP_RANDOM_NORMAL: /* y = mean + scale * N(0,1) */
        for (int64_t i = 0; i < n; i++) y->data[i] = a->alpha + a->beta * advex_rng_normal(c->rng);
        break;
    case ADVEX_OP_RANDOM_UNIFORM_LIKE: case ADVEX_OP_RANDOM_UNIFORM: /* y = low + (high - low) U[0,1) */
        for (int64_t i = 0; i < n; i++) y->data[i] = a->min + (a->max - a->min) * advex_rng_uniform(c->rng);
        break;
    default: { /* Bernoulli: y = [u < p] */
        const float *p = v[nd->in[0]].data;
        for (int64_t i = 0; i < n; i++) y->data[i] = advex_rng_uniform(c->rng) < p[i] ? 1.0f : 0.0f;
    }
    }
}

/* d y / d x = 0: nothing to add (the planner zeroed the input's gradient: grad_write_in 0) */
void advex_random_backward(const advex_node *nd, advex_value *v, advex_op_ctx *c) {
    (void)nd, (void)v, (void)c;
}
