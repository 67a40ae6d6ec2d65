/* Robust accuracy over a data set: clean accuracy, robust accuracy (a clean-misclassified
 * example counts as non-robust, AutoAttack's convention) and success rate over the
 * correctly classified examples. */
#ifndef ADVEX_EVAL_H
#define ADVEX_EVAL_H

#include <stdint.h>
#include "status.h"
#include "model.h"
#include "data.h"
#include "attack.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct advex_eval_result {
    advex_attack_kind attack;
    float eps;
    int64_t n;               /* examples evaluated */
    int64_t clean_correct;
    int64_t robust_correct;  /* correct on clean AND on adversarial */
    double robust_accuracy;  /* robust_correct / n */
    double success_rate;     /* 1 - robust_correct / clean_correct (0 if none correct) */
    double seconds;
} advex_eval_result;

/* Called after each batch (done, total); return non-zero to stop (ADVEX_ERR_INTERRUPTED). */
typedef int (*advex_progress_fn)(void *user, int64_t done, int64_t total);

/* Clean accuracy of m on d (batch size `batch`). */
advex_status advex_eval_clean(advex_model *m, const advex_dataset *d, int64_t batch,
                              int64_t *correct);

/* Attack every example of d with c and count. adv_out (n*C*H*W floats) may be NULL;
 * when given it receives the adversarial examples. */
advex_status advex_eval_attack(advex_model *m, const advex_dataset *d,
                               const advex_attack_config *c, int64_t batch,
                               advex_progress_fn progress, void *user, float *adv_out,
                               advex_eval_result *res);

/* argmax of each row of logits (n, c). */
void advex_argmax_rows(const float *logits, int64_t n, int64_t c, int32_t *pred);

#ifdef __cplusplus
}
#endif
#endif
