#!/usr/bin/env python3
"""make_cases.py: writes the hand-made ONNX files of tests/onnx_read/cases/ (run.sh says what each must do).

    /work/venv-onnx/bin/python tests/onnx_read/make_cases.py      (needs onnx and numpy; idempotent)

Broken and hostile models as an attacker or a buggy exporter writes them: files that are not ONNX, a model cut
short, broken graphs (an input nobody produces, a cycle, a name produced twice), opsets outside nnc's range,
unsupported operators, If nodes nested 100 deep, external data inside and outside the model's directory,
tensors whose data does not match their shape, huge shapes, and names that are hostile to .nn and to C.
The outputs are small and checked in; run.sh needs only nnc and a C compiler. Reference values (ext_ref.npy)
are computed here with NumPy from the model's own numbers.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
ROOT = os.path.dirname(os.path.dirname(HERE))
OPSET = 17


def path(name):
    return os.path.join(CASES, name)


def put(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


def model(nodes, inputs, outputs, inits=(), opset=OPSET, name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_cases.py")
    m.ir_version = 8
    return m


def vi(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def save(name, m):
    put(name, m.SerializeToString())


def add_model(w_name="w", opset=OPSET):
    """y = x + w: x [N, 4], w an initializer of 4 floats"""
    w = numpy_helper.from_array(np.array([1.5, -2.0, 0.25, 8.0], np.float32), w_name)
    return model([helper.make_node("Add", ["x", w_name], ["y"], name="add")], [vi("x", ["N", 4])],
                 [vi("y", ["N", 4])], [w], opset=opset)


def not_onnx():
    put("text.onnx", b"hello, this is a text file\nnot a model\n")
    put("empty.onnx", b"")
    with open(os.path.join(ROOT, "models", "linear_regression.nn"), "rb") as f:
        put("renamed_nn.onnx", f.read())


def truncated():
    """a model whose one initializer (1 KB of raw data) is cut in its middle"""
    w = numpy_helper.from_array(np.arange(256, dtype=np.float32), "w")
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", ["N", 256])], [vi("y", ["N", 256])], [w])
    data = m.SerializeToString()
    raw = w.raw_data
    at = data.index(raw[:64]) + len(raw) // 2
    put("truncated.onnx", data[:at])


def broken_graphs():
    save("undefined_input.onnx", model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add")],
                                       [vi("x", ["N", 4])], [vi("y", ["N", 4])]))
    save("undefined_escape.onnx", model([helper.make_node("Add", ["x", "gh\x1b[31m\nost"], ["y"], name="add\x07")],
                                        [vi("x", ["N", 4])], [vi("y", ["N", 4])]))
    save("cycle.onnx", model([helper.make_node("Add", ["x", "b"], ["a"], name="first"),
                              helper.make_node("Relu", ["a"], ["b"], name="second"),
                              helper.make_node("Identity", ["a"], ["y"], name="out")],
                             [vi("x", ["N", 4])], [vi("y", ["N", 4])]))
    save("duplicate_output.onnx", model([helper.make_node("Relu", ["x"], ["t"], name="one"),
                                         helper.make_node("Neg", ["x"], ["t"], name="two"),
                                         helper.make_node("Identity", ["t"], ["y"], name="out")],
                                        [vi("x", ["N", 4])], [vi("y", ["N", 4])]))
    save("opset6.onnx", add_model(opset=6))
    save("opset22.onnx", add_model(opset=22))


def unsupported():
    """two operators nnc does not import, on data, in one model: both must be named"""
    save("unsupported_two.onnx", model(
        [helper.make_node("Det", ["x"], ["d"], name="det_node"),
         helper.make_node("NonZero", ["x"], ["nz"], name="nz_node"),
         helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [vi("x", ["N", 3, 3])], [vi("y", ["N", 3, 3]), vi("d", ["N"]), vi("nz", [3, "k"], TensorProto.INT64)]))


def pb_field(num, payload):
    """a length-delimited protobuf field (wire type 2)"""
    def varint(v):
        out = b""
        while True:
            out += bytes([(v & 0x7f) | (0x80 if v > 0x7f else 0)])
            v >>= 7
            if not v:
                return out
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def nested_if(levels=100):
    """If nodes nested `levels` deep, each then branch holding the next If. Written by hand: Python's protobuf
    refuses to build messages this deep (as nnc must refuse to read them)."""
    leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["o0"])], "leaf", [], [vi("o0", ["N", 4])])
    inner = leaf.SerializeToString()
    for k in range(1, levels + 1):
        attrs = b"".join(pb_field(5, pb_field(1, name.encode()) + pb_field(6, g) + b"\xa0\x01\x05")  # type 20 = GRAPH
                         for name, g in (("then_branch", inner), ("else_branch", leaf.SerializeToString())))
        node = pb_field(1, b"c") + pb_field(2, b"o%d" % k) + pb_field(3, b"if%d" % k) + pb_field(4, b"If") + attrs
        inner = pb_field(1, node) + pb_field(2, b"g%d" % k) + pb_field(12, vi("o%d" % k, ["N", 4]).SerializeToString())
    top = model([], [vi("x", ["N", 4]), vi("c", [1], TensorProto.BOOL)], [])
    top.ClearField("graph")
    put("nested_if_100.onnx", top.SerializeToString() + pb_field(7, inner + pb_field(11, vi("x", ["N", 4]).SerializeToString())))


def external():
    """y = x + w with w's 16 bytes in a file beside the model; the same model with w embedded; and three
    models whose data lies outside their directory (run.sh lays the files out)"""
    w = np.array([1.5, -2.0, 0.25, 8.0], np.float32)
    save("ext_embedded.onnx", add_model())
    m = add_model()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "ext_w.bin"), ("offset", "0"), ("length", "16")):
        e = t.external_data.add()
        e.key, e.value = k, v
    save("ext_beside.onnx", m)
    put("ext_w.bin", w.tobytes())
    x = np.array([[1, 2, 3, 4], [-1, 0, 0.5, 1e3]], np.float32)
    np.save(path("ext_x.npy"), x)
    np.save(path("ext_ref.npy"), x + w)
    for name, loc in (("ext_dotdot.onnx", "../x.bin"), ("ext_absolute.onnx", "/etc/passwd"),
                      ("ext_symlink.onnx", "link.bin"), ("ext_fifo.onnx", "fifo.bin"), ("ext_long.onnx", "long.bin")):
        t.external_data[0].value = loc
        t.external_data[2].value = "1048576" if name == "ext_long.onnx" else "16"  # more than the shape's 16 bytes
        save(name, m)


def bad_tensors():
    w = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    w.raw_data = b"\0" * 12  # 3 floats for dims [4]
    save("raw_data_short.onnx", model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", ["N", 4])],
                                      [vi("y", ["N", 4])], [w]))
    h = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 31, 1 << 31], raw_data=b"")  # 2^62 elements
    save("huge_dims.onnx", model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", ["N", 4])],
                                 [vi("y", ["N", 4])], [h]))
    save("input_too_large.onnx", model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 1 << 16, 1 << 16])],
                                       [vi("y", ["N", 1 << 16, 1 << 16])]))
    t = TensorProto(name="w", data_type=TensorProto.INT64, dims=[1 << 28])  # 2 GB of int64 claimed, none given
    save("typed_data_missing.onnx", model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", ["N", 4])],
                                          [vi("y", ["N", 4])], [t]))
    z = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 0, 1 << 40], raw_data=b"")  # no elements
    save("zero_huge_dims.onnx", model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", ["N", 4])],
                                      [vi("y", ["N", 4])], [z]))
    shape = numpy_helper.from_array(np.array([10**9, 10**9], np.int64), "shape")
    save("constant_of_shape_huge.onnx", model(
        [helper.make_node("ConstantOfShape", ["shape"], ["big"], name="cos",
                          value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
         helper.make_node("Add", ["x", "big"], ["y"], name="add")],
        [vi("x", ["N", 4])], [vi("y", ["N", 4])], [shape]))


def fold_bomb(n=40):
    """n ConstantOfShape nodes of 4096 x 4096 int64 (128 MB each when folded), none of them used, in 2 KB"""
    shape = numpy_helper.from_array(np.array([4096, 4096], np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["c%d" % k], name="cos%d" % k,
                              value=helper.make_tensor("v", TensorProto.INT64, [1], [1])) for k in range(n)]
    save("fold_bomb.onnx", model(nodes + [helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 4])],
                                 [vi("y", ["N", 4])], [shape]))


# graph input names and the .nn identifiers they must get (run.sh checks each `input NAME:` line)
HOSTILE_INPUTS = [("a.b", "a_b"), ("a_b", "a_b_2"), ("input", "input"), ("model", "model"),
                  ("output", "output"), ("int", "int"), ('q"uote', "q_uote"), ("new\nline", "new_line"),
                  ("*/", "__"), ("??/", "___"), ("back\\slash", "back_slash"), ("h\u00e9", "h__"),
                  ("1st", "_1st"), ("static", "static"), ("h__", "h___2")]


def hostile_names():
    """node, value and initializer names hostile to .nn and to C; a chain of Adds over every input"""
    nodes, prev = [], HOSTILE_INPUTS[0][0]
    for k, (name, _) in enumerate(HOSTILE_INPUTS[1:]):
        out = ["*/ system(\"x\"); /*", "mid\n#include <x>", "??=??(", "while", "t\\"][k % 5] + "%d" % k
        nodes.append(helper.make_node("Add", [prev, name], [out], name=["*/ node", "n\"ode\n", "??/", "if"][k % 4] + str(k)))
        prev = out
    w = numpy_helper.from_array(np.array([1, 2, 3, 4], np.float32), "w */ \"x\" ??/ \\\n.weight")
    nodes.append(helper.make_node("Mul", [prev, w.name], ["return"], name="for"))
    # layers: one named by its node (a weight name that is not PyTorch's), one by its weight ("fc.0.weight")
    g1 = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 8, "*/ evil\n.weight")
    b1 = numpy_helper.from_array(np.array([1, -1, 0.5], np.float32), "b ??/")
    g2 = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2) / 4 - 0.5, "fc.0.weight")
    nodes.append(helper.make_node("Gemm", ["return", g1.name, b1.name], ["h"], name="??/ gemm */\n\"x\""))
    nodes.append(helper.make_node("MatMul", ["h", g2.name], ["m"], name="dense"))
    nodes.append(helper.make_node("Relu", ["m"], ["loss"], name="int main(void){"))
    inputs = [vi(n, ["N", 4]) for n, _ in HOSTILE_INPUTS]
    save("hostile_names.onnx", model(nodes, inputs, [vi("loss", ["N", 2])], [w, g1, b1, g2]))


def many_names(n=3000):
    """a chain of n Relus whose value names all make the same identifier ("a" and three punctuation marks),
    written in reverse order: the import sorts the nodes and names the values in well under a second"""
    punct = "!#$%&()*+,-.:;<=>?@[]^{|}~"
    def name(k):
        return "a" + "".join(punct[k // len(punct) ** d % len(punct)] for d in range(3))
    nodes, prev = [], "x"
    for k in range(n):
        nodes.append(helper.make_node("Relu", [prev], [name(k)]))
        prev = name(k)
    save("many_names.onnx", model(nodes[::-1], [vi("x", ["N", 4])], [vi(prev, ["N", 4])]))


def ir3_inputs(n=20000):
    """IR version 3: every initializer is listed among the graph inputs too (20000 of them)"""
    inits = [numpy_helper.from_array(np.array([1.0], np.float32), "w%d" % k) for k in range(n)]
    inputs = [vi("x", ["N", 4])] + [vi("w%d" % k, [1]) for k in range(n)]
    m = model([helper.make_node("Relu", ["x"], ["y"])], inputs, [vi("y", ["N", 4])], inits, opset=9)
    m.ir_version = 3
    save("ir3_inputs.onnx", m)


def main():
    os.makedirs(CASES, exist_ok=True)
    not_onnx()
    truncated()
    broken_graphs()
    unsupported()
    nested_if()
    external()
    bad_tensors()
    fold_bomb()
    hostile_names()
    many_names()
    ir3_inputs()


if __name__ == "__main__":
    sys.exit(main())
