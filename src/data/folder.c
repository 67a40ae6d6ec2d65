/* folder:DIR[,LIST] — torchvision's ImageFolder layout, DIR/<class>/.../<image>: classes are the
 * sub-folders of DIR sorted by name (label = position), images the files under each class
 * folder with an image extension, in the order torchvision lists them (sorted(os.walk(...)),
 * then sorted file names: byte order). With LIST (RobustBench's imagenet_test_image_ids.txt):
 * only the "class/file" lines it names, in its order. Images are decoded one at a time
 * (PNG/JPEG, 8 bits as PIL) and preprocessed (Resize, CenterCrop) into the data set. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"

#define FOLDER_MAX_FILES ((int64_t)1 << 23) /* image files listed (ImageNet's training set: 1.28M) */
#define FOLDER_MAX_CLASSES 1000000
#define FOLDER_MAX_DEPTH 32                  /* nested folders below a class (symlink loops end here) */
#define FOLDER_MAX_LIST ((int64_t)256 << 20) /* bytes of a LIST file */

typedef struct entry {
    char *path;     /* DIR/class/sub/name, owned */
    size_t dir_off; /* sort key: path[dir_off, name_off - 1) is "class/sub", then the name */
    size_t name_off;
    int32_t label;
} entry;

typedef struct listing {
    char **classes; /* sorted */
    int64_t k;
    entry *e;
    int64_t n, cap;
} listing;

static void listing_free(listing *l) {
    for (int64_t i = 0; i < l->k; i++) free(l->classes[i]);
    free(l->classes);
    for (int64_t i = 0; i < l->n; i++) free(l->e[i].path);
    free(l->e);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Byte order on (folder, name): Python's order of sorted(os.walk(...)) and then sorted(fnames). */
static int cmp_entry(const void *pa, const void *pb) {
    const entry *a = pa, *b = pb;
    /* the folder without its trailing '/': Python compares "c/sub" < "c/sub-x" < "c/sub/x" */
    size_t la = a->name_off - 1 - a->dir_off, lb = b->name_off - 1 - b->dir_off, m = la < lb ? la : lb;
    int r = memcmp(a->path + a->dir_off, b->path + b->dir_off, m);
    if (r) return r;
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a->path + a->name_off, b->path + b->name_off);
}

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p) return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* torchvision's IMG_EXTENSIONS, case-insensitive. Only PNG and JPEG decode; the others are
 * listed (so the order and "the first N" stay torchvision's) and fail when read. */
static int image_name(const char *name) {
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        size_t m = strlen(ext[i]);
        if (n < m) continue;
        size_t k = 0;
        while (k < m && (name[n - m + k] | 0x20) == (ext[i][k] | 0x20)) k++;
        if (k == m) return 1;
    }
    return 0;
}

static advex_status add_entry(listing *l, char *path, size_t dir_off, size_t name_off, int32_t label) {
    if (l->n >= FOLDER_MAX_FILES) {
        free(path);
        return advex_set_error(ADVEX_ERR_LIMIT, "more than %lld image files", (long long)FOLDER_MAX_FILES);
    }
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 1024;
        entry *e = realloc(l->e, (size_t)cap * sizeof *e);
        if (!e) { free(path); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory listing image files"); }
        l->e = e;
        l->cap = cap;
    }
    l->e[l->n++] = (entry){path, dir_off, name_off, label};
    return ADVEX_OK;
}

/* The sub-folders of dir (following symbolic links, hidden ones included, as os.scandir's
 * is_dir()), sorted. */
static advex_status list_classes(const char *dir, listing *l) {
    DIR *d = opendir(dir);
    if (!d) return advex_data_errno(dir, errno);
    advex_status st = ADVEX_OK;
    int64_t cap = 0;
    struct dirent *de;
    while (!st && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char *p = join(dir, de->d_name);
        if (!p) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); break; }
        int isd = is_dir(p);
        free(p);
        if (!isd) continue;
        if (l->k >= FOLDER_MAX_CLASSES) { st = advex_set_error(ADVEX_ERR_LIMIT, "%s: more than %d class folders", dir,
                                                               FOLDER_MAX_CLASSES); break; }
        if (l->k == cap) {
            cap = cap ? cap * 2 : 64;
            char **c = realloc(l->classes, (size_t)cap * sizeof *c);
            if (!c) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); break; }
            l->classes = c;
        }
        if (!(l->classes[l->k] = advex_strdup(de->d_name))) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        else l->k++;
    }
    closedir(d);
    if (!st && l->k == 0)
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: no class sub-folders (folder:DIR reads DIR/<class>/<image>)", dir);
    if (!st) qsort(l->classes, (size_t)l->k, sizeof *l->classes, cmp_str);
    return st;
}

