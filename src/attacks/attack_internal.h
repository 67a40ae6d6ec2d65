/* Helpers shared by the attack implementations (not public). */
#ifndef ADVEX_ATTACK_INTERNAL_H
#define ADVEX_ATTACK_INTERNAL_H

#include "internal.h"

/* xa <- clip(proj_{x,eps}(xa + step * sign(g)), 0, 1) elementwise; sign(0) = 0.
 * step may be negative (targeted attacks descend). */
void advex_sign_step(float *xa, const float *x, const float *g, int64_t n, float step, float eps);

#endif
