/* Fuzz target: the PNG reader (advex_png_decode, libpng's low-level API underneath), and the
 * 8-bit decode the folder source uses (PIL's convert("RGB"): alpha dropped, high bytes kept). */
#include <stdlib.h>

#include "advex/advex.h"
#include "data/data_internal.h"
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
    advex_decode_limits lim = {ADVEX_IMAGE_MAX_PIXELS, INT64_MAX};
    advex_img8 im;
    if (advex_png_decode8("fuzz", data, size, NULL, &lim, &im) == ADVEX_OK) {
        if ((im.c != 1 && im.c != 3) || im.w <= 0 || im.h <= 0) abort();
        advex_img8_free(&im);
    }
    return 0;
}
