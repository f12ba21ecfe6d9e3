/* nnc_runtime.h: the small host runtime that nnc and user programs link against.
 *
 * What it is: readers and writers for the file formats of docs/cli.md (safetensors, .npy, IDX with optional
 * gzip, CSV), used by `nnc train` / `nnc predict` and by user programs that drive a generated model.
 * What it is not: it never touches a model struct directly (the generated tensor table does that) and it
 * is not needed by generated code itself; firmware (`--target mcu`) links none of it.
 *
 * Conventions: every function that can fail returns 0 on success and -1 on failure, writing into `err`
 * (at most `errlen` bytes, always NUL-terminated) one line that names the file and what is wrong, e.g.
 * "weights.safetensors: truncated: header says 4000 bytes of data, file has 123". Nothing prints. Nothing
 * aborts on bad input. Arrays and tensor sets returned to the caller own their memory; free them with the
 * matching *_free function (safe on a zeroed struct). A reader that fails leaves its output zeroed.
 */
#ifndef NNC_RUNTIME_H
#define NNC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNC_MAX_RANK 8

typedef enum nnc_dtype {
    NNC_F32,
    NNC_F64,
    NNC_I32,
    NNC_I64,
    NNC_U8,
} nnc_dtype;

/* Size in bytes of one element, and a short name ("f32", "i32", ...); 0 and "?" outside the enum. */
size_t nnc_dtype_size(nnc_dtype t);
const char *nnc_dtype_name(nnc_dtype t);

/* A dense, row-major host array. The first axis is the sample axis for data files. */
typedef struct nnc_array {
    nnc_dtype dtype;
    int rank;
    int64_t shape[NNC_MAX_RANK];
    void *data; /* malloc'd, nnc_array_count(a) * nnc_dtype_size(a->dtype) bytes */
} nnc_array;

/* Product of the shape (1 for rank 0); -1 if the rank is outside 0..NNC_MAX_RANK, a dimension is
 * negative, or the product of the non-zero dimensions overflows int64 (readers rely on this for shapes
 * taken from files). */
int64_t nnc_array_count(const nnc_array *a);
void nnc_array_free(nnc_array *a);
/* Convert in place to `to` (f32 <-> f64 <-> i32 <-> i64 <-> u8). Converting a non-integral float to an
 * integer type, or an integer out of the target's range, fails with a message naming `what`. */
int nnc_array_convert(nnc_array *a, nnc_dtype to, const char *what, char *err, size_t errlen);

/* .npy: versions 1.0, 2.0 (and 3.0), little-endian <f4 <f8 <i4 <i8 |u1 (also <i1 <u1 <i2 <u2 <f2 read),
 * C order only (fortran_order True is an error). */
int nnc_npy_read(const char *path, nnc_array *out, char *err, size_t errlen);
/* Writes version 1.0 (2.0 if the header would not fit), atomically (temp file, fsync, rename). */
int nnc_npy_write(const char *path, const nnc_array *a, char *err, size_t errlen);

/* IDX (http://yann.lecun.com/exdb/mnist/ format): magic 0x00 0x00 TYPE RANK, big-endian u32 dims, then
 * big-endian data. TYPE 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64. Gzip-compressed files
 * (by their magic bytes, whatever the name) are decompressed transparently with zlib. u8 data stays
 * NNC_U8; i8/i16 become NNC_I32. A corrupt or truncated gzip stream (deflate error, CRC) is reported as
 * such, not as a bad IDX header. */
int nnc_idx_read(const char *path, nnc_array *out, char *err, size_t errlen);

/* CSV: numbers separated by commas (or by whitespace, or semicolons), one sample per row; an optional
 * header row (a first row with any non-numeric field) is skipped. Every row must have the same number of
 * fields. Result is NNC_F64 of shape [rows, cols] (rank 2 even for one column). Empty lines are ignored. */
int nnc_csv_read(const char *path, nnc_array *out, char *err, size_t errlen);

/* Any of the above, chosen by extension and magic bytes: .npy (magic \x93NUMPY), .csv/.txt/.tsv,
 * IDX (.idx, *-ubyte, *.idxN-ubyte, and their .gz). Unknown kinds are an error naming the file. */
int nnc_data_read(const char *path, nnc_array *out, char *err, size_t errlen);

