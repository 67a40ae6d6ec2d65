/* advex attack: craft adversarial examples for a data set with any attack, report clean and
 * adversarial accuracy, success rate (and norms, queries, stages where the attack has them),
 * and write the examples as float32 (N,C,H,W) .npy or as PNG. Transfer with --surrogate; uap.
 * --input photo.png|.jpg attacks one image (read as an image folder's: the model's channels,
 * --resize/--crop or else fitted to the model's input size) and prints the prediction before
 * and after. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"

#define MAX_NAMES 1000

/* One PNG or JPEG as a 1-example data set shaped for the model (as an image folder's images
 * are: --resize/--crop, else fitted to the model's input size); label from --label or the
 * model. */
static int load_input(const char *cmd, const char *path, cli_flag *label, advex_model *m, advex_dataset *d) {
    int64_t c, h, w, chw[3];
    int fitted = 0;
    advex_model_input_shape(m, chw);
    advex_data_expect want = {chw[0], chw[1], chw[2], advex_model_num_classes(m)};
    memset(d, 0, sizeof *d);
    advex_status st = advex_image_load(path, &want, &cli_opts.prep, &d->x, &c, &h, &w, &fitted);
    if (st) return cli_fail(cmd, st);
    if (h != chw[1] || w != chw[2])
        return cli_error(cmd, CLI_EXIT_FAIL, "%s: image is %lldx%lld (width x height) after --resize/--crop but the "
                         "model expects %lldx%lld", path, (long long)w, (long long)h, (long long)chw[2],
                         (long long)chw[1]);
    if (fitted && !cli_opts.quiet)
        fprintf(stderr, "advex %s: %s: resized (shorter side to %lld) and centre-cropped to %lldx%lld (width x "
                "height), the model's input size (--resize S --crop C choose)\n", cmd, path, (long long)(h > w ? h : w), (long long)w,
                (long long)h);
    d->y = malloc(sizeof(int32_t));
    if (!d->y) return cli_error(cmd, CLI_EXIT_FAIL, "out of memory");
    d->n = 1;
    d->c = c;
    d->h = h;
    d->w = w;
    int64_t k = advex_model_num_classes(m);
    d->num_classes = k;
    if (label->value) {
        long long v;
        if (cli_int(cmd, label, 0, k - 1, &v)) return CLI_EXIT_USAGE;
        d->y[0] = (int32_t)v;
    } else {
        float *z = malloc((size_t)k * sizeof(float));
        if (!z) return cli_error(cmd, CLI_EXIT_FAIL, "out of memory");
        if ((st = advex_model_forward(m, d->x, 1, z))) { free(z); return cli_fail(cmd, st); }
        advex_argmax_rows(z, 1, k, d->y);
        free(z);
    }
    return 0;
}

/* --class-names LIST | fashion-mnist, else the data set's names. */
static int parse_names(const char *cmd, const char *list, const advex_dataset *d, int64_t k, const char **names,
                       char **buf) {
    if (!list) {
        if (d->class_names && d->num_classes >= k)
            for (int64_t i = 0; i < k && i < MAX_NAMES; i++) names[i] = d->class_names[i];
        return 0;
    }
    if (strcmp(list, "fashion-mnist") == 0) {
        for (int i = 0; i < 10 && i < k; i++) names[i] = advex_fashion_mnist_classes[i];
        return 0;
    }
    size_t len = strlen(list);
    *buf = malloc(len + 1);
    if (!*buf) return cli_error(cmd, CLI_EXIT_FAIL, "out of memory");
    memcpy(*buf, list, len + 1);
    int64_t i = 0;
    for (char *p = *buf; p && i < MAX_NAMES; i++) {
        names[i] = p;
        p = strchr(p, ',');
        if (p) *p++ = '\0';
    }
    if (i != k)
        return cli_error(cmd, CLI_EXIT_USAGE, "--class-names: %lld names but the model has %lld classes", (long long)i,
                         (long long)k);
    return 0;
}

static const char *name_of(const char **names, int64_t k, int32_t c, char *buf, size_t n) {
    if (c >= 0 && c < k && c < MAX_NAMES && names[c]) snprintf(buf, n, "%s (class %d)", names[c], (int)c);
    else snprintf(buf, n, "class %d", (int)c);
    return buf;
}

