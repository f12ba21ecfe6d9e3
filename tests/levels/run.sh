#!/bin/sh
# run.sh: every model gives the same results at -O0, -O1 and -O2, and with each optimizing pass alone
# (docs/kernels.md, numerics: the optimization levels agree; STYLE.md "Tests").
#
#   tests/levels/run.sh NNC LEVELS CC blas|noblas MODEL.nn...
#
# For each model: `nnc MODEL.nn -o K.c --shim FLAGS` for every FLAGS below, each built with
# `CC -std=c99 -O2 -ffp-contract=off -fPIC -shared` (with OpenBLAS, or -DNNC_NO_BLAS), in parallel
# (NNC_LEVELS_JOBS, default the number of CPUs); a configuration whose C is the same as an earlier one's
# (the header comment aside) is not built again. Then the driver LEVELS (levels.c) runs them all from
# seed 0 on the same data and compares each with -O0 at rtol 1e-5, atol 1e-6. The model's interface
# (inputs, targets, outputs, batch) is read from its -O0 IR and header.
# A model named in known_diffs.txt is expected to differ from the reference (XFAIL: the line says why and
# by how much); unless the reason starts with BUG (a compiler bug to fix), every other configuration must
# then agree with the second one (-O1), so that a pass still cannot change its results unseen. When it agrees with the reference after all, the test fails
# (XPASS) so that the line gets removed.
# Exit status: 0 all agree, 1 some configuration differs or fails to build, 2 usage.
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:?usage: run.sh NNC LEVELS CC blas|noblas MODEL.nn...}
levels=${2:?usage: run.sh NNC LEVELS CC blas|noblas MODEL.nn...}
cc=${3:?usage: run.sh NNC LEVELS CC blas|noblas MODEL.nn...}
blas=${4:?usage: run.sh NNC LEVELS CC blas|noblas MODEL.nn...}
shift 4
if [ ! -x "$nnc" ] || [ ! -x "$levels" ]; then echo "run.sh: no nnc at $nnc or driver at $levels" >&2; exit 2; fi
if [ "$blas" = blas ]; then libs="-lopenblas -lm"; defs=""; else libs="-lm"; defs="-DNNC_NO_BLAS"; fi
jobs=${NNC_LEVELS_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
export OPENBLAS_NUM_THREADS=1 # the same summation order on every run

# the reference first; then the levels, then each pass alone (reuse and memplan are the memory plans
# of -O1 and -O2; fuse,memplan is -O2's memory plan over fused kernels). NNC_LEVELS_CONFIGS replaces the
# list ('|' between configurations, the first being the reference).
configs=${NNC_LEVELS_CONFIGS:-"-O0|-O1|-O2|--passes fold|--passes simplify|--passes cse|--passes dce|--passes fuse|--passes reuse|--passes memplan|--passes fuse,memplan"}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_levels.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# spec MODEL.nn DIR: the driver's SPEC from the -O0 IR and header (see levels.c)
spec() {
    batch=$(sed -n 's/^#define [A-Z0-9_]*_MAX_BATCH \([0-9]*\)$/\1/p' "$2/k0/m.h")
    echo "batch $batch"
    "$nnc" "$1" --emit ir -O0 | awk '
        function type_of(line,   i, rest, a) { i = index(line, " : "); rest = substr(line, i + 3); split(rest, a, " "); return a[1] }
        function slot(t,   dt, dims, d, n, k) {   # "f32[B,28,28,1]" -> "f32 784"
            dt = substr(t, 1, 3); dims = substr(t, 5, length(t) - 5); n = split(dims, d, ",")
            c = 1; for (k = 2; k <= n; k++) c *= d[k]
            last = n >= 2 ? d[n] : 0
            return dt " " c
        }
        /^# (predict|eval|train_step)$/ { sec = $2; next }
        $3 == "input" { t = type_of($0)
            if (sec == "predict") { ins[++nin] = $4 " " slot(t); inp[$4] = 1 }
            else if (!($4 in inp) && !($4 in seen)) { seen[$4] = 1; tg[++ntg] = $4 " " slot(t) } }
        sec == "predict" && /^%/ { types[$1] = type_of($0) }
        sec == "predict" && $1 == "output" { outs[++nout] = $2 " " slot(types[$4]); if (nout == 1) classes = last }
        END {
            for (i = 1; i <= nin; i++) print "input " ins[i]
            for (i = 1; i <= ntg; i++) print "target " tg[i] (tg[i] ~ / i32 / ? " " (classes > 1 ? classes : 2) : "")
            for (i = 1; i <= nout; i++) print "output " outs[i]
        }'
}

status=0
for model in "$@"; do
    name=$(basename "$model" .nn)
    dir=$tmp/$name
    mkdir -p "$dir"
    start=$(date +%s)
    # compile every configuration; one whose C equals an earlier one's is not built or run again
    i=0 args="" builds=""
    IFS='|'
    for cfg in $configs; do # the list is split once, on '|'; each FLAGS on blanks
        unset IFS
        mkdir -p "$dir/k$i"
        # shellcheck disable=SC2086
        if ! "$nnc" "$model" -o "$dir/k$i/m.c" --shim $cfg >"$dir/k$i.log" 2>&1; then
            echo "FAIL $name $cfg: nnc failed:"; sed 's/^/    /' "$dir/k$i.log"
            status=1
        else
            grep -v '^ \*   nnc ' "$dir/k$i/m.c" | cksum >"$dir/k$i.sum"
            same=""
            j=0
            while [ $j -lt $i ]; do
                if [ -f "$dir/k$j.sum" ] && cmp -s "$dir/k$i.sum" "$dir/k$j.sum"; then same=$j; break; fi
                j=$((j + 1))
            done
            if [ -n "$same" ]; then
                rm "$dir/k$i.sum"
                echo "same C as $(echo "$configs" | cut -d'|' -f$((same + 1))): $cfg" >>"$dir/notes"
            else
                builds="$builds k$i"
                args="$args|$cfg=$dir/k$i.so"
            fi
        fi
        i=$((i + 1))
    done
    [ -f "$dir/k0/m.c" ] || continue
    # shellcheck disable=SC2086
    printf '%s\n' $builds | xargs -P "$jobs" -I{} sh -c \
        "'$cc' -std=c99 -O2 -ffp-contract=off -fPIC -shared $defs -o '$dir/{}.so' '$dir/{}/m.c' $libs >'$dir/{}.cc' 2>&1 || echo {} >>'$dir/ccfail'"
    if [ -f "$dir/ccfail" ]; then
        while read -r k; do
            echo "FAIL $name ($k): the C compiler failed:"; head -n 20 "$dir/$k.cc" | sed 's/^/    /'
        done <"$dir/ccfail"
        status=1
        continue
    fi
    spec "$model" "$dir" >"$dir/spec"
    echo "== $name ($(grep -c . "$dir/spec") interface lines; $(echo "$builds" | wc -w) distinct builds)"
    [ -f "$dir/notes" ] && sed 's/^/   /' "$dir/notes"
    known=$(grep "^$name\b" "$here/known_diffs.txt" 2>/dev/null | sed 's/^[^#]*# *//')
    # shellcheck disable=SC2086
    if (set -f; IFS='|'; set -- $args; shift; "$levels" "$dir/spec" "$@"); then
        [ -z "$known" ] || { echo "XPASS $name: listed in known_diffs.txt but every level agrees; remove the line"; status=1; }
    elif [ -n "$known" ] && [ "${known#BUG}" != "$known" ]; then
        echo "XFAIL $name against ${configs%%|*} ($known)"
    elif [ -n "$known" ]; then
        # expected: the passes must still agree among themselves, with the first configuration after the
        # reference (-O1) as the reference
        echo "XFAIL $name against ${configs%%|*} ($known); now against the next configuration:"
        # shellcheck disable=SC2086
        (set -f; IFS='|'; set -- $args; shift 2; "$levels" "$dir/spec" "$@") || status=1
    else
        status=1
    fi
    echo "   ($(($(date +%s) - start)) s)"
done
exit $status
