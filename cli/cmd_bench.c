/* advex bench: images/s of one workload (FGSM, PGD-K, an FGSM-RS adversarial-training
 * step, or a clean forward) on random inputs, median over repetitions; optional JSON.
 * bench/compare.py runs it side by side with the same workloads written in PyTorch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <cjson/cJSON.h>

#include "cli.h"

typedef enum bench_kind { B_FGSM, B_PGD, B_TRAIN, B_FORWARD } bench_kind;

typedef struct bench_ctx {
    advex_model *m;
    bench_kind kind;
    int64_t n, d, k, steps;
    float eps;
    float *x, *xa, *logits;
    advex_attack_config atk; /* fgsm, pgd */
    advex_trainer *trainer;     /* train */
    int32_t *y;
    advex_rng rng;
    /* results */
    const char *name, *attack;
    long long reps;
    int threads, scaling;
    double *rates, *rates1, *ratios; /* (reps) T threads, 1 thread, their pair ratios */
    int64_t iters;
    double flop_per_image;
    double load_seconds; /* advex_model_load_onnx (or the built-in architecture's construction) */
} bench_ctx;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, long long n) {
    double sorted[1000];
    memcpy(sorted, v, (size_t)n * sizeof(double));
    qsort(sorted, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

/* One FGSM-RS training step (advex_trainer_step): random start, eval-mode input gradient,
 * sign step of 1.25 eps; then a train-mode forward + backward (parameter gradients) on x' and
 * an SGD momentum update. FGSM and PGD are the attacks themselves (advex_attack_batch; PGD
 * in transfer mode: every step on every example, as a benchmark must). */
static advex_status run_once(bench_ctx *b) {
    switch (b->kind) {
    case B_FORWARD: return advex_model_forward(b->m, b->x, b->n, b->logits);
    case B_FGSM:
    case B_PGD: return advex_attack_batch(b->m, &b->atk, b->x, b->y, b->n, 0, b->xa);
    case B_TRAIN:
        return advex_trainer_step(b->trainer, b->x, b->y, b->n, ADVEX_ADV_FGSM_RS, b->eps, 0.01f, NULL, NULL);
    }
    return ADVEX_OK;
}

/* One timed repetition: the workload repeated for at least min_time seconds. */
static advex_status timed_rep(bench_ctx *b, double min_time, double *rate, int64_t *iters) {
    double t0 = cli_now(), el;
    int64_t it = 0;
    do {
        advex_status st = run_once(b);
        if (st) return st;
        it++;
        el = cli_now() - t0;
    } while (el < min_time && !cli_interrupted);
    *rate = (double)(it * b->n) / el;
    *iters = it;
    return ADVEX_OK;
}

/* The figures: one JSON object (--json) or a text line. 0 or an exit code. */
static int bench_print(const char *cmd, const bench_ctx *b, int json) {
    double med = median(b->rates, b->reps), med1 = b->scaling ? median(b->rates1, b->reps) : 0,
           medr = b->scaling ? median(b->ratios, b->reps) : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (json) {
        cJSON *o = cJSON_CreateObject(), *sc;
        cJSON_AddStringToObject(o, "tool", "advex");
        cJSON_AddStringToObject(o, "model", b->name);
        cJSON_AddStringToObject(o, "attack", b->attack);
        cJSON_AddNumberToObject(o, "steps", (double)b->steps);
        cJSON_AddNumberToObject(o, "batch", (double)b->n);
        cJSON_AddNumberToObject(o, "threads", advex_get_threads());
        cJSON_AddStringToObject(o, "isa", advex_kernel_isa());
        cJSON_AddNumberToObject(o, "reps", (double)b->reps);
        cJSON_AddNumberToObject(o, "images_per_second", med);
        cJSON_AddNumberToObject(o, "median_images_per_second", med);
        cJSON_AddNumberToObject(o, "seconds_per_batch", (double)b->n / med);
        cJSON_AddItemToObject(o, "rates", cJSON_CreateDoubleArray(b->rates, (int)b->reps));
        cJSON_AddNumberToObject(o, "gflop_per_image", b->flop_per_image * 1e-9);
        cJSON_AddNumberToObject(o, "gflops", b->flop_per_image * med * 1e-9);
        cJSON_AddNumberToObject(o, "peak_rss_kb", (double)ru.ru_maxrss);
        cJSON_AddNumberToObject(o, "load_seconds", b->load_seconds);
        cJSON_AddNumberToObject(o, "iterations", (double)b->iters);
        if (b->scaling) {
            sc = cJSON_AddObjectToObject(o, "scaling");
            cJSON_AddNumberToObject(sc, "threads", b->threads);
            cJSON_AddNumberToObject(sc, "images_per_second_1_thread", med1);
            cJSON_AddNumberToObject(sc, "median_pair_ratio", medr);
            cJSON_AddItemToObject(sc, "rates_1_thread", cJSON_CreateDoubleArray(b->rates1, (int)b->reps));
            cJSON_AddItemToObject(sc, "pair_ratios", cJSON_CreateDoubleArray(b->ratios, (int)b->reps));
        }
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!text) return cli_error(cmd, CLI_EXIT_FAIL, "out of memory");
        puts(text);
        cJSON_free(text);
    } else {
        printf("%s %s (steps %lld) batch %lld, %d threads, %s kernels: %.1f images/s (median of %lld; %.2f ms/batch, "
               "%.2f GFLOP/s, peak RSS %.1f MiB, load %.2f s)\n",
               b->name, b->attack, (long long)b->steps, (long long)b->n, advex_get_threads(), advex_kernel_isa(), med, b->reps,
               1e3 * (double)b->n / med,
               b->flop_per_image * med * 1e-9, (double)ru.ru_maxrss / 1024.0, b->load_seconds);
        if (b->scaling)
            printf("1 thread: %.1f images/s; %d threads / 1 thread: %.2fx (median of %lld side-by-side pairs)\n",
                   med1, b->threads, medr, b->reps);
    }
    return 0;
}

/* Buffers, random inputs and labels, the attack or trainer of the workload. 0 or an exit code;
 * what was allocated is freed by the caller. */
static int bench_setup(const char *cmd, bench_ctx *b, bench_kind kind, long long batch, long long steps, double eps,
                       long long seed, long long reps) {
    int64_t chw[3];
    advex_model_input_shape(b->m, chw);
    b->kind = kind;
    b->n = batch;
    b->d = chw[0] * chw[1] * chw[2];
    b->k = advex_model_num_classes(b->m);
    b->steps = kind == B_PGD ? steps : 1;
    b->eps = (float)eps;
    advex_rng_seed(&b->rng, (uint64_t)seed + 1);
    b->x = malloc((size_t)(b->n * b->d) * sizeof(float));
    b->xa = malloc((size_t)(b->n * b->d) * sizeof(float));
    b->logits = malloc((size_t)(b->n * b->k) * sizeof(float));
    b->y = malloc((size_t)b->n * sizeof(int32_t));
    b->rates = malloc((size_t)reps * sizeof(double));
    b->rates1 = malloc((size_t)reps * sizeof(double));
    b->ratios = malloc((size_t)reps * sizeof(double));
    if (!b->x || !b->xa || !b->logits || !b->y || !b->rates || !b->rates1 || !b->ratios)
        return cli_error(cmd, CLI_EXIT_FAIL, "out of memory");
    for (int64_t i = 0; i < b->n * b->d; i++) b->x[i] = advex_rng_uniform(&b->rng);
    for (int64_t i = 0; i < b->n; i++) b->y[i] = (int32_t)advex_rng_below(&b->rng, (uint64_t)b->k);
    advex_attack_config_default(&b->atk); /* fgsm; pgd: L-inf, random start, K steps of 2.5 eps/K */
    b->atk.kind = kind == B_PGD ? ADVEX_ATTACK_PGD : ADVEX_ATTACK_FGSM;
    b->atk.eps = b->eps;
    b->atk.steps = (int32_t)b->steps;
    b->atk.no_early_stop = 1;
    if (kind == B_TRAIN) { /* SGD, momentum 0.9, lr 0.01, FGSM-RS at eps on x' only */
        advex_train_config tc;
        advex_train_config_default(&tc);
        tc.batch = b->n;
        tc.opt = ADVEX_OPT_SGD;
        tc.momentum = 0.9f;
        tc.adv = ADVEX_ADV_FGSM_RS;
        tc.eps = b->eps;
        tc.adv_weight = 0.0f;
        advex_status tst = advex_trainer_new(b->m, &tc, &b->trainer);
        if (tst) return cli_fail(cmd, tst);
    }
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *cmd = "bench";
    cli_flag f[] = {
        {"--model", "FILE", "ONNX model", NULL, 0},
        {"--arch", "A", "built-in architecture (when no --model)", "small", 0},
        {"--attack", "W", "workload: fgsm, pgd, train (one FGSM-RS training step) or forward", "fgsm", 0},
        {"--steps", "K", "PGD steps", "10", 0},
        {"--batch", "B", "batch size", "256", 0},
        {"--reps", "R", "timed repetitions (median reported)", "5", 0},
        {"--min-time", "S", "each repetition repeats the workload for at least S seconds", "0.3", 0},
        {"--eps", "E", "perturbation size (L-inf)", "0.1", 0},
        {"--seed", "S", "seed for weights, inputs and labels", "0", 0},
        {"--scaling", NULL, "also time 1 thread, one repetition beside each T-thread one, and report T/1 "
                            "(median of the per-pair ratios)", NULL, 0},
        {"--json", NULL, "print one JSON object instead of text", NULL, 0},
    };
    int r = cli_parse(cmd, "--arch A|--model M.onnx --attack fgsm|pgd|train|forward [options]",
                      "Measure images/s of advex alone on random inputs (median of --reps).", argc, argv, f,
                      (int)(sizeof f / sizeof *f));
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *attack = CLI_GET(f, "--attack")->value;
    bench_kind kind;
    if (strcmp(attack, "fgsm") == 0) kind = B_FGSM;
    else if (strcmp(attack, "pgd") == 0) kind = B_PGD;
    else if (strcmp(attack, "train") == 0) kind = B_TRAIN;
    else if (strcmp(attack, "forward") == 0) kind = B_FORWARD;
    else return cli_error(cmd, CLI_EXIT_USAGE, "--attack: unknown workload '%s' (fgsm, pgd, train, forward)", attack);
    long long steps, batch, reps, seed;
    double min_time, eps;
    if (cli_int(cmd, CLI_GET(f, "--steps"), 1, 100000, &steps) || cli_int(cmd, CLI_GET(f, "--batch"), 1, 1 << 20, &batch) ||
        cli_int(cmd, CLI_GET(f, "--reps"), 1, 1000, &reps) || cli_int(cmd, CLI_GET(f, "--seed"), 0, INT64_MAX, &seed) ||
        cli_float(cmd, CLI_GET(f, "--min-time"), 0, 3600, &min_time) || cli_float(cmd, CLI_GET(f, "--eps"), 0, 1, &eps))
        return CLI_EXIT_USAGE;
    const char *model_path = CLI_GET(f, "--model")->value, *arch = CLI_GET(f, "--arch")->value;
    int json = CLI_GET(f, "--json")->seen, scaling = CLI_GET(f, "--scaling")->seen;
    if (scaling && advex_get_threads() < 2)
        return cli_error(cmd, CLI_EXIT_USAGE, "--scaling: needs --threads 2 or more (this run has %d)",
                         advex_get_threads());
    bench_ctx b;
    memset(&b, 0, sizeof b);
    double t_load = cli_now();
    if ((r = cli_load_model(cmd, model_path, model_path ? NULL : arch, (uint64_t)seed, &b.m))) return r;
    b.load_seconds = cli_now() - t_load;
    int rc = CLI_EXIT_FAIL;
    if ((r = bench_setup(cmd, &b, kind, batch, steps, eps, seed, reps))) { rc = r; goto done; }
    double macs = advex_model_macs(b.m);
    /* passes of forward-equivalent GEMM work per example: forward 1, input-grad backward
     * 1 (weight gradients skipped), parameter-gradient backward 2 */
    double passes = kind == B_FORWARD ? 1 : kind == B_FGSM ? 2 : kind == B_PGD ? 2.0 * (double)b.steps : 5;
    double flop_per_image = 2.0 * macs * passes;
    advex_status st;
    if ((st = run_once(&b))) { rc = cli_fail(cmd, st); goto done; } /* warm-up: plans, page faults */
    int threads = advex_get_threads();
    if (scaling) { /* warm the 1-thread path too (its own plan), then come back */
        advex_set_threads(1);
        st = run_once(&b);
        advex_set_threads(threads);
        if (st) { rc = cli_fail(cmd, st); goto done; }
    }
    if (!cli_opts.quiet) /* the warm-up is done: what a caller waiting to interrupt us can see */
        fprintf(stderr, "advex bench: timing %lld repetitions of at least %g s\n", reps, min_time);
    int64_t iters_total = 0;
    for (long long rep = 0; rep < reps && !cli_interrupted; rep++) {
        /* --scaling: a 1-thread repetition beside each T-thread one, in alternating order,
         * so each pair is timed within ~2 min-times of the machine's state */
        int one_first = scaling && rep % 2 == 0;
        for (int k = 0; k < (scaling ? 2 : 1); k++) {
            int single = scaling && (k == 0) == one_first;
            advex_set_threads(single ? 1 : threads);
            double rate;
            int64_t it;
            if ((st = timed_rep(&b, min_time, &rate, &it))) { rc = cli_fail(cmd, st); goto done; }
            if (single) b.rates1[rep] = rate;
            else b.rates[rep] = rate;
            iters_total += it;
        }
        advex_set_threads(threads);
        if (scaling) b.ratios[rep] = b.rates[rep] / b.rates1[rep];
    }
    advex_set_threads(threads);
    if (cli_interrupted) { /* the repetitions are incomplete: no figures */
        cli_error(cmd, 0, "interrupted");
        rc = 130;
        goto done;
    }
    b.name = model_path ? model_path : arch;
    b.attack = attack;
    b.reps = reps;
    b.iters = iters_total;
    b.flop_per_image = flop_per_image;
    b.threads = threads;
    b.scaling = scaling;
    if ((r = bench_print(cmd, &b, json))) { rc = r; goto done; }
    rc = CLI_EXIT_OK;
done:
    free(b.x); free(b.xa); free(b.logits); free(b.y);
    advex_trainer_free(b.trainer);
    free(b.rates); free(b.rates1); free(b.ratios);
    advex_model_free(b.m);
    return rc;
}
