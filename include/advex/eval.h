/* Robust accuracy over a data set: clean accuracy, robust accuracy (a clean-misclassified
 * example counts as non-robust, AutoAttack's convention) and success rate over the
 * correctly classified examples. */
#ifndef ADVEX_EVAL_H
#define ADVEX_EVAL_H

#include <stdint.h>
#include "status.h"
#include "model.h"
#include "data.h"
#include "attack.h"

#ifdef __cplusplus
extern "C" {
#endif
ADVEX_API_BEGIN

/* Warnings raised by the evaluation checks (bits of advex_eval_result.warnings). */
#define ADVEX_EVAL_WARN_PROB_OUTPUT 1u       /* outputs look like probabilities, not logits */
#define ADVEX_EVAL_WARN_ZERO_GRAD 2u         /* the input gradient is zero for many examples */
#define ADVEX_EVAL_WARN_BLACKBOX_WINS 4u     /* Square beat the white-box attacks by more than the
                                                masking margin (advex_eval_flag_masking) */
#define ADVEX_EVAL_WARN_NONDETERMINISTIC 8u  /* two runs with the same seed differ */
#define ADVEX_EVAL_WARN_RANDOMIZED 16u       /* repeated forward passes of one input differ
                                                (AutoAttack's check_randomized) */
#define ADVEX_EVAL_WARN_NONFINITE_GRAD 32u   /* an input gradient has NaN or Inf entries */
#define ADVEX_EVAL_WARN_LAST ADVEX_EVAL_WARN_NONFINITE_GRAD /* the highest bit, for loops */

#define ADVEX_EVAL_MAX_STAGES ADVEX_ATTACK_MAX_STAGES

typedef struct advex_eval_result {
    advex_attack_kind attack;
    float eps;
    int64_t n;               /* examples evaluated */
    int64_t clean_correct;
    int64_t robust_correct;  /* correct on clean AND on adversarial */
    double robust_accuracy;  /* robust_correct / n */
    double success_rate;     /* 1 - robust_correct / clean_correct (0 if none correct) */
    double seconds;
    /* Perturbation norms of the successful examples (clean-correct, now misclassified), in
     * the attack's norm (advex_attack_norm): reported for every attack, the headline for
     * the minimal-perturbation ones (C&W, DeepFool). */
    advex_norm norm;
    int64_t norm_count;
    double norm_median, norm_mean;
    /* Queries (forward passes) of the successful examples: Square, and standard's Square
     * stage. queries_count 0 when the attack does not count queries. */
    int64_t queries_count;
    double queries_mean, queries_median;
    /* standard: what each stage removed (examples it turned non-robust) */
    int n_stages;
    advex_attack_kind stage_attack[ADVEX_EVAL_MAX_STAGES];
    int64_t stage_removed[ADVEX_EVAL_MAX_STAGES];
    double stage_seconds[ADVEX_EVAL_MAX_STAGES]; /* the time each stage took, scaled so that the
                             stages add up to `seconds` (several processes: their shares) */
    unsigned warnings;       /* ADVEX_EVAL_WARN_* found while evaluating */
    int transfer;            /* 1 if crafted on a surrogate model (advex_eval_transfer) */
    /* Targeted attacks: examples the model classifies as their target afterwards (of n);
     * -1 for an untargeted attack. */
    int64_t target_hits;
    /* Robust against this attack and every earlier one of the sweep at the same eps and norm,
     * example by example (AutoAttack's running figure, the worst case so far); outside a
     * sweep, robust_correct. */
    int64_t robust_all;
    /* The returned adversarial examples, all n of them (AutoAttack's final check): the
     * largest perturbation in the attack's norm, the count of NaN entries, the largest and
     * smallest finite value. */
    double max_pert;
    int64_t nan_count;
    float adv_max, adv_min;
    /* Through a target (advex/target.h): images sent to it, clean queries included (what the
     * server counts); 0 for a local model. */
    int64_t queries_total;
} advex_eval_result;

/* Called after each batch (done, total); return non-zero to stop (ADVEX_ERR_INTERRUPTED). */
typedef int (*advex_progress_fn)(void *user, int64_t done, int64_t total);

/* Clean accuracy of m on d (batch size `batch`). */
advex_status advex_eval_clean(advex_model *m, const advex_dataset *d, int64_t batch,
                              int64_t *correct);

/* Attack every example of d with c and count. adv_out (n*C*H*W floats) may be NULL;
 * when given it receives the adversarial examples. */
advex_status advex_eval_attack(advex_model *m, const advex_dataset *d,
                               const advex_attack_config *c, int64_t batch,
                               advex_progress_fn progress, void *user, float *adv_out,
                               advex_eval_result *res);

/* Optional per-example outputs of advex_eval_run; every pointer may be NULL. */
typedef struct advex_eval_outputs {
    float *adv;          /* (n, C, H, W): the adversarial examples */
    int32_t *clean_pred; /* (n): argmax of the model on the clean examples */
    int32_t *adv_pred;   /* (n): argmax of the model on the adversarial examples */
    float *clean_conf;   /* (n): softmax probability of clean_pred */
    float *adv_conf;     /* (n): softmax probability of adv_pred */
} advex_eval_outputs;

/* advex_eval_attack (surrogate NULL) or advex_eval_transfer (crafted on surrogate in transfer
 * mode, judged on m)
 * with per-example predictions and confidences, for per-class counts, confusion matrices and
 * image grids (advex/report.h). out may be NULL. */
advex_status advex_eval_run(advex_model *m, advex_model *surrogate, const advex_dataset *d,
                            const advex_attack_config *c, int64_t batch, advex_progress_fn progress,
                            void *user, const advex_eval_outputs *out, advex_eval_result *res);

/* One example's outcome in one evaluation (advex_eval_examples): what advex_eval_summarize
 * counts, what per-example files, curves and state files hold. A plain struct of fixed size:
 * processes of a sharded run exchange arrays of it as bytes. */
typedef struct advex_eval_example {
    int32_t clean_pred, adv_pred; /* argmax of the judged model on x and on x' */
    float clean_conf, adv_conf;   /* their softmax probabilities */
    int32_t target;               /* the class a targeted attack aimed at; -1 untargeted */
    int32_t stage;                /* standard: 1-based stage that produced x'; 0 none */
    int64_t queries;              /* queries spent (Square, HSJ, SimBA, standard); 0 not counted */
    double norms[3];              /* L-inf, L2 and L1 norms of x' - x */
    int64_t nan_count;            /* NaN entries of x' (AutoAttack's final check) */
    float adv_min, adv_max;       /* smallest and largest finite entry of x' (min > max: none) */
    float stage_seconds[ADVEX_EVAL_MAX_STAGES]; /* advex_attack_info.stage_seconds */
} advex_eval_example;

/* A shard of an evaluation: examples [lo, hi) of d crafted as advex_eval_run does (on
 * `surrogate` when not NULL, judged on m), their outcomes into ex[lo..hi) (ex has d->n
 * entries) and, when adv is not NULL, x' into rows lo..hi of adv (d->n rows). Per-example
 * randomness is seeded by the index in d and batches are [lo, lo + batch), ...: a shard whose
 * lo is a multiple of `batch` runs exactly the batches of a whole run and gives its outcomes
 * bit for bit (the engine's arithmetic depends on a batch's size in the last bits, so other
 * splits agree only to rounding). progress: (done, hi - lo) after each batch. */
advex_status advex_eval_examples(advex_model *m, advex_model *surrogate, const advex_dataset *d,
                                 const advex_attack_config *c, int64_t batch, int64_t lo, int64_t hi,
                                 advex_progress_fn progress, void *user, advex_eval_example *ex, float *adv);
/* The result of attack c (crafted on a surrogate when transfer is 1) from the outcomes
 * ex[0..d->n) of every example: counts, norms, queries, stages, target hits, AutoAttack's
 * final check, the masking rule; res->seconds = seconds. What advex_eval_run reports. */
advex_status advex_eval_summarize(const advex_dataset *d, const advex_attack_config *c, int transfer,
                                  const advex_eval_example *ex, double seconds, advex_eval_result *res);

/* Transfer: craft with c on `surrogate`, evaluate (clean and adversarial) on `target`.
 * Both models must take the same input shape and classes. The attack runs in transfer mode
 * (c->no_early_stop set on a copy: every step on every example, see advex/attack.h);
 * standard and deepfool are refused (ADVEX_ERR_ARG). */
advex_status advex_eval_transfer(advex_model *surrogate, advex_model *target, const advex_dataset *d,
                                 const advex_attack_config *c, int64_t batch, advex_progress_fn progress,
                                 void *user, float *adv_out, advex_eval_result *res);

/* Fooling rate of a universal perturbation delta (C,H,W) on d: the fraction of examples whose
 * prediction changes under x' = clip(x + delta); robust accuracy and success rate in res. */
advex_status advex_eval_uap(advex_model *m, const advex_dataset *d, const float *delta, float eps,
                            int64_t batch, double *fooling_rate, advex_eval_result *res);

/* Cheap checks that the evaluation is not fooling its user, on the first few examples of d
 * (AutoAttack's checks.py and advex's own): a randomized model (five forward passes differ;
 * not reported, nor the determinism check, when c attacks with EOT, c->eot > 1),
 * probability-like outputs, zero input gradients for many examples, non-finite input
 * gradients, and (with c) two runs of
 * the attack with the same seed differing (on 8 examples, its budget capped at 20 steps, 2
 * binary steps, 200 queries, 2 target classes, 1 restart). Adds ADVEX_EVAL_WARN_* bits to
 * *warnings. */
advex_status advex_eval_checks(advex_model *m, const advex_dataset *d, const advex_attack_config *c,
                               unsigned *warnings);
/* The gradient-masking check, AutoAttack's rule (checks.check_square_sr: warn when Square
 * lowers robust accuracy by more than 0.2% below the strongest white-box attack) with a
 * floor for small evaluations: the black-box attack must find more than
 * advex_eval_masking_margin(n) = max(3, ceil(0.002 n)) examples that the white-box attacks at
 * the same eps and norm missed.
 *   standard: its Square stage removed more than the margin (every earlier stage is
 *             white-box and ran on the same examples);
 *   square:   its robust count is more than the margin below the lowest robust count of
 *             the iterative white-box attacks (bim, pgd, mifgsm, apgd-ce, apgd-dlr, apgd-t)
 *             among r[0..count) with the same eps, norm and n, none of them transfer.
 *             Single-step FGSM and the minimal-perturbation attacks are not a benchmark:
 *             Square beating them is expected of any model.
 * Sets ADVEX_EVAL_WARN_BLACKBOX_WINS in the flagged results' warnings; returns how many it
 * flagged. advex_eval_attack and advex_eval_run apply it to a standard run themselves. */
int64_t advex_eval_masking_margin(int64_t n);
int advex_eval_flag_masking(advex_eval_result *r, int count);
/* ---- sweeps: every attack of a list at every eps, what `advex eval` runs -------------------- */

#define ADVEX_SWEEP_MAX_ATTACKS 16
#define ADVEX_SWEEP_MAX_EPS 64

/* Where a sweep is: run `run` of `runs` (attack-major: attack a at eps e is run a * n_eps + e),
 * `done` of `total` examples; reported with done = 0 when a run starts, then after every batch. */
typedef struct advex_sweep_progress {
    int run, runs;
    advex_attack_kind attack;
    float eps;
    int64_t done, total;
} advex_sweep_progress;
/* Return non-zero to stop the sweep (ADVEX_ERR_INTERRUPTED). */
typedef int (*advex_sweep_progress_fn)(void *user, const advex_sweep_progress *p);

/* A sharded sweep's gather (advex_sweep_config.gather, see there). */
typedef advex_status (*advex_sweep_gather_fn)(void *user, int run, advex_status st, advex_eval_example *ex, float *adv,
                                              int64_t n, int64_t dim);

struct advex_target; /* advex/target.h */

typedef struct advex_sweep_config {
    const advex_attack_kind *attacks; /* n_attacks attacks, in order */
    int n_attacks;
    const float *eps;                 /* n_eps radii (the attack's norm, input units) */
    int n_eps;
    advex_attack_config attack;       /* tuning shared by every run: norm, steps, target, seed...
                                         (kind and eps are set per run) */
    int default_norms;                /* 1: each attack runs in its own default norm
                                         (advex_attack_default_norm) instead of attack.norm */
    int64_t batch;                    /* examples per batch; <= 0: 256 */
    advex_model *surrogate;           /* craft on it, judge on the model (transfer); NULL: none */
    int checks;                       /* 1: advex_eval_checks before the first attack (default) */
    const advex_dataset *uap_data;    /* uap: the data the universal perturbation is computed on */
    int32_t uap_epochs;               /* uap: passes over uap_data; <= 0: 5 */
    int64_t uap_batch;                /* uap: mini-batch; <= 0: 128 */
    int64_t keep_rows;                /* > 0: keep what a report needs (advex_report_write):
                                         per-example predictions of every run, and keep_rows
                                         example rows (successes first) of each attack's
                                         largest eps for its image grid */
    advex_sweep_progress_fn progress; /* after every batch; may be NULL */
    void *user;
    const char *state;                /* a state file (docs/reports.md, "Resumable runs"): read
                                         when it exists (the runs and batches it records are not
                                         run again; a file written for another model, data set,
                                         eps list, attack list, seed, flags or advex version is
                                         refused, ADVEX_ERR_ARG naming the difference; a corrupt
                                         one ADVEX_ERR_FORMAT), rewritten atomically after every
                                         batch. NULL: none. Not with uap or keep_rows. */
    int state_read_only;              /* 1: read `state` but never write it (the processes of
                                         a sharded run but the one that writes it) */
    /* Sharding (one process of a distributed run; docs/scaling.md): this process runs examples
     * [shard_lo, shard_hi) of d (shard_hi <= 0: all of them; progress counts the shard's;
     * shard_lo a multiple of batch for results identical to one process, advex_eval_examples),
     * and after each run calls gather with its status and the run's outcomes (ex, d->n entries,
     * its shard filled) and, where the sweep keeps the run's examples (report grids), x' (adv,
     * d->n rows of dim). The gather completes ex (and adv, where outputs are written) from the
     * other shards and returns one status every process agrees on; the run then fails, or is
     * summarised from all of d's outcomes: every process holds the results of the whole run.
     * With a state file, each process resumes from what it records; the one whose shard starts
     * at example 0 writes it (its batches are the file's prefix), the others set
     * state_read_only. */
    int64_t shard_lo, shard_hi;
    advex_sweep_gather_fn gather;
    void *gather_user;
    /* A model behind an interface (advex/target.h) in place of the model: every run goes
     * through it as advex_target_eval does (score- and decision-based attacks, or transfer
     * from `surrogate`), the sweep's model argument is NULL, there are no sanity checks (they
     * need gradients), and a state file is keyed to the target (its spec, output kind,
     * classes, input shape) instead of weights: a resumed run sends no query for the
     * examples it records. Not with uap, keep_rows or sharding. NULL: the model. */
    struct advex_target *target;
} advex_sweep_config;

/* Defaults: no attacks, no eps, advex_attack_config_default, batch 256, checks on. */
void advex_sweep_config_default(advex_sweep_config *c);

/* The results of a sweep: opaque, read with the advex_sweep_* calls, freed with
 * advex_sweep_free. */
typedef struct advex_sweep advex_sweep;

/* Every attack at every eps on every example of d, judged on m: the clean accuracy, then
 * runs in attack-major order; the sanity checks (c->checks) and the gradient-masking rule
 * (advex_eval_flag_masking) raise warnings. Every run's configuration is checked before
 * the first one starts (ADVEX_ERR_ARG naming the attack). */
advex_status advex_eval_sweep(advex_model *m, const advex_dataset *d, const advex_sweep_config *c,
                              advex_sweep **out);
void advex_sweep_free(advex_sweep *s);
int advex_sweep_runs(const advex_sweep *s);
/* Run i (0 <= i < runs), NULL out of range. */
const advex_eval_result *advex_sweep_result(const advex_sweep *s, int i);
/* Every warning bit raised, by the checks and by any run. */
unsigned advex_sweep_warnings(const advex_sweep *s);
/* The outcome of every example (d->n of them) in run i, or NULL out of range. */
const advex_eval_example *advex_sweep_examples(const advex_sweep *s, int i);
/* The universal perturbation (C, H, W) run i applied, or NULL when it is not a uap run. */
const float *advex_sweep_uap_delta(const advex_sweep *s, int i);

/* Example-runs (a run's record of one example) read back from the state file instead of
 * being run again: 0 for a fresh run. */
int64_t advex_sweep_resumed(const advex_sweep *s);

/* ---- per example, minimal perturbations, curves ------------------------------------------- */

/* Attack a (0 <= a < attacks in the sweep) finds minimal perturbations
 * (advex_attack_is_min_norm): the norm, in its norm, of example i's minimal adversarial
 * perturbation found by its run at its largest eps; 0 for a clean-misclassified example,
 * INFINITY when it was never broken. NAN when a is not a minimal-perturbation attack or out
 * of range. */
double advex_sweep_min_norm(const advex_sweep *s, int a, int64_t i);
/* Attack a's robust accuracy against eps, from that one run: at t, the fraction of examples
 * whose minimal norm is > t. Points at the sweep's eps values (sorted) when it has three or
 * more, else 21 points evenly from 0 to the largest eps or the largest finite minimal norm,
 * whichever is smaller. Returns the number of points (*eps, *robust_accuracy point into the
 * sweep), 0 when a is not a minimal-perturbation attack. */
int advex_sweep_curve(const advex_sweep *s, int a, const float **eps, const double **robust_accuracy);

/* One JSON line per example and eps (docs/reports.md lists the fields): index, eps, label,
 * clean prediction, the first attack that broke it (or null), the final prediction and the
 * Linf, L2 and L1 norms of the example returned, and the same for each attack. d: the data
 * set the sweep ran on. Written atomically (advex_write_file) to path. */
advex_status advex_sweep_write_per_example(const advex_sweep *s, const advex_dataset *d, const char *path);

/* advex_eval_json of the sweep's results plus "curves": the robust-accuracy-vs-eps curve of
 * every minimal-perturbation attack (advex_sweep_curve). *json is malloc'd. */
advex_status advex_sweep_json(const advex_sweep *s, const char *model, const char *data, char **json);

/* ---- results as text --------------------------------------------------------------------------- */

/* The results table people read ("examples: N   clean accuracy: ..." and one row per result:
 * attack, eps, robust accuracy, success rate, seconds, notes). *text is malloc'd. */
advex_status advex_eval_table(const advex_eval_result *r, int count, char **text);
/* The results as JSON: {"model", "data", "n", "clean_accuracy", "warnings": [...],
 * "results": [{"attack", "eps", "norm", "robust_accuracy", "success_rate", "seconds",
 * "robust_correct", ...}]} (docs/reports.md lists every field). warnings: bits every result
 * shares (each result's own are listed with it). *json is malloc'd. */
advex_status advex_eval_json(const advex_eval_result *r, int count, const char *model, const char *data,
                             unsigned warnings, char **json);

/* One-line text for a warning bit. */
const char *advex_eval_warning_str(unsigned bit);

/* argmax of each row of logits (n, c). */
void advex_argmax_rows(const float *logits, int64_t n, int64_t c, int32_t *pred);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
