/* advex data: load a data set as every command does (spec, split, --limit, --resize/--crop),
 * describe it, and optionally write its images and labels as .npy: what a model would be
 * given, for checking against another pipeline (torchvision's, for one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_data(int argc, char **argv) {
    const char *cmd = "data";
    cli_flag f[] = {
        {"--data", "D", "data spec", NULL, 0},
        {"--data-dir", "DIR", "directory of the named data set", NULL, 0},
        {"--split", "S", "what a bare named set means: train or test", "test", 0},
        {"--limit", "N", "the first N examples (0 = all)", "0", 0},
        {"--out", "FILE", "write the images here (.npy, float32 N x C x H x W)", NULL, 0},
        {"--labels", "FILE", "write the labels here (.npy, int32 N)", NULL, 0},
        {"--input-shape", "C,H,W", "load as for a model taking C x H x W images (channels, fitting image folders "
                                   "to H x W, shape checks)", NULL, 0},
        CLI_DATA_FLAGS,
    };
    const int nf = (int)(sizeof f / sizeof *f);
    int r = cli_parse(cmd, "--data D [--resize S] [--crop C] [--out X.npy] [--labels Y.npy]",
                      "Load a data set as the other commands do, describe it, and write it as .npy.", argc, argv, f, nf);
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *spec = CLI_GET(f, "--data")->value, *dir = CLI_GET(f, "--data-dir")->value;
    const char *out = CLI_GET(f, "--out")->value, *labels = CLI_GET(f, "--labels")->value;
    const char *split = CLI_GET(f, "--split")->value;
    if (!spec) return cli_error(cmd, CLI_EXIT_USAGE, "--data D is required");
    if (strcmp(split, "train") != 0 && strcmp(split, "test") != 0)
        return cli_error(cmd, CLI_EXIT_USAGE, "--split: '%s' (expected train or test)", split);
    long long limit;
    if (cli_int(cmd, CLI_GET(f, "--limit"), 0, INT64_MAX, &limit)) return CLI_EXIT_USAGE;
    cli_files fs = {.n = 0};
    cli_files_data(&fs, "--data", spec, dir);
    cli_files_out(&fs, "--out", out);
    cli_files_out(&fs, "--labels", labels);
    if ((r = cli_files_check(cmd, &fs))) return r;
    advex_data_expect want = {0, 0, 0, 0};
    const char *shape = CLI_GET(f, "--input-shape")->value;
    if (shape) {
        long long c, h, w;
        char tail;
        if (sscanf(shape, "%lld,%lld,%lld%c", &c, &h, &w, &tail) != 3 || c < 1 || c > 4 || h < 1 || w < 1 ||
            h > 65536 || w > 65536)
            return cli_error(cmd, CLI_EXIT_USAGE, "--input-shape: bad value '%s' (C,H,W: channels 1-4, sizes "
                             "1-65536)", shape);
        want = (advex_data_expect){c, h, w, 0};
    }
    advex_dataset d = {0};
    if ((r = cli_load_data_want(cmd, spec, split, dir, limit, shape ? &want : NULL, &d))) return r;
    printf("%s: %lld examples, %lldx%lldx%lld", spec, (long long)d.n, (long long)d.c, (long long)d.h, (long long)d.w);
    if (d.y) {
        printf(", %lld classes", (long long)d.num_classes);
        for (int64_t i = 0; d.class_names && i < d.num_classes && i < 10; i++)
            printf("%s%s", i ? ", " : " (", d.class_names[i]);
        if (d.class_names) printf("%s)", d.num_classes > 10 ? ", ..." : "");
    } else {
        printf(", no labels");
    }
    printf("\n");
    if (labels && !d.y) {
        advex_dataset_free(&d);
        return cli_error(cmd, CLI_EXIT_FAIL, "%s: no labels to write to %s", spec, labels);
    }
    int64_t dims[4] = {d.n, d.c, d.h, d.w};
    advex_status st = ADVEX_OK;
    if (out) st = advex_npy_save_f32(out, d.x, 4, dims);
    if (!st && labels) st = advex_npy_save_i32(labels, d.y, d.n);
    advex_dataset_free(&d);
    return st ? cli_fail(cmd, st) : CLI_EXIT_OK;
}
