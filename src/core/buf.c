/* A growable text buffer (printf-style appends) for what the library writes as text: tables,
 * CSV, HTML, model descriptions. An allocation failure is remembered (oom) and later appends
 * do nothing, so callers check once at the end. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void advex_buf_printf(advex_buf *b, const char *fmt, ...) {
    va_list ap;
    if (b->oom) return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = 1; return; }
        if (b->s && (size_t)k < room) { b->len += (size_t)k; return; }
        size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)k;
        char *s = realloc(b->s, cap);
        if (!s) { b->oom = 1; return; }
        b->s = s;
        b->cap = cap;
    }
}

advex_status advex_buf_take(advex_buf *b, char **out) {
    *out = NULL;
    if (b->oom || !b->s) {
        advex_buf_free(b);
        return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (text output)");
    }
    *out = b->s;
    memset(b, 0, sizeof *b);
    return ADVEX_OK;
}

void advex_buf_free(advex_buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}
