/* Data sets: images as float32 (N, C, H, W) in [0,1] with int32 labels.
 * Sources: IDX (gzip or raw), NumPy .npy, the named Fashion-MNIST set, CIFAR-10's binary
 * batches and folders of PNG/JPEG images (torchvision's ImageFolder layout), with
 * torchvision's Resize/CenterCrop preprocessing (docs/data.md). */
#ifndef ADVEX_DATA_H
#define ADVEX_DATA_H

#include <stdint.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif
ADVEX_API_BEGIN

typedef struct advex_dataset {
    float *x;            /* (n, c, h, w), values in [0,1]; owned */
    int32_t *y;          /* (n) labels in [0, num_classes); owned; NULL if unlabelled */
    int64_t n, c, h, w;
    int64_t num_classes; /* 1 + max label (or the named set's count, or the folder's classes) */
    const char *const *class_names; /* named sets: static names; folder: the sub-folder names; else NULL */
    int64_t fitted;      /* images resized and cropped to the consumer's size (advex_data_prep.fit) */
    int names_owned;     /* internal: class_names is one block advex_dataset_free frees */
} advex_dataset;

/* Load from a spec string:
 *   "fashion-mnist" | "fashion-mnist:train" | "fashion-mnist:test"  (bare name: test)
 *   "npy:X.npy,Y.npy"       float32 (N,C,H,W) / (N,H,W) / uint8 (scaled 1/255);
 *                           labels int64/int32/uint8 (N)
 *   "idx:IMAGES,LABELS"     IDX files, gzip or raw
 *   "cifar10:DIR[:train|:test]"  CIFAR-10 binary batches in DIR (data_batch_1..5.bin,
 *                           test_batch.bin), 3x32x32; "cifar10[:train|:test]" reads data_dir
 *   "folder:DIR[,LIST]"     DIR/<class>/.../<image>.png|.jpg: labels are the positions of the
 *                           class sub-folders sorted by name, files in sorted order (torchvision's
 *                           ImageFolder); LIST: only the images it names ("class/file" per line,
 *                           relative to DIR), in its order (RobustBench's ImageNet list)
 * data_dir: where the named set lives (NULL: $ADVEX_DATA, then
 * /usr/share/datasets/fashion-mnist). limit > 0 keeps the first `limit` examples. */
advex_status advex_dataset_load(const char *spec, const char *data_dir, int64_t limit,
                                advex_dataset *out);
/* advex_dataset_load where a named set given without a split ("fashion-mnist") means its
 * `default_split` ("train" or "test"; NULL: "test"). Training takes a bare name as the
 * training split, evaluation as the test split. */
advex_status advex_dataset_load_split(const char *spec, const char *default_split, const char *data_dir,
                                      int64_t limit, advex_dataset *out);

/* What the consumer of a data set takes (a zero field: anything). */
typedef struct advex_data_expect {
    int64_t c, h, w;   /* image shape */
    int64_t classes;   /* labels must be in [0, classes) */
} advex_data_expect;
/* advex_dataset_load_split, checking the data against `want` (may be NULL) with errors that name
 * the file: "x.npy: images are 1x32x32 but the model expects 1x28x28", "y.npy: label 12
 * of example 3 is outside the model's 10 classes". IDX headers are checked before their
 * (possibly gzip-compressed) data is read, and only the first `limit` examples are
 * inflated. Every source checks the size of what it keeps against the memory cap
 * (advex_set_memory_limit) and the machine's memory first. */
advex_status advex_dataset_load_expect(const char *spec, const char *default_split, const char *data_dir,
                                       int64_t limit, const advex_data_expect *want, advex_dataset *out);
void advex_dataset_free(advex_dataset *d);

/* Preprocessing while loading, as torchvision's Resize(S) then CenterCrop(C) on PIL images
 * (a zeroed struct changes nothing):
 *   resize  > 0: the shorter side becomes `resize`, the longer int(resize * long / short);
 *           bilinear with PIL's antialiasing (8-bit sources exactly as Pillow, float sources the
 *           same filter in float)
 *   crop    > 0: the centre crop x crop (zero padding where the image is smaller)
 *   fit     folder images, when resize and crop are 0: an image whose size is not want's h x w
 *           gets its shorter side resized to max(h, w) and is centre-cropped to h x w (the
 *           count is in advex_dataset.fitted) */
