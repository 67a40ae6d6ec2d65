/* advex eval --report DIR: a self-contained report.html (inline CSS, images as files beside it,
 * no network), accuracy-vs-eps curves (SVG and PNG), image grids, per-class robust accuracy,
 * confusion matrices under attack, results.json and results.csv. Every number in the HTML is
 * printed from the same values, with the same format, as results.json. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* ---- all or nothing: the files are written into DIR.tmp.XXXXXX beside DIR (made when the
 * first result exists), then moved into place at the end: the staging directory renamed to
 * DIR when DIR does not exist or is empty, else each file renamed into DIR. A failure (a
 * full disk, ^C) removes the staging directory and leaves DIR as it was. */

static const char *const report_names[] = {"report.html", "results.json", "results.csv", "curve.svg", "curve.png"};
#define N_REPORT_NAMES (int)(sizeof report_names / sizeof *report_names)

void cli_report_files(cli_files *fs, const char *dir, const advex_attack_kind *kinds, int nk) {
    char p[4200];
    for (int i = 0; i < N_REPORT_NAMES + nk; i++) {
        int a = i - N_REPORT_NAMES, dup = 0;
        for (int b = 0; b < a; b++) dup |= kinds[b] == kinds[a]; /* one grid per attack name */
        if (dup) continue;
        if (a < 0) snprintf(p, sizeof p, "%s/%s", dir, report_names[i]);
        else snprintf(p, sizeof p, "%s/grid_%s.png", dir, advex_attack_name(kinds[a]));
        cli_files_out_unprobed(fs, "--report", p);
    }
}

/* dirname of path into out (".", "/" or the part before the last slash). */
static void parent_of(const char *path, char *out, size_t n) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--; /* "rep/" */
    const char *slash = NULL;
    for (size_t i = 0; i < len; i++) if (path[i] == '/') slash = path + i;
    if (!slash) snprintf(out, n, ".");
    else if (slash == path) snprintf(out, n, "/");
    else snprintf(out, n, "%.*s", (int)(slash - path), path);
}

int cli_report_check(const char *cmd, const char *dir) {
    struct stat sb;
    char probe[4400], parent[4200];
    int exists = stat(dir, &sb) == 0;
    if (exists && !S_ISDIR(sb.st_mode))
        return cli_error(cmd, CLI_EXIT_USAGE, "--report %s: exists and is not a directory", dir);
    if (!exists && errno != ENOENT) return cli_error(cmd, CLI_EXIT_FAIL, "--report %s: %s", dir, strerror(errno));
    /* the staging directory goes beside DIR: its parent must be writable either way */
    parent_of(dir, parent, sizeof parent);
    snprintf(probe, sizeof probe, "%s/.advex-report", parent);
    int r = cli_check_output(cmd, "--report", probe);
    if (r || !exists) return r;
    snprintf(probe, sizeof probe, "%s/report.html", dir); /* and files moved into DIR replace its old ones */
    return cli_check_output(cmd, "--report", probe);
}

