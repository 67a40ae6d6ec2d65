/* Attacks on a batch: craft x' from x within an eps-ball (L-inf, L2 or L1) in [0,1], or a
 * minimal perturbation (C&W, DeepFool). All attacks run the model in eval mode and are
 * reproducible for a seed; per-example randomness is seeded by (seed, example index), so
 * results do not depend on the batch size. See docs/attacks.md for algorithms and defaults. */
#ifndef ADVEX_ATTACK_H
#define ADVEX_ATTACK_H

#include <stdint.h>
#include "status.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif
ADVEX_API_BEGIN

typedef enum advex_attack_kind {
    ADVEX_ATTACK_NONE = 0,  /* identity: x' = x (clean accuracy) */
    ADVEX_ATTACK_FGSM,      /* x' = clip(x + eps*sign(grad), 0, 1); L2 (FGM): eps*g/||g||_2 */
    ADVEX_ATTACK_FGSM_RS,   /* Wong et al.: random start in the ball, one step alpha, project */
    ADVEX_ATTACK_BIM,       /* Kurakin et al. (I-FGSM): PGD from x, no random start */
    ADVEX_ATTACK_PGD,       /* Madry et al.: random start(s), K steps, L-inf or L2 */
    ADVEX_ATTACK_MIFGSM,    /* Dong et al.: momentum on L1-normalised gradients */
    ADVEX_ATTACK_APGD_CE,   /* Croce & Hein 2020, cross-entropy loss; L1: Croce & Hein 2021 */
    ADVEX_ATTACK_APGD_DLR,  /* Croce & Hein 2020, DLR loss */
    ADVEX_ATTACK_APGD_T,    /* targeted DLR over the top-k classes (AutoAttack's APGD-T) */
    ADVEX_ATTACK_SQUARE,    /* Andriushchenko et al. 2020, L-inf, L2 or L1, score-based (forward only) */
    ADVEX_ATTACK_STANDARD,  /* AutoAttack protocol (c->version): APGD-CE, APGD-T, FAB-T, Square */
    ADVEX_ATTACK_CW,        /* Carlini & Wagner L2 (minimal perturbation); L2 only */
    ADVEX_ATTACK_DEEPFOOL,  /* Moosavi-Dezfooli et al. (minimal perturbation, L2 or L-inf) */
    ADVEX_ATTACK_UAP,       /* universal perturbation: x' = clip(x + delta) (c->uap_delta) */
    ADVEX_ATTACK_FAB,       /* Croce & Hein 2020, fast adaptive boundary (minimal perturbation) */
    ADVEX_ATTACK_FAB_T,     /* FAB targeted over the top-k classes (AutoAttack's FAB-T) */
    ADVEX_ATTACK_HSJ,       /* HopSkipJump (Chen et al. 2020): decision-based (labels only), L2 or L-inf,
                               untargeted or targeted; c->queries per example (default 5000) */
    ADVEX_ATTACK_SIMBA,     /* SimBA (Guo et al. 2019), pixel basis, score-based, L-inf or L2, untargeted
                               or targeted; c->queries per example (default 5000); L2 step c->alpha
                               (eps/4) */
    ADVEX_ATTACK_COUNT_
} advex_attack_kind;

typedef enum advex_target_mode {
    ADVEX_TARGET_NONE = 0,      /* untargeted */
    ADVEX_TARGET_LABEL,         /* a fixed class (target_label) */
    ADVEX_TARGET_NEXT,          /* (y + 1) mod C */
    ADVEX_TARGET_LEAST_LIKELY,  /* argmin of the clean logits */
    ADVEX_TARGET_RANDOM,        /* uniform over classes != y, seeded */
} advex_target_mode;

typedef enum advex_norm {
    ADVEX_NORM_LINF = 0,
    ADVEX_NORM_L2 = 1,
    ADVEX_NORM_L1 = 2,  /* APGD-CE, APGD-DLR, APGD-T, FAB, FAB-T, Square and standard only */
} advex_norm;

/* Which AutoAttack version `standard` runs (autoattack.py set_version), c->version. */
typedef enum advex_aa_version {
    ADVEX_AA_STANDARD = 0, /* APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5000); L1:
                              APGD-CE (5 restarts) and APGD-T (5 targets) with the eps schedule
                              (apgd_largereps), FAB-T (9 targets), Square (5000) */
    ADVEX_AA_PLUS = 1,     /* APGD-CE, APGD-DLR (5 restarts each), FAB (5 restarts), Square
                              (5000), APGD-T (9 targets), FAB-T (9 targets) */
    ADVEX_AA_COUNT_
} advex_aa_version;

/* Every field has a documented default (advex_attack_config_default); a value <= 0 for
 * steps, alpha, queries etc. means "the attack's own default" (listed per field). */
