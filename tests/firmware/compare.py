#!/usr/bin/env python3
"""compare.py: the firmware examples' results on the device (QEMU) against the host's nnc, stdlib only.

  compare.py classify OUTPUT DEVICE_PROBS.npy HOST_PROBS.npy LABELS.npy
      OUTPUT is what classify printed. Every predicted class printed and the printed accuracy must be the
      host's (`nnc predict` on the same images: HOST_PROBS); the probabilities the device wrote must equal
      the host's within rtol 1e-4, atol 1e-5; the instructions per predict must be printed.
  compare.py train OUTPUT MODEL DEVICE.safetensors HOST.safetensors HOST_LOG.csv
      For MODEL's section of what train printed: the mean loss must fall at every step and the mean of the
      3 step losses must be the host's epoch loss (HOST_LOG, `nnc train --log`, rtol 1e-3); every parameter
      the device wrote must equal the host's after the same 3 steps (`nnc train --steps 3 --batch 1
      --no-shuffle`) within rtol 1e-3, atol 1e-4.
Prints what it compared; exits 1 on the first difference.
"""
import ast
import json
import re
import struct
import sys


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        fail("%s is not a .npy file" % path)
    if data[6] == 1:
        length, start = struct.unpack("<H", data[8:10])[0], 10
    else:
        length, start = struct.unpack("<I", data[8:12])[0], 12
    header = ast.literal_eval(data[start:start + length].decode("latin1"))
    fmt = {"<f4": "f", "<i4": "i", "<i8": "q", "<f8": "d"}[header["descr"]]
    count = 1
    for d in header["shape"]:
        count *= d
    values = struct.unpack_from("<%d%s" % (count, fmt), data, start + length)
    return header["shape"], list(values)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n, = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        fmt = {"F32": "f", "I32": "i"}[info["dtype"]]
        tensors[name] = (info["shape"], struct.unpack("<%d%s" % ((end - begin) // 4, fmt),
                                                      data[8 + n + begin:8 + n + end]))
    return tensors


def close(a, b, rtol, atol):
    return abs(a - b) <= atol + rtol * abs(b)


def compare_values(what, device, host, rtol, atol):
    if len(device) != len(host):
        fail("%s: %d values on the device, %d on the host" % (what, len(device), len(host)))
    worst = 0.0
    for i, (a, b) in enumerate(zip(device, host)):
        if not close(a, b, rtol, atol):
            fail("%s[%d]: device %.9g, host %.9g (rtol %g, atol %g)" % (what, i, a, b, rtol, atol))
        worst = max(worst, abs(a - b))
    print("%s: %d values equal within rtol %g, atol %g (largest difference %.3g)" % (what, len(device), rtol, atol, worst))


def argmax(row):
    return max(range(len(row)), key=lambda k: (row[k], -k))


def classify(output, device_probs, host_probs, labels_path):
    text = open(output).read()
    printed = {int(m.group(1)): (int(m.group(2)), int(m.group(3)))
               for m in re.finditer(r"^image (\d+) +predicted (\d+) .* label (\d+)", text, re.M)}
    (n, classes), host = read_npy(host_probs)
    _, labels = read_npy(labels_path)
    if sorted(printed) != list(range(n)):
        fail("classify printed %d predictions, expected %d" % (len(printed), n))
    host_classes = [argmax(host[i * classes:(i + 1) * classes]) for i in range(n)]
    for i in range(n):
        if printed[i] != (host_classes[i], labels[i]):
            fail("image %d: device predicted %d (label %d), host %d (label %d)"
                 % (i, printed[i][0], printed[i][1], host_classes[i], labels[i]))
    correct = sum(c == l for c, l in zip(host_classes, labels))
    m = re.search(r"^accuracy \S+ \((\d+) of (\d+)\)", text, re.M)
    if not m or (int(m.group(1)), int(m.group(2))) != (correct, n):
        fail("the device's accuracy line %r is not the host's %d of %d" % (m and m.group(0), correct, n))
    print("classes: all %d as the host's; accuracy %d of %d on both" % (n, correct, n))
    shape, device = read_npy(device_probs)
    if tuple(shape) != (n, classes):
        fail("device probabilities have shape %s, expected %s" % (shape, (n, classes)))
    compare_values("probabilities", device, host, 1e-4, 1e-5)
    m = re.search(r"^instructions per predict: (\d+)", text, re.M)
    if not m or int(m.group(1)) <= 0:
        fail("no instructions per predict printed")
    print("instructions per predict: %s" % m.group(1))


def train(output, model, device_path, host_path, log_path):
    text = open(output).read()
    section = re.search(r"^%s: .*?(?=^\S+: \d+ parameters|\Z)" % re.escape(model), text, re.M | re.S)
    if not section:
        fail("train printed nothing for %s" % model)
    means = [float(v) for v in re.findall(r"mean loss (\S+)", section.group(0))]
    steps = [float(v) for v in re.findall(r"step loss ([^,]+),", section.group(0))]
    if len(means) != 4 or len(steps) != 3:
        fail("%s: expected the mean loss before and after 3 steps, found %s" % (model, means))
    if not all(b < a for a, b in zip(means, means[1:])):
        fail("%s: the mean loss does not fall at every step: %s" % (model, means))
    print("%s: mean loss falls: %s" % (model, " > ".join("%g" % v for v in means)))
    rows = open(log_path).read().splitlines()
    host_loss = float(dict(zip(rows[0].split(","), rows[1].split(",")))["loss"])
    # the printed step losses have 6 digits: compare at the looser of that and the training tolerance
    if not close(sum(steps) / 3, host_loss, 1e-3, 1e-4):
        fail("%s: mean step loss %g on the device, %g on the host" % (model, sum(steps) / 3, host_loss))
    print("%s: mean step loss %g, host %g" % (model, sum(steps) / 3, host_loss))
    device, host = read_safetensors(device_path), read_safetensors(host_path)
    if not device:
        fail("%s: the device wrote no parameters" % model)
    for name, (shape, values) in sorted(device.items()):
        if name not in host:
            fail("%s: %s is not in the host's weights" % (model, name))
        if list(shape) != list(host[name][0]):
            fail("%s: %s has shape %s on the device, %s on the host" % (model, name, shape, host[name][0]))
        compare_values("%s %s" % (model, name), values, host[name][1], 1e-3, 1e-4)


def main(argv):
    if len(argv) == 6 and argv[1] == "classify":
        classify(*argv[2:])
    elif len(argv) == 7 and argv[1] == "train":
        train(*argv[2:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
