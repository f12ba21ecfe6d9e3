#!/usr/bin/env bash
# tests/gpu/run.sh: nnc's CUDA target on a real GPU (an H100), in one script that finishes in under 4 minutes
# and prints ONE summary line; everything else goes to a log file. docs/cuda.md says what it measures and
# what the performance model (tests/gpu/perf_model.py) predicts for it.
#
#   bash tests/gpu/run.sh              configure and build nnc in $NNC_GPU_WORK/build, then run
#   bash tests/gpu/run.sh BUILD_DIR    use a build made elsewhere (tests/gpu/pack.sh makes one that travels)
#
# Stages, each under `timeout`, all within NNC_GPU_LIMIT seconds (default 230):
#   1. nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm   (no GPU: noted, and step 4 stops)
#   2. the build (at most NNC_GPU_LIMIT - 100 s): cmake -DNNC_WITH_LLVM=OFF, OpenBLAS left out, Release; the
#      tools and libraries it needs (cmake, a C compiler, flex, bison, zlib, cJSON) are checked first and the
#      missing ones named
#   3. tests/gpu/perf_model.py --json: the predicted times (needs only nnc)
#   4. no GPU: stop here ("no GPU: stopped after build")
#   5. ctest -L cuda with NNC_CUDA_EMULATE unset: the CUDA tests on the device
#   6. nnc bench --target cuda --json: W2 (batch 32 and 1000), W3 (1000), W5 (32), bench/workloads/; W5 again
#      with NNC_CUDA_NO_GRAPH=1 (every launch from the host, no graph)
#   7. one W5 epoch: nnc train --target cuda --epochs 1 on Fashion-MNIST when
#      /usr/share/datasets/fashion-mnist holds it, else on 60,000 synthetic samples (same shapes)
#   8. tests/gpu/torch_bench.py: the same workloads in PyTorch on the same GPU (eager and CUDA graph)
# The summary line, e.g.
#   gpu: NVIDIA H100 80GB HBM3, 580.159.04, 81559 MiB, 1980 MHz | build ok (40 s) | tests 14/14 | W2 train
#   30.1us (torch 180us, model 36us, planned 36us) | W3 train ... | W5 train 80.2us (no graph 150.0us, torch
#   410us, model 82us, planned 82us) | epoch 0.16s (synthetic 60000; torch 0.90s, model 0.16s, planned 0.16s)
#   | predicted W5 82us, planned 82us | log /tmp/nnc-gpu/run.log
# (the numbers are made up; "model" is tests/gpu/perf_model.py's central prediction for the kernels as printed,
# "planned" with every long reduction on blocks)
#
# Exit status: 0  a GPU was there, every `cuda` test passed and every stage ran
#              1  a test failed, no test is labelled cuda, or a GPU stage failed or timed out
#              2  no GPU here: stopped after the build and the model (what a dry run on a machine without a
#                 GPU ends with)
#              3  nnc could not be built (missing tools or libraries, named in the summary) or BUILD_DIR is
#                 not usable
# Environment: NNC_GPU_WORK (default /tmp/nnc-gpu: the build, the data, the results), NNC_GPU_LOG (default
# $NNC_GPU_WORK/run.log), NNC_GPU_LIMIT (seconds, default 230), PYTHON (default python3), NNC_GPU_TARGET
# (default cuda; `c` runs stages 6 and 7 on the CPU: for testing this script itself, with a stand-in nvidia-smi).
# Not registered in ctest: it needs a GPU and runs the cuda tests itself.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${NNC_GPU_WORK:-/tmp/nnc-gpu}"
mkdir -p "$work" || { echo "gpu: ? | cannot create $work"; exit 3; }
work="$(cd "$work" && pwd)"
log="${NNC_GPU_LOG:-$work/run.log}"
: >"$log" || { echo "gpu: ? | cannot write $log"; exit 3; }
py="${PYTHON:-python3}"
limit="${NNC_GPU_LIMIT:-230}"
target="${NNC_GPU_TARGET:-cuda}"
jobs="$(nproc 2>/dev/null || echo 4)"
start=$SECONDS
unset NNC_CUDA_EMULATE

