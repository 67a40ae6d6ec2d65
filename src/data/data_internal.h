/* Helpers shared by the data sources (src/data/): atomic file writing, little-endian
 * decoding, open-with-errno and value-range checks. Not installed; not public API. */
#ifndef ADVEX_DATA_INTERNAL_H
#define ADVEX_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

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

#endif
