/* Colour data, part 1: torchvision's Resize/CenterCrop arithmetic (known answers taken from
 * PIL 9.4 and torchvision 0.14), PNG and JPEG read to 8 bits as PIL reads them, hostile JPEGs
 * (a header claiming 60000x60000, truncation, a scan bomb, the memory cap), and CIFAR-10's
 * binary batches: labels, exact pixels, splits, --limit across files, every error naming the
 * file. tests/cli/images.sh compares whole pipelines against PIL/torchvision themselves. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>

#include "harness.h"
#include "data/data_internal.h"
#include "image_fixtures.h"

#define ASSERT_ERR_HAS(needle)                                                                  \
    ASSERT_MSG(strstr(advex_last_error(), needle) != NULL, "error '%s' lacks '%s'", advex_last_error(), needle)

/* ---- sizes and known answers ------------------------------------------------------------- */

TEST(resize_sizes_as_torchvision) {
    int64_t h, w;
    advex_resize_size(375, 500, 256, &h, &w); /* ImageNet's common 500x375: Resize(256) -> 341x256 */
    ASSERT_EQ_INT(h, 256);
    ASSERT_EQ_INT(w, 341);
    advex_resize_size(500, 375, 256, &h, &w);
    ASSERT_EQ_INT(h, 341);
    ASSERT_EQ_INT(w, 256);
    advex_resize_size(224, 224, 256, &h, &w);
    ASSERT_EQ_INT(h, 256);
    ASSERT_EQ_INT(w, 256);
    advex_resize_size(3, 1000, 7, &h, &w); /* int(7 * 1000 / 3) = 2333 */
    ASSERT_EQ_INT(w, 2333);
    /* centre crop offsets round half to even, as Python's round(): (341 - 224) / 2 = 58.5 -> 58 */
    advex_img8 in = {calloc(341 * 2, 1), 341, 2, 1}, out;
    for (int i = 0; i < 341; i++) in.px[i] = (uint8_t)i;
    ASSERT_OK(advex_img8_crop(&in, 224, 1, &out));
    ASSERT_EQ_INT(out.px[0], 58);
    advex_img8_free(&out);
    in.w = 343; /* 59.5 -> 60 */
    free(in.px);
    in.px = calloc(343 * 2, 1);
    for (int i = 0; i < 343; i++) in.px[i] = (uint8_t)i;
    ASSERT_OK(advex_img8_crop(&in, 224, 1, &out));
    ASSERT_EQ_INT(out.px[0], 60);
    advex_img8_free(&out);
    /* a crop larger than the image pads with zeros: (5 - 2) // 2 = 1 on the left */
    ASSERT_OK(advex_img8_crop(&in, 345, 4, &out));
    ASSERT_EQ_INT(out.px[0], 0);
    ASSERT_EQ_INT(out.px[1], 0);
    ASSERT_EQ_INT(out.px[345 + 1], 0);   /* row 1 is image row 0: left pad 1, then pixel 0 */
    ASSERT_EQ_INT(out.px[345 + 2], 1);
    ASSERT_EQ_INT(out.px[3 * 345 + 2], 0); /* row 3 is padding */
    advex_img8_free(&out);
    advex_img8_free(&in);
}

