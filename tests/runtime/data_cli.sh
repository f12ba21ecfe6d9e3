#!/bin/sh
# data_cli.sh: the data readers as `nnc train` and `nnc predict` use them (compiler/driver/run.c over runtime/).
#
#   tests/runtime/data_cli.sh path/to/nnc
#
#   header first   a 35-byte .idx.gz declaring [2147483647, 1] bound to an input of per-sample shape [3]
#                  is refused by its shape (exit 1, both shapes named) at once, not decompressed first
#   gzip errors    a bad CRC and a bad deflate block are "corrupt gzip file", not "not an IDX file"
#   byte-order mark  a 20-row CSV with a UTF-8 BOM and no header gives 20 predictions, not 19
# Prints each failure; exits 0 when all pass.
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:?usage: data_cli.sh path/to/nnc}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
[ -x "$nnc" ] || { echo "data_cli.sh: no nnc at $nnc" >&2; exit 2; }
fx=$here/fixtures
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_data_cli.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0
err=$tmp/stderr

run() {
    (cd "$tmp" && timeout 60 "$nnc" "$@" >/dev/null 2>"$err")
    rc=$?
    cmdline="nnc $*"
}
# want DESCRIPTION RC ERE...: the last run exited RC and its stderr matches every ERE
want() {
    desc=$1 code=$2
    shift 2
    failed=
    [ "$rc" -eq "$code" ] || failed="$failed [exit $rc, want $code]"
    for re in "$@"; do grep -Eq -- "$re" "$err" || failed="$failed [stderr ~ $re]"; done
    if [ -z "$failed" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL  $desc: $cmdline, unmet:$failed"
        sed 's/^/    stderr: /' "$err" | head -n 6
    fi
}

cat >"$tmp/m.nn" <<'EOF'
model m {
    input  x: f32[3]
    target y: f32[1]
    output p = dense(x, 1)
    loss mse(p, y)
    optimizer sgd(lr=0.01)
    train(epochs=1, batch=4)
}
EOF
i=0
: >"$tmp/x.csv"
: >"$tmp/y.csv"
printf '\357\273\277' >"$tmp/bom.csv"
while [ $i -lt 20 ]; do
    echo "$i,1,2" >>"$tmp/x.csv"
    echo "$i,1,2" >>"$tmp/bom.csv"
    echo "$i" >>"$tmp/y.csv"
    i=$((i + 1))
done

run train m.nn --data x="$fx/huge_header.idx.gz" --data y=y.csv --save w.safetensors -O0 --quiet
want "header first: a huge declared shape is refused by its shape" 1 'huge_header\.idx\.gz' \
    "takes samples of shape \[3\]" '\[2147483647, ?1\]'
run train m.nn --data x="$fx/bad_crc.idx.gz" --data y=y.csv --save w.safetensors -O0 --quiet
want "gzip errors: a bad CRC" 1 'bad_crc\.idx\.gz: corrupt gzip file \(incorrect data check\)'
run train m.nn --data x="$fx/bad_deflate.idx.gz" --data y=y.csv --save w.safetensors -O0 --quiet
want "gzip errors: a bad deflate block" 1 'bad_deflate\.idx\.gz: corrupt gzip file'

run train m.nn --data x=x.csv --data y=y.csv --save w.safetensors -O0 --quiet
want "byte-order mark: training on the plain CSV" 0
run predict m.nn --weights w.safetensors --data x=bom.csv -o p.npy -O0
want "byte-order mark: predict exits 0" 0
if grep -q "'shape': (20, 1)" "$tmp/p.npy" 2>/dev/null; then
    pass=$((pass + 1))
else
    fail=$((fail + 1))
    echo "FAIL  byte-order mark: 20 rows give 20 predictions; p.npy header: $(head -c 80 "$tmp/p.npy" | tr -cd '[:print:]')"
fi

echo "data cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
