/* Examples shared by two data sets (the same image, bit for bit): what `train` checks so
 * that a "test accuracy" is never measured on the training examples. Hashes each image of
 * one set, sorts the hashes, and looks every image of the other up, confirming candidates
 * with memcmp: O((na + nb) log na), no false positives. */
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

typedef struct row_hash {
    uint64_t h;
    int64_t i;
} row_hash;

/* FNV-1a over the image's bytes, then a final mix (64 bits: collisions only cost a memcmp). */
static uint64_t image_hash(const float *x, int64_t d) {
    const unsigned char *p = (const unsigned char *)x;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int64_t k = 0; k < d * (int64_t)sizeof(float); k++) h = (h ^ p[k]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

static int cmp_hash(const void *a, const void *b) {
    uint64_t x = ((const row_hash *)a)->h, y = ((const row_hash *)b)->h;
    return (x > y) - (x < y);
}

advex_status advex_dataset_overlap(const advex_dataset *a, const advex_dataset *b, int64_t *count) {
    *count = 0;
    if (!a || !b) return advex_set_error(ADVEX_ERR_ARG, "advex_dataset_overlap: NULL data set");
    if (a->c != b->c || a->h != b->h || a->w != b->w || a->n <= 0 || b->n <= 0) return ADVEX_OK;
    int64_t d = a->c * a->h * a->w;
    row_hash *ha = malloc((size_t)a->n * sizeof *ha);
    if (!ha) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (%lld image hashes)", (long long)a->n);
    for (int64_t i = 0; i < a->n; i++) ha[i] = (row_hash){image_hash(a->x + i * d, d), i};
    qsort(ha, (size_t)a->n, sizeof *ha, cmp_hash);
    for (int64_t j = 0; j < b->n; j++) {
        const float *xb = b->x + j * d;
        row_hash key = {image_hash(xb, d), 0};
        /* the first entry with this hash, then every entry that shares it */
        int64_t lo = 0, hi = a->n;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (ha[mid].h < key.h) lo = mid + 1; else hi = mid;
        }
        for (int64_t k = lo; k < a->n && ha[k].h == key.h; k++)
            if (memcmp(a->x + ha[k].i * d, xb, (size_t)d * sizeof(float)) == 0) {
                (*count)++;
                break;
            }
    }
    free(ha);
    return ADVEX_OK;
}
