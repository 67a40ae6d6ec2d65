/* examples/fgsm.c: load an ONNX model, attack a batch with FGSM, report what changed.
 * Build: part of the advex build (example_fgsm), or
 *   cc fgsm.c $(pkg-config --cflags --libs advex) -o fgsm
 * Run:   example_fgsm model.onnx [eps]     (uses the first 256 Fashion-MNIST test images) */
#include <stdio.h>
#include <stdlib.h>

#include "advex/advex.h"

static int fail(const char *what, advex_status st) {
    fprintf(stderr, "%s: %s (%s)\n", what, advex_status_str(st), advex_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s model.onnx [eps]\n", argv[0]);
        return 2;
    }
    float eps = 0.1f;
    if (argc > 2 && advex_parse_eps(argv[2], &eps) != ADVEX_OK) return fail("eps", ADVEX_ERR_ARG);

    advex_model *m = NULL;
    advex_dataset d = {0};
    advex_status st = advex_model_load_onnx(argv[1], &m);
    if (st) return fail("load model", st);
    st = advex_dataset_load("fashion-mnist:test", NULL, 256, &d);
    if (st) { advex_model_free(m); return fail("load data", st); }

    int64_t k = advex_model_num_classes(m), dim = d.c * d.h * d.w;
    float *adv = malloc((size_t)(d.n * dim) * sizeof(float));
    float *logits = malloc((size_t)(d.n * k) * sizeof(float));
    int32_t *clean = malloc((size_t)d.n * sizeof(int32_t)), *after = malloc((size_t)d.n * sizeof(int32_t));
    if (!adv || !logits || !clean || !after) return fail("alloc", ADVEX_ERR_NOMEM);

    advex_attack_config c;
    advex_attack_config_default(&c); /* untargeted FGSM */
    c.eps = eps;
    if ((st = advex_model_forward(m, d.x, d.n, logits))) return fail("forward", st);
    advex_argmax_rows(logits, d.n, k, clean);
    if ((st = advex_attack_batch(m, &c, d.x, d.y, d.n, 0, adv))) return fail("attack", st);
    if ((st = advex_model_forward(m, adv, d.n, logits))) return fail("forward", st);
    advex_argmax_rows(logits, d.n, k, after);

    int64_t ok = 0, robust = 0;
    for (int64_t i = 0; i < d.n; i++) {
        ok += clean[i] == d.y[i];
        robust += clean[i] == d.y[i] && after[i] == d.y[i];
    }
    printf("FGSM eps=%g on %lld images: clean accuracy %.1f%%, adversarial accuracy %.1f%%\n", (double)eps,
           (long long)d.n, 100.0 * (double)ok / (double)d.n, 100.0 * (double)robust / (double)d.n);
    printf("first image: true %s, predicted %s, after the attack %s\n", advex_fashion_mnist_classes[d.y[0]],
           advex_fashion_mnist_classes[clean[0]], advex_fashion_mnist_classes[after[0]]);
    free(adv); free(logits); free(clean); free(after);
    advex_dataset_free(&d);
    advex_model_free(m);
    return 0;
}
