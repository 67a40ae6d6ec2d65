/* Fuzz target: the JPEG reader (libjpeg-turbo under advex's limits: pixels, scans, warnings,
 * truncation), through the public float decoder and the 8-bit one the folder source uses, then
 * the 8-bit image through Pillow's resample and torchvision's centre crop at sizes taken from
 * the input's last bytes (so the resampler sees odd shapes too). */
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
    if (advex_jpeg_decode(data, size, &x, &c, &h, &w) == ADVEX_OK) {
        if ((c != 1 && c != 3) || h <= 0 || w <= 0) abort();
        float v = x[c * h * w - 1];
        if (!(v >= 0.0f && v <= 1.0f)) abort();
        free(x);
    }
    /* small images only below: the resampler's cost grows with the output size */
    advex_decode_limits lim = {1 << 16, (int64_t)64 << 20};
    advex_img8 im, r, k;
    if (size < 2 || advex_jpeg_decode8("fuzz", data, size, NULL, &lim, &im) != ADVEX_OK) return 0;
    int64_t ow = 1 + data[size - 1] % 97, oh = 1 + data[size - 2] % 89;
    if (advex_img8_resize(&im, ow, oh, &r) == ADVEX_OK) {
        if (r.w != ow || r.h != oh || r.c != im.c) abort();
        if (advex_img8_crop(&r, 1 + (ow * 3) % 50, 1 + (oh * 5) % 50, &k) == ADVEX_OK) advex_img8_free(&k);
        advex_img8_free(&r);
    }
    if (advex_img8_channels(&im, im.c == 1 ? 3 : 1) != ADVEX_OK) abort();
    advex_img8_free(&im);
    return 0;
}
