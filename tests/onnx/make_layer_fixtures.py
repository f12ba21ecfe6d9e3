#!/usr/bin/env python3
"""Writes tests/onnx/fixtures/layers/: cases for the ONNX operators that nnc imports as layers
(compiler/onnx/onnx_ops_layers.c), in the layout of ONNX's own backend test data: each test_NAME/ holds
model.onnx and test_data_set_0/input_K.pb, output_K.pb (TensorProtos named as the graph's inputs and outputs),
the outputs ONNX Runtime's. Every graph input has a symbolic first (batch) axis; weights are initializers.

Run from anywhere:  /work/venv-onnx/bin/python tests/onnx/make_layer_fixtures.py
It deletes and rewrites tests/onnx/fixtures/layers; the random numbers come from one fixed seed, so a second
run with the same versions writes the same files. Versions that made the checked-in files: onnx 1.23.2,
onnxruntime 1.32.0 (CPUExecutionProvider, one thread), torch 2.15.0 (the torch_* cases, TorchScript exporter
at opset 17), numpy 2.4.6.

The cases are the forms ONNX's node tests do not reach with a batch axis: an LSTM over T > 1 steps behind the
Transpose a batch_first model exports, with Y and Y_h both read; a MatMul whose bias Add (and activation) the
import takes into one dense layer, and one where it must not; Gemm with a data C, with transA of a transposed
input; a zero Pad folded into the Conv after it, and one that is not (a second consumer, a pool, a value);
convolutions with SAME padding, groups, 1-D; pools with ceil_mode; batch normalization of rank 2 and 3. The
torch_* cases are the same layers as PyTorch exports them. ONNX Runtime has no layout=1 LSTM (batch first
inside the node), so none is here; ONNX's node test test_lstm_batchwise covers it.
"""

import os
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper as h, numpy_helper as nh
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "layers")
N = 3  # the batch of every case
rng = np.random.default_rng(20261207)


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def init(name, a):
    return nh.from_array(np.asarray(a), name)


def ort_run(path, feeds, outputs):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return sess.run(outputs, feeds)


def write_case(name, model, inputs, outputs):
    """model: a ModelProto; inputs: {name: float32 array}; outputs: the graph's output names"""
    d = os.path.join(OUT, "test_" + name)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    results = ort_run(os.path.join(d, "model.onnx"), inputs, outputs)
    for kind, pairs in (("input", list(inputs.items())), ("output", list(zip(outputs, results)))):
        for k, (n, v) in enumerate(pairs):
            with open(os.path.join(d, "test_data_set_0", f"{kind}_{k}.pb"), "wb") as f:
                f.write(nh.from_array(v, n).SerializeToString())
    print(f"{name}: {', '.join(f'{n} {list(v.shape)}' for n, v in zip(outputs, results))}")


def case(name, nodes, inputs, outputs, inits, opset=17):
    graph = h.make_graph(nodes, name,
                         [h.make_tensor_value_info(k, TensorProto.FLOAT, ["N"] + list(v.shape[1:])) for k, v in inputs.items()],
                         [onnx.ValueInfoProto(name=o) for o in outputs], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], producer_name="make_layer_fixtures.py")
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    write_case(name, model, inputs, outputs)


def torch_case(name, module, x):
    path = os.path.join(OUT, "tmp.onnx")
    module.eval()
    torch.onnx.export(module, (torch.from_numpy(x),), path, dynamo=False, opset_version=17, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    model = onnx.load(path)
    os.remove(path)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    write_case(name, model, {"x": x}, ["y"])
    got = ort_run(os.path.join(OUT, "test_" + name, "model.onnx"), {"x": x}, ["y"])[0]
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5), f"{name}: ONNX Runtime and PyTorch differ"


# ---- LSTM: layout 0 behind a Transpose of a batch-first input (as PyTorch's batch_first exports)
def lstm_case(name, T, F, H, outs, bias=True, seq_lens=False):
    W, R, B = rand(1, 4 * H, F) * 0.5, rand(1, 4 * H, H) * 0.5, rand(1, 8 * H) * 0.5
    inits = [init("W", W), init("R", R)] + ([init("B", B)] if bias else [])
    if seq_lens:
        inits.append(init("lens", np.full([N], T, np.int32)))
    nodes = [h.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             h.make_node("LSTM", ["xt", "W", "R", "B" if bias else "", "lens" if seq_lens else ""],
                         ["Y" if "Y" in outs else "", "Yh" if "Yh" in outs else ""], hidden_size=H)]
    graph_outs = []
    if "Y" in outs:  # [T, 1, B, H] -> [B, T, 1, H]
        nodes.append(h.make_node("Transpose", ["Y"], ["y"], perm=[2, 0, 1, 3]))
        graph_outs.append("y")
    if "Yh" in outs:  # [1, B, H] -> [B, 1, H]
        nodes.append(h.make_node("Transpose", ["Yh"], ["yh"], perm=[1, 0, 2]))
        graph_outs.append("yh")
    case(name, nodes, {"x": rand(N, T, F)}, graph_outs, inits, opset=14)