/* Every file with an image extension under path (a class folder at depth 0), recursively. */
static advex_status walk(listing *l, const char *path, size_t dir_off, int32_t label, int depth) {
    if (depth > FOLDER_MAX_DEPTH)
        return advex_set_error(ADVEX_ERR_LIMIT, "%s: folders nested deeper than %d (a symbolic link loop?)", path,
                               FOLDER_MAX_DEPTH);
    DIR *d = opendir(path);
    if (!d) return advex_data_errno(path, errno);
    advex_status st = ADVEX_OK;
    struct dirent *de;
    while (!st && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char *p = join(path, de->d_name);
        if (!p) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); break; }
        if (is_dir(p)) {
            st = walk(l, p, dir_off, label, depth + 1);
            free(p);
        } else if (image_name(de->d_name)) {
            st = add_entry(l, p, dir_off, strlen(path) + 1, label);
        } else {
            free(p);
        }
    }
    closedir(d);
    return st;
}

/* LIST: "class/file" lines (RobustBench's format), each a path under dir; blank lines and a
 * trailing '\r' ignored. The label is the class folder's position among dir's sub-folders. */
static advex_status read_list(listing *l, const char *dir, const char *list) {
    FILE *f = fopen(list, "rb");
    if (!f) return advex_data_errno(list, errno);
    char line[4096];
    int64_t lineno = 0, bytes = 0;
    advex_status st = ADVEX_OK;
    while (!st && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        bytes += (int64_t)len;
        if (bytes > FOLDER_MAX_LIST) { st = advex_set_error(ADVEX_ERR_LIMIT, "%s: longer than %lld bytes", list,
                                                            (long long)FOLDER_MAX_LIST); break; }
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            st = advex_set_error(ADVEX_ERR_FORMAT, "%s:%lld: line longer than %d bytes", list, (long long)lineno,
                                 (int)sizeof line - 2);
            break;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!len) continue;
        char *slash = strchr(line, '/');
        if (!slash || slash == line || !slash[1]) {
            st = advex_set_error(ADVEX_ERR_FORMAT, "%s:%lld: '%s' is not class/file", list, (long long)lineno, line);
            break;
        }
        *slash = '\0';
        char *key = line, **hit = bsearch(&key, l->classes, (size_t)l->k, sizeof *l->classes, cmp_str);
        if (!hit) {
            st = advex_set_error(ADVEX_ERR_FORMAT, "%s:%lld: class folder '%s' is not in %s", list, (long long)lineno,
                                 line, dir);
            break;
        }
        *slash = '/';
        char *p = join(dir, line);
        if (!p) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); break; }
        st = add_entry(l, p, 0, 0, (int32_t)(hit - l->classes));
    }
    if (!st && ferror(f)) st = advex_data_errno(list, EIO);
    fclose(f);
    if (!st && l->n == 0) st = advex_set_error(ADVEX_ERR_FORMAT, "%s: lists no images", list);
    return st;
}

static advex_status list_images(listing *l, const char *dir, const char *list) {
    advex_status st = list_classes(dir, l);
    if (st || list) return st ? st : read_list(l, dir, list);
    size_t off = strlen(dir) + 1;
    for (int64_t c = 0; c < l->k && !st; c++) {
        char *p = join(dir, l->classes[c]);
        if (!p) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        int64_t first = l->n;
        st = walk(l, p, off, (int32_t)c, 0);
        free(p);
        if (!st && l->n > first) qsort(l->e + first, (size_t)(l->n - first), sizeof *l->e, cmp_entry);
    }
    if (!st && l->n == 0)
        st = advex_set_error(ADVEX_ERR_FORMAT, "%s: no image files (.png, .jpg, .jpeg) in its class sub-folders", dir);
    return st;
}

/* The class names as one block: k pointers, then the strings. */
static const char *const *names_block(const listing *l) {
    size_t bytes = (size_t)l->k * sizeof(char *);
    for (int64_t i = 0; i < l->k; i++) bytes += strlen(l->classes[i]) + 1;
    char **p = malloc(bytes);
    if (!p) return NULL;
    char *s = (char *)(p + l->k);
    for (int64_t i = 0; i < l->k; i++) {
        size_t n = strlen(l->classes[i]) + 1;
        memcpy(s, l->classes[i], n);
        p[i] = s;
        s += n;
    }
    return (const char *const *)p;
}

/* The first image fixes the size every image must have after preprocessing: checked against
 * what the consumer takes, and the whole data set against the memory cap, before more decoding. */
