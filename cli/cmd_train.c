/* advex train: train a built-in architecture on a data set (clean or adversarially: FGSM,
 * FGSM-RS, PGD-AT, TRADES), with per-epoch held-out robustness, the catastrophic-overfitting
 * guard, atomic per-epoch checkpoints and --resume; save the model as ONNX. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"

typedef struct train_ui {
    cli_progress bar;
    int epoch, quiet, steps;
    double last_end;
} train_ui;

static int on_progress(void *user, const advex_train_progress *p) {
    train_ui *ui = user;
    if (p->epoch_end) {
        if (ui->epoch) cli_progress_done(&ui->bar);
        ui->epoch = 0;
        printf("epoch %d/%d  loss %.4f  train acc %.2f%%  eps %.4g", p->epoch, p->epochs, p->loss, 100.0 * p->accuracy,
               (double)p->eps);
        if (p->holdout)
            printf("  | held-out %lld: clean %.2f%%  FGSM %.2f%%  PGD-%d %.2f%%", (long long)p->holdout,
                   100.0 * p->val_clean, 100.0 * p->val_fgsm, ui->steps, 100.0 * p->val_pgd);
        printf("  (%.0f s)\n", p->seconds);
        fflush(stdout);
        if (p->overfit)
            fprintf(stderr,
                    "advex train: catastrophic overfitting at epoch %d: held-out PGD accuracy %.2f%% fell more than the "
                    "guard's margin below its best while FGSM accuracy did not fall (%.2f%%); restored the weights of "
                    "epoch %d (the best held-out PGD accuracy) and stopped\n",
                    p->epoch, 100.0 * p->val_pgd, 100.0 * p->val_fgsm, p->best_epoch);
        return cli_interrupted;
    }
    char extra[128];
    snprintf(extra, sizeof extra, "epoch %d/%d loss %.4f acc %.2f%%", p->epoch, p->epochs, p->loss, 100.0 * p->accuracy);
    if (p->epoch != ui->epoch) {
        if (ui->epoch) cli_progress_done(&ui->bar);
        cli_progress_init(&ui->bar, "train", ui->quiet);
        ui->epoch = p->epoch;
    }
    cli_progress_update(&ui->bar, p->batch, p->batches, extra);
    return cli_interrupted;
}

/* The test data must not be the training data: all of it inside the training set is
 * refused (the "test accuracy" would be a training accuracy), some of it is a warning. */
static int check_held_out(const char *cmd, const advex_dataset *train, const char *train_spec,
                          const advex_dataset *test, const char *test_spec) {
    int64_t shared;
    advex_status st = advex_dataset_overlap(train, test, &shared);
    if (st) return cli_fail(cmd, st);
    if (shared == test->n)
        return cli_error(cmd, CLI_EXIT_USAGE, "--test-data %s: all %lld test examples are also in the training data "
                         "(--data %s): its accuracy would be a training accuracy; give held-out data or --test-data none",
                         test_spec, (long long)test->n, train_spec);
    if (shared > 0)
        fprintf(stderr, "advex %s: WARNING: %lld of the %lld test examples (%.1f%%) of %s are also in the training data "
                "(%s): the reported test accuracy overstates generalisation\n", cmd, (long long)shared,
                (long long)test->n, 100.0 * (double)shared / (double)test->n, test_spec, train_spec);
    return 0;
}

/* What the flags ask for (a preset first, then only the flags given override it). */
typedef struct train_opts {
    advex_train_config tc;
    const char *preset, *arch;
    int preset_threads;
    long long seed, limit, holdout; /* holdout -1: the default */
} train_opts;

