/* advex: adversarial robustness for neural networks, in C11.
 * One include for the whole public API. */
#ifndef ADVEX_H
#define ADVEX_H

#include "status.h"
#include "tensor.h"
#include "model.h"
#include "data.h"
#include "attack.h"
#include "train.h"
#include "eval.h"
#include "report.h"
#include "interop.h"
#include "target.h"

#define ADVEX_VERSION "0.1.0"

#endif
