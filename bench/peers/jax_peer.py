"""JAX, as users write it without a framework: parameters in a pytree, the model a function of them,
`jax.value_and_grad`, the optimizer update written out optax-style with tree_map, the whole step `jax.jit`ed.
Epochs slice a NumPy permutation on the host and feed each batch to the jitted step.

System:
  jax   jit on the CPU back end (XLA), one thread; every timed group ends in block_until_ready
"""
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import Case, load, serve, single_thread_env  # noqa: E402

single_thread_env()
import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

import workloads as W  # noqa: E402

SYSTEMS = {"jax": None}
tmap = jax.tree_util.tree_map


def init(w, key):
    inp, arch = W.arch(w)
    params, state, last = [], [], inp
    for L in arch:
        key, k = jax.random.split(key)
        if L[0] == "dense":
            fan_in = last if isinstance(last, int) else int(np.prod(last))
            lim = np.sqrt(6 / (fan_in + L[1]))
            params.append({"w": jax.random.uniform(k, (fan_in, L[1]), jnp.float32, -lim, lim),
                           "b": jnp.zeros((L[1],), jnp.float32)})
            state.append({})
            last = L[1]
        elif L[0] == "bn":
            params.append({"gamma": jnp.ones((last,), jnp.float32), "beta": jnp.zeros((last,), jnp.float32)})
            state.append({"mean": jnp.zeros((last,), jnp.float32), "var": jnp.ones((last,), jnp.float32)})
        elif L[0] == "conv":
            lim = np.sqrt(6 / (L[2] * L[2] * last[2] + L[2] * L[2] * L[1]))
            params.append({"w": jax.random.uniform(k, (L[2], L[2], last[2], L[1]), jnp.float32, -lim, lim),
                           "b": jnp.zeros((L[1],), jnp.float32)})
            state.append({})
            last = (last[0] - L[2] + 1, last[1] - L[2] + 1, L[1])
        else:
            params.append({})
            state.append({})
            if L[0] == "pool":
                last = (last[0] // L[1], last[1] // L[1], last[2])
            elif L[0] == "flatten":
                last = int(np.prod(last))
    return params, state


def forward(w, params, state, x, train, key):
    """Returns (output, new state). The last layer's softmax is left out when `train` (the loss takes logits)."""
    _, arch = W.arch(w)
    new_state = []
    for i, (L, p, s) in enumerate(zip(arch, params, state)):
        ns = s
        if L[0] == "dense":
            x = x @ p["w"] + p["b"]
            if L[2] == "relu":
                x = jax.nn.relu(x)
            elif L[2] == "softmax" and not (train and i == len(arch) - 1):
                x = jax.nn.softmax(x)
        elif L[0] == "bn":
            if train:
                mean, var = x.mean(0), x.var(0)
                ns = {"mean": 0.99 * s["mean"] + 0.01 * mean, "var": 0.99 * s["var"] + 0.01 * var}
            else:
                mean, var = s["mean"], s["var"]
            x = (x - mean) * lax.rsqrt(var + 1e-3) * p["gamma"] + p["beta"]
        elif L[0] == "relu":
            x = jax.nn.relu(x)
        elif L[0] == "dropout":
            if train:
                key, k = jax.random.split(key)
                keep = jax.random.bernoulli(k, 1 - L[1], x.shape)
                x = jnp.where(keep, x / (1 - L[1]), 0)
        elif L[0] == "conv":
            x = lax.conv_general_dilated(x, p["w"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = jax.nn.relu(x + p["b"])
        elif L[0] == "pool":
            x = lax.reduce_window(x, -jnp.inf, lax.max, (1, L[1], L[1], 1), (1, L[1], L[1], 1), "VALID")
        elif L[0] == "flatten":
            x = x.reshape(x.shape[0], -1)
        new_state.append(ns)
    return x, new_state


def loss_of(w, out, y):
    if W.LOSS[w] == "mse":
        return jnp.mean((out - y) ** 2)
    logp = jax.nn.log_softmax(out)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def make_step(w):
    opt_name, lr = W.OPT[w]
    b1, b2 = 0.9, 0.999

    def loss_fn(params, state, x, y, key):
        out, ns = forward(w, params, state, x, True, key)
        return loss_of(w, out, y), ns

    @jax.jit
    def step(params, state, opt, x, y, key):
        key, k = jax.random.split(key)
        (loss, ns), g = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y, k)
        if opt_name == "sgd":
            params = tmap(lambda p, g: p - lr * g, params, g)
            return params, ns, opt, key, loss
        t = opt["t"] + 1
        m = tmap(lambda m, g: b1 * m + (1 - b1) * g, opt["m"], g)
        v = tmap(lambda v, g: b2 * v + (1 - b2) * g * g, opt["v"], g)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        params = tmap(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + W.EPS), params, m, v)
        return params, ns, {"t": t, "m": m, "v": v}, key, loss
    return step


def make_case(system, name, data):
    if name not in W.CASES:
        return None
    w, kind, batch = W.CASES[name]
    params, state = init(w, jax.random.PRNGKey(0))
    opt = {"t": jnp.zeros((), jnp.float32), "m": tmap(jnp.zeros_like, params), "v": tmap(jnp.zeros_like, params)}
    S = {"params": params, "state": state, "opt": opt, "key": jax.random.PRNGKey(1), "out": None}
    xn, yn, tn = W.DATA[w]

    def sync():
        jax.block_until_ready((S["params"], S["out"]))

    if kind in ("train", "fit"):
        step = make_step(w)

        def run(x, y):
            S["params"], S["state"], S["opt"], S["key"], S["out"] = step(
                S["params"], S["state"], S["opt"], x, y, S["key"])

        xs, ys = load(data, xn), load(data, yn)
        if kind == "train":
            bs = [(jnp.asarray(xs[a:b]), jnp.asarray(ys[a:b])) for a, b in W.batches(len(xs), batch)]
            it = itertools.cycle(bs)
            return Case(lambda: run(*next(it)), sync=sync, note=f"cycles {len(bs)} batches" if len(bs) > 1 else None)
        rng = np.random.default_rng(0)

        def epoch():
            perm = rng.permutation(len(xs))
            for i in range(0, len(xs), batch):
                idx = perm[i:i + batch]
                run(xs[idx], ys[idx])
        return Case(epoch, sync=sync, note="NumPy permutation, x[idx] per batch")

    @jax.jit
    def predict(params, state, x):
        return forward(w, params, state, x, False, None)[0]

    if kind == "predict":
        x = jnp.asarray(load(data, xn)[:batch])

        def one():
            S["out"] = predict(S["params"], S["state"], x)
        return Case(one, sync=sync)
    xt = load(data, tn)
    chunks = [jnp.asarray(xt[i:i + W.PREDICT_CHUNK[w]]) for i in range(0, len(xt), W.PREDICT_CHUNK[w])]

    def all_():
        S["out"] = [predict(S["params"], S["state"], c) for c in chunks]
    return Case(all_, sync=sync, note=f"chunks of {W.PREDICT_CHUNK[w]}")


def info():
    return {"jax": jax.__version__, "devices": [str(d) for d in jax.devices()],
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}


if __name__ == "__main__":
    serve(SYSTEMS, make_case, info)
