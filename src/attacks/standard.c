/* `standard`: AutoAttack's protocol (Croce & Hein 2020) without FAB-T: APGD-CE, then APGD-T
 * (targeted DLR over the top-k classes), then Square, each run only on the examples that
 * are still classified correctly, all in the configured norm (L-inf or L2, as AutoAttack's
 * standard versions). Per example the first adversarial found is returned, and info->stage
 * records which stage found it (1, 2, 3; 0 = robust or clean-misclassified). The stage list
 * is one table (advex_attack_stages). */
#include <stdlib.h>
#include <string.h>

#include "attacks/attack_internal.h"

int advex_attack_stages(const advex_attack_config *c, advex_attack_kind *stages, int max) {
    /* AutoAttack's standard list (autoattack.py set_version), FAB-T left out */
    static const advex_attack_kind standard[] = {ADVEX_ATTACK_APGD_CE, ADVEX_ATTACK_APGD_T, ADVEX_ATTACK_SQUARE};
    if (c->kind != ADVEX_ATTACK_STANDARD) return 0;
    int n = (int)(sizeof standard / sizeof *standard);
    for (int s = 0; s < n && s < max; s++) stages[s] = standard[s];
    return n < max ? n : max;
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
    if ((st = advex_model_forward(m, x, n, z))) goto done;
    for (int64_t i = 0; i < n; i++) {
        robust[i] = advex_argmax(z + i * k, k) == y[i];
        stage[i] = 0;
    }
    advex_attack_kind stages[ADVEX_ATTACK_MAX_STAGES];
    int nst = advex_attack_stages(c, stages, ADVEX_ATTACK_MAX_STAGES);
    for (int s = 0; s < nst; s++) {
        atk_fn fn = atk_family(stages[s]);
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
        advex_attack_config sub = *c;
        sub.kind = stages[s];
        sub.target = ADVEX_TARGET_NONE;
        sub.seed = c->seed + (uint64_t)s;
        advex_attack_info si = {qg, sg};
        memset(qg, 0, (size_t)a * sizeof(int64_t));
        memset(sg, 0, (size_t)a * sizeof(int32_t));
        if ((st = fn(m, &sub, xg, yg, a, 0, idg, xo, &si))) goto done;
        /* the model's own verdict on what the stage returned */
        if ((st = advex_model_forward(m, xo, a, z))) goto done;
        for (int64_t j = 0; j < a; j++) {
            int64_t i = rows[j];
            if (stages[s] == ADVEX_ATTACK_SQUARE && info && info->queries) info->queries[i] = qg[j];
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
