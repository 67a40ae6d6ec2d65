/* Training checkpoints (docs/training.md): magic "ADVXCKPT", version, header of fixed-size
 * little-endian fields, the float arrays, the permutation, and a zlib crc32 trailer over all
 * preceding bytes. Written atomically (temporary file, fsync, rename). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/data_internal.h"
#include "train/train_internal.h"

static const char ckpt_magic[8] = {'A', 'D', 'V', 'X', 'C', 'K', 'P', 'T'};
#define CKPT_HEADER_BYTES 168u /* 8 magic + 4 version + 4 header bytes + 152 fields */

typedef struct wbuf { unsigned char *p; size_t n; } wbuf;
static void put(wbuf *b, const void *v, size_t n) { memcpy(b->p + b->n, v, n); b->n += n; }
static void put_i64(wbuf *b, int64_t v) { put(b, &v, 8); }
static void put_u32(wbuf *b, uint32_t v) { put(b, &v, 4); }

typedef struct rbuf { const unsigned char *p; size_t n, off; } rbuf;
static void get(rbuf *b, void *v, size_t n) { memcpy(v, b->p + b->off, n); b->off += n; }
static int64_t get_i64(rbuf *b) { int64_t v; get(b, &v, 8); return v; }

static size_t payload_bytes(const train_state *s) {
    return (size_t)(4 * s->n_params + 2 * s->n_consts) * sizeof(float) + (size_t)(2 * s->epochs) * sizeof(double) +
           (size_t)s->n_train * sizeof(int32_t);
}

static void put_rng(wbuf *b, const advex_rng *r) { for (int i = 0; i < 4; i++) put(b, &r->s[i], 8); }
static void get_rng(rbuf *b, advex_rng *r) { for (int i = 0; i < 4; i++) get(b, &r->s[i], 8); }

advex_status advex_ckpt_save(const char *path, const train_state *s) {
    if (!advex_host_is_le()) return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s: checkpoints need a little-endian host", path);
    size_t total = CKPT_HEADER_BYTES + payload_bytes(s) + 4;
    wbuf b = {malloc(total), 0};
    if (!b.p) return advex_set_error(ADVEX_ERR_NOMEM, "%s: cannot allocate %zu bytes for the checkpoint", path, total);
    put(&b, ckpt_magic, 8);
    put_u32(&b, ADVEX_CKPT_VERSION);
    put_u32(&b, CKPT_HEADER_BYTES);
    /* 19 x 8-byte fields */
    put_i64(&b, s->n_params);
    put_i64(&b, s->n_consts);
    put_i64(&b, s->n_train);
    put_i64(&b, s->batch);
    put_i64(&b, s->epochs);
    put_i64(&b, s->adv);
    put_i64(&b, (int64_t)s->seed);
    put_i64(&b, s->epochs_done);
    put_i64(&b, s->step);
    put_i64(&b, s->best_epoch);
    put_i64(&b, s->overfit);
    put_rng(&b, &s->rng);
    put_rng(&b, &s->model_rng);
    put(&b, s->hist, (size_t)(2 * s->epochs) * sizeof(double));
    const float *arr[6] = {s->params, s->m1, s->m2, s->best_params, s->consts, s->best_consts};
    for (int i = 0; i < 6; i++) put(&b, arr[i], (size_t)(i < 4 ? s->n_params : s->n_consts) * sizeof(float));
    put(&b, s->perm, (size_t)s->n_train * sizeof(int32_t));
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t o = 0; o < b.n;) { /* crc32 takes uInt lengths */
        uInt len = b.n - o > (1u << 30) ? (1u << 30) : (uInt)(b.n - o);
        crc = crc32(crc, b.p + o, len);
        o += len;
    }
    put_u32(&b, (uint32_t)crc);
    advex_afile f;
    advex_status st = advex_afile_open(&f, path);
    if (!st) st = advex_afile_write(&f, b.p, b.n);
    if (!st) st = advex_afile_commit(&f);
    free(b.p);
    return st;
}

#define CKPT_CHECK(field, want, what)                                                                       \
    if ((int64_t)(field) != (int64_t)(want))                                                                \
        { st = advex_set_error(ADVEX_ERR_ARG, "%s: checkpoint was written with %s %lld, this run has %lld "   \
                               "(resume needs the same settings)", path, what, (long long)(field),        \
                               (long long)(want)); goto done; }

