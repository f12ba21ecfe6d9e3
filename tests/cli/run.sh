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
# $setup (a shell command) runs in the work directory first; $nnc_env (VAR=VALUE words) is nnc's extra
# environment.
setup=: nnc_env=
run() {
    [ "$setup" = : ] && [ -n "${keep_work:-}" ] && [ -d "$tmp/work" ] || { rm -rf "$tmp/work" && cp -R "$fix" "$tmp/work"; } || exit 2
    # shellcheck disable=SC2086 # $nnc_env is a list of words on purpose
    (cd "$tmp/work" && eval "$setup" && env $nnc_env timeout 120 "$nnc" "$@" >"$tmp/out" 2>"$tmp/err")
    rc=$?
    cmdline="${nnc_env:+$nnc_env }nnc $*"
}

# holds COND: rc=N | out= | err= (empty) | out~ERE | err~ERE | out!ERE (absent) | file:PATH | nofile:PATH |
# file~PATH:ERE (the file has a line matching ERE) |
# same:PATH (the work copy of fixture PATH is unchanged)
holds() {
    case $1 in
    rc=*) [ "$rc" -eq "${1#rc=}" ] ;;
    out=) [ ! -s "$tmp/out" ] ;;
    err=) [ ! -s "$tmp/err" ] ;;
    out~*) grep -Eq -- "${1#out~}" "$tmp/out" ;;
    err~*) grep -Eq -- "${1#err~}" "$tmp/err" ;;
    out!*) ! grep -Eq -- "${1#out!}" "$tmp/out" ;;
    file:*) [ -s "$tmp/work/${1#file:}" ] ;;
    file~*) f=${1#file~}; grep -Eq -- "${f#*:}" "$tmp/work/${f%%:*}" ;;
    nofile:*) [ ! -e "$tmp/work/${1#nofile:}" ] ;;
    same:*) cmp -s "$tmp/work/${1#same:}" "$fix/${1#same:}" ;;
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
# bench takes --weights, as every command that compiles does (it was refused for a while)
run bench tiny.nn --weights tiny.safetensors --iters 1
want "bench --weights" rc=0 "out~predict .* us"
run bench tiny.nn --weights tiny_missing_bias.safetensors --iters 1
want "bench --weights missing a tensor" rc=1 out= "err~missing parameter 'p.bias'"
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
want "predict -o of an unknown output is a command-line error" rc=2 "err~'q'" "err~it has p" nofile:named.npy
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
want "unknown data binding is a command-line error" rc=2 out= "err~'y'" "err~it has x" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors --data x=tiny.nn -o p.npy
want "data file of an unknown format" rc=1 out= "err~tiny\.nn" nofile:p.npy
run predict bad.nn --weights tiny.safetensors --data x=x.npy -o p.npy
want "predict of a bad model" rc=1 out= "err~^bad\.nn:4:22: error" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o sub/dir/p.npy
want "predict into a missing directory" rc=1 out= "err~sub/dir/p\.npy"

# ---- issue 9: hostile and mistyped command lines ---------------------------------------------------------
# numbers: digits only, in range; nan, inf, signs, spaces, exponents, hex, overflow and junk exit 2
for v in nan inf -1 0 "" 1e3 0x10 " 5" 5x 12Q 1G 1KB 1.1K 0.5 99999999999999999999M 1125899906842625; do
    run tiny.nn -o - --max-ram "$v"
    want "--max-ram '$v' is refused" rc=2 out= "err~--max-ram needs a (positive number|value)"
done
for v in 65536 256K 1.5M 0.5K; do
    run tiny.nn -o out.c --max-ram "$v"
    want "--max-ram $v" rc=0 file:out.c
done
for v in nan inf +5 " 5" 1e3 0x10 1048577; do
    run tiny.nn -o - --batch "$v"
    want "--batch '$v' is refused" rc=2 out= "err~--batch needs a positive integer"
done
for opt in --epochs --steps; do
    for v in nan -1 +1 2147483648 1e2 3x; do
        run train tiny.nn --data x=x.npy $opt "$v"
        want "$opt '$v' is refused" rc=2 out= "err~$opt needs a positive integer"
    done
done
for v in nan -1 +1 " 1" 18446744073709551616 1.0; do
    run train tiny.nn --data x=x.npy --seed "$v"
    want "--seed '$v' is refused" rc=2 out= "err~--seed needs a non-negative integer"
done
run bench tiny.nn --iters nan
want "--iters nan is refused" rc=2 out= "err~--iters needs a positive integer"

