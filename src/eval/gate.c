/* The CI gate (minimum robust accuracies per attack or for the worst case, checked at every
 * eps) and JUnit XML, one test case per attack and eps, failures where the gate fails. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *norm_str(advex_norm n) { return n == ADVEX_NORM_L2 ? "l2" : n == ADVEX_NORM_L1 ? "l1" : "linf"; }

/* One value: "0.45" (a fraction) or "45%" (a percentage); 0 or -1. */
static int parse_min(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v)) return -1;
    if (*end == '%' && end[1] == '\0') v /= 100.0;
    else if (*end) return -1;
    if (v < 0 || v > 1) return -1;
    *out = v;
    return 0;
}

advex_status advex_gate_parse(const char *spec, const advex_attack_kind *kinds, int nk, advex_gate *g) {
    memset(g, 0, sizeof *g);
    if (!spec || !*spec) return advex_set_error(ADVEX_ERR_ARG, "--min-robust-accuracy: empty");
    for (const char *p = spec;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[96];
        if (len == 0 || len >= sizeof item)
            return advex_set_error(ADVEX_ERR_ARG, "--min-robust-accuracy: bad item in '%s'", spec);
        memcpy(item, p, len);
        item[len] = '\0';
        if (g->n >= ADVEX_GATE_MAX)
            return advex_set_error(ADVEX_ERR_ARG, "--min-robust-accuracy: at most %d items", ADVEX_GATE_MAX);
        char *eq = strchr(item, '=');
        const char *val = eq ? eq + 1 : item;
        int attack = ADVEX_GATE_WORST;
        if (eq) {
            *eq = '\0';
            advex_attack_kind k;
            if (advex_attack_parse(item, &k)) return advex_set_error(ADVEX_ERR_ARG, "--min-robust-accuracy: %s", advex_last_error());
            int runs = 0;
            for (int i = 0; i < nk; i++) runs |= kinds[i] == k;
            if (!runs)
                return advex_set_error(ADVEX_ERR_ARG, "--min-robust-accuracy: %s does not run in this evaluation "
                                       "(add it to --attack)", item);
            attack = (int)k;
        }
        if (parse_min(val, &g->min[g->n]))
            return advex_set_error(ADVEX_ERR_ARG, "--min-robust-accuracy: bad value '%s' (a fraction in [0,1] such "
                                   "as 0.45, or a percentage such as 45%%)", val);
        g->attack[g->n++] = attack;
        if (!comma) return ADVEX_OK;
        p = comma + 1;
    }
}

/* The worst case at r[i]'s eps and norm: the lowest running count among its group. */
static int64_t worst_at(const advex_eval_result *r, int count, int i) {
    int64_t w = r[i].robust_all;
    for (int j = 0; j < count; j++)
        if (r[j].eps == r[i].eps && r[j].norm == r[i].norm && r[j].robust_all < w) w = r[j].robust_all;
    return w;
}

/* i is the first result of its eps and norm. */
static int first_of_group(const advex_eval_result *r, int i) {
    for (int j = 0; j < i; j++)
        if (r[j].eps == r[i].eps && r[j].norm == r[i].norm) return 0;
    return 1;
}

static int below(int64_t k, int64_t n, double min) { return n > 0 && (double)k / (double)n < min - 1e-12; }

/* Minimum for result i (attack) or for the worst case (attack = ADVEX_GATE_WORST); -1: none. */
static double gate_min(const advex_gate *g, int attack) {
    double m = -1;
    for (int k = 0; g && k < g->n; k++)
        if (g->attack[k] == attack && g->min[k] > m) m = g->min[k];
    return m;
}

int advex_gate_check(const advex_eval_result *r, int count, const advex_gate *g, char **text) {
    advex_buf b = {0};
    int fails = 0;
    char e[32];
    for (int i = 0; i < count; i++) {
        double m = gate_min(g, (int)r[i].attack);
        if (m >= 0 && below(r[i].robust_correct, r[i].n, m)) {
            fails++;
            advex_buf_printf(&b, "robust accuracy %.2f%% of %s at eps %s (%s) is below the gate %.2f%%\n",
                             100.0 * (double)r[i].robust_correct / (double)r[i].n, advex_attack_name(r[i].attack),
                             advex_float_str(r[i].eps, e),
                             norm_str(r[i].norm), 100.0 * m);
        }
        m = gate_min(g, ADVEX_GATE_WORST);
        int64_t w = worst_at(r, count, i);
        if (m >= 0 && first_of_group(r, i) && below(w, r[i].n, m)) {
            fails++;
            advex_buf_printf(&b, "worst-case robust accuracy %.2f%% at eps %s (%s) is below the gate %.2f%%\n",
                             r[i].n ? 100.0 * (double)w / (double)r[i].n : 0.0, advex_float_str(r[i].eps, e),
                             norm_str(r[i].norm), 100.0 * m);
        }
    }
    if (text) {
        *text = NULL;
        if (fails && advex_buf_take(&b, text)) return -1;
    }
    advex_buf_free(&b);
    return fails;
}

/* ---- JUnit XML ----------------------------------------------------------------------------- */

