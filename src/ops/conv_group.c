/* Grouped convolutions with few taps per output (depthwise: one input channel per group, as
 * in MobileNet, EfficientNet, ShuffleNet and ConvNeXt; RegNet's groups of 8 channels),
 * computed directly instead of through im2col + one small sgemm per group and image.
 *
 * For each (image, group) the group's Cg input planes are copied, zero-padded, into the
 * thread's scratch, split by column phase for stride S (S = 1 or 2):
 *     ph[c][q][r][j] = x[c][r - PT][j S + q - PL]      (0 outside the image)
 * so that tap (ki, kj) of output row oh reads the contiguous row ph[c][kj % S][oh S + ki]
 * from column ow + kj / S. Each output plane is cut into tiles of 8 columns of one row; four
 * tiles at a time are summed in registers over the Cg*KH*KW taps (four independent FMA
 * chains whatever the plane's width):
 *     out[m][oh][ow..ow+8] = b[m] + sum_{c,ki,kj} w[m][c][ki][kj] ph[c][kj%S][oh S+ki][ow+kj/S..]
 * The input gradient of a stride-1 convolution is the same sum over the output gradient,
 * zero-padded by KH-1-PT rows and KW-1-PL columns, with the kernel turned by 180 degrees and
 * its two channel axes swapped:
 *     dx[c][ih][iw] = sum_{m,ki,kj} w[m][c][KH-1-ki][KW-1-kj] dyp[m][ih+ki][iw+kj];
 * with stride 2 each output gradient tile is scattered instead, into zeroed phase planes,
 *     dph[c][kj%S][oh S+ki][ow+kj/S..] += w[m][c][ki][kj] dy[m][oh][ow..],
 * whose image part is then copied back. dx is stored or added; the weight gradient
 * (training) stays on conv.c's im2col path. Parallel over (image, group) pairs; results do
 * not depend on the thread count. Compiled per ISA variant (dispatch.h). */
#include <omp.h>
#include <string.h>

#include "ops/dispatch.h"

#define GC_MAX_TAPS 256 /* Cg*KH*KW: above it im2col + sgemm wins */

typedef float gv8 __attribute__((vector_size(8 * sizeof(float))));
/* the same vector at any float's alignment: loads and stores of gv8 from float rows */
typedef float gv8u __attribute__((vector_size(8 * sizeof(float)), aligned(4), may_alias));
#define GC_LD(s) (*(const gv8u *)(const void *)(s))
#define GC_ST(d, v) (*(gv8u *)(void *)(d) = (v))

/* Planes a tile sum reads: Cin channels of S phase planes of Hp x Wq floats. */
typedef struct gc_src {
    int64_t Cin, S, Hp, Wq, plane;
    int64_t koff[16]; /* tap kj's column offset: (kj % S) plane + kj / S */
} gc_src;

typedef struct gc_plan {
    int64_t Cg, Mg, S;
    gc_src fw;          /* forward: the group's input planes */
    gc_src bw;          /* stride-1 input gradient: the group's padded output-gradient planes */
    int64_t per_thread; /* max(forward, input gradient) scratch, + slack */
} gc_plan;

#if ADVEX_ISA_BASE /* geometry and sizes: compiled once (dispatch.h) */
int advex_conv_group_ok(const advex_conv2d_p *p) {
    if (p->algo == ADVEX_CONV_GEMM || p->G <= 1 || p->SH != p->SW || (p->SH != 1 && p->SH != 2) || p->DH != 1 ||
        p->DW != 1 || p->OH <= 0 || p->OW <= 0 || p->KH > 16 || p->KW > 16 || p->PT >= p->KH || p->PL >= p->KW ||
        p->H > (1 << 16) || p->W > (1 << 16))
        return 0;
    return (p->C / p->G) * p->KH * p->KW <= GC_MAX_TAPS;
}
#endif

/* planes for output rows OH x OW (tiles read 8-column groups up to OW rounded up) from
 * data of rows x cols placed at (top, left), stride S */
