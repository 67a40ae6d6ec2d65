/* CIFAR-10's binary version (cifar-10-batches-bin): records of 1 label byte and 3072 pixel
 * bytes (R, G, B planes of 32x32, rows top to bottom), 10000 to a file: data_batch_1..5.bin
 * (training, in that order) and test_batch.bin. Read in bounded chunks, only the first
 * `limit` records; sizes, labels and the memory the kept examples need checked first. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"

const char *const advex_cifar10_classes[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                               "dog",      "frog",       "horse", "ship", "truck"};

#define CIFAR_PIX 3072
#define CIFAR_REC (1 + CIFAR_PIX)
#define CIFAR_CHUNK 256 /* records per read */
#define CIFAR_FILES 5

typedef struct cifar_src {
    char *path[CIFAR_FILES];
    int64_t records[CIFAR_FILES];
    int nfiles;
} cifar_src;

static void src_free(cifar_src *s) {
    for (int i = 0; i < s->nfiles; i++) free(s->path[i]);
    s->nfiles = 0;
}

/* The size of one batch file, as whole records. */
static advex_status batch_size(const char *path, int64_t *records) {
    struct stat st;
    if (stat(path, &st) != 0) return advex_data_errno(path, errno);
    if (!S_ISREG(st.st_mode)) return advex_set_error(ADVEX_ERR_IO, "%s: not a regular file", path);
    int64_t size = (int64_t)st.st_size;
    if (size == 0) return advex_set_error(ADVEX_ERR_FORMAT, "%s: empty file (no CIFAR-10 records)", path);
    if (size % CIFAR_REC != 0)
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: %lld bytes is not a whole number of %d-byte CIFAR-10 records "
                               "(1 label byte + 3072 pixel bytes; %lld whole records and %lld bytes over: truncated "
                               "or not a CIFAR-10 binary batch)", path, (long long)size, CIFAR_REC,
                               (long long)(size / CIFAR_REC), (long long)(size % CIFAR_REC));
    *records = size / CIFAR_REC;
    return ADVEX_OK;
}

/* rest: "DIR[:train|:test]", "train", "test" or "" (the last three with data_dir). */
static advex_status locate(const char *rest, const char *default_split, const char *data_dir, cifar_src *s) {
    const char *split = NULL;
    size_t dlen = strlen(rest);
    if (strcmp(rest, "train") == 0 || strcmp(rest, "test") == 0) { split = rest; dlen = 0; }
    else if (dlen > 6 && strcmp(rest + dlen - 6, ":train") == 0) { split = "train"; dlen -= 6; }
    else if (dlen > 5 && strcmp(rest + dlen - 5, ":test") == 0) { split = "test"; dlen -= 5; }
    if (!split) split = default_split && strcmp(default_split, "train") == 0 ? "train" : "test";
    const char *dir = rest;
    if (dlen == 0) {
        if (!data_dir || !*data_dir)
            return advex_set_error(ADVEX_ERR_ARG, "cifar10: no directory: give cifar10:DIR[:train|:test] (the "
                                   "cifar-10-batches-bin folder) or a data directory");
        dir = data_dir;
        dlen = strlen(data_dir);
    }
    struct stat st;
    char *d = malloc(dlen + 1);
    if (!d) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    memcpy(d, dir, dlen);
    d[dlen] = '\0';
    advex_status r = ADVEX_OK;
    if (stat(d, &st) != 0) r = advex_set_error(ADVEX_ERR_IO, "cifar10: %s: %s", d, strerror(errno));
    else if (!S_ISDIR(st.st_mode)) r = advex_set_error(ADVEX_ERR_IO, "cifar10: %s: not a directory", d);
    int n = strcmp(split, "train") == 0 ? CIFAR_FILES : 1;
    for (int i = 0; i < n && !r; i++) {
        char name[32];
        if (n == 1) snprintf(name, sizeof name, "test_batch.bin");
        else snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        size_t len = dlen + 1 + strlen(name) + 1;
        if (!(s->path[i] = malloc(len))) { r = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); break; }
        snprintf(s->path[i], len, "%s/%s", d, name);
        s->nfiles = i + 1;
        r = batch_size(s->path[i], &s->records[i]);
    }
    free(d);
    return r;
}

