#!/bin/sh
# check_scale.sh: `nnc check` on a generated model of N statements (tests/scale/gen.sh) must finish within
# a generous time bound, with the expected exit code and, for a failure, the expected message (issue 9:
# 8,000 rebinds took 42 s and 40 defs that each call the next twice never finished).
#
#   tests/scale/check_scale.sh path/to/nnc KIND N SECONDS [RC [MESSAGE-ERE]]
#
# With SCALE_COMPILE=1 in the environment it compiles the model to C (`nnc m.nn -o m.c`) instead: the
# passes must be linear too (a 100k-op relu chain took 54 s in the fusion pass).
# Prints the time taken. The bound is a timeout, far above the time on an idle machine (about a second
# for 100k statements), so that a quadratic or exponential regression fails instead of hanging.
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:?usage: check_scale.sh path/to/nnc KIND N SECONDS [RC [MESSAGE-ERE]]}
kind=${2:?} n=${3:?} limit=${4:?} want_rc=${5:-0} want_msg=${6:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_scale.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
sh "$here/gen.sh" "$kind" "$n" >"$tmp/m.nn" || exit 2
start=$(date +%s.%N)
if [ "${SCALE_COMPILE:-0}" = 1 ]; then
    timeout "$limit" "$nnc" "$tmp/m.nn" -o "$tmp/m.c" >"$tmp/out" 2>"$tmp/err"
else
    timeout "$limit" "$nnc" check "$tmp/m.nn" >"$tmp/out" 2>"$tmp/err"
fi
rc=$?
end=$(date +%s.%N)
secs=$(echo "$start $end" | awk '{ printf "%.2f", $2 - $1 }')
echo "check_scale: $kind $n: exit $rc in $secs s"
fail=0
if [ $rc -eq 124 ]; then
    echo "FAIL: nnc did not finish in $limit s" >&2
    fail=1
elif [ $rc -ne "$want_rc" ]; then
    echo "FAIL: exit $rc, expected $want_rc" >&2
    fail=1
fi
if [ -n "$want_msg" ] && ! grep -Eq "$want_msg" "$tmp/err"; then
    echo "FAIL: stderr lacks /$want_msg/" >&2
    fail=1
fi
[ $fail -eq 0 ] || head -c 2000 "$tmp/err" >&2
exit $fail
