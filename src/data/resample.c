/* Image resampling as torchvision does it on PIL images: Resize(S) is Pillow's bilinear filter
 * with its antialiasing (the triangle's support scaled by the downscale factor), a horizontal
 * pass then a vertical one, each rounded to 8 bits from 22-bit fixed point exactly as Pillow's
 * Resample.c does; CenterCrop(C) with zero padding; PIL's L <-> RGB conversions. The same
 * filter in float for float data (advex_image_resize). See docs/data.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

#define PREC 22 /* Pillow's PRECISION_BITS (32 - 8 - 2) */

/* f(x) = max(0, 1 - |x|): the bilinear (triangle) filter, support 1 */
static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* The weights of each output sample over the input [0, in) resampled to `out` samples
 * (Pillow's precompute_coeffs for the box (0, in)): output xx covers input
 * [bounds[2xx], bounds[2xx] + bounds[2xx+1]) with weights k[xx*ksize ...], summing to 1. */
typedef struct coeffs {
    int64_t ksize;
    int64_t *bounds; /* (out, 2): first, count */
    double *k;       /* (out, ksize) */
    int32_t *ki;     /* (out, ksize): k in 22-bit fixed point (8-bit path) */
} coeffs;

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->k);
    free(c->ki);
    memset(c, 0, sizeof *c);
}

