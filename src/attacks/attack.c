/* The attack dispatcher: argument checks shared by every attack (advex_attack_check: norms
 * each attack implements, transfer mode, targets, classes), eps = 0 and "none" as the
 * identity, then one call into the attack family's file. */
#include <string.h>

#include "attacks/attack_internal.h"

atk_fn atk_family(advex_attack_kind kind) {
    switch (kind) {
    case ADVEX_ATTACK_FGSM: case ADVEX_ATTACK_FGSM_RS: return atk_fgsm;
    case ADVEX_ATTACK_BIM: case ADVEX_ATTACK_PGD: case ADVEX_ATTACK_MIFGSM: return atk_pgd;
    case ADVEX_ATTACK_APGD_CE: case ADVEX_ATTACK_APGD_DLR: case ADVEX_ATTACK_APGD_T: return atk_apgd;
    case ADVEX_ATTACK_SQUARE: return atk_square;
    case ADVEX_ATTACK_STANDARD: return atk_standard;
    case ADVEX_ATTACK_CW: return atk_cw;
    case ADVEX_ATTACK_DEEPFOOL: return atk_deepfool;
    case ADVEX_ATTACK_UAP: return atk_uap_apply;
    case ADVEX_ATTACK_FAB: case ADVEX_ATTACK_FAB_T: return atk_fab;
    case ADVEX_ATTACK_HSJ: return atk_hsj;
    case ADVEX_ATTACK_SIMBA: return atk_simba;
    default: return NULL;
    }
}

/* 1 if the attack implements the norm. C&W is L2 only (Carlini & Wagner's L-inf variant is a
 * different algorithm, not implemented); L1 is the forms AutoAttack publishes: APGD (Croce &
 * Hein 2021), FAB, Square and standard, which runs them; every other attack implements L-inf
 * and L2. */
static int norm_supported(advex_attack_kind kind, advex_norm norm) {
    if (kind == ADVEX_ATTACK_CW) return norm == ADVEX_NORM_L2;
    if (norm == ADVEX_NORM_L1)
        return kind == ADVEX_ATTACK_APGD_CE || kind == ADVEX_ATTACK_APGD_DLR || kind == ADVEX_ATTACK_APGD_T ||
               kind == ADVEX_ATTACK_FAB || kind == ADVEX_ATTACK_FAB_T || kind == ADVEX_ATTACK_SQUARE ||
               kind == ADVEX_ATTACK_STANDARD;
    return norm == ADVEX_NORM_LINF || norm == ADVEX_NORM_L2;
}

static const char *norm_name(advex_norm norm) {
    return norm == ADVEX_NORM_L2 ? "L2" : norm == ADVEX_NORM_L1 ? "L1" : "L-inf";
}