typedef struct advex_attack_config {
    advex_attack_kind kind;
    float eps;            /* radius in input units, >= 0 (L-inf, L2 or L1 per `norm`). For C&W and
                             DeepFool a norm budget: results beyond it are returned as x. */
    float alpha;          /* step size; <= 0: FGSM-RS 1.25*eps, BIM and MI-FGSM eps/steps,
                             PGD 2.5*eps/steps (Madry et al.); APGD adapts its own (2*eps) */
    advex_target_mode target;
    int32_t target_label; /* for ADVEX_TARGET_LABEL */
    uint64_t seed;
    /* iterative attacks */
    int32_t steps;        /* <= 0: BIM/PGD/MI-FGSM 10, APGD 100, C&W 1000 per binary step
                             (an example stops early when its objective stalls), DeepFool 50 */
    int32_t restarts;     /* PGD/APGD: runs from random starts; 0 = one run from x itself.
                             FAB: runs, the first from x, the others from random starts.
                             Default 1 */
    advex_norm norm;      /* the threat model, honoured by every attack that implements it and
                             refused (ADVEX_ERR_ARG) by the others: C&W is L2 only; L1 is
                             APGD-CE, APGD-DLR, APGD-T, FAB, FAB-T, Square and standard's.
                             Default L-inf (advex_attack_default_norm gives each attack's
                             natural one) */
    float momentum;       /* MI-FGSM decay mu; < 0: default 1.0 */
    /* Square */
    int32_t queries;      /* query budget per example; <= 0: 5000 */
    float p_init;         /* initial fraction of pixels changed; <= 0: 0.8 */
    /* APGD-T */
    int32_t topk;         /* APGD-T, FAB-T: target classes; <= 0: 9 (capped at classes - 1) */
    /* C&W */
    float kappa;          /* confidence margin, >= 0. Default 0 */
    int32_t binary_steps; /* binary search steps over c; <= 0: 9 */
    float c_init;         /* initial trade-off constant; <= 0: 1e-3 (Carlini & Wagner) */
    float lr;             /* Adam learning rate; <= 0: 0.01 */
    /* DeepFool */
    float overshoot;      /* < 0: 0.02 */
    /* UAP: the universal perturbation (C,H,W) applied by ADVEX_ATTACK_UAP; not owned */
    const float *uap_delta;
    /* Transfer mode (default 0). Non-zero: craft for another model than the one attacked
     * (advex_eval_transfer and advex_eval_run with a surrogate set it). Every iterative attack
     * then runs every step on every example: no example stops at its first success on the
     * crafting model, none is skipped because that model already misclassifies it.
     *   BIM, PGD, MI-FGSM  the last iterate (the transfer literature's, torchattacks');
     *                      with restarts, the last iterate of the run with the highest loss
     *   APGD-CE/DLR/T      the highest-loss iterate over all steps, restarts and target
     *                      classes (auto-attack's perturb(best_loss=True))
     *   Square             the whole query budget, keeping the lowest-margin point
     *   FGSM, FGSM-RS, UAP, C&W  unchanged (no early stop to remove; C&W's kappa is its
     *                      transfer knob)
     *   standard, DeepFool refused (ADVEX_ERR_ARG): both stop per example at the crafting
     *                      model's decision boundary by definition */
    int32_t no_early_stop;
    /* Expectation over transformation (AutoAttack's eot_iter), for randomized models: every
     * input gradient a gradient attack takes is the mean over eot forward/backward passes
     * (each drawing the model's randomness anew); the logits and losses it sees are those of
     * the last pass. <= 1: one pass. Black-box attacks (Square) ignore it. */
    int32_t eot;
    /* standard: the AutoAttack version (advex_aa_version). Default 0, standard; any other
     * value with another attack is refused (ADVEX_ERR_ARG) */
    int32_t version;
    /* Square: 0 (default) p's schedule rescaled to the budget (square.py's default); 1 its
     * iteration numbers as they are (resc_schedule=False, as AutoAttack's standard versions
     * build their Square, which standard does) */
    int32_t square_unscaled;
    /* APGD at L1: 0 (default) one run at eps per restart, as autopgd_base.py's default; 1 each
     * restart as three legs at 3 eps, 2 eps and eps (30%, 30% and 40% of the steps), each from
     * the previous leg's best point (use_largereps=True, as AutoAttack's standard L1 version
     * builds its APGD-CE and APGD-T, which standard does). Ignored at L-inf and L2 */
    int32_t apgd_largereps;
} advex_attack_config;

/* Defaults: FGSM, eps 0, untargeted, seed 0, L-inf, restarts 1, momentum 1.0, kappa 0,
 * every other tuning field 0 (= the attack's default above). */
void advex_attack_config_default(advex_attack_config *c);

/* Parse "none", "fgsm", "fgsm-rs", "bim", "pgd", "mifgsm", "apgd-ce", "apgd-dlr", "apgd-t",
 * "square", "standard", "cw", "deepfool", "uap", "fab", "fab-t". ADVEX_ERR_ARG on an unknown name. */
