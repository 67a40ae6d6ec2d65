/* What every attack shares: configuration defaults, name and eps parsing, target
 * selection (label, next, least-likely, random), and projection helpers. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

void advex_attack_config_default(advex_attack_config *c) {
    memset(c, 0, sizeof *c);
    c->kind = ADVEX_ATTACK_FGSM;
    c->target = ADVEX_TARGET_NONE;
    c->norm = ADVEX_NORM_LINF;
    c->restarts = 1;
    c->momentum = 1.0f;
    c->kappa = 0.0f;
    c->overshoot = -1.0f; /* attack default 0.02 */
}

static const struct { advex_attack_kind kind; const char *name; } attack_names[] = {
    {ADVEX_ATTACK_NONE, "none"},         {ADVEX_ATTACK_FGSM, "fgsm"},         {ADVEX_ATTACK_FGSM_RS, "fgsm-rs"},
    {ADVEX_ATTACK_BIM, "bim"},           {ADVEX_ATTACK_PGD, "pgd"},           {ADVEX_ATTACK_MIFGSM, "mifgsm"},
    {ADVEX_ATTACK_APGD_CE, "apgd-ce"},   {ADVEX_ATTACK_APGD_DLR, "apgd-dlr"}, {ADVEX_ATTACK_APGD_T, "apgd-t"},
    {ADVEX_ATTACK_SQUARE, "square"},     {ADVEX_ATTACK_STANDARD, "standard"}, {ADVEX_ATTACK_CW, "cw"},
    {ADVEX_ATTACK_DEEPFOOL, "deepfool"}, {ADVEX_ATTACK_UAP, "uap"},           {ADVEX_ATTACK_FAB, "fab"},
    {ADVEX_ATTACK_FAB_T, "fab-t"},         {ADVEX_ATTACK_HSJ, "hsj"},           {ADVEX_ATTACK_SIMBA, "simba"},
};
_Static_assert(sizeof attack_names / sizeof *attack_names == ADVEX_ATTACK_COUNT_, "attack name table");

const char *advex_attack_names(void) {
    return "none, fgsm, fgsm-rs, bim, pgd, mifgsm, apgd-ce, apgd-dlr, apgd-t, square, standard, cw, deepfool, uap, fab, "
           "fab-t, hsj, simba";
}

advex_status advex_attack_parse(const char *name, advex_attack_kind *kind) {
    for (size_t i = 0; i < sizeof attack_names / sizeof *attack_names; i++)
        if (name && strcmp(name, attack_names[i].name) == 0) { *kind = attack_names[i].kind; return ADVEX_OK; }
    if (name && (strcmp(name, "i-fgsm") == 0 || strcmp(name, "ifgsm") == 0)) { *kind = ADVEX_ATTACK_BIM; return ADVEX_OK; }
    if (name && strcmp(name, "mi-fgsm") == 0) { *kind = ADVEX_ATTACK_MIFGSM; return ADVEX_OK; }
    return advex_set_error(ADVEX_ERR_ARG, "unknown attack '%s' (choose from %s)", name ? name : "",
                           advex_attack_names());
}

const char *advex_attack_name(advex_attack_kind kind) {
    for (size_t i = 0; i < sizeof attack_names / sizeof *attack_names; i++)
        if (attack_names[i].kind == kind) return attack_names[i].name;
    return "?";
}

advex_status advex_norm_parse(const char *s, advex_norm *norm) {
    if (s && (strcmp(s, "linf") == 0 || strcmp(s, "Linf") == 0 || strcmp(s, "inf") == 0)) {
        *norm = ADVEX_NORM_LINF;
        return ADVEX_OK;
    }
    if (s && (strcmp(s, "l2") == 0 || strcmp(s, "L2") == 0)) { *norm = ADVEX_NORM_L2; return ADVEX_OK; }
    if (s && (strcmp(s, "l1") == 0 || strcmp(s, "L1") == 0)) { *norm = ADVEX_NORM_L1; return ADVEX_OK; }
    return advex_set_error(ADVEX_ERR_ARG, "unknown norm '%s' (linf, l2 or l1)", s ? s : "");
}

/* AutoAttack's versions by name (`rand` and others go here) */
static const char *const aa_versions[ADVEX_AA_COUNT_] = {[ADVEX_AA_STANDARD] = "standard", [ADVEX_AA_PLUS] = "plus"};

