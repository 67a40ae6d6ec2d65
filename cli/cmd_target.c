/* advex attack / eval --target URL|exec:COMMAND: the model is behind an interface (an Open
 * Inference Protocol v2 server, or a program), so only forward queries are possible and
 * every one is counted (advex_target_eval). --queries Q is each example's hard budget,
 * clean query included; --query-log, --max-qps, --target-batch, --timeout and --retries
 * shape the traffic. --target with any other value (a class, next, ...) is the targeted
 * attack's flag as before, handled by the commands themselves; here, where --target is the
 * endpoint, --targeted T takes the same values. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int is_endpoint(const char *v) {
    return v && (strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0 || strncmp(v, "exec:", 5) == 0);
}

int cli_target_wanted(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--target=", 9) == 0 && is_endpoint(argv[i] + 9)) return 1;
        if (strcmp(argv[i], "--target") == 0 && i + 1 < argc && is_endpoint(argv[i + 1])) return 1;
    }
    return 0;
}


/* the target's options from the flags; 0 or an exit code */
static int target_options(const char *cmd, cli_flag *f, int nf, advex_target_options *o) {
    advex_target_options_default(o);
    cli_flag *fl = cli_get(f, nf, "--target-output");
    long long b, r, k;
    double qps = 0, to;
    if (fl->value && advex_output_parse(fl->value, &o->output))
        return cli_error(cmd, CLI_EXIT_USAGE, "--target-output: %s", advex_last_error());
    if (cli_int(cmd, cli_get(f, nf, "--target-batch"), 1, 1 << 16, &b) || cli_int(cmd, cli_get(f, nf, "--retries"), 0, 100, &r) ||
        cli_float(cmd, cli_get(f, nf, "--timeout"), 0.001, 86400, &to) ||
        cli_int(cmd, cli_get(f, nf, "--target-classes"), 0, 1000000, &k))
        return CLI_EXIT_USAGE;
    if (cli_get(f, nf, "--max-qps")->value && cli_float(cmd, cli_get(f, nf, "--max-qps"), 1e-6, 1e9, &qps))
        return CLI_EXIT_USAGE;
    o->batch = b;
    o->retries = (int32_t)r;
    o->timeout_s = to;
    o->max_qps = qps;
    o->classes = k;
    o->query_log = cli_get(f, nf, "--query-log")->value;
    return 0;
}

static void print_one(const advex_eval_result *r) {
    printf("examples: %lld   attack: %s%s   eps: %.6g (%s)\n", (long long)r->n, advex_attack_name(r->attack),
           r->transfer ? " (transfer)" : "", (double)r->eps, r->norm == ADVEX_NORM_L2 ? "L2" : r->norm == ADVEX_NORM_L1 ? "L1" : "L-inf");
    printf("clean accuracy:       %.2f%%\n", r->n ? 100.0 * (double)r->clean_correct / (double)r->n : 0.0);
    printf("adversarial accuracy: %.2f%%\n", 100.0 * r->robust_accuracy);
    printf("success rate:         %.2f%% (of the %lld correctly classified)\n", 100.0 * r->success_rate,
           (long long)r->clean_correct);
    if (r->target_hits >= 0)
        printf("targeted success:     %.2f%% (classified as the target)\n",
               r->n ? 100.0 * (double)r->target_hits / (double)r->n : 0.0);
    if (r->queries_count > 0)
        printf("queries:              mean %.1f, median %.0f per success (clean query included; of the %lld "
               "successful)\n", r->queries_mean, r->queries_median, (long long)r->queries_count);
    printf("queries sent:         %lld\n", (long long)r->queries_total);
    printf("seconds:              %.2f\n", r->seconds);
}

typedef struct run_ctx {
    const char *cmd;
    advex_target *t;
    advex_model *sur;
    advex_dataset d;
    advex_eval_result res[ADVEX_SWEEP_MAX_ATTACKS * 8];
    int nres;
} run_ctx;

/* every attack at every eps; attack's --out gets the (single) run's examples */
static int run_all(run_ctx *x, cli_flag *f, int nf, const advex_attack_config *base, const advex_attack_kind *kinds,
                   int nk, const float *eps, int ne, long long batch, float *adv) {
    for (int a = 0; a < nk; a++)
        for (int e = 0; e < ne; e++) {
            advex_attack_config c = *base;
            c.kind = kinds[a];
            c.eps = eps[e];
            cli_flag *nm = cli_get(f, nf, "--norm");
            if (!nm->value) c.norm = advex_attack_default_norm(c.kind);
            if (x->nres >= (int)(sizeof x->res / sizeof *x->res))
                return cli_error(x->cmd, CLI_EXIT_USAGE, "too many runs (attacks x eps)");
            cli_progress bar;
            cli_progress_init(&bar, advex_attack_name(c.kind), cli_opts.quiet);
            advex_status st = advex_target_eval(x->t, x->sur, &x->d, &c, batch, cli_eval_progress, &bar, adv,
                                                &x->res[x->nres]);
            cli_progress_done(&bar);
            if (st) return cli_fail_run(x->cmd, st);
            x->nres++;
        }
    return 0;
}

