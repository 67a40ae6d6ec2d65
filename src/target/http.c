/* An Open Inference Protocol v2 endpoint as a target, over libcurl's easy API (one handle,
 * kept alive between requests): GET /v2/health/ready, GET /v2/models/NAME for the shapes,
 * POST /v2/models/NAME/infer per batch. 5xx and connection errors are retryable (the
 * caller, target.c, retries); a 4xx names the server's own error text. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>

#include "target/target_internal.h"

#define HTTP_MAX_BODY ((size_t)1 << 30) /* the most a response may carry */

typedef struct http_impl {
    CURL *curl;
    char *base;      /* http://host:port */
    char *model;     /* NAME */
    char in_name[128];
    char *body;      /* the last response */
    size_t len, cap, max;
    struct curl_slist *hdrs;
} http_impl;

static size_t on_data(char *p, size_t sz, size_t nm, void *u) {
    http_impl *h = u;
    size_t add = sz * nm;
    if (h->len + add + 1 > h->max) return 0; /* too big: abort the transfer */
    if (h->len + add + 1 > h->cap) {
        size_t c = h->cap ? h->cap : 65536;
        while (c < h->len + add + 1) c *= 2;
        char *b = realloc(h->body, c);
        if (!b) return 0;
        h->body = b;
        h->cap = c;
    }
    memcpy(h->body + h->len, p, add);
    h->len += add;
    h->body[h->len] = '\0';
    return add;
}

/* GET (post == NULL) or POST path; *code the HTTP status. Connection-level failures are
 * ADVEX_ERR_IO with *retry set. */
static advex_status http_do(advex_target *t, const char *path, const char *post, long *code, int *retry) {
    http_impl *h = t->impl;
    char url[2048];
    if (snprintf(url, sizeof url, "%s%s", h->base, path) >= (int)sizeof url)
        return advex_set_error(ADVEX_ERR_ARG, "%s: URL too long", t->spec);
    h->len = 0;
    if (h->body) h->body[0] = '\0';
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    if (post) {
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(post));
    }
    CURLcode rc = curl_easy_perform(h->curl);
    *code = 0;
    if (rc != CURLE_OK) {
        *retry = rc != CURLE_WRITE_ERROR && rc != CURLE_URL_MALFORMAT && rc != CURLE_UNSUPPORTED_PROTOCOL;
        if (rc == CURLE_WRITE_ERROR)
            return advex_set_error(ADVEX_ERR_LIMIT, "%s: response larger than %zu bytes", url, h->max);
        return advex_set_error(ADVEX_ERR_IO, "%s: %s", url, curl_easy_strerror(rc));
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, code);
    if (*code >= 200 && *code < 300) return ADVEX_OK;
    *retry = *code >= 500;
    /* the server's {"error": "..."} when it sent one, else the start of the body */
    cJSON *o = h->body ? cJSON_ParseWithLength(h->body, h->len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    char msg[160];
    snprintf(msg, sizeof msg, "%s", cJSON_IsString(e) ? e->valuestring : h->body ? h->body : "");
    for (char *p = msg; *p; p++) if ((unsigned char)*p < 32) *p = ' ';
    cJSON_Delete(o);
    return advex_set_error(ADVEX_ERR_IO, "%s: HTTP %ld%s%s", url, *code, *msg ? ": " : "", msg);
}

static advex_status http_infer(advex_target *t, const float *x, int64_t n, float *scores, int32_t *labels, int *retry) {
    http_impl *h = t->impl;
    *retry = 0;
    char *req = v2_infer_request(h->in_name, x, n, t->chw);
    if (!req) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    char path[512];
    snprintf(path, sizeof path, "/v2/models/%s/infer", h->model);
    long code;
    h->max = (size_t)(n * (t->classes > 0 ? t->classes : 1)) * 64 + 65536;
    advex_status st = http_do(t, path, req, &code, retry);
    free(req);
    if (st) return st;
    return v2_parse_response(h->body ? h->body : "", h->len, t->output, n, t->classes, t->spec, scores, labels);
}

