/* Translation of ONNX's random ops (randomized defences, src/ops/random.c): RandomNormalLike,
 * RandomUniformLike, Bernoulli (on their run-time input's shape) and RandomNormal,
 * RandomUniform (a fixed `shape`), float output only. The `seed` attribute is read and not
 * honoured: advex_model_seed (eval --seed) seeds the whole model. */
#include <stdio.h>
#include <string.h>

#include "onnx_internal.h"

int onnx_is_random_op(advex_op_type op) { return op >= ADVEX_OP_RANDOM_NORMAL_LIKE && op <= ADVEX_OP_RANDOM_UNIFORM; }

int onnx_check_random(const Onnx__NodeProto *nd, char *why, size_t n) {
    int64_t dt;
    if (onnx_attr_int(nd, "dtype", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &dt)) return -1;
    if (dt != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) return snprintf(why, n, "%s dtype=%lld (float only)", nd->op_type, (long long)dt), 0;
    return 1;
}

advex_status onnx_translate_random(const Onnx__NodeProto *nd, const char *label, advex_op_type op, int n_in,
                                   advex_attrs *a) {
    advex_status st;
    int want = op == ADVEX_OP_RANDOM_NORMAL || op == ADVEX_OP_RANDOM_UNIFORM ? 0 : 1;
    if (n_in != want)
        return advex_set_error(ADVEX_ERR_FORMAT, "%s: %d inputs (expected %d)", label, n_in, want);
    if (op == ADVEX_OP_RANDOM_NORMAL_LIKE || op == ADVEX_OP_RANDOM_NORMAL) {
        if ((st = onnx_attr_float(nd, "mean", 0.0f, &a->alpha)) || (st = onnx_attr_float(nd, "scale", 1.0f, &a->beta)))
            return st;
    } else if (op != ADVEX_OP_BERNOULLI) {
        if ((st = onnx_attr_float(nd, "low", 0.0f, &a->min)) || (st = onnx_attr_float(nd, "high", 1.0f, &a->max)))
            return st;
    }
    if (!want) {
        int cnt;
        if ((st = onnx_attr_ints(nd, "shape", a->ints, ADVEX_MAX_DIMS, &cnt))) return st;
        if (cnt < 1) return advex_set_error(ADVEX_ERR_FORMAT, "%s: needs a shape of 1 to %d dims", label, ADVEX_MAX_DIMS);
        a->n_ints = cnt;
    }
    return ADVEX_OK;
}
