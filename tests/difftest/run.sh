#!/bin/sh
# run.sh: differential testing of the compiler (docs/testing-differential.md). Random, well-typed models (gen.py), each
# compiled at -O0 and built in double precision (the reference) and at -O2 and built in float; their
# predict, eval and train steps must agree (rtol 1e-3, atol 1e-4; difftest.c says exactly what is compared).
#
#   run.sh [--seed S] [--count N] [options]         generate models S .. S+N-1 and compare them
#   run.sh [options] MODEL.nn...                    compare these models (tests/difftest/found/*.nn)
#
# options: --nnc PATH (default $NNC, else nnc on PATH), --cc CC (default $CC, else cc), --jobs J (default
# the number of CPUs), --failures DIR (where failing models are copied, with failures.txt listing their
# seeds; default $NNC_DIFFTEST_FAILURES, else ./difftest-failures), --known FILE (models expected to fail:
# NAME  # why; one that passes is an error, so that its line gets removed), --keep DIR (keep the work files).
# --seed defaults to $NNC_DIFFTEST_SEED, else today's date (YYYYMMDD * 1000): every day tests new models,
# and the seed is printed so that any run can be repeated.
#
# The generated C is built with `CC -O1` (the reference with `CC -O0 -DNNC_REAL=double`), every model of a build in
# one shared object, J files at a time; a model that fails is built a third time (-O0 in float) to tell
# float rounding (UNSTABLE: -O2 agrees with -O0 in float) from a bug.
# Exit status: 0 every model agrees (or is unstable, or is a known failure that still fails), 1 some model
# fails (its seed is printed and written to the failures directory), 2 usage.
set -u
here=$(cd "$(dirname "$0")" && pwd)
seed=${NNC_DIFFTEST_SEED:-} count=30 nnc=${NNC:-nnc} cc=${CC:-cc} known="" keep=""
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
failures=${NNC_DIFFTEST_FAILURES:-$PWD/difftest-failures}
usage() { echo "usage: run.sh [--seed S] [--count N] [--nnc PATH] [--cc CC] [--jobs J] [--failures DIR] [--known FILE] [--keep DIR] [MODEL.nn...]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --seed) seed=${2:?}; shift 2 ;;
        --count) count=${2:?}; shift 2 ;;
        --nnc) nnc=${2:?}; shift 2 ;;
        --cc) cc=${2:?}; shift 2 ;;
        --jobs) jobs=${2:?}; shift 2 ;;
        --failures) failures=${2:?}; shift 2 ;;
        --known) known=${2:?}; shift 2 ;;
        --keep) keep=${2:?}; shift 2 ;;
        --help|-h) sed -n '2,24p' "$0"; exit 0 ;;
        -*) usage ;;
        *) break ;;
    esac
