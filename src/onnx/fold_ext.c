/* More of the load-time folder: the shape and mask arithmetic exporters emit around
 * attention and shifted windows (Range, Mod, comparisons, Not/And/Or/Xor, Where, Expand,
 * Tile, ScatterND, Size, Split, Min/Max, reductions) and float math on constants (Pow, Sqrt,
 * Exp, Log, Erf, ...). Integers stay v + n*N in the batch size N: every result is exact for
 * every N >= 1 or the node is refused (a comparison whose answer changes with N, N mod 3),
 * except Expand/ConstantOfShape to a batch-dependent shape, which become run-time ops
 * (ONNX_FOLD_RUNTIME). Sizes are bounded by onnx_fold_alloc (ADVEX_ERR_LIMIT). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "onnx_internal.h"
#include "ops/kernels.h"

typedef onnx_fctx fctx;
#define ferr onnx_fold_err

static const char *const unary_float_ops[] = {"Sqrt", "Exp", "Log", "Erf", "Reciprocal", "Floor", "Ceil", "Sin", "Cos"};
static const advex_op_type unary_float_code[] = {ADVEX_OP_SQRT, ADVEX_OP_EXP,  ADVEX_OP_LOG,
                                                 ADVEX_OP_ERF,  ADVEX_OP_RECIPROCAL, ADVEX_OP_FLOOR,
                                                 ADVEX_OP_CEIL, ADVEX_OP_SIN,  ADVEX_OP_COS};
static const char *const binary_ops[] = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
                                         "And",   "Or",   "Xor",     "Mod",         "Pow"};
static const char *const other_ops[] = {"Not", "Abs", "Where", "Expand", "Range", "Tile", "ScatterND", "Size",
                                        "Split", "Min", "Max", "Sum", "ReduceSum", "ReduceProd", "ReduceMin",
                                        "ReduceMax"};

static int in_list(const char *op, const char *const *l, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(op, l[i]) == 0) return (int)i;
    return -1;
}
#define IN_LIST(op, l) in_list(op, l, sizeof l / sizeof *l)

int onnx_foldable_ext(const char *op) {
    return IN_LIST(op, unary_float_ops) >= 0 || IN_LIST(op, binary_ops) >= 0 || IN_LIST(op, other_ops) >= 0;
}

int onnx_const_batch_dependent(const onnx_const *c) {
    if (!c || c->is_float) return 0;
    for (int64_t k = 0; k < c->numel; k++)
        if (c->i[k].n != 0) return 1;
    return 0;
}

/* sign of a - b for every N >= 1: -1, 0 or 1; 2 when it depends on N or overflows */
static int sym_cmp(onnx_sym a, onnx_sym b) {
    int64_t dv, dn, t1;
    if (__builtin_sub_overflow(a.v, b.v, &dv) || __builtin_sub_overflow(a.n, b.n, &dn) ||
        __builtin_add_overflow(dv, dn, &t1))
        return 2;
    if (dn == 0) return (dv > 0) - (dv < 0);
    if (dn > 0) return t1 > 0 ? 1 : 2;   /* increasing in N: positive from N = 1 on, or not always */
    return t1 < 0 ? -1 : 2;
}

/* ---- numpy broadcasting of up to three constants ------------------------------------------ */

typedef struct bgeo {
    int nd, nin;
    int64_t dims[ADVEX_MAX_DIMS], s[3][ADVEX_MAX_DIMS];
} bgeo;

static advex_status bgeom(const fctx *f, const onnx_const *const *c, int nin, bgeo *g) {
    g->nd = 0;
    g->nin = nin;
    for (int k = 0; k < nin; k++)
        if (c[k]->ndim > g->nd) g->nd = c[k]->ndim;
    for (int d = 0; d < g->nd; d++) {
        int64_t dim = 1;
        for (int k = 0; k < nin; k++) {
            int dk = d - (g->nd - c[k]->ndim);
            int64_t x = dk >= 0 ? c[k]->dims[dk] : 1;
            if (x != 1 && dim != 1 && x != dim) return ferr(f, ADVEX_ERR_SHAPE, "input shapes do not broadcast");
            if (x != 1) dim = x;
        }
        g->dims[d] = dim;
    }
    for (int k = 0; k < nin; k++) {
        int64_t st[ADVEX_MAX_DIMS];
        onnx_strides(c[k]->ndim, c[k]->dims, st);
        for (int d = 0; d < g->nd; d++) {
            int dk = d - (g->nd - c[k]->ndim);
            g->s[k][d] = dk >= 0 && c[k]->dims[dk] != 1 ? st[dk] : 0;
        }
    }
    return ADVEX_OK;
}

