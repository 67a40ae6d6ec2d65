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
#define CLI_EXIT_GATE 3   /* eval: robust accuracy below --min-robust-accuracy (outputs written) */

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
/* --attack A,B,... into kinds (at most max, *n of them); 0, or an exit code after one line
 * naming --attack. */
int cli_parse_attacks(const char *cmd, const char *list, advex_attack_kind *kinds, int max, int *n);
/* Print "advex CMD: <advex_last_error or status text>" and return CLI_EXIT_FAIL (or USAGE
 * for ADVEX_ERR_ARG). */
int cli_fail(const char *cmd, advex_status st);

/* Integer / float flag values with range checks; on error print and return -1. */
int cli_int(const char *cmd, const cli_flag *f, long long lo, long long hi, long long *out);
int cli_float(const char *cmd, const cli_flag *f, double lo, double hi, double *out);

/* Load a model from --model FILE or build --arch NAME (seeded). */
int cli_load_model(const char *cmd, const char *model_path, const char *arch, uint64_t seed, advex_model **m);
/* Load --data SPEC with --data-dir and --limit; a bare named set means its test split
 * (cli_load_data) or `split` (cli_load_data_split: "train" for training). */
int cli_load_data(const char *cmd, const char *spec, const char *data_dir, long long limit, advex_dataset *d);
int cli_load_data_split(const char *cmd, const char *spec, const char *split, const char *data_dir, long long limit,
                        advex_dataset *d);
/* The flags every command takes (cli_parse fills this; it also applies --threads and
 * --max-memory): --quiet, --threads T (0 = all cores). */
typedef struct cli_common {
    int quiet;
    int threads;
    int threads_seen;
    advex_data_prep prep; /* --resize S, --crop C (commands with CLI_DATA_FLAGS); fit is on */
} cli_common;
extern cli_common cli_opts;
/* The data preprocessing flags of every command that reads data (cli_parse reads them into
 * cli_opts.prep; cli_load_data_for applies them). */
#define CLI_DATA_FLAGS                                                                                       \
    {"--resize", "S", "resize images so the shorter side is S (torchvision's Resize(S): bilinear with "       \
                      "PIL's antialiasing)", NULL, 0},                                                        \
    {"--crop", "C", "centre-crop images to C x C (torchvision's CenterCrop(C)); image folders default to the " \
                    "model's input size (shorter side resized to it, then centre-cropped)", NULL, 0}
/* The same for model m (split: what a bare named set means, "test" or "train"): the image
 * shape and labels are checked against it while loading (IDX headers before any data is
 * inflated), errors naming the file; --resize/--crop applied (cli_opts.prep), image folders
 * fitted to the model's input size when neither is given (a note on stderr unless --quiet),
 * and a warning when a folder's class count differs from the model's. */
int cli_load_data_for(const char *cmd, const char *spec, const char *split, const char *data_dir, long long limit,
                      const advex_model *m, advex_dataset *d);
/* The same for an expected shape (want may be NULL) instead of a model. */
int cli_load_data_want(const char *cmd, const char *spec, const char *split, const char *data_dir, long long limit,
                       const advex_data_expect *want, advex_dataset *d);

/* Progress display on stderr: a bar with rate and ETA on a terminal; otherwise a plain line
 * after the first update and then every ~10%; nothing when quiet. */
typedef struct cli_progress {
    const char *label;
    int quiet, tty;
    double t0, last;
    int last_decile;
    int printed;          /* a plain line was printed (not a terminal) */
    int64_t done0;        /* done before this process started (a resumed run): not in the rate */
} cli_progress;
void cli_progress_init(cli_progress *p, const char *label, int quiet);
void cli_progress_update(cli_progress *p, int64_t done, int64_t total, const char *extra);
void cli_progress_done(cli_progress *p);
int cli_eval_progress(void *user, int64_t done, int64_t total);
double cli_now(void);

/* Write text atomically (temporary file + rename). 0 on success, else prints an error. */
int cli_write_file_atomic(const char *cmd, const char *path, const char *text, size_t len);

/* Fail early (before long work) when output path (given by flag, may be NULL) cannot be
 * written: it exists and is not a regular file (exit 2; /dev/null is accepted and
 * discards), or no file can be created beside it (exit 1). Returns 0 or the exit code
 * after printing one line. cli_check_writable: the same without a flag name. */
int cli_check_output(const char *cmd, const char *flag, const char *path);
int cli_check_writable(const char *cmd, const char *path);

