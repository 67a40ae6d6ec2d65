/* The formats AutoAttack users already parse: AutoAttack's own log lines (autoattack.py's
 * formats, group by group of results at one eps and norm) and RobustBench's model-info JSON
 * (model_info/DATASET/THREAT_MODEL/NAME.json). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "internal.h"

/* autoattack.py's norm names */
static const char *aa_norm(advex_norm n) { return n == ADVEX_NORM_L2 ? "L2" : n == ADVEX_NORM_L1 ? "L1" : "Linf"; }

static int same_group(const advex_eval_result *a, const advex_eval_result *b) {
    return a->eps == b->eps && a->norm == b->norm;
}

/* Python's '{:.2%}' */
static double pct(int64_t k, int64_t n) { return n ? 100.0 * (double)k / (double)n : 0.0; }

/* "APGD-CE": AutoAttack's attack.upper() */
static void upper_name(advex_attack_kind k, char out[32]) {
    snprintf(out, 32, "%s", advex_attack_name(k));
    for (char *p = out; *p; p++) *p = (char)toupper((unsigned char)*p);
}

/* The block of the group that starts at result first. */
static void log_group(advex_buf *b, const advex_eval_result *r, int count, int first) {
    const advex_eval_result *g0 = &r[first], *last = NULL;
    int64_t n = g0->n;
    double t = 0, maxp = 0;
    int64_t nans = 0;
    float amax = -INFINITY, amin = INFINITY;
    char name[32];
    advex_buf_printf(b, "initial accuracy: %.2f%%\n", pct(g0->clean_correct, n));
    for (int i = first; i < count; i++) {
        if (!same_group(&r[i], g0)) continue;
        t += r[i].seconds;
        if (r[i].attack != ADVEX_ATTACK_NONE) {
            if (r[i].n_stages > 0) {
                int64_t left = r[i].clean_correct;
                double ts = t - r[i].seconds; /* the group's time before this run */
                for (int s = 0; s < r[i].n_stages; s++) {
                    left -= r[i].stage_removed[s];
                    ts += r[i].stage_seconds[s];
                    upper_name(r[i].stage_attack[s], name);
                    advex_buf_printf(b, "robust accuracy after %s: %.2f%% (total time %.1f s)\n", name, pct(left, n), ts);
                }
            } else {
                upper_name(r[i].attack, name);
                advex_buf_printf(b, "robust accuracy after %s: %.2f%% (total time %.1f s)\n", name,
                                 pct(r[i].robust_all, n), t);
            }
        }
        if (r[i].max_pert > maxp) maxp = r[i].max_pert;
        nans += r[i].nan_count;
        if (r[i].adv_max > amax) amax = r[i].adv_max;
        if (r[i].adv_min < amin) amin = r[i].adv_min;
        last = &r[i];
    }
    advex_buf_printf(b, "max %s perturbation: %.5f, nan in tensor: %lld, max: %.5f, min: %.5f\n",
                     aa_norm(g0->norm), maxp, (long long)nans, (double)amax, (double)amin);
    advex_buf_printf(b, "robust accuracy: %.2f%%\n", pct(last->robust_all, n));
}

advex_status advex_eval_autoattack_log(const advex_eval_result *r, int count, char **text) {
    *text = NULL;
    advex_buf b = {0};
    int groups = 0;
    for (int i = 0; i < count; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = same_group(&r[i], &r[j]);
        groups += !seen;
    }
    for (int i = 0; i < count; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = same_group(&r[i], &r[j]);
        if (seen) continue;
        char e[32];
        if (groups > 1)
            advex_buf_printf(&b, "eps: %s (%s)\n", advex_float_str(r[i].eps, e),
                             r[i].norm == ADVEX_NORM_L2 ? "l2" : r[i].norm == ADVEX_NORM_L1 ? "l1" : "linf");
        log_group(&b, r, count, i);
    }
    if (count == 0) advex_buf_printf(&b, "%s", "");
    return advex_buf_take(&b, text);
}