say() { echo "[gpu +$((SECONDS - start))s] $*" >>"$log"; }
left() { echo $((limit - (SECONDS - start))); }

# stage CAP NAME OUTFILE CMD...: run CMD under timeout min(CAP, time left - 5 s), stdout to OUTFILE (or the log
# when OUTFILE is -), stderr to the log. Returns CMD's status; 124 timed out; 125 skipped for want of time.
stage() {
    local cap=$1 name=$2 out=$3
    shift 3
    local t
    t=$(($(left) - 5))
    [ "$t" -gt "$cap" ] && t=$cap
    if [ "$t" -lt 5 ]; then
        say "$name: skipped (the ${limit} s are spent)"
        return 125
    fi
    say "$name: $* (timeout ${t} s)"
    local rc
    if [ "$out" = - ]; then
        timeout -k 5 "$t" "$@" >>"$log" 2>&1
        rc=$?
    else
        timeout -k 5 "$t" "$@" >"$out" 2>>"$log"
        rc=$?
    fi
    say "$name: exit $rc$([ $rc = 124 ] && echo ' (timed out)')"
    return $rc
}

# one value out of a one-line JSON object: json_num FILE KEY
json_num() { grep -o "\"$2\":[-0-9.eE+]*" "$1" 2>/dev/null | head -1 | cut -d: -f2; }
us() { [ -n "$1" ] && printf '%.1fus' "$1" || printf 'failed'; }

gpu="?"
build="?"
tests="not run"
parts=()
status=0

finish() {
    local line="gpu: $gpu | build $build | tests $tests"
    local p
    for p in ${parts[@]+"${parts[@]}"}; do line="$line | $p"; done
    line="$line | log $log"
    say "summary: $line"
    echo "$line"
    exit "$1"
}

say "nnc GPU check: root $root, work $work, limit $limit s, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "git: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')," \
    "$(git -C "$root" status --porcelain 2>/dev/null | wc -l | tr -d ' ') files changed"

# ---- 1. the GPU ----
have_gpu=0
if ! command -v nvidia-smi >/dev/null 2>&1; then
    gpu="none (no nvidia-smi)"
else
    say "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader"
    timeout -k 5 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader \
        >"$work/smi.txt" 2>&1
    smi_rc=$?
    cat "$work/smi.txt" >>"$log"
    if [ $smi_rc = 0 ] && [ -s "$work/smi.txt" ]; then
        gpu="$(head -1 "$work/smi.txt")"
        have_gpu=1
        n_gpus="$(wc -l <"$work/smi.txt")"
        [ "$n_gpus" -gt 1 ] && gpu="$gpu (+$((n_gpus - 1)) more; the first is used)"
    else
        gpu="none (nvidia-smi exit $smi_rc: $(head -1 "$work/smi.txt" | cut -c1-70))"
    fi
fi
say "gpu: $gpu"

