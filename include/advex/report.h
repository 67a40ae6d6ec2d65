/* Pictures and reports: PNG reading/writing (libpng, atomic writes), image conversion, a small
 * RGB canvas with a built-in bitmap font, accuracy-vs-eps plots (SVG text and PNG), image
 * grids (clean | perturbation | adversarial) and per-class / confusion counts. */
#ifndef ADVEX_REPORT_H
#define ADVEX_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "data.h"
#include "eval.h"

#ifdef __cplusplus
extern "C" {
#endif
ADVEX_API_BEGIN

/* ---- PNG (src/data/png.c) --------------------------------------------------------------- */

/* Largest image the readers accept (width * height), against decompression bombs. */
#define ADVEX_PNG_MAX_PIXELS ((int64_t)1 << 26)

/* Read a PNG (grey, grey+alpha, RGB, RGBA, palette; 1-16 bits) as float32 (C, H, W) in [0,1]:
 * C = 1 for grey images, 3 for colour ones; alpha is composited onto white. *x is malloc'd. */
advex_status advex_png_read(const char *path, float **x, int64_t *c, int64_t *h, int64_t *w);
/* The same from memory (what a fuzzer drives). */
advex_status advex_png_decode(const void *buf, size_t n, float **x, int64_t *c, int64_t *h, int64_t *w);
/* Write float32 (C, H, W), C 1 (grey) or 3 (RGB), values clipped to [0,1], as an 8-bit PNG,
 * atomically (temporary file, then rename). */
advex_status advex_png_write(const char *path, const float *x, int64_t c, int64_t h, int64_t w);
/* Write interleaved 8-bit RGB (h rows of w*3 bytes) atomically. */
advex_status advex_png_write_rgb8(const char *path, const uint8_t *rgb, int64_t w, int64_t h);

/* ---- images ----------------------------------------------------------------------------- */

/* Convert one (c, h, w) image to (c_out, h_out, w_out): RGB -> grey by luminance
 * (0.299 R + 0.587 G + 0.114 B), grey -> RGB by replication, other channel counts only when
 * equal; bilinear resampling (pixel centres aligned, like OpenCV's INTER_LINEAR without
 * antialiasing) when the sizes differ. dst holds c_out*h_out*w_out floats. */
advex_status advex_image_convert(const float *src, int64_t c, int64_t h, int64_t w, int64_t c_out, int64_t h_out,
                                 int64_t w_out, float *dst);

/* An RGB canvas: pixels h rows of w*3 bytes. Drawing clips to the canvas. */
typedef struct advex_canvas {
    uint8_t *rgb; /* owned */
    int w, h;
} advex_canvas;

advex_status advex_canvas_init(advex_canvas *cv, int w, int h, uint32_t bg_rgb);
void advex_canvas_free(advex_canvas *cv);
void advex_canvas_fill_rect(advex_canvas *cv, int x, int y, int w, int h, uint32_t rgb);
/* A line of the given thickness (pixels). */
void advex_canvas_line(advex_canvas *cv, double x0, double y0, double x1, double y1, double thickness, uint32_t rgb);
void advex_canvas_dot(advex_canvas *cv, double x, double y, double radius, uint32_t rgb);
/* Text in the built-in 5x7 font (upper case; lower case is drawn as upper case; characters
 * without a glyph as '?'), each font pixel `scale` canvas pixels. Returns the width drawn. */
int advex_canvas_text(advex_canvas *cv, int x, int y, const char *s, int scale, uint32_t rgb);
int advex_text_width(const char *s, int scale);
#define ADVEX_FONT_H 7
/* Draw a (c, h, w) float image (c 1 or 3, values clipped to [0,1]), each pixel `scale` x `scale`. */
void advex_canvas_image(advex_canvas *cv, int x, int y, const float *img, int64_t c, int64_t h, int64_t w, int scale);
advex_status advex_canvas_save_png(const advex_canvas *cv, const char *path);

/* ---- plots ------------------------------------------------------------------------------ */

typedef struct advex_curve {
    const char *label;   /* legend text, e.g. "pgd" */
    int n;               /* points */
    const double *x;     /* eps */
    const double *y;     /* accuracy in [0,1] */
} advex_curve;

/* Accuracy (y, 0..100%) against eps (x) for each curve: axes with ticks, lines, dots and a legend.
 * SVG: a malloc'd NUL-terminated document in *svg. PNG: written to path (width x height). */
advex_status advex_plot_svg(const advex_curve *curves, int ncurves, const char *title, const char *xlabel, int width,
                            int height, char **svg);
advex_status advex_plot_png(const advex_curve *curves, int ncurves, const char *title, const char *xlabel, int width,
                            int height, const char *path);

/* ---- grids ------------------------------------------------------------------------------ */

/* n images (n, c, h, w) in a grid of `cols` columns, `scale` pixels per image pixel, 2-pixel
 * gaps. normalize: map each image's [min, max] to [0,1] (for perturbations), else clip. */
advex_status advex_grid_png(const char *path, const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int cols,
                            int scale, int normalize);

/* One row per example: clean | perturbation shown as 0.5 + delta / (2 eps) | adversarial, with
 * captions "true <label>", "<label> <conf>%" under the clean and the adversarial image (class
 * names when class_names is not NULL). x and xadv are (n, c, h, w); pred/conf are the model's
 * predictions (argmax) and softmax confidence on each. eps <= 0: the largest |delta| is used. */
typedef struct advex_grid_rows {
    const float *x, *xadv;
    int64_t n, c, h, w;
    const int32_t *y, *pred_clean, *pred_adv;
    const float *conf_clean, *conf_adv;
    const char *const *class_names;
    int64_t num_classes;
    float eps;
    int scale;           /* pixels per image pixel (0: chosen so images are about 84 pixels) */
} advex_grid_rows;
advex_status advex_grid_adv_png(const char *path, const advex_grid_rows *g);
/* The size advex_grid_adv_png produces. */
void advex_grid_adv_size(const advex_grid_rows *g, int *width, int *height);

/* ---- the evaluation report ---------------------------------------------------------------- */

/* The HTML report of a sweep run with keep_rows > 0 (advex_eval_sweep) into directory dir:
 * report.html (self-contained, no network), results.json (advex_eval_json's fields plus
 * classes, per-class counts and confusion matrices), results.csv, curve.svg and curve.png,
 * and grid_<attack>.png per attack (its largest eps). d: the data set the sweep ran on;
 * classes: the model's class count; model, data: the names shown. All or nothing: the files
 * are written into a directory beside dir and moved in at the end; on failure dir is as it
 * was. */
advex_status advex_report_write(const advex_sweep *s, const advex_dataset *d, int64_t classes, const char *model,
                                const char *data, const char *dir);
/* The files advex_report_write makes in dir for these attacks, one path per line (*paths is
 * malloc'd): for checks that no output names an input. */
advex_status advex_report_paths(const char *dir, const advex_attack_kind *kinds, int n, char **paths);

/* ---- per-class counts ------------------------------------------------------------------- */

/* From labels y, clean predictions and predictions on the adversarial examples (n each, k
 * classes), with AutoAttack's convention (a clean-misclassified example is non-robust, and its
 * prediction under attack is its clean prediction):
 *   total[k], robust[k]  per true class: examples, examples robust;
 *   confusion[k*k]       row = true class, column = prediction under attack; its diagonal sums
 *                        to the robust count.
 * Any output may be NULL. Labels or predictions outside [0,k) are an error. */
advex_status advex_class_counts(const int32_t *y, const int32_t *pred_clean, const int32_t *pred_adv, int64_t n,
                                int64_t k, int64_t *total, int64_t *robust, int64_t *confusion);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