/* s escaped for XML text and attribute values; control characters XML 1.0 forbids become '?'. */
static void xml_text(advex_buf *b, const char *s) {
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '&': advex_buf_printf(b, "&amp;"); break;
        case '<': advex_buf_printf(b, "&lt;"); break;
        case '>': advex_buf_printf(b, "&gt;"); break;
        case '"': advex_buf_printf(b, "&quot;"); break;
        case '\'': advex_buf_printf(b, "&apos;"); break;
        default:
            if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') advex_buf_printf(b, "?");
            else advex_buf_printf(b, "%c", *p);
        }
    }
}

/* One <testcase>: robust count k of n, and a failure when below min (min < 0: no gate). */
static void junit_case(advex_buf *b, const char *cls, const char *name, double seconds, int64_t k, int64_t n,
                       int64_t clean, double min) {
    advex_buf_printf(b, "    <testcase classname=\"");
    xml_text(b, cls);
    advex_buf_printf(b, "\" name=\"");
    xml_text(b, name);
    advex_buf_printf(b, "\" time=\"%.3f\">\n", seconds);
    double acc = n ? 100.0 * (double)k / (double)n : 0.0;
    if (min >= 0 && below(k, n, min))
        advex_buf_printf(b, "      <failure type=\"robust-accuracy\" message=\"robust accuracy %.2f%% is below the gate "
                            "%.2f%%\">robust %lld of %lld examples (%.2f%%); the gate asks for at least %.2f%%</failure>\n",
                         acc, 100.0 * min, (long long)k, (long long)n, acc, 100.0 * min);
    advex_buf_printf(b, "      <system-out>robust accuracy: %.2f%% (%lld of %lld), clean accuracy: %.2f%%</system-out>\n",
                     acc, (long long)k, (long long)n, n ? 100.0 * (double)clean / (double)n : 0.0);
    advex_buf_printf(b, "    </testcase>\n");
}

advex_status advex_eval_junit(const advex_eval_result *r, int count, const advex_gate *g, const char *model,
                              const char *data, unsigned warnings, char **xml) {
    *xml = NULL;
    int multi = 0, tests = count, failures = advex_gate_check(r, count, g, NULL);
    if (failures < 0) return advex_set_error(ADVEX_ERR_NOMEM, "out of memory (JUnit output)");
    for (int i = 1; i < count; i++) multi |= r[i].attack != r[0].attack;
    int worst_cases = multi || gate_min(g, ADVEX_GATE_WORST) >= 0;
    double total = 0;
    for (int i = 0; i < count; i++) {
        total += r[i].seconds;
        tests += worst_cases && first_of_group(r, i);
    }
    advex_buf b = {0};
    advex_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    advex_buf_printf(&b, "<testsuites name=\"advex eval\" tests=\"%d\" failures=\"%d\" errors=\"0\" time=\"%.3f\">\n",
                     tests, failures, total);
    advex_buf_printf(&b, "  <testsuite name=\"advex eval\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"0\" "
                         "time=\"%.3f\">\n    <properties>\n      <property name=\"model\" value=\"", tests, failures, total);
    xml_text(&b, model);
    advex_buf_printf(&b, "\"/>\n      <property name=\"data\" value=\"");
    xml_text(&b, data);
    advex_buf_printf(&b, "\"/>\n    </properties>\n");
    char name[96], cls[64], e[32];
    for (int i = 0; i < count; i++) {
        const char *an = advex_attack_name(r[i].attack), *nn = norm_str(r[i].norm);
        advex_float_str(r[i].eps, e);
        snprintf(cls, sizeof cls, "advex.eval.%s", an);
        snprintf(name, sizeof name, "%s eps=%s %s", an, e, nn);
        junit_case(&b, cls, name, r[i].seconds, r[i].robust_correct, r[i].n, r[i].clean_correct,
                   gate_min(g, (int)r[i].attack));
    }
    for (int i = 0; i < count; i++) { /* then the worst case at each eps */
        if (!worst_cases || !first_of_group(r, i)) continue;
        advex_float_str(r[i].eps, e);
        const char *nn = norm_str(r[i].norm);
        double t = 0;
        for (int j = 0; j < count; j++) t += r[j].eps == r[i].eps && r[j].norm == r[i].norm ? r[j].seconds : 0;
        snprintf(name, sizeof name, "worst case eps=%s %s", e, nn);
        junit_case(&b, "advex.eval.worst-case", name, t, worst_at(r, count, i), r[i].n, r[i].clean_correct,
                   gate_min(g, ADVEX_GATE_WORST));
    }
    if (warnings) {
        advex_buf_printf(&b, "    <system-err>");
        for (unsigned w = 1; w <= ADVEX_EVAL_WARN_LAST; w <<= 1)
            if (warnings & w) {
                advex_buf_printf(&b, "warning: ");
                xml_text(&b, advex_eval_warning_str(w));
                advex_buf_printf(&b, "\n");
            }
        advex_buf_printf(&b, "</system-err>\n");
    }
    advex_buf_printf(&b, "  </testsuite>\n</testsuites>\n");
    return advex_buf_take(&b, xml);
}
