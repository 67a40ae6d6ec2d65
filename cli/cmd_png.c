/* advex png: export a .npy batch of images as one PNG grid (or a single image as a PNG), and
 * show the size of a PNG. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_png(int argc, char **argv) {
    const char *cmd = "png";
    cli_flag f[] = {
        {"--npy", "FILE", "images: float32/uint8 (N,C,H,W) with C 1 or 3, (N,H,W) grey, or one (H,W) image", NULL, 0},
        {"--out", "FILE", "PNG to write", NULL, 0},
        {"--cols", "N", "images per row (0 = about square)", "0", 0},
        {"--scale", "S", "pixels per image pixel", "1", 0},
        {"--limit", "N", "first N images only (0 = all)", "0", 0},
        {"--normalize", NULL, "stretch each image's [min, max] to [0,1] (perturbations); default clips to [0,1]", NULL, 0},
    };
    const int nf = (int)(sizeof f / sizeof *f);
    int r = cli_parse(cmd, "--npy X.npy --out grid.png [--cols N] [--scale S]",
                      "Write a batch of images from a .npy file as a PNG grid (values in [0,1]).", argc, argv, f, nf);
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *npy = CLI_GET(f, "--npy")->value, *out = CLI_GET(f, "--out")->value;
    if (!npy) return cli_error(cmd, CLI_EXIT_USAGE, "--npy FILE is required");
    if (!out) return cli_error(cmd, CLI_EXIT_USAGE, "--out FILE.png is required");
    long long cols, scale, limit;
    if (cli_int(cmd, CLI_GET(f, "--cols"), 0, 100000, &cols) || cli_int(cmd, CLI_GET(f, "--scale"), 1, 64, &scale) ||
        cli_int(cmd, CLI_GET(f, "--limit"), 0, INT64_MAX, &limit))
        return CLI_EXIT_USAGE;
    cli_files fs = {.n = 0};
    cli_files_in(&fs, "--npy", npy);
    cli_files_out(&fs, "--out", out);
    if ((r = cli_files_check(cmd, &fs))) return r;
    float *x = NULL;
    int ndim = 0;
    int64_t dims[6] = {0};
    advex_status st = advex_npy_load_f32(npy, &x, &ndim, dims);
    if (st) return cli_fail(cmd, st);
    int64_t n, c, h, w;
    if (ndim == 4) { n = dims[0]; c = dims[1]; h = dims[2]; w = dims[3]; }
    else if (ndim == 3) { n = dims[0]; c = 1; h = dims[1]; w = dims[2]; }
    else if (ndim == 2) { n = 1; c = 1; h = dims[0]; w = dims[1]; }
    else {
        free(x);
        return cli_error(cmd, CLI_EXIT_FAIL, "%s: %d-D array; want (N,C,H,W), (N,H,W) or (H,W)", npy, ndim);
    }
    if (c != 1 && c != 3) {
        free(x);
        return cli_error(cmd, CLI_EXIT_FAIL, "%s: images with %lld channels; PNG grids take 1 (grey) or 3 (RGB)", npy,
                         (long long)c);
    }
    if (n == 0 || h == 0 || w == 0) { free(x); return cli_error(cmd, CLI_EXIT_FAIL, "%s: no images", npy); }
    if (limit > 0 && limit < n) n = limit;
    st = n == 1 && scale == 1 && !CLI_GET(f, "--normalize")->seen
             ? advex_png_write(out, x, c, h, w)
             : advex_grid_png(out, x, n, c, h, w, (int)cols, (int)scale, CLI_GET(f, "--normalize")->seen);
    free(x);
    if (st) return cli_fail(cmd, st);
    if (!cli_opts.quiet) printf("wrote %s (%lld image%s of %lldx%lld)\n", out, (long long)n, n == 1 ? "" : "s", (long long)w, (long long)h);
    return CLI_EXIT_OK;
}
