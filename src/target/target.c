/* The target abstraction: one query path for every kind of target (a local model, an HTTP
 * v2 endpoint, a program). advex_target_query is the only place images are counted: it
 * checks the per-example budgets before anything is sent, splits into requests of at most
 * options.batch images, rate limits, retries 5xx and connection errors with backoff, checks
 * every answer (finite scores, labels in range) and writes the query log. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "target/target_internal.h"

static const char *output_names[] = {"auto", "logits", "probs", "label"};

advex_status advex_output_parse(const char *s, advex_output_kind *k) {
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, output_names[i]) == 0) { *k = (advex_output_kind)i; return ADVEX_OK; }
    if (s && strcmp(s, "probabilities") == 0) { *k = ADVEX_OUTPUT_PROBS; return ADVEX_OK; }
    return advex_set_error(ADVEX_ERR_ARG, "unknown output kind '%s' (logits, probs, label)", s ? s : "");
}

const char *advex_output_name(advex_output_kind k) {
    return (unsigned)k < 4 ? output_names[k] : "unknown";
}

void advex_target_options_default(advex_target_options *o) {
    memset(o, 0, sizeof *o);
    o->output = ADVEX_OUTPUT_AUTO;
    o->batch = 64;
    o->timeout_s = 30;
    o->retries = 3;
}

double target_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

advex_status target_new(const target_vt *vt, const char *spec, const advex_target_options *o, advex_target **out) {
    advex_target *t = calloc(1, sizeof *t);
    size_t l = strlen(spec);
    if (!t || !(t->spec = malloc(l + 1))) { free(t); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); }
    memcpy(t->spec, spec, l + 1);
    t->vt = vt;
    advex_target_options_default(&t->o);
    if (o) t->o = *o;
    if (t->o.batch <= 0) t->o.batch = 64;
    if (t->o.timeout_s <= 0) t->o.timeout_s = 30;
    if (t->o.retries < 0) t->o.retries = 3;
    t->o.query_log = NULL; /* not kept: opened below */
    t->output = t->o.output;
    t->classes = t->o.classes > 0 ? t->o.classes : 0;
    if (o && o->query_log && !(t->log = fopen(o->query_log, "a"))) {
        advex_status st = advex_set_error(ADVEX_ERR_IO, "%s: cannot open the query log: %s", o->query_log,
                                          strerror(errno));
        free(t->spec);
        free(t);
        return st;
    }
    *out = t;
    return ADVEX_OK;
}

void advex_target_free(advex_target *t) {
    if (!t) return;
    if (t->vt && t->vt->close) t->vt->close(t);
    if (t->log) fclose(t->log);
    free(t->spent);
    free(t->tmp);
    free(t->spec);
    free(t);
}

advex_status advex_target_open(const char *spec, const advex_target_options *o, advex_target **out) {
    *out = NULL;
    if (!spec || !*spec) return advex_set_error(ADVEX_ERR_ARG, "empty target");
    if (strncmp(spec, "exec:", 5) == 0) return target_open_exec(spec + 5, o, out);
    if (strncmp(spec, "http://", 7) == 0 || strncmp(spec, "https://", 8) == 0) return target_open_http(spec, o, out);
    return advex_set_error(ADVEX_ERR_ARG, "target '%s': expected http://HOST:PORT/v2/models/NAME or exec:COMMAND",
                           spec);
}

void advex_target_input_shape(const advex_target *t, int64_t chw[3]) { memcpy(chw, t->chw, sizeof t->chw); }
int64_t advex_target_num_classes(const advex_target *t) { return t->classes; }
void advex_target_set_classes(advex_target *t, int64_t classes) {
    if (t->output == ADVEX_OUTPUT_LABEL && classes > 0) t->classes = classes;
}
advex_output_kind advex_target_output(const advex_target *t) { return t->output; }
int64_t advex_target_queries(const advex_target *t) { return t->total; }
int64_t advex_target_requests(const advex_target *t) { return t->requests; }

