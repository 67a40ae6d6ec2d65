/* Fuzz target: the CIFAR-10 binary reader. The input is a test_batch.bin in a scratch
 * directory (sizes, labels, truncation), loaded whole, with --limit, and through Resize and
 * CenterCrop at sizes taken from its first byte. */
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
    if (size > (size_t)3073 * 64) return 0;
    const char *dir = fuzz_scratch_dir_file("test_batch.bin", data, size);
    if (!dir) return 0;
    char spec[600];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    advex_dataset d;
    if (advex_dataset_load(spec, NULL, 0, &d) == ADVEX_OK) {
        if (d.n <= 0 || d.c != 3 || d.h != 32 || d.y[d.n - 1] < 0 || d.y[d.n - 1] > 9) abort();
        if (!(d.x[d.n * 3072 - 1] >= 0.0f && d.x[d.n * 3072 - 1] <= 1.0f)) abort();
        advex_dataset_free(&d);
    }
    advex_data_prep prep = {size ? 1 + data[0] % 48 : 0, size ? 1 + data[0] % 40 : 0, 0};
    advex_data_expect want = {3, prep.crop, prep.crop, 10};
    if (advex_dataset_load_prep(spec, "test", NULL, 2, &want, &prep, &d) == ADVEX_OK) {
        if (d.n < 1 || d.n > 2 || d.h != prep.crop || d.w != prep.crop) abort();
        advex_dataset_free(&d);
    }
    return 0;
}