def bn_params(C):
    return [init("scale", rand(C)), init("bias", rand(C)), init("mean", rand(C)), init("var", np.abs(rand(C)) + 0.1)]


def pads(*v):
    return np.array(v, np.int64)


class TorchLinear3d(nn.Module):
    """Linear on a rank-3 input: MatMul + Add, then ReLU"""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 6)

    def forward(self, x):
        return torch.relu(self.fc(x))


class TorchLstmBoth(nn.Module):
    """LSTM(batch_first) whose sequence and last hidden state are both read"""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 5, batch_first=True)

    def forward(self, x):
        out, (h, _) = self.lstm(x)
        return out * 0.5 + h.transpose(0, 1)


class TorchPools(nn.Module):
    """ceil_mode pools with padding, BatchNorm2d (eval, random statistics)"""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(3)
        self.maxp = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.avgp = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        with torch.no_grad():
            self.bn.running_mean.copy_(torch.from_numpy(rand(3)))
            self.bn.running_var.copy_(torch.from_numpy(np.abs(rand(3)) + 0.5))
            self.bn.weight.copy_(torch.from_numpy(rand(3)))
            self.bn.bias.copy_(torch.from_numpy(rand(3)))

    def forward(self, x):
        h = self.bn(x)
        return self.maxp(h) + self.avgp(h)


class TorchNorms(nn.Module):
    """InstanceNorm2d (affine) of a Conv output, GroupNorm(2, 4) of the same (Reshape [N, 2, -1] around an
    InstanceNormalization), each with random affine parameters"""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.gnorm = nn.GroupNorm(2, 4, eps=1e-3)
        with torch.no_grad():
            for m in (self.inorm, self.gnorm):
                m.weight.copy_(torch.from_numpy(rand(4)))
                m.bias.copy_(torch.from_numpy(rand(4)))

    def forward(self, x):
        h = self.conv(x)
        return self.inorm(h) + self.gnorm(h)