done
case $count in ''|*[!0-9]*) usage ;; esac
[ -n "$seed" ] || seed=$(($(date -u +%Y%m%d) * 1000))
case $seed in ''|*[!0-9]*) usage ;; esac
command -v "$nnc" >/dev/null 2>&1 || { echo "run.sh: no nnc at '$nnc' (give --nnc PATH)" >&2; exit 2; }
nnc=$(command -v "$nnc")
case $nnc in /*) ;; *) nnc=$PWD/$nnc ;; esac

if [ -n "$keep" ]; then tmp=$keep; rm -rf "$tmp"; mkdir -p "$tmp" || exit 2
else
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_difftest.XXXXXX") || exit 2
    trap 'rm -rf "$tmp"' EXIT INT TERM
fi
start=$(date +%s)
mkdir -p "$tmp/m" "$tmp/ref" "$tmp/test" "$tmp/alt"
export OPENBLAS_NUM_THREADS=1

# the models: generated, or given (each file's model name must be unique among them)
if [ $# -gt 0 ]; then
    for f in "$@"; do cp "$f" "$tmp/m/" || exit 2; done
    echo "difftest: $# given models"
else
    python3 "$here/gen.py" --seed "$seed" --count "$count" --dir "$tmp/m" || exit 2
    echo "difftest: seed $seed, $count models (reproduce one: tests/difftest/run.sh --seed SEED --count 1)"
fi
"$cc" -std=c99 -O1 -o "$tmp/difftest" "$here/difftest.c" -ldl -lm || exit 2

# a Makefile: each model through nnc, wrapped (the shim's functions renamed NAME_jit_*), compiled to .o
mk=$tmp/Makefile
: >"$mk"
for f in "$tmp"/m/*.nn; do
    name=$(sed -n 's/^model \([A-Za-z_][A-Za-z0-9_]*\) .*/\1/p' "$f" | head -n 1)
    [ -n "$name" ] || { echo "FAIL $(basename "$f"): no model in it"; continue; }
    echo "$name $f" >>"$tmp/names"
    for cfg in ref test alt; do
        case $cfg in ref) lvl=-O0 def="-O0 -DNNC_REAL=double" ;; test) lvl=-O2 def=-O1 ;; alt) lvl=-O0 def=-O0 ;; esac
        {
            printf '%s/%s.o:\n' "$cfg" "$name"
            printf '\t@"%s" "%s" %s --shim -o %s/%s.c >%s/%s.log 2>&1 || { echo "FAIL %s: nnc %s failed:"; sed "s/^/    /" %s/%s.log; exit 1; }\n' \
                "$nnc" "$f" "$lvl" "$cfg" "$name" "$cfg" "$name" "$name" "$lvl" "$cfg" "$name"
            printf '\t@"%s" -std=c99 -fPIC -DNNC_NO_BLAS %s -c %s/%s.w.c -o %s/%s.o >%s/%s.cc 2>&1 || { echo "FAIL %s: cc of the %s C failed:"; head -n 20 %s/%s.cc | sed "s/^/    /"; exit 1; }\n' \
                "$cc" "$def" "$cfg" "$name" "$cfg" "$name" "$cfg" "$name" "$name" "$lvl" "$cfg" "$name"
        } >>"$mk"
        for fn in model_size init tensors predict train_step eval; do echo "#define nnc_jit_$fn ${name}_jit_$fn"; done >"$tmp/$cfg/$name.w.c"
        echo "#include \"$name.c\"" >>"$tmp/$cfg/$name.w.c"
    done
done
[ -f "$tmp/names" ] || { echo "difftest: no models"; exit 2; }