/* The figures of one run, as people read them. */
static void print_result(const advex_eval_result *res, const advex_attack_config *ac, int64_t n, int transfer) {
    if (ac->eps == FLT_MAX)
        printf("examples: %lld   attack: %s%s   eps: unbounded\n", (long long)n, advex_attack_name(ac->kind),
               transfer ? " (transfer)" : "");
    else
        printf("examples: %lld   attack: %s%s   eps: %.6g (%s)\n", (long long)n, advex_attack_name(ac->kind),
               transfer ? " (transfer)" : "", (double)ac->eps, res->norm == ADVEX_NORM_L2 ? "L2" : res->norm == ADVEX_NORM_L1 ? "L1" : "L-inf");
    printf("clean accuracy:       %.2f%%\n", 100.0 * (double)res->clean_correct / (double)n);
    printf("adversarial accuracy: %.2f%%\n", 100.0 * res->robust_accuracy);
    printf("success rate:         %.2f%% (of the %lld correctly classified)\n", 100.0 * res->success_rate,
           (long long)res->clean_correct);
    if (res->norm_count > 0)
        printf("perturbation %s:     median %.4g, mean %.4g (of the %lld successful)\n",
               res->norm == ADVEX_NORM_L2 ? "L2  " : res->norm == ADVEX_NORM_L1 ? "L1  " : "Linf", res->norm_median, res->norm_mean, (long long)res->norm_count);
    if (res->queries_count > 0)
        printf("queries:              mean %.1f, median %.0f (of the %lld successful)\n", res->queries_mean,
               res->queries_median, (long long)res->queries_count);
    for (int s2 = 0; s2 < res->n_stages; s2++)
        printf("stage %d %-9s     removed %lld\n", s2 + 1, advex_attack_name(res->stage_attack[s2]),
               (long long)res->stage_removed[s2]);
}

/* --out: .png (the image, or a grid of several) or .npy. 0 or an exit code. */
static int write_out(const char *cmd, const char *out, const float *adv, const advex_dataset *d) {
    advex_status st;
    size_t ol = strlen(out);
    if (ol >= 4 && strcmp(out + ol - 4, ".png") == 0) {
        if (d->c != 1 && d->c != 3) {
            return cli_error(cmd, CLI_EXIT_FAIL, "%s: PNG needs 1 or 3 channels, the model has %lld", out, (long long)d->c);
        }
        st = d->n == 1 ? advex_png_write(out, adv, d->c, d->h, d->w) : advex_grid_png(out, adv, d->n, d->c, d->h, d->w, 0, 1, 0);
    } else {
        int64_t dims[4] = {d->n, d->c, d->h, d->w};
        st = advex_npy_save_f32(out, adv, 4, dims);
    }
    if (st) return cli_fail(cmd, st);
    printf("wrote %s\n", out);
    return 0;
}

/* The attack, its eps and options from the flags, and the files: inputs exist, no output
 * names an input. 0 or an exit code. */
static int attack_settings(const char *cmd, cli_flag *f, int nf, uint64_t seed, advex_attack_config *ac) {
    advex_status st;
    int r;
    if ((st = advex_attack_parse(cli_get(f, nf, "--attack")->value, &ac->kind)))
        return cli_error(cmd, CLI_EXIT_USAGE, "--attack: %s", advex_last_error());
    if (!cli_get(f, nf, "--eps")->value) {
        if (!advex_attack_is_min_norm(ac->kind)) return cli_error(cmd, CLI_EXIT_USAGE, "--eps E is required");
        ac->eps = FLT_MAX; /* minimal-perturbation attack without a budget */
    } else if ((st = advex_parse_eps(cli_get(f, nf, "--eps")->value, &ac->eps))) {
        return cli_error(cmd, CLI_EXIT_USAGE, "--eps: %s", advex_last_error());
    }
    if ((r = cli_attack_options(cmd, f, nf, ac))) return r;
    const char *ver = cli_get(f, nf, "--version")->value;
    if (ver && strcmp(ver, "rand") == 0)
        return cli_error(cmd, CLI_EXIT_USAGE, "--version rand: a protocol of several attacks, for advex eval");
    ac->seed = seed;
    cli_files fs = {.n = 0};
    cli_files_in(&fs, "--model", cli_get(f, nf, "--model")->value);
    cli_files_in(&fs, "--surrogate", cli_get(f, nf, "--surrogate")->value);
    cli_files_in(&fs, "--input", cli_get(f, nf, "--input")->value);
    if (!cli_get(f, nf, "--input")->value)
        cli_files_data(&fs, "--data", cli_get(f, nf, "--data")->value, cli_get(f, nf, "--data-dir")->value);
    if (ac->kind == ADVEX_ATTACK_UAP)
        cli_files_data(&fs, "--uap-data", cli_get(f, nf, "--uap-data")->value, cli_get(f, nf, "--data-dir")->value);
    cli_files_out(&fs, "--out", cli_get(f, nf, "--out")->value);
    cli_files_out(&fs, "--uap-out", cli_get(f, nf, "--uap-out")->value);
    return cli_files_check(cmd, &fs);
}

