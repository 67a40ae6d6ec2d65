/* Tests for the data sources: .npy round trips and header variants, IDX (gzip and raw),
 * dataset specs, every error class (status + a message naming the file), atomic writes,
 * and the real Fashion-MNIST set from /usr/share/datasets/fashion-mnist. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "advex/advex.h"
#include "harness.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ---- helpers ---------------------------------------------------------------------------- */

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", advex_test_tmpdir(), name);
    return p;
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n;
}

static int write_gz(const char *path, const void *data, size_t n) {
    gzFile g = gzopen(path, "wb");
    if (!g) return 0;
    int w = gzwrite(g, data, (unsigned)n);
    return gzclose(g) == Z_OK && (size_t)w == n;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

#define ASSERT_ERR_HAS(needle)                                                               \
    ASSERT_MSG(contains(advex_last_error(), needle), "error '%s' lacks '%s'",               \
               advex_last_error(), needle)

/* Any "*.tmp.*" file left in dir? */
static int tmp_leftovers(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* A .npy file with the given header dict text (padded as numpy does) and raw body. */
static int write_npy_raw(const char *path, int major, const char *dict, const void *body,
                         size_t body_n) {
    unsigned char buf[4096];
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64;
    if (total + body_n > sizeof buf) return 0;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    size_t hlen = total - pre;
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    if (major != 1) buf[10] = buf[11] = 0;
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', total - pre - dl - 1);
    buf[total - 1] = '\n';
    if (body_n) memcpy(buf + total, body, body_n);
    return write_file(path, buf, total + body_n);
}

/* IDX bytes: magic, dims (big-endian), then data. */
static size_t make_idx(unsigned char *buf, uint32_t magic, int ndim, const uint32_t *dims,
                       const unsigned char *data, size_t n) {
    size_t o = 0;
    uint32_t words[4] = {magic, 0, 0, 0};
    for (int i = 0; i < ndim; i++) words[1 + i] = dims[i];
    for (int i = 0; i <= ndim; i++) {
        buf[o++] = (unsigned char)(words[i] >> 24);
        buf[o++] = (unsigned char)(words[i] >> 16);
        buf[o++] = (unsigned char)(words[i] >> 8);
        buf[o++] = (unsigned char)words[i];
    }
    memcpy(buf + o, data, n);
    return o + n;
}

/* ---- .npy --------------------------------------------------------------------------------- */

TEST(npy_roundtrip_f32) {
    const char *p = tmp_path("rt.npy");
    int64_t dims[4] = {2, 3, 4, 5};
    float x[120];
    for (int i = 0; i < 120; i++) x[i] = (float)i * 0.37f - 11.0f + 1e-7f * (float)i;
    x[7] = -0.0f;
    ASSERT_OK(advex_npy_save_f32(p, x, 4, dims));
    ASSERT_EQ_INT(tmp_leftovers(advex_test_tmpdir()), 0);
    /* header padded so data starts at a multiple of 64 */
    struct stat st;
    ASSERT(stat(p, &st) == 0);
    ASSERT_EQ_INT((st.st_size - 480) % 64, 0);
    float *y = NULL;
    int nd = 0;
    int64_t d[6];
    ASSERT_OK(advex_npy_load_f32(p, &y, &nd, d));
    ASSERT_EQ_INT(nd, 4);
    for (int i = 0; i < 4; i++) ASSERT_EQ_INT(d[i], dims[i]);
    ASSERT(memcmp(x, y, sizeof x) == 0);
    free(y);

    /* 1-D and 0-D shapes */
    int64_t one = 5;
    ASSERT_OK(advex_npy_save_f32(p, x, 1, &one));
    ASSERT_OK(advex_npy_load_f32(p, &y, &nd, d));
    ASSERT_EQ_INT(nd, 1);
    ASSERT_EQ_INT(d[0], 5);
    ASSERT(memcmp(x, y, 5 * sizeof(float)) == 0);
    free(y);
    ASSERT_OK(advex_npy_save_f32(p, x + 3, 0, NULL));
    ASSERT_OK(advex_npy_load_f32(p, &y, &nd, d));
    ASSERT_EQ_INT(nd, 0);
    ASSERT(y[0] == x[3]);
    free(y);
}

TEST(npy_roundtrip_i32) {
    const char *p = tmp_path("labels.npy");
    int32_t lab[7] = {0, 9, 3, 2147483647, 1, 0, 5};
    ASSERT_OK(advex_npy_save_i32(p, lab, 7));
    int32_t *y = NULL;
    int64_t n = 0;
    ASSERT_OK(advex_npy_load_labels(p, &y, &n));
    ASSERT_EQ_INT(n, 7);
    ASSERT(memcmp(lab, y, sizeof lab) == 0);
    free(y);
    /* overwriting an existing file replaces it */
    int32_t lab2[2] = {4, 4};
    ASSERT_OK(advex_npy_save_i32(p, lab2, 2));
    ASSERT_OK(advex_npy_load_labels(p, &y, &n));
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_INT(y[1], 4);
    free(y);
    ASSERT_EQ_INT(tmp_leftovers(advex_test_tmpdir()), 0);
}

TEST(npy_header_variants) {
    const float v[6] = {0.f, 0.25f, 0.5f, 0.75f, 1.f, 0.125f};
    const char *dicts[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        "{\"shape\": (2,3), \"descr\": \"<f4\", \"fortran_order\": False}",
        "{ 'fortran_order' : False , 'shape' : ( 2L , 3L ) , 'descr' : '=f4' }",
        "{'descr': '<f4', 'extra': {'a': (1, 2), 'b': 'x,}'}, 'fortran_order': False, 'shape': [2, 3]}",
    };
    for (int major = 1; major <= 3; major++) {
        for (size_t k = 0; k < sizeof dicts / sizeof *dicts; k++) {
            const char *p = tmp_path("hv.npy");
            ASSERT(write_npy_raw(p, major, dicts[k], v, sizeof v));
            float *y = NULL;
            int nd = 0;
            int64_t d[6];
            advex_status s = advex_npy_load_f32(p, &y, &nd, d);
            ASSERT_MSG(s == ADVEX_OK, "v%d header %zu: %s", major, k, advex_last_error());
            ASSERT_EQ_INT(nd, 2);
            ASSERT_EQ_INT(d[0], 2);
            ASSERT_EQ_INT(d[1], 3);
            ASSERT(memcmp(y, v, sizeof v) == 0);
            free(y);
        }
    }
    /* float64 is converted */
    const double dv[3] = {0.5, 1.0, 0.0};
    const char *p = tmp_path("f8.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", dv, sizeof dv));
    float *y = NULL;
    int nd = 0;
    int64_t d[6];
    ASSERT_OK(advex_npy_load_f32(p, &y, &nd, d));
    ASSERT_EQ_INT(d[0], 3);
    ASSERT(y[0] == 0.5f && y[1] == 1.0f && y[2] == 0.0f);
    free(y);
}

TEST(npy_uint8_scaling) {
    const char *p = tmp_path("u8.npy");
    const unsigned char b[4] = {0, 255, 51, 128};
    ASSERT(write_npy_raw(p, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2), }", b, 4));
    float *y = NULL;
    int nd = 0;
    int64_t d[6];
    ASSERT_OK(advex_npy_load_f32(p, &y, &nd, d));
    ASSERT_EQ_INT(nd, 3);
    ASSERT(y[0] == 0.0f);
    ASSERT(y[1] == 1.0f);
    ASSERT_NEAR(y[2], 0.2, 1e-7);
    ASSERT_NEAR(y[3], 128.0 / 255.0, 1e-7);
    free(y);
}

TEST(npy_label_dtypes) {
    const int64_t l8[3] = {3, 0, 7};
    const int32_t l4[3] = {3, 0, 7};
    const unsigned char l1[3] = {3, 0, 7};
    struct { const char *descr; const void *body; size_t n; } cases[] = {
        {"<i8", l8, sizeof l8}, {"<i4", l4, sizeof l4}, {"|u1", l1, sizeof l1}};
    for (int k = 0; k < 3; k++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (3,), }", cases[k].descr);
        const char *p = tmp_path("lab.npy");
        ASSERT(write_npy_raw(p, 1, dict, cases[k].body, cases[k].n));
        int32_t *y = NULL;
        int64_t n = 0;
        ASSERT_OK(advex_npy_load_labels(p, &y, &n));
        ASSERT_EQ_INT(n, 3);
        ASSERT(y[0] == 3 && y[1] == 0 && y[2] == 7);
        free(y);
    }
    int32_t *y = NULL;
    int64_t n = 0;
    const char *p = tmp_path("neg.npy");
    const int64_t neg[3] = {1, -1, 2};
    ASSERT(write_npy_raw(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", neg, sizeof neg));
    ASSERT_STATUS(advex_npy_load_labels(p, &y, &n), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("neg.npy");
    ASSERT_ERR_HAS("negative");
    ASSERT(y == NULL);
    const int64_t big[1] = {(int64_t)1 << 40};
    p = tmp_path("big.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", big, sizeof big));
    ASSERT_STATUS(advex_npy_load_labels(p, &y, &n), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("big.npy");
    const float fl[1] = {1.0f};
    p = tmp_path("flab.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", fl, sizeof fl));
    ASSERT_STATUS(advex_npy_load_labels(p, &y, &n), ADVEX_ERR_UNSUPPORTED);
    ASSERT_ERR_HAS("flab.npy: unsupported dtype '<f4'");
    p = tmp_path("lab2d.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 1), }", l4, sizeof l4));
    ASSERT_STATUS(advex_npy_load_labels(p, &y, &n), ADVEX_ERR_SHAPE);
    ASSERT_ERR_HAS("lab2d.npy");
}

TEST(npy_errors) {
    float *y = NULL;
    int nd = 0;
    int64_t d[6];
    const float v[4] = {0};
    const char *p = tmp_path("c8.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", v, 16));
    ASSERT_STATUS(advex_npy_load_f32(p, &y, &nd, d), ADVEX_ERR_UNSUPPORTED);
    ASSERT_ERR_HAS("c8.npy: unsupported dtype '<c8' (want float32 or uint8)");

    p = tmp_path("obj.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", v, 16));
    ASSERT_STATUS(advex_npy_load_f32(p, &y, &nd, d), ADVEX_ERR_UNSUPPORTED);
    ASSERT_ERR_HAS("obj.npy: unsupported dtype '|O'");

    p = tmp_path("be.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", v, 8));
    ASSERT_STATUS(advex_npy_load_f32(p, &y, &nd, d), ADVEX_ERR_UNSUPPORTED);
    ASSERT_ERR_HAS("be.npy: unsupported dtype '>f4'");

    p = tmp_path("struct.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", v, 8));
    ASSERT_STATUS(advex_npy_load_f32(p, &y, &nd, d), ADVEX_ERR_UNSUPPORTED);
    ASSERT_ERR_HAS("struct.npy");

    p = tmp_path("fort.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", v, 16));
    ASSERT_STATUS(advex_npy_load_f32(p, &y, &nd, d), ADVEX_ERR_UNSUPPORTED);
    ASSERT_ERR_HAS("fort.npy: Fortran-order");

    p = tmp_path("trunc.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", v, 12));
    ASSERT_STATUS(advex_npy_load_f32(p, &y, &nd, d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("trunc.npy: truncated");

    p = tmp_path("trail.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", v, 16));
    ASSERT_STATUS(advex_npy_load_f32(p, &y, &nd, d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("trail.npy");

    p = tmp_path("huge.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 100000, 1000), }", v, 16));
    advex_status s = advex_npy_load_f32(p, &y, &nd, d);
    ASSERT_MSG(s == ADVEX_ERR_FORMAT || s == ADVEX_ERR_LIMIT, "got %s", advex_status_str(s));
    ASSERT_ERR_HAS("huge.npy");

    p = tmp_path("magic.npy");
    ASSERT(write_file(p, "PK\003\004 not numpy at all", 21));
    ASSERT_STATUS(advex_npy_load_f32(p, &y, &nd, d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("magic.npy: not a .npy file");

    p = tmp_path("v9.npy");
    ASSERT(write_file(p, "\x93NUMPY\x09\x00\x00\x00", 10));
    ASSERT_STATUS(advex_npy_load_f32(p, &y, &nd, d), ADVEX_ERR_UNSUPPORTED);
    ASSERT_ERR_HAS("v9.npy");

    const char *bad[] = {
        "{'descr': '<f4', 'fortran_order': False, }",
        "{'descr': '<f4', 'shape': (2,), }",
        "{'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,, 3), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }",
        "{'descr': '<f4 'fortran_order': False, 'shape': (2,), }",
        "['descr', '<f4']",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } trailing",
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        p = tmp_path("hdr.npy");
        ASSERT(write_npy_raw(p, 1, bad[k], v, 8));
        s = advex_npy_load_f32(p, &y, &nd, d);
        ASSERT_MSG(s != ADVEX_OK, "header %zu accepted: %s", k, bad[k]);
        ASSERT_MSG(contains(advex_last_error(), "hdr.npy"), "header %zu: '%s'", k, advex_last_error());
        ASSERT(y == NULL);
    }

    ASSERT_STATUS(advex_npy_load_f32(tmp_path("nope.npy"), &y, &nd, d), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("nope.npy: No such file or directory");
    ASSERT_STATUS(advex_npy_load_f32(advex_test_tmpdir(), &y, &nd, d), ADVEX_ERR_IO);
}

/* Random corruption of a valid file must never crash: each load either succeeds or
 * returns an error with a message. (Run under ASan/UBSan in the sanitizer build.) */
TEST(npy_fuzz_headers) {
    const float v[6] = {0.f, 0.25f, 0.5f, 0.75f, 1.f, 0.125f};
    const char *p = tmp_path("fuzz.npy");
    ASSERT(write_npy_raw(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v, sizeof v));
    unsigned char orig[512];
    FILE *f = fopen(p, "rb");
    ASSERT(f != NULL);
    size_t n = fread(orig, 1, sizeof orig, f);
    fclose(f);
    advex_rng r;
    advex_rng_seed(&r, 1234);
    for (int it = 0; it < 3000; it++) {
        unsigned char buf[512];
        memcpy(buf, orig, n);
        size_t len = n;
        int edits = 1 + (int)advex_rng_below(&r, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)advex_rng_below(&r, 90); /* mostly the header */
            static const char pool[] = "{}()[],:'\"0123456789 -LTrueFalse<>|fiu\n\x00\xff";
            buf[at] = (unsigned char)pool[advex_rng_below(&r, sizeof pool - 1)];
        }
        if (advex_rng_below(&r, 5) == 0) len = (size_t)advex_rng_below(&r, (uint64_t)n);
        const char *q = tmp_path("fz.npy");
        ASSERT(write_file(q, buf, len));
        float *y = NULL;
        int nd = 0;
        int64_t d[6];
        advex_status s = advex_npy_load_f32(q, &y, &nd, d);
        if (s == ADVEX_OK) {
            ASSERT(y != NULL);
            free(y);
        } else {
            ASSERT(y == NULL);
            ASSERT(advex_last_error()[0] != '\0');
        }
        int32_t *lab = NULL;
        int64_t nl = 0;
        if (advex_npy_load_labels(q, &lab, &nl) == ADVEX_OK) free(lab);
    }
}

TEST(npy_atomic_write_failures) {
    const float x[4] = {0};
    int64_t dims[1] = {4};
    /* nonexistent directory */
    const char *p = tmp_path("no/such/dir/out.npy");
    ASSERT_STATUS(advex_npy_save_f32(p, x, 1, dims), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("out.npy");
    ASSERT_ERR_HAS("No such file or directory");
    ASSERT(!exists(p));
    /* the target is a directory: refused before any temporary exists, directory intact */
    const char *dirp = tmp_path("isdir.npy");
    ASSERT(mkdir(dirp, 0755) == 0);
    ASSERT_STATUS(advex_npy_save_f32(dirp, x, 1, dims), ADVEX_ERR_ARG);
    ASSERT_ERR_HAS("isdir.npy: exists and is not a regular file");
    ASSERT_EQ_INT(tmp_leftovers(advex_test_tmpdir()), 0);
    /* a directory nobody can create files in, root included */
    ASSERT_STATUS(advex_npy_save_f32("/proc/advex-test-out.npy", x, 1, dims), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("cannot create /proc/advex-test-out.npy: ");
    ASSERT(!exists("/proc/advex-test-out.npy"));
    /* unwritable directory (permissions do not bind root) */
    const char *ro = tmp_path("ro");
    ASSERT(mkdir(ro, 0500) == 0);
    if (geteuid() != 0) {
        const char *q = tmp_path("ro/out.npy");
        ASSERT_STATUS(advex_npy_save_i32(q, (const int32_t *)x, 4), ADVEX_ERR_IO);
        ASSERT_ERR_HAS("ro/out.npy");
        ASSERT_ERR_HAS("Permission denied");
        ASSERT(!exists(q));
        ASSERT_EQ_INT(tmp_leftovers(ro), 0);
    }
    /* bad arguments */
    ASSERT_STATUS(advex_npy_save_f32(tmp_path("a.npy"), x, 7, dims), ADVEX_ERR_ARG);
    ASSERT_STATUS(advex_npy_save_f32(tmp_path("b.npy"), NULL, 1, dims), ADVEX_ERR_ARG);
    ASSERT(!exists(tmp_path("a.npy")) && !exists(tmp_path("b.npy")));
}

/* ---- IDX ------------------------------------------------------------------------------------ */

static unsigned char px[3 * 4 * 5];
static unsigned char lab[3] = {2, 0, 5};

static void make_pixels(void) {
    for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 17 % 256);
}

TEST(idx_gzip_and_raw) {
    make_pixels();
    unsigned char img[256], lb[64];
    const uint32_t di[3] = {3, 4, 5}, dl[1] = {3};
    size_t ni = make_idx(img, 0x803, 3, di, px, sizeof px);
    size_t nl = make_idx(lb, 0x801, 1, dl, lab, 3);
    for (int gz = 0; gz < 2; gz++) {
        const char *xi = tmp_path(gz ? "img.gz" : "img.idx");
        const char *yl = tmp_path(gz ? "lab.gz" : "lab.idx");
        ASSERT(gz ? write_gz(xi, img, ni) : write_file(xi, img, ni));
        ASSERT(gz ? write_gz(yl, lb, nl) : write_file(yl, lb, nl));
        float *x = NULL;
        int64_t n = 0, h = 0, w = 0;
        ASSERT_OK(advex_idx_load_images(xi, &x, &n, &h, &w));
        ASSERT_EQ_INT(n, 3);
        ASSERT_EQ_INT(h, 4);
        ASSERT_EQ_INT(w, 5);
        for (size_t i = 0; i < sizeof px; i++) ASSERT(x[i] == (float)px[i] / 255.0f);
        free(x);
        int32_t *y = NULL;
        ASSERT_OK(advex_idx_load_labels(yl, &y, &n));
        ASSERT_EQ_INT(n, 3);
        ASSERT(y[0] == 2 && y[1] == 0 && y[2] == 5);
        free(y);

        char spec[1200];
        snprintf(spec, sizeof spec, "idx:%s,%s", xi, yl);
        advex_dataset ds;
        ASSERT_OK(advex_dataset_load(spec, NULL, 0, &ds));
        ASSERT_EQ_INT(ds.n, 3);
        ASSERT_EQ_INT(ds.c, 1);
        ASSERT_EQ_INT(ds.h, 4);
        ASSERT_EQ_INT(ds.w, 5);
        ASSERT_EQ_INT(ds.num_classes, 6);
        ASSERT(ds.class_names == NULL);
        ASSERT(ds.x[21] == (float)px[21] / 255.0f);
        advex_dataset_free(&ds);
        ASSERT(ds.x == NULL && ds.y == NULL && ds.n == 0);
    }
}

TEST(idx_errors) {
    make_pixels();
    unsigned char img[256], lb[64];
    const uint32_t di[3] = {3, 4, 5}, dl[1] = {3};
    size_t ni = make_idx(img, 0x803, 3, di, px, sizeof px);
    size_t nl = make_idx(lb, 0x801, 1, dl, lab, 3);
    float *x = NULL;
    int32_t *y = NULL;
    int64_t n, h, w;

    /* a label file where images are expected (and vice versa) */
    const char *p = tmp_path("labels-as-images.gz");
    ASSERT(write_gz(p, lb, nl));
    ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("labels-as-images.gz: not an IDX image file (magic 0x00000801)");
    p = tmp_path("images-as-labels");
    ASSERT(write_file(p, img, ni));
    ASSERT_STATUS(advex_idx_load_labels(p, &y, &n), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("images-as-labels: not an IDX label file (magic 0x00000803)");
    p = tmp_path("png");
    ASSERT(write_file(p, "\x89PNG\r\n\x1a\n", 8));
    ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("png: not an IDX image file (magic 0x89504e47)");
    p = tmp_path("empty");
    ASSERT(write_file(p, "", 0));
    ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("empty");

    /* truncated: raw, gzip data, gzip stream cut */
    p = tmp_path("trunc.idx");
    ASSERT(write_file(p, img, ni - 7));
    ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("trunc.idx: truncated");
    p = tmp_path("trunc.gz");
    ASSERT(write_gz(p, img, ni - 7));
    ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("trunc.gz: truncated");
    p = tmp_path("cut.gz");
    ASSERT(write_gz(p, img, ni));
    struct stat st;
    ASSERT(stat(p, &st) == 0);
    ASSERT(truncate(p, st.st_size - 12) == 0);
    ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("cut.gz");
    p = tmp_path("hdr.idx");
    ASSERT(write_file(p, img, 9));
    ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("hdr.idx");

    /* trailing garbage */
    unsigned char big[300];
    memcpy(big, img, ni);
    memcpy(big + ni, "junk", 4);
    p = tmp_path("trail.gz");
    ASSERT(write_gz(p, big, ni + 4));
    ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("trail.gz: unexpected data");

    /* zero and absurd dimensions */
    const uint32_t zero[3] = {0, 28, 28}, huge_hw[3] = {1, 100000, 28}, huge_n[3] = {200000000, 28, 28},
                   claims[3] = {100000000, 28, 28};
    const uint32_t *bad[] = {zero, huge_hw, huge_n};
    for (int k = 0; k < 3; k++) {
        p = tmp_path("dims.idx");
        size_t m = make_idx(big, 0x803, 3, bad[k], px, 16);
        ASSERT(write_file(p, big, m));
        ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_FORMAT);
        ASSERT_ERR_HAS("dims.idx: bad IDX dimension");
    }
    /* a header promising 78 GB over a 60-byte file fails fast, without the allocation */
    p = tmp_path("liar.idx");
    size_t m = make_idx(big, 0x803, 3, claims, px, sizeof px);
    ASSERT(write_file(p, big, m));
    ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("liar.idx: truncated");
    ASSERT(x == NULL);

    /* missing file, directory */
    p = tmp_path("missing-images.gz");
    ASSERT_STATUS(advex_idx_load_images(p, &x, &n, &h, &w), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("missing-images.gz: No such file or directory");
    ASSERT_STATUS(advex_idx_load_labels(advex_test_tmpdir(), &y, &n), ADVEX_ERR_IO);

    /* image and label counts differ */
    const uint32_t dl2[1] = {2};
    p = tmp_path("i.idx");
    ASSERT(write_file(p, img, ni));
    const char *q = tmp_path("l2.idx");
    nl = make_idx(lb, 0x801, 1, dl2, lab, 2);
    ASSERT(write_file(q, lb, nl));
    char spec[1200];
    snprintf(spec, sizeof spec, "idx:%s,%s", p, q);
    advex_dataset ds;
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &ds), ADVEX_ERR_SHAPE);
    ASSERT_ERR_HAS("image/label count mismatch");
    ASSERT_ERR_HAS("i.idx has 3");
    ASSERT_ERR_HAS("l2.idx has 2");
    ASSERT(ds.x == NULL && ds.y == NULL);
}

/* Corrupt raw and gzip IDX files must never crash or leak (ASan build). */
TEST(idx_fuzz) {
    make_pixels();
    unsigned char img[256];
    const uint32_t di[3] = {3, 4, 5};
    size_t ni = make_idx(img, 0x803, 3, di, px, sizeof px);
    advex_rng r;
    advex_rng_seed(&r, 99);
    for (int it = 0; it < 1000; it++) {
        unsigned char buf[256];
        memcpy(buf, img, ni);
        size_t len = ni;
        int edits = 1 + (int)advex_rng_below(&r, 3);
        for (int e = 0; e < edits; e++) buf[advex_rng_below(&r, 16)] = (unsigned char)advex_rng_below(&r, 256);
        if (advex_rng_below(&r, 4) == 0) len = (size_t)advex_rng_below(&r, (uint64_t)ni + 1);
        const char *p = tmp_path((it & 1) ? "fz.gz" : "fz.idx");
        ASSERT((it & 1) ? write_gz(p, buf, len) : write_file(p, buf, len));
        float *x = NULL;
        int64_t n, h, w;
        advex_status st = advex_idx_load_images(p, &x, &n, &h, &w);
        if (st == ADVEX_OK) free(x);
        else ASSERT(x == NULL && advex_last_error()[0] != '\0');
        int32_t *y = NULL;
        if (advex_idx_load_labels(p, &y, &n) == ADVEX_OK) free(y);
    }
}

/* ---- dataset specs ------------------------------------------------------------------------ */

static int save_u8_images(const char *p, int64_t n, int64_t hh, int64_t ww) {
    unsigned char b[1024];
    for (int64_t i = 0; i < n * hh * ww; i++) b[i] = (unsigned char)(i * 7);
    char dict[160];
    snprintf(dict, sizeof dict, "{'descr': '|u1', 'fortran_order': False, 'shape': (%lld, %lld, %lld), }",
             (long long)n, (long long)hh, (long long)ww);
    return write_npy_raw(p, 1, dict, b, (size_t)(n * hh * ww));
}

TEST(dataset_npy) {
    /* (N,H,W) uint8 -> (N,1,H,W) scaled; int64 labels */
    const char *xp = tmp_path("dx.npy"), *yp = tmp_path("dy.npy");
    ASSERT(save_u8_images(xp, 5, 3, 2));
    const int64_t l[5] = {1, 4, 0, 2, 2};
    ASSERT(write_npy_raw(yp, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", l, sizeof l));
    char spec[1200];
    snprintf(spec, sizeof spec, "npy:%s,%s", xp, yp);
    advex_dataset ds;
    ASSERT_OK(advex_dataset_load(spec, NULL, 0, &ds));
    ASSERT_EQ_INT(ds.n, 5);
    ASSERT_EQ_INT(ds.c, 1);
    ASSERT_EQ_INT(ds.h, 3);
    ASSERT_EQ_INT(ds.w, 2);
    ASSERT_EQ_INT(ds.num_classes, 5);
    ASSERT(ds.y[1] == 4);
    ASSERT(ds.x[9] == (float)(unsigned char)(9 * 7) / 255.0f);
    advex_dataset_free(&ds);

    /* limit */
    ASSERT_OK(advex_dataset_load(spec, NULL, 2, &ds));
    ASSERT_EQ_INT(ds.n, 2);
    ASSERT_EQ_INT(ds.num_classes, 5);
    ASSERT(ds.x[11] == (float)(unsigned char)(11 * 7) / 255.0f);
    advex_dataset_free(&ds);

    /* (N,C,H,W) float32 written by our own writer; unlabelled when Y is omitted */
    float x[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++) x[i] = (float)i / 23.0f;
    int64_t dims[4] = {2, 3, 2, 2};
    const char *fp = tmp_path("nchw.npy");
    ASSERT_OK(advex_npy_save_f32(fp, x, 4, dims));
    snprintf(spec, sizeof spec, "npy:%s", fp);
    ASSERT_OK(advex_dataset_load(spec, NULL, 0, &ds));
    ASSERT_EQ_INT(ds.n, 2);
    ASSERT_EQ_INT(ds.c, 3);
    ASSERT(ds.y == NULL);
    ASSERT(memcmp(ds.x, x, sizeof x) == 0);
    advex_dataset_free(&ds);

    /* wrong rank */
    int64_t flat[2] = {2, 12};
    ASSERT_OK(advex_npy_save_f32(fp, x, 2, flat));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &ds), ADVEX_ERR_SHAPE);
    ASSERT_ERR_HAS("nchw.npy: images must be (N,C,H,W) or (N,H,W), got shape (2, 12)");
}

TEST(dataset_npy_errors) {
    advex_dataset ds;
    char spec[1200];
    float x[2 * 3 * 3];
    for (int i = 0; i < 18; i++) x[i] = 0.5f;
    int64_t dims[3] = {2, 3, 3};
    const char *xp = tmp_path("bad-x.npy"), *yp = tmp_path("bad-y.npy");
    int32_t l[3] = {0, 1, 1};

    /* NaN / Inf */
    x[17] = NAN;
    ASSERT_OK(advex_npy_save_f32(xp, x, 3, dims));
    snprintf(spec, sizeof spec, "npy:%s", xp);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &ds), ADVEX_ERR_NUMERIC);
    ASSERT_ERR_HAS("bad-x.npy: element 17 is NaN");
    x[17] = INFINITY;
    ASSERT_OK(advex_npy_save_f32(xp, x, 3, dims));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &ds), ADVEX_ERR_NUMERIC);
    ASSERT_ERR_HAS("bad-x.npy: element 17 is +Inf");
    /* ... but the limit excludes the bad example */
    ASSERT_OK(advex_dataset_load(spec, NULL, 1, &ds));
    advex_dataset_free(&ds);

    /* outside [0,1] */
    x[17] = 0.5f;
    x[3] = -0.3f;
    x[4] = 1.2f;
    ASSERT_OK(advex_npy_save_f32(xp, x, 3, dims));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &ds), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("bad-x.npy: values outside [0,1]: min -0.3, max 1.2 (advex expects inputs in [0,1]");
    ASSERT(ds.x == NULL);

    /* count mismatch */
    x[3] = x[4] = 0.f;
    ASSERT_OK(advex_npy_save_f32(xp, x, 3, dims));
    ASSERT_OK(advex_npy_save_i32(yp, l, 3));
    snprintf(spec, sizeof spec, "npy:%s,%s", xp, yp);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &ds), ADVEX_ERR_SHAPE);
    ASSERT_ERR_HAS("image/label count mismatch: ");
    ASSERT_ERR_HAS("bad-x.npy has 2, ");
    ASSERT_ERR_HAS("bad-y.npy has 3");

    /* no images */
    int64_t none[3] = {0, 3, 3};
    ASSERT_OK(advex_npy_save_f32(xp, x, 3, none));
    snprintf(spec, sizeof spec, "npy:%s", xp);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &ds), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("bad-x.npy");

    /* missing files, malformed specs */
    snprintf(spec, sizeof spec, "npy:%s,%s", tmp_path("gone-x.npy"), yp);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &ds), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("gone-x.npy: No such file or directory");
    ASSERT_STATUS(advex_dataset_load("npy:", NULL, 0, &ds), ADVEX_ERR_ARG);
    ASSERT_STATUS(advex_dataset_load("npy:a.npy,", NULL, 0, &ds), ADVEX_ERR_ARG);
}

