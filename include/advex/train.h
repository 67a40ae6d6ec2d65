/* Training: SGD (momentum, weight decay) or Adam on softmax cross-entropy, seeded
 * shuffling, optional FGSM-RS adversarial examples. */
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
} advex_train_config;

void advex_train_config_default(advex_train_config *c);

typedef struct advex_train_progress {
    int epoch, epochs;
    int64_t batch, batches;
    double loss;          /* running mean loss this epoch */
    double accuracy;      /* running training accuracy this epoch */
    double seconds;       /* elapsed since the start */
} advex_train_progress;

/* Called after each batch; return non-zero to stop (ADVEX_ERR_INTERRUPTED). */
typedef int (*advex_train_progress_fn)(void *user, const advex_train_progress *p);

/* Train m on d. */
advex_status advex_train(advex_model *m, const advex_dataset *d, const advex_train_config *c,
                         advex_train_progress_fn progress, void *user);

#ifdef __cplusplus
}
#endif
#endif
