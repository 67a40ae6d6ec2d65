/* JPEG through libjpeg-turbo, decoded the way PIL decodes it (the same library: islow integer
 * IDCT, fancy upsampling, libjpeg's own YCbCr -> RGB; CMYK inverted as Adobe writes it, then
 * PIL's CMYK -> RGB), so torchvision's ImageFolder and advex see the same bytes. Hostile input:
 * the size is checked after the header and before any pixel memory, a truncated file is an
 * error (PIL's "image file is truncated"), progressive files are limited in scans and
 * corrupt-data warnings are counted and capped. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "data_internal.h"

#define JPEG_MAX_SCANS 1000    /* progressive scans (libjpeg-turbo's advice against scan bombs) */
#define JPEG_MAX_WARNINGS 1000 /* corrupt-data warnings before giving up */

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 64];
    advex_status status;
    int warnings;
} jpeg_err;

static void on_error_exit(j_common_ptr ci) {
    jpeg_err *e = (jpeg_err *)(void *)ci->err;
    char m[JMSG_LENGTH_MAX];
    (*ci->err->format_message)(ci, m);
    snprintf(e->msg, sizeof e->msg, "%s", m);
    longjmp(e->jb, 1);
}

/* Warnings (level -1) go on up to a cap, as PIL lets them; the end of the data before the
 * image is complete is an error. Trace messages (level >= 0) are dropped. Nothing printed. */
static void on_emit(j_common_ptr ci, int level) {
    jpeg_err *e = (jpeg_err *)(void *)ci->err;
    if (level >= 0) return;
    if (ci->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(e->msg, sizeof e->msg, "truncated JPEG data (the file ends before the image does)");
        longjmp(e->jb, 1);
    }
    if (++e->warnings > JPEG_MAX_WARNINGS) {
        snprintf(e->msg, sizeof e->msg, "corrupt JPEG data (more than %d warnings)", JPEG_MAX_WARNINGS);
        longjmp(e->jb, 1);
    }
}

static void on_progress(j_common_ptr ci) {
    j_decompress_ptr d = (j_decompress_ptr)ci;
    jpeg_err *e = (jpeg_err *)(void *)ci->err;
    if (ci->is_decompressor && d->input_scan_number > JPEG_MAX_SCANS) {
        snprintf(e->msg, sizeof e->msg, "progressive JPEG with more than %d scans", JPEG_MAX_SCANS);
        e->status = ADVEX_ERR_LIMIT;
        longjmp(e->jb, 1);
    }
}

/* PIL's CMYK -> RGB (Convert.c cmyk2rgb): v = (255 - k) - (c * (255 - k)) / 255, rounded as
 * MULDIV255; the input is Adobe's inverted CMYK ("CMYK;I"). */