static advex_status first_image(const char *path, const advex_prep_plan_t *pl, const advex_data_prep *prep,
                                const advex_data_expect *want, int c, int64_t keep, advex_dataset *d) {
    int explicit_prep = prep && (prep->resize > 0 || prep->crop > 0);
    if (want && ((want->h && want->h != pl->oh) || (want->w && want->w != pl->ow)))
        return advex_set_error(ADVEX_ERR_SHAPE, "%s: image is %lldx%lld (width x height)%s but the model expects "
                               "%lldx%lld; pass --resize S --crop C", path, (long long)pl->ow, (long long)pl->oh,
                               explicit_prep ? " after --resize/--crop" : "", (long long)want->w, (long long)want->h);
    int64_t dim = c * pl->oh * pl->ow;
    advex_status st = advex_data_size_check(path, keep, dim * (int64_t)sizeof(float) + 4, "examples");
    if (st) return st;
    d->x = malloc((size_t)(keep * dim) * sizeof(float));
    d->y = malloc((size_t)keep * sizeof(int32_t));
    if (!d->x || !d->y) return advex_set_error(ADVEX_ERR_NOMEM, "%s: cannot allocate %lld examples", path, (long long)keep);
    d->c = c;
    d->h = pl->oh;
    d->w = pl->ow;
    return ADVEX_OK;
}

/* The first `keep` listed images, decoded one at a time and preprocessed into d. */
static advex_status decode_all(const listing *l, int64_t keep, const advex_data_expect *want,
                               const advex_data_prep *prep, advex_dataset *d) {
    if (want && want->c && want->c != 1 && want->c != 3)
        return advex_set_error(ADVEX_ERR_SHAPE, "%s: images have 1 or 3 channels but the model expects %lld",
                               l->e[0].path, (long long)want->c);
    int c = want && want->c == 1 ? 1 : 3;
    int64_t reserved = 0;
    advex_status st = ADVEX_OK;
    for (int64_t i = 0; i < keep && !st; i++) {
        const char *path = l->e[i].path;
        advex_decode_limits lim = {ADVEX_IMAGE_MAX_PIXELS, advex_decode_budget(reserved)};
        advex_img8 im;
        advex_prep_plan_t pl;
        if ((st = advex_img8_read(path, &lim, &im))) break;
        if ((st = advex_prep_plan(im.h, im.w, prep, want, 1, &pl))) st = advex_error_prefix(st, path);
        else if (i == 0) {
            st = first_image(path, &pl, prep, want, c, keep, d);
            reserved = keep * (c * pl.oh * pl.ow * (int64_t)sizeof(float) + 4);
        } else if (pl.oh != d->h || pl.ow != d->w) {
            st = advex_set_error(ADVEX_ERR_SHAPE, "%s: image is %lldx%lld (width x height) after preprocessing but %s "
                                 "gave %lldx%lld; pass --crop C (or --resize S --crop C) so that every image has one "
                                 "size", path, (long long)pl.ow, (long long)pl.oh, l->e[0].path, (long long)d->w,
                                 (long long)d->h);
        }
        if (!st && (st = advex_img8_prepare(&im, &pl, c, d->x + i * c * d->h * d->w))) st = advex_error_prefix(st, path);
        advex_img8_free(&im);
        if (st) break;
        d->y[i] = l->e[i].label;
        d->fitted += pl.fitted;
    }
    return st;
}

advex_status advex_folder_load(const char *rest, int64_t limit, const advex_data_expect *want,
                               const advex_data_prep *prep, advex_dataset *d) {
    if (!*rest) return advex_set_error(ADVEX_ERR_ARG, "folder: no directory: give folder:DIR[,LIST]");
    char *dir = advex_strdup(rest), *list = NULL;
    if (!dir) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    if (!is_dir(dir)) { /* DIR,LIST: split at the last comma (a folder's own name may hold commas) */
        char *comma = strrchr(dir, ',');
        if (comma) {
            *comma = '\0';
            list = comma + 1;
        }
        if (!*dir || (list && !*list)) {
            const char *what = !*dir ? "directory" : "list file";
            free(dir);
            return advex_set_error(ADVEX_ERR_ARG, "folder:%s: missing %s", rest, what);
        }
        struct stat sb;
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            advex_status st = advex_set_error(ADVEX_ERR_IO, "folder: %s: %s", dir,
                                              stat(dir, &sb) != 0 ? strerror(errno) : "not a directory");
            free(dir);
            return st;
        }
    }
    listing l;
    memset(&l, 0, sizeof l);
    advex_status st = list_images(&l, dir, list);
    int64_t keep = limit > 0 && limit < l.n ? limit : l.n;
    if (!st) st = decode_all(&l, keep, want, prep, d);
    if (!st) {
        d->n = keep;
        d->num_classes = l.k;
        if (!(d->class_names = names_block(&l))) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        else d->names_owned = 1;
    }
    listing_free(&l);
    free(dir);
    return st;
}
