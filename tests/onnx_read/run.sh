#!/bin/sh
# run.sh: the ONNX reader on broken and hostile models (cases/, written by make_cases.py; docs/onnx.md).
#
#   tests/onnx_read/run.sh path/to/nnc
#
# Each bad model must be refused by `nnc import` with exit 1 and a message naming what is wrong, without a
# signal, a timeout or "internal error". External data is laid out here in a scratch directory: beside the
# model it is read (predict equals the embedded model's and NumPy's result byte for byte); through "..", an
# absolute path or a symlink out of the model's directory it is refused. The hostile names model must import,
# check, name its inputs by the made-identifier rule, and compile to C that builds with -Wall -Werror.
# Exit 77 (skipped) when this nnc was built without ONNX support.
# What it does not do: fuzz (tests/fuzz, fuzz_onnx) or test operators (tests/onnx).
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:?usage: run.sh path/to/nnc}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_onnx_read.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/m" "$tmp/outside" && cp "$here"/cases/* "$tmp/m/" || exit 2
pass=0 fail=0 limit=:

"$nnc" import "$tmp/m/ext_embedded.onnx" -o "$tmp/probe.nn" 2>"$tmp/err"
grep -q "without ONNX support" "$tmp/err" && { echo "skipped: nnc was built without ONNX support"; exit 77; }

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; [ -s "$tmp/err" ] && sed 's/^/    /' "$tmp/err" | head -8; }

# refuse CASE MESSAGE-ERE...: `nnc import CASE` exits 1 and stderr matches every ERE
refuse() {
    case_=$1
    shift
    (cd "$tmp/m" && eval "$limit" && timeout 60 "$nnc" import "$case_" -o "$tmp/out.nn" >"$tmp/out" 2>"$tmp/err")
    rc=$?
    why=
    [ $rc -eq 1 ] || why="$why [exit $rc, not 1]"
    grep -q "internal error" "$tmp/err" && why="$why [internal error]"
    for re in "$@"; do grep -Eq -- "$re" "$tmp/err" || why="$why [no '$re']"; done
    [ -e "$tmp/out.nn" ] && why="$why [wrote out.nn]"
    if [ -z "$why" ]; then ok; else bad "$case_:$why"; fi
    rm -f "$tmp/out.nn" "$tmp/out.safetensors"
}

# ---- not ONNX, cut short ----
refuse text.onnx "text.onnx: not an ONNX model"
refuse empty.onnx "empty.onnx: not an ONNX model \(no graph\)"
refuse renamed_nn.onnx "renamed_nn.onnx: not an ONNX model"
refuse truncated.onnx "truncated.onnx: not an ONNX model .*truncated"
refuse missing.onnx "missing.onnx: cannot open"

# ---- broken graphs, opsets, operators ----
refuse undefined_input.onnx "node 'add' \(Add\): input 'ghost' is not produced by any node, input or initializer"
refuse undefined_escape.onnx "^nnc: error: undefined_escape.onnx: node 'add\?' \(Add\): input 'gh\?\[31m\?ost' is not produced"
refuse cycle.onnx "the graph has a cycle: node '(first|second)'"
refuse duplicate_output.onnx "node 'two' \(Neg\): its output 't' is also produced elsewhere"
# an opset before 7 is read where its operators mean what they mean from opset 7 on (an Add without legacy axis)
if (cd "$tmp/m" && timeout 60 "$nnc" import opset6.onnx -o "$tmp/o6.nn" 2>"$tmp/err" && "$nnc" check "$tmp/o6.nn" 2>>"$tmp/err"); then
    ok
else
    bad "opset6.onnx: an opset-6 Add did not import"
fi
refuse opset22.onnx "uses opset 22 of the default domain; nnc imports opsets up to 21"
refuse unsupported_two.onnx "node 'det_node' \(Det, opset 17\)" "node 'nz_node' \(NonZero, opset 17\)"
refuse nested_if_100.onnx "nested_if_100.onnx: its messages nest more than 64 levels deep \(graphs in nodes' attributes"

# 16 MB of empty NodeProtos (8M nodes, 2 bytes each; protobuf-c makes a struct of each): refused by the
# unpack's memory budget. Written here: ir_version 8, opset 17, graph (field 7) of 2^24 bytes.
printf '\n\000' >"$tmp/nodes"
i=0
while [ $i -lt 23 ]; do cat "$tmp/nodes" "$tmp/nodes" >"$tmp/nodes2" && mv "$tmp/nodes2" "$tmp/nodes"; i=$((i + 1)); done
{ printf '\010\010\102\002\020\021\072\200\200\200\010' && cat "$tmp/nodes"; } >"$tmp/m/empty_nodes.onnx"
rm -f "$tmp/nodes"
refuse empty_nodes.onnx "empty_nodes.onnx: unpacking the model needs more than 320 MB for a 16 MB file"
rm -f "$tmp/m/empty_nodes.onnx"

# ---- tensors ----
refuse raw_data_short.onnx "initializer 'w' holds 12 bytes of data for 4 elements of 4 bytes"
refuse huge_dims.onnx "initializer 'w' has a negative or too large shape"
refuse zero_huge_dims.onnx "initializer 'w' has a negative or too large shape"
# dims claiming 2^28 int64 (2 GB) with no values: refused before anything is allocated (in 1 GB of address
# space, when this nnc runs in it: not a sanitizer build)
sh -c 'ulimit -v 1000000 && exec "$0" --version' "$nnc" >/dev/null 2>&1 && limit="ulimit -v 1000000"
refuse typed_data_missing.onnx "initializer 'w' holds 0 values for 268435456 elements"
# 40 ConstantOfShape nodes of 16M int64 each: the fold's total bound refuses the third (in 1 GB too)
refuse fold_bomb.onnx "node 'cos2' \(ConstantOfShape, opset 17\): the constants folded at import would hold more than 2\^25"
limit=:
refuse input_too_large.onnx "graph input 'x' has more than 2\^31 - 1 values per sample"
refuse constant_of_shape_huge.onnx "node 'cos' \(ConstantOfShape, opset 17\): its folded result would be too large"

