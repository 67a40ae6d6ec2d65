/* Fuzz target: the .npy reader, as images (float32 conversion) and as labels, and the
 * data-set loader that checks shape and range on top of it. */
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
    int ndim = 0;
    int64_t dims[6];
    if (advex_npy_load_f32(path, &x, &ndim, dims) == ADVEX_OK) {
        int64_t n = 1;
        for (int i = 0; i < ndim; i++) n *= dims[i];
        volatile float sink = 0;
        if (n > 0) sink = x[n - 1]; /* the whole buffer is there */
        (void)sink;
        free(x);
    } else if (x) {
        abort();
    }
    int32_t *y = NULL;
    int64_t ny = 0;
    if (advex_npy_load_labels(path, &y, &ny) == ADVEX_OK) {
        for (int64_t i = 0; i < ny; i++)
            if (y[i] < 0) abort();
        free(y);
    }
    char spec[600];
    snprintf(spec, sizeof spec, "npy:%s,%s", path, path);
    advex_dataset ds;
    if (advex_dataset_load(spec, NULL, 3, &ds) == ADVEX_OK) {
        if (ds.n <= 0 || ds.n > 3) abort();
        advex_dataset_free(&ds);
    }
    return 0;
}
