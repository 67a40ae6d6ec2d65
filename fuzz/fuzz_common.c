/* Scratch file for the path-based readers: one per process, rewritten for every input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

static char scratch_path[512];

static void remove_scratch(void) {
    if (scratch_path[0]) unlink(scratch_path);
}

const char *fuzz_scratch_file(const uint8_t *data, size_t size) {
    if (!scratch_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(scratch_path, sizeof scratch_path, "%s/advex-fuzz-XXXXXX", dir && *dir ? dir : "/tmp");
        int fd = mkstemp(scratch_path);
        if (fd < 0) { scratch_path[0] = '\0'; return NULL; }
        close(fd);
        atexit(remove_scratch);
    }
    FILE *f = fopen(scratch_path, "wb");
    if (!f) return NULL;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || w != size) return NULL;
    return scratch_path;
}

static char scratch_dir[512], scratch_dir_file[700];

static void remove_scratch_dir(void) {
    if (scratch_dir_file[0]) unlink(scratch_dir_file);
    if (scratch_dir[0]) rmdir(scratch_dir);
}

const char *fuzz_scratch_dir_file(const char *name, const uint8_t *data, size_t size) {
    if (!scratch_dir[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(scratch_dir, sizeof scratch_dir, "%s/advex-fuzz-XXXXXX", dir && *dir ? dir : "/tmp");
        if (!mkdtemp(scratch_dir)) { scratch_dir[0] = '\0'; return NULL; }
        atexit(remove_scratch_dir);
    }
    if (scratch_dir_file[0]) unlink(scratch_dir_file); /* one file at a time */
    snprintf(scratch_dir_file, sizeof scratch_dir_file, "%s/%s", scratch_dir, name);
    FILE *f = fopen(scratch_dir_file, "wb");
    if (!f) return NULL;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || w != size) return NULL;
    return scratch_dir;
}