static void bidx(const bgeo *g, int64_t k, int64_t *idx) {
    for (int j = 0; j < g->nin; j++) idx[j] = 0;
    for (int d = g->nd - 1; d >= 0; d--) {
        int64_t i = k % g->dims[d];
        k /= g->dims[d];
        for (int j = 0; j < g->nin; j++) idx[j] += i * g->s[j][d];
    }
}

/* ---- elementwise ------------------------------------------------------------------------- */

/* b^e for integers; overflow (or a negative power of |b| > 1) clears *ok. |b| >= 2 overflows
 * within 63 steps, so a hostile exponent cannot make this loop long. */
static int64_t ipow(int64_t b, int64_t e, int *ok) {
    int64_t r = 1;
    if (b == 0) return e == 0;
    if (b == 1 || b == -1) return b == -1 && (e & 1) ? -1 : 1;
    if (e < 0) { *ok = 0; return 0; }
    while (e-- > 0)
        if (__builtin_mul_overflow(r, b, &r)) { *ok = 0; return 0; }
    return r;
}

/* Python's modulo (sign of the divisor) unless fmod (sign of the dividend) */
static int64_t imod(int64_t a, int64_t b, int fmod_) {
    int64_t r = (b == -1) ? 0 : a % b;
    if (!fmod_ && r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}

/* One element of a binary op; *ok = 0 when the result is not the same for every N. */
static void binary_elem(const char *op, int fl, float xf, float yf, onnx_sym x, onnx_sym y, int fmod_, float *of,
                        onnx_sym *oi, int *ok) {
    int c;
    oi->n = 0;
    if (!strcmp(op, "Pow")) {
        if (fl) *of = powf(xf, yf);
        else if (x.n || y.n) *ok = 0;
        else oi->v = ipow(x.v, y.v, ok);
    } else if (!strcmp(op, "Mod")) {
        if (fl) *of = fmod_ ? fmodf(xf, yf) : xf - yf * floorf(xf / yf);
        else if (y.n || y.v == 0 || (x.n && x.n % y.v != 0)) *ok = 0; /* (v + nN) mod m with m | n is v mod m */
        else oi->v = imod(x.v, y.v, fmod_);
    } else if (!strcmp(op, "And") || !strcmp(op, "Or") || !strcmp(op, "Xor")) {
        if (fl || x.n || y.n) *ok = 0;
        else oi->v = op[0] == 'A' ? (x.v && y.v) : op[0] == 'O' ? (x.v || y.v) : (!x.v != !y.v);
    } else { /* comparisons */
        if (fl) c = (xf > yf) - (xf < yf) + (xf != xf || yf != yf ? 4 : 0); /* NaN: unordered */
        else if ((c = sym_cmp(x, y)) == 2) { *ok = 0; return; }
        if (!strcmp(op, "Equal")) oi->v = c == 0;
        else if (!strcmp(op, "Less")) oi->v = c == -1;
        else if (!strcmp(op, "Greater")) oi->v = c == 1;
        else if (!strcmp(op, "LessOrEqual")) oi->v = c == -1 || c == 0;
        else oi->v = c == 1 || c == 0;
    }
}

static advex_status fold_binary(const fctx *f, const char *op, const onnx_const *a, const onnx_const *b,
                                onnx_const *out) {
    bgeo g;
    const onnx_const *c[2] = {a, b};
    int64_t fmod_ = 0, idx[3];
    advex_status st = bgeom(f, c, 2, &g);
    if (st || (st = onnx_attr_int(f->nd, "fmod", 0, &fmod_))) return st;
    int fl = a->is_float || b->is_float, cmp = strcmp(op, "Pow") && strcmp(op, "Mod");
    if ((st = onnx_fold_alloc(f, out, fl && !cmp, g.nd, g.dims))) return st;
    int ok = 1;
    for (int64_t k = 0; k < out->numel && ok; k++) {
        float xf = 0, yf = 0, of = 0;
        onnx_sym x = {0, 0}, y = {0, 0}, oi;
        bidx(&g, k, idx);
        if (fl) ok = onnx_const_float(a, idx[0], &xf) == 0 && onnx_const_float(b, idx[1], &yf) == 0;
        else x = a->i[idx[0]], y = b->i[idx[1]];
        if (!ok) break;
        binary_elem(op, fl, xf, yf, x, y, (int)fmod_, &of, &oi, &ok);
        if (out->is_float) out->f[k] = of;
        else out->i[k] = oi;
    }
    if (!ok) {
        onnx_const_free(out);
        return ferr(f, ADVEX_ERR_UNSUPPORTED, "the result depends on the batch size (or overflows)");
    }
    return ADVEX_OK;
}

/* Min, Max, Sum over any number of inputs, pairwise */
static advex_status fold_variadic(const fctx *f, const char *op, const onnx_const *const *in, int n_in,
                                  onnx_const *out) {
    onnx_const acc = {0}, tmp;
    advex_status st = ADVEX_OK;
    int first = 1;
    for (int k = 0; k < n_in && !st; k++) {
        if (!in[k]) continue;
        if (first) {
            st = onnx_fold_alloc(f, &acc, in[k]->is_float, in[k]->ndim, in[k]->dims);
            for (int64_t j = 0; !st && j < acc.numel; j++) onnx_copy_elem(&acc, j, in[k], j);
            first = 0;
            continue;
        }
        bgeo g;
        const onnx_const *c[2] = {&acc, in[k]};
        if ((st = bgeom(f, c, 2, &g))) break;
        if (acc.is_float != in[k]->is_float) { st = ferr(f, ADVEX_ERR_FORMAT, "mixes float and integer inputs"); break; }
        if ((st = onnx_fold_alloc(f, &tmp, acc.is_float, g.nd, g.dims))) break;
        for (int64_t j = 0; j < tmp.numel && !st; j++) {
            int64_t idx[3];
            bidx(&g, j, idx);
            if (tmp.is_float) {
                float x = acc.f[idx[0]], y = in[k]->f[idx[1]];
                tmp.f[j] = op[1] == 'u' ? x + y : op[1] == 'i' ? fminf(x, y) : fmaxf(x, y);
            } else {
                onnx_sym x = acc.i[idx[0]], y = in[k]->i[idx[1]];
                int c2 = op[1] == 'u' ? 0 : sym_cmp(x, y);
                if (op[1] == 'u' ? !onnx_sym_add(x, y, 0, &tmp.i[j]) : c2 == 2)
                    st = ferr(f, ADVEX_ERR_UNSUPPORTED, "the result depends on the batch size (or overflows)");
                else if (op[1] != 'u') tmp.i[j] = (op[1] == 'i') == (c2 <= 0) ? x : y;
            }
        }
        onnx_const_free(&acc);
        acc = tmp;
    }
    if (first && !st) st = ferr(f, ADVEX_ERR_FORMAT, "no inputs");
    if (st) onnx_const_free(&acc);
    else *out = acc;
    return st;
}

static advex_status fold_unary(const fctx *f, const char *op, const onnx_const *x, onnx_const *out) {
    advex_status st = onnx_fold_alloc(f, out, x->is_float, x->ndim, x->dims);
    if (st) return st;
    int u = IN_LIST(op, unary_float_ops);
    if (u >= 0) {
        if (!x->is_float) { onnx_const_free(out); return ferr(f, ADVEX_ERR_FORMAT, "needs a float input"); }
        advex_unary_kernel(unary_float_code[u], 0.0f, 0.0f, 0, out->f, x->f, x->numel);
        return ADVEX_OK;
    }
    for (int64_t k = 0; k < x->numel; k++) {
        if (x->is_float) { out->f[k] = fabsf(x->f[k]); continue; } /* Abs (Not takes booleans) */
        if (x->i[k].n != 0 || x->i[k].v == INT64_MIN) {
            onnx_const_free(out);
            return ferr(f, ADVEX_ERR_UNSUPPORTED, "the result depends on the batch size");
        }
        out->i[k].v = op[0] == 'N' ? !x->i[k].v : x->i[k].v < 0 ? -x->i[k].v : x->i[k].v;
    }
    return ADVEX_OK;
}

static advex_status fold_where(const fctx *f, const onnx_const *const *in, int n_in, onnx_const *out) {
    if (n_in < 3 || !in[1] || !in[2]) return ferr(f, ADVEX_ERR_FORMAT, "needs three inputs");
    if (in[0]->is_float || onnx_const_batch_dependent(in[0]) || in[1]->is_float != in[2]->is_float)
        return ferr(f, ADVEX_ERR_FORMAT, "needs a boolean condition and two inputs of one type");
    bgeo g;
    advex_status st = bgeom(f, in, 3, &g);
    if (st || (st = onnx_fold_alloc(f, out, in[1]->is_float, g.nd, g.dims))) return st;
    for (int64_t k = 0; k < out->numel; k++) {
        int64_t idx[3];
        bidx(&g, k, idx);
        if (in[0]->i[idx[0]].v) onnx_copy_elem(out, k, in[1], idx[1]);
        else onnx_copy_elem(out, k, in[2], idx[2]);
    }
    return ADVEX_OK;
}

/* ---- shapes: Expand, Tile, Range, Size ----------------------------------------------------- */

static advex_status fold_expand(const fctx *f, const onnx_const *x, const onnx_const *shp, onnx_const *out) {
    int64_t t[ADVEX_MAX_DIMS];
    int n;
    if (onnx_const_batch_dependent(shp)) return ONNX_FOLD_RUNTIME; /* (N, ...): a run-time Expand */
    advex_status st = onnx_fold_ints(f, shp, t, ADVEX_MAX_DIMS, &n, "shape");
    if (st) return st;
    onnx_const tc = {0};
    tc.ndim = n;
    for (int d = 0; d < n; d++) {
        if (t[d] < 0) return ferr(f, ADVEX_ERR_FORMAT, "negative dimension in shape");
        tc.dims[d] = t[d];
    }
    const onnx_const *c[2] = {x, &tc};
    bgeo g;
    if ((st = bgeom(f, c, 2, &g)) || (st = onnx_fold_alloc(f, out, x->is_float, g.nd, g.dims))) return st;
    for (int64_t k = 0; k < out->numel; k++) {
        int64_t idx[3];
        bidx(&g, k, idx);
        onnx_copy_elem(out, k, x, idx[0]);
    }
    return ADVEX_OK;
}

static advex_status fold_tile(const fctx *f, const onnx_const *x, const onnx_const *rep, onnx_const *out) {
    int64_t r[ADVEX_MAX_DIMS], dims[ADVEX_MAX_DIMS], xs[ADVEX_MAX_DIMS];
    int n;
    advex_status st = onnx_fold_ints(f, rep, r, ADVEX_MAX_DIMS, &n, "repeats");
    if (st) return st;
    if (n != x->ndim) return ferr(f, ADVEX_ERR_FORMAT, "repeats must have one entry per dimension");
    for (int d = 0; d < n; d++)
        if (r[d] < 0 || !advex_mul_i64(x->dims[d], r[d], &dims[d])) return ferr(f, ADVEX_ERR_LIMIT, "result too large");
    if ((st = onnx_fold_alloc(f, out, x->is_float, n, dims))) return st;
    onnx_strides(n, x->dims, xs);
    for (int64_t k = 0; k < out->numel; k++) {
        int64_t rem = k, off = 0;
        for (int d = n - 1; d >= 0; d--) {
            off += (rem % dims[d]) % x->dims[d] * xs[d];
            rem /= dims[d];
        }
        onnx_copy_elem(out, k, x, off);
    }
    return ADVEX_OK;
}

/* start, start + delta, ... below limit (above it for a negative delta) */
static advex_status fold_range(const fctx *f, const onnx_const *const *in, int n_in, onnx_const *out) {
    if (n_in < 3 || !in[1] || !in[2] || in[0]->numel != 1 || in[1]->numel != 1 || in[2]->numel != 1)
        return ferr(f, ADVEX_ERR_FORMAT, "needs scalar start, limit and delta");
    int fl = in[0]->is_float;
    int64_t cnt;
    advex_status st;
    if (fl) {
        float s = in[0]->f[0], l, d;
        if (onnx_const_float(in[1], 0, &l) || onnx_const_float(in[2], 0, &d)) return ferr(f, ADVEX_ERR_FORMAT, "mixed types");
        double c = ceil(((double)l - s) / d);
        if (!(d != 0.0f) || !(c == c)) return ferr(f, ADVEX_ERR_FORMAT, "zero or NaN delta");
        if (c > (double)ADVEX_ONNX_MAX_FOLD) return ferr(f, ADVEX_ERR_LIMIT, "more elements than the load-time limit");
        cnt = c > 0 ? (int64_t)c : 0;
        if ((st = onnx_fold_alloc(f, out, 1, 1, &cnt))) return st;
        for (int64_t k = 0; k < cnt; k++) out->f[k] = s + (float)k * d;
        return ADVEX_OK;
    }
    int64_t s, l, d, span;
    if (onnx_const_int(in[0], 0, &s) || onnx_const_int(in[1], 0, &l) || onnx_const_int(in[2], 0, &d) || in[1]->is_float ||
        in[2]->is_float)
        return ferr(f, ADVEX_ERR_UNSUPPORTED, "start, limit and delta must not depend on the batch size");
    if (d == 0 || __builtin_sub_overflow(l, s, &span)) return ferr(f, ADVEX_ERR_FORMAT, "zero delta or overflow");
    cnt = span / d + (span % d != 0 && (span < 0) == (d < 0));
    if (cnt < 0) cnt = 0;
    if (cnt > ADVEX_ONNX_MAX_FOLD) return ferr(f, ADVEX_ERR_LIMIT, "more elements than the load-time limit");
    if ((st = onnx_fold_alloc(f, out, 0, 1, &cnt))) return st;
    for (int64_t k = 0; k < cnt; k++) out->i[k].v = s + k * d;
    return ADVEX_OK;
}

/* numel of a constant, or of a run-time value's symbolic shape (at most one dim in N) */
static advex_status fold_size(const fctx *f, const onnx_const *x, const onnx_sym *shape, int r, onnx_const *out) {
    onnx_sym p = {1, 0};
    for (int d = 0; d < (x ? x->ndim : r); d++) {
        onnx_sym s = {x ? x->dims[d] : shape[d].v, x ? 0 : shape[d].n};
        if (!onnx_sym_mul(p, s, &p)) return ferr(f, ADVEX_ERR_UNSUPPORTED, "size not linear in the batch size");
    }
    advex_status st = onnx_fold_alloc(f, out, 0, 0, NULL);
    if (!st) out->i[0] = p;
    return st;
}

/* ---- ScatterND: data with updates written at index tuples (reduction none/add/mul/max/min) --- */

static advex_status fold_scatter_nd(const fctx *f, const onnx_const *const *in, int n_in, onnx_const *out) {
    if (n_in < 3 || !in[1] || !in[2]) return ferr(f, ADVEX_ERR_FORMAT, "needs data, indices and updates");
    const onnx_const *x = in[0], *ix = in[1], *up = in[2];
    char red[16];
    advex_status st = onnx_attr_str(f->nd, "reduction", "none", red, sizeof red);
    if (st) return st;
    int rk = strcmp(red, "none") == 0 ? 0 : strcmp(red, "add") == 0 ? 1 : strcmp(red, "mul") == 0 ? 2 : -1;
    if (rk < 0) return ferr(f, ADVEX_ERR_UNSUPPORTED, "reduction other than none, add or mul");
    if (ix->is_float || ix->ndim < 1 || up->is_float != x->is_float) return ferr(f, ADVEX_ERR_FORMAT, "bad input types");
    int q = ix->ndim, k = (int)ix->dims[q - 1], r = x->ndim;
    if (k < 1 || k > r || up->ndim != q - 1 + r - k) return ferr(f, ADVEX_ERR_SHAPE, "updates do not match indices");
    for (int d = 0; d < q - 1; d++)
        if (up->dims[d] != ix->dims[d]) return ferr(f, ADVEX_ERR_SHAPE, "updates do not match indices");
    for (int d = k; d < r; d++)
        if (up->dims[q - 1 + d - k] != x->dims[d]) return ferr(f, ADVEX_ERR_SHAPE, "updates do not match data");
    int64_t xs[ADVEX_MAX_DIMS], inner = 1, tuples = k ? ix->numel / k : 0;
    onnx_strides(r, x->dims, xs);
    for (int d = k; d < r; d++) inner *= x->dims[d];
    if ((st = onnx_fold_alloc(f, out, x->is_float, r, x->dims))) return st;
    for (int64_t j = 0; j < x->numel; j++) onnx_copy_elem(out, j, x, j);
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off = 0;
        for (int d = 0; d < k; d++) {
            int64_t id;
            if (onnx_const_int(ix, t * k + d, &id) || id < -x->dims[d] || id >= x->dims[d]) {
                onnx_const_free(out);
                return ferr(f, ADVEX_ERR_FORMAT, "index out of range or batch-dependent");
            }
            off += (id < 0 ? id + x->dims[d] : id) * xs[d];
        }
        for (int64_t j = 0; j < inner; j++) {
            int64_t o = off + j, u = t * inner + j;
            if (out->is_float) {
                float v = up->f[u];
                out->f[o] = rk == 0 ? v : rk == 1 ? out->f[o] + v : out->f[o] * v;
            } else if (rk == 0) {
                out->i[o] = up->i[u];
            } else if (!(rk == 1 ? onnx_sym_add(out->i[o], up->i[u], 0, &out->i[o])
                                 : onnx_sym_mul(out->i[o], up->i[u], &out->i[o]))) {
                onnx_const_free(out);
                return ferr(f, ADVEX_ERR_UNSUPPORTED, "integer overflow or a result not linear in the batch size");
            }
        }
    }
    return ADVEX_OK;
}