TEST(resize_known_answers_from_pil) {
    /* Image.fromarray(...).resize(size, BILINEAR) in Pillow 9.4 */
    uint8_t row[4] = {0, 100, 200, 255};
    advex_img8 in = {row, 4, 1, 1}, out;
    ASSERT_OK(advex_img8_resize(&in, 2, 1, &out)); /* downscale: support 2, weights 3/7 3/7 1/7 */
    ASSERT_EQ_INT(out.px[0], 71);
    ASSERT_EQ_INT(out.px[1], 209);
    advex_img8_free(&out);
    static const uint8_t up[7] = {0, 36, 93, 150, 204, 235, 255};
    ASSERT_OK(advex_img8_resize(&in, 7, 1, &out));
    for (int i = 0; i < 7; i++) ASSERT_EQ_INT(out.px[i], up[i]);
    advex_img8_free(&out);
    uint8_t sq[4] = {0, 100, 200, 255};
    static const uint8_t up2[9] = {0, 50, 100, 100, 139, 178, 200, 228, 255};
    advex_img8 in2 = {sq, 2, 2, 1};
    ASSERT_OK(advex_img8_resize(&in2, 3, 3, &out));
    for (int i = 0; i < 9; i++) ASSERT_EQ_INT(out.px[i], up2[i]);
    advex_img8_free(&out);
    /* the float filter: a constant stays constant, the same 71.43 without the 8-bit rounding */
    float f[4] = {0, 100 / 255.0f, 200 / 255.0f, 1}, g[2];
    ASSERT_OK(advex_image_resize(f, 1, 1, 4, 1, 2, g));
    ASSERT_NEAR(g[0] * 255.0f, 500.0 / 7.0, 1e-4);
    ASSERT_NEAR(g[1] * 255.0f, 1465.0 / 7.0, 1e-4);
    float k[6 * 5], ko[3 * 11];
    for (int i = 0; i < 30; i++) k[i] = 0.25f;
    ASSERT_OK(advex_image_resize(k, 1, 6, 5, 3, 11, ko));
    for (int i = 0; i < 33; i++) ASSERT_NEAR(ko[i], 0.25, 1e-6);
    ASSERT_STATUS(advex_image_resize(k, 1, 6, 5, 100000, 100000, ko), ADVEX_ERR_LIMIT);
}

TEST(channels_as_pil) {
    /* convert("L"): (19595 R + 38470 G + 7471 B + 0x8000) >> 16 */
    uint8_t *px = malloc(6);
    memcpy(px, (uint8_t[]){255, 0, 0, 10, 200, 30}, 6);
    advex_img8 im = {px, 2, 1, 3};
    ASSERT_OK(advex_img8_channels(&im, 1));
    ASSERT_EQ_INT(im.c, 1);
    ASSERT_EQ_INT(im.px[0], 76);  /* 255 * 19595 / 65536 = 76.24 */
    ASSERT_EQ_INT(im.px[1], 124); /* (10*19595 + 200*38470 + 30*7471 + 32768) >> 16, as PIL */
    ASSERT_OK(advex_img8_channels(&im, 3));
    ASSERT_EQ_INT(im.px[3], 124);
    ASSERT_EQ_INT(im.px[5], 124);
    advex_img8_free(&im);
}

/* ---- PNG and JPEG to 8 bits ---------------------------------------------------------------- */

