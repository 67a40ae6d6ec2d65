/* advex_dataset_load: turns a spec string ("fashion-mnist:test", "npy:X.npy,Y.npy",
 * "idx:IMAGES,LABELS", "cifar10:DIR", "folder:DIR[,LIST]") into float32 (N,C,H,W) images in
 * [0,1] plus int32 labels, with the checks every consumer relies on (counts match, finite, in
 * range, limit applied) and the preprocessing asked for (Resize, CenterCrop). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"

const char *const advex_fashion_mnist_classes[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

#define FMNIST_SYSTEM_DIR "/usr/share/datasets/fashion-mnist"

void advex_dataset_free(advex_dataset *d) {
    if (!d) return;
    free(d->x);
    free(d->y);
    if (d->names_owned) free((void *)(uintptr_t)d->class_names); /* one block (folder.c) */
    memset(d, 0, sizeof *d);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir/name, or dir/name without ".gz" if only the uncompressed file is there. */
static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    if (!file_exists(p) && b > 3 && strcmp(name + b - 3, ".gz") == 0) {
        p[a + 1 + b - 3] = '\0';
        if (!file_exists(p)) p[a + 1 + b - 3] = '.'; /* report the .gz name */
    }
    return p;
}

/* num_classes from the largest label (over the whole file, before `limit`), or a check
 * of it against a named set's count. */
static advex_status set_classes(advex_dataset *d, const char *yname, int32_t ymax) {
    if (!d->y) return ADVEX_OK;
    if (!d->class_names) d->num_classes = (int64_t)ymax + 1;
    else if (ymax >= d->num_classes)
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: label %d out of range (this set has %lld classes)", yname,
                               (int)ymax, (long long)d->num_classes);
    return ADVEX_OK;
}

/* The kept examples against what the consumer takes; errors name the file. */
static advex_status check_expect(const advex_dataset *d, const char *xname, const char *yname,
                                 const advex_data_expect *want) {
    if (!want) return ADVEX_OK;
    if ((want->c && want->c != d->c) || (want->h && want->h != d->h) || (want->w && want->w != d->w))
        return advex_set_error(ADVEX_ERR_SHAPE, "%s: images are %lldx%lldx%lld but the model expects %lldx%lldx%lld%s",
                               xname, (long long)d->c, (long long)d->h, (long long)d->w, (long long)want->c,
                               (long long)want->h, (long long)want->w,
                               want->c == d->c ? " (pass --resize S --crop C to resample them)" : "");
    for (int64_t i = 0; d->y && want->classes > 0 && i < d->n; i++)
        if (d->y[i] >= want->classes)
            return advex_set_error(ADVEX_ERR_FORMAT, "%s: label %d of example %lld is outside the model's %lld classes",
                                   yname, (int)d->y[i], (long long)i, (long long)want->classes);
    return ADVEX_OK;
}

/* Images and labels are both loaded; check they agree and fill in the dataset. */
static advex_status finish(advex_dataset *d, const char *xname, const char *yname, int64_t ny,
                           int64_t limit) {
    if (d->n <= 0)
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: contains no images", xname);
    if (d->y && ny != d->n)
        return advex_set_error(ADVEX_ERR_SHAPE, "image/label count mismatch: %s has %lld, %s has %lld",
                               xname, (long long)d->n, yname, (long long)ny);
    if (d->y) { /* classes counted over the whole file, before `limit` */
        int32_t mx = 0;
        for (int64_t i = 0; i < d->n; i++) {
            if (d->y[i] < 0)
                return advex_set_error(ADVEX_ERR_FORMAT, "%s: label %lld is negative (%d)", yname,
                                       (long long)i, (int)d->y[i]);
            if (d->y[i] > mx) mx = d->y[i];
        }
        advex_status s = set_classes(d, yname, mx);
        if (s) return s;
    }
    if (limit > 0 && limit < d->n) { /* keep the first `limit`, give the rest back */
        int64_t chw = d->c * d->h * d->w; /* fits: n*chw was allocated */
        float *x = realloc(d->x, (size_t)(limit * chw) * sizeof(float));
        if (x) d->x = x;
        if (d->y) {
            int32_t *y = realloc(d->y, (size_t)limit * sizeof(int32_t));
            if (y) d->y = y;
        }
        d->n = limit;
    }
    return ADVEX_OK;
}

/* Resize / crop asked for: the size is checked after them, not on the file's header. */
static int resamples(const advex_data_prep *prep) { return prep && (prep->resize > 0 || prep->crop > 0); }

