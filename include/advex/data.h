/* Data sets: images as float32 (N, C, H, W) in [0,1] with int32 labels.
 * Sources: IDX (gzip or raw), NumPy .npy, and the named Fashion-MNIST set. */
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
    int64_t num_classes; /* 1 + max label (or the named set's count) */
    const char *const *class_names; /* static names for named sets, else NULL */
} advex_dataset;

/* Load from a spec string:
 *   "fashion-mnist" | "fashion-mnist:train" | "fashion-mnist:test"  (bare name: test)
 *   "npy:X.npy,Y.npy"       float32 (N,C,H,W) / (N,H,W) / uint8 (scaled 1/255);
 *                           labels int64/int32/uint8 (N)
 *   "idx:IMAGES,LABELS"     IDX files, gzip or raw
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

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