/* Create the staging directory on first use; 0 or an exit code. */
static int report_stage(const char *cmd, cli_report *r) {
    if (r->stage) return 0;
    size_t n = strlen(r->dir);
    while (n > 1 && r->dir[n - 1] == '/') n--;
    r->stage = malloc(n + sizeof ".tmp.XXXXXX");
    if (!r->stage) return cli_error(cmd, CLI_EXIT_FAIL, "out of memory");
    memcpy(r->stage, r->dir, n);
    memcpy(r->stage + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    if (!mkdtemp(r->stage)) {
        int e = errno;
        free(r->stage);
        r->stage = NULL;
        return cli_error(cmd, CLI_EXIT_FAIL, "--report %s: cannot create a directory beside it: %s", r->dir, strerror(e));
    }
    mode_t um = umask(0); /* mkdtemp makes 0700: give the report the mode mkdir would */
    umask(um);
    chmod(r->stage, 0777 & ~um);
    return 0;
}

void cli_report_abort(cli_report *r) {
    if (!r->stage) return;
    DIR *d = opendir(r->stage);
    struct dirent *e;
    char p[4200];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", r->stage, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(r->stage);
    free(r->stage);
    r->stage = NULL;
}

/* Move the staged files into DIR; 0 or an exit code (the staging directory removed). */
static int report_commit(const char *cmd, cli_report *r) {
    if (rename(r->stage, r->dir) == 0) { /* DIR did not exist, or was empty */
        free(r->stage);
        r->stage = NULL;
        return 0;
    }
    if (errno != ENOTEMPTY && errno != EEXIST) {
        int e = errno;
        cli_report_abort(r);
        return cli_error(cmd, CLI_EXIT_FAIL, "--report %s: cannot move the report into place: %s", r->dir, strerror(e));
    }
    DIR *d = opendir(r->stage);
    struct dirent *e;
    char from[4200], to[4200];
    int rc = 0;
    while (!rc && d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(from, sizeof from, "%s/%s", r->stage, e->d_name);
        snprintf(to, sizeof to, "%s/%s", r->dir, e->d_name);
        if (rename(from, to) != 0)
            rc = cli_error(cmd, CLI_EXIT_FAIL, "--report %s: cannot move %s into place: %s", r->dir, e->d_name,
                           strerror(errno));
    }
    if (d) closedir(d);
    cli_report_abort(r);
    return rc;
}

static void path_in(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static const char *class_label(const cli_report *r, int64_t k, char *buf, size_t n) {
    if (r->class_names && k < r->num_names && r->class_names[k]) return r->class_names[k];
    snprintf(buf, n, "%lld", (long long)k);
    return buf;
}

int cli_report_grid(const char *cmd, cli_report *r, int idx, const float *xadv, const float *adv_conf) {
    const advex_dataset *d = r->d;
    int64_t n = d->n, dim = d->c * d->h * d->w, rows = r->grid_rows;
    const int32_t *ap = r->adv_pred + (int64_t)idx * n;
    if (rows > n) rows = n;
    if (rows <= 0) return 0;
    int64_t *pick = malloc((size_t)rows * sizeof *pick);
    float *x = malloc((size_t)(rows * dim) * sizeof(float)), *xa = malloc((size_t)(rows * dim) * sizeof(float));
    int32_t *y = malloc((size_t)rows * 3 * sizeof(int32_t));
    float *cf = malloc((size_t)rows * 2 * sizeof(float));
    int rc = 0;
    if (!pick || !x || !xa || !y || !cf) { rc = cli_error(cmd, CLI_EXIT_FAIL, "out of memory"); goto done; }
    if ((rc = report_stage(cmd, r))) goto done;
    /* successes first (clean-correct, now misclassified), then the rest in order */
    int64_t m = 0;
    for (int pass = 0; pass < 2 && m < rows; pass++)
        for (int64_t i = 0; i < n && m < rows; i++) {
            int success = r->clean_pred[i] == d->y[i] && ap[i] != d->y[i];
            if (success == (pass == 0)) pick[m++] = i;
        }
    for (int64_t j = 0; j < rows; j++) {
        int64_t i = pick[j];
        memcpy(x + j * dim, d->x + i * dim, (size_t)dim * sizeof(float));
        memcpy(xa + j * dim, xadv + i * dim, (size_t)dim * sizeof(float));
        y[j] = d->y[i];
        y[rows + j] = r->clean_pred[i];
        y[2 * rows + j] = ap[i];
        cf[j] = r->clean_conf[i];
        cf[rows + j] = adv_conf[i];
    }
    advex_grid_rows g = {x, xa, rows, d->c, d->h, d->w, y, y + rows, y + 2 * rows, cf, cf + rows,
                         r->class_names, r->num_names, r->res[idx].eps, 0};
    char path[4096], name[64];
    snprintf(name, sizeof name, "grid_%s.png", advex_attack_name(r->res[idx].attack));
    path_in(path, sizeof path, r->stage, name);
    advex_status st = advex_grid_adv_png(path, &g);
    if (st) rc = cli_fail(cmd, st);
done:
    free(pick); free(x); free(xa); free(y); free(cf);
    return rc;
}

static void html_text(cli_buf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': cli_buf_printf(b, "&lt;"); break;
        case '>': cli_buf_printf(b, "&gt;"); break;
        case '&': cli_buf_printf(b, "&amp;"); break;
        case '"': cli_buf_printf(b, "&quot;"); break;
        default: cli_buf_printf(b, "%c", *s);
        }
    }
}

