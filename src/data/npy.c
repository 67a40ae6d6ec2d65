/* NumPy .npy reading (format 1.0/2.0/3.0, C order, little-endian numeric dtypes) and
 * atomic writing of float32 / int32 arrays (1.0 headers padded to 64 bytes). The header
 * dict is parsed as a small Python literal: keys in any order, either quote style. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"

#define NPY_MAX_HEADER (1 << 20)
#define NPY_CHUNK (1 << 20) /* bytes per fread when converting */

typedef struct npy_info {
    const char *path;
    FILE *fp;
    char descr[64];
    char kind;   /* 'f' float, 'i' signed, 'u' unsigned, 0 unknown */
    int size;    /* bytes per element */
    int big;     /* big-endian multi-byte dtype */
    int fortran;
    int ndim;
    int64_t dims[ADVEX_MAX_DIMS];
    int64_t numel;
} npy_info;

/* ---- header dict parser ------------------------------------------------------------- */

typedef struct cursor { const char *p, *end; } cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) { c->p++; return 1; }
    return 0;
}

/* A quoted string ('...' or "..."); backslash escapes are kept verbatim. */
static int parse_string(cursor *c, char *out, size_t cap) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' && c->p + 1 < c->end) {
            if (n + 1 < cap) out[n++] = *c->p;
            c->p++;
        }
        if (n + 1 < cap) out[n++] = *c->p;
        c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static int parse_word(cursor *c, const char *w) {
    size_t n = strlen(w);
    skip_ws(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return 0;
    const char *after = c->p + n;
    if (after < c->end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
                           (*after >= '0' && *after <= '9') || *after == '_'))
        return 0;
    c->p = after;
    return 1;
}

/* Non-negative integer, with Python 2's optional 'L' suffix. */
static int parse_dim(cursor *c, int64_t *v) {
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
    int64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (!advex_mul_i64(x, 10, &x) || !advex_add_i64(x, *c->p - '0', &x)) return -1;
        c->p++;
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) c->p++;
    *v = x;
    return 1;
}

/* Skip a value of a key we do not know: string, word, number or bracketed group. */
static int skip_value(cursor *c) {
    char tmp[2];
    int depth = 0;
    skip_ws(c);
    const char *start = c->p;
    while (c->p < c->end) {
        char ch = *c->p;
        if (ch == '\'' || ch == '"') {
            if (!parse_string(c, tmp, sizeof tmp)) return 0;
            continue;
        }
        if (depth == 0 && (ch == ',' || ch == '}')) return c->p > start;
        if (ch == '(' || ch == '[' || ch == '{') depth++;
        else if (ch == ')' || ch == ']' || ch == '}') {
            if (depth == 0) return 0;
            depth--;
        }
        c->p++;
    }
    return 0;
}

static advex_status header_error(const char *path, const char *what) {
    return advex_set_error(ADVEX_ERR_FORMAT, "%s: bad .npy header: %s", path, what);
}

