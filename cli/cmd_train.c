/* advex train: train a built-in architecture on a data set and save it as ONNX. */
#include <string.h>

#include "cli.h"

typedef struct train_ui {
    cli_progress bar;
    int epoch;
} train_ui;

static int on_progress(void *user, const advex_train_progress *p) {
    train_ui *ui = user;
    char extra[128];
    snprintf(extra, sizeof extra, "epoch %d/%d loss %.4f acc %.2f%%", p->epoch, p->epochs, p->loss, 100.0 * p->accuracy);
    if (p->epoch != ui->epoch) {
        if (ui->epoch) cli_progress_done(&ui->bar);
        cli_progress_init(&ui->bar, "train", ui->bar.quiet);
        ui->epoch = p->epoch;
    }
    cli_progress_update(&ui->bar, p->batch, p->batches, extra);
    return cli_interrupted;
}

int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    cli_flag f[] = {
        {"--arch", "A", "architecture: small, cnn, wide, resnet", "small", 0},
        {"--data", "D", "training data spec", "fashion-mnist:train", 0},
        {"--test-data", "D", "data for the final accuracy (default: the test split of a named set; 'none' to skip)", NULL, 0},
        {"--data-dir", "DIR", "directory of the named data set (default $ADVEX_DATA or /usr/share/datasets/fashion-mnist)", NULL, 0},
        {"--limit", "N", "use the first N training examples (0 = all)", "0", 0},
        {"--epochs", "N", "passes over the training data", "3", 0},
        {"--batch", "B", "mini-batch size", "128", 0},
        {"--opt", "O", "optimiser: sgd or adam", "adam", 0},
        {"--lr", "LR", "peak learning rate", "0.003", 0},
        {"--schedule", "S", "learning-rate schedule: constant, cosine, onecycle, step", "onecycle", 0},
        {"--momentum", "M", "SGD momentum", "0.9", 0},
        {"--weight-decay", "W", "L2 weight decay", "0", 0},
        {"--seed", "S", "seed for initialisation and shuffling", "0", 0},
        {"--threads", "T", "threads (0 = all cores)", "0", 0},
        {"--out", "FILE", "where to write the trained model (.onnx)", NULL, 0},
        {"--quiet", NULL, "no progress output", NULL, 0},
    };
    int r = cli_parse(cmd, "--arch A --out M.onnx [options]", "Train a built-in architecture and save it as ONNX.",
                      argc, argv, f, (int)(sizeof f / sizeof *f));
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *out = CLI_GET(f, "--out")->value;
    if (!out) return cli_error(cmd, CLI_EXIT_USAGE, "--out FILE is required");
    advex_train_config tc;
    advex_train_config_default(&tc);
    long long epochs, batch, seed, limit;
    double lr, mom, wd;
    if (cli_int(cmd, CLI_GET(f, "--epochs"), 0, 100000, &epochs) || cli_int(cmd, CLI_GET(f, "--batch"), 1, 1 << 20, &batch) ||
        cli_int(cmd, CLI_GET(f, "--seed"), 0, INT64_MAX, &seed) || cli_int(cmd, CLI_GET(f, "--limit"), 0, INT64_MAX, &limit) ||
        cli_float(cmd, CLI_GET(f, "--lr"), 1e-12, 1e3, &lr) || cli_float(cmd, CLI_GET(f, "--momentum"), 0, 1, &mom) ||
        cli_float(cmd, CLI_GET(f, "--weight-decay"), 0, 10, &wd) || cli_threads(cmd, CLI_GET(f, "--threads")))
        return CLI_EXIT_USAGE;
    const char *opt = CLI_GET(f, "--opt")->value;
    if (strcmp(opt, "sgd") == 0) tc.opt = ADVEX_OPT_SGD;
    else if (strcmp(opt, "adam") == 0) tc.opt = ADVEX_OPT_ADAM;
    else return cli_error(cmd, CLI_EXIT_USAGE, "--opt: unknown optimiser '%s' (sgd or adam)", opt);
    advex_status pst = advex_lr_schedule_parse(CLI_GET(f, "--schedule")->value, &tc.schedule);
    if (pst) return cli_error(cmd, CLI_EXIT_USAGE, "--schedule: %s", advex_last_error());
    tc.epochs = (int)epochs;
    tc.batch = batch;
    tc.lr = (float)lr;
    tc.momentum = (float)mom;
    tc.weight_decay = (float)wd;
    tc.seed = (uint64_t)seed;
    int quiet = CLI_GET(f, "--quiet")->seen;
    const char *data_spec = CLI_GET(f, "--data")->value, *data_dir = CLI_GET(f, "--data-dir")->value;
    const char *test_spec = CLI_GET(f, "--test-data")->value;
    if (!test_spec && strncmp(data_spec, "fashion-mnist", 13) == 0) test_spec = "fashion-mnist:test";
    if (test_spec && strcmp(test_spec, "none") == 0) test_spec = NULL;

    if (cli_check_writable(cmd, out)) return CLI_EXIT_FAIL;
    advex_model *m = NULL;
    advex_dataset train = {0}, test = {0};
    int rc = CLI_EXIT_FAIL;
    if ((r = cli_load_model(cmd, NULL, CLI_GET(f, "--arch")->value, (uint64_t)seed, &m))) { rc = r; goto done; }
    if ((r = cli_load_data(cmd, data_spec, data_dir, limit, &train))) { rc = r; goto done; }
    if (test_spec && (r = cli_load_data(cmd, test_spec, data_dir, 0, &test))) { rc = r; goto done; }
    if (!quiet)
        fprintf(stderr, "training %s (%lld parameters) on %s: %lld examples, %d epochs, batch %lld, %s lr %g, %d threads\n",
                CLI_GET(f, "--arch")->value, (long long)advex_model_num_params(m), data_spec, (long long)train.n,
                tc.epochs, (long long)tc.batch, opt, (double)tc.lr, advex_get_threads());
    train_ui ui;
    memset(&ui, 0, sizeof ui);
    ui.bar.quiet = quiet;
    double t0 = cli_now();
    advex_status st = advex_train(m, &train, &tc, on_progress, &ui);
    if (ui.epoch) cli_progress_done(&ui.bar);
    if (st) { rc = cli_fail(cmd, st); if (st == ADVEX_ERR_INTERRUPTED) rc = 130; goto done; }
    double secs = cli_now() - t0;
    printf("trained %d epochs in %.1f s\n", tc.epochs, secs);
    if (test_spec) {
        int64_t correct = 0;
        if ((st = advex_eval_clean(m, &test, 256, &correct))) { rc = cli_fail(cmd, st); goto done; }
        printf("test accuracy: %.2f%% (%lld/%lld on %s)\n", 100.0 * (double)correct / (double)test.n, (long long)correct,
               (long long)test.n, test_spec);
    }
    if ((st = advex_model_save_onnx(m, out))) { rc = cli_fail(cmd, st); goto done; }
    printf("saved %s\n", out);
    rc = CLI_EXIT_OK;
done:
    advex_model_free(m);
    advex_dataset_free(&train);
    advex_dataset_free(&test);
    return rc;
}
