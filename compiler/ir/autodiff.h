/* autodiff.h: what the gradient rules (ops_grad.c) need from the autodiff pass (autodiff.c). */
#ifndef NNC_AUTODIFF_H
#define NNC_AUTODIFF_H

#include "ops.h"

typedef struct SlicePiece {
    int x;               /* the sliced value */
    int64_t axis, start, len;
    int dy;              /* the gradient of the slice */
} SlicePiece;

struct AD {
    Graph *g;
    VEC(int) grad;   /* per value: its accumulated gradient, or -1 */
    VEC(SlicePiece) pieces; /* gradients of slices, joined when their source's gradient is needed */
    uint8_t *needs;  /* per forward value: depends on a trainable parameter */
    int nforward;    /* values before autodiff started */
};

/* The gradient of a slice of x: kept aside, so that slices tiling x (an LSTM's gates and time steps)
 * give a concat instead of a sum of zero-padded copies. */
void ad_accum_slice(AD *ad, int x, int64_t axis, int64_t start, int64_t len, int dy);
/* Add dx to the gradient of x. dx may have a broadcast shape of x's: it is summed back to x's shape. */
void ad_accum(AD *ad, int x, int dx);
/* Sum dx over the axes it was broadcast along to reach shape s, then give it shape s. */
int ad_unbroadcast(Graph *g, int dx, Shape s, Loc loc);
/* The number of elements a reduction over `axes` of shape s averages: a constant, times n if the batch
 * axis is reduced. */
int ad_count(Graph *g, Shape s, uint64_t axes, Loc loc);

#endif
