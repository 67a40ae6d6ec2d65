/* All-or-nothing output directories: files are written into DIR.tmp.XXXXXX beside DIR, then
 * moved in at the end (the staging directory renamed to DIR when DIR does not exist or is
 * empty, else each file renamed into DIR). A failure removes the staging directory and
 * leaves DIR as it was. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/report_internal.h"

advex_status advex_stage_open(advex_stage *s, const char *dir) {
    memset(s, 0, sizeof *s);
    s->dir = dir;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    s->tmp = malloc(n + sizeof ".tmp.XXXXXX");
    if (!s->tmp) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    memcpy(s->tmp, dir, n);
    memcpy(s->tmp + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    if (!mkdtemp(s->tmp)) {
        int e = errno;
        free(s->tmp);
        s->tmp = NULL;
        return advex_set_error(ADVEX_ERR_IO, "%s: cannot create a directory beside it: %s", dir, strerror(e));
    }
    mode_t um = umask(0); /* mkdtemp makes 0700: give the directory the mode mkdir would */
    umask(um);
    chmod(s->tmp, 0777 & ~um);
    return ADVEX_OK;
}

const char *advex_stage_path(advex_stage *s, const char *name) {
    snprintf(s->path, sizeof s->path, "%s/%s", s->tmp, name);
    return s->path;
}

void advex_stage_abort(advex_stage *s) {
    if (!s->tmp) return;
    DIR *d = opendir(s->tmp);
    struct dirent *e;
    char p[4200];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", s->tmp, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(s->tmp);
    free(s->tmp);
    s->tmp = NULL;
}

advex_status advex_stage_commit(advex_stage *s) {
    if (rename(s->tmp, s->dir) == 0) { /* DIR did not exist, or was empty */
        free(s->tmp);
        s->tmp = NULL;
        return ADVEX_OK;
    }
    if (errno != ENOTEMPTY && errno != EEXIST) {
        int e = errno;
        advex_stage_abort(s);
        return advex_set_error(ADVEX_ERR_IO, "%s: cannot move the files into place: %s", s->dir, strerror(e));
    }
    DIR *d = opendir(s->tmp);
    struct dirent *e;
    char from[4200], to[4200];
    advex_status st = ADVEX_OK;
    while (!st && d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(from, sizeof from, "%s/%s", s->tmp, e->d_name);
        snprintf(to, sizeof to, "%s/%s", s->dir, e->d_name);
        if (rename(from, to) != 0)
            st = advex_set_error(ADVEX_ERR_IO, "%s: cannot move %s into place: %s", s->dir, e->d_name, strerror(errno));
    }
    if (d) closedir(d);
    advex_stage_abort(s);
    return st;
}
