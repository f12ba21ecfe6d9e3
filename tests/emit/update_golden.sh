#!/bin/sh
# update_golden.sh: regenerates the golden C of tests/emit/golden/, which the test emit.golden compares
# every build's output against, so that every change to the generated C is a diff someone reads.
#
#   tests/emit/update_golden.sh [NNC [OUTDIR]]
#
# NNC defaults to build/nnc of this checkout, OUTDIR to tests/emit/golden. For each of models/ffn.nn,
# mlp_bn.nn, fashion_cnn.nn and lstm_forecaster.nn it writes MODEL.O0.c/.h, MODEL.O2.c/.h and
# MODEL.inference.c/.h (-O2 --inference): the .c and .h pair that `nnc MODEL.nn -o MODEL.c` gives a user;
# MODEL.mcu.c/.h (--target mcu: --inference for fashion_cnn and lstm_forecaster, training for ffn); and
# MODEL.cuda.c/.h (--target cuda, training) for ffn and fashion_cnn, with the seed CNN's kernels as
# fashion_cnn.cuda.cu (--emit cuda) for reading.
# The model is compiled from a copy in a scratch directory under its bare name, so that no absolute path
# (of the checkout or the scratch directory) reaches the files' header comments or #line directives.
# After running it, read `git diff tests/emit/golden` before committing: each hunk should be a change
# you meant to make.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
nnc=${1:-$root/build/nnc}
out=${2:-$here/golden}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
[ -x "$nnc" ] || { echo "update_golden.sh: no nnc at $nnc (give its path as the first argument)" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_golden.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$tmp"
for model in ffn mlp_bn fashion_cnn lstm_forecaster; do
    cp "$root/models/$model.nn" "$model.nn"
    "$nnc" "$model.nn" -O0 -o "$model.O0.c"
    "$nnc" "$model.nn" -O2 -o "$model.O2.c"
    "$nnc" "$model.nn" -O2 --inference -o "$model.inference.c"
    for f in "$model".*.c "$model".*.h; do cp "$f" "$out/$f"; done
done
# the firmware target (docs/mcu.md): the seed CNN and the LSTM as they predict on a microcontroller, the
# 10-50-1 network as it trains there
for model in fashion_cnn lstm_forecaster ffn; do
    cp "$root/models/$model.nn" "$model.nn"
    if [ "$model" = ffn ]; then
        "$nnc" "$model.nn" --target mcu -o "$model.mcu.c"
    else
        "$nnc" "$model.nn" --target mcu --inference -o "$model.mcu.c"
    fi
    cp "$model.mcu.c" "$model.mcu.h" "$out/"
done
# the CUDA target (docs/cuda.md): host C, and the kernels it embeds as one translation unit
for model in ffn fashion_cnn; do
    cp "$root/models/$model.nn" "$model.nn"
    "$nnc" "$model.nn" --target cuda -o "$model.cuda.c"
    cp "$model.cuda.c" "$model.cuda.h" "$out/"
done
"$nnc" fashion_cnn.nn --emit cuda > fashion_cnn.cuda.cu
cp fashion_cnn.cuda.cu "$out/"
