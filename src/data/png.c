/* PNG in and out through libpng: any PNG read as float (C,H,W) in [0,1] with exact sample
 * values (grey stays grey, colour becomes RGB, alpha composited onto white), or to 8 bits as
 * PIL's convert("RGB"/"L") reads it (the folder source); 8-bit grey/RGB written atomically
 * through the advex_afile helpers (the simplified API). */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "advex/report.h"

/* Reading goes through libpng's low-level API, not the simplified one: that one converts
 * 16-bit samples as linear light to 8-bit sRGB (a value could move by 0.33) and reads every
 * text chunk into memory (a tEXt chunk claiming 2 GiB cost 2 GiB, zTXt chunks inflate).
 * Here samples are read exactly (v / 255 or v / 65535), only IHDR, PLTE, tRNS and IDAT are
 * looked at, and every other ancillary chunk is skipped unread, checked by its CRC only. */
typedef struct png_reader {
    const char *what;       /* file name for messages */
    const unsigned char *mem; /* memory source, or NULL with fp */
    size_t n, off;
    FILE *fp;
    int pixels;             /* past the header: errors are "bad PNG data" */
    char msg[160];          /* libpng's error text */
    unsigned char *buf;     /* decoded rows */
    png_bytep *rows;
    float *out;
    const advex_decode_limits *lim; /* set: 8-bit decode as PIL (into img8) */
    advex_img8 *img8;
    advex_status status;    /* of a longjmp: FORMAT, or LIMIT for a too large image */
} png_reader;

