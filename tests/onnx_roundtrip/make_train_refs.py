#!/usr/bin/env python3
"""Writes tests/onnx_roundtrip/fixtures/NAME/ for every NAME of tests/onnx/fixtures/roundtrip but cnn_fixed: the
reference of one fine-tuning step of the PyTorch model behind NAME/model.onnx, for `nnc train` on the imported .nn.
(cnn_fixed is cnn exported with a fixed batch of 4: the same network as cnn, and x.npy holds 8 samples.)

Run from anywhere:  /work/venv-onnx/bin/python tests/onnx_roundtrip/make_train_refs.py
(torch, onnx, onnxruntime, numpy: the venv of tests/onnx/make_fixtures.py; the versions are in its docstring.)

Each folder gets
  label.npy    int32 [5]: a class index for each of the 5 samples of the fixture's x.npy (a seed from NAME);
  y_step1.npy  float32: the network's outputs on x.npy, in eval mode, after ONE step of plain SGD (lr 0.1, no
               momentum, no weight decay) on the mean cross-entropy of the 5 samples as one batch;
  ref.json     the loss of that step (before the update); val_loss, the mean cross-entropy of the 5 samples in eval
               mode after the step (what `nnc train --val` reports: the logits, where y_step1.npy holds saturated
               probabilities, as cnn's do after this step, and where a moving statistic shows); the learning rate
               and the .nn loss line.

The models are rebuilt exactly as make_fixtures.py builds them (its classes, the same seeds in the same order),
then checked against the exported file: every ONNX initializer that carries a PyTorch parameter's name must
hold the same bits, and the rebuilt network (eval mode) must give the fixture's y.npy within 1e-5.
The files live here and not beside model.onnx because make_fixtures.py deletes and rewrites roundtrip/.

What the step mirrors, so that the PyTorch step is the step nnc takes on the imported model:
- Cross-entropy from logits. For cnn, cnn_dynamo and mlp_ops, whose output is a softmax, the logits are the last
  dense layer's outputs: the .nn line is `loss sparse_categorical_crossentropy(y, label)` on the probabilities,
  which nnc computes from the logits before the softmax (docs/language.md, stable fused forms).
- BatchNorm (cnn) in training mode: batch mean and biased batch variance in the forward pass, as PyTorch's
  train() does. The moving statistics: nnc updates both with `m = momentum*m + (1-momentum)*batch` where
  momentum is the ONNX attribute (0.9; PyTorch's momentum is 1 - that), and with the *biased* batch variance,
  where PyTorch's running_var takes the unbiased one; running_var is recomputed here with the biased variance.
- LSTM (lstm): ONNX's LSTM and PyTorch's carry two biases (input and recurrent); nnc's lstm layer has one, their
  sum, so a step moves it by lr*g once where PyTorch would move each of the two by lr*g. The reference folds
  bias_hh into bias_ih and freezes bias_hh at zero: the same function, parameterised as nnc trains it.
- Dropout: mlp_ops's Dropout leaves no node in the export (eval mode), so the imported model has none; the
  reference trains with its rate set to 0. No shuffling: one batch of the 5 samples in file order.
"""

import json
import os
import sys
import zlib

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

sys.dont_write_bytecode = True   # mcu.py / make_fixtures.py are imported from the source tree: leave it clean
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "onnx", "fixtures", "roundtrip")
OUT = os.path.join(HERE, "fixtures")
sys.path.insert(0, os.path.join(ROOT, "tests", "onnx"))
import make_fixtures as mf  # noqa: E402  (its classes and randomize_batchnorm; importing it runs nothing)

LR = 0.1


SOFTMAX_OUTPUT = ("cnn", "cnn_dynamo", "mlp_ops")


def build(name):
    """the network of roundtrip/NAME, built with make_fixtures.py's classes, seeds and order"""
    if name == "mlp":
        torch.manual_seed(0)
        return mf.Mlp()
    if name in ("cnn", "cnn_dynamo"):
        gen = torch.Generator().manual_seed(13)   # make_fixtures: cnn's BatchNorm is gen's first use
        torch.manual_seed(1)
        m = mf.Cnn()
        mf.randomize_batchnorm(m.bn, gen)
        return m
    if name in ("lstm", "lstm_dynamo"):
        torch.manual_seed(2)
        return mf.Lstm()
    seeded = {"mlp_ops": (3, mf.MlpOps), "conv_misc": (4, mf.ConvMisc), "conv1d": (5, mf.Conv1dNet)}
    seed, cls = seeded[name]
    torch.manual_seed(seed)
    return cls()


def logits_of(name, m, x):
    """the values the cross-entropy takes as logits"""
    if name in ("cnn", "cnn_dynamo"):   # Cnn.forward without its final softmax
        h = m.pool(m.bn(torch.relu(m.conv(x))))
        return m.dense(h.view(h.size(0), -1))
    if name == "mlp_ops":               # MlpOps.forward without its final softmax
        h = m.drop(m.gelu(m.fc1(x)))
        h = torch.clamp(torch.sigmoid(m.fc2(h)) + torch.tanh(m.fc3(h)), -0.5, 1.25)
        return m.fc4(h * 0.5 + 1)
    return m(x)


