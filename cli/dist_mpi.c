/* The CLI's scale-out interface (dist.h) on Open MPI: static blocks of whole batches per rank,
 * the ranks' statuses and outcomes exchanged after every run (MPI_Allgather, MPI_Allgatherv),
 * the adversarial examples gathered to rank 0 (MPI_Gatherv, one row per element), gradients
 * summed with MPI_Allreduce, and the job's progress reported to rank 0 with small
 * point-to-point messages. All MPI calls of advex live in this file. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "cli.h"
#include "dist.h"

#define TAG_PROGRESS 11
#define MSG_LEN 400

static struct {
    int on, rank, size;
    int agreed;          /* the last failure was agreed by every rank (a gather) */
    int synced;          /* cli_dist_synced: only rank 0 works from here */
    int fail_rank;       /* the first failing rank of an agreed failure */
    char fail_msg[MSG_LEN];
    /* progress: rank 0 adds up what the others report; they count what they sent */
    int64_t total;       /* examples of the job (set by cli_dist_shard) */
    int64_t batch;       /* the batch size shards are made of */
    int64_t *peer_done;  /* rank 0: latest done per rank */
    int *received;       /* rank 0: progress messages received per rank, this run */
    int sent;            /* other ranks: progress messages sent this run */
    int64_t (*bufs)[1];  /* other ranks: send buffers and requests */
    MPI_Request *reqs;
    int n_reqs, cap_reqs;
} D = {0, 0, 1, 0, 0, -1, "", 0, 1, NULL, NULL, 0, NULL, NULL, 0, 0};

/* Started by mpirun (Open MPI), srun or another PMI launcher. */
static int launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("PMI_SIZE");
}

int cli_dist_init(int *argc, char ***argv) {
    if (!launched()) return 0;
    /* A rank waiting in a collective yields its core instead of spinning (unless the user set
     * it): on a shared or oversubscribed machine spinning ranks slowed 2-rank training by 40%
     * (docs/scaling.md); on dedicated cores the cost is microseconds per wait. */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "advex: MPI_Init failed\n");
        return CLI_EXIT_FAIL;
    }
    D.on = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &D.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &D.size);
    if (D.rank != 0 && !freopen("/dev/null", "w", stdout)) fprintf(stderr, "advex: rank %d: /dev/null\n", D.rank);
    D.peer_done = calloc((size_t)D.size, sizeof *D.peer_done);
    D.received = calloc((size_t)D.size, sizeof *D.received);
    return 0;
}

