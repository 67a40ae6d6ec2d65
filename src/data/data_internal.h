/* Helpers shared by the data sources (src/data/): atomic file writing, little-endian
 * decoding, open-with-errno and value-range checks. Not installed; not public API. */
#ifndef ADVEX_DATA_INTERNAL_H
#define ADVEX_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "internal.h"

/* Atomic writer: data goes to "<path>.tmp.XXXXXX" in the same directory; commit fsyncs
 * and renames it over path, abort (or any failed write) removes it. On failure nothing
 * is left at path that was not there before, and the error detail names path. A path that
 * exists and is not a regular file is refused (ADVEX_ERR_ARG), except the null device,
 * which is written to directly (tmp stays NULL). */
typedef struct advex_afile {
    int fd;           /* -1 once closed */
    char *tmp;        /* temporary name (owned), NULL once consumed */
    const char *path; /* final name (borrowed) */
} advex_afile;

advex_status advex_afile_open(advex_afile *f, const char *path);
/* Write all n bytes. On error the file is aborted (temp removed). */
advex_status advex_afile_write(advex_afile *f, const void *buf, size_t n);
/* fsync, close, rename over path, fsync the directory. On error the file is aborted. */
advex_status advex_afile_commit(advex_afile *f);
/* Close and remove the temporary file; safe to call twice. */
void advex_afile_abort(advex_afile *f);

/* 1 when the host stores integers little-endian (the .npy and in-memory layouts match). */
static inline int advex_host_is_le(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* dst[i] = src[i] / 255 exactly as float division rounds it (what torchvision's
 * ToTensor gives), through a 256-entry table. */
void advex_u8_to_unit(float *dst, const unsigned char *src, int64_t n);

/* Set an ADVEX_ERR_IO detail "path: strerror(err)" and return ADVEX_ERR_IO. */
advex_status advex_data_errno(const char *path, int err);

/* Check that all n floats are finite and in [0,1]; error (naming `what`) otherwise:
 * "what: element 17 is NaN" (ADVEX_ERR_NUMERIC) or "what: values outside [0,1]: ..."
 * (ADVEX_ERR_FORMAT). */
advex_status advex_data_check_unit(const char *what, const float *x, int64_t n);

/* Before reading a data set's body: `count` items (`what`: "examples") of `each` bytes (as loaded) must fit
 * under the memory cap (--max-memory, beside what the engine holds) and in this machine's
 * physical memory, else ADVEX_ERR_LIMIT naming path, the sizes and --limit. The data is
 * not counted against the cap afterwards. */
advex_status advex_data_size_check(const char *path, int64_t count, int64_t each, const char *what);

/* IDX images and labels (ypath may be NULL) checked header first (src/data/idx.c): fills
 * d->x, y, n, c, h, w with the first `limit` examples (0: all); *ymax gets the largest
 * label in the whole file. */
advex_status advex_idx_load_pair(const char *xpath, const char *ypath, int64_t limit, const advex_data_expect *want,
                                 advex_dataset *d, int *ymax);

/* ---- 8-bit images (src/data/resample.c, png.c, jpeg.c, images.c) ------------------------ */

/* An 8-bit image, pixels interleaved: h rows of w * c bytes, c 1 (grey) or 3 (RGB). */
typedef struct advex_img8 {
    uint8_t *px; /* owned */
    int64_t w, h;
    int c;
} advex_img8;
void advex_img8_free(advex_img8 *im);

/* Limits on one decode: pixels (width * height, at most ADVEX_IMAGE_MAX_PIXELS) and the bytes
 * the decoder may hold (its estimate; INT64_MAX: none). Over either: ADVEX_ERR_LIMIT naming
 * the file, before the pixels are allocated. */
typedef struct advex_decode_limits {
    int64_t max_pixels;
    int64_t max_bytes;
} advex_decode_limits;

/* PNG / JPEG to 8 bits as PIL's Image.open(...) then convert("RGB") or, grey images, "L" reads
 * them (grey stays c = 1; alpha and tRNS dropped; 16-bit samples keep their high byte).
 * `what` names the source in messages. */
advex_status advex_png_decode8(const char *what, const void *buf, size_t n, FILE *fp, const advex_decode_limits *lim,
                               advex_img8 *out);
advex_status advex_jpeg_decode8(const char *what, const void *buf, size_t n, FILE *fp, const advex_decode_limits *lim,
                                advex_img8 *out);
/* Bytes one decode may still take under the memory cap (--max-memory), beside `reserved`
 * bytes of data set already planned; INT64_MAX when there is no cap. */
int64_t advex_decode_budget(int64_t reserved);
/* A file, PNG or JPEG by its first bytes. */
advex_status advex_img8_read(const char *path, const advex_decode_limits *lim, advex_img8 *out);

/* Pillow's bilinear resize with antialiasing, bit for bit (Image.resize(..., BILINEAR)). */
advex_status advex_img8_resize(const advex_img8 *in, int64_t ow, int64_t oh, advex_img8 *out);
/* torchvision's CenterCrop to cw x ch (zero padding). */
advex_status advex_img8_crop(const advex_img8 *in, int64_t cw, int64_t ch, advex_img8 *out);
/* In place to c channels (1 or 3): PIL's convert("RGB") (replicate) or convert("L") (luma). */
advex_status advex_img8_channels(advex_img8 *im, int c);
/* (c, h, w) floats v / 255 into dst. */
void advex_img8_to_planar(const advex_img8 *im, float *dst);

/* torchvision's Resize(s) output size of an h x w image. */
void advex_resize_size(int64_t h, int64_t w, int64_t s, int64_t *oh, int64_t *ow);
/* What preprocessing does to an h x w image: resize to rh x rw (0: no resize), then crop to
 * ch x cw (0: no crop), giving oh x ow. can_fit: prep->fit applies (image files). */
typedef struct advex_prep_plan_t {
    int64_t rh, rw, ch, cw, oh, ow;
    int fitted;
} advex_prep_plan_t;
advex_status advex_prep_plan(int64_t h, int64_t w, const advex_data_prep *p, const advex_data_expect *want, int can_fit,
                             advex_prep_plan_t *pl);
/* An 8-bit image through the plan (resize, crop) to c channels, as floats into dst (c, oh, ow). */
advex_status advex_img8_prepare(advex_img8 *im, const advex_prep_plan_t *pl, int c, float *dst);

/* ---- sources (cifar.c, folder.c) -------------------------------------------------------- */

/* "DIR[:train|:test]" (or "train"/"test"/"" with data_dir). */
advex_status advex_cifar10_load(const char *rest, const char *default_split, const char *data_dir, int64_t limit,
                                const advex_data_expect *want, const advex_data_prep *prep, advex_dataset *d);
/* "DIR[,LIST]". */
advex_status advex_folder_load(const char *rest, int64_t limit, const advex_data_expect *want,
                               const advex_data_prep *prep, advex_dataset *d);
/* Float data already loaded (npy, idx) through resize / crop (no fit). */
advex_status advex_dataset_prep_float(advex_dataset *d, const char *what, const advex_data_prep *prep);

#endif