/* ---- Split, reductions --------------------------------------------------------------------- */

/* sizes of the n_out parts along axis (the split input, the attribute, or equal parts) */
static advex_status split_sizes(const fctx *f, const onnx_const *const *in, int n_in, int64_t dim, int n_out,
                                int64_t *sz) {
    int64_t v[64];
    int n = -1;
    advex_status st = ADVEX_OK;
    if (n_out < 1 || n_out > 64) return ferr(f, ADVEX_ERR_UNSUPPORTED, "more than 64 outputs");
    if (f->opset >= 13 && n_in > 1 && in[1]) st = onnx_fold_ints(f, in[1], v, 64, &n, "split");
    else if (f->opset < 13) st = onnx_attr_ints(f->nd, "split", v, 64, &n);
    if (st) return st;
    if (n >= 0) {
        int64_t tot = 0;
        if (n != n_out) return ferr(f, ADVEX_ERR_FORMAT, "split sizes do not match the outputs");
        for (int k = 0; k < n; k++) {
            if (v[k] < 0 || !advex_add_i64(tot, v[k], &tot)) return ferr(f, ADVEX_ERR_FORMAT, "bad split sizes");
            sz[k] = v[k];
        }
        if (tot != dim) return ferr(f, ADVEX_ERR_SHAPE, "split sizes do not add up to the dimension");
        return ADVEX_OK;
    }
    int64_t part = (dim + n_out - 1) / n_out; /* opset 18: the last part may be smaller */
    for (int k = 0; k < n_out; k++) sz[k] = dim - k * part < part ? (dim - k * part > 0 ? dim - k * part : 0) : part;
    if (f->opset < 18 && dim % n_out) return ferr(f, ADVEX_ERR_SHAPE, "dimension not divisible by the outputs");
    return ADVEX_OK;
}

