#!/bin/sh
# run.sh: the per-op gradient checks (STYLE.md "Tests"; the harness is gradcheck.c).
#
#   tests/grad/run.sh NNC CC [CASE.nn...]      (default: every cases/*.nn)
#
# For each case: `nnc CASE.nn -o model.c --shim`, then `CC -std=c99 -O1 -DNNC_REAL=double` the model with
# gradcheck.c, then run it on the case (it reads its inputs and `# gradcheck:` lines from the .nn file).
# Prints each case's per-tensor report; exits 0 when every case passes, 1 otherwise (2: usage).
# NNC_GRAD_FLAGS adds nnc options (e.g. "-O0"; default none, so -O2).
# What it does not do: decide which side is wrong when a case fails (see gradcheck.c's report).
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:?usage: run.sh NNC CC [CASE.nn...]}
cc=${2:?usage: run.sh NNC CC [CASE.nn...]}
shift 2
[ -x "$nnc" ] || { echo "run.sh: no nnc at $nnc" >&2; exit 2; }
NNC_GRAD_FLAGS=${NNC_GRAD_FLAGS-}
if [ $# -eq 0 ]; then set -- "$here"/cases/*.nn; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_grad.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0
for case in "$@"; do
    name=$(basename "$case" .nn)
    dir=$tmp/$name
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    if ! "$nnc" "$case" -o "$dir/model.c" --shim $NNC_GRAD_FLAGS > "$dir/log" 2>&1; then
        echo "FAIL $name: nnc exited with an error:"
        sed 's/^/    /' "$dir/log"
        status=1
        continue
    fi
    if ! "$cc" -std=c99 -O1 -DNNC_REAL=double -o "$dir/gradcheck" "$dir/model.c" "$here/gradcheck.c" -lm \
        > "$dir/log" 2>&1; then
        echo "FAIL $name: the C compiler failed:"
        sed 's/^/    /' "$dir/log"
        status=1
        continue
    fi
    if "$dir/gradcheck" "$case"; then
        echo "ok $name"
    else
        echo "FAIL $name"
        status=1
    fi
done
exit $status