static gc_src gc_src_make(int64_t Cin, int64_t S, int64_t KH, int64_t KW, int64_t OH, int64_t OW, int64_t rows,
                          int64_t cols, int64_t top, int64_t left) {
    gc_src g;
    g.Cin = Cin;
    g.S = S;
    g.Hp = (OH - 1) * S + KH;
    if (g.Hp < rows + top) g.Hp = rows + top;
    int64_t need = (OW + 7) / 8 * 8 + (KW - 1) / S, fit = (cols + left + S - 1) / S;
    g.Wq = need > fit ? need : fit;
    g.plane = g.Hp * g.Wq;
    for (int64_t kj = 0; kj < KW && kj < 16; kj++) g.koff[kj] = (kj % S) * g.plane + kj / S;
    return g;
}

static gc_plan gc_make(const advex_conv2d_p *p) {
    gc_plan g;
    g.Cg = p->C / p->G;
    g.Mg = p->M / p->G;
    g.S = p->SH;
    g.fw = gc_src_make(g.Cg, g.S, p->KH, p->KW, p->OH, p->OW, p->H, p->W, p->PT, p->PL);
    int64_t fw = g.Cg * g.S * g.fw.plane, bw = fw + 32; /* stride 2: dx phase planes + a dy tile */
    if (g.S == 1) {
        g.bw = gc_src_make(g.Mg, 1, p->KH, p->KW, p->H, p->W, p->OH, p->OW, p->KH - 1 - p->PT, p->KW - 1 - p->PL);
        bw = g.Mg * g.bw.plane + (g.Cg * g.Mg * p->KH * p->KW + 15) / 16 * 16; /* + the turned kernel */
    }
    g.per_thread = ((fw > bw ? fw : bw) + 64 + 15) / 16 * 16;
    return g;
}

#if ADVEX_ISA_BASE
int64_t advex_conv_group_scratch(const advex_conv2d_p *p, int threads) {
    if (!advex_conv_group_ok(p)) return 0;
    return gc_make(p).per_thread * (threads < 1 ? 1 : threads);
}
#endif

/* Threads: as many as the scratch holds, at most one per (image, group). */
static int gc_threads(const advex_conv2d_p *p, const gc_plan *g, int64_t scratch_n) {
    int64_t T = scratch_n / g->per_thread, items = p->N * p->G;
    if (T > omp_get_max_threads()) T = omp_get_max_threads();
    if (T > items) T = items;
    return (int)T;
}

/* Cin planes of rows x cols floats (stride rs between planes) into zeroed phase planes at
 * (top, left) */
static void gc_pad(float *ph, const float *x, int64_t xs, const gc_src *g, int64_t rows, int64_t cols, int64_t top,
                   int64_t left) {
    memset(ph, 0, (size_t)(g->Cin * g->S * g->plane) * sizeof(float));
    for (int64_t c = 0; c < g->Cin; c++) {
        const float *xc = x + c * xs;
        float *pc = ph + c * g->S * g->plane;
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = xc + r * cols;
            float *r0 = pc + (r + top) * g->Wq;
            if (g->S == 1) {
                memcpy(r0 + left, xr, (size_t)cols * sizeof(float));
                continue;
            }
            float *r1 = r0 + g->plane;
            int64_t je = left & 1; /* the first column landing in an even padded column */
            for (int64_t j = je, k = (je + left) >> 1; j < cols; j += 2, k++) r0[k] = xr[j];
            for (int64_t j = 1 - je, k = (1 - je + left) >> 1; j < cols; j += 2, k++) r1[k] = xr[j];
        }
    }
}

/* One output plane (OH x OW, stored at o, or added to it with acc) of the tap sum over src's
 * planes ph with weights wm (Cin, KH, KW) and bias, four 8-column tiles at a time; relu:
 * max(0, .) on the stored values. */
