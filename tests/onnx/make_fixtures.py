#!/usr/bin/env python3
"""Writes the ONNX fixtures under tests/onnx/fixtures/: models exported from PyTorch with ONNX Runtime's
outputs (roundtrip/), and node-level cases of the operators whose schema changed or appeared in opsets
18-21, in the directory layout of ONNX's own backend test data (node18/).

Run from anywhere:  /work/venv-onnx/bin/python tests/onnx/make_fixtures.py
It deletes and rewrites tests/onnx/fixtures/roundtrip and tests/onnx/fixtures/node18; every random number
comes from a fixed seed, so a second run with the same versions writes the same arrays (the exporters'
graphs too, as far as they are deterministic themselves).

Versions that made the checked-in files (Python 3.11.7, Linux x86-64, CPU only):
    torch       2.15.0 (+cu132 build, run on the CPU)
    onnx        1.23.2
    onnxruntime 1.32.0 (CPUExecutionProvider)
    onnxscript  0.7.2 (the dynamo exporter's back end)
    numpy       2.4.6
The venv: `python3 -m venv /work/venv-onnx; /work/venv-onnx/bin/pip install onnx onnxruntime onnxscript
numpy`, with torch taken from an existing PyTorch venv through a .pth file in the venv's site-packages
(only PyPI is reachable here and PyPI's torch wheel pulls in gigabytes of CUDA libraries); a plain
`pip install torch` does the same job where that is no concern.

Each roundtrip/NAME/ holds model.onnx, x.npy (float32, the ONNX input's layout, NCHW for images), y.npy
(ONNX Runtime's output for x, float32) and meta.json ({"input", "output", "opset", "exporter", ...}).
Each node18/test_NAME/ holds model.onnx and test_data_set_0/input_K.pb, output_K.pb (TensorProtos named
as the graph's inputs and outputs). Every graph input there has the same first dimension (a batch axis);
operands that are not data (axes, pads, shapes, weights, clip bounds) are initializers.
"""

import json
import os
import shutil
import sys
import zlib

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
ROUNDTRIP = os.path.join(FIXTURES, "roundtrip")
NODE18 = os.path.join(FIXTURES, "node18")