static const advex_data_expect *inner_expect(const advex_data_expect *want, const advex_data_prep *prep,
                                             advex_data_expect *buf) {
    if (!want || !resamples(prep)) return want;
    *buf = *want;
    buf->h = buf->w = 0;
    return buf;
}

static advex_status load_idx_pair(const char *xpath, const char *ypath, int64_t limit,
                                  const advex_data_expect *want, const advex_data_prep *prep, advex_dataset *d) {
    int ymax = 0;
    advex_data_expect in;
    advex_status s = advex_idx_load_pair(xpath, ypath, limit, inner_expect(want, prep, &in), d, &ymax);
    if (!s) s = set_classes(d, ypath, ymax);
    if (!s) s = advex_dataset_prep_float(d, xpath, prep);
    return s ? s : check_expect(d, xpath, ypath, want);
}

static advex_status load_npy_pair(const char *xpath, const char *ypath, int64_t limit,
                                  const advex_data_expect *want, const advex_data_prep *prep, advex_dataset *d) {
    int ndim = 0;
    int64_t dims[6];
    advex_status s = advex_npy_load_f32(xpath, &d->x, &ndim, dims);
    if (s != ADVEX_OK) return s;
    if (ndim == 3) {
        d->n = dims[0]; d->c = 1; d->h = dims[1]; d->w = dims[2];
    } else if (ndim == 4) {
        d->n = dims[0]; d->c = dims[1]; d->h = dims[2]; d->w = dims[3];
    } else {
        char shape[160];
        size_t k = 0;
        for (int i = 0; i < ndim && k < sizeof shape; i++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, i ? ", %lld" : "%lld", (long long)dims[i]);
        if (ndim == 0) shape[0] = '\0';
        return advex_set_error(ADVEX_ERR_SHAPE,
                               "%s: images must be (N,C,H,W) or (N,H,W), got shape (%s%s)", xpath,
                               shape, ndim == 1 ? "," : "");
    }
    if (d->n > 0 && (d->c <= 0 || d->h <= 0 || d->w <= 0))
        return advex_set_error(ADVEX_ERR_SHAPE, "%s: image dimensions must be positive", xpath);
    int64_t ny = 0;
    if (ypath && (s = advex_npy_load_labels(ypath, &d->y, &ny)) != ADVEX_OK) return s;
    if ((s = finish(d, xpath, ypath, ny, limit)) != ADVEX_OK) return s;
    if (!resamples(prep) && (s = check_expect(d, xpath, ypath, want)) != ADVEX_OK) return s;
    /* only the examples kept after `limit` are checked (and used) */
    if ((s = advex_data_check_unit(xpath, d->x, d->n * d->c * d->h * d->w))) return s;
    if (!resamples(prep)) return ADVEX_OK;
    if ((s = advex_dataset_prep_float(d, xpath, prep))) return s;
    return check_expect(d, xpath, ypath, want);
}

static advex_status load_fashion_mnist(const char *split, const char *data_dir, int64_t limit,
                                       const advex_data_expect *want, const advex_data_prep *prep, advex_dataset *d) {
    const char *ximg, *ylab;
    if (!split || strcmp(split, "test") == 0) {
        ximg = "t10k-images-idx3-ubyte.gz";
        ylab = "t10k-labels-idx1-ubyte.gz";
    } else if (strcmp(split, "train") == 0) {
        ximg = "train-images-idx3-ubyte.gz";
        ylab = "train-labels-idx1-ubyte.gz";
    } else {
        return advex_set_error(ADVEX_ERR_ARG, "unknown fashion-mnist split '%s' (expected train or test)",
                               split);
    }
    /* where: the caller's directory, else $ADVEX_DATA, else the system package; one place
     * only: a set but wrong $ADVEX_DATA is an error, not a silent fall back */
    const char *env = getenv("ADVEX_DATA"), *dir, *from;
    if (data_dir && *data_dir) { dir = data_dir; from = "the data directory"; }
    else if (env && *env) { dir = env; from = "$ADVEX_DATA"; }
    else { dir = FMNIST_SYSTEM_DIR; from = NULL; }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        int e = stat(dir, &sb) == 0 ? ENOTDIR : errno;
        if (from && from[0] == '$')
            return advex_set_error(ADVEX_ERR_IO, "fashion-mnist: $ADVEX_DATA is '%s': %s (unset it to use %s)", dir,
                                   strerror(e), FMNIST_SYSTEM_DIR);
        return advex_set_error(ADVEX_ERR_IO, "fashion-mnist: %s: %s%s", dir, strerror(e),
                               from ? "" : " (install the Fashion-MNIST data, set $ADVEX_DATA or pass a data directory)");
    }
    char *xpath = join_path(dir, ximg), *ypath = NULL;
    if (!xpath) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    if (!file_exists(xpath)) {
        advex_status s = advex_set_error(ADVEX_ERR_IO, "fashion-mnist: %s not found in %s%s%s%s", ximg, dir,
                                         from ? " (" : "", from ? from : "", from ? ")" : "");
        free(xpath);
        return s;
    }
    ypath = join_path(dir, ylab); /* labels live beside the images */
    if (!ypath) { free(xpath); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); }
    d->num_classes = 10;
    d->class_names = advex_fashion_mnist_classes;
    advex_status s = load_idx_pair(xpath, ypath, limit, want, prep, d);
    free(xpath);
    free(ypath);
    return s;
}

