/* The per-example records of a sweep (what every run did to every example) and the state file
 * that carries them across an interruption (advex_sweep_config.state): the file is the records'
 * own bytes, rewritten atomically after every batch; a resume checks that it was written for
 * the same evaluation and runs only what it does not record. Format: docs/reports.md. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "advex/advex.h"
#include "target/target_internal.h"

#define STATE_MAGIC "ADVEXST"
#define STATE_FORMAT 2u /* 2: one advex_eval_example per example and run */
#define STATE_BOM 0x01020304u

enum { FP_MODEL, FP_DATA, FP_EPS, FP_ATTACKS, FP_FLAGS, FP_COUNT };
static const char *const fp_what[FP_COUNT] = {
    "model (weights, graph or the seed of its randomness; or the --target and what it answers)", "data set (images, labels or --limit)", "eps list", "attack list (or --norm)",
    "value of an attack setting (steps, restarts, target, batch, checks or another tuning flag)"};

/* The file's first 112 bytes. */
typedef struct state_header {
    char magic[8];
    uint32_t format, bom;
    char version[24];
    uint64_t fp[FP_COUNT];
    uint64_t seed;
    int64_t n, batch;
    int32_t runs, reserved;
} state_header;
_Static_assert(sizeof(state_header) == 112, "state header layout");

/* FNV-1a */
static void fnv(uint64_t *h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) *h = (*h ^ b[i]) * 1099511628211ull;
}
#define FNV_INIT 14695981039346656037ull
#define FNV_FIELD(h, v) fnv((h), &(v), sizeof(v))

static void hash_model(uint64_t *h, const advex_model *m) {
    const advex_net *net = m->net;
    FNV_FIELD(h, net->in_chw);
    FNV_FIELD(h, net->classes);
    if (net->params) fnv(h, net->params, (size_t)net->n_params * sizeof(float));
    if (net->consts) fnv(h, net->consts, (size_t)net->n_consts * sizeof(float));
    for (int i = 0; i < net->g.n_nodes; i++) {
        const advex_node *nd = &net->g.nodes[i];
        FNV_FIELD(h, nd->op);
        FNV_FIELD(h, nd->n_in);
        fnv(h, nd->in, (size_t)nd->n_in * sizeof(int));
        FNV_FIELD(h, nd->out[0]);
    }
    /* a randomized model's draws follow its seed (advex_model_seed_batch): another seed, other
     * results (the CLI's --seed seeds both; the library's callers may seed them apart) */
    if (m->random) FNV_FIELD(h, m->seed);
}

/* Every field of advex_attack_config that changes results (kind and eps are per run; the uap
 * attack is refused with a state). A field added to the struct must be added here: */
#if UINTPTR_MAX == 0xffffffffffffffffu
_Static_assert(sizeof(advex_attack_config) == 112, "advex_attack_config changed: hash its new fields in hash_flags "
                                                  "(src/eval/state.c), then update this size");
#endif
static void hash_flags(uint64_t *h, const advex_sweep_config *c) {
    const advex_attack_config *a = &c->attack;
    FNV_FIELD(h, a->alpha); FNV_FIELD(h, a->target); FNV_FIELD(h, a->target_label); FNV_FIELD(h, a->steps);
    FNV_FIELD(h, a->restarts); FNV_FIELD(h, a->norm); FNV_FIELD(h, a->momentum); FNV_FIELD(h, a->queries);
    FNV_FIELD(h, a->p_init); FNV_FIELD(h, a->topk); FNV_FIELD(h, a->kappa); FNV_FIELD(h, a->binary_steps);
    FNV_FIELD(h, a->c_init); FNV_FIELD(h, a->lr); FNV_FIELD(h, a->overshoot); FNV_FIELD(h, a->no_early_stop);
    FNV_FIELD(h, a->eot); FNV_FIELD(h, a->version); FNV_FIELD(h, a->square_unscaled);
    FNV_FIELD(h, a->apgd_largereps);
    int64_t batch = c->batch > 0 ? c->batch : 256;
    FNV_FIELD(h, batch);
    FNV_FIELD(h, c->checks);
    int sur = c->surrogate != NULL;
    FNV_FIELD(h, sur);
}

/* A target's identity: what was opened (the URL or command), what it answers, its classes and
 * input shape; a local model's weights too. Another server at another URL is another target. */
