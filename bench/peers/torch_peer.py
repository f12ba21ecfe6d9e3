"""PyTorch, as users write it: nn.Sequential, torch.optim, the four-line training loop, DataLoader for epochs.

Systems:
  torch-eager    the model and torch.optim as they are
  torch-compile  `torch.compile(model)` and the optimizer step compiled too (`torch.compile(opt.step)`, as the
                 PyTorch "compiled optimizer" tutorial does); compile time is the first call, reported apart
Images are NCHW (PyTorch's layout), transposed once at load. Cross-entropy is nn.CrossEntropyLoss on logits
(the PyTorch idiom; the same function as softmax + sparse cross-entropy in the other systems).
"""
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import Case, load, serve, single_thread_env  # noqa: E402

single_thread_env()
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import workloads as W  # noqa: E402

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
torch.manual_seed(0)
# One process serves every case, each with its own model and optimizer; a user's program has one. Dynamo's
# recompile limit (8 per code object) would otherwise make later cases silently fall back to eager.
for _k in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
    if hasattr(torch._dynamo.config, _k):
        setattr(torch._dynamo.config, _k, 4096)
if hasattr(torch._dynamo.config, "fail_on_recompile_limit_hit"):
    torch._dynamo.config.fail_on_recompile_limit_hit = True  # never measure a silent fall-back to eager

SYSTEMS = {"torch-eager": False, "torch-compile": True}


def build(w):
    inp, layers = W.arch(w)
    mods, last = [], inp
    for L in layers:
        if L[0] == "dense":
            mods.append(nn.Linear(last if isinstance(last, int) else int(np.prod(last)), L[1]))
            last = L[1]
            if L[2] == "relu":
                mods.append(nn.ReLU())
            # softmax is folded into nn.CrossEntropyLoss (logits), as PyTorch users write it
        elif L[0] == "bn":
            mods.append(nn.BatchNorm1d(last, momentum=0.01, eps=1e-3))
        elif L[0] == "relu":
            mods.append(nn.ReLU())
        elif L[0] == "dropout":
            mods.append(nn.Dropout(L[1]))
        elif L[0] == "conv":
            mods.append(nn.Conv2d(last[2], L[1], L[2]))
            mods.append(nn.ReLU())
            last = (last[0] - L[2] + 1, last[1] - L[2] + 1, L[1])
        elif L[0] == "pool":
            mods.append(nn.MaxPool2d(L[1]))
            last = (last[0] // L[1], last[1] // L[1], last[2])
        elif L[0] == "flatten":
            mods.append(nn.Flatten())
            last = int(np.prod(last))
    return nn.Sequential(*mods)


def tensors(data, w, which):
    xn, yn, tn = W.DATA[w]
    if which == "test":
        x = torch.from_numpy(load(data, tn))
        y = None
    else:
        x = torch.from_numpy(load(data, xn))
        y = torch.from_numpy(load(data, yn))
        if W.LOSS[w] != "mse":
            y = y.long()
    if x.dim() == 4:
        x = x.permute(0, 3, 1, 2).contiguous()
    return x, y


def make_case(system, name, data):
    if name not in W.CASES:
        return None
    compiled = SYSTEMS[system]
    w, kind, batch = W.CASES[name]
    model = build(w)
    opt_name, lr = W.OPT[w]
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, eps=W.EPS)
    loss_fn = nn.MSELoss() if W.LOSS[w] == "mse" else nn.CrossEntropyLoss()
    fwd = torch.compile(model) if compiled else model
    if compiled:
        @torch.compile(fullgraph=False)
        def opt_step():
            opt.step()
    else:
        opt_step = opt.step

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(fwd(x), y)
        loss.backward()
        opt_step()
        return loss

    if kind == "train":
        x, y = tensors(data, w, "train")
        bs = [(x[a:b].contiguous(), y[a:b].contiguous()) for a, b in W.batches(len(x), batch)]
        it = itertools.cycle(bs)
        model.train()
        return Case(lambda: step(*next(it)), note=f"cycles {len(bs)} batches" if len(bs) > 1 else None)
    if kind == "fit":
        x, y = tensors(data, w, "train")
        loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
        model.train()

        def epoch():
            for xb, yb in loader:
                step(xb, yb)
        return Case(epoch, note="DataLoader(TensorDataset, batch_size=32, shuffle=True)")
    model.eval()
    probs = W.arch(w)[1][-1][-1] == "softmax"  # the model's output is probabilities: predict returns them
    if probs:
        fwd_logits = fwd
        fwd = lambda t: torch.softmax(fwd_logits(t), dim=-1)  # noqa: E731
    if kind == "predict":
        x, _ = tensors(data, w, "train")
        x = x[:batch].contiguous()

        def predict():
            with torch.no_grad():
                return fwd(x)
        return Case(predict)
    x, _ = tensors(data, w, "test")
    chunks = list(torch.split(x, W.PREDICT_CHUNK[w]))

    def predict_all():
        with torch.no_grad():
            return torch.cat([fwd(c) for c in chunks])
    return Case(predict_all, note=f"chunks of {W.PREDICT_CHUNK[w]}")


def info():
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.is_available()}


if __name__ == "__main__":
    serve(SYSTEMS, make_case, info)
