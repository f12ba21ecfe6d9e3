#!/bin/sh
# run.sh: command-line behaviour of nnc (docs/cli.md; STYLE.md "Tests", after chibicc's driver.sh).
#
#   tests/cli/run.sh path/to/nnc
#
# Runs nnc with good and bad command lines in a scratch directory and checks exit codes (0 success,
# 1 the model, data or a file is wrong, 2 the command line is wrong), what goes to stdout and stderr, and
# which files get written. The fixtures (fixtures/, written by make_fixtures.py) are a 3->2 dense model,
# its weights, data, and broken variants of each. Every run must also end without a signal and without
# "internal error". Checks marked known_bug are expected to fail until the bug is fixed (XFAIL); when one
# passes, the script fails (XPASS) so that the mark gets removed.
# What it does not do: check numbers beyond one predict (tests/ops), or summary/train/bench beyond --help.
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:?usage: run.sh path/to/nnc}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
[ -x "$nnc" ] || { echo "run.sh: no nnc at $nnc" >&2; exit 2; }
fix=$here/fixtures
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_cli.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0 xfail=0

# run ARGS...: nnc in a fresh work directory holding copies of the fixtures; sets $rc, $tmp/out, $tmp/err.
run() {
    rm -rf "$tmp/work" && cp -R "$fix" "$tmp/work" || exit 2
    (cd "$tmp/work" && timeout 120 "$nnc" "$@" >"$tmp/out" 2>"$tmp/err")
    rc=$?
    cmdline="nnc $*"
}

# holds COND: rc=N | out= | err= (empty) | out~ERE | err~ERE | out!ERE (absent) | file:PATH | nofile:PATH
holds() {
    case $1 in
    rc=*) [ "$rc" -eq "${1#rc=}" ] ;;
    out=) [ ! -s "$tmp/out" ] ;;
    err=) [ ! -s "$tmp/err" ] ;;
    out~*) grep -Eq -- "${1#out~}" "$tmp/out" ;;
    err~*) grep -Eq -- "${1#err~}" "$tmp/err" ;;
    out!*) ! grep -Eq -- "${1#out!}" "$tmp/out" ;;
    file:*) [ -s "$tmp/work/${1#file:}" ] ;;
    nofile:*) [ ! -e "$tmp/work/${1#nofile:}" ] ;;
    *) echo "run.sh: bad condition '$1'" >&2; exit 2 ;;
    esac
}

# want DESCRIPTION COND...: the last run must meet every condition (and never crash).
want() {
    desc=$1
    shift
    failed=
    [ "$rc" -ge 124 ] && failed="$failed [exit $rc: signal or timeout]"
    grep -q "internal error" "$tmp/err" && failed="$failed [internal error]"
    for c in "$@"; do holds "$c" || failed="$failed [$c]"; done
    verdict "$desc" "$failed"
}

# known_bug DESCRIPTION COND...: like want, but expected to fail for now.
known_bug() {
    desc=$1
    shift
    failed=
    for c in "$@"; do holds "$c" || failed="$failed [$c]"; done
    if [ -n "$failed" ]; then
        xfail=$((xfail + 1))
        echo "XFAIL $desc"
    else
        fail=$((fail + 1))
        echo "XPASS $desc: fixed; change known_bug to want in tests/cli/run.sh"
    fi
}

