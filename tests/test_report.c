/* Tests for the report pieces: PNG round trips (grey, RGB) and errors, decoding PNGs written by
 * hand with zlib (palette, 16-bit, alpha), image conversion (luminance, replication, bilinear),
 * the canvas and font, SVG/PNG plots, grids with their documented sizes, per-class counts and
 * confusion matrices, and advex_eval_run's per-example outputs agreeing with the counts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "advex/advex.h"
#include "harness.h"

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", advex_test_tmpdir(), name);
    return p;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* A PNG built from raw chunks (what a hand-made or odd encoder writes). Returns the size. */
static size_t make_png(unsigned char *out, uint32_t w, uint32_t h, int depth, int ctype, const unsigned char *plte,
                       int nplte, const unsigned char *raw, size_t rawlen) {
    size_t o = 0;
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    o = 8;
    unsigned char ihdr[13];
    put32(ihdr, w); put32(ihdr + 4, h);
    ihdr[8] = (unsigned char)depth; ihdr[9] = (unsigned char)ctype; ihdr[10] = ihdr[11] = ihdr[12] = 0;
    typedef struct { const char *t; const unsigned char *d; size_t n; } chunk;
    chunk ch[4];
    int nc = 0;
    unsigned char z[4096];
    uLongf zl = sizeof z;
    compress(z, &zl, raw, (uLong)rawlen);
    ch[nc++] = (chunk){"IHDR", ihdr, 13};
    if (plte) ch[nc++] = (chunk){"PLTE", plte, (size_t)nplte * 3};
    ch[nc++] = (chunk){"IDAT", z, zl};
    ch[nc++] = (chunk){"IEND", NULL, 0};
    for (int i = 0; i < nc; i++) {
        put32(out + o, (uint32_t)ch[i].n);
        memcpy(out + o + 4, ch[i].t, 4);
        if (ch[i].n) memcpy(out + o + 8, ch[i].d, ch[i].n);
        uLong crc = crc32(0, out + o + 4, (uInt)(4 + ch[i].n));
        put32(out + o + 8 + ch[i].n, (uint32_t)crc);
        o += 12 + ch[i].n;
    }
    return o;
}

TEST(png_roundtrip_grey_rgb) {
    float img[3 * 4 * 5];
    for (int i = 0; i < 60; i++) img[i] = (float)((i * 37) % 256) / 255.0f;
    for (int c = 1; c <= 3; c += 2) {
        const char *p = tmp_path(c == 1 ? "g.png" : "rgb.png");
        ASSERT_OK(advex_png_write(p, img, c, 4, 5));
        float *x = NULL;
        int64_t cc, h, w;
        ASSERT_OK(advex_png_read(p, &x, &cc, &h, &w));
        ASSERT_EQ_INT(cc, c);
        ASSERT_EQ_INT(h, 4);
        ASSERT_EQ_INT(w, 5);
        for (int i = 0; i < c * 20; i++) ASSERT_NEAR(x[i], img[i], 1e-6);
        free(x);
    }
    /* no temporary files left */
    char cmdline[600];
    snprintf(cmdline, sizeof cmdline, "ls %s | grep -q tmp", advex_test_tmpdir());
    ASSERT(system(cmdline) != 0);
}

