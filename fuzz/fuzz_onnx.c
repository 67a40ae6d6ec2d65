/* Fuzz target: the ONNX loader (advex_model_load_onnx_buffer). A model that loads is run
 * once (forward and input gradient, batch 1 and 2), so shapes the loader accepted are
 * exercised by the kernels too. The memory cap keeps huge but valid models cheap. */
#include <stdlib.h>
#include <string.h>

#include "advex/advex.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    advex_set_threads(1);
    advex_set_memory_limit((int64_t)64 << 20);
    return 0;
}

static void run(advex_model *m, int64_t n) {
    int64_t chw[3];
    advex_model_input_shape(m, chw);
    int64_t d = chw[0] * chw[1] * chw[2], k = advex_model_num_classes(m);
    if (d <= 0 || d > (1 << 20) || k <= 0 || k > (1 << 16)) return;
    float *x = calloc((size_t)(n * d), sizeof(float)), *g = calloc((size_t)(n * d), sizeof(float));
    float *z = calloc((size_t)(n * k), sizeof(float));
    int32_t y[2] = {0, (int32_t)(k - 1)};
    if (x && g && z) {
        for (int64_t i = 0; i < n * d; i++) x[i] = (float)(i % 7) / 7.0f;
        if (advex_model_forward(m, x, n, z) == ADVEX_OK)
            (void)advex_model_input_grad(m, x, y, n, ADVEX_LOSS_CE, g, z, NULL);
    }
    free(x);
    free(g);
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    advex_model *m = NULL;
    advex_status st = advex_model_load_onnx_buffer(data, size, "fuzz.onnx", &m);
    if (st == ADVEX_OK) {
        if (!m) abort();
        run(m, 1);
        run(m, 2);
        advex_model_free(m);
    } else {
        if (m) abort();                                         /* a failed load leaves no model */
        if (!strstr(advex_last_error(), "fuzz.onnx")) abort();  /* errors name the file */
    }
    return 0;
}
