/* Attacks on a batch: craft x' from x within an eps-ball (L-inf) in [0,1].
 * All attacks run the model in eval mode and are reproducible for a seed. */
#ifndef ADVEX_ATTACK_H
#define ADVEX_ATTACK_H

#include <stdint.h>
#include "status.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum advex_attack_kind {
    ADVEX_ATTACK_NONE = 0,  /* identity: x' = x (clean accuracy) */
    ADVEX_ATTACK_FGSM,      /* x' = clip(x + eps*sign(grad), 0, 1) */
    ADVEX_ATTACK_FGSM_RS,   /* Wong et al.: delta ~ U[-eps,eps], one step alpha, project */
} advex_attack_kind;

typedef enum advex_target_mode {
    ADVEX_TARGET_NONE = 0,      /* untargeted */
    ADVEX_TARGET_LABEL,         /* a fixed class (target_label) */
    ADVEX_TARGET_NEXT,          /* (y + 1) mod C */
    ADVEX_TARGET_LEAST_LIKELY,  /* argmin of the clean logits */
    ADVEX_TARGET_RANDOM,        /* uniform over classes != y, seeded */
} advex_target_mode;

typedef struct advex_attack_config {
    advex_attack_kind kind;
    float eps;            /* L-inf radius in input units, >= 0 */
    float alpha;          /* step size (FGSM-RS); <= 0 means the default 1.25*eps */
    advex_target_mode target;
    int32_t target_label; /* for ADVEX_TARGET_LABEL */
    uint64_t seed;
} advex_attack_config;

/* Defaults: FGSM, eps 0, untargeted, seed 0. */
void advex_attack_config_default(advex_attack_config *c);

/* Parse "fgsm", "fgsm-rs", "none". Returns ADVEX_ERR_ARG on an unknown name. */
advex_status advex_attack_parse(const char *name, advex_attack_kind *kind);
const char *advex_attack_name(advex_attack_kind kind);
/* Parse "next", "least-likely", "random" or a class number. */
advex_status advex_target_parse(const char *s, advex_target_mode *mode, int32_t *label);

/* Targets for a batch under a target mode (n); clean logits needed for least-likely
 * (may be NULL otherwise). batch_offset makes the random mode independent of batching. */
advex_status advex_attack_targets(const advex_attack_config *c, const float *clean_logits,
                                  const int32_t *y, int64_t n, int64_t classes,
                                  int64_t batch_offset, int32_t *targets);

/* Run the attack on a batch: x (n,C,H,W) in [0,1], labels y (n) -> x_adv (n,C,H,W).
 * batch_offset: index of x[0] in the whole data set (seeds per-example randomness so
 * results do not depend on the batch size). */
advex_status advex_attack_batch(advex_model *m, const advex_attack_config *c, const float *x,
                                const int32_t *y, int64_t n, int64_t batch_offset,
                                float *x_adv);

/* Parse an eps value: "0.1", "8/255". Rejects negative, NaN, Inf, junk. */
advex_status advex_parse_eps(const char *s, float *eps);
/* Parse a comma list of eps values into out (cap max); sets *count. */
advex_status advex_parse_eps_list(const char *s, float *out, int max, int *count);

#ifdef __cplusplus
}
#endif
#endif
