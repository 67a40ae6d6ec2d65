/* Internal pieces of the report writer (src/report/): the all-or-nothing staging directory
 * and what the report's parts share. Not installed; not public API. */
#ifndef ADVEX_REPORT_INTERNAL_H
#define ADVEX_REPORT_INTERNAL_H

#include "internal.h"

typedef struct advex_stage {
    const char *dir;  /* the final directory (borrowed) */
    char *tmp;        /* DIR.tmp.XXXXXX while files are written; NULL once committed or aborted */
    char path[4400];  /* advex_stage_path's result */
} advex_stage;

/* Make the staging directory beside dir. */
advex_status advex_stage_open(advex_stage *s, const char *dir);
/* The path of a file `name` in the staging directory (valid until the next call). */
const char *advex_stage_path(advex_stage *s, const char *name);
/* Move everything into dir; the staging directory is gone afterwards, on failure too. */
advex_status advex_stage_commit(advex_stage *s);
/* Remove the staging directory and its files; safe to repeat. */
void advex_stage_abort(advex_stage *s);

/* What every part of a report reads (report.c, report_html.c). */
typedef struct report {
    const advex_sweep *s;
    const advex_dataset *d;
    const char *model, *data;
    int runs, na, neps;
    int64_t n, k;
    const advex_eval_result *res;   /* (runs) attack-major */
    int64_t *total, *robust, *conf; /* examples per class (k); robust per run and class (runs, k);
                                       confusion of each attack's largest eps (na, k, k) */
    advex_stage st;
    int grid_w, grid_h;             /* size of the grid PNGs */
} report;

/* A class's name (the data set's, else its number in buf). */
const char *advex_report_class_label(const report *r, int64_t q, char *buf, size_t n);
static inline double advex_frac(int64_t a, int64_t b) { return b ? (double)a / (double)b : 0.0; }
/* The minimal-perturbation curves' section of report.html (curve_html.c); nothing without
 * such attacks. */
advex_status advex_report_min_norm_html(const report *r, advex_buf *h);
/* report.html into h. */
advex_status advex_report_html(const report *r, advex_buf *h);

#endif
