#!/usr/bin/env python3
"""make_fixtures.py: the whole-model training tests of nnc (docs/cli.md `nnc train`, docs/language.md layers, losses and optimizers, docs/kernels.md numerics).

    python3 tests/train/make_fixtures.py        (needs NumPy and PyTorch; run from anywhere)

Each case is a small .nn model, its initial weights, its data, and the weights PyTorch reaches after K
optimizer steps taken the way `nnc train --steps K --no-shuffle --batch B` takes them: batches in file
order, a partial last batch is a step of its own, and after the last batch the next epoch starts again at
sample 0. The reference is written with explicit tensor ops by the letter of docs/language.md, in float64, from the
float32 initial values:
  - dense weights are [in, out] (torch.nn.Linear's transpose), conv weights HWIO, NHWC activations, and
    'same' padding as TensorFlow (the odd pixel at the bottom/right);
  - batchnorm normalizes over every axis but the last with the biased batch variance and updates
    moving = momentum*moving + (1-momentum)*batch for both statistics (Keras, not torch.nn.BatchNorm);
  - lstm is written out gate by gate (i, f, g, o; one bias) and checked against torch.nn.LSTM;
  - a sigmoid/softmax feeding a cross-entropy is the fused, stable form on its logits;
  - the optimizer update is the formula of docs/language.md §6.9, and the whole run is repeated with torch.optim
    (SGD, Adam, AdamW, RMSprop with eps given explicitly, alpha = rho) and must agree to 1e-10.
Before a case is written two more checks run: the same reference in float32 must agree with the float64
one to a tenth of the tolerance (else float32 rounding could decide the test: the case is ill-conditioned),
and, where a case names 'teeth', the run with a hyper-parameter changed (momentum off, no weight decay, ...)
or with a plausible mistake (an unfused, clipped cross-entropy) must differ by more than 3 tolerances (else
the case could not see that mistake).

For every case it writes tests/train/cases/<case>/:
    model.nn               the model
    init.safetensors       the initial parameters and state (e.g. batchnorm moving statistics)
    <name>.npy             one file per input and target (f32 as <f4, i32 as <i4)
    expected.safetensors   after K steps: every parameter and state tensor, the optimizer state
                           ("opt.m.P", "opt.v.P", "opt.s.P", "opt.step") and the position
                           ("train.epoch" epochs completed, "train.batch" batches into the next one)
    args                   lines `batch B`, `steps K`, `data NAME FILE` for run_case.sh
It also writes tests/train/cli/, the models and data files that cli.sh uses.

Output is deterministic (each case seeds its own generator from its name); cases/ and cli/ are rebuilt from
scratch, so rerunning the script leaves git clean and a removed case disappears.
What it does not do: run nnc (run_case.sh, cli.sh do), or test dropout numerically (it is random).
"""
import json
import os
import shutil
import struct
import sys
import textwrap
import zlib

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "cases")
CLI = os.path.join(HERE, "cli")
f32, i32, f64 = np.float32, np.int32, np.float64
RTOL, ATOL = 1e-3, 1e-4  # docs/kernels.md numerics, one training step
torch.use_deterministic_algorithms(True)

# ---- file writers ------------------------------------------------------------------------------------


def st_write(path, tensors):
    """safetensors: u64 LE header length, JSON header (padded with spaces to 8 bytes), raw LE data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])  # (ascontiguousarray would make a scalar 1-d)
        dtype = {np.dtype(f32): ("F32", "<f4"), np.dtype(i32): ("I32", "<i4")}[arr.dtype]
        data = arr.astype(dtype[1]).tobytes()
        header[name] = {"dtype": dtype[0], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def npy_write(path, arr):
    np.save(path, np.ascontiguousarray(arr), allow_pickle=False)


# ---- the reference's building blocks (torch tensors in, torch tensors out; NHWC, nnc layouts) ----------


def dense(x, P, name, act=None):
    y = x @ P[name + ".weight"]
    if name + ".bias" in P:
        y = y + P[name + ".bias"]
    return act(y) if act else y


def tf_pads(n, k, s, same):
    """TensorFlow's padding on one axis: (before, after); 'same' puts the odd pixel after."""
    if not same:
        return 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv2d(x, P, name, stride=1, same=False, act=None, groups=1, dilation=1, pads=None):
    """x [B,H,W,C] * weight [kh,kw,C/groups,F] (HWIO) -> [B,H',W',F], by torch on explicitly padded NCHW
    ('same' over the dilated extent; pads: explicit [top, bottom, left, right])."""
    w = P[name + ".weight"]
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    dl = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    pt, pb = tf_pads(x.shape[1], (w.shape[0] - 1) * dl[0] + 1, s[0], same)
    pl, pr = tf_pads(x.shape[2], (w.shape[1] - 1) * dl[1] + 1, s[1], same)
    if pads is not None:
        pt, pb, pl, pr = pads
    xt = F.pad(x.permute(0, 3, 1, 2), (pl, pr, pt, pb))
    y = F.conv2d(xt, w.permute(3, 2, 0, 1), P.get(name + ".bias"), stride=s, dilation=dl, groups=groups)
    y = y.permute(0, 2, 3, 1)
    return act(y) if act else y


def pool2d(x, kind, pool, stride=None, same=False):
    """NHWC pooling; 'same' pads like TensorFlow, and the padding takes no part: max pads with -inf, avg
    divides by the number of real pixels in the window"""
    stride = stride or pool
    pt, pb = tf_pads(x.shape[1], pool, stride, same)
    pl, pr = tf_pads(x.shape[2], pool, stride, same)
    xt = x.permute(0, 3, 1, 2)
    if kind == "max":
        y = F.max_pool2d(F.pad(xt, (pl, pr, pt, pb), value=-float("inf")), pool, stride)
    else:
        ones = F.pad(torch.ones_like(xt[:1, :1]), (pl, pr, pt, pb))
        y = F.avg_pool2d(F.pad(xt, (pl, pr, pt, pb)), pool, stride) / F.avg_pool2d(ones, pool, stride)
    return y.permute(0, 2, 3, 1)


def flatten(x):
    return x.reshape(x.shape[0], -1)  # NHWC order: the layout nnc flattens


def batchnorm(x, P, S, name, momentum=0.99, eps=1e-3):
    """Training mode: batch statistics over every axis but the last, biased variance; moving statistics
    updated Keras-style with the biased variance (docs/language.md §6.5)."""
    axes = tuple(range(x.dim() - 1))
    mean = x.mean(dim=axes)
    var = ((x - mean) ** 2).mean(dim=axes)
    mm, mv = name + ".moving_mean", name + ".moving_var"
    S[mm] = momentum * S[mm] + (1 - momentum) * mean.detach()
    S[mv] = momentum * S[mv] + (1 - momentum) * var.detach()
    return (x - mean) / torch.sqrt(var + eps) * P[name + ".gamma"] + P[name + ".beta"]


