/* PNG in and out through libpng's simplified API: any PNG read as float (C,H,W) in [0,1]
 * (grey stays grey, colour becomes RGB, alpha composited onto white), 8-bit grey/RGB written
 * atomically through the advex_afile helpers. */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "advex/report.h"

static advex_status finish_read(png_image *im, const char *what, float **x, int64_t *c, int64_t *h, int64_t *w) {
    if (PNG_IMAGE_FAILED(*im)) {
        advex_status st = advex_set_error(ADVEX_ERR_FORMAT, "%s: not a readable PNG: %s", what, im->message);
        png_image_free(im);
        return st;
    }
    if (im->width == 0 || im->height == 0 || (int64_t)im->width * (int64_t)im->height > ADVEX_PNG_MAX_PIXELS) {
        advex_status st = advex_set_error(ADVEX_ERR_FORMAT, "%s: PNG of %ux%u pixels (at most %lld pixels)", what,
                                          (unsigned)im->width, (unsigned)im->height,
                                          (long long)ADVEX_PNG_MAX_PIXELS);
        png_image_free(im);
        return st;
    }
    int colour = (im->format & PNG_FORMAT_FLAG_COLOR) != 0;
    im->format = colour ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    int64_t ch = colour ? 3 : 1, hh = im->height, ww = im->width, npx = hh * ww;
    unsigned char *buf = malloc((size_t)PNG_IMAGE_SIZE(*im));
    float *out = malloc((size_t)(npx * ch) * sizeof(float));
    if (!buf || !out) {
        free(buf);
        free(out);
        png_image_free(im);
        return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory for a %lldx%lld image", what, (long long)ww,
                               (long long)hh);
    }
    png_color background = {255, 255, 255};
    if (!png_image_finish_read(im, &background, buf, 0, NULL)) {
        advex_status st = advex_set_error(ADVEX_ERR_FORMAT, "%s: bad PNG data: %s", what, im->message);
        free(buf);
        free(out);
        png_image_free(im);
        return st;
    }
    /* interleaved HWC bytes -> planar CHW floats */
    for (int64_t k = 0; k < ch; k++) {
        unsigned char plane_px;
        for (int64_t p = 0; p < npx; p++) {
            plane_px = buf[p * ch + k];
            out[k * npx + p] = (float)plane_px / 255.0f;
        }
    }
    free(buf);
    png_image_free(im);
    *x = out;
    *c = ch;
    *h = hh;
    *w = ww;
    return ADVEX_OK;
}

advex_status advex_png_decode(const void *data, size_t n, float **x, int64_t *c, int64_t *h, int64_t *w) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!data || n == 0) return advex_set_error(ADVEX_ERR_FORMAT, "PNG: empty input");
    png_image_begin_read_from_memory(&im, data, n);
    return finish_read(&im, "PNG", x, c, h, w);
}

advex_status advex_png_read(const char *path, float **x, int64_t *c, int64_t *h, int64_t *w) {
    FILE *f = fopen(path, "rb");
    if (!f) return advex_data_errno(path, errno);
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, f);
    if (got < 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(f);
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: not a PNG file (bad signature)", path);
    }
    rewind(f);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    png_image_begin_read_from_stdio(&im, f);
    advex_status st = finish_read(&im, path, x, c, h, w);
    fclose(f);
    return st;
}

/* Encode to memory, then write through the atomic file helper. */
static advex_status write_image(const char *path, png_image *im, const unsigned char *px) {
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(im, NULL, &size, 0, px, 0, NULL))
        return advex_set_error(ADVEX_ERR_INTERNAL, "%s: PNG encoding failed: %s", path, im->message);
    unsigned char *mem = malloc(size);
    if (!mem) return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", path);
    if (!png_image_write_to_memory(im, mem, &size, 0, px, 0, NULL)) {
        free(mem);
        return advex_set_error(ADVEX_ERR_INTERNAL, "%s: PNG encoding failed: %s", path, im->message);
    }
    advex_afile af;
    advex_status st = advex_afile_open(&af, path);
    if (!st) st = advex_afile_write(&af, mem, size);
    if (!st) st = advex_afile_commit(&af);
    free(mem);
    return st;
}

static advex_status check_size(const char *path, int64_t w, int64_t h) {
    if (w <= 0 || h <= 0 || w * h > ADVEX_PNG_MAX_PIXELS || w > 0x7fffffff / 4)
        return advex_set_error(ADVEX_ERR_ARG, "%s: cannot write a %lldx%lld PNG", path, (long long)w, (long long)h);
    return ADVEX_OK;
}

advex_status advex_png_write_rgb8(const char *path, const uint8_t *rgb, int64_t w, int64_t h) {
    advex_status st = check_size(path, w, h);
    if (st) return st;
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_RGB;
    return write_image(path, &im, rgb);
}

advex_status advex_png_write(const char *path, const float *x, int64_t c, int64_t h, int64_t w) {
    if (c != 1 && c != 3)
        return advex_set_error(ADVEX_ERR_ARG, "%s: PNG needs 1 or 3 channels, not %lld", path, (long long)c);
    advex_status st = check_size(path, w, h);
    if (st) return st;
    int64_t npx = h * w;
    unsigned char *px = malloc((size_t)(npx * c));
    if (!px) return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", path);
    for (int64_t k = 0; k < c; k++)
        for (int64_t p = 0; p < npx; p++) {
            float v = x[k * npx + p];
            v = v != v ? 0.0f : v < 0 ? 0.0f : v > 1 ? 1.0f : v;
            px[p * c + k] = (unsigned char)lrintf(v * 255.0f);
        }
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    st = write_image(path, &im, px);
    free(px);
    return st;
}
