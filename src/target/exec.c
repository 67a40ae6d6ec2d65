/* A local program as a target (exec:COMMAND, run by /bin/sh -c): one request per batch
 * over its stdin/stdout, binary framing (docs/targets.md):
 *   program -> advex, once at start:  "advex-target 1 C H W KIND K\n"   (KIND logits|probs|label;
 *                                      K classes, 0 when unknown for labels)
 *   advex -> program, per batch:      "infer N\n" then N*C*H*W float32, little-endian
 *   program -> advex, per batch:      "scores N K\n" then N*K float32   (logits, probs)
 *                                      "labels N\n" then N int32          (label)
 *                                      "error MESSAGE\n"                  (the request failed)
 * Every read waits at most the timeout; a program that exits, stalls or answers anything
 * else is an error naming the command. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "target/target_internal.h"

typedef struct exec_impl {
    pid_t pid;
    int in, out; /* its stdin (we write), its stdout (we read) */
} exec_impl;

/* read exactly len bytes within timeout seconds */
static advex_status read_full(advex_target *t, void *buf, size_t len) {
    exec_impl *e = t->impl;
    char *p = buf;
    double end = target_now() + t->o.timeout_s;
    while (len > 0) {
        struct pollfd pf = {e->out, POLLIN, 0};
        int ms = (int)((end - target_now()) * 1000);
        if (ms <= 0 || poll(&pf, 1, ms) == 0)
            return advex_set_error(ADVEX_ERR_IO, "exec:%s: no answer within %g s", t->spec, t->o.timeout_s);
        ssize_t r = read(e->out, p, len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return advex_set_error(ADVEX_ERR_IO, "exec:%s: the program closed its output", t->spec);
        p += r;
        len -= (size_t)r;
    }
    return ADVEX_OK;
}

/* one header line (at most cap - 1 characters) */
static advex_status read_line(advex_target *t, char *line, size_t cap) {
    size_t n = 0;
    for (;;) {
        char ch;
        advex_status st = read_full(t, &ch, 1);
        if (st) return st;
        if (ch == '\n') break;
        if (n + 1 >= cap) return advex_set_error(ADVEX_ERR_FORMAT, "exec:%s: header line too long", t->spec);
        line[n++] = ch;
    }
    line[n] = '\0';
    return ADVEX_OK;
}

static advex_status write_full(advex_target *t, const void *buf, size_t len) {
    exec_impl *e = t->impl;
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(e->in, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return advex_set_error(ADVEX_ERR_IO, "exec:%s: cannot write to the program: %s", t->spec,
                                           strerror(errno));
        p += w;
        len -= (size_t)w;
    }
    return ADVEX_OK;
}

static advex_status exec_infer(advex_target *t, const float *x, int64_t n, float *scores, int32_t *labels, int *retry) {
    *retry = 0;
    char line[256];
    int64_t d = t->chw[0] * t->chw[1] * t->chw[2];
    snprintf(line, sizeof line, "infer %lld\n", (long long)n);
    advex_status st = write_full(t, line, strlen(line));
    if (!st) st = write_full(t, x, (size_t)(n * d) * sizeof(float));
    if (!st) st = read_line(t, line, sizeof line);
    if (st) return st;
    long long a = -1, b = -1;
    if (strncmp(line, "error ", 6) == 0) return advex_set_error(ADVEX_ERR_IO, "exec:%s: %s", t->spec, line + 6);
    if (t->output == ADVEX_OUTPUT_LABEL) {
        if (sscanf(line, "labels %lld", &a) != 1 || a != n)
            return advex_set_error(ADVEX_ERR_FORMAT, "exec:%s: expected \"labels %lld\", got \"%.60s\"", t->spec,
                                   (long long)n, line);
        return read_full(t, labels, (size_t)n * sizeof(int32_t));
    }
    if (sscanf(line, "scores %lld %lld", &a, &b) != 2 || a != n || b != t->classes)
        return advex_set_error(ADVEX_ERR_FORMAT, "exec:%s: expected \"scores %lld %lld\", got \"%.60s\"", t->spec,
                               (long long)n, (long long)t->classes, line);
    return read_full(t, scores, (size_t)(n * t->classes) * sizeof(float));
}

static void exec_close(advex_target *t) {
    exec_impl *e = t->impl;
    if (!e) return;
    if (e->in >= 0) close(e->in); /* end of input: the program should exit */
    if (e->out >= 0) close(e->out);
    if (e->pid > 0) {
        int status;
        for (int i = 0; i < 50 && waitpid(e->pid, &status, WNOHANG) == 0; i++) { struct timespec ts = {0, 10000000}; nanosleep(&ts, NULL); }
        if (waitpid(e->pid, &status, WNOHANG) == 0) { kill(e->pid, SIGTERM); waitpid(e->pid, &status, 0); }
    }
    free(e);
}

static const target_vt exec_vt = {"exec", exec_infer, exec_close};

static advex_status spawn(advex_target *t, const char *cmd) {
    exec_impl *e = t->impl;
    int pin[2], pout[2];
    if (pipe(pin)) return advex_set_error(ADVEX_ERR_IO, "exec: pipe: %s", strerror(errno));
    if (pipe(pout)) { close(pin[0]); close(pin[1]); return advex_set_error(ADVEX_ERR_IO, "exec: pipe: %s", strerror(errno)); }
    pid_t pid = fork();
    if (pid < 0) {
        close(pin[0]); close(pin[1]); close(pout[0]); close(pout[1]);
        return advex_set_error(ADVEX_ERR_IO, "exec: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        close(pin[0]); close(pin[1]); close(pout[0]); close(pout[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    fcntl(pin[1], F_SETFD, FD_CLOEXEC);
    fcntl(pout[0], F_SETFD, FD_CLOEXEC);
    e->pid = pid;
    e->in = pin[1];
    e->out = pout[0];
    return ADVEX_OK;
}

advex_status target_open_exec(const char *cmd, const advex_target_options *o, advex_target **out) {
    if (!*cmd) return advex_set_error(ADVEX_ERR_ARG, "exec: empty command");
    signal(SIGPIPE, SIG_IGN); /* a program that dies mid-request is an error, not a signal */
    advex_target *t;
    advex_status st = target_new(&exec_vt, cmd, o, &t);
    if (st) return st;
    exec_impl *e = calloc(1, sizeof *e);
    if (!e) { advex_target_free(t); return advex_set_error(ADVEX_ERR_NOMEM, "out of memory"); }
    e->in = e->out = -1;
    t->impl = e;
    char line[256], kind[32];
    long long c, h, w, k;
    if ((st = spawn(t, cmd)) || (st = read_line(t, line, sizeof line))) goto fail;
    if (sscanf(line, "advex-target 1 %lld %lld %lld %31s %lld", &c, &h, &w, kind, &k) != 5 || c < 1 || h < 1 ||
        w < 1 || c * h * w > (1 << 26) || k < 0 || k > 1000000) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "exec:%s: expected \"advex-target 1 C H W KIND K\" first, got \"%.60s\"",
                             cmd, line);
        goto fail;
    }
    advex_output_kind ok;
    if ((st = advex_output_parse(kind, &ok)) || ok == ADVEX_OUTPUT_AUTO || (ok != ADVEX_OUTPUT_LABEL && k < 2)) {
        st = advex_set_error(ADVEX_ERR_FORMAT, "exec:%s: bad output kind or class count in \"%.60s\"", cmd, line);
        goto fail;
    }
    if (t->output != ADVEX_OUTPUT_AUTO && (t->output == ADVEX_OUTPUT_LABEL) != (ok == ADVEX_OUTPUT_LABEL)) {
        st = advex_set_error(ADVEX_ERR_ARG, "exec:%s: the program answers %s, not %s", cmd, advex_output_name(ok),
                             advex_output_name(t->output));
        goto fail;
    }
    if (t->output == ADVEX_OUTPUT_AUTO) t->output = ok;
    t->chw[0] = c; t->chw[1] = h; t->chw[2] = w;
    if (k > 0) t->classes = k;
    *out = t;
    return ADVEX_OK;
fail:
    advex_target_free(t);
    return st;
}
