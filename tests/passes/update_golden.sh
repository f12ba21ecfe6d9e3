#!/bin/sh
# update_golden.sh: regenerate cases/NAME.before.ir and cases/NAME.after.ir from the current nnc.
#
#   tests/passes/update_golden.sh [path/to/nnc] [NAME...]     (default nnc: build/nnc; default: every case)
#
# Then READ each changed golden (git diff): does the after IR show the pass doing what the case's
# comment says, and nothing it must not? A wrong golden is a bug to report, not a file to commit.
# A case whose COUNT lines (see lib.sh) fail is still written, and named at the end.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
nnc=${1:-$here/../../build/nnc}
[ $# -gt 0 ] && shift
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
[ -x "$nnc" ] || { echo "update_golden.sh: no nnc at $nnc" >&2; exit 2; }

if [ $# -gt 0 ]; then
    files=$(for n in "$@"; do echo "$here/cases/${n%.nn}.nn"; done)
else
    files=$(ls "$here"/cases/*.nn)
fi
status=0
for f in $files; do
    name=$(basename "$f" .nn)
    if ! passes_generate "$nnc" "$f" "$here/cases" >&2; then
        status=1
        continue
    fi
    echo "wrote $name.before.ir $name.after.ir"
    if ! passes_expect "$f" "$here/cases" >"$here/cases/$name.why"; then
        echo "  but the pass did not do what $name.nn expects:"
        sed 's/^/    /' "$here/cases/$name.why"
        status=1
    fi
    rm -f "$here/cases/$name.why"
done
exit $status