advex_status advex_ckpt_load(const char *path, train_state *s) {
    advex_status st = ADVEX_OK;
    if (!advex_host_is_le()) return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s: checkpoints need a little-endian host", path);
    FILE *fp = fopen(path, "rb");
    if (!fp) return advex_set_error(ADVEX_ERR_IO, "%s: %s", path, strerror(errno));
    unsigned char *data = NULL;
    long len = -1;
    if (fseek(fp, 0, SEEK_END) == 0) len = ftell(fp);
    if (len < 0 || fseek(fp, 0, SEEK_SET) != 0) { fclose(fp); return advex_set_error(ADVEX_ERR_IO, "%s: cannot read", path); }
    size_t expect = CKPT_HEADER_BYTES + payload_bytes(s) + 4;
    if ((size_t)len < CKPT_HEADER_BYTES + 4) {
        fclose(fp);
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: not an advex checkpoint (%ld bytes, truncated?)", path, len);
    }
    data = malloc((size_t)len);
    if (!data) { fclose(fp); return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", path); }
    size_t got = fread(data, 1, (size_t)len, fp);
    fclose(fp);
    if (got != (size_t)len) { st = advex_set_error(ADVEX_ERR_IO, "%s: short read", path); goto done; }
    rbuf b = {data, (size_t)len, 0};
    char magic[8];
    uint32_t version, hbytes;
    get(&b, magic, 8);
    get(&b, &version, 4);
    get(&b, &hbytes, 4);
    if (memcmp(magic, ckpt_magic, 8) != 0) { st = advex_set_error(ADVEX_ERR_FORMAT, "%s: not an advex checkpoint (bad magic)", path); goto done; }
    if (version != ADVEX_CKPT_VERSION) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: checkpoint version %u, this advex reads version %u", path, version,
                             ADVEX_CKPT_VERSION);
        goto done;
    }
    if (hbytes != CKPT_HEADER_BYTES) { st = advex_set_error(ADVEX_ERR_FORMAT, "%s: corrupt checkpoint (header size %u)", path, hbytes); goto done; }
    uint32_t want_crc;
    memcpy(&want_crc, data + len - 4, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t o = 0; o < (size_t)len - 4;) {
        uInt l = (size_t)len - 4 - o > (1u << 30) ? (1u << 30) : (uInt)((size_t)len - 4 - o);
        crc = crc32(crc, data + o, l);
        o += l;
    }
    if ((uint32_t)crc != want_crc) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: corrupt checkpoint (crc32 %08x, expected %08x)", path, (unsigned)crc,
                             (unsigned)want_crc);
        goto done;
    }
    int64_t np = get_i64(&b), nc = get_i64(&b), ntr = get_i64(&b), batch = get_i64(&b), epochs = get_i64(&b),
            adv = get_i64(&b), seed = get_i64(&b);
    CKPT_CHECK(np, s->n_params, "parameters");
    CKPT_CHECK(nc, s->n_consts, "constants");
    CKPT_CHECK(ntr, s->n_train, "training examples");
    CKPT_CHECK(batch, s->batch, "batch");
    CKPT_CHECK(epochs, s->epochs, "epochs");
    CKPT_CHECK(adv, s->adv, "adversarial mode");
    CKPT_CHECK(seed, (int64_t)s->seed, "seed");
    if ((size_t)len != expect) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: corrupt checkpoint (%ld bytes, expected %zu)", path, len, expect);
        goto done;
    }
    s->epochs_done = (int32_t)get_i64(&b);
    s->step = get_i64(&b);
    s->best_epoch = (int32_t)get_i64(&b);
    s->overfit = (int32_t)get_i64(&b);
    if (s->epochs_done < 0 || s->epochs_done > s->epochs || s->step < 0 || s->best_epoch < 0 ||
        s->best_epoch > s->epochs_done) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: corrupt checkpoint (epoch %d of %d, step %lld)", path,
                             (int)s->epochs_done, (int)s->epochs, (long long)s->step);
        goto done;
    }
    get_rng(&b, &s->rng);
    get_rng(&b, &s->model_rng);
    get(&b, s->hist, (size_t)(2 * s->epochs) * sizeof(double));
    float *arr[6] = {s->params, s->m1, s->m2, s->best_params, s->consts, s->best_consts};
    for (int i = 0; i < 6; i++) get(&b, arr[i], (size_t)(i < 4 ? s->n_params : s->n_consts) * sizeof(float));
    get(&b, s->perm, (size_t)s->n_train * sizeof(int32_t));
    /* a checksum is no proof of sanity: NaN weights would resume as "training diverged" */
    static const char *const what[6] = {"weights", "first optimiser moments", "second optimiser moments",
                                        "best-epoch weights", "constants", "best-epoch constants"};
    for (int i = 0; i < 6; i++) {
        int64_t n = i < 4 ? s->n_params : s->n_consts, k = advex_find_nonfinite(arr[i], n);
        if (k < 0 && i == 2)
            for (int64_t j = 0; j < n && k < 0; j++) k = arr[i][j] < 0 ? j : -1;
        if (k >= 0) {
            st = advex_set_error(ADVEX_ERR_FORMAT, "%s: corrupt checkpoint: %s element %lld is %g (delete it or "
                                 "train without --resume)", path, what[i], (long long)k, (double)arr[i][k]);
            goto done;
        }
    }
    for (int64_t i = 0; i < s->n_train; i++)
        if (s->perm[i] < 0 || s->perm[i] >= s->n_train) {
            st = advex_set_error(ADVEX_ERR_FORMAT, "%s: corrupt checkpoint (permutation entry out of range)", path);
            goto done;
        }
done:
    free(data);
    return st;
}
