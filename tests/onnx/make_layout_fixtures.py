#!/usr/bin/env python3
"""Writes tests/onnx/fixtures/layout/: small graphs in ONNX's backend test layout that chain the shape and
reduction operators on data whose .nn layout is not ONNX's (a Conv's NHWC output, a Transpose that only
relabels axes, an Unsqueeze before the batch axis), where ONNX's own node tests give one operator on a
plain input. Expected outputs are ONNX Runtime's.

Run from anywhere:  /work/venv-onnx/bin/python tests/onnx/make_layout_fixtures.py
(onnx, onnxruntime and numpy; the versions of tests/onnx/fixtures/README.md). It deletes and rewrites
fixtures/layout; every input comes from a generator seeded by the case's name, so a rerun writes the same
files. Every graph input's first axis is the batch (3 samples); operands that are not data (weights, axes,
shapes, indices) are initializers. Each case is checked by reading it back through ONNX Runtime.
"""

import os
import shutil
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "layout")
N = 3  # samples
I64_MAX = np.iinfo(np.int64).max


def i64(*v):
    return np.array(v, dtype=np.int64)


def rand(name, *shape):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return rng.standard_normal(shape, dtype=np.float32)


def info(name, array):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)


def ort_run(model_bytes, feeds, outputs=None):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"]).run(outputs, feeds)


