#!/usr/bin/env python3
"""make_data.py: the data and starting weights of the firmware examples, with Python's standard library only.

  make_data.py data FASHION_DIR OUT_DIR    C sources of the data the programs keep in flash, and the same data
                                           as .npy files for the host's nnc predict / nnc train:
      test_images.c    the first 100 Fashion-MNIST test images (uint8 pixels) and labels, for classify
      test_images.npy  [100,28,28,1] f32, the pixels / 255 as nnc scales them; test_labels.npy [100] i32
      train_data.c     for train: 3 samples of a synthetic regression (ffn_x.npy [3,10], ffn_y.npy [3,1]), and
                       the first 3 Fashion-MNIST training images of shirts (ft_images.npy, ft_labels.npy),
                       the class the seed CNN confuses most
      ffn_init.safetensors   starting weights of models/ffn.nn, uniform in +-1/sqrt(fan_in) (PyTorch's
                             default range) from a fixed generator
  make_data.py params IN OUT               copy the parameters of a checkpoint (c.*, probs.*, ...) without the
                                           optimizer state and position that `nnc train` also saves

The pixels / 255 are the float32 that nnc's `(float)byte / 255.0f` gives: Python divides in double and
rounds once more to float32, which is exact here (b/255 repeats b's 8 bits forever, so it is never near
the middle of two floats).
"""
import gzip
import json
import os
import re
import struct
import sys

N_TEST = 100      # images classify keeps in flash
N_TRAIN = 3       # samples train keeps in flash: one per train step
SHIRT = 6         # the class that fashion_cnn_finetune is fine-tuned on


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    rank = magic & 0xFF
    dims = struct.unpack(">%dI" % rank, data[4:4 + 4 * rank])
    return dims, data[4 + 4 * rank:]


def write_npy(path, descr, shape, values):
    fmt = {"<f4": "f", "<i4": "i"}[descr]
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape))
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n, = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return {name: (info, data[8 + n + info["data_offsets"][0]:8 + n + info["data_offsets"][1]])
            for name, info in header.items()}


def write_safetensors(path, tensors):
    """tensors: {name: (dtype, shape, raw bytes)}"""
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in sorted(tensors.items()):
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text.encode() + b"".join(blobs))


class Lcg:
    """A 32-bit linear congruential generator: the same numbers on every machine and Python."""
    def __init__(self, seed):
        self.state = seed

    def uniform(self, lo, hi):
        self.state = (self.state * 1664525 + 1013904223) % 2**32
        return f32(lo + (hi - lo) * (self.state / 2**32))


def c_array(ctype, name, values, per_line=16):
    lines = ["const %s %s[%d] = {" % (ctype, name, len(values))]
    for i in range(0, len(values), per_line):
        lines.append("    " + ", ".join(values[i:i + per_line]) + ",")
    lines.append("};")
    return "\n".join(lines) + "\n"


def c_float(x):
    """the exact value as a C hex float: -0x1.ff1378p-2f"""
    return re.sub(r"\.?0+p", "p", float.hex(x)) + "f" if x != 0 else "0.0f"


def fashion(fashion_dir, split, count, only=None):
    """the first count images (of class only, if given): their pixels (bytes) and labels"""
    dims, pixels = read_idx(os.path.join(fashion_dir, "%s-images-idx3-ubyte.gz" % split))
    _, labels = read_idx(os.path.join(fashion_dir, "%s-labels-idx1-ubyte.gz" % split))
    size = dims[1] * dims[2]
    chosen = [i for i in range(len(labels)) if only is None or labels[i] == only][:count]
    return b"".join(pixels[i * size:(i + 1) * size] for i in chosen), [labels[i] for i in chosen]


def write_images(out, stem, pixels, labels):
    write_npy(os.path.join(out, stem + "_images.npy"), "<f4", (len(labels), 28, 28, 1),
              [f32(b / 255) for b in pixels])
    write_npy(os.path.join(out, stem + "_labels.npy"), "<i4", (len(labels),), labels)


def make_data(fashion_dir, out):
    os.makedirs(out, exist_ok=True)
    note = "/* generated by examples/firmware/make_data.py; do not edit */\n#include <stdint.h>\n\n"

    pixels, labels = fashion(fashion_dir, "t10k", N_TEST)
    write_images(out, "test", pixels, labels)
    with open(os.path.join(out, "test_images.c"), "w") as f:
        f.write(note + "/* the first %d Fashion-MNIST test images, 28x28 bytes each, and their labels */\n" % N_TEST)
        f.write(c_array("uint8_t", "test_images", [str(b) for b in pixels], 28))
        f.write(c_array("uint8_t", "test_labels", [str(b) for b in labels]))

    # The regression of ffn: y = w.x + 0.5 with x uniform in [-1, 1]
    rng = Lcg(1)
    w = [rng.uniform(-1, 1) for _ in range(10)]
    x = [[rng.uniform(-1, 1) for _ in range(10)] for _ in range(N_TRAIN)]
    y = [f32(sum(wi * xi for wi, xi in zip(w, row)) + 0.5) for row in x]
    flat_x = [v for row in x for v in row]
    write_npy(os.path.join(out, "ffn_x.npy"), "<f4", (N_TRAIN, 10), flat_x)
    write_npy(os.path.join(out, "ffn_y.npy"), "<f4", (N_TRAIN, 1), y)
    ft_pixels, ft_labels = fashion(fashion_dir, "train", N_TRAIN, only=SHIRT)
    write_images(out, "ft", ft_pixels, ft_labels)
    with open(os.path.join(out, "train_data.c"), "w") as f:
        f.write(note + "/* %d samples of y = w.x + 0.5 for models/ffn.nn */\n" % N_TRAIN)
        f.write(c_array("float", "ffn_x", [c_float(v) for v in flat_x], 5))
        f.write(c_array("float", "ffn_y", [c_float(v) for v in y], 5))
        f.write("\n/* the first %d Fashion-MNIST training images of shirts, for fashion_cnn_finetune */\n" % N_TRAIN)
        f.write(c_array("uint8_t", "ft_images", [str(b) for b in ft_pixels], 28))
        f.write(c_array("uint8_t", "ft_labels", [str(b) for b in ft_labels]))

    # ffn's starting weights: h 10 -> 50, pred 50 -> 1
    rng = Lcg(2)
    tensors = {}
    for name, fan_in, fan_out in (("h", 10, 50), ("pred", 50, 1)):
        bound = fan_in ** -0.5
        for part, shape in (("weight", (fan_in, fan_out)), ("bias", (fan_out,))):
            count = fan_in * fan_out if part == "weight" else fan_out
            values = [rng.uniform(-bound, bound) for _ in range(count)]
            tensors[name + "." + part] = ("F32", shape, struct.pack("<%df" % count, *values))
    write_safetensors(os.path.join(out, "ffn_init.safetensors"), tensors)


def params(src, dst):
    """Everything but the optimizer state (opt.*), the generator (rng.*) and the position (train.*)."""
    kept = {name: (info["dtype"], info["shape"], raw) for name, (info, raw) in read_safetensors(src).items()
            if name.split(".")[0] not in ("opt", "rng", "train")}
    write_safetensors(dst, kept)


def main(argv):
    if len(argv) == 4 and argv[1] == "data":
        make_data(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "params":
        params(argv[2], argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
