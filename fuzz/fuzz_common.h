/* Shared by the fuzz targets: the libFuzzer entry points, and a scratch file (or a file in a
 * scratch directory) that the path-based readers (IDX, .npy, CIFAR-10) read the fuzzed bytes
 * from. */
#ifndef ADVEX_FUZZ_COMMON_H
#define ADVEX_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Write data to this process's scratch file (created once, under $TMPDIR or /tmp,
 * removed at exit) and return its path; NULL if it cannot be written. */
const char *fuzz_scratch_file(const uint8_t *data, size_t size);
/* Write data as `name` in this process's scratch directory (created once, removed at exit)
 * and return the directory; NULL if it cannot be written. */
const char *fuzz_scratch_dir_file(const char *name, const uint8_t *data, size_t size);

#endif
