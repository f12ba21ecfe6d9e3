#!/usr/bin/env python3
"""make_corpus.py: writes the seed corpora of the fuzz targets to tests/fuzz/corpus/<target>/ (docs/testing.md).

    python3 tests/fuzz/make_corpus.py          (idempotent; overwrites the seeds it makes, keeps other files)

The .nn seeds are copies of the models, test cases and diagnostics tests of the tree (under 8 KB each); the
reader seeds are small valid files of every dtype and version and a few edge cases (empty arrays, rank 0,
headers, BOMs, CRLF). The .onnx seeds are the tree's ONNX fixtures and hand-made bad models under 64 KB
(tests/onnx, tests/onnx_read) and a few of ONNX's own node tests when libonnx-testdata is installed. Files found by fuzzing and merged in (-merge=1) live beside them under their hash names.
What it does not do: fuzz; it needs only the Python standard library.
"""
import gzip
import os
import shutil
import struct
import json

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def nn_seeds():
    dirs = {"parser": ["models", "examples", "tests/diag/valid", "tests/diag/errors", "tests/fuzz/crashes",
                       "tests/cli/fixtures"],
            "compile": ["models", "examples", "tests/diag/valid", "tests/levels/models", "tests/passes/cases",
                        "tests/grad/cases", "tests/ops/cases", "tests/train/cases", "tests/fuzz/crashes"]}
    for target, ds in dirs.items():
        for d in ds:
            for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
                for f in sorted(files):
                    p = os.path.join(dirpath, f)
                    if not f.endswith(".nn") or os.path.getsize(p) > 8192:
                        continue
                    rel = os.path.relpath(p, ROOT).replace("/", "_")
                    rel = rel[len("tests_"):] if rel.startswith("tests_") else rel
                    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
                    shutil.copyfile(p, os.path.join(CORPUS, target, rel))


NPY_TYPES = {"<f4": "f", "<f8": "d", "<i4": "i", "<i8": "q", "|u1": "B", "<i1": "b", "<u1": "B", "<i2": "h",
             "<u2": "H", "<f2": "e"}


def npy(descr, shape, values, version=1, fortran=False):
    hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False", "".join("%d," % s for s in shape) if len(shape) != 1 else
        "%d," % shape[0])
    lenfmt = "<H" if version == 1 else "<I"
    pre = 10 if version == 1 else 12
    pad = (64 - (pre + len(hdr) + 1) % 64) % 64
    hdr = hdr + " " * pad + "\n"
    body = struct.pack("<%d%s" % (len(values), NPY_TYPES[descr]), *values)
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(lenfmt, len(hdr)) + hdr.encode("latin1") + body


def npy_seeds():
    put("npy", "f4_2x3", npy("<f4", (2, 3), [1, 2, 3, 4.5, -5, 6e30]))
    put("npy", "f8_3", npy("<f8", (3,), [0.5, -1e300, float("nan")]))
    put("npy", "i4_2x2", npy("<i4", (2, 2), [1, -2, 2147483647, -2147483648]))
    put("npy", "i8_2", npy("<i8", (2,), [9, -9007199254740993]))
    put("npy", "u1_2x2x2", npy("|u1", (2, 2, 2), list(range(8))))
    put("npy", "i1_4", npy("<i1", (4,), [-128, 0, 1, 127]))
    put("npy", "i2_u2", npy("<i2", (1, 2), [-300, 300]))
    put("npy", "u2_2", npy("<u2", (2,), [0, 65535]))
    put("npy", "f2_3", npy("<f2", (3,), [1.0, -2.5, 65504.0]))
    put("npy", "scalar", npy("<f4", (), [3.0]))
    put("npy", "empty_0x4", npy("<f4", (0, 4), []))
    put("npy", "v2_f4", npy("<f4", (1, 2), [1, 2], version=2))
    put("npy", "v3_i4", npy("<i4", (2,), [1, 2], version=3))
    put("npy", "fortran", npy("<f4", (2, 2), [1, 2, 3, 4], fortran=True))
    put("npy", "rank8", npy("|u1", (1, 1, 1, 1, 1, 1, 1, 2), [1, 2]))
    put("npy", "bigendian", npy("<f4", (1,), [1]).replace(b"<f4", b">f4"))
    put("npy", "truncated", npy("<f8", (4, 4), [1.0] * 16)[:-9])


def idx(code, fmt, shape, values):
    body = struct.pack(">%d%s" % (len(values), fmt), *values)
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + body


def idx_files():
    return {"u8_2x3": idx(0x08, "B", (2, 3), [0, 1, 2, 253, 254, 255]),
            "i8_3": idx(0x09, "b", (3,), [-128, 0, 127]),
            "i16_2": idx(0x0B, "h", (2,), [-32768, 32767]),
            "i32_2x1": idx(0x0C, "i", (2, 1), [-2147483648, 7]),
            "f32_2x2": idx(0x0D, "f", (2, 2), [1.5, -2, 3e38, 0]),
            "f64_1": idx(0x0E, "d", (1,), [1e-300]),
            "rank0": idx(0x08, "B", (), [42]),
            "empty": idx(0x08, "B", (0, 28, 28), []),
            "mnist_like": idx(0x08, "B", (2, 4, 4), list(range(32))),
            "truncated": idx(0x0D, "f", (3, 3), [1.0] * 9)[:-5],
            "huge_dims": bytes([0, 0, 8, 2]) + struct.pack(">II", 0x7fffffff, 1) + b"\x01" * 16}