static void hash_target(uint64_t *h, const advex_target *t) {
    fnv(h, t->vt->kind, strlen(t->vt->kind) + 1);
    fnv(h, t->spec, strlen(t->spec) + 1);
    FNV_FIELD(h, t->output);
    FNV_FIELD(h, t->classes);
    FNV_FIELD(h, t->chw);
    if (strcmp(t->vt->kind, "model") == 0) hash_model(h, t->impl);
}

static void make_header(state_header *h, advex_model *m, const advex_dataset *d, const advex_sweep_config *c, int runs) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, STATE_MAGIC, sizeof STATE_MAGIC);
    h->format = STATE_FORMAT;
    h->bom = STATE_BOM;
    snprintf(h->version, sizeof h->version, "%s", ADVEX_VERSION);
    for (int i = 0; i < FP_COUNT; i++) h->fp[i] = FNV_INIT;
    if (c->target) hash_target(&h->fp[FP_MODEL], c->target);
    else hash_model(&h->fp[FP_MODEL], m);
    if (c->surrogate) hash_model(&h->fp[FP_MODEL], c->surrogate);
    int64_t shape[4] = {d->n, d->c, d->h, d->w};
    FNV_FIELD(&h->fp[FP_DATA], shape);
    fnv(&h->fp[FP_DATA], d->x, (size_t)(d->n * d->c * d->h * d->w) * sizeof(float));
    if (d->y) fnv(&h->fp[FP_DATA], d->y, (size_t)d->n * sizeof(int32_t));
    fnv(&h->fp[FP_EPS], c->eps, (size_t)c->n_eps * sizeof(float));
    fnv(&h->fp[FP_ATTACKS], c->attacks, (size_t)c->n_attacks * sizeof(advex_attack_kind));
    FNV_FIELD(&h->fp[FP_ATTACKS], c->default_norms);
    hash_flags(&h->fp[FP_FLAGS], c);
    h->seed = c->attack.seed;
    h->n = d->n;
    h->batch = c->batch > 0 ? c->batch : 256;
    h->runs = runs;
}

/* Lay the arrays into buf (NULL: only measure); returns the size in bytes. */
static size_t layout(advex_records *r, unsigned char *buf) {
    size_t o = sizeof(state_header), n = (size_t)r->n, R = (size_t)r->runs;
#define LAY(field, count)                                                  \
    do {                                                                   \
        if (buf) r->field = (void *)(buf + o);                             \
        o += (count) * sizeof *r->field;                                   \
    } while (0)
    LAY(done, R);
    LAY(seconds, R);
    LAY(ex, R * n);
#undef LAY
    o = (o + 7) / 8 * 8;
    return o + sizeof(uint64_t); /* the checksum, FNV-1a of everything before it */
}

static uint64_t checksum(const advex_records *r) {
    uint64_t h = FNV_INIT;
    fnv(&h, r->buf, r->size - sizeof h);
    return h;
}

