/* APGD's state shared by its L-inf/L2 form (apgd.c) and its L1 form (apgd_l1.c): the rows
 * of the examples still attacked in one run (one restart of one target class), compacted as
 * examples succeed, and the batch-order results the runs accumulate. Internal. */
#ifndef ADVEX_APGD_INTERNAL_H
#define ADVEX_APGD_INTERNAL_H

#include "attacks/attack_internal.h"

/* the per-row arrays, in the order apgd_compact moves them */
enum { A_XS, A_XA, A_XOLD, A_XBEST, A_G, A_GBEST, A_XN, A_HIST, A_STEP, A_LBEST, A_LLAST, A_RED, A_TOPK, A_SPOLD,
       A_Y, A_T, A_IDX, A_COUNT };

typedef struct apgd_state {
    int64_t d, k, iters;
    /* per row (a active rows): clean point, iterate, previous iterate, best-loss point, gradients
     * at the iterate and at the best point, next iterate (d each); loss history (iters); step,
     * best loss, best loss at the last checkpoint, reduced at the last checkpoint; L1: the
     * fraction of coordinates a step moves and the sparsity of the best point at the last
     * checkpoint (apgd_l1.c) */
    float *xs, *xa, *xold, *xbest, *g, *gbest, *xn, *hist, *step, *lbest, *llast, *red, *topk, *spold;
    int32_t *ys, *ts;
    int64_t *idx;          /* the row's example in the batch */
    float *z, *loss, *dl;  /* logits (a, k), losses (a), d loss / d logits scratch */
    unsigned char *keep;   /* (a) the row goes on after this iteration */
    float *sel;            /* L1: (d) scratch of the sparse step's selection */
    double *proj;          /* L1: (2d) scratch of atk_l1_project */
    /* batch order (n): the returned point, its loss (FLT_MAX once it succeeds), success, and in
     * transfer mode whether the kept point succeeds on the crafting model */
    float *xadv, *best;
    unsigned char *won, *tw;
} apgd_state;

/* After a gradient pass over rows 0..a-1 (S->z, S->loss at S->xa): a row that succeeds is
 * frozen (its point returned, keep = 0); otherwise its point is returned when its loss is the
 * highest so far. Transfer mode: no row stops, the highest-loss point is kept. */
void apgd_record(apgd_state *S, const atk_loss *L, int64_t a, int transfer);
/* Keeps the rows with S->keep set; returns how many. */
int64_t apgd_compact(apgd_state *S, int64_t a);

/* atk_apgd with L1 random starts drawn from noise (n, d) instead of the example's stream: the
 * same draws for every restart and target class (tests that follow the published code's
 * trajectories from a start both can compute). NULL: atk_apgd. */
advex_status atk_apgd_noise(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y,
                            int64_t n, int64_t off, const int64_t *ids, const float *noise, float *xadv,
                            advex_attack_info *info);

/* APGD's L1 form (apgd_l1.c) from the start points in S->xa (a rows). */
advex_status apgd_l1_run(advex_model *m, const advex_attack_config *c, apgd_state *S, int64_t a, const atk_loss *L);

#endif