# ---- 2. the build ----
if [ $# -ge 1 ]; then
    bdir="$(cd "$1" 2>/dev/null && pwd)" || { build="unusable: $1 is not a directory"; finish 3; }
    [ -d "$bdir/_libs" ] && export LD_LIBRARY_PATH="$bdir/_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if [ ! -x "$bdir/nnc" ] || ! "$bdir/nnc" --version >>"$log" 2>&1; then
        build="unusable: $bdir/nnc does not run here (see the log; pack.sh copies libraries it needs to _libs)"
        "$bdir/nnc" --version >>"$log" 2>&1
        finish 3
    fi
    # ctest files name the paths the build was made at: where those are missing here, link them
    for key in CMAKE_HOME_DIRECTORY CMAKE_CACHEFILE_DIR; do
        old="$(sed -n "s/^$key:INTERNAL=//p" "$bdir/CMakeCache.txt" 2>/dev/null)"
        new="$root"
        [ $key = CMAKE_CACHEFILE_DIR ] && new="$bdir"
        if [ -n "$old" ] && [ "$old" != "$new" ] && [ ! -e "$old" ]; then
            mkdir -p "$(dirname "$old")" && ln -s "$new" "$old" && say "linked $old -> $new (the build was made there)"
        fi
    done
    build="prebuilt $bdir"
else
    missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    cc_="${CC:-}"
    [ -z "$cc_" ] && for c in cc gcc clang; do command -v $c >/dev/null 2>&1 && { cc_=$c; break; }; done
    [ -z "$cc_" ] && missing+=("a C compiler")
    command -v flex >/dev/null 2>&1 || missing+=(flex)
    command -v bison >/dev/null 2>&1 || missing+=(bison)
    if [ -n "$cc_" ]; then
        printf '#include <zlib.h>\nint main(void){return (int)zlibVersion()[0];}\n' >"$work/z.c"
        "$cc_" -o "$work/z" "$work/z.c" -lz >>"$log" 2>&1 || missing+=("zlib (zlib.h, libz)")
        printf '#include <cjson/cJSON.h>\nint main(void){return cJSON_Version()[0];}\n' >"$work/j.c"
        "$cc_" -o "$work/j" "$work/j.c" -lcjson >>"$log" 2>&1 || missing+=("cJSON (cjson/cJSON.h, libcjson)")
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        list="$(IFS=,; echo "${missing[*]}")"
        build="impossible here: missing ${list//,/, }; bring a build: tests/gpu/pack.sh, then run.sh BUILD_DIR"
        finish 3
    fi
    bdir="$work/build"
    if ! stage 40 configure - cmake -S "$root" -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DNNC_WITH_LLVM=OFF \
        -DNNC_BUILD_EXAMPLES=OFF -DOPENBLAS_LIBRARY=OPENBLAS_LIBRARY-NOTFOUND \
        -DCBLAS_INCLUDE_DIR=CBLAS_INCLUDE_DIR-NOTFOUND; then
        build="configure failed"
        finish 3
    fi
    if ! stage $((limit - 100)) build - cmake --build "$bdir" -j "$jobs"; then
        build="failed (or timed out)"
        finish 3
    fi
    build="ok ($((SECONDS - start)) s)"
fi
nnc="$bdir/nnc"
if [ -z "$(find "$bdir" -maxdepth 3 -name 'libnnc_cuda_runtime*' 2>/dev/null | head -1)" ]; then
    build="$build, no cuda runtime library (CMake found no CUDA toolkit?)"
fi

# ---- 3. the model's predictions ----
model_line() {  # model_line CASE: the central predictions (kernels as printed today, as planned), from pm.json
    "$py" - "$work/pm.json" "$1" <<'EOF' 2>>"$log"
import json, sys
d = json.load(open(sys.argv[1]))
if sys.argv[2] == "W5.epoch":
    e = d["epoch"]["s"]["central"]
    print(f"{e['today']:.2f}s, planned {e['planned']:.2f}s")
else:
    u = next(c for c in d["cases"] if c["case"] == sys.argv[2])["us"]["central"]
    print(f"{u['today']:.0f}us, planned {u['planned']:.0f}us")
EOF
}
if stage 30 perf_model "$work/pm.json" "$py" "$here/perf_model.py" --nnc "$nnc" --json; then
    "$py" "$here/perf_model.py" --nnc "$nnc" >>"$log" 2>&1
    pred_w5="$(model_line W5.train)"
else
    pred_w5=""
fi

# ---- 4. without a GPU, this is as far as it goes ----
if [ $have_gpu = 0 ]; then
    parts+=("no GPU: stopped after build" "predicted W5 ${pred_w5:-?}")
    finish 2
fi

# ---- 5. the cuda tests on the device ----
stage 90 ctest "$work/ctest.txt" ctest --test-dir "$bdir" -L cuda -j "$jobs" --output-on-failure --timeout 80
crc=$?
cat "$work/ctest.txt" >>"$log"
res="$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$work/ctest.txt" | tail -1)"
if [ -n "$res" ]; then
    failed="$(echo "$res" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')"
    total="$(echo "$res" | sed -E 's/.* failed out of ([0-9]+).*/\1/')"
    tests="$((total - failed))/$total"
    [ "$failed" != 0 ] && status=1
else
    if grep -q "No tests were found" "$work/ctest.txt" "$log"; then
        tests="0/0 (no test is labelled cuda)"
    else
        tests="none ran (ctest exit $crc)"
    fi
    status=1