def check_against_onnx(name, m, model, x, y):
    """the rebuilt network is the exported one: named initializers bit-equal, outputs equal to y.npy"""
    state = m.state_dict()
    same = 0
    for init in model.graph.initializer:
        if init.name in state:
            want = state[init.name].detach().numpy()
            got = numpy_helper.to_array(init)
            if got.shape != want.shape or not np.array_equal(got, want):
                raise SystemExit(f"{name}: initializer {init.name} differs from the rebuilt module's")
            same += 1
    m.eval()
    with torch.no_grad():
        err = float(np.max(np.abs(m(torch.from_numpy(x)).numpy() - y)))
    if err > 1e-5:
        raise SystemExit(f"{name}: the rebuilt network differs from y.npy by {err}")
    return same, err


def onnx_bn_momentum(model):
    """the BatchNormalization node's momentum attribute (ONNX default 0.9), which the import passes to nnc"""
    for n in model.graph.node:
        if n.op_type == "BatchNormalization":
            for a in n.attribute:
                if a.name == "momentum":
                    return a.f
            return 0.9
    return None


def one_step(name, m, model, x, labels):
    """one SGD step in training mode; returns the loss before the update"""
    if isinstance(getattr(m, "lstm", None), torch.nn.LSTM):   # one bias, as nnc's lstm layer has (docstring)
        with torch.no_grad():
            m.lstm.bias_ih_l0 += m.lstm.bias_hh_l0
            m.lstm.bias_hh_l0.zero_()
        m.lstm.bias_hh_l0.requires_grad_(False)
    bn_in = []
    old_var = None
    if getattr(m, "drop", None) is not None:   # no Dropout node in the export (docstring)
        m.drop.p = 0.0
    if getattr(m, "bn", None) is not None:
        momentum = onnx_bn_momentum(model)
        m.bn.momentum = 1.0 - float(np.float32(momentum))
        old_var = m.bn.running_var.clone()
        m.bn.register_forward_pre_hook(lambda mod, args: bn_in.append(args[0].detach()))
    m.train()
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=LR, momentum=0.0, weight_decay=0.0)
    opt.zero_grad()
    loss = F.cross_entropy(logits_of(name, m, torch.from_numpy(x)), torch.from_numpy(labels).long())
    loss.backward()
    opt.step()
    if old_var is not None:   # running_var from the biased batch variance, as nnc (and Keras) update it
        biased = bn_in[0].var(dim=(0, 2, 3), unbiased=False)
        with torch.no_grad():
            m.bn.running_var.copy_((1 - m.bn.momentum) * old_var + m.bn.momentum * biased)
    return float(loss.detach())


def make(name):
    src = os.path.join(FIXTURES, name)
    x = np.load(os.path.join(src, "x.npy"))
    y = np.load(os.path.join(src, "y.npy"))
    model = onnx.load(os.path.join(src, "model.onnx"))
    m = build(name)
    same, err = check_against_onnx(name, m, model, x, y)
    classes = y.shape[-1]
    rng = np.random.default_rng(zlib.crc32(("labels:" + name).encode()))
    labels = rng.integers(0, classes, size=len(x)).astype(np.int32)
    loss = one_step(name, m, model, x, labels)
    m.eval()
    with torch.no_grad():
        y1 = m(torch.from_numpy(x)).numpy().astype(np.float32)
        val_loss = float(F.cross_entropy(logits_of(name, m, torch.from_numpy(x)), torch.from_numpy(labels).long()))
    moved = float(np.max(np.abs(y1 - y) / (1e-4 + 1e-3 * np.abs(y))))
    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "label.npy"), labels)
    np.save(os.path.join(out, "y_step1.npy"), y1)
    ref = {"loss": loss, "val_loss": val_loss, "lr": LR, "batch": len(x), "labels": labels.tolist(),
           "loss_line": ("loss sparse_categorical_crossentropy(y, label)" if name in SOFTMAX_OUTPUT else
                         "loss sparse_categorical_crossentropy(y, label, from_logits=true)"),
           "torch": torch.__version__.split("+")[0]}
    with open(os.path.join(out, "ref.json"), "w") as f:
        f.write("{\n" + ",\n".join(f' "{k}": {json.dumps(ref[k])}' for k in sorted(ref)) + "\n}\n")
    # moved: how many times the one-step tolerance (atol 1e-4, rtol 1e-3) the step moved the worst output,
    # so that a train step that changed nothing would fail the test
    print(f"{name}: {same} initializers bit-equal, |rebuilt - y.npy| {err:.1e}, labels {labels.tolist()}, "
          f"loss {loss:.6f}, after the step {val_loss:.6f}, step moved the outputs by up to {moved:.0f}x the tolerance")
    if moved < 10:
        raise SystemExit(f"{name}: one step hardly moves the outputs; the test could not tell it from none")


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for name in ("mlp", "cnn", "lstm", "cnn_dynamo", "lstm_dynamo", "mlp_ops", "conv_misc", "conv1d"):
        make(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
