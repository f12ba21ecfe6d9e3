/* onnx_ops_shape.c: (being written) */
#include "onnx_internal.h"

const OpRow onnx_ops_shape[] = {
    {NULL, 0, NULL},
};
