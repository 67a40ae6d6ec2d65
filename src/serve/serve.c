/* advex_server: a model served over the Open Inference Protocol v2 REST API with
 * libmicrohttpd. Concurrent requests are batched: each request queues its images, and a
 * worker (one per plan over the one shared net, advex_model_share) takes every queued request
 * that fits in max_batch images into one forward pass. Bounded: request bodies, batch sizes and shapes are
 * checked before anything large is allocated; a bad request gets a 4xx with {"error"} and
 * the server keeps serving. Counts the images it infers (GET /v2/models/NAME/stats). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>
#include <cjson/cJSON.h>

#include "target/target_internal.h"

#define SERVE_MAX_WORKERS 64

struct advex_server {
    struct MHD_Daemon *d;
    advex_serve_options o;
    char name[128];
    advex_model *handles[SERVE_MAX_WORKERS]; /* shared plans; [0] borrowed */
    pthread_t workers[SERVE_MAX_WORKERS];
    int nh, nw, stopping;
    struct job *head, *tail;             /* queued requests, under mu */
    pthread_mutex_t mu;
    pthread_cond_t queued, finished;
    int64_t passes;                      /* forward passes run, under mu */
    int64_t chw[3], k, max_body;
    int64_t inferences, requests, errors; /* under mu */
    int port;
};

typedef struct conn {
    char *body;
    size_t len, cap;
    int too_big;
} conn;

void advex_serve_options_default(advex_serve_options *o) {
    memset(o, 0, sizeof *o);
    o->output = ADVEX_OUTPUT_LOGITS;
    o->max_batch = 1024;
    o->threads = 2;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, char *json) {
    if (!json) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(json); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_error(advex_server *s, struct MHD_Connection *c, unsigned code, const char *msg) {
    pthread_mutex_lock(&s->mu);
    s->errors++;
    pthread_mutex_unlock(&s->mu);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    char *j = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return reply(c, code, j);
}

/* one infer request waiting for its scores */
typedef struct job {
    const float *x;   /* (n, C, H, W) */
    float *z;         /* (n, K) */
    int64_t n;
    int done;
    advex_status st;
    char err[200];
    struct job *next;
} job;

/* a worker: take what is queued (up to max_batch images), one forward pass, hand back */
static void *worker(void *arg) {
    advex_server *s = ((void **)arg)[0];
    advex_model *m = ((void **)arg)[1];
    free(arg);
    const int64_t d = s->chw[0] * s->chw[1] * s->chw[2], k = s->k;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping) pthread_cond_wait(&s->queued, &s->mu);
        if (!s->head) break;
        job *first = s->head, *last = first;
        int64_t total = first->n;
        while (last->next && total + last->next->n <= s->o.max_batch) { last = last->next; total += last->n; }
        s->head = last->next;
        if (!s->head) s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->mu);
        float *xb = first == last ? NULL : malloc((size_t)(total * d) * sizeof(float));
        float *zb = first == last ? first->z : malloc((size_t)(total * k) * sizeof(float));
        advex_status st = ADVEX_OK;
        if (first != last && (!xb || !zb)) st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
        int64_t o = 0;
        for (job *j = first; !st && first != last && j; o += j->n, j = j->next)
            memcpy(xb + o * d, j->x, (size_t)(j->n * d) * sizeof(float));
        if (!st) st = advex_model_forward(m, first == last ? first->x : xb, total, zb);
        pthread_mutex_lock(&s->mu);
        o = 0;
        for (job *j = first, *nx; j; o += j->n, j = nx) {
            nx = j->next;
            if (!st && first != last) memcpy(j->z, zb + o * k, (size_t)(j->n * k) * sizeof(float));
            j->st = st;
            if (st) snprintf(j->err, sizeof j->err, "%s", advex_last_error());
            j->done = 1;
        }
        s->passes++;
        pthread_cond_broadcast(&s->finished);
        if (first != last) { free(xb); free(zb); }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* queue x (n images) and wait for its scores */