/* Records [0, keep) of the files in order into d (already sized), through the plan. */
static advex_status read_records(const cifar_src *s, int64_t keep, const advex_prep_plan_t *pl, advex_dataset *d) {
    unsigned char *buf = malloc((size_t)CIFAR_CHUNK * CIFAR_REC);
    if (!buf) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    int64_t done = 0, dim = 3 * pl->oh * pl->ow;
    int prep = pl->rh > 0 || pl->ch > 0;
    advex_status st = ADVEX_OK;
    for (int fi = 0; fi < s->nfiles && done < keep && !st; fi++) {
        FILE *f = fopen(s->path[fi], "rb");
        if (!f) { st = advex_data_errno(s->path[fi], errno); break; }
        for (int64_t r = 0; r < s->records[fi] && done < keep && !st;) {
            int64_t want = s->records[fi] - r, left = keep - done;
            if (want > left) want = left;
            if (want > CIFAR_CHUNK) want = CIFAR_CHUNK;
            size_t got = fread(buf, CIFAR_REC, (size_t)want, f);
            if ((int64_t)got != want) {
                st = ferror(f) ? advex_data_errno(s->path[fi], errno)
                               : advex_set_error(ADVEX_ERR_FORMAT, "%s: truncated: ends within record %lld",
                                                 s->path[fi], (long long)(r + (int64_t)got));
                break;
            }
            for (int64_t k = 0; k < want && !st; k++, r++, done++) {
                const unsigned char *rec = buf + k * CIFAR_REC;
                if (rec[0] > 9) {
                    st = advex_set_error(ADVEX_ERR_FORMAT, "%s: record %lld has label %d (CIFAR-10 labels are 0..9)",
                                         s->path[fi], (long long)r, rec[0]);
                    break;
                }
                d->y[done] = rec[0];
                if (!prep) { /* the planes are already (C, H, W) */
                    advex_u8_to_unit(d->x + done * dim, rec + 1, CIFAR_PIX);
                    continue;
                }
                advex_img8 im = {malloc(CIFAR_PIX), 32, 32, 3};
                if (!im.px) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); break; }
                for (int p = 0; p < 1024; p++)
                    for (int c = 0; c < 3; c++) im.px[3 * p + c] = rec[1 + c * 1024 + p];
                st = advex_img8_prepare(&im, pl, 3, d->x + done * dim);
                advex_img8_free(&im);
            }
        }
        fclose(f);
    }
    free(buf);
    return st;
}

advex_status advex_cifar10_load(const char *rest, const char *default_split, const char *data_dir, int64_t limit,
                                const advex_data_expect *want, const advex_data_prep *prep, advex_dataset *d) {
    cifar_src s;
    memset(&s, 0, sizeof s);
    advex_status st = locate(rest, default_split, data_dir, &s);
    int64_t total = 0, keep;
    advex_prep_plan_t pl;
    for (int i = 0; i < s.nfiles && !st; i++) total += s.records[i];
    if (!st) st = advex_prep_plan(32, 32, prep, NULL, 0, &pl);
    if (st) { src_free(&s); return st; }
    if (want && ((want->c && want->c != 3) || (want->h && want->h != pl.oh) || (want->w && want->w != pl.ow))) {
        st = advex_set_error(ADVEX_ERR_SHAPE, "%s: images are 3x%lldx%lld%s but the model expects %lldx%lldx%lld%s",
                             s.path[0], (long long)pl.oh, (long long)pl.ow, prep && (prep->resize || prep->crop) ?
                             " after --resize/--crop" : "", (long long)want->c, (long long)want->h, (long long)want->w,
                             want->c == 3 ? " (pass --resize S --crop C)" : "");
        src_free(&s);
        return st;
    }
    keep = limit > 0 && limit < total ? limit : total;
    int64_t dim = 3 * pl.oh * pl.ow;
    st = advex_data_size_check(s.path[0], keep, dim * (int64_t)sizeof(float) + 4, "examples");
    if (!st) {
        d->x = malloc((size_t)(keep * dim) * sizeof(float));
        d->y = malloc((size_t)keep * sizeof(int32_t));
        if (!d->x || !d->y) st = advex_set_error(ADVEX_ERR_NOMEM, "%s: cannot allocate %lld examples", s.path[0],
                                                 (long long)keep);
    }
    if (!st) st = read_records(&s, keep, &pl, d);
    src_free(&s);
    if (st) return st;
    d->n = keep;
    d->c = 3;
    d->h = pl.oh;
    d->w = pl.ow;
    d->num_classes = 10;
    d->class_names = advex_cifar10_classes;
    return ADVEX_OK;
}