/* one run as print_one; several as the table plus their queries */
static void print_results(const run_ctx *x) {
    if (x->nres == 1) {
        print_one(&x->res[0]);
        return;
    }
    char *text = NULL;
    if (advex_eval_table(x->res, x->nres, &text) == ADVEX_OK) fputs(text, stdout);
    free(text);
    for (int i = 0; i < x->nres; i++)
        printf("%s eps %.4g: queries sent %lld, median per success %.0f\n", advex_attack_name(x->res[i].attack),
               (double)x->res[i].eps, (long long)x->res[i].queries_total, x->res[i].queries_median);
}

/* attack: the result, then --out */
static int finish(run_ctx *x, cli_flag *f, int nf, const float *adv) {
    const char *out = cli_get(f, nf, "--out")->value;
    print_results(x);
    if (out && adv) {
        int64_t dims[4] = {x->d.n, x->d.c, x->d.h, x->d.w};
        advex_status st = advex_npy_save_f32(out, adv, 4, dims);
        if (st) return cli_fail(x->cmd, st);
        printf("wrote %s\n", out);
    }
    return 0;
}

/* eval: every attack at every eps through the sweep (state file, per-example lines, gate) */
static int eval_sweep(run_ctx *x, cli_flag *f, int nf, advex_sweep_config *sc, const advex_gate *gate) {
    const char *url = cli_get(f, nf, "--target")->value, *data = cli_get(f, nf, "--data")->value;
    const char *json = cli_get(f, nf, "--json")->value, *per_example = cli_get(f, nf, "--per-example")->value;
    cli_sweep_ui ui = {.run = -1};
    sc->progress = cli_sweep_progress;
    sc->user = &ui;
    advex_sweep *s = NULL;
    advex_status st = advex_eval_sweep(NULL, &x->d, sc, &s);
    if (ui.run >= 0) cli_progress_done(&ui.bar);
    if (st) return cli_fail_run(x->cmd, st);
    int rc = CLI_EXIT_FAIL;
    if (advex_sweep_resumed(s) && !cli_opts.quiet)
        fprintf(stderr, "advex %s: resumed from %s (%lld of %lld example runs were recorded there; their queries "
                "are not sent again)\n", x->cmd, sc->state, (long long)advex_sweep_resumed(s),
                (long long)(x->d.n * advex_sweep_runs(s)));
    x->nres = advex_sweep_runs(s);
    memcpy(x->res, advex_sweep_result(s, 0), (size_t)x->nres * sizeof *x->res);
    cli_print_warnings(x->cmd, advex_sweep_warnings(s));
    print_results(x);
    char *text = NULL;
    if (json) {
        if ((st = advex_sweep_json(s, url, data, &text))) { rc = cli_fail(x->cmd, st); goto done; }
        int w = cli_write_file_atomic(x->cmd, json, text, strlen(text));
        free(text);
        if (w) goto done;
    }
    if (per_example && (st = advex_sweep_write_per_example(s, &x->d, per_example))) {
        rc = cli_fail(x->cmd, st);
        goto done;
    }
    rc = cli_eval_ci_finish(x->cmd, f, nf, s, url, data, advex_sweep_warnings(s), gate);
done:
    advex_sweep_free(s);
    return rc;
}

