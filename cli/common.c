/* Shared CLI plumbing: strict flag parsing (unknown flag = error), number parsing with
 * ranges, model/data loading with one-line errors, progress bars, atomic file output. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

volatile int cli_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    if (cli_interrupted) _exit(130); /* second ^C: leave at once */
    cli_interrupted = 1;
}

void cli_install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_error(const char *cmd, int code, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "advex %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_fail(const char *cmd, advex_status st) {
    const char *detail = advex_last_error();
    cli_error(cmd, 0, "%s", detail && *detail ? detail : advex_status_str(st));
    return st == ADVEX_ERR_ARG ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
}

cli_flag *cli_get(cli_flag *flags, int nflags, const char *name) {
    for (int i = 0; i < nflags; i++)
        if (strcmp(flags[i].name, name) == 0) return &flags[i];
    return NULL;
}

static void print_help(FILE *f, const char *cmd, const char *usage, const char *summary, const cli_flag *flags,
                       int nflags) {
    fprintf(f, "usage: advex %s %s\n\n%s\n\noptions:\n", cmd, usage, summary);
    for (int i = 0; i < nflags; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", flags[i].name, flags[i].metavar ? " " : "",
                 flags[i].metavar ? flags[i].metavar : "");
        fprintf(f, "  %-22s %s", left, flags[i].help);
        if (flags[i].metavar && flags[i].value) fprintf(f, " (default: %s)", flags[i].value);
        fputc('\n', f);
    }
    fprintf(f, "  %-22s %s\n", "-h, --help", "show this help");
}

int cli_parse(const char *cmd, const char *usage, const char *summary, int argc, char **argv, cli_flag *flags,
              int nflags) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_help(stdout, cmd, usage, summary, flags, nflags);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            cli_error(cmd, 0, "unexpected argument '%s' (see advex %s --help)", a, cmd);
            return -1;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        cli_flag *f = NULL;
        for (int k = 0; k < nflags; k++)
            if (strlen(flags[k].name) == len && strncmp(flags[k].name, a, len) == 0) f = &flags[k];
        if (!f) {
            cli_error(cmd, 0, "unknown flag '%.*s' (see advex %s --help)", (int)len, a, cmd);
            return -1;
        }
        if (!f->metavar) {
            if (eq) { cli_error(cmd, 0, "flag %s takes no value", f->name); return -1; }
            f->value = "1";
        } else if (eq) {
            f->value = eq + 1;
        } else {
            if (i + 1 >= argc) { cli_error(cmd, 0, "flag %s needs a value (%s)", f->name, f->metavar); return -1; }
            f->value = argv[++i];
        }
        f->seen = 1;
    }
    return 0;
}

