#!/bin/sh
# update_golden.sh: regenerate the expected stderr of every tests/diag/errors/*.nn (and warnings/*.nn) from
# the current nnc.
#
#   tests/diag/update_golden.sh [path/to/nnc] [NAME...]     (default nnc: build/nnc; default: every file)
#
# Then READ each changed .stderr (git diff) and check that the line, the column and the caret point at
# the right token and that the message is clear: a wrong golden is a bug to fix, not a file to commit.
# Files listed in known_bugs.txt are skipped: their .stderr is written by hand and shows what nnc
# should print once the bug is fixed (remove the line from known_bugs.txt, then regenerate).
#
# A file may give extra arguments on a line of its own: "# args: --model NAME".
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:-$here/../../build/nnc}
[ $# -gt 0 ] && shift
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
[ -x "$nnc" ] || { echo "update_golden.sh: no nnc at $nnc" >&2; exit 2; }

status=0
for dir in errors warnings; do
cd "$here/$dir" || exit 2
if [ $# -gt 0 ]; then files=$(for n in "$@"; do [ -f "${n%.nn}.nn" ] && echo "${n%.nn}.nn"; done); else files=$(ls -- *.nn); fi
for f in $files; do
    name=${f%.nn}
    if grep -Eq "^$name([[:space:]]|\$)" ../known_bugs.txt 2>/dev/null; then
        echo "skip  $name (known bug: golden written by hand)"
        continue
    fi
    args=$(sed -n 's/^# args: //p' "$f" | head -n 1)
    cmd=check want=1
    [ $dir = warnings ] && cmd=summary want=0 # check hides warnings
    # shellcheck disable=SC2086
    timeout 20 "$nnc" $cmd $args "$f" >/dev/null 2>"$name.stderr"
    rc=$?
    if [ $rc -ne $want ]; then
        echo "FAIL  $name: exit $rc, expected $want" >&2
        status=1
    else
        echo "wrote $name.stderr"
    fi
done
done
exit $status
