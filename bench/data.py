"""Writes the benchmark data sets as .npy into DIR (default bench/.data): the same bytes for every system.

Synthetic sets come from a fixed seed and a real relationship (so training is well behaved over thousands of
timed steps); Fashion-MNIST comes from the Debian package dataset-fashion-mnist, images scaled to [0,1],
NHWC [N,28,28,1] float32, labels int32.
"""
import gzip
import os
import sys

import numpy as np

FMNIST = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    f32 = np.float32

    def save(name, a):
        np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(a))

    # W1: y = 3x + 2 + noise, 100k samples, one feature
    x = rng.normal(size=(100_000, 1)).astype(f32)
    save("w1_x", x)
    save("w1_y", (3 * x + 2 + 0.1 * rng.normal(size=x.shape)).astype(f32))
    # W2 / W4: 10 features, a smooth nonlinear target
    for w in ("w2", "w4"):
        x = rng.normal(size=(1000, 10)).astype(f32)
        a = rng.normal(size=(10, 1)).astype(f32) / 3
        save(w + "_x", x)
        save(w + "_y", (np.tanh(x @ a) + 0.05 * rng.normal(size=(1000, 1))).astype(f32))
    # W3 / W3b: 100 features, 10 classes from a random linear map
    x = rng.normal(size=(1000, 100)).astype(f32)
    save("w3_x", x)
    save("w3_y", np.argmax(x @ rng.normal(size=(100, 10)), axis=1).astype(np.int32))
    # W5: Fashion-MNIST
    have = os.path.exists(os.path.join(out, "fmnist_test_y.npy"))
    if not have:
        for split, stem in (("train", "train"), ("test", "t10k")):
            img = idx(f"{FMNIST}/{stem}-images-idx3-ubyte.gz")
            lab = idx(f"{FMNIST}/{stem}-labels-idx1-ubyte.gz")
            save(f"fmnist_{split}_x", (img.astype(f32) / 255).reshape(-1, 28, 28, 1))
            save(f"fmnist_{split}_y", lab.astype(np.int32))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".data"))