int cli_int(const char *cmd, const cli_flag *f, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = f->value ? strtoll(f->value, &end, 10) : 0;
    if (!f->value || errno || *end || end == f->value || v < lo || v > hi) {
        cli_error(cmd, 0, "%s: bad value '%s' (an integer in [%lld, %lld])", f->name, f->value ? f->value : "", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_float(const char *cmd, const cli_flag *f, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = f->value ? strtod(f->value, &end) : 0;
    if (!f->value || errno || *end || end == f->value || !isfinite(v) || v < lo || v > hi) {
        cli_error(cmd, 0, "%s: bad value '%s' (a number in [%g, %g])", f->name, f->value ? f->value : "", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_threads(const char *cmd, const cli_flag *f) {
    long long t = 0;
    if (f && f->value && cli_int(cmd, f, 0, 1024, &t)) return -1;
    advex_set_threads((int)t);
    return 0;
}

int cli_load_model(const char *cmd, const char *model_path, const char *arch, uint64_t seed, advex_model **m) {
    advex_status st;
    if (model_path && *model_path) {
        st = advex_model_load_onnx(model_path, m);
        if (st) return cli_fail(cmd, st);
        if (advex_model_output_was_prob(*m))
            fprintf(stderr, "advex %s: warning: %s ends in Softmax/LogSoftmax; attacking the logits before it "
                            "(gradients through probabilities can mask the attack)\n", cmd, model_path);
        return 0;
    }
    if (arch && *arch) {
        st = advex_model_build(arch, seed, m);
        if (st) return cli_fail(cmd, st);
        return 0;
    }
    return cli_error(cmd, CLI_EXIT_USAGE, "no model: give --model FILE.onnx");
}

int cli_load_data(const char *cmd, const char *spec, const char *data_dir, long long limit, advex_dataset *d) {
    advex_status st = advex_dataset_load(spec, data_dir, limit, d);
    if (st) return cli_fail(cmd, st);
    if (d->n == 0) return cli_error(cmd, CLI_EXIT_FAIL, "%s: no examples", spec);
    return 0;
}

void cli_progress_init(cli_progress *p, const char *label, int quiet) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->quiet = quiet;
    p->tty = isatty(STDERR_FILENO);
    p->t0 = p->last = cli_now();
    p->last_decile = 0;
}

void cli_progress_update(cli_progress *p, int64_t done, int64_t total, const char *extra) {
    if (p->quiet || total <= 0) return;
    double t = cli_now(), el = t - p->t0;
    double rate = el > 0 ? (double)done / el : 0, eta = rate > 0 ? (double)(total - done) / rate : 0;
    if (p->tty) {
        if (t - p->last < 0.1 && done < total) return;
        p->last = t;
        int w = 24, fill = (int)(w * (double)done / (double)total);
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = '\0';
        fprintf(stderr, "\r%s [%s] %lld/%lld %.0f/s ETA %.0fs %s\033[K", p->label, bar, (long long)done,
                (long long)total, rate, eta, extra ? extra : "");
    } else {
        int dec = (int)(10 * done / total);
        if (dec <= p->last_decile && done < total) return;
        p->last_decile = dec;
        fprintf(stderr, "%s %lld/%lld (%.0f/s, %.1fs) %s\n", p->label, (long long)done, (long long)total, rate, el,
                extra ? extra : "");
    }
    fflush(stderr);
}

void cli_progress_done(cli_progress *p) {
    if (!p->quiet && p->tty) fputc('\n', stderr);
}

int cli_eval_progress(void *user, int64_t done, int64_t total) {
    cli_progress_update((cli_progress *)user, done, total, NULL);
    return cli_interrupted;
}

int cli_write_file_atomic(const char *cmd, const char *path, const char *text, size_t len) {
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return cli_error(cmd, CLI_EXIT_FAIL, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return cli_error(cmd, CLI_EXIT_FAIL, "%s: cannot write: %s", path, strerror(e));
    }
    size_t off = 0;
    int err = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) { if (errno == EINTR) continue; err = errno; break; }
        off += (size_t)w;
    }
    if (!err && fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        free(tmp);
        return cli_error(cmd, CLI_EXIT_FAIL, "%s: cannot write: %s", path, strerror(err));
    }
    free(tmp);
    return 0;
}

void cli_buf_printf(cli_buf *b, const char *fmt, ...) {
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

void cli_buf_free(cli_buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

void cli_print_eval_table(FILE *f, int64_t n, int64_t clean_correct, const advex_eval_result *r, int count) {
    fprintf(f, "examples: %lld   clean accuracy: %.2f%%\n", (long long)n, 100.0 * (double)clean_correct / (double)n);
    fprintf(f, "%-10s %8s %16s %14s %10s\n", "attack", "eps", "robust accuracy", "success rate", "seconds");
    for (int i = 0; i < count; i++)
        fprintf(f, "%-10s %8.4f %15.2f%% %13.2f%% %10.2f\n", advex_attack_name(r[i].attack), (double)r[i].eps,
                100.0 * r[i].robust_accuracy, 100.0 * r[i].success_rate, r[i].seconds);
}

static void json_string(cli_buf *b, const char *s) {
    cli_buf_printf(b, "\"");
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') cli_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20) cli_buf_printf(b, "\\u%04x", ch);
        else cli_buf_printf(b, "%c", ch);
    }
    cli_buf_printf(b, "\"");
}

void cli_eval_json(cli_buf *b, const char *model, const char *data, int64_t n, int64_t clean_correct,
                   const advex_eval_result *r, int count) {
    cli_buf_printf(b, "{\n  \"model\": ");
    json_string(b, model);
    cli_buf_printf(b, ",\n  \"data\": ");
    json_string(b, data);
    cli_buf_printf(b, ",\n  \"n\": %lld,\n  \"clean_accuracy\": %.6f,\n  \"results\": [", (long long)n,
                   (double)clean_correct / (double)n);
    for (int i = 0; i < count; i++)
        cli_buf_printf(b,
                       "%s\n    {\"attack\": \"%s\", \"eps\": %.9g, \"robust_accuracy\": %.6f, \"success_rate\": %.6f, "
                       "\"seconds\": %.4f}",
                       i ? "," : "", advex_attack_name(r[i].attack), (double)r[i].eps, r[i].robust_accuracy,
                       r[i].success_rate, r[i].seconds);
    cli_buf_printf(b, "\n  ]\n}\n");
}

int cli_check_writable(const char *cmd, const char *path) {
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return cli_error(cmd, CLI_EXIT_FAIL, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return cli_error(cmd, CLI_EXIT_FAIL, "%s: cannot write: %s", path, strerror(e));
    }
    close(fd);
    unlink(tmp);
    free(tmp);
    return 0;
}