int cli_dist_finish(int rc, int agreed) {
    if (!D.on) return rc;
    if (D.synced && D.size > 1) { /* rank 0's outcome is the job's */
        int code = rc;
        MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
        rc = code;
        agreed = 1;
    }
    if (rc != 0 && !D.agreed && !agreed && D.size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    if (D.n_reqs) MPI_Waitall(D.n_reqs, D.reqs, MPI_STATUSES_IGNORE);
    MPI_Finalize();
    free(D.peer_done); free(D.received); free(D.bufs); free(D.reqs);
    return rc;
}

void cli_dist_synced(void) { D.synced = 1; }
int cli_dist_rank(void) { return D.rank; }
int cli_dist_size(void) { return D.size; }

/* Rank r's block of n examples: batches [nb r / size, nb (r+1) / size) of the nb batches. */
static void block(int64_t n, int r, int64_t *lo, int64_t *hi) {
    int64_t nb = (n + D.batch - 1) / D.batch;
    *lo = nb * r / D.size * D.batch;
    *hi = nb * (r + 1) / D.size * D.batch;
    if (*lo > n) *lo = n;
    if (*hi > n) *hi = n;
}

void cli_dist_shard(int64_t n, int64_t batch, int64_t *lo, int64_t *hi) {
    D.total = n;
    D.batch = batch > 0 ? batch : 256;
    block(n, D.rank, lo, hi);
    int64_t nb = (n + D.batch - 1) / D.batch;
    if (D.rank == 0 && nb < D.size)
        fprintf(stderr, "advex: warning: %d ranks but %lld batches of %lld examples: %lld ranks have none (a smaller "
                "--batch gives every rank some)\n", D.size, (long long)nb, (long long)D.batch, (long long)(D.size - nb));
}

/* Rank 0: take in the progress messages waiting (all of them from `src` up to `upto`). */
static void progress_drain(int src, int upto) {
    for (;;) {
        int flag = 0;
        MPI_Status ms;
        if (src >= 0 && D.received[src] < upto) {
            MPI_Probe(src, TAG_PROGRESS, MPI_COMM_WORLD, &ms);
            flag = 1;
        } else if (src < 0) {
            MPI_Iprobe(MPI_ANY_SOURCE, TAG_PROGRESS, MPI_COMM_WORLD, &flag, &ms);
        }
        if (!flag) return;
        int64_t v;
        MPI_Recv(&v, 1, MPI_INT64_T, ms.MPI_SOURCE, TAG_PROGRESS, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        D.received[ms.MPI_SOURCE]++;
        D.peer_done[ms.MPI_SOURCE] = v;
    }
}

void cli_dist_progress(int64_t *done, int64_t *total) {
    if (!D.on || D.size <= 1) return;
    if (D.rank == 0) {
        progress_drain(-1, 0);
        int64_t sum = *done;
        for (int r = 1; r < D.size; r++) sum += D.peer_done[r];
        *done = sum;
        if (D.total > 0) *total = D.total;
        return;
    }
    if (D.n_reqs == D.cap_reqs) { /* buffers stay put until their sends complete (at the gather) */
        int cap = D.cap_reqs ? 2 * D.cap_reqs : 64;
        int64_t(*b)[1] = malloc((size_t)cap * sizeof *b);
        MPI_Request *q = realloc(D.reqs, (size_t)cap * sizeof *q);
        if (!b || !q) { free(b); if (q) D.reqs = q; return; }
        if (D.n_reqs) MPI_Waitall(D.n_reqs, q, MPI_STATUSES_IGNORE); /* (the old buffers are free then) */
        free(D.bufs);
        D.bufs = b;
        D.reqs = q;
        D.cap_reqs = cap;
        D.n_reqs = 0;
    }
    D.bufs[D.n_reqs][0] = *done;
    MPI_Isend(D.bufs[D.n_reqs], 1, MPI_INT64_T, 0, TAG_PROGRESS, MPI_COMM_WORLD, &D.reqs[D.n_reqs]);
    D.n_reqs++;
    D.sent++;
}

/* Every rank's status and detail, and how many progress messages it sent this run. */
typedef struct rank_report {
    int st, sent;
    char msg[MSG_LEN];
} rank_report;

/* Exchange statuses: the outcome every rank agrees on (the first failing rank's). */
static advex_status agree(advex_status st) {
    rank_report mine = {(int)st, D.sent, ""}, *all = malloc((size_t)D.size * sizeof *all);
    if (!all) return ADVEX_ERR_NOMEM;
    if (st) snprintf(mine.msg, sizeof mine.msg, "%s", *advex_last_error() ? advex_last_error() : advex_status_str(st));
    if (D.n_reqs) MPI_Waitall(D.n_reqs, D.reqs, MPI_STATUSES_IGNORE);
    D.n_reqs = 0;
    MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, MPI_COMM_WORLD);
    advex_status out = ADVEX_OK;
    for (int r = 0; r < D.size; r++) {
        if (D.rank == 0 && r > 0) progress_drain(r, all[r].sent); /* none left in flight */
        if (all[r].st && !out) {
            out = (advex_status)all[r].st;
            D.fail_rank = r;
            memcpy(D.fail_msg, all[r].msg, MSG_LEN);
        }
    }
    /* the next run's progress starts from zero */
    D.sent = 0;
    for (int r = 0; r < D.size; r++) D.received[r] = 0, D.peer_done[r] = 0;
    if (out) D.agreed = 1;
    free(all);
    return out;
}

/* Counts and displacements of each rank's block of n examples, in units of `unit` each. */
static int blocks(int64_t n, int64_t unit, int *cnt, int *dsp) {
    for (int r = 0; r < D.size; r++) {
        int64_t lo, hi;
        block(n, r, &lo, &hi);
        if ((hi - lo) * unit > INT_MAX || lo * unit > INT_MAX) return -1;
        cnt[r] = (int)((hi - lo) * unit);
        dsp[r] = (int)(lo * unit);
    }
    return 0;
}

advex_status cli_dist_gather(void *user, int run, advex_status st, advex_eval_example *ex, float *adv, int64_t n,
                             int64_t dim) {
    (void)user; (void)run;
    if (!D.on || D.size <= 1) return st;
    advex_status agreed = agree(st);
    if (agreed) return agreed;
    int *cnt = malloc(2 * (size_t)D.size * sizeof(int)), *dsp = cnt ? cnt + D.size : NULL;
    if (!cnt || blocks(n, (int64_t)sizeof *ex, cnt, dsp)) { /* every rank fails alike (same n) */
        free(cnt);
        D.agreed = 1;
        snprintf(D.fail_msg, sizeof D.fail_msg, "%lld examples are too many to gather", (long long)n);
        D.fail_rank = 0;
        return ADVEX_ERR_LIMIT;
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, ex, cnt, dsp, MPI_BYTE, MPI_COMM_WORLD);
    if (adv) { /* x' rows to rank 0, in place (a row is one element of a contiguous type) */
        MPI_Datatype row;
        MPI_Type_contiguous((int)dim, MPI_FLOAT, &row);
        MPI_Type_commit(&row);
        blocks(n, 1, cnt, dsp);
        if (D.rank == 0)
            MPI_Gatherv(MPI_IN_PLACE, 0, row, adv, cnt, dsp, row, 0, MPI_COMM_WORLD);
        else
            MPI_Gatherv(adv + (int64_t)dsp[D.rank] * dim, cnt[D.rank], row, NULL, NULL, NULL, row, 0, MPI_COMM_WORLD);
        MPI_Type_free(&row);
    }
    free(cnt);
    return ADVEX_OK;
}

advex_status cli_dist_allreduce(void *user, float *buf, int64_t n) {
    (void)user;
    if (!D.on || D.size <= 1) return ADVEX_OK;
    for (int64_t i = 0; i < n; i += INT_MAX / 2) {
        int k = (int)(n - i < INT_MAX / 2 ? n - i : INT_MAX / 2);
        if (MPI_Allreduce(MPI_IN_PLACE, buf + i, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return ADVEX_ERR_INTERNAL;
    }
    return ADVEX_OK;
}

int cli_dist_fail(const char *cmd, advex_status st) {
    if (!D.on || D.size <= 1 || !D.agreed) return cli_fail_run(cmd, st);
    int code = st == ADVEX_ERR_INTERRUPTED ? 130 : (st == ADVEX_ERR_ARG ? CLI_EXIT_USAGE : CLI_EXIT_FAIL);
    if (D.rank == 0) {
        if (st == ADVEX_ERR_INTERRUPTED) cli_error(cmd, 0, "interrupted");
        else cli_error(cmd, 0, "rank %d of %d: %s", D.fail_rank, D.size, D.fail_msg);
    }
    return code;
}