static void gc_plane(float *o, const float *ph, const gc_src *g, const float *wm, float bias, int64_t KH, int64_t KW,
                     int64_t OH, int64_t OW, int acc, int relu) {
    int64_t tw = (OW + 7) / 8, tiles = OH * tw, S = g->S, oh = 0, ow = 0; /* (oh, ow): the next tile */
    for (int64_t t0 = 0; t0 < tiles; t0 += 4) {
        int64_t base[4], oo[4], nv[4];
        for (int k = 0; k < 4; k++) {
            if (t0 + k >= tiles) { /* past the end: repeat the last tile, store nothing */
                base[k] = base[k - 1];
                oo[k] = oo[k - 1];
                nv[k] = 0;
                continue;
            }
            base[k] = oh * S * g->Wq + ow;
            oo[k] = oh * OW + ow;
            nv[k] = OW - ow < 8 ? OW - ow : 8;
            if ((ow += 8) >= OW) ow = 0, oh++;
        }
        gv8 a0 = {0}, a1, a2, a3;
        a0 += bias;
        a1 = a2 = a3 = a0;
        for (int64_t c = 0; c < g->Cin; c++)
            for (int64_t ki = 0; ki < KH; ki++) {
                const float *row = ph + c * S * g->plane + ki * g->Wq, *wk = wm + (c * KH + ki) * KW;
                const float *r0 = row + base[0], *r1 = row + base[1], *r2 = row + base[2], *r3 = row + base[3];
                for (int64_t kj = 0; kj < KW; kj++) {
                    int64_t ko = g->koff[kj];
                    float wv = wk[kj];
                    a0 += wv * GC_LD(r0 + ko);
                    a1 += wv * GC_LD(r1 + ko);
                    a2 += wv * GC_LD(r2 + ko);
                    a3 += wv * GC_LD(r3 + ko);
                }
            }
        gv8 av[4] = {a0, a1, a2, a3};
        for (int k = 0; k < 4; k++) {
            float *d = o + oo[k], *s = (float *)&av[k];
            if (acc) {
                for (int64_t i = 0; i < nv[k]; i++) d[i] += s[i];
            } else if (relu) {
                for (int64_t i = 0; i < nv[k]; i++) d[i] = s[i] > 0.0f ? s[i] : 0.0f;
            } else if (nv[k] == 8) {
                GC_ST(d, av[k]);
            } else {
                memcpy(d, s, (size_t)nv[k] * sizeof(float));
            }
        }
    }
}

int ADVEX_ISA_FN(advex_conv_group_forward)(float *out, const float *x, const float *w, const float *b,
                                           const advex_conv2d_p *p, float *scratch, int64_t scratch_n) {
    if (!advex_conv_group_ok(p)) return 0;
    gc_plan g = gc_make(p);
    int T = gc_threads(p, &g, scratch_n);
    if (T < 1) return 0;
    int64_t items = p->N * p->G, HW = p->H * p->W, OHW = p->OH * p->OW, taps = g.Cg * p->KH * p->KW;
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1)
    for (int64_t it = 0; it < items; it++) {
        int64_t n = it / p->G, gi = it % p->G;
        float *ph = scratch + (int64_t)omp_get_thread_num() * g.per_thread;
        gc_pad(ph, x + (n * p->C + gi * g.Cg) * HW, HW, &g.fw, p->H, p->W, p->PT, p->PL);
        for (int64_t m = 0; m < g.Mg; m++) {
            int64_t mo = gi * g.Mg + m;
            gc_plane(out + (n * p->M + mo) * OHW, ph, &g.fw, w + mo * taps, b ? b[mo] : 0.0f, p->KH, p->KW, p->OH,
                     p->OW, 0, p->relu);
        }
    }
    return 1;
}

/* stride 2: dph += the scatter of 8-column tiles of output channel wm's gradient plane dy */
static void gc_scatter(float *dph, float *tmp, const float *dy, const float *wm, const advex_conv2d_p *p,
                       const gc_plan *g) {
    const gc_src *s = &g->fw;
    int64_t S = g->S;
    for (int64_t oh = 0; oh < p->OH; oh++)
        for (int64_t ow0 = 0; ow0 < p->OW; ow0 += 8) {
            int64_t nc = p->OW - ow0 < 8 ? p->OW - ow0 : 8;
            const float *d = dy + oh * p->OW + ow0;
            if (nc < 8) { /* the tail, zero-filled: junk lanes must add nothing */
                memset(tmp, 0, 8 * sizeof(float));
                memcpy(tmp, d, (size_t)nc * sizeof(float));
                d = tmp;
            }
            gv8 d0 = GC_LD(d);
            for (int64_t c = 0; c < g->Cg; c++)
                for (int64_t ki = 0; ki < p->KH; ki++) {
                    float *row = dph + c * S * s->plane + (oh * S + ki) * s->Wq + ow0;
                    const float *wk = wm + (c * p->KH + ki) * p->KW;
                    for (int64_t kj = 0; kj < p->KW; kj++) {
                        float *t = row + s->koff[kj];
                        GC_ST(t, GC_LD(t) + wk[kj] * d0);
                    }
                }
        }
}