static void http_close(advex_target *t) {
    http_impl *h = t->impl;
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->hdrs);
    free(h->base); free(h->model); free(h->body);
    free(h);
}

static const target_vt http_vt = {"http", http_infer, http_close};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* split http://host:port/v2/models/NAME into base and NAME */
static advex_status split_url(const char *url, http_impl *h) {
    const char *scheme_end = strstr(url, "://"), *p = strstr(url, "/v2/models/");
    if (!scheme_end || !p || p < scheme_end)
        return advex_set_error(ADVEX_ERR_ARG, "target %s: expected http://HOST:PORT/v2/models/NAME", url);
    const char *name = p + strlen("/v2/models/");
    size_t nl = strcspn(name, "/?#");
    if (nl == 0 || nl > 200 || (name[nl] && strcmp(name + nl, "/") != 0))
        return advex_set_error(ADVEX_ERR_ARG, "target %s: expected http://HOST:PORT/v2/models/NAME", url);
    for (size_t i = 0; i < nl; i++)
        if (!(name[i] == '-' || name[i] == '_' || name[i] == '.' || (name[i] >= '0' && name[i] <= '9') ||
              (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z')))
            return advex_set_error(ADVEX_ERR_ARG, "target %s: model name has characters other than A-Z a-z 0-9 . _ -",
                                   url);
    h->base = strndup(url, (size_t)(p - url));
    h->model = strndup(name, nl);
    if (!h->base || !h->model) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    return ADVEX_OK;
}

/* readiness, then the metadata */
static advex_status http_handshake(advex_target *t) {
    http_impl *h = t->impl;
    long code;
    int retry = 0;
    h->max = 1 << 20;
    advex_status st = http_do(t, "/v2/health/ready", NULL, &code, &retry);
    if (st) return advex_set_error(st, "%s (is the server up and ready?)", advex_last_error());
    char path[512];
    snprintf(path, sizeof path, "/v2/models/%s", h->model);
    if ((st = http_do(t, path, NULL, &code, &retry))) return st;
    advex_output_kind kind;
    int64_t k;
    if ((st = v2_parse_metadata(h->body ? h->body : "", h->len, t->spec, t->chw, &kind, &k, h->in_name, sizeof h->in_name))) return st;
    if (t->output == ADVEX_OUTPUT_AUTO) t->output = kind;
    if (kind == ADVEX_OUTPUT_LABEL && t->output != ADVEX_OUTPUT_LABEL)
        return advex_set_error(ADVEX_ERR_ARG, "%s: the model answers labels only (INT64 [-1]), not %s", t->spec,
                               advex_output_name(t->output));
    if (kind != ADVEX_OUTPUT_LABEL && t->output == ADVEX_OUTPUT_LABEL)
        return advex_set_error(ADVEX_ERR_ARG, "%s: the model answers FP32 scores, not labels (use --target-output "
                               "logits or probs)", t->spec);
    if (kind != ADVEX_OUTPUT_LABEL) t->classes = k;
    return ADVEX_OK;
}

advex_status target_open_http(const char *url, const advex_target_options *o, advex_target **out) {
    pthread_once(&curl_once, curl_init);
    advex_target *t;
    advex_status st = target_new(&http_vt, url, o, &t);
    if (st) return st;
    http_impl *h = calloc(1, sizeof *h);
    t->impl = h;
    if (!h || !(h->curl = curl_easy_init())) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto fail; }
    if ((st = split_url(url, h))) goto fail;
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, (long)(t->o.timeout_s * 1000));
    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)(t->o.timeout_s * 1000));
    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    /* no "Expect: 100-continue" round trip before each body */
    if (!(h->hdrs = curl_slist_append(NULL, "Content-Type: application/json")) ||
        !(h->hdrs = curl_slist_append(h->hdrs, "Expect:"))) {
        st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        goto fail;
    }
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->hdrs);
    if ((st = http_handshake(t))) goto fail;
    *out = t;
    return ADVEX_OK;
fail:
    advex_target_free(t);
    return st;
}
