"""NumPy by hand: the forward pass, the backward pass and the optimizer update written out with array
operations, as in a course assignment (im2col through sliding_window_view for the convolution). float32
throughout, updates in place.

System:
  numpy   NumPy with its bundled OpenBLAS, one thread
"""
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import Case, load, serve, single_thread_env  # noqa: E402

single_thread_env()
import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

import workloads as W  # noqa: E402

SYSTEMS = {"numpy": None}
f32 = np.float32


class Net:
    def __init__(self, w, seed=0):
        self.w = w
        self.rng = np.random.default_rng(seed)
        inp, self.arch = W.arch(w)
        self.params = []  # per layer: dict name -> array
        self.state = []
        last = inp
        for L in self.arch:
            p, s = {}, {}
            if L[0] == "dense":
                fan_in = last if isinstance(last, int) else int(np.prod(last))
                lim = np.sqrt(6 / (fan_in + L[1]))
                p = {"w": self.rng.uniform(-lim, lim, (fan_in, L[1])).astype(f32), "b": np.zeros(L[1], f32)}
                last = L[1]
            elif L[0] == "bn":
                p = {"gamma": np.ones(last, f32), "beta": np.zeros(last, f32)}
                s = {"mean": np.zeros(last, f32), "var": np.ones(last, f32)}
            elif L[0] == "conv":
                k, cin = L[2], last[2]
                lim = np.sqrt(6 / (k * k * cin + k * k * L[1]))
                p = {"w": self.rng.uniform(-lim, lim, (k, k, cin, L[1])).astype(f32), "b": np.zeros(L[1], f32)}
                last = (last[0] - k + 1, last[1] - k + 1, L[1])
            elif L[0] == "pool":
                last = (last[0] // L[1], last[1] // L[1], last[2])
            elif L[0] == "flatten":
                last = int(np.prod(last))
            self.params.append(p)
            self.state.append(s)
        opt, self.lr = W.OPT[w]
        self.adam = opt == "adam"
        self.t = 0
        self.m = [{k: np.zeros_like(v) for k, v in p.items()} for p in self.params]
        self.v = [{k: np.zeros_like(v) for k, v in p.items()} for p in self.params]

    def forward(self, x, train):
        cache = []
        n = len(self.arch)
        for i, (L, p, s) in enumerate(zip(self.arch, self.params, self.state)):
            c = None
            if L[0] == "dense":
                c = x
                x = x @ p["w"] + p["b"]
                if L[2] == "relu":
                    x = np.maximum(x, 0)
                    c = (c, x)
                elif L[2] == "softmax" and not (train and i == n - 1):  # training: the loss takes logits
                    e = np.exp(x - x.max(axis=1, keepdims=True))
                    x = e / e.sum(axis=1, keepdims=True)
            elif L[0] == "bn":
                if train:
                    mu, var = x.mean(0), x.var(0)
                    s["mean"] = 0.99 * s["mean"] + 0.01 * mu
                    s["var"] = 0.99 * s["var"] + 0.01 * var
                else:
                    mu, var = s["mean"], s["var"]
                inv = 1 / np.sqrt(var + f32(1e-3))
                xh = (x - mu) * inv
                c = (xh, inv)
                x = xh * p["gamma"] + p["beta"]
            elif L[0] == "relu":
                x = np.maximum(x, 0)
                c = x
            elif L[0] == "dropout":
                if train:
                    mask = (self.rng.random(x.shape, dtype=f32) >= L[1]).astype(f32) / f32(1 - L[1])
                    x = x * mask
                    c = mask
            elif L[0] == "conv":
                k = L[2]
                cols = sliding_window_view(x, (k, k), axis=(1, 2))  # [B, H', W', C, k, k]
                B, H, Wd = cols.shape[:3]
                cols = cols.transpose(0, 1, 2, 4, 5, 3).reshape(B * H * Wd, -1)  # rows: (kh, kw, cin)
                y = cols @ p["w"].reshape(-1, L[1]) + p["b"]
                y = np.maximum(y, 0)
                c = (cols, y)
                x = y.reshape(B, H, Wd, L[1])
            elif L[0] == "pool":
                q = L[1]
                B, H, Wd, C = x.shape
                xr = x[:, :H // q * q, :Wd // q * q].reshape(B, H // q, q, Wd // q, q, C)
                y = xr.max(axis=(2, 4))
                c = (x.shape, xr, y)
                x = y
            elif L[0] == "flatten":
                c = x.shape
                x = x.reshape(x.shape[0], -1)
            cache.append(c)
        return x, cache

    def backward(self, g, cache):
        grads = [None] * len(self.arch)
        for i in range(len(self.arch) - 1, -1, -1):
            L, p, c = self.arch[i], self.params[i], cache[i]
            first = i == 0
            if L[0] == "dense":
                if L[2] == "relu":
                    xin, out = c
                    g = g * (out > 0)
                else:
                    xin = c
                grads[i] = {"w": xin.T @ g, "b": g.sum(0)}
                if not first:
                    g = g @ p["w"].T
            elif L[0] == "bn":
                xh, inv = c
                N = g.shape[0]
                dg, db = (g * xh).sum(0), g.sum(0)
                grads[i] = {"gamma": dg, "beta": db}
                g = (p["gamma"] * inv / N) * (N * g - db - xh * dg)
            elif L[0] == "relu":
                g = g * (c > 0)
            elif L[0] == "dropout":
                g = g * c
            elif L[0] == "conv":
                cols, y = c
                gy = g.reshape(y.shape) * (y > 0)
                grads[i] = {"w": (cols.T @ gy).reshape(p["w"].shape), "b": gy.sum(0)}
                # the input image needs no gradient: the convolution is the first layer
            elif L[0] == "pool":
                shape, xr, y = c
                B, H, Wd, C = shape
                mask = xr == y[:, :, None, :, None, :]
                gx = np.zeros(shape, f32)
                gx[:, :H // 2 * 2, :Wd // 2 * 2] = (mask * g[:, :, None, :, None, :]).reshape(
                    B, H // 2 * 2, Wd // 2 * 2, C)
                g = gx
            elif L[0] == "flatten":
                g = g.reshape(c)
        return grads

    def step(self, x, y):
        out, cache = self.forward(x, True)
        N = out.shape[0]
        if W.LOSS[self.w] == "mse":
            d = out - y
            loss = float(np.mean(d * d))
            g = d * f32(2 / d.size)
        else:
            z = out - out.max(axis=1, keepdims=True)
            e = np.exp(z)
            s = e.sum(axis=1, keepdims=True)
            loss = float(np.mean(np.log(s[:, 0]) - z[np.arange(N), y]))
            g = e / s
            g[np.arange(N), y] -= 1
            g *= f32(1 / N)
        grads = self.backward(g, cache)
        self.t += 1
        lr = self.lr
        if self.adam:
            c1, c2 = 1 - 0.9 ** self.t, 1 - 0.999 ** self.t
            for p, gp, m, v in zip(self.params, grads, self.m, self.v):
                for k in p:
                    m[k] *= f32(0.9)
                    m[k] += f32(0.1) * gp[k]
                    v[k] *= f32(0.999)
                    v[k] += f32(0.001) * gp[k] * gp[k]
                    p[k] -= f32(lr / c1) * m[k] / (np.sqrt(v[k] * f32(1 / c2)) + f32(W.EPS))
        else:
            for p, gp in zip(self.params, grads):
                for k in p:
                    p[k] -= f32(lr) * gp[k]
        return loss


def make_case(system, name, data):
    if name not in W.CASES:
        return None
    w, kind, batch = W.CASES[name]
    net = Net(w)
    xn, yn, tn = W.DATA[w]
    if kind == "train":
        xs, ys = load(data, xn), load(data, yn)
        bs = [(np.ascontiguousarray(xs[a:b]), np.ascontiguousarray(ys[a:b])) for a, b in W.batches(len(xs), batch)]
        it = itertools.cycle(bs)
        return Case(lambda: net.step(*next(it)), note=f"cycles {len(bs)} batches" if len(bs) > 1 else None)
    if kind == "fit":
        xs, ys = load(data, xn), load(data, yn)
        rng = np.random.default_rng(0)

        def epoch():
            perm = rng.permutation(len(xs))
            for i in range(0, len(xs), batch):
                idx = perm[i:i + batch]
                net.step(xs[idx], ys[idx])
        return Case(epoch, note="NumPy permutation, x[idx] per batch")
    if kind == "predict":
        x = load(data, xn)[:batch]
        return Case(lambda: net.forward(x, False)[0])
    xt = load(data, tn)
    return Case(lambda: [net.forward(xt[i:i + W.PREDICT_CHUNK[w]], False)[0]
                         for i in range(0, len(xt), W.PREDICT_CHUNK[w])], note=f"chunks of {W.PREDICT_CHUNK[w]}")


def info():
    cfg = {}
    try:
        cfg = {k: v.get("name", "") + " " + str(v.get("version", ""))
               for k, v in np.show_config(mode="dicts")["Build Dependencies"].items() if isinstance(v, dict)}
    except Exception:  # noqa: BLE001
        pass
    return {"numpy": np.__version__, "blas": cfg}


if __name__ == "__main__":
    serve(SYSTEMS, make_case, info)
