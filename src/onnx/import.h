/* The ONNX importer's state, shared by import.c (parsing, structure, analysis, entry points)
 * and import_build.c (folding and translating nodes into the advex graph). Private. */
#ifndef ADVEX_ONNX_IMPORT_H
#define ADVEX_ONNX_IMPORT_H

#include "onnx_internal.h"

/* One ONNX value name. */
typedef struct ent {
    const char *name;
    int producer;                    /* ONNX node index, -1 */
    const Onnx__TensorProto *init;   /* initializer, or NULL */
    int init_ours;                   /* init is the model's (its raw data may be freed once decoded) */
    int is_input;                    /* the image input */
    int is_static;                   /* known at load time */
    int have_c;
    onnx_const c;                    /* its value once evaluated */
    int vid;                         /* advex value id, -1 */
    int role;                        /* strongest use: 0 CONST, 1 STATE, 2 PARAM */
    int ndim;                        /* run-time values: symbolic shape */
    onnx_sym shape[ADVEX_MAX_DIMS];
} ent;

typedef struct importer {
    const char *name;                /* for messages */
    const Onnx__GraphProto *gp;
    int opset;
    onnx_map map;                    /* name -> ent index */
    ent *ents;
    int n_ents;
    int *order;                      /* nodes in topological order */
    char *needed, *node_static;
    int drop;                        /* Softmax node cut off the end, -1 */
    const char *out_name;
    advex_net *net;
    int *vid_ent;                    /* advex value id -> ent (run-time values) */
    int vid_cap;
    /* general mode (conformance tests only, see onnx_internal.h): */
    int general;                     /* any rank, fixed shapes, no Softmax cut-off */
    const Onnx__TensorProto *const *gen_in; /* a value for every non-initializer graph input */
    int n_gen_in;
    const Onnx__TensorProto *gen_x;  /* the one that stays a run-time input */
    int64_t fold_budget;             /* bytes of folded constants still allowed */
} importer;

int onnx_im_role_rank(advex_value_kind k);
/* Build the advex graph node by node (import_build.c): the image input, then every needed
 * node, folded at load time or translated, in topological order. */
advex_status onnx_im_build(importer *im, const Onnx__ValueInfoProto *input);

#endif