/* The flags into o; 0 or an exit code (one line printed). */
static int train_settings(const char *cmd, cli_flag *f, int nf, train_opts *o) {
    advex_train_config_default(&o->tc);
    const char *preset = o->preset = cli_get(f, nf, "--preset")->value;
    o->arch = cli_get(f, nf, "--arch")->value;
    if (preset) {
        const char *parch = NULL;
        if (advex_train_preset(preset, &o->tc, &parch, &o->preset_threads))
            return cli_error(cmd, CLI_EXIT_USAGE, "--preset: %s", advex_last_error());
        if (!cli_get(f, nf, "--arch")->seen) o->arch = parch;
    }
/* with a preset, only flags given on the command line override it */
#define TAKE(name) (!preset || cli_get(f, nf, name)->seen)
    long long epochs, batch, v;
    double x;
    if (cli_int(cmd, cli_get(f, nf, "--seed"), 0, INT64_MAX, &o->seed) || cli_int(cmd, cli_get(f, nf, "--limit"), 0, INT64_MAX, &o->limit))
        return CLI_EXIT_USAGE;
    o->tc.seed = (uint64_t)o->seed;
    if (TAKE("--epochs")) { if (cli_int(cmd, cli_get(f, nf, "--epochs"), 0, 100000, &epochs)) return CLI_EXIT_USAGE; o->tc.epochs = (int)epochs; }
    if (TAKE("--batch")) { if (cli_int(cmd, cli_get(f, nf, "--batch"), 1, 1 << 20, &batch)) return CLI_EXIT_USAGE; o->tc.batch = batch; }
    if (TAKE("--lr")) { if (cli_float(cmd, cli_get(f, nf, "--lr"), 1e-12, 1e3, &x)) return CLI_EXIT_USAGE; o->tc.lr = (float)x; }
    if (TAKE("--momentum")) { if (cli_float(cmd, cli_get(f, nf, "--momentum"), 0, 1, &x)) return CLI_EXIT_USAGE; o->tc.momentum = (float)x; }
    if (TAKE("--weight-decay")) { if (cli_float(cmd, cli_get(f, nf, "--weight-decay"), 0, 10, &x)) return CLI_EXIT_USAGE; o->tc.weight_decay = (float)x; }
    if (TAKE("--opt")) {
        const char *opt = cli_get(f, nf, "--opt")->value;
        if (strcmp(opt, "sgd") == 0) o->tc.opt = ADVEX_OPT_SGD;
        else if (strcmp(opt, "adam") == 0) o->tc.opt = ADVEX_OPT_ADAM;
        else return cli_error(cmd, CLI_EXIT_USAGE, "--opt: unknown optimiser '%s' (sgd or adam)", opt);
    }
    if (TAKE("--schedule")) {
        const char *sch = cli_get(f, nf, "--schedule")->value;
        if (strcmp(sch, "cyclic") == 0) sch = "onecycle";
        if (advex_lr_schedule_parse(sch, &o->tc.schedule)) return cli_error(cmd, CLI_EXIT_USAGE, "--schedule: %s", advex_last_error());
    }
    if (TAKE("--adv") && advex_adv_mode_parse(cli_get(f, nf, "--adv")->value, &o->tc.adv))
        return cli_error(cmd, CLI_EXIT_USAGE, "--adv: %s", advex_last_error());
    if (cli_get(f, nf, "--eps")->value && advex_parse_eps(cli_get(f, nf, "--eps")->value, &o->tc.eps))
        return cli_error(cmd, CLI_EXIT_USAGE, "--eps: %s", advex_last_error());
    if (o->tc.adv != ADVEX_ADV_NONE && !(o->tc.eps > 0))
        return cli_error(cmd, CLI_EXIT_USAGE, "--adv %s needs --eps E > 0", advex_adv_mode_name(o->tc.adv));
    if (o->tc.adv == ADVEX_ADV_NONE && cli_get(f, nf, "--eps")->seen && !preset)
        return cli_error(cmd, CLI_EXIT_USAGE, "--eps given without --adv (fgsm, fgsm-rs, pgd, trades)");
    if (cli_get(f, nf, "--alpha")->value) {
        if (advex_parse_eps(cli_get(f, nf, "--alpha")->value, &o->tc.alpha) || !(o->tc.alpha > 0) || o->tc.alpha > 1)
            return cli_error(cmd, CLI_EXIT_USAGE, "--alpha: bad value '%s' (a step in (0, 1], e.g. 0.02 or 2/255)",
                             cli_get(f, nf, "--alpha")->value);
    }
    if (cli_get(f, nf, "--adv-weight")->value) {
        if (cli_float(cmd, cli_get(f, nf, "--adv-weight"), 0, 1, &x)) return CLI_EXIT_USAGE;
        o->tc.adv_weight = (float)x;
    }
    if (cli_get(f, nf, "--pgd-steps")->value) {
        if (cli_int(cmd, cli_get(f, nf, "--pgd-steps"), 1, 1000, &v)) return CLI_EXIT_USAGE;
        o->tc.pgd_steps = (int)v;
    }
    if (cli_get(f, nf, "--pgd-from")->value) {
        if (cli_int(cmd, cli_get(f, nf, "--pgd-from"), 1, 100000, &v)) return CLI_EXIT_USAGE;
        o->tc.pgd_from_epoch = (int)v;
    }
    if (TAKE("--beta")) { if (cli_float(cmd, cli_get(f, nf, "--beta"), 0, 1000, &x)) return CLI_EXIT_USAGE; o->tc.beta = (float)x; }
    if (TAKE("--eps-ramp")) { if (cli_int(cmd, cli_get(f, nf, "--eps-ramp"), 0, 100000, &v)) return CLI_EXIT_USAGE; o->tc.eps_ramp = (int)v; }
    if (TAKE("--holdout-steps")) {
        if (cli_int(cmd, cli_get(f, nf, "--holdout-steps"), 1, 1000, &v)) return CLI_EXIT_USAGE;
        o->tc.holdout_steps = (int)v;
    }
    if (TAKE("--overfit-drop")) {
        if (cli_float(cmd, cli_get(f, nf, "--overfit-drop"), 1e-6, 2, &x)) return CLI_EXIT_USAGE;
        o->tc.overfit_drop = (float)x;
    }
    o->holdout = -1;
    if (cli_get(f, nf, "--holdout")->value && cli_int(cmd, cli_get(f, nf, "--holdout"), 0, INT64_MAX, &o->holdout)) return CLI_EXIT_USAGE;
#undef TAKE
    return 0;
}

