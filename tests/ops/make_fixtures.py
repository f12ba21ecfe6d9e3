#!/usr/bin/env python3
"""make_fixtures.py: the per-operator forward tests of nnc (docs/language.md §6 builtins, predict mode).

    python3 tests/ops/make_fixtures.py        (needs NumPy and PyTorch; run from anywhere)

Each case is a tiny .nn model written by the letter of docs/language.md, seeded random inputs, weights under the
documented parameter names, and the outputs computed here, independently of nnc, with NumPy (float64) or
PyTorch (float64). Where the rule is subtle (TensorFlow 'same' padding, pooling that excludes padding,
the LSTM gate order) the reference is written out in NumPy and, where PyTorch has the same operator, the
two references are checked against each other before anything is written.

For every case it writes tests/ops/cases/<case>/:
    model.nn               the model
    <input>.npy            one per input (f32 as <f4, i32 as <i4), first axis the samples
    weights.safetensors    every parameter and state tensor (written by st_write below, not by nnc)
    expected_<output>.npy  one per output, in declaration order
    args                   what run_case.sh passes to `nnc predict`: lines `data NAME FILE`,
                           `output NAME`, `option ARG...`

Output is deterministic (each case seeds its own generator from its name), so rerunning the script leaves
git clean; cases/ is rebuilt from scratch, so a removed case disappears.
What it does not do: run nnc (run_case.sh does), test gradients or training.
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
f32, i32, f64 = np.float32, np.int32, np.float64
torch.set_grad_enabled(False)

# ---- file writers ------------------------------------------------------------------------------------


def st_write(path, tensors):
    """safetensors: u64 LE header length, JSON header (padded with spaces to 8 bytes), raw LE data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
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


# ---- references ----------------------------------------------------------------------------------------


def d(a):
    """Float64 copy of what nnc sees (the float32 values)."""
    return np.asarray(a, dtype=f64)


def t64(a):
    return torch.from_numpy(np.ascontiguousarray(d(a)))


def sigmoid(x):
    return torch.sigmoid(t64(x)).numpy()


def softmax(x, axis=-1):
    return torch.softmax(t64(x), dim=axis).numpy()


def log_softmax(x, axis=-1):
    return torch.log_softmax(t64(x), dim=axis).numpy()


def leaky(x, alpha=0.01):
    return np.where(x > 0, x, alpha * x)


ACT = {
    "none": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "softmax": softmax,
    "leaky_relu": leaky,
}


def dense_ref(x, w, b=None, act="none"):
    y = d(x) @ d(w)
    if b is not None:
        y = y + d(b)
    return ACT[act](y)


def tf_pads(n, k, s, same):
    """TensorFlow's padding on one axis: (out, before, after); 'same' puts the odd pixel after."""
    if not same:
        return (n - k) // s + 1, 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


