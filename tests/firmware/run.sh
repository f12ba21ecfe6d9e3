#!/usr/bin/env bash
# tests/firmware/run.sh: the firmware examples (examples/firmware) built with the toolchain file and run in
# QEMU's mps2-an386 (Cortex-M4F), their results compared with the host's nnc by compare.py.
#
#   run.sh build    SOURCE_DIR WORK_DIR NNC   configure and build examples/firmware into WORK_DIR/build
#   run.sh classify SOURCE_DIR WORK_DIR NNC   run classify.elf; `nnc predict` the same 100 images
#   run.sh train    SOURCE_DIR WORK_DIR NNC   run train.elf; `nnc train` both models 3 steps from the same start
#
# Exits 77 (skipped) when arm-none-eabi-gcc, qemu-system-arm, python3 or the Fashion-MNIST files are
# missing (.ci/deps installs them). Environment: CMAKE (the cmake to use), NNC_FASHION_DIR.
set -uo pipefail
mode=${1:?usage: run.sh build|classify|train SOURCE_DIR WORK_DIR NNC}
src=${2:?} work=${3:?} nnc=${4:?}
fashion=${NNC_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
build=$work/build

for tool in arm-none-eabi-gcc qemu-system-arm python3; do
    command -v $tool >/dev/null 2>&1 || { echo "SKIP: $tool is not installed (.ci/deps installs it)"; exit 77; }
done
[ -f "$fashion/t10k-images-idx3-ubyte.gz" ] ||
    { echo "SKIP: no Fashion-MNIST in $fashion (Debian package dataset-fashion-mnist)"; exit 77; }

fail() { echo "FAIL: $*"; exit 1; }

# Runs ELF in QEMU inside directory DIR (where its semihosting files go); its output goes to DIR/output.txt.
qemu() {
    local elf=$1 dir=$2
    rm -rf "$dir" && mkdir -p "$dir" || exit 1
    (cd "$dir" && timeout 120 qemu-system-arm -M mps2-an386 -nographic -semihosting-config enable=on,target=native \
        -icount shift=0 -kernel "$elf" >output.txt 2>&1)
    local status=$?
    cat "$dir/output.txt"
    [ $status -eq 0 ] || fail "$(basename "$elf") exited with $status in QEMU (124: timed out)"
}

case $mode in
build)
    rm -rf "$work" && mkdir -p "$work" || exit 1
    "${CMAKE:-cmake}" -S "$src/examples/firmware" -B "$build" --toolchain "$src/cmake/arm-none-eabi.cmake" \
        -DNNC_EXECUTABLE="$nnc" -DFASHION_MNIST_DIR="$fashion" -DFIRMWARE_WERROR=ON >"$work/configure.log" 2>&1 ||
        { cat "$work/configure.log"; fail "configure"; }
    "${CMAKE:-cmake}" --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >"$work/build.log" 2>&1 ||
        { cat "$work/build.log"; fail "build"; }
    grep -A1 'text' "$work/build.log"
    ;;
classify)
    [ -f "$build/classify.elf" ] || fail "no $build/classify.elf: run the firmware.build test first"
    qemu "$build/classify.elf" "$work/classify"
    "$nnc" predict "$src/models/fashion_cnn.nn" --weights "$build/fashion_cnn.safetensors" \
        --data image="$build/test_images.npy" -o "$work/classify/host_probs.npy" || fail "nnc predict"
    python3 "$src/tests/firmware/compare.py" classify "$work/classify/output.txt" \
        "$work/classify/classify_probs.npy" "$work/classify/host_probs.npy" "$build/test_labels.npy" || exit 1
    ;;
train)
    [ -f "$build/train.elf" ] || fail "no $build/train.elf: run the firmware.build test first"
    dir=$work/train
    qemu "$build/train.elf" "$dir"
    "$nnc" train "$src/models/ffn.nn" --weights "$build/ffn_init.safetensors" \
        --data x="$build/ffn_x.npy" --data y="$build/ffn_y.npy" --steps 3 --batch 1 --no-shuffle \
        --save "$dir/ffn_host.safetensors" --log "$dir/ffn_host.csv" --quiet || fail "nnc train ffn"
    "$nnc" train "$src/models/fashion_cnn_finetune.nn" --weights "$build/fashion_cnn.safetensors" \
        --data image="$build/ft_images.npy" --data label="$build/ft_labels.npy" --steps 3 --batch 1 --no-shuffle \
        --save "$dir/finetune_host.safetensors" --log "$dir/finetune_host.csv" --quiet || fail "nnc train finetune"
    python3 "$src/tests/firmware/compare.py" train "$dir/output.txt" ffn \
        "$dir/ffn_device.safetensors" "$dir/ffn_host.safetensors" "$dir/ffn_host.csv" || exit 1
    python3 "$src/tests/firmware/compare.py" train "$dir/output.txt" fashion_cnn_finetune \
        "$dir/fashion_cnn_finetune_device.safetensors" "$dir/finetune_host.safetensors" "$dir/finetune_host.csv" ||
        exit 1
    ;;
*) echo "run.sh: unknown mode '$mode'"; exit 2 ;;
esac
