/* Shared CLI plumbing: strict flag parsing (unknown flag = error), number parsing with
 * ranges, model/data loading with one-line errors, progress bars, atomic file output. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"

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
    fprintf(f, "\ncommon options (every command):\n");
    fprintf(f, "  %-22s %s\n", "--threads T", "threads (0 = all cores; default 0)");
    fprintf(f, "  %-22s %s\n", "--quiet", "no progress bars or status lines (results, warnings and errors stay)");
    fprintf(f, "  %-22s %s\n", "--max-memory SIZE", "cap memory: the model's (weights, activations, workspaces); data sets and image decodes are checked against it: 512M, 2G");
    fprintf(f, "  %-22s %s\n", "-h, --help", "show this help");
}

cli_common cli_opts;

/* --quiet, --threads T and --max-memory SIZE: taken by every command (not in its table). */
static int parse_common(const char *cmd, const char *a, const char *eq, size_t len, int argc, char **argv, int *i) {
    if (len == 7 && strncmp(a, "--quiet", 7) == 0) {
        if (eq) { cli_error(cmd, 0, "flag --quiet takes no value"); return -1; }
        cli_opts.quiet = 1;
        return 1;
    }
    int threads = len == 9 && strncmp(a, "--threads", 9) == 0;
    if (!threads && !(len == 12 && strncmp(a, "--max-memory", 12) == 0)) return 0;
    const char *name = threads ? "--threads" : "--max-memory";
    const char *v = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (!v) { cli_error(cmd, 0, "flag %s needs a value (%s)", name, threads ? "T" : "SIZE, e.g. 512M"); return -1; }
    if (threads) {
        cli_flag fl = {"--threads", "T", "", v, 1};
        long long t;
        if (cli_int(cmd, &fl, 0, 1024, &t)) return -1;
        cli_opts.threads = (int)t;
        cli_opts.threads_seen = 1;
        return 1;
    }
    int64_t bytes;
    if (advex_parse_size(v, &bytes)) { cli_error(cmd, 0, "--max-memory: %s", advex_last_error()); return -1; }
    advex_set_memory_limit(bytes);
    return 1;
}

/* --resize S and --crop C, where the command's table has them (CLI_DATA_FLAGS). */
static int data_flags(const char *cmd, cli_flag *flags, int nflags) {
    cli_opts.prep.fit = 1;
    cli_flag *rs = cli_get(flags, nflags, "--resize"), *cr = cli_get(flags, nflags, "--crop");
    long long v;
    if (rs && rs->value) {
        if (cli_int(cmd, rs, 1, 65536, &v)) return -1;
        cli_opts.prep.resize = v;
    }
    if (cr && cr->value) {
        if (cli_int(cmd, cr, 1, 65536, &v)) return -1;
        cli_opts.prep.crop = v;
    }
    return 0;
}

int cli_parse(const char *cmd, const char *usage, const char *summary, int argc, char **argv, cli_flag *flags,
              int nflags) {
    memset(&cli_opts, 0, sizeof cli_opts);
    cli_opts.quiet = cli_dist_rank() != 0; /* one progress display for a distributed job: rank 0's */
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
            int c = parse_common(cmd, a, eq, len, argc, argv, &i);
            if (c < 0) return -1;
            if (c) continue;
        }
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
    if (data_flags(cmd, flags, nflags)) return -1;
    advex_set_threads(cli_opts.threads);
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
    return cli_load_data_for(cmd, spec, "test", data_dir, limit, NULL, d);
}

int cli_load_data_split(const char *cmd, const char *spec, const char *split, const char *data_dir, long long limit,
                        advex_dataset *d) {
    return cli_load_data_for(cmd, spec, split, data_dir, limit, NULL, d);
}

int cli_load_data_for(const char *cmd, const char *spec, const char *split, const char *data_dir, long long limit,
                      const advex_model *m, advex_dataset *d) {
    advex_data_expect want = {0, 0, 0, 0};
    if (m) {
        int64_t chw[3];
        advex_model_input_shape(m, chw);
        want = (advex_data_expect){chw[0], chw[1], chw[2], advex_model_num_classes(m)};
    }
    return cli_load_data_want(cmd, spec, split, data_dir, limit, m ? &want : NULL, d);
}

