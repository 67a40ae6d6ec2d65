/* advex_dataset_load: turns a spec string ("fashion-mnist:test", "npy:X.npy,Y.npy",
 * "idx:IMAGES,LABELS") into float32 (N,C,H,W) images in [0,1] plus int32 labels, with
 * the checks every consumer relies on (counts match, finite, in range, limit applied). */
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
        if (!d->class_names) d->num_classes = (int64_t)mx + 1;
        else if (mx >= d->num_classes)
            return advex_set_error(ADVEX_ERR_FORMAT, "%s: label %d out of range (this set has %lld classes)",
                                   yname, (int)mx, (long long)d->num_classes);
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

static advex_status load_idx_pair(const char *xpath, const char *ypath, int64_t limit,
                                  advex_dataset *d) {
    advex_status s = advex_idx_load_images(xpath, &d->x, &d->n, &d->h, &d->w);
    if (s != ADVEX_OK) return s;
    d->c = 1;
    int64_t ny = 0;
    if (ypath && (s = advex_idx_load_labels(ypath, &d->y, &ny)) != ADVEX_OK) return s;
    return finish(d, xpath, ypath, ny, limit);
}

static advex_status load_npy_pair(const char *xpath, const char *ypath, int64_t limit,
                                  advex_dataset *d) {
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
    /* only the examples kept after `limit` are checked (and used) */
    return advex_data_check_unit(xpath, d->x, d->n * d->c * d->h * d->w);
}

static advex_status load_fashion_mnist(const char *split, const char *data_dir, int64_t limit,
                                       advex_dataset *d) {
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
    /* where: the caller's directory only; else $ADVEX_DATA, then the system package */
    const char *env = getenv("ADVEX_DATA");
    const char *dirs[2];
    int ndirs = 0;
    if (data_dir && *data_dir) dirs[ndirs++] = data_dir;
    else {
        if (env && *env) dirs[ndirs++] = env;
        dirs[ndirs++] = FMNIST_SYSTEM_DIR;
    }
    char *xpath = NULL, *ypath = NULL;
    for (int i = 0; i < ndirs; i++) {
        free(xpath);
        xpath = join_path(dirs[i], ximg);
        if (!xpath) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        if (file_exists(xpath)) break;
    }
    if (!file_exists(xpath)) {
        advex_status s;
        if (data_dir && *data_dir)
            s = advex_set_error(ADVEX_ERR_IO, "fashion-mnist: %s not found in %s", ximg, data_dir);
        else if (env && *env)
            s = advex_set_error(ADVEX_ERR_IO,
                                "fashion-mnist: %s not found in $ADVEX_DATA (%s) or %s (install "
                                "the Fashion-MNIST data or pass a data directory)",
                                ximg, env, FMNIST_SYSTEM_DIR);
        else
            s = advex_set_error(ADVEX_ERR_IO,
                                "fashion-mnist: %s not found in %s (install the Fashion-MNIST "
                                "data, set $ADVEX_DATA or pass a data directory)",
                                ximg, FMNIST_SYSTEM_DIR);
        free(xpath);
        return s;
    }
    /* labels live beside the images */
    const char *slash = strrchr(xpath, '/');
    char *dir = malloc((size_t)(slash - xpath) + 1);
    if (dir) {
        memcpy(dir, xpath, (size_t)(slash - xpath));
        dir[slash - xpath] = '\0';
        ypath = join_path(dir, ylab);
        free(dir);
    }
    if (!ypath) { free(xpath); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); }
    d->num_classes = 10;
    d->class_names = advex_fashion_mnist_classes;
    advex_status s = load_idx_pair(xpath, ypath, limit, d);
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
    return advex_dataset_load_split(spec, "test", data_dir, limit, out);
}

advex_status advex_dataset_load_split(const char *spec, const char *default_split, const char *data_dir,
                                      int64_t limit, advex_dataset *out) {
    if (!out) return advex_set_error(ADVEX_ERR_ARG, "advex_dataset_load: NULL output");
    memset(out, 0, sizeof *out);
    if (!spec) spec = "";
    advex_status s;
    if (strcmp(spec, "fashion-mnist") == 0) {
        s = load_fashion_mnist(default_split ? default_split : "test", data_dir, limit, out);
    } else if (strncmp(spec, "fashion-mnist:", 14) == 0) {
        s = load_fashion_mnist(spec + 14, data_dir, limit, out);
    } else if (strncmp(spec, "npy:", 4) == 0 || strncmp(spec, "idx:", 4) == 0) {
        char *x, *y;
        s = split_pair(spec + 4, spec, &x, &y);
        if (s == ADVEX_OK) {
            s = spec[0] == 'n' ? load_npy_pair(x, y, limit, out) : load_idx_pair(x, y, limit, out);
            free(x); /* y points into x */
        }
    } else {
        return advex_set_error(ADVEX_ERR_ARG,
                               "unknown data source '%s' (expected fashion-mnist[:train|:test], "
                               "npy:X.npy,Y.npy or idx:IMAGES,LABELS)", spec);
    }
    if (s != ADVEX_OK) advex_dataset_free(out);
    return s;
}
