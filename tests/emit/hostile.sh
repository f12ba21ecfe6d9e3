#!/bin/sh
# hostile.sh: model-file text that tries to change the generated C (tests/emit/hostile.nn, hostile
# identifiers, long names, hostile file names). Each generated file must build with gcc and clang under
# -std=c99 -Wall -Wextra -Werror -pedantic, `nnc train` must not run what a name wrote, and the tensor table
# must hold every name byte for byte.
#
#   hostile.sh NNC TESTS_EMIT_DIR
set -u
nnc=${1:?usage: hostile.sh NNC DIR}
dir=$(cd "${2:?usage: hostile.sh NNC DIR}" && pwd) || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_emit.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0
fail() { echo "FAIL $*"; status=1; }
flags="-std=c99 -Wall -Wextra -Werror -pedantic"
compilers=""
for cc in gcc clang; do command -v $cc >/dev/null 2>&1 && compilers="$compilers $cc"; done
[ -n "$compilers" ] || { echo "no gcc or clang"; exit 1; }

# builds FILE.c with every compiler, strictly; the generated text holds no non-ASCII byte and no ??
strict() {
    for cc in $compilers; do
        $cc $flags -c "$1" -o "$tmp/strict.o" 2> "$tmp/cc.log" || { fail "$cc $1:"; head -15 "$tmp/cc.log"; }
    done
    for f in "$1" "${1%.c}.h"; do
        [ -f "$f" ] || continue
        LC_ALL=C grep -n "$(printf '[\200-\377]')" "$f" > /dev/null && fail "$f: a non-ASCII byte in the generated text"
        grep -n '??' "$f" > /dev/null && fail "$f: a trigraph-like ?? in the generated text"
    done
}

# ---- hostile layer names: compile, build, train, and read the names back ----
cp "$dir/hostile.nn" "$tmp/hostile.nn"
cd "$tmp" || exit 2
for level in -O0 -O2; do
    "$nnc" hostile.nn $level -o "m$level.c" || fail "nnc hostile.nn $level"
    strict "m$level.c"
    "$nnc" hostile.nn $level --inference -o "i$level.c" || fail "nnc hostile.nn $level --inference"
    strict "i$level.c"
done
cc=$(echo $compilers | cut -d' ' -f1)
$cc -std=c99 -DMODEL_H='"m-O2.h"' -I. "$dir/names_driver.c" m-O2.c -lm -o names 2> cc.log || { fail "names driver:"; cat cc.log; }
./names > names.txt || fail "names driver ran"
# each layer's weight, byte for byte (hex), then the metric
for hex in \
    78202a2f207b2065787465726e20696e742073797374656d28636f6e73742063686172202a293b2073797374656d2822746f7563682050574e454422293b207d202f2a202e776569676874 \
    7122293b207b2065787465726e20696e742073797374656d28636f6e73742063686172202a293b2073797374656d2822746f7563682050574e454422293b207d2073746174696320636f6e73742063686172202a7a203d2028222e776569676874 \
    6261636b5c736c6173685c2e776569676874 \
    6e65770a6c696e650a23696e636c756465203c7374646c69622e683e0a2e776569676874 \
    7472693f3f2f2e776569676874 \
    3f3f3d3f3f283f3f293f3f273f3f3c3f3f3e3f3f213f3f2d2e776569676874 \
    2573256e25642e776569676874 \
    68c3a96c6c6f20e29c9320c3bc6ec3af63c3b664c3a92e776569676874 \
    612f2a622f2f632e776569676874 \
    6e6e635f72656c75282e776569676874 \
    74616209686572652e776569676874 \
    2e776569676874 \
    396c697665732e776569676874 \
    726e672e776569676874 \
    6465662263616c6c2a2f3f3f2f2e696e2a2f736964652e776569676874 \
    6d61655f31; do
    grep -qx "$hex" names.txt || fail "the tensor table lost the name $hex"
done
printf '1,2,3\n4,5,6\n' > x.csv
printf '1,2\n3,4\n' > t.csv
"$nnc" train hostile.nn --data x=x.csv --data t=t.csv --steps 1 --save w.safetensors --quiet || fail "nnc train hostile.nn"
[ -e PWNED ] && fail "a layer name ran code: PWNED exists"
"$nnc" predict hostile.nn --weights w.safetensors --data x=x.csv -o p.npy || fail "predict from the saved names"
[ -e PWNED ] && fail "a layer name ran code: PWNED exists"

# ---- a working exploit of the unescaped emitter: its name must not run, and must come back whole ----
cp "$dir/exploit.nn" exploit.nn
printf '1,2,3,4\n3,4,5,6\n' > t4.csv
"$nnc" train exploit.nn --data x=x.csv --data t=t4.csv --steps 1 --save e.safetensors --quiet || fail "nnc train exploit.nn"
[ -e PWNED ] && fail "exploit.nn ran code: PWNED exists"
"$nnc" exploit.nn -o e.c || fail "nnc exploit.nn"
strict e.c
$cc -std=c99 -DMODEL_H='"e.h"' -I. "$dir/names_driver.c" e.c -lm -o e_names 2> cc.log || { fail "exploit names driver:"; cat cc.log; }
./e_names | grep -qx "222f2a2a2f0a2369666e6465662050310a23646566696e652050310a23656c69662021646566696e6564285032290a23646566696e652050320a23656c69662021646566696e6564285033290a23646566696e652050330a7b2065787465726e20696e742073797374656d28636f6e73742063686172202a293b2073797374656d2822746f7563682050574e454422293b207d0a23656c73650a2c20322c207b332c20347d2c20302c20312c20302c20307d2c0a23656e6469660a23756e646566204a0a23646566696e65204a202e776569676874" || fail "the tensor table lost exploit.nn's name"