static advex_status run_batched(advex_server *s, const float *x, int64_t n, float *z, char *err, size_t cap) {
    job j = {x, z, n, 0, ADVEX_OK, "", NULL};
    pthread_mutex_lock(&s->mu);
    if (s->tail) s->tail->next = &j; else s->head = &j;
    s->tail = &j;
    pthread_cond_signal(&s->queued);
    while (!j.done) pthread_cond_wait(&s->finished, &s->mu);
    pthread_mutex_unlock(&s->mu);
    snprintf(err, cap, "%s", j.err);
    return j.st;
}

/* fault injection (testing clients): what to send instead of the answer, or NULL */
static const char *fault_now(advex_server *s) {
    if (s->o.fault_after <= 0 || !s->o.fault) return NULL;
    pthread_mutex_lock(&s->mu);
    int on = s->inferences >= s->o.fault_after;
    pthread_mutex_unlock(&s->mu);
    return on ? s->o.fault : NULL;
}

static enum MHD_Result fault_reply(advex_server *s, struct MHD_Connection *c, const char *f, int64_t n) {
    if (strcmp(f, "html") == 0) {
        static const char page[] = "<html><body><h1>502 Bad Gateway</h1></body></html>";
        struct MHD_Response *r = MHD_create_response_from_buffer(sizeof page - 1, (void *)page, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Content-Type", "text/html");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(f, "nan") == 0 || strcmp(f, "shape") == 0) {
        /* nan: the right shape, one score that overflows to infinity (1e999: valid JSON, unlike NaN);
         * shape: one score per image where K are due */
        int64_t cols = strcmp(f, "nan") == 0 ? s->k : 1, m = n * cols;
        char *j = malloc((size_t)m * 2 + 176);
        if (!j) return MHD_NO;
        int o = snprintf(j, 160, "{\"outputs\":[{\"name\":\"logits\",\"shape\":[%lld,%lld],\"datatype\":\"FP32\",\"data\":[",
                         (long long)n, (long long)cols);
        for (int64_t i = 0; i < m; i++) o += sprintf(j + o, i ? ",0" : (cols > 1 ? "1e999" : "0"));
        strcpy(j + o, "]}]}");
        return reply(c, 200, j);
    }
    return reply_error(s, c, 500, "injected fault");
}

static enum MHD_Result do_infer(advex_server *s, struct MHD_Connection *c, conn *cn) {
    if (cn->too_big) return reply_error(s, c, 413, "request body too large for this server");
    float *x = NULL;
    int64_t n = 0;
    advex_status st = v2_parse_request(cn->body ? cn->body : "", cn->len, s->chw, s->o.max_batch, &x, &n);
    if (st) return reply_error(s, c, st == ADVEX_ERR_LIMIT ? 413 : 400, advex_last_error());
    const char *f = fault_now(s);
    if (f) { free(x); return fault_reply(s, c, f, n); }
    float *z = malloc((size_t)(n * s->k) * sizeof(float));
    int32_t *lab = malloc((size_t)n * sizeof(int32_t));
    if (!z || !lab) { free(x); free(z); free(lab); return reply_error(s, c, 503, "out of memory"); }
    char err[200];
    st = run_batched(s, x, n, z, err, sizeof err);
    free(x);
    if (st) { free(z); free(lab); return reply_error(s, c, 500, err); }
    if (s->o.output == ADVEX_OUTPUT_PROBS) advex_softmax_rows(z, n, s->k, z);
    for (int64_t i = 0; i < n; i++) lab[i] = advex_argmax(z + i * s->k, s->k);
    char *j = v2_infer_response(s->name, s->o.output, z, lab, n, s->k);
    free(z);
    free(lab);
    pthread_mutex_lock(&s->mu);
    s->inferences += n;
    pthread_mutex_unlock(&s->mu);
    return reply(c, 200, j);
}

static char *stats_json(advex_server *s) {
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&s->mu);
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddNumberToObject(o, "inference_count", (double)s->inferences);
    cJSON_AddNumberToObject(o, "request_count", (double)s->requests);
    cJSON_AddNumberToObject(o, "error_count", (double)s->errors);
    cJSON_AddNumberToObject(o, "batch_count", (double)s->passes);
    pthread_mutex_unlock(&s->mu);
    char *j = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return j;
}

