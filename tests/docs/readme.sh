#!/bin/sh
# readme.sh: the README's examples still work as written.
#   tour   every command of the "A short tour" block, run in order (each line by a fresh `sh -c`, with
#          nnc's directory first on PATH) in a scratch copy of models/ and examples/make_tour_data.py,
#          must exit 0; the files the comments promise must exist afterwards;
#   error  the sample error: the README's first model with `input x: f32[]` must make `nnc check` print
#          exactly the README's error block, and exit 1.
#
#   tests/docs/readme.sh NNC SOURCE_DIR        (exits 0 when both hold; needs python3 for the tour's data)
# What it does not do: check the numbers the tour prints (other suites do), or the other code blocks.
set -u
nnc=${1:?usage: readme.sh NNC SOURCE_DIR}
src=${2:?usage: readme.sh NNC SOURCE_DIR}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
readme=$src/README.md
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_readme.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0
fail() { echo "FAIL  $*"; status=1; }

# the lines of the first ``` block after the heading $1 (comment-only lines dropped)
block_after() {
    awk -v h="$1" '$0 == h { on = 1; next } on && /^```/ { if (inside) exit; inside = 1; next } inside' "$readme"
}

# ---- tour ---------------------------------------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || { echo "readme.sh: no python3 for the tour's data script"; exit 77; }
mkdir -p "$tmp/tour/examples" "$tmp/tour/bin"
cp -R "$src/models" "$tmp/tour/models"
rm -f "$tmp/tour/models/"*.safetensors
cp "$src/examples/make_tour_data.py" "$tmp/tour/examples/"
ln -s "$nnc" "$tmp/tour/bin/nnc"
block_after "## A short tour" | grep -v '^[[:space:]]*#' >"$tmp/tour.cmds"
[ -s "$tmp/tour.cmds" ] || fail "no tour block in $readme"
n=0
while IFS= read -r line; do
    n=$((n + 1))
    if ! (cd "$tmp/tour" && PATH="$tmp/tour/bin:$PATH" sh -c "$line") >"$tmp/out" 2>&1 </dev/null; then
        fail "tour line $n: $line"; sed 's/^/    /' "$tmp/out" | tail -n 12
    fi
done <"$tmp/tour.cmds"
[ "$n" -ge 8 ] || fail "the tour has $n commands, expected at least 8"
for f in x.npy y.npy vx.npy vy.npy ffn.c ffn.h models/ffn.safetensors pred.npy; do
    [ -s "$tmp/tour/$f" ] || fail "the tour did not write $f"
done

# ---- the sample error ---------------------------------------------------------------------------------
awk '/^```/ { if (on) exit; on = 1; next } on' "$readme" | sed 's/f32\[10\]/f32[]/' >"$tmp/model.nn"
grep -q 'f32\[\]' "$tmp/model.nn" || fail "the README's first block has no input x: f32[10] to change"
awk '/`nnc check` prints:$/ { on = 1; next } on && /^```/ { if (inside) exit; inside = 1; next } inside' \
    "$readme" >"$tmp/want"
[ -s "$tmp/want" ] || fail "no sample error block after '\`nnc check\` prints:'"
(cd "$tmp" && "$nnc" check model.nn) >"$tmp/got" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "nnc check of the sample model exits $rc, not 1"
if ! cmp -s "$tmp/got" "$tmp/want"; then
    fail "the README's sample error is not what nnc prints"; diff "$tmp/want" "$tmp/got" | sed 's/^/    /'
fi

[ $status -eq 0 ] && echo "ok: $n tour commands, the sample error"
exit $status
