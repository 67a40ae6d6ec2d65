/* `standard`: AutoAttack's protocol (Croce & Hein 2020), the attacks of its version
 * (autoattack.py set_version) in its order and settings, each run only on the examples that
 * are still classified correctly, all in the configured norm:
 *   standard  APGD-CE (1 restart), APGD-T (9 targets), FAB-T (9 targets), Square (5000);
 *             L1: APGD-CE (5 restarts) and APGD-T (5 targets), both with the eps schedule
 *             (use_largereps), FAB-T (9 targets), Square (5000)
 *   plus      APGD-CE, APGD-DLR (5 restarts each), FAB (5 restarts), Square (5000), APGD-T
 *             (9 targets), FAB-T (9 targets); the same at L1 (autoattack.py runs it there,
 *             printing "please check": plus was tuned for L-inf and L2)
 * Per example the first adversarial found is returned, and info->stage records which stage
 * found it (1-based; 0 = robust or clean-misclassified). The stage lists are one table. */
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

/* One stage: the attack, its restarts / target classes in AutoAttack (0: the config's) and
 * whether its APGD runs the L1 eps schedule (use_largereps). */
typedef struct aa_stage {
    advex_attack_kind kind;
    int32_t restarts, topk, largereps;
} aa_stage;

static const aa_stage aa_standard[] = {
    {ADVEX_ATTACK_APGD_CE, 0, 0, 0}, {ADVEX_ATTACK_APGD_T, 0, 0, 0}, {ADVEX_ATTACK_FAB_T, 0, 0, 0},
    {ADVEX_ATTACK_SQUARE, 0, 0, 0}};
static const aa_stage aa_standard_l1[] = {
    {ADVEX_ATTACK_APGD_CE, 5, 0, 1}, {ADVEX_ATTACK_APGD_T, 0, 5, 1}, {ADVEX_ATTACK_FAB_T, 0, 0, 0},
    {ADVEX_ATTACK_SQUARE, 0, 0, 0}};
static const aa_stage aa_plus[] = {{ADVEX_ATTACK_APGD_CE, 5, 0, 0}, {ADVEX_ATTACK_APGD_DLR, 5, 0, 0},
                                   {ADVEX_ATTACK_FAB, 5, 0, 0},     {ADVEX_ATTACK_SQUARE, 0, 0, 0},
                                   {ADVEX_ATTACK_APGD_T, 0, 0, 0},  {ADVEX_ATTACK_FAB_T, 0, 0, 0}};

static int aa_table(const advex_attack_config *c, const aa_stage **t) {
    if (c->kind != ADVEX_ATTACK_STANDARD) return 0;
    if (c->version == ADVEX_AA_PLUS) { *t = aa_plus; return (int)(sizeof aa_plus / sizeof *aa_plus); }
    if (c->norm == ADVEX_NORM_L1) { *t = aa_standard_l1; return (int)(sizeof aa_standard_l1 / sizeof *aa_standard_l1); }
    *t = aa_standard;
    return (int)(sizeof aa_standard / sizeof *aa_standard);
}

int advex_attack_stages(const advex_attack_config *c, advex_attack_kind *stages, int max) {
    const aa_stage *t = NULL;
    int n = aa_table(c, &t);
    for (int s = 0; s < n && s < max; s++) stages[s] = t[s].kind;
    return n < max ? n : max;
}

/* The configuration of stage s: AutoAttack's restarts and target classes where it sets them,
 * unless --restarts / --topk asked for others (restarts 1 and topk 0 are the defaults). */
static advex_attack_config stage_config(const advex_attack_config *c, const aa_stage *t, int s) {
    advex_attack_config sub = *c;
    sub.kind = t[s].kind;
    sub.version = ADVEX_AA_STANDARD;
    sub.target = ADVEX_TARGET_NONE;
    sub.seed = c->seed + (uint64_t)s;
    if (t[s].restarts && c->restarts == 1) sub.restarts = t[s].restarts;
    if (t[s].topk && c->topk <= 0) sub.topk = t[s].topk;
    sub.apgd_largereps = t[s].largereps;
    sub.square_unscaled = 1; /* autoattack.py builds its Square with resc_schedule=False */
    return sub;
}

advex_status atk_standard(advex_model *m, const advex_attack_config *c, const float *x, const int32_t *y, int64_t n,
                          int64_t off, const int64_t *ids, float *xadv, advex_attack_info *info) {
    const int64_t d = advex_model_dim(m), k = m->net->classes;
    const size_t fb = sizeof(float);
    char *blk = atk_alloc((size_t)n * (3 * sizeof(int64_t) + (size_t)(2 * d + k) * fb + 3 * sizeof(int32_t) + 1));
    if (!blk) return ADVEX_ERR_NOMEM;
    int64_t *idg = (int64_t *)blk, *rows = idg + n, *qg = rows + n;
    float *xg = (float *)(qg + n), *xo = xg + n * d, *z = xo + n * d;
    int32_t *yg = (int32_t *)(z + n * k), *sg = yg + n, *stage = sg + n;
    unsigned char *robust = (unsigned char *)(stage + n);
    advex_status st;
    memmove(xadv, x, (size_t)(n * d) * fb);
    if (info && info->stage_seconds) memset(info->stage_seconds, 0, (size_t)(n * ADVEX_ATTACK_MAX_STAGES) * sizeof(float));
    if ((st = advex_model_forward(m, x, n, z))) goto done;
    for (int64_t i = 0; i < n; i++) {
        robust[i] = advex_argmax(z + i * k, k) == y[i];
        stage[i] = 0;
    }
    const aa_stage *tab = NULL;
    int nst = aa_table(c, &tab);
    for (int s = 0; s < nst; s++) {
        atk_fn fn = atk_family(tab[s].kind);
        int64_t a = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!robust[i]) continue;
            rows[a] = i;
            idg[a] = ATK_ID(i);
            yg[a] = y[i];
            memcpy(xg + a * d, x + i * d, (size_t)d * fb);
            a++;
        }
        if (a == 0) break;
        advex_attack_config sub = stage_config(c, tab, s);
        advex_attack_info si = {qg, sg, NULL};
        memset(qg, 0, (size_t)a * sizeof(int64_t));
        memset(sg, 0, (size_t)a * sizeof(int32_t));
        double t0 = advex_now();
        if ((st = fn(m, &sub, xg, yg, a, 0, idg, xo, &si))) goto done;
        float share = (float)((advex_now() - t0) / (double)a); /* the stage's time, per example it ran on */
        for (int64_t j = 0; info && info->stage_seconds && j < a; j++)
            info->stage_seconds[rows[j] * ADVEX_ATTACK_MAX_STAGES + s] = share;
        /* the model's own verdict on what the stage returned */
        if ((st = advex_model_forward(m, xo, a, z))) goto done;
        for (int64_t j = 0; j < a; j++) {
            int64_t i = rows[j];
            if (tab[s].kind == ADVEX_ATTACK_SQUARE && info && info->queries) info->queries[i] = qg[j];
            if (advex_argmax(z + j * k, k) != y[i]) {
                memcpy(xadv + i * d, xo + j * d, (size_t)d * fb);
                robust[i] = 0;
                stage[i] = s + 1;
            }
        }
    }
    if (info && info->stage) memcpy(info->stage, stage, (size_t)n * sizeof(int32_t));
done:
    free(blk);
    return st;
}