static char *strdup_or_null(const char *t) {
    size_t l = strlen(t) + 1;
    char *j = malloc(l);
    if (j) memcpy(j, t, l);
    return j;
}

/* GET routes */
static enum MHD_Result do_get(advex_server *s, struct MHD_Connection *c, const char *url) {
    char mp[200];
    snprintf(mp, sizeof mp, "/v2/models/%s", s->name);
    size_t ml = strlen(mp);
    if (strcmp(url, "/v2/health/live") == 0) return reply(c, 200, strdup_or_null("{\"live\":true}"));
    if (strcmp(url, "/v2/health/ready") == 0) return reply(c, 200, strdup_or_null("{\"ready\":true}"));
    if (strcmp(url, "/v2") == 0)
        return reply(c, 200, strdup_or_null("{\"name\":\"advex\",\"version\":\"" ADVEX_VERSION "\",\"extensions\":[]}"));
    if (strncmp(url, mp, ml) == 0) {
        const char *rest = url + ml;
        if (!*rest || strcmp(rest, "/") == 0) return reply(c, 200, v2_metadata(s->name, s->chw, s->k, s->o.output));
        if (strcmp(rest, "/ready") == 0) return reply(c, 200, strdup_or_null("{\"ready\":true}"));
        if (strcmp(rest, "/stats") == 0) return reply(c, 200, stats_json(s));
    }
    return reply_error(s, c, 404, "no such resource");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *data, size_t *size, void **con_cls) {
    (void)version;
    advex_server *s = cls;
    conn *cn = *con_cls;
    if (!cn) { /* first call: headers only */
        if (!(cn = calloc(1, sizeof *cn))) return MHD_NO;
        *con_cls = cn;
        pthread_mutex_lock(&s->mu);
        s->requests++;
        pthread_mutex_unlock(&s->mu);
        return MHD_YES;
    }
    if (*size) { /* a piece of the body: kept while within the limit, else dropped */
        if (!cn->too_big && cn->len + *size + 1 > (size_t)s->max_body) {
            cn->too_big = 1;
            free(cn->body);
            cn->body = NULL;
            cn->len = cn->cap = 0;
        }
        if (!cn->too_big) {
            if (cn->len + *size + 1 > cn->cap) {
                size_t cap = cn->cap ? cn->cap : 65536;
                while (cap < cn->len + *size + 1) cap *= 2;
                char *b = realloc(cn->body, cap);
                if (!b) return MHD_NO;
                cn->body = b;
                cn->cap = cap;
            }
            memcpy(cn->body + cn->len, data, *size);
            cn->len += *size;
            cn->body[cn->len] = '\0';
        }
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0) return do_get(s, c, url);
    char ip[200];
    snprintf(ip, sizeof ip, "/v2/models/%s/infer", s->name);
    if (strcmp(method, "POST") == 0 && strcmp(url, ip) == 0) return do_infer(s, c, cn);
    if (strcmp(url, ip) == 0) return reply_error(s, c, 405, "infer takes POST");
    return reply_error(s, c, strcmp(method, "POST") == 0 ? 404 : 405, "no such resource or method");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls; (void)c; (void)t;
    conn *cn = *con_cls;
    if (cn) { free(cn->body); free(cn); }
    *con_cls = NULL;
}

