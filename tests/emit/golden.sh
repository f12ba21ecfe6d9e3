#!/bin/sh
# golden.sh: the generated C of four models/ files at -O0, -O2 and --inference, of three for
# --target mcu and of two for --target cuda (with the seed CNN's kernels), is the C in
# tests/emit/golden/ byte for byte; on a difference it prints the diff and how to accept it.
#
#   golden.sh NNC TESTS_EMIT_DIR
set -u
nnc=${1:?usage: golden.sh NNC DIR}
dir=$(cd "${2:?usage: golden.sh NNC DIR}" && pwd) || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_golden_check.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
sh "$dir/update_golden.sh" "$nnc" "$tmp/new" || { echo "FAIL: update_golden.sh could not generate the C"; exit 1; }
n=$(ls "$dir/golden" | wc -l)
[ "$n" -eq 35 ] || { echo "FAIL: tests/emit/golden holds $n files, not the 35 update_golden.sh writes"; exit 1; }
if diff -ru "$dir/golden" "$tmp/new" > "$tmp/diff"; then
    echo "ok: the generated C of 17 model builds (and the seed CNN's CUDA kernels) is the golden C"
    exit 0
fi
lines=$(wc -l < "$tmp/diff")
head -400 "$tmp/diff"
[ "$lines" -gt 400 ] && echo "... ($lines lines of diff in all)"
echo "FAIL: the generated C differs from tests/emit/golden (- golden, + this build)."
echo "If every change above is intended, run tests/emit/update_golden.sh BUILD/nnc, read"
echo "\`git diff tests/emit/golden\` and commit the goldens with the change that made them."
exit 1
