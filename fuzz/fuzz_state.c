/* Fuzz target: the eval state file (advex_sweep_config.state, src/eval/state.c) read back for a
 * fixed small evaluation (the built-in small net, seed 0; 6 blank examples; FGSM at two eps;
 * batch 2). Whatever the bytes, reading them either fails with an error or yields records a
 * run could have written. ADVEX_FUZZ_STATE_SEED=FILE: write a valid state of that evaluation
 * to FILE (the seed corpus's valid.state) and exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advex/advex.h"
#include "internal.h"
#include "fuzz_common.h"

#define N 6
static advex_model *model;
static advex_dataset data;
static const advex_attack_kind kinds[1] = {ADVEX_ATTACK_FGSM};
static const float eps[2] = {0.05f, 0.1f};

static void config(advex_sweep_config *c, const char *state) {
    advex_sweep_config_default(c);
    c->attacks = kinds;
    c->n_attacks = 1;
    c->eps = eps;
    c->n_eps = 2;
    c->batch = 2;
    c->checks = 0;
    c->state = state;
}

static void cleanup(void) {
    advex_model_free(model);
    advex_dataset_free(&data);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (advex_model_build("small", 0, &model)) abort();
    atexit(cleanup);
    data.n = N; data.c = 1; data.h = 28; data.w = 28; data.num_classes = 10;
    data.x = calloc((size_t)N * 784, sizeof(float));
    data.y = calloc(N, sizeof(int32_t));
    if (!data.x || !data.y) abort();
    for (int i = 0; i < N; i++) {
        data.y[i] = i % 10;
        for (int j = 0; j < 784; j++) data.x[i * 784 + j] = (float)((i * 7 + j) % 11) / 10.0f;
    }
    const char *seed = getenv("ADVEX_FUZZ_STATE_SEED");
    if (seed) {
        advex_sweep_config c;
        config(&c, seed);
        advex_sweep *s = NULL;
        if (advex_eval_sweep(model, &data, &c, &s)) { fprintf(stderr, "%s\n", advex_last_error()); exit(1); }
        advex_sweep_free(s);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
    const char *path = fuzz_scratch_file(bytes, size);
    if (!path) return 0;
    advex_sweep_config c;
    config(&c, path);
    advex_records r;
    if (advex_records_open(&r, model, &data, &c) == ADVEX_OK) {
        for (int q = 0; q < r.runs; q++) {
            if (r.done[q] < 0 || r.done[q] > N) abort();
            for (int64_t i = 0; i < r.done[q]; i++)
                if (r.ex[q * N + i].adv_pred < 0 || r.ex[q * N + i].adv_pred >= 10 || !(r.ex[q * N + i].norms[0] >= 0))
                    abort();
        }
        advex_records_free(&r);
        /* and the whole sweep resumed from it (nothing left to run, or the rest of it) */
        advex_sweep *s = NULL;
        if (advex_eval_sweep(model, &data, &c, &s) == ADVEX_OK) advex_sweep_free(s);
    } else {
        advex_records_free(&r);
    }
    return 0;
}