/* Every file a command reads and writes, checked together before any work (cli/outputs.c):
 * each output as by cli_check_output, and no output the same file as an input or as
 * another output (by device and inode when both exist, else by their canonical paths:
 * other spellings, symlinks and ../ included): exit 2 naming both flags. */
#define CLI_MAX_FILES 48
typedef struct cli_files {
    struct { const char *flag; char *path; int kind; } f[CLI_MAX_FILES];
    int n;
} cli_files;
void cli_files_in(cli_files *fs, const char *flag, const char *path);
/* The files a data spec reads: npy:X,Y / idx:X,Y, or the named set's files in its directory. */
void cli_files_data(cli_files *fs, const char *flag, const char *spec, const char *data_dir);
void cli_files_out(cli_files *fs, const char *flag, const char *path);
/* An output checked only against the others (its directory is checked elsewhere). */
void cli_files_out_unprobed(cli_files *fs, const char *flag, const char *path);
/* Run the checks; frees what the list holds. 0 or an exit code (one line printed). */
int cli_files_check(const char *cmd, cli_files *fs);


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

/* Attack options shared by attack and eval: CLI_ATTACK_FLAGS goes inside a command's flag
 * table; cli_attack_options reads them (and --attack, --target, --seed) into c. Returns 0 or
 * prints one error line and returns an exit code. */
#define CLI_ATTACK_FLAGS                                                                              \
    {"--steps", "K", "iterations (bim/pgd/mifgsm 10, apgd 100, cw 1000 per binary step, deepfool 50)", NULL, 0}, \
    {"--alpha", "A", "step size (fgsm-rs 1.25*eps, bim/mifgsm eps/K, pgd 2.5*eps/K)", NULL, 0},            \
    {"--restarts", "R", "pgd/apgd: runs from random starts; 0 = one run from x, no random start; fab: runs, "  \
                        "the first from x", NULL, 0},                                                      \
    {"--norm", "N", "linf, l2 or l1 (l1: apgd-ce, apgd-dlr, apgd-t, fab, fab-t, square, standard), for every " \
                    "attack (default: l2 for cw, which is L2 only; linf otherwise)", NULL, 0},             \
    {"--version", "V", "AutoAttack version: standard or plus (of the standard attack; default standard), or, "\
                       "for eval, rand in place of --attack (apgd-ce, apgd-dlr, 1 restart, --eot 20)", NULL, 0}, \
    {"--queries", "Q", "square: query budget per example (default 5000)", NULL, 0},                          \
    {"--p-init", "P", "square: initial fraction of pixels changed (default 0.8)", NULL, 0},                 \
    {"--momentum", "MU", "mifgsm: momentum decay (default 1.0)", NULL, 0},                                  \
    {"--topk", "K", "apgd-t/fab-t/standard: target classes (default 9)", NULL, 0},                          \
    {"--kappa", "K", "cw: confidence margin (default 0)", NULL, 0},                                         \
    {"--binary-steps", "B", "cw: binary search steps over c (default 9)", NULL, 0},                         \
    {"--c-init", "C", "cw: initial constant c (default 1e-3)", NULL, 0},                                    \
    {"--lr", "LR", "cw: Adam learning rate (default 0.01)", NULL, 0},                                       \
    {"--overshoot", "O", "deepfool: overshoot (default 0.02)", NULL, 0},                                    \
    {"--surrogate", "FILE", "transfer: craft on this ONNX model, evaluate on --model", NULL, 0},            \
    {"--uap-data", "D", "uap: data to compute the perturbation on", "fashion-mnist:train", 0},              \
    {"--uap-limit", "N", "uap: first N examples of --uap-data", "2000", 0},                                 \
    {"--uap-epochs", "E", "uap: passes over --uap-data", "5", 0},                                           \
    {"--uap-out", "FILE", "uap: write the perturbation here (.npy, float32 C x H x W)", NULL, 0},           \
    {"--eot", "K", "expectation over transformation (randomized models): every gradient is the mean of K " \
                   "forward/backward passes (default 1; eval --version rand: 20); gradient attacks only", NULL, 0}, \
    {"--no-checks", NULL, "skip the sanity checks (probability outputs, randomized model, zero or non-finite " \
                          "gradients, determinism)", NULL, 0}
int cli_attack_options(const char *cmd, cli_flag *f, int nflags, advex_attack_config *c);
/* Before running c->kind on m: the norm (--norm, else the attack's default) into c, then
 * advex_attack_check (in transfer mode when `transfer`). 0, or one error line and exit 2. */
