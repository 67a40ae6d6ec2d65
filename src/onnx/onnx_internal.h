/* Internals of the ONNX importer/exporter (src/onnx/): a string hash map, load-time
 * constant tensors whose integers may depend on the symbolic batch size N, the constant
 * folder, attribute readers and the per-op translation. Not installed; not public API. */
#ifndef ADVEX_ONNX_INTERNAL_H
#define ADVEX_ONNX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "onnx.pb-c.h"

/* Limits on hostile files. */
#define ADVEX_ONNX_MAX_NODES 100000              /* graph nodes */
#define ADVEX_ONNX_MAX_NUMEL ((int64_t)1 << 31)  /* floats in one initializer */
#define ADVEX_ONNX_MAX_FOLD ((int64_t)1 << 26)   /* elements of one folded result */
#define ADVEX_ONNX_MAX_DEPTH 100                 /* protobuf message nesting (protobuf's own default) */
#define ADVEX_ONNX_MAX_MESSAGES ((int64_t)1 << 22) /* protobuf messages in one file */
#define ADVEX_ONNX_MAX_FOLD_BYTES ((int64_t)1 << 30) /* all folded results of one import */
#define ADVEX_ONNX_MIN_OPSET 7
#define ADVEX_ONNX_MAX_OPSET 18

/* ---- names (names.c) ----------------------------------------------------------------- */

/* Open-addressing map from borrowed strings to ints. */
typedef struct onnx_map {
    const char **keys;
    int *vals;
    size_t cap, n;
} onnx_map;

int onnx_map_init(onnx_map *m, size_t expected);   /* 0 ok, -1 out of memory */
int onnx_map_get(const onnx_map *m, const char *key); /* -1 when absent */
int onnx_map_put(onnx_map *m, const char *key, int val); /* insert or replace; -1 nomem */
void onnx_map_free(onnx_map *m);

/* ---- wire pre-scan (wire.c) ----------------------------------------------------------- */

typedef struct onnx_wire_stats {
    int depth;          /* deepest message nesting (the root message is 0) */
    int64_t messages;   /* messages the unpacker would allocate */
    int64_t bytes;      /* an upper estimate of the unpacked size */
} onnx_wire_stats;

/* Walk protobuf wire data of message type root without recursion, along the descriptors'
 * message-typed fields: ADVEX_ERR_LIMIT past ADVEX_ONNX_MAX_DEPTH levels, more than
 * ADVEX_ONNX_MAX_MESSAGES messages or a graph of more than ADVEX_ONNX_MAX_NODES nodes or
 * initializers; ADVEX_ERR_FORMAT on malformed wire data. The error detail has no file name. */
advex_status onnx_wire_scan(const void *buf, size_t len, const ProtobufCMessageDescriptor *root,
                            onnx_wire_stats *out);

/* ---- load-time constants (fold.c) ------------------------------------------------------ */

/* An integer known at load time as v + n*N, N the (symbolic) batch size. */
typedef struct onnx_sym {
    int64_t v, n;
} onnx_sym;

typedef struct onnx_const {
    int is_float;       /* float data in f, else integers in i */
    int ndim;
    int64_t dims[ADVEX_MAX_DIMS];
    int64_t numel;
    float *f;           /* (numel) owned, unless borrowed */
    onnx_sym *i;        /* (numel) owned */
    int borrowed;       /* f is a graph value's data (import_build.c, materialise): not freed here */
} onnx_const;

/* Allocate c (zeroed) for a shape; error (naming what) on rank > 6, negative or huge
 * shapes (limit: elements). */
advex_status onnx_const_alloc(onnx_const *c, int is_float, int ndim, const int64_t *dims,
                              int64_t limit, const char *what);
