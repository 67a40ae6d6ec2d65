/* IDX reader (the MNIST / Fashion-MNIST format), gzip-compressed or raw: zlib's gzread
 * passes uncompressed files through. Images (u8, N x H x W) become float (N,1,H,W)/255;
 * label files (u8, N) become int32. Hostile headers are rejected before allocation. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data_internal.h"

#define IDX_MAGIC_IMAGES 0x00000803u /* type u8, 3 dims */
#define IDX_MAGIC_LABELS 0x00000801u /* type u8, 1 dim */
#define IDX_MAX_N 100000000LL        /* 1e8 examples */
#define IDX_MAX_HW 65536LL
#define IDX_CHUNK (1u << 20)         /* bytes per gzread */

typedef struct idx_file {
    gzFile gz;
    const char *path;
} idx_file;

static advex_status idx_open(idx_file *f, const char *path) {
    f->gz = NULL;
    f->path = path;
    if (!path || !*path) return advex_set_error(ADVEX_ERR_ARG, "empty IDX file name");
    /* open() ourselves so a missing file reports errno reliably. */
    int fd = open(path, O_RDONLY);
    if (fd < 0) return advex_data_errno(path, errno);
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return advex_data_errno(path, EISDIR);
    }
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        close(fd);
        return advex_set_error(ADVEX_ERR_NOMEM, "%s: cannot start zlib reader", path);
    }
    gzbuffer(f->gz, 256u * 1024u);
    return ADVEX_OK;
}

static void idx_close(idx_file *f) {
    if (f->gz) gzclose(f->gz);
    f->gz = NULL;
}

/* Read up to n bytes; returns the count read (< n only at end of data) or -1 after
 * setting an error (corrupt gzip stream, read error). */
static int64_t idx_read(idx_file *f, void *buf, size_t n) {
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > IDX_CHUNK ? IDX_CHUNK : n - got;
        int r = gzread(f->gz, p + got, (unsigned)want);
        if (r < 0) {
            int zerr = 0;
            const char *msg = gzerror(f->gz, &zerr);
            if (zerr == Z_ERRNO)
                advex_data_errno(f->path, errno);
            else
                advex_set_error(ADVEX_ERR_FORMAT, "%s: corrupt gzip data (%s)", f->path,
                                msg && *msg ? msg : "zlib error");
            return -1;
        }
        if (r == 0) {
            /* A gzip stream cut short reads as end of file with Z_BUF_ERROR. */
            int zerr = 0;
            (void)gzerror(f->gz, &zerr);
            if (zerr == Z_BUF_ERROR) {
                advex_set_error(ADVEX_ERR_FORMAT, "%s: truncated gzip stream", f->path);
                return -1;
            }
            break;
        }
        got += (size_t)r;
    }
    return (int64_t)got;
}

static uint32_t be32(const unsigned char *b) {
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* Read the magic and dims; want_magic picks images or labels. */
static advex_status idx_header(idx_file *f, uint32_t want_magic, int64_t *dims) {
    const char *kind = want_magic == IDX_MAGIC_IMAGES ? "image" : "label";
    int ndim = (int)(want_magic & 0xff);
    unsigned char hdr[16];
    int64_t got = idx_read(f, hdr, 4);
    if (got < 0) return ADVEX_ERR_FORMAT;
    if (got < 4)
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: not an IDX %s file (only %lld bytes)",
                               f->path, kind, (long long)got);
    uint32_t magic = be32(hdr);
    if (magic != want_magic) {
        unsigned type = (magic >> 8) & 0xff;
        const char *hint = "";
        if (magic == IDX_MAGIC_IMAGES) hint = "; it is an IDX image file";
        else if (magic == IDX_MAGIC_LABELS) hint = "; it is an IDX label file";
        else if ((magic >> 16) == 0 && type >= 0x09 && type <= 0x0e)
            hint = "; only unsigned-byte IDX data is supported";
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: not an IDX %s file (magic 0x%08x)%s",
                               f->path, kind, magic, hint);
    }
    got = idx_read(f, hdr, (size_t)ndim * 4);
    if (got < 0) return ADVEX_ERR_FORMAT;
    if (got < ndim * 4)
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: truncated IDX header", f->path);
    for (int i = 0; i < ndim; i++) {
        dims[i] = (int64_t)be32(hdr + 4 * i);
        int64_t cap = i == 0 ? IDX_MAX_N : IDX_MAX_HW;
        if (dims[i] <= 0 || dims[i] > cap)
            return advex_set_error(ADVEX_ERR_FORMAT, "%s: bad IDX dimension %d: %lld (want 1..%lld)",
                                   f->path, i, (long long)dims[i], (long long)cap);
    }
    return ADVEX_OK;
}