static advex_status parse_header(npy_info *in, const char *h, size_t len) {
    cursor c = {h, h + len};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    if (!eat(&c, '{')) return header_error(in->path, "not a dict");
    for (;;) {
        char key[64];
        if (eat(&c, '}')) break;
        if (!parse_string(&c, key, sizeof key)) return header_error(in->path, "expected a quoted key");
        if (!eat(&c, ':')) return header_error(in->path, "expected ':' after a key");
        if (strcmp(key, "descr") == 0) {
            skip_ws(&c);
            if (c.p < c.end && *c.p == '[')
                return advex_set_error(ADVEX_ERR_UNSUPPORTED,
                                       "%s: unsupported dtype (structured arrays; want float32 or uint8)",
                                       in->path);
            if (!parse_string(&c, in->descr, sizeof in->descr))
                return header_error(in->path, "'descr' is not a string");
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (parse_word(&c, "True")) in->fortran = 1;
            else if (parse_word(&c, "False")) in->fortran = 0;
            else return header_error(in->path, "'fortran_order' is not True or False");
            have_fortran = 1;
        } else if (strcmp(key, "shape") == 0) {
            char close;
            if (eat(&c, '(')) close = ')';
            else if (eat(&c, '[')) close = ']';
            else return header_error(in->path, "'shape' is not a tuple");
            in->ndim = 0;
            while (!eat(&c, close)) {
                int64_t d;
                int r = parse_dim(&c, &d);
                if (r < 0) return header_error(in->path, "dimension too large");
                if (r == 0) return header_error(in->path, "'shape' holds something other than non-negative integers");
                if (in->ndim == ADVEX_MAX_DIMS)
                    return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s: more than %d dimensions",
                                           in->path, ADVEX_MAX_DIMS);
                in->dims[in->ndim++] = d;
                if (!eat(&c, ',')) {
                    if (!eat(&c, close)) return header_error(in->path, "malformed 'shape' tuple");
                    break;
                }
            }
            have_shape = 1;
        } else if (!skip_value(&c)) {
            return header_error(in->path, "malformed value");
        }
        if (eat(&c, ',')) continue;
        if (eat(&c, '}')) break;
        return header_error(in->path, "expected ',' or '}'");
    }
    skip_ws(&c);
    while (c.p < c.end && *c.p == '\0') c.p++; /* tolerate NUL padding */
    if (c.p != c.end) return header_error(in->path, "unexpected text after the dict");
    if (!have_descr) return header_error(in->path, "no 'descr'");
    if (!have_fortran) return header_error(in->path, "no 'fortran_order'");
    if (!have_shape) return header_error(in->path, "no 'shape'");
    in->numel = advex_numel(in->ndim, in->dims);
    if (in->numel < 0) return advex_set_error(ADVEX_ERR_LIMIT, "%s: shape overflows", in->path);

    /* dtype: byte order, kind, size ("<f4", "|u1", "=i8") */
    const char *d = in->descr;
    in->kind = 0;
    in->size = 0;
    if ((d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=') &&
        (d[1] == 'f' || d[1] == 'i' || d[1] == 'u') && d[2] >= '1' && d[2] <= '8' && d[3] == '\0') {
        int sz = d[2] - '0';
        int ok = d[1] == 'f' ? (sz == 4 || sz == 8) : (sz == 1 || sz == 2 || sz == 4 || sz == 8);
        if (ok && (sz == 1 || d[0] != '|')) {
            in->kind = d[1];
            in->size = sz;
            in->big = sz > 1 && (d[0] == '>' || (d[0] == '=' && !advex_host_is_le()));
        }
    }
    return ADVEX_OK;
}

static void fmt_shape(const npy_info *in, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < in->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)in->dims[i]);
    if (n < cap) snprintf(buf + n, cap - n, in->ndim == 1 ? ",)" : ")");
}

/* Open, read and parse the header, check the data size against the file size. The
 * caller checks dtype support (kind == 0: unknown), then reads numel*size bytes. */