def lstm(x, P, name, return_sequences=False):
    """x [B,T,F]; weight [F,4u], recurrent [u,4u], bias [4u]; gates i, f, g, o; h0 = c0 = 0."""
    w, r, b = P[name + ".weight"], P[name + ".recurrent"], P[name + ".bias"]
    u = r.shape[0]
    h = torch.zeros(x.shape[0], u, dtype=x.dtype)
    c = torch.zeros_like(h)
    seq = []
    for t in range(x.shape[1]):
        z = x[:, t] @ w + h @ r + b
        i, f, g, o = z[:, :u], z[:, u:2 * u], z[:, 2 * u:3 * u], z[:, 3 * u:]
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        seq.append(h)
    return torch.stack(seq, 1) if return_sequences else h


def leaky(x, alpha=0.01):
    return torch.where(x > 0, x, alpha * x)


def mse(p, t):
    return ((p - t) ** 2).mean()


def mae(p, t):
    return (p - t).abs().mean()


def bce_logits(z, t):
    """binary cross-entropy on logits (stable): mean over every element"""
    return (torch.clamp(z, min=0) - z * t + torch.log1p(torch.exp(-z.abs()))).mean()


def cce_logits(z, t):
    return -(t * torch.log_softmax(z, -1)).sum(-1).mean()


def scce_logits(z, label):
    return -torch.log_softmax(z, -1).gather(-1, label.long().unsqueeze(-1)).mean()


def check_blocks():
    """The hand-written blocks against torch's own layers, once, in float64."""
    g = np.random.default_rng(1)
    T = lambda a: torch.from_numpy(np.asarray(a, f64))
    x = T(g.standard_normal((3, 5, 4)))
    P = {"l.weight": T(g.standard_normal((4, 24)) * .3), "l.recurrent": T(g.standard_normal((6, 24)) * .3),
         "l.bias": T(g.standard_normal(24) * .3)}
    m = torch.nn.LSTM(4, 6, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        m.weight_ih_l0.copy_(P["l.weight"].T)
        m.weight_hh_l0.copy_(P["l.recurrent"].T)
        m.bias_ih_l0.copy_(P["l.bias"])
        m.bias_hh_l0.zero_()
        assert torch.allclose(m(x)[0], lstm(x, P, "l", True), rtol=1e-12, atol=1e-12)
    x = T(g.standard_normal((4, 3, 3, 5)))
    P = {"b.gamma": T(g.uniform(.5, 1.5, 5)), "b.beta": T(g.standard_normal(5))}
    S = {"b.moving_mean": T(g.standard_normal(5)), "b.moving_var": T(g.uniform(.5, 1.5, 5))}
    rm, rv = S["b.moving_mean"].clone(), S["b.moving_var"].clone()
    y = batchnorm(x, P, S, "b", momentum=0.9, eps=1e-3)
    xt = x.reshape(-1, 5)
    yt = F.batch_norm(xt, rm, rv, P["b.gamma"], P["b.beta"], training=True, momentum=0.1, eps=1e-3)
    n = xt.shape[0]
    assert torch.allclose(y.reshape(-1, 5), yt, rtol=1e-12, atol=1e-12)
    assert torch.allclose(S["b.moving_mean"], rm, rtol=1e-12, atol=1e-12)
    # torch's running_var takes the unbiased variance: undo that to compare with the Keras rule
    keras_var = rv - 0.1 * xt.var(0) + 0.1 * xt.var(0) * (n - 1) / n
    assert torch.allclose(S["b.moving_var"], keras_var, rtol=1e-12, atol=1e-12)
    z, t = T(g.standard_normal((6, 3)) * 3), T(g.integers(0, 2, (6, 3)))
    assert torch.allclose(bce_logits(z, t), F.binary_cross_entropy_with_logits(z, t), rtol=1e-12)
    lab = torch.from_numpy(g.integers(0, 3, 6))
    assert torch.allclose(scce_logits(z, lab), F.cross_entropy(z, lab), rtol=1e-12)
    assert torch.allclose(cce_logits(z, F.one_hot(lab, 3).double()), F.cross_entropy(z, lab), rtol=1e-12)
    x = T(g.standard_normal((2, 6, 4, 3)))
    for kind in ("max", "avg"):  # 'same' pooling: rows 6 -> 3 pad 0/1, columns 4 -> 2 pad 0/1 (windows 3, stride 2)
        want = np.zeros((2, 3, 2, 3))
        for i in range(3):
            for j in range(2):
                win = x.numpy()[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
                want[:, i, j] = win.max((1, 2)) if kind == "max" else win.mean((1, 2))
        assert np.allclose(pool2d(x, kind, 3, 2, same=True).numpy(), want, rtol=1e-12, atol=1e-12)
    x = T(g.standard_normal((2, 7, 7, 3)))
    P = {"c.weight": T(g.standard_normal((3, 2, 3, 4)))}
    y = conv2d(x, P, "c", stride=2, same=True)  # 7 -> 4: rows pad 1/1, columns pad 0/1 (the odd one after)
    xp = np.pad(x.numpy(), ((0, 0), (1, 1), (0, 1), (0, 0)))
    want = np.zeros((2, 4, 4, 4))
    for i in range(4):
        for j in range(4):
            want[:, i, j] = np.tensordot(xp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 2], P["c.weight"].numpy(), 3)
    assert np.allclose(y.numpy(), want, rtol=1e-12, atol=1e-12)


# ---- optimizers: docs/language.md §6.9 by hand, and torch.optim as a second reference -------------------------------


class SpecOpt:
    """The update of docs/language.md §6.9, written out; state named as nnc saves it."""

    def __init__(self, kind, hp, names):
        self.kind, self.hp, self.t = kind, hp, 0
        self.state = {}
        prefixes = {"sgd": ["v"] if hp.get("momentum", 0) else [], "adam": ["m", "v"], "adamw": ["m", "v"],
                    "rmsprop": ["s"]}[kind]
        self.prefixes = prefixes
        self.names = names

    def step(self, P, grads):
        self.t += 1
        hp, t = self.hp, self.t
        for name in self.names:
            p, g = P[name], grads[name]
            st = lambda k: self.state.get(f"opt.{k}.{name}", torch.zeros_like(p))
            if self.kind == "sgd":
                g = g + hp.get("weight_decay", 0) * p
                mom = hp.get("momentum", 0)
                if mom:
                    v = mom * st("v") + g
                    self.state[f"opt.v.{name}"] = v
                    upd = g + mom * v if hp.get("nesterov") else v
                else:
                    upd = g
                new = p - hp["lr"] * upd
            elif self.kind in ("adam", "adamw"):
                b1, b2, eps = hp.get("beta1", 0.9), hp.get("beta2", 0.999), hp.get("epsilon", 1e-7)
                m = b1 * st("m") + (1 - b1) * g
                v = b2 * st("v") + (1 - b2) * g * g
                self.state[f"opt.m.{name}"], self.state[f"opt.v.{name}"] = m, v
                new = p - hp["lr"] * (m / (1 - b1 ** t)) / (torch.sqrt(v / (1 - b2 ** t)) + eps)
                if self.kind == "adamw":
                    new = new - hp["lr"] * hp.get("weight_decay", 0.01) * p
            else:
                rho, eps = hp.get("rho", 0.9), hp.get("epsilon", 1e-7)
                s = rho * st("s") + (1 - rho) * g * g
                self.state[f"opt.s.{name}"] = s
                new = p - hp["lr"] * g / (torch.sqrt(s) + eps)
            P[name] = new.detach().requires_grad_(True)


def torch_optim(kind, hp, params):
    if kind == "sgd":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp.get("momentum", 0), nesterov=hp.get("nesterov", False),
                               weight_decay=hp.get("weight_decay", 0))
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        extra = {"weight_decay": hp.get("weight_decay", 0.01)} if kind == "adamw" else {"weight_decay": 0}
        return cls(params, lr=hp["lr"], betas=(hp.get("beta1", 0.9), hp.get("beta2", 0.999)),
                   eps=hp.get("epsilon", 1e-7), **extra)
    return torch.optim.RMSprop(params, lr=hp["lr"], alpha=hp.get("rho", 0.9), eps=hp.get("epsilon", 1e-7))