/* The run's settings on stderr before it starts. */
static void print_header(const char *arch, const advex_model *m, const char *data_spec, const advex_dataset *train,
                         const advex_train_config *tc, const char *preset, const char *ckpt) {
    fprintf(stderr, "training %s (%lld parameters) on %s: %lld examples, %d epochs, batch %lld, %s lr %g, %d threads",
            arch, (long long)advex_model_num_params(m), data_spec, (long long)(train->n - tc->holdout), tc->epochs,
            (long long)tc->batch, tc->opt == ADVEX_OPT_SGD ? "sgd" : "adam", (double)tc->lr, advex_get_threads());
    if (preset) fprintf(stderr, ", preset %s", preset);
    if (tc->adv != ADVEX_ADV_NONE) {
        fprintf(stderr, "\nadversarial: %s eps %g", advex_adv_mode_name(tc->adv), (double)tc->eps);
        if (tc->pgd_from_epoch > 0) fprintf(stderr, " (fgsm-rs before epoch %d)", tc->pgd_from_epoch);
        if (tc->eps_ramp) fprintf(stderr, ", eps ramp %d epochs", tc->eps_ramp);
    }
    if (tc->holdout) fprintf(stderr, "; held out: last %lld", (long long)tc->holdout);
    if (ckpt) fprintf(stderr, "; checkpoint %s%s", ckpt, tc->resume ? " (resume)" : "");
    fprintf(stderr, "\n");
}