def idx_seeds():
    for name, data in idx_files().items():
        put("idx", name, data)
        put("idx_gz", name, b"\x00" + data)                      # compressed by the target
    put("idx_gz", "raw_gzip", b"\x01" + gzip.compress(idx_files()["u8_2x3"], mtime=0))
    put("idx_gz", "raw_gzip_name", b"\x01" + gzip.compress(idx_files()["f32_2x2"], mtime=0)[:3] + b"\x08" +
        gzip.compress(idx_files()["f32_2x2"], mtime=0)[4:10] + b"x.idx\x00" +
        gzip.compress(idx_files()["f32_2x2"], mtime=0)[10:])
    put("idx_gz", "two_members", b"\x01" + gzip.compress(idx_files()["u8_2x3"][:7], mtime=0) +
        gzip.compress(idx_files()["u8_2x3"][7:], mtime=0))
    put("idx_gz", "cut_half", b"\x40" + idx_files()["mnist_like"])
    put("idx_gz", "flip_crc", b"\xfe" + idx_files()["u8_2x3"])
    put("idx_gz", "huge_dims", b"\x00" + bytes([0, 0, 8, 2]) + struct.pack(">II", 0x7fffffff, 1) + b"\0" * 4096)


def csv_seeds():
    seeds = {"plain": "1,2,3\n4,5,6\n",
             "header": "a,b,label\n0.5,1e3,1\n-2,.5,0\n",
             "bom_no_header": "\ufeff1,2\n3,4\n",
             "bom_header": "\ufeffx,y\n1,2\n",
             "crlf": "1;2\r\n3;4\r\n",
             "cr_only": "1,2\r3,4\r",
             "spaces": "  1 2\t3\n4  5 6  \n\n",
             "tsv": "x\ty\n1\t2\n",
             "special": "nan,inf,-inf\n1e308,-0,1e-320\n",
             "one_column": "7\n8\n9",
             "blank_lines": "\n\n1,2\n\n3,4\n\n",
             "ragged": "1,2\n3\n",
             "quoted": "\"a\",\"b\"\n1,2\n",
             "empty_fields": "1,,3\n,,\n",
             "hex_and_words": "0x10,1\nabc,2\n",
             "only_header": "a,b,c\n"}
    for name, text in seeds.items():
        put("csv", name, text)


def safetensors(tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def st_seeds():
    f = lambda *v: struct.pack("<%df" % len(v), *v)
    model = [("dense.weight", "F32", (3, 4), f(*range(12))), ("dense.bias", "F32", (4,), f(1, 2, 3, 4)),
             ("bn.mean", "F32", (4,), f(0, 0, 0, 0)), ("train.step", "I32", (1,), struct.pack("<i", 5)),
             ("scalar", "F32", (), f(2.5))]
    put("safetensors", "model", safetensors(model, {"format": "pt"}))
    put("safetensors", "model_f64", safetensors(
        [("dense.weight", "F64", (3, 4), struct.pack("<12d", *range(12))),
         ("dense.bias", "F64", (4,), struct.pack("<4d", 1, 2, 3, 4)),
         ("train.step", "I64", (1,), struct.pack("<q", 1 << 40))]))
    put("safetensors", "u8_and_extra", safetensors(
        [("img", "U8", (2, 2), b"\x00\x01\xfe\xff"), ("dense.bias", "F32", (4,), f(1, 2, 3, 4)),
         ("dense.weight", "F32", (4, 3), f(*range(12)))]))
    put("safetensors", "empty_header", safetensors([]))
    put("safetensors", "zero_size", safetensors([("z", "F32", (0, 4), b"")]))
    put("safetensors", "bad_offsets", safetensors([("a", "F32", (2,), f(1, 2))]).replace(b"[0,8]", b"[4,12]"))
    put("safetensors", "header_past_end", struct.pack("<Q", 1 << 40) + b"{}")
    put("safetensors", "huge_shape", safetensors([("a", "F32", (1 << 32, 1 << 32), b"")]))
    put("safetensors", "bf16", safetensors([("a", "BF16", (2,), b"\x80\x3f\x00\x40")]))


ONNX_NODE_TESTS = "/usr/share/libonnx-testdata/data/node"
ONNX_NODE_SEEDS = ["add", "relu", "gemm_default_no_bias", "conv_with_strides_padding", "reshape_reduced_dims",
                   "shape", "gather_0", "concat_2d_axis_0", "if", "constant", "constantofshape_int_zeros",
                   "unsqueeze_axis_0", "transpose_default", "matmul_2d", "maxpool_2d_default",
                   "batchnorm_example", "softmax_axis_1", "slice", "expand_dim_changed", "lstm_defaults",
                   "cast_FLOAT_to_DOUBLE", "where_example", "clip", "flatten_axis0", "sum_example"]


def onnx_seeds():
    for d in ["tests/onnx/fixtures", "tests/onnx_read/cases"]:
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for f in sorted(files):
                p = os.path.join(dirpath, f)
                if f.endswith(".onnx") and not os.path.islink(p) and os.path.getsize(p) <= 65536:
                    rel = os.path.relpath(p, os.path.join(ROOT, d)).replace("/", "_")
                    put("onnx", os.path.basename(d.rstrip("/")) + "_" + rel, open(p, "rb").read())
    for t in ONNX_NODE_SEEDS:
        p = os.path.join(ONNX_NODE_TESTS, "test_" + t, "model.onnx")
        if os.path.exists(p):
            put("onnx", "node_" + t + ".onnx", open(p, "rb").read())


def main():
    nn_seeds()
    onnx_seeds()
    npy_seeds()
    idx_seeds()
    csv_seeds()
    st_seeds()


if __name__ == "__main__":
    main()
