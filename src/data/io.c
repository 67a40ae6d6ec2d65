/* File plumbing for the data sources: atomic writes (temporary file in the same
 * directory, fsync, rename), errno-to-status mapping and the [0,1] input check. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "data_internal.h"

advex_status advex_data_errno(const char *path, int err) {
    return advex_set_error(ADVEX_ERR_IO, "%s: %s", path, strerror(err));
}

/* The process umask without changing it (umask() would race with other threads):
 * Linux reports it in /proc/self/status; fall back to the common 022. */
static mode_t current_umask(void) {
    mode_t m = 022;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return m;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned v;
        if (sscanf(line, "Umask: %o", &v) == 1) { m = (mode_t)(v & 0777); break; }
    }
    fclose(f);
    return m;
}

/* 1 when st is the null device (by device number, whatever the path's spelling). */
static int is_dev_null(const struct stat *st) {
    struct stat nul;
    return S_ISCHR(st->st_mode) && stat("/dev/null", &nul) == 0 && S_ISCHR(nul.st_mode) && st->st_rdev == nul.st_rdev;
}

advex_status advex_afile_open(advex_afile *f, const char *path) {
    f->fd = -1;
    f->tmp = NULL;
    f->path = path;
    if (!path || !*path) return advex_set_error(ADVEX_ERR_ARG, "empty output file name");
    /* rename() over a device, directory or pipe would replace the node itself (as root,
     * /dev/sda by a regular file): refused. The null device is written through. */
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        if (!is_dev_null(&sb))
            return advex_set_error(ADVEX_ERR_ARG, "%s: exists and is not a regular file; advex replaces only regular "
                                   "files", path);
        f->fd = open(path, O_WRONLY);
        return f->fd < 0 ? advex_data_errno(path, errno) : ADVEX_OK;
    }
    size_t len = strlen(path);
    f->tmp = malloc(len + sizeof ".tmp.XXXXXX");
    if (!f->tmp) return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", path);
    memcpy(f->tmp, path, len);
    memcpy(f->tmp + len, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    f->fd = mkstemp(f->tmp);
    if (f->fd < 0) {
        int err = errno;
        free(f->tmp);
        f->tmp = NULL;
        return advex_set_error(ADVEX_ERR_IO, "cannot create %s: %s", path, strerror(err));
    }
    /* mkstemp makes the file 0600; give it the mode a plain fopen() would. */
    (void)fchmod(f->fd, (mode_t)(0666 & ~current_umask()));
    return ADVEX_OK;
}

void advex_afile_abort(advex_afile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp) {
        unlink(f->tmp);
        free(f->tmp);
        f->tmp = NULL;
    }
}

static advex_status afile_fail(advex_afile *f, const char *what, int err) {
    advex_afile_abort(f);
    return advex_set_error(ADVEX_ERR_IO, "cannot %s %s: %s", what, f->path, strerror(err));
}

advex_status advex_afile_write(advex_afile *f, const void *buf, size_t n) {
    const unsigned char *p = buf;
    if (f->fd < 0) return advex_set_error(ADVEX_ERR_INTERNAL, "%s: write after close", f->path);
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(f->fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return afile_fail(f, "write", errno);
        }
        if (w == 0) return afile_fail(f, "write", ENOSPC);
        p += w;
        n -= (size_t)w;
    }
    return ADVEX_OK;
}

/* Best effort: make the rename itself durable by syncing the containing directory. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) dir = advex_strdup(".");
    else if (slash == path) dir = advex_strdup("/");
    else {
        dir = malloc((size_t)(slash - path) + 1);
        if (dir) { memcpy(dir, path, (size_t)(slash - path)); dir[slash - path] = '\0'; }
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) { (void)fsync(fd); close(fd); }
    free(dir);
}

advex_status advex_afile_commit(advex_afile *f) {
    if (f->fd < 0) return advex_set_error(ADVEX_ERR_INTERNAL, "%s: commit after close", f->path);
    if (!f->tmp) { /* the null device: nothing to sync or rename */
        close(f->fd);
        f->fd = -1;
        return ADVEX_OK;
    }
    if (fsync(f->fd) != 0) return afile_fail(f, "write", errno);
    int rc = close(f->fd);
    f->fd = -1;
    if (rc != 0) return afile_fail(f, "write", errno);
    if (rename(f->tmp, f->path) != 0) return afile_fail(f, "create", errno);
    free(f->tmp);
    f->tmp = NULL;
    sync_parent_dir(f->path);
    return ADVEX_OK;
}

void advex_u8_to_unit(float *dst, const unsigned char *src, int64_t n) {
    float lut[256];
    for (int i = 0; i < 256; i++) lut[i] = (float)i / 255.0f;
    for (int64_t i = 0; i < n; i++) dst[i] = lut[src[i]];
}

advex_status advex_data_check_unit(const char *what, const float *x, int64_t n) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            return advex_set_error(ADVEX_ERR_NUMERIC, "%s: element %lld is %s", what,
                                   (long long)i, isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"));
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    if (n > 0 && (lo < 0.0f || hi > 1.0f))
        return advex_set_error(ADVEX_ERR_FORMAT,
                               "%s: values outside [0,1]: min %g, max %g (advex expects inputs "
                               "in [0,1]; scale or clip them first)",
                               what, (double)lo, (double)hi);
    return ADVEX_OK;
}

/* Physical memory of this machine in bytes, 0 when unknown. */
static int64_t phys_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    int64_t b;
    return pages > 0 && size > 0 && advex_mul_i64(pages, size, &b) ? b : 0;
}

advex_status advex_data_size_check(const char *path, int64_t count, int64_t each, const char *what) {
    int64_t bytes;
    char a[32], b[32], c[32];
    if (!advex_mul_i64(count, each, &bytes))
        return advex_set_error(ADVEX_ERR_LIMIT, "%s: %lld %s: data size overflows", path, (long long)count, what);
    if (!advex_mem_fits(bytes))
        return advex_set_error(ADVEX_ERR_LIMIT, "%s: memory limit: %lld %s need %s with %s already in use, over the "
                               "limit of %s (raise --max-memory or pass --limit)", path, (long long)count, what,
                               advex_fmt_bytes(bytes, a), advex_fmt_bytes(advex_memory_in_use(), b),
                               advex_fmt_bytes(advex_get_memory_limit(), c));
    int64_t phys = phys_bytes();
    if (phys > 0 && bytes > phys)
        return advex_set_error(ADVEX_ERR_LIMIT, "%s: %lld %s need %s, more than this machine's memory (%s); pass "
                               "--limit", path, (long long)count, what, advex_fmt_bytes(bytes, a), advex_fmt_bytes(phys, b));
    return ADVEX_OK;
}

advex_status advex_write_file(const char *path, const void *data, size_t n) {
    advex_afile f;
    advex_status st = advex_afile_open(&f, path);
    if (!st) st = advex_afile_write(&f, data, n); /* a failed write removes the temporary */
    if (!st) st = advex_afile_commit(&f);
    return st;
}