# ---- external data: beside the model it reads; out of its directory it is refused ----
printf 'secret-16-bytes!' >"$tmp/x.bin"
cp "$tmp/m/ext_w.bin" "$tmp/outside/w.bin"
ln -s ../outside/w.bin "$tmp/m/link.bin"
refuse ext_dotdot.onnx "external data location '\.\./x\.bin': only files in the model's own directory are read"
refuse ext_absolute.onnx "external data location '/etc/passwd': only files in the model's own directory are read"
refuse ext_symlink.onnx "external data 'link\.bin' lies outside the model's directory"
mkfifo "$tmp/m/fifo.bin"
refuse ext_fifo.onnx "external data 'fifo\.bin': cannot read it \(not a regular file\)"
head -c 1048576 /dev/zero >"$tmp/m/long.bin"
refuse ext_long.onnx "external data 'long\.bin': 1048576 bytes for a shape that needs 16"
(cd "$tmp/m" && "$nnc" predict ext_beside.onnx --data x=ext_x.npy -o "$tmp/beside.npy" 2>"$tmp/err" &&
    "$nnc" predict ext_embedded.onnx --data x=ext_x.npy -o "$tmp/embedded.npy" 2>>"$tmp/err")
if [ $? -eq 0 ] && cmp -s "$tmp/beside.npy" "$tmp/embedded.npy" && cmp -s "$tmp/beside.npy" "$tmp/m/ext_ref.npy"; then
    ok
else
    bad "ext_beside.onnx: predict with the external file differs from the embedded model's or NumPy's"
fi

# ---- many values whose names make one identifier, nodes in reverse order: sorted and named in linear time ----
cd "$tmp/m" || exit 2
if timeout 10 "$nnc" import many_names.onnx -o many.nn 2>"$tmp/err" && "$nnc" check many.nn 2>>"$tmp/err" &&
    grep -q "^    a____2999 = relu(a____2998)$" many.nn; then
    ok
else
    bad "many_names.onnx: not imported in 10 s, or not in order"
fi

# IR 3: 20000 initializers listed among the inputs too, in under 3 s (each was searched for in all of them: 5.5 s)
if timeout 3 "$nnc" import ir3_inputs.onnx -o ir3.nn 2>"$tmp/err" && grep -q "^    input x: f32\[4\]$" ir3.nn &&
    [ "$(grep -c "^    input " ir3.nn)" -eq 1 ]; then
    ok
else
    bad "ir3_inputs.onnx: not imported in 3 s with its one data input"
fi

# ---- the model's name from the file's: one the checker takes ----
for stem in c10:m_c10_ int:int_ relu:relu mlp-v2:mlp_v2; do
    cp ext_embedded.onnx "${stem%%:*}.onnx"
    if "$nnc" import "${stem%%:*}.onnx" -o stem.nn 2>"$tmp/err" && grep -q "^model ${stem#*:} {" stem.nn; then
        ok
    else
        bad "${stem%%:*}.onnx: not imported as model ${stem#*:}"
    fi
done

# ---- hostile names: import, check, the inputs' identifiers, C that builds strictly ----
cd "$tmp/m" || exit 2
if "$nnc" import hostile_names.onnx -o h.nn 2>"$tmp/err" && "$nnc" check h.nn 2>>"$tmp/err"; then
    ok
    missing=
    # graph inputs: bytes outside [A-Za-z0-9_] -> _, a leading digit gets _, repeats _2; the statement words of
    # .nn (input, model, output) are names like others (make_cases.py HOSTILE_INPUTS)
    for id in a_b a_b_2 input model output int q_uote new_line __ ___ back_slash h__ _1st static h___2; do
        grep -q "^    input $id: f32\[4\]$" h.nn || missing="$missing $id"
    done
    grep -q "^    output loss$" h.nn || missing="$missing (output loss)"
    # layers: named by the node's made identifier, or by a PyTorch weight name's prefix (a string: dots stay)
    grep -q 'dense(return, 3, name="____gemm_____x_")$' h.nn || missing="$missing (the Gemm's layer name)"
    grep -q 'name="fc.0")$' h.nn || missing="$missing (layer fc.0)"
    if [ -z "$missing" ]; then ok; else bad "hostile_names.onnx: inputs not named by the rule:$missing"; fi
    LC_ALL=C grep -q "$(printf '[\001-\010\013-\037\177-\377]')" h.nn && bad "hostile_names.onnx: a control or non-ASCII byte in h.nn" || ok
else
    bad "hostile_names.onnx: import or check failed"
fi
cc=${CC:-cc}
if "$nnc" hostile_names.onnx -o m.c 2>"$tmp/err" && $cc -std=c99 -Wall -Wextra -Werror -c m.c -o m.o 2>>"$tmp/err"; then
    ok
else
    bad "hostile_names.onnx: nnc MODEL.onnx -o m.c, then $cc -c -Wall -Werror"
fi
grep -q '??' m.c m.h && bad "hostile_names.onnx: a trigraph-like ?? in the generated C" || ok

echo "onnx_read: $pass passed, $fail failed"
[ $fail -eq 0 ]
