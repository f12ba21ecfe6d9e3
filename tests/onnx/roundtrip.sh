#!/bin/sh
# roundtrip.sh: one PyTorch-exported model of tests/onnx/fixtures/roundtrip/ through nnc, both ways a user would.
#
#   roundtrip.sh NNC NPYCMP CASE_DIR
#
# CASE_DIR holds model.onnx, x.npy, y.npy (ONNX Runtime's output for x) and meta.json (the graph's input
# and output are named x and y). Checks, each against y.npy with npycmp at rtol 1e-4, atol 1e-5:
#   1. `nnc predict model.onnx --data x=x.npy -o y.npy` (the model read directly, its initializers as weights);
#   2. `nnc import model.onnx -o M.nn`, `nnc check M.nn` silent, and `nnc predict M.nn --weights
#      M.safetensors` (the .nn text and weights file the import wrote).
# Exit 0 when all pass, 1 otherwise (an import that refuses the model is a failure here: these are the
# models the import exists for), 2 on bad usage; 77 when NNC was built without ONNX (NNC_HAVE_ONNX=0 in
# the environment).
set -u

if [ $# -ne 3 ]; then
    echo "usage: roundtrip.sh NNC NPYCMP CASE_DIR" >&2
    exit 2
fi
if [ "${NNC_HAVE_ONNX:-1}" = 0 ]; then
    echo "skipped: nnc was built without ONNX import"
    exit 77
fi
nnc=$1
npycmp=$2
dir=${3%/}
name=$(basename "$dir")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_onnx_rt.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0

fail() {
    echo "FAIL $name: $*"
    status=1
}

# run NNC ARGS..., keeping stderr in $tmp/err; 0 when nnc exited 0
run_nnc() {
    "$nnc" "$@" 2>"$tmp/err"
    rc=$?
    [ $rc -eq 0 ] && return 0
    fail "nnc $1 exit $rc: $(head -n 3 "$tmp/err")"
    return 1
}

# compare GOT with the reference y.npy
compare() {
    "$npycmp" "$1" "$dir/y.npy" >"$tmp/cmp" 2>&1 || fail "$2: $(cat "$tmp/cmp")"
}

if run_nnc predict "$dir/model.onnx" --data "x=$dir/x.npy" -o "$tmp/y_onnx.npy"; then
    compare "$tmp/y_onnx.npy" "predict model.onnx"
fi

if run_nnc import "$dir/model.onnx" -o "$tmp/m.nn"; then
    if run_nnc check "$tmp/m.nn"; then
        [ -s "$tmp/err" ] && fail "nnc check printed: $(head -n 3 "$tmp/err")"
    fi
    if run_nnc predict "$tmp/m.nn" --weights "$tmp/m.safetensors" --data "x=$dir/x.npy" -o "$tmp/y_nn.npy"; then
        compare "$tmp/y_nn.npy" "predict of the imported .nn"
    fi
fi
[ $status -eq 0 ] && echo "ok $name: predict of model.onnx and of the imported .nn match ONNX Runtime"
exit $status
