#!/usr/bin/env python3
"""make_tour_data.py: the data files of the README's tour, for models/ffn.nn (x: f32[10], y: f32[1]).

Writes x.npy [1000, 10] and y.npy [1000, 1] (training), vx.npy [200, 10] and vy.npy [200, 1]
(validation), all float32 .npy version 1.0, into DIR (default: the current directory). The problem is a
synthetic regression that the 10-50-1 ReLU network of ffn.nn can learn:

    x ~ uniform(-1, 1)^10,   y = 0.5 + sum_i w_i x_i + 0.3 |x_0 + x_1| + noise(std 0.05)

with fixed weights w; the same seed gives the same bytes on every machine. Only the Python standard
library is used (the .npy header is written by hand), so it runs where NumPy is not installed.

usage: python3 examples/make_tour_data.py [DIR] [--train N] [--val N] [--seed S]
"""
import argparse
import os
import random
import struct
import sys

FEATURES = 10
WEIGHTS = [0.8, -0.6, 0.5, -0.4, 0.3, -0.2, 0.15, -0.1, 0.05, 0.0]


def npy_bytes(rows, shape):
    """A little-endian float32 .npy file (format 1.0) holding the flat list rows with this shape."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else ""))
    # magic (6) + version (2) + header length (2) + header + '\n', padded with spaces to a multiple of 64
    pad = -(10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    return (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")
            + struct.pack("<%df" % len(rows), *rows))


def make_set(rng, n):
    """n samples of the regression: flat x (n*10 values) and y (n values)."""
    xs, ys = [], []
    for _ in range(n):
        x = [rng.uniform(-1.0, 1.0) for _ in range(FEATURES)]
        y = 0.5 + sum(w * v for w, v in zip(WEIGHTS, x)) + 0.3 * abs(x[0] + x[1]) + rng.gauss(0.0, 0.05)
        xs.extend(x)
        ys.append(y)
    return xs, ys


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    print("wrote %s" % path)


def main(argv):
    ap = argparse.ArgumentParser(description="Write x.npy, y.npy, vx.npy, vy.npy for models/ffn.nn.")
    ap.add_argument("dir", nargs="?", default=".", help="where the files go (default: .)")
    ap.add_argument("--train", type=int, default=1000, help="training samples (default 1000)")
    ap.add_argument("--val", type=int, default=200, help="validation samples (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    args = ap.parse_args(argv)
    if args.train < 1 or args.val < 1:
        ap.error("--train and --val need at least 1 sample")
    os.makedirs(args.dir, exist_ok=True)
    rng = random.Random(args.seed)
    for prefix, n in (("", args.train), ("v", args.val)):
        xs, ys = make_set(rng, n)
        write(os.path.join(args.dir, prefix + "x.npy"), npy_bytes(xs, (n, FEATURES)))
        write(os.path.join(args.dir, prefix + "y.npy"), npy_bytes(ys, (n, 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
