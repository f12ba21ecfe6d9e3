#!/bin/sh
# run_case.sh: run one whole-model training test (a directory written by make_fixtures.py).
#
#   run_case.sh NNC STCMP CASE_DIR
#
# Runs `nnc train CASE_DIR/model.nn --weights CASE_DIR/init.safetensors --data NAME=FILE ... --steps K
# --no-shuffle --batch B --save OUT --quiet` in a temporary directory, once per optimization level in
# $NNC_TRAIN_LEVELS (default "-O2 -O0": docs/kernels.md says every level agrees), and compares OUT with
# CASE_DIR/expected.safetensors (PyTorch's weights, state and optimizer state after K steps) using stcmp at
# the training tolerance of docs/kernels.md (numerics). Optimizer state in OUT that the reference lacks is a failure too (a frozen
# parameter has none). Prints the worst element of each run; exits 0 when all pass, 1 otherwise.
# What it does not do: regenerate fixtures (make_fixtures.py) or judge which side is wrong.
set -u

if [ $# -ne 3 ]; then
    echo "usage: run_case.sh NNC STCMP CASE_DIR" >&2
    exit 2
fi
nnc=$1
stcmp=$2
dir=${3%/}
name=$(basename "$dir")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_train.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# args: `batch B`, `steps K`, `data NAME FILE` (one per line)
set --
batch='' steps=''
while read -r kind a b; do
    case $kind in
    batch) batch=$a ;;
    steps) steps=$a ;;
    data) set -- "$@" --data "$a=$dir/$b" ;;
    "") ;;
    *) echo "$name: bad line in args: $kind $a $b" >&2; exit 2 ;;
    esac
done < "$dir/args"
if [ -z "$batch" ] || [ -z "$steps" ]; then
    echo "$name: args needs 'batch' and 'steps'" >&2
    exit 2
fi

status=0
for level in ${NNC_TRAIN_LEVELS:--O2 -O0}; do
    out=$tmp/out$level.safetensors
    # shellcheck disable=SC2086 # $level is empty or one word
    if ! "$nnc" train "$dir/model.nn" --weights "$dir/init.safetensors" "$@" --steps "$steps" --no-shuffle \
        --batch "$batch" --save "$out" --quiet $level > "$tmp/log" 2>&1; then
        echo "FAIL $name $level: nnc train exited with an error:"
        sed 's/^/    /' "$tmp/log"
        status=1
        continue
    fi
    if msg=$("$stcmp" -v --no-extra opt. "$out" "$dir/expected.safetensors" 2>&1); then
        echo "ok $name $level: $msg"
    else
        echo "FAIL $name $level: after $steps steps at batch $batch:"
        printf '%s\n' "$msg" | sed 's/^/    /'
        status=1
    fi
done
exit $status