def ort_run(path, feeds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # one thread: the same summation order on every run
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


# ---------------------------------------------------------------- round-trip models from PyTorch

class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


class Cnn(nn.Module):
    """models/fashion_cnn.nn in NCHW: conv2d 32 3x3 (valid) relu, maxpool 2, flatten, dense 10 softmax,
    with a BatchNorm2d after the conv layer. The conv's relu comes before the BatchNorm (as in the .nn
    model, where relu is part of conv2d): the TorchScript exporter folds a BatchNorm that directly follows
    a Conv into the Conv's weights, and this one must reach the ONNX file as a BatchNormalization node."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3)
        self.bn = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.dense = nn.Linear(13 * 13 * 32, 10)

    def forward(self, x):
        h = self.pool(self.bn(torch.relu(self.conv(x))))
        h = h.view(h.size(0), -1)  # users' flatten: Shape/Gather/Unsqueeze/Concat/Reshape in the ONNX graph
        return torch.softmax(self.dense(h), dim=1)


class Lstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(input_size=6, hidden_size=16, batch_first=True, num_layers=1)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1, :])


class MlpOps(nn.Module):
    """Exporter patterns of an MLP: exact GELU (Erf), Dropout in eval (gone or Identity), Sigmoid, Tanh,
    clamp (Clip), x*0.5+1 (Mul, Add with scalar constants), softmax over the last axis."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.gelu = nn.GELU()
        self.drop = nn.Dropout(0.25)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(32, 16)
        self.fc4 = nn.Linear(16, 5)

    def forward(self, x):
        h = self.drop(self.gelu(self.fc1(x)))
        h = torch.sigmoid(self.fc2(h)) + torch.tanh(self.fc3(h))
        h = torch.clamp(h, -0.5, 1.25)
        h = h * 0.5 + 1
        return torch.softmax(self.fc4(h), dim=-1)


class ConvMisc(nn.Module):
    """Conv2d with groups=2, dilation 2, stride 2 and padding (1,2) after an asymmetric ZeroPad2d
    (left 1, right 0, top 2, bottom 1); AvgPool2d with padding 1 both without and with the padding in the
    count; MaxPool2d with padding 1; AdaptiveAvgPool2d(1) (GlobalAveragePool)."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 0, 2, 1))
        self.conv = nn.Conv2d(4, 6, 3, stride=2, padding=(1, 2), dilation=2, groups=2)
        self.avg_excl = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.avg_incl = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.dense = nn.Linear(6, 3)

    def forward(self, x):
        h = torch.relu(self.conv(self.pad(x)))
        h = self.avg_excl(h) * 2.0 - self.avg_incl(h)
        h = self.gap(self.maxpool(h))
        return self.dense(torch.flatten(h, 1))


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 5, 3, padding=1)
        self.c2 = nn.Conv1d(5, 4, 3, stride=2)
        self.pool = nn.MaxPool1d(2)
        self.dense = nn.Linear(4 * 3, 3)

    def forward(self, x):
        h = self.pool(torch.relu(self.c2(torch.relu(self.c1(x)))))
        return self.dense(torch.flatten(h, 1))


def randomize_batchnorm(bn, gen):
    """Running statistics and affine parameters far from the defaults (mean 0, var 1, weight 1, bias 0),
    so an importer that drops or misreads any of them gets different numbers."""
    c = bn.num_features
    with torch.no_grad():
        bn.running_mean.copy_(torch.rand(c, generator=gen) * 0.6 - 0.1)
        bn.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
        bn.weight.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
        bn.bias.copy_(torch.rand(c, generator=gen) - 0.5)


def export_torchscript(model, x, path, dynamic):
    torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}} if dynamic else None)


def export_dynamo(model, x, path, opset):
    batch = torch.export.Dim("batch", min=2, max=1024)
    prog = torch.onnx.export(model, (torch.from_numpy(x),), dynamo=True, opset_version=opset,
                             input_names=["x"], output_names=["y"], dynamic_shapes=({0: batch},),
                             external_data=False, verbose=False)
    prog.save(path, external_data=False)


def opset_of(model):
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def write_roundtrip(name, model, x, exporter="torchscript", fixed_batch=None, opset=18):
    """Exports model, runs ONNX Runtime on x (fixed_batch samples at a time for a model exported with a
    fixed batch) and checks the result against PyTorch and against a second ONNX Runtime run."""
    folder = os.path.join(ROUNDTRIP, name)
    os.makedirs(folder)
    path = os.path.join(folder, "model.onnx")
    model.eval()
    if exporter == "torchscript":
        export_torchscript(model, x[: fixed_batch or len(x)], path, dynamic=fixed_batch is None)
    else:
        export_dynamo(model, x, path, opset)
    onnx_model = onnx.load(path)
    onnx.checker.check_model(onnx_model)
    in_name = onnx_model.graph.input[0].name
    out_name = onnx_model.graph.output[0].name

    step = fixed_batch or len(x)
    chunks = [x[i:i + step] for i in range(0, len(x), step)]
    y = np.concatenate([ort_run(path, {in_name: c})[0] for c in chunks]).astype(np.float32)
    again = np.concatenate([ort_run(path, {in_name: c})[0] for c in chunks])
    assert np.array_equal(y, again), f"{name}: ONNX Runtime gave different numbers on a second run"
    if fixed_batch is None:  # the batch axis really is free: 3 samples give the first 3 rows
        part = ort_run(path, {in_name: x[:3]})[0]
        assert part.shape == y[:3].shape and np.allclose(part, y[:3], rtol=1e-5, atol=1e-6), name
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    err = float(np.max(np.abs(y - want)))
    assert err < 1e-4, f"{name}: ONNX Runtime and PyTorch differ by {err}"

    np.save(os.path.join(folder, "x.npy"), x)
    np.save(os.path.join(folder, "y.npy"), y)
    meta = {"input": in_name, "output": out_name, "opset": opset_of(onnx_model), "exporter": exporter,
            "torch": torch.__version__.split("+")[0], "onnxruntime": ort.__version__,
            "x_shape": list(x.shape), "y_shape": list(y.shape)}
    if fixed_batch:
        meta["fixed_batch"] = fixed_batch
    with open(os.path.join(folder, "meta.json"), "w") as f:
        f.write("{\n" + ",\n".join(f' "{k}": {json.dumps(meta[k])}' for k in sorted(meta)) + "\n}\n")
    ops = sorted({n.op_type for n in onnx_model.graph.node})
    print(f"roundtrip/{name}: opset {meta['opset']} {exporter}, x{list(x.shape)} -> y{list(y.shape)}, "
          f"|ort - torch| {err:.2e}, ops {' '.join(ops)}")


def make_roundtrip():
    rng = np.random.default_rng(20261207)
    gen = torch.Generator().manual_seed(13)
    failures = []

    def attempt(name, *args, **kw):
        try:
            write_roundtrip(name, *args, **kw)
        except Exception as e:  # an exporter that fails is reported, the other fixtures still get written
            shutil.rmtree(os.path.join(ROUNDTRIP, name), ignore_errors=True)
            failures.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")

    def image(n, c=1, h=28, w=28):
        return rng.random((n, c, h, w), dtype=np.float32)

    torch.manual_seed(0)
    mlp = Mlp()
    attempt("mlp", mlp, image(5))

    torch.manual_seed(1)
    cnn = Cnn()
    randomize_batchnorm(cnn.bn, gen)
    x_cnn = image(5)
    attempt("cnn", cnn, x_cnn)
    attempt("cnn_fixed", cnn, image(8), fixed_batch=4)

    torch.manual_seed(2)
    lstm = Lstm()
    attempt("lstm", lstm, rng.standard_normal((5, 7, 6), dtype=np.float32))

    torch.manual_seed(3)
    attempt("mlp_ops", MlpOps(), rng.standard_normal((5, 20), dtype=np.float32) * 2)

    torch.manual_seed(4)
    attempt("conv_misc", ConvMisc(), rng.standard_normal((5, 4, 12, 12), dtype=np.float32))

    torch.manual_seed(5)
    attempt("conv1d", Conv1dNet(), rng.standard_normal((5, 3, 16), dtype=np.float32))

    # The default exporter of torch >= 2.9 (torch.export + onnxscript), same weights and x as above.
    attempt("cnn_dynamo", cnn, x_cnn, exporter="dynamo", opset=18)
    attempt("lstm_dynamo", lstm, rng.standard_normal((5, 7, 6), dtype=np.float32), exporter="dynamo", opset=18)
    return failures


# ---------------------------------------------------------------- node-level cases, opsets 18-21

def tensor_info(name, array):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)


def write_node_case(name, opset, nodes, inputs, outputs, initializers=()):
    """inputs: [(name, array)]; outputs: [name]; initializers: [(name, array)]. The expected outputs are
    ONNX Runtime's, and their shapes and types go into the graph's outputs."""
    folder = os.path.join(NODE18, "test_" + name)
    data = os.path.join(folder, "test_data_set_0")
    os.makedirs(data)
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers]

    def build(output_infos):
        graph = helper.make_graph(nodes, "test_" + name, [tensor_info(n, a) for n, a in inputs],
                                  output_infos, initializer=inits)
        ops = [helper.make_opsetid("", opset)]
        return helper.make_model(graph, opset_imports=ops, producer_name="nnc make_fixtures.py",
                                 ir_version=helper.find_min_ir_version_for(ops))

    feeds = {n: a for n, a in inputs}
    untyped = build([helper.make_empty_tensor_value_info(n) for n in outputs])
    sess = ort.InferenceSession(untyped.SerializeToString(), providers=["CPUExecutionProvider"])
    results = sess.run(outputs, feeds)
    model = build([tensor_info(n, r) for n, r in zip(outputs, results)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(folder, "model.onnx"))
    for k, (n, a) in enumerate(inputs):
        onnx.save_tensor(numpy_helper.from_array(a, n), os.path.join(data, f"input_{k}.pb"))
    for k, (n, r) in enumerate(zip(outputs, results)):
        onnx.save_tensor(numpy_helper.from_array(r, n), os.path.join(data, f"output_{k}.pb"))
    verify_node_case(folder)
    print(f"node18/test_{name}: opset {opset}, " +
          ", ".join(f"{n}{list(r.shape)} {r.dtype}" for n, r in zip(outputs, results)))


def verify_node_case(folder):
    """Reads the case back as a test runner would and checks that ONNX Runtime reproduces output_K.pb."""
    model = onnx.load(os.path.join(folder, "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    data = os.path.join(folder, "test_data_set_0")
    feeds = {}
    for k in range(len(model.graph.input)):
        t = onnx.load_tensor(os.path.join(data, f"input_{k}.pb"))
        assert t.name == model.graph.input[k].name
        feeds[t.name] = numpy_helper.to_array(t)
    got = ort_run(os.path.join(folder, "model.onnx"), feeds)
    for k, g in enumerate(got):
        t = onnx.load_tensor(os.path.join(data, f"output_{k}.pb"))
        assert t.name == model.graph.output[k].name
        want = numpy_helper.to_array(t)
        assert want.dtype == g.dtype and want.shape == g.shape and np.array_equal(want, g), folder


def make_node_cases():
    def rand(name, *shape):
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        return rng.standard_normal(shape, dtype=np.float32)

    i64 = lambda *v: np.array(v, dtype=np.int64)
    f32 = lambda v: np.array(v, dtype=np.float32)
    node = helper.make_node
    cases = []

    def case(name, opset, nodes, inputs, outputs=("y",), initializers=()):
        cases.append((name, opset, nodes, inputs, list(outputs), initializers))

    x4 = lambda name: [("x", rand(name, 2, 3, 5, 5))]

    # Reduce*: axes became an input in opset 18 (ReduceSum since 13).
    for op in ("ReduceSum", "ReduceMean", "ReduceMax"):
        low = op.lower().replace("reduce", "reduce_")
        for keep, axes in ((1, (2, 3)), (0, (1,)), (1, (-1,)), (0, (1, 3))):
            name = f"{low}_axes{'_'.join(str(a).replace('-', 'm') for a in axes)}_keepdims{keep}_op18"
            case(name, 18, [node(op, ["x", "axes"], ["y"], keepdims=keep)], x4(name),
                 initializers=[("axes", i64(*axes))])
    name = "reduce_sum_empty_axes_noop_op18"
    case(name, 18, [node("ReduceSum", ["x", "axes"], ["y"], noop_with_empty_axes=1)], x4(name),
         initializers=[("axes", np.zeros(0, np.int64))])

    # Pad 18: the axes input; constant mode with and without a constant value.
    name = "pad_constant_axes_op18"
    case(name, 18, [node("Pad", ["x", "pads", "value", "axes"], ["y"], mode="constant")], x4(name),
         initializers=[("pads", i64(2, 1, 0, 1)), ("value", f32(0.5)), ("axes", i64(2, 3))])
    name = "pad_constant_negative_axes_op18"
    case(name, 18, [node("Pad", ["x", "pads", "", "axes"], ["y"])], x4(name),
         initializers=[("pads", i64(1, 0, 2, 1)), ("axes", i64(-1, -3))])
    name = "pad_constant_all_axes_op19"
    case(name, 19, [node("Pad", ["x", "pads", "value"], ["y"], mode="constant")], x4(name),
         initializers=[("pads", i64(0, 1, 0, 2, 0, 0, 1, 1)), ("value", f32(-1.25))])

    # AveragePool 19: dilations. MaxPool in a newer opset model keeps its opset-12 schema.
    name = "averagepool_dilations_op19"
    case(name, 19, [node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2])], x4(name))
    name = "averagepool_pads_include_pad_op19"
    case(name, 19, [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], count_include_pad=1)], x4(name))
    name = "averagepool_pads_exclude_pad_op19"
    case(name, 19, [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 0, 1, 1], count_include_pad=0)], x4(name))
    name = "averagepool_dilations_pads_op21"
    case(name, 21, [node("AveragePool", ["x"], ["y"], kernel_shape=[2, 3], dilations=[1, 2],
                         pads=[0, 1, 1, 1], strides=[1, 2])], x4(name))
    name = "maxpool_dilations_pads_op19"
    case(name, 19, [node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2],
                         pads=[1, 1, 1, 1])], x4(name))
    name = "maxpool_strides_op21"
    case(name, 21, [node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2])], x4(name))

    # Cast 19 (saturate) and 21 (4-bit types); the common types keep their meaning.
    casts = np.array([[-2.75, -1.5, -0.5, 0.0, 0.25, 1.5, 2.5, 3.999], [7.0, -7.0, 100.25, -0.99, 0.99, 1e3,
                     -1e3, 42.0]], dtype=np.float32)
    case("cast_float_to_int32_op19", 19, [node("Cast", ["x"], ["y"], to=TensorProto.INT32)], [("x", casts)])
    case("cast_float_to_int64_op21", 21, [node("Cast", ["x"], ["y"], to=TensorProto.INT64)], [("x", casts)])
    ints = np.array([[-3, 0, 5, 1 << 20], [7, -8, 2, 9]], dtype=np.int32)
    case("cast_int32_to_float_op21", 21, [node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)], [("x", ints)])
    case("cast_float_to_float_op19", 19, [node("Cast", ["x"], ["y"], to=TensorProto.FLOAT, saturate=1)],
         [("x", casts)])

    # Constant 19 and 21, used by an Add so the output depends on the input.
    bias = rand("constant_bias", 3, 1, 1)
    name = "constant_tensor_op19"
    case(name, 19, [node("Constant", [], ["c"], value=numpy_helper.from_array(bias, "c")),
                    node("Add", ["x", "c"], ["y"])], x4(name))
    name = "constant_value_float_op21"
    case(name, 21, [node("Constant", [], ["c"], value_float=-0.75), node("Mul", ["x", "c"], ["y"])], x4(name))
    name = "constant_value_floats_op21"
    case(name, 21, [node("Constant", [], ["c"], value_floats=[1.0, -2.0, 0.5, 3.0, 0.25]),
                    node("Add", ["x", "c"], ["y"])], x4(name))

    # Flatten (axis 1 only: any other axis merges the batch into another axis), Reshape, Identity,
    # Squeeze, Unsqueeze, Transpose at 21 (new types only) and Reshape 19.
    name = "flatten_axis1_op21"
    case(name, 21, [node("Flatten", ["x"], ["y"], axis=1)], x4(name))
    name = "reshape_zero_minus1_op19"
    case(name, 19, [node("Reshape", ["x", "shape"], ["y"])], x4(name), initializers=[("shape", i64(0, -1))])
    name = "reshape_zero_dims_op21"
    case(name, 21, [node("Reshape", ["x", "shape"], ["y"])], x4(name),
         initializers=[("shape", i64(0, 0, 25))])
    name = "reshape_allowzero0_op21"
    case(name, 21, [node("Reshape", ["x", "shape"], ["y"], allowzero=0)], x4(name),
         initializers=[("shape", i64(-1, 5, 15))])
    name = "identity_op21"
    case(name, 21, [node("Identity", ["x"], ["y"])], x4(name))
    name = "squeeze_axes_op21"
    case(name, 21, [node("Squeeze", ["x", "axes"], ["y"])], [("x", rand(name, 2, 1, 4, 1))],
         initializers=[("axes", i64(1, -1))])
    name = "unsqueeze_axes_op21"
    case(name, 21, [node("Unsqueeze", ["x", "axes"], ["y"])], [("x", rand(name, 2, 3, 4))],
         initializers=[("axes", i64(1, -1))])
    name = "transpose_perm_op21"
    case(name, 21, [node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], x4(name))
    name = "transpose_perm_op19"
    case(name, 19, [node("Transpose", ["x"], ["y"], perm=[0, 3, 1, 2])], [("x", rand(name, 2, 3, 4, 5))])

    # Shape 19 and 21 (start/end since 15), each feeding the shape arithmetic that exporters write around
    # the batch axis, so that every output keeps the batch as its first axis.
    name = "shape_gather_reshape_op19"
    case(name, 19, [node("Shape", ["x"], ["s"]),
                    node("Gather", ["s", "zero"], ["n"], axis=0),
                    node("Unsqueeze", ["n", "zeros"], ["n1"]),
                    node("Concat", ["n1", "rest"], ["t"], axis=0),
                    node("Reshape", ["x", "t"], ["y"])], x4(name),
         initializers=[("zero", np.array(0, np.int64)), ("zeros", i64(0)), ("rest", i64(-1))])
    name = "shape_start_end_op21"
    case(name, 21, [node("Shape", ["x"], ["n"], end=1),
                    node("Shape", ["x"], ["c"], start=1, end=2),
                    node("Concat", ["n", "c", "rest"], ["t"], axis=0),
                    node("Reshape", ["x", "t"], ["y"])], x4(name), initializers=[("rest", i64(-1))])
    name = "shape_negative_start_op21"
    case(name, 21, [node("Shape", ["x"], ["s"], start=-2),
                    node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(f32([0.25]))),
                    node("Sub", ["x", "c"], ["y"])], x4(name))

    # ConstantOfShape 20 (bfloat16 value allowed) and 21, from the input's shape.
    name = "constantofshape_shape_op20"
    case(name, 20, [node("Shape", ["x"], ["s"]),
                    node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(f32([1.5]))),
                    node("Mul", ["x", "c"], ["y"])], x4(name))
    name = "constantofshape_tail_op21"
    case(name, 21, [node("Shape", ["x"], ["s"], start=1),
                    node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(f32([-2.0]))),
                    node("Add", ["x", "c"], ["y"])], x4(name))
    name = "constantofshape_default_op21"
    case(name, 21, [node("Shape", ["x"], ["s"]), node("ConstantOfShape", ["s"], ["c"]),
                    node("Add", ["x", "c"], ["y"])], x4(name))

    # Gelu, new in 20.
    name = "gelu_none_op20"
    case(name, 20, [node("Gelu", ["x"], ["y"])], [("x", rand(name, 2, 3, 7) * 3)])
    name = "gelu_tanh_op20"
    case(name, 20, [node("Gelu", ["x"], ["y"], approximate="tanh")], [("x", rand(name, 2, 3, 7) * 3)])

    # Conv: the opset-11 schema in models of opsets 18-21.
    w = rand("conv_w", 4, 3, 3, 3)
    b = rand("conv_b", 4)
    name = "conv_pads_op18"
    case(name, 18, [node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], x4(name),
         initializers=[("w", w), ("b", b)])
    name = "conv_strides_nobias_op19"
    case(name, 19, [node("Conv", ["x", "w"], ["y"], strides=[2, 2], pads=[0, 1, 1, 0])], x4(name),
         initializers=[("w", w)])
    name = "conv_group_dilation_op20"
    case(name, 20, [node("Conv", ["x", "w", "b"], ["y"], group=2, dilations=[2, 1], pads=[2, 1, 2, 1])],
         [("x", rand(name, 2, 4, 6, 5))],
         initializers=[("w", rand("conv_gw", 6, 2, 3, 3)), ("b", rand("conv_gb", 6))])
    name = "conv_autopad_same_upper_op21"
    case(name, 21, [node("Conv", ["x", "w", "b"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])], x4(name),
         initializers=[("w", rand("conv_w2", 4, 3, 2, 2)), ("b", b)])

    # Gemm, Softmax, LeakyRelu in newer opset models.
    name = "gemm_transb_alpha_beta_op18"
    case(name, 18, [node("Gemm", ["a", "w", "c"], ["y"], transB=1, alpha=0.5, beta=2.0)],
         [("a", rand(name, 3, 4))], initializers=[("w", rand("gemm_w", 5, 4)), ("c", rand("gemm_c", 5))])
    name = "gemm_nobias_op21"
    case(name, 21, [node("Gemm", ["a", "w"], ["y"])], [("a", rand(name, 3, 4))],
         initializers=[("w", rand("gemm_w2", 4, 6))])
    name = "softmax_last_op19"
    case(name, 19, [node("Softmax", ["x"], ["y"])], [("x", rand(name, 2, 3, 4) * 4)])
    name = "softmax_axis1_op21"
    case(name, 21, [node("Softmax", ["x"], ["y"], axis=1)], [("x", rand(name, 2, 3, 4) * 4)])
    name = "leakyrelu_op20"
    case(name, 20, [node("LeakyRelu", ["x"], ["y"], alpha=0.1)], x4(name))

    # Clip with min and max as inputs, either one left out by an empty name.
    name = "clip_min_max_op18"
    case(name, 18, [node("Clip", ["x", "lo", "hi"], ["y"])], x4(name),
         initializers=[("lo", f32(-0.5)), ("hi", f32(0.75))])
    name = "clip_min_only_op19"
    case(name, 19, [node("Clip", ["x", "lo"], ["y"])], x4(name), initializers=[("lo", f32(-0.25))])
    name = "clip_max_only_op21"
    case(name, 21, [node("Clip", ["x", "", "hi"], ["y"])], x4(name), initializers=[("hi", f32(0.3))])

    # Two inputs sharing the batch axis, two outputs.
    name = "two_inputs_two_outputs_op21"
    case(name, 21, [node("Add", ["a", "b"], ["s"]), node("Gelu", ["s"], ["y"], approximate="tanh"),
                    node("ReduceMean", ["s", "axes"], ["z"], keepdims=0)],
         [("a", rand(name + "a", 3, 4, 5)), ("b", rand(name + "b", 3, 4, 5))], outputs=("y", "z"),
         initializers=[("axes", i64(-1))])

    failures = []
    for name, opset, nodes, inputs, outputs, inits in cases:
        try:
            write_node_case(name, opset, nodes, inputs, outputs, inits)
        except Exception as e:
            shutil.rmtree(os.path.join(NODE18, "test_" + name), ignore_errors=True)
            failures.append(f"test_{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    return failures


def main():
    for folder in (ROUNDTRIP, NODE18):
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    failures = make_roundtrip() + make_node_cases()
    for f in failures:
        print("FAILED", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
