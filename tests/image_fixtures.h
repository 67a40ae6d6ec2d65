/* Image files built by the tests themselves (no fixtures): JPEGs encoded with libjpeg (baseline,
 * progressive, or a progressive file with thousands of scans), PNGs through advex, CIFAR-10
 * records, deterministic pixel patterns. Included by test_images.c and test_folder.c. */
#ifndef ADVEX_TEST_IMAGE_FIXTURES_H
#define ADVEX_TEST_IMAGE_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

static inline const char *fx_path(const char *name) {
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", advex_test_tmpdir(), name);
    return buf[k];
}

static inline int fx_write(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = n ? fwrite(buf, 1, n, f) : 0;
    return fclose(f) == 0 && w == n;
}

/* w x h x c bytes: a smooth pattern plus a hash, different per seed. */
static inline uint8_t *fx_pattern(int w, int h, int c, unsigned seed) {
    uint8_t *p = malloc((size_t)w * (size_t)h * (size_t)c);
    for (int y = 0; p && y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                unsigned v = (unsigned)(x * 7 + y * 3 + k * 50) + seed * 31u;
                v ^= (unsigned)((x * 2654435761u) >> 28) ^ (unsigned)((y * 40503u) >> 12);
                p[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)k] = (uint8_t)v;
            }
    return p;
}

/* Encode interleaved pixels (c 1 or 3) as a JPEG in memory. scans > 0: a progressive file with
 * that many AC refinement scans per band (a scan bomb when large); scans < 0: libjpeg's simple
 * progression. *out is malloc'd by libjpeg (free()). */
static inline int fx_jpeg(const uint8_t *px, int w, int h, int c, int quality, int scans, unsigned char **out,
                   unsigned long *n) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    *out = NULL;
    *n = 0;
    jpeg_mem_dest(&ci, out, n);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_scan_info *script = NULL;
    if (scans < 0) jpeg_simple_progression(&ci);
    if (scans > 0) { /* DC, then per component and AC band: a first scan at Al = scans, refinements down to 0 */
        int ns = 1 + c * 63 * (scans + 1), k = 0;
        script = calloc((size_t)ns, sizeof *script);
        script[k].comps_in_scan = c;
        for (int i = 0; i < c; i++) script[k].component_index[i] = i;
        k++;
        for (int comp = 0; comp < c; comp++)
            for (int band = 1; band < 64; band++)
                for (int al = scans; al >= 0; al--, k++) {
                    script[k].comps_in_scan = 1;
                    script[k].component_index[0] = comp;
                    script[k].Ss = band;
                    script[k].Se = band;
                    script[k].Ah = al == scans ? 0 : al + 1;
                    script[k].Al = al;
                }
        ci.scan_info = script;
        ci.num_scans = ns;
    }
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * (size_t)w * (size_t)c);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(script);
    return *n > 0;
}

static inline int fx_write_jpeg(const char *path, int w, int h, int c, unsigned seed) {
    uint8_t *px = fx_pattern(w, h, c, seed);
    unsigned char *buf = NULL;
    unsigned long n = 0;
    int ok = px && fx_jpeg(px, w, h, c, 90, 0, &buf, &n) && fx_write(path, buf, n);
    free(px);
    free(buf);
    return ok;
}

static inline int fx_write_png(const char *path, int w, int h, unsigned seed) {
    uint8_t *px = fx_pattern(w, h, 3, seed);
    int ok = px && advex_png_write_rgb8(path, px, w, h) == ADVEX_OK;
    free(px);
    return ok;
}

/* The SOF marker's height and width (big-endian) set to h x w: a header that claims more than
 * the data holds. */
static inline void fx_jpeg_set_size(unsigned char *buf, unsigned long n, unsigned h, unsigned w) {
    for (unsigned long i = 0; i + 9 < n; i++)
        if (buf[i] == 0xff && (buf[i + 1] == 0xc0 || buf[i + 1] == 0xc2)) {
            buf[i + 5] = (unsigned char)(h >> 8);
            buf[i + 6] = (unsigned char)h;
            buf[i + 7] = (unsigned char)(w >> 8);
            buf[i + 8] = (unsigned char)w;
            return;
        }
}

#endif
