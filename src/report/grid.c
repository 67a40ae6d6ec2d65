/* Image grids as PNG: a plain grid of a batch (advex png), and the adversarial-example rows of a
 * report (clean | perturbation amplified to 0.5 + delta/(2 eps) | adversarial) with captions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "advex/report.h"

advex_status advex_grid_png(const char *path, const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int cols,
                            int scale, int normalize) {
    if (n <= 0 || (c != 1 && c != 3) || h <= 0 || w <= 0)
        return advex_set_error(ADVEX_ERR_SHAPE, "%s: a grid needs images with 1 or 3 channels (got %lld of %lldx%lldx%lld)",
                               path, (long long)n, (long long)c, (long long)h, (long long)w);
    if (cols <= 0) cols = (int)ceil(sqrt((double)n));
    if (cols > n) cols = (int)n;
    if (scale <= 0) scale = 1;
    int64_t rows = (n + cols - 1) / cols, gap = 2;
    int64_t W = cols * (w * scale + gap) + gap, H = rows * (h * scale + gap) + gap;
    if (W * H > ADVEX_PNG_MAX_PIXELS || W > 1 << 20 || H > 1 << 20)
        return advex_set_error(ADVEX_ERR_ARG, "%s: a grid of %lldx%lld pixels is too large (use --limit or --scale)",
                               path, (long long)W, (long long)H);
    int64_t dim = c * h * w;
    float *tmp = malloc((size_t)dim * sizeof(float));
    advex_canvas cv;
    advex_status st = tmp ? advex_canvas_init(&cv, (int)W, (int)H, 0xffffff)
                          : advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    if (st) { free(tmp); return st; }
    for (int64_t i = 0; i < n; i++) {
        const float *img = x + i * dim;
        if (normalize) {
            float lo = INFINITY, hi = -INFINITY;
            for (int64_t j = 0; j < dim; j++) {
                if (img[j] < lo) lo = img[j];
                if (img[j] > hi) hi = img[j];
            }
            float span = hi > lo ? hi - lo : 1.0f;
            for (int64_t j = 0; j < dim; j++) tmp[j] = hi > lo ? (img[j] - lo) / span : 0.5f;
            img = tmp;
        }
        int64_t r = i / cols, k = i % cols;
        advex_canvas_image(&cv, (int)(gap + k * (w * scale + gap)), (int)(gap + r * (h * scale + gap)), img, c, h, w,
                           scale);
    }
    st = advex_canvas_save_png(&cv, path);
    advex_canvas_free(&cv);
    free(tmp);
    return st;
}

/* ---- adversarial rows ---------------------------------------------------------------- */

#define CAP_CHARS 22
#define MARGIN 8
#define LINE_H 10

static int grid_scale(const advex_grid_rows *g) {
    if (g->scale > 0) return g->scale;
    int64_t m = g->h > g->w ? g->h : g->w;
    int s = (int)(84 / (m > 0 ? m : 1));
    return s < 1 ? 1 : s;
}

static void col_geometry(const advex_grid_rows *g, int *cw, int *rh) {
    int s = grid_scale(g), iw = (int)g->w * s, capw = CAP_CHARS * 6;
    *cw = iw > capw ? iw : capw;
    *rh = (int)g->h * s + 2 * LINE_H + 10;
}

void advex_grid_adv_size(const advex_grid_rows *g, int *width, int *height) {
    int cw, rh;
    col_geometry(g, &cw, &rh);
    *width = 3 * cw + 4 * MARGIN;
    *height = MARGIN + 14 + (int)g->n * rh + MARGIN;
}

static void label_of(const advex_grid_rows *g, int32_t k, char *out, size_t n) {
    if (g->class_names && k >= 0 && k < g->num_classes && g->class_names[k]) snprintf(out, n, "%s", g->class_names[k]);
    else snprintf(out, n, "class %d", (int)k);
}

static void caption(advex_canvas *cv, int x, int y, int cw, const char *s, uint32_t col) {
    char t[CAP_CHARS + 1];
    size_t n = strlen(s);
    if (n > CAP_CHARS) n = CAP_CHARS;
    memcpy(t, s, n);
    t[n] = '\0';
    advex_canvas_text(cv, x + (cw - advex_text_width(t, 1)) / 2, y, t, 1, col);
}

