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