advex_status advex_target_budget(advex_target *t, int64_t n, int64_t per_example) {
    if (n < 0) return advex_set_error(ADVEX_ERR_ARG, "budget: negative count");
    int64_t *s = calloc((size_t)(n ? n : 1), sizeof *s);
    if (!s) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    free(t->spent);
    t->spent = s;
    t->nb = n;
    t->budget = per_example > 0 ? per_example : 0;
    return ADVEX_OK;
}

int64_t advex_target_spent(const advex_target *t, int64_t i) { return i >= 0 && i < t->nb ? t->spent[i] : 0; }
int64_t advex_target_left(const advex_target *t, int64_t i) {
    if (!t->budget) return INT64_MAX;
    return i >= 0 && i < t->nb ? t->budget - t->spent[i] : 0;
}

static double wall_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* one JSON line: when the request was sent (Unix seconds), its images, latency, outcome */
static void log_request(advex_target *t, int64_t n, double sent, double lat, int attempt, const char *outcome) {
    if (!t->log) return;
    /* outcome is our own text or the library's error line: quote and escape it */
    fprintf(t->log, "{\"time\":%.6f,\"batch\":%lld,\"latency_s\":%.6f,\"attempt\":%d,\"outcome\":\"", sent,
            (long long)n, lat, attempt);
    for (const char *p = outcome; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', t->log);
        fputc((unsigned char)*p >= 32 ? *p : ' ', t->log);
    }
    fputs("\"}\n", t->log);
    fflush(t->log);
}

/* one request with rate limit, retries and the log */
static advex_status request(advex_target *t, const float *x, int64_t n, float *scores, int32_t *labels) {
    advex_status st = ADVEX_OK;
    for (int attempt = 0;; attempt++) {
        if (t->o.max_qps > 0) sleep_s(t->last_request + 1.0 / t->o.max_qps - target_now());
        double t0 = target_now(), sent = wall_now();
        t->last_request = t0;
        int retry = 0;
        t->requests++;
        st = t->vt->infer(t, x, n, scores, labels, &retry);
        double lat = target_now() - t0;
        if (!st) { log_request(t, n, sent, lat, attempt, "ok"); return ADVEX_OK; }
        log_request(t, n, sent, lat, attempt, advex_last_error());
        if (!retry || attempt >= t->o.retries) break;
        sleep_s(0.1 * (double)(1 << (attempt < 10 ? attempt : 10)));
    }
    if (st != ADVEX_ERR_ARG && st != ADVEX_ERR_FORMAT && st != ADVEX_ERR_NOMEM) st = ADVEX_ERR_IO;
    return advex_set_error(st, "%s", advex_last_error());
}

/* AUTO output: FP32 rows that are all in [0,1] and sum to 1 are probabilities, not logits */
static void detect_probs(advex_target *t, const float *s, int64_t n) {
    int64_t k = t->classes, prob = 1;
    t->probs_checked = 1;
    for (int64_t i = 0; i < n && prob; i++) {
        double sum = 0;
        for (int64_t j = 0; j < k; j++) {
            prob &= s[i * k + j] >= 0 && s[i * k + j] <= 1;
            sum += s[i * k + j];
        }
        prob &= fabs(sum - 1.0) < 1e-3;
    }
    if (prob) t->output = ADVEX_OUTPUT_PROBS;
}

/* the answer is usable: scores finite (checked by the codec too), labels in range */
static advex_status check_answer(advex_target *t, const float *s, const int32_t *lab, int64_t n) {
    int64_t k = t->classes;
    for (int64_t i = 0; s && i < n * k; i++)
        if (!isfinite(s[i])) return advex_set_error(ADVEX_ERR_FORMAT, "%s: non-finite score in the answer", t->spec);
    if (s && t->o.output == ADVEX_OUTPUT_AUTO && t->output == ADVEX_OUTPUT_LOGITS && !t->probs_checked)
        detect_probs(t, s, n);
    for (int64_t i = 0; lab && i < n; i++)
        if (lab[i] < 0 || (k > 0 && lab[i] >= k))
            return advex_set_error(ADVEX_ERR_FORMAT, "%s: label %d is not a class (0..%lld)", t->spec, (int)lab[i],
                                   (long long)k - 1);
    return ADVEX_OK;
}