static advex_status npy_open(npy_info *in, const char *path) {
    memset(in, 0, sizeof *in);
    in->path = path;
    if (!path || !*path) return advex_set_error(ADVEX_ERR_ARG, "empty .npy file name");
    in->fp = fopen(path, "rb");
    if (!in->fp) return advex_data_errno(path, errno);
    struct stat st;
    if (fstat(fileno(in->fp), &st) != 0) return advex_data_errno(path, errno);
    if (S_ISDIR(st.st_mode)) return advex_data_errno(path, EISDIR);
    if (!S_ISREG(st.st_mode)) return advex_set_error(ADVEX_ERR_IO, "%s: not a regular file", path);
    int64_t fsize = (int64_t)st.st_size;

    unsigned char pre[12];
    if (fread(pre, 1, 10, in->fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
    int major = pre[6], minor = pre[7];
    int64_t hlen, off;
    if (major == 1) {
        hlen = pre[8] | (pre[9] << 8);
        off = 10;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 10, 1, 2, in->fp) != 2)
            return advex_set_error(ADVEX_ERR_FORMAT, "%s: truncated .npy header", path);
        hlen = (int64_t)pre[8] | ((int64_t)pre[9] << 8) | ((int64_t)pre[10] << 16) |
               ((int64_t)pre[11] << 24);
        off = 12;
    } else {
        return advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s: unsupported .npy format version %d.%d",
                               path, major, minor);
    }
    if (hlen > NPY_MAX_HEADER)
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: .npy header too long (%lld bytes)", path,
                               (long long)hlen);
    if (off + hlen > fsize)
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: truncated .npy header", path);
    char *h = malloc((size_t)hlen + 1);
    if (!h) return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", path);
    if (fread(h, 1, (size_t)hlen, in->fp) != (size_t)hlen) {
        free(h);
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: truncated .npy header", path);
    }
    h[hlen] = '\0';
    advex_status s = parse_header(in, h, (size_t)hlen);
    free(h);
    if (s != ADVEX_OK) return s;
    if (in->fortran)
        return advex_set_error(ADVEX_ERR_UNSUPPORTED,
                               "%s: Fortran-order arrays are not supported (save a C-order "
                               "array, e.g. np.ascontiguousarray)", path);
    if (in->kind == 0 || in->big) return ADVEX_OK; /* dtype errors are the caller's */
    int64_t need, have = fsize - off - hlen;
    if (!advex_mul_i64(in->numel, in->size, &need))
        return advex_set_error(ADVEX_ERR_LIMIT, "%s: data size overflows", path);
    if (have != need) {
        char shape[160];
        fmt_shape(in, shape, sizeof shape);
        if (have < need)
            return advex_set_error(ADVEX_ERR_FORMAT,
                                   "%s: truncated: shape %s of '%s' needs %lld bytes of data, file has %lld",
                                   path, shape, in->descr, (long long)need, (long long)have);
        return advex_set_error(ADVEX_ERR_FORMAT,
                               "%s: %lld unexpected bytes after the data of shape %s",
                               path, (long long)(have - need), shape);
    }
    return ADVEX_OK;
}

static void npy_close(npy_info *in) {
    if (in->fp) fclose(in->fp);
    in->fp = NULL;
}

/* Little-endian element i of a chunk, as double (floats) or int64/uint64 (integers). */
static uint64_t le_bits(const unsigned char *p, int size) {
    uint64_t v = 0;
    for (int b = size - 1; b >= 0; b--) v = (v << 8) | p[b];
    return v;
}

static double elem_f64(const npy_info *in, const unsigned char *p) {
    uint64_t bits = le_bits(p, in->size);
    switch (in->kind) {
    case 'f':
        if (in->size == 4) { uint32_t u = (uint32_t)bits; float f; memcpy(&f, &u, 4); return f; }
        else { double g; memcpy(&g, &bits, 8); return g; }
    case 'u':
        return (double)bits;
    default: { /* sign-extend */
        int shift = 64 - 8 * in->size;
        int64_t s = (int64_t)(bits << shift) >> shift;
        return (double)s;
    }
    }
}

/* Read the whole body chunk by chunk, calling conv(in, chunk, count, start, ctx). */
typedef advex_status (*npy_conv_fn)(const npy_info *in, const unsigned char *src, int64_t count,
                                    int64_t start, void *ctx);

static advex_status npy_read_body(npy_info *in, npy_conv_fn conv, void *ctx) {
    unsigned char *chunk = malloc(NPY_CHUNK);
    if (!chunk) return advex_set_error(ADVEX_ERR_NOMEM, "%s: out of memory", in->path);
    int64_t per = NPY_CHUNK / in->size, done = 0;
    advex_status s = ADVEX_OK;
    while (done < in->numel && s == ADVEX_OK) {
        int64_t cnt = in->numel - done < per ? in->numel - done : per;
        size_t bytes = (size_t)cnt * (size_t)in->size;
        if (fread(chunk, 1, bytes, in->fp) != bytes) {
            s = ferror(in->fp) ? advex_data_errno(in->path, errno)
                               : advex_set_error(ADVEX_ERR_FORMAT, "%s: truncated data", in->path);
            break;
        }
        s = conv(in, chunk, cnt, done, ctx);
        done += cnt;
    }
    free(chunk);
    return s;
}

