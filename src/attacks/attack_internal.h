/* Helpers shared by the attack implementations (not public): losses to maximise on
 * logits, batched input gradients through the graph runner, projections, random starts,
 * compaction of the still-active examples, and each family's entry point. */
#ifndef ADVEX_ATTACK_INTERNAL_H
#define ADVEX_ATTACK_INTERNAL_H

#include <math.h>
#include "internal.h"


/* xa <- clip(proj_{x,eps}(xa + step * sign(g)), 0, 1) elementwise; sign(0) = 0.
 * step may be negative (targeted attacks descend). */
void advex_sign_step(float *xa, const float *x, const float *g, int64_t n, float step, float eps);
void advex_sign_step_from(float *out, const float *from, const float *x, const float *g, int64_t n, float step,
                          float eps);

/* The loss an attack maximises, per example.
 *   CE     untargeted CE(z, y)              targeted -CE(z, t)
 *   CW     untargeted max_{j!=y} z_j - z_y  targeted z_t - max_{j!=t} z_j
 *   DLR    untargeted DLR(z, y)             targeted DLR_T below with t
 *   DLR_T  -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4)/2 + 1e-12)  (Croce & Hein, >= 4 classes)
 * Success: t == NULL or untargeted_success -> argmax != y; else argmax == t. */
typedef enum atk_loss_kind { ATK_LOSS_CE, ATK_LOSS_CW, ATK_LOSS_DLR, ATK_LOSS_DLR_T } atk_loss_kind;
typedef struct atk_loss {
    atk_loss_kind kind;
    const int32_t *y;        /* (n) true labels */
    const int32_t *t;        /* (n) targets, or NULL */
    int untargeted_success;  /* APGD-T: targets steer the loss, success is misclassification */
} atk_loss;

/* Per-example loss (b) and d loss / d logits (b, k) of rows i0..i0+b-1 (an advex_dl_fn). */
void atk_loss_rows(void *L, int64_t i0, int64_t b, int64_t k, const float *z, float *loss, float *dl);
/* (Input gradients of a batch: advex_model_grad_loop in internal.h; argmax: advex_argmax.) */

/* 1 if logits row z (k) counts as a success for example i under L. */
int atk_success(const atk_loss *L, const float *z, int64_t k, int64_t i);

/* Project xa (d) onto the eps-ball around x in the given norm, then clip to [0,1]. */
void atk_project(float *xa, const float *x, int64_t d, float eps, advex_norm norm);
/* xa = clip(x + random point of the eps-ball): L-inf U[-eps,eps]^d; L2 a Gaussian direction
 * scaled to radius eps * U[0,1] (torchattacks' PGDL2). */
void atk_random_start(float *xa, const float *x, int64_t d, float eps, advex_norm norm, advex_rng *r);
double atk_norm2(const float *v, int64_t d);
double atk_norm1(const float *v, int64_t d);
/* The Euclidean projection onto {p : ||p - x||_1 <= r} ∩ [0,1]^d (l1_proj.c) of z
 * (atk_l1_project) or of x + v (atk_l1_project_delta), into out (which may be z or v).
 * scratch: 2d doubles. */
void atk_l1_project(float *out, const float *x, const float *z, int64_t d, double r, double *scratch);
void atk_l1_project_delta(float *out, const float *x, const float *v, int64_t d, double r, double *scratch);

/* Compaction of per-example arrays: keep the rows with keep[i] != 0 (i < n), in order.
 * arrs[j] points to row-major data with row_bytes[j] bytes per row. Returns rows kept. */
int64_t atk_compact(const unsigned char *keep, int64_t n, void *const *arrs, const size_t *row_bytes, int narr);

/* Targets for the configured mode into t (n); returns 1 if targeted, 0 if not, < 0 on error
 * (status in *st). z: scratch (n*k) for the clean logits. */
int atk_setup_targets(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y,
                      int64_t n, int64_t off, float *z, int32_t *t, advex_status *st);

/* Per-example stream for (seed, salt, example index). */
void atk_rng(advex_rng *r, uint64_t seed, uint64_t salt, int64_t example);

/* Attack families (n > 0, eps > 0 checked by the dispatcher). info may be NULL. ids (n) gives
 * each example's index in the data set when the batch is a gathered subset (standard's later
 * stages); NULL means off + i. It seeds per-example randomness (ATK_ID). */
#define ATK_ID(i) (ids ? ids[i] : off + (i))
typedef advex_status (*atk_fn)(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y,
                               int64_t n, int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);
/* The family function running an attack kind (NULL for none / unknown). */
atk_fn atk_family(advex_attack_kind kind);
advex_status atk_fgsm(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                      int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);
advex_status atk_pgd(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                     int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);
advex_status atk_apgd(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                      int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);
advex_status atk_square(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                        int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);
advex_status atk_standard(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                          int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);
advex_status atk_cw(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                    int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);
advex_status atk_deepfool(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y,
                          int64_t n, int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);
advex_status atk_uap_apply(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y,
                           int64_t n, int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);

/* Square's L2 and L1 geometry (square_lp.c) for images (C, H, W) at radius eps, with its
 * scratch: eta_buf (H*W + C*H*W doubles), delta (C*H*W floats), proj (L1: 2*C*H*W doubles).
 * init: xb = the start point for x. propose: xn = a proposal around the best point xb, with
 * windows of side s (odd, <= H, W). */
