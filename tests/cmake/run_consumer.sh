#!/usr/bin/env bash
# tests/cmake/run_consumer.sh: builds tests/cmake/consumer, a project outside nnc, with nnc_add_model,
# both ways a user gets nnc, and runs it:
#   1. add_subdirectory: the consumer builds nnc from SOURCE_DIR itself, setting no NNC_* option and no
#      CMAKE_BUILD_TYPE: nnc must then build only what nnc_add_model needs (no test, example or LLVM
#      plugin target; `ctest -N` lists the consumer's one test) and leave CMAKE_BUILD_TYPE empty;
#   2. find_package: nnc installed by `cmake --install` into WORK_DIR/prefix, from NNC_BUILD_DIR (an
#      already built nnc tree, e.g. the one running ctest), else from a fresh build in WORK_DIR; the
#      installed nnc must train (with the installed LLVM plugin when the tree built one);
# and in each build checks regeneration: a no-op rebuild does not rerun nnc, editing the .nn file
# changes the generated header, and a newer nnc executable regenerates.
# Everything is written under WORK_DIR (deleted first); the source tree is only read.
#
# usage: run_consumer.sh SOURCE_DIR WORK_DIR [NNC_BUILD_DIR]   (env CMAKE, CTEST: the cmake and ctest to use)
set -euo pipefail

SRC=$(cd "$1" && pwd)
WORK=$2
NNC_BUILD=${3:-}
CMAKE=${CMAKE:-cmake}
CTEST=${CTEST:-ctest}
JOBS=$(nproc 2>/dev/null || echo 2)
CONSUMER=$SRC/tests/cmake/consumer

fail() { echo "run_consumer: FAIL: $*" >&2; exit 1; }
step() { echo "run_consumer: [$(($(date +%s) - T0))s] $*"; }
build() { "$CMAKE" --build "$1" -j "$JOBS" >"$1.log" 2>&1 || { cat "$1.log" >&2; fail "build of $1"; }; }

T0=$(date +%s)
rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

# Runs both programs in build dir $1 and checks that two runs, and the two builds (-O2 training and
# -O0 inference), predict the same after init(0).
run_consumer() {
    (cd "$1" && ./consumer "$1/weights.safetensors" && ./consumer_infer) >"$1/run1.txt" 2>&1 ||
        { cat "$1/run1.txt" >&2; fail "consumer in $1"; }
    (cd "$1" && ./consumer "$1/weights.safetensors" && ./consumer_infer) >"$1/run2.txt" 2>&1 ||
        { cat "$1/run2.txt" >&2; fail "consumer in $1 (second run)"; }
    cmp -s "$1/run1.txt" "$1/run2.txt" || { diff "$1/run1.txt" "$1/run2.txt" >&2; fail "two runs differ"; }
    grep '^init:' "$1/run1.txt" | awk '
        NR == 1 { for (i = 2; i <= NF; i++) a[i] = $i; n = NF }
        NR == 2 { if (NF != n) exit 1
                  for (i = 2; i <= NF; i++) { d = a[i] - $i; if (d < 0) d = -d
                      t = a[i] < 0 ? -a[i] : a[i]; if (d > 1e-5 + 1e-4 * t) exit 1 } }
        END { if (NR != 2) exit 1 }' ||
        { cat "$1/run1.txt" >&2; fail "training and inference builds predict differently after init(0)"; }
    sed 's/^/    /' "$1/run1.txt"
    # the CUDA target, where nnc has its runtime: the same checks on the emulator, and the same
    # predictions after init(0) as the host build
    if [ -x "$1/consumer_cuda" ]; then
        (cd "$1" && NNC_CUDA_EMULATE=1 NNC_CUDA_QUIET=1 NNC_CACHE_DIR="$1/cuda-cache" ./consumer_cuda) >"$1/run_cuda.txt" 2>&1 ||
            { cat "$1/run_cuda.txt" >&2; fail "consumer_cuda in $1"; }
        { grep '^init:' "$1/run1.txt" | head -1; grep '^init:' "$1/run_cuda.txt"; } | awk '
            NR == 1 { for (i = 2; i <= NF; i++) a[i] = $i; n = NF }
            NR == 2 { if (NF != n) exit 1
                      for (i = 2; i <= NF; i++) { d = a[i] - $i; if (d < 0) d = -d
                          t = a[i] < 0 ? -a[i] : a[i]; if (d > 1e-5 + 1e-4 * t) exit 1 } }
            END { if (NR != 2) exit 1 }' ||
            { cat "$1/run_cuda.txt" >&2; fail "the cuda build predicts differently after init(0)"; }
        sed 's/^/    cuda: /' "$1/run_cuda.txt"
    fi
}

