/* Accuracy-vs-eps plots, drawn twice from one layout: as SVG text (hand-written elements, no
 * scripts) and as a PNG through the canvas rasteriser. y is accuracy 0..100%, x is eps from 0
 * to a rounded maximum; one coloured line with dots per curve, and a legend. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "advex/report.h"

static const uint32_t palette[] = {0x1f77b4, 0xd62728, 0x2ca02c, 0xff7f0e, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f};
#define NPAL ((int)(sizeof palette / sizeof *palette))

typedef struct layout {
    double left, right, top, bottom; /* plot area in pixels */
    double xmax, xstep;
    int nxt;
} layout;

static void make_layout(const advex_curve *cv, int n, int width, int height, layout *L) {
    double mx = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < cv[i].n; j++)
            if (isfinite(cv[i].x[j]) && cv[i].x[j] > mx) mx = cv[i].x[j];
    if (mx <= 0) mx = 1;
    double p = pow(10, floor(log10(mx / 5))), steps[] = {1, 2, 2.5, 5, 10};
    double step = p * 10;
    for (int k = 0; k < 5; k++)
        if (mx / (p * steps[k]) <= 6) { step = p * steps[k]; break; }
    L->xstep = step;
    L->nxt = (int)ceil(mx / step - 1e-9);
    L->xmax = L->nxt * step;
    L->left = 80;
    L->right = width - 30;
    L->top = 50;
    L->bottom = height - 60;
}

static double px_x(const layout *L, double x) { return L->left + (L->right - L->left) * x / L->xmax; }
static double px_y(const layout *L, double y) { return L->bottom - (L->bottom - L->top) * y; }

/* ---- SVG ----------------------------------------------------------------------------- */

typedef struct sbuf { char *s; size_t len, cap; int oom; } sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = 1; return; }
        if (b->s && (size_t)k < b->cap - b->len) { b->len += (size_t)k; return; }
        size_t cap = b->cap * 2 + (size_t)k + 256;
        char *s = realloc(b->s, cap);
        if (!s) { b->oom = 1; return; }
        b->s = s;
        b->cap = cap;
    }
}

static void sb_text(sbuf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '&': sb_printf(b, "&amp;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        default: sb_printf(b, "%c", *s);
        }
    }
}

advex_status advex_plot_svg(const advex_curve *cv, int n, const char *title, const char *xlabel, int width, int height,
                            char **svg) {
    *svg = NULL;
    if (width < 200 || height < 150) return advex_set_error(ADVEX_ERR_ARG, "plot of %dx%d is too small", width, height);
    layout L;
    make_layout(cv, n, width, height, &L);
    sbuf b = {0};
    sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                  "font-family=\"sans-serif\" font-size=\"13\">\n", width, height, width, height);
    sb_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", width, height);
    sb_printf(&b, "<text x=\"%d\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">", width / 2);
    sb_text(&b, title);
    sb_printf(&b, "</text>\n");
    for (int t = 0; t <= 10; t += 2) { /* y grid 0..100% */
        double y = px_y(&L, t / 10.0);
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n", L.left, y, L.right, y);
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n", L.left - 8, y + 4, t * 10);
    }
    for (int t = 0; t <= L.nxt; t++) {
        double x = px_x(&L, t * L.xstep);
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n", x, L.top, x, L.bottom);
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.4g</text>\n", x, L.bottom + 18, t * L.xstep);
    }
    sb_printf(&b, "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\" stroke=\"#000000\"/>\n", L.left, L.top, L.bottom, L.right);
    sb_printf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", (L.left + L.right) / 2, height - 18);
    sb_text(&b, xlabel);
    sb_printf(&b, "</text>\n<text transform=\"translate(20 %.1f) rotate(-90)\" text-anchor=\"middle\">accuracy</text>\n",
              (L.top + L.bottom) / 2);
    for (int i = 0; i < n; i++) {
        uint32_t col = palette[i % NPAL];
        if (cv[i].n > 1) {
            sb_printf(&b, "<polyline fill=\"none\" stroke=\"#%06x\" stroke-width=\"2.5\" points=\"", (unsigned)col);
            for (int j = 0; j < cv[i].n; j++)
                sb_printf(&b, "%s%.1f,%.1f", j ? " " : "", px_x(&L, cv[i].x[j]), px_y(&L, cv[i].y[j]));
            sb_printf(&b, "\"/>\n");
        }
        for (int j = 0; j < cv[i].n; j++)
            sb_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#%06x\"><title>%.4g: %.2f%%</title></circle>\n",
                      px_x(&L, cv[i].x[j]), px_y(&L, cv[i].y[j]), (unsigned)col, cv[i].x[j], 100 * cv[i].y[j]);
        double ly = L.top + 10 + 20 * i;
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#%06x\" stroke-width=\"3\"/>\n",
                  L.right - 150, ly, L.right - 125, ly, (unsigned)col);
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">", L.right - 118, ly + 4);
        sb_text(&b, cv[i].label);
        sb_printf(&b, "</text>\n");
    }
    sb_printf(&b, "</svg>\n");
    if (b.oom) { free(b.s); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); }
    *svg = b.s;
    return ADVEX_OK;
}

