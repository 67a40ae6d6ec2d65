/* A model behind an interface: forward only, images in, scores or labels out. A local
 * advex_model, an Open Inference Protocol v2 (KServe / Triton) HTTP endpoint and a local
 * program (exec:) are three implementations of one advex_target; score-based (Square, SimBA)
 * and decision-based (HopSkipJump) attacks run on a target, untargeted or targeted, and every image sent is counted in
 * one place (advex_target_query), which also enforces the per-example query budget.
 * advex_serve_* serves a model over the same protocol. Protocol and framing:
 * docs/targets.md. */
#ifndef ADVEX_TARGET_H
#define ADVEX_TARGET_H

#include <stdint.h>
#include "status.h"
#include "model.h"
#include "data.h"
#include "attack.h"
#include "eval.h"

#ifdef __cplusplus
extern "C" {
#endif
ADVEX_API_BEGIN

/* What a target returns per image. */
typedef enum advex_output_kind {
    ADVEX_OUTPUT_AUTO = 0,  /* open: read it from the server's metadata (FP32 [-1,K] scores,
                               INT64 [-1] labels); scores are logits unless every row of the
                               first answer is in [0,1] and sums to 1 (then PROBS) */
    ADVEX_OUTPUT_LOGITS,    /* FP32 (N, K) */
    ADVEX_OUTPUT_PROBS,     /* FP32 (N, K), rows in [0,1] summing to 1 */
    ADVEX_OUTPUT_LABEL,     /* INT64 (N): the decision only */
} advex_output_kind;

/* Parse "logits", "probs", "label" (also "auto"). */
advex_status advex_output_parse(const char *s, advex_output_kind *k);
const char *advex_output_name(advex_output_kind k);

typedef struct advex_target advex_target;

typedef struct advex_target_options {
    advex_output_kind output; /* AUTO: from the metadata */
    int64_t batch;            /* images per request; <= 0: 64 */
    double timeout_s;         /* per request; <= 0: 30 */
    int32_t retries;          /* extra tries on a 5xx or connection error, with exponential
                                 backoff from 0.1 s; < 0: 3 */
    double max_qps;           /* requests per second; <= 0: unlimited */
    const char *query_log;    /* append one JSON line per request here (NULL: none) */
    int64_t classes;          /* classes of a label-only target (its metadata cannot say);
                                 <= 0: unknown until set by advex_target_set_classes */
} advex_target_options;
void advex_target_options_default(advex_target_options *o);

/* Open "http://HOST:PORT/v2/models/NAME" (or https://), checks /v2/health/ready and reads
 * the metadata (input FP32 [-1,C,H,W]; output FP32 [-1,K] or INT64 [-1]); or
 * "exec:COMMAND" (a program run through /bin/sh, one request per batch over its
 * stdin/stdout; framing in docs/targets.md). Errors name the URL and what was wrong. */
advex_status advex_target_open(const char *spec, const advex_target_options *o, advex_target **out);
/* A local model as a target (logits, or its labels only with ADVEX_OUTPUT_LABEL, or softmax
 * probabilities with PROBS). The model is borrowed, not owned. */
advex_status advex_target_from_model(advex_model *m, advex_output_kind output, advex_target **out);
void advex_target_free(advex_target *t);

void advex_target_input_shape(const advex_target *t, int64_t chw[3]);
int64_t advex_target_num_classes(const advex_target *t);
void advex_target_set_classes(advex_target *t, int64_t classes);
advex_output_kind advex_target_output(const advex_target *t);
/* Images sent to the target so far (successful requests; what the server counts). */
int64_t advex_target_queries(const advex_target *t);
/* Requests sent, including retried ones. */
int64_t advex_target_requests(const advex_target *t);

/* Per-example budgets: n counters at 0, each example may spend at most `per_example`
 * queries (<= 0: no limit) until the next call. advex_target_query with ids refuses
 * (ADVEX_ERR_LIMIT, nothing sent) a batch that would take any example past its budget. */
advex_status advex_target_budget(advex_target *t, int64_t n, int64_t per_example);
/* Queries example i may still spend (INT64_MAX without a budget); spent so far. */
int64_t advex_target_left(const advex_target *t, int64_t i);
int64_t advex_target_spent(const advex_target *t, int64_t i);

/* Query n images x (n, C, H, W) in [0,1]: scores (n, K) (NULL allowed; an error for a
 * label-only target) and labels (n) (argmax of the scores for a score target; may be NULL).
 * ids (n): each image's example in the budget (NULL: not charged to any example, still
 * counted in advex_target_queries). Requests of at most options.batch images, rate
 * limited, retried on 5xx and connection errors. A response of the wrong shape, with
 * non-finite scores, labels out of range or that is not JSON is an ADVEX_ERR_FORMAT naming
 * the target. */
advex_status advex_target_query(advex_target *t, const float *x, int64_t n, const int64_t *ids, float *scores,
                                 int32_t *labels);

/* Evaluate an attack through a target, advex_eval_run's counterpart: first one clean query
 * per example (counted in its budget of c->queries, default 5000), then the attack with the
 * rest of the budget, on the clean-correct ones only; the last query the attack made on the
 * returned example is its verdict (no extra query). Attacks: none, square, simba (scores), hsj
 * (labels; hsj also with scores), or any attack crafted on `surrogate` (transfer; one more
 * query per example to judge it). White-box attacks without a surrogate are ADVEX_ERR_ARG.
 * Targeted (c->target): the targets a local run picks (advex_attack_targets, random ones
 * seeded by the example's index; least-likely from the target's clean scores, so not on a
 * label-only target: ADVEX_ERR_ARG); targeted hsj starts from the first data-set image the
 * target classified as the target class in its clean query (uniform noise when none was).
 * res->target_hits: examples the target classifies as their target afterwards.
 * res->queries_total: images sent; res->queries_*: per success (misclassified), clean query
 * included. adv_out (n*C*H*W) may be NULL. */
advex_status advex_target_eval(advex_target *t, advex_model *surrogate, const advex_dataset *d,
                               const advex_attack_config *c, int64_t batch, advex_progress_fn progress, void *user,
                               float *adv_out, advex_eval_result *res);

/* Run a score- or decision-based attack (square, simba, hsj) on a batch through a target whose
 * budget (advex_target_budget) covers ids[0..n). y: the true labels. With c->target the
 * attack aims at advex_attack_targets' classes for the examples ids (least-likely spends one
 * clean query per example on scores first; hsj starts from uniform noise). ok (n, may be
 * NULL): 1 where the returned point is misclassified (targeted: classified as its target),
 * known from the attack's own queries (an example returned unchanged counts as labelled y).
 * HopSkipJump batches the pending queries of all its running examples into requests of up to
 * options.batch images. */
advex_status advex_target_attack(advex_target *t, const advex_attack_config *c, const float *x, const int32_t *y,
                                 const int64_t *ids, int64_t n, int64_t batch_offset, float *x_adv, int32_t *ok);

/* ---- serving: the same protocol over HTTP (libmicrohttpd) ------------------------------ */

typedef struct advex_server advex_server;
typedef struct advex_serve_options {
    const char *host;         /* bind address; NULL: 127.0.0.1 (loopback) */
    int port;                 /* 0: any free port (advex_server_port tells which) */
    const char *name;         /* model name in the URLs; NULL: "model" */
    advex_output_kind output; /* LOGITS (AUTO means logits), PROBS or LABEL */
    int64_t max_batch;        /* largest N one request may carry; <= 0: 1024 */
    int threads;              /* workers, one plan each over the shared net; each takes every
                                 queued request that fits in max_batch images into one
                                 forward pass; <= 0: 2 */
    /* fault injection for testing clients: after fault_after successful inferences every
     * infer request fails with fault ("500", "html", "nan", "shape"); 0: never */
    int64_t fault_after;
    const char *fault;
} advex_serve_options;
void advex_serve_options_default(advex_serve_options *o);
/* Serve m (borrowed; one shared plan per worker) until advex_server_stop. Endpoints:
 * GET /v2/health/live, /v2/health/ready, /v2/models/NAME (metadata), /v2/models/NAME/ready,
 * /v2/models/NAME/stats ({"inference_count", "request_count", "error_count", "batch_count"}),
 * POST /v2/models/NAME/infer. Bad requests get a 4xx with {"error": "..."}. */
advex_status advex_server_start(advex_model *m, const advex_serve_options *o, advex_server **out);
int advex_server_port(const advex_server *s);
/* Images inferred so far (the sum of N over successful infer requests). */
int64_t advex_server_inferences(const advex_server *s);
void advex_server_stop(advex_server *s);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