static advex_status conv_f32(const npy_info *in, const unsigned char *src, int64_t count,
                             int64_t start, void *ctx) {
    float *dst = (float *)ctx + start;
    if (in->kind == 'u' && in->size == 1) {
        advex_u8_to_unit(dst, src, count);
    } else if (in->kind == 'f' && in->size == 4 && advex_host_is_le()) {
        memcpy(dst, src, (size_t)count * 4);
    } else {
        for (int64_t i = 0; i < count; i++) dst[i] = (float)elem_f64(in, src + i * in->size);
    }
    return ADVEX_OK;
}

advex_status advex_npy_load_f32(const char *path, float **data, int *ndim, int64_t dims[6]) {
    if (!data || !ndim || !dims) return advex_set_error(ADVEX_ERR_ARG, "advex_npy_load_f32: NULL output");
    *data = NULL;
    npy_info in;
    advex_status s = npy_open(&in, path);
    if (s == ADVEX_OK && (in.kind == 0 || in.big))
        s = advex_set_error(ADVEX_ERR_UNSUPPORTED, "%s: unsupported dtype '%s' (want %sfloat32 or uint8)",
                            path, in.descr, in.big ? "little-endian " : "");
    float *x = NULL;
    if (s == ADVEX_OK) s = advex_data_size_check(path, in.numel, sizeof(float), "values");
    if (s == ADVEX_OK) {
        x = malloc((size_t)(in.numel ? in.numel : 1) * sizeof(float));
        if (!x) s = advex_set_error(ADVEX_ERR_NOMEM, "%s: cannot allocate %lld floats", path,
                                    (long long)in.numel);
    }
    if (s == ADVEX_OK) {
        if (in.kind == 'f' && in.size == 4 && advex_host_is_le()) {
            /* fast path: straight into the output */
            size_t bytes = (size_t)in.numel * 4;
            if (fread(x, 1, bytes, in.fp) != bytes)
                s = ferror(in.fp) ? advex_data_errno(path, errno)
                                  : advex_set_error(ADVEX_ERR_FORMAT, "%s: truncated data", path);
        } else {
            s = npy_read_body(&in, conv_f32, x);
        }
    }
    npy_close(&in);
    if (s != ADVEX_OK) { free(x); return s; }
    *data = x;
    *ndim = in.ndim;
    for (int i = 0; i < ADVEX_MAX_DIMS; i++) dims[i] = i < in.ndim ? in.dims[i] : 0;
    return ADVEX_OK;
}

static advex_status conv_labels(const npy_info *in, const unsigned char *src, int64_t count,
                                int64_t start, void *ctx) {
    int32_t *dst = (int32_t *)ctx + start;
    for (int64_t i = 0; i < count; i++) {
        uint64_t bits = le_bits(src + i * in->size, in->size);
        int64_t v;
        if (in->kind == 'u') {
            v = bits > (uint64_t)INT32_MAX ? INT64_MAX : (int64_t)bits;
        } else {
            int shift = 64 - 8 * in->size;
            v = (int64_t)(bits << shift) >> shift;
        }
        if (v < 0)
            return advex_set_error(ADVEX_ERR_FORMAT, "%s: label %lld is negative (%lld)",
                                   in->path, (long long)(start + i), (long long)v);
        if (v > INT32_MAX)
            return advex_set_error(ADVEX_ERR_FORMAT, "%s: label %lld does not fit in int32",
                                   in->path, (long long)(start + i));
        dst[i] = (int32_t)v;
    }
    return ADVEX_OK;
}

