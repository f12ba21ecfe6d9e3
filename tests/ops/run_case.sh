#!/bin/sh
# run_case.sh: run one per-operator forward test (a directory written by make_fixtures.py).
#
#   run_case.sh NNC NPYCMP CASE_DIR
#
# Runs `nnc predict CASE_DIR/model.nn --weights CASE_DIR/weights.safetensors --data ... -o NAME=FILE ...`
# into a temporary directory, once per optimization level in $NNC_OPS_LEVELS (default "-O2 -O0": docs/kernels.md
# says every level agrees), and compares every output with CASE_DIR/expected_NAME.npy using npycmp at
# the forward tolerance of docs/kernels.md (numerics). Prints each failure; exits 0 when all pass, 1 otherwise.
# What it does not do: regenerate fixtures (make_fixtures.py) or judge which side is wrong.
set -u

if [ $# -ne 3 ]; then
    echo "usage: run_case.sh NNC NPYCMP CASE_DIR" >&2
    exit 2
fi
nnc=$1
npycmp=$2
dir=${3%/}
name=$(basename "$dir")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_ops.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# args: `data NAME FILE`, `output NAME`, `option ARG...` (one per line)
set --
outputs=
options=
while read -r kind a b; do
    case $kind in
    data) set -- "$@" --data "$a=$dir/$b" ;;
    output) outputs="$outputs $a" ;;
    option) options="$options $a${b:+ $b}" ;;
    "") ;;
    *) echo "$name: bad line in args: $kind $a $b" >&2; exit 2 ;;
    esac
done < "$dir/args"

status=0
for level in ${NNC_OPS_LEVELS:--O2 -O0}; do
    mkdir -p "$tmp/$level"
    outargs=
    for o in $outputs; do outargs="$outargs -o $o=$tmp/$level/$o.npy"; done
    # $options and $outargs hold no spaces inside a word (names and paths made by make_fixtures.py)
    # shellcheck disable=SC2086
    if ! "$nnc" predict "$dir/model.nn" --weights "$dir/weights.safetensors" "$@" $outargs $options $level \
        > "$tmp/$level/log" 2>&1; then
        echo "FAIL $name $level: nnc predict exited with an error:"
        sed 's/^/    /' "$tmp/$level/log"
        status=1
        continue
    fi
    for o in $outputs; do
        if ! msg=$("$npycmp" "$tmp/$level/$o.npy" "$dir/expected_$o.npy" 2>&1); then
            echo "FAIL $name $level: output $o: $msg"
            status=1
        fi
    done
done
[ $status -eq 0 ] && echo "ok $name"
exit $status