advex_status advex_grid_adv_png(const char *path, const advex_grid_rows *g) {
    if (g->n <= 0 || (g->c != 1 && g->c != 3) || g->h <= 0 || g->w <= 0)
        return advex_set_error(ADVEX_ERR_SHAPE, "%s: grid rows need 1 or 3 channel images", path);
    int W, H, cw, rh, s = grid_scale(g);
    advex_grid_adv_size(g, &W, &H);
    col_geometry(g, &cw, &rh);
    int64_t dim = g->c * g->h * g->w;
    float *pert = malloc((size_t)dim * sizeof(float));
    advex_canvas cv;
    advex_status st = pert ? advex_canvas_init(&cv, W, H, 0xffffff) : advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    if (st) { free(pert); return st; }
    const char *heads[3] = {"clean", "perturbation", "adversarial"};
    for (int k = 0; k < 3; k++) caption(&cv, MARGIN + k * (cw + MARGIN), MARGIN, cw, heads[k], 0x333333);
    const uint32_t ok = 0x1a7f2e, bad = 0xc0392b, grey = 0x555555;
    for (int64_t i = 0; i < g->n; i++) {
        const float *x = g->x + i * dim, *xa = g->xadv + i * dim;
        float e = g->eps, mx = 0;
        for (int64_t j = 0; j < dim; j++) {
            float d = fabsf(xa[j] - x[j]);
            if (d > mx) mx = d;
        }
        if (!(e > 0) || !isfinite(e)) e = mx > 0 ? mx : 1;
        for (int64_t j = 0; j < dim; j++) pert[j] = 0.5f + (xa[j] - x[j]) / (2 * e);
        int y0 = MARGIN + 14 + (int)i * rh, ix = (cw - (int)g->w * s) / 2, cy = y0 + (int)g->h * s + 3;
        const float *imgs[3] = {x, pert, xa};
        for (int k = 0; k < 3; k++) {
            int x0 = MARGIN + k * (cw + MARGIN);
            advex_canvas_fill_rect(&cv, x0 + ix - 1, y0 - 1, (int)g->w * s + 2, (int)g->h * s + 2, 0xbbbbbb);
            advex_canvas_image(&cv, x0 + ix, y0, imgs[k], g->c, g->h, g->w, s);
        }
        char a[48], b[64], t[48];
        int32_t y = g->y ? g->y[i] : -1;
        label_of(g, y, a, sizeof a);
        snprintf(b, sizeof b, "true %s", a);
        caption(&cv, MARGIN, cy, cw, b, grey);
        if (g->pred_clean) {
            label_of(g, g->pred_clean[i], t, sizeof t);
            snprintf(b, sizeof b, "%.14s %.0f%%", t, g->conf_clean ? 100.0 * g->conf_clean[i] : 0.0);
            caption(&cv, MARGIN, cy + LINE_H, cw, b, g->pred_clean[i] == y ? ok : bad);
        }
        snprintf(b, sizeof b, "eps %.3g", (double)e);
        caption(&cv, 2 * MARGIN + cw, cy, cw, b, grey);
        snprintf(b, sizeof b, "max %.3g", (double)mx);
        caption(&cv, 2 * MARGIN + cw, cy + LINE_H, cw, b, grey);
        if (g->pred_adv) {
            label_of(g, g->pred_adv[i], t, sizeof t);
            snprintf(b, sizeof b, "%.14s %.0f%%", t, g->conf_adv ? 100.0 * g->conf_adv[i] : 0.0);
            caption(&cv, 3 * MARGIN + 2 * cw, cy, cw, b, g->pred_adv[i] == y ? ok : bad);
            caption(&cv, 3 * MARGIN + 2 * cw, cy + LINE_H, cw, g->pred_adv[i] == y ? "robust" : "fooled",
                    g->pred_adv[i] == y ? ok : bad);
        }
    }
    st = advex_canvas_save_png(&cv, path);
    advex_canvas_free(&cv);
    free(pert);
    return st;
}

advex_status advex_class_counts(const int32_t *y, const int32_t *pred_clean, const int32_t *pred_adv, int64_t n,
                                int64_t k, int64_t *total, int64_t *robust, int64_t *confusion) {
    if (k <= 0) return advex_set_error(ADVEX_ERR_ARG, "class counts: %lld classes", (long long)k);
    if (total) memset(total, 0, (size_t)k * sizeof *total);
    if (robust) memset(robust, 0, (size_t)k * sizeof *robust);
    if (confusion) memset(confusion, 0, (size_t)(k * k) * sizeof *confusion);
    for (int64_t i = 0; i < n; i++) {
        int32_t t = y[i], pc = pred_clean[i], pa = pred_adv[i];
        if (t < 0 || t >= k || pc < 0 || pc >= k || pa < 0 || pa >= k)
            return advex_set_error(ADVEX_ERR_ARG, "class counts: example %lld has label %d, predictions %d/%d outside "
                                   "[0,%lld)", (long long)i, t, pc, pa, (long long)k);
        int32_t under = pc == t ? pa : pc; /* AutoAttack: clean mistakes stay mistakes */
        if (total) total[t]++;
        if (robust) robust[t] += under == t;
        if (confusion) confusion[t * k + under]++;
    }
    return ADVEX_OK;
}
