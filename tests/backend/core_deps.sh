#!/bin/sh
# core_deps.sh LIBNNC_CORE.a: the compiler core (front end, IR, passes, back ends) references no BLAS, no JIT
# and no LLVM symbol, so `nnc model.nn -o model.c` needs none of them (docs/backends.md).
lib=${1:?usage: core_deps.sh libnnc_core.a}
[ -f "$lib" ] || { echo "core_deps.sh: no $lib" >&2; exit 2; }
bad=$(nm -u "$lib" | awk '{print $NF}' | grep -E '^(cblas_|nnc_jit_|LLVM|_ZN4llvm|_ZN5clang|dlopen|dlsym)' | sort -u)
if [ -n "$bad" ]; then
    echo "FAIL: nnc_core references symbols it must not need:"; echo "$bad" | sed 's/^/    /'
    exit 1
fi
# and it does reference what it is made of (the check is not vacuous: nm read the archive)
nm --defined-only "$lib" | grep -q ' T compile_model$' && { echo "FAIL: the driver's compile_model is in nnc_core"; exit 1; }
nm --defined-only "$lib" | grep -q ' T emit_c_model$' || { echo "FAIL: emit_c_model not found in $lib (nm failed?)"; exit 1; }
echo "ok: nnc_core needs no BLAS, JIT or LLVM symbol"