advex_status advex_aa_version_parse(const char *s, int32_t *version) {
    for (int v = 0; v < ADVEX_AA_COUNT_; v++)
        if (s && aa_versions[v] && strcmp(s, aa_versions[v]) == 0) { *version = v; return ADVEX_OK; }
    char names[128] = "";
    for (int v = 0; v < ADVEX_AA_COUNT_; v++)
        if (aa_versions[v]) snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", v ? ", " : "", aa_versions[v]);
    return advex_set_error(ADVEX_ERR_ARG, "unknown AutoAttack version '%s' (choose from %s)", s ? s : "", names);
}

const char *advex_aa_version_name(int32_t version) {
    return version >= 0 && version < ADVEX_AA_COUNT_ && aa_versions[version] ? aa_versions[version] : "?";
}

int advex_attack_is_min_norm(advex_attack_kind kind) {
    return kind == ADVEX_ATTACK_CW || kind == ADVEX_ATTACK_DEEPFOOL || kind == ADVEX_ATTACK_FAB ||
           kind == ADVEX_ATTACK_FAB_T;
}

advex_norm advex_attack_norm(const advex_attack_config *c) { return c->norm; }

advex_norm advex_attack_default_norm(advex_attack_kind kind) {
    return kind == ADVEX_ATTACK_CW ? ADVEX_NORM_L2 : ADVEX_NORM_LINF;
}

advex_status advex_target_parse(const char *s, advex_target_mode *mode, int32_t *label) {
    if (!s || !*s) return advex_set_error(ADVEX_ERR_ARG, "empty target");
    if (strcmp(s, "none") == 0) { *mode = ADVEX_TARGET_NONE; return ADVEX_OK; }
    if (strcmp(s, "next") == 0) { *mode = ADVEX_TARGET_NEXT; return ADVEX_OK; }
    if (strcmp(s, "least-likely") == 0) { *mode = ADVEX_TARGET_LEAST_LIKELY; return ADVEX_OK; }
    if (strcmp(s, "random") == 0) { *mode = ADVEX_TARGET_RANDOM; return ADVEX_OK; }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > INT32_MAX)
        return advex_set_error(ADVEX_ERR_ARG, "bad target '%s' (a class number, next, least-likely or random)", s);
    *mode = ADVEX_TARGET_LABEL;
    *label = (int32_t)v;
    return ADVEX_OK;
}

advex_status advex_attack_targets(const advex_attack_config *c, const float *clean_logits, const int32_t *y,
                                  int64_t n, int64_t classes, int64_t batch_offset, int32_t *t) {
    if (classes < 2) return advex_set_error(ADVEX_ERR_ARG, "targeted attack needs at least 2 classes");
    for (int64_t i = 0; i < n; i++) {
        switch (c->target) {
        case ADVEX_TARGET_NONE: t[i] = y[i]; break;
        case ADVEX_TARGET_LABEL:
            if (c->target_label < 0 || c->target_label >= classes)
                return advex_set_error(ADVEX_ERR_ARG, "target class %d is outside [0, %lld)", c->target_label,
                                       (long long)classes);
            t[i] = c->target_label;
            break;
        case ADVEX_TARGET_NEXT: t[i] = (int32_t)((y[i] + 1) % classes); break;
        case ADVEX_TARGET_LEAST_LIKELY: {
            if (!clean_logits) return advex_set_error(ADVEX_ERR_ARG, "least-likely target needs clean logits");
            const float *z = clean_logits + i * classes;
            int32_t best = 0;
            for (int64_t k = 1; k < classes; k++) if (z[k] < z[best]) best = (int32_t)k;
            t[i] = best;
            break;
        }
        case ADVEX_TARGET_RANDOM: {
            advex_rng r;
            advex_rng_seed_stream(&r, c->seed ^ 0x7a26e7ULL, (uint64_t)(batch_offset + i));
            int32_t k = (int32_t)advex_rng_below(&r, (uint64_t)(classes - 1));
            t[i] = k >= y[i] ? k + 1 : k; /* uniform over classes != y */
            break;
        }
        }
    }
    return ADVEX_OK;
}

