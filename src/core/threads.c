/* Process-wide thread count for advex kernels (OpenMP) and OpenBLAS. */
#include <omp.h>

#include "internal.h"

void openblas_set_num_threads(int n); /* from OpenBLAS */

static int advex_nthreads_;

void advex_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    advex_nthreads_ = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int advex_get_threads(void) { return advex_threads(); }

int advex_threads(void) {
    if (advex_nthreads_ <= 0) advex_set_threads(0);
    return advex_nthreads_;
}