/* ---- RobustBench --------------------------------------------------------------------------- */

/* "8/255" as given; else the nearest k/255 (L-inf) or the number (L2). */
static void eps_string(const char *given, float eps, advex_norm norm, char out[64]) {
    if (given && strchr(given, '/') && strlen(given) < 64) {
        snprintf(out, 64, "%s", given);
        return;
    }
    if (norm == ADVEX_NORM_LINF) {
        snprintf(out, 64, "%ld/255", lround((double)eps * 255.0));
        return;
    }
    char buf[32];
    snprintf(out, 64, "%s", advex_float_str(eps, buf));
}

advex_status advex_eval_robustbench_json(const advex_eval_result *r, int count, const char *eps_text,
                                         const char *dataset, unsigned warnings, char **json) {
    *json = NULL;
    if (count < 1) return advex_set_error(ADVEX_ERR_ARG, "robustbench: no results");
    if (r[0].norm == ADVEX_NORM_L1)
        return advex_set_error(ADVEX_ERR_ARG, "robustbench: RobustBench has no L1 threat model (Linf, L2)");
    const advex_eval_result *worst = &r[0];
    for (int i = 1; i < count; i++) {
        if (!same_group(&r[i], &r[0]))
            return advex_set_error(ADVEX_ERR_ARG, "robustbench: the results span several eps or norms (RobustBench's "
                                   "model info is for one eps and one threat model)");
        if (r[i].robust_all < worst->robust_all) worst = &r[i];
    }
    char buf[64];
    cJSON *o = cJSON_CreateObject();
    if (!o) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (JSON output)");
    static const char *const described[] = {"link", "name", "authors", "additional_data"};
    for (size_t i = 0; i < sizeof described / sizeof *described; i++) cJSON_AddNullToObject(o, described[i]);
    /* RobustBench's number_forward_passes is the defence's own cost per prediction: the network
     * passes it makes to classify one input (3 for an ensemble of three, model_info's
     * Chen2020Adversarial; 2 for MixedNUTS' two base classifiers), not the attack's. advex
     * classifies every example with one pass of the model's graph, a randomized one included
     * (one draw per prediction, as AutoAttack judges it); EOT's K passes are the attacker's
     * cost (AutoAttack's rand version on a 1-pass model is still listed as 1). An ensemble or
     * an average of draws built into the ONNX graph is one graph pass here: the user who
     * knows it edits the number, like the descriptive fields left null below. */
    cJSON_AddNumberToObject(o, "number_forward_passes", 1);
    cJSON_AddStringToObject(o, "dataset", dataset ? dataset : "");
    cJSON_AddNullToObject(o, "venue");
    cJSON_AddNullToObject(o, "architecture");
    eps_string(eps_text, r[0].eps, r[0].norm, buf);
    cJSON_AddStringToObject(o, "eps", buf);
    snprintf(buf, sizeof buf, "%.2f", pct(r[0].clean_correct, r[0].n));
    cJSON_AddStringToObject(o, "clean_acc", buf);
    cJSON_AddNullToObject(o, "reported");
    snprintf(buf, sizeof buf, "%.2f", pct(worst->robust_all, worst->n));
    cJSON_AddStringToObject(o, "autoattack_acc", buf);
    cJSON_AddStringToObject(o, "threat_model", r[0].norm == ADVEX_NORM_L2 ? "L2" : "Linf");
    unsigned bad = ADVEX_EVAL_WARN_PROB_OUTPUT | ADVEX_EVAL_WARN_ZERO_GRAD | ADVEX_EVAL_WARN_BLACKBOX_WINS |
                   ADVEX_EVAL_WARN_RANDOMIZED | ADVEX_EVAL_WARN_NONFINITE_GRAD;
    for (int i = 0; i < count; i++) warnings |= r[i].warnings;
    cJSON_AddBoolToObject(o, "unreliable", (warnings & bad) != 0);
    return advex_json_take(o, json);
}