void onnx_const_free(onnx_const *c);
/* Decode a TensorProto (float, double, int8..int64, uint8, bool; raw_data or typed fields). */
advex_status onnx_const_from_tensor(const Onnx__TensorProto *t, onnx_const *c, const char *what);
/* Element k as a float (0 on success; -1 when it depends on N). */
int onnx_const_float(const onnx_const *c, int64_t k, float *out);
/* Element k as a plain integer (0 on success; -1 when it depends on N). */
int onnx_const_int(const onnx_const *c, int64_t k, int64_t *out);

/* 1 when the folder can evaluate op_type (given load-time inputs). */
int onnx_foldable(const char *op_type);
/* onnx_fold's answer for a result whose shape depends on the batch size (Expand or
 * ConstantOfShape to (N, ...)): not an error; the importer builds the node as a run-time op. */
#define ONNX_FOLD_RUNTIME ((advex_status)1)
/* Evaluate a node whose inputs are all known: in[k] (NULL for an absent optional input).
 * For Shape and Size, in[0] may be NULL and shape/shape_ndim give the input's symbolic shape.
 * Results are counted against *budget (bytes; NULL: unbounded), ADVEX_ERR_LIMIT past it. */
advex_status onnx_fold(const Onnx__NodeProto *nd, int opset, const onnx_const *const *in,
                       int n_in, const onnx_sym *shape, int shape_ndim, int64_t *budget, onnx_const *out);
/* Output k of a Split whose inputs are all known. */
advex_status onnx_fold_split(const Onnx__NodeProto *nd, int opset, const onnx_const *const *in, int n_in, int k,
                             int64_t *budget, onnx_const *out);
/* The sizes of a Split's n_out parts of a dimension dim (input 1, the attribute or equal parts). */
advex_status onnx_split_sizes(const Onnx__NodeProto *nd, int opset, const onnx_const *const *in, int n_in, int64_t dim,
                              int n_out, int64_t *sz);
/* 1 when some integer of c depends on the batch size. */
int onnx_const_batch_dependent(const onnx_const *c);

/* ---- the folder's pieces (fold.c, fold_ext.c) ------------------------------------------- */

typedef struct onnx_fctx {
    const Onnx__NodeProto *nd;
    char label[160];   /* "node 'x' (Op)" */
    int64_t *budget;   /* bytes of folded results left for this import, or NULL */
    int opset;
} onnx_fctx;

advex_status onnx_fold_err(const onnx_fctx *f, advex_status s, const char *msg);
/* out allocated for a shape, counted against f->budget */
advex_status onnx_fold_alloc(const onnx_fctx *f, onnx_const *out, int is_float, int ndim, const int64_t *dims);
/* Plain integers of a 1-D (or scalar) constant into v[cap]; *n their count. */
advex_status onnx_fold_ints(const onnx_fctx *f, const onnx_const *c, int64_t *v, int cap, int *n, const char *what);
void onnx_copy_elem(onnx_const *dst, int64_t k, const onnx_const *src, int64_t j);
int onnx_norm_axis(int64_t ax, int r, int64_t *out); /* 0 when out of [-r, r) */
void onnx_strides(int ndim, const int64_t *dims, int64_t *st);
/* v + n*N arithmetic, 0 on overflow or a result not linear in N (N*N, inexact division) */
int onnx_sym_add(onnx_sym a, onnx_sym b, int neg, onnx_sym *o);
int onnx_sym_mul(onnx_sym a, onnx_sym b, onnx_sym *o);
int onnx_sym_div(onnx_sym a, onnx_sym b, onnx_sym *o);
/* The ops of fold_ext.c (comparisons, logic, Where, Mod, Min/Max, Pow and float math, Range,
 * Expand, Tile, ScatterND, Size, Split, reductions). */
int onnx_foldable_ext(const char *op_type);
advex_status onnx_fold_ext(const onnx_fctx *f, const onnx_const *const *in, int n_in, const onnx_sym *shape,
                           int shape_ndim, onnx_const *out);

/* ---- attributes (attrs.c) -------------------------------------------------------------- */

