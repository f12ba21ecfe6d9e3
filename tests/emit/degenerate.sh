#!/bin/sh
# degenerate.sh: models whose generated C has little to do (an output that is the input, a constant
# output, an input or target no output reads, no parameters, inference only) still build under gcc and
# clang with -std=c99 -Wall -Wextra -Werror -pedantic: no unused parameter, variable or function.
#
#   degenerate.sh NNC
set -u
nnc=${1:?usage: degenerate.sh NNC}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_degen.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$tmp" || exit 2
status=0
flags="-std=c99 -Wall -Wextra -Werror -pedantic"
compilers=""
for cc in gcc clang; do command -v $cc >/dev/null 2>&1 && compilers="$compilers $cc"; done
[ -n "$compilers" ] || { echo "no gcc or clang"; exit 1; }

model() { printf 'model m {\n%s\n}\n' "$2" > "$1.nn"; }
model identity '    input x: f32[3]
    output y = x'
model two_copies '    input x: f32[3]
    output y = x
    output z = x'
model constant '    input x: f32[3]
    output y = x * 0 + 1'
model unused_input '    input x: f32[3]
    input z: f32[2]
    output y = x'
model unused_target '    input x: f32[3]
    target t: f32[3]
    target u: f32[3]
    param w: f32[3] = ones
    output y = x * w
    loss mse(y, t)
    optimizer sgd(lr=0.1)'
model no_params '    input x: f32[3]
    target t: f32[3]
    output y = relu(x)
    loss mse(y, t)'
model no_params_trained '    input x: f32[3]
    target t: f32[3]
    output y = x
    loss mse(y, t)
    metric m2 = mae(y, t)
    optimizer sgd(lr=0.1)'
model rebound '    input x: f32[3]
    x = relu(x)
    output x'

for name in identity two_copies constant unused_input unused_target no_params no_params_trained rebound; do
    for opts in -O0 -O2 "-O2 --inference" "-O0 --inference"; do
        out=$name$(echo "$opts" | tr -d ' -')
        if ! "$nnc" "$name.nn" $opts -o "$out.c" 2> nnc.log; then
            echo "FAIL $name $opts: nnc:"; cat nnc.log; status=1; continue
        fi
        for cc in $compilers; do
            for variant in "" "-DNNC_REAL=double"; do
                $cc $flags $variant -c "$out.c" -o "$out.o" 2> cc.log && continue
                echo "FAIL $name $opts: $cc $variant:"; head -10 cc.log; status=1
            done
        done
    done
done
[ $status -eq 0 ] && echo "ok: every degenerate model builds with -Wall -Wextra -Werror -pedantic"
exit $status