# Regeneration in build dir $1 whose model copy is $2, with the nnc executable $3 it depends on.
check_regeneration() {
    b=$1/nnc_generated model=$2 exe=$3 # nnc_add_model writes into nnc_generated/ of the build dir
    cp "$b/regress.h" "$b/regress.h.before"
    touch "$b/marker"
    build "$1"
    # (unless nnc itself was rebuilt: someone may be editing the source tree meanwhile)
    if [[ $b/regress.h -nt $b/marker && ! $exe -nt $b/marker ]]; then fail "a no-op rebuild reran nnc"; fi
    sleep 1 # for file systems with coarse timestamps
    sed 's/dense(x, 16,/dense(x, 24,/' "$model" >"$model.new" && mv "$model.new" "$model"
    build "$1"
    if cmp -s "$b/regress.h" "$b/regress.h.before"; then fail "editing $model did not change regress.h"; fi
    for h in regress.h regress_infer.h; do # h.weight is now [4,24]: 96 floats
        grep -Eq '\[96\]|\[4, ?24\]' "$b/$h" || fail "$h does not have the new width of h"
    done
    run_consumer "$1"
    touch "$b/marker"
    sleep 1
    touch "$exe"
    build "$1"
    [[ $b/regress.h -nt $b/marker ]] || fail "a newer $exe did not regenerate regress.h"
}

# A consumer configured in $1 with add_subdirectory(nnc) and no NNC_* option: nnc added no test,
# example or plugin target, and did not set the consumer's CMAKE_BUILD_TYPE.
check_subproject() {
    grep -q "^-- consumer: CMAKE_BUILD_TYPE after add_subdirectory: ''\$" "$1.configure.log" ||
        { grep "CMAKE_BUILD_TYPE" "$1.configure.log" >&2; fail "nnc set the parent's CMAKE_BUILD_TYPE"; }
    grep -q '^CMAKE_BUILD_TYPE:[A-Z]*=$' "$1/CMakeCache.txt" ||
        { grep '^CMAKE_BUILD_TYPE' "$1/CMakeCache.txt" >&2; fail "nnc wrote CMAKE_BUILD_TYPE into the cache"; }
    for d in tests examples runtime/jit_llvm; do
        [ ! -e "$1/nnc/$d" ] || fail "as a subproject nnc added $d/ (its targets are built with the consumer)"
    done
    total=$(cd "$1" && "$CTEST" -N | sed -n 's/^Total Tests: //p')
    [ "$total" = 1 ] || { (cd "$1" && "$CTEST" -N) >&2; fail "ctest -N lists $total tests, not the consumer's 1"; }
}