# ---- a case and its reference run ------------------------------------------------------------------------


class Case:
    def __init__(self, name, nn, params, data, forward, opt, batch, steps, state=None, frozen=(), teeth=()):
        self.name, self.nn, self.params, self.data, self.forward = name, nn, params, data, forward
        self.kind, self.hp = opt
        self.batch, self.steps, self.state, self.frozen, self.teeth = batch, steps, state or {}, set(frozen), teeth
        self.count = len(next(iter(data.values())))
        assert all(len(a) == self.count for a in data.values())

    def batches(self):
        """(from, to) of each step: file order, partial last batch, wrap to sample 0 after it."""
        at = 0
        for _ in range(self.steps):
            end = min(at + self.batch, self.count)
            yield at, end
            at = 0 if end == self.count else end

    def run(self, dtype, hp=None, use_torch_optim=False, forward=None):
        """K steps from the initial values; returns every parameter, state and optimizer tensor as float64."""
        hp = hp or self.hp
        forward = forward or self.forward
        T = lambda a: torch.from_numpy(np.asarray(a)).to(dtype)
        P = {k: T(v).requires_grad_(k not in self.frozen) for k, v in self.params.items()}
        S = {k: T(v) for k, v in self.state.items()}
        train = [k for k in sorted(P) if k not in self.frozen]
        opt = torch_optim(self.kind, hp, [P[k] for k in train]) if use_torch_optim else SpecOpt(self.kind, hp, train)
        for lo, hi in self.batches():
            D = {k: torch.from_numpy(v[lo:hi]) if v.dtype == i32 else T(v[lo:hi]) for k, v in self.data.items()}
            loss = forward(P, S, D)
            grads = torch.autograd.grad(loss, [P[k] for k in train])
            if use_torch_optim:
                for k, g in zip(train, grads):
                    P[k].grad = g
                opt.step()
            else:
                opt.step(P, dict(zip(train, grads)))
        out = {k: v.detach().to(torch.float64).numpy() for k, v in {**P, **S}.items()}
        if not use_torch_optim:
            out.update({k: v.detach().to(torch.float64).numpy() for k, v in opt.state.items()})
        return out

    def expected(self):
        ref = self.run(torch.float64)
        alt = self.run(torch.float64, use_torch_optim=True)
        for k, v in alt.items():
            assert np.allclose(v, ref[k], rtol=1e-10, atol=1e-12), f"{self.name}: torch.optim disagrees on {k}"
        r32 = self.run(torch.float32)
        cond = max(np.max(np.abs(r32[k] - v) / (ATOL + RTOL * np.abs(v))) for k, v in ref.items())
        assert cond < 0.1, f"{self.name}: ill-conditioned: float32 is {cond:.2f} of the tolerance off float64"
        for change in self.teeth:  # a changed hyper-parameter, or another forward function
            other = self.run(torch.float64, hp={**self.hp, **change}) if isinstance(change, dict) else \
                self.run(torch.float64, forward=change)
            seen = max(np.max(np.abs(other[k] - ref[k]) / (ATOL + RTOL * np.abs(ref[k]))) for k in self.params)
            assert seen > 3, f"{self.name}: blind to {change}: changes the result by only {seen:.2f} of the tolerance"
        for k in self.frozen:
            assert np.array_equal(ref[k], self.params[k].astype(f64)), k
        nb = -(-self.count // self.batch)
        out = {k: v.astype(f32) for k, v in ref.items()}
        out["opt.step"] = np.array(self.steps, i32)
        out["train.epoch"] = np.array(self.steps // nb, i32)
        out["train.batch"] = np.array(self.steps % nb, i32)
        return out, cond

    def write(self):
        d = os.path.join(OUT, self.name)
        os.makedirs(d)
        expected, cond = self.expected()
        with open(os.path.join(d, "model.nn"), "w") as f:
            f.write(self.nn)
        st_write(os.path.join(d, "init.safetensors"), {**self.params, **self.state})
        st_write(os.path.join(d, "expected.safetensors"), expected)
        lines = [f"batch {self.batch}", f"steps {self.steps}"]
        for k, v in self.data.items():
            npy_write(os.path.join(d, k + ".npy"), v)
            lines.append(f"data {k} {k}.npy")
        with open(os.path.join(d, "args"), "w") as f:
            f.write("\n".join(lines) + "\n")
        return cond


class Gen:
    """A case's seeded values."""

    def __init__(self, name):
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))

    def normal(self, *shape, scale=1.0):
        return (self.rng.standard_normal(shape) * scale).astype(f32)

    def uniform(self, lo, hi, *shape):
        return self.rng.uniform(lo, hi, shape).astype(f32)

    def ints(self, lo, hi, *shape):
        return self.rng.integers(lo, hi, shape).astype(i32)

    def kernel(self, *shape):
        """glorot-uniform-like: fan_in and fan_out from the last two axes and the receptive field"""
        rf = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        lim = np.sqrt(6 / (shape[-2] * rf + shape[-1] * rf))
        return self.uniform(-lim, lim, *shape)

    def dense(self, P, name, fan_in, units, bias=True):
        P[name + ".weight"] = self.kernel(fan_in, units)
        if bias:
            P[name + ".bias"] = self.normal(units, scale=0.1)

    def onehot(self, n, c):
        return np.eye(c, dtype=f32)[self.ints(0, c, n)]


