/* Fuzz target: the Open Inference Protocol v2 JSON the server parses (infer requests) and the
 * client parses (infer responses, model metadata), src/target/v2json.c. Every parse either
 * fails with a status or returns values of the promised shape: finite, labels in range. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "advex/advex.h"
#include "target/target_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1 << 20)) return 0;
    char *s = malloc(size + 1); /* NUL-terminated, as the HTTP layers hand it over */
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t chw[3] = {1, 2, 2}, n = 0;
    float *x = NULL;
    if (v2_parse_request(s, size, chw, 8, &x, &n) == ADVEX_OK) {
        if (n < 1 || n > 8) abort();
        for (int64_t i = 0; i < n * 4; i++) if (!isfinite(x[i])) abort();
        free(x);
    }
    float sc[8 * 3];
    int32_t lab[8];
    if (v2_parse_response(s, size, ADVEX_OUTPUT_LOGITS, 2, 3, "fuzz", sc, NULL) == ADVEX_OK)
        for (int i = 0; i < 6; i++) if (!isfinite(sc[i])) abort();
    if (v2_parse_response(s, size, ADVEX_OUTPUT_LABEL, 2, 5, "fuzz", NULL, lab) == ADVEX_OK)
        for (int i = 0; i < 2; i++) if (lab[i] < 0 || lab[i] >= 5) abort();
    int64_t mchw[3], k = -1;
    advex_output_kind out;
    char name[16];
    if (v2_parse_metadata(s, size, "fuzz", mchw, &out, &k, name, sizeof name) == ADVEX_OK)
        if (mchw[0] < 1 || mchw[1] < 1 || mchw[2] < 1 || k < 0 || strlen(name) >= sizeof name) abort();
    free(s);
    return 0;
}
