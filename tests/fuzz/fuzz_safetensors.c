/* fuzz_safetensors.c: libFuzzer target for the safetensors reader (runtime/safetensors.c) and the
 * checkpoint loader (runtime/model_io.c): the input is the whole file. A file that reads is searched for
 * each of its tensors, every tensor's bytes are touched, and it is loaded into a small fixed model (the
 * table below: float and int tensors, parameters, state and optional training state), as `nnc train
 * --resume` and `nnc predict --weights` do. Build and run: docs/testing.md. */
#include "fuzz_file.h"
#include "nnc_runtime.h"

#include <stddef.h>
#include <string.h>

typedef struct FuzzModel {
    float w[3][4];
    float b[4];
    float mean[4];
    int32_t step[1];
    float scalar;
} FuzzModel;

static const nnc_tensor_info table_[] = {
    {"dense.weight", 2, {3, 4}, offsetof(FuzzModel, w), 1, 0, 0},
    {"dense.bias", 1, {4}, offsetof(FuzzModel, b), 1, 0, 0},
    {"bn.mean", 1, {4}, offsetof(FuzzModel, mean), 0, 0, 1},
    {"train.step", 1, {1}, offsetof(FuzzModel, step), 0, 1, 2},
    {"scalar", 0, {0}, offsetof(FuzzModel, scalar), 1, 0, 0},
};

static volatile unsigned sink_;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    nnc_safetensors st;
    const char *path = fuzz_file_path(data, size);
    err[0] = '\0';
    if (nnc_st_read(path, &st, err, sizeof err) != 0) {
        if (err[0] == '\0' || !memchr(err, '\0', sizeof err)) abort(); /* a failure always says why */
        return 0;
    }
    for (int i = 0; i < st.count; i++) {
        const nnc_st_tensor *t = &st.tensors[i];
        if (nnc_st_find(&st, t->name) == NULL) abort();
        const unsigned char *b = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sink_ += b[k];
    }
    FuzzModel m;
    int loaded = 0, unused = 0;
    static const int flags[] = {NNC_LOAD_PARAMS, NNC_LOAD_PARAMS | NNC_LOAD_STATE | NNC_LOAD_OPTIONAL,
                                NNC_LOAD_OPTIONAL};
    for (int f = 0; f < 3; f++) {
        memset(&m, 0, sizeof m);
        nnc_model_load(&st, path, &m, table_, (int)(sizeof table_ / sizeof table_[0]), flags[f], &loaded,
                       &unused, err, sizeof err);
    }
    nnc_st_free(&st);
    return 0;
}