verdict() {
    if [ -z "$2" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL  $1: $cmdline (exit $rc), unmet:$2"
        sed 's/^/    stdout: /' "$tmp/out" | head -n 5
        sed 's/^/    stderr: /' "$tmp/err" | head -n 10
    fi
}

# ---- help and version ----------------------------------------------------------------------------
for cmd in check summary train predict bench compile; do
    run $cmd --help
    want "$cmd --help" rc=0 err= "out~^usage: nnc"
    run $cmd tiny.nn --help
    want "$cmd MODEL --help" rc=0 err= "out~^usage: nnc"
done
run --help
want "--help" rc=0 err= "out~^usage: nnc"
want "--help lists the subcommands" "out~nnc check" "out~nnc predict"
run -h
want "-h" rc=0 err= "out~^usage: nnc"
run --version
want "--version" rc=0 err= "out~^nnc [0-9]+\.[0-9]+\.[0-9]+$"

# ---- the command line is wrong: exit 2, one line saying why, nothing on stdout ----------------------
run
want "no arguments" rc=2 out= "err~usage: nnc"
run check
want "check without a model" rc=2 out= "err~^nnc: error: no model file given"
run check tiny.nn two_models.nn
want "two model files" rc=2 out= "err~more than one model file"
run --bogus tiny.nn
want "unknown option" rc=2 out= "err~unknown option '--bogus'"
run check tiny.nn --frobnicate
want "unknown option after the model" rc=2 out= "err~--frobnicate"
run check tiny.nn --epochs 3
want "option of another command" rc=2 out= "err~--epochs"
run tiny.nn --inference=1 -o -
want "value given to a flag" rc=2 out= "err~--inference"
for opt in -o --batch --model --target --emit --weights --max-ram; do
    run tiny.nn $opt
    want "missing value of $opt" rc=2 out= "err~$opt needs a value"
done
run check tiny.nn --model
want "missing value of check --model" rc=2 out= "err~--model needs a value"
run predict tiny.nn --weights
want "missing value of predict --weights" rc=2 out= "err~--weights needs a value"
run train tiny.nn --data
want "missing value of train --data" rc=2 out= "err~--data needs a value"
for n in 0 -1 abc 1.5 99999999999 ""; do
    run tiny.nn -o - --batch "$n"
    want "--batch '$n'" rc=2 out= "err~--batch needs a positive integer"
done
run tiny.nn -o - --batch=0
want "--batch=0" rc=2 out= "err~--batch"
run train tiny.nn --epochs 0
want "--epochs 0" rc=2 out= "err~--epochs"
run train tiny.nn --steps x
want "--steps x" rc=2 out= "err~--steps"
run train tiny.nn --seed -1
want "--seed -1" rc=2 out= "err~--seed"
run bench tiny.nn --iters 0
want "--iters 0" rc=2 out= "err~--iters"
run tiny.nn -o - --max-ram 12Q
want "--max-ram 12Q" rc=2 out= "err~--max-ram"
run tiny.nn -o - -O3
want "-O3" rc=2 out= "err~-O3"
run tiny.nn -o - --target gpu
want "--target gpu" rc=2 out= "err~--target"
run tiny.nn --emit asm
want "--emit asm" rc=2 out= "err~--emit"
run predict tiny.nn --data x=x.npy -o p.npy
want "predict without --weights" rc=2 out= "err~--weights" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors -o p.npy
want "predict without --data" rc=2 out= "err~--data" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors --data x=x.npy
want "predict without -o" rc=2 out= "err~-o"
run predict tiny.nn --weights tiny.safetensors --data =x.npy -o p.npy
want "predict --data =FILE" rc=2 out= "err~--data" nofile:p.npy

# ---- the model file is wrong: exit 1, a diagnostic naming the file ------------------------------------
run check missing.nn
want "check of a missing file" rc=1 out= "err~missing\.nn"
run missing.nn -o out.c
want "compile of a missing file" rc=1 out= "err~missing\.nn" nofile:out.c
run predict missing.nn --weights tiny.safetensors --data x=x.npy -o p.npy
want "predict of a missing file" rc=1 out= "err~missing\.nn" nofile:p.npy
run check .
want "check of a directory" rc=1 out= "err~'\.'"
want "check of a directory says so" "err~[Ii]s a directory"
run check bad.nn
want "check of a bad model" rc=1 out= "err~^bad\.nn:4:22: error: use of undeclared name 'xx'"
run bad.nn -o out.c
want "compile of a bad model writes nothing" rc=1 out= "err~^bad\.nn:4:22: error" nofile:out.c nofile:out.h
run bad.nn -o -
want "compile of a bad model to stdout" rc=1 out= "err~^bad\.nn:4:22: error"

# ---- check ----------------------------------------------------------------------------------------
run check tiny.nn
want "check of a valid model is silent" rc=0 out= err=
run check two_models.nn --model second
want "check --model second" rc=0 out= err=
run check --model=first two_models.nn
want "check --model=first" rc=0 out= err=
run check two_models.nn
want "two models and no --model" rc=1 out= "err~--model" "err~first" "err~second"
run check two_models.nn --model third
want "--model of a model the file lacks" rc=1 out= "err~'third'"

# ---- compile ------------------------------------------------------------------------------------------
run tiny.nn -o out.c
want "compile writes OUT.c and OUT.h" rc=0 out= err= file:out.c file:out.h
grep -q '#include "out.h"' "$tmp/work/out.c"
rc=$?; want "OUT.c includes OUT.h" rc=0
mkdir -p "$tmp/first" && cp "$tmp/work/out.c" "$tmp/work/out.h" "$tmp/first/"
run tiny.nn -o out.c
want "compile again" rc=0 file:out.c
cmp -s "$tmp/first/out.c" "$tmp/work/out.c" && cmp -s "$tmp/first/out.h" "$tmp/work/out.h"
rc=$?; want "compiling twice gives byte-identical OUT.c and OUT.h" rc=0
if command -v cc >/dev/null 2>&1; then
    (cd "$tmp/first" && cc -std=c99 -Wall -Wextra -Werror -pedantic -c out.c -o out.o) >"$tmp/out" 2>"$tmp/err"
    rc=$?; cmdline="cc -std=c99 -Wall -Wextra -Werror -pedantic -c out.c"
    want "OUT.c compiles cleanly as C99" rc=0 err=
fi
run tiny.nn -o sub/dir/out.c
want "compile into a missing directory" rc=1 out= "err~sub/dir/out\.c"
run tiny.nn -o -
want "-o - writes C to stdout and no file" rc=0 err= "out~void tiny_predict" "out~#include" nofile:tiny.c nofile:tiny.h nofile:-
cp "$tmp/out" "$tmp/stdout1.c"
run tiny.nn -o -
cmp -s "$tmp/stdout1.c" "$tmp/out"
rc=$?; want "-o - is byte-identical twice" rc=0
if command -v cc >/dev/null 2>&1; then
    (cd "$tmp" && cc -std=c99 -Wall -Wextra -Werror -pedantic -c stdout1.c -o stdout1.o) >"$tmp/out" 2>"$tmp/err"
    rc=$?; cmdline="cc -std=c99 -Wall -Wextra -Werror -pedantic -c (the output of -o -)"
    want "the C of -o - compiles on its own" rc=0 err=
fi
run tiny.nn --emit c
want "--emit c prints C" rc=0 err= "out~void tiny_predict" nofile:tiny.c
run tiny.nn --emit ir
want "--emit ir prints the IR" rc=0 err= "out~^# predict" "out~input x" "out~matmul" "out~output p" nofile:tiny.c
run tiny.nn --emit ir --dump-ir
want "--dump-ir prints to stderr" rc=0 "out~^# predict" "err~."
run tiny.nn -o - --batch 7
want "--batch sets MAX_BATCH" rc=0 "out~TINY_MAX_BATCH 7"
run tiny.nn -o - --batch=5
want "--batch=5" rc=0 "out~TINY_MAX_BATCH 5"
for level in -O0 -O1 -O2; do
    run tiny.nn -o - $level
    want "$level" rc=0 err= "out~void tiny_predict"
done
run two_models.nn --model second -o -
want "--model second picks that model" rc=0 err= "out~second_predict" "out!first_predict"
run two_models.nn --model first --emit ir
want "--model first --emit ir" rc=0 err= "out~input x : f32\[B,3\]"
run two_models.nn -o out.c
want "compile of two models without --model" rc=1 out= "err~--model" nofile:out.c
run tiny.nn -o out.c --max-ram 16
want "--max-ram below the model's size fails (docs/cli.md)" rc=1 out= "err~--max-ram 16" "err~p\.weight" nofile:out.c nofile:out.h
run tiny.nn -o out.c --max-ram 1M
want "--max-ram above the model's size" rc=0 out= err= file:out.c

# ---- predict ------------------------------------------------------------------------------------------
run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o p.npy
want "predict" rc=0 out= err= file:p.npy
if python3 -c 'import numpy' 2>/dev/null; then
    python3 - "$tmp/work/p.npy" "$fix/expected_p.npy" >"$tmp/out" 2>"$tmp/err" <<'PY'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
sys.exit(0 if a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5) else 1)
PY
    rc=$?; want "predict writes x @ w + b" rc=0
