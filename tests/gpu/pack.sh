#!/usr/bin/env bash
# tests/gpu/pack.sh: a build of nnc that travels to a GPU machine which cannot build it (no flex, bison or
# cJSON there) for tests/gpu/run.sh BUILD_DIR.
#
#   bash tests/gpu/pack.sh [DIR]      default DIR: build-gpu in the checkout (ignored by git: /build*/)
#
# Configures as run.sh would (Release, -DNNC_WITH_LLVM=OFF, OpenBLAS left out, tests on, examples off),
# builds, and copies the shared libraries nnc and the tests load that are not the C library itself (cJSON,
# zlib) into DIR/_libs, which run.sh puts on LD_LIBRARY_PATH. Build it on a system whose C library is no newer
# than the GPU machine's. Then, with DIR inside the checkout that travels:  bash tests/gpu/run.sh DIR
# The build's absolute paths (the checkout's, DIR's) are recorded in its ctest files: run.sh links them to
# where the checkout is on the GPU machine when they do not exist there.
# Exit status: 0 built (the last line gives DIR's size: it must fit what travels, 64 MiB here with the
# checkout), 1 the build failed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${1:-$root/build-gpu}"
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DNNC_WITH_LLVM=OFF -DNNC_BUILD_EXAMPLES=OFF \
    -DOPENBLAS_LIBRARY=OPENBLAS_LIBRARY-NOTFOUND -DCBLAS_INCLUDE_DIR=CBLAS_INCLUDE_DIR-NOTFOUND >/dev/null
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
dir="$(cd "$dir" && pwd)"
mkdir -p "$dir/_libs"
# every library an executable or shared object of the build loads, but the C library's own
find "$dir" -path "$dir/_libs" -prune -o -type f \( -perm -u+x -o -name '*.so*' \) -print |
    while read -r f; do ldd "$f" 2>/dev/null || true; done |
    awk -v d="$dir/" '$2 == "=>" && $3 ~ /^\// && index($3, d) != 1 { print $3 }' | sort -u |
    grep -Ev '/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux[^/]*|libgcc_s|libstdc\+\+)\.so' |
    grep -Ev '/(libcuda|libnvrtc|libcublas[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$dir/_libs/"; done
echo "pack.sh: $dir ($(du -sm "$dir" | cut -f1) MiB; libraries in _libs:" \
    "$(find "$dir/_libs" -type f -printf '%f ')"
echo "pack.sh: on the GPU machine, from the checkout: bash tests/gpu/run.sh ${dir#"$root"/}"
