/* Named training recipes (advex train --preset NAME): each sets the fields of a
 * documented recipe (docs/training.md); explicit flags override them. */
#include <string.h>

#include "internal.h"

const char *advex_train_preset_names(void) { return "fmnist-robust,fmnist-fast"; }

/* What both Fashion-MNIST recipes share: `small` on one thread, 10 epochs of one-cycle SGD
 * (lr 0.1, momentum 0.9, weight decay 5e-4), batch 128, eps 0.1, held-out 1000 with PGD-10. */
static void fmnist_base(advex_train_config *c) {
    advex_train_config_default(c);
    c->epochs = 10;
    c->batch = 128;
    c->opt = ADVEX_OPT_SGD;
    c->lr = 0.1f;
    c->momentum = 0.9f;
    c->weight_decay = 5e-4f;
    c->schedule = ADVEX_LR_ONECYCLE;
    c->eps = 0.1f;
    c->holdout = 1000;
    c->holdout_steps = 10;
}

advex_status advex_train_preset(const char *name, advex_train_config *c, const char **arch_out, int *threads_out) {
    const char *arch = NULL;
    int threads = 0;
    if (name && strcmp(name, "fmnist-robust") == 0) {
        /* Fashion-MNIST, eps 0.1: FGSM-RS warm-up with an eps ramp, then PGD-AT, one-cycle
         * SGD. Tuned for <= 15 min on a contended 2-core CPU (one thread is faster there). */
        fmnist_base(c);
        arch = "small";
        threads = 1;
        c->adv = ADVEX_ADV_PGD;
        c->pgd_steps = 3;
        c->pgd_from_epoch = 4;
        c->eps_ramp = 3;
        /* a fifth clean loss: 86.24% clean / 75%+ PGD-50x10 where pure PGD-AT gave 85.33% clean */
        c->adv_weight = 0.2f;
    } else if (name && strcmp(name, "fmnist-fast") == 0) {
        /* Wong et al.'s fast adversarial training: FGSM-RS, one-cycle, `small`, a few minutes. */
        fmnist_base(c);
        arch = "small";
        threads = 1;
        c->adv = ADVEX_ADV_FGSM_RS;
        c->eps_ramp = 2;
    } else {
        return advex_set_error(ADVEX_ERR_ARG, "unknown preset '%s' (choose from %s)", name ? name : "",
                               advex_train_preset_names());
    }
    if (arch_out) *arch_out = arch;
    if (threads_out) *threads_out = threads;
    return ADVEX_OK;
}