void advex_records_free(advex_records *r) {
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* The header read from a file against the one this evaluation would write. */
static advex_status check_header(const state_header *h, const state_header *want, size_t size, size_t expect,
                                 const char *path) {
    if (size < sizeof *h || memcmp(h->magic, STATE_MAGIC, sizeof STATE_MAGIC) != 0)
        return advex_set_error(ADVEX_ERR_FORMAT, "state %s: not an advex state file", path);
    if (h->bom != STATE_BOM)
        return advex_set_error(ADVEX_ERR_FORMAT, "state %s: written on a machine of another byte order", path);
    if (h->format != STATE_FORMAT)
        return advex_set_error(ADVEX_ERR_FORMAT, "state %s: state format %u, this advex reads format %u", path,
                               (unsigned)h->format, STATE_FORMAT);
    if (memchr(h->version, 0, sizeof h->version) == NULL || strcmp(h->version, want->version) != 0)
        return advex_set_error(ADVEX_ERR_ARG, "state %s: written by another advex version (%.*s; this is %s); "
                               "remove it to start over", path, (int)strnlen(h->version, sizeof h->version),
                               h->version, want->version);
    /* the seed first: with the CLI's --seed a randomized model's fingerprint changes too */
    if (h->seed != want->seed)
        return advex_set_error(ADVEX_ERR_ARG, "state %s: written with --seed %llu, not %llu; remove the file to "
                               "start over", path, (unsigned long long)h->seed, (unsigned long long)want->seed);
    for (int i = 0; i < FP_COUNT; i++)
        if (h->fp[i] != want->fp[i])
            return advex_set_error(ADVEX_ERR_ARG, "state %s: written by a run with a different %s; resuming "
                                   "needs the same settings (remove the file to start over)", path, fp_what[i]);
    if (h->n != want->n || h->batch != want->batch || h->runs != want->runs || size != expect)
        return advex_set_error(ADVEX_ERR_FORMAT, "state %s: truncated or corrupt (%zu bytes, %zu expected for this "
                               "evaluation)", path, size, expect);
    return ADVEX_OK;
}

/* Every value the records hold is one a run could have written. */
advex_status advex_records_check(const advex_records *r, int64_t classes, int64_t batch, const char *path) {
    uint64_t sum;
    memcpy(&sum, r->buf + r->size - sizeof sum, sizeof sum);
    if (sum != checksum(r)) return advex_set_error(ADVEX_ERR_FORMAT, "state %s: corrupt (checksum mismatch)", path);
    int64_t n = r->n;
    for (int q = 0; q < r->runs; q++) {
        int64_t done = r->done[q];
        if (done < 0 || done > n || (done < n && done % batch) || (q > 0 && done > 0 && r->done[q - 1] < n) ||
            !(r->seconds[q] >= 0 && r->seconds[q] < 1e12))
            return advex_set_error(ADVEX_ERR_FORMAT, "state %s: corrupt (run %d records %lld examples done)", path, q,
                                   (long long)done);
        for (int64_t i = 0; i < done; i++) {
            const advex_eval_example *e = &r->ex[(int64_t)q * n + i];
            int ok = e->clean_pred >= 0 && e->clean_pred < classes && e->adv_pred >= 0 && e->adv_pred < classes &&
                     e->stage >= 0 && e->stage <= ADVEX_ATTACK_MAX_STAGES && e->target >= -1 && e->target < classes &&
                     e->queries >= 0 && e->nan_count >= 0 && e->nan_count < ((int64_t)1 << 40) &&
                     isfinite(e->adv_min) && isfinite(e->adv_max) && e->clean_conf >= 0 && e->clean_conf <= 1 &&
                     e->adv_conf >= 0 && e->adv_conf <= 1;
            for (int j = 0; j < 3; j++) ok &= e->norms[j] >= 0 && e->norms[j] <= 1e30;
            for (int j = 0; j < ADVEX_EVAL_MAX_STAGES; j++) ok &= e->stage_seconds[j] >= 0 && e->stage_seconds[j] < 1e12f;
            if (!ok)
                return advex_set_error(ADVEX_ERR_FORMAT, "state %s: corrupt (run %d, example %lld out of range)", path,
                                       q, (long long)i);
        }
    }
    return ADVEX_OK;
}

/* Read the file at r->path when it exists (r->buf holds this evaluation's header). */
static advex_status records_load(advex_records *r, int64_t classes) {
    const char *path = r->path;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return ADVEX_OK; /* a fresh run */
        return advex_set_error(ADVEX_ERR_IO, "state %s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    state_header want, h;
    memcpy(&want, r->buf, sizeof want);
    advex_status st = ADVEX_OK;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode))
        st = advex_set_error(ADVEX_ERR_IO, "state %s: not a regular file", path);
    size_t size = st ? 0 : (size_t)sb.st_size;
    if (!st && size >= sizeof h && fread(&h, sizeof h, 1, f) != 1)
        st = advex_set_error(ADVEX_ERR_IO, "state %s: read error", path);
    if (!st) st = check_header(&h, &want, size, r->size, path);
    if (!st && (fseek(f, 0, SEEK_SET) != 0 || fread(r->buf, 1, r->size, f) != r->size))
        st = advex_set_error(ADVEX_ERR_IO, "state %s: read error", path);
    fclose(f);
    if (!st && memcmp(r->buf, &want, sizeof want) != 0) /* changed while read */
        st = advex_set_error(ADVEX_ERR_FORMAT, "state %s: changed while being read", path);
    if (!st) st = advex_records_check(r, classes, want.batch, path);
    if (st) return st;
    for (int q = 0; q < r->runs; q++) r->resumed += r->done[q];
    return ADVEX_OK;
}