# The nnc installed from build dir $1 into prefix $2 trains: with the LLVM plugin built, the install
# has it and `nnc train` loads that copy (not the build tree's), from a directory outside both trees.
check_installed_train() {
    d=$WORK/train
    mkdir -p "$d"
    awk 'BEGIN { for (i = 0; i < 64; i++) { s = 0; r = ""
                 for (j = 0; j < 10; j++) { v = ((i * 7 + j * 13) % 17) / 8 - 1; s += v; r = r (j ? "," : "") v }
                 print r > "x.csv"; print s / 10 > "y.csv" } }' </dev/null
    mv x.csv y.csv "$d/"
    jit=cc
    if [ -f "$1/libnnc_jit_llvm.so" ]; then
        plugin=$(find "$2" -name libnnc_jit_llvm.so | head -n 1)
        [ -n "$plugin" ] || fail "cmake --install did not install the LLVM plugin that nnc train loads"
        jit=llvm
    fi
    (cd "$d" && NNC_JIT=$jit LD_DEBUG=files "$2/bin/nnc" train "$SRC/models/ffn.nn" --data x=x.csv \
        --data y=y.csv --epochs 1 --save "$d/ffn.safetensors") >"$d/train.log" 2>&1 ||
        { cat "$d/train.log" >&2; fail "the installed nnc does not train (NNC_JIT=$jit)"; }
    [ -s "$d/ffn.safetensors" ] || fail "the installed nnc train saved nothing"
    if [ "$jit" = llvm ] && ! grep -q "file=$2/.*libnnc_jit_llvm.so" "$d/train.log"; then
        grep "libnnc_jit_llvm" "$d/train.log" >&2; fail "the installed nnc did not load the installed plugin"
    fi
    grep "^epoch\|^training" "$d/train.log" | sed 's/^/    /'
}

# ---- 1. add_subdirectory ------------------------------------------------------------------------
step "add_subdirectory: configure and build (nnc included)"
A=$WORK/subdir
mkdir -p "$WORK/model-a"
cp "$CONSUMER/models.nn" "$WORK/model-a/models.nn"
"$CMAKE" -S "$CONSUMER" -B "$A" -DNNC_SOURCE_DIR="$SRC" \
    -DCONSUMER_MODEL="$WORK/model-a/models.nn" >"$A.configure.log" 2>&1 ||
    { cat "$A.configure.log" >&2; fail "configure with add_subdirectory"; }
check_subproject "$A"
build "$A"
step "add_subdirectory: run"
run_consumer "$A"
step "add_subdirectory: regeneration"
check_regeneration "$A" "$WORK/model-a/models.nn" "$A/nnc/nnc"

# ---- 2. cmake --install + find_package -----------------------------------------------------------
if [ -z "$NNC_BUILD" ]; then
    step "building nnc to install"
    NNC_BUILD=$WORK/nnc-build
    "$CMAKE" -S "$SRC" -B "$NNC_BUILD" -DNNC_BUILD_TESTS=OFF >"$NNC_BUILD.configure.log" 2>&1 ||
        { cat "$NNC_BUILD.configure.log" >&2; fail "configure nnc"; }
    build "$NNC_BUILD"
fi
step "install $NNC_BUILD into $WORK/prefix"
"$CMAKE" --install "$NNC_BUILD" --prefix "$WORK/prefix" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log" >&2; fail "cmake --install"; }
CONFIG=$(find "$WORK/prefix" -name nncConfig.cmake | head -n 1)
[ -n "$CONFIG" ] || fail "the install has no nncConfig.cmake"
check_installed_train "$NNC_BUILD" "$WORK/prefix"

step "find_package: configure and build"
B=$WORK/package
mkdir -p "$WORK/model-b"
cp "$CONSUMER/models.nn" "$WORK/model-b/models.nn"
"$CMAKE" -S "$CONSUMER" -B "$B" -DCMAKE_PREFIX_PATH="$WORK/prefix" \
    -DCONSUMER_MODEL="$WORK/model-b/models.nn" >"$B.configure.log" 2>&1 ||
    { cat "$B.configure.log" >&2; fail "configure with find_package"; }
grep -q "^nnc_DIR:PATH=$(dirname "$CONFIG")\$" "$B/CMakeCache.txt" ||
    fail "find_package(nnc) did not find the package in $WORK/prefix"
build "$B"
step "find_package: run"
run_consumer "$B"
step "find_package: regeneration"
check_regeneration "$B" "$WORK/model-b/models.nn" "$WORK/prefix/bin/nnc"

step "ok"
