/* Internal pieces of the trainer (src/train/): the state a checkpoint carries and its
 * reader/writer (checkpoint.c). Not installed; not public API. */
#ifndef ADVEX_TRAIN_INTERNAL_H
#define ADVEX_TRAIN_INTERNAL_H

#include <stdint.h>
#include "internal.h"

#define ADVEX_CKPT_VERSION 1u

/* Everything a run needs to continue after its last complete epoch. The arrays are owned
 * by the trainer (sized from the counts); load checks the counts and fills them. */
typedef struct train_state {
    /* identity of the run: a checkpoint is only resumed by the same settings */
    int64_t n_params, n_consts, n_train, batch;
    int32_t epochs, adv;
    uint64_t seed;
    /* position */
    int32_t epochs_done;
    int64_t step;          /* optimiser steps done (schedule position, Adam bias correction) */
    advex_rng rng;         /* shuffling */
    advex_rng model_rng;   /* dropout */
    /* best held-out PGD accuracy so far (the overfitting guard) */
    int32_t best_epoch;    /* 0: none yet */
    int32_t overfit;       /* the run stopped on catastrophic overfitting */
    double *hist;          /* (2 * epochs): held-out PGD accuracy, then FGSM accuracy, per epoch */
    float *params, *consts, *m1, *m2, *best_params, *best_consts;
    int32_t *perm;         /* (n_train) the shuffled order (shuffled in place every epoch) */
} train_state;

/* A training run step by step (trainer.c; opaque in the public API). */
struct advex_trainer {
    advex_model *m;
    advex_train_config c;  /* a copy (checkpoint: NULL) */
    int both;              /* a step's forward has [x; x'] rows (the clean term is in the loss) */
    int64_t step;          /* optimiser steps done (Adam bias correction, random starts) */
    float *buf;            /* one allocation, laid out below */
    float *m1, *m2;        /* (n_params) optimiser state */
    float *xb;             /* (2 batch, C,H,W): a step's clean rows, then its x' rows */
    float *dlogits, *pc, *loss, *dl_in, *g_in;
    int32_t *yb;           /* (2 batch) labels */
    float *dp;             /* data-parallel (ranks > 1): (n_params + 2) the all-reduce's buffer,
                              gradients then the step's loss and rows right; else NULL */
};

/* w of w*J(x) + (1-w)*J(x') with the mode's default resolved. */
float advex_train_eff_weight(const advex_train_config *c);

/* Write s to path atomically (temp + fsync + rename). */
advex_status advex_ckpt_save(const char *path, const train_state *s);
/* Read path into s. The identity fields of s must be set: a mismatch is ADVEX_ERR_ARG
 * naming the field; a bad magic, version, size or checksum is ADVEX_ERR_FORMAT. */
advex_status advex_ckpt_load(const char *path, train_state *s);

#endif
