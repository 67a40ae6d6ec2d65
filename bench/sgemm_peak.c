/* sgemm peak probe: GFLOP/s of cblas_sgemm (OpenBLAS) on square matrices.
 *
 *   sgemm_peak THREADS [SIZE]
 *     best of 7 runs at THREADS threads -> {"threads": T, "size": S, "gflops": G}; bench/compare.py
 *     uses it as the machine's reachable peak.
 *   sgemm_peak THREADS SIZE PAIRS [MIN_TIME]
 *     the machine's own 2-thread scaling on a kernel with no serial part: PAIRS pairs of
 *     repetitions (each sgemm repeated for MIN_TIME seconds, default 0.3), one at 1 thread
 *     and one at THREADS, in alternating order, the way `advex bench --scaling` times a
 *     workload -> adds "gflops_1_thread" (median), "pair_ratios" and "median_pair_ratio". */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int n);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double s[256];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* GFLOP/s of sgemm repeated for at least min_time seconds. */
static double timed(int n, const float *a, const float *b, float *c, double min_time) {
    double t0 = now(), el;
    int it = 0;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        it++;
        el = now() - t0;
    } while (el < min_time);
    return 2.0 * (double)n * n * n * it / el * 1e-9;
}

int main(int argc, char **argv) {
    int t = argc > 1 ? atoi(argv[1]) : 1, n = argc > 2 ? atoi(argv[2]) : 1536, pairs = argc > 3 ? atoi(argv[3]) : 0;
    double min_time = argc > 4 ? atof(argv[4]) : 0.3;
    if (t < 1 || n < 64 || pairs < 0 || pairs > 256 || !(min_time > 0)) return 2;
    openblas_set_num_threads(t);
    float *a = malloc(sizeof(float) * (size_t)n * (size_t)n), *b = malloc(sizeof(float) * (size_t)n * (size_t)n),
          *c = malloc(sizeof(float) * (size_t)n * (size_t)n);
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
        c[i] = 0.0f;
    }
    if (pairs == 0) {
        double best = 0.0;
        for (int r = 0; r < 7; r++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            double el = now() - t0, g = 2.0 * (double)n * n * n / el * 1e-9;
            if (g > best) best = g;
        }
        printf("{\"threads\": %d, \"size\": %d, \"gflops\": %.2f}\n", t, n, best);
    } else {
        double g1[256], gt[256], r[256];
        openblas_set_num_threads(1); /* warm both */
        timed(n, a, b, c, 0.05);
        openblas_set_num_threads(t);
        timed(n, a, b, c, 0.05);
        for (int p = 0; p < pairs; p++)
            for (int k = 0; k < 2; k++) {
                int single = (k == 0) == (p % 2 == 0);
                openblas_set_num_threads(single ? 1 : t);
                *(single ? &g1[p] : &gt[p]) = timed(n, a, b, c, min_time);
            }
        for (int p = 0; p < pairs; p++) r[p] = gt[p] / g1[p];
        printf("{\"threads\": %d, \"size\": %d, \"gflops\": %.2f, \"gflops_1_thread\": %.2f, \"median_pair_ratio\": %.4f, "
               "\"pair_ratios\": [", t, n, median(gt, pairs), median(g1, pairs), median(r, pairs));
        for (int p = 0; p < pairs; p++) printf("%s%.4f", p ? ", " : "", r[p]);
        printf("]}\n");
    }
    free(a); free(b); free(c);
    return 0;
}
