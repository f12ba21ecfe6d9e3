#!/bin/sh
# bench/scale.sh: how `nnc check` scales with the size of a model file (issue 9: name handling was
# quadratic, def expansion exponential).
#
#   bench/scale.sh [path/to/nnc] [N...]        (default nnc: build/nnc; default N: 10000 100000)
#
# For each kind of tests/scale/gen.sh (rebind: one name rebound N times; names: N distinct names;
# consts: N constants; layers: N dense layers; defcalls: N calls of a def; freeze: N layers frozen by one
# statement) and each N, generates the file and prints the wall-clock and CPU (user + system) seconds and
# the peak memory of `nnc check`, and the exit code. Then the doubling defs (expand, 20 and 40 levels), which must stop with an error instead of growing 2^N.
# Times are for this machine: run it on an idle one. Needs /usr/bin/time for the memory column.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:-$here/../build/nnc}
[ $# -gt 0 ] && shift
[ -x "$nnc" ] || { echo "scale.sh: no nnc at $nnc" >&2; exit 2; }
[ $# -gt 0 ] || set -- 10000 100000
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_scale_bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# measure KIND N: one row
measure() {
    sh "$here/../tests/scale/gen.sh" "$1" "$2" >"$tmp/m.nn"
    lines=$(wc -l <"$tmp/m.nn")
    if [ -x /usr/bin/time ]; then
        rc=0
        /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" timeout 600 "$nnc" check "$tmp/m.nn" >/dev/null 2>"$tmp/err" || rc=$?
        # the last line holds the numbers (a failing command adds a line before them)
        set -- "$1" "$2" $(tail -n 1 "$tmp/time")
        cpu=$(echo "$4 $5" | awk '{ printf "%.2f", $1 + $2 }')
        printf '%-9s %8s %9s %8s s %8s s %8s MB %5s\n' "$1" "$2" "$lines" "$3" "$cpu" "$(($6 / 1024))" "$rc"
    else
        start=$(date +%s.%N)
        rc=0
        timeout 600 "$nnc" check "$tmp/m.nn" >/dev/null 2>"$tmp/err" || rc=$?
        wall=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.2f", $2 - $1 }')
        printf '%-9s %8s %9s %8s s %10s %11s %5s\n' "$1" "$2" "$lines" "$wall" - - "$rc"
    fi
}

printf '%-9s %8s %9s %10s %10s %11s %5s\n' kind N lines wall cpu "peak RSS" exit
for n in "$@"; do
    for kind in rebind names consts layers defcalls freeze; do measure "$kind" "$n"; done
done
for n in 20 40; do measure expand "$n"; done
echo "(expand: exit 1 with \"inlining the def calls of this model evaluates more than ...\" is the expected result)"
