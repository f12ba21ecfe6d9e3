/* onnx_ops_layers.c: (being written) */
#include "onnx_internal.h"

const OpRow onnx_ops_layers[] = {
    {NULL, 0, NULL},
};