static void cmyk_to_rgb(const uint8_t *in, int64_t n, uint8_t *out) {
    for (int64_t i = 0; i < n; i++) {
        int nk = in[4 * i + 3]; /* 255 - k, k = 255 - raw */
        for (int k = 0; k < 3; k++) {
            int t = (255 - in[4 * i + k]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[3 * i + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

typedef struct jpeg_job {
    struct jpeg_decompress_struct ci;
    jpeg_err err;
    struct jpeg_progress_mgr prog;
    uint8_t *raw; /* (h, w, components) as libjpeg writes it */
    int pixels;   /* past the header */
} jpeg_job;

/* The header, the limits and the scanlines; the setjmp lives in the caller. */
static void run(jpeg_job *j, const char *what, const advex_decode_limits *lim) {
    struct jpeg_decompress_struct *ci = &j->ci;
    jpeg_read_header(ci, TRUE);
    int comps = ci->num_components;
    if (comps == 1) ci->out_color_space = JCS_GRAYSCALE;
    else if (comps == 3) ci->out_color_space = JCS_RGB;
    else if (comps == 4) ci->out_color_space = JCS_CMYK; /* YCCK too: libjpeg converts it */
    else {
        snprintf(j->err.msg, sizeof j->err.msg, "JPEG with %d colour components (1, 3 or 4 supported)", comps);
        longjmp(j->err.jb, 1);
    }
    ci->dct_method = JDCT_ISLOW; /* PIL's (and libjpeg's) defaults, set so they cannot drift */
    ci->do_fancy_upsampling = TRUE;
    ci->do_block_smoothing = TRUE;
    int64_t w = ci->image_width, h = ci->image_height, maxpx = lim && lim->max_pixels > 0 ? lim->max_pixels
                                                                                          : ADVEX_IMAGE_MAX_PIXELS;
    if (w <= 0 || h <= 0 || w * h > maxpx) {
        snprintf(j->err.msg, sizeof j->err.msg, "JPEG of %lldx%lld pixels (at most %lld pixels)", (long long)w,
                 (long long)h, (long long)maxpx);
        j->err.status = ADVEX_ERR_LIMIT;
        longjmp(j->err.jb, 1);
    }
    /* what the decode holds: the raw pixels, an RGB copy of CMYK, and for progressive (or
     * multi-scan) files libjpeg's whole-image coefficient buffer, 2 bytes a sample */
    int64_t coef = jpeg_has_multiple_scans(ci) ? w * h * comps * 2 + ((int64_t)1 << 20) : 0;
    int64_t need = w * h * comps + (comps == 4 ? w * h * 3 : 0) + coef;
    if (lim && lim->max_bytes < need) {
        char a[32];
        snprintf(j->err.msg, sizeof j->err.msg, "decoding this %lldx%lld image needs %s, over the memory limit "
                 "(--max-memory)", (long long)w, (long long)h, advex_fmt_bytes(need, a));
        j->err.status = ADVEX_ERR_LIMIT;
        longjmp(j->err.jb, 1);
    }
    ci->mem->max_memory_to_use = (long)(coef + ((int64_t)32 << 20)); /* beyond: libjpeg fails (no backing store) */
    (void)what;
    jpeg_start_decompress(ci);
    j->pixels = 1;
    int oc = ci->output_components;
    if ((int64_t)ci->output_width != w || (int64_t)ci->output_height != h || oc != (comps == 1 ? 1 : comps == 3 ? 3 : 4)) {
        snprintf(j->err.msg, sizeof j->err.msg, "unexpected JPEG output (%ux%u, %d components)", ci->output_width,
                 ci->output_height, oc);
        longjmp(j->err.jb, 1);
    }
    j->raw = malloc((size_t)(w * h * oc));
    if (!j->raw) {
        snprintf(j->err.msg, sizeof j->err.msg, "out of memory for a %lldx%lld image", (long long)w, (long long)h);
        j->err.status = ADVEX_ERR_NOMEM;
        longjmp(j->err.jb, 1);
    }
    while (ci->output_scanline < ci->output_height) {
        JSAMPROW row = j->raw + (int64_t)ci->output_scanline * w * oc;
        if (jpeg_read_scanlines(ci, &row, 1) != 1) {
            snprintf(j->err.msg, sizeof j->err.msg, "truncated JPEG data");
            longjmp(j->err.jb, 1);
        }
    }
    jpeg_finish_decompress(ci);
}

advex_status advex_jpeg_decode8(const char *what, const void *buf, size_t n, FILE *fp, const advex_decode_limits *lim,
                                advex_img8 *out) {
    memset(out, 0, sizeof *out);
    if (!fp && (!buf || n == 0)) return advex_set_error(ADVEX_ERR_FORMAT, "%s: empty JPEG", what);
    jpeg_job *j = calloc(1, sizeof *j); /* one block: nothing setjmp could clobber lives on the stack */
    if (!j) return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", what);
    j->ci.err = jpeg_std_error(&j->err.pub);
    j->err.pub.error_exit = on_error_exit;
    j->err.pub.emit_message = on_emit;
    j->err.status = ADVEX_ERR_FORMAT;
    j->prog.progress_monitor = on_progress;
    if (setjmp(j->err.jb)) {
        advex_status st = j->err.status;
        const char *pre = st == ADVEX_ERR_FORMAT ? (j->pixels ? "bad JPEG data: " : "not a readable JPEG: ") : "";
        st = advex_set_error(st, "%s: %s%s", what, pre, j->err.msg);
        jpeg_destroy_decompress(&j->ci);
        free(j->raw);
        free(j);
        return st;
    }
    jpeg_create_decompress(&j->ci);
    j->ci.progress = &j->prog;
    if (fp) jpeg_stdio_src(&j->ci, fp);
    else jpeg_mem_src(&j->ci, (const unsigned char *)buf, (unsigned long)n);
    run(j, what, lim);
    int64_t w = j->ci.output_width, h = j->ci.output_height;
    int comps = j->ci.output_components;
    jpeg_destroy_decompress(&j->ci);
    if (comps == 4) { /* PIL: CMYK (inverted, as Adobe writes it) -> RGB */
        uint8_t *rgb = malloc((size_t)(w * h * 3));
        if (!rgb) {
            free(j->raw);
            free(j);
            return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", what);
        }
        cmyk_to_rgb(j->raw, w * h, rgb);
        free(j->raw);
        j->raw = rgb;
        comps = 3;
    }
    *out = (advex_img8){j->raw, w, h, comps};
    free(j);
    return ADVEX_OK;
}

/* 8 bits -> float (C, H, W) for the public readers. */
static advex_status to_float(advex_status st, advex_img8 *im, float **x, int64_t *c, int64_t *h, int64_t *w) {
    if (st) return st;
    float *f = malloc((size_t)(im->w * im->h * im->c) * sizeof(float));
    if (!f) {
        advex_img8_free(im);
        return advex_set_error(ADVEX_ERR_NOMEM, "out of memory for a %lldx%lld image", (long long)im->w,
                               (long long)im->h);
    }
    advex_img8_to_planar(im, f);
    *x = f;
    *c = im->c;
    *h = im->h;
    *w = im->w;
    advex_img8_free(im);
    return ADVEX_OK;
}

advex_status advex_jpeg_decode(const void *buf, size_t n, float **x, int64_t *c, int64_t *h, int64_t *w) {
    if (!x || !c || !h || !w) return advex_set_error(ADVEX_ERR_ARG, "advex_jpeg_decode: NULL output");
    *x = NULL;
    advex_img8 im;
    advex_decode_limits lim = {ADVEX_IMAGE_MAX_PIXELS, INT64_MAX};
    return to_float(advex_jpeg_decode8("JPEG", buf, n, NULL, &lim, &im), &im, x, c, h, w);
}

advex_status advex_jpeg_read(const char *path, float **x, int64_t *c, int64_t *h, int64_t *w) {
    if (!path || !x || !c || !h || !w) return advex_set_error(ADVEX_ERR_ARG, "advex_jpeg_read: NULL argument");
    *x = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return advex_data_errno(path, errno);
    unsigned char sig[3];
    if (fread(sig, 1, 3, f) != 3 || sig[0] != 0xff || sig[1] != 0xd8 || sig[2] != 0xff) {
        fclose(f);
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: not a JPEG file (bad signature)", path);
    }
    rewind(f);
    advex_img8 im;
    advex_decode_limits lim = {ADVEX_IMAGE_MAX_PIXELS, INT64_MAX};
    advex_status st = advex_jpeg_decode8(path, NULL, 0, f, &lim, &im);
    fclose(f);
    return to_float(st, &im, x, c, h, w);
}
