/* Process-wide thread count for advex kernels. One thread pool does everything: advex's
 * OpenMP regions, and OpenBLAS when it is the OpenMP build (which runs single-threaded
 * inside our parallel regions and on the same OpenMP threads outside them). With another
 * OpenBLAS build (pthreads) its own threads would fight ours for the cores (measured 3x
 * slower on 2 cores), so it is kept single-threaded and advex_sgemm splits large products. */
#include <omp.h>
#include <time.h>

#include "internal.h"

void openblas_set_num_threads(int n); /* from OpenBLAS */
int openblas_get_parallel(void);      /* 0 sequential, 1 pthreads, 2 OpenMP */

static int advex_nthreads_;

double advex_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void advex_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    advex_nthreads_ = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(openblas_get_parallel() == 2 ? n : 1);
}

int advex_get_threads(void) { return advex_threads(); }

int advex_threads(void) {
    if (advex_nthreads_ <= 0) advex_set_threads(0);
    return advex_nthreads_;
}
