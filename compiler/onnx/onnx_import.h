/* onnx_import.h: ONNX models as .nn source. The importer reads a ModelProto (protobuf-c on ONNX's own
 * onnx.proto), checks the graph, and writes the model as .nn text a person can read and edit, plus its
 * initializers as safetensors tensors under the parameter names that text declares. Every command given a
 * .onnx file runs this in memory and compiles the text (docs/onnx.md). */
#ifndef NNC_ONNX_IMPORT_H
#define NNC_ONNX_IMPORT_H

#include "nnc.h"
#include "nnc_runtime.h"

typedef struct OnnxImport {
    char *nn_text;             /* the model as .nn source, NUL-terminated */
    size_t nn_len;
    nnc_safetensors weights;   /* the parameters and state tensors, owned */
    int batch;                 /* the graph's fixed batch size, or 0 when its first axes are symbolic */
    int ninputs, noutputs;     /* the graph's inputs and outputs: ONNX name -> .nn name */
    char **input_onnx, **input_nn;
    char **output_onnx, **output_nn;
} OnnxImport;

/* true when `path` names an ONNX model (its extension is .onnx, any case) */
bool onnx_is_model_path(const char *path);
/* Import the model at `path`. On failure prints diagnostics ("nnc: error: ..." or path: error: ...),
 * every unsupported node, and returns false. `model_name` is the .nn model's name (NULL: the file's stem). */
bool onnx_import(const char *path, const char *model_name, OnnxImport *out);
void onnx_import_free(OnnxImport *imp);
/* false when nnc was built without protobuf-c / onnx.proto (the import then reports what to install) */
bool onnx_available(void);

#endif