/* Growable output buffer: allocated as data actually arrives, so a header claiming
 * 1e8 images over a short file costs no more memory than the file holds. */
static int grow(void **buf, int64_t *cap, int64_t need, int64_t total, size_t elem) {
    if (need <= *cap) return 1;
    int64_t c = *cap ? *cap : 1 << 20;
    while (c < need) c = c > total / 2 ? total : c * 2;
    if (c > total) c = total;
    int64_t bytes;
    if (!advex_mul_i64(c, (int64_t)elem, &bytes) || (uint64_t)bytes > SIZE_MAX) return 0;
    void *p = realloc(*buf, (size_t)bytes);
    if (!p) return 0;
    *buf = p;
    *cap = c;
    return 1;
}

/* What idx_body reads: `total` u8 values in the file, of which the first `keep` are
 * converted and stored (float /255 or int32); `stop`: read no further than keep (the rest
 * of the file stays unread: a decompression bomb behind them is never inflated); else read
 * to the end, insist on end of file, and report the largest value in *maxv. */
typedef struct idx_want {
    int64_t total, keep;
    int as_float, stop;
    const char *what;
} idx_want;

static advex_status idx_body(idx_file *f, const idx_want *q, void **out, int *maxv) {
    unsigned char *chunk = malloc(IDX_CHUNK);
    void *buf = NULL;
    int64_t cap = 0, done = 0, end = q->stop ? q->keep : q->total;
    int mx = 0;
    advex_status st = ADVEX_OK;
    if (!chunk) return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", f->path);
    while (done < end) {
        size_t want = end - done > IDX_CHUNK ? IDX_CHUNK : (size_t)(end - done);
        int64_t got = idx_read(f, chunk, want);
        if (got < 0) { st = ADVEX_ERR_FORMAT; goto fail; }
        int64_t store = done >= q->keep ? 0 : (q->keep - done < got ? q->keep - done : got);
        if (store > 0 && !grow(&buf, &cap, done + store, q->keep, q->as_float ? sizeof(float) : sizeof(int32_t))) {
            st = advex_set_error(ADVEX_ERR_NOMEM, "%s: cannot allocate %lld %s", f->path, (long long)q->keep, q->what);
            goto fail;
        }
        if (store <= 0) {
            /* nothing to keep: buf may still be NULL (no pointer arithmetic on it) */
        } else if (q->as_float) {
            advex_u8_to_unit((float *)buf + done, chunk, store);
        } else {
            int32_t *y = (int32_t *)buf + done;
            for (int64_t i = 0; i < store; i++) y[i] = chunk[i];
        }
        for (int64_t i = 0; maxv && i < got; i++) if (chunk[i] > mx) mx = chunk[i];
        done += got;
        if ((size_t)got < want) {
            st = advex_set_error(ADVEX_ERR_FORMAT, "%s: truncated: header promises %lld bytes of %s, file has %lld",
                                 f->path, (long long)q->total, q->what, (long long)done);
            goto fail;
        }
    }
    if (!q->stop || q->keep == q->total) {
        int64_t extra = idx_read(f, chunk, 1);
        if (extra < 0) { st = ADVEX_ERR_FORMAT; goto fail; }
        if (extra > 0) {
            st = advex_set_error(ADVEX_ERR_FORMAT, "%s: unexpected data after the %lld bytes of %s the header declares",
                                 f->path, (long long)q->total, q->what);
            goto fail;
        }
    }
    free(chunk);
    *out = buf;
    if (maxv) *maxv = mx;
    return ADVEX_OK;
fail:
    free(chunk);
    free(buf);
    return st;
}