TEST(png_read_as_pil_convert_rgb) {
    /* RGBA: PIL's convert("RGB") drops alpha (the float reader composites it onto white) */
    const char *p = fx_path("rgba.png");
    uint8_t rgba[8] = {10, 20, 30, 0, 200, 100, 50, 128};
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = 2;
    pi.height = 1;
    pi.format = PNG_FORMAT_RGBA;
    ASSERT(png_image_write_to_file(&pi, p, 0, rgba, 0, NULL));
    advex_decode_limits lim = {ADVEX_IMAGE_MAX_PIXELS, INT64_MAX};
    advex_img8 im;
    ASSERT_OK(advex_img8_read(p, &lim, &im));
    ASSERT_EQ_INT(im.c, 3);
    ASSERT_EQ_INT(im.w, 2);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 3; k++) ASSERT_EQ_INT(im.px[i * 3 + k], rgba[i * 4 + k]);
    advex_img8_free(&im);
    float *x;
    int64_t c, h, w;
    ASSERT_OK(advex_png_read(p, &x, &c, &h, &w));
    ASSERT(x[0] == 1.0f); /* alpha 0 over white */
    free(x);
    /* the pixel limit of one decode, before its pixels are allocated */
    lim.max_pixels = 1;
    ASSERT_STATUS(advex_img8_read(p, &lim, &im), ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("rgba.png: PNG of 2x1 pixels (at most 1 pixels)");
    /* neither PNG nor JPEG */
    const char *q = fx_path("text.png");
    ASSERT(fx_write(q, "hello", 5));
    lim.max_pixels = ADVEX_IMAGE_MAX_PIXELS;
    ASSERT_STATUS(advex_img8_read(q, &lim, &im), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("text.png: not a PNG or JPEG file");
    ASSERT_STATUS(advex_img8_read(fx_path("missing.jpg"), &lim, &im), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("missing.jpg: No such file");
}

TEST(jpeg_decode_roundtrip) {
    uint8_t *px = malloc(37 * 23 * 3); /* smooth: quality 100 keeps it within a few levels */
    for (int i = 0; i < 37 * 23 * 3; i++) px[i] = (uint8_t)((i / 3) % 37 * 5 + (i / 111) * 3 + (i % 3) * 20);
    unsigned char *buf;
    unsigned long n;
    ASSERT(fx_jpeg(px, 37, 23, 3, 100, 0, &buf, &n));
    float *x = NULL;
    int64_t c, h, w;
    ASSERT_OK(advex_jpeg_decode(buf, n, &x, &c, &h, &w));
    ASSERT_EQ_INT(c, 3);
    ASSERT_EQ_INT(h, 23);
    ASSERT_EQ_INT(w, 37);
    double err = 0;
    for (int y = 0; y < 23; y++)
        for (int xx = 0; xx < 37; xx++)
            for (int k = 0; k < 3; k++) err += fabs(x[(k * 23 + y) * 37 + xx] * 255.0 - px[(y * 37 + xx) * 3 + k]);
    ASSERT_MSG(err / (37 * 23 * 3) < 4.0, "mean error %g of 255 at quality 100", err / (37 * 23 * 3));
    free(x);
    free(buf);
    /* greyscale and progressive JPEGs */
    ASSERT(fx_jpeg(px, 37, 23, 3, 80, -1, &buf, &n));
    ASSERT_OK(advex_jpeg_decode(buf, n, &x, &c, &h, &w));
    free(x);
    free(buf);
    uint8_t *g = fx_pattern(8, 9, 1, 2);
    ASSERT(fx_jpeg(g, 8, 9, 1, 90, 0, &buf, &n));
    ASSERT_OK(advex_jpeg_decode(buf, n, &x, &c, &h, &w));
    ASSERT_EQ_INT(c, 1);
    free(x);
    const char *p = fx_path("grey.jpg");
    ASSERT(fx_write(p, buf, n));
    ASSERT_OK(advex_image_read(p, &x, &c, &h, &w)); /* told from PNG by content */
    ASSERT_EQ_INT(c, 1);
    ASSERT_EQ_INT(w, 8);
    free(x);
    free(buf);
    free(g);
    free(px);
}

TEST(jpeg_hostile) {
    uint8_t *px = fx_pattern(64, 48, 3, 3);
    unsigned char *buf;
    unsigned long n;
    float *x = NULL;
    int64_t c, h, w;
    ASSERT(fx_jpeg(px, 64, 48, 3, 90, 0, &buf, &n));
    /* truncated: PIL's "image file is truncated"; every prefix fails cleanly */
    ASSERT_STATUS(advex_jpeg_decode(buf, n / 2, &x, &c, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("truncated JPEG data");
    for (unsigned long k = 0; k < n; k += 7) ASSERT(advex_jpeg_decode(buf, k, &x, &c, &h, &w) != ADVEX_OK);
    ASSERT_STATUS(advex_jpeg_decode(buf, 0, &x, &c, &h, &w), ADVEX_ERR_FORMAT);
    /* a header claiming 60000x60000 over a few hundred bytes: refused before any pixel memory */
    unsigned char *bomb = malloc(n);
    memcpy(bomb, buf, n);
    fx_jpeg_set_size(bomb, n, 60000, 60000);
    ASSERT_STATUS(advex_jpeg_decode(bomb, n, &x, &c, &h, &w), ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("JPEG of 60000x60000 pixels (at most 67108864 pixels)");
    const char *p = fx_path("bomb.jpg");
    ASSERT(fx_write(p, bomb, n));
    ASSERT_STATUS(advex_jpeg_read(p, &x, &c, &h, &w), ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("bomb.jpg: JPEG of 60000x60000");
    /* under the pixel limit (8000x8000 = 64M pixels) but over a 64 MiB memory cap: refused first */
    fx_jpeg_set_size(bomb, n, 8000, 8000);
    ASSERT(fx_write(p, bomb, n));
    advex_set_memory_limit((int64_t)64 << 20);
    advex_decode_limits lim = {ADVEX_IMAGE_MAX_PIXELS, advex_decode_budget(0)};
    advex_img8 im;
    ASSERT_STATUS(advex_img8_read(p, &lim, &im), ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("bomb.jpg: decoding this 8000x8000 image needs");
    ASSERT_ERR_HAS("(--max-memory)");
    advex_set_memory_limit(0);
    free(bomb);
    free(buf);
    /* a progressive file of 2080 scans (every AC band refined bit by bit): stopped at 1000 */
    ASSERT(fx_jpeg(px, 64, 48, 3, 90, 10, &buf, &n));
    ASSERT_STATUS(advex_jpeg_decode(buf, n, &x, &c, &h, &w), ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("progressive JPEG with more than 1000 scans");
    free(buf);
    /* not a JPEG at all, and a JPEG signature over garbage */
    p = fx_path("fake.jpg");
    ASSERT(fx_write(p, "\xff\xd8\xff\xe0garbage", 11));
    ASSERT_STATUS(advex_jpeg_read(p, &x, &c, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("fake.jpg: ");
    ASSERT(fx_write(p, "GIF89a", 6));
    ASSERT_STATUS(advex_jpeg_read(p, &x, &c, &h, &w), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("fake.jpg: not a JPEG file");
    free(px);
}

/* ---- CIFAR-10 ------------------------------------------------------------------------------ */

/* n records into dir/name: label (i * 3 + seed) % 10, pixel p of channel k = (i + p + 7k + seed). */
static int cifar_file(const char *dir, const char *name, int n, int seed) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unsigned char *b = malloc((size_t)n * 3073);
    for (int i = 0; i < n; i++) {
        b[i * 3073] = (unsigned char)((i * 3 + seed) % 10);
        for (int k = 0; k < 3; k++)
            for (int q = 0; q < 1024; q++) b[i * 3073 + 1 + k * 1024 + q] = (unsigned char)(i + q + 7 * k + seed);
    }
    int ok = fx_write(p, b, (size_t)n * 3073);
    free(b);
    return ok;
}

static const char *cifar_dir(void) {
    const char *d = fx_path("cifar");
    static int made;
    if (!made) {
        mkdir(d, 0755);
        cifar_file(d, "test_batch.bin", 5, 0);
        for (int i = 1; i <= 5; i++) {
            char name[32];
            snprintf(name, sizeof name, "data_batch_%d.bin", i);
            cifar_file(d, name, 2, 10 * i);
        }
        made = 1;
    }
    return d;
}

TEST(cifar10_splits_labels_pixels) {
    const char *dir = cifar_dir();
    char spec[1100];
    advex_dataset d;
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ASSERT_OK(advex_dataset_load_split(spec, "test", NULL, 0, &d)); /* a bare name: the caller's split */
    ASSERT_EQ_INT(d.n, 5);
    ASSERT_EQ_INT(d.c, 3);
    ASSERT_EQ_INT(d.h, 32);
    ASSERT_EQ_INT(d.num_classes, 10);
    ASSERT(strcmp(d.class_names[0], "airplane") == 0 && strcmp(d.class_names[9], "truck") == 0);
    for (int i = 0; i < 5; i++) ASSERT_EQ_INT(d.y[i], (i * 3) % 10);
    /* exact: (C, H, W) planes, v / 255 as ToTensor */
    ASSERT(d.x[(2 * 3 + 1) * 1024 + 40] == (float)(unsigned char)(2 + 40 + 7) / 255.0f);
    advex_dataset_free(&d);
    ASSERT_OK(advex_dataset_load_split(spec, "train", NULL, 0, &d));
    ASSERT_EQ_INT(d.n, 10); /* data_batch_1..5 in order */
    ASSERT_EQ_INT(d.y[0], 10 % 10);
    ASSERT_EQ_INT(d.y[9], (3 + 50) % 10);
    ASSERT(d.x[(9 * 3 + 2) * 1024 + 5] == (float)(unsigned char)(1 + 5 + 14 + 50) / 255.0f);
    advex_dataset_free(&d);
    snprintf(spec, sizeof spec, "cifar10:%s:train", dir);
    ASSERT_OK(advex_dataset_load_split(spec, "test", NULL, 5, &d)); /* --limit across files */
    ASSERT_EQ_INT(d.n, 5);
    ASSERT_EQ_INT(d.y[4], (30) % 10);
    advex_dataset_free(&d);
    ASSERT_OK(advex_dataset_load("cifar10:test", dir, 0, &d)); /* the directory from data_dir */
    ASSERT_EQ_INT(d.n, 5);
    advex_dataset_free(&d);
    /* Resize(40) + CenterCrop(36): as the 8-bit pipeline does it */
    advex_data_prep prep = {40, 36, 0};
    advex_data_expect want = {3, 36, 36, 10};
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ASSERT_OK(advex_dataset_load_prep(spec, "test", NULL, 2, &want, &prep, &d));
    ASSERT_EQ_INT(d.h, 36);
    ASSERT_EQ_INT(d.n, 2);
    advex_dataset_free(&d);
    want = (advex_data_expect){1, 28, 28, 10};
    ASSERT_STATUS(advex_dataset_load_prep(spec, "test", NULL, 0, &want, NULL, &d), ADVEX_ERR_SHAPE);
    ASSERT_ERR_HAS("test_batch.bin: images are 3x32x32 but the model expects 1x28x28");
    want = (advex_data_expect){3, 224, 224, 10};
    ASSERT_STATUS(advex_dataset_load_prep(spec, "test", NULL, 0, &want, NULL, &d), ADVEX_ERR_SHAPE);
    ASSERT_ERR_HAS("(pass --resize S --crop C)");
    want = (advex_data_expect){3, 32, 32, 4}; /* labels past the model's classes */
    ASSERT_STATUS(advex_dataset_load_prep(spec, "test", NULL, 0, &want, NULL, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("outside the model's 4 classes");
}

TEST(cifar10_errors_name_the_file) {
    const char *dir = fx_path("cifar_bad");
    mkdir(dir, 0755);
    char spec[1100], p[1100];
    advex_dataset d;
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("test_batch.bin: No such file");
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    ASSERT(fx_write(p, "", 0));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("test_batch.bin: empty file");
    ASSERT(cifar_file(dir, "test_batch.bin", 3, 0));
    ASSERT_EQ_INT(truncate(p, 3073 * 3 - 100), 0); /* truncated */
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("test_batch.bin: 9119 bytes is not a whole number of 3073-byte CIFAR-10 records");
    ASSERT(cifar_file(dir, "test_batch.bin", 3, 0));
    FILE *f = fopen(p, "r+b");
    fseek(f, 3073 * 2, SEEK_SET);
    fputc(10, f); /* label 10 in record 2 */
    fclose(f);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("test_batch.bin: record 2 has label 10 (CIFAR-10 labels are 0..9)");
    ASSERT_OK(advex_dataset_load(spec, NULL, 2, &d)); /* only the records read are checked */
    advex_dataset_free(&d);
    /* the training split names the first missing batch */
    for (int i = 1; i <= 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", i);
        ASSERT(cifar_file(dir, name, 1, i));
    }
    snprintf(spec, sizeof spec, "cifar10:%s:train", dir);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("data_batch_3.bin: No such file");
    ASSERT_STATUS(advex_dataset_load("cifar10", NULL, 0, &d), ADVEX_ERR_ARG);
    ASSERT_ERR_HAS("cifar10: no directory");
    ASSERT_STATUS(advex_dataset_load("cifar10:/nonexistent-advex:test", NULL, 0, &d), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("cifar10: /nonexistent-advex: No such file");
    /* the memory the kept examples need, against the cap, before reading */
    snprintf(spec, sizeof spec, "cifar10:%s", cifar_dir());
    advex_set_memory_limit(20000);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("test_batch.bin: memory limit: 5 examples need");
    advex_set_memory_limit(0);
    advex_data_prep huge = {70000, 0, 0};
    ASSERT_STATUS(advex_dataset_load_prep(spec, NULL, NULL, 0, NULL, &huge, &d), ADVEX_ERR_ARG);
    huge.resize = 65536; /* 65536 x 65536 pixels */
    ASSERT_STATUS(advex_dataset_load_prep(spec, NULL, NULL, 0, NULL, &huge, &d), ADVEX_ERR_LIMIT);
}

TEST_MAIN(TEST_ENTRY(resize_sizes_as_torchvision), TEST_ENTRY(resize_known_answers_from_pil),
          TEST_ENTRY(channels_as_pil), TEST_ENTRY(png_read_as_pil_convert_rgb), TEST_ENTRY(jpeg_decode_roundtrip),
          TEST_ENTRY(jpeg_hostile), TEST_ENTRY(cifar10_splits_labels_pixels), TEST_ENTRY(cifar10_errors_name_the_file))