def model(name, body, defs=""):
    return textwrap.dedent(defs).strip() + ("\n\n" if defs.strip() else "") + \
        f"model {name} {{\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n}\n"


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def opt_text(kind, hp):
    args = ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in hp.items())
    return f"{kind}({args})"


# ---- optimizers on one MLP: 40 samples, batch 16, 3 steps (16, 16, 8 samples) ----------------------------


def mlp_case(name, kind, hp, teeth=()):
    g = Gen(name)
    P = {}
    g.dense(P, "h", 6, 12)
    g.dense(P, "pred", 12, 2)
    x = g.normal(40, 6)
    y = (np.tanh(x[:, :2] * 1.5) + 0.3 * x[:, 2:4] ** 2).astype(f32)
    nn = model(name, f"""
        # optimizer test: {kind}
        input  x: f32[6]
        target y: f32[2]

        h = dense(x, 12, activation=tanh)
        output pred = dense(h, 2)

        loss mse(pred, y)
        optimizer {opt_text(kind, hp)}
    """)
    fwd = lambda P, S, D: mse(dense(dense(D["x"], P, "h", torch.tanh), P, "pred"), D["y"])
    return Case(name, nn, P, {"x": x, "y": y}, fwd, (kind, hp), batch=16, steps=3, teeth=teeth)


@case
def opt_sgd():
    return mlp_case("opt_sgd", "sgd", {"lr": 0.1})


@case
def opt_sgd_momentum():
    return mlp_case("opt_sgd_momentum", "sgd", {"lr": 0.05, "momentum": 0.9}, teeth=[{"momentum": 0}])


@case
def opt_sgd_nesterov_wd():
    return mlp_case("opt_sgd_nesterov_wd", "sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1},
                    teeth=[{"nesterov": False}, {"weight_decay": 0}])


@case
def opt_adam():
    return mlp_case("opt_adam", "adam", {"lr": 0.01}, teeth=[{"beta1": 0.5}, {"beta2": 0.9}])


@case
def opt_adam_hyper():
    return mlp_case("opt_adam_hyper", "adam", {"lr": 0.02, "beta1": 0.6, "beta2": 0.9, "epsilon": 0.01},
                    teeth=[{"beta1": 0.9}, {"beta2": 0.999}, {"epsilon": 1e-7}])


@case
def opt_adamw():
    return mlp_case("opt_adamw", "adamw", {"lr": 0.01, "beta1": 0.8, "beta2": 0.95, "weight_decay": 0.2},
                    teeth=[{"weight_decay": 0}])


@case
def opt_adamw_default_wd():
    return mlp_case("opt_adamw_default_wd", "adamw", {"lr": 0.2}, teeth=[{"weight_decay": 0}])


@case
def opt_rmsprop():
    return mlp_case("opt_rmsprop", "rmsprop", {"lr": 0.01, "rho": 0.8}, teeth=[{"rho": 0.9}])


@case
def opt_rmsprop_default():
    return mlp_case("opt_rmsprop_default", "rmsprop", {"lr": 0.005})


# ---- losses: plain SGD, so a wrong gradient shows at its own scale ----------------------------------------


def loss_case(name, nclass, target, head, loss_nn, loss_fn, data_y, metric="", lr=0.5):
    """x f32[6] -> dense 12 tanh -> head (nclass units); 30 samples, batch 12, 3 steps (12, 12, 6)."""
    g = Gen(name)
    P = {}
    g.dense(P, "h", 6, 12)
    g.dense(P, "out", 12, nclass)
    x = g.normal(30, 6)
    y = data_y(g, x)
    nn = model(name, f"""
        input  x: f32[6]
        target y: {target}

        h = dense(x, 12, activation=tanh)
        {head}

        loss {loss_nn}
        {metric}
        optimizer sgd(lr={lr})
    """)
    fwd = lambda P, S, D: loss_fn(dense(dense(D["x"], P, "h", torch.tanh), P, "out"), D["y"])
    return Case(name, nn, P, {"x": x, "y": y}, fwd, ("sgd", {"lr": lr}), batch=12, steps=3)


@case
def loss_mse():
    return loss_case("loss_mse", 3, "f32[3]", "output out = dense(h, 3)", "mse(out, y)", mse,
                     lambda g, x: g.normal(len(x), 3))


@case
def loss_mae():
    return loss_case("loss_mae", 3, "f32[3]", "output out = dense(h, 3)", "mae(out, y)", mae,
                     lambda g, x: g.normal(len(x), 3), metric="metric mae = mae(out, y)")


