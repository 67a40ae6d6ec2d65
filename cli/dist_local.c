/* The CLI's scale-out interface (dist.h) for a build without MPI: one process, every
 * example and every batch its own. */
#include <stdlib.h>

#include "cli.h"
#include "dist.h"

/* Started by mpirun with several processes, this build would run the whole job in each of
 * them (and every one would write the outputs): refused. */
int cli_dist_init(int *argc, char ***argv) {
    (void)argc; (void)argv;
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (!size) size = getenv("PMI_SIZE");
    if (size && atoi(size) > 1) {
        fprintf(stderr, "advex: started by mpirun with %s processes, but this advex was built without MPI "
                "(install libopenmpi-dev and rebuild, or run one process)\n", size);
        return CLI_EXIT_USAGE;
    }
    return 0;
}
int cli_dist_finish(int rc, int agreed) { (void)agreed; return rc; }
void cli_dist_synced(void) {}
int cli_dist_rank(void) { return 0; }
int cli_dist_size(void) { return 1; }
void cli_dist_shard(int64_t n, int64_t batch, int64_t *lo, int64_t *hi) { (void)batch; *lo = 0; *hi = n; }
advex_status cli_dist_gather(void *user, int run, advex_status st, advex_eval_example *ex, float *adv, int64_t n,
                             int64_t dim) {
    (void)user; (void)run; (void)ex; (void)adv; (void)n; (void)dim;
    return st;
}
advex_status cli_dist_allreduce(void *user, float *buf, int64_t n) { (void)user; (void)buf; (void)n; return ADVEX_OK; }
void cli_dist_progress(int64_t *done, int64_t *total) { (void)done; (void)total; }
int cli_dist_fail(const char *cmd, advex_status st) { return cli_fail_run(cmd, st); }