static void json_str(cli_buf *b, const char *s) {
    cli_buf_printf(b, "\"");
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') cli_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20) cli_buf_printf(b, "\\u%04x", ch);
        else cli_buf_printf(b, "%c", ch);
    }
    cli_buf_printf(b, "\"");
}

/* Index of the largest eps of attack a (the run whose confusion matrix and grid are shown). */
static int top_run(const cli_report *r, int a) {
    int best = a * r->neps;
    for (int i = 0; i < r->neps; i++)
        if (r->res[a * r->neps + i].eps > r->res[best].eps) best = a * r->neps + i;
    return best;
}

static double frac(int64_t a, int64_t b) { return b ? (double)a / (double)b : 0.0; }

int cli_report_write(const char *cmd, cli_report *r) {
    int64_t k = r->k, n = r->d->n;
    int nres = r->nk * r->neps, rc = CLI_EXIT_FAIL;
    int64_t *total = calloc((size_t)k, sizeof *total), *robust = calloc((size_t)(k * nres), sizeof *robust);
    int64_t *conf = calloc((size_t)(k * k * r->nk), sizeof *conf);
    advex_curve *cv = calloc((size_t)r->nk, sizeof *cv);
    double *pts = calloc((size_t)(2 * nres), sizeof *pts);
    char *svg = NULL, path[4096], nb[32];
    cli_buf j = {0}, c = {0}, h = {0};
    advex_status st;
    if (!total || !robust || !conf || !cv || !pts) { rc = cli_error(cmd, CLI_EXIT_FAIL, "out of memory"); goto done; }
    if ((rc = report_stage(cmd, r))) goto done;
    rc = CLI_EXIT_FAIL;
    for (int i = 0; i < nres; i++)
        if ((st = advex_class_counts(r->d->y, r->clean_pred, r->adv_pred + (int64_t)i * n, n, k, total,
                                     robust + (int64_t)i * k, NULL))) { rc = cli_fail(cmd, st); goto done; }
    for (int a = 0; a < r->nk; a++)
        if ((st = advex_class_counts(r->d->y, r->clean_pred, r->adv_pred + (int64_t)top_run(r, a) * n, n, k, NULL, NULL,
                                     conf + (int64_t)a * k * k))) { rc = cli_fail(cmd, st); goto done; }
    /* curves: points sorted by eps */
    for (int a = 0; a < r->nk; a++) {
        double *x = pts + 2 * a * r->neps, *y = x + r->neps;
        for (int i = 0; i < r->neps; i++) {
            double e = r->res[a * r->neps + i].eps, v = r->res[a * r->neps + i].robust_accuracy;
            int p = i;
            while (p > 0 && x[p - 1] > e) { x[p] = x[p - 1]; y[p] = y[p - 1]; p--; }
            x[p] = e;
            y[p] = v;
        }
        cv[a].label = advex_attack_name(r->res[a * r->neps].attack);
        cv[a].n = r->neps;
        cv[a].x = x;
        cv[a].y = y;
    }
    const char *xl = r->res[0].norm == ADVEX_NORM_L2 ? "eps (L2)" : "eps (L-inf)";
    if ((st = advex_plot_svg(cv, r->nk, "Robust accuracy vs eps", xl, 720, 440, &svg))) { rc = cli_fail(cmd, st); goto done; }
    path_in(path, sizeof path, r->stage, "curve.svg");
    if (cli_write_file_atomic(cmd, path, svg, strlen(svg))) goto done;
    path_in(path, sizeof path, r->stage, "curve.png");
    if ((st = advex_plot_png(cv, r->nk, "Robust accuracy vs eps", xl, 720, 440, path))) { rc = cli_fail(cmd, st); goto done; }

    /* results.json: the eval JSON plus class names, per-class counts and confusion matrices */
    cli_eval_json(&j, r->model, r->data, n, r->clean_correct, r->res, nres);
    while (j.len > 0 && (j.s[j.len - 1] == '\n' || j.s[j.len - 1] == '}')) { /* reopen the top-level object */
        int brace = j.s[j.len - 1] == '}';
        j.len--;
        if (brace) break;
    }
    while (j.len > 0 && j.s[j.len - 1] == '\n') j.len--;
    cli_buf_printf(&j, ",\n  \"classes\": [");
    for (int64_t q = 0; q < k; q++) {
        cli_buf_printf(&j, "%s", q ? ", " : "");
        json_str(&j, class_label(r, q, nb, sizeof nb));
    }
    cli_buf_printf(&j, "],\n  \"class_total\": [");
    for (int64_t q = 0; q < k; q++) cli_buf_printf(&j, "%s%lld", q ? ", " : "", (long long)total[q]);
    cli_buf_printf(&j, "],\n  \"per_class\": [");
    for (int i = 0; i < nres; i++) {
        cli_buf_printf(&j, "%s\n    {\"attack\": \"%s\", \"eps\": %.9g, \"robust\": [", i ? "," : "",
                       advex_attack_name(r->res[i].attack), (double)r->res[i].eps);
        for (int64_t q = 0; q < k; q++) cli_buf_printf(&j, "%s%lld", q ? ", " : "", (long long)robust[i * k + q]);
        cli_buf_printf(&j, "], \"robust_accuracy\": [");
        for (int64_t q = 0; q < k; q++) cli_buf_printf(&j, "%s%.6f", q ? ", " : "", frac(robust[i * k + q], total[q]));
        cli_buf_printf(&j, "]}");
    }
    cli_buf_printf(&j, "\n  ],\n  \"confusion\": [");
    for (int a = 0; a < r->nk; a++) {
        int t = top_run(r, a);
        cli_buf_printf(&j, "%s\n    {\"attack\": \"%s\", \"eps\": %.9g, \"matrix\": [", a ? "," : "",
                       advex_attack_name(r->res[t].attack), (double)r->res[t].eps);
        for (int64_t p = 0; p < k; p++) {
            cli_buf_printf(&j, "%s[", p ? ", " : "");
            for (int64_t q = 0; q < k; q++) cli_buf_printf(&j, "%s%lld", q ? ", " : "", (long long)conf[(a * k + p) * k + q]);
            cli_buf_printf(&j, "]");
        }
        cli_buf_printf(&j, "]}");
    }
    cli_buf_printf(&j, "\n  ]\n}\n");

    /* results.csv: one row per attack and eps, per-class robust accuracy in the last columns */
    cli_buf_printf(&c, "attack,eps,n,clean_accuracy,robust_accuracy,success_rate,robust_correct,seconds");
    for (int64_t q = 0; q < k; q++) {
        const char *s = class_label(r, q, nb, sizeof nb);
        cli_buf_printf(&c, ",\"robust_accuracy[");
        for (; *s; s++) cli_buf_printf(&c, *s == '"' ? "\"\"" : "%c", *s);
        cli_buf_printf(&c, "]\"");
    }
    cli_buf_printf(&c, "\n");
    for (int i = 0; i < nres; i++) {
        const advex_eval_result *e = &r->res[i];
        cli_buf_printf(&c, "%s,%.9g,%lld,%.6f,%.6f,%.6f,%lld,%.4f", advex_attack_name(e->attack), (double)e->eps,
                       (long long)n, frac(r->clean_correct, n), e->robust_accuracy, e->success_rate,
                       (long long)e->robust_correct, e->seconds);
        for (int64_t q = 0; q < k; q++) cli_buf_printf(&c, ",%.6f", frac(robust[i * k + q], total[q]));
        cli_buf_printf(&c, "\n");
    }

    /* report.html */
    cli_buf_printf(&h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>advex report: ");
    html_text(&h, r->model);
    cli_buf_printf(&h, "</title>\n<style>\n"
        "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}\n"
        "h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.2em;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}\n"
        ".meta{color:#555}.meta code{background:#f4f4f4;padding:1px 4px;border-radius:3px}\n"
        "table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}\n"
        "th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f6f6f6}\n"
        "td.l,th.l{text-align:left}\n"
        ".grid img{image-rendering:pixelated;border:1px solid #ddd}\n"
        ".cm td{min-width:34px}.warn{background:#fff4e5;border-left:4px solid #f0a030;padding:6px 10px;margin:6px 0}\n"
        ".cols{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}\n"
        "</style>\n</head>\n<body>\n<h1>advex robustness report</h1>\n<p class=\"meta\">model <code>");
    html_text(&h, r->model);
    cli_buf_printf(&h, "</code> &middot; data <code>");
    html_text(&h, r->data);
    cli_buf_printf(&h, "</code> &middot; <span id=\"n\">%lld</span> examples &middot; clean accuracy "
                       "<b id=\"clean\" data-v=\"%.6f\">%.2f%%</b></p>\n", (long long)n, frac(r->clean_correct, n),
                   100.0 * frac(r->clean_correct, n));
    for (unsigned w = 1; w <= ADVEX_EVAL_WARN_NONDETERMINISTIC; w <<= 1)
        if (r->warnings & w) {
            cli_buf_printf(&h, "<p class=\"warn\">warning: ");
            html_text(&h, advex_eval_warning_str(w));
            cli_buf_printf(&h, "</p>\n");
        }
    cli_buf_printf(&h, "<h2>Robust accuracy</h2>\n<p>A clean-misclassified example counts as non-robust "
                       "(AutoAttack's convention); success rate is over the correctly classified examples.</p>\n"
                       "<table id=\"results\">\n<tr><th class=\"l\">attack</th><th>eps</th><th>robust accuracy</th>"
                       "<th>success rate</th><th>robust</th><th>seconds</th></tr>\n");
    for (int i = 0; i < nres; i++) {
        const advex_eval_result *e = &r->res[i];
        cli_buf_printf(&h, "<tr data-attack=\"%s\" data-eps=\"%.9g\"><td class=\"l\">%s%s</td><td>%.4g</td>"
                           "<td data-key=\"robust_accuracy\" data-v=\"%.6f\">%.2f%%</td>"
                           "<td data-key=\"success_rate\" data-v=\"%.6f\">%.2f%%</td>"
                           "<td data-key=\"robust_correct\" data-v=\"%lld\">%lld</td><td>%.2f</td></tr>\n",
                       advex_attack_name(e->attack), (double)e->eps, advex_attack_name(e->attack),
                       e->transfer ? " (transfer)" : "", (double)e->eps, e->robust_accuracy, 100 * e->robust_accuracy,
                       e->success_rate, 100 * e->success_rate, (long long)e->robust_correct, (long long)e->robust_correct,
                       e->seconds);
    }
    cli_buf_printf(&h, "</table>\n<h2>Accuracy against eps</h2>\n"
                       "<p><img src=\"curve.svg\" width=\"720\" height=\"440\" alt=\"robust accuracy against eps\"></p>\n"
                       "<p>The same plot as <a href=\"curve.png\">PNG</a>; the numbers as <a href=\"results.json\">JSON</a>"
                       " and <a href=\"results.csv\">CSV</a>.</p>\n");
    cli_buf_printf(&h, "<h2>Per-class robust accuracy</h2>\n<table id=\"per-class\">\n<tr><th class=\"l\">class</th>"
                       "<th>examples</th>");
    for (int i = 0; i < nres; i++)
        cli_buf_printf(&h, "<th>%s %.4g</th>", advex_attack_name(r->res[i].attack), (double)r->res[i].eps);
    cli_buf_printf(&h, "</tr>\n");
    for (int64_t q = 0; q < k; q++) {
        cli_buf_printf(&h, "<tr><td class=\"l\">");
        html_text(&h, class_label(r, q, nb, sizeof nb));
        cli_buf_printf(&h, "</td><td>%lld</td>", (long long)total[q]);
        for (int i = 0; i < nres; i++) {
            double v = frac(robust[i * k + q], total[q]);
            cli_buf_printf(&h, "<td data-v=\"%.6f\" style=\"background:rgba(44,160,44,%.2f)\">%.1f%%</td>", v,
                           0.45 * v, 100 * v);
        }
        cli_buf_printf(&h, "</tr>\n");
    }
    cli_buf_printf(&h, "</table>\n");
    for (int a = 0; a < r->nk; a++) {
        int t = top_run(r, a);
        const char *an = advex_attack_name(r->res[t].attack);
        cli_buf_printf(&h, "<h2>%s at eps %.4g</h2>\n<div class=\"cols\">\n<div class=\"grid\"><img src=\"grid_%s.png\" "
                           "alt=\"clean, perturbation and adversarial examples for %s\" width=\"%d\" height=\"%d\">"
                           "<p>Clean | perturbation shown as 0.5 + &delta;/(2&epsilon;) | adversarial; "
                           "successful attacks first.</p></div>\n",
                       an, (double)r->res[t].eps, an, an, r->grid_w * 3 / 2, r->grid_h * 3 / 2);
        cli_buf_printf(&h, "<div><p>Confusion matrix under attack (rows: true class, columns: prediction; a "
                           "clean mistake keeps its clean prediction)</p>\n<table class=\"cm\" data-attack=\"%s\">\n"
                           "<tr><th></th>", an);
        for (int64_t q = 0; q < k; q++) {
            cli_buf_printf(&h, "<th title=\"");
            html_text(&h, class_label(r, q, nb, sizeof nb));
            cli_buf_printf(&h, "\">%lld</th>", (long long)q);
        }
        cli_buf_printf(&h, "</tr>\n");
        for (int64_t p = 0; p < k; p++) {
            cli_buf_printf(&h, "<tr><th class=\"l\">");
            html_text(&h, class_label(r, p, nb, sizeof nb));
            cli_buf_printf(&h, "</th>");
            for (int64_t q = 0; q < k; q++) {
                int64_t v = conf[(a * k + p) * k + q];
                double s = total[p] ? (double)v / (double)total[p] : 0;
                cli_buf_printf(&h, "<td style=\"background:rgba(%s,%.2f)\">%lld</td>",
                               p == q ? "44,160,44" : "214,39,40", 0.8 * s, (long long)v);
            }
            cli_buf_printf(&h, "</tr>\n");
        }
        cli_buf_printf(&h, "</table></div>\n</div>\n");
    }
    cli_buf_printf(&h, "<p class=\"meta\">Written by advex %s.</p>\n"
        "<script>\n"
        "window.addEventListener('load', function () {\n"
        "  var imgs = document.images, ok = imgs.length > 0;\n"
        "  for (var i = 0; i < imgs.length; i++) if (!imgs[i].complete || imgs[i].naturalWidth === 0) ok = false;\n"
        "  document.body.dataset.imagesOk = ok ? 'yes' : 'no';\n"
        "  document.body.dataset.images = String(imgs.length);\n"
        "});\n</script>\n</body>\n</html>\n", ADVEX_VERSION);
    if (j.oom || c.oom || h.oom) { rc = cli_error(cmd, CLI_EXIT_FAIL, "out of memory"); goto done; }
    path_in(path, sizeof path, r->stage, "results.json");
    if (cli_write_file_atomic(cmd, path, j.s, j.len)) goto done;
    path_in(path, sizeof path, r->stage, "results.csv");
    if (cli_write_file_atomic(cmd, path, c.s, c.len)) goto done;
    path_in(path, sizeof path, r->stage, "report.html");
    if (cli_write_file_atomic(cmd, path, h.s, h.len)) goto done;
    rc = report_commit(cmd, r);
done:
    if (rc) cli_report_abort(r);
    free(total); free(robust); free(conf); free(cv); free(pts); free(svg);
    cli_buf_free(&j); cli_buf_free(&c); cli_buf_free(&h);
    return rc;
}