/* ---- PNG ----------------------------------------------------------------------------- */

advex_status advex_plot_png(const advex_curve *cv, int n, const char *title, const char *xlabel, int width, int height,
                            const char *path) {
    if (width < 200 || height < 150) return advex_set_error(ADVEX_ERR_ARG, "plot of %dx%d is too small", width, height);
    layout L;
    make_layout(cv, n, width, height, &L);
    advex_canvas c;
    advex_status st = advex_canvas_init(&c, width, height, 0xffffff);
    if (st) return st;
    char s[64];
    advex_canvas_text(&c, (width - advex_text_width(title, 2)) / 2, 14, title, 2, 0x000000);
    for (int t = 0; t <= 10; t += 2) {
        double y = px_y(&L, t / 10.0);
        advex_canvas_line(&c, L.left, y, L.right, y, 1, 0xdddddd);
        snprintf(s, sizeof s, "%d%%", t * 10);
        advex_canvas_text(&c, (int)L.left - 8 - advex_text_width(s, 2), (int)y - 7, s, 2, 0x000000);
    }
    for (int t = 0; t <= L.nxt; t++) {
        double x = px_x(&L, t * L.xstep);
        advex_canvas_line(&c, x, L.top, x, L.bottom, 1, 0xdddddd);
        snprintf(s, sizeof s, "%.4g", t * L.xstep);
        advex_canvas_text(&c, (int)x - advex_text_width(s, 2) / 2, (int)L.bottom + 8, s, 2, 0x000000);
    }
    advex_canvas_line(&c, L.left, L.top, L.left, L.bottom, 1.5, 0x000000);
    advex_canvas_line(&c, L.left, L.bottom, L.right, L.bottom, 1.5, 0x000000);
    advex_canvas_text(&c, (int)((L.left + L.right) / 2) - advex_text_width(xlabel, 2) / 2, height - 28, xlabel, 2,
                      0x000000);
    for (int i = 0; i < n; i++) {
        uint32_t col = palette[i % NPAL];
        for (int j = 1; j < cv[i].n; j++)
            advex_canvas_line(&c, px_x(&L, cv[i].x[j - 1]), px_y(&L, cv[i].y[j - 1]), px_x(&L, cv[i].x[j]),
                              px_y(&L, cv[i].y[j]), 2.5, col);
        for (int j = 0; j < cv[i].n; j++) advex_canvas_dot(&c, px_x(&L, cv[i].x[j]), px_y(&L, cv[i].y[j]), 4, col);
        double ly = L.top + 10 + 20 * i;
        advex_canvas_line(&c, L.right - 150, ly, L.right - 125, ly, 3, col);
        advex_canvas_text(&c, (int)L.right - 118, (int)ly - 7, cv[i].label ? cv[i].label : "", 2, 0x000000);
    }
    st = advex_canvas_save_png(&c, path);
    advex_canvas_free(&c);
    return st;
}