# an option given twice, a name bound twice
run tiny.nn -o a.c -o b.c
want "-o given twice" rc=2 out= "err~-o is given twice \('a\.c' and 'b\.c'\)" nofile:a.c nofile:b.c
run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o p=a.npy -o p=b.npy
want "predict -o p=a -o p=b" rc=2 out= "err~-o binds 'p' twice" nofile:a.npy nofile:b.npy
run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o a.npy -o p=b.npy
want "predict -o FILE and -o NAME=FILE of the first output" rc=2 out= "err~both write output 'p'" nofile:a.npy nofile:b.npy
run predict tiny.nn --weights tiny.safetensors --data x=x.npy --data x=x.npy -o p.npy
want "--data x=a --data x=b" rc=2 out= "err~--data binds 'x' twice" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors --data x.npy --data x=x.npy -o p.npy
want "--data FILE --data x=FILE bind the one input twice" rc=2 out= "err~'x' is bound twice" nofile:p.npy
run predict tiny.nn --weights tiny.safetensors --data x.npy --data x.npy -o p.npy
want "--data FILE twice" rc=2 out= "err~--data is given twice without a name" nofile:p.npy
run train tiny.nn --data x=x.npy --val x=x.npy --val x=x.npy
want "--val x=a --val x=b" rc=2 out= "err~--val binds 'x' twice"
run train tiny.nn --data fashion-mnist --data fashion-mnist
want "--data fashion-mnist twice" rc=2 out= "err~fashion-mnist is given twice"
run predict tiny.nn --weights tiny.safetensors --data fashion-mnist --data x=x.npy -o p.npy
want "--data fashion-mnist with another --data" rc=2 out= "err~do not add" nofile:p.npy
for dup in "--batch 3 --batch 4" "--model tiny --model tiny" "--inference --inference" "--max-ram 1M --max-ram 2M"; do
    # shellcheck disable=SC2086
    run tiny.nn -o - $dup
    want "$dup" rc=2 out= "err~${dup%% *} is given twice"
done
for a in -O -O10 -O3x; do
    run tiny.nn -o - $a
    want "$a" rc=2 out= "err~unknown optimization level '$a' \(-O0, -O1 or -O2\)"
done
run tiny.nn -o=out.c
want "-o=FILE" rc=2 out= "err~write -o FILE" nofile:=out.c nofile:out.c
run tiny.nn -o - -O0 -O2
want "-O given twice: the last counts" rc=0 "out~void tiny_predict"

# empty and odd values
run ""
want "an empty model file name" rc=2 out= "err~model file name is empty"
for opt in -o --model --weights --target --emit --passes; do
    run tiny.nn $opt ""
    want "$opt ''" rc=2 out= "err~$opt"
done
run tiny.nn -o ""
want "-o '' says the value is empty" rc=2 "err~-o needs a value, not an empty string" nofile:tiny.c
for b in "" = x= =x.npy "==x.npy"; do
    run predict tiny.nn --weights tiny.safetensors --data "$b" -o p.npy
    want "--data '$b'" rc=2 out= "err~--data needs NAME=FILE" nofile:p.npy
done
long=$(printf '%0500d' 0 | tr 0 a)
run tiny.nn "--$long"
want "a 500-character option" rc=2 out= "err~unknown option"
run predict tiny.nn --weights tiny.safetensors --data "$long=x.npy" -o p.npy
want "a 500-character input name" rc=2 out= "err~no input named" nofile:p.npy
run "$long.nn"
want "a 500-character model file name" rc=1 out= "err~cannot read"

# never write over an input: the model, through a link, the header, the weights, the data
run tiny.nn -o tiny.nn
want "-o MODEL is refused" rc=2 out= "err~-o tiny\.nn is the model file" same:tiny.nn nofile:tiny.nn.h
setup='ln -s tiny.nn link.c'
run tiny.nn -o link.c
want "-o a link to the model is refused" rc=2 out= "err~is the model file" same:tiny.nn
setup='cp tiny.nn m.h'
run m.h -o m.c
want "a header that would be the model is refused" rc=2 out= "err~m\.h is the model file" same:tiny.nn nofile:m.c
setup='cp tiny.nn m.c'
run m.c
want "the default output that would be the model is refused" rc=2 out= "err~m\.c is the model file" "err~no -o"
setup=:
for o in tiny.nn x.npy tiny.safetensors p=tiny.nn; do
    run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o $o
    want "predict -o $o (an input) is refused" rc=2 out= "err~never writes over its input" same:tiny.nn same:x.npy \
        same:tiny.safetensors
done
for o in - p=-; do
    run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o $o
    want "predict -o $o (stdout) is refused" rc=2 out= "err~-o - \(stdout\)" nofile:-
done
for opt in --save --log; do
    run train tiny.nn --data x=x.npy $opt -
    want "train $opt - (stdout) is refused" rc=2 out= "err~$opt needs a file name" nofile:-
