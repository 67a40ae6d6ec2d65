/* sgemm peak probe: GFLOP/s of cblas_sgemm (OpenBLAS) on square matrices at a given thread
 * count, best of several runs; bench/compare.py uses it as the machine's reachable peak.
 * usage: sgemm_peak THREADS [SIZE] -> prints {"threads": T, "size": S, "gflops": G} */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int n);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int t = argc > 1 ? atoi(argv[1]) : 1, n = argc > 2 ? atoi(argv[2]) : 1536;
    if (t < 1 || n < 64) return 2;
    openblas_set_num_threads(t);
    float *a = malloc(sizeof(float) * (size_t)n * (size_t)n), *b = malloc(sizeof(float) * (size_t)n * (size_t)n),
          *c = malloc(sizeof(float) * (size_t)n * (size_t)n);
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
        c[i] = 0.0f;
    }
    double best = 0.0;
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double el = now() - t0, g = 2.0 * (double)n * n * n / el * 1e-9;
        if (g > best) best = g;
    }
    printf("{\"threads\": %d, \"size\": %d, \"gflops\": %.2f}\n", t, n, best);
    free(a); free(b); free(c);
    return 0;
}