/* The node's display name for messages: its name, else its first output, else "#idx". */
const char *onnx_node_label(const Onnx__NodeProto *nd, char *buf, size_t n);
const Onnx__AttributeProto *onnx_attr(const Onnx__NodeProto *nd, const char *name);
/* Readers: absent -> default and 0; wrong type -> ADVEX_ERR_FORMAT naming the node. */
advex_status onnx_attr_int(const Onnx__NodeProto *nd, const char *name, int64_t def, int64_t *out);
advex_status onnx_attr_float(const Onnx__NodeProto *nd, const char *name, float def, float *out);
/* ints: up to cap values into out, count into *n (-1 when absent). */
advex_status onnx_attr_ints(const Onnx__NodeProto *nd, const char *name, int64_t *out, int cap,
                            int *n);
/* string attribute into buf (NUL-terminated, truncated); def when absent. */
advex_status onnx_attr_str(const Onnx__NodeProto *nd, const char *name, const char *def,
                           char *buf, size_t n);

/* ---- op translation (ops.c) -------------------------------------------------------------- */

/* Pre-check of one node that will run at inference time (not folded): 1 supported, 0 not
 * (a short reason like "Resize, opset 13" or "Pad mode=reflect" in why), -1 malformed
 * (error set). */
int onnx_check_node(const Onnx__NodeProto *nd, int opset, char *why, size_t n);

/* What an input of a compute node is at translation time. */
typedef struct onnx_input {
    int present;               /* named and non-empty */
    const onnx_const *c;       /* known at load time, else NULL */
    int ndim;                  /* rank (runtime values and constants) */
    const onnx_sym *shape;     /* symbolic shape (ndim entries) */
} onnx_input;

/* Translate a checked compute node: op, attributes (static inputs folded into them) and
 * which ONNX inputs stay graph inputs (keep[k] = 1). Errors name the node. */
/* Random ops (ops_random.c): the support check (1 ok, 0 unsupported with why, -1 bad file) and
 * the attributes, for n_in inputs. */
int onnx_is_random_op(advex_op_type op);
int onnx_check_random(const Onnx__NodeProto *nd, char *why, size_t n);
advex_status onnx_translate_random(const Onnx__NodeProto *nd, const char *label, advex_op_type op, int n_in,
                                   advex_attrs *a);
advex_status onnx_translate(const Onnx__NodeProto *nd, int opset, const onnx_input *in, int n_in,
                            advex_op_type *op, advex_attrs *a, int *keep);

/* The ops of ops_ext.c (Sqrt .. Gather): their pre-check (as onnx_check_node) and translation
 * (called by onnx_translate; may change *op, e.g. Max of one input to Identity). */
int onnx_is_ext_op(advex_op_type op);
int onnx_check_ext(const Onnx__NodeProto *nd, advex_op_type op, char *why, size_t n);
advex_status onnx_translate_ext(const Onnx__NodeProto *nd, const char *label, int opset, const onnx_input *in,
                                int n_in, advex_op_type *op, advex_attrs *a, int *keep);
/* 1 when an Expand's target (v + n*N per dim) depends on the batch size N. */
int onnx_expand_needs_batch(const advex_attrs *a);

/* Value kind an initializer takes when used as input k of an ONNX op: PARAM (trainable
 * weights), STATE (BatchNorm running statistics) or CONST. */
advex_value_kind onnx_input_role(const char *op_type, int k);

/* ---- general nets: ONNX conformance tests only -------------------------------------------- */

/* Load a model whose graph inputs (those that are not initializers) get the values in
 * inputs[0..n_inputs), in graph order. The first float32 one stays the run-time input, with
 * its shape (any rank up to 6) as the net's input shape; the others become load-time
 * constants. Unlike the public loader: any input and output rank, no batch dimension, no
 * Softmax cut-off, no model handle: run it on a plan (advex_plan_shape with that shape). */
advex_status advex_onnx_load_general(const void *buf, size_t len, const char *name,
                                     const Onnx__TensorProto *const *inputs, int n_inputs, advex_net **out);

#endif
