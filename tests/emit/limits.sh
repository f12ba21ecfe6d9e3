#!/bin/sh
# limits.sh: the generated kernels index a value with int. A value with more elements than that can index
# at the compiled batch is an error at its line (exit 1); a model whose struct passes 1 GiB compiles with a
# warning (exit 0); an ordinary model gets no warning.
#
#   limits.sh NNC
set -u
nnc=${1:?usage: limits.sh NNC}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_limits.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$tmp" || exit 2
status=0
fail() { echo "FAIL $*"; [ -f err.log ] && sed 's/^/    /' err.log; status=1; }

cat > wide.nn <<'X'
model wide {
    input x: f32[4]
    target t: f32[4]
    h = dense(x, 1000000)
    output y = dense(h, 4)
    loss mse(y, t)
    optimizer sgd(lr=0.1)
}
X
# 4295 x 1e6 elements: past 2^31 (the int loops overflowed, and only part of h was written)
for batch in 4295 100000; do
    for opts in "" "--inference" "-O0"; do
        "$nnc" wide.nn --batch $batch $opts -o w.c 2> err.log
        rc=$?
        [ $rc -eq 1 ] || fail "--batch $batch $opts: exit $rc, not 1"
        grep -q "^wide.nn:4:9: error: .* would have $((batch * 1000000)) elements (f32\[B,1000000\] at batch $batch), more than the 2147483583 the generated C can index (--batch 2147 or less fits)" err.log ||
            fail "--batch $batch $opts: no error at h's line"
        [ -f w.c ] && fail "--batch $batch $opts: a .c written anyway"
        rm -f w.c w.h
    done
done
# the largest batch that fits: 2147 x 1e6 elements; the struct is 8.6 GB, so a warning, and exit 0
"$nnc" wide.nn --batch 2147 --inference -o w.c 2> err.log || fail "--batch 2147: exit $?"
grep -q "^wide.nn:1:7: warning: model 'wide' needs [0-9]* bytes ([0-9.]* GiB) of memory at batch 2147, in one struct" err.log ||
    fail "--batch 2147: no warning about the struct's size"
grep -q 'nnc_real arena\[21470[0-9]\{5\}\]' w.h || fail "--batch 2147: the arena is not in the struct"
# an ordinary batch: nothing on stderr
"$nnc" wide.nn --batch 32 -o w.c 2> err.log || fail "--batch 32: exit $?"
[ -s err.log ] && fail "--batch 32: something on stderr"
# one sample just past the limit, at batch 1; and just within it
printf 'model big {\n    input x: f32[2147483584]\n    output y = x * 2\n}\n' > big.nn
"$nnc" big.nn --batch 1 --inference -o b.c 2> err.log
[ $? -eq 1 ] && grep -q "^big.nn:.*: error: .*2147483584 elements" err.log || fail "a 2147483584-element input"
sed 's/2147483584/2147483583/' big.nn > fits.nn
"$nnc" fits.nn --batch 1 --inference -o f.c 2> err.log || fail "a 2147483583-element input: exit $?"
[ $status -eq 0 ] && echo "ok: sizes past int are errors at their line; a struct over 1 GiB is a warning"
exit $status