/* "X,Y" -> two strings (Y NULL when there is no comma: unlabelled). Split at the last
 * comma so directory names with commas still work for the image file. */
static advex_status split_pair(const char *rest, const char *spec, char **x, char **y) {
    *x = advex_strdup(rest);
    *y = NULL;
    if (!*x) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    char *comma = strrchr(*x, ',');
    if (comma) {
        *comma = '\0';
        *y = comma + 1;
    }
    if (!**x || (*y && !**y)) {
        free(*x);
        *x = NULL;
        *y = NULL;
        return advex_set_error(ADVEX_ERR_ARG, "data source '%s': missing file name", spec);
    }
    return ADVEX_OK;
}

advex_status advex_dataset_load(const char *spec, const char *data_dir, int64_t limit,
                                advex_dataset *out) {
    return advex_dataset_load_expect(spec, "test", data_dir, limit, NULL, out);
}

advex_status advex_dataset_load_split(const char *spec, const char *default_split, const char *data_dir,
                                      int64_t limit, advex_dataset *out) {
    return advex_dataset_load_expect(spec, default_split, data_dir, limit, NULL, out);
}

advex_status advex_dataset_load_expect(const char *spec, const char *default_split, const char *data_dir,
                                       int64_t limit, const advex_data_expect *want, advex_dataset *out) {
    return advex_dataset_load_prep(spec, default_split, data_dir, limit, want, NULL, out);
}

advex_status advex_dataset_load_prep(const char *spec, const char *default_split, const char *data_dir,
                                     int64_t limit, const advex_data_expect *want, const advex_data_prep *prep,
                                     advex_dataset *out) {
    if (!out) return advex_set_error(ADVEX_ERR_ARG, "advex_dataset_load: NULL output");
    memset(out, 0, sizeof *out);
    if (!spec) spec = "";
    if (prep && (prep->resize < 0 || prep->crop < 0 || prep->resize > 65536 || prep->crop > 65536))
        return advex_set_error(ADVEX_ERR_ARG, "preprocessing: resize %lld / crop %lld outside [0, 65536]",
                               (long long)prep->resize, (long long)prep->crop);
    advex_status s;
    if (strcmp(spec, "fashion-mnist") == 0) {
        s = load_fashion_mnist(default_split ? default_split : "test", data_dir, limit, want, prep, out);
    } else if (strncmp(spec, "fashion-mnist:", 14) == 0) {
        s = load_fashion_mnist(spec + 14, data_dir, limit, want, prep, out);
    } else if (strncmp(spec, "npy:", 4) == 0 || strncmp(spec, "idx:", 4) == 0) {
        char *x, *y;
        s = split_pair(spec + 4, spec, &x, &y);
        if (s == ADVEX_OK) {
            s = spec[0] == 'n' ? load_npy_pair(x, y, limit, want, prep, out)
                               : load_idx_pair(x, y, limit, want, prep, out);
            free(x); /* y points into x */
        }
    } else if (strcmp(spec, "cifar10") == 0 || strncmp(spec, "cifar10:", 8) == 0) {
        s = advex_cifar10_load(spec[7] ? spec + 8 : "", default_split, data_dir, limit, want, prep, out);
        if (!s) s = check_expect(out, spec, spec, want);
    } else if (strncmp(spec, "folder:", 7) == 0) {
        s = advex_folder_load(spec + 7, limit, want, prep, out);
        if (!s) s = check_expect(out, spec, spec, want);
    } else {
        return advex_set_error(ADVEX_ERR_ARG,
                               "unknown data source '%s' (expected fashion-mnist[:train|:test], npy:X.npy,Y.npy, "
                               "idx:IMAGES,LABELS, cifar10:DIR[:train|:test] or folder:DIR[,LIST])", spec);
    }
    if (s != ADVEX_OK) advex_dataset_free(out);
    return s;
}