def conv2d_np(x, w, stride, same):
    """NHWC x, HWIO w, written out with explicit zero padding: the second reference."""
    x, w = d(x), d(w)
    (kh, kw), (sh, sw) = w.shape[:2], stride
    oh, pt, pb = tf_pads(x.shape[1], kh, sh, same)
    ow, pl, pr = tf_pads(x.shape[2], kw, sw, same)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    y = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            y[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return y


def conv2d_ref(x, w, b=None, stride=(1, 1), same=False, act="none"):
    """PyTorch conv2d on explicitly padded input, cross-checked against conv2d_np."""
    kh, kw = w.shape[:2]
    _, pt, pb = tf_pads(x.shape[1], kh, stride[0], same)
    _, pl, pr = tf_pads(x.shape[2], kw, stride[1], same)
    xt = F.pad(t64(x).permute(0, 3, 1, 2), (pl, pr, pt, pb))
    y = F.conv2d(xt, t64(w).permute(3, 2, 0, 1), stride=stride).permute(0, 2, 3, 1).numpy()
    assert np.allclose(y, conv2d_np(x, w, stride, same), rtol=1e-12, atol=1e-12)
    if b is not None:
        y = y + d(b)
    return ACT[act](y)



def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_groups_np(x, w, stride, pads, groups, dilation):
    """NHWC x, HWIO w [kh, kw, C/groups, F], explicit pads (top, bottom, left, right), dilation: written out
    group by group (group k: channels k*C/groups.., filters k*F/groups..), the second reference."""
    x, w = d(x), d(w)
    (kh, kw), (sh, sw), (dh, dw) = w.shape[:2], stride, dilation
    pt, pb, pl, pr = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    cg, fg = w.shape[2], w.shape[3] // groups
    y = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for k in range(groups):
        xs, ws = xp[..., k * cg:(k + 1) * cg], w[..., k * fg:(k + 1) * fg]
        for i in range(oh):
            for j in range(ow):
                patch = xs[:, i * sh:i * sh + (kh - 1) * dh + 1:dh, j * sw:j * sw + (kw - 1) * dw + 1:dw, :]
                y[:, i, j, k * fg:(k + 1) * fg] = np.tensordot(patch, ws, axes=([1, 2, 3], [0, 1, 2]))
    return y


def conv2d_groups_ref(x, w, b=None, stride=1, padding="valid", groups=1, dilation=1, act="none"):
    """PyTorch conv2d (groups=, dilation=; padding by F.pad: TF 'same' over the dilated kernel, or explicit
    [top, bottom, left, right]) in float64, cross-checked against conv2d_groups_np."""
    stride, dilation = pair(stride), pair(dilation)
    if isinstance(padding, str):
        keff = [(w.shape[a] - 1) * dilation[a] + 1 for a in (0, 1)]
        _, pt, pb = tf_pads(x.shape[1], keff[0], stride[0], padding == "same")
        _, pl, pr = tf_pads(x.shape[2], keff[1], stride[1], padding == "same")
        pads = (pt, pb, pl, pr)
    else:
        pads = tuple(padding)
    xt = F.pad(t64(x).permute(0, 3, 1, 2), (pads[2], pads[3], pads[0], pads[1]))
    y = F.conv2d(xt, t64(w).permute(3, 2, 0, 1), stride=stride, dilation=dilation, groups=groups)
    y = y.permute(0, 2, 3, 1).numpy()
    assert np.allclose(y, conv2d_groups_np(x, w, stride, pads, groups, dilation), rtol=1e-12, atol=1e-12)
    if b is not None:
        y = y + d(b)
    return ACT[act](y)

def pool2d_ref(x, kind, pool, stride, same):
    """NHWC pooling with TF padding: max ignores the padding, avg divides by the unpadded count."""
    x = d(x)
    (ph, pw), (sh, sw) = pool, stride
    oh, pt, _ = tf_pads(x.shape[1], ph, sh, same)
    ow, pl, _ = tf_pads(x.shape[2], pw, sw, same)
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - pt, j * sw - pl
            win = x[:, max(r0, 0):min(r0 + ph, x.shape[1]), max(c0, 0):min(c0 + pw, x.shape[2]), :]
            y[:, i, j, :] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
    if not same:  # a second reference where PyTorch agrees with TF
        xt = t64(x).permute(0, 3, 1, 2)
        fn = F.max_pool2d if kind == "max" else F.avg_pool2d
        yt = fn(xt, (ph, pw), (sh, sw)).permute(0, 2, 3, 1).numpy()
        assert np.allclose(y, yt, rtol=1e-12, atol=1e-12)
    return y


def batchnorm_ref(x, gamma, beta, mean, var, eps):
    y = d(gamma) * (d(x) - d(mean)) / np.sqrt(d(var) + eps) + d(beta)
    c = x.shape[-1]
    xt = t64(x).reshape(-1, c)
    yt = F.batch_norm(xt, t64(mean), t64(var), t64(gamma), t64(beta), training=False, eps=eps)
    assert np.allclose(y.reshape(-1, c), yt.numpy(), rtol=1e-12, atol=1e-12)
    return y


def lstm_np(x, w, r, b):
    x, w, r, b = d(x), d(w), d(r), d(b)
    u = r.shape[0]
    h = np.zeros((x.shape[0], u))
    c = np.zeros_like(h)
    seq = []
    for t in range(x.shape[1]):
        z = x[:, t] @ w + h @ r + b
        i, f, g, o = sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        seq.append(h)
    return np.stack(seq, axis=1)


def lstm_ref(x, w, r, b, return_sequences=False):
    """torch.nn.LSTM (gate order i, f, g, o, like docs/language.md) with the weights transposed into it."""
    u = r.shape[0]
    m = torch.nn.LSTM(x.shape[2], u, batch_first=True, dtype=torch.float64)
    m.weight_ih_l0.copy_(t64(w).T)
    m.weight_hh_l0.copy_(t64(r).T)
    m.bias_ih_l0.copy_(t64(b))
    m.bias_hh_l0.zero_()
    seq = m(t64(x))[0].numpy()
    assert np.allclose(seq, lstm_np(x, w, r, b), rtol=1e-12, atol=1e-12)
    return seq if return_sequences else seq[:, -1]


# ---- cases -------------------------------------------------------------------------------------------------

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


class Gen:
    """A case's seeded data: n samples (3-7 unless given) and small tensors."""

    def __init__(self, name):
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.n = int(self.rng.integers(3, 8))

    def normal(self, *shape, scale=1.0):
        return (self.rng.standard_normal(shape) * scale).astype(f32)

    def uniform(self, lo, hi, *shape):
        return self.rng.uniform(lo, hi, shape).astype(f32)

    def away(self, *shape, lo=0.3, hi=2.0):
        """Values with |v| in [lo, hi] and random signs (safe denominators)."""
        return (self.uniform(lo, hi, *shape) * self.rng.choice([-1, 1], shape)).astype(f32)

    def ints(self, lo, hi, *shape):
        return self.rng.integers(lo, hi, shape).astype(i32)

    def x(self, *shape, scale=1.0):
        """An input: n samples of the per-sample shape."""
        return self.normal(self.n, *shape, scale=scale)


def model(body, defs=""):
    return textwrap.dedent(defs).strip() + ("\n\n" if defs.strip() else "") + \
        "model m {\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n}\n"


# -- elementwise -------------------------------------------------------------------------------------------


@case
def ew_relu(g):
    x = g.x(3, 4)
    return model("""
        input x: f32[3, 4]
        output y = relu(x)
    """), {"x": x}, {}, {"y": np.maximum(d(x), 0)}


@case
def ew_leaky_relu(g):
    x = g.x(5, scale=2)
    return model("""
        input x: f32[5]
        output a = leaky_relu(x)
        output b = leaky_relu(x, alpha=0.2)
        output c = leaky_relu(x, 0.3)
    """), {"x": x}, {}, {"a": leaky(d(x)), "b": leaky(d(x), 0.2), "c": leaky(d(x), 0.3)}


@case
def ew_sigmoid(g):
    x = g.x(6, scale=8)  # far tails included: exp(100) and exp(1000) overflow float32
    x[0] = [-30, 30, -100, 100, -1000, 1000]
    return model("""
        input x: f32[6]
        output y = sigmoid(x)
    """), {"x": x}, {}, {"y": sigmoid(d(x))}


@case
def ew_tanh(g):
    x = g.x(2, 3, scale=2)
    x[0] = [[-50, 50, -500], [500, 1e-4, -1e-4]]  # overflowing exponentials, and the linear range
    return model("""
        input x: f32[2, 3]
        output y = tanh(x)
    """), {"x": x}, {}, {"y": np.tanh(d(x))}


@case
def ew_exp_log(g):
    x = g.uniform(-3, 3, g.n, 4)
    p = g.uniform(0.05, 5, g.n, 4)
    return model("""
        input x: f32[4]
        input p: f32[4]
        output e = exp(x)
        output l = log(p)
        output round_trip = log(exp(x))
    """), {"x": x, "p": p}, {}, {"e": np.exp(d(x)), "l": np.log(d(p)), "round_trip": d(x)}


@case
def ew_sqrt_abs_square(g):
    p = g.uniform(0.01, 4, g.n, 2, 3)
    x = g.x(2, 3)
    return model("""
        input p: f32[2, 3]
        input x: f32[2, 3]
        output r = sqrt(p)
        output a = abs(x)
        output s = square(x)
    """), {"p": p, "x": x}, {}, {"r": np.sqrt(d(p)), "a": np.abs(d(x)), "s": d(x) ** 2}


@case
def ew_maximum_minimum(g):
    a, b, v = g.x(3, 4), g.x(3, 4), g.normal(g.n, 1, 4)
    return model("""
        input a: f32[3, 4]
        input b: f32[3, 4]
        input v: f32[1, 4]
        output hi = maximum(a, b)
        output lo = minimum(a, b)
        output hi_bcast = maximum(a, v)
        output lo_bcast = minimum(v, a)
        output hi_const = maximum(a, 0.25)
        output lo_const = minimum(-0.5, a)
    """), {"a": a, "b": b, "v": v}, {}, {
        "hi": np.maximum(d(a), d(b)), "lo": np.minimum(d(a), d(b)),
        "hi_bcast": np.maximum(d(a), d(v)), "lo_bcast": np.minimum(d(v), d(a)),
        "hi_const": np.maximum(d(a), 0.25), "lo_const": np.minimum(-0.5, d(a))}


@case
def ew_clip(g):
    x = g.x(7, scale=2)
    return model("""
        input x: f32[7]
        output a = clip(x, -0.5, 0.75)
        output b = clip(x, lo=0, hi=1)
        output c = clip(x, -1e-3, 2)
    """), {"x": x}, {}, {"a": np.clip(d(x), -0.5, 0.75), "b": np.clip(d(x), 0, 1), "c": np.clip(d(x), -1e-3, 2)}


# gelu, silu, softplus, elu, erf: PyTorch float64 references, with far tails (|x| 30, 100, 1000) where a
# naive formula overflows or cancels
SMOOTH_TAILS = [-1000, -100, -30, -8, -1e-3, 0, 1e-3, 8, 30, 100, 1000]


def smooth_x(g, cols):
    x = g.x(len(SMOOTH_TAILS), scale=3)
    x[0] = SMOOTH_TAILS
    return x[:, :cols] if cols < len(SMOOTH_TAILS) else x


def gelu_ref(x, approximate=False):
    return F.gelu(t64(x), approximate="tanh" if approximate else "none").numpy()


def silu_ref(x):
    return F.silu(t64(x)).numpy()


def softplus_ref(x):
    return F.softplus(t64(x)).numpy()


def elu_ref(x, alpha=1.0):
    return F.elu(t64(x), alpha=alpha).numpy()


def erf_ref(x):
    return torch.erf(t64(x)).numpy()


ACT.update({"gelu": gelu_ref, "silu": silu_ref, "softplus": softplus_ref, "elu": elu_ref})


@case
def ew_gelu(g):
    x = smooth_x(g, 11)
    return model("""
        input x: f32[11]
        output a = gelu(x)
        output b = gelu(x, approximate=true)
        output c = x |> gelu()
        output t = x |> gelu(approximate=true)
        output f = gelu(x, false)
    """), {"x": x}, {}, {"a": gelu_ref(x), "b": gelu_ref(x, True), "c": gelu_ref(x), "t": gelu_ref(x, True),
                         "f": gelu_ref(x)}


@case
def ew_silu(g):
    x = smooth_x(g, 11)
    return model("""
        input x: f32[11]
        output y = silu(x)
        output p = x |> silu()
    """), {"x": x}, {}, {"y": silu_ref(x), "p": silu_ref(x)}


@case
def ew_softplus(g):
    x = smooth_x(g, 11)
    return model("""
        input x: f32[11]
        output y = softplus(x)
        output p = x * 2 |> softplus()
    """), {"x": x}, {}, {"y": softplus_ref(x), "p": softplus_ref(d(x) * 2)}


@case
def ew_elu(g):
    x = smooth_x(g, 11)
    return model("""
        input x: f32[11]
        output a = elu(x)
        output b = elu(x, alpha=0.5)
        output c = elu(x, 2)
        output p = x |> elu(alpha=1.5)
    """), {"x": x}, {}, {"a": elu_ref(x), "b": elu_ref(x, 0.5), "c": elu_ref(x, 2.0), "p": elu_ref(x, 1.5)}


@case
def ew_erf(g):
    x = smooth_x(g, 11)
    return model("""
        input x: f32[11]
        output y = erf(x)
        output p = x / 4 |> erf()
    """), {"x": x}, {}, {"y": erf_ref(x), "p": erf_ref(d(x) / 4)}


@case
def dense_activations_smooth(g):
    # activation= gelu, silu, softplus, elu on dense, on conv2d, and through a def's argument
    x = g.x(4, scale=2)
    wts, outs, lines = {}, {}, ["input x: f32[4]", "input im: f32[4, 4, 2]"]
    im = g.x(4, 4, 2)
    for act in ["gelu", "silu", "softplus", "elu"]:
        w, b = g.normal(4, 3, scale=2), g.normal(3)
        wts[f"d_{act}.weight"], wts[f"d_{act}.bias"] = w, b
        lines.append(f"output d_{act} = dense(x, 3, activation={act})")
        outs[f"d_{act}"] = dense_ref(x, w, b, act)
        cw, cb = g.normal(3, 3, 2, 2), g.normal(2)
        wts[f"c_{act}.weight"], wts[f"c_{act}.bias"] = cw, cb
        lines.append(f"output c_{act} = conv2d(im, 2, 3, activation={act})")
        outs[f"c_{act}"] = conv2d_ref(im, cw, cb, act=act)
    w, b = g.normal(4, 3), g.normal(3)
    wts["h.d.weight"], wts["h.d.bias"] = w, b
    lines.append("output h = layer(x, gelu)")
    outs["h"] = dense_ref(x, w, b, "gelu")
    defs = """
    def layer(x, act) {
        d = dense(x, 3, activation=act)
        return d
    }
    """
    return model("\n".join(lines), defs), {"x": x, "im": im}, wts, outs


@case
def ew_per_sample_scalar(g):
    s, t = g.x(), g.away(g.n)
    return model("""
        input s: f32[]
        input t: f32[]
        output r = relu(s)
        output sum_st = s + t
        output quot = s / t
        output poly = s * s - 2 * s + 1
    """), {"s": s, "t": t}, {}, {
        "r": np.maximum(d(s), 0), "sum_st": d(s) + d(t), "quot": d(s) / d(t), "poly": d(s) ** 2 - 2 * d(s) + 1}


# -- arithmetic and broadcasting -----------------------------------------------------------------------------


@case
def arith_same_shape(g):
    a, b = g.x(3, 4), g.away(g.n, 3, 4)
    return model("""
        input a: f32[3, 4]
        input b: f32[3, 4]
        output add = a + b
        output sub = a - b
        output mul = a * b
        output div = a / b
    """), {"a": a, "b": b}, {}, {"add": d(a) + d(b), "sub": d(a) - d(b), "mul": d(a) * d(b), "div": d(a) / d(b)}


@case
def arith_broadcast_vector(g):
    # Batched values broadcast as NumPy arrays with the batch axis first: [B,3,4] op [B,1,4], and a param
    # (no batch axis) [4] against [B,3,4].
    x, v, p = g.x(3, 4), g.away(g.n, 1, 4), g.away(4)
    return model("""
        input x: f32[3, 4]
        input v: f32[1, 4]
        param p: f32[4] = ones
        output add = x + v
        output rsub = v - x
        output mul = x * v
        output div = x / v
        output pdiv = x / p
        output psub = p - x
    """), {"x": x, "v": v}, {"p": p}, {
        "add": d(x) + d(v), "rsub": d(v) - d(x), "mul": d(x) * d(v), "div": d(x) / d(v),
        "pdiv": d(x) / d(p), "psub": d(p) - d(x)}


@case
def arith_per_sample_scalar_reshaped(g):
    # An f32[] input is [B]; NumPy broadcasting against [B, 4] needs the explicit [B, 1].
    x, s = g.x(4), g.away(g.n)
    return model("""
        input x: f32[4]
        input s: f32[]
        k = reshape(s, [1])
        output mul = x * k
        output rdiv = x / k
        output add = k + x
    """), {"x": x, "s": s}, {}, {"mul": d(x) * d(s)[:, None], "rdiv": d(x) / d(s)[:, None], "add": d(s)[:, None] + d(x)}


@case
def arith_rank3(g):
    x, col, row, p = g.x(2, 3, 4), g.x(1, 3, 1), g.x(2, 1, 4), g.away(3, 4)
    return model("""
        input x: f32[2, 3, 4]
        input col: f32[1, 3, 1]
        input row: f32[2, 1, 4]
        param p: f32[3, 4] = ones
        output a = x + col
        output b = x * row
        output c = x / p - col
        output outer = col * row
    """), {"x": x, "col": col, "row": row}, {"p": p}, {
        "a": d(x) + d(col), "b": d(x) * d(row), "c": d(x) / d(p) - d(col), "outer": d(col) * d(row)}


@case
def arith_constants(g):
    x = g.away(g.n, 5)
    return model("""
        input x: f32[5]
        output a = x * 2.5 + 1
        output b = 3 - x
        output c = x / 4
        output e = 2 / x
        output f = 1e-3 * x - 0.5
    """), {"x": x}, {}, {
        "a": d(x) * 2.5 + 1, "b": 3 - d(x), "c": d(x) / 4, "e": 2 / d(x), "f": 1e-3 * d(x) - 0.5}


@case
def arith_unary_minus(g):
    x, y = g.x(4), g.x(4)
    return model("""
        input x: f32[4]
        input y: f32[4]
        output a = -x
        output b = -(x * 2) + y
        output c = x - -y
        output e = -x ** 2
        output f = -relu(x)
    """), {"x": x, "y": y}, {}, {
        "a": -d(x), "b": -(d(x) * 2) + d(y), "c": d(x) + d(y), "e": -(d(x) ** 2), "f": -np.maximum(d(x), 0)}


@case
def arith_precedence(g):
    a, b, c = g.x(3), g.x(3), g.away(g.n, 3)
    return model("""
        input a: f32[3]
        input b: f32[3]
        input c: f32[3]
        output p1 = a + b * c
        output p2 = (a + b) * c
        output p3 = a - b - c
        output p4 = a / c / c
        output p5 = a * b ** 2
    """), {"a": a, "b": b, "c": c}, {}, {
        "p1": d(a) + d(b) * d(c), "p2": (d(a) + d(b)) * d(c), "p3": d(a) - d(b) - d(c),
        "p4": d(a) / d(c) / d(c), "p5": d(a) * d(b) ** 2}


@case
def arith_pow(g):
    x, p = g.x(6), g.uniform(0.01, 4, g.n, 6)
    return model("""
        input x: f32[6]
        input p: f32[6]
        output sq = x ** 2
        output cube = x ** 3
        output root = p ** 0.5
        output inv = p ** -1
        output sq_float = x ** 2.0
    """), {"x": x, "p": p}, {}, {
        "sq": d(x) ** 2, "cube": d(x) ** 3, "root": np.sqrt(d(p)), "inv": 1 / d(p), "sq_float": d(x) ** 2}


@case
def arith_param_broadcast(g):
    x, b, s = g.x(2, 4), g.normal(4), g.away(1)[0:1].reshape(())
    return model("""
        input x: f32[2, 4]
        param b: f32[4] = zeros
        param s: f32[] = constant(2.0)
        output y = x * s + b
    """), {"x": x}, {"b": b, "s": s}, {"y": d(x) * d(s) + d(b)}


# -- matmul ----------------------------------------------------------------------------------------------------


@case
def matmul_param(g):
    x, w = g.x(4), g.normal(4, 3)
    return model("""
        input x: f32[4]
        param w: f32[4, 3] = glorot_uniform
        output y = x @ w
    """), {"x": x}, {"w": w}, {"y": d(x) @ d(w)}


@case
def matmul_rank3_at_rank2(g):
    x, w = g.x(2, 5), g.normal(5, 3)
    return model("""
        input x: f32[2, 5]
        param w: f32[5, 3] = zeros
        output y = x @ w
    """), {"x": x}, {"w": w}, {"y": d(x) @ d(w)}


@case
def matmul_param_left(g):
    x, w = g.x(2, 4), g.normal(3, 2)
    return model("""
        input x: f32[2, 4]
        param w: f32[3, 2] = zeros
        output y = w @ x
    """), {"x": x}, {"w": w}, {"y": d(w) @ d(x)}


@case
def matmul_batched(g):
    a, b = g.x(2, 3), g.x(3, 4)
    return model("""
        input a: f32[2, 3]
        input b: f32[3, 4]
        output y = a @ b
        output gram = a @ transpose(a, [0, 2, 1])
    """), {"a": a, "b": b}, {}, {"y": d(a) @ d(b), "gram": d(a) @ d(a).transpose(0, 2, 1)}


@case
def matmul_rank4(g):
    a, w = g.x(2, 3, 4), g.normal(4, 2)
    return model("""
        input a: f32[2, 3, 4]
        param w: f32[4, 2] = zeros
        output y = a @ w
    """), {"a": a}, {"w": w}, {"y": d(a) @ d(w)}


# -- reductions --------------------------------------------------------------------------------------------------


@case
def reduce_axis_int(g):
    x = g.x(3, 4)
    return model("""
        input x: f32[3, 4]
        output s1 = sum(x, axis=1)
        output m2 = mean(x, axis=2)
        output mx = max(x, axis=-1)
        output mneg = mean(x, axis=-2)
        output mx_negative = max(x - 10, axis=-1)
    """), {"x": x}, {}, {
        "s1": d(x).sum(1), "m2": d(x).mean(2), "mx": d(x).max(-1), "mneg": d(x).mean(-2),
        "mx_negative": (d(x) - 10).max(-1)}


@case
def reduce_axis_list(g):
    x = g.x(3, 4, 2)
    return model("""
        input x: f32[3, 4, 2]
        output s = sum(x, axis=[1, 2])
        output m = mean(x, axis=[-1, 1])
        output mx = max(x, axis=[1, 3])
    """), {"x": x}, {}, {"s": d(x).sum((1, 2)), "m": d(x).mean((3, 1)), "mx": d(x).max((1, 3))}


@case
def reduce_keepdims(g):
    x = g.x(3, 4)
    return model("""
        input x: f32[3, 4]
        output s = sum(x, axis=1, keepdims=true)
        output m = mean(x, axis=-1, keepdims=true)
        output mx = max(x, axis=[1, 2], keepdims=true)
        output centred = x - mean(x, axis=-1, keepdims=true)
    """), {"x": x}, {}, {
        "s": d(x).sum(1, keepdims=True), "m": d(x).mean(-1, keepdims=True),
        "mx": d(x).max((1, 2), keepdims=True), "centred": d(x) - d(x).mean(-1, keepdims=True)}


@case
def reduce_all_axes(g):
    # No axis: every axis, batch included (docs/language.md §4); all samples fit one batch here.
    x = g.x(3, 2)
    return model("""
        input x: f32[3, 2]
        output a = x - mean(x)
        output b = x / sum(abs(x))
        output c = x - max(x)
        output e = x - mean(x, keepdims=true)
    """), {"x": x}, {}, {
        "a": d(x) - d(x).mean(), "b": d(x) / np.abs(d(x)).sum(), "c": d(x) - d(x).max(), "e": d(x) - d(x).mean()}


@case
def reduce_batch_axis(g):
    x = g.x(4)
    return model("""
        input x: f32[4]
        output a = x - mean(x, axis=0)
        output b = x / sum(abs(x), axis=[0, 1], keepdims=true)
        output c = max(x, axis=0, keepdims=true) - x
    """), {"x": x}, {}, {
        "a": d(x) - d(x).mean(0), "b": d(x) / np.abs(d(x)).sum(), "c": d(x).max(0, keepdims=True) - d(x)}


@case
def reduce_argmax(g):
    x = g.x(3, 5)
    return model("""
        input x: f32[3, 5]
        output last = argmax(x)
        output mid = argmax(x, axis=1)
        output neg = argmax(x, axis=-2)
    """), {"x": x}, {}, {
        "last": d(x).argmax(-1).astype(i32), "mid": d(x).argmax(1).astype(i32), "neg": d(x).argmax(-2).astype(i32)}


# -- shape ----------------------------------------------------------------------------------------------------------


@case
def shape_flatten(g):
    x, v = g.x(2, 3, 4), g.x(5)
    return model("""
        input x: f32[2, 3, 4]
        input v: f32[5]
        output f = flatten(x)
        output fv = flatten(v)
    """), {"x": x, "v": v}, {}, {"f": d(x).reshape(g.n, -1), "fv": d(v)}


@case
def shape_reshape(g):
    x = g.x(4, 6)
    return model("""
        input x: f32[4, 6]
        output a = reshape(x, [24])
        output b = reshape(x, [3, -1])
        output c = reshape(x, [-1, 2, 3])
        output e = reshape(x, [2, 3, 4]) * 2
    """), {"x": x}, {}, {
        "a": d(x).reshape(g.n, 24), "b": d(x).reshape(g.n, 3, 8), "c": d(x).reshape(g.n, 4, 2, 3),
        "e": d(x).reshape(g.n, 2, 3, 4) * 2}


@case
def shape_transpose(g):
    x, y = g.x(3, 4), g.x(2, 3, 4)
    return model("""
        input x: f32[3, 4]
        input y: f32[2, 3, 4]
        output a = transpose(x, [0, 2, 1])
        output b = transpose(y, [0, 3, 1, 2])
        output c = transpose(y, [0, 2, 3, 1])
        output e = transpose(y, perm=[0, 1, 3, 2]) + 1
    """), {"x": x, "y": y}, {}, {
        "a": d(x).transpose(0, 2, 1), "b": d(y).transpose(0, 3, 1, 2), "c": d(y).transpose(0, 2, 3, 1),
        "e": d(y).transpose(0, 1, 3, 2) + 1}


@case
def shape_concat(g):
    a, b, c = g.x(2, 3), g.x(2, 1), g.x(2, 2)
    p, q = g.x(1, 3), g.x(3, 3)
    u, v = g.x(2, 1, 2), g.x(2, 3, 2)
    return model("""
        input a: f32[2, 3]
        input b: f32[2, 1]
        input c: f32[2, 2]
        input p: f32[1, 3]
        input q: f32[3, 3]
        input u: f32[2, 1, 2]
        input v: f32[2, 3, 2]
        output last = concat(a, b, c)
        output last_kw = concat(a, c, axis=-1)
        output first = concat(p, q, a, axis=1)
        output middle = concat(u, v, u, axis=2)
    """), {"a": a, "b": b, "c": c, "p": p, "q": q, "u": u, "v": v}, {}, {
        "last": np.concatenate([d(a), d(b), d(c)], -1), "last_kw": np.concatenate([d(a), d(c)], -1),
        "first": np.concatenate([d(p), d(q), d(a)], 1), "middle": np.concatenate([d(u), d(v), d(u)], 2)}


@case
def shape_slice(g):
    # slice(x, axis, start, end=none) is NumPy's x[.., start:end] on one axis: positive and negative bounds, the
    # end left out, the whole axis (x itself), a middle axis of a rank-4 value, an unbatched param (axis 0 is
    # its own), i32 data, and the keyword and pipe forms
    x, y, k = g.x(4, 5), g.x(3, 4, 2), g.ints(-9, 9, g.n, 6)
    p = g.normal(4, 5)
    return model("""
        input x: f32[4, 5]
        input y: f32[3, 4, 2]
        input k: i32[6]
        param p: f32[4, 5] = zeros
        output a = slice(x, 1, 1, 3)
        output b = slice(x, -1, -2)
        output c = slice(x, 2, 0, -1) * 2
        output e = slice(x, 2, 0, 5)
        output f = slice(y, 2, 1, -1)
        output h = x |> slice(axis=1, start=-3, end=-1)
        output q = slice(x, 1, 1, 4) + slice(p, 0, 1)
        output i = slice(k, 1, 2, 5)
    """), {"x": x, "y": y, "k": k}, {"p": p}, {
        "a": d(x)[:, 1:3], "b": d(x)[:, :, -2:], "c": d(x)[:, :, 0:-1] * 2, "e": d(x), "f": d(y)[:, :, 1:-1],
        "h": d(x)[:, -3:-1], "q": d(x)[:, 1:4] + d(p)[1:], "i": k[:, 2:5]}


# -- softmax ----------------------------------------------------------------------------------------------------------


@case
def softmax_axes(g):
    x = g.x(3, 4, scale=2)
    return model("""
        input x: f32[3, 4]
        output s_last = softmax(x)
        output s_mid = softmax(x, axis=1)
        output l_last = log_softmax(x, axis=-1)
        output l_mid = log_softmax(x, axis=-2)
    """), {"x": x}, {}, {
        "s_last": softmax(x, -1), "s_mid": softmax(x, 1), "l_last": log_softmax(x, -1), "l_mid": log_softmax(x, 1)}


@case
def softmax_large_logits(g):
    # exp(100) overflows float32: only the max-subtracted form survives.
    # A spread of hundreds: the small probabilities underflow, log_softmax must stay finite (no log(0)).
    x = g.x(5, scale=3) + np.float32(100)
    w = g.x(5, scale=200)
    return model("""
        input x: f32[5]
        input w: f32[5]
        output s = softmax(x)
        output l = log_softmax(x)
        output n = softmax(-x)
        output ws = softmax(w)
        output wl = log_softmax(w)
    """), {"x": x, "w": w}, {}, {"s": softmax(x), "l": log_softmax(x), "n": softmax(-d(x)), "ws": softmax(w),
                                 "wl": log_softmax(w)}


@case
def softmax_log_offset(g):
    # log_softmax of logits near 1e4 with a spread of a few units (ONNX's test_logsoftmax_large_number): the
    # result is O(1) and must be exact to f32's precision there, which x - (max + log(sum)) was not (it
    # rounded max + log(sum) at 1e4: 2.4e-4 off); (x - max) - log(sum) is
    x = np.float32(10000) + np.round(g.x(4, scale=2), 2)
    return model("""
        input x: f32[4]
        output l = log_softmax(x)
        output r = log_softmax(x, axis=1) - log_softmax(x - 10000.0)
    """), {"x": x}, {}, {"l": log_softmax(x), "r": np.zeros((g.n, 4))}


@case
def softmax_single_class(g):
    x = g.x(3, 1)
    return model("""
        input x: f32[3, 1]
        output s = softmax(x)
        output l = log_softmax(x)
        output s_mid = softmax(x, axis=1)
    """), {"x": x}, {}, {"s": softmax(x), "l": log_softmax(x), "s_mid": softmax(x, 1)}


# -- dense ------------------------------------------------------------------------------------------------------------


@case
def dense_bias(g):
    x, w, b = g.x(5), g.normal(5, 3), g.normal(3)
    return model("""
        input x: f32[5]
        h = dense(x, 3)
        output h
    """), {"x": x}, {"h.weight": w, "h.bias": b}, {"h": dense_ref(x, w, b)}


@case
def dense_no_bias(g):
    x, w = g.x(5), g.normal(5, 4)
    return model("""
        input x: f32[5]
        output y = dense(x, 4, use_bias=false)
    """), {"x": x}, {"y.weight": w}, {"y": dense_ref(x, w)}


@case
def dense_activations(g):
    x = g.x(4, scale=2)
    wts, outs, lines = {}, {}, ["input x: f32[4]"]
    for act in ["none", "relu", "sigmoid", "tanh", "softmax", "leaky_relu"]:
        w, b = g.normal(4, 3), g.normal(3)
        wts[f"d_{act}.weight"], wts[f"d_{act}.bias"] = w, b
        lines.append(f"d_{act} = dense(x, 3, activation={act})")
        lines.append(f"output d_{act}")
        outs[f"d_{act}"] = dense_ref(x, w, b, act)
    return model("\n".join(lines)), {"x": x}, wts, outs


@case
def dense_rank3(g):
    x, w, b = g.x(3, 4), g.normal(4, 5), g.normal(5)
    w2, b2 = g.normal(5, 3), g.normal(3)
    return model("""
        input x: f32[3, 4]
        h = dense(x, 5, activation=tanh)
        output p = dense(h, 3, activation=softmax)
    """), {"x": x}, {"h.weight": w, "h.bias": b, "p.weight": w2, "p.bias": b2}, {
        "p": dense_ref(dense_ref(x, w, b, "tanh"), w2, b2, "softmax")}


@case
def dense_naming(g):
    # name= wins; else the name the value is bound to; a rebound name gets _2.
    x = g.x(4)
    w = {k: g.normal(*s) for k, s in [
        ("fc.weight", (4, 3)), ("fc.bias", (3,)), ("h.weight", (3, 3)), ("h.bias", (3,)),
        ("h_2.weight", (3, 2)), ("h_2.bias", (2,)), ("out.weight", (2, 2)), ("out.bias", (2,))]}
    a = dense_ref(x, w["fc.weight"], w["fc.bias"], "relu")
    h = dense_ref(a, w["h.weight"], w["h.bias"])
    h = dense_ref(h, w["h_2.weight"], w["h_2.bias"])
    return model("""
        input x: f32[4]
        a = dense(x, 3, activation=relu, name="fc")
        h = dense(a, 3)
        h = dense(h, 2)
        output h
        output out = dense(h, 2)
    """), {"x": x}, w, {"h": h, "out": dense_ref(h, w["out.weight"], w["out.bias"])}


@case
def dense_naming_unnamed(g):
    # Values not bound to a name: dense_K, K counting the dense calls in source order. Every dense here
    # is unnamed, so counting all calls or only the unnamed ones gives the same names.
    x = g.x(4)
    w = {k: g.normal(*s) for k, s in [
        ("dense_1.weight", (4, 2)), ("dense_1.bias", (2,)), ("dense_2.weight", (4, 2)), ("dense_2.bias", (2,)),
        ("dense_3.weight", (2, 3)), ("dense_3.bias", (3,))]}
    u = np.maximum(dense_ref(x, w["dense_1.weight"], w["dense_1.bias"]), 0) + \
        np.tanh(dense_ref(x, w["dense_2.weight"], w["dense_2.bias"]))
    return model("""
        input x: f32[4]
        u = relu(dense(x, 2)) + tanh(dense(x, 2))
        output y = relu(dense(u, 3))
    """), {"x": x}, w, {"y": np.maximum(dense_ref(u, w["dense_3.weight"], w["dense_3.bias"]), 0)}


# -- conv2d ------------------------------------------------------------------------------------------------------------


def conv_case(g, hw, cin, filters, kernel, stride=1, padding="valid", act="none", bias=True, extra=""):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    x, w, b = g.x(*hw, cin), g.normal(kh, kw, cin, filters, scale=0.5), g.normal(filters)
    args = f"conv2d(x, {filters}, {kernel}{', stride=' + str(stride) if stride != 1 else ''}" \
           f"{', padding=' + padding if padding != 'valid' else ''}" \
           f"{', activation=' + act if act != 'none' else ''}{'' if bias else ', use_bias=false'}{extra})"
    wts = {"c.weight": w}
    if bias:
        wts["c.bias"] = b
    y = conv2d_ref(x, w, b if bias else None, (sh, sw), padding == "same", act)
    return model(f"""
        input x: f32[{hw[0]}, {hw[1]}, {cin}]
        c = {args}
        output c
    """), {"x": x}, wts, {"c": y}


@case
def conv_valid_s1(g):
    return conv_case(g, (6, 5), 2, 3, 3)


@case
def conv_same_s1(g):
    return conv_case(g, (6, 5), 2, 3, 3, padding="same")


@case
def conv_valid_s2(g):
    return conv_case(g, (7, 6), 2, 3, 3, stride=2)


@case
def conv_same_s2(g):
    # 7x6, k3, s2: out 4x3, padding rows 1+1, columns 0+1 (the odd column at the right)
    return conv_case(g, (7, 6), 2, 3, 3, stride=2, padding="same")


@case
def conv_same_even_kernel(g):
    # k2, s1: one padding row and column, both at the bottom/right
    return conv_case(g, (5, 4), 3, 2, 2, padding="same")


@case
def conv_same_k4_s3(g):
    return conv_case(g, (8, 7), 1, 2, 4, stride=3, padding="same")


@case
def conv_rect_kernel_valid(g):
    return conv_case(g, (6, 5), 2, 4, [3, 2])


@case
def conv_rect_kernel_same(g):
    return conv_case(g, (6, 5), 2, 4, [3, 2], stride=[2, 1], padding="same")


@case
def conv_no_bias_relu(g):
    return conv_case(g, (5, 5), 3, 2, 3, act="relu", bias=False)


@case
def conv_activations(g):
    x = g.x(5, 4, 2)
    wts, outs, lines = {}, {}, ["input x: f32[5, 4, 2]"]
    for act in ["sigmoid", "tanh", "leaky_relu", "softmax"]:
        w, b = g.normal(3, 3, 2, 3, scale=0.5), g.normal(3)
        wts[f"c_{act}.weight"], wts[f"c_{act}.bias"] = w, b
        lines.append(f"c_{act} = conv2d(x, 3, 3, padding=same, activation={act})")
        lines.append(f"output c_{act}")
        outs[f"c_{act}"] = conv2d_ref(x, w, b, (1, 1), True, act)
    return model("\n".join(lines)), {"x": x}, wts, outs


@case
def conv_1x1_stride_kwargs(g):
    x, w, b = g.x(4, 4, 3), g.normal(1, 1, 3, 5), g.normal(5)
    return model("""
        input x: f32[4, 4, 3]
        c = conv2d(x, filters=5, kernel=1, stride=[1, 2], padding=valid)
        output c
    """), {"x": x}, {"c.weight": w, "c.bias": b}, {"c": conv2d_ref(x, w, b, (1, 2), False)}


# conv2d with groups (depthwise: groups = channels), dilation and explicit padding [top, bottom, left, right]


def conv_groups_case(g, hw, cin, filters, kernel, stride=1, padding="valid", act="none", bias=True, groups=1,
                     dilation=1):
    kh, kw = pair(kernel)
    x, w, b = g.x(*hw, cin), g.normal(kh, kw, cin // groups, filters, scale=0.5), g.normal(filters)
    opt = [f"stride={stride}" if stride != 1 else "",
           f"padding={padding}" if padding != "valid" else "",
           f"activation={act}" if act != "none" else "",
           "" if bias else "use_bias=false",
           f"groups={groups}" if groups != 1 else "",
           f"dilation={dilation}" if dilation != 1 else ""]
    args = ", ".join([f"conv2d(x, {filters}, {kernel}"] + [o for o in opt if o]) + ")"
    wts = {"c.weight": w}
    if bias:
        wts["c.bias"] = b
    y = conv2d_groups_ref(x, w, b if bias else None, stride, padding, groups, dilation, act)
    return model(f"""
        input x: f32[{hw[0]}, {hw[1]}, {cin}]
        c = {args}
        output c
    """), {"x": x}, wts, {"c": y}


@case
def conv_groups_2(g):
    return conv_groups_case(g, (6, 5), 4, 6, 3, groups=2)


@case
def conv_groups_4_same_relu(g):
    return conv_groups_case(g, (5, 6), 8, 12, 3, padding="same", act="relu", groups=4)


@case
def conv_groups_2_wide(g):
    # 32 filters in 2 groups of 16: the size at which one group uses the 2x16 blocks (-O2)
    return conv_groups_case(g, (5, 4), 6, 32, [3, 2], padding="same", groups=2)


@case
def conv_groups_same_s2_tanh_nobias(g):
    return conv_groups_case(g, (7, 6), 4, 6, 3, stride=2, padding="same", act="tanh", bias=False, groups=2)


@case
def conv_depthwise(g):
    return conv_groups_case(g, (6, 5), 5, 5, 3, padding="same", groups=5)


@case
def conv_depthwise_wide_s2(g):
    # MobileNet's case: many channels, stride 2, same padding, relu
    return conv_groups_case(g, (7, 8), 24, 24, 3, stride=2, padding="same", act="relu", groups=24)


@case
def conv_depthwise_multiplier(g):
    # filters = 2 * channels: each channel feeds two filters
    return conv_groups_case(g, (5, 6), 3, 6, [3, 2], groups=3)


@case
def conv_dilation_2(g):
    return conv_groups_case(g, (7, 6), 2, 3, 3, dilation=2)


@case
def conv_dilation_rect_same(g):
    # dilation [2, 1] with same padding: TensorFlow's padding over the dilated 5x3 extent
    return conv_groups_case(g, (6, 5), 3, 4, 3, padding="same", dilation=[2, 1])


@case
def conv_dilation_wide_same(g):
    # 16 filters: the 2x16 blocks (-O2) with dilation and padding
    return conv_groups_case(g, (7, 7), 3, 16, 3, padding="same", dilation=2, act="relu")


@case
def conv_dilation_s2_same_groups(g):
    # stride 2 with same padding over the dilated 5x5 extent, in 2 groups
    return conv_groups_case(g, (9, 8), 4, 6, 3, stride=2, padding="same", groups=2, dilation=2, act="relu")


@case
def conv_padding_explicit(g):
    # asymmetric [top, bottom, left, right]
    return conv_groups_case(g, (5, 4), 2, 3, 3, stride=[1, 2], padding=[2, 0, 1, 3])


@case
def conv_padding_explicit_wide(g):
    return conv_groups_case(g, (4, 5), 2, 17, [2, 3], padding=[0, 1, 2, 0], act="sigmoid")


@case
def conv_depthwise_dilated_padded(g):
    return conv_groups_case(g, (6, 6), 4, 8, 3, stride=2, padding=[1, 2, 3, 0], groups=4, dilation=[1, 2])


# -- pad ----------------------------------------------------------------------------------------------------------------


def pad_ref(x, pads, value=0.0):
    """pad(x, [top, bottom, left, right], value): NumPy's np.pad of the H and W axes, checked against PyTorch's
    F.pad (which lists the last axis first: C, then W, then H)."""
    t, b, l, r = pads
    v = float(np.float32(value))  # the value as nnc holds it: f32
    y = np.pad(d(x), ((0, 0), (t, b), (l, r), (0, 0)), constant_values=v)
    yt = F.pad(t64(x), (0, 0, l, r, t, b), value=v).numpy()
    assert y.shape == yt.shape and np.array_equal(y, yt)
    return y


@case
def pad_zero(g):
    # asymmetric amounts, the default value 0, one axis alone, and the keyword and pipe forms
    x = g.x(4, 3, 2)
    return model("""
        input x: f32[4, 3, 2]
        output a = pad(x, [1, 2, 3, 0])
        output h = pad(x, [0, 3, 0, 0])
        output w = x |> pad(padding=[0, 0, 2, 1])
    """), {"x": x}, {}, {"a": pad_ref(x, (1, 2, 3, 0)), "h": pad_ref(x, (0, 3, 0, 0)), "w": pad_ref(x, (0, 0, 2, 1))}


@case
def pad_value(g):
    # a value other than 0 (negative, not exact in f32, an integer), asymmetric, and every amount 0 (x itself);
    # with value 1e9 the cells of x must come out as they are: x - 1e9 + 1e9 would round them to multiples of 64
    x = g.x(3, 4, 3)
    return model("""
        input x: f32[3, 4, 3]
        output a = pad(x, [2, 1, 0, 3], value=-1.5)
        output b = pad(x, [0, 1, 2, 0], value=0.1)
        output c = pad(x * 2, [1, 1, 1, 1], 7)
        output z = pad(x, [0, 0, 0, 0], value=3.0)
        output big = pad(x, [1, 0, 0, 1], value=1e9)
    """), {"x": x}, {}, {
        "a": pad_ref(x, (2, 1, 0, 3), -1.5), "b": pad_ref(x, (0, 1, 2, 0), 0.1),
        "c": pad_ref(2 * d(x), (1, 1, 1, 1), 7), "z": d(x), "big": pad_ref(x, (1, 0, 0, 1), 1e9)}


@case
def pad_conv(g):
    # pad then a valid conv2d is conv2d with the same explicit padding (value 0); with value 1 it is not, and
    # the reference pads by NumPy first
    x = g.x(5, 4, 2)
    w = {"c.weight": g.normal(3, 3, 2, 3, scale=0.5), "c.bias": g.normal(3),
         "k.weight": g.normal(2, 2, 2, 2, scale=0.5), "k.bias": g.normal(2)}
    ones = pad_ref(x, (1, 0, 2, 1), 1.0)
    return model("""
        input x: f32[5, 4, 2]
        output c = conv2d(pad(x, [2, 0, 1, 3]), 3, 3, stride=[1, 2], name="c")
        output k = conv2d(pad(x, [1, 0, 2, 1], value=1), 2, 2, name="k")
    """), {"x": x}, w, {
        "c": conv2d_groups_ref(x, w["c.weight"], w["c.bias"], stride=[1, 2], padding=[2, 0, 1, 3]),
        "k": conv2d_groups_ref(ones, w["k.weight"], w["k.bias"])}


# -- pooling ----------------------------------------------------------------------------------------------------------


def pool_case(g, kind, hw, c, call, pool, stride, same, shift=0.0):
    x = g.x(*hw, c) + np.float32(shift)
    return model(f"""
        input x: f32[{hw[0]}, {hw[1]}, {c}]
        output y = {call}
    """), {"x": x}, {}, {"y": pool2d_ref(x, kind, pool, stride, same)}


@case
def maxpool_default(g):
    return pool_case(g, "max", (6, 5), 3, "maxpool2d(x)", (2, 2), (2, 2), False)


@case
def maxpool_3_s2(g):
    return pool_case(g, "max", (7, 6), 2, "maxpool2d(x, 3, stride=2)", (3, 3), (2, 2), False)


@case
def maxpool_2_s1(g):
    return pool_case(g, "max", (5, 4), 2, "maxpool2d(x, pool=2, stride=1)", (2, 2), (1, 1), False)


@case
def maxpool_same_2(g):
    # all values negative: a zero from the padding would win
    return pool_case(g, "max", (5, 5), 2, "maxpool2d(x, 2, padding=same)", (2, 2), (2, 2), True, shift=-10)


@case
def maxpool_same_3_s1(g):
    return pool_case(g, "max", (4, 5), 2, "maxpool2d(x, 3, stride=1, padding=same)", (3, 3), (1, 1), True,
                     shift=-10)


@case
def maxpool_same_3_s2(g):
    return pool_case(g, "max", (6, 7), 1, "maxpool2d(x, 3, stride=2, padding=same)", (3, 3), (2, 2), True,
                     shift=-10)


@case
def avgpool_default(g):
    return pool_case(g, "avg", (6, 5), 3, "avgpool2d(x)", (2, 2), (2, 2), False)


@case
def avgpool_3_s2(g):
    return pool_case(g, "avg", (7, 6), 2, "avgpool2d(x, 3, stride=2)", (3, 3), (2, 2), False)


@case
def avgpool_same_2(g):
    # shifted so that counting the padding in the divisor would be visible
    return pool_case(g, "avg", (5, 5), 2, "avgpool2d(x, 2, padding=same)", (2, 2), (2, 2), True, shift=5)


@case
def avgpool_same_3_s1(g):
    return pool_case(g, "avg", (4, 5), 2, "avgpool2d(x, 3, stride=1, padding=same)", (3, 3), (1, 1), True, shift=5)


@case
def avgpool_same_3_s2(g):
    return pool_case(g, "avg", (6, 7), 1, "avgpool2d(x, pool=3, stride=2, padding=same)", (3, 3), (2, 2), True,
                     shift=5)


@case
def pool_rect(g):
    x = g.x(6, 7, 2)
    return model("""
        input x: f32[6, 7, 2]
        output mx = maxpool2d(x, [2, 3], stride=[2, 1])
        output av = avgpool2d(x, [3, 2], stride=[1, 2], padding=same)
    """), {"x": x}, {}, {
        "mx": pool2d_ref(x, "max", (2, 3), (2, 1), False), "av": pool2d_ref(x, "avg", (3, 2), (1, 2), True)}


def pool2d_pad_ref(x, kind, pool, stride, pads, count_pad=False):
    """NHWC pooling with explicit padding (top, bottom, left, right), written out in NumPy: max over the
    window's input cells, avg over them divided by their count, or by the whole window with count_pad.
    Cross-checked with PyTorch on NCHW: max over F.pad(-inf), the padded mean as a ratio of sum pools of
    F.pad(x, 0) and F.pad(ones, 0), and F.avg_pool2d(padding=) itself where the padding is symmetric."""
    x = d(x)
    (ph, pw), (sh, sw), (pt, pb, pl, pr) = pool, stride, pads
    oh, ow = (x.shape[1] + pt + pb - ph) // sh + 1, (x.shape[2] + pl + pr - pw) // sw + 1
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - pt, j * sw - pl
            win = x[:, max(r0, 0):min(r0 + ph, x.shape[1]), max(c0, 0):min(c0 + pw, x.shape[2]), :]
            if kind == "max":
                y[:, i, j, :] = win.max(axis=(1, 2))
            else:
                y[:, i, j, :] = win.sum(axis=(1, 2)) / (ph * pw if count_pad else win.shape[1] * win.shape[2])
    xt = t64(x).permute(0, 3, 1, 2)
    fp = (pl, pr, pt, pb)
    if kind == "max":
        yt = F.max_pool2d(F.pad(xt, fp, value=float("-inf")), (ph, pw), (sh, sw))
    else:
        total = F.avg_pool2d(F.pad(xt, fp), (ph, pw), (sh, sw), divisor_override=1)
        count = F.avg_pool2d(F.pad(torch.ones_like(xt), fp), (ph, pw), (sh, sw), divisor_override=1)
        yt = total / (ph * pw if count_pad else count)
        if pt == pb and pl == pr and 2 * pt <= ph and 2 * pl <= pw:
            ys = F.avg_pool2d(xt, (ph, pw), (sh, sw), padding=(pt, pl), count_include_pad=count_pad)
            assert np.allclose(y, ys.permute(0, 2, 3, 1).numpy(), rtol=1e-12, atol=1e-12)
    assert np.allclose(y, yt.permute(0, 2, 3, 1).numpy(), rtol=1e-12, atol=1e-12)
    return y


def pool_pad_case(g, kind, hw, c, call, pool, stride, pads, count_pad=False, shift=0.0):
    x = g.x(*hw, c) + np.float32(shift)
    return model(f"""
        input x: f32[{hw[0]}, {hw[1]}, {c}]
        output y = {call}
    """), {"x": x}, {}, {"y": pool2d_pad_ref(x, kind, pool, stride, pads, count_pad)}


@case
def maxpool_pad_list(g):
    # all values negative: a zero from the padding would win
    return pool_pad_case(g, "max", (6, 5), 3, "maxpool2d(x, 3, stride=2, padding=[1, 2, 0, 1])", (3, 3), (2, 2),
                         (1, 2, 0, 1), shift=-10)


@case
def maxpool_pad_list_rect(g):
    return pool_pad_case(g, "max", (5, 7), 17, "maxpool2d(x, [2, 3], stride=[1, 2], padding=[1, 0, 2, 2])", (2, 3),
                         (1, 2), (1, 0, 2, 2), shift=-10)


@case
def maxpool_pad_list_odd(g):
    # a 2x2 pool over an odd image, padded at the bottom/right to keep the last row and column
    return pool_pad_case(g, "max", (5, 5), 2, "maxpool2d(x, 2, padding=[0, 1, 0, 1])", (2, 2), (2, 2), (0, 1, 0, 1),
                         shift=-10)


@case
def avgpool_pad_list(g):
    # shifted so that counting the padding in the divisor would be visible
    return pool_pad_case(g, "avg", (6, 5), 3, "avgpool2d(x, 3, stride=2, padding=[2, 1, 1, 0])", (3, 3), (2, 2),
                         (2, 1, 1, 0), shift=5)


@case
def avgpool_pad_list_count_pad(g):
    return pool_pad_case(g, "avg", (6, 5), 3,
                         "avgpool2d(x, 3, stride=2, padding=[2, 1, 1, 0], count_include_pad=true)", (3, 3), (2, 2),
                         (2, 1, 1, 0), count_pad=True, shift=5)


@case
def avgpool_pad_list_rect_count_pad(g):
    return pool_pad_case(g, "avg", (5, 7), 17,
                         "avgpool2d(x, [2, 3], stride=[1, 2], padding=[1, 0, 2, 2], count_include_pad=true)", (2, 3),
                         (1, 2), (1, 0, 2, 2), count_pad=True, shift=5)


@case
def avgpool_count_pad(g):
    # symmetric padding (checked against F.avg_pool2d(padding=) itself), 'same' (tf: a value named 'same'
    # would shadow the word) and no padding, with and without count_include_pad; without padding both
    # divide by the whole window
    x = g.x(5, 6, 2) + np.float32(5)
    _, st, sb = tf_pads(5, 3, 1, True)
    _, sl, sr = tf_pads(6, 3, 1, True)
    return model("""
        input x: f32[5, 6, 2]
        output sym = avgpool2d(x, 3, stride=1, padding=[1, 1, 1, 1])
        output sym_cp = avgpool2d(x, 3, stride=1, padding=[1, 1, 1, 1], count_include_pad=true)
        output tf = avgpool2d(x, 3, stride=1, padding=same)
        output tf_cp = avgpool2d(x, 3, stride=1, padding=same, count_include_pad=true)
        output valid_cp = avgpool2d(x, 2, count_include_pad=true)
    """), {"x": x}, {}, {
        "sym": pool2d_pad_ref(x, "avg", (3, 3), (1, 1), (1, 1, 1, 1)),
        "sym_cp": pool2d_pad_ref(x, "avg", (3, 3), (1, 1), (1, 1, 1, 1), True),
        "tf": pool2d_ref(x, "avg", (3, 3), (1, 1), True),
        "tf_cp": pool2d_pad_ref(x, "avg", (3, 3), (1, 1), (st, sb, sl, sr), True),
        "valid_cp": pool2d_ref(x, "avg", (2, 2), (2, 2), False)}


@case
def pool_pad_edges(g):
    # a stride larger than the window, a 1x1 input whose every window is mostly padding, and a window as
    # large as the padded input
    x = g.x(5, 6, 3) - np.float32(3)
    small = g.x(1, 1, 2) + np.float32(2)
    return model("""
        input x: f32[5, 6, 3]
        input small: f32[1, 1, 2]
        output mx = maxpool2d(x, 3, stride=4, padding=[2, 2, 1, 1])
        output one = avgpool2d(small, 2, padding=[1, 0, 0, 1])
        output one_cp = avgpool2d(small, 2, padding=[1, 0, 0, 1], count_include_pad=true)
        output one_mx = maxpool2d(small - 5, 2, padding=[0, 1, 1, 0])
        output whole = avgpool2d(x, [6, 7], padding=[1, 0, 0, 1], count_include_pad=true)
    """), {"x": x, "small": small}, {}, {
        "mx": pool2d_pad_ref(x, "max", (3, 3), (4, 4), (2, 2, 1, 1)),
        "one": pool2d_pad_ref(small, "avg", (2, 2), (2, 2), (1, 0, 0, 1)),
        "one_cp": pool2d_pad_ref(small, "avg", (2, 2), (2, 2), (1, 0, 0, 1), True),
        "one_mx": pool2d_pad_ref(small - np.float32(5), "max", (2, 2), (2, 2), (0, 1, 1, 0)),
        "whole": pool2d_pad_ref(x, "avg", (6, 7), (1, 1), (1, 0, 0, 1), True)}

# -- batchnorm, dropout --------------------------------------------------------------------------------------------------


def bn_weights(g, name, c):
    return {f"{name}.gamma": g.normal(c), f"{name}.beta": g.normal(c), f"{name}.moving_mean": g.normal(c),
            f"{name}.moving_var": g.uniform(0.2, 3, c)}


@case
def batchnorm_default(g):
    x, w = g.x(4), bn_weights(g, "bn", 4)
    return model("""
        input x: f32[4]
        bn = batchnorm(x)
        output bn
    """), {"x": x}, w, {"bn": batchnorm_ref(x, w["bn.gamma"], w["bn.beta"], w["bn.moving_mean"],
                                              w["bn.moving_var"], 1e-3)}


@case
def batchnorm_rank4_epsilon(g):
    x, w = g.x(3, 3, 2), bn_weights(g, "bn", 2)
    w["bn.moving_var"][0] = 0.01  # epsilon matters here
    return model("""
        input x: f32[3, 3, 2]
        bn = batchnorm(x, momentum=0.9, epsilon=0.1)
        output bn
    """), {"x": x}, w, {"bn": batchnorm_ref(x, w["bn.gamma"], w["bn.beta"], w["bn.moving_mean"],
                                              w["bn.moving_var"], 0.1)}


@case
def dropout_identity(g):
    x, w, b = g.x(6), g.normal(6, 3), g.normal(3)
    return model("""
        input x: f32[6]
        h = dropout(x, 0.5)
        d = dense(h, 3)
        output y = dropout(d, rate=0.9)
        output h
    """), {"x": x}, {"d.weight": w, "d.bias": b}, {"y": dense_ref(x, w, b), "h": d(x)}


# -- lstm --------------------------------------------------------------------------------------------------------------------


def lstm_weights(g, name, f, u):
    return {f"{name}.weight": g.normal(f, 4 * u, scale=0.6), f"{name}.recurrent": g.normal(u, 4 * u, scale=0.6),
            f"{name}.bias": g.normal(4 * u, scale=0.5)}


@case
def lstm_last(g):
    x, w = g.x(5, 3), lstm_weights(g, "l", 3, 4)
    return model("""
        input x: f32[5, 3]
        l = lstm(x, 4)
        output l
    """), {"x": x}, w, {"l": lstm_ref(x, w["l.weight"], w["l.recurrent"], w["l.bias"])}


@case
def lstm_sequences(g):
    x = g.x(6, 2)
    w = {**lstm_weights(g, "l1", 2, 3), **lstm_weights(g, "l2", 3, 2)}
    s1 = lstm_ref(x, w["l1.weight"], w["l1.recurrent"], w["l1.bias"], True)
    s2 = lstm_ref(s1, w["l2.weight"], w["l2.recurrent"], w["l2.bias"], False)
    return model("""
        input x: f32[6, 2]
        l1 = lstm(x, 3, return_sequences=true)
        l2 = lstm(l1, 2)
        output l1
        output l2
    """), {"x": x}, w, {"l1": s1, "l2": s2}


@case
def lstm_one_step(g):
    x, w = g.x(1, 4), lstm_weights(g, "l", 4, 2)
    return model("""
        input x: f32[1, 4]
        l = lstm(x, 2, return_sequences=true)
        output l
    """), {"x": x}, w, {"l": lstm_ref(x, w["l.weight"], w["l.recurrent"], w["l.bias"], True)}


# -- the language: def blocks, pipe, outputs, i32, const, param ------------------------------------------------------------


DEF_BLOCK = """
    def block(x, u) {
        d = dense(x, u)
        return relu(d)
    }
"""


@case
def def_block_naming(g):
    # docs/language.md's example: h1 = block(x, 32) creates h1.d.weight; name= and nested defs nest the prefix.
    x = g.x(5)
    w = {}
    for p, (i, o) in {"h1.d": (5, 4), "second.d": (4, 3), "o.a.d": (3, 2), "o.b.d": (2, 2),
                      "o2.a.d": (5, 3), "o2.b.d": (3, 3)}.items():
        w[p + ".weight"], w[p + ".bias"] = g.normal(i, o), g.normal(o)
    blk = lambda v, p: np.maximum(dense_ref(v, w[p + ".weight"], w[p + ".bias"]), 0)  # noqa: E731
    h1 = blk(x, "h1.d")
    h2 = blk(h1, "second.d")
    o = blk(blk(h2, "o.a.d"), "o.b.d") * 2
    o2 = blk(blk(x, "o2.a.d"), "o2.b.d") * 0.5
    return model("""
        input x: f32[5]
        h1 = block(x, 4)
        h2 = block(h1, 3, name="second")
        o = outer(h2, 2)
        output h2
        output o
        output w = outer(x, 3, k=0.5, name="o2")
    """, DEF_BLOCK + """
    def outer(x, u, k=2) {
        a = block(x, u)
        b = block(a, u)
        return b * k
    }
    """), {"x": x}, w, {"h2": h2, "o": o, "w": o2}


@case
def def_unnamed_calls(g):
    x = g.x(5)
    w = {}
    for p, (i, o) in {"block_1.d": (5, 4), "block_2.d": (4, 3)}.items():
        w[p + ".weight"], w[p + ".bias"] = g.normal(i, o), g.normal(o)
    h = np.tanh(np.maximum(dense_ref(x, w["block_1.d.weight"], w["block_1.d.bias"]), 0))
    y = np.tanh(np.maximum(dense_ref(h, w["block_2.d.weight"], w["block_2.d.bias"]), 0))
    return model("""
        input x: f32[5]
        h = tanh(block(x, 4))
        output y = tanh(block(h, 3))
    """, DEF_BLOCK), {"x": x}, w, {"y": y}


@case
def def_no_params(g):
    x, y = g.x(4), g.x(4)
    return model("""
        input x: f32[4]
        input y: f32[4]
        output a = swish(x)
        output b = mix(x, y)
        output c = mix(x, y, t=0.25)
        output e = swish(mix(y, x, 0.75))
    """, """
    def swish(v) {
        return v * sigmoid(v)
    }
    def mix(a, b, t=0.5) {
        s = a * (1 - t)
        s = s + b * t
        return s
    }
    """), {"x": x, "y": y}, {}, {
        "a": d(x) * sigmoid(d(x)), "b": 0.5 * d(x) + 0.5 * d(y), "c": 0.75 * d(x) + 0.25 * d(y),
        "e": (lambda m: m * sigmoid(m))(0.25 * d(y) + 0.75 * d(x))}


@case
def pipe_chain(g):
    x = g.x(2, 3)
    w = {"p1.weight": g.normal(6, 4), "p1.bias": g.normal(4), "p2.weight": g.normal(4, 2),
         "p2.bias": g.normal(2)}
    h = dense_ref(d(x).reshape(g.n, 6), w["p1.weight"], w["p1.bias"], "relu")
    return model("""
        input x: f32[2, 3]
        output y = x |> flatten() |> dense(4, activation=relu, name="p1") |> dense(2, name="p2")
        output z = x + 1 |> relu()
        output c = x |> clip(-0.5, 0.5) |> leaky_relu(0.2)
        output s = x |> sum(axis=-1, keepdims=true)
        output cat = x |> concat(x * 2, axis=1)
        output multi = x
            |> abs()
            |> sqrt()
    """), {"x": x}, w, {
        "y": dense_ref(h, w["p2.weight"], w["p2.bias"]), "z": np.maximum(d(x) + 1, 0),
        "c": leaky(np.clip(d(x), -0.5, 0.5), 0.2), "s": d(x).sum(-1, keepdims=True),
        "cat": np.concatenate([d(x), d(x) * 2], 1), "multi": np.sqrt(np.abs(d(x)))}


@case
def outputs_multiple(g):
    x = g.x(3, 2)
    w = {"h.weight": g.normal(2, 4), "h.bias": g.normal(4)}
    h = dense_ref(x, w["h.weight"], w["h.bias"])
    return model("""
        input x: f32[3, 2]
        h = dense(x, 4)
        output probs = softmax(h)
        output h
        output cls = argmax(h)
        output flat = flatten(h)
        output first = x
    """), {"x": x}, w, {
        "probs": softmax(h), "h": h, "cls": h.argmax(-1).astype(i32), "flat": h.reshape(g.n, -1), "first": d(x)}


@case
def int32_inputs(g):
    x, idx, k = g.x(4), g.ints(-5, 6, g.n, 4), g.ints(-3, 4, g.n)
    return model("""
        input x: f32[4]
        input idx: i32[4]
        input k: i32[]
        output scaled = x * idx
        output shifted = idx + 0.5
        output ints = idx * 2 + 1
        output same = idx
        kk = k |> reshape([1])
        output per_sample = x * kk - kk
    """), {"x": x, "idx": idx, "k": k}, {}, {
        "scaled": d(x) * idx, "shifted": idx + 0.5, "ints": (idx * 2 + 1).astype(i32), "same": idx,
        "per_sample": d(x) * k[:, None] - k[:, None]}


@case
def const_declarations(g):
    x = g.x(6, 5, 2)
    w = {"c.weight": g.normal(3, 2, 2, 4, scale=0.5), "c.bias": g.normal(4),
         "d.weight": g.normal(4, 3), "d.bias": g.normal(3)}
    c = conv2d_ref(x, w["c.weight"], w["c.bias"], (2, 1), True, "relu")
    y = dense_ref(c.mean(axis=(1, 2)), w["d.weight"], w["d.bias"]) * 0.5 * 1.5 + 1
    return model("""
        input x: f32[6, 5, 2]
        const units = 3
        const filters = 4
        const shift = 4 * scale - 1
        c = conv2d(x, filters, [3, 2], stride=[2, 1], padding=same, activation=relu)
        d = dense(mean(c, axis=[1, 2]), units)
        output y = d * scale * 1.5 + shift
    """, """
    const scale = 0.5 * 3 - 1
    """), {"x": x}, w, {"y": y}


@case
def const_list(g):
    # A list constant used where a list literal is allowed (conv2d's kernel and stride).
    x = g.x(6, 5, 2)
    w = {"c.weight": g.normal(3, 2, 2, 2, scale=0.5), "c.bias": g.normal(2)}
    return model("""
        input x: f32[6, 5, 2]
        const stride = [2, 1]
        c = conv2d(x, 2, kernel, stride=stride, padding=same)
        output c
    """, """
    const kernel = [3, 2]
    """), {"x": x}, w, {"c": conv2d_ref(x, w["c.weight"], w["c.bias"], (2, 1), True)}


@case
def param_initialisers(g):
    # Every initialiser is overridden by the weights file: only the shapes matter.
    x = g.x(3)
    w = {"w": g.normal(3, 4), "b": g.normal(4), "s": g.normal(4), "t": g.normal(4), "u": g.normal(4),
         "v": g.normal(3), "z": g.normal(3), "q": g.normal(3)}
    y = (d(x) + d(w["v"]) * d(w["z"]) - d(w["q"])) @ d(w["w"]) * d(w["s"]) + d(w["b"]) - d(w["t"]) * d(w["u"])
    return model("""
        input x: f32[3]
        param w: f32[3, 4] = glorot_uniform
        param b: f32[4] = zeros
        param s: f32[4] = ones
        param t: f32[4] = constant(0.5)
        param u: f32[4] = normal(mean=0, std=0.1)
        param v: f32[3] = uniform(-1, 1)
        param z: f32[3] = he_normal
        param q: f32[3] = normal()
        output y = (x + v * z - q) @ w * s + b - t * u
    """), {"x": x}, w, {"y": y}


@case
def model_with_training_statements(g):
    # predict ignores targets, loss, metrics, optimizer and train(): no target data is given.
    x = g.x(4)
    w = {"h.weight": g.normal(4, 5), "h.bias": g.normal(5), "probs.weight": g.normal(5, 3), "probs.bias": g.normal(3)}
    h = dense_ref(x, w["h.weight"], w["h.bias"], "relu")
    return model("""
        input x: f32[4]
        target label: i32[]
        h = dense(x, 5, activation=relu)
        output probs = dense(h, 3, activation=softmax)
        loss sparse_categorical_crossentropy(probs, label)
        metric acc = accuracy(probs, label)
        optimizer adam(lr=0.001)
        train(epochs=2, batch=4)
    """), {"x": x}, w, {"probs": dense_ref(h, w["probs.weight"], w["probs.bias"], "softmax")}


# -- more edges ---------------------------------------------------------------------------------------------


@case
def reduce_argmax_ties(g):
    # Ties go to the first maximal index (NumPy and PyTorch do so).
    x = g.rng.integers(0, 3, (g.n, 2, 6)).astype(f32)
    x[0, 0] = 2
    return model("""
        input x: f32[2, 6]
        output last = argmax(x)
        output first_axis = argmax(x, axis=1)
    """), {"x": x}, {}, {"last": x.argmax(-1).astype(i32), "first_axis": x.argmax(1).astype(i32)}


@case
def reduce_logsumexp(g):
    x = g.x(3, 5, scale=3)
    m = d(x).max(-1, keepdims=True)
    return model("""
        input x: f32[3, 5]
        m = max(x, axis=-1, keepdims=true)
        output lse = log(sum(exp(x - m), axis=-1)) + max(x, axis=-1)
        output norm = x / sqrt(sum(x * x, axis=[1, 2], keepdims=true))
    """), {"x": x}, {}, {
        "lse": np.log(np.exp(d(x) - m).sum(-1)) + m[..., 0],
        "norm": d(x) / np.sqrt((d(x) ** 2).sum((1, 2), keepdims=True))}


# Not a case: nnc keeps the batch axis first in every value (docs/language.md, "Shapes"), so a transpose
# that moves axis 0 is a diagnostic (tests/diag), even when a second transpose would move it back.
def shape_transpose_batch_axis(g):
    # docs/language.md §4: axes count from the batch axis; a perm may move it, as long as the output has it first.
    x = g.x(3, 4)
    return model("""
        input x: f32[3, 4]
        t = transpose(x, [1, 0, 2])
        output y = transpose(exp(t), [1, 0, 2])
        output z = transpose(transpose(x, [2, 0, 1]), [1, 2, 0])
    """), {"x": x}, {}, {"y": np.exp(d(x)), "z": d(x)}


@case
def int32_ops(g):
    # i32 meets f32 as f32; i32 with integer constants stays i32; `/` is true division (NumPy, PyTorch).
    x, idx = g.x(4), g.ints(-7, 8, g.n, 4)
    return model("""
        input x: f32[4]
        input idx: i32[4]
        output half = idx / 2
        output scaled = idx * 0.5
        output neg = -idx
        output top = maximum(idx, 0)
        output flat = reshape(idx, [2, 2])
        output best = argmax(idx)
        output avg = mean(idx, axis=-1)
        output mixed = maximum(idx, x)
    """), {"x": x, "idx": idx}, {}, {
        "half": idx / 2, "scaled": idx * 0.5, "neg": (-idx).astype(i32),
        "top": np.maximum(idx, 0).astype(i32), "flat": idx.reshape(g.n, 2, 2), "best": idx.argmax(-1).astype(i32),
        "avg": idx.mean(-1), "mixed": np.maximum(idx, d(x))}


@case
def int32_concat(g):
    # concat of f32 and i32 promotes like arithmetic does (NumPy concatenate gives float).
    x, idx = g.x(4), g.ints(-7, 8, g.n, 2)
    return model("""
        input x: f32[4]
        input idx: i32[2]
        output cat = concat(x, idx)
        output cat_list = concat([idx, x], axis=-1)
    """), {"x": x, "idx": idx}, {}, {
        "cat": np.concatenate([d(x), idx], -1), "cat_list": np.concatenate([idx, d(x)], -1)}


@case
def fused_broadcast_chain(g):
    # One long elementwise chain over three broadcast shapes (what a fusion pass merges into one kernel).
    x, v, p = g.x(3, 4), g.x(1, 4), g.normal(4)
    return model("""
        input x: f32[3, 4]
        input v: f32[1, 4]
        param p: f32[4] = zeros
        output y = relu(x * v + p) / (1 + exp(-x)) - sqrt(abs(v) + 1) * tanh(p - x)
        output z = sigmoid(square(x - v) * 0.5) + minimum(v, p) - maximum(x, p) * 2
    """), {"x": x, "v": v}, {"p": p}, {
        "y": np.maximum(d(x) * d(v) + d(p), 0) / (1 + np.exp(-d(x))) - np.sqrt(np.abs(d(v)) + 1) * np.tanh(d(p) - d(x)),
        "z": sigmoid((d(x) - d(v)) ** 2 * 0.5) + np.minimum(d(v), d(p)) - np.maximum(d(x), d(p)) * 2}


@case
def const_folding(g):
    # Builtins applied to constants are folded at compile time (in float32) and must give the same values.
    x = g.x(3)
    k = np.exp(0.5), np.log(2.0) - 3 * np.tanh(0.3) + 2 + 1 + 0.5 + 8 + 9 + 2
    return model("""
        input x: f32[3]
        output y = x * exp(0.5) + log(2.0) - sqrt(9) * tanh(0.3) + maximum(1, 2) + clip(5, 0, 1) + sigmoid(0) + 2 ** 3 + square(-3) + abs(-2)
    """), {"x": x}, {}, {"y": d(x) * k[0] + k[1]}


@case
def const_builtin_expr(g):
    x = g.x(3)
    return model("""
        input x: f32[3]
        const c = exp(1.0) * 2 - sqrt(4)
        output y = x * c + half
    """, """
    const half = 1 / 2
    """), {"x": x}, {}, {"y": d(x) * (np.exp(1.0) * 2 - 2) + 0.5}


@case
def outputs_aliasing(g):
    # The same value as two outputs, views of inputs and of outputs, an output used later, rebinding.
    x = g.x(3)
    h = (d(x) * 2) + 1
    return model("""
        input x: f32[3]
        h = x * 2
        h = h + 1
        output a = h
        output b = h
        output c = flatten(x)
        output e = reshape(h, [3, 1])
        output f = a * 3
        output x2 = reshape(x, [1, 3])
    """), {"x": x}, {}, {"a": h, "b": h, "c": d(x), "e": h.reshape(g.n, 3, 1), "f": h * 3,
                         "x2": d(x).reshape(g.n, 1, 3)}


@case
def data_conversion(g):
    # docs/cli.md, data binding: <f8, <i8 and |u1 data converted to the declared type; a flattened per-sample shape is accepted.
    x = g.rng.standard_normal((g.n, 4))
    idx = g.rng.integers(-100, 100, (g.n, 2)).astype(np.int64)
    u = g.rng.integers(0, 256, (g.n, 3)).astype(np.uint8)
    m = g.x(6)
    return model("""
        input x: f32[4]
        input idx: i32[2]
        input u: f32[3]
        input m: f32[2, 3]
        output xs = x * 1
        output s = idx + 0
        output uf = u / 255
        output mt = transpose(m, [0, 2, 1])
    """), {"x": x, "idx": idx, "u": u, "m": m}, {}, {
        "xs": x.astype(f32), "s": idx.astype(i32), "uf": u / 255, "mt": d(m).reshape(g.n, 2, 3).transpose(0, 2, 1)}


@case
def model_selection(g):
    # Several models in one file: --model picks one; a top-level const and a def are shared.
    x = g.x(4)
    w = {"h.weight": g.normal(4, 3), "h.bias": g.normal(3)}
    return """# ops test model_selection: the second model is compiled
const k = 3

def affine(v, u) {
    h = dense(v, u)
    return h * k
}

model first {
    input x: f32[4]
    output y = dense(x, 2, name="unused")
}

model second {
    input x: f32[4]
    output y = relu(x |> affine(3, name="z")) + k
}
""", {"x": x}, {"z.h.weight": w["h.weight"], "z.h.bias": w["h.bias"]}, {
        "y": np.maximum(dense_ref(x, w["h.weight"], w["h.bias"]) * 3, 0) + 3}, ["--model", "second"]


@case
def lexical(g):
    # ';' separators, comments, exponent literals, a statement continued inside brackets and after an operator.
    x = g.x(4)
    return model("""
        input x: f32[4]   # trailing comment
        a = x * 1e-3; b = x * 5e2 ; c = x / 2.5
        # a comment line
        output y = a + b -
            c
        output z = clip(x,
                        -0.25,
                        0.25)
    """), {"x": x}, {}, {"y": d(x) * 1e-3 + d(x) * 5e2 - d(x) / 2.5, "z": np.clip(d(x), -0.25, 0.25)}


@case
def def_batchnorm_dropout(g):
    # models/mlp_bn.nn's block: CALL.INNER names for dense and batchnorm; dropout is the identity.
    x = g.x(6)
    w = {}
    for call, (i, o) in {"h1": (6, 5), "h2": (5, 4)}.items():
        w[f"{call}.d.weight"], w[f"{call}.d.bias"] = g.normal(i, o), g.normal(o)
        w.update(bn_weights(g, f"{call}.bn", o))
    w["logits.weight"], w["logits.bias"] = g.normal(4, 3), g.normal(3)

    def blk(v, c):
        h = dense_ref(v, w[f"{c}.d.weight"], w[f"{c}.d.bias"])
        return np.maximum(batchnorm_ref(h, w[f"{c}.bn.gamma"], w[f"{c}.bn.beta"], w[f"{c}.bn.moving_mean"],
                                        w[f"{c}.bn.moving_var"], 1e-3), 0)
    return model("""
        input x: f32[6]
        h1 = block(x, 5, 0.3)
        h2 = block(h1, 4, 0.3)
        output logits = dense(h2, 3)
    """, """
    def block(x, units, rate) {
        d = dense(x, units)
        bn = batchnorm(d)
        return dropout(relu(bn), rate)
    }
    """), {"x": x}, w, {"logits": dense_ref(blk(blk(x, "h1"), "h2"), w["logits.weight"], w["logits.bias"])}


@case
def pipe_into_def(g):
    x = g.x(5)
    w = {"p.d.weight": g.normal(5, 3), "p.d.bias": g.normal(3)}
    return model("""
        input x: f32[5]
        p = x |> block(3)
        output p
    """, DEF_BLOCK), {"x": x}, w, {"p": np.maximum(dense_ref(x, w["p.d.weight"], w["p.d.bias"]), 0)}


@case
def batchnorm_rank3(g):
    x, w = g.x(4, 3), bn_weights(g, "bn", 3)
    return model("""
        input x: f32[4, 3]
        bn = batchnorm(x, epsilon=1e-5)
        output bn
    """), {"x": x}, w, {"bn": batchnorm_ref(x, w["bn.gamma"], w["bn.beta"], w["bn.moving_mean"],
                                              w["bn.moving_var"], 1e-5)}


@case
def dense_odd_sizes(g):
    # Sizes that are not multiples of a vector width, and enough work for any large-matrix code path.
    g.n = 70
    x, w, b = g.x(37), g.normal(37, 29, scale=0.3), g.normal(29)
    w1, b1 = g.normal(29, 1), g.normal(1)
    h = dense_ref(x, w, b, "relu")
    return model("""
        input x: f32[37]
        h = dense(x, 29, activation=relu)
        output y = dense(h, 1)
        output h
    """), {"x": x}, {"h.weight": w, "h.bias": b, "y.weight": w1, "y.bias": b1}, {
        "y": dense_ref(h, w1, b1), "h": h}, ["--batch", "64"]


@case
def conv_larger(g):
    x, w, b = g.x(12, 11, 5), g.normal(3, 3, 5, 7, scale=0.3), g.normal(7)
    return model("""
        input x: f32[12, 11, 5]
        c = conv2d(x, 7, 3, padding=same, activation=relu)
        output c
    """), {"x": x}, {"c.weight": w, "c.bias": b}, {"c": conv2d_ref(x, w, b, (1, 1), True, "relu")}


@case
def conv_stride_over_kernel(g):
    x = g.x(7, 8, 2)
    w1, b1, w2, b2 = g.normal(2, 2, 2, 3), g.normal(3), g.normal(2, 2, 2, 3), g.normal(3)
    return model("""
        input x: f32[7, 8, 2]
        v = conv2d(x, 3, 2, stride=3)
        s = conv2d(x, 3, 2, stride=3, padding=same)
        output v
        output s
    """), {"x": x}, {"v.weight": w1, "v.bias": b1, "s.weight": w2, "s.bias": b2}, {
        "v": conv2d_ref(x, w1, b1, (3, 3), False), "s": conv2d_ref(x, w2, b2, (3, 3), True)}


@case
def pool_edges(g):
    # Windows larger than the input with 'same' padding on both sides, and strides larger than the pool.
    x, small = g.x(4, 4, 2) - np.float32(10), g.x(2, 2, 2) + np.float32(3)
    return model("""
        input x: f32[4, 4, 2]
        input small: f32[2, 2, 2]
        output mx = maxpool2d(x, 3, stride=3, padding=same)
        output av = avgpool2d(small, 3, stride=1, padding=same)
        output gap = avgpool2d(x, 2, stride=3)
        output gmx = maxpool2d(small, 3, padding=same)
    """), {"x": x, "small": small}, {}, {
        "mx": pool2d_ref(x, "max", (3, 3), (3, 3), True), "av": pool2d_ref(small, "avg", (3, 3), (1, 1), True),
        "gap": pool2d_ref(x, "avg", (2, 2), (3, 3), False), "gmx": pool2d_ref(small, "max", (3, 3), (3, 3), True)}


@case
def dense_single_unit(g):
    x, w, b = g.x(1), g.normal(1, 1), g.normal(1)
    return model("""
        input x: f32[1]
        output y = dense(x, 1, activation=sigmoid)
    """), {"x": x}, {"y.weight": w, "y.bias": b}, {"y": dense_ref(x, w, b, "sigmoid")}


@case
def arith_pow_general(g):
    # Integer exponents other than 2 and 3 on negative bases (pow(x, 4) must not go through log(x)).
    x = g.away(g.n, 6)
    return model("""
        input x: f32[6]
        output p4 = x ** 4
        output pm2 = x ** -2
        output p0 = x ** 0
        output p1 = x ** 1
        output p5 = (x - 1) ** 5
    """), {"x": x}, {}, {"p4": d(x) ** 4, "pm2": d(x) ** -2.0, "p0": d(x) ** 0, "p1": d(x), "p5": (d(x) - 1) ** 5}


@case
def ieee_arithmetic(g):
    # Inf and NaN inputs: x * 0, x - x and x / x are NaN for them, so none may be simplified away.
    x = g.x(6)
    x[0] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return model("""
            input x: f32[6]
            output mul0 = x * 0
            output sub = x - x
            output div = x / x
            output ident = x * 1 + 0
        """), {"x": x}, {}, {"mul0": d(x) * 0, "sub": d(x) - d(x), "div": d(x) / d(x), "ident": d(x) * 1 + 0}


@case
def inplace_hazards(g):
    # Values that stay live after an op that could run in place over them, and a view of one.
    x = g.x(2, 3)
    a = np.exp(d(x))
    b = a + 1
    v = d(x) * 2
    return model("""
        input x: f32[2, 3]
        a = exp(x)
        b = a + 1
        v = x * 2
        r = reshape(v, [6])
        y = relu(v)
        output c = a * b - a
        output o = r + flatten(y)
        output v
    """), {"x": x}, {}, {"c": a * b - a, "o": v.reshape(g.n, 6) + np.maximum(v, 0).reshape(g.n, 6), "v": v}


@case
def rebind_input_name(g):
    x = g.x(3)
    return model("""
        input x: f32[3]
        x = x * 2
        x = x + 1
        output y = x
    """), {"x": x}, {}, {"y": d(x) * 2 + 1}


@case
def shape_high_rank(g):
    x = g.x(2, 3, 2, 2)
    t = d(x).transpose(0, 4, 2, 3, 1)
    return model("""
        input x: f32[2, 3, 2, 2]
        t = transpose(x, [0, 4, 2, 3, 1])
        output t
        output s = sum(t, axis=[1, 3])
        output b = t * reshape(mean(x, axis=[1, 2, 3, 4]), [1, 1, 1, 1])
        output m = max(reshape(x, [2, 3, 2, 1, 2]), axis=[2, 5], keepdims=true)
    """), {"x": x}, {}, {
        "t": t, "s": t.sum((1, 3)), "b": t * d(x).mean((1, 2, 3, 4)).reshape(g.n, 1, 1, 1, 1),
        "m": d(x).reshape(g.n, 2, 3, 2, 1, 2).max((2, 5), keepdims=True)}


@case
def dense_rank4(g):
    x, w, b = g.x(2, 3, 4), g.normal(4, 2), g.normal(2)
    return model("""
        input x: f32[2, 3, 4]
        y = dense(x, 2, activation=softmax)
        output y
    """), {"x": x}, {"y.weight": w, "y.bias": b}, {"y": dense_ref(x, w, b, "softmax")}


@case
def batch_one(g):
    # --batch 1: every kernel runs with n = 1, once per sample.
    x = g.x(4, 4, 2)
    w = {"c.weight": g.normal(2, 2, 2, 3, scale=0.5), "c.bias": g.normal(3), **lstm_weights(g, "l", 6, 2)}
    c = conv2d_ref(x, w["c.weight"], w["c.bias"], (1, 1), True, "tanh")
    p = pool2d_ref(c, "avg", (2, 2), (2, 2), False).reshape(g.n, 2, 6)
    return model("""
        input x: f32[4, 4, 2]
        c = conv2d(x, 3, 2, padding=same, activation=tanh)
        l = avgpool2d(c) |> reshape([2, 6]) |> lstm(2, return_sequences=true)
        output l
        output centred = x - mean(x, axis=0)
    """), {"x": x}, w, {"l": lstm_ref(p, w["l.weight"], w["l.recurrent"], w["l.bias"], True),
                        "centred": np.zeros(x.shape)}, ["--batch", "1"]


# -- batching ----------------------------------------------------------------------------------------------------------


def per_batch(x, batch, fn):
    return np.concatenate([fn(x[s:s + batch]) for s in range(0, len(x), batch)])


@case
def batch_partial_last(g):
    # 70 samples at --batch 32: batches of 32, 32 and 6. `x - mean(x, axis=0)` shows the batch boundaries.
    g.n = 70
    x, w = g.x(3, 2), {"h.weight": g.normal(2, 4), "h.bias": g.normal(4)}
    bnw = bn_weights(g, "bn", 4)
    h = dense_ref(x, w["h.weight"], w["h.bias"], "relu")
    y = batchnorm_ref(h, bnw["bn.gamma"], bnw["bn.beta"], bnw["bn.moving_mean"], bnw["bn.moving_var"], 1e-3)
    return model("""
        input x: f32[3, 2]
        h = dense(x, 4, activation=relu)
        bn = batchnorm(h)
        output cls = argmax(bn)
        output bn
        output centred = x - mean(x, axis=0)
    """), {"x": x}, {**w, **bnw}, {
        "cls": y.argmax(-1).astype(i32), "bn": y, "centred": per_batch(d(x), 32, lambda v: v - v.mean(0))}, \
        ["--batch", "32"]


@case
def batch_from_train_statement(g):
    # No --batch: train(batch=4) in the file is the compiled batch; 10 samples run as 4, 4, 2.
    g.n = 10
    x, w = g.x(3, 2), lstm_weights(g, "l", 2, 3)
    return model("""
        input x: f32[3, 2]
        l = lstm(x, 3)
        output l
        output centred = x - mean(x, axis=[0, 1], keepdims=true)
        train(epochs=1, batch=4)
    """), {"x": x}, w, {
        "l": lstm_ref(x, w["l.weight"], w["l.recurrent"], w["l.bias"]),
        "centred": per_batch(d(x), 4, lambda v: v - v.mean((0, 1), keepdims=True))}


@case
def batch_default_32(g):
    # No --batch and no train(): the default 32; 40 samples run as 32 and 8.
    g.n = 40
    x = g.x(5, 4, 1)
    w = {"c.weight": g.normal(3, 3, 1, 2, scale=0.5), "c.bias": g.normal(2)}
    c = pool2d_ref(conv2d_ref(x, w["c.weight"], w["c.bias"], (1, 1), True, "relu"), "max", (2, 2), (2, 2), False)
    return model("""
        input x: f32[5, 4, 1]
        c = conv2d(x, 2, 3, padding=same, activation=relu)
        output p = maxpool2d(c, 2)
        output total = sum(x, axis=[0, 1, 2, 3], keepdims=true) + 0 * x
    """), {"x": x}, w, {"p": c, "total": per_batch(d(x), 32, lambda v: v.sum() + 0 * v)}


# ---- writing ------------------------------------------------------------------------------------------------------


def write_case(fn):
    name = fn.__name__
    g = Gen(name)
    res = fn(g)
    nn, inputs, weights, outputs = res[:4]
    options = res[4] if len(res) > 4 else []
    path = os.path.join(OUT, name)
    os.makedirs(path)
    with open(os.path.join(path, "model.nn"), "w") as f:
        f.write(f"# ops test {name}: written by tests/ops/make_fixtures.py\n" + nn)
    args = []
    for k, v in inputs.items():
        assert v.dtype in (f32, i32) or name == "data_conversion", (name, k)
        npy_write(os.path.join(path, k + ".npy"), v)
        args.append(f"data {k} {k}.npy")
    st_write(os.path.join(path, "weights.safetensors"), {k: np.asarray(v, f32) for k, v in weights.items()})
    for k, v in outputs.items():
        v = np.asarray(v)
        v = v.astype(i32) if v.dtype.kind in "iu" else v.astype(f32)
        assert np.all(np.isfinite(v)) or name == "ieee_arithmetic", (name, k)
        npy_write(os.path.join(path, f"expected_{k}.npy"), v)
        args.append(f"output {k}")
    if options:
        args.append("option " + " ".join(options))
    with open(os.path.join(path, "args"), "w") as f:
        f.write("\n".join(args) + "\n")


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for fn in CASES:
        write_case(fn)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"{len(CASES)} cases, {total} bytes in {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
