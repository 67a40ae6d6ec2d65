/* One image file through torchvision's pipeline: decode (PNG or JPEG, told apart by content)
 * to 8 bits as PIL's convert("RGB") / convert("L") does, Resize, CenterCrop, ToTensor; and
 * the same Resize / CenterCrop on float data sets (npy, IDX) already in memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

advex_status advex_img8_read(const char *path, const advex_decode_limits *lim, advex_img8 *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return advex_data_errno(path, errno);
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, f);
    advex_status st;
    if (got == sizeof sig && memcmp(sig, png_sig, 8) == 0) {
        rewind(f);
        st = advex_png_decode8(path, NULL, 0, f, lim, out);
    } else if (got >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff) {
        rewind(f);
        st = advex_jpeg_decode8(path, NULL, 0, f, lim, out);
    } else if (ferror(f)) {
        st = advex_data_errno(path, EIO);
    } else {
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: not a PNG or JPEG file%s", path,
                             got == 0 ? " (empty)" : " (advex reads PNG and JPEG images)");
    }
    fclose(f);
    return st;
}

advex_status advex_image_read(const char *path, float **x, int64_t *c, int64_t *h, int64_t *w) {
    if (!path || !x || !c || !h || !w) return advex_set_error(ADVEX_ERR_ARG, "advex_image_read: NULL argument");
    *x = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return advex_data_errno(path, errno);
    unsigned char sig[3] = {0, 0, 0};
    size_t got = fread(sig, 1, 3, f);
    fclose(f);
    if (got == 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff) return advex_jpeg_read(path, x, c, h, w);
    return advex_png_read(path, x, c, h, w); /* its own error for neither */
}

advex_status advex_img8_prepare(advex_img8 *im, const advex_prep_plan_t *pl, int c, float *dst) {
    advex_status st = advex_img8_channels(im, c);
    if (st) return st;
    if (pl->rh > 0) {
        advex_img8 r;
        if ((st = advex_img8_resize(im, pl->rw, pl->rh, &r))) return st;
        advex_img8_free(im);
        *im = r;
    }
    if (pl->ch > 0) {
        advex_img8 r;
        if ((st = advex_img8_crop(im, pl->cw, pl->ch, &r))) return st;
        advex_img8_free(im);
        *im = r;
    }
    if (im->w != pl->ow || im->h != pl->oh)
        return advex_set_error(ADVEX_ERR_INTERNAL, "preprocessing gave %lldx%lld, planned %lldx%lld", (long long)im->w,
                               (long long)im->h, (long long)pl->ow, (long long)pl->oh);
    advex_img8_to_planar(im, dst);
    return ADVEX_OK;
}

/* Bytes one decode may still take under the memory cap, beside `reserved` (INT64_MAX: no cap). */
int64_t advex_decode_budget(int64_t reserved) {
    int64_t cap = advex_get_memory_limit();
    if (cap <= 0) return INT64_MAX;
    int64_t left = cap - advex_memory_in_use() - reserved;
    return left > 0 ? left : 0;
}

advex_status advex_image_load(const char *path, const advex_data_expect *want, const advex_data_prep *prep,
                              float **x, int64_t *c, int64_t *h, int64_t *w, int *fitted) {
    if (!path || !x || !c || !h || !w) return advex_set_error(ADVEX_ERR_ARG, "advex_image_load: NULL argument");
    *x = NULL;
    if (fitted) *fitted = 0;
    int ch = want && want->c == 1 ? 1 : 3;
    if (want && want->c != 0 && want->c != 1 && want->c != 3)
        return advex_set_error(ADVEX_ERR_SHAPE, "%s: images have 1 or 3 channels but the model expects %lld", path,
                               (long long)want->c);
    advex_decode_limits lim = {ADVEX_IMAGE_MAX_PIXELS, advex_decode_budget(0)};
    advex_img8 im;
    advex_status st = advex_img8_read(path, &lim, &im);
    if (st) return st;
    advex_prep_plan_t pl;
    if ((st = advex_prep_plan(im.h, im.w, prep, want, 1, &pl))) {
        advex_img8_free(&im);
        return advex_error_prefix(st, path);
    }
    float *f = malloc((size_t)(ch * pl.oh * pl.ow) * sizeof(float));
    if (!f) st = advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", path);
    else if ((st = advex_img8_prepare(&im, &pl, ch, f))) st = advex_error_prefix(st, path);
    advex_img8_free(&im);
    if (st) { free(f); return st; }
    *x = f;
    *c = ch;
    *h = pl.oh;
    *w = pl.ow;
    if (fitted) *fitted = pl.fitted;
    return ADVEX_OK;
}

advex_status advex_dataset_prep_float(advex_dataset *d, const char *what, const advex_data_prep *prep) {
    if (!prep || (prep->resize <= 0 && prep->crop <= 0) || d->n <= 0) return ADVEX_OK;
    advex_prep_plan_t pl;
    advex_status st = advex_prep_plan(d->h, d->w, prep, NULL, 0, &pl);
    if (st) return advex_error_prefix(st, what);
    if (pl.rh == 0 && pl.ch == 0) return ADVEX_OK;
    int64_t c = d->c, in_dim = c * d->h * d->w, rdim = pl.rh ? c * pl.rh * pl.rw : in_dim, out_dim = c * pl.oh * pl.ow;
    if ((st = advex_data_size_check(what, d->n, out_dim * (int64_t)sizeof(float), "preprocessed examples"))) return st;
    float *x = malloc((size_t)(d->n * out_dim) * sizeof(float));
    float *tmp = pl.rh && pl.ch ? malloc((size_t)rdim * sizeof(float)) : NULL;
    if (!x || (pl.rh && pl.ch && !tmp)) {
        free(x);
        free(tmp);
        return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory for %lld preprocessed examples", what,
                               (long long)d->n);
    }
    for (int64_t i = 0; i < d->n && !st; i++) {
        const float *src = d->x + i * in_dim;
        float *o = x + i * out_dim;
        int64_t h = d->h, w = d->w;
        if (pl.rh) {
            st = advex_image_resize(src, c, h, w, pl.rh, pl.rw, pl.ch ? tmp : o);
            src = tmp;
            h = pl.rh;
            w = pl.rw;
        }
        if (!st && pl.ch) advex_image_center_crop(src, c, h, w, pl.ch, pl.cw, o);
    }
    free(tmp);
    if (st) { free(x); return advex_error_prefix(st, what); }
    free(d->x);
    d->x = x;
    d->h = pl.oh;
    d->w = pl.ow;
    return ADVEX_OK;
}
