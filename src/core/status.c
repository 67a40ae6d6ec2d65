/* Status codes, the thread-local error detail, and overflow-checked size arithmetic. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Thread_local char err_detail[1024];

const char *advex_status_str(advex_status s) {
    switch (s) {
#define ADVEX_STATUS_CASE_(name, code, msg) case name: return msg;
        ADVEX_STATUS_LIST(ADVEX_STATUS_CASE_)
#undef ADVEX_STATUS_CASE_
    }
    return "unknown status";
}

const char *advex_last_error(void) { return err_detail; }

void advex_clear_error(void) { err_detail[0] = '\0'; }

advex_status advex_set_error(advex_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_detail, sizeof err_detail, fmt, ap);
    va_end(ap);
    return s;
}

advex_status advex_error_prefix(advex_status s, const char *prefix) {
    char tmp[2 * sizeof err_detail + 8];
    if (!prefix || !*prefix) return s;
    snprintf(tmp, sizeof tmp, "%.1000s: %.1000s", prefix, err_detail[0] ? err_detail : advex_status_str(s));
    memcpy(err_detail, tmp, sizeof err_detail - 1);
    err_detail[sizeof err_detail - 1] = '\0';
    return s;
}

int advex_mul_i64(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0) return 0;
    if (a != 0 && b > INT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

int advex_add_i64(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0 || a > INT64_MAX - b) return 0;
    *out = a + b;
    return 1;
}

int64_t advex_numel(int ndim, const int64_t *dims) {
    int64_t n = 1;
    if (ndim < 0 || ndim > ADVEX_MAX_DIMS) return -1;
    for (int i = 0; i < ndim; i++)
        if (!advex_mul_i64(n, dims[i], &n)) return -1;
    return n;
}

char *advex_strdup(const char *s) {
    size_t n = strlen(s ? s : "") + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s ? s : "", n);
    return d;
}