def write_case(name, opset, nodes, inputs, outputs, inits=()):
    """inputs: [(name, array)], outputs: [name], inits: [(name, array)]"""
    folder = os.path.join(OUT, "test_" + name)
    data = os.path.join(folder, "test_data_set_0")
    os.makedirs(data)
    tensors = [numpy_helper.from_array(np.asarray(a), n) for n, a in inits]

    def build(outs):
        g = helper.make_graph(nodes, name, [info(n, a) for n, a in inputs], outs, initializer=tensors)
        ops = [helper.make_opsetid("", opset)]
        return helper.make_model(g, opset_imports=ops, producer_name="nnc make_layout_fixtures.py",
                                 ir_version=helper.find_min_ir_version_for(ops))

    feeds = dict(inputs)
    results = ort_run(build([helper.make_empty_tensor_value_info(n) for n in outputs]).SerializeToString(), feeds,
                      outputs)
    model = build([info(n, r) for n, r in zip(outputs, results)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(folder, "model.onnx"))
    for k, (n, a) in enumerate(inputs):
        onnx.save_tensor(numpy_helper.from_array(a, n), os.path.join(data, f"input_{k}.pb"))
    for k, (n, r) in enumerate(zip(outputs, results)):
        onnx.save_tensor(numpy_helper.from_array(r, n), os.path.join(data, f"output_{k}.pb"))
    again = ort_run(os.path.join(folder, "model.onnx"), feeds)
    assert all(np.array_equal(a, b) for a, b in zip(again, results)), name
    print(f"layout/test_{name}: opset {opset}, " + ", ".join(f"{n}{list(r.shape)}" for n, r in zip(outputs, results)))


def conv(name, x, w, out):
    """a 3x3 Conv with padding 1 (its output is NHWC in .nn)"""
    return helper.make_node("Conv", [x, w], [out], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name=name)


def cases():
    node = helper.make_node
    x = rand("conv_x", N, 2, 5, 4)
    w = rand("conv_w", 4, 2, 3, 3) * 0.5
    w2 = rand("conv_w2", 3, 2, 3, 3) * 0.5

    # reductions on a Conv's output (NHWC in .nn): over H and W, over C, axes as an input (opset 18)
    write_case("conv_reduce", 18, [
        conv("c", "x", "w", "y"),
        node("ReduceMean", ["y", "hw"], ["mean_hw"], keepdims=0),
        node("ReduceMax", ["y", "c1"], ["max_c"], keepdims=1),
        node("ReduceMin", ["y", "hw"], ["min_hw"], keepdims=1),
        node("ReduceSum", ["y", "wneg"], ["sum_w"], keepdims=0),
        node("ReduceL2", ["y", "c1"], ["l2_c"], keepdims=0),
        node("ReduceLogSumExp", ["y", "hw"], ["lse_hw"], keepdims=0),
    ], [("x", x)], ["mean_hw", "max_c", "min_hw", "sum_w", "l2_c", "lse_hw"],
        [("w", w), ("hw", i64(2, 3)), ("c1", i64(1)), ("wneg", i64(-1))])

    # the same at opset 13: axes as attributes (ReduceSum's as an input), noop_with_empty_axes
    write_case("conv_reduce_op13", 13, [
        conv("c", "x", "w", "y"),
        node("ReduceL1", ["y"], ["l1"], axes=[1, 3], keepdims=0),
        node("ReduceSumSquare", ["y"], ["ss"], axes=[-2], keepdims=1),
        node("ReduceSum", ["y", "c1"], ["sum_c"], keepdims=0),
        node("ReduceSum", ["y", "none"], ["same"], keepdims=0, noop_with_empty_axes=1),
        node("Relu", ["y"], ["r"]),
        node("ReduceLogSum", ["r"], ["ls"], axes=[1, 2, 3], keepdims=0),
    ], [("x", x)], ["l1", "ss", "sum_c", "same", "ls"],
        [("w", w), ("c1", i64(1)), ("none", np.zeros(0, np.int64))])

    # ArgMax/ArgMin over C and W of the NHWC value; Softmax and LogSoftmax over C (opset 13: one axis)
    write_case("conv_argmax_softmax", 13, [
        conv("c", "x", "w", "y"),
        node("ArgMax", ["y"], ["am_c"], axis=1, keepdims=1),
        node("ArgMin", ["y"], ["an_w"], axis=-1, keepdims=0),
        node("Softmax", ["y"], ["sm_c"], axis=1),
        node("LogSoftmax", ["y"], ["lsm_h"], axis=2),
    ], [("x", x)], ["am_c", "an_w", "sm_c", "lsm_h"], [("w", w)])

    # opset 11 softmax: the block of every axis from `axis` on, on a Conv output and on plain data
    s = rand("softmax_x", N, 3, 4)
    write_case("softmax_block_op11", 11, [
        conv("c", "x", "w", "y"),
        node("Softmax", ["y"], ["sm1"], axis=1),
        node("LogSoftmax", ["y"], ["lsm2"], axis=2),
        node("Softmax", ["s"], ["sms"]),
        node("LogSoftmax", ["s"], ["lsms"], axis=-1),
    ], [("x", x), ("s", s)], ["sm1", "lsm2", "sms", "lsms"], [("w", w)])

    # Concat along C of two Conv outputs (NHWC) and the input itself (NCHW: brought to NHWC); along W
    write_case("conv_concat", 13, [
        conv("c1", "x", "w", "y1"),
        conv("c2", "x", "w2", "y2"),
        node("Concat", ["y1", "x", "y2"], ["cat_c"], axis=1),
        node("Concat", ["y2", "y2"], ["cat_w"], axis=-1),
    ], [("x", x)], ["cat_c", "cat_w"], [("w", w), ("w2", w2)])

    # Gather: a list with repeats and out of order along W, a scalar (negative) along C of a Conv output
    write_case("gather", 13, [
        conv("c", "x", "w", "y"),
        node("Gather", ["y", "last"], ["g_c"], axis=1),
        node("Gather", ["x", "idx"], ["g_w"], axis=3),
        node("Gather", ["x", "one"], ["g_h"], axis=-2),
    ], [("x", x)], ["g_c", "g_w", "g_h"],
        [("w", w), ("last", np.array(-1, np.int64)), ("idx", i64(3, 0, 0, 2, 3)), ("one", i64(1))])

    # Slice: steps 2 and -3, ends past the extent, the batch axis kept whole, a Conv output's C and H
    write_case("slice", 13, [
        conv("c", "x", "w", "y"),
        node("Slice", ["x", "s1", "e1", "a1", "st1"], ["sl_steps"]),
        node("Slice", ["x", "s2", "e2", "a2"], ["sl_batch"]),
        node("Slice", ["y", "s3", "e3", "a3"], ["sl_conv"]),
    ], [("x", x)], ["sl_steps", "sl_batch", "sl_conv"],
        [("w", w), ("s1", i64(1, -1)), ("e1", i64(I64_MAX, -I64_MAX)), ("a1", i64(2, 3)), ("st1", i64(2, -3)),
         ("s2", i64(0, 1)), ("e2", i64(I64_MAX, 99)), ("a2", i64(0, 1)),
         ("s3", i64(1, 0)), ("e3", i64(3, -1)), ("a3", i64(1, 2))])

    # Split: a Conv output along C (2 equal parts) and H (num_outputs 3 of 5: 2, 2, 1), the input along W
    write_case("split", 18, [
        conv("c", "x", "w", "y"),
        node("Split", ["y"], ["c0", "c1"], axis=1, num_outputs=2),
        node("Split", ["y"], ["h0", "h1", "h2"], axis=2, num_outputs=3),
        node("Split", ["x", "parts"], ["w0", "w1"], axis=-1),
    ], [("x", x)], ["c0", "c1", "h0", "h1", "h2", "w0", "w1"], [("w", w), ("parts", i64(1, 3))])

    # reshapes of a Conv output: after a global pool ([N,C,1,1]: no transpose needed) and of one row
    # ([N,C,1,W]: C and W are in NHWC's other order, so a transpose is)
    write_case("conv_flatten", 13, [
        conv("c", "x", "w", "y"),
        node("GlobalAveragePool", ["y"], ["gap"]),
        node("Flatten", ["gap"], ["flat"]),
        node("ReduceMax", ["y"], ["mx"], axes=[2, 3], keepdims=1),
        node("Squeeze", ["mx", "hw"], ["sq"]),
        node("Slice", ["y", "s", "e", "a"], ["row"]),
        node("Reshape", ["row", "shp"], ["rs"]),
    ], [("x", x)], ["flat", "sq", "rs"],
        [("w", w), ("hw", i64(2, 3)), ("s", i64(2)), ("e", i64(3)), ("a", i64(2)), ("shp", i64(0, -1))])

    # Squeeze/Unsqueeze around the batch, a Transpose that only relabels, Reshape with the batch second
    # (0 copies it) and Flatten
    u = rand("unsqueeze_x", N, 3, 1, 4)
    write_case("squeeze_reshape", 13, [
        node("Squeeze", ["u", "ax2"], ["sq"]),                        # [N,3,4]
        node("Unsqueeze", ["sq", "ax0"], ["us"]),                     # [1,N,3,4]
        node("Transpose", ["us"], ["tr"], perm=[1, 2, 0, 3]),         # [N,3,1,4]
        node("Flatten", ["tr"], ["fl"], axis=1),                      # [N,12]
        node("Transpose", ["sq"], ["t2"], perm=[1, 0, 2]),            # [3,N,4]
        node("Reshape", ["t2", "shp"], ["rs"]),                       # [3,N,2,2]
        node("Transpose", ["rs"], ["back"], perm=[1, 0, 3, 2]),       # [N,3,2,2]
        node("Unsqueeze", ["sq", "axm1"], ["us_end"]),                # [N,3,4,1]
        node("Reshape", ["us_end", "shp2"], ["rs2"]),                 # [N,2,6]
    ], [("u", u)], ["fl", "back", "rs2"],
        [("ax2", i64(2)), ("ax0", i64(0)), ("shp", i64(3, 0, 2, 2)), ("axm1", i64(-1)), ("shp2", i64(-1, 2, 6))])

    # Expand that adds nothing, Cast of int data to float, a Constant (value_floats) added to data, the
    # batch symbol through Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    k = np.arange(N * 4, dtype=np.int32).reshape(N, 4) - 5
    write_case("expand_cast_constant", 13, [
        node("Expand", ["v", "ones"], ["ex"]),
        node("Cast", ["k"], ["kf"], to=onnx.TensorProto.FLOAT),
        node("Constant", [], ["cst"], value_floats=[0.5, -1.0, 2.0, 0.25]),
        node("Add", ["ex", "cst"], ["added"]),
        node("Mul", ["added", "kf"], ["prod"]),
        node("Shape", ["prod"], ["shape"]),
        node("Gather", ["shape", "zero"], ["b"], axis=0),
        node("Unsqueeze", ["b", "zeros1"], ["b1"]),
        node("Concat", ["b1", "two_two"], ["target"], axis=0),
        node("Reshape", ["prod", "target"], ["out"]),
    ], [("v", rand("expand_v", N, 4)), ("k", k)], ["out"],
        [("ones", i64(1, 4)), ("zero", np.array(0, np.int64)), ("zeros1", i64(0)), ("two_two", i64(2, 2))])

    # Expand copying along axes of extent 1: F.normalize's x / Expand(norm, Shape(x)) on [N, 5]; a Conv output's
    # max over C copied back along C, its mean over W along W (the Expand a graph output, NHWC in .nn)
    write_case("expand_copy", 13, [
        node("ReduceL2", ["v"], ["norm"], axes=[1], keepdims=1),
        node("Shape", ["v"], ["vshape"]),
        node("Expand", ["norm", "vshape"], ["norms"]),
        node("Div", ["v", "norms"], ["unit"]),
        conv("conv", "x", "w", "c"),
        node("ReduceMax", ["c"], ["cmax"], axes=[1], keepdims=1),
        node("Expand", ["cmax", "c_ext"], ["cmaxs"]),
        node("Sub", ["c", "cmaxs"], ["centred"]),
        node("ReduceMean", ["c"], ["wmean"], axes=[3], keepdims=1),
        node("Expand", ["wmean", "w_ext"], ["wmeans"]),
    ], [("v", rand("expand_copy_v", N, 5)), ("x", rand("expand_copy_x", N, 3, 5, 6))], ["unit", "centred", "wmeans"],
        [("w", rand("expand_copy_w", 4, 3, 3, 3)), ("c_ext", i64(1, 4, 1, 1)), ("w_ext", i64(1, 1, 1, 6))])


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    cases()


if __name__ == "__main__":
    main()