TEST(png_decode_variants) {
    unsigned char buf[8192], raw[256];
    float *x = NULL;
    int64_t c, h, w;
    /* palette 2x2, 8-bit indices */
    unsigned char plte[6] = {255, 0, 0, 0, 0, 255};
    unsigned char r1[] = {0, 0, 1, 0, 1, 0};
    size_t n = make_png(buf, 2, 2, 8, 3, plte, 2, r1, sizeof r1);
    ASSERT_OK(advex_png_decode(buf, n, &x, &c, &h, &w));
    ASSERT_EQ_INT(c, 3);
    ASSERT_NEAR(x[0], 1.0, 1e-6);     /* R of pixel (0,0) = red */
    ASSERT_NEAR(x[8 + 1], 1.0, 1e-6); /* B of pixel (0,1) = blue */
    free(x);
    /* 16-bit grey 1x2 */
    unsigned char r2[] = {0, 0xff, 0xff, 0x00, 0x00};
    n = make_png(buf, 2, 1, 16, 0, NULL, 0, r2, sizeof r2);
    ASSERT_OK(advex_png_decode(buf, n, &x, &c, &h, &w));
    ASSERT_EQ_INT(c, 1);
    ASSERT_NEAR(x[0], 1.0, 1e-6);
    ASSERT_NEAR(x[1], 0.0, 1e-6);
    free(x);
    /* grey + alpha: transparent composited onto white */
    unsigned char r3[] = {0, 0, 0, 0, 255};
    n = make_png(buf, 2, 1, 8, 4, NULL, 0, r3, sizeof r3);
    ASSERT_OK(advex_png_decode(buf, n, &x, &c, &h, &w));
    ASSERT_EQ_INT(c, 1);
    ASSERT_NEAR(x[0], 1.0, 1e-6);
    ASSERT_NEAR(x[1], 0.0, 1e-6);
    free(x);
    /* errors: garbage, truncated, bad CRC, empty, huge dimensions */
    memset(raw, 7, sizeof raw);
    ASSERT_STATUS(advex_png_decode(raw, sizeof raw, &x, &c, &h, &w), ADVEX_ERR_FORMAT);
    n = make_png(buf, 2, 2, 8, 3, plte, 2, r1, sizeof r1);
    ASSERT_STATUS(advex_png_decode(buf, n - 30, &x, &c, &h, &w), ADVEX_ERR_FORMAT);
    buf[30] ^= 0x55;
    ASSERT_STATUS(advex_png_decode(buf, n, &x, &c, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_STATUS(advex_png_decode(buf, 0, &x, &c, &h, &w), ADVEX_ERR_FORMAT);
    n = make_png(buf, 100000, 100000, 8, 0, NULL, 0, r1, 1); /* over the pixel limit, before any allocation */
    ASSERT_STATUS(advex_png_decode(buf, n, &x, &c, &h, &w), ADVEX_ERR_LIMIT);
    /* file errors name the file */
    const char *p = tmp_path("not.png");
    FILE *f = fopen(p, "wb");
    fputs("hello, not a png", f);
    fclose(f);
    ASSERT_STATUS(advex_png_read(p, &x, &c, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT(strstr(advex_last_error(), "not.png") != NULL);
    ASSERT_STATUS(advex_png_read(tmp_path("missing.png"), &x, &c, &h, &w), ADVEX_ERR_IO);
    ASSERT(strstr(advex_last_error(), "missing.png") != NULL);
    /* writing into a missing directory fails cleanly */
    float one = 0.5f;
    ASSERT(advex_png_write(tmp_path("nodir/x.png"), &one, 1, 1, 1) != ADVEX_OK);
    ASSERT_STATUS(advex_png_write(tmp_path("x.png"), &one, 2, 1, 1), ADVEX_ERR_ARG);
}

TEST(image_convert) {
    float rgb[3 * 2 * 2] = {1, 0, 0, 0, /* R */ 0, 1, 0, 0, /* G */ 0, 0, 1, 0 /* B */};
    float g[4], back[12];
    ASSERT_OK(advex_image_convert(rgb, 3, 2, 2, 1, 2, 2, g));
    ASSERT_NEAR(g[0], 0.299, 1e-6);
    ASSERT_NEAR(g[1], 0.587, 1e-6);
    ASSERT_NEAR(g[2], 0.114, 1e-6);
    ASSERT_NEAR(g[3], 0.0, 1e-6);
    ASSERT_OK(advex_image_convert(g, 1, 2, 2, 3, 2, 2, back));
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 4; i++) ASSERT_NEAR(back[k * 4 + i], g[i], 0);
    /* bilinear: a 1x2 ramp [0,1] upsampled to 1x4 gives 0, .25, .75, 1 (centres aligned) */
    float ramp[2] = {0, 1}, up[4], down[1];
    ASSERT_OK(advex_image_convert(ramp, 1, 1, 2, 1, 1, 4, up));
    ASSERT_NEAR(up[0], 0.0, 1e-6);
    ASSERT_NEAR(up[1], 0.25, 1e-6);
    ASSERT_NEAR(up[2], 0.75, 1e-6);
    ASSERT_NEAR(up[3], 1.0, 1e-6);
    ASSERT_OK(advex_image_convert(ramp, 1, 1, 2, 1, 1, 1, down));
    ASSERT_NEAR(down[0], 0.5, 1e-6);
    float two[8];
    ASSERT_STATUS(advex_image_convert(two, 2, 2, 2, 3, 2, 2, back), ADVEX_ERR_SHAPE);
}

TEST(canvas_and_font) {
    advex_canvas cv;
    ASSERT_OK(advex_canvas_init(&cv, 40, 12, 0xffffff));
    int w = advex_canvas_text(&cv, 1, 1, "Ab1%", 1, 0x000000);
    ASSERT_EQ_INT(w, 24);
    ASSERT_EQ_INT(advex_text_width("Ab1%", 1), 23);
    int dark = 0;
    for (int i = 0; i < 40 * 12; i++) dark += cv.rgb[3 * i] == 0;
    ASSERT(dark > 20 && dark < 120);
    advex_canvas_line(&cv, -10, -10, 100, 100, 2, 0xff0000); /* clipped, no crash */
    advex_canvas_dot(&cv, 39, 11, 3, 0x00ff00);
    ASSERT_EQ_INT(cv.rgb[(11 * 40 + 39) * 3 + 1], 255);
    ASSERT_OK(advex_canvas_save_png(&cv, tmp_path("canvas.png")));
    advex_canvas_free(&cv);
    ASSERT_STATUS(advex_canvas_init(&cv, 0, 5, 0), ADVEX_ERR_ARG);
}

TEST(plots) {
    double x1[] = {0, 0.05, 0.1}, y1[] = {0.9, 0.5, 0.1}, x2[] = {0, 0.1}, y2[] = {0.9, 0.3};
    advex_curve c[2] = {{"fgsm", 3, x1, y1}, {"pgd <b>", 2, x2, y2}};
    char *svg = NULL;
    ASSERT_OK(advex_plot_svg(c, 2, "Robust accuracy", "eps", 640, 400, &svg));
    ASSERT(strncmp(svg, "<svg ", 5) == 0);
    ASSERT(strstr(svg, "<polyline") != NULL);
    ASSERT(strstr(svg, "pgd &lt;b&gt;") != NULL); /* escaped */
    ASSERT(strstr(svg, "<script") == NULL);
    int circles = 0;
    for (const char *p = svg; (p = strstr(p, "<circle")) != NULL; p++) circles++;
    ASSERT_EQ_INT(circles, 5);
    free(svg);
    const char *p = tmp_path("plot.png");
    ASSERT_OK(advex_plot_png(c, 2, "Robust accuracy", "eps", 640, 400, p));
    float *x = NULL;
    int64_t ch, h, w;
    ASSERT_OK(advex_png_read(p, &x, &ch, &h, &w));
    ASSERT_EQ_INT(ch, 3);
    ASSERT_EQ_INT(w, 640);
    ASSERT_EQ_INT(h, 400);
    /* the first curve's colour (#1f77b4) is somewhere */
    int blue = 0;
    for (int64_t i = 0; i < h * w; i++)
        blue += x[i] < 0.2f && x[h * w + i] > 0.4f && x[h * w + i] < 0.55f && x[2 * h * w + i] > 0.65f;
    ASSERT(blue > 50);
    free(x);
    ASSERT_STATUS(advex_plot_png(c, 2, "t", "x", 10, 10, p), ADVEX_ERR_ARG);
}

TEST(grids) {
    enum { N = 5, C = 1, H = 6, W = 7 };
    float x[N * C * H * W], xa[N * C * H * W];
    for (int i = 0; i < N * C * H * W; i++) { x[i] = (float)(i % 11) / 10.0f; xa[i] = x[i] + (i % 2 ? 0.05f : -0.05f); }
    const char *p = tmp_path("grid.png");
    ASSERT_OK(advex_grid_png(p, x, N, C, H, W, 2, 3, 0));
    float *y = NULL;
    int64_t ch, h, w;
    ASSERT_OK(advex_png_read(p, &y, &ch, &h, &w));
    ASSERT_EQ_INT(w, 2 * (W * 3 + 2) + 2);
    ASSERT_EQ_INT(h, 3 * (H * 3 + 2) + 2);
    free(y);
    int32_t lab[N] = {0, 1, 2, 1, 0}, pc[N] = {0, 1, 2, 0, 0}, pa[N] = {1, 1, 0, 0, 2};
    float cf[N] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
    static const char *const names[3] = {"cat", "dog", "bird"};
    advex_grid_rows g = {x, xa, N, C, H, W, lab, pc, pa, cf, cf, names, 3, 0.05f, 0};
    int gw, gh;
    advex_grid_adv_size(&g, &gw, &gh);
    ASSERT_OK(advex_grid_adv_png(p, &g));
    ASSERT_OK(advex_png_read(p, &y, &ch, &h, &w));
    ASSERT_EQ_INT(w, gw);
    ASSERT_EQ_INT(h, gh);
    free(y);
    ASSERT_STATUS(advex_grid_png(p, x, N, 2, H, W, 2, 1, 0), ADVEX_ERR_SHAPE);
}

TEST(class_counts) {
    int32_t y[] = {0, 0, 1, 1, 2, 2}, pc[] = {0, 1, 1, 1, 2, 2}, pa[] = {0, 0, 2, 1, 0, 2};
    int64_t total[3], robust[3], conf[9];
    ASSERT_OK(advex_class_counts(y, pc, pa, 6, 3, total, robust, conf));
    ASSERT_EQ_INT(total[0], 2);
    ASSERT_EQ_INT(robust[0], 1); /* example 1 wrong on clean: non-robust even though pa is right */
    ASSERT_EQ_INT(robust[1], 1);
    ASSERT_EQ_INT(robust[2], 1);
    ASSERT_EQ_INT(conf[0 * 3 + 1], 1); /* its prediction under attack is its clean one */
    ASSERT_EQ_INT(conf[1 * 3 + 2], 1);
    ASSERT_EQ_INT(conf[2 * 3 + 0], 1);
    ASSERT_EQ_INT(conf[0] + conf[4] + conf[8], 3);
    int32_t bad[] = {0, 0, 1, 1, 2, 3};
    ASSERT_STATUS(advex_class_counts(y, pc, bad, 6, 3, total, robust, conf), ADVEX_ERR_ARG);
}

TEST(eval_run_outputs) {
    advex_model *m = NULL;
    ASSERT_OK(advex_model_build("small", 1, &m));
    advex_dataset d = {0};
    d.n = 24; d.c = 1; d.h = 28; d.w = 28; d.num_classes = 10;
    d.x = malloc(sizeof(float) * 24 * 784);
    d.y = malloc(sizeof(int32_t) * 24);
    for (int i = 0; i < 24 * 784; i++) d.x[i] = (float)((i * 7919) % 1000) / 1000.0f;
    for (int i = 0; i < 24; i++) d.y[i] = i % 10;
    advex_attack_config c;
    advex_attack_config_default(&c);
    c.kind = ADVEX_ATTACK_FGSM;
    c.eps = 0.1f;
    int32_t pc[24], pa[24];
    float cc[24], ca[24];
    advex_eval_outputs o = {NULL, pc, pa, cc, ca};
    advex_eval_result r1, r2;
    ASSERT_OK(advex_eval_run(m, NULL, &d, &c, 7, NULL, NULL, &o, &r1));
    ASSERT_OK(advex_eval_attack(m, &d, &c, 24, NULL, NULL, NULL, &r2));
    ASSERT_EQ_INT(r1.robust_correct, r2.robust_correct);
    int64_t total[10], robust[10], conf[100], sum = 0, diag = 0, clean = 0;
    ASSERT_OK(advex_class_counts(d.y, pc, pa, 24, 10, total, robust, conf));
    for (int k = 0; k < 10; k++) { sum += robust[k]; diag += conf[k * 11]; }
    for (int i = 0; i < 24; i++) { clean += pc[i] == d.y[i]; ASSERT(cc[i] > 0.099f && cc[i] <= 1.0f); ASSERT(ca[i] > 0.099f); }
    ASSERT_EQ_INT(sum, r1.robust_correct);
    ASSERT_EQ_INT(diag, r1.robust_correct);
    ASSERT_EQ_INT(clean, r1.clean_correct);
    advex_dataset_free(&d);
    advex_model_free(m);
}

TEST_MAIN(TEST_ENTRY(png_roundtrip_grey_rgb), TEST_ENTRY(png_decode_variants), TEST_ENTRY(image_convert),
          TEST_ENTRY(canvas_and_font), TEST_ENTRY(plots), TEST_ENTRY(grids), TEST_ENTRY(class_counts),
          TEST_ENTRY(eval_run_outputs))
