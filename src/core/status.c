/* Status codes, the thread-local error detail, and overflow-checked size arithmetic. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Room for two file paths (PATH_MAX 4096 each) and a reason. A longer message loses its
 * middle, never its end: the reason comes last ("path: reason", "cannot create path:
 * reason"), and advex_error_prefix keeps the whole detail after a long prefix. */
#define ERR_CAP 12288
#define ERR_HEAD 2048 /* characters kept from the start of an over-long message */
static _Thread_local char err_detail[ERR_CAP];

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

/* Store a message of len characters into err_detail: as is when it fits, else its first
 * ERR_HEAD characters, "...", and as much of its end as fits. */
static void store(const char *msg, size_t len) {
    if (len < ERR_CAP) {
        memmove(err_detail, msg, len + 1);
        return;
    }
    size_t tail = ERR_CAP - 1 - ERR_HEAD - 3;
    memmove(err_detail, msg, ERR_HEAD);
    memcpy(err_detail + ERR_HEAD, "...", 3);
    memmove(err_detail + ERR_HEAD + 3, msg + len - tail, tail);
    err_detail[ERR_CAP - 1] = '\0';
}

advex_status advex_set_error(advex_status s, const char *fmt, ...) {
    /* formatted aside first: an argument may be advex_last_error() itself */
    va_list ap, ap2;
    char small[512];
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        store("(unprintable error message)", 27);
    } else if ((size_t)n < sizeof small) {
        store(small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (big) vsnprintf(big, (size_t)n + 1, fmt, ap2);
        store(big ? big : small, big ? (size_t)n : sizeof small - 1);
        free(big);
    }
    va_end(ap2);
    return s;
}

advex_status advex_error_prefix(advex_status s, const char *prefix) {
    if (!prefix || !*prefix) return s;
    const char *detail = err_detail[0] ? err_detail : advex_status_str(s);
    size_t a = strlen(prefix), b = strlen(detail);
    char *tmp = malloc(a + b + 3);
    if (!tmp) return s;
    memcpy(tmp, prefix, a);
    memcpy(tmp + a, ": ", 2);
    memcpy(tmp + a + 2, detail, b + 1);
    store(tmp, a + b + 2);
    free(tmp);
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
