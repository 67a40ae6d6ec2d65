/* A small RGB rasteriser for plots and image grids: filled rectangles, anti-aliased thick
 * lines and dots (coverage from the distance to the segment), float images scaled by pixel
 * replication, and text in a built-in 5x7 bitmap font drawn for advex. Also channel/size
 * conversion of single images (luminance, replication, bilinear). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "advex/report.h"

/* 5x7 glyphs, one byte per row (top first), bit 4 = leftmost column. */
typedef struct glyph { char ch; uint8_t rows[7]; } glyph;
static const glyph font[] = {
    {' ', {0, 0, 0, 0, 0, 0, 0}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0, 0, 0, 0, 0, 0x0C, 0x0C}},                {',', {0, 0, 0, 0, 0x0C, 0x04, 0x08}},
    {':', {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0}},          {'-', {0, 0, 0, 0x1F, 0, 0, 0}},
    {'+', {0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0}},       {'=', {0, 0, 0x1F, 0, 0x1F, 0, 0}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}}, {'/', {0, 0x01, 0x02, 0x04, 0x08, 0x10, 0}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'_', {0, 0, 0, 0, 0, 0, 0x1F}},                   {'\'', {0x0C, 0x04, 0x08, 0, 0, 0, 0}},
    {'*', {0, 0x04, 0x15, 0x0E, 0x15, 0x04, 0}},       {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}}, {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'|', {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}}, {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}},
    {'!', {0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04}},    {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}},
    {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},
};

static const uint8_t *glyph_rows(char ch) {
    if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
    const uint8_t *q = NULL;
    for (size_t i = 0; i < sizeof font / sizeof *font; i++) {
        if (font[i].ch == ch) return font[i].rows;
        if (font[i].ch == '?') q = font[i].rows;
    }
    return q;
}

advex_status advex_canvas_init(advex_canvas *cv, int w, int h, uint32_t bg) {
    cv->rgb = NULL;
    cv->w = cv->h = 0;
    if (w <= 0 || h <= 0 || (int64_t)w * h > ADVEX_PNG_MAX_PIXELS)
        return advex_set_error(ADVEX_ERR_ARG, "canvas of %dx%d pixels", w, h);
    cv->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!cv->rgb) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory for a %dx%d canvas", w, h);
    cv->w = w;
    cv->h = h;
    advex_canvas_fill_rect(cv, 0, 0, w, h, bg);
    return ADVEX_OK;
}

void advex_canvas_free(advex_canvas *cv) {
    free(cv->rgb);
    cv->rgb = NULL;
    cv->w = cv->h = 0;
}

/* Blend colour into pixel (x, y) with coverage a in [0,1]. */
static void blend(advex_canvas *cv, int x, int y, uint32_t rgb, double a) {
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h || a <= 0) return;
    if (a > 1) a = 1;
    uint8_t *p = cv->rgb + ((size_t)y * (size_t)cv->w + (size_t)x) * 3;
    const uint8_t c[3] = {(uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb};
    for (int k = 0; k < 3; k++) p[k] = (uint8_t)lrint(p[k] + a * ((double)c[k] - p[k]));
}

void advex_canvas_fill_rect(advex_canvas *cv, int x, int y, int w, int h, uint32_t rgb) {
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > cv->w ? cv->w : x + w, y1 = y + h > cv->h ? cv->h : y + h;
    for (int j = y0; j < y1; j++)
        for (int i = x0; i < x1; i++) {
            uint8_t *p = cv->rgb + ((size_t)j * (size_t)cv->w + (size_t)i) * 3;
            p[0] = (uint8_t)(rgb >> 16);
            p[1] = (uint8_t)(rgb >> 8);
            p[2] = (uint8_t)rgb;
        }
}

/* Distance from point p to the segment a-b. */
static double seg_dist(double px, double py, double ax, double ay, double bx, double by) {
    double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy, t = 0;
    if (l2 > 0) {
        t = ((px - ax) * dx + (py - ay) * dy) / l2;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
    }
    double ex = ax + t * dx - px, ey = ay + t * dy - py;
    return sqrt(ex * ex + ey * ey);
}

void advex_canvas_line(advex_canvas *cv, double x0, double y0, double x1, double y1, double thickness,
                       uint32_t rgb) {
    double r = thickness / 2;
    int i0 = (int)floor(fmin(x0, x1) - r - 1), i1 = (int)ceil(fmax(x0, x1) + r + 1);
    int j0 = (int)floor(fmin(y0, y1) - r - 1), j1 = (int)ceil(fmax(y0, y1) + r + 1);
    if (i0 < 0) i0 = 0;
    if (j0 < 0) j0 = 0;
    if (i1 > cv->w) i1 = cv->w;
    if (j1 > cv->h) j1 = cv->h;
    for (int j = j0; j < j1; j++)
        for (int i = i0; i < i1; i++) /* pixel centres at +0.5 */
            blend(cv, i, j, rgb, r + 0.5 - seg_dist(i + 0.5, j + 0.5, x0, y0, x1, y1));
}

