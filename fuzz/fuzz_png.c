/* Fuzz target: the PNG reader (advex_png_decode, libpng's low-level API underneath). */
#include <stdlib.h>

#include "advex/advex.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    float *x = NULL;
    int64_t c = 0, h = 0, w = 0;
    if (advex_png_decode(data, size, &x, &c, &h, &w) == ADVEX_OK) {
        if ((c != 1 && c != 3) || h <= 0 || w <= 0) abort();
        float v = x[c * h * w - 1];
        if (!(v >= 0.0f && v <= 1.0f)) abort();
        free(x);
    }
    return 0;
}