advex_status onnx_split_sizes(const Onnx__NodeProto *nd, int opset, const onnx_const *const *in, int n_in, int64_t dim,
                              int n_out, int64_t *sz) {
    fctx f = {nd, "", NULL, opset};
    char lb[128];
    snprintf(f.label, sizeof f.label, "node '%s' (Split)", onnx_node_label(nd, lb, sizeof lb));
    return split_sizes(&f, in, n_in, dim, n_out, sz);
}

advex_status onnx_fold_split(const Onnx__NodeProto *nd, int opset, const onnx_const *const *in, int n_in, int k,
                             int64_t *budget, onnx_const *out) {
    fctx f = {nd, "", budget, opset};
    char lb[128];
    snprintf(f.label, sizeof f.label, "node '%s' (Split)", onnx_node_label(nd, lb, sizeof lb));
    memset(out, 0, sizeof *out);
    const onnx_const *x = n_in > 0 ? in[0] : NULL;
    int64_t axis, ax, sz[64], dims[ADVEX_MAX_DIMS], b = 0;
    advex_status st = onnx_attr_int(nd, "axis", 0, &axis);
    if (st) return st;
    if (!x || !onnx_norm_axis(axis, x->ndim, &ax)) return ferr(&f, ADVEX_ERR_FORMAT, "input missing or axis out of range");
    if ((st = split_sizes(&f, in, n_in, x->dims[ax], (int)nd->n_output, sz))) return st;
    for (int j = 0; j < k; j++) b += sz[j];
    memcpy(dims, x->dims, sizeof dims);
    dims[ax] = sz[k];
    if ((st = onnx_fold_alloc(&f, out, x->is_float, x->ndim, dims))) return st;
    int64_t inner = 1, outer = 1;
    for (int d = 0; d < ax; d++) outer *= x->dims[d];
    for (int d = (int)ax + 1; d < x->ndim; d++) inner *= x->dims[d];
    for (int64_t o = 0, q = 0; o < outer; o++)
        for (int64_t j = 0; j < sz[k] * inner; j++) onnx_copy_elem(out, q++, x, (o * x->dims[ax] + b) * inner + j);
    return ADVEX_OK;
}