# build: CFG... -> lib/CFG.so of every model whose object built (make -k goes on past failures)
build() {
    targets=""
    for cfg in "$@"; do
        targets="$targets $(awk -v c="$cfg" '{ printf "%s/%s.o ", c, $1 }' "$tmp/sel")"
    done
    # shellcheck disable=SC2086
    (cd "$tmp" && nice make -s -k -j"$jobs" -f Makefile $targets) 2>&1 | grep -v '^make' >>"$tmp/build.out"
    for cfg in "$@"; do
        objs=$(cd "$tmp" && ls "$cfg"/*.o 2>/dev/null)
        [ -n "$objs" ] || continue
        # shellcheck disable=SC2086
        (cd "$tmp" && "$cc" -shared -o "$cfg.so" $objs -lm) || { echo "difftest: linking $cfg failed"; exit 2; }
    done
}

cp "$tmp/names" "$tmp/sel"
build ref test
grep '^FAIL\|^    ' "$tmp/build.out"
# the driver's list: models whose two builds exist
awk -v t="$tmp" '{ if (system("test -f " t "/ref/" $1 ".o -a -f " t "/test/" $1 ".o") == 0)
    print $1, $2, t "/ref.so", t "/test.so" }' "$tmp/names" >"$tmp/list"
"$tmp/difftest" "$tmp/list" >"$tmp/run1.out" 2>&1
grep -v '^ok ' "$tmp/run1.out" | grep -v '^difftest:' >"$tmp/first" || true
# second look at the failures: also -O0 in float
sed -n 's/^\(FAIL\|CRASH\|HANG\) \([A-Za-z0-9_]*\).*/\2/p' "$tmp/first" | sort -u >"$tmp/again"
if [ -s "$tmp/again" ]; then
    # a model whose #% lines do not match its compiled interface is the generator's fault, not nnc's
    while read -r name; do
        f=$(awk -v n="$name" '$1 == n { print $2 }' "$tmp/names")
        "$nnc" "$f" -O2 --emit ir >"$tmp/test/$name.ir" 2>/dev/null
        python3 "$here/../sanitize/spec.py" "$tmp/test/$name.h" "$tmp/test/$name.ir" 2>/dev/null |
            awk '$1 == "input" || $1 == "output" { print $1, $2, $3, $4 }' >"$tmp/test/$name.iface"
        sed -n 's/^#% \(input\|output\) /\1 /p' "$f" | awk '{ print $1, $2, $3, $4 }' >"$tmp/test/$name.decl"
        cmp -s "$tmp/test/$name.iface" "$tmp/test/$name.decl" ||
            echo "FAIL $name: its #% lines do not match the compiled interface (a bug of gen.py): $(tr '\n' ';' <"$tmp/test/$name.iface")"
    done <"$tmp/again"
    grep -F -w -f "$tmp/again" "$tmp/names" >"$tmp/sel"
    : >"$tmp/build.out"
    build alt
    awk -v t="$tmp" '{ print $1, $2, t "/ref.so", t "/test.so", t "/alt.so" }' "$tmp/sel" >"$tmp/list2"
    "$tmp/difftest" "$tmp/list2" >"$tmp/run2.out" 2>&1
    grep -v '^ok \|^difftest:' "$tmp/run2.out"
fi

# the verdict per model: nnc/cc failures, then the driver's (second look wins)
: >"$tmp/failed"
grep '^FAIL' "$tmp/build.out" 2>/dev/null | sed 's/^FAIL \([A-Za-z0-9_]*\).*/\1/' >>"$tmp/failed"
grep '^FAIL\|^CRASH\|^HANG' "$tmp/run1.out" | sed 's/^[A-Z]* \([A-Za-z0-9_]*\).*/\1/' >"$tmp/failed1"
if [ -s "$tmp/again" ]; then
    grep '^FAIL\|^CRASH\|^HANG' "$tmp/run2.out" | sed 's/^[A-Z]* \([A-Za-z0-9_]*\).*/\1/' >>"$tmp/failed"
else
    cat "$tmp/failed1" >>"$tmp/failed"
fi
unstable=$(cat "$tmp/run2.out" 2>/dev/null | grep -c '^UNSTABLE')
total=$(wc -l <"$tmp/names")
sort -u "$tmp/failed" -o "$tmp/failed"

status=0
nfail=0
while read -r name; do
    [ -n "$name" ] || continue
    f=$(awk -v n="$name" '$1 == n { print $2 }' "$tmp/names")
    why=""
    [ -n "$known" ] && why=$(grep "^$name\b" "$known" 2>/dev/null | sed 's/^[^#]*# *//')
    if [ -n "$why" ]; then
        echo "XFAIL $name (known: $why)"
        continue
    fi
    nfail=$((nfail + 1))
    status=1
    mkdir -p "$failures"
    cp "$f" "$failures/"
    s=$(sed -n 's/^# difftest model, seed \([0-9]*\).*/\1/p' "$f")
    echo "${s:-$name} $(basename "$f")" >>"$failures/failures.txt"
    if [ -n "$s" ]; then echo "FAILED model seed $s: reproduce with tests/difftest/run.sh --seed $s --count 1 (copied to $failures/$(basename "$f"))"
    else echo "FAILED model $name ($(basename "$f"))"; fi
done <"$tmp/failed"
if [ -n "$known" ]; then
    while read -r name _; do
        case $name in ''|\#*) continue ;; esac
        grep -q "^$name " "$tmp/names" || continue
        grep -qx "$name" "$tmp/failed" || { echo "XPASS $name: listed in $(basename "$known") but agrees now; remove the line"; status=1; }
    done <"$known"
fi
echo "difftest: $total models, $nfail failed, $unstable unstable (float rounding), $(($(date +%s) - start)) s"
exit $status
