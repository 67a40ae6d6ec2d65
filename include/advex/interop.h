/* Evaluation results in the formats other tools already read: AutoAttack's log lines,
 * RobustBench's model-info JSON, JUnit XML for CI systems; and the robust-accuracy gate a
 * CI pipeline fails a build on (advex eval --min-robust-accuracy). All work on the results
 * of one sweep (advex_sweep_result(s, 0), advex_sweep_runs(s)). */
#ifndef ADVEX_INTEROP_H
#define ADVEX_INTEROP_H

#include <stdint.h>
#include "status.h"
#include "attack.h"
#include "eval.h"

#ifdef __cplusplus
extern "C" {
#endif
ADVEX_API_BEGIN

/* AutoAttack's log lines (fra31/auto-attack, autoattack.py, same formats) for each eps and
 * norm of the results, in order:
 *   initial accuracy: 84.20%
 *   robust accuracy after APGD-CE: 50.10% (total time 12.3 s)
 *   max Linf perturbation: 0.03137, nan in tensor: 0, max: 1.00000, min: 0.00000
 *   robust accuracy: 49.00%
 * "robust accuracy after X" is the running worst case (robust_all: robust to X and every
 * earlier attack at that eps); a run with stages (standard) prints one line per stage from
 * its own counts; total time adds up the runs so far at that eps. With more than one eps or
 * norm, each block opens with "eps: E (linf|l2|l1)"; the norm of "max ... perturbation" is
 * autoattack.py's name for it (Linf, L2, L1). *text is malloc'd. */
advex_status advex_eval_autoattack_log(const advex_eval_result *r, int count, char **text);

/* RobustBench's model-info JSON (model_info/<dataset>/<threat_model>/<name>.json) for
 * results at a single eps and norm: "clean_acc" and "autoattack_acc" (the worst case over
 * the attacks) as strings in percent with two decimals, "eps" as eps_text when it is a
 * fraction ("8/255"), else the nearest k/255 for L-inf and the number for L2,
 * "number_forward_passes" 1, "dataset", "threat_model" ("Linf" or "L2"), "unreliable" (true
 * when `warnings` has a check's warning: probabilities, zero or non-finite gradients,
 * randomized, black-box wins) and RobustBench's descriptive fields (link, name, authors,
 * additional_data, venue, architecture, reported) as null for the user to fill.
 * ADVEX_ERR_ARG when the results span several eps or norms, or are L1 (RobustBench has no L1
 * threat model). *json is malloc'd. */
advex_status advex_eval_robustbench_json(const advex_eval_result *r, int count, const char *eps_text,
                                         const char *dataset, unsigned warnings, char **json);

/* ---- the CI gate ------------------------------------------------------------------------- */

#define ADVEX_GATE_MAX 16
#define ADVEX_GATE_WORST (-1) /* advex_gate.attack[i]: the worst case over every attack */

/* Minimum robust accuracies: attack[i] (an advex_attack_kind, or ADVEX_GATE_WORST) must
 * reach min[i] (a fraction in [0,1]) at every eps. */
typedef struct advex_gate {
    int n;
    int attack[ADVEX_GATE_MAX];
    double min[ADVEX_GATE_MAX];
} advex_gate;

/* Parse "X" (the worst case) or "ATTACK=X" items, comma-separated; X a fraction in [0,1] or
 * a percentage ("45%"). Every attack named must be among kinds[0..nk) (the attacks that run).
 * ADVEX_ERR_ARG naming the item otherwise. */
advex_status advex_gate_parse(const char *spec, const advex_attack_kind *kinds, int nk, advex_gate *g);

/* The gate's verdict on results r[0..count): how many conditions fail (an attack at an eps,
 * or the worst case at an eps, below its minimum). text (may be NULL) receives one line per
 * failure ("robust accuracy 41.00% of apgd-ce at eps 0.0314 (linf) is below the gate
 * 45.00%"), malloc'd, or NULL when none fails. -1 when out of memory. */
int advex_gate_check(const advex_eval_result *r, int count, const advex_gate *g, char **text);

/* JUnit XML (the schema Jenkins, GitLab and GitHub Actions reporters read): one <testsuite>
 * named "advex eval", one <testcase> per result (classname "advex.eval.ATTACK", name
 * "ATTACK eps=E NORM", time = its seconds) and, when several attacks ran or the gate has a
 * worst-case minimum, one "worst case eps=E NORM" per eps; a <failure> for each under the
 * gate (g may be NULL: no failures); `warnings` go to the suite's <system-err>. Text is
 * XML-escaped. *xml is malloc'd. */
advex_status advex_eval_junit(const advex_eval_result *r, int count, const advex_gate *g, const char *model,
                              const char *data, unsigned warnings, char **xml);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