class TorchConv1dBn(nn.Module):
    """Conv1d with groups and dilation, BatchNorm1d on [B, C, L] (eval)"""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=2, dilation=2, groups=2)
        self.bn = nn.BatchNorm1d(6)
        with torch.no_grad():
            self.bn.running_mean.copy_(torch.from_numpy(rand(6)))
            self.bn.running_var.copy_(torch.from_numpy(np.abs(rand(6)) + 0.5))

    def forward(self, x):
        return self.bn(torch.tanh(self.conv(x)))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    torch.manual_seed(0)

    lstm_case("lstm_y_and_yh", T=5, F=4, H=6, outs=["Y", "Yh"])
    lstm_case("lstm_yh_no_bias", T=5, F=4, H=6, outs=["Yh"], bias=False)
    lstm_case("lstm_y_seq_lens", T=4, F=3, H=5, outs=["Y"], seq_lens=True)

    case("matmul_add_relu_3d", [h.make_node("MatMul", ["x", "W"], ["m"]), h.make_node("Add", ["m", "b"], ["a"]),
                                h.make_node("Relu", ["a"], ["y"])], {"x": rand(N, 5, 8)}, ["y"],
         [init("W", rand(8, 6)), init("b", rand(6))])
    case("matmul_add_bias_first", [h.make_node("MatMul", ["x", "W"], ["m"]), h.make_node("Add", ["b", "m"], ["y"])],
         {"x": rand(N, 8)}, ["y"], [init("W", rand(8, 6)), init("b", rand(1, 6))])
    case("matmul_read_twice", [h.make_node("MatMul", ["x", "W"], ["m"]), h.make_node("Add", ["m", "b"], ["y"]),
                               h.make_node("Sigmoid", ["m"], ["z"])], {"x": rand(N, 8)}, ["y", "z"],
         [init("W", rand(8, 6)), init("b", rand(6))])
    case("matmul_data_4d", [h.make_node("MatMul", ["x", "z"], ["y"])], {"x": rand(N, 2, 3, 4), "z": rand(N, 2, 4, 5)},
         ["y"], [])
    case("matmul_vector", [h.make_node("MatMul", ["x", "v"], ["y"])], {"x": rand(N, 2, 4)}, ["y"], [init("v", rand(4))])
    case("matmul_const_left", [h.make_node("MatMul", ["A", "x"], ["y"])], {"x": rand(N, 2, 4, 5)}, ["y"],
         [init("A", rand(3, 4))])
    case("matmul_transposed_input", [h.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
                                     h.make_node("MatMul", ["xt", "W"], ["y"])], {"x": rand(N, 4, 5)}, ["y"],
         [init("W", rand(4, 3))])

    case("gemm_data_c", [h.make_node("Gemm", ["a", "B", "c"], ["y"], alpha=2.0, beta=0.5, transB=1)],
         {"a": rand(N, 4), "c": rand(N, 3)}, ["y"], [init("B", rand(3, 4))])
    case("gemm_transa_of_transpose", [h.make_node("Transpose", ["a"], ["at"], perm=[1, 0]),
                                      h.make_node("Gemm", ["at", "B", "C"], ["y"], transA=1, beta=0.25)],
         {"a": rand(N, 4)}, ["y"], [init("B", rand(4, 3)), init("C", rand(1, 3))])
    case("gemm_scalar_c_tanh", [h.make_node("Gemm", ["a", "B", "C"], ["g"]), h.make_node("Tanh", ["g"], ["y"])],
         {"a": rand(N, 4)}, ["y"], [init("B", rand(4, 3)), init("C", np.float32(0.7))])

    case("pad_conv_fold", [h.make_node("Pad", ["x", "p"], ["xp"]),
                           h.make_node("Conv", ["xp", "W", "b"], ["y"], pads=[1, 1, 1, 1])],
         {"x": rand(N, 3, 8, 7)}, ["y"], [init("p", pads(0, 0, 1, 2, 0, 0, 2, 1)), init("W", rand(4, 3, 3, 3)), init("b", rand(4))])
    case("pad_conv_same_fold", [h.make_node("Pad", ["x", "p", "v"], ["xp"]),
                                h.make_node("Conv", ["xp", "W"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
         {"x": rand(N, 2, 7, 6)}, ["y"], [init("p", pads(0, 0, 0, 3, 0, 0, 1, 0)), init("v", np.float32(0)), init("W", rand(4, 2, 3, 3))])
    case("pad_conv1d_fold", [h.make_node("Pad", ["x", "p"], ["xp"]), h.make_node("Conv", ["xp", "W"], ["y"], strides=[2])],
         {"x": rand(N, 2, 9)}, ["y"], [init("p", pads(0, 0, 3, 0, 0, 1)), init("W", rand(3, 2, 3))])
    case("pad_read_twice", [h.make_node("Pad", ["x", "p"], ["xp"]), h.make_node("Conv", ["xp", "W"], ["y"]),
                            h.make_node("MaxPool", ["xp"], ["z"], kernel_shape=[2, 2])],
         {"x": rand(N, 2, 5, 5)}, ["y", "z"], [init("p", pads(0, 0, 1, 1, 0, 0, 1, 1)), init("W", rand(3, 2, 3, 3))])
    case("pad_value_maxpool", [h.make_node("Pad", ["x", "p", "v"], ["xp"], mode="constant"),
                               h.make_node("MaxPool", ["xp"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
         {"x": rand(N, 2, 5, 6)}, ["y"], [init("p", pads(0, 0, 1, 0, 0, 0, 0, 2)), init("v", np.float32(0.75))])
    case("pad_1d_value", [h.make_node("Pad", ["x", "p", "v"], ["y"])], {"x": rand(N, 3, 6)}, ["y"],
         [init("p", pads(0, 0, 2, 0, 0, 1)), init("v", np.float32(-1.5))])
    case("pad_axes_op18", [h.make_node("Pad", ["x", "p", "v", "ax"], ["y"])], {"x": rand(N, 2, 4, 4)}, ["y"],
         [init("p", pads(1, 2, 3, 0)), init("v", np.float32(2)), init("ax", pads(-1, 2))], opset=18)

    case("conv_same_lower_groups", [h.make_node("Conv", ["x", "W", "b"], ["y"], auto_pad="SAME_LOWER", strides=[2, 1], group=2)],
         {"x": rand(N, 4, 9, 8)}, ["y"], [init("W", rand(6, 2, 3, 2)), init("b", rand(6))])
    case("conv1d_same_upper", [h.make_node("Conv", ["x", "W"], ["y"], auto_pad="SAME_UPPER", strides=[2])],
         {"x": rand(N, 3, 10)}, ["y"], [init("W", rand(5, 3, 4))])
    case("conv_nhwc_input", [h.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
                             h.make_node("Conv", ["xt", "W"], ["c"], pads=[1, 0, 1, 0]), h.make_node("Relu", ["c"], ["r"]),
                             h.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 3, 1])],
         {"x": rand(N, 6, 5, 3)}, ["y"], [init("W", rand(4, 3, 3, 3))])
    case("conv_flatten_gemm", [h.make_node("Conv", ["x", "W"], ["c"]), h.make_node("Flatten", ["c"], ["f"]),
                               h.make_node("Gemm", ["f", "B", "C"], ["y"], transB=1)],
         {"x": rand(N, 2, 5, 4)}, ["y"], [init("W", rand(3, 2, 2, 2)), init("B", rand(5, 36)), init("C", rand(5))])

    case("maxpool_ceil_pads", [h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
         {"x": rand(N, 2, 8, 9)}, ["y"], [])
    case("avgpool_ceil_exclude_pad", [h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 2],
                                                  pads=[1, 0, 0, 1], ceil_mode=1)], {"x": rand(N, 2, 8, 9)}, ["y"], [])
    case("avgpool_ceil_include_pad_exact", [h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                                        pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)],
         {"x": rand(N, 2, 7, 7)}, ["y"], [])
    # the window that would start in the end padding is dropped (5 -> 3 and not 4)
    case("maxpool_ceil_drop", [h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
         {"x": rand(N, 1, 5, 5)}, ["y"], [])
    case("avgpool_ceil_drop_include_pad", [h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2],
                                                       pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)],
         {"x": rand(N, 1, 5, 5)}, ["y"], [])
    # no explicit padding: count_include_pad=1 divides the stretched last window by its cells inside the input
    case("avgpool_ceil_include_pad_unpadded", [h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                                           ceil_mode=1, count_include_pad=1)], {"x": rand(N, 2, 6, 7)}, ["y"], [])
    case("avgpool1d_include_pad", [h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3], strides=[2], pads=[1, 2],
                                               count_include_pad=1)], {"x": rand(N, 3, 9)}, ["y"], [])
    case("globalmaxpool_1d", [h.make_node("GlobalMaxPool", ["x"], ["y"])], {"x": rand(N, 3, 9)}, ["y"], [])
    case("globalavgpool_after_conv", [h.make_node("Conv", ["x", "W"], ["c"]), h.make_node("GlobalAveragePool", ["c"], ["y"])],
         {"x": rand(N, 2, 6, 5)}, ["y"], [init("W", rand(3, 2, 2, 2))])

    case("batchnorm_rank2", [h.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], epsilon=1e-3)],
         {"x": rand(N, 5)}, ["y"], bn_params(5))
    case("batchnorm_rank3", [h.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], momentum=0.8)],
         {"x": rand(N, 4, 6)}, ["y"], bn_params(4))

    torch_case("torch_linear3d", TorchLinear3d(), rand(N, 5, 8))
    torch_case("torch_lstm_y_and_h", TorchLstmBoth(), rand(N, 6, 4))
    torch_case("torch_pools_ceil_bn", TorchPools(), rand(N, 3, 9, 8))
    torch_case("torch_conv1d_bn", TorchConv1dBn(), rand(N, 4, 11))

    # the forms torch's dynamo exporter (opset 18) writes: nn.Mish as Mish; nn.Softplus() as
    # Where(x > 20, x, Softplus(x)) (x * 30: about a quarter of the values take the first branch)
    case("mish_op18", [h.make_node("Mish", ["x"], ["y"])], {"x": rand(N, 5) * 4}, ["y"], [], opset=18)
    case("softplus_threshold_op18", [h.make_node("Softplus", ["x"], ["s"]), h.make_node("Greater", ["x", "t"], ["g"]),
                                     h.make_node("Where", ["g", "x", "s"], ["y"])],
         {"x": rand(N, 6) * 30}, ["y"], [init("t", np.float32(20))], opset=18)

    # InstanceNormalization: PyTorch's InstanceNorm2d and GroupNorm, and one of rank 3 with epsilon
    torch_case("torch_instance_group_norm", TorchNorms(), rand(N, 3, 7, 6))
    case("instancenorm_rank3", [h.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=0.01)],
         {"x": rand(N, 4, 9)}, ["y"], [init("s", rand(4)), init("b", rand(4))])


if __name__ == "__main__":
    main()