static advex_status coeffs_make(int64_t in, int64_t out, coeffs *c) {
    memset(c, 0, sizeof *c);
    /* Pillow: box floats (in1 - in0 is float(in), exact below 2^24), scale in double */
    double scale = (double)(float)in / (double)out, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale, ss = 1.0 / filterscale;
    c->ksize = (int64_t)ceil(support) * 2 + 1;
    int64_t nk;
    if (!advex_mul_i64(out, c->ksize, &nk) || nk > ((int64_t)1 << 31))
        return advex_set_error(ADVEX_ERR_LIMIT, "resize: %lld -> %lld samples needs too many weights", (long long)in,
                               (long long)out);
    c->bounds = malloc((size_t)out * 2 * sizeof *c->bounds);
    c->k = calloc((size_t)nk, sizeof *c->k);
    c->ki = calloc((size_t)nk, sizeof *c->ki);
    if (!c->bounds || !c->k || !c->ki) {
        coeffs_free(c);
        return advex_set_error(ADVEX_ERR_NOMEM, "resize: out of memory for the filter weights");
    }
    for (int64_t xx = 0; xx < out; xx++) {
        double center = 0.0 + ((double)xx + 0.5) * scale, ww = 0.0;
        int64_t xmin = (int64_t)(center - support + 0.5), xmax = (int64_t)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in) xmax = in;
        xmax -= xmin;
        double *k = c->k + xx * c->ksize;
        for (int64_t x = 0; x < xmax; x++) {
            double w = triangle(((double)(x + xmin) - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int64_t x = 0; x < xmax; x++) {
            if (ww != 0.0) k[x] /= ww;
            /* weights are never negative for this filter: Pillow's rounding for k >= 0 */
            c->ki[xx * c->ksize + x] = (int32_t)(0.5 + k[x] * (double)(1 << PREC));
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    return ADVEX_OK;
}

static uint8_t clip8(int64_t ss) {
    if (ss <= 0) return 0;
    ss >>= PREC;
    return ss > 255 ? 255 : (uint8_t)ss;
}

/* Horizontal pass: rows [row0, row0 + rows) of src (w x c interleaved) -> dst (rows, ow, c). */
static void hpass8(const uint8_t *src, int64_t w, int c, int64_t row0, int64_t rows, const coeffs *k, int64_t ow,
                   uint8_t *dst) {
    for (int64_t y = 0; y < rows; y++) {
        const uint8_t *in = src + (row0 + y) * w * c;
        uint8_t *o = dst + y * ow * c;
        for (int64_t xx = 0; xx < ow; xx++) {
            int64_t xmin = k->bounds[2 * xx], xmax = k->bounds[2 * xx + 1];
            const int32_t *kk = k->ki + xx * k->ksize;
            for (int ch = 0; ch < c; ch++) {
                int64_t ss = 1 << (PREC - 1);
                for (int64_t x = 0; x < xmax; x++) ss += (int64_t)in[(x + xmin) * c + ch] * kk[x];
                o[xx * c + ch] = clip8(ss);
            }
        }
    }
}

/* Vertical pass: src (h rows of w x c, row 0 = input row `shift`) -> dst (oh, w, c). */
static void vpass8(const uint8_t *src, int64_t w, int c, int64_t shift, const coeffs *k, int64_t oh, uint8_t *dst) {
    int64_t rowlen = w * c;
    for (int64_t yy = 0; yy < oh; yy++) {
        int64_t ymin = k->bounds[2 * yy] - shift, ymax = k->bounds[2 * yy + 1];
        const int32_t *kk = k->ki + yy * k->ksize;
        uint8_t *o = dst + yy * rowlen;
        for (int64_t i = 0; i < rowlen; i++) {
            int64_t ss = 1 << (PREC - 1);
            for (int64_t y = 0; y < ymax; y++) ss += (int64_t)src[(y + ymin) * rowlen + i] * kk[y];
            o[i] = clip8(ss);
        }
    }
}

advex_status advex_img8_resize(const advex_img8 *in, int64_t ow, int64_t oh, advex_img8 *out) {
    memset(out, 0, sizeof *out);
    if (ow <= 0 || oh <= 0 || ow * oh > ADVEX_IMAGE_MAX_PIXELS)
        return advex_set_error(ADVEX_ERR_LIMIT, "resize to %lldx%lld: at most %lld pixels", (long long)ow,
                               (long long)oh, (long long)ADVEX_IMAGE_MAX_PIXELS);
    int c = in->c;
    out->w = ow;
    out->h = oh;
    out->c = c;
    out->px = malloc((size_t)(ow * oh * c));
    if (!out->px) return advex_set_error(ADVEX_ERR_NOMEM, "resize: out of memory for a %lldx%lld image", (long long)ow,
                                         (long long)oh);
    if (ow == in->w && oh == in->h) { /* Pillow copies */
        memcpy(out->px, in->px, (size_t)(ow * oh * c));
        return ADVEX_OK;
    }
    coeffs kh, kv;
    advex_status st = coeffs_make(in->w, ow, &kh);
    if (!st && (st = coeffs_make(in->h, oh, &kv))) coeffs_free(&kh);
    if (st) { free(out->px); out->px = NULL; return st; }
    /* Pillow: the horizontal pass (when the width changes) over the rows the vertical pass
     * reads, into an 8-bit image, then the vertical pass (when the height changes) */
    int need_h = ow != in->w, need_v = oh != in->h;
    int64_t first = kv.bounds[0], last = kv.bounds[2 * oh - 2] + kv.bounds[2 * oh - 1];
    uint8_t *tmp = NULL;
    if (need_h && need_v) {
        tmp = malloc((size_t)((last - first) * ow * c));
        if (!tmp) st = advex_set_error(ADVEX_ERR_NOMEM, "resize: out of memory");
        else {
            hpass8(in->px, in->w, c, first, last - first, &kh, ow, tmp);
            vpass8(tmp, ow, c, first, &kv, oh, out->px);
        }
    } else if (need_h) {
        hpass8(in->px, in->w, c, 0, in->h, &kh, ow, out->px);
    } else {
        vpass8(in->px, in->w, c, 0, &kv, oh, out->px);
    }
    free(tmp);
    coeffs_free(&kh);
    coeffs_free(&kv);
    if (st) { free(out->px); out->px = NULL; }
    return st;
}

/* torchvision's CenterCrop offset along one axis of `dim` samples cropped to `crop`:
 * int(round((dim - crop) / 2)) with Python's round half to even, or minus the left/top
 * padding ((crop - dim) // 2) when the crop is larger. */
static int64_t crop_offset(int64_t dim, int64_t crop) {
    if (crop > dim) return -((crop - dim) / 2);
    int64_t d = dim - crop;
    if (d % 2 == 0) return d / 2;
    int64_t lo = d / 2;
    return lo % 2 == 0 ? lo : lo + 1;
}

advex_status advex_img8_crop(const advex_img8 *in, int64_t cw, int64_t ch, advex_img8 *out) {
    memset(out, 0, sizeof *out);
    if (cw <= 0 || ch <= 0 || cw * ch > ADVEX_IMAGE_MAX_PIXELS)
        return advex_set_error(ADVEX_ERR_LIMIT, "crop to %lldx%lld: at most %lld pixels", (long long)cw, (long long)ch,
                               (long long)ADVEX_IMAGE_MAX_PIXELS);
    int c = in->c;
    out->px = calloc((size_t)(cw * ch * c), 1); /* padding is 0 (black), as torchvision pads */
    if (!out->px) return advex_set_error(ADVEX_ERR_NOMEM, "crop: out of memory for a %lldx%lld image", (long long)cw,
                                         (long long)ch);
    out->w = cw;
    out->h = ch;
    out->c = c;
    int64_t ox = crop_offset(in->w, cw), oy = crop_offset(in->h, ch);
    for (int64_t y = 0; y < ch; y++) {
        int64_t sy = y + oy;
        if (sy < 0 || sy >= in->h) continue;
        int64_t x0 = ox < 0 ? -ox : 0, x1 = in->w - ox < cw ? in->w - ox : cw; /* output columns inside the image */
        if (x1 > x0)
            memcpy(out->px + (y * cw + x0) * c, in->px + (sy * in->w + x0 + ox) * c, (size_t)((x1 - x0) * c));
    }
    return ADVEX_OK;
}

advex_status advex_img8_channels(advex_img8 *im, int c) {
    if (im->c == c) return ADVEX_OK;
    if ((im->c != 1 && im->c != 3) || (c != 1 && c != 3))
        return advex_set_error(ADVEX_ERR_SHAPE, "cannot convert %d channels to %d", im->c, c);
    int64_t n = im->w * im->h;
    uint8_t *px = malloc((size_t)(n * c));
    if (!px) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory converting a %lldx%lld image", (long long)im->w,
                                    (long long)im->h);
    if (c == 3) { /* PIL L -> RGB: replicate */
        for (int64_t i = 0; i < n; i++) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = im->px[i];
    } else { /* PIL RGB -> L: ITU-R 601-2 luma in 16-bit fixed point, rounded */
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *p = im->px + 3 * i;
            px[i] = (uint8_t)(((uint32_t)p[0] * 19595u + (uint32_t)p[1] * 38470u + (uint32_t)p[2] * 7471u + 0x8000u) >> 16);
        }
    }
    free(im->px);
    im->px = px;
    im->c = c;
    return ADVEX_OK;
}

void advex_img8_to_planar(const advex_img8 *im, float *dst) {
    int64_t n = im->w * im->h;
    float lut[256];
    for (int i = 0; i < 256; i++) lut[i] = (float)i / 255.0f; /* ToTensor's v / 255 */
    for (int ch = 0; ch < im->c; ch++)
        for (int64_t i = 0; i < n; i++) dst[ch * n + i] = lut[im->px[i * im->c + ch]];
}

void advex_img8_free(advex_img8 *im) {
    if (!im) return;
    free(im->px);
    memset(im, 0, sizeof *im);
}

/* ---- float images (planar C x H x W) ---------------------------------------------------- */

/* One pass along an axis: `lines` lines of `n` samples, `stride` apart within a line and
 * `lstride` between lines, resampled to k's outputs (same strides in dst, over `on`). */
static void fpass(const float *src, int64_t lines, int64_t stride, int64_t lstride, const coeffs *k, int64_t on,
                  int64_t ostride, int64_t olstride, float *dst) {
    for (int64_t l = 0; l < lines; l++)
        for (int64_t o = 0; o < on; o++) {
            int64_t xmin = k->bounds[2 * o], xmax = k->bounds[2 * o + 1];
            const double *kk = k->k + o * k->ksize;
            double ss = 0.0;
            for (int64_t x = 0; x < xmax; x++) ss += (double)src[l * lstride + (x + xmin) * stride] * kk[x];
            dst[l * olstride + o * ostride] = (float)ss;
        }
}

advex_status advex_image_resize(const float *src, int64_t c, int64_t h, int64_t w, int64_t h_out, int64_t w_out,
                                float *dst) {
    if (!src || !dst || c <= 0 || h <= 0 || w <= 0 || h_out <= 0 || w_out <= 0)
        return advex_set_error(ADVEX_ERR_ARG, "advex_image_resize: bad arguments");
    if (h_out * w_out > ADVEX_IMAGE_MAX_PIXELS || h * w > ADVEX_IMAGE_MAX_PIXELS)
        return advex_set_error(ADVEX_ERR_LIMIT, "resize %lldx%lld -> %lldx%lld: at most %lld pixels", (long long)w,
                               (long long)h, (long long)w_out, (long long)h_out, (long long)ADVEX_IMAGE_MAX_PIXELS);
    if (h == h_out && w == w_out) {
        memcpy(dst, src, (size_t)(c * h * w) * sizeof(float));
        return ADVEX_OK;
    }
    coeffs kh, kv;
    advex_status st = coeffs_make(w, w_out, &kh);
    if (st) return st;
    if ((st = coeffs_make(h, h_out, &kv))) { coeffs_free(&kh); return st; }
    float *tmp = malloc((size_t)(h * w_out) * sizeof(float)); /* one channel after the horizontal pass */
    if (!tmp) st = advex_set_error(ADVEX_ERR_NOMEM, "resize: out of memory");
    for (int64_t ch = 0; !st && ch < c; ch++) {
        fpass(src + ch * h * w, h, 1, w, &kh, w_out, 1, w_out, tmp);
        fpass(tmp, w_out, w_out, 1, &kv, h_out, w_out, 1, dst + ch * h_out * w_out);
    }
    /* weights are non-negative and sum to 1: clip the last rounding back into the input range */
    for (int64_t i = 0; !st && i < c * h_out * w_out; i++) dst[i] = dst[i] < 0.0f ? 0.0f : dst[i] > 1.0f ? 1.0f : dst[i];
    free(tmp);
    coeffs_free(&kh);
    coeffs_free(&kv);
    return st;
}

void advex_image_center_crop(const float *src, int64_t c, int64_t h, int64_t w, int64_t ch_out, int64_t cw_out,
                             float *dst) {
    int64_t ox = crop_offset(w, cw_out), oy = crop_offset(h, ch_out);
    for (int64_t k = 0; k < c; k++)
        for (int64_t y = 0; y < ch_out; y++)
            for (int64_t x = 0; x < cw_out; x++) {
                int64_t sy = y + oy, sx = x + ox;
                dst[(k * ch_out + y) * cw_out + x] = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[(k * h + sy) * w + sx] : 0.0f;
            }
}

/* ---- sizes ------------------------------------------------------------------------------ */

void advex_resize_size(int64_t h, int64_t w, int64_t s, int64_t *oh, int64_t *ow) {
    /* torchvision: the shorter side to s, the longer int(s * long / short) (true division) */
    int64_t shorter = w <= h ? w : h, longer = w <= h ? h : w;
    int64_t nl = (int64_t)((double)s * (double)longer / (double)shorter);
    if (w <= h) { *ow = s; *oh = nl; }
    else { *oh = s; *ow = nl; }
}

advex_status advex_prep_plan(int64_t h, int64_t w, const advex_data_prep *p, const advex_data_expect *want, int can_fit,
                             advex_prep_plan_t *pl) {
    memset(pl, 0, sizeof *pl);
    pl->oh = h;
    pl->ow = w;
    int64_t resize = p ? p->resize : 0, crop = p ? p->crop : 0;
    int64_t crop_h = crop, crop_w = crop;
    if (!resize && !crop && can_fit && p && p->fit && want && want->h > 0 && want->w > 0 &&
        (want->h != h || want->w != w)) {
        resize = want->h > want->w ? want->h : want->w;
        crop_h = want->h;
        crop_w = want->w;
        pl->fitted = 1;
    }
    if (resize > 0) {
        int64_t rh, rw;
        advex_resize_size(h, w, resize, &rh, &rw);
        if (rh <= 0 || rw <= 0 || rh > ((int64_t)1 << 30) || rw > ((int64_t)1 << 30) ||
            rh * rw > ADVEX_IMAGE_MAX_PIXELS)
            return advex_set_error(ADVEX_ERR_LIMIT, "a %lldx%lld image resized (shorter side %lld) would be %lldx%lld "
                                   "pixels (at most %lld)", (long long)w, (long long)h, (long long)resize,
                                   (long long)rw, (long long)rh, (long long)ADVEX_IMAGE_MAX_PIXELS);
        if (rh != h || rw != w) {
            pl->rh = rh;
            pl->rw = rw;
        }
        pl->oh = rh;
        pl->ow = rw;
    }
    if (crop_h > 0) {
        if (crop_h != pl->oh || crop_w != pl->ow) {
            pl->ch = crop_h;
            pl->cw = crop_w;
        }
        pl->oh = crop_h;
        pl->ow = crop_w;
    }
    return ADVEX_OK;
}