int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    cli_flag f[] = {
        {"--preset", "P", "a named recipe (fmnist-robust, fmnist-fast; docs/training.md); other flags override it", NULL, 0},
        {"--arch", "A", "architecture: small, cnn, wide, resnet", "small", 0},
        {"--data", "D", "training data spec (a bare named set means its training split)", "fashion-mnist", 0},
        {"--test-data", "D", "data for the final accuracy (default: the test split of a named set; 'none' to skip); "
                             "refused when it is the training data", NULL, 0},
        {"--data-dir", "DIR", "directory of the named data set (default $ADVEX_DATA or /usr/share/datasets/fashion-mnist)", NULL, 0},
        {"--limit", "N", "use the first N training examples (0 = all)", "0", 0},
        CLI_DATA_FLAGS,
        {"--epochs", "N", "passes over the training data", "3", 0},
        {"--batch", "B", "mini-batch size", "128", 0},
        {"--opt", "O", "optimiser: sgd or adam", "adam", 0},
        {"--lr", "LR", "peak learning rate", "0.003", 0},
        {"--schedule", "S", "learning-rate schedule: constant, cosine, onecycle (cyclic), step", "onecycle", 0},
        {"--momentum", "M", "SGD momentum", "0.9", 0},
        {"--weight-decay", "W", "L2 weight decay", "0", 0},
        {"--adv", "M", "adversarial training: none, fgsm, fgsm-rs, pgd, trades", "none", 0},
        {"--eps", "E", "L-inf radius for adversarial training (0.1, 8/255)", NULL, 0},
        {"--alpha", "A", "attack step (default: fgsm eps, fgsm-rs 1.25 eps, pgd/trades 2.5 eps/steps)", NULL, 0},
        {"--adv-weight", "W", "w in w*J(x) + (1-w)*J(x') (default: fgsm 0.5, fgsm-rs/pgd 0)", NULL, 0},
        {"--pgd-steps", "K", "PGD/TRADES inner steps (default: pgd 7, trades 5)", NULL, 0},
        {"--pgd-from", "E", "pgd/trades: use FGSM-RS before epoch E (1-based), the mode from then on", NULL, 0},
        {"--beta", "B", "TRADES weight of the KL term", "6", 0},
        {"--eps-ramp", "E", "raise eps linearly from 0 over the first E epochs", "0", 0},
        {"--holdout", "N", "hold out the last N training examples; clean/FGSM/PGD accuracy on them after each epoch "
                           "(default: 1000 with --adv, else 0)", NULL, 0},
        {"--holdout-steps", "K", "PGD steps of the held-out evaluation", "10", 0},
        {"--overfit-drop", "F", "catastrophic-overfitting guard: held-out PGD accuracy this far below its best while "
                                "FGSM accuracy rose (fraction; > 1 disables)", "0.2", 0},
        {"--checkpoint", "FILE", "checkpoint written after every epoch (default: OUT.ckpt; 'none' for none)", NULL, 0},
        {"--resume", NULL, "continue from the checkpoint if it exists", NULL, 0},
        {"--seed", "S", "seed for initialisation, shuffling and attacks", "0", 0},
        {"--out", "FILE", "where to write the trained model (.onnx)", NULL, 0},
    };
    int r = cli_parse(cmd, "--arch A --out M.onnx [options]", "Train a built-in architecture (clean or adversarially) and save it as ONNX.",
                      argc, argv, f, (int)(sizeof f / sizeof *f));
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *out = CLI_GET(f, "--out")->value;
    if (!out) return cli_error(cmd, CLI_EXIT_USAGE, "--out FILE is required");
    train_opts o;
    if ((r = train_settings(cmd, f, (int)(sizeof f / sizeof *f), &o))) return r;
    advex_train_config tc = o.tc;
    const char *preset = o.preset, *arch = o.arch;
    long long holdout = o.holdout;
    if (preset && !cli_opts.threads_seen) advex_set_threads(o.preset_threads);
    tc.resume = CLI_GET(f, "--resume")->seen;
    const char *ckpt_flag = CLI_GET(f, "--checkpoint")->value;
    char *ckpt = NULL;
    if (!ckpt_flag || strcmp(ckpt_flag, "none") != 0) {
        const char *base = ckpt_flag ? ckpt_flag : out;
        size_t len = strlen(base) + 8;
        if (!(ckpt = malloc(len))) return cli_error(cmd, CLI_EXIT_FAIL, "out of memory");
        snprintf(ckpt, len, ckpt_flag ? "%s" : "%s.ckpt", base);
    } else if (tc.resume) {
        return cli_error(cmd, CLI_EXIT_USAGE, "--resume needs a checkpoint (not --checkpoint none)");
    }
    tc.checkpoint = ckpt;
    advex_status pst = advex_train_config_check(&tc);
    if (pst) { free(ckpt); return cli_error(cmd, CLI_EXIT_USAGE, "%s", advex_last_error()); }
    int quiet = cli_opts.quiet;
    const char *data_spec = CLI_GET(f, "--data")->value, *data_dir = CLI_GET(f, "--data-dir")->value;
    const char *test_spec = CLI_GET(f, "--test-data")->value;
    if (!test_spec && strncmp(data_spec, "fashion-mnist", 13) == 0) test_spec = "fashion-mnist:test";
    if (test_spec && strcmp(test_spec, "none") == 0) test_spec = NULL;

    advex_model *m = NULL;
    advex_dataset train = {0}, test = {0};
    int rc = CLI_EXIT_FAIL;
    cli_files fs = {.n = 0};
    cli_files_data(&fs, "--data", data_spec, data_dir);
    if (test_spec) cli_files_data(&fs, "--test-data", test_spec, data_dir);
    cli_files_out(&fs, "--out", out);
    cli_files_out(&fs, ckpt_flag ? "--checkpoint" : "--checkpoint (default OUT.ckpt)", ckpt);
    if ((r = cli_files_check(cmd, &fs))) { rc = r; goto done; }
    if ((r = cli_load_model(cmd, NULL, arch, (uint64_t)o.seed, &m))) { rc = r; goto done; }
    if ((r = cli_load_data_for(cmd, data_spec, "train", data_dir, o.limit, m, &train))) { rc = r; goto done; }
    if (test_spec && (r = cli_load_data_for(cmd, test_spec, "test", data_dir, 0, m, &test))) { rc = r; goto done; }
    if (test_spec && (r = check_held_out(cmd, &train, data_spec, &test, test_spec))) { rc = r; goto done; }
    if (holdout >= 0) tc.holdout = holdout;
    else if (!preset || tc.adv == ADVEX_ADV_NONE) tc.holdout = tc.adv != ADVEX_ADV_NONE ? 1000 : 0;
    if (tc.holdout > 0 && tc.holdout * 2 > train.n) {
        if (holdout >= 0) { rc = cli_error(cmd, CLI_EXIT_USAGE, "--holdout %lld: leaves fewer held-out than training examples (%lld in all)",
                                           holdout, (long long)train.n); goto done; }
        tc.holdout = train.n / 10;
    }
    if (!quiet) print_header(arch, m, data_spec, &train, &tc, preset, ckpt);
    train_ui ui;
    memset(&ui, 0, sizeof ui);
    ui.bar.quiet = ui.quiet = quiet;
    ui.steps = tc.holdout_steps > 0 ? tc.holdout_steps : 10;
    cli_dist_train(&tc); /* mpirun: data-parallel, --batch is the global batch (cli/dist.h) */
    double t0 = cli_now();
    advex_status st = advex_train(m, &train, &tc, on_progress, &ui);
    if (ui.epoch) cli_progress_done(&ui.bar);
    if (st) {
        rc = cli_fail(cmd, st);
        if (st == ADVEX_ERR_INTERRUPTED) {
            rc = 130;
            if (ckpt) fprintf(stderr, "advex train: the last complete epoch is in %s; continue with --resume\n", ckpt);
        }
        goto done;
    }
    cli_dist_synced();
    if (cli_dist_rank() != 0) { rc = CLI_EXIT_OK; goto done; } /* rank 0 writes the model */
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
    free(ckpt);
    advex_model_free(m);
    advex_dataset_free(&train);
    advex_dataset_free(&test);
    return rc;
}
