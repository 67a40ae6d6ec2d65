/* What the target implementations share (not public): the advex_target struct, with one
 * function table per kind (model.c, http.c, exec.c), and the v2 JSON codec (v2json.c) that
 * both the HTTP client and the server (src/serve/) use. */
#ifndef ADVEX_TARGET_INTERNAL_H
#define ADVEX_TARGET_INTERNAL_H

#include <stdio.h>
#include "internal.h"
#include "advex/target.h"

struct cJSON;

typedef struct target_vt {
    const char *kind; /* "model", "http", "exec" */
    /* One request of n images: scores (n, K) for a score target, labels (n) for a label
     * target. On failure *retry = 1 when trying again may help (5xx, connection). */
    advex_status (*infer)(advex_target *t, const float *x, int64_t n, float *scores, int32_t *labels, int *retry);
    void (*close)(advex_target *t);
} target_vt;

struct advex_target {
    const target_vt *vt;
    void *impl;
    char *spec;                 /* what was opened, for messages */
    int64_t chw[3], classes;
    advex_output_kind output;   /* LOGITS, PROBS or LABEL (never AUTO once open) */
    advex_target_options o;
    int64_t total, requests;    /* images answered, requests sent */
    int64_t *spent, nb, budget; /* per-example counters (nb of them) and the budget */
    FILE *log;
    double last_request;        /* monotonic seconds, for max_qps */
    float *tmp;                 /* scores scratch (batch, K) */
    int probs_checked;          /* AUTO output: the first answer was checked for probabilities */
};

/* A target with the fields every kind sets; owns spec (copied). */
advex_status target_new(const target_vt *vt, const char *spec, const advex_target_options *o, advex_target **out);
double target_now(void);

/* The kinds. */
advex_status target_open_http(const char *url, const advex_target_options *o, advex_target **out);
advex_status target_open_exec(const char *cmd, const advex_target_options *o, advex_target **out);

/* ---- Open Inference Protocol v2 JSON (v2json.c) ---- */
/* The infer request body for x (n, C, H, W) as input `name`. malloc'd string. */
char *v2_infer_request(const char *name, const float *x, int64_t n, const int64_t chw[3]);
/* Parse an infer request: the first input's FP32 data of shape [N, C, H, W] with N <=
 * max_n, equal to chw when given. *x malloc'd. ADVEX_ERR_FORMAT / ADVEX_ERR_LIMIT with the
 * reason. */
advex_status v2_parse_request(const char *body, size_t len, const int64_t chw[3], int64_t max_n, float **x,
                              int64_t *n);
/* Parse an infer response into scores (n, k) or labels (n) as out says; what: names the
 * target. Wrong shape, datatype, non-finite numbers, labels outside [0, k) (k > 0):
 * ADVEX_ERR_FORMAT. */
advex_status v2_parse_response(const char *body, size_t len, advex_output_kind out, int64_t n, int64_t k,
                               const char *what, float *scores, int32_t *labels);
/* A response for scores (n, k) or labels (n). malloc'd string. */
char *v2_infer_response(const char *model, advex_output_kind out, const float *scores, const int32_t *labels,
                        int64_t n, int64_t k);
/* Model metadata JSON for a model. malloc'd string. */
char *v2_metadata(const char *model, const int64_t chw[3], int64_t k, advex_output_kind out);
/* Read metadata: input shape (C,H,W), output kind (LOGITS for FP32 [-1,K], LABEL for INT64
 * [-1]), classes (K, or 0 for labels), the input's name (copied into in_name, size cap). */
advex_status v2_parse_metadata(const char *body, size_t len, const char *what, int64_t chw[3],
                               advex_output_kind *out, int64_t *k, char *in_name, size_t cap);

#endif