int cli_load_data_want(const char *cmd, const char *spec, const char *split, const char *data_dir, long long limit,
                       const advex_data_expect *want, advex_dataset *d) {
    advex_status st = advex_dataset_load_prep(spec, split, data_dir, limit, want, &cli_opts.prep, d);
    if (st) return cli_fail(cmd, st);
    if (d->n == 0) return cli_error(cmd, CLI_EXIT_FAIL, "%s: no examples", spec);
    if (d->fitted > 0 && !cli_opts.quiet)
        fprintf(stderr, "advex %s: %s: %lld of %lld images resized (shorter side to %lld) and centre-cropped to "
                "%lldx%lld (width x height), the model's input size (--resize S --crop C choose)\n", cmd, spec,
                (long long)d->fitted, (long long)d->n, (long long)(d->h > d->w ? d->h : d->w), (long long)d->w,
                (long long)d->h);
    if (want && want->classes > 0 && strncmp(spec, "folder:", 7) == 0 && d->num_classes != want->classes)
        fprintf(stderr, "advex %s: warning: %s has %lld class folders but the model has %lld classes: labels are the "
                "folders' positions in name order (torchvision's ImageFolder), so give every class a folder (empty "
                "ones count)\n", cmd, spec, (long long)d->num_classes, (long long)want->classes);
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
    double rate = el > 0 ? (double)(done - p->done0) / el : 0, eta = rate > 0 ? (double)(total - done) / rate : 0;
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
        /* the first update, then every ~10%: a long run shows it started at once */
        if (dec <= p->last_decile && done < total && p->printed) return;
        p->printed = 1;
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
    cli_dist_progress(&done, &total); /* the whole job's, in a distributed run */
    cli_progress_update((cli_progress *)user, done, total, NULL);
    return cli_interrupted;
}

int cli_write_file_atomic(const char *cmd, const char *path, const char *text, size_t len) {
    advex_status st = advex_write_file(path, text, len);
    return st ? cli_fail(cmd, st) : 0;
}

