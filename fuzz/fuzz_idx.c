/* Fuzz target: the IDX reader (raw or gzip), as an image file and as a label file, and
 * the data-set loader on top of it. */
#include <stdio.h>
#include <stdlib.h>

#include "advex/advex.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_scratch_file(data, size);
    if (!path) return 0;
    float *x = NULL;
    int64_t n = 0, h = 0, w = 0;
    if (advex_idx_load_images(path, &x, &n, &h, &w) == ADVEX_OK) {
        if (n <= 0 || h <= 0 || w <= 0) abort();
        if (x[n * h * w - 1] < 0.0f || x[n * h * w - 1] > 1.0f) abort();
        free(x);
    }
    int32_t *y = NULL;
    if (advex_idx_load_labels(path, &y, &n) == ADVEX_OK) {
        if (n <= 0 || y[n - 1] < 0 || y[n - 1] > 255) abort();
        free(y);
    }
    char spec[600];
    snprintf(spec, sizeof spec, "idx:%s", path);
    advex_dataset ds;
    if (advex_dataset_load(spec, NULL, 2, &ds) == ADVEX_OK) advex_dataset_free(&ds);
    return 0;
}
