#!/bin/sh
# run_example.sh: the ctest checks of the examples: each must exit 0 and actually learn.
#
#   run_example.sh fashion    path/to/train_fashion [min_accuracy (default 0.5)]
#   run_example.sh regression path/to/regression    [max_mse (default 0.005)]
#
# fashion: 1 epoch on the first 2000 training images (1800 train, 200 validation), evaluated on the first
# 2000 test images; the test accuracy must exceed min_accuracy (chance is 0.1) and the best weights must
# have been written. Exits 77 (ctest: skipped) when the Fashion-MNIST files are not installed.
# regression: the default 3000 steps; the run must report "deterministic: yes" and a final test MSE below
# max_mse (noise floor 0.0025; an untrained model is near 0.5).
# Prints the program's output, then PASS or FAIL with the reason.
set -u
kind=${1:?usage: run_example.sh fashion|regression BINARY [threshold]}
bin=${2:?usage: run_example.sh fashion|regression BINARY [threshold]}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_example.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() { echo "FAIL: $*"; exit 1; }

case $kind in
fashion)
    min=${3:-0.5}
    data=${NNC_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
    [ -r "$data/train-images-idx3-ubyte.gz" ] || { echo "SKIP: no Fashion-MNIST in $data"; exit 77; }
    "$bin" -e 1 -n 2000 -o "$tmp/best.safetensors" -d "$data" >"$tmp/out" 2>&1
    rc=$?
    cat "$tmp/out"
    [ $rc -eq 0 ] || fail "exit status $rc"
    acc=$(sed -n 's/^test .*accuracy \([0-9.]*\)$/\1/p' "$tmp/out")
    [ -n "$acc" ] || fail "no 'test ... accuracy' line"
    [ -s "$tmp/best.safetensors" ] || fail "no weights written"
    awk -v a="$acc" -v m="$min" 'BEGIN { exit !(a > m) }' || fail "test accuracy $acc <= $min"
    echo "PASS: test accuracy $acc > $min"
    ;;
regression)
    max=${3:-0.005}
    "$bin" >"$tmp/out" 2>&1
    rc=$?
    cat "$tmp/out"
    [ $rc -eq 0 ] || fail "exit status $rc"
    grep -q '^deterministic: yes' "$tmp/out" || fail "two runs with one seed differ"
    mse=$(sed -n 's/^final test mse \([0-9.]*\) .*/\1/p' "$tmp/out")
    [ -n "$mse" ] || fail "no 'final test mse' line"
    awk -v e="$mse" -v m="$max" 'BEGIN { exit !(e < m) }' || fail "final test mse $mse >= $max"
    echo "PASS: final test mse $mse < $max"
    ;;
*) echo "run_example.sh: unknown example '$kind'" >&2; exit 2 ;;
esac
