/* The parts of the CLI's scale-out layer (dist.h) that make no MPI call of their own: the
 * commands' settings for their rank, and `advex attack`'s one evaluation over the ranks (each
 * crafts its block of whole batches, advex_eval_examples; the gather gives every rank all
 * outcomes and rank 0 the adversarial examples; the result is summarised from all of them:
 * the same result and outputs as one process). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"

advex_status cli_dist_eval_run(advex_model *m, advex_model *surrogate, const advex_dataset *d,
                               const advex_attack_config *c, int64_t batch, advex_progress_fn progress, void *user,
                               const advex_eval_outputs *out, advex_eval_result *res) {
    if (cli_dist_size() <= 1) return advex_eval_run(m, surrogate, d, c, batch, progress, user, out, res);
    int64_t lo, hi;
    cli_dist_shard(d->n, batch, &lo, &hi);
    advex_eval_example *ex = malloc((size_t)(d->n ? d->n : 1) * sizeof *ex);
    advex_status st = ex ? ADVEX_OK : ADVEX_ERR_NOMEM;
    double t0 = cli_now();
    if (!st) st = advex_eval_examples(m, surrogate, d, c, batch, lo, hi, progress, user, ex, out ? out->adv : NULL);
    st = cli_dist_gather(NULL, 0, st, ex, out ? out->adv : NULL, d->n, d->c * d->h * d->w);
    if (!st) st = advex_eval_summarize(d, c, surrogate != NULL, ex, cli_now() - t0, res);
    for (int64_t i = 0; !st && out && i < d->n; i++) {
        if (out->clean_pred) out->clean_pred[i] = ex[i].clean_pred;
        if (out->clean_conf) out->clean_conf[i] = ex[i].clean_conf;
        if (out->adv_pred) out->adv_pred[i] = ex[i].adv_pred;
        if (out->adv_conf) out->adv_conf[i] = ex[i].adv_conf;
    }
    free(ex);
    return st;
}

void cli_dist_sweep(advex_sweep_config *sc, int64_t n) {
    if (cli_dist_size() <= 1) return;
    cli_dist_shard(n, sc->batch, &sc->shard_lo, &sc->shard_hi);
    sc->gather = cli_dist_gather;
    /* every rank resumes from the state file; rank 0, whose block is the file's prefix, writes it */
    sc->state_read_only = cli_dist_rank() != 0;
}

void cli_dist_train(advex_train_config *tc) {
    if (cli_dist_size() <= 1) return;
    tc->ranks = cli_dist_size();
    tc->rank = cli_dist_rank();
    tc->allreduce = cli_dist_allreduce;
}