typedef struct advex_data_prep {
    int64_t resize;
    int64_t crop;
    int fit;
} advex_data_prep;
/* advex_dataset_load_expect with preprocessing (prep may be NULL). Image files are decoded one
 * at a time; the data set they make (n x c x h x w floats) and each decode are checked against
 * the memory cap first. Folder images have 3 channels (PIL's convert("RGB")), or 1 when want->c
 * is 1 (PIL's convert("L")). */
advex_status advex_dataset_load_prep(const char *spec, const char *default_split, const char *data_dir,
                                     int64_t limit, const advex_data_expect *want, const advex_data_prep *prep,
                                     advex_dataset *out);

/* Examples of b whose image is also in a, bit for bit (*count, 0..b->n); 0 when the image
 * shapes differ. For "is this test set really held out?". */
advex_status advex_dataset_overlap(const advex_dataset *a, const advex_dataset *b, int64_t *count);

/* IDX reader: images (N, 1, H, W) scaled to [0,1] or labels. Gzip detected by magic. */
advex_status advex_idx_load_images(const char *path, float **x, int64_t *n, int64_t *h,
                                   int64_t *w);
advex_status advex_idx_load_labels(const char *path, int32_t **y, int64_t *n);

/* .npy reading: float32 data as-is, uint8 scaled by 1/255; int types converted to float.
 * Returns the shape. Any other dtype, Fortran order or a bad header is an error. */
advex_status advex_npy_load_f32(const char *path, float **data, int *ndim, int64_t dims[6]);
/* Labels: int64, int32, uint8 (1-D). */
advex_status advex_npy_load_labels(const char *path, int32_t **y, int64_t *n);
/* Write float32 C-order .npy atomically (temporary name, then rename). */
advex_status advex_npy_save_f32(const char *path, const float *data, int ndim,
                                const int64_t *dims);
/* Write n bytes to path atomically: a temporary file beside it, fsync, rename (an existing
 * non-regular file other than /dev/null is refused). On failure nothing is left at path
 * that was not there before. */
advex_status advex_write_file(const char *path, const void *data, size_t n);
/* Write int32 labels (1-D) as .npy atomically. */
advex_status advex_npy_save_i32(const char *path, const int32_t *data, int64_t n);

/* Fashion-MNIST class names (10). */
extern const char *const advex_fashion_mnist_classes[10];
/* CIFAR-10 class names (10): airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck. */
extern const char *const advex_cifar10_classes[10];

/* ---- image files ------------------------------------------------------------------------ */

/* Largest image the readers decode (width * height), against decompression bombs. */
#define ADVEX_IMAGE_MAX_PIXELS ((int64_t)1 << 26)

/* JPEG (libjpeg-turbo, decoded as PIL does: islow IDCT, fancy upsampling) as float32 (C, H, W)
 * in [0,1]: C = 1 for greyscale JPEGs, else 3 (CMYK converted as PIL does). *x is malloc'd.
 * A truncated file is an error. */
advex_status advex_jpeg_read(const char *path, float **x, int64_t *c, int64_t *h, int64_t *w);
advex_status advex_jpeg_decode(const void *buf, size_t n, float **x, int64_t *c, int64_t *h, int64_t *w);
/* PNG or JPEG, told apart by content: as advex_png_read / advex_jpeg_read. */
advex_status advex_image_read(const char *path, float **x, int64_t *c, int64_t *h, int64_t *w);
/* One image file (PNG or JPEG) as the folder source reads it, preprocessed (prep may be NULL;
 * prep->fit applies), with want->c channels (1 or 3; 0: 3): *x is malloc'd (c, h, w);
 * *fitted is 1 when prep->fit resized it. */
advex_status advex_image_load(const char *path, const advex_data_expect *want, const advex_data_prep *prep,
                              float **x, int64_t *c, int64_t *h, int64_t *w, int *fitted);
/* Resample float (c, h, w) to (c, h_out, w_out) with PIL's antialiased bilinear filter (what
 * torchvision's Resize does on a PIL image, without the 8-bit rounding); results clipped to
 * [0,1]. dst holds c*h_out*w_out floats. */
advex_status advex_image_resize(const float *src, int64_t c, int64_t h, int64_t w, int64_t h_out, int64_t w_out,
                                float *dst);
/* torchvision's CenterCrop of float (c, h, w) to (c, h_out, w_out): zero padding where the
 * crop is larger; offsets round half to even as Python's round() does. */
void advex_image_center_crop(const float *src, int64_t c, int64_t h, int64_t w, int64_t h_out, int64_t w_out,
                             float *dst);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
