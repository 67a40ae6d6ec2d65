/* advex demo: the main job on the embedded default. Trains the `small` model on
 * Fashion-MNIST (or reuses the cached one), then prints clean accuracy and the FGSM
 * accuracy-vs-eps table on the test set. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static int mkdir_p(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* $ADVEX_CACHE, $XDG_CACHE_HOME/advex, $HOME/.cache/advex; 0, or -1 when none is set. Never
 * a shared fallback like /tmp/.cache: anyone could create it first and plant the "cached"
 * model there. */
static int default_cache_dir(char *out, size_t n) {
    const char *c = getenv("ADVEX_CACHE");
    if (c && *c) { snprintf(out, n, "%s", c); return 0; }
    c = getenv("XDG_CACHE_HOME");
    if (c && *c) { snprintf(out, n, "%s/advex", c); return 0; }
    c = getenv("HOME");
    if (c && *c) { snprintf(out, n, "%s/.cache/advex", c); return 0; }
    return -1;
}

static int on_train(void *user, const advex_train_progress *p) {
    cli_progress *bar = user;
    char extra[96];
    snprintf(extra, sizeof extra, "epoch %d/%d loss %.4f acc %.2f%%", p->epoch, p->epochs, p->loss, 100.0 * p->accuracy);
    int64_t done = (int64_t)(p->epoch - 1) * p->batches + p->batch, total = (int64_t)p->epochs * p->batches;
    cli_progress_update(bar, done, total, extra);
    return cli_interrupted;
}

/* one bar for the whole FGSM table (every eps: 5 passes over the test set) */
static int on_sweep(void *user, const advex_sweep_progress *p) {
    cli_progress_update(user, (int64_t)p->run * p->total + p->done, (int64_t)p->runs * p->total, NULL);
    return cli_interrupted;
}

int cmd_demo(int argc, char **argv) {
    const char *cmd = "demo";
    cli_flag f[] = {
        {"--data-dir", "DIR", "directory of Fashion-MNIST (default $ADVEX_DATA or /usr/share/datasets/fashion-mnist)", NULL, 0},
        {"--cache", "DIR", "where the trained model is cached (default $ADVEX_CACHE, $XDG_CACHE_HOME/advex or ~/.cache/advex)", NULL, 0},
        {"--retrain", NULL, "train again even if a cached model exists", NULL, 0},
        {"--epochs", "N", "training epochs", "3", 0},
        {"--limit", "N", "evaluate on the first N test images (0 = all 10000)", "0", 0},
    };
    int r = cli_parse(cmd, "[options]",
                      "Train the small model (Wong et al. 2020's MNIST net) on Fashion-MNIST, cache it, and print the\n"
                      "clean accuracy and the FGSM accuracy-vs-eps table on the test set.",
                      argc, argv, f, (int)(sizeof f / sizeof *f));
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    long long epochs, limit;
    if (cli_int(cmd, CLI_GET(f, "--epochs"), 1, 1000, &epochs) || cli_int(cmd, CLI_GET(f, "--limit"), 0, INT64_MAX, &limit))
        return CLI_EXIT_USAGE;
    int quiet = cli_opts.quiet;
    const char *data_dir = CLI_GET(f, "--data-dir")->value;
    char cache[3000], path[3100];
    if (CLI_GET(f, "--cache")->value) snprintf(cache, sizeof cache, "%s", CLI_GET(f, "--cache")->value);
    else if (default_cache_dir(cache, sizeof cache))
        return cli_error(cmd, CLI_EXIT_USAGE, "no cache directory: $HOME is not set; set $ADVEX_CACHE or "
                         "$XDG_CACHE_HOME, or pass --cache DIR");
    snprintf(path, sizeof path, "%s/small-fashion-mnist-e%lld.onnx", cache, epochs);

    advex_model *m = NULL;
    advex_dataset train = {0}, test = {0};
    advex_sweep *sweep = NULL;
    char *table = NULL;
    int rc = CLI_EXIT_FAIL;
    advex_status st;
    struct stat sb;
    int have = !CLI_GET(f, "--retrain")->seen && stat(path, &sb) == 0;
    if (have) {
        if ((st = advex_model_load_onnx(path, &m))) {
            fprintf(stderr, "advex demo: cached model unusable (%s); training again\n", advex_last_error());
            have = 0;
        } else {
            printf("using cached model %s\n", path);
        }
    }
    if (!have) {
        if (mkdir_p(cache) != 0) { rc = cli_error(cmd, CLI_EXIT_FAIL, "%s: cannot create cache directory: %s", cache, strerror(errno)); goto done; }
        if ((r = cli_load_model(cmd, NULL, "small", 0, &m))) { rc = r; goto done; }
        if ((r = cli_load_data(cmd, "fashion-mnist:train", data_dir, 0, &train))) { rc = r; goto done; }
        advex_train_config tc;
        advex_train_config_default(&tc);
        tc.epochs = (int)epochs;
        printf("training small (%lld parameters) on Fashion-MNIST: %lld images, %d epochs, Adam lr %g, batch %lld, %d threads\n",
               (long long)advex_model_num_params(m), (long long)train.n, tc.epochs, (double)tc.lr, (long long)tc.batch,
               advex_get_threads());
        fflush(stdout);
        cli_progress bar;
        cli_progress_init(&bar, "train", quiet);
        double t0 = cli_now();
        st = advex_train(m, &train, &tc, on_train, &bar);
        cli_progress_done(&bar);
        if (st) { rc = cli_fail_run(cmd, st); goto done; }
        printf("trained in %.1f s\n", cli_now() - t0);
        if ((st = advex_model_save_onnx(m, path))) { rc = cli_fail(cmd, st); goto done; }
        printf("cached model: %s\n", path);
    }
    if ((r = cli_load_data(cmd, "fashion-mnist:test", data_dir, limit, &test))) { rc = r; goto done; }
    static const float eps[] = {0.0f, 0.02f, 0.05f, 0.1f, 0.2f};
    static const advex_attack_kind fgsm = ADVEX_ATTACK_FGSM;
    advex_sweep_config sc;
    advex_sweep_config_default(&sc);
    sc.attacks = &fgsm;
    sc.n_attacks = 1;
    sc.eps = eps;
    sc.n_eps = (int)(sizeof eps / sizeof *eps);
    sc.checks = 0;
    cli_progress bar;
    cli_progress_init(&bar, "fgsm", quiet);
    sc.progress = on_sweep;
    sc.user = &bar;
    st = advex_eval_sweep(m, &test, &sc, &sweep);
    cli_progress_done(&bar);
    if (st) { rc = cli_fail_run(cmd, st); goto done; }
    if ((st = advex_eval_table(advex_sweep_result(sweep, 0), advex_sweep_runs(sweep), &table))) {
        rc = cli_fail(cmd, st);
        goto done;
    }
    printf("\nFGSM on the Fashion-MNIST test set (untargeted, L-inf)\n%s", table);
    rc = CLI_EXIT_OK;
done:
    free(table);
    advex_sweep_free(sweep);
    advex_model_free(m);
    advex_dataset_free(&train);
    advex_dataset_free(&test);
    return rc;
}
