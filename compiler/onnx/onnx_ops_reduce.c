/* onnx_ops_reduce.c: (being written) */
#include "onnx_internal.h"

const OpRow onnx_ops_reduce[] = {
    {NULL, 0, NULL},
};
