/* ops.h: the prototypes of every op's shape rule, C emitter, gradient rule and FLOPs rule, generated from
 * ops.def, and the dispatch tables built from the same rows. */
#ifndef NNC_OPS_H
#define NNC_OPS_H

#include "ir.h"

typedef struct Emit Emit;
typedef struct AD AD;

#define OP(id, name, arity, flags, shape, emit, grad, flops, scalar)                                  \
    bool shape(Graph *g, Value *v);                                                                \
    void emit(Emit *e, int vid);                                                                   \
    void grad(AD *ad, int vid, int dy);                                                            \
    int64_t flops(const Graph *g, const Value *v, int64_t n);
#include "ops.def"
#undef OP

typedef bool (*ShapeRule)(Graph *g, Value *v);
typedef void (*EmitRule)(Emit *e, int vid);
typedef void (*GradRule)(AD *ad, int vid, int dy);
typedef int64_t (*FlopsRule)(const Graph *g, const Value *v, int64_t n);

extern const ShapeRule shape_rules[OP_COUNT];
extern const EmitRule emit_rules[OP_COUNT];
extern const GradRule grad_rules[OP_COUNT];

/* Shape errors name the user-level call when the front end set one ("dense: ..."), else the op. */
void shape_error(Graph *g, Value *v, const char *fmt, ...) NNC_PRINTF(3, 4);
extern const char *shape_error_context;

/* conv2d's groups (attr i[8]) and dilation (i[9], i[10]): 0 reads as 1, so a plain conv's attributes are
 * zero there (ops.def) */
enum { CONV_GROUPS = 8, CONV_DIL_H = 9, CONV_DIL_W = 10 };
static inline int64_t conv_attr(const Attr *a, int slot) { return a->i[slot] > 1 ? a->i[slot] : 1; }

/* avgpool2d and avgpool2d_bwd: i[10] 1 when the average divides by the whole window, padding included
 * (count_include_pad=true); avgpool2d_bwd keeps the input's height and width in i[8..9] */
enum { POOL_COUNT_PAD = 10 };

#endif
