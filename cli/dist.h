/* Scale-out of the CLI over processes (docs/scaling.md): one implementation with Open MPI
 * (dist_mpi.c, when CMake finds MPI) and one for a single process (dist_local.c); dist.c makes
 * no MPI call of its own. The library
 * knows nothing of MPI: it runs a shard of the examples, or a part of every training batch,
 * and calls back (advex_sweep_config.gather, advex_train_config.allreduce) into these. */
#ifndef ADVEX_CLI_DIST_H
#define ADVEX_CLI_DIST_H

#include <stdint.h>
#include "advex/advex.h"

/* MPI_Init when the process was started by mpirun (or srun): its environment says so;
 * otherwise nothing, and the binary behaves as a plain one. Ranks other than 0 write nothing
 * to stdout and show no progress or warnings (cli_parse forces --quiet on them). */
int cli_dist_init(int *argc, char ***argv); /* 0, or an exit code (after one line on stderr) */
/* The exit code; MPI_Finalize when every rank agreed on the outcome (or `agreed`: every rank
 * returns rc without talking to the others), else MPI_Abort (a rank that failed alone must not
 * leave the others waiting). */
int cli_dist_finish(int rc, int agreed);
/* Every rank finished the distributed part of the command (the sweep, the attack, the
 * training) successfully: from here only rank 0 works (writes outputs, applies gates), and
 * cli_dist_finish gives every rank rank 0's exit code (exit 3 of a failed gate, or a write
 * error) instead of aborting the job. */
void cli_dist_synced(void);
int cli_dist_rank(void);
int cli_dist_size(void);
/* This rank's static block [lo, hi) of n examples: whole batches of `batch`, the batches one
 * process would run (the engine's results depend on a batch's size in the last bits, so only
 * the same batches give identical results); every rank gets ceil(n / batch) / size of them. */
void cli_dist_shard(int64_t n, int64_t batch, int64_t *lo, int64_t *hi);
/* advex_sweep_config.gather: the ranks' statuses exchanged (one agreed outcome), every rank's
 * outcomes to every rank, x' to rank 0. */
advex_status cli_dist_gather(void *user, int run, advex_status st, advex_eval_example *ex, float *adv, int64_t n,
                             int64_t dim);
/* advex_train_config.allreduce: MPI_Allreduce(MPI_SUM) in place. */
advex_status cli_dist_allreduce(void *user, float *buf, int64_t n);
/* Progress of the whole job: rank 0 gets the examples done by every rank (*done, of the
 * job's *total); other ranks report theirs to rank 0. */
void cli_dist_progress(int64_t *done, int64_t *total);
/* The failure message of a distributed run, once: rank 0 prints the first failing rank's
 * ("advex CMD: rank R: detail"), other ranks print nothing. Returns the exit code. */
int cli_dist_fail(const char *cmd, advex_status st);
/* One evaluation (advex_eval_run) over the ranks: each crafts its shard, rank 0 gets every
 * output and the result of the whole run; with one process it is advex_eval_run. */
advex_status cli_dist_eval_run(advex_model *m, advex_model *surrogate, const advex_dataset *d,
                               const advex_attack_config *c, int64_t batch, advex_progress_fn progress, void *user,
                               const advex_eval_outputs *out, advex_eval_result *res);

/* A sweep's shard and gather for this rank; data-parallel training settings for this rank
 * (--batch stays the global batch). Nothing with one process. */
void cli_dist_sweep(advex_sweep_config *sc, int64_t n);
void cli_dist_train(advex_train_config *tc);

#endif