TEST(dataset_unknown_spec) {
    advex_dataset ds;
    ASSERT_STATUS(advex_dataset_load("foo", NULL, 0, &ds), ADVEX_ERR_ARG);
    ASSERT_ERR_HAS("unknown data source 'foo' (expected fashion-mnist[:train|:test], npy:X.npy,Y.npy, "
                   "idx:IMAGES,LABELS, cifar10:DIR[:train|:test] or folder:DIR[,LIST])");
    ASSERT_STATUS(advex_dataset_load("", NULL, 0, &ds), ADVEX_ERR_ARG);
    ASSERT_STATUS(advex_dataset_load(NULL, NULL, 0, &ds), ADVEX_ERR_ARG);
    ASSERT_STATUS(advex_dataset_load("fashion-mnist:val", NULL, 0, &ds), ADVEX_ERR_ARG);
    ASSERT_ERR_HAS("'val'");
    ASSERT_STATUS(advex_dataset_load("fashion-mnist", NULL, 0, NULL), ADVEX_ERR_ARG);
    ASSERT(mkdir(tmp_path("empty-dir"), 0755) == 0);
    ASSERT_STATUS(advex_dataset_load("fashion-mnist", tmp_path("empty-dir"), 0, &ds), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("t10k-images-idx3-ubyte.gz not found");
    ASSERT_STATUS(advex_dataset_load("fashion-mnist", tmp_path("no-such-dir"), 0, &ds), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("no-such-dir: No such file or directory");
}

/* A small fake Fashion-MNIST (uncompressed names) found through $ADVEX_DATA. */
TEST(dataset_env_dir) {
    make_pixels();
    const char *dir = tmp_path("fake-fmnist");
    ASSERT(mkdir(dir, 0755) == 0);
    unsigned char img[256], lb[64];
    const uint32_t di[3] = {3, 4, 5}, dl[1] = {3};
    size_t ni = make_idx(img, 0x803, 3, di, px, sizeof px);
    size_t nl = make_idx(lb, 0x801, 1, dl, lab, 3);
    ASSERT(write_file(tmp_path("fake-fmnist/train-images-idx3-ubyte"), img, ni));
    ASSERT(write_gz(tmp_path("fake-fmnist/train-labels-idx1-ubyte.gz"), lb, nl));
    ASSERT(setenv("ADVEX_DATA", dir, 1) == 0);
    advex_dataset ds;
    advex_status s = advex_dataset_load("fashion-mnist:train", NULL, 0, &ds);
    unsetenv("ADVEX_DATA");
    ASSERT_OK(s);
    ASSERT_EQ_INT(ds.n, 3);
    ASSERT_EQ_INT(ds.num_classes, 10);
    ASSERT(ds.class_names == advex_fashion_mnist_classes);
    advex_dataset_free(&ds);
    /* explicit data_dir */
    ASSERT_OK(advex_dataset_load("fashion-mnist:train", dir, 2, &ds));
    ASSERT_EQ_INT(ds.n, 2);
    advex_dataset_free(&ds);
}

/* ---- the real data (Debian package); missing data is a failure, not a skip ----------------- */

TEST(fashion_mnist_test_set) {
    struct stat st;
    ASSERT_MSG(stat(FMNIST_DIR "/t10k-images-idx3-ubyte.gz", &st) == 0,
               "%s missing: install the Fashion-MNIST data package", FMNIST_DIR);
    unsetenv("ADVEX_DATA");
    advex_dataset ds;
    ASSERT_OK(advex_dataset_load("fashion-mnist", NULL, 0, &ds));
    ASSERT_EQ_INT(ds.n, 10000);
    ASSERT_EQ_INT(ds.c, 1);
    ASSERT_EQ_INT(ds.h, 28);
    ASSERT_EQ_INT(ds.w, 28);
    ASSERT_EQ_INT(ds.num_classes, 10);
    ASSERT_EQ_INT(ds.y[0], 9);
    ASSERT(strcmp(ds.class_names[ds.y[0]], "Ankle boot") == 0);
    ASSERT(strcmp(advex_fashion_mnist_classes[0], "T-shirt/top") == 0);
    int count[10] = {0};
    for (int64_t i = 0; i < ds.n; i++) {
        ASSERT(ds.y[i] >= 0 && ds.y[i] < 10);
        count[ds.y[i]]++;
    }
    for (int k = 0; k < 10; k++) ASSERT_EQ_INT(count[k], 1000);
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < ds.n * 784; i++) {
        if (ds.x[i] < lo) lo = ds.x[i];
        if (ds.x[i] > hi) hi = ds.x[i];
    }
    ASSERT(lo == 0.0f && hi == 1.0f);
    advex_dataset_free(&ds);

    ASSERT_OK(advex_dataset_load("fashion-mnist:test", FMNIST_DIR, 100, &ds));
    ASSERT_EQ_INT(ds.n, 100);
    ASSERT_EQ_INT(ds.y[0], 9);
    advex_dataset_free(&ds);
}

TEST(fashion_mnist_train_set) {
    struct timespec t0, t1;
    advex_dataset ds;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ASSERT_OK(advex_dataset_load("fashion-mnist:train", FMNIST_DIR, 0, &ds));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("  fashion-mnist:train loaded in %.3f s\n", sec);
    ASSERT_EQ_INT(ds.n, 60000);
    ASSERT_EQ_INT(ds.num_classes, 10);
    advex_dataset_free(&ds);
}

/* A bare named set is its training split when the caller asks for "train" (what `advex
 * train` does) and its test split otherwise; overlap counts shared images exactly. */
TEST(dataset_default_split_and_overlap) {
    advex_dataset tr, te, bare, bare_tr;
    ASSERT_OK(advex_dataset_load("fashion-mnist:train", FMNIST_DIR, 300, &tr));
    ASSERT_OK(advex_dataset_load("fashion-mnist:test", FMNIST_DIR, 300, &te));
    ASSERT_OK(advex_dataset_load_split("fashion-mnist", "train", FMNIST_DIR, 300, &bare_tr));
    ASSERT_OK(advex_dataset_load("fashion-mnist", FMNIST_DIR, 300, &bare));
    ASSERT(memcmp(bare_tr.x, tr.x, 300 * 784 * sizeof(float)) == 0);
    ASSERT(memcmp(bare_tr.y, tr.y, 300 * sizeof(int32_t)) == 0);
    ASSERT(memcmp(bare.x, te.x, 300 * 784 * sizeof(float)) == 0);
    int64_t k = -1;
    ASSERT_OK(advex_dataset_overlap(&tr, &te, &k));
    ASSERT_EQ_INT(k, 0); /* Fashion-MNIST's splits share no image */
    ASSERT_OK(advex_dataset_overlap(&tr, &bare_tr, &k));
    ASSERT_EQ_INT(k, 300);
    /* a partial overlap, in another order, and one pixel changed is not the same image */
    float *sw = te.x + 7 * 784;
    memcpy(sw, tr.x + 250 * 784, 784 * sizeof(float));
    memcpy(te.x + 9 * 784, tr.x + 3 * 784, 784 * sizeof(float));
    memcpy(te.x + 11 * 784, tr.x + 4 * 784, 784 * sizeof(float));
    te.x[11 * 784 + 400] = te.x[11 * 784 + 400] > 0.5f ? 0.0f : 1.0f;
    ASSERT_OK(advex_dataset_overlap(&tr, &te, &k));
    ASSERT_EQ_INT(k, 2);
    advex_dataset_free(&bare); /* (the failing load below clears it first) */
    ASSERT_STATUS(advex_dataset_load_split("fashion-mnist", "validation", FMNIST_DIR, 1, &bare), ADVEX_ERR_ARG);
    advex_dataset_free(&tr);
    advex_dataset_free(&te);
    advex_dataset_free(&bare_tr);
}

TEST_MAIN(TEST_ENTRY(npy_roundtrip_f32), TEST_ENTRY(npy_roundtrip_i32),
          TEST_ENTRY(npy_header_variants), TEST_ENTRY(npy_uint8_scaling),
          TEST_ENTRY(npy_label_dtypes), TEST_ENTRY(npy_errors), TEST_ENTRY(npy_fuzz_headers),
          TEST_ENTRY(npy_atomic_write_failures), TEST_ENTRY(idx_gzip_and_raw),
          TEST_ENTRY(idx_errors), TEST_ENTRY(idx_fuzz), TEST_ENTRY(dataset_npy), TEST_ENTRY(dataset_npy_errors),
          TEST_ENTRY(dataset_unknown_spec), TEST_ENTRY(dataset_env_dir),
          TEST_ENTRY(fashion_mnist_test_set), TEST_ENTRY(fashion_mnist_train_set),
          TEST_ENTRY(dataset_default_split_and_overlap))