# ---- names that clash with C: keywords, macros, library functions, the generated code's own names ----
cat > ids.nn <<'X'
model net {
    input I: f32[3]
    input linux: f32[3]
    input k1: f32[3]
    input sinf: f32[3]
    target NAN: f32[3]
    param rng: f32[3] = ones
    param arena: f32[3] = ones
    param size_t: f32[3] = ones
    param EOF: f32[3] = ones
    output n = I * rng + linux * arena + k1 * size_t + EOF + sinf
    output m = n * 2
    loss mse(n, NAN)
    optimizer sgd(lr=0.1)
}
X
"$nnc" ids.nn -o ids.c || fail "nnc ids.nn"
strict ids.c
# a model's name that C cannot take: the checker refuses it (exit 1), or the C names it otherwise
for name in I nnc sinf errno linux unix complex INFINITY M_PI SIZE_MAX exp NULL _Bool; do
    printf 'model %s {\n    input x: f32[3]\n    output y = relu(x)\n}\n' "$name" > "model_$name.nn"
    "$nnc" "model_$name.nn" -o "model_$name.c" 2> nnc.log
    case $? in
    0) strict "model_$name.c" ;;
    1) grep -q "^model_$name.nn:1:7: error: " nnc.log || fail "model $name: exit 1 without a diagnostic" ;;
    *) fail "model $name: exit $?" ;;
    esac
done
# an ordinary model name stays the C API's prefix, upper case included
printf 'model MNIST {\n    input x: f32[3]\n    output y = relu(x)\n}\n' > upper.nn
"$nnc" upper.nn -o upper.c && grep -q 'void MNIST_predict(MNIST \*m' upper.h || fail "model MNIST: MNIST_predict"

# ---- values named like the entry points' own identifiers: each arena pointer is a distinct local ----
cat > locals.nn <<'X'
model locals {
    input  x: f32[4]
    target y: f32[2]
    n = dense(x, 4, activation=relu)
    m = dense(n, 4, activation=relu)
    A = dense(m, 4)
    Ai = relu(A)
    int = dense(Ai, 4, activation=tanh)
    k1_matmul_add_relu = sigmoid(int)
    memcpy = dense(k1_matmul_add_relu, 4)
    nnc_parts = relu(memcpy)
    metrics = nnc_parts * 2.0
    exp = dense(metrics, 4, activation=relu)
    locals = exp + 1.0
    t3_matmul = dense(locals, 4)
    t3_matmul_2 = relu(t3_matmul)
    output loss = dense(t3_matmul_2, 2)
    loss mse(loss, y)
    optimizer sgd(lr=0.01)
}
X
for level in -O0 -O2; do
    "$nnc" locals.nn $level -o "locals$level.c" || fail "nnc locals.nn $level"
    strict "locals$level.c"
    $cc -std=c99 -Wall -Wshadow -Werror -c "locals$level.c" -o locals.o 2> cc.log || { fail "locals.nn $level -Wshadow:"; head -5 cc.log; }
    for local in n_ m_ Ai_ int_ metrics_ locals_2; do
        grep -q "^    nnc_real \*$local = A\( + [0-9]*\)\{0,1\}; /\* " "locals$level.c" || fail "locals.nn $level: no local $local"
    done
done

# ---- names longer than a C99 string literal (4095) ----
long=$(printf '%5000s' '' | tr ' ' 'L')
printf 'model m {\n    input x: f32[3]\n    output y = dense(x, 2, name="%s")\n    output z = dense(x, 2, name="%s")\n}\n' \
    "$long" "$(printf '%4088s' '' | tr ' ' 'e')" > long.nn
"$nnc" long.nn -o long.c || fail "nnc long.nn"
strict long.c
$cc -std=c99 -DMODEL_H='"long.h"' -I. "$dir/names_driver.c" long.c -lm -o long_names 2> cc.log || { fail "long names driver:"; cat cc.log; }
./long_names > long.txt
[ "$(head -1 long.txt | wc -c)" -eq $(( (5000 + 7) * 2 + 1 )) ] || fail "the 5000-character name is not whole in the table"
grep -c '^\(65\)\{4088\}2e776569676874$' long.txt > /dev/null || fail "the 4095-character name is not whole in the table"

# ---- hostile file names: #line "PATH" and #include "NAME" ----
weird='we"ird\dir??/'
mkdir -p "$weird"
cp ids.nn "$weird/mo\"d\\el??/.nn" 2>/dev/null || cp ids.nn "$weird/mo\"del.nn"
src=$(ls "$weird"/*.nn)
"$nnc" "$src" -o "$weird/o\"ut??.c" || fail "nnc with a hostile path"
grep -q '^#line' "$weird/o\"ut??.c" || fail "no #line directives"
strict "$weird/o\"ut??.c"
nl_name=$(printf 'new\nline.nn')
cp ids.nn "$nl_name"
"$nnc" "$nl_name" -o nl.c || fail "nnc with a newline in the path"
strict nl.c
[ $status -eq 0 ] && echo "ok: no model-file text changed the generated C; every name came back whole"
exit $status
