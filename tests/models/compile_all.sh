#!/bin/sh
# compile_all.sh: every models/*.nn file through nnc, then its C through gcc and clang with every warning
# as an error (docs/c-api.md), in the default float build, in double, without BLAS, and inference-only; and
# the generation twice, byte for byte the same.
#
#   compile_all.sh NNC MODELS_DIR
set -u
nnc=${1:?usage: compile_all.sh NNC MODELS_DIR}
models=${2:?usage: compile_all.sh NNC MODELS_DIR}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_models.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0
flags="-std=c99 -Wall -Wextra -Werror -pedantic -O1 -c"
compilers=""
for cc in gcc clang; do command -v $cc >/dev/null 2>&1 && compilers="$compilers $cc"; done
[ -n "$compilers" ] || { echo "no gcc or clang"; exit 1; }

for model in "$models"/*.nn; do
    name=$(basename "$model" .nn)
    for level in -O0 -O2; do
        out=$tmp/$name$level
        if ! "$nnc" "$model" $level -o "$out.c" 2> "$out.log"; then
            echo "FAIL $name $level: nnc:"; sed 's/^/    /' "$out.log"; status=1; continue
        fi
        "$nnc" "$model" $level --inference -o "$out-inf.c" 2>> "$out.log" || { echo "FAIL $name --inference"; status=1; }
        # byte-identical regeneration: the same command again, in another directory
        mkdir -p "$tmp/again"
        (cd "$tmp/again" && "$nnc" "$model" $level -o "$(basename "$out").c") 2>> "$out.log"
        (cd "$tmp" && "$nnc" "$model" $level -o "$(basename "$out").c") 2>> "$out.log"
        if ! cmp -s "$out.c" "$tmp/again/$(basename "$out").c" || ! cmp -s "$out.h" "$tmp/again/$(basename "$out").h"; then
            echo "FAIL $name $level: two runs of the same command differ"; status=1
        fi
        for cc in $compilers; do
            for variant in "" "-DNNC_REAL=double" "-DNNC_NO_BLAS"; do
                if ! $cc $flags $variant -I"$tmp" "$out.c" -o "$out.o" 2> "$out.cc.log"; then
                    echo "FAIL $name $level: $cc $variant:"; head -20 "$out.cc.log" | sed 's/^/    /'; status=1
                fi
            done
            if ! $cc $flags -I"$tmp" "$out-inf.c" -o "$out-inf.o" 2> "$out.cc.log"; then
                echo "FAIL $name $level --inference: $cc:"; head -20 "$out.cc.log" | sed 's/^/    /'; status=1
            fi
        done
    done
    [ $status -eq 0 ] && echo "ok   $name"
done
exit $status