int cli_target_main(const char *cmd, int argc, char **argv) {
    int is_attack = strcmp(cmd, "attack") == 0;
    cli_flag f[] = {
        {"--target", "URL", "http://HOST:PORT/v2/models/NAME (Open Inference Protocol v2) or exec:COMMAND", NULL, 0},
        {"--data", "D", "data spec", "fashion-mnist:test", 0},
        {"--data-dir", "DIR", "directory of the named data set", NULL, 0},
        {"--limit", "N", "the first N examples (0 = all)", "0", 0},
        CLI_DATA_FLAGS,
        {"--attack", "A,...", "none, square or simba (scores), hsj (labels or scores), or any attack with --surrogate", "square", 0},
        {"--eps", "E,...", "radius (L-inf, L2 or L1 per --norm; 8/255 accepted); eval: a comma list", NULL, 0},
        {"--norm", "N", "linf, l2 or l1 (default linf; l1: square only)", NULL, 0},
        {"--targeted", "T", "targeted attack (--target's values when attacking a local model): a class, next, "
                            "least-likely (scores only) or random", NULL, 0},
        {"--queries", "Q", "hard query budget per example, the clean query included", "5000", 0},
        {"--p-init", "P", "square: initial fraction of pixels changed (default 0.8)", NULL, 0},
        {"--steps", "K", "with --surrogate: the attack's iterations", NULL, 0},
        {"--surrogate", "FILE", "craft on this local ONNX model, judge through the target (transfer)", NULL, 0},
        {"--batch", "B", "examples per batch", "256", 0},
        {"--seed", "S", "seed", "0", 0},
        {"--target-output", "K", "logits, probs or label (default: from the server's metadata)", NULL, 0},
        {"--target-classes", "K", "classes of a label-only target (default: the data set's)", "0", 0},
        {"--target-batch", "B", "images per request", "64", 0},
        {"--query-log", "FILE", "append one JSON line per request: time, batch, latency, outcome", NULL, 0},
        {"--max-qps", "R", "at most R requests per second", NULL, 0},
        {"--timeout", "S", "seconds per request", "30", 0},
        {"--retries", "N", "retries on 5xx and connection errors (backoff 0.1 s doubling)", "3", 0},
        {is_attack ? "--out" : "--json", "FILE", is_attack ? "write the adversarial examples (.npy)" : "write the results as JSON", NULL, 0},
        /* eval only (the last EVAL_ONLY): */
        {"--state", "FILE", "record progress in FILE after every batch; the same command resumes from it without "
                            "querying the examples it records (refused when any setting or the target differs)", NULL, 0},
        {"--per-example", "FILE", "write one JSON line per example and eps: label, clean prediction, the attack "
                                  "that broke it, final prediction, queries, perturbation norms", NULL, 0},
        {"--min-robust-accuracy", "X|A=X,...", "gate: exit 3 when the worst-case robust accuracy (X) or that of "
                                               "attack A (A=X) falls below X at any eps; X a fraction or a percentage", NULL, 0},
        {"--junit", "FILE", "also write JUnit XML: one test case per attack and eps, failures under the gate", NULL, 0},
    };
    enum { EVAL_ONLY = 4 };
    const int nf = (int)(sizeof f / sizeof *f) - (is_attack ? EVAL_ONLY : 0);
    int r = cli_parse(cmd, "--target URL|exec:CMD --data D --attack square|simba|hsj --eps E --queries Q "
                      "[--targeted T] [options]",
                      "Attack a model behind an inference server (or a program) with forward queries only.",
                      argc, argv, f, nf);
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    advex_attack_config base;
    advex_attack_config_default(&base);
    advex_attack_kind kinds[ADVEX_SWEEP_MAX_ATTACKS];
    float eps[ADVEX_SWEEP_MAX_EPS];
    int nk, ne;
    long long limit, batch, seed;
    if (!CLI_GET(f, "--eps")->value) return cli_error(cmd, CLI_EXIT_USAGE, "--eps E is required");
    if ((r = cli_parse_attacks(cmd, CLI_GET(f, "--attack")->value, kinds, is_attack ? 1 : ADVEX_SWEEP_MAX_ATTACKS, &nk)))
        return r;
    if (advex_parse_eps_list(CLI_GET(f, "--eps")->value, eps, is_attack ? 1 : ADVEX_SWEEP_MAX_EPS, &ne))
        return cli_error(cmd, CLI_EXIT_USAGE, "--eps: %s", advex_last_error());
    if (cli_int(cmd, CLI_GET(f, "--limit"), 0, INT64_MAX, &limit) || cli_int(cmd, CLI_GET(f, "--batch"), 1, 1 << 20, &batch) ||
        cli_int(cmd, CLI_GET(f, "--seed"), 0, INT64_MAX, &seed))
        return CLI_EXIT_USAGE;
    cli_flag *tf = CLI_GET(f, "--target");
    const char *url = tf->value;
    if (!is_endpoint(url)) /* --target URL --target next: the last one won */
        return cli_error(cmd, CLI_EXIT_USAGE, "--target %s: here --target is the model's URL; give the targeted "
                         "attack's class with --targeted", url ? url : "");
    tf->value = NULL; /* here --target is the endpoint, not a targeted attack's class */
    r = cli_attack_options(cmd, f, nf, &base);
    tf->value = url;
    if (r) return r;
    cli_flag *tg = CLI_GET(f, "--targeted");
    if (tg->value && advex_target_parse(tg->value, &base.target, &base.target_label))
        return cli_error(cmd, CLI_EXIT_USAGE, "--targeted: %s", advex_last_error());
    base.seed = (uint64_t)seed;
    for (int a = 0; a < nk; a++)
        if (!CLI_GET(f, "--surrogate")->value && kinds[a] != ADVEX_ATTACK_NONE && kinds[a] != ADVEX_ATTACK_SQUARE &&
            kinds[a] != ADVEX_ATTACK_HSJ && kinds[a] != ADVEX_ATTACK_SIMBA)
            return cli_error(cmd, CLI_EXIT_USAGE, "--attack %s needs the model's gradients, which a --target does not "
                             "give: use square, simba or hsj, or craft it on a local --surrogate", advex_attack_name(kinds[a]));
    int square = 0; /* no flag is ignored: the tuning flags need the attack they tune */
    for (int a = 0; a < nk; a++) square |= kinds[a] == ADVEX_ATTACK_SQUARE;
    if (CLI_GET(f, "--p-init")->seen && !square)
        return cli_error(cmd, CLI_EXIT_USAGE, "--p-init tunes square, which is not among the attacks");
    if (CLI_GET(f, "--steps")->seen && !CLI_GET(f, "--surrogate")->value)
        return cli_error(cmd, CLI_EXIT_USAGE, "--steps tunes an attack crafted on a --surrogate; through a target "
                         "the budget is --queries");
    advex_target_options o;
    if ((r = target_options(cmd, f, nf, &o))) return r;
    cli_files fs = {.n = 0};
    advex_gate gate;
    memset(&gate, 0, sizeof gate);
    if (!is_attack) {
        if ((r = cli_eval_ci_prepare(cmd, f, nf, kinds, nk, ne, &fs, &gate))) return r;
        cli_files_out(&fs, "--state", CLI_GET(f, "--state")->value);
        cli_files_out(&fs, "--per-example", CLI_GET(f, "--per-example")->value);
    }
    cli_files_in(&fs, "--surrogate", CLI_GET(f, "--surrogate")->value);
    cli_files_data(&fs, "--data", CLI_GET(f, "--data")->value, CLI_GET(f, "--data-dir")->value);
    cli_files_out(&fs, is_attack ? "--out" : "--json", CLI_GET(f, is_attack ? "--out" : "--json")->value);
    if ((r = cli_files_check(cmd, &fs))) return r;

    run_ctx *x = calloc(1, sizeof *x);
    float *adv = NULL;
    int rc = CLI_EXIT_FAIL;
    if (!x) return cli_error(cmd, CLI_EXIT_FAIL, "out of memory");
    x->cmd = cmd;
    advex_status st = advex_target_open(CLI_GET(f, "--target")->value, &o, &x->t);
    if (st) { rc = cli_fail(cmd, st); goto done; }
    int64_t chw[3];
    advex_target_input_shape(x->t, chw);
    advex_data_expect want = {chw[0], chw[1], chw[2], advex_target_num_classes(x->t)};
    if ((r = cli_load_data_want(cmd, CLI_GET(f, "--data")->value, "test", CLI_GET(f, "--data-dir")->value, limit,
                                &want, &x->d))) { rc = r; goto done; }
    if (CLI_GET(f, "--surrogate")->value &&
        (r = cli_load_model(cmd, CLI_GET(f, "--surrogate")->value, NULL, 0, &x->sur))) { rc = r; goto done; }
    if (is_attack && CLI_GET(f, "--out")->value &&
        !(adv = malloc((size_t)(x->d.n * chw[0] * chw[1] * chw[2]) * sizeof(float)))) {
        rc = cli_error(cmd, CLI_EXIT_FAIL, "out of memory");
        goto done;
    }
    if (!is_attack) {
        advex_sweep_config sc;
        advex_sweep_config_default(&sc);
        sc.attacks = kinds;
        sc.n_attacks = nk;
        sc.eps = eps;
        sc.n_eps = ne;
        sc.attack = base;
        sc.default_norms = !CLI_GET(f, "--norm")->value;
        sc.batch = batch;
        sc.surrogate = x->sur;
        sc.checks = 0; /* (they need gradients) */
        sc.target = x->t;
        sc.state = CLI_GET(f, "--state")->value;
        rc = eval_sweep(x, f, nf, &sc, &gate);
        goto done;
    }
    if ((r = run_all(x, f, nf, &base, kinds, nk, eps, ne, batch, adv)) || (r = finish(x, f, nf, adv))) { rc = r; goto done; }
    rc = CLI_EXIT_OK;
done:
    free(adv);
    advex_target_free(x->t);
    advex_model_free(x->sur);
    advex_dataset_free(&x->d);
    free(x);
    return rc;
}