fi
[ $crc = 124 ] && { tests="$tests, timed out"; status=1; }

# ---- 6. nnc bench --target cuda ----
torch_json="$work/torch.json"
bench_one() {  # bench_one LABEL MODEL BATCH [VAR=VALUE]
    stage 25 "bench $1" "$work/bench_$1.json" env ${4:+"$4"} "$nnc" bench "$root/bench/workloads/$2.nn" \
        --batch "$3" --target "$target" --json
}
bench_one W2 w2 32 || status=1
bench_one W2full w2 1000 || status=1
bench_one W3 w3 1000 || status=1
bench_one W5 w5 32 || status=1
# the same launches without the graph (each kernel launched from the host on every call): what the graph saves
bench_one W5nograph w5 32 NNC_CUDA_NO_GRAPH=1 || status=1

# ---- 7. one W5 epoch ----
fm=/usr/share/datasets/fashion-mnist
if [ -f "$fm/train-images-idx3-ubyte.gz" ] && [ -f "$fm/train-labels-idx1-ubyte.gz" ]; then
    data=(--data fashion-mnist)
    what="Fashion-MNIST"
else
    what="synthetic 60000"
    stage 30 "synthetic data" - "$py" - "$work" <<'EOF'
import os, struct, sys
d = sys.argv[1]
try:
    import numpy as np
    rng = np.random.default_rng(0)
    np.save(os.path.join(d, "x.npy"), rng.random((60000, 28, 28, 1), dtype=np.float32))
    np.save(os.path.join(d, "y.npy"), rng.integers(0, 10, 60000, dtype=np.int32))
except ImportError:  # no NumPy: zeros, written as .npy by hand (the timing does not depend on the values)
    for name, descr, shape, n in (("x.npy", "<f4", "(60000, 28, 28, 1)", 60000 * 784),
                                  ("y.npy", "<i4", "(60000,)", 60000)):
        h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
        h += " " * (63 - (10 + len(h)) % 64) + "\n"
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + bytes(4 * n))
EOF
    data=(--data "image=$work/x.npy" --data "label=$work/y.npy")
fi
rm -f "$work/epoch.csv"
epoch=""
if stage 60 epoch - "$nnc" train "$root/bench/workloads/w5.nn" --target "$target" "${data[@]}" --epochs 1 --quiet \
    --log "$work/epoch.csv" --save "$work/w5.safetensors"; then
    epoch="$(awk -F, 'NR == 2 { print $NF }' "$work/epoch.csv" 2>/dev/null)"
fi
[ -z "$epoch" ] && status=1

# ---- 8. PyTorch on the same GPU ----
stage 70 torch "$torch_json" "$py" "$here/torch_bench.py" --json --quick || status=1
cat "$torch_json" >>"$log" 2>/dev/null
torch_case() {  # torch_case CASE: eager microseconds
    "$py" -c "import json,sys; r=json.load(open(sys.argv[1]))['cases'][sys.argv[2]]; print('%.0fus' % r['eager_us'])" \
        "$torch_json" "$1" 2>/dev/null || echo "?"
}

for w in W2:W2.b32.train W3:W3.train W5:W5.train; do
    label=${w%%:*}
    case=${w#*:}
    t="$(json_num "$work/bench_$label.json" train_step_us)"
    extra=""
    [ "$label" = W5 ] && extra="no graph $(us "$(json_num "$work/bench_W5nograph.json" train_step_us)"), "
    model="$(model_line "$case" 2>/dev/null || echo '?')"
    parts+=("$label train $(us "$t") (${extra}torch $(torch_case "$case"), model $model)")
done
ep_torch="$("$py" -c "import json,sys; print('%.2fs' % json.load(open(sys.argv[1]))['epoch_s'])" "$torch_json" \
    2>/dev/null || echo '?')"
ep_model="$(model_line W5.epoch 2>/dev/null || echo '?')"
parts+=("epoch $([ -n "$epoch" ] && echo "${epoch}s" || echo failed) ($what; torch $ep_torch, model $ep_model)")
parts+=("predicted W5 ${pred_w5:-?}")
finish $status