void advex_canvas_dot(advex_canvas *cv, double x, double y, double radius, uint32_t rgb) {
    advex_canvas_line(cv, x, y, x, y, 2 * radius, rgb);
}

int advex_text_width(const char *s, int scale) {
    size_t n = strlen(s);
    return n ? (int)(n * 6 - 1) * scale : 0;
}

int advex_canvas_text(advex_canvas *cv, int x, int y, const char *s, int scale, uint32_t rgb) {
    int x0 = x;
    for (; *s; s++) {
        const uint8_t *rows = glyph_rows(*s);
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < 5; c++)
                if (rows[r] & (0x10 >> c)) advex_canvas_fill_rect(cv, x + c * scale, y + r * scale, scale, scale, rgb);
        x += 6 * scale;
    }
    return x - x0;
}

void advex_canvas_image(advex_canvas *cv, int x, int y, const float *img, int64_t c, int64_t h, int64_t w, int scale) {
    int64_t npx = h * w;
    for (int64_t j = 0; j < h; j++)
        for (int64_t i = 0; i < w; i++) {
            uint8_t v[3];
            for (int k = 0; k < 3; k++) {
                float f = img[(c == 3 ? k : 0) * npx + j * w + i];
                f = f != f ? 0.0f : f < 0 ? 0.0f : f > 1 ? 1.0f : f;
                v[k] = (uint8_t)lrintf(f * 255.0f);
            }
            advex_canvas_fill_rect(cv, x + (int)i * scale, y + (int)j * scale, scale, scale,
                                   (uint32_t)v[0] << 16 | (uint32_t)v[1] << 8 | v[2]);
        }
}

advex_status advex_canvas_save_png(const advex_canvas *cv, const char *path) {
    return advex_png_write_rgb8(path, cv->rgb, cv->w, cv->h);
}

advex_status advex_image_convert(const float *src, int64_t c, int64_t h, int64_t w, int64_t c_out, int64_t h_out,
                                 int64_t w_out, float *dst) {
    if (c <= 0 || h <= 0 || w <= 0 || c_out <= 0 || h_out <= 0 || w_out <= 0)
        return advex_set_error(ADVEX_ERR_ARG, "image convert: bad sizes");
    if (c != c_out && !((c == 3 && c_out == 1) || (c == 1 && c_out == 3)))
        return advex_set_error(ADVEX_ERR_SHAPE, "cannot convert a %lld-channel image to %lld channels", (long long)c,
                               (long long)c_out);
    float *tmp = NULL;
    const float *s = src;
    int64_t npx = h * w;
    if (c == 3 && c_out == 1) { /* luminance (ITU-R BT.601 weights, what PIL's convert("L") uses) */
        tmp = malloc((size_t)npx * sizeof(float));
        if (!tmp) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        for (int64_t p = 0; p < npx; p++)
            tmp[p] = 0.299f * src[p] + 0.587f * src[npx + p] + 0.114f * src[2 * npx + p];
        s = tmp;
    }
    int64_t cs = c == 3 && c_out == 1 ? 1 : c; /* channels in s */
    int64_t npo = h_out * w_out;
    for (int64_t k = 0; k < c_out; k++) {
        const float *plane = s + (cs == 1 ? 0 : k) * npx;
        float *o = dst + k * npo;
        if (h == h_out && w == w_out) {
            memcpy(o, plane, (size_t)npx * sizeof(float));
            continue;
        }
        double sy = (double)h / (double)h_out, sx = (double)w / (double)w_out;
        for (int64_t j = 0; j < h_out; j++) {
            double fy = (j + 0.5) * sy - 0.5;
            if (fy < 0) fy = 0;
            int64_t y0 = (int64_t)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
            double ay = fy - (double)y0;
            for (int64_t i = 0; i < w_out; i++) {
                double fx = (i + 0.5) * sx - 0.5;
                if (fx < 0) fx = 0;
                int64_t x0 = (int64_t)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
                double ax = fx - (double)x0;
                double top = plane[y0 * w + x0] * (1 - ax) + plane[y0 * w + x1] * ax;
                double bot = plane[y1 * w + x0] * (1 - ax) + plane[y1 * w + x1] * ax;
                o[j * w_out + i] = (float)(top * (1 - ay) + bot * ay);
            }
        }
    }
    free(tmp);
    return ADVEX_OK;
}
