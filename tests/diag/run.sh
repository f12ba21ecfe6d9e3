#!/bin/sh
# run.sh: the diagnostics tests (STYLE.md "Tests": golden stderr, chibicc's driver.sh).
#
#   tests/diag/run.sh path/to/nnc [FILE.nn...]      (default: every errors/, valid/ and warnings/ *.nn)
#
# errors/NAME.nn: `nnc check` must exit 1, print nothing on stdout, and print exactly errors/NAME.stderr
#   on stderr (regenerate with update_golden.sh and review the diff).
# warnings/NAME.nn: `nnc summary` (check hides warnings) must exit 0 and print exactly warnings/NAME.stderr
#   on stderr.
# any other FILE.nn (valid/, models/): `nnc check` must exit 0 and print nothing at all.
# A file may give extra arguments on a line of its own: "# args: --model NAME".
# Names in known_bugs.txt are expected to fail until the bug is fixed (XFAIL); when one passes the test
# fails (XPASS) so that the line gets removed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:?usage: run.sh path/to/nnc [FILE.nn...]}
shift
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
[ -x "$nnc" ] || { echo "run.sh: no nnc at $nnc" >&2; exit 2; }
if [ $# -eq 0 ]; then set -- "$here"/errors/*.nn "$here"/valid/*.nn "$here"/warnings/*.nn; fi

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 xfail=0

run_one() { # FILE: sets ok=1 when it behaves as expected, else explains why not in $tmp/why
    file=$1
    dir=$(cd "$(dirname "$file")" && pwd)
    base=$(basename "$file")
    name=${base%.nn}
    args=$(sed -n 's/^# args: //p' "$file" | head -n 1)
    cmd=check
    [ "$(basename "$dir")" = warnings ] && cmd=summary
    # shellcheck disable=SC2086
    (cd "$dir" && timeout 20 "$nnc" $cmd $args "$base" >"$tmp/out" 2>"$tmp/err")
    rc=$?
    ok=1
    : >"$tmp/why"
    if [ $cmd = summary ]; then
        [ $rc -eq 0 ] || { ok=0; echo "exit code $rc, expected 0" >>"$tmp/why"; }
        if ! cmp -s "$dir/$name.stderr" "$tmp/err"; then
            ok=0; echo "stderr differs from $name.stderr (- expected, + actual):" >>"$tmp/why"
            diff -u "$dir/$name.stderr" "$tmp/err" | tail -n +3 >>"$tmp/why"
        fi
    elif [ "$(basename "$dir")" = errors ]; then
        [ $rc -eq 1 ] || { ok=0; echo "exit code $rc, expected 1" >>"$tmp/why"; }
        [ -s "$tmp/out" ] && { ok=0; echo "unexpected stdout:" >>"$tmp/why"; cat "$tmp/out" >>"$tmp/why"; }
        if [ ! -f "$dir/$name.stderr" ]; then
            ok=0; echo "no golden $name.stderr (run update_golden.sh)" >>"$tmp/why"
        elif ! cmp -s "$dir/$name.stderr" "$tmp/err"; then
            ok=0; echo "stderr differs from $name.stderr (- expected, + actual):" >>"$tmp/why"
            diff -u "$dir/$name.stderr" "$tmp/err" | tail -n +3 >>"$tmp/why"
        fi
    else
        [ $rc -eq 0 ] || { ok=0; echo "exit code $rc, expected 0" >>"$tmp/why"; }
        if [ -s "$tmp/out" ] || [ -s "$tmp/err" ]; then
            ok=0; echo "expected no output, got:" >>"$tmp/why"; cat "$tmp/out" "$tmp/err" >>"$tmp/why"
        fi
    fi
}

for file in "$@"; do
    run_one "$file"
    known=0
    grep -Eq "^$name([[:space:]]|\$)" "$here/known_bugs.txt" 2>/dev/null && known=1
    if [ $ok -eq 1 ] && [ $known -eq 0 ]; then
        pass=$((pass + 1))
    elif [ $ok -eq 0 ] && [ $known -eq 1 ]; then
        xfail=$((xfail + 1))
        echo "XFAIL $name ($(grep -E "^$name([[:space:]]|\$)" "$here/known_bugs.txt" | sed 's/^[^#]*# *//'))"
    elif [ $ok -eq 1 ]; then
        fail=$((fail + 1))
        echo "XPASS $name: fixed; remove it from tests/diag/known_bugs.txt"
    else
        fail=$((fail + 1))
        echo "FAIL  $name: $file"
        sed 's/^/    /' "$tmp/why"
    fi
done
echo "diag: $pass passed, $fail failed, $xfail known bugs"
[ $fail -eq 0 ]
