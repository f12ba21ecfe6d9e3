/* passes.h: the pipeline's stages after checking, each in its own file with one entry point.
 *
 *   lower_entry   (lower.c)    source graph -> one entry point's graph (predict, eval, train step)
 *   autodiff      (autodiff.c) adds the gradient of the loss for every trainable parameter
 *   optim_apply   (optim.c)    adds the optimizer update and the writes of new parameter values
 *   pass_*        (pass_*.c)   optimizing passes (issue: passes)
 */
#ifndef NNC_PASSES_H
#define NNC_PASSES_H

#include "ir.h"

typedef enum EntryKind { ENTRY_PREDICT, ENTRY_EVAL, ENTRY_TRAIN, ENTRY_COUNT } EntryKind;

extern const char *const entry_names[ENTRY_COUNT]; /* "predict", "eval", "train_step" */

/* Requires: a checked model. Gives: a graph whose roots are the entry's outputs (predict), loss and
 * metrics (eval, train), with dropout and batchnorm expanded for the mode; train adds the moving-statistic
 * writes. Only values the roots need are copied. */
Graph *lower_entry(Model *m, EntryKind e, bool hashcons);

/* Requires: a train graph with a ROOT_LOSS. Gives: grads[t] = the id of d loss / d tensor t for every
 * trainable parameter t (-1 for the others); the gradient values are ordinary forward ops. */
void autodiff(Graph *g, int *grads);

/* Declares the gradient and optimizer-state tensors of the model (after checking, before lowering). */
void optim_declare(Model *m, bool keep_grads); /* keep_grads: the last step's gradients in the struct */
/* Requires: grads from autodiff. Gives: ASSIGN roots for gradients, new parameters and optimizer state. */
void optim_apply(Graph *g, const int *grads);

/* The optimizing passes (one file each); every one keeps the graph verified and its roots' values. */
void pass_fold(Graph *g);
void pass_simplify(Graph *g);
void pass_cse(Graph *g);
void pass_dce(Graph *g);
/* What one kernel may hold; each target has its own numbers (target.h). */
typedef struct FusionLimits {
    int members;       /* values computed in one kernel */
    int externals;     /* distinct values one elementwise kernel reads from memory */
    int recompute;     /* ops in one expression recomputed in each reader instead of stored */
    int shared;        /* reductions that share one set of loops */
    int shared_inputs; /* values those shared loops read */
    bool conv_into_pool; /* a convolution (and its tail) read only by a pooling with tiling windows is
                            computed inside the pooling's kernel, its map never stored (firmware RAM) */
} FusionLimits;
void pass_fuse(Graph *g, const FusionLimits *lim);
/* firmware predict and eval: lstm_seq read only as h becomes lstm_infer (pass_lstm_infer.c) */
void pass_lstm_infer(Graph *g);
/* reads of the tensors marked in is_const (values known, never written) become constants (pass_const_tensors.c) */
void pass_const_tensors(Graph *g, const bool *is_const);

#endif
