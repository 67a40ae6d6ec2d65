/* The files a command reads and writes, checked together before any work: an output must
 * not be any input or another output (compared by device and inode when both exist, else
 * by canonical path, so `./m.onnx`, a symlink or `dir/../m.onnx` count as the same file),
 * and must be writable and, when it exists, a regular file (cli_check_output). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

enum { F_IN, F_OUT, F_OUT_UNPROBED };

static void add(cli_files *fs, const char *flag, const char *path, size_t len, int kind) {
    if (!path || fs->n >= CLI_MAX_FILES) return;
    char *p = malloc(len + 1);
    if (!p) return;
    memcpy(p, path, len);
    p[len] = '\0';
    fs->f[fs->n].flag = flag;
    fs->f[fs->n].path = p;
    fs->f[fs->n].kind = kind;
    fs->n++;
}

void cli_files_in(cli_files *fs, const char *flag, const char *path) { add(fs, flag, path, path ? strlen(path) : 0, F_IN); }
void cli_files_out(cli_files *fs, const char *flag, const char *path) { add(fs, flag, path, path ? strlen(path) : 0, F_OUT); }
void cli_files_out_unprobed(cli_files *fs, const char *flag, const char *path) {
    add(fs, flag, path, path ? strlen(path) : 0, F_OUT_UNPROBED);
}

void cli_files_data(cli_files *fs, const char *flag, const char *spec, const char *data_dir) {
    if (!spec) return;
    if (strncmp(spec, "npy:", 4) == 0 || strncmp(spec, "idx:", 4) == 0) { /* split at the last comma, as the loader does */
        const char *x = spec + 4, *comma = strrchr(x, ',');
        add(fs, flag, x, comma ? (size_t)(comma - x) : strlen(x), F_IN);
        if (comma) add(fs, flag, comma + 1, strlen(comma + 1), F_IN);
        return;
    }
    if (strncmp(spec, "folder:", 7) == 0) { /* the list file, when the spec has one (DIR,LIST) */
        struct stat sb;
        const char *dir = spec + 7, *comma = strrchr(dir, ',');
        if (comma && !(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))) add(fs, flag, comma + 1, strlen(comma + 1), F_IN);
        return;
    }
    if (strcmp(spec, "cifar10") == 0 || strncmp(spec, "cifar10:", 8) == 0) { /* every batch file of either split */
        const char *rest = spec[7] ? spec + 8 : "";
        size_t n = strlen(rest);
        if (n >= 6 && strcmp(rest + n - 6, ":train") == 0) n -= 6;
        else if (n >= 5 && strcmp(rest + n - 5, ":test") == 0) n -= 5;
        if (strcmp(rest, "train") == 0 || strcmp(rest, "test") == 0) n = 0;
        const char *dir = n ? rest : data_dir;
        if (!n && !(dir && *dir)) return;
        if (!n) n = strlen(dir);
        char p[PATH_MAX];
        for (int i = 0; i <= 5; i++) {
            int k = i ? snprintf(p, sizeof p, "%.*s/data_batch_%d.bin", (int)n, dir, i)
                      : snprintf(p, sizeof p, "%.*s/test_batch.bin", (int)n, dir);
            if (k > 0 && (size_t)k < sizeof p) add(fs, flag, p, (size_t)k, F_IN);
        }
        return;
    }
    if (strncmp(spec, "fashion-mnist", 13) != 0) return;
    const char *env = getenv("ADVEX_DATA");
    const char *dir = data_dir && *data_dir ? data_dir : env && *env ? env : "/usr/share/datasets/fashion-mnist";
    static const char *const names[] = {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
                                        "train-labels-idx1-ubyte"};
    char p[PATH_MAX];
    for (int i = 0; i < 4; i++)
        for (int gz = 0; gz < 2; gz++) {
            int k = snprintf(p, sizeof p, "%s/%s%s", dir, names[i], gz ? ".gz" : "");
            if (k > 0 && (size_t)k < sizeof p) add(fs, flag, p, (size_t)k, F_IN);
        }
}

/* The canonical form of path: realpath() when it exists, else realpath() of its directory
 * joined with its last component, else path as given. malloc'd (NULL: out of memory). */
static char *canonical(const char *path) {
    char *r = realpath(path, NULL);
    if (r) return r;
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;
    char *dir = malloc(dl + 2);
    if (!dir) return NULL;
    if (!slash) strcpy(dir, ".");
    else if (dl == 0) strcpy(dir, "/");
    else { memcpy(dir, path, dl); dir[dl] = '\0'; }
    char *rd = realpath(dir, NULL);
    free(dir);
    const char *base = slash ? slash + 1 : path;
    if (!rd) return strdup(path);
    size_t a = strlen(rd), b = strlen(base);
    char *out = malloc(a + b + 2);
    if (out) {
        memcpy(out, rd, a);
        out[a] = '/';
        memcpy(out + a + 1, base, b + 1);
    }
    free(rd);
    return out;
}

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ea != eb) return 0; /* one exists, the other does not: different names of different files */
    char *ca = canonical(a), *cb = canonical(b);
    int same = ca && cb ? strcmp(ca, cb) == 0 : strcmp(a, b) == 0;
    free(ca);
    free(cb);
    return same;
}

int cli_files_check(const char *cmd, cli_files *fs) {
    int rc = 0;
    /* names first (a clash says more than "cannot write"), then each output on its own */
    for (int i = 0; i < fs->n && !rc; i++) {
        if (fs->f[i].kind == F_IN) continue;
        for (int j = 0; j < fs->n && !rc; j++) {
            if (j == i || (fs->f[j].kind != F_IN && j > i)) continue; /* each pair of outputs once */
            if (same_file(fs->f[i].path, fs->f[j].path))
                rc = cli_error(cmd, CLI_EXIT_USAGE, "%s and %s name the same file (%s): the output would %s",
                               fs->f[i].flag, fs->f[j].flag, fs->f[i].path,
                               fs->f[j].kind == F_IN ? "overwrite the input" : "be written twice");
        }
    }
    for (int i = 0; i < fs->n && !rc; i++) {
        struct stat sb;
        if (fs->f[i].kind == F_OUT) rc = cli_check_output(cmd, fs->f[i].flag, fs->f[i].path);
        else if (fs->f[i].kind == F_OUT_UNPROBED && stat(fs->f[i].path, &sb) == 0 && !S_ISREG(sb.st_mode))
            rc = cli_error(cmd, CLI_EXIT_USAGE, "%s: %s exists and is not a regular file", fs->f[i].flag, fs->f[i].path);
    }
    for (int i = 0; i < fs->n; i++) free(fs->f[i].path);
    fs->n = 0;
    return rc;
}
