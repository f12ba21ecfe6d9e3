#!/usr/bin/env python3
"""check_pb2npy.py: pb2npy against onnx.numpy_helper on every .pb under the given directories.

    /work/venv-onnx/bin/python tests/onnx/check_pb2npy.py PB2NPY DIR [DIR...]

For each test_*/test_data_set_*/{input,output}_K.pb: onnx.numpy_helper.to_array is the reference. pb2npy must
print the tensor's name and write the same shape and values (bit for bit, NaN where NaN) in the dtype it
documents (int8/int16/uint16 -> int32, uint32/uint64 -> int64, float16/bfloat16 -> float32, bool -> uint8), or
exit 3 for a type with no .npy form (strings, complex, float8, ...), or 1 for a file numpy_helper cannot read
either (a SequenceProto or OptionalProto parsed as a TensorProto). Prints each mismatch and a count;
exit 1 on any mismatch. Needs numpy and onnx, so it is run by hand (not a ctest; CI has neither).
"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

WIDEN = {np.int8: np.int32, np.int16: np.int32, np.uint16: np.int32, np.uint32: np.int64, np.uint64: np.int64,
         np.float16: np.float32, np.bool_: np.uint8}


def expected(pb):
    t = onnx.TensorProto()
    with open(pb, "rb") as f:
        t.ParseFromString(f.read())
    try:
        a = numpy_helper.to_array(t)
    except Exception:  # a type numpy_helper cannot give either
        return t.name, None
    if t.data_type == onnx.TensorProto.BFLOAT16:
        a = a.astype(np.float32)
    if a.dtype.kind not in "fiub" or a.dtype.itemsize > 8 or a.dtype == np.dtype("float16") and t.data_type != onnx.TensorProto.FLOAT16:
        return t.name, None
    for src, dst in WIDEN.items():
        if a.dtype == np.dtype(src):
            a = a.astype(dst)
    return t.name, a


def main():
    pb2npy, dirs = sys.argv[1], sys.argv[2:]
    bad = checked = no_form = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "t.npy")
        for d in dirs:
            for pb in sorted(glob.glob(os.path.join(d, "test_*", "test_data_set_*", "*put_*.pb"))):
                name, want = expected(pb)
                r = subprocess.run([pb2npy, pb, out], capture_output=True, text=True)
                if want is None or r.returncode == 3:  # no .npy form; exit 1 for a sequence or optional, not a tensor
                    if want is not None or r.returncode not in (1, 3):
                        print(f"MISMATCH {pb}: exit {r.returncode}, reference {'none' if want is None else want.dtype}")
                        bad += 1
                    no_form += 1
                    continue
                checked += 1
                got = np.load(out) if r.returncode == 0 else None
                if got is None or r.stdout != name + "\n" or got.dtype != want.dtype or got.shape != want.shape \
                        or got.tobytes() != want.tobytes() and not np.array_equal(got, want, equal_nan=True):
                    print(f"MISMATCH {pb}: exit {r.returncode} {r.stderr.strip()} name {r.stdout.strip()!r}/{name!r} "
                          f"{None if got is None else (got.dtype, got.shape)} vs {(want.dtype, want.shape)}")
                    bad += 1
    print(f"{checked} tensors checked, {no_form} without a .npy form, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