advex_status advex_records_open(advex_records *r, advex_model *m, const advex_dataset *d, const advex_sweep_config *c) {
    memset(r, 0, sizeof *r);
    r->n = d->n;
    r->runs = c->n_attacks * c->n_eps;
    r->path = c->state;
    r->read_only = c->state_read_only;
    if (c->state) {
        int uap = 0;
        for (int a = 0; a < c->n_attacks; a++) uap |= c->attacks[a] == ADVEX_ATTACK_UAP;
        if (uap || c->keep_rows > 0)
            return advex_set_error(ADVEX_ERR_ARG, "state %s: not with %s (resumable runs keep per-example records, "
                                   "not adversarial examples)", c->state, uap ? "uap" : "a report");
    }
    r->size = layout(r, NULL);
    if (!(r->buf = calloc(1, r->size)))
        return advex_set_error(ADVEX_ERR_NOMEM, "out of memory for the per-example records (%zu bytes)", r->size);
    layout(r, r->buf);
    state_header h;
    make_header(&h, m, d, c, r->runs);
    memcpy(r->buf, &h, sizeof h);
    int64_t classes = c->target ? advex_target_num_classes(c->target) : advex_model_num_classes(m);
    return c->state ? records_load(r, classes) : ADVEX_OK;
}

static advex_status records_save(advex_records *r) {
    if (!r->path || r->read_only) return ADVEX_OK;
    uint64_t sum = checksum(r);
    memcpy(r->buf + r->size - sizeof sum, &sum, sizeof sum);
    return advex_write_file(r->path, r->buf, r->size);
}

advex_status advex_records_run(advex_records *r, int run, advex_model *m, const advex_dataset *d,
                               const advex_sweep_config *c, const advex_attack_config *ac, float *adv,
                               advex_eval_result *res) {
    int64_t n = r->n, batch = c->batch > 0 ? c->batch : 256;
    int64_t lo = c->shard_hi > 0 ? c->shard_lo : 0, hi = c->shard_hi > 0 ? c->shard_hi : n;
    int64_t start = r->done[run] > lo ? r->done[run] : lo;
    advex_eval_example *ex = r->ex + (int64_t)run * n;
    advex_sweep_progress p = {run, r->runs, ac->kind, ac->eps, (start < hi ? start : hi) - lo, hi - lo};
    advex_status st = ADVEX_OK;
    /* reported before the first batch too: a progress display times the run from its start */
    if (c->progress && c->progress(c->user, &p))
        st = advex_set_error(ADVEX_ERR_INTERRUPTED, "evaluation interrupted");
    double t0 = advex_now(), s0 = r->seconds[run];
    /* through a target: the budgets and the clean queries of the examples not recorded */
    advex_target_run *tr = NULL;
    if (!st && c->target && start < hi) st = advex_target_run_open(c->target, c->surrogate, d, ac, batch, start, ex, &tr);
    const int64_t dim = d->c * d->h * d->w;
    for (int64_t i = start; i < hi && !st; i += batch) {
        int64_t b = hi - i < batch ? hi - i : batch;
        st = tr ? advex_target_run_batch(tr, i, i + b, adv ? adv + i * dim : NULL)
                : advex_eval_examples(m, c->surrogate, d, ac, batch, i, i + b, NULL, NULL, ex, adv);
        if (st) break;
        if (i == r->done[run]) { /* the records hold a prefix of the run's examples */
            r->done[run] = i + b;
            r->seconds[run] = s0 + advex_now() - t0;
            if ((st = records_save(r))) break;
        }
        p.done = i + b - lo;
        if (c->progress && c->progress(c->user, &p))
            st = advex_set_error(ADVEX_ERR_INTERRUPTED, "evaluation interrupted");
    }
    advex_target_run_close(tr);
    /* a sharded run: the other processes' outcomes (and one status every process agrees on) */
    if (c->gather) st = c->gather(c->gather_user, run, st, ex, adv, n, dim);
    if (st) return st;
    if (r->done[run] < n) {
        r->done[run] = n;
        r->seconds[run] = s0 + advex_now() - t0;
        if ((st = records_save(r))) return st;
    }
    return c->target ? advex_target_summarize(d, ac, c->surrogate != NULL, ex, r->seconds[run], res)
                     : advex_eval_summarize(d, ac, c->surrogate != NULL, ex, r->seconds[run], res);
}