advex_status advex_attack_check(const advex_model *m, const advex_attack_config *c) {
    if (!(c->eps >= 0)) return advex_set_error(ADVEX_ERR_ARG, "eps must be >= 0 (got %g)", (double)c->eps);
    if (c->norm != ADVEX_NORM_LINF && c->norm != ADVEX_NORM_L2 && c->norm != ADVEX_NORM_L1)
        return advex_set_error(ADVEX_ERR_ARG, "unknown norm %d", (int)c->norm);
    if (c->version != ADVEX_AA_STANDARD && c->kind != ADVEX_ATTACK_STANDARD)
        return advex_set_error(ADVEX_ERR_ARG, "%s: an AutoAttack version ('%s') applies to standard only",
                               advex_attack_name(c->kind), advex_aa_version_name(c->version));
    if (c->version < 0 || c->version >= ADVEX_AA_COUNT_)
        return advex_set_error(ADVEX_ERR_ARG, "unknown AutoAttack version %d", (int)c->version);
    if (c->kappa < 0 || !isfinite(c->kappa)) return advex_set_error(ADVEX_ERR_ARG, "kappa must be >= 0");
    if (c->eot > 100000) return advex_set_error(ADVEX_ERR_ARG, "eot must be at most 100000 (got %d)", (int)c->eot);
    if (!isfinite(c->alpha) || !isfinite(c->momentum))
        return advex_set_error(ADVEX_ERR_ARG, "alpha and momentum must be finite");
    if (c->kind == ADVEX_ATTACK_NONE) return ADVEX_OK;
    if (!atk_family(c->kind)) return advex_set_error(ADVEX_ERR_ARG, "unknown attack kind %d", (int)c->kind);
    if (!norm_supported(c->kind, c->norm))
        return advex_set_error(ADVEX_ERR_ARG, "%s: the %s norm is not implemented (%s)", advex_attack_name(c->kind),
                               norm_name(c->norm), c->kind == ADVEX_ATTACK_CW ? "cw is L2 only" :
                               "L1: apgd-ce, apgd-dlr, apgd-t, fab, fab-t, square, standard");
    if (c->no_early_stop && (c->kind == ADVEX_ATTACK_STANDARD || c->kind == ADVEX_ATTACK_DEEPFOOL ||
                             c->kind == ADVEX_ATTACK_FAB || c->kind == ADVEX_ATTACK_FAB_T))
        return advex_set_error(ADVEX_ERR_ARG, "%s stops each example at the crafting model's decision boundary: no "
                               "transfer mode (with a surrogate use pgd, mifgsm, apgd-ce, apgd-t, or cw with a kappa)",
                               advex_attack_name(c->kind));
    if (c->kind == ADVEX_ATTACK_UAP && !c->uap_delta)
        return advex_set_error(ADVEX_ERR_ARG, "uap: no universal perturbation given (compute one first)");
    if (c->target != ADVEX_TARGET_NONE && (c->kind == ADVEX_ATTACK_STANDARD || c->kind == ADVEX_ATTACK_APGD_T ||
                                           c->kind == ADVEX_ATTACK_UAP || c->kind == ADVEX_ATTACK_FAB ||
                                           c->kind == ADVEX_ATTACK_FAB_T))
        return advex_set_error(ADVEX_ERR_ARG, "%s does not take a target (it picks its own, is untargeted or is "
                               "universal)", advex_attack_name(c->kind));
    if (c->kind == ADVEX_ATTACK_FAB_T && m->net->classes < 2)
        return advex_set_error(ADVEX_ERR_ARG, "fab-t needs at least 2 classes");
    if ((c->kind == ADVEX_ATTACK_APGD_DLR || c->kind == ADVEX_ATTACK_APGD_T || c->kind == ADVEX_ATTACK_STANDARD) &&
        m->net->classes < 4 && !(c->kind == ADVEX_ATTACK_APGD_DLR && m->net->classes >= 3 && c->target == ADVEX_TARGET_NONE))
        return advex_set_error(ADVEX_ERR_ARG, "%s needs DLR, which needs at least %d classes (model has %lld)",
                               advex_attack_name(c->kind), c->kind == ADVEX_ATTACK_APGD_DLR ? 3 : 4,
                               (long long)m->net->classes);
    return ADVEX_OK;
}

advex_status advex_attack_batch_info(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y,
                                     int64_t n, int64_t batch_offset, float *x_adv, advex_attack_info *info) {
    advex_status st = advex_attack_check(m, c);
    if (st) return st;
    int64_t d = advex_model_dim(m);
    if (n <= 0) return ADVEX_OK;
    if (info && info->queries) memset(info->queries, 0, (size_t)n * sizeof(int64_t));
    if (info && info->stage) memset(info->stage, 0, (size_t)n * sizeof(int32_t));
    if (c->kind == ADVEX_ATTACK_NONE || c->eps == 0.0f) {
        memmove(x_adv, x, (size_t)(n * d) * sizeof(float));
        return ADVEX_OK;
    }
    /* a randomized model draws from the stream of (its seed, batch_offset, the attack): the same
     * attack on the same batch draws the same, whatever ran before (advex_model_seed_batch) */
    advex_model_seed_batch(m, batch_offset, ADVEX_DRAW_ATTACK, c->kind);
    /* EOT: every gradient the attack takes (advex_model_grad_loop) averages c->eot passes */
    int32_t eot = m->eot;
    m->eot = c->eot > 1 ? c->eot : 1;
    st = atk_family(c->kind)(m, c, x, y, n, batch_offset, NULL, x_adv, info);
    m->eot = eot;
    return st;
}

advex_status advex_attack_batch(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y,
                                int64_t n, int64_t batch_offset, float *x_adv) {
    return advex_attack_batch_info(m, c, x, y, n, batch_offset, x_adv, NULL);
}