@case
def loss_bce_sigmoid():
    return loss_case("loss_bce_sigmoid", 1, "f32[1]", "output out = dense(h, 1, activation=sigmoid)",
                     "binary_crossentropy(out, y)", bce_logits,
                     lambda g, x: (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype(f32), metric="metric acc = accuracy(out, y)")


@case
def loss_bce_logits():
    return loss_case("loss_bce_logits", 3, "f32[3]", "output out = dense(h, 3)",
                     "binary_crossentropy(out, y, from_logits=true)", bce_logits,
                     lambda g, x: g.ints(0, 2, len(x), 3).astype(f32))


@case
def loss_cce_softmax():
    return loss_case("loss_cce_softmax", 4, "f32[4]", "output out = dense(h, 4, activation=softmax)",
                     "categorical_crossentropy(out, y)", cce_logits, lambda g, x: g.onehot(len(x), 4),
                     metric="metric acc = accuracy(out, y)")


@case
def loss_cce_logits():
    return loss_case("loss_cce_logits", 4, "f32[4]", "output out = dense(h, 4)",
                     "categorical_crossentropy(out, y, from_logits=true)", cce_logits, lambda g, x: g.onehot(len(x), 4))


@case
def loss_scce_softmax():
    # the softmax as an operator (not an activation) must fuse with the loss too
    return loss_case("loss_scce_softmax", 4, "i32[]", "out = dense(h, 4)\n        output probs = softmax(out)",
                     "sparse_categorical_crossentropy(probs, y)", scce_logits, lambda g, x: g.ints(0, 4, len(x)),
                     metric="metric acc = accuracy(probs, y)")


@case
def loss_scce_activation():
    return loss_case("loss_scce_activation", 4, "i32[]", "output out = dense(h, 4, activation=softmax)",
                     "sparse_categorical_crossentropy(out, y)", scce_logits, lambda g, x: g.ints(0, 4, len(x)))


@case
def loss_scce_logits():
    return loss_case("loss_scce_logits", 4, "i32[]", "output out = dense(h, 4)",
                     "sparse_categorical_crossentropy(out, y, from_logits=true)", scce_logits,
                     lambda g, x: g.ints(0, 4, len(x)), metric="metric acc = accuracy(out, y)")


def clipped_bce(z, t):
    """Keras's unfused form in float32: p clipped to [1e-7, 1 - 1e-7]; what a missed fusion gives"""
    p = torch.clamp(torch.sigmoid(z.float()), 1e-7, 1 - 1e-7).double()
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()


def clipped_cce(z, t):
    p = torch.clamp(torch.softmax(z.float(), -1), 1e-7, 1 - 1e-7).double()
    return -(t * torch.log(p)).sum(-1).mean()


def clipped_scce(z, label):
    return clipped_cce(z, F.one_hot(label.long(), z.shape[-1]).double())


def saturated_case(name, head, loss_nn, loss_fn, clipped_fn, nclass, target, data_y):
    """Logits of +-20..60: the sigmoid/softmax saturates in float32 (p = 1 or 0 exactly), so only the fused
    form (docs/language.md §6.6) gives the right loss and gradient; a clipped log(p) would give a zero gradient."""
    g = Gen(name)
    P = {"out.weight": g.normal(4, nclass, scale=20), "out.bias": g.normal(nclass)}
    x = g.normal(24, 4, scale=2)
    y = data_y(g, x)
    nn = model(name, f"""
        input  x: f32[4]
        target y: {target}

        {head}

        loss {loss_nn}
        optimizer sgd(lr=0.01)
    """)
    fwd = lambda P, S, D: loss_fn(dense(D["x"], P, "out"), D["y"])
    unfused = lambda P, S, D: clipped_fn(dense(D["x"], P, "out"), D["y"])
    c = Case(name, nn, P, {"x": x, "y": y}, fwd, ("sgd", {"lr": 0.01}), batch=8, steps=3, teeth=[unfused])
    z = x @ P["out.weight"] + P["out.bias"]
    spread = np.abs(z[:, 0]) if nclass == 1 else np.ptp(z, axis=1)
    assert np.mean(spread > 20) > 0.3, name  # a good part of the samples saturate
    return c


@case
def loss_bce_saturated():
    # the sigmoid as an operator, and targets opposite to the confident prediction on most samples
    return saturated_case("loss_bce_saturated", "out = dense(x, 1)\n        output p = sigmoid(out)",
                          "binary_crossentropy(p, y)", bce_logits, clipped_bce, 1, "f32[1]",
                          lambda g, x: g.ints(0, 2, len(x), 1).astype(f32))


@case
def loss_scce_saturated():
    return saturated_case("loss_scce_saturated", "output out = dense(x, 5, activation=softmax)",
                          "sparse_categorical_crossentropy(out, y)", scce_logits, clipped_scce, 5, "i32[]",
                          lambda g, x: g.ints(0, 5, len(x)))


@case
def loss_cce_saturated():
    return saturated_case("loss_cce_saturated", "output out = dense(x, 5, activation=softmax)",
                          "categorical_crossentropy(out, y)", cce_logits, clipped_cce, 5, "f32[5]",
                          lambda g, x: g.onehot(len(x), 5))


# ---- layers -------------------------------------------------------------------------------------------------


@case
def cnn():
    name = "cnn"
    g = Gen(name)
    P = {"c1.weight": g.kernel(3, 3, 2, 4), "c1.bias": g.normal(4, scale=0.1),
         "c2.weight": g.kernel(2, 3, 4, 6),
         "c3.weight": g.kernel(3, 3, 2, 3), "c3.bias": g.normal(3, scale=0.1)}
    g.dense(P, "probs", 36, 5)
    x = g.normal(24, 10, 10, 2)
    y = g.ints(0, 5, 24)
    nn = model(name, """
        input  img: f32[10, 10, 2]
        target label: i32[]

        c1 = conv2d(img, 4, 3, stride=2, padding=same, activation=relu)       # [5, 5, 4]: pads 0 / 1
        c2 = conv2d(c1, 6, [2, 3], padding=same, use_bias=false, activation=tanh) # [5, 5, 6]
        m = maxpool2d(c2, 3, stride=2)                                          # [2, 2, 6]
        c3 = conv2d(img, 3, 3, stride=2)                                        # valid: [4, 4, 3]
        a = avgpool2d(c3, 3, stride=2, padding=same)                            # [2, 2, 3]: pads 0 / 1
        f = concat(flatten(m), flatten(a))                                      # [36]
        output probs = dense(f, 5, activation=softmax)

        loss sparse_categorical_crossentropy(probs, label)
        metric accuracy = accuracy(probs, label)
        optimizer sgd(lr=0.1, momentum=0.9)
    """)

    def fwd(P, S, D):
        c1 = conv2d(D["img"], P, "c1", stride=2, same=True, act=torch.relu)
        c2 = conv2d(c1, P, "c2", same=True, act=torch.tanh)
        m = pool2d(c2, "max", 3, 2)
        a = pool2d(conv2d(D["img"], P, "c3", stride=2), "avg", 3, 2, same=True)
        return scce_logits(dense(torch.cat([flatten(m), flatten(a)], -1), P, "probs"), D["label"])
    return Case(name, nn, P, {"img": x, "label": y}, fwd, ("sgd", {"lr": 0.1, "momentum": 0.9}), batch=8, steps=3)


@case
def cnn_grouped():
    # a MobileNet-like stack: grouped, depthwise at stride 2, pointwise, then depthwise with 2 filters per
    # channel, dilated and explicitly padded
    name = "cnn_grouped"
    g = Gen(name)
    P = {"c1.weight": g.kernel(3, 3, 2, 8), "c1.bias": g.normal(8, scale=0.1),
         "d1.weight": g.kernel(3, 3, 1, 8), "d1.bias": g.normal(8, scale=0.1),
         "p1.weight": g.kernel(1, 1, 8, 6), "p1.bias": g.normal(6, scale=0.1),
         "d2.weight": g.kernel(3, 3, 1, 12)}
    g.dense(P, "probs", 108, 4)
    x = g.normal(20, 9, 9, 4)
    y = g.ints(0, 4, 20)
    nn = model(name, """
        input  img: f32[9, 9, 4]
        target label: i32[]

        c1 = conv2d(img, 8, 3, padding=same, groups=2, activation=relu)            # [9, 9, 8]
        d1 = conv2d(c1, 8, 3, stride=2, padding=same, groups=8, activation=relu)   # depthwise: [5, 5, 8]
        p1 = conv2d(d1, 6, 1)                                                      # pointwise: [5, 5, 6]
        d2 = conv2d(p1, 12, 3, groups=6, dilation=2, padding=[1, 1, 2, 0], use_bias=false, activation=tanh) # [3, 3, 12]
        output probs = dense(flatten(d2), 4, activation=softmax)

        loss sparse_categorical_crossentropy(probs, label)
        optimizer adam(lr=0.01)
    """)

    def fwd(P, S, D):
        c1 = conv2d(D["img"], P, "c1", same=True, act=torch.relu, groups=2)
        d1 = conv2d(c1, P, "d1", stride=2, same=True, act=torch.relu, groups=8)
        d2 = conv2d(conv2d(d1, P, "p1"), P, "d2", act=torch.tanh, groups=6, dilation=2, pads=(1, 1, 2, 0))
        return scce_logits(dense(flatten(d2), P, "probs"), D["label"])
    return Case(name, nn, P, {"img": x, "label": y}, fwd, ("adam", {"lr": 0.01}), batch=8, steps=3)

def bn_state(g, S, name, n):
    S[name + ".moving_mean"] = g.normal(n, scale=0.3)
    S[name + ".moving_var"] = g.uniform(0.5, 1.5, n)


def bn_params(g, P, name, n):
    P[name + ".gamma"] = g.uniform(0.8, 1.2, n)
    P[name + ".beta"] = g.normal(n, scale=0.1)


@case
def batchnorm_mlp():
    name = "batchnorm_mlp"
    g = Gen(name)
    P, S = {}, {}
    g.dense(P, "h1.d", 8, 10)
    bn_params(g, P, "h1.bn", 10)
    bn_state(g, S, "h1.bn", 10)
    g.dense(P, "h2.d", 10, 6)
    bn_params(g, P, "h2.bn", 6)
    bn_state(g, S, "h2.bn", 6)
    g.dense(P, "logits", 6, 3)
    x = (g.normal(36, 8) * 2 + 0.5).astype(f32)
    y = g.ints(0, 3, 36)
    nn = model(name, """
        input  x: f32[8]
        target label: i32[]

        h1 = block(x, 10, 0.9, 0.01)
        h2 = block(h1, 6, 0.99, 0.001)
        output logits = dense(h2, 3)

        loss sparse_categorical_crossentropy(logits, label, from_logits=true)
        metric accuracy = accuracy(logits, label)
        optimizer sgd(lr=0.1, momentum=0.9)
    """, defs="""
        def block(x, units, mom, eps) {
            d = dense(x, units)
            bn = batchnorm(d, momentum=mom, epsilon=eps)
            return relu(bn)
        }
    """)

    def fwd(P, S, D):
        h1 = torch.relu(batchnorm(dense(D["x"], P, "h1.d"), P, S, "h1.bn", 0.9, 0.01))
        h2 = torch.relu(batchnorm(dense(h1, P, "h2.d"), P, S, "h2.bn", 0.99, 0.001))
        return scce_logits(dense(h2, P, "logits"), D["label"])
    return Case(name, nn, P, {"x": x, "label": y}, fwd, ("sgd", {"lr": 0.1, "momentum": 0.9}), batch=12, steps=3,
                state=S)


@case
def batchnorm_conv():
    name = "batchnorm_conv"
    g = Gen(name)
    P, S = {"c.weight": g.kernel(3, 3, 2, 4)}, {}  # no bias: batchnorm cancels its gradient, adam would amplify noise
    bn_params(g, P, "b", 4)
    bn_state(g, S, "b", 4)
    g.dense(P, "pred", 36, 1)
    x = g.normal(20, 6, 6, 2)
    y = g.normal(20, 1)
    nn = model(name, """
        input  img: f32[6, 6, 2]
        target y: f32[1]

        c = conv2d(img, 4, 3, padding=same, use_bias=false)
        b = batchnorm(c, momentum=0.8)                   # statistics over batch, rows and columns
        p = avgpool2d(leaky_relu(b, alpha=0.1), 2)       # [3, 3, 4]
        output pred = dense(flatten(p), 1)

        loss mse(pred, y)
        optimizer adam(lr=0.01)
    """)

    def fwd(P, S, D):
        b = batchnorm(conv2d(D["img"], P, "c", same=True), P, S, "b", 0.8)
        return mse(dense(flatten(pool2d(leaky(b, 0.1), "avg", 2)), P, "pred"), D["y"])
    return Case(name, nn, P, {"img": x, "y": y}, fwd, ("adam", {"lr": 0.01}), batch=8, steps=3, state=S)


@case
def lstm_forecaster():
    name = "lstm_forecaster"
    g = Gen(name)
    P = {"h.weight": g.kernel(3, 32), "h.recurrent": g.kernel(8, 32), "h.bias": g.normal(32, scale=0.1)}
    P["h.bias"][8:16] += 1  # forget gate bias 1, as nnc's initialiser
    g.dense(P, "forecast", 8, 1)
    series = np.cumsum(g.normal(30 + 5, 3, scale=0.3), 0).astype(f32)
    x = np.stack([series[i:i + 4] for i in range(30)]).astype(f32)
    y = series[4:34, :1].copy()
    nn = model(name, """
        input  window: f32[4, 3]
        target next: f32[1]

        h = lstm(window, 8)
        output forecast = dense(h, 1)

        loss mse(forecast, next)
        metric mae = mae(forecast, next)
        optimizer sgd(lr=0.1, momentum=0.5)
    """)
    fwd = lambda P, S, D: mse(dense(lstm(D["window"], P, "h"), P, "forecast"), D["next"])
    return Case(name, nn, P, {"window": x, "next": y}, fwd, ("sgd", {"lr": 0.1, "momentum": 0.5}), batch=10, steps=3)


@case
def lstm_sequences():
    name = "lstm_sequences"
    g = Gen(name)
    P = {"s.weight": g.kernel(4, 24), "s.recurrent": g.kernel(6, 24), "s.bias": g.normal(24, scale=0.2)}
    g.dense(P, "z", 6, 2)
    S = {}
    bn_params(g, P, "n", 6)
    bn_state(g, S, "n", 6)
    x = g.normal(24, 3, 4)
    y = g.ints(0, 2, 24, 2).astype(f32)
    nn = model(name, """
        input  x: f32[3, 4]
        target y: f32[2]

        s = lstm(x, 6, return_sequences=true)            # [3, 6]
        n = batchnorm(s, momentum=0.9)                    # statistics over batch and time
        output z = dense(mean(n, axis=1), 2)              # mean over time

        loss binary_crossentropy(z, y, from_logits=true)
        optimizer rmsprop(lr=0.01)
    """)
    def fwd(P, S, D):
        n = batchnorm(lstm(D["x"], P, "s", return_sequences=True), P, S, "n", 0.9)
        return bce_logits(dense(n.mean(1), P, "z"), D["y"])
    return Case(name, nn, P, {"x": x, "y": y}, fwd, ("rmsprop", {"lr": 0.01}), batch=10, steps=3, state=S)


@case
def lstm_adam():
    name = "lstm_adam"
    g = Gen(name)
    P = {"enc.weight": g.kernel(2, 16), "enc.recurrent": g.kernel(4, 16), "enc.bias": g.normal(16, scale=0.2)}
    g.dense(P, "probs", 4, 3)
    x = g.normal(16, 3, 2)
    y = g.ints(0, 3, 16)
    nn = model(name, """
        input  x: f32[3, 2]
        target y: i32[]

        enc = lstm(x, 4)
        output probs = dense(enc, 3, activation=softmax)

        loss sparse_categorical_crossentropy(probs, y)
        optimizer adam(lr=0.02)
    """)
    fwd = lambda P, S, D: scce_logits(dense(lstm(D["x"], P, "enc"), P, "probs"), D["y"])
    return Case(name, nn, P, {"x": x, "y": y}, fwd, ("adam", {"lr": 0.02}), batch=8, steps=2)


# ---- training mechanics ---------------------------------------------------------------------------------------


@case
def freeze():
    name = "freeze"
    g = Gen(name)
    P = {}
    g.dense(P, "h1", 6, 8)
    g.dense(P, "h2", 8, 8)
    g.dense(P, "pred", 8, 2)
    x = g.normal(30, 6)
    y = g.normal(30, 2)
    nn = model(name, """
        input  x: f32[6]
        target y: f32[2]

        h1 = dense(x, 8, activation=tanh)
        h2 = dense(h1, 8, activation=tanh)
        output pred = dense(h2, 2)

        loss mse(pred, y)
        optimizer adam(lr=0.01)
        freeze h2, "pred.bias"       # a whole layer (the gradient still flows through it) and one tensor
    """)
    fwd = lambda P, S, D: mse(dense(dense(dense(D["x"], P, "h1", torch.tanh), P, "h2", torch.tanh), P, "pred"), D["y"])
    return Case(name, nn, P, {"x": x, "y": y}, fwd, ("adam", {"lr": 0.01}), batch=10, steps=3,
                frozen=["h2.weight", "h2.bias", "pred.bias"])


@case
def partial_batch_wrap():
    """70 samples at batch 32: steps of 32, 32, 6, then the next epoch's first 32."""
    name = "partial_batch_wrap"
    g = Gen(name)
    P = {}
    g.dense(P, "h", 4, 6)
    g.dense(P, "pred", 6, 1)
    x = g.normal(70, 4)
    y = (x[:, :1] * x[:, 1:2] + 0.1 * g.normal(70, 1)).astype(f32)
    y[64:] += 3  # the partial batch differs, so weighting it as a full one would show
    nn = model(name, """
        input  x: f32[4]
        target y: f32[1]

        h = dense(x, 6, activation=relu)
        output pred = dense(h, 1)

        loss mse(pred, y)
        optimizer sgd(lr=0.05, momentum=0.9)
    """)
    fwd = lambda P, S, D: mse(dense(dense(D["x"], P, "h", torch.relu), P, "pred"), D["y"])
    return Case(name, nn, P, {"x": x, "y": y}, fwd, ("sgd", {"lr": 0.05, "momentum": 0.9}), batch=32, steps=4)


@case
def blas_mlp():
    """GEMMs of 64*64*64 and more at batch 64: -O2 calls cblas_sgemm (forward, and transposed in the
    backward pass); 100 samples make steps of 64, 36 (a partial batch through BLAS) and 64 again."""
    name = "blas_mlp"
    g = Gen(name)
    P = {}
    g.dense(P, "h1", 64, 64)
    g.dense(P, "h2", 64, 96)
    g.dense(P, "pred", 96, 4)
    x = g.normal(100, 64)
    y = (np.tanh(x[:, :4] + x[:, 4:8] * x[:, 8:12])).astype(f32)
    nn = model(name, """
        input  x: f32[64]
        target y: f32[4]

        h1 = dense(x, 64, activation=tanh)
        h2 = dense(h1, 96, activation=tanh)
        output pred = dense(h2, 4)

        loss mse(pred, y)
        optimizer sgd(lr=0.2, momentum=0.9)
    """)
    fwd = lambda P, S, D: mse(dense(dense(dense(D["x"], P, "h1", torch.tanh), P, "h2", torch.tanh), P, "pred"), D["y"])
    return Case(name, nn, P, {"x": x, "y": y}, fwd, ("sgd", {"lr": 0.2, "momentum": 0.9}), batch=64, steps=3)


# ---- operators in a training graph -------------------------------------------------------------------------------


@case
def ops_shape_mix():
    name = "ops_shape_mix"
    g = Gen(name)
    P = {}
    g.dense(P, "d", 4, 5)
    g.dense(P, "e", 4, 5)
    g.dense(P, "pred", 45, 1)
    x = g.normal(20, 4, 3)
    y = g.normal(20, 1)
    nn = model(name, """
        input  x: f32[4, 3]
        target y: f32[1]

        t = transpose(x, [0, 2, 1])                       # [3, 4]
        d = dense(t, 5)                                   # [3, 5]
        e = dense(t, 5, activation=leaky_relu)
        m = maximum(leaky_relu(d, alpha=0.2), e)
        k = clip(d, -0.3, 0.3)
        c = concat(m, k, abs(e), axis=-1)                 # [3, 15]
        r = transpose(c, [0, 2, 1])                       # [15, 3]
        output pred = dense(flatten(r), 1)

        loss mse(pred, y)
        optimizer sgd(lr=0.05)
    """)

    def fwd(P, S, D):
        t = D["x"].transpose(1, 2)
        d = dense(t, P, "d")
        e = dense(t, P, "e", leaky)
        c = torch.cat([torch.maximum(leaky(d, 0.2), e), torch.clamp(d, -0.3, 0.3), e.abs()], -1)
        return mse(dense(flatten(c.transpose(1, 2)), P, "pred"), D["y"])
    return Case(name, nn, P, {"x": x, "y": y}, fwd, ("sgd", {"lr": 0.05}), batch=8, steps=3)


@case
def ops_elementwise_mix():
    name = "ops_elementwise_mix"
    g = Gen(name)
    P = {"w": g.normal(6, 4, scale=0.4), "s": g.normal(4, scale=0.2)}
    g.dense(P, "pred", 6, 3)
    x = g.normal(18, 6)
    y = g.normal(18, 3)
    nn = model(name, """
        input  x: f32[6]
        target y: f32[3]
        param  w: f32[6, 4] = normal(std=0.4)
        param  s: f32[4] = zeros

        h = x @ w + s                                     # [4]
        a = minimum(sigmoid(h), tanh(h) + 0.6)
        b = log(exp(h * 0.5) + 1) * sqrt(square(h) + 1)
        r = reshape(concat(a, b), [2, 4])
        z = concat(max(r, axis=1), sum(r, axis=-1) / 4)   # [6]
        output pred = dense(softmax(z) * 3 + z ** 2 * 0.1, 3)

        loss mse(pred, y) + 0.01 * mean(w ** 2)
        optimizer sgd(lr=0.1, momentum=0.5)
    """)

    def fwd(P, S, D):
        h = D["x"] @ P["w"] + P["s"]
        a = torch.minimum(torch.sigmoid(h), torch.tanh(h) + 0.6)
        b = torch.log(torch.exp(h * 0.5) + 1) * torch.sqrt(h ** 2 + 1)
        r = torch.cat([a, b], -1).reshape(-1, 2, 4)
        z = torch.cat([r.max(1).values, r.sum(-1) / 4], -1)
        return mse(dense(torch.softmax(z, -1) * 3 + z ** 2 * 0.1, P, "pred"), D["y"]) + 0.01 * (P["w"] ** 2).mean()
    return Case(name, nn, P, {"x": x, "y": y}, fwd, ("sgd", {"lr": 0.1, "momentum": 0.5}), batch=6, steps=3)


@case
def ops_smooth_activations():
    # gelu (both forms), silu, elu, softplus as activation= values and functions, and erf, trained with adam
    name = "ops_smooth_activations"
    g = Gen(name)
    P = {}
    g.dense(P, "h1", 6, 8)
    g.dense(P, "h2", 8, 8)
    g.dense(P, "h3", 8, 8)
    g.dense(P, "pred", 8, 2)
    x = g.normal(20, 6)
    y = g.normal(20, 2)
    nn = model(name, """
        input  x: f32[6]
        target y: f32[2]

        h1 = dense(x, 8, activation=gelu)
        h2 = dense(h1, 8, activation=silu)
        h3 = dense(h2, 8, activation=elu)
        a = softplus(h3) + gelu(h3, approximate=true) + 0.5 * erf(h2) + elu(h1, alpha=0.5) + (h3 |> dense(8, activation=softplus, name="s"))
        output pred = dense(a, 2)

        loss mse(pred, y)
        optimizer adam(lr=0.01)
    """)
    g.dense(P, "s", 8, 8)

    def fwd(P, S, D):
        h1 = dense(D["x"], P, "h1", F.gelu)
        h2 = dense(h1, P, "h2", F.silu)
        h3 = dense(h2, P, "h3", F.elu)
        a = (F.softplus(h3) + F.gelu(h3, approximate="tanh") + 0.5 * torch.erf(h2) + F.elu(h1, alpha=0.5)
             + dense(h3, P, "s", F.softplus))
        return mse(dense(a, P, "pred"), D["y"])
    return Case(name, nn, P, {"x": x, "y": y}, fwd, ("adam", {"lr": 0.01}), batch=8, steps=3)


# ---- cli.sh's fixtures ---------------------------------------------------------------------------------------------


def write_cli():
    os.makedirs(CLI)
    g = Gen("cli")
    w = lambda name, text: open(os.path.join(CLI, name), "w").write(textwrap.dedent(text).lstrip())
    # a classifier with dropout, batchnorm and adam: shuffling, the generator and every kind of state matter
    w("net.nn", """
        # cli.sh: shuffled, seeded training with dropout; resume and determinism
        model net {
            input  x: f32[6]
            target label: i32[]

            h = dense(x, 16, activation=relu)
            n = batchnorm(h)
            d = dropout(n, 0.3)
            output logits = dense(d, 3)

            loss sparse_categorical_crossentropy(logits, label, from_logits=true)
            metric accuracy = accuracy(logits, label)
            optimizer adam(lr=0.01)
            train(epochs=2, batch=8)
        }
    """)
    x = g.normal(50, 6)
    lab = (np.argmax(x[:, :3], 1)).astype(i32)
    npy_write(os.path.join(CLI, "x.npy"), x)
    npy_write(os.path.join(CLI, "label.npy"), lab)
    npy_write(os.path.join(CLI, "val_x.npy"), g.normal(20, 6))
    npy_write(os.path.join(CLI, "val_label.npy"), g.ints(0, 3, 20))
    # the same data in other formats, converted to the declared types (docs/cli.md): training must not notice
    npy_write(os.path.join(CLI, "x_f64.npy"), x.astype(f64))
    npy_write(os.path.join(CLI, "label_i64.npy"), lab.astype(np.int64))
    with open(os.path.join(CLI, "x.csv"), "w") as f:
        f.write("a,b,c,d,e,f\n" + "".join(",".join(f"{v:.9g}" for v in row) + "\n" for row in x))
    assert np.array_equal(np.loadtxt(os.path.join(CLI, "x.csv"), delimiter=",", skiprows=1).astype(f32), x)
    with open(os.path.join(CLI, "label.csv"), "w") as f:
        f.write("".join(f"{v}\n" for v in lab))
    # the bad data: each names its file in the diagnostic
    npy_write(os.path.join(CLI, "x_wrong_shape.npy"), g.normal(50, 5))
    npy_write(os.path.join(CLI, "x_short.npy"), x[:49])
    bad = lab.copy()
    bad[17] = 3
    npy_write(os.path.join(CLI, "label_out_of_range.npy"), bad)
    bad = lab.copy()
    bad[5] = -1
    npy_write(os.path.join(CLI, "label_negative.npy"), bad)
    with open(os.path.join(CLI, "x.npy"), "rb") as f:
        blob = f.read()
    with open(os.path.join(CLI, "x_truncated.npy"), "wb") as f:
        f.write(blob[:len(blob) - 100])
    # divergence: w <- w - lr * 2 w = -19 w each step from w = 0.5; the float32 loss (0.5 * 19^(k-1))^2 first
    # overflows at step k = 17 (at step 16 it is 5.7e37, and still finite when summed over the batch of 2
    # before the mean), which with 10 samples at batch 2 (5 steps an epoch) is epoch 4, step 2 of it
    w("diverge.nn", """
        # cli.sh: sgd with lr 10 on y = w x (x = 1, y = 0) multiplies w by -19 a step, until it overflows
        model diverge {
            input  x: f32[1]
            target y: f32[1]
            param  w: f32[1, 1] = constant(0.5)
            output pred = x @ w

            loss mse(pred, y)
            optimizer sgd(lr=10)
            train(epochs=50, batch=2, shuffle=false)
        }
    """)
    npy_write(os.path.join(CLI, "ones.npy"), np.ones((10, 1), f32))
    npy_write(os.path.join(CLI, "zeros.npy"), np.zeros((10, 1), f32))
    w32 = np.float32(0.5)
    with np.errstate(over="ignore"):
        for step in range(1, 100):
            sq = np.float32(w32 * w32)
            if not np.isfinite(sq) or not np.isfinite(np.float32(sq + sq)):
                assert not np.isfinite(sq), "the batch sum and the mean overflow at different steps"
                break
            w32 = np.float32(w32 * np.float32(-19))
    assert step == 17, step


def main():
    if len(sys.argv) > 1:
        print(__doc__)
        return 2
    check_blocks()
    for d in (OUT, CLI):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(OUT)
    total = 0
    for fn in CASES:
        c = fn()
        cond = c.write()
        print(f"{c.name:24s} {c.count:3d} samples, batch {c.batch:2d}, {c.steps} steps; "
              f"float32 ref within {cond:.3f} of the tolerance")
    write_cli()
    for root, _, files in os.walk(HERE):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"tests/train: {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