/* ReduceSum, ReduceProd, ReduceMin, ReduceMax over constants (axes: attribute before opset 13
 * for ReduceSum and 18 for the others, else input 1) */
static advex_status fold_reduce(const fctx *f, const char *op, const onnx_const *const *in, int n_in,
                                onnx_const *out) {
    const onnx_const *x = in[0];
    int64_t axes[ADVEX_MAX_DIMS], keep, noop, dims[ADVEX_MAX_DIMS], xs[ADVEX_MAX_DIMS], os[ADVEX_MAX_DIMS];
    int n = -1, red[ADVEX_MAX_DIMS] = {0}, r = x->ndim;
    int from_input = f->opset >= (strcmp(op, "ReduceSum") == 0 ? 13 : 18);
    advex_status st = from_input ? (n_in > 1 && in[1] ? onnx_fold_ints(f, in[1], axes, ADVEX_MAX_DIMS, &n, "axes") : 0)
                                 : onnx_attr_ints(f->nd, "axes", axes, ADVEX_MAX_DIMS, &n);
    if (st || (st = onnx_attr_int(f->nd, "keepdims", 1, &keep)) ||
        (st = onnx_attr_int(f->nd, "noop_with_empty_axes", 0, &noop)))
        return st;
    if (n <= 0 && noop) { /* the identity */
        if ((st = onnx_fold_alloc(f, out, x->is_float, r, x->dims))) return st;
        for (int64_t k = 0; k < x->numel; k++) onnx_copy_elem(out, k, x, k);
        return ADVEX_OK;
    }
    for (int j = 0; j < n; j++) {
        int64_t ax;
        if (!onnx_norm_axis(axes[j], r, &ax)) return ferr(f, ADVEX_ERR_FORMAT, "axis out of range");
        red[ax] = 1;
    }
    for (int d = 0; d < r; d++) {
        if (n <= 0) red[d] = 1;
        dims[d] = red[d] ? 1 : x->dims[d];
    }
    onnx_strides(r, dims, os);
    onnx_strides(r, x->dims, xs);
    if ((st = onnx_fold_alloc(f, out, x->is_float, r, dims))) return st;
    int kind = op[6] == 'S' ? 0 : op[6] == 'P' ? 1 : op[8] == 'n' ? 2 : 3; /* Sum Prod Min Max */
    for (int64_t k = 0; k < x->numel; k++) {
        int64_t rem = k, o = 0, first = 1;
        for (int d = r - 1; d >= 0; d--) {
            int64_t i = rem % x->dims[d];
            rem /= x->dims[d];
            if (!red[d]) o += i * os[d];
            else if (i) first = 0;
        }
        if (first) { onnx_copy_elem(out, o, x, k); continue; }
        if (out->is_float) {
            float a = out->f[o], b = x->f[k];
            out->f[o] = kind == 0 ? a + b : kind == 1 ? a * b : kind == 2 ? fminf(a, b) : fmaxf(a, b);
        } else {
            onnx_sym a = out->i[o], b = x->i[k];
            int c = kind >= 2 ? sym_cmp(a, b) : 0,
                ok = kind == 0 ? onnx_sym_add(a, b, 0, &out->i[o]) : kind == 1 ? onnx_sym_mul(a, b, &out->i[o]) : c != 2;
            if (!ok) { onnx_const_free(out); return ferr(f, ADVEX_ERR_UNSUPPORTED, "the result depends on the batch size"); }
            if (kind >= 2) out->i[o] = (kind == 2) == (c <= 0) ? a : b;
        }
    }
    if (!keep) { /* drop the reduced dims */
        int k = 0;
        for (int d = 0; d < r; d++) if (!red[d]) dims[k++] = dims[d];
        out->ndim = k;
        for (int d = 0; d < k; d++) out->dims[d] = dims[d];
    }
    return ADVEX_OK;
}

