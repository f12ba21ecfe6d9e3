#!/usr/bin/env python3
"""make_fixtures.py: writes the small files tests/cli/run.sh uses (run once at test-authoring time; the
outputs are checked in). Needs numpy. Deterministic: the same files every time.

tiny.nn: input x f32[3], output p = dense(x, 2)   -> parameters p.weight [3,2], p.bias [2]
"""
import json
import os
import struct

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def safetensors(path, tensors, truncate=None):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, sort_keys=True).encode()
    h += b" " * (-len(h) % 8)
    data = struct.pack("<Q", len(h)) + h + b"".join(blobs)
    if truncate is not None:
        data = data[:truncate]
    with open(os.path.join(HERE, path), "wb") as f:
        f.write(data)


def main():
    os.makedirs(HERE, exist_ok=True)
    w = np.arange(6, dtype=np.float32).reshape(3, 2) / 10
    b = np.array([0.5, -0.5], dtype=np.float32)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    safetensors("tiny.safetensors", {"p.weight": w, "p.bias": b})
    safetensors("tiny_missing_bias.safetensors", {"p.weight": w})
    safetensors("tiny_wrong_shape.safetensors", {"p.weight": w.reshape(2, 3), "p.bias": b})
    safetensors("tiny_truncated.safetensors", {"p.weight": w, "p.bias": b}, truncate=-10)
    np.save(os.path.join(HERE, "x.npy"), x)
    np.save(os.path.join(HERE, "x_wrong_shape.npy"), np.zeros((4, 5), dtype=np.float32))
    np.save(os.path.join(HERE, "expected_p.npy"), x @ w + b)


if __name__ == "__main__":
    main()
