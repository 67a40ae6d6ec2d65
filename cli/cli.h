/* Shared pieces of the advex command-line tool: flag parsing, loading models and data,
 * progress display, output files. Each subcommand lives in its own cmd_*.c file. */
#ifndef ADVEX_CLI_H
#define ADVEX_CLI_H

#include <stdio.h>
#include "advex/advex.h"

/* Exit codes. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1   /* a runtime error: file, data, model */
#define CLI_EXIT_USAGE 2  /* a bad flag or value */

typedef struct cli_flag {
    const char *name;     /* "--eps" */
    const char *metavar;  /* "E" or NULL for a boolean switch */
    const char *help;
    const char *value;    /* parsed value (or default), "1" for a set switch */
    int seen;
} cli_flag;

typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage;    /* one line after "advex NAME " */
    int (*run)(int argc, char **argv);
} cli_command;

/* Parse argv (argv[0] is the command name) into flags. Prints help and returns 1 on
 * --help; prints one error line and returns -1 on a bad flag; 0 on success. */
int cli_parse(const char *cmd, const char *usage, const char *summary, int argc, char **argv,
              cli_flag *flags, int nflags);
cli_flag *cli_get(cli_flag *flags, int nflags, const char *name);
#define CLI_GET(flags, name) cli_get((flags), (int)(sizeof(flags) / sizeof *(flags)), (name))

/* Print "advex CMD: message" to stderr; returns code. */
int cli_error(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Print "advex CMD: <advex_last_error or status text>" and return CLI_EXIT_FAIL (or USAGE
 * for ADVEX_ERR_ARG). */
int cli_fail(const char *cmd, advex_status st);

/* Integer / float flag values with range checks; on error print and return -1. */
int cli_int(const char *cmd, const cli_flag *f, long long lo, long long hi, long long *out);
int cli_float(const char *cmd, const cli_flag *f, double lo, double hi, double *out);

/* Load a model from --model FILE or build --arch NAME (seeded). */
int cli_load_model(const char *cmd, const char *model_path, const char *arch, uint64_t seed, advex_model **m);
/* Load --data SPEC with --data-dir and --limit. */
int cli_load_data(const char *cmd, const char *spec, const char *data_dir, long long limit, advex_dataset *d);
/* Apply --threads (0 = all cores). */
int cli_threads(const char *cmd, const cli_flag *f);

/* Progress display on stderr: a bar with rate and ETA on a terminal, a plain line every
 * ~10% otherwise, nothing when quiet. */
typedef struct cli_progress {
    const char *label;
    int quiet, tty;
    double t0, last;
    int last_decile;
} cli_progress;
void cli_progress_init(cli_progress *p, const char *label, int quiet);
void cli_progress_update(cli_progress *p, int64_t done, int64_t total, const char *extra);
void cli_progress_done(cli_progress *p);
int cli_eval_progress(void *user, int64_t done, int64_t total);
double cli_now(void);

/* Write text atomically (temporary file + rename). 0 on success, else prints an error. */
int cli_write_file_atomic(const char *cmd, const char *path, const char *text, size_t len);

/* Fail early (before long work) when path cannot be created. */
int cli_check_writable(const char *cmd, const char *path);

/* Growable string buffer for JSON/CSV output. */
typedef struct cli_buf { char *s; size_t len, cap; int oom; } cli_buf;
void cli_buf_printf(cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_buf_free(cli_buf *b);

/* Set by SIGINT: long loops stop cleanly. */
extern volatile int cli_interrupted;
void cli_install_sigint(void);

int cmd_train(int argc, char **argv);
int cmd_attack(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* The eval table and JSON (shared by eval and demo). */
void cli_print_eval_table(FILE *f, int64_t n, int64_t clean_correct, const advex_eval_result *r, int count);
void cli_eval_json(cli_buf *b, const char *model, const char *data, int64_t n, int64_t clean_correct,
                   const advex_eval_result *r, int count);

#endif
