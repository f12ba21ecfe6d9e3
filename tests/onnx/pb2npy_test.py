#!/usr/bin/env python3
"""pb2npy_test.py: pb2npy on TensorProtos written here byte by byte, with hand-worked expected arrays.

    python3 tests/onnx/pb2npy_test.py PB2NPY

Each case encodes a TensorProto with the wire format of onnx.proto (dims = 1, data_type = 2, float_data = 4,
int32_data = 5, int64_data = 7, name = 8, raw_data = 9, double_data = 10, uint64_data = 11), runs pb2npy and
checks the exit code, the name it prints and the .npy it writes (descr, shape and the values, read here with
struct). Malformed and hostile files (short raw_data, a count that disagrees with dims, negative or huge
dims, truncated bytes) must exit 1 without writing; types with no .npy form exit 3; an output that cannot be
written exits 2. Python's standard
library only. Exit 0 when every case passes, 1 otherwise, 77 with --no-onnx.
"""
import ast
import os
import struct
import subprocess
import sys
import tempfile

FLOAT, UINT8, INT8, INT32, INT64, STRING, BOOL, FLOAT16, DOUBLE, UINT64 = 1, 2, 3, 6, 7, 8, 9, 10, 11, 13


def varint(n):
    n &= (1 << 64) - 1  # negative int64 values are ten-byte varints
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def key(number, wire):
    return varint(number << 3 | wire)


def ld(number, payload):
    return key(number, 2) + varint(len(payload)) + payload


def tensor(name, dtype, dims, raw=None, floats=None, int32s=None, int64s=None, doubles=None, uint64s=None):
    """a TensorProto: dims unpacked (one key each, as some writers do), the typed fields packed"""
    b = b"".join(key(1, 0) + varint(d) for d in dims) + key(2, 0) + varint(dtype)
    if floats is not None:
        b += ld(4, struct.pack(f"<{len(floats)}f", *floats))
    if int32s is not None:
        b += ld(5, b"".join(varint(v) for v in int32s))
    if int64s is not None:
        b += ld(7, b"".join(varint(v) for v in int64s))
    b += ld(8, name.encode())
    if raw is not None:
        b += ld(9, raw)
    if doubles is not None:
        b += ld(10, struct.pack(f"<{len(doubles)}d", *doubles))
    if uint64s is not None:
        b += ld(11, b"".join(varint(v) for v in uint64s))
    return b


def field_bytes(data, number):
    """the payload of the length-delimited top-level field `number` of a well-formed message"""
    i = 0
    while i < len(data):
        k, i = read_varint(data, i)
        wire = k & 7
        if wire == 0:
            _, i = read_varint(data, i)
            continue
        if wire != 2:
            i += 8 if wire == 1 else 4
            continue
        n, i = read_varint(data, i)
        if k >> 3 == number:
            return data[i:i + n]
        i += n
    return b""


def read_varint(data, i):
    n, shift = 0, 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return n, i


def read_npy(path):
    """(descr, shape, values) of a .npy file"""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", "not a .npy file"
    n, start = (struct.unpack("<H", data[8:10])[0], 10) if data[6] == 1 else (struct.unpack("<I", data[8:12])[0], 12)
    header = ast.literal_eval(data[start:start + n].decode("latin1"))
    descr, shape = header["descr"], tuple(header["shape"])
    count = 1
    for d in shape:
        count *= d
    code = {"<f4": "f", "<f8": "d", "<i4": "i", "<i8": "q", "|u1": "B"}[descr]
    body = data[start + n:]
    values = list(struct.unpack(f"<{count}{code}", body[:count * struct.calcsize(code)]))
    return descr, shape, values