advex_status advex_idx_load_images(const char *path, float **x, int64_t *n, int64_t *h,
                                   int64_t *w) {
    if (!x || !n || !h || !w) return advex_set_error(ADVEX_ERR_ARG, "advex_idx_load_images: NULL output");
    *x = NULL;
    idx_file f;
    advex_status st = idx_open(&f, path);
    if (st != ADVEX_OK) return st;
    int64_t dims[3] = {0, 0, 0}, total = 0;
    st = idx_header(&f, IDX_MAGIC_IMAGES, dims);
    if (st == ADVEX_OK && (!advex_mul_i64(dims[0], dims[1], &total) ||
                           !advex_mul_i64(total, dims[2], &total)))
        st = advex_set_error(ADVEX_ERR_LIMIT, "%s: image data size overflows", path);
    void *buf = NULL;
    idx_want q = {total, total, 1, 0, "pixels"};
    if (st == ADVEX_OK) st = idx_body(&f, &q, &buf, NULL);
    idx_close(&f);
    if (st != ADVEX_OK) return st;
    *x = buf;
    *n = dims[0];
    *h = dims[1];
    *w = dims[2];
    return ADVEX_OK;
}

advex_status advex_idx_load_labels(const char *path, int32_t **y, int64_t *n) {
    if (!y || !n) return advex_set_error(ADVEX_ERR_ARG, "advex_idx_load_labels: NULL output");
    *y = NULL;
    idx_file f;
    advex_status st = idx_open(&f, path);
    if (st != ADVEX_OK) return st;
    int64_t dims[1] = {0};
    st = idx_header(&f, IDX_MAGIC_LABELS, dims);
    void *buf = NULL;
    idx_want q = {dims[0], dims[0], 0, 0, "labels"};
    if (st == ADVEX_OK) st = idx_body(&f, &q, &buf, NULL);
    idx_close(&f);
    if (st != ADVEX_OK) return st;
    *y = buf;
    *n = dims[0];
    return ADVEX_OK;
}

/* Images and labels together, headers first: the image size is checked against `want`, the
 * counts against each other and the memory the kept examples need against --max-memory and
 * the machine, all before any image data is inflated. Labels are streamed through (their
 * largest value, over the whole file, goes to *ymax); only the first `limit` of each kept. */
advex_status advex_idx_load_pair(const char *xpath, const char *ypath, int64_t limit, const advex_data_expect *want,
                                 advex_dataset *d, int *ymax) {
    idx_file fx, fy = {NULL, NULL};
    int64_t dx[3] = {0, 0, 0}, dy[1] = {0}, keep, px;
    void *xb = NULL, *yb = NULL;
    advex_status st = idx_open(&fx, xpath);
    if (st) return st;
    if ((st = idx_header(&fx, IDX_MAGIC_IMAGES, dx))) goto done;
    if (want && ((want->h && want->h != dx[1]) || (want->w && want->w != dx[2]) || (want->c && want->c != 1))) {
        st = advex_set_error(ADVEX_ERR_SHAPE, "%s: images are 1x%lldx%lld but the model expects %lldx%lldx%lld", xpath,
                             (long long)dx[1], (long long)dx[2], (long long)want->c, (long long)want->h,
                             (long long)want->w);
        goto done;
    }
    if (ypath) {
        if ((st = idx_open(&fy, ypath)) || (st = idx_header(&fy, IDX_MAGIC_LABELS, dy))) goto done;
        if (dy[0] != dx[0]) {
            st = advex_set_error(ADVEX_ERR_SHAPE, "image/label count mismatch: %s has %lld, %s has %lld", xpath,
                                 (long long)dx[0], ypath, (long long)dy[0]);
            goto done;
        }
    }
    keep = limit > 0 && limit < dx[0] ? limit : dx[0];
    px = dx[1] * dx[2]; /* each at most 65536 */
    st = advex_data_size_check(xpath, keep, px * (int64_t)sizeof(float) + (ypath ? 4 : 0), "examples");
    if (st) goto done;
    if (ypath) {
        idx_want q = {dy[0], keep, 0, 0, "labels"};
        if ((st = idx_body(&fy, &q, &yb, ymax))) goto done;
    }
    idx_want q = {dx[0] * px, keep * px, 1, 1, "pixels"};
    if ((st = idx_body(&fx, &q, &xb, NULL))) goto done;
    d->x = xb;
    d->y = yb;
    xb = yb = NULL;
    d->n = keep;
    d->c = 1;
    d->h = dx[1];
    d->w = dx[2];
done:
    free(xb);
    free(yb);
    idx_close(&fx);
    if (fy.gz) idx_close(&fy);
    return st;
}
