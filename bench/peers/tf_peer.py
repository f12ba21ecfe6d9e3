"""TensorFlow's custom training loop, as the TF guide writes it: a Keras model and optimizer, a
`@tf.function` train step with `tf.GradientTape`, `tf.data` for epochs, a `@tf.function` predict.

System:
  tf-function   graph mode through tf.function (no XLA: jit_compile is left at its default)
"""
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import Case, load, serve, single_thread_env  # noqa: E402

single_thread_env()
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras  # noqa: E402

import keras_peer  # noqa: E402  (the same model builder)
import workloads as W  # noqa: E402

keras.utils.set_random_seed(0)
SYSTEMS = {"tf-function": None}


def make_case(system, name, data):
    if name not in W.CASES:
        return None
    w, kind, batch = W.CASES[name]
    model = keras_peer.build(w)
    opt_name, lr = W.OPT[w]
    opt = keras.optimizers.SGD(lr) if opt_name == "sgd" else keras.optimizers.Adam(lr, epsilon=W.EPS)
    loss_fn = {"mse": keras.losses.MeanSquaredError(), "sce": keras.losses.SparseCategoricalCrossentropy(),
               "sce_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}[W.LOSS[w]]

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = loss_fn(y, pred)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def predict(x):
        return model(x, training=False)

    xn, yn, tn = W.DATA[w]
    if kind == "train":
        xs, ys = load(data, xn), load(data, yn)
        bs = [(tf.constant(xs[a:b]), tf.constant(ys[a:b])) for a, b in W.batches(len(xs), batch)]
        it = itertools.cycle(bs)
        return Case(lambda: train_step(*next(it)), note=f"cycles {len(bs)} batches" if len(bs) > 1 else None)
    if kind == "fit":
        xs, ys = load(data, xn), load(data, yn)
        ds = tf.data.Dataset.from_tensor_slices((xs, ys)).shuffle(len(xs)).batch(batch)

        def epoch():
            for xb, yb in ds:
                train_step(xb, yb)
        return Case(epoch, note="tf.data from_tensor_slices().shuffle().batch(32)")
    if kind == "predict":
        x = tf.constant(load(data, xn)[:batch])
        return Case(lambda: predict(x))
    x = load(data, tn)
    chunks = [tf.constant(x[i:i + W.PREDICT_CHUNK[w]]) for i in range(0, len(x), W.PREDICT_CHUNK[w])]
    return Case(lambda: [predict(c) for c in chunks], note=f"chunks of {W.PREDICT_CHUNK[w]}")


def info():
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


if __name__ == "__main__":
    serve(SYSTEMS, make_case, info)