advex_status advex_attack_parse(const char *name, advex_attack_kind *kind);
const char *advex_attack_name(advex_attack_kind kind);
/* Comma-separated list of all attack names. */
const char *advex_attack_names(void);
/* Parse "linf" / "l2" / "l1" (also "inf", "Linf", "L2", "L1"). */
advex_status advex_norm_parse(const char *s, advex_norm *norm);
/* Parse an AutoAttack version name ("standard", "plus"); ADVEX_ERR_ARG naming the choices. */
advex_status advex_aa_version_parse(const char *s, int32_t *version);
const char *advex_aa_version_name(int32_t version);
/* 1 for the minimal-perturbation attacks (C&W, DeepFool, FAB, FAB-T), whose results carry a norm. */
int advex_attack_is_min_norm(advex_attack_kind kind);
/* The norm an attack's perturbation is bounded and measured in: c->norm (every attack
 * implements the norm it is given or refuses it; see advex_attack_check). */
advex_norm advex_attack_norm(const advex_attack_config *c);
/* The norm to use when none is asked for: L2 for C&W, L-inf for the others. */
advex_norm advex_attack_default_norm(advex_attack_kind kind);
/* Check a configuration for a model without running it: ADVEX_ERR_ARG with one line naming
 * the attack for a norm it does not implement (C&W at L-inf), transfer mode on standard or
 * DeepFool, a target given to an attack that picks its own, too few classes for DLR, a bad
 * eps, kappa, alpha or momentum. advex_attack_batch runs the same check first. */
advex_status advex_attack_check(const advex_model *m, const advex_attack_config *c);

/* Composite attacks: the attacks `standard` runs, in order, for its version and norm (see
 * advex_aa_version), into stages (at most max). Returns the count; 0 for other attacks. */
#define ADVEX_ATTACK_MAX_STAGES 6
int advex_attack_stages(const advex_attack_config *c, advex_attack_kind *stages, int max);
/* Parse "next", "least-likely", "random" or a class number. */
advex_status advex_target_parse(const char *s, advex_target_mode *mode, int32_t *label);

/* Targets for a batch under a target mode (n); clean logits needed for least-likely
 * (may be NULL otherwise). batch_offset makes the random mode independent of batching. */
advex_status advex_attack_targets(const advex_attack_config *c, const float *clean_logits,
                                  const int32_t *y, int64_t n, int64_t classes,
                                  int64_t batch_offset, int32_t *targets);

/* Run the attack on a batch: x (n,C,H,W) in [0,1], labels y (n) -> x_adv (n,C,H,W).
 * batch_offset: index of x[0] in the whole data set (seeds per-example randomness so
 * results do not depend on the batch size). A randomized model's draws restart from (its
 * advex_model_seed, batch_offset): the same call gives the same x_adv. */
advex_status advex_attack_batch(advex_model *m, const advex_attack_config *c, const float *x,
                                const int32_t *y, int64_t n, int64_t batch_offset,
                                float *x_adv);

/* Per-example side results of an attack; every pointer may be NULL. */
typedef struct advex_attack_info {
    int64_t *queries;  /* (n) forward passes spent on the example (Square, standard's Square
                          stage, HopSkipJump; 0 for the others) */
    int32_t *stage;    /* (n) standard: the 1-based stage that broke it (advex_attack_stages:
                          standard 1 APGD-CE, 2 APGD-T, 3 FAB-T, 4 Square); 0 not broken.
                          Other attacks: 1 if the attack reports success, else 0 */
    float *stage_seconds; /* (n, ADVEX_ATTACK_MAX_STAGES) standard: seconds each stage spent on
                          the example (a stage's time shared among the examples it ran on;
                          summed over examples: the stage's time); 0 for other attacks */
} advex_attack_info;

/* advex_attack_batch with per-example side results. */
advex_status advex_attack_batch_info(advex_model *m, const advex_attack_config *c,
                                     const float *x, const int32_t *y, int64_t n,
                                     int64_t batch_offset, float *x_adv,
                                     advex_attack_info *info);

/* Universal adversarial perturbation (Shafahi et al. 2020's stochastic-gradient variant of
 * Moosavi-Dezfooli et al. 2017): one delta (C,H,W) with ||delta|| <= eps (c->norm) that
 * raises the summed CE loss of the n examples x, by `epochs` passes of sign (L-inf) or
 * normalised (L2) gradient steps of size alpha (<= 0: eps/10) over mini-batches of `batch`.
 * delta is written to delta (C*H*W floats). */
advex_status advex_uap_compute(advex_model *m, const advex_attack_config *c, const float *x,
                               const int32_t *y, int64_t n, int32_t epochs, int64_t batch,
                               float *delta);

/* Parse an eps value: "0.1", "8/255". Rejects negative, NaN, Inf, junk. */
advex_status advex_parse_eps(const char *s, float *eps);
/* Parse a comma list of eps values into out (cap max); sets *count. */
advex_status advex_parse_eps_list(const char *s, float *out, int max, int *count);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