advex_status advex_target_query(advex_target *t, const float *x, int64_t n, const int64_t *ids, float *scores,
                                int32_t *labels) {
    int label = t->output == ADVEX_OUTPUT_LABEL;
    if (label && scores) return advex_set_error(ADVEX_ERR_ARG, "%s answers labels only, not scores", t->spec);
    if (n <= 0) return ADVEX_OK;
    if (ids && t->budget) { /* charge tentatively, then undo: nothing is sent past a budget */
        advex_status st = ADVEX_OK;
        int64_t i = 0;
        for (; i < n && !st; i++) {
            if (ids[i] < 0 || ids[i] >= t->nb)
                st = advex_set_error(ADVEX_ERR_ARG, "query for example %lld outside the budget", (long long)ids[i]);
            else if (++t->spent[ids[i]] > t->budget)
                st = advex_set_error(ADVEX_ERR_LIMIT, "example %lld: query budget of %lld spent", (long long)ids[i],
                                     (long long)t->budget);
        }
        for (int64_t j = 0; j < i; j++)
            if (ids[j] >= 0 && ids[j] < t->nb) t->spent[ids[j]]--;
        if (st) return st;
    }
    int64_t k = t->classes, d = t->chw[0] * t->chw[1] * t->chw[2], B = t->o.batch;
    if (!label && !scores && !t->tmp && !(t->tmp = malloc((size_t)(B * k) * sizeof(float))))
        return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i += B) {
        int64_t b = n - i < B ? n - i : B;
        float *s = label ? NULL : scores ? scores + i * k : t->tmp;
        int32_t *lab = label ? labels + i : NULL;
        if (label && !labels) return advex_set_error(ADVEX_ERR_ARG, "query: no output asked for");
        advex_status st = request(t, x + i * d, b, s, lab);
        if (!st) st = check_answer(t, s, lab, b);
        if (st) return st;
        t->total += b;
        for (int64_t j = 0; ids && t->nb && j < b; j++)
            if (ids[i + j] >= 0 && ids[i + j] < t->nb) t->spent[ids[i + j]]++;
        if (!label && labels) for (int64_t j = 0; j < b; j++) labels[i + j] = advex_argmax(s + j * k, k);
    }
    return ADVEX_OK;
}

/* ---- a local model as a target --------------------------------------------------------- */

static advex_status model_infer(advex_target *t, const float *x, int64_t n, float *scores, int32_t *labels, int *retry) {
    *retry = 0;
    advex_model *m = t->impl;
    int64_t k = t->classes;
    if (t->output == ADVEX_OUTPUT_LABEL) {
        float *z = malloc((size_t)(n * k) * sizeof(float));
        if (!z) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        advex_status st = advex_model_forward(m, x, n, z);
        for (int64_t i = 0; !st && i < n; i++) labels[i] = advex_argmax(z + i * k, k);
        free(z);
        return st;
    }
    advex_status st = advex_model_forward(m, x, n, scores);
    if (!st && t->output == ADVEX_OUTPUT_PROBS) advex_softmax_rows(scores, n, k, scores);
    return st;
}

static const target_vt model_vt = {"model", model_infer, NULL};

advex_status advex_target_from_model(advex_model *m, advex_output_kind output, advex_target **out) {
    advex_target_options o;
    advex_target_options_default(&o);
    o.batch = 256;
    o.output = output == ADVEX_OUTPUT_AUTO ? ADVEX_OUTPUT_LOGITS : output;
    advex_status st = target_new(&model_vt, "local model", &o, out);
    if (st) return st;
    (*out)->impl = m;
    (*out)->output = output == ADVEX_OUTPUT_AUTO ? ADVEX_OUTPUT_LOGITS : output;
    advex_model_input_shape(m, (*out)->chw);
    (*out)->classes = advex_model_num_classes(m);
    return ADVEX_OK;
}