INF = float("inf")
# (what, TensorProto bytes, exit code, (descr, shape, values) expected when it is 0)
CASES = [
    ("float raw_data", tensor("x", FLOAT, [2, 3], raw=struct.pack("<6f", 0, 1, -2.5, 3, 1e-30, INF)),
     0, ("<f4", (2, 3), [0, 1, -2.5, 3, struct.unpack("<f", struct.pack("<f", 1e-30))[0], INF])),
    ("float float_data", tensor("input.1", FLOAT, [3], floats=[0.5, -1, 7]), 0, ("<f4", (3,), [0.5, -1, 7])),
    ("double double_data", tensor("d", DOUBLE, [2], doubles=[0.1, -3]), 0, ("<f8", (2,), [0.1, -3])),
    ("double raw_data", tensor("d", DOUBLE, [1, 1], raw=struct.pack("<d", 1 / 3)), 0, ("<f8", (1, 1), [1 / 3])),
    ("int64 int64_data, negative", tensor("i", INT64, [3], int64s=[-1, 2 ** 40, 0]), 0, ("<i8", (3,), [-1, 2 ** 40, 0])),
    ("int64 raw_data", tensor("i", INT64, [2], raw=struct.pack("<2q", -7, 2 ** 62)), 0, ("<i8", (2,), [-7, 2 ** 62])),
    ("int32 raw_data", tensor("i", INT32, [2], raw=struct.pack("<2i", -2 ** 31, 5)), 0, ("<i4", (2,), [-2 ** 31, 5])),
    ("int32 int32_data", tensor("i", INT32, [2], int32s=[-3, 4]), 0, ("<i4", (2,), [-3, 4])),
    ("bool raw_data", tensor("b", BOOL, [3], raw=bytes([1, 0, 1])), 0, ("|u1", (3,), [1, 0, 1])),
    ("bool int32_data", tensor("b", BOOL, [2], int32s=[0, 1]), 0, ("|u1", (2,), [0, 1])),
    ("uint8 raw_data", tensor("u", UINT8, [2], raw=bytes([255, 3])), 0, ("|u1", (2,), [255, 3])),
    ("int8 widened to int32", tensor("s", INT8, [2], raw=bytes([0xFB, 0x7F])), 0, ("<i4", (2,), [-5, 127])),
    ("float16 widened to float32", tensor("h", FLOAT16, [3], raw=struct.pack("<3H", 0x3C00, 0xC000, 0x0001)),
     0, ("<f4", (3,), [1.0, -2.0, 2.0 ** -24])),
    ("uint64 that fits", tensor("u", UINT64, [1], uint64s=[2 ** 63 - 1]), 0, ("<i8", (1,), [2 ** 63 - 1])),
    ("empty [0, 3]", tensor("e", FLOAT, [0, 3], raw=b""), 0, ("<f4", (0, 3), [])),
    ("rank 0", tensor("k", INT64, [], int64s=[4]), 0, ("<i8", (), [4])),
    ("uint64 above INT64_MAX", tensor("u", UINT64, [1], uint64s=[2 ** 63]), 3, None),
    ("string", tensor("s", STRING, [1]) + ld(6, b"abc"), 3, None),
    ("rank 9", tensor("r", FLOAT, [1] * 9, raw=struct.pack("<f", 1)), 3, None),
    ("raw_data one byte short", tensor("x", FLOAT, [2, 3], raw=bytes(23)), 1, None),
    ("raw_data one byte long", tensor("x", FLOAT, [2], raw=bytes(9)), 1, None),
    ("float_data count disagrees with dims", tensor("x", FLOAT, [4], floats=[1, 2, 3]), 1, None),
    ("no data for a non-empty shape", tensor("x", FLOAT, [2]), 1, None),
    ("negative dim", tensor("x", FLOAT, [-1, 2], raw=b""), 1, None),
    ("huge dims, no data", tensor("x", FLOAT, [1 << 31, 1 << 31, 1 << 20]), 1, None),
    ("dims overflowing int64", tensor("x", FLOAT, [1 << 62, 8]), 1, None),
    ("truncated length", tensor("x", FLOAT, [2], raw=bytes(8))[:-3], 1, None),
    ("a key with no value", b"\x08", 1, None),
]


def run_case(pb2npy, tmp, what, data, want_rc, want):
    pb, npy = os.path.join(tmp, "t.pb"), os.path.join(tmp, "t.npy")
    with open(pb, "wb") as f:
        f.write(data)
    if os.path.exists(npy):
        os.remove(npy)
    r = subprocess.run([pb2npy, pb, npy], capture_output=True, text=True)
    if r.returncode != want_rc:
        return f"exit {r.returncode}, expected {want_rc}: {r.stderr.strip()}"
    if want_rc != 0:
        if os.path.exists(npy) or not r.stderr.startswith("pb2npy: "):
            return "a failure wrote a file or printed no pb2npy: message"
        return None
    want_name = field_bytes(data, 8).decode()
    if r.stdout != want_name + "\n":
        return f"printed {r.stdout!r}, expected {want_name!r}"
    got = read_npy(npy)
    if got != want:
        return f"wrote {got}, expected {want}"
    return None


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--no-onnx":
        print("skipped: nnc was built without ONNX import")
        return 77
    if len(sys.argv) != 2:
        print("usage: pb2npy_test.py PB2NPY")
        return 2
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for what, data, rc, want in CASES:
            why = run_case(sys.argv[1], tmp, what, data, rc, want)
            if why:
                failed += 1
                print(f"FAIL {what}: {why}")
        with open(os.path.join(tmp, "t.pb"), "wb") as f:
            f.write(CASES[0][1])
        r = subprocess.run([sys.argv[1], os.path.join(tmp, "t.pb"), os.path.join(tmp, "no", "dir", "t.npy")],
                           capture_output=True, text=True)
        if r.returncode != 2:
            failed += 1
            print(f"FAIL unwritable output: exit {r.returncode}")
    print(f"pb2npy: {len(CASES) + 1 - failed} of {len(CASES) + 1} cases pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
