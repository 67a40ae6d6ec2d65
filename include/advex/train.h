/* Training: SGD (momentum, weight decay) or Adam on softmax cross-entropy, seeded
 * shuffling; adversarial training (FGSM, FGSM-RS, PGD-AT, TRADES) with eps ramp-up,
 * per-epoch held-out clean/FGSM/PGD accuracy, a catastrophic-overfitting guard and
 * atomic per-epoch checkpoints that --resume continues bit-exactly. See docs/training.md. */
#ifndef ADVEX_TRAIN_H
#define ADVEX_TRAIN_H

#include <stdint.h>
#include "status.h"
#include "model.h"
#include "data.h"
#include "eval.h"

#ifdef __cplusplus
extern "C" {
#endif
ADVEX_API_BEGIN

typedef enum advex_optim_kind { ADVEX_OPT_SGD = 0, ADVEX_OPT_ADAM = 1 } advex_optim_kind;

typedef enum advex_lr_schedule {
    ADVEX_LR_CONSTANT = 0,
    ADVEX_LR_COSINE,      /* lr * (1 + cos(pi t)) / 2 over the whole run */
    ADVEX_LR_ONECYCLE,    /* linear 0 -> lr over the first 2/5, then linear -> 0 (Wong et al.) */
    ADVEX_LR_STEP,        /* lr, x0.1 at 50% and 75% of the run */
} advex_lr_schedule;

/* Parse constant | cosine | onecycle | step. */
advex_status advex_lr_schedule_parse(const char *s, advex_lr_schedule *out);
/* Learning rate at progress t in [0,1] of the run. */
float advex_lr_at(advex_lr_schedule s, float lr, double t);

/* Adversarial training modes. The adversarial examples are crafted in eval mode
 * (BatchNorm running statistics, dropout off) with the current weights; the update then
 * runs in train mode. */
typedef enum advex_adv_mode {
    ADVEX_ADV_NONE = 0,   /* clean training */
    ADVEX_ADV_FGSM,       /* Goodfellow et al.: w*J(x) + (1-w)*J(x + eps*sign(grad)), no random start */
    ADVEX_ADV_FGSM_RS,    /* Wong et al. 2020: uniform start in the eps-ball, one step alpha (1.25 eps) */
    ADVEX_ADV_PGD,        /* Madry et al.: random start, pgd_steps sign steps of alpha (2.5 eps/steps) */
    ADVEX_ADV_TRADES,     /* Zhang et al.: CE(x) + beta*KL(p(x) || p(x')), x' maximises the KL by PGD */
} advex_adv_mode;

/* Parse none | fgsm | fgsm-rs | pgd | trades. */
advex_status advex_adv_mode_parse(const char *s, advex_adv_mode *out);
const char *advex_adv_mode_name(advex_adv_mode m);

/* Data-parallel training's all-reduce (advex_train_config.allreduce): sum buf (n floats) over
 * the ranks in place. */
typedef advex_status (*advex_allreduce_fn)(void *user, float *buf, int64_t n);

typedef struct advex_train_config {
    int epochs;
    int64_t batch;
    advex_optim_kind opt;
    float lr;             /* peak learning rate */
    advex_lr_schedule schedule;
    float momentum;       /* SGD */
    float weight_decay;
    float beta1, beta2, adam_eps;
    uint64_t seed;
    /* ---- adversarial training (all off by default: plain clean training) ---- */
    advex_adv_mode adv;
    float eps;            /* L-inf radius in input units (the final one, after ramp-up) */
    float alpha;          /* step; <= 0: FGSM eps, FGSM-RS 1.25 eps, PGD/TRADES 2.5 eps/steps */
    float adv_weight;     /* w of w*J(x) + (1-w)*J(x'); < 0: mode default (FGSM 0.5, others 0) */
    int pgd_steps;        /* PGD/TRADES inner steps; <= 0: PGD 7, TRADES 5 */
    int pgd_from_epoch;   /* > 0: epochs before this (1-based) use FGSM-RS, later ones `adv`
                             (a cheap start, a few PGD steps late); 0: `adv` throughout */
    float beta;           /* TRADES weight of the KL term; < 0: 6 */
    int eps_ramp;         /* epochs over which eps rises linearly from 0 (per batch); 0: none */
    /* ---- per-epoch held-out evaluation and the catastrophic-overfitting guard ---- */
    int64_t holdout;      /* the last `holdout` training examples are held out (not trained on)
                             and evaluated after every epoch; 0: none */
    int holdout_steps;    /* PGD steps of that evaluation; <= 0: 10 */
    float overfit_drop;   /* guard: held-out PGD accuracy more than this below its best while
                             FGSM accuracy rose -> restore the best weights, stop. <= 0: 0.2;
                             > 1 disables */
    /* ---- checkpoints ---- */
    const char *checkpoint; /* written atomically after every epoch; NULL: none */
    int resume;           /* 1: continue from `checkpoint` if it exists */
    /* ---- data-parallel training (a process of a distributed run; docs/scaling.md) ---- */
    int ranks;            /* processes training together; <= 1: this one alone */
    int rank;             /* this process, 0..ranks-1: it takes rows [b*rank/ranks, b*(rank+1)/ranks)
                             of every global batch of b; only rank 0 writes the checkpoint */
    advex_allreduce_fn allreduce; /* ranks > 1: sum buf over the ranks in place, the same
                             result on every rank (MPI_Allreduce); every rank calls it in the
                             same order */
    void *allreduce_user;
} advex_train_config;

void advex_train_config_default(advex_train_config *c);

/* Named recipes: set the fields of c for `name` ("fmnist-robust", "fmnist-fast").
 * Returns ADVEX_ERR_ARG for an unknown name. arch_out (may be NULL) receives the
 * architecture the recipe was tuned for; threads_out (may be NULL) the thread count. */
advex_status advex_train_preset(const char *name, advex_train_config *c, const char **arch_out,
                                int *threads_out);
/* Comma-separated list of preset names. */
const char *advex_train_preset_names(void);

/* Check the settings (ranges, combinations) without training. */
advex_status advex_train_config_check(const advex_train_config *c);

/* The catastrophic-overfitting test on per-epoch held-out accuracies pgd[0..n-1] and
 * fgsm[0..n-1] (fractions): 1 if the last PGD accuracy is more than `drop` below the best
 * earlier one while the last FGSM accuracy is at least the FGSM accuracy of that best
 * epoch (FGSM still "works": gradient masking, not plain divergence). */
int advex_train_overfit_check(const double *pgd, const double *fgsm, int n, double drop);

typedef struct advex_train_progress {
    int epoch, epochs;
    int64_t batch, batches;
    double loss;          /* running mean loss this epoch */
    double accuracy;      /* running training accuracy this epoch */
    double seconds;       /* elapsed since the start */
    /* set on the call made at the end of an epoch (epoch_end = 1), after the checkpoint */
    int epoch_end;
    float eps;            /* eps used at the end of this epoch (ramp-up) */
    int64_t holdout;      /* held-out examples evaluated (0: none) */
    double val_clean, val_fgsm, val_pgd; /* held-out accuracies */
    int overfit;          /* 1: catastrophic overfitting detected; best weights restored */
    int best_epoch;       /* epoch of the best held-out PGD accuracy (restored when overfit) */
    int resumed_from;     /* epochs already done when this run resumed (0: fresh) */
} advex_train_progress;

/* Called after each batch; return non-zero to stop (ADVEX_ERR_INTERRUPTED). */
typedef int (*advex_train_progress_fn)(void *user, const advex_train_progress *p);

/* A training run one optimiser step at a time, for callers that feed their own batches (a
 * benchmark, a data-parallel loop): the optimiser state and the buffers for batches of up to
 * c->batch examples; c's checkpoint, resume, holdout and epoch fields are not used. */
typedef struct advex_trainer advex_trainer;
advex_status advex_trainer_new(advex_model *m, const advex_train_config *c, advex_trainer **out);
void advex_trainer_free(advex_trainer *t);
/* One step on x (n, C, H, W), y (n), n <= c->batch (with c->ranks > 1, the global batch: this
 * process takes its rows, gradients and statistics are summed with c->allreduce): for an adversarial `mode` (c->adv, or
 * FGSM-RS during a --pgd-from warm-up) craft x' at radius eps with the current weights in
 * eval mode, then forward and backward in train mode with c's loss (clean CE, w * CE(x) +
 * (1 - w) * CE(x'), or TRADES) and apply the optimiser at learning rate lr. *loss (may be
 * NULL): the batch-mean loss; *correct (may be NULL): rows the model got right (the x' rows
 * when adversarial). A non-finite loss is ADVEX_ERR_NUMERIC and changes nothing. */
advex_status advex_trainer_step(advex_trainer *t, const float *x, const int32_t *y, int64_t n, advex_adv_mode mode,
                                float eps, float lr, double *loss, int64_t *correct);

/* Train m on d. With c->checkpoint set, a checkpoint is written after every epoch; with
 * c->resume too, an existing checkpoint is loaded first (its settings must match) and
 * training continues after its last complete epoch, reproducing an uninterrupted run.
 * A corrupt checkpoint is ADVEX_ERR_FORMAT. */
advex_status advex_train(advex_model *m, const advex_dataset *d, const advex_train_config *c,
                         advex_train_progress_fn progress, void *user);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