/* strtof that rejects junk, NaN and Inf. */
static int parse_float(const char *s, const char *end_at, double *out) {
    char buf[64];
    size_t len = end_at ? (size_t)(end_at - s) : strlen(s);
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

advex_status advex_parse_eps(const char *s, float *eps) {
    if (!s) return advex_set_error(ADVEX_ERR_ARG, "missing eps");
    const char *slash = strchr(s, '/');
    double num, den = 1.0;
    if (!parse_float(s, slash, &num) || (slash && (!parse_float(slash + 1, NULL, &den) || den <= 0)))
        return advex_set_error(ADVEX_ERR_ARG, "bad eps '%s' (a number such as 0.1 or a fraction such as 8/255)", s);
    double v = num / den;
    if (!(v >= 0) || !isfinite(v))
        return advex_set_error(ADVEX_ERR_ARG, "bad eps '%s': must be a finite number >= 0", s);
    *eps = (float)v;
    return ADVEX_OK;
}

advex_status advex_parse_eps_list(const char *s, float *out, int max, int *count) {
    *count = 0;
    if (!s || !*s) return advex_set_error(ADVEX_ERR_ARG, "empty eps list");
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char buf[64];
        if (len == 0 || len >= sizeof buf) return advex_set_error(ADVEX_ERR_ARG, "bad eps list '%s'", s);
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (*count >= max) return advex_set_error(ADVEX_ERR_ARG, "too many eps values in '%s' (max %d)", s, max);
        advex_status st = advex_parse_eps(buf, &out[*count]);
        if (st) return st;
        (*count)++;
        if (!comma) break;
        p = comma + 1;
    }
    return ADVEX_OK;
}

/* In place: out = from = xa (the step itself is in step.c, compiled per ISA variant). */
void advex_sign_step(float *xa, const float *x, const float *g, int64_t n, float step, float eps) {
    advex_sign_step_from(xa, xa, x, g, n, step, eps);
}

/* ---- helpers shared by the attack families ----------------------------------------- */

void *atk_alloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) advex_set_error(ADVEX_ERR_NOMEM, "attack: out of memory (%zu bytes)", bytes);
    return p;
}

void atk_rng(advex_rng *r, uint64_t seed, uint64_t salt, int64_t example) {
    advex_rng_seed_stream(r, seed ^ (salt * 0x9E3779B97F4A7C15ULL), (uint64_t)example);
}

int atk_success(const atk_loss *L, const float *z, int64_t k, int64_t i) {
    int32_t p = advex_argmax(z, k);
    if (!L->t || L->untargeted_success) return p != L->y[i];
    return p == L->t[i];
}

/* -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4)/2 + 1e-12) and its gradient (k >= 4) */
static double dlr_targeted(const float *z, int64_t k, int64_t y, int64_t t, float *g) {
    int64_t p[4] = {-1, -1, -1, -1}; /* top four indices */
    for (int64_t j = 0; j < k; j++) {
        int q = 4;
        while (q > 0 && (p[q - 1] < 0 || z[j] > z[p[q - 1]])) q--;
        if (q < 4) {
            for (int r = 3; r > q; r--) p[r] = p[r - 1];
            p[q] = j;
        }
    }
    if (k < 4) return 0.0;
    double num = (double)z[y] - z[t];
    double den = (double)z[p[0]] - 0.5 * ((double)z[p[2]] + z[p[3]]) + 1e-12;
    if (g) { /* l = -num/den: dl = -dnum/den + num/den^2 dden */
        double a = 1.0 / den, b = num / (den * den);
        g[y] -= (float)a;
        g[t] += (float)a;
        g[p[0]] += (float)b;
        g[p[2]] -= (float)(0.5 * b);
        g[p[3]] -= (float)(0.5 * b);
    }
    return -num / den;
}

void atk_loss_rows(void *u, int64_t i0, int64_t b, int64_t k, const float *z, float *loss, float *dl) {
    const atk_loss *L = u;
    const int32_t *y = L->y + i0, *t = L->t ? L->t + i0 : NULL;
    switch (L->kind) {
    case ATK_LOSS_CE:
    case ATK_LOSS_CW: {
        advex_loss lk = L->kind == ATK_LOSS_CE ? ADVEX_LOSS_CE : ADVEX_LOSS_CW;
        if (!t) { advex_loss_forward_backward(lk, z, y, b, k, loss, dl); return; }
        advex_loss_forward_backward(lk, z, t, b, k, loss, dl); /* descend on the target's loss */
        for (int64_t i = 0; i < b; i++) loss[i] = -loss[i];
        if (dl) for (int64_t i = 0; i < b * k; i++) dl[i] = -dl[i];
        return;
    }
    case ATK_LOSS_DLR:
        if (!t) { advex_loss_forward_backward(ADVEX_LOSS_DLR, z, y, b, k, loss, dl); return; }
        /* targeted: DLR_T with t */
        /* fall through */
    case ATK_LOSS_DLR_T:
        for (int64_t i = 0; i < b; i++) {
            float *g = dl ? dl + i * k : NULL;
            if (g) memset(g, 0, (size_t)k * sizeof(float));
            loss[i] = (float)dlr_targeted(z + i * k, k, y[i], t ? t[i] : y[i], g);
        }
        return;
    }
}


double atk_norm2(const float *v, int64_t d) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += (double)v[j] * v[j];
    return sqrt(s);
}

