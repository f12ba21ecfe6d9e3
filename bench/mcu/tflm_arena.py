#!/usr/bin/env python3
"""TensorFlow Lite for Microcontrollers (TFLM) beside nnc, for the table of docs/mcu.md.

For every model of models/ this builds the same inference network in Keras (tf_keras, the Keras 2 that the
TFLite converter fuses an LSTM from), converts it to a float32 .tflite (no quantization: nnc computes in
float32), runs one inference in the tflite-micro Python interpreter and reports, per model:

  arena_total_bytes  the tensor arena TFLM's RecordingMicroAllocator says it used (what a firmware author
                     sizes `tensor_arena[]` to); arena_head_bytes is its activation part (planned tensors),
                     arena_tail_bytes the interpreter's persistent structs (measured in this 64-bit host
                     process: pointers are 8 bytes here and 4 on a Cortex-M, so the tail is larger here)
  tflite_bytes       the .tflite flatbuffer (graph + weights: what TFLM keeps in flash besides its own code)
  params             the Keras network's parameter count (checked equal to `nnc summary --json` with --nnc)

With --int8, the network is also converted to int8 (weights and activations, what TFLM users usually
deploy; nnc has no counterpart) and its .tflite and arena are reported under "int8".

With --weights-dir DIR, DIR/<model>.safetensors (a checkpoint of `nnc train`) is loaded into the Keras
network, so TFLM runs the very network nnc compiles; with --nnc as well, the TFLM output on a fixed input
is compared with `nnc predict` on the same input (max_abs_diff), which proves the two are the same network.

Needs: tensorflow (or tensorflow-cpu), tf-keras, tflite-micro, numpy (see docs/mcu.md). Not run by ctest.

usage: tflm_arena.py [--models DIR] [--nnc PATH] [--weights-dir DIR] [--tflite-dir DIR] [--int8] [--json FILE]
                     [MODEL ...]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from tflite_micro.python.tflite_micro import runtime  # noqa: E402
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema_fb  # noqa: E402

L = keras.layers


# Each builder returns (keras model, input name of the .nn, [(keras layer name, [nnc tensor names])]).
# Layouts are the same in both: dense weight [in, units], conv2d weight HWIO, lstm weight [F, 4u],
# recurrent [u, 4u], one bias [4u], gates in the order i, f, g, o; batchnorm epsilon 1e-3.
def dense(units, name, act=None):
    return L.Dense(units, activation=act, name=name)


def classifier():
    x = keras.Input((100,), batch_size=1)
    h = dense(128, "h", "relu")(x)
    y = dense(10, "probs", "softmax")(h)
    return keras.Model(x, y), "x", [("h", ["h.weight", "h.bias"]), ("probs", ["probs.weight", "probs.bias"])]


def fashion_cnn():
    x = keras.Input((28, 28, 1), batch_size=1)
    c = L.Conv2D(32, 3, activation="relu", name="c")(x)
    p = L.MaxPooling2D(2)(c)
    y = dense(10, "probs", "softmax")(L.Flatten()(p))
    return keras.Model(x, y), "image", [("c", ["c.weight", "c.bias"]), ("probs", ["probs.weight", "probs.bias"])]


def ffn():
    x = keras.Input((10,), batch_size=1)
    y = dense(1, "pred")(dense(50, "h", "relu")(x))
    return keras.Model(x, y), "x", [("h", ["h.weight", "h.bias"]), ("pred", ["pred.weight", "pred.bias"])]


def keras_mlp():
    x = keras.Input((10,), batch_size=1)
    y = dense(1, "pred")(dense(64, "h", "relu")(x))
    return keras.Model(x, y), "x", [("h", ["h.weight", "h.bias"]), ("pred", ["pred.weight", "pred.bias"])]


def linear_regression():
    x = keras.Input((1,), batch_size=1)
    y = dense(1, "pred")(x)  # x @ w + b with w [1, 1], b [1]
    return keras.Model(x, y), "x", [("pred", ["w", "b"])]


def lstm_forecaster():
    x = keras.Input((24, 3), batch_size=1)
    h = L.LSTM(32, name="h")(x)
    y = dense(1, "forecast")(h)
    return keras.Model(x, y), "window", [("h", ["h.weight", "h.recurrent", "h.bias"]),
                                         ("forecast", ["forecast.weight", "forecast.bias"])]


def mlp_bn():
    x = keras.Input((100,), batch_size=1)
    h = x
    names = []
    for blk, units in (("h1", 256), ("h2", 128)):
        h = dense(units, blk + ".d")(h)
        h = L.BatchNormalization(epsilon=1e-3, name=blk + ".bn")(h)
        h = L.Dropout(0.3)(L.ReLU()(h))
        names += [(blk + ".d", [blk + ".d.weight", blk + ".d.bias"]),
                  (blk + ".bn", [blk + ".bn." + s for s in ("gamma", "beta", "moving_mean", "moving_var")])]
    y = dense(10, "logits")(h)
    return keras.Model(x, y), "x", names + [("logits", ["logits.weight", "logits.bias"])]


BUILDERS = {f.__name__: f for f in (classifier, fashion_cnn, ffn, keras_mlp, linear_regression,
                                    lstm_forecaster, mlp_bn)}
# The seed CNN with its convolution frozen for training on the device: the same inference network.
BUILDERS["fashion_cnn_finetune"] = fashion_cnn


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + a:8 + n + b], dtype="<f4").reshape(t["shape"])
    return out


def op_names(model_bytes):
    names = {v: k for k, v in vars(schema_fb.BuiltinOperator).items() if not k.startswith("_")}
    m = runtime.convert_bytearray_to_object(bytearray(model_bytes))
    ops = []
    for sg in m.subgraphs:
        for op in sg.operators or []:
            ops.append(names.get(runtime.get_builtin_code_from_operator_code(m.operatorCodes[op.opcodeIndex]), "?"))
    return ops


def tflm_run(model_bytes, x):
    """One inference in TFLM; returns (output, {total, head, tail} arena bytes) from print_allocations()."""
    interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=max(16 * len(model_bytes), 1 << 20))
    interp.set_input(x, 0)
    interp.invoke()
    y = np.array(interp.get_output(0))
    # print_allocations() writes through MicroPrintf to the process's stderr: catch file descriptor 2.
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            interp.print_allocations()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("utf-8", "replace")
    arena = {}
    for line in text.splitlines():
        for part in ("total", "head", "tail"):
            key = "Arena allocation %s " % part
            if key in line:
                arena[part] = int(line.split(key)[1].split()[0])
    if set(arena) != {"total", "head", "tail"}:
        raise RuntimeError("print_allocations() said:\n" + text)
    return y, arena, text


def nnc_summary_params(nnc, path):
    out = subprocess.run([nnc, "summary", path, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["params"]


def nnc_predict(nnc, path, weights, input_name, x):
    with tempfile.TemporaryDirectory() as d:
        xin, yout = os.path.join(d, "in.npy"), os.path.join(d, "out.npy")
        np.save(xin, x)
        subprocess.run([nnc, "predict", path, "--weights", weights, "--data", "%s=%s" % (input_name, xin),
                        "-o", yout], check=True, capture_output=True, text=True)
        return np.load(yout)


def measure_int8(model, spec):
    """The same network quantized to int8 (weights and activations, a random representative data set):
    what a TFLM user would usually deploy; nnc has no counterpart (float32 only)."""
    rng = np.random.default_rng(1)

    def representative():
        for _ in range(64):
            yield [rng.uniform(0, 1, size=tuple(spec.shape)).astype(np.float32)]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    try:
        blob = conv.convert()
        _, arena, _ = tflm_run(blob, np.zeros(tuple(spec.shape), np.int8))
    except Exception as e:  # noqa: BLE001
        return {"status": "not measurable", "reason": str(e).splitlines()[0][:200] if str(e) else type(e).__name__}
    return {"status": "ok", "tflite_bytes": len(blob), "ops": op_names(blob), "arena_total_bytes": arena["total"],
            "arena_head_bytes": arena["head"], "arena_tail_bytes": arena["tail"]}


def measure(name, args):
    path = os.path.join(args.models, name + ".nn")
    rec = {"model": name}
    if name not in BUILDERS:
        rec.update(status="not measurable", reason="no Keras network for it in bench/mcu/tflm_arena.py")
        return rec
    model, input_name, mapping = BUILDERS[name]()
    rec["params"] = int(model.count_params())
    if args.nnc:
        rec["nnc_params"] = nnc_summary_params(args.nnc, path)
        if rec["nnc_params"] != rec["params"]:
            raise RuntimeError("%s: Keras network has %d parameters, nnc summary says %d"
                               % (name, rec["params"], rec["nnc_params"]))
    weights = os.path.join(args.weights_dir, name + ".safetensors") if args.weights_dir else None
    if weights:
        w = read_safetensors(weights)
        for layer, tensors in mapping:
            model.get_layer(layer).set_weights([w[t] for t in tensors])
        rec["weights"] = weights

    spec = tf.TensorSpec(model.inputs[0].shape, tf.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = []  # float32, no quantization
    try:
        blob = conv.convert()
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        rec.update(status="not measurable", reason="TFLite converter: %s" % str(e).splitlines()[0])
        return rec
    rec["tflite_bytes"] = len(blob)
    rec["ops"] = op_names(blob)
    if args.tflite_dir:
        os.makedirs(args.tflite_dir, exist_ok=True)
        with open(os.path.join(args.tflite_dir, name + ".tflite"), "wb") as f:
            f.write(blob)

    x = np.random.default_rng(0).uniform(-1, 1, size=tuple(spec.shape)).astype(np.float32)
    try:
        y, arena, text = tflm_run(blob, x)
    except Exception as e:  # noqa: BLE001
        rec.update(status="not measurable", reason="TFLM interpreter: %s" % str(e).splitlines()[0])
        return rec
    rec.update(status="ok", arena_total_bytes=arena["total"], arena_head_bytes=arena["head"],
               arena_tail_bytes=arena["tail"],
               allocations=[line.split("] ", 1)[-1] for line in text.splitlines() if "RecordingMicroAllocator" in line])
    ref = model(x, training=False).numpy()
    rec["max_abs_diff_keras"] = float(np.max(np.abs(y - ref)))
    if args.int8:
        rec["int8"] = measure_int8(model, spec)
    if weights and args.nnc:
        rec["max_abs_diff_nnc"] = float(np.max(np.abs(y.reshape(-1) - nnc_predict(args.nnc, path, weights,
                                                                                   input_name, x).reshape(-1))))
    return rec


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models_list", nargs="*", metavar="MODEL", help="model names (default: every .nn of --models)")
    ap.add_argument("--models", default=os.path.join(here, "..", "..", "models"), help="the models/ folder")
    ap.add_argument("--nnc", help="nnc executable: check parameter counts (and outputs with --weights-dir)")
    ap.add_argument("--weights-dir", help="folder with MODEL.safetensors checkpoints of nnc to load")
    ap.add_argument("--tflite-dir", help="also write MODEL.tflite here")
    ap.add_argument("--json", help="write the JSON array here instead of stdout")
    ap.add_argument("--int8", action="store_true", help="also measure the network quantized to int8")
    args = ap.parse_args()
    names = args.models_list or sorted(f[:-3] for f in os.listdir(args.models) if f.endswith(".nn"))
    versions = {"tensorflow": tf.__version__, "tf_keras": keras.__version__, "numpy": np.__version__}
    try:
        from importlib.metadata import version
        versions["tflite_micro"] = version("tflite-micro")
    except Exception:  # noqa: BLE001
        versions["tflite_micro"] = "unknown"
    recs = []
    for n in names:
        r = measure(n, args)
        r["versions"] = versions
        recs.append(r)
        print("%-18s %s" % (n, "  ".join("%s=%s" % (k, r[k]) for k in (
            "status", "params", "tflite_bytes", "arena_total_bytes", "arena_head_bytes", "arena_tail_bytes",
            "max_abs_diff_nnc", "reason") if k in r)), file=sys.stderr)
    text = json.dumps(recs, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