int cmd_attack(int argc, char **argv) {
    const char *cmd = "attack";
    if (cli_target_wanted(argc, argv)) return cli_target_main(cmd, argc, argv); /* a model behind an API */
    cli_flag f[] = {
        {"--model", "FILE", "ONNX model to attack", NULL, 0},
        {"--data", "D", "data spec", "fashion-mnist:test", 0},
        {"--data-dir", "DIR", "directory of the named data set", NULL, 0},
        {"--limit", "N", "attack the first N examples (0 = all)", "0", 0},
        CLI_DATA_FLAGS,
        {"--attack", "A", "attack: none, fgsm, fgsm-rs, bim, pgd, mifgsm, apgd-ce, apgd-dlr, apgd-t, square, "
                          "standard, cw, deepfool, uap, fab, fab-t, hsj, simba", "fgsm", 0},
        {"--eps", "E", "radius in input units, L-inf, L2 or L1 per --norm (8/255 accepted); cw/deepfool/fab: a norm "
                       "budget, unbounded when omitted", NULL, 0},
        {"--target", "T", "targeted attack: a class, next, least-likely or random; or a model behind an API: "
                          "http://HOST:PORT/v2/models/NAME or exec:COMMAND (see --target URL --help)", NULL, 0},
        {"--batch", "B", "batch size", "256", 0},
        {"--seed", "S", "seed for random starts, random targets and the model's own randomness", "0", 0},
        {"--out", "FILE", "write the adversarial examples here: .npy (float32 N x C x H x W) or .png (the image "
                          "with --input, else a grid)", NULL, 0},
        {"--input", "FILE", "attack one PNG or JPEG image instead of --data (preprocessed as an image folder's)", NULL, 0},
        {"--label", "K", "--input: the true class (default: the model's prediction)", NULL, 0},
        {"--class-names", "LIST", "comma-separated class names for printing, or fashion-mnist", NULL, 0},
        CLI_ATTACK_FLAGS,
    };
    const int nf = (int)(sizeof f / sizeof *f);
    int r = cli_parse(cmd, "--model M.onnx --data D --eps E [--out adv.npy] [options]",
                      "Craft adversarial examples and report clean accuracy, adversarial accuracy and success rate.",
                      argc, argv, f, nf);
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *model_path = CLI_GET(f, "--model")->value, *out = CLI_GET(f, "--out")->value;
    if (!model_path) return cli_error(cmd, CLI_EXIT_USAGE, "--model FILE is required");
    advex_attack_config ac;
    advex_attack_config_default(&ac);
    long long limit, batch, seed;
    advex_status st;
    if (cli_int(cmd, CLI_GET(f, "--limit"), 0, INT64_MAX, &limit) || cli_int(cmd, CLI_GET(f, "--batch"), 1, 1 << 20, &batch) ||
        cli_int(cmd, CLI_GET(f, "--seed"), 0, INT64_MAX, &seed))
        return CLI_EXIT_USAGE;
    if ((r = attack_settings(cmd, f, nf, (uint64_t)seed, &ac))) return r;
    int quiet = cli_opts.quiet;

    advex_model *m = NULL, *sur = NULL;
    advex_dataset d = {0};
    float *adv = NULL, *delta = NULL;
    int32_t pc = 0, pa = 0;
    float cc = 0, ca = 0;
    const char *names[MAX_NAMES] = {0};
    char *names_buf = NULL;
    int rc = CLI_EXIT_FAIL;
    if ((r = cli_load_model(cmd, model_path, NULL, 0, &m))) { rc = r; goto done; }
    advex_model_seed(m, (uint64_t)seed); /* randomness inside the model, if any */
    if ((r = cli_load_surrogate(cmd, f, nf, m, &sur))) { rc = r; goto done; }
    if ((r = cli_attack_ready(cmd, f, nf, sur ? sur : m, sur != NULL, &ac))) { rc = r; goto done; }
    const char *input = CLI_GET(f, "--input")->value;
    if (input) {
        if ((r = load_input(cmd, input, CLI_GET(f, "--label"), m, &d))) { rc = r; goto done; }
    } else if ((r = cli_load_data_for(cmd, CLI_GET(f, "--data")->value, "test", CLI_GET(f, "--data-dir")->value, limit, m, &d))) {
        rc = r;
        goto done;
    }
    int64_t k = advex_model_num_classes(m), dim = d.c * d.h * d.w;
    if ((r = parse_names(cmd, CLI_GET(f, "--class-names")->value, &d, k, names, &names_buf))) { rc = r; goto done; }
    if (ac.target == ADVEX_TARGET_LABEL && ac.target_label >= k) {
        rc = cli_error(cmd, CLI_EXIT_USAGE, "--target: class %d but the model has %lld classes", ac.target_label, (long long)k);
        goto done;
    }
    adv = malloc((size_t)(d.n * dim) * sizeof(float));
    if (!adv) { rc = cli_error(cmd, CLI_EXIT_FAIL, "out of memory"); goto done; }
    if (ac.kind == ADVEX_ATTACK_UAP && (r = cli_uap_prepare(cmd, f, nf, sur ? sur : m, &ac, batch, &delta))) {
        rc = r;
        goto done;
    }
    if (ac.kind != ADVEX_ATTACK_UAP) {
        advex_attack_config chk = ac;
        if (chk.eps == FLT_MAX) chk.eps = 1e30f;
        cli_run_checks(cmd, f, nf, m, &d, &chk);
    }
    cli_progress bar;
    cli_progress_init(&bar, advex_attack_name(ac.kind), quiet);
    advex_eval_result res;
    advex_eval_outputs eo = {adv, NULL, NULL, NULL, NULL};
    if (input) { eo.clean_pred = &pc; eo.adv_pred = &pa; eo.clean_conf = &cc; eo.adv_conf = &ca; }
    st = cli_dist_eval_run(m, sur, &d, &ac, batch, cli_eval_progress, &bar, &eo, &res); /* mpirun: sharded */
    cli_progress_done(&bar);
    if (st) { rc = cli_dist_fail(cmd, st); goto done; }
    cli_dist_synced();
    if (cli_dist_rank() != 0) { rc = CLI_EXIT_OK; goto done; } /* rank 0 reports and writes */
    cli_print_warnings(cmd, res.warnings);
    print_result(&res, &ac, d.n, sur != NULL);
    if (ac.kind == ADVEX_ATTACK_UAP) {
        double fool;
        advex_eval_result ur;
        if ((st = advex_eval_uap(m, &d, delta, ac.eps, batch, &fool, &ur))) { rc = cli_fail(cmd, st); goto done; }
        printf("fooling rate:         %.2f%% (prediction changed by the universal perturbation)\n", 100.0 * fool);
    }
    printf("seconds:              %.2f (%.4f per example)\n", res.seconds, res.seconds / (double)d.n);
    if (res.target_hits >= 0)
        printf("targeted success:     %.2f%% (classified as the target)\n",
               100.0 * (double)res.target_hits / (double)d.n);
    if (input) {
        char a[32], b[32];
        printf("before:               %s, confidence %.2f%%%s\n", name_of(names, k, pc, a, sizeof a), 100.0 * cc,
               CLI_GET(f, "--label")->value ? (pc == d.y[0] ? " (correct)" : " (wrong)") : "");
        printf("after:                %s, confidence %.2f%%%s\n", name_of(names, k, pa, b, sizeof b), 100.0 * ca,
               pa == d.y[0] ? " (attack failed)" : " (attack succeeded)");
    }
    if (out && (r = write_out(cmd, out, adv, &d))) { rc = r; goto done; }
    rc = CLI_EXIT_OK;
done:
    free(adv); free(delta); free(names_buf);
    advex_model_free(m);
    advex_model_free(sur);
    advex_dataset_free(&d);
    return rc;
}