/* Only the header: dtype, rank and shape exactly as the matching read would give them, data NULL, and
 * every check that needs no data (a size that overflows, a plain file too short for its shape). For .npy
 * and IDX nothing past the header is read or decompressed, so a caller can refuse a file of the wrong
 * shape before paying for it (a small .idx.gz may declare gigabytes); a CSV is parsed whole, keeping no
 * values. Free with nnc_array_free like any array (a no-op here). */
int nnc_data_read_header(const char *path, nnc_array *out, char *err, size_t errlen);
int nnc_npy_read_header(const char *path, nnc_array *out, char *err, size_t errlen);
int nnc_idx_read_header(const char *path, nnc_array *out, char *err, size_t errlen);
int nnc_csv_read_header(const char *path, nnc_array *out, char *err, size_t errlen);

/* safetensors: 8-byte little-endian header length N, N bytes of JSON, then raw little-endian data.
 * Readable dtypes: F32, F64, I32, I64, U8 (F64/I64 kept as such; callers convert). */
typedef struct nnc_st_tensor {
    char *name;
    nnc_dtype dtype;
    int rank;
    int64_t shape[NNC_MAX_RANK];
    void *data; /* owned by the set when read; borrowed when passed to nnc_st_write */
    size_t nbytes;
} nnc_st_tensor;

typedef struct nnc_safetensors {
    int count;
    nnc_st_tensor *tensors;
} nnc_safetensors;

/* Checks: magic/length sanity, JSON well-formed, every entry has dtype/shape/data_offsets, offsets lie in
 * the file and match shape*dtype size, no overlaps; "__metadata__" is skipped. */
int nnc_st_read(const char *path, nnc_safetensors *out, char *err, size_t errlen);
const nnc_st_tensor *nnc_st_find(const nnc_safetensors *st, const char *name);
/* Written with nnc_write_file_atomic. Tensors are written in the order given; the header keys are sorted
 * as safetensors does. */
int nnc_st_write(const char *path, const nnc_st_tensor *tensors, int count, char *err, size_t errlen);
void nnc_st_free(nnc_safetensors *st);

/* ---- a generated model's tensors (its `M_tensors` table) as a checkpoint ---------------------------- */
#ifndef NNC_TENSOR_INFO_DEFINED
#define NNC_TENSOR_INFO_DEFINED
typedef struct nnc_tensor_info {
    const char *name; /* as in checkpoints: "dense_1.weight" */
    int rank;
    int shape[8];
    size_t offset;    /* byte offset of the data in the model struct */
    int trainable;
    int dtype;        /* 0: nnc_real (float), 1: int32_t */
    int kind;         /* 0: parameter, 1: state, 2: training state (optimizer, generator) */
    const void *data; /* NULL: in the struct at offset; else the address of a const tensor (firmware) */
} nnc_tensor_info;
#endif

/* Save every tensor of the table (a float model) to a safetensors file, atomically. `extra` tensors
 * (may be NULL/0) are appended: `nnc train` stores its epoch and position there. */
int nnc_model_save(const char *path, const void *model, const nnc_tensor_info *table, int count,
                   const nnc_st_tensor *extra, int nextra, char *err, size_t errlen);

enum {
    NNC_LOAD_PARAMS = 1,    /* kind 0 must be in the file */
    NNC_LOAD_STATE = 2,     /* kind 1 must be in the file */
    NNC_LOAD_OPTIONAL = 4,  /* load kinds not required when present (optimizer state for resuming) */
};
/* Load tensors of the table from `st` into the model: required kinds must be present; shapes must
 * match exactly (F64 data is converted to float, I64 to int32). Names in the file that the model does not
 * have are counted in *unused (may be NULL). */
int nnc_model_load(const nnc_safetensors *st, const char *path, void *model, const nnc_tensor_info *table,
                   int count, int flags, int *loaded, int *unused, char *err, size_t errlen);

/* Write `size` bytes to `path`. A regular file (or a new one) is replaced atomically: DIR/.NAME.nnc-tmp.PID
 * next to it, fsync, rename over it, fsync DIR; an existing file keeps its permission bits. A symlink
 * is followed (chains too) and the file at its end replaced, the temporary in that file's directory.
 * Devices, FIFOs and /proc/self/fd/N (/dev/stdout) are written directly, never replaced. Temporaries
 * of the same target left by dead processes (kill -9 during a save) are removed first. */
int nnc_write_file_atomic(const char *path, const void *data, size_t size, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