static advex_status serve_check(const advex_serve_options *o, advex_server *s) {
    const char *nm = o->name ? o->name : "model";
    size_t l = strlen(nm);
    if (l == 0 || l >= 100) return advex_set_error(ADVEX_ERR_ARG, "model name must be 1 to 99 characters");
    for (size_t i = 0; i < l; i++)
        if (!(nm[i] == '-' || nm[i] == '_' || nm[i] == '.' || (nm[i] >= '0' && nm[i] <= '9') ||
              (nm[i] >= 'a' && nm[i] <= 'z') || (nm[i] >= 'A' && nm[i] <= 'Z')))
            return advex_set_error(ADVEX_ERR_ARG, "model name '%s': use A-Z a-z 0-9 . _ - only", nm);
    memcpy(s->name, nm, l + 1);
    if (o->port < 0 || o->port > 65535) return advex_set_error(ADVEX_ERR_ARG, "port %d out of range", o->port);
    if (o->output == ADVEX_OUTPUT_AUTO) s->o.output = ADVEX_OUTPUT_LOGITS;
    if (s->o.max_batch <= 0) s->o.max_batch = 1024;
    if (s->o.threads <= 0) s->o.threads = 2;
    if (s->o.threads > SERVE_MAX_WORKERS) s->o.threads = SERVE_MAX_WORKERS;
    return ADVEX_OK;
}

advex_status advex_server_start(advex_model *m, const advex_serve_options *o, advex_server **out) {
    *out = NULL;
    advex_server *s = calloc(1, sizeof *s);
    if (!s) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory");
    advex_serve_options_default(&s->o);
    if (o) s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->queued, NULL);
    pthread_cond_init(&s->finished, NULL);
    advex_status st = serve_check(&s->o, s);
    if (st) goto fail;
    advex_model_input_shape(m, s->chw);
    s->k = advex_model_num_classes(m);
    /* the largest sane body: every number of a full batch at 32 characters, plus JSON */
    s->max_body = s->o.max_batch * s->chw[0] * s->chw[1] * s->chw[2] * 32 + 65536;
    s->handles[0] = m;
    for (s->nh = 1; s->nh < s->o.threads; s->nh++)
        if ((st = advex_model_share(m, &s->handles[s->nh]))) goto fail;
    for (; s->nw < s->nh; s->nw++) {
        void **arg = malloc(2 * sizeof(void *));
        if (!arg) { st = advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); goto fail; }
        arg[0] = s;
        arg[1] = s->handles[s->nw];
        if (pthread_create(&s->workers[s->nw], NULL, worker, arg)) {
            free(arg);
            st = advex_set_error(ADVEX_ERR_INTERNAL, "cannot start a worker thread");
            goto fail;
        }
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)s->o.port);
    const char *host = s->o.host ? s->o.host : "127.0.0.1";
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        st = advex_set_error(ADVEX_ERR_ARG, "host '%s': expected an IPv4 address such as 127.0.0.1", host);
        goto fail;
    }
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_INTERNALLY, (uint16_t)s->o.port, NULL,
                            NULL, handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.threads, MHD_OPTION_NOTIFY_COMPLETED,
                            completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_LIMIT, 256u,
                            MHD_OPTION_END);
    if (!s->d) {
        st = advex_set_error(ADVEX_ERR_IO, "cannot listen on %s:%d (in use, or not an address of this machine)", host,
                             s->o.port);
        goto fail;
    }
    const union MHD_DaemonInfo *inf = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = inf ? inf->port : s->o.port;
    *out = s;
    return ADVEX_OK;
fail:
    s->handles[0] = NULL;
    advex_server_stop(s);
    return st;
}

int advex_server_port(const advex_server *s) { return s->port; }

int64_t advex_server_inferences(const advex_server *s) {
    advex_server *w = (advex_server *)s;
    pthread_mutex_lock(&w->mu);
    int64_t v = w->inferences;
    pthread_mutex_unlock(&w->mu);
    return v;
}

void advex_server_stop(advex_server *s) {
    if (!s) return;
    if (s->d) MHD_stop_daemon(s->d); /* no request in flight after this */
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->queued);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nw; i++) pthread_join(s->workers[i], NULL);
    for (int i = 1; i < s->nh; i++) advex_model_free(s->handles[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->queued);
    pthread_cond_destroy(&s->finished);
    free(s);
}