typedef struct atk_square_lp {
    advex_norm norm;
    int64_t C, H, W;
    float eps;
    double *eta_buf, *proj;
    float *delta;
} atk_square_lp;
void atk_square_lp_init(const atk_square_lp *g, float *xb, const float *x, advex_rng *r);
void atk_square_lp_propose(const atk_square_lp *g, float *xn, const float *x, const float *xb, int64_t s,
                           advex_rng *r);

/* FAB (fab.c, fab_proj.c). atk_fab_project: the displacement d (n) of smallest norm that
 * takes t onto {z : w.z = b} inside [0,1]^n (the far corner when the plane misses the box);
 * scratch: n keys. atk_norm_of: ||v|| in the norm. */
typedef struct atk_fab_key { double key, full, slope; int64_t i; } atk_fab_key;
void atk_fab_project(advex_norm norm, const float *t, const float *w, double b, int64_t n, float *d,
                     atk_fab_key *scratch);
double atk_norm_of(const float *v, int64_t d, advex_norm norm);
advex_status atk_fab(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                     int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);
/* The class of rank r (0: the largest) of logits z (k), the lower index first on ties:
 * APGD-T's and FAB-T's targets (r = 1, 2, ...). */
int32_t atk_ranked_class(const float *z, int64_t k, int r);

/* A scores oracle for the score-based attacks: fwd gives scores z (n, k) of images x (n, C, H,
 * W); rows[i] is image i's row in the batch the attack was given (a target charges that
 * example's query budget). The local model is one (atk_square), a target another
 * (src/target/attack_target.c). final (n, or NULL): the attack writes there the class the
 * oracle gave each returned example (from its own queries, no extra one). */
typedef struct atk_scores {
    advex_status (*fwd)(void *u, const float *x, int64_t n, const int64_t *rows, float *z);
    void *u;
    int64_t chw[3], k;
    int probs; /* 1: the scores are probabilities, not logits */
    int32_t *final;
} atk_scores;
/* The local model when it is o's oracle (atk_on_model_scores), else NULL. */
advex_model *atk_scores_model(const atk_scores *o);
/* Square on an oracle; targets (n) or NULL (untargeted). Untargeted: a proposal is kept when
 * the margin z_y - max_{j!=y} z_j drops; targeted: when the cross-entropy to the target drops
 * (square.py's loss for targeted runs), success when the target is the top class. */
advex_status atk_square_run(const atk_scores *o, const advex_attack_config *c, const float *x, const int32_t *y,
                            const int32_t *targets, int64_t n, int64_t off, const int64_t *ids, float *xadv,
                            advex_attack_info *info);

/* SimBA (simba.c), pixel basis, on a scores oracle; targets (n) or NULL (untargeted). */
advex_status atk_simba_run(const atk_scores *o, const advex_attack_config *c, const float *x, const int32_t *y,
                           const int32_t *targets, int64_t n, int64_t off, const int64_t *ids, float *xadv,
                           advex_attack_info *info);
advex_status atk_simba(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                       int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);
/* A score-based attack (atk_square_run, atk_simba_run) on the local model as its oracle, with
 * the targets the configuration picks (what atk_square and atk_simba are). */
typedef advex_status (*atk_scores_fn)(const atk_scores *o, const advex_attack_config *c, const float *x,
                                      const int32_t *y, const int32_t *targets, int64_t n, int64_t off,
                                      const int64_t *ids, float *xadv, advex_attack_info *info);
advex_status atk_on_model_scores(atk_scores_fn run, advex_model *m, const advex_attack_config *c, const float *x,
                                 const int32_t *y, int64_t n, int64_t off, const int64_t *ids, float *xadv,
                                 advex_attack_info *info);

/* A labels oracle for the decision-based attacks: pred (n) of images x (n, C, H, W); rows[i]
 * is image i's example in the attacked batch (a target charges that example's budget).
 * batch: the images one call should carry (the attack fills each call with the pending
 * queries of as many examples as fit, at least one example's; <= 0: 256). final as in
 * atk_scores. */
typedef struct atk_labels {
    advex_status (*labels)(void *u, const float *x, int64_t n, const int64_t *rows, int32_t *pred);
    void *u;
    int64_t chw[3];
    int64_t batch;
    int32_t *final;
} atk_labels;
/* HopSkipJump (hsj.c) on an oracle; info->queries per example. targets (n) or NULL
 * (untargeted). starts (n pointers, or NULL; an entry may be NULL): for a targeted run an
 * image the oracle is known to classify as example i's target, the starting point (without
 * one, uniform noise until an image is classified as the target). */
advex_status atk_hsj_run(const atk_labels *o, const advex_attack_config *c, const float *x, const int32_t *y,
                         const int32_t *targets, const float *const *starts, int64_t n, int64_t off,
                         const int64_t *ids, float *xadv, advex_attack_info *info);
advex_status atk_hsj(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                     int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info);

/* Allocation helper: one block for several arrays; NULL + error on failure. */
void *atk_alloc(size_t bytes);

#endif
