"""Keras 3 (TensorFlow back end), as users write it: keras.Sequential, compile(), model.fit(), model.predict().

Systems:
  keras        compile() with its defaults (jit_compile="auto"; what that resolved to is reported in info)
  keras-xla    compile(jit_compile=True)
A train step is what model.fit costs per step: one fit() call runs `units` optimizer steps (several epochs
over exactly the rows of one batch size multiple) and the time is divided by them, so fit's per-call set-up
is spread the way a real training run spreads it. The epoch cases are one `fit(..., epochs=1)`;
predictions are `model.predict(x, verbose=0)` with its default batch size (32).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import Case, load, serve, single_thread_env  # noqa: E402

single_thread_env()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras  # noqa: E402
from keras import layers  # noqa: E402

import workloads as W  # noqa: E402

keras.utils.set_random_seed(0)
SYSTEMS = {"keras": "auto", "keras-xla": True}
RESOLVED = {}


def build(w):
    inp, arch = W.arch(w)
    mods = [keras.Input(shape=(inp,) if isinstance(inp, int) else inp)]
    for L in arch:
        if L[0] == "dense":
            mods.append(layers.Dense(L[1], activation=None if L[2] == "none" else L[2]))
        elif L[0] == "bn":
            mods.append(layers.BatchNormalization(momentum=0.99, epsilon=1e-3))
        elif L[0] == "relu":
            mods.append(layers.ReLU())
        elif L[0] == "dropout":
            mods.append(layers.Dropout(L[1]))
        elif L[0] == "conv":
            mods.append(layers.Conv2D(L[1], L[2], activation=L[3]))
        elif L[0] == "pool":
            mods.append(layers.MaxPooling2D(L[1]))
        elif L[0] == "flatten":
            mods.append(layers.Flatten())
    return keras.Sequential(mods)


def compiled(w, jit):
    model = build(w)
    opt_name, lr = W.OPT[w]
    opt = keras.optimizers.SGD(lr) if opt_name == "sgd" else keras.optimizers.Adam(lr, epsilon=W.EPS)
    loss = {"mse": "mse", "sce": keras.losses.SparseCategoricalCrossentropy(),
            "sce_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}[W.LOSS[w]]
    model.compile(optimizer=opt, loss=loss, jit_compile=jit)
    RESOLVED[w] = str(model.jit_compile)
    return model


def make_case(system, name, data):
    if name not in W.CASES:
        return None
    w, kind, batch = W.CASES[name]
    model = compiled(w, SYSTEMS[system])
    xn, yn, tn = W.DATA[w]
    if kind == "train":
        x, y = load(data, xn), load(data, yn)
        if batch >= len(x):  # full batch: fit(epochs=E) runs E steps
            steps_per_epoch, epochs = 1, 20
        else:  # batch 32: the largest multiple of 32 rows, several epochs
            steps_per_epoch = min(len(x) // batch, 50)
            epochs = max(1, 150 // steps_per_epoch)
        x, y = x[:batch * steps_per_epoch], y[:batch * steps_per_epoch]
        return Case(lambda: model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0),
                    units=steps_per_epoch * epochs,
                    note=f"fit(epochs={epochs}) over {steps_per_epoch} batch(es) of {batch}, time per step")
    if kind == "fit":
        x, y = load(data, xn), load(data, yn)
        return Case(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0))
    if kind == "predict":
        x = load(data, xn)[:batch]
        return Case(lambda: model.predict(x, verbose=0), note="model.predict")
    x = load(data, tn)
    return Case(lambda: model.predict(x, verbose=0), note="model.predict, default batch_size 32")


def info():
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "backend": keras.backend.backend(),
            "jit_compile_resolved": RESOLVED}


if __name__ == "__main__":
    serve(SYSTEMS, make_case, info)