advex_status onnx_fold_ext(const fctx *f, const onnx_const *const *in, int n_in, const onnx_sym *shape,
                           int shape_ndim, onnx_const *out) {
    const char *op = f->nd->op_type;
    const onnx_const *x = in[0], *y = n_in > 1 ? in[1] : NULL;
    if (!strcmp(op, "Size")) return fold_size(f, x, shape, shape_ndim, out);
    if (!x) return ferr(f, ADVEX_ERR_FORMAT, "first input is missing");
    if (IN_LIST(op, unary_float_ops) >= 0 || !strcmp(op, "Not") || !strcmp(op, "Abs")) return fold_unary(f, op, x, out);
    if (IN_LIST(op, binary_ops) >= 0) {
        if (!y) return ferr(f, ADVEX_ERR_FORMAT, "needs two inputs");
        return fold_binary(f, op, x, y, out);
    }
    if (!strcmp(op, "Min") || !strcmp(op, "Max") || !strcmp(op, "Sum")) return fold_variadic(f, op, in, n_in, out);
    if (!strcmp(op, "Where")) return fold_where(f, in, n_in, out);
    if (!strcmp(op, "Expand")) return y ? fold_expand(f, x, y, out) : ferr(f, ADVEX_ERR_FORMAT, "shape is missing");
    if (!strcmp(op, "Tile")) return y ? fold_tile(f, x, y, out) : ferr(f, ADVEX_ERR_FORMAT, "repeats are missing");
    if (!strcmp(op, "Range")) return fold_range(f, in, n_in, out);
    if (!strcmp(op, "ScatterND")) return fold_scatter_nd(f, in, n_in, out);
    if (!strncmp(op, "Reduce", 6)) return fold_reduce(f, op, in, n_in, out);
    if (!strcmp(op, "Split")) return ferr(f, ADVEX_ERR_INTERNAL, "Split folds through onnx_fold_split");
    return ferr(f, ADVEX_ERR_UNSUPPORTED, "cannot be evaluated at load time");
}