done
run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o nodir/p.npy
want "predict -o into a missing directory" rc=1 out= "err~nodir" nofile:nodir

# NNC_THREADS: unset or 1 to 256; anything else exits 2 before any work
for v in -1 abc 0 "" 257 2x 0x2 99999999999999999999; do
    nnc_env="NNC_THREADS=$v"
    run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o p.npy
    want "NNC_THREADS='$v' is refused" rc=2 out= "err~NNC_THREADS must be a whole number from 1 to 256" nofile:p.npy
done
nnc_env=NNC_THREADS=2
run predict tiny.nn --weights tiny.safetensors --data x=x.npy -o p.npy
want "NNC_THREADS=2" rc=0 file:p.npy
nnc_env=NNC_THREADS=abc
run tiny.nn -o -
want "NNC_THREADS only matters where nnc runs the model" rc=0
nnc_env=

# --target cuda (docs/cuda.md): host C that launches the kernels, and the kernels themselves with --emit cuda
run --help
want "--help names the cuda target" "out~--target c\|cuda\|mcu .*NVIDIA GPU" "out~--emit ir\|c\|cuda .*--target cuda"
for a in "--target cuda" "--target=cuda"; do
    # shellcheck disable=SC2086
    run tiny.nn $a -o out.c
    want "$a compiles" rc=0 out= err= file:out.c file:out.h "file~out.h:int tiny_init\(tiny \*m, uint64_t seed\);" \
        "file~out.h:const char \*tiny_error\(const tiny \*m\);" "file~out.h:void tiny_free\(tiny \*m\);" \
        "file~out.h:int tiny_get_tensor\(tiny \*m, int i, void \*host\);" "file~out.c:static const char \*const tiny_cuda_source"
    rm -f out.c out.h
done
run tiny.nn --emit cuda
want "--emit cuda prints the kernels" rc=0 err= "out~NNC_GLOBAL void k1_" "out~__global__" nofile:out.c
run tiny.nn --emit cuda --target mcu
want "--emit cuda with another target is refused" rc=2 out= "err~--emit cuda prints the kernels of --target cuda"

# --target mcu (docs/mcu.md): compiles, batch 1 by default; runs on the device, not in nnc
run tiny.nn --target mcu -o out.c
want "--target mcu compiles" rc=0 out= err= file:out.c file:out.h "file~out.h:_MAX_BATCH 1\$" "file~out.h:_FLASH_BYTES " \
    "file~out.c:#include <math.h>"
run summary tiny.nn --target mcu --json
want "summary --target mcu --json has ram_bytes and flash_bytes" rc=0 "out~\"ram_bytes\":" "out~\"flash_bytes\":" \
    "out~\"batch\":[[:space:]]*1,"
for c in train predict bench; do
    if [ $c = bench ]; then run bench tiny.nn --target mcu; else run $c tiny.nn --target mcu --data x=x.npy --weights tiny.safetensors; fi
    want "$c --target mcu is refused: an mcu model runs on the device" rc=2 out= "err~runs on the device"
done
run tiny.nn --target mcu --weights tiny.safetensors --inference -o out.c --max-flash 8
want "--max-flash below the const weights fails, naming them" rc=1 out= "err~--max-flash 8" "err~p\.weight \(const parameter\)" \
    nofile:out.c
run tiny.nn --target mcu --weights tiny.safetensors --inference -o out.c --max-flash 1M
want "--max-flash above them" rc=0 out= err= file:out.c
run tiny.nn --target mcu -o out.c --max-flash 0
want "--max-flash 0 is refused" rc=2 "err~--max-flash needs a positive number"
setup="printf 'model wide {\\n    input x: f32[1000, 1000]\\n    output y = relu(x)\\n}\\n' > wide.nn"
run wide.nn --target mcu --batch 4000 -o out.c
want "--target mcu refuses a value int32_t offsets cannot index, naming it" rc=1 \
    "err~'x' \(input\) would have 4000000000 elements" "err~the generated C can index" nofile:out.c
setup=:

# suggestions, and `nnc help`
run chek tiny.nn
want "nnc chek: did you mean check" rc=2 out= "err~unknown command 'chek'; did you mean 'check'\?"
run trian
want "nnc trian: did you mean train" rc=2 out= "err~did you mean 'train'\?"
run frobnicate tiny.nn
want "an unknown command before a model" rc=2 out= "err~unknown command 'frobnicate'"
run train tiny.nn --epoch 3
want "--epoch: did you mean --epochs" rc=2 out= "err~unknown option '--epoch'; did you mean '--epochs'\?"
run tiny.nn --inferenc -o -
want "--inferenc: did you mean --inference" rc=2 out= "err~did you mean '--inference'\?"
run predict tiny.nn -weights w
want "-weights: did you mean --weights" rc=2 out= "err~did you mean '--weights'\?"
run check tiny.nn --epochs 3
want "an option of another command says which takes it" rc=2 out= "err~does not take --epochs \(train takes it\)"
run help
want "nnc help" rc=0 err= "out~^usage: nnc" "out~nnc check"
for cmd in check summary train predict bench compile; do
    run $cmd --help
    cp "$tmp/out" "$tmp/help_$cmd"
    run help $cmd
    cmp -s "$tmp/out" "$tmp/help_$cmd"
    rc=$?; want "nnc help $cmd is nnc $cmd --help" rc=0
