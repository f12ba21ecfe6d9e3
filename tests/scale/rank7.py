#!/usr/bin/env python3
"""rank7.py: the largest rank end to end (issue 9: the docs promise 7 per-sample axes, the checker allowed 6).

    python3 tests/scale/rank7.py path/to/nnc

A model whose input has 7 per-sample axes (rank 8 with the batch axis) and a parameter of rank 8 is
checked, compiled to C, and run by `nnc predict` on data written here; relu, a broadcast product,
softmax, a transpose of all 8 axes, a sum over 6 axes and a reshape are compared with a reference
computed here in Python (no NumPy needed). Edge shapes ride along: a reduction over an empty axis list
and the transpose of a scalar (which generated C that did not compile). Exits 1 on any difference.
"""
import ast, itertools, math, os, struct, subprocess, sys, tempfile

MODEL = """model r7 {
    input x: f32[2, 1, 3, 1, 2, 1, 2]
    param w: f32[1, 1, 1, 1, 1, 1, 1, 2] = zeros
    h = relu(x) * w
    output y = transpose(softmax(h), [0, 7, 6, 5, 4, 3, 2, 1])
    output s = sum(x, axis=[2, 3, 4, 5, 6, 7])
    output f = reshape(x, [3, 2, 2, 1, 1, 1, 2])
    output e = sum(x, axis=[]) * transpose(mean(x), [])
}
"""
SHAPE = (3, 2, 1, 3, 1, 2, 1, 2)  # 3 samples
PERM = [0, 7, 6, 5, 4, 3, 2, 1]
W = [0.5, -2.0]


def npy_write(path, shape, vals):
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % d for d in shape)
    hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.write(struct.pack("<%df" % len(vals), *vals))


def npy_read(path):
    b = open(path, "rb").read()
    hl = struct.unpack("<H", b[8:10])[0]
    h = ast.literal_eval(b[10:10 + hl].decode())
    n = math.prod(h["shape"])
    return tuple(h["shape"]), list(struct.unpack("<%df" % n, b[10 + hl:10 + hl + 4 * n]))


def safetensors_write(path, name, shape, vals):
    data = struct.pack("<%df" % len(vals), *vals)
    head = ('{"%s": {"dtype": "F32", "shape": %s, "data_offsets": [0, %d]}}' % (name, list(shape), len(data))).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + data)


def reference(x):
    h = [max(v, 0.0) * W[i % 2] for i, v in enumerate(x)]
    sm = []
    for i in range(0, len(h), 2):
        e = [math.exp(h[i] - max(h[i:i + 2])), math.exp(h[i + 1] - max(h[i:i + 2]))]
        sm += [e[0] / sum(e), e[1] / sum(e)]
    strides = [math.prod(SHAPE[k + 1:]) for k in range(8)]
    ys = tuple(SHAPE[p] for p in PERM)
    y = []
    for idx in itertools.product(*[range(d) for d in ys]):
        src = [0] * 8
        for k, p in enumerate(PERM):
            src[p] = idx[k]
        y.append(sm[sum(a * b for a, b in zip(src, strides))])
    per = len(x) // SHAPE[0]
    s = [sum(x[b * per + j * per // 2:b * per + (j + 1) * per // 2]) for b in range(SHAPE[0]) for j in range(2)]
    m = sum(x) / len(x)
    return {"y": (ys, y), "s": ((SHAPE[0], 2), s), "f": ((SHAPE[0], 3, 2, 2, 1, 1, 1, 2), x),
            "e": (SHAPE, [v * m for v in x])}


def run(cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        print("FAIL: %s: exit %d\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
        sys.exit(1)
    return r


def main():
    nnc = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "r7.nn"), "w") as f:
            f.write(MODEL)
        x = [((i * 7) % 11) * 0.25 - 1.0 for i in range(math.prod(SHAPE))]
        npy_write(os.path.join(d, "x.npy"), SHAPE, x)
        safetensors_write(os.path.join(d, "w.safetensors"), "w", (1,) * 7 + (2,), W)
        run([nnc, "check", "r7.nn"], d)
        run([nnc, "compile", "r7.nn", "-o", "r7.c"], d)
        run([nnc, "predict", "r7.nn", "--weights", "w.safetensors", "--data", "x=x.npy",
             "-o", "y=y.npy", "-o", "s=s.npy", "-o", "f=f.npy", "-o", "e=e.npy"], d)
        bad = 0
        for name, (shape, want) in reference(x).items():
            gs, got = npy_read(os.path.join(d, name + ".npy"))
            err = max(abs(a - b) for a, b in zip(got, want)) if len(got) == len(want) else float("inf")
            ok = gs == shape and err < 1e-5
            print("rank7: output %s %s, max error %.3g: %s" % (name, gs, err, "ok" if ok else "WRONG (want %s)" % (shape,)))
            bad += not ok
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