int cli_check_output(const char *cmd, const char *flag, const char *path) {
    const char *f = flag ? flag : "", *sep = flag ? " " : "";
    if (!*path) return cli_error(cmd, CLI_EXIT_USAGE, "%s%s'': empty file name", f, sep);
    struct stat sb, nul;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        /* a device, directory, pipe or socket: rename() would replace the node itself */
        if (S_ISCHR(sb.st_mode) && stat("/dev/null", &nul) == 0 && sb.st_rdev == nul.st_rdev) return 0;
        return cli_error(cmd, CLI_EXIT_USAGE, "%s%s%s: exists and is not a regular file (%s); advex replaces only "
                         "regular files (/dev/null discards)", f, sep, path, S_ISDIR(sb.st_mode) ? "a directory" :
                         S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device" : "a pipe or socket");
    }
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

int cli_check_writable(const char *cmd, const char *path) { return cli_check_output(cmd, NULL, path); }

/* ---- attack options shared by attack and eval ---------------------------------------- */

static int opt_int(const char *cmd, cli_flag *f, int nf, const char *name, long long lo, long long hi, int32_t *out) {
    cli_flag *fl = cli_get(f, nf, name);
    if (!fl || !fl->seen) return 0;
    long long v;
    if (cli_int(cmd, fl, lo, hi, &v)) return CLI_EXIT_USAGE;
    *out = (int32_t)v;
    return 0;
}

static int opt_float(const char *cmd, cli_flag *f, int nf, const char *name, double lo, double hi, float *out) {
    cli_flag *fl = cli_get(f, nf, name);
    if (!fl || !fl->seen) return 0;
    double v;
    if (cli_float(cmd, fl, lo, hi, &v)) return CLI_EXIT_USAGE;
    *out = (float)v;
    return 0;
}

int cli_attack_options(const char *cmd, cli_flag *f, int nf, advex_attack_config *c) {
    cli_flag *fl;
    if ((fl = cli_get(f, nf, "--alpha")) && fl->value && advex_parse_eps(fl->value, &c->alpha))
        return cli_error(cmd, CLI_EXIT_USAGE, "--alpha: %s", advex_last_error());
    if ((fl = cli_get(f, nf, "--target")) && fl->value && advex_target_parse(fl->value, &c->target, &c->target_label))
        return cli_error(cmd, CLI_EXIT_USAGE, "--target: %s", advex_last_error());
    if ((fl = cli_get(f, nf, "--norm")) && fl->value && advex_norm_parse(fl->value, &c->norm))
        return cli_error(cmd, CLI_EXIT_USAGE, "--norm: %s", advex_last_error());
    /* rand is eval's protocol (cli_eval_version), not a version of standard */
    if ((fl = cli_get(f, nf, "--version")) && fl->value && strcmp(fl->value, "rand") != 0 &&
        advex_aa_version_parse(fl->value, &c->version))
        return cli_error(cmd, CLI_EXIT_USAGE, "--version: %s", advex_last_error());
    if (opt_int(cmd, f, nf, "--steps", 1, 1000000, &c->steps) || opt_int(cmd, f, nf, "--restarts", 0, 10000, &c->restarts) ||
        opt_int(cmd, f, nf, "--queries", 1, 100000000, &c->queries) || opt_int(cmd, f, nf, "--topk", 1, 100000, &c->topk) ||
        opt_int(cmd, f, nf, "--binary-steps", 1, 1000, &c->binary_steps) || opt_int(cmd, f, nf, "--eot", 1, 100000, &c->eot) ||
        opt_float(cmd, f, nf, "--momentum", 0, 1e6, &c->momentum) || opt_float(cmd, f, nf, "--kappa", 0, 1e6, &c->kappa) ||
        opt_float(cmd, f, nf, "--c-init", 1e-12, 1e9, &c->c_init) || opt_float(cmd, f, nf, "--lr", 1e-12, 1e6, &c->lr) ||
        opt_float(cmd, f, nf, "--overshoot", 0, 100, &c->overshoot) || opt_float(cmd, f, nf, "--p-init", 1e-6, 1, &c->p_init))
        return CLI_EXIT_USAGE;
    return 0;
}

int cli_attack_ready(const char *cmd, cli_flag *f, int nf, const advex_model *m, int transfer,
                     advex_attack_config *c) {
    static const float no_delta = 0.0f; /* uap's perturbation is computed later */
    cli_flag *fl = cli_get(f, nf, "--norm");
    if (!fl || !fl->value) c->norm = advex_attack_default_norm(c->kind);
    if (c->eot > 1 && (c->kind == ADVEX_ATTACK_SQUARE || c->kind == ADVEX_ATTACK_NONE))
        return cli_error(cmd, CLI_EXIT_USAGE, "--eot: %s takes no gradients (EOT is for gradient attacks)",
                         advex_attack_name(c->kind));
    advex_attack_config chk = *c;
    chk.no_early_stop = transfer;
    if (!chk.uap_delta) chk.uap_delta = &no_delta;
    advex_status st = advex_attack_check(m, &chk);
    return st ? cli_fail(cmd, st) : 0;
}

int cli_load_surrogate(const char *cmd, cli_flag *f, int nf, advex_model *target, advex_model **s) {
    *s = NULL;
    cli_flag *fl = cli_get(f, nf, "--surrogate");
    if (!fl || !fl->value) return 0;
    int r = cli_load_model(cmd, fl->value, NULL, 0, s);
    if (r) return r;
    int64_t a[3], b[3], ka = advex_model_num_classes(*s), kb = advex_model_num_classes(target);
    advex_model_input_shape(*s, a);
    advex_model_input_shape(target, b);
    if (memcmp(a, b, sizeof a) != 0 || ka != kb) { /* every number read before the surrogate is freed */
        advex_model_free(*s);
        *s = NULL;
        return cli_error(cmd, CLI_EXIT_FAIL, "%s: surrogate takes %lldx%lldx%lld with %lld classes but the model takes "
                         "%lldx%lldx%lld with %lld classes", fl->value, (long long)a[0], (long long)a[1], (long long)a[2],
                         (long long)ka, (long long)b[0], (long long)b[1], (long long)b[2], (long long)kb);
    }
    return 0;
}

int cli_load_uap_data(const char *cmd, cli_flag *f, int nf, advex_model *m, advex_dataset *u) {
    cli_flag *spec = cli_get(f, nf, "--uap-data"), *dir = cli_get(f, nf, "--data-dir"), *fl;
    long long limit = 2000, epochs;
    if ((fl = cli_get(f, nf, "--uap-limit")) && fl->value && cli_int(cmd, fl, 0, INT64_MAX, &limit)) return CLI_EXIT_USAGE;
    if ((fl = cli_get(f, nf, "--uap-epochs")) && fl->value && cli_int(cmd, fl, 1, 100000, &epochs)) return CLI_EXIT_USAGE;
    const char *uspec = spec && spec->value ? spec->value : "fashion-mnist:train";
    int r = cli_load_data_for(cmd, uspec, "test", dir ? dir->value : NULL, limit, m, u);
    if (r) return r;
    if (!u->y) {
        advex_dataset_free(u);
        return cli_error(cmd, CLI_EXIT_FAIL, "--uap-data %s: no labels (give npy:X,Y or idx:IMAGES,LABELS)", uspec);
    }
    return 0;
}

int cli_uap_prepare(const char *cmd, cli_flag *f, int nf, advex_model *m, advex_attack_config *c, long long batch,
                    float **delta) {
    const cli_flag *fl = cli_get(f, nf, "--uap-out");
    const char *out = fl ? fl->value : NULL;
    int r;
    if (out && (r = cli_check_output(cmd, "--uap-out", out))) return r;
    advex_dataset u = {0};
    if ((r = cli_load_uap_data(cmd, f, nf, m, &u))) return r;
    int64_t chw[3];
    advex_model_input_shape(m, chw);
    free(*delta);
    *delta = malloc((size_t)(chw[0] * chw[1] * chw[2]) * sizeof(float));
    if (!*delta) { advex_dataset_free(&u); return cli_error(cmd, CLI_EXIT_FAIL, "out of memory"); }
    advex_status st = advex_uap_compute(m, c, u.x, u.y, u.n, (int32_t)atoi(cli_get(f, nf, "--uap-epochs")->value), batch,
                                        *delta);
    advex_dataset_free(&u);
    if (st) return cli_fail(cmd, st);
    c->uap_delta = *delta;
    if (out) {
        if ((st = advex_npy_save_f32(out, *delta, 3, chw))) return cli_fail(cmd, st);
        if (!cli_opts.quiet)
            fprintf(stderr, "advex %s: wrote the universal perturbation (eps %g) to %s\n", cmd, (double)c->eps, out);
    }
    return 0;
}

int cli_write_uap(const char *cmd, const advex_sweep *s, const char *out, const advex_model *m) {
    const float *delta = NULL;
    float eps = 0;
    for (int i = 0; i < advex_sweep_runs(s); i++) /* the last uap run's */
        if (advex_sweep_uap_delta(s, i)) {
            delta = advex_sweep_uap_delta(s, i);
            eps = advex_sweep_result(s, i)->eps;
        }
    if (!delta) return 0;
    int64_t chw[3];
    advex_model_input_shape(m, chw);
    advex_status st = advex_npy_save_f32(out, delta, 3, chw);
    if (st) return cli_fail(cmd, st);
    if (!cli_opts.quiet) fprintf(stderr, "advex %s: wrote the universal perturbation (eps %g) to %s\n", cmd, (double)eps, out);
    return 0;
}

int cli_fail_run(const char *cmd, advex_status st) {
    if (st != ADVEX_ERR_INTERRUPTED) return cli_fail(cmd, st);
    cli_error(cmd, 0, "interrupted");
    return 130;
}

void cli_print_warnings(const char *cmd, unsigned bits) {
    if (cli_dist_rank() != 0) return; /* rank 0 prints them for a distributed job */
    for (unsigned b = 1; b <= ADVEX_EVAL_WARN_LAST; b <<= 1)
        if (bits & b) fprintf(stderr, "advex %s: warning: %s\n", cmd, advex_eval_warning_str(b));
}


unsigned cli_run_checks(const char *cmd, cli_flag *f, int nf, advex_model *m, const advex_dataset *d,
                        const advex_attack_config *c) {
    cli_flag *fl = cli_get(f, nf, "--no-checks");
    if (fl && fl->seen) return 0;
    unsigned bits = 0;
    if (advex_eval_checks(m, d, c, &bits)) return 0; /* a failing check is not fatal: the run reports errors */
    /* the load already warned about a cut-off Softmax */
    if (advex_model_output_was_prob(m)) bits &= ~ADVEX_EVAL_WARN_PROB_OUTPUT;
    cli_print_warnings(cmd, bits);
    return bits;
}

int cli_parse_attacks(const char *cmd, const char *list, advex_attack_kind *kinds, int max, int *n) {
    *n = 0;
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        char name[64];
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, p, len);
        name[len] = '\0';
        if (*n >= max) return cli_error(cmd, CLI_EXIT_USAGE, "--attack: at most %d attacks", max);
        if (advex_attack_parse(name, &kinds[*n])) return cli_error(cmd, CLI_EXIT_USAGE, "--attack: %s", advex_last_error());
        (*n)++;
        if (!comma) return 0;
        p = comma + 1;
    }
}