static void on_error(png_structp png, png_const_charp msg) {
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void mem_read(png_structp png, png_bytep out, size_t n) {
    png_reader *r = png_get_io_ptr(png);
    if (n > r->n - r->off) png_error(png, "truncated PNG data");
    memcpy(out, r->mem + r->off, n);
    r->off += n;
}

static void file_read(png_structp png, png_bytep out, size_t n) {
    png_reader *r = png_get_io_ptr(png);
    if (fread(out, 1, n, r->fp) != n) png_error(png, ferror(r->fp) ? strerror(errno) : "truncated PNG data");
}

/* The chunks a reader of pixel values does not need: never read into memory. */
static const png_byte skip_chunks[] = "bKGD\0cHRM\0cICP\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0"
                                      "sBIT\0sCAL\0sPLT\0sRGB\0sTER\0tEXt\0tIME\0zTXt\0";

/* Interleaved rows (8 or 16 bits, 1-4 channels) -> planar floats in [0,1], alpha composited
 * onto white: a * v + (1 - a). */
static void to_planar(const png_reader *r, int64_t h, int64_t w, int chans, int depth, int ch, float *out) {
    int alpha = chans == 2 || chans == 4;
    double maxv = depth == 16 ? 65535.0 : 255.0;
    int64_t npx = h * w;
    for (int64_t y = 0; y < h; y++) {
        const unsigned char *row = r->rows[y];
        for (int64_t x = 0; x < w; x++) {
            const unsigned char *px = row + x * chans * (depth / 8);
            double s[4];
            for (int k = 0; k < chans; k++)
                s[k] = depth == 16 ? (double)((const uint16_t *)(const void *)px)[k] : (double)px[k];
            double a = alpha ? s[chans - 1] / maxv : 1.0;
            for (int k = 0; k < ch; k++) {
                double v = s[k] / maxv;
                out[k * npx + y * w + x] = alpha && a < 1.0 ? (float)(a * v + (1.0 - a)) : (float)v;
            }
        }
    }
}

/* Decode with r's source set up; called once per png_struct (setjmp lives here). */
static advex_status decode(png_reader *r, float **x, int64_t *c, int64_t *h, int64_t *w) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", r->what);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(r->buf); free(r->rows); free(r->out);
        if (r->status == ADVEX_ERR_LIMIT) return advex_set_error(ADVEX_ERR_LIMIT, "%s: %s", r->what, r->msg);
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: %s: %s", r->what, r->pixels ? "bad PNG data" : "not a readable PNG",
                               r->msg);
    }
    if (r->mem) png_set_read_fn(png, r, mem_read);
    else png_set_read_fn(png, r, file_read);
    png_set_user_limits(png, 1u << 26, 1u << 26);
    png_set_chunk_cache_max(png, 16);
    png_set_chunk_malloc_max(png, 1u << 20);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, skip_chunks, (int)(sizeof skip_chunks / 5));
    png_read_info(png, info);
    png_uint_32 pw = png_get_image_width(png, info), ph = png_get_image_height(png, info);
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    int64_t maxpx = r->lim && r->lim->max_pixels > 0 ? r->lim->max_pixels : ADVEX_IMAGE_MAX_PIXELS;
    if (pw == 0 || ph == 0 || (int64_t)pw * (int64_t)ph > maxpx) {
        snprintf(r->msg, sizeof r->msg, "PNG of %ux%u pixels (at most %lld pixels)", (unsigned)pw, (unsigned)ph,
                 (long long)maxpx);
        r->status = ADVEX_ERR_LIMIT;
        png_longjmp(png, 1);
    }
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (r->lim) { /* PIL: 16-bit samples keep their high byte; alpha and tRNS are dropped */
        png_set_strip_16(png);
        png_set_strip_alpha(png);
    } else {
        if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
        if (depth == 16 && advex_host_is_le()) png_set_swap(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int chans = png_get_channels(png, info), odepth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    int ch = (type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    if ((odepth != 8 && odepth != 16) || chans < 1 || chans > 4 || rowbytes != (size_t)pw * (size_t)chans * (size_t)(odepth / 8) ||
        (r->lim && (chans != ch || odepth != 8))) {
        snprintf(r->msg, sizeof r->msg, "unexpected PNG layout (%d channels of %d bits)", chans, odepth);
        png_longjmp(png, 1);
    }
    int64_t npx = (int64_t)pw * (int64_t)ph, need = (int64_t)rowbytes * ph + (int64_t)ph * (int64_t)sizeof(png_bytep);
    if (r->lim && r->lim->max_bytes < need) {
        char a[32];
        snprintf(r->msg, sizeof r->msg, "decoding this %ux%u image needs %s, over the memory limit (--max-memory)",
                 (unsigned)pw, (unsigned)ph, advex_fmt_bytes(need, a));
        r->status = ADVEX_ERR_LIMIT;
        png_longjmp(png, 1);
    }
    r->pixels = 1;
    r->buf = malloc(rowbytes * ph);
    r->rows = malloc(ph * sizeof *r->rows);
    if (!r->lim) r->out = malloc((size_t)(npx * ch) * sizeof(float));
    if (!r->buf || !r->rows || (!r->lim && !r->out)) {
        snprintf(r->msg, sizeof r->msg, "out of memory for a %ux%u image", (unsigned)pw, (unsigned)ph);
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < ph; y++) r->rows[y] = r->buf + (size_t)y * rowbytes;
    png_read_image(png, r->rows);
    png_destroy_read_struct(&png, &info, NULL);
    if (r->lim) { /* the rows are the interleaved 8-bit image */
        free(r->rows);
        *r->img8 = (advex_img8){r->buf, pw, ph, ch};
        return ADVEX_OK;
    }
    to_planar(r, ph, pw, chans, odepth, ch, r->out);
    free(r->rows);
    free(r->buf);
    *x = r->out;
    *c = ch;
    *h = ph;
    *w = pw;
    return ADVEX_OK;
}

advex_status advex_png_decode(const void *data, size_t n, float **x, int64_t *c, int64_t *h, int64_t *w) {
    if (!data || n == 0) return advex_set_error(ADVEX_ERR_FORMAT, "PNG: empty input");
    png_reader r;
    memset(&r, 0, sizeof r);
    r.what = "PNG";
    r.mem = data;
    r.n = n;
    return decode(&r, x, c, h, w);
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
    png_reader r;
    memset(&r, 0, sizeof r);
    r.what = path;
    r.fp = f;
    advex_status st = decode(&r, x, c, h, w);
    fclose(f);
    return st;
}

advex_status advex_png_decode8(const char *what, const void *buf, size_t n, FILE *fp, const advex_decode_limits *lim,
                               advex_img8 *out) {
    memset(out, 0, sizeof *out);
    png_reader r;
    memset(&r, 0, sizeof r);
    r.what = what;
    r.mem = fp ? NULL : buf;
    r.n = n;
    r.fp = fp;
    r.lim = lim;
    r.img8 = out;
    float *unused = NULL;
    int64_t c, h, w;
    if (!fp && (!buf || n == 0)) return advex_set_error(ADVEX_ERR_FORMAT, "%s: empty PNG", what);
    return decode(&r, &unused, &c, &h, &w);
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
