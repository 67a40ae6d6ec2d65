/* advex info: describe a model (ONNX file or built-in arch): input, output, the ops it
 * uses, parameter count and opset. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
    const char *cmd = "info";
    const char *path = NULL;
    cli_flag f[] = {
        {"--model", "FILE", "ONNX model (or give it as the first argument)", NULL, 0},
        {"--arch", "A", "describe a built-in architecture instead", NULL, 0},
    };
    /* accept `advex info M.onnx` */
    char *args[64];
    int n = 0;
    for (int i = 0; i < argc && n < 63; i++) {
        if (i > 0 && argv[i][0] != '-' && !path && strcmp(argv[i - 1], "--model") != 0 && strcmp(argv[i - 1], "--arch") != 0)
            path = argv[i];
        else
            args[n++] = argv[i];
    }
    if (argc >= 64) return cli_error(cmd, CLI_EXIT_USAGE, "too many arguments");
    int r = cli_parse(cmd, "M.onnx | --arch A", "Describe a model: input, output, ops, parameter count, opset.", n, args, f,
                      (int)(sizeof f / sizeof *f));
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (!path) path = CLI_GET(f, "--model")->value;
    const char *arch = CLI_GET(f, "--arch")->value;
    if (!path && !arch) return cli_error(cmd, CLI_EXIT_USAGE, "give a model file (advex info M.onnx)");
    advex_model *m = NULL;
    if ((r = cli_load_model(cmd, path, arch, 0, &m))) return r;
    char *text;
    advex_status st = advex_model_describe(m, &text);
    advex_model_free(m);
    if (st) return cli_fail(cmd, st);
    fputs(text, stdout);
    free(text);
    return CLI_EXIT_OK;
}