int cli_attack_ready(const char *cmd, cli_flag *f, int nflags, const advex_model *m, int transfer,
                     advex_attack_config *c);
/* --surrogate: load it (or set *s = NULL when not given). 0 or an exit code. */
int cli_load_surrogate(const char *cmd, cli_flag *f, int nflags, advex_model *target, advex_model **s);
/* --uap-data (first --uap-limit examples, labelled) for the model's input; 0 or an exit code. */
int cli_load_uap_data(const char *cmd, cli_flag *f, int nflags, advex_model *m, advex_dataset *u);
/* uap (attack): compute delta (C*H*W, malloc'd into *delta) for c->eps on --uap-data, write
 * --uap-out if given and point c->uap_delta at it. 0 or an exit code. */
int cli_uap_prepare(const char *cmd, cli_flag *f, int nflags, advex_model *m, advex_attack_config *c, long long batch,
                    float **delta);
/* eval --uap-out: the last uap run's perturbation as .npy (nothing without a uap run). */
int cli_write_uap(const char *cmd, const advex_sweep *s, const char *out, const advex_model *m);
/* A failed run: "interrupted" and 130 for ^C, else cli_fail. */
int cli_fail_run(const char *cmd, advex_status st);
void cli_print_warnings(const char *cmd, unsigned bits);
/* attack: advex_eval_checks and its warnings printed (unless --no-checks). Returns the bits. */
unsigned cli_run_checks(const char *cmd, cli_flag *f, int nflags, advex_model *m, const advex_dataset *d,
                        const advex_attack_config *c);

/* eval --report DIR (cli/eval_report.c): the report's files as outputs of the command, for the
 * same-file checks (0 or an exit code); before any work, DIR is a writable directory or does
 * not exist and a staging directory can be made beside it (creates nothing). */
int cli_report_files(const char *cmd, cli_files *fs, const char *dir, const advex_attack_kind *kinds, int nk);
int cli_report_check(const char *cmd, const char *dir);

/* eval for other tools and CI (cli/eval_ci.c). */
#define CLI_EVAL_CI_FLAGS                                                                                      \
    {"--min-robust-accuracy", "X|A=X,...", "gate: exit 3 when the worst-case robust accuracy (X) or that of " \
                       "attack A (A=X) falls below X at any eps; X a fraction (0.45) or a percentage (45%)", NULL, 0}, \
    {"--junit", "FILE", "also write JUnit XML: one test case per attack and eps, failures under the gate", NULL, 0}, \
    {"--robustbench", "FILE", "also write RobustBench's model-info JSON (one eps)", NULL, 0}
/* --version rand (a protocol that sets the attacks): its attacks into kinds (n) and its settings
 * into c; other versions (standard, plus) are the standard attack's (cli_attack_options).
 * 0 or an exit code. */
int cli_eval_version(const char *cmd, cli_flag *f, int nf, advex_attack_kind *kinds, int max, int *n,
                     advex_attack_config *c);
/* Before any work: the gate parsed into g (g->n 0 without it), --robustbench needs one eps,
 * --eot a gradient attack; then (all checks passed) --junit and --robustbench added to fs.
 * 0 or an exit code. */
int cli_eval_ci_prepare(const char *cmd, cli_flag *f, int nf, const advex_attack_kind *kinds, int nk, int n_eps,
                        cli_files *fs, advex_gate *g);
/* After the sweep: AutoAttack's log lines on stderr (unless --quiet; not without a --version
 * flag, i.e. not through a --target), --junit and --robustbench
 * written, then the gate: CLI_EXIT_OK, CLI_EXIT_GATE (one line per failure) or an error exit. */
int cli_eval_ci_finish(const char *cmd, cli_flag *f, int nf, const advex_sweep *s, const char *model,
                       const char *data, unsigned warn, const advex_gate *g);

/* A sweep's progress bars (advex_sweep_config.progress, user: a cli_sweep_ui with run -1): a
 * new bar when the run changes; non-zero once interrupted. Finish with cli_progress_done(&bar)
 * when run >= 0. */
typedef struct cli_sweep_ui {
    cli_progress bar;
    int run;
    char label[48];
} cli_sweep_ui;
int cli_sweep_progress(void *user, const advex_sweep_progress *p);

int cmd_png(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* cli/cmd_target.c: attack and eval through a --target URL|exec:COMMAND (a --target whose
 * value is an endpoint; any other value is the targeted attack's class). */
int cli_target_wanted(int argc, char **argv);
int cli_target_main(const char *cmd, int argc, char **argv);

#endif
