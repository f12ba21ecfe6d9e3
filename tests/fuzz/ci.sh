#!/bin/sh
# ci.sh: the fuzzing stage of CI: configure a clang fuzz build, build the libFuzzer targets, run each.
#
#   tests/fuzz/ci.sh BUILD_DIR [SECONDS]     (default 20 seconds per target; 8 targets)
#
# Configures BUILD_DIR with clang-14 (or $CC), -DNNC_FUZZ=ON and without the LLVM plugin, builds
# `fuzz_all`, and runs tests/fuzz/run.sh on it: each target for SECONDS from its in-tree corpus. Exits
# non-zero when the build fails or any target crashes, reports a sanitizer error, times out or runs out
# of memory (the input is kept in BUILD_DIR/fuzz-artifacts and printed). See docs/testing.md.
set -eu
build=${1:?usage: ci.sh BUILD_DIR [SECONDS]}
secs=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${CC:-clang-14}
cxx=${CXX:-clang++-14}
cmake -S "$root" -B "$build" -DNNC_FUZZ=ON -DNNC_WITH_LLVM=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx"
cmake --build "$build" --target fuzz_all -j"${JOBS:-2}"
NNC_FUZZ_ARTIFACTS="$build/fuzz-artifacts" sh "$here/run.sh" "$build/tests/fuzz" "$secs"