advex_status advex_npy_load_labels(const char *path, int32_t **y, int64_t *n) {
    if (!y || !n) return advex_set_error(ADVEX_ERR_ARG, "advex_npy_load_labels: NULL output");
    *y = NULL;
    npy_info in;
    advex_status s = npy_open(&in, path);
    if (s == ADVEX_OK && (in.kind == 0 || in.kind == 'f' || in.big))
        s = advex_set_error(ADVEX_ERR_UNSUPPORTED,
                            "%s: unsupported dtype '%s' for labels (want %sint64, int32 or uint8)",
                            path, in.descr, in.big ? "little-endian " : "");
    if (s == ADVEX_OK && in.ndim != 1) {
        char shape[160];
        fmt_shape(&in, shape, sizeof shape);
        s = advex_set_error(ADVEX_ERR_SHAPE, "%s: labels must be 1-D, got shape %s", path, shape);
    }
    int32_t *lab = NULL;
    if (s == ADVEX_OK) {
        lab = malloc((size_t)(in.numel ? in.numel : 1) * sizeof(int32_t));
        if (!lab) s = advex_set_error(ADVEX_ERR_NOMEM, "%s: cannot allocate %lld labels", path,
                                      (long long)in.numel);
    }
    if (s == ADVEX_OK) s = npy_read_body(&in, conv_labels, lab);
    npy_close(&in);
    if (s != ADVEX_OK) { free(lab); return s; }
    *y = lab;
    *n = in.numel;
    return ADVEX_OK;
}

/* ---- writing --------------------------------------------------------------------------- */

/* Header "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with spaces
 * and a newline so the data starts at a multiple of 64 bytes (as numpy writes it). */
static advex_status npy_write(const char *path, const char *descr, const void *data, int ndim,
                              const int64_t *dims) {
    if (ndim < 0 || ndim > ADVEX_MAX_DIMS || (ndim > 0 && !dims))
        return advex_set_error(ADVEX_ERR_ARG, "%s: bad rank %d for .npy output", path ? path : "", ndim);
    int64_t numel = advex_numel(ndim, dims), bytes;
    if (numel < 0 || !advex_mul_i64(numel, 4, &bytes) || (uint64_t)bytes > SIZE_MAX)
        return advex_set_error(ADVEX_ERR_ARG, "%s: bad or overflowing shape for .npy output",
                               path ? path : "");
    if (numel > 0 && !data) return advex_set_error(ADVEX_ERR_ARG, "%s: NULL data", path ? path : "");

    char hdr[512];
    int n = snprintf(hdr + 10, 400, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++)
        n += snprintf(hdr + 10 + n, (size_t)(400 - n), i ? ", %lld" : "%lld", (long long)dims[i]);
    n += snprintf(hdr + 10 + n, (size_t)(400 - n), ndim == 1 ? ",), }" : "), }");
    int total = (10 + n + 1 + 63) / 64 * 64; /* + '\n' */
    memset(hdr + 10 + n, ' ', (size_t)(total - 10 - n - 1));
    hdr[total - 1] = '\n';
    int hlen = total - 10;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)(hlen & 0xff);
    hdr[9] = (char)(hlen >> 8);

    advex_afile f;
    advex_status s = advex_afile_open(&f, path);
    if (s != ADVEX_OK) return s;
    s = advex_afile_write(&f, hdr, (size_t)total);
    if (s == ADVEX_OK && advex_host_is_le()) {
        s = advex_afile_write(&f, data, (size_t)bytes);
    } else if (s == ADVEX_OK) { /* big-endian host: byte-swap through a buffer */
        const unsigned char *src = data;
        unsigned char buf[4096];
        for (int64_t off = 0; off < bytes && s == ADVEX_OK; off += (int64_t)sizeof buf) {
            size_t k = (size_t)(bytes - off < (int64_t)sizeof buf ? bytes - off : (int64_t)sizeof buf);
            for (size_t j = 0; j < k; j += 4)
                for (int b = 0; b < 4; b++) buf[j + (size_t)b] = src[off + (int64_t)j + 3 - b];
            s = advex_afile_write(&f, buf, k);
        }
    }
    if (s == ADVEX_OK) s = advex_afile_commit(&f);
    return s; /* failed writes have already removed the temporary file */
}

advex_status advex_npy_save_f32(const char *path, const float *data, int ndim,
                                const int64_t *dims) {
    return npy_write(path, "<f4", data, ndim, dims);
}

advex_status advex_npy_save_i32(const char *path, const int32_t *data, int64_t n) {
    return npy_write(path, "<i4", data, 1, &n);
}
