/* advex predict: a model's logits on a data set, written as float32 (N, classes) .npy. */
#include <stdlib.h>

#include "cli.h"

int cmd_predict(int argc, char **argv) {
    const char *cmd = "predict";
    cli_flag f[] = {
        {"--model", "FILE", "ONNX model", NULL, 0},
        {"--data", "D", "data spec", "fashion-mnist:test", 0},
        {"--data-dir", "DIR", "directory of the named data set", NULL, 0},
        {"--limit", "N", "the first N examples (0 = all)", "0", 0},
        CLI_DATA_FLAGS,
        {"--out", "FILE", "where to write the logits (.npy)", NULL, 0},
    };
    int r = cli_parse(cmd, "--model M.onnx --data D --out logits.npy", "Write a model's logits (float32, N x classes).",
                      argc, argv, f, (int)(sizeof f / sizeof *f));
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *model_path = CLI_GET(f, "--model")->value, *out = CLI_GET(f, "--out")->value;
    if (!model_path) return cli_error(cmd, CLI_EXIT_USAGE, "--model FILE is required");
    if (!out) return cli_error(cmd, CLI_EXIT_USAGE, "--out FILE is required");
    long long limit;
    if (cli_int(cmd, CLI_GET(f, "--limit"), 0, INT64_MAX, &limit))
        return CLI_EXIT_USAGE;
    cli_files fs = {.n = 0};
    cli_files_in(&fs, "--model", model_path);
    cli_files_data(&fs, "--data", CLI_GET(f, "--data")->value, CLI_GET(f, "--data-dir")->value);
    cli_files_out(&fs, "--out", out);
    if ((r = cli_files_check(cmd, &fs))) return r;
    advex_model *m = NULL;
    advex_dataset d = {0};
    float *logits = NULL;
    int32_t *pred = NULL;
    int rc = CLI_EXIT_FAIL;
    advex_status st;
    if ((r = cli_load_model(cmd, model_path, NULL, 0, &m))) { rc = r; goto done; }
    if ((r = cli_load_data_for(cmd, CLI_GET(f, "--data")->value, "test", CLI_GET(f, "--data-dir")->value, limit, m, &d))) { rc = r; goto done; }
    int64_t k = advex_model_num_classes(m);
    if (d.c != 0) {
        int64_t chw[3];
        advex_model_input_shape(m, chw);
        if (d.c != chw[0] || d.h != chw[1] || d.w != chw[2]) {
            rc = cli_error(cmd, CLI_EXIT_FAIL, "data has images %lldx%lldx%lld but %s expects %lldx%lldx%lld", (long long)d.c,
                           (long long)d.h, (long long)d.w, model_path, (long long)chw[0], (long long)chw[1], (long long)chw[2]);
            goto done;
        }
    }
    logits = malloc((size_t)(d.n * k) * sizeof(float));
    pred = malloc((size_t)d.n * sizeof(int32_t));
    if (!logits || !pred) { rc = cli_error(cmd, CLI_EXIT_FAIL, "out of memory"); goto done; }
    if ((st = advex_model_forward(m, d.x, d.n, logits))) { rc = cli_fail(cmd, st); goto done; }
    if (d.y) {
        advex_argmax_rows(logits, d.n, k, pred);
        int64_t c = 0;
        for (int64_t i = 0; i < d.n; i++) c += pred[i] == d.y[i];
        printf("accuracy: %.2f%% (%lld/%lld)\n", 100.0 * (double)c / (double)d.n, (long long)c, (long long)d.n);
    }
    int64_t dims[2] = {d.n, k};
    if ((st = advex_npy_save_f32(out, logits, 2, dims))) { rc = cli_fail(cmd, st); goto done; }
    if (!cli_opts.quiet) printf("wrote %s (%lld x %lld logits)\n", out, (long long)d.n, (long long)k);
    rc = CLI_EXIT_OK;
done:
    free(logits); free(pred);
    advex_model_free(m);
    advex_dataset_free(&d);
    return rc;
}
