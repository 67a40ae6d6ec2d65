/* A small open-addressing hash map from strings (borrowed, not copied) to ints, so that
 * name lookups in large ONNX graphs stay linear overall. */
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int onnx_map_init(onnx_map *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2 + 16) cap *= 2;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    m->cap = cap;
    m->n = 0;
    if (!m->keys || !m->vals) {
        onnx_map_free(m);
        return -1;
    }
    return 0;
}

void onnx_map_free(onnx_map *m) {
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

int onnx_map_get(const onnx_map *m, const char *key) {
    if (!m->cap) return -1;
    for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) return -1;
        if (strcmp(m->keys[i], key) == 0) return m->vals[i];
    }
}

static int grow(onnx_map *m) {
    onnx_map bigger;
    if (onnx_map_init(&bigger, m->cap) != 0) return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) onnx_map_put(&bigger, m->keys[i], m->vals[i]);
    onnx_map_free(m);
    *m = bigger;
    return 0;
}

int onnx_map_put(onnx_map *m, const char *key, int val) {
    if ((m->n + 1) * 2 > m->cap && grow(m) != 0) return -1;
    for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return 0;
        }
        if (strcmp(m->keys[i], key) == 0) {
            m->vals[i] = val;
            return 0;
        }
    }
}
