/* nnc_jit.h: compile a generated C translation unit and run it inside this process.
 *
 * Two back ends behind one interface:
 *   - "llvm": the Clang 14 and LLVM ORC libraries, built as a separate plugin (libnnc_jit_llvm.so) that is
 *     dlopen'ed on first use, so that `nnc model.nn -o model.c` never needs LLVM to start;
 *   - "cc":   the system C compiler (`$NNC_CC`, else `cc`) building a shared object in a temp directory,
 *     then dlopen.
 * The default tries llvm, then cc. NNC_JIT=llvm|cc in the environment forces one.
 *
 * What it does not do: it knows nothing about models; callers look up the symbols they need.
 */
#ifndef NNC_JIT_H
#define NNC_JIT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nnc_jit nnc_jit;

typedef struct nnc_jit_options {
    int opt_level;            /* 0..3, default 2 */
    int native;               /* nonzero: tune for the host CPU (-march=native) */
    int link_blas;            /* nonzero: the code calls cblas_*; make OpenBLAS symbols resolvable */
    const char *const *defines; /* NULL-terminated "NAME=VALUE" or "NAME" list, may be NULL */
    const char *backend;      /* NULL (default order), "llvm" or "cc"; overrides NNC_JIT */
} nnc_jit_options;

/* Compile `source` (a complete C99 translation unit; it may #include standard headers and <cblas.h>).
 * `name` is used in messages and as the file name for diagnostics. On failure returns NULL and puts the
 * compiler's first error lines in err. */
nnc_jit *nnc_jit_compile(const char *source, const char *name, const nnc_jit_options *opt, char *err,
                         size_t errlen);
/* Address of a function or object defined by the compiled code, or NULL. */
void *nnc_jit_lookup(nnc_jit *j, const char *symbol);
/* Which back end compiled it: "llvm" or "cc". */
const char *nnc_jit_backend(const nnc_jit *j);
void nnc_jit_free(nnc_jit *j);

/* The plugin's entry points (libnnc_jit_llvm.so exports these with C linkage). */
typedef void *(*nnc_jit_llvm_compile_fn)(const char *source, const char *name, const nnc_jit_options *opt,
                                         char *err, size_t errlen);
typedef void *(*nnc_jit_llvm_lookup_fn)(void *handle, const char *symbol);
typedef void (*nnc_jit_llvm_free_fn)(void *handle);

/* When the plugin fails for a reason that is not in the C source (no target, JIT link error, a symbol
 * the process cannot resolve, a missing clang resource directory), its message starts with this prefix.
 * The default order then retries with cc; a forced "llvm" reports it. C diagnostics never carry it. */
#define NNC_JIT_LLVM_INTERNAL "nnc_jit_llvm: "

#ifdef __cplusplus
}
#endif
#endif
