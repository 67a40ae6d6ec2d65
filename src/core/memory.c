/* Engine allocations (advex_falloc) and the process-wide memory cap: every block carries
 * a 64-byte header holding its size, so frees are counted exactly; an allocation that
 * would pass the cap fails and records why, for advex_alloc_error's message. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define HDR 64 /* keeps the returned pointer 64-byte aligned */

static _Atomic int64_t mem_limit;  /* 0: none */
static _Atomic int64_t mem_used;
static _Atomic int64_t mem_peak;

/* Why the calling thread's last advex_falloc failed: the request and the use then. */
static _Thread_local int64_t last_refused, last_used;

void advex_set_memory_limit(int64_t bytes) { atomic_store(&mem_limit, bytes > 0 ? bytes : 0); }
int64_t advex_get_memory_limit(void) { return atomic_load(&mem_limit); }
int64_t advex_memory_in_use(void) { return atomic_load(&mem_used); }
int64_t advex_memory_peak(void) { return atomic_load(&mem_peak); }

int advex_mem_fits(int64_t bytes) {
    int64_t lim = atomic_load(&mem_limit), used = atomic_load(&mem_used), total;
    if (lim <= 0) return 1;
    return advex_add_i64(used, bytes, &total) && total <= lim;
}

float *advex_falloc(int64_t n) {
    int64_t bytes;
    last_refused = 0;
    if (n < 0 || !advex_mul_i64(n, (int64_t)sizeof(float), &bytes) || bytes > INT64_MAX - 2 * HDR) return NULL;
    bytes = (bytes + HDR - 1) / HDR * HDR + HDR;
    if ((uint64_t)bytes > (uint64_t)SIZE_MAX) return NULL;
    /* reserve first, so concurrent allocations cannot pass the cap together */
    int64_t used = atomic_fetch_add(&mem_used, bytes) + bytes, lim = atomic_load(&mem_limit);
    if (lim > 0 && used > lim) {
        atomic_fetch_sub(&mem_used, bytes);
        last_refused = bytes;
        last_used = used - bytes;
        return NULL;
    }
    unsigned char *p = aligned_alloc(HDR, (size_t)bytes);
    if (!p) {
        atomic_fetch_sub(&mem_used, bytes);
        return NULL;
    }
    int64_t peak = atomic_load(&mem_peak);
    while (used > peak && !atomic_compare_exchange_weak(&mem_peak, &peak, used)) {}
    memcpy(p, &bytes, sizeof bytes);
    return (float *)(void *)(p + HDR);
}

void advex_ffree(float *p) {
    if (!p) return;
    unsigned char *b = (unsigned char *)p - HDR;
    int64_t bytes;
    memcpy(&bytes, b, sizeof bytes);
    atomic_fetch_sub(&mem_used, bytes);
    free(b);
}

const char *advex_fmt_bytes(int64_t b, char buf[32]) {
    static const char *unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 6) { v /= 1024.0; u++; }
    if (u == 0) snprintf(buf, 32, "%lld bytes", (long long)b);
    else snprintf(buf, 32, "%.1f %s", v, unit[u]);
    return buf;
}

advex_status advex_alloc_error(int64_t n, const char *what) {
    char a[32], b[32], c[32];
    if (last_refused > 0)
        return advex_set_error(ADVEX_ERR_LIMIT,
                               "memory limit: %s needs %s with %s already in use, over the limit of %s "
                               "(raise --max-memory / advex_set_memory_limit)",
                               what, advex_fmt_bytes(last_refused, a), advex_fmt_bytes(last_used, b),
                               advex_fmt_bytes(advex_get_memory_limit(), c));
    if (n < 0 || n > INT64_MAX / 4) return advex_set_error(ADVEX_ERR_LIMIT, "%s: size overflows", what);
    return advex_set_error(ADVEX_ERR_NOMEM, "out of memory: %s needs %s", what, advex_fmt_bytes(n * 4, a));
}

advex_status advex_parse_size(const char *s, int64_t *bytes) {
    if (!s || !bytes) return advex_set_error(ADVEX_ERR_ARG, "size: no value");
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    if (!isdigit((unsigned char)*p) && *p != '.')
        return advex_set_error(ADVEX_ERR_ARG, "bad size '%s' (a number with K, M, G or T, e.g. 512M)", s);
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (errno || end == p || !isfinite(v) || v <= 0)
        return advex_set_error(ADVEX_ERR_ARG, "bad size '%s' (a positive number with K, M, G or T, e.g. 512M)", s);
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1048576.0; end++; break;
    case 'G': mul = 1073741824.0; end++; break;
    case 'T': mul = 1099511627776.0; end++; break;
    default: break;
    }
    if (mul > 1 && *end == 'i') end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end)
        return advex_set_error(ADVEX_ERR_ARG, "bad size '%s' (a number with K, M, G or T, e.g. 512M)", s);
    double b = v * mul;
    if (b < 1 || b >= 9.2e18)
        return advex_set_error(ADVEX_ERR_ARG, "size '%s' out of range (1 byte .. 8 EiB)", s);
    *bytes = (int64_t)b;
    return ADVEX_OK;
}
