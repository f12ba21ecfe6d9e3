#!/bin/sh
# run.sh: the generated C of test models under AddressSanitizer and UndefinedBehaviorSanitizer
# (docs/testing-differential.md). Every model of every file given (a file with several models: each of them) is compiled
# by nnc at each level of --levels, as a training build and as an --inference build, built with
# `CC -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all`, and run by sanitize.c: init, train
# steps, eval and predict at the maximum batch and at n = 1, out-of-range n, in buffers of exactly their
# size. A report of either sanitizer fails the model.
#
#   run.sh [--nnc PATH] [--cc CC] [--jobs J] [--levels "-O2 -O0"] MODEL.nn...
#
# Files that `nnc check` rejects are skipped (and counted). Exit status: 0 every build ran clean, 1 some
# build failed (nnc, the C compiler, a sanitizer or the driver), 2 usage.
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${NNC:-nnc} cc=${CC:-cc} levels="-O2"
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
while [ $# -gt 0 ]; do
    case $1 in
        --nnc) nnc=${2:?}; shift 2 ;;
        --cc) cc=${2:?}; shift 2 ;;
        --jobs) jobs=${2:?}; shift 2 ;;
        --levels) levels=${2:?}; shift 2 ;;
        -*) echo "usage: run.sh [--nnc PATH] [--cc CC] [--jobs J] [--levels LIST] MODEL.nn..." >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "run.sh: no models given" >&2; exit 2; }
command -v "$nnc" >/dev/null 2>&1 || { echo "run.sh: no nnc at '$nnc'" >&2; exit 2; }
nnc=$(command -v "$nnc")
case $nnc in /*) ;; *) nnc=$PWD/$nnc ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_sanitize.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
start=$(date +%s)
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
"$cc" -std=c99 -O1 -g $san -o "$tmp/sanitize" "$here/sanitize.c" -ldl -lm || exit 2

# one job per (file, model, level, inference?): a directory jK with nnc's output, the spec and the library
i=0 skipped=0
: >"$tmp/jobs"
for f in "$@"; do
    if ! "$nnc" check "$f" >/dev/null 2>&1; then
        models=$(sed -n 's/^[ \t]*model[ \t]\{1,\}\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$f")
        [ "$(echo "$models" | grep -c .)" -gt 1 ] || { skipped=$((skipped + 1)); continue; }
    else
        models="-"
    fi
    for model in $models; do
        [ "$model" = - ] && sel="" || sel="--model $model"
        "$nnc" check "$f" $sel >/dev/null 2>&1 || { skipped=$((skipped + 1)); continue; }
        for lvl in $levels; do
            for inf in "" --inference; do
                i=$((i + 1))
                echo "j$i|$f|$sel $lvl $inf" >>"$tmp/jobs"
            done
        done
    done
done

# build each job: nnc, the spec, the sanitized library (J at a time)
cat >"$tmp/build.sh" <<EOF
#!/bin/sh
# build.sh JOB FILE FLAGS: one sanitized model library in $tmp/JOB
d="$tmp/\$1"; mkdir -p "\$d"
inf=""; case "\$3" in *--inference*) inf=--inference ;; esac
if ! "$nnc" "\$2" \$3 --shim -o "\$d/model.c" >"\$d/log" 2>&1 ||
   ! "$nnc" "\$2" \$3 --emit ir >"\$d/ir" 2>>"\$d/log"; then
    echo "FAIL \$1 (\$2 \$3): nnc failed:"; sed 's/^/    /' "\$d/log"; exit 1
fi
python3 "$here/spec.py" "\$d/model.h" "\$d/ir" \$inf >"\$d/spec" 2>>"\$d/log" || { echo "FAIL \$1 (\$2 \$3): no interface:"; sed 's/^/    /' "\$d/log"; exit 1; }
for fn in model_size init tensors predict train_step eval; do echo "#define nnc_jit_\$fn \$1_jit_\$fn"; done >"\$d/w.c"
echo '#include "model.c"' >>"\$d/w.c"
if ! "$cc" -std=c99 -O1 -g $san -fPIC -shared -DNNC_NO_BLAS -o "\$d/lib.so" "\$d/w.c" -lm >"\$d/cc" 2>&1; then
    echo "FAIL \$1 (\$2 \$3): the C compiler failed:"; head -n 20 "\$d/cc" | sed 's/^/    /'; exit 1
fi
echo "\$1 \$d/spec \$d/lib.so" >"\$d/line"
EOF
while IFS='|' read -r job file flags; do printf '%s\n%s\n%s\n' "$job" "$file" "$flags"; done <"$tmp/jobs" |
    nice xargs -d '\n' -n 3 -P "$jobs" sh "$tmp/build.sh" >"$tmp/build.out" 2>&1
status=0
if grep -q '^FAIL' "$tmp/build.out"; then cat "$tmp/build.out"; status=1; fi
cat "$tmp"/j*/line >"$tmp/list" 2>/dev/null
# the runs: ASan and UBSan reports end the child with status 23
ASAN_OPTIONS=detect_leaks=0:exitcode=23:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:exitcode=23 \
    "$tmp/sanitize" "$tmp/list" >"$tmp/run.out" 2>&1 || status=1
grep -v '^ok ' "$tmp/run.out" | while read -r line; do
    case $line in
        FAIL\ j*) job=${line#FAIL }; job=${job%%[ :]*}; echo "$line   <- $(grep "^$job|" "$tmp/jobs" | cut -d'|' -f2-)" ;;
        *) echo "$line" ;;
    esac
done
echo "sanitize: $(wc -l <"$tmp/jobs") builds of $# files ($skipped files or models skipped: not valid), $(($(date +%s) - start)) s"
exit $status