double atk_norm1(const float *v, int64_t d) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += fabs((double)v[j]);
    return s;
}

static inline float clip01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

void atk_project(float *xa, const float *x, int64_t d, float eps, advex_norm norm) {
    if (norm == ADVEX_NORM_LINF) {
        for (int64_t j = 0; j < d; j++) {
            float lo = x[j] - eps, hi = x[j] + eps, v = xa[j];
            v = v < lo ? lo : (v > hi ? hi : v);
            xa[j] = clip01(v);
        }
        return;
    }
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += (double)(xa[j] - x[j]) * (xa[j] - x[j]);
    double nrm = sqrt(s);
    /* shrink by a hair under eps so float rounding never leaves the ball */
    float f = nrm > eps ? (float)(eps / nrm * (1.0 - 1e-6)) : 1.0f;
    for (int64_t j = 0; j < d; j++) xa[j] = clip01(x[j] + f * (xa[j] - x[j]));
}

void atk_random_start(float *xa, const float *x, int64_t d, float eps, advex_norm norm, advex_rng *r) {
    if (norm == ADVEX_NORM_LINF) {
        for (int64_t j = 0; j < d; j++) xa[j] = clip01(x[j] + (2.0f * advex_rng_uniform(r) - 1.0f) * eps);
        return;
    }
    double s = 0;
    for (int64_t j = 0; j < d; j++) { xa[j] = advex_rng_normal(r); s += (double)xa[j] * xa[j]; }
    double rad = eps * advex_rng_uniform(r) * (1.0 - 1e-6);
    float f = s > 0 ? (float)(rad / sqrt(s)) : 0.0f;
    for (int64_t j = 0; j < d; j++) xa[j] = clip01(x[j] + f * xa[j]);
}

int64_t atk_compact(const unsigned char *keep, int64_t n, void *const *arrs, const size_t *row_bytes, int narr) {
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!keep[i]) continue;
        if (w != i)
            for (int a = 0; a < narr; a++) {
                if (!arrs[a]) continue;
                char *base = arrs[a];
                memmove(base + (size_t)w * row_bytes[a], base + (size_t)i * row_bytes[a], row_bytes[a]);
            }
        w++;
    }
    return w;
}

int atk_setup_targets(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                      int64_t off, float *z, int32_t *t, advex_status *st) {
    if (c->target == ADVEX_TARGET_NONE) return 0;
    if (c->target == ADVEX_TARGET_LEAST_LIKELY && (*st = advex_model_forward(m, x, n, z))) return -1;
    if ((*st = advex_attack_targets(c, z, y, n, m->net->classes, off, t))) return -1;
    return 1;
}

int32_t atk_ranked_class(const float *z, int64_t k, int r) {
    /* selection: the best class not yet taken, r + 1 times (taken = ranks above r) */
    int32_t prev = -1, cur = 0;
    for (int s = 0; s <= r && s < k; s++) {
        cur = -1;
        for (int64_t q = 0; q < k; q++) {
            /* below prev in the order (value desc, index asc) */
            if (prev >= 0 && !(z[q] < z[prev] || (z[q] == z[prev] && q > prev))) continue;
            if (cur < 0 || z[q] > z[cur]) cur = (int32_t)q;
        }
        prev = cur;
    }
    return cur;
}

/* the local model as a scores oracle */
static advex_status model_scores(void *u, const float *x, int64_t n, const int64_t *rows, float *z) {
    (void)rows;
    return advex_model_forward(u, x, n, z);
}

advex_model *atk_scores_model(const atk_scores *o) { return o->fwd == model_scores ? o->u : NULL; }

advex_status atk_on_model_scores(atk_scores_fn run, advex_model *m, const advex_attack_config *c, const float *x,
                                 const int32_t *y, int64_t n, int64_t off, const int64_t *ids, float *xadv,
                                 advex_attack_info *info) {
    const int64_t k = m->net->classes;
    float *z = malloc((size_t)(n * k) * sizeof(float));
    int32_t *ts = malloc((size_t)n * sizeof(int32_t));
    advex_status st = ADVEX_OK;
    if (!z || !ts) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    int targeted = st ? -1 : atk_setup_targets(m, c, x, y, n, off, z, ts, &st);
    atk_scores o = {model_scores, m, {m->net->in_chw[0], m->net->in_chw[1], m->net->in_chw[2]}, k, 0, NULL};
    if (targeted >= 0) st = run(&o, c, x, y, targeted ? ts : NULL, n, off, ids, xadv, info);
    free(z);
    free(ts);
    return st;
}
