#!/bin/sh
# run.sh: every model gives the same results at -O0, -O1 and -O2, and with each optimizing pass alone
# (docs/kernels.md, numerics: the optimization levels agree; STYLE.md "Tests").
#
#   tests/levels/run.sh NNC LEVELS CC blas|noblas MODEL.nn...
#
# For each model: `nnc MODEL.nn -o K.c --shim FLAGS` for every FLAGS below, each built with
# `CC -std=c99 -O2 -ffp-contract=off -fPIC -shared -DNNC_NO_BLAS` (the C printer's own loops, so that a
# difference is the passes' and the kernels', not OpenBLAS's), in parallel (NNC_LEVELS_JOBS, default the
# number of CPUs); a configuration whose C is the same as an earlier one's (the header comment aside) is
# not built again. With `blas`, -O2's C is also built with OpenBLAS (label "-O2 openblas") when it calls
# cblas_sgemm at all. Then the driver LEVELS (levels.c) runs them all from seed 0 on the same data and
# compares each with -O0 (which never calls BLAS) at rtol 1e-5, atol 1e-6, widened by 4 times -O0's own
# rounding noise where a model amplifies rounding (levels.c says how that is measured and where it
# matters: mlp_bn, and one weight of fashion_cnn against OpenBLAS). Nothing is waived: every model, every
# configuration. The model's interface (inputs, targets, outputs, batch) is read from its -O0 IR and header.
# Exit status: 0 all agree, 1 some configuration differs or fails to build, 2 usage.
set -u
nnc=${1:?usage: run.sh NNC LEVELS CC blas|noblas MODEL.nn...}
levels=${2:?usage: run.sh NNC LEVELS CC blas|noblas MODEL.nn...}
cc=${3:?usage: run.sh NNC LEVELS CC blas|noblas MODEL.nn...}
blas=${4:?usage: run.sh NNC LEVELS CC blas|noblas MODEL.nn...}
shift 4
if [ ! -x "$nnc" ] || [ ! -x "$levels" ]; then echo "run.sh: no nnc at $nnc or driver at $levels" >&2; exit 2; fi
case $blas in blas | noblas) ;; *) echo "run.sh: expected blas or noblas, found $blas" >&2; exit 2 ;; esac
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
    # -O2 once more, with OpenBLAS, when its C calls it
    if [ "$blas" = blas ]; then
        i=0
        IFS='|'
        for cfg in $configs; do
            unset IFS
            if [ "$cfg" = "-O2" ] && [ -f "$dir/k$i/m.c" ] && grep -q 'cblas_sgemm(' "$dir/k$i/m.c"; then
                builds="$builds blas"
                args="$args|-O2 openblas=$dir/blas.so"
                mkdir -p "$dir/blas" && cp "$dir/k$i/m.c" "$dir/blas/m.c" && cp "$dir/k$i/m.h" "$dir/blas/m.h"
            fi
            i=$((i + 1))
        done
        unset IFS
    fi
    # shellcheck disable=SC2086
    printf '%s\n' $builds | xargs -P "$jobs" -I{} sh -c \
        "if [ {} = blas ]; then d=''; l='-lopenblas -lm'; else d='-DNNC_NO_BLAS'; l='-lm'; fi
         '$cc' -std=c99 -O2 -ffp-contract=off -fPIC -shared \$d -o '$dir/{}.so' '$dir/{}/m.c' \$l >'$dir/{}.cc' 2>&1 || echo {} >>'$dir/ccfail'"
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
    # shellcheck disable=SC2086
    (set -f; IFS='|'; set -- $args; shift; "$levels" "$dir/spec" "$@") || status=1
    echo "   ($(($(date +%s) - start)) s)"
done
exit $status
