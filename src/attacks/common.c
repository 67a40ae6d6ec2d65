/* What every attack shares: configuration defaults, name and eps parsing, target
 * selection (label, next, least-likely, random), and projection helpers. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

void advex_attack_config_default(advex_attack_config *c) {
    memset(c, 0, sizeof *c);
    c->kind = ADVEX_ATTACK_FGSM;
    c->target = ADVEX_TARGET_NONE;
}

static const struct { advex_attack_kind kind; const char *name; } attack_names[] = {
    {ADVEX_ATTACK_NONE, "none"},
    {ADVEX_ATTACK_FGSM, "fgsm"},
    {ADVEX_ATTACK_FGSM_RS, "fgsm-rs"},
};

advex_status advex_attack_parse(const char *name, advex_attack_kind *kind) {
    for (size_t i = 0; i < sizeof attack_names / sizeof *attack_names; i++)
        if (name && strcmp(name, attack_names[i].name) == 0) { *kind = attack_names[i].kind; return ADVEX_OK; }
    return advex_set_error(ADVEX_ERR_ARG, "unknown attack '%s' (choose from none, fgsm, fgsm-rs)", name ? name : "");
}

const char *advex_attack_name(advex_attack_kind kind) {
    for (size_t i = 0; i < sizeof attack_names / sizeof *attack_names; i++)
        if (attack_names[i].kind == kind) return attack_names[i].name;
    return "?";
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

void advex_sign_step(float *xa, const float *x, const float *g, int64_t n, float step, float eps) {
    for (int64_t i = 0; i < n; i++) {
        float s = g[i] > 0 ? 1.0f : (g[i] < 0 ? -1.0f : 0.0f); /* sign(0) = 0 */
        float v = xa[i] + step * s;
        float lo = x[i] - eps, hi = x[i] + eps;
        v = v < lo ? lo : (v > hi ? hi : v);
        xa[i] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    }
}