done
# ---- nnc import: MODEL.onnx -> OUT.nn and OUT.safetensors (the model: tests/onnx_read/cases) ----------
onnx_case=$here/../onnx_read/cases/ext_embedded.onnx
setup="cp '$onnx_case' m.onnx"
run import m.onnx
want "import without -o" rc=2 out= "err~import needs -o OUT.nn" nofile:m.nn
run import tiny.nn -o out.nn
want "import of a .nn model" rc=2 out= "err~import reads an ONNX model \(MODEL.onnx\), not 'tiny.nn'" nofile:out.nn
run import m.onnx -o m.onnx
want "import refuses to write over the model" rc=2 out= "err~-o m.onnx is the model file" file:m.onnx
run import ./m.onnx -o m.onnx
want "import refuses to write over the model by another spelling" rc=2 out= "err~is the model file"
run import m.onnx -o m.nn
if grep -q "without ONNX support" "$tmp/err"; then
    want "import (nnc without ONNX support) says what to install" rc=1 "err~libonnx-dev"
else
    run import missing.onnx -o out.nn
    want "import of a missing model" rc=1 out= "err~missing.onnx: cannot open" nofile:out.nn nofile:out.safetensors
    run import m.onnx -o m.nn
    want "import -o m.nn writes m.nn and m.safetensors" rc=0 out= err= "file~m.nn:^model m [{]" \
        "file~m.nn:^    input x: f32\[4\]$" "file~m.nn:^    output y$" "file~m.safetensors:\"w\"" nofile:m
    run import m.onnx -o m
    want "import -o m writes m and m.safetensors" rc=0 out= err= "file~m:^model m [{]" file:m.safetensors nofile:m.nn
    run import m.onnx -o out.nn --model imported
    want "import --model names the model" rc=0 "file~out.nn:^model imported [{]" file:out.safetensors
fi
setup=:
run import --help
cp "$tmp/out" "$tmp/help_import"
want "import --help" rc=0 err= "out~^usage: nnc import MODEL.onnx -o OUT.nn"
run help import
cmp -s "$tmp/out" "$tmp/help_import"
rc=$?; want "nnc help import is nnc import --help" rc=0

run help chek
want "nnc help chek" rc=2 out= "err~did you mean 'check'\?"

# every option a command's --help lists is accepted, and every other option is refused with "does not take"
# (nnc writes nothing here, so the work directory is reused: keep_work)
all=
for cmd in check summary train predict bench compile; do
    run $cmd --help
    opts=$(sed -n 's/^  \(-[-a-zA-Z0-9]*\).*/\1/p' "$tmp/out" | sort -u)
    twice=$(sed -n 's/^  \(-[-a-zA-Z0-9]*\).*/\1/p' "$tmp/out" | sort | uniq -d | grep -vx -e --data -e -o)
    [ -z "$twice" ]
    rc=$?; want "$cmd --help describes each option once (not:$twice)" rc=0
    eval "opts_$cmd=\$opts"
    all="$all $opts"
done
all=$(printf '%s\n' $all | sort -u)
keep_work=1
for cmd in check summary train predict bench compile; do
    eval "mine=\$opts_$cmd"
    for opt in $all; do
        case $opt in
        -o) val=p.npy ;; --model) val=tiny ;; --batch|--epochs|--steps|--seed|--iters) val=2 ;; --target) val=c ;;
        --max-ram|--max-flash) val=1M ;; --weights) val=tiny.safetensors ;; --emit) val=ir ;; --passes) val=fold ;;
        --data|--val) val=x=x.npy ;; --save) val=s.safetensors ;; --log) val=l.csv ;; *) val= ;;
        esac
        run $cmd missing.nn $opt $val --zz-last # accepted: the parser reaches --zz-last
        if printf '%s\n' $mine | grep -qx -- "$opt"; then
            want "$cmd --help lists $opt, and $cmd takes it" rc=2 "err~unknown option '--zz-last'"
        else
            want "$cmd --help omits $opt, and $cmd refuses it" rc=2 "err~does not take $opt"
        fi
    done
done
keep_work=

echo "cli: $pass passed, $fail failed, $xfail known bugs"
[ $fail -eq 0 ]