fi
run predict tiny.nn --weights tiny.safetensors --data x.npy -o p.npy
want "predict --data FILE binds the only input" rc=0 file:p.npy
run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o p=named.npy
want "predict -o NAME=FILE" rc=0 file:named.npy
run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o q=named.npy
want "predict -o of an unknown output" rc=1 "err~'q'" nofile:named.npy
run predict tiny.nn --weights missing.safetensors --data x=x.npy -o p.npy
want "predict with a missing weights file" rc=1 out= "err~missing\.safetensors" nofile:p.npy
run predict tiny.nn --weights tiny_missing_bias.safetensors --data x=x.npy -o p.npy
want "weights file missing a tensor" rc=1 out= "err~tiny_missing_bias\.safetensors" "err~p\.bias" nofile:p.npy
run predict tiny.nn --weights tiny_wrong_shape.safetensors --data x=x.npy -o p.npy
want "weights tensor of the wrong shape" rc=1 out= "err~tiny_wrong_shape\.safetensors" "err~p\.weight" \
    "err~\[2, ?3\]" "err~\[3, ?2\]" nofile:p.npy
run predict tiny.nn --weights tiny_truncated.safetensors --data x=x.npy -o p.npy
want "truncated safetensors" rc=1 out= "err~tiny_truncated\.safetensors" nofile:p.npy
run predict tiny.nn --weights x.npy --data x=x.npy -o p.npy
want "weights that are not safetensors" rc=1 out= "err~x\.npy" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors --data x=x_wrong_shape.npy -o p.npy
want "data with the wrong per-sample shape" rc=1 out= "err~x_wrong_shape\.npy" "err~\[3\]" "err~\[4, ?5\]|\[5\]" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors --data x=missing.npy -o p.npy
want "missing data file" rc=1 out= "err~missing\.npy" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors --data y=x.npy -o p.npy
want "unknown data binding" rc=1 out= "err~'y'" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors --data x=tiny.nn -o p.npy
want "data file of an unknown format" rc=1 out= "err~tiny\.nn" nofile:p.npy
run predict bad.nn --weights tiny.safetensors --data x=x.npy -o p.npy
want "predict of a bad model" rc=1 out= "err~^bad\.nn:4:22: error" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o sub/dir/p.npy
want "predict into a missing directory" rc=1 out= "err~sub/dir/p\.npy"

echo "cli: $pass passed, $fail failed, $xfail known bugs"
[ $fail -eq 0 ]