int ADVEX_ISA_FN(advex_conv_group_backward_data)(float *dx, const float *dout, const float *w,
                                                 const advex_conv2d_p *p, int write_dx, float *scratch,
                                                 int64_t scratch_n) {
    if (!advex_conv_group_ok(p)) return 0;
    gc_plan g = gc_make(p);
    int T = gc_threads(p, &g, scratch_n);
    if (T < 1) return 0;
    int64_t items = p->N * p->G, HW = p->H * p->W, OHW = p->OH * p->OW, taps = g.Cg * p->KH * p->KW,
            KK = p->KH * p->KW;
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1)
    for (int64_t it = 0; it < items; it++) {
        int64_t n = it / p->G, gi = it % p->G;
        float *sc = scratch + (int64_t)omp_get_thread_num() * g.per_thread;
        const float *dy = dout + (n * p->M + gi * g.Mg) * OHW;
        if (g.S == 1) { /* the forward sum over padded dy with the turned kernel */
            float *dyp = sc, *wt = sc + g.Mg * g.bw.plane;
            for (int64_t c = 0; c < g.Cg; c++) /* wt[c][m][ki][kj] = w[m][c][KH-1-ki][KW-1-kj] */
                for (int64_t m = 0; m < g.Mg; m++)
                    for (int64_t k = 0; k < KK; k++)
                        wt[(c * g.Mg + m) * KK + k] = w[(gi * g.Mg + m) * taps + c * KK + KK - 1 - k];
            gc_pad(dyp, dy, OHW, &g.bw, p->OH, p->OW, p->KH - 1 - p->PT, p->KW - 1 - p->PL);
            for (int64_t c = 0; c < g.Cg; c++)
                gc_plane(dx + (n * p->C + gi * g.Cg + c) * HW, dyp, &g.bw, wt + c * g.Mg * KK, 0.0f, p->KH, p->KW,
                         p->H, p->W, !write_dx, 0);
            continue;
        }
        float *dph = sc, *tmp = dph + g.Cg * g.S * g.fw.plane;
        memset(dph, 0, (size_t)(g.Cg * g.S * g.fw.plane) * sizeof(float));
        for (int64_t m = 0; m < g.Mg; m++) gc_scatter(dph, tmp, dy + m * OHW, w + (gi * g.Mg + m) * taps, p, &g);
        for (int64_t c = 0; c < g.Cg; c++) { /* the image part back: dx[c][ih][iw] = dph[c][jp % 2][ih + PT][jp / 2] */
            float *dxc = dx + (n * p->C + gi * g.Cg + c) * HW;
            const float *pc = dph + c * g.S * g.fw.plane;
            for (int64_t ih = 0; ih < p->H; ih++) {
                const float *r0 = pc + (ih + p->PT) * g.fw.Wq, *r1 = r0 + g.fw.plane;
                float *d = dxc + ih * p->W;
                int64_t je = p->PL & 1; /* as gc_pad */
                for (int q = 0; q < 2; q++) {
                    const float *r = q ? r1 : r0;
                    int64_t j0 = q ? 1 - je : je;
                    if (write_dx)
                        for (int64_t iw = j0, k = (j0 + p->PL) >> 1; iw < p->W; iw += 2, k++) d[iw] = r[k];
                    else
                        for (int64_t iw = j0, k = (j0 + p->PL) >> 1; iw < p->W; iw += 2, k++) d[iw] += r[k];
                }
            }
        }
    }
    return 1;
}
