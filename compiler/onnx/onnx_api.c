/* onnx_api.c: the part of the ONNX import that builds without protobuf-c: what a .onnx path is, freeing an
 * import, and the refusal of a build without ONNX support. */
#include "onnx_import.h"

#include <stdlib.h>
#include <string.h>

bool onnx_is_model_path(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 5 && path[n - 5] == '.' && (path[n - 4] | 32) == 'o' && (path[n - 3] | 32) == 'n' &&
           (path[n - 2] | 32) == 'n' && (path[n - 1] | 32) == 'x';
}

bool onnx_available(void) { return NNC_HAVE_ONNX; }

#if !NNC_HAVE_ONNX
bool onnx_import(const char *path, const char *model_name, OnnxImport *out)
{
    (void)model_name;
    memset(out, 0, sizeof *out);
    diag_fatal("%s: this nnc was built without ONNX support (install libprotobuf-c-dev, protobuf-c-compiler and "
               "libonnx-dev, then rebuild)", path);
    return false;
}
#endif

void onnx_import_free(OnnxImport *imp)
{
    free(imp->nn_text);
    for (int k = 0; k < imp->weights.count; k++) {
        free(imp->weights.tensors[k].name);
        free(imp->weights.tensors[k].data);
    }
    free(imp->weights.tensors);
    for (int k = 0; k < imp->ninputs; k++) {
        free(imp->input_onnx[k]);
        free(imp->input_nn[k]);
    }
    for (int k = 0; k < imp->noutputs; k++) {
        free(imp->output_onnx[k]);
        free(imp->output_nn[k]);
    }
    free(imp->input_onnx);
    free(imp->input_nn);
    free(imp->output_onnx);
    free(imp->output_nn);
    memset(imp, 0, sizeof *imp);
}
