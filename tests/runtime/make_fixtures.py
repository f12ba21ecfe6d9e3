#!/usr/bin/env python3
"""make_fixtures.py: writes the small data files that test_runtime.c reads, into fixtures/ beside it.

    python3 tests/runtime/make_fixtures.py        (needs NumPy; run from anywhere)

The .npy files come from NumPy itself (np.lib.format, so the exact version can be chosen). IDX and
safetensors files are written by small writers in this script that follow the published formats
(yann.lecun.com/exdb/mnist, github.com/huggingface/safetensors), independently of nnc's C code, so the
readers are tested against another implementation, not against themselves. Files named bad_* are
malformed on purpose; each breaks one rule.

The values are restated in test_runtime.c, which asserts them: change both together. Output is
deterministic (gzip mtime 0), so rerunning the script leaves git clean.
What it does not do: run the tests, or exercise nnc's writers (test_runtime.c checks those).
"""
import gzip
import json
import os
import struct

import numpy as np
from numpy.lib import format as npformat

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")


def put(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def npy_bytes(arr, version=(1, 0)):
    path = os.path.join(OUT, ".tmp.npy")
    with open(path, "wb") as f:
        npformat.write_array(f, arr, version=version)
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return data


def npy_handmade(header, payload):
    """A version 1.0 file with a header dict NumPy itself would not write."""
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


# f32 [3, 4]: element i is (i - 1) * 0.5, so [1, 2] (i = 6) is 2.5.
F32 = ((np.arange(12) - 1) * 0.5).astype("<f4").reshape(3, 4)
F64 = np.array([[1 / 3, -2.0, 1e300], [np.pi, -0.0, 5e-324]], dtype="<f8")
I32 = np.array([-2147483648, -1, 0, 7, 2147483647], dtype="<i4")
I64 = np.array([[-(2 ** 62), 1], [2 ** 40 + 3, 2 ** 53 + 1]], dtype="<i8")
U8 = np.array([0, 1, 2, 3, 128, 200, 254, 255], dtype="|u1").reshape(2, 2, 2)
F2 = np.array([0.5, -2.0, 65504.0, 2.0 ** -24, np.inf], dtype="<f2")
I1 = np.array([-128, -1, 0, 127], dtype="i1")
I2 = np.array([-32768, 1, 32767], dtype="<i2")
U2 = np.array([0, 1, 65535], dtype="<u2")


def make_npy():
    put("f32_v1.npy", npy_bytes(F32, (1, 0)))
    put("f32_v2.npy", npy_bytes(F32, (2, 0)))
    put("f64_v3.npy", npy_bytes(F64, (3, 0)))
    put("f64_v1.npy", npy_bytes(F64, (1, 0)))
    put("i32.npy", npy_bytes(I32))
    put("i64.npy", npy_bytes(I64))
    put("u8.npy", npy_bytes(U8))
    put("f2.npy", npy_bytes(F2))
    put("i1.npy", npy_bytes(I1))
    put("i2.npy", npy_bytes(I2))
    put("u2.npy", npy_bytes(U2))
    put("scalar_f64.npy", npy_bytes(np.array(7.25)))
    put("empty_f32.npy", npy_bytes(np.zeros((0, 3), dtype="<f4")))
    # '=' (native) byte order and a Python 2 long in the shape: both legal, neither written by NumPy 2.
    put("native_eq.npy", npy_handmade("{'descr': '=i4', 'fortran_order': False, 'shape': (2L,), }",
                                      struct.pack("<2i", 5, -6)))

    whole = npy_bytes(F32)
    put("bad_truncated.npy", whole[:-10])
    put("bad_trunc_header.npy", whole[:30])
    put("bad_magic.npy", b"NOTNUMPY" + whole[8:])
    put("bad_bigendian.npy", npy_bytes(np.array([1.0, 2.0], dtype=">f4")))
    put("bad_fortran.npy", npy_bytes(np.asfortranarray(F32[:2, :3])))
    put("bad_complex.npy", npy_bytes(np.array([1 + 2j], dtype="<c8")))
    # the element count overflows int64; the byte count overflows (2^62 f32 elements)
    put("bad_overflow.npy", npy_handmade("{'descr': '<f4', 'fortran_order': False, "
                                         "'shape': (4294967296, 4294967296), }", bytes(8)))
    put("bad_huge.npy", npy_handmade("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }",
                                     bytes(8)))
    # a dimension past int64
    put("bad_dim_range.npy", npy_handmade("{'descr': '<f4', 'fortran_order': False, "
                                          "'shape': (99999999999999999999,), }", bytes(8)))
    put("bad_header.npy", npy_handmade("{'descr': '<f4', 'fortran_order': False, 'shape': [3, 4], }",
                                       F32.tobytes()))


def idx_bytes(code, fmt, arr):
    """IDX: 0 0 TYPE RANK, big-endian u32 dims, big-endian data (fmt is the struct letter)."""
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(">%dI" % arr.ndim, *arr.shape)
    return head + struct.pack(">%d%s" % (arr.size, fmt), *arr.ravel().tolist())


IDX_U8 = (np.arange(24) * 7).reshape(2, 3, 4)
IDX_LABELS = np.array([5, 0, 4, 1, 9])
IDX_F32 = np.array([[1.5, -2.25], [1024.0, 0.1]])
IDX_F64 = np.array([1 / 3, -1e200, 2.5])
IDX_I8 = np.array([-5, 100])
IDX_I16 = np.array([-300, 2, 32767])
IDX_I32 = np.array([-100000, 123456789])


def make_idx():
    images = idx_bytes(0x08, "B", IDX_U8)
    put("images-idx3-ubyte", images)
    put("labels-idx1-ubyte.gz", gzip.compress(idx_bytes(0x08, "B", IDX_LABELS), mtime=0))
    put("f32.idx", idx_bytes(0x0D, "f", IDX_F32))
    put("f64.idx", idx_bytes(0x0E, "d", IDX_F64))
    put("i8.idx", idx_bytes(0x09, "b", IDX_I8))
    put("i16.idx.gz", gzip.compress(idx_bytes(0x0B, "h", IDX_I16), mtime=0))
    put("i32.idx", idx_bytes(0x0C, "i", IDX_I32))

    put("bad_magic.idx", b"\x01\x02\x08\x01" + images[4:])
    put("bad_rank.idx", b"\x00\x00\x08\x09" + b"\x00\x00\x00\x01" * 9 + b"\x07")
    put("bad_truncated-idx3-ubyte", images[:4 + 12 + 10])
    put("bad_truncated.idx.gz", gzip.compress(images, mtime=0)[:30])
    # [2^31-1, 1] declared, 64 bytes present: the header alone reads fine, the data is truncated.
    put("huge_header.idx.gz", gzip.compress(b"\x00\x00\x08\x02" + struct.pack(">II", 2**31 - 1, 1)
                                            + bytes(64), mtime=0))
    # [2^32-1, 2^32-1, 2^32-1] u8: the element count overflows int64.
    put("bad_overflow.idx", b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3 + bytes(8))
    good = gzip.compress(images, mtime=0)
    # the gzip trailer's CRC-32 flipped: the data inflates fine, the check fails.
    put("bad_crc.idx.gz", good[:-8] + bytes(b ^ 0xFF for b in good[-8:-4]) + good[-4:])
    # the deflate stream starts with a reserved block type (BTYPE 11): corrupt from the first byte.
    put("bad_deflate.idx.gz", good[:10] + b"\x07" + good[11:])


CSV_FILES = {
    # [3, 3] after the header; an empty line in the middle is ignored.
    "with_header.csv": "x,y,label\n1.5,2,0\n-3, 4.25 ,1\n\n1e3,0.5,2\n",
    # [3, 2], semicolons, CRLF line ends, blank lines, no header.
    "semicolon.csv": "1;2\r\n3;4\r\n\r\n5;-6\r\n",
    # [2, 3], runs of spaces and tabs.
    "whitespace.txt": "  1 2\t3\n4   5 6  \n",
    # [3, 1]: one column is still rank 2; no newline at the end.
    "one_column.csv": "value of y\n1\n2\n3",
    # [2, 3]: the header is separated by spaces, the data by commas; the data decides.
    "header_spaced.csv": "x y label\n1,2,3\n4,5,6\n",
    # [3, 2]: a UTF-8 byte-order mark and no header; the first row is data, not a header.
    "bom_noheader.csv": "\ufeff1,2\n3,4\n5,6\n",
    # [1, 2]: a byte-order mark before a header.
    "bom_header.csv": "\ufeffa,b\n7,8\n",
    "bad_ragged.csv": "a,b,c\n1,2,3\n4,5,6\n7,8\n",
    "bad_nonnumeric.csv": "a,b\n1,2\n3,x7\n",
    "bad_empty_field.csv": "1,2,3\n4,,6\n",
    "bad_no_rows.csv": "a,b,c\n\n",
}


def make_csv():
    for name, text in CSV_FILES.items():
        put(name, text.encode())


def st_bytes(entries, metadata=None, pad=True, data=None):
    """safetensors as published: u64 LE header length, JSON header, data. entries: (name, dtype, array)."""
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, arr in entries:
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + (blob if data is None else data)


def st_raw(header_text, data):
    return struct.pack("<Q", len(header_text)) + header_text.encode() + data


ST_MODEL = [
    ("dense.w", "F32", (np.arange(6, dtype="<f4").reshape(2, 3) + 1) * 0.25),
    ("dense.b", "F32", np.array([0.5, -0.5, 0.0], dtype="<f4")),
    ("step", "I64", np.array(42, dtype="<i8")),
    ("ids", "I32", np.array([-1, 0, 1, 2147483647], dtype="<i4")),
    ("mask", "U8", np.array([[0, 1], [254, 255]], dtype="u1")),
    ("scale", "F64", np.array([1 / 3], dtype="<f8")),
    ("empty", "F32", np.zeros((0, 3), dtype="<f4")),
]

ENTRY = '"dtype":"F32","shape":[2],"data_offsets":[0,8]'


def make_safetensors():
    model = st_bytes(ST_MODEL, metadata={"format": "pt"})
    put("model.safetensors", model)
    unpadded = st_bytes([("a", "F32", np.array([1.5, -1.0], dtype="<f4"))], pad=False)
    assert struct.unpack("<Q", unpadded[:8])[0] % 4 != 0, "want misaligned data"
    put("unpadded.safetensors", unpadded)
    put("empty.safetensors", st_bytes([]))
    two = np.zeros(2, dtype="<f4").tobytes()

    put("bad_short.safetensors", b"\x10\x00\x00\x00\x00")
    put("bad_hugelen.safetensors", struct.pack("<Q", 1 << 40) + b"{}")
    put("bad_len_past_end.safetensors", struct.pack("<Q", 1000) + b"{}" + two)
    # the length covers the data too: the JSON object ends 8 bytes before it
    text = ('{"a":{%s}}' % ENTRY).encode()
    put("bad_len_into_data.safetensors", struct.pack("<Q", len(text) + 8) + text + two)
    put("bad_bigshape.safetensors",
        st_raw('{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', two))
    put("bad_json.safetensors", st_raw('{"a":{"dtype":"F32",', two))
    put("bad_not_object.safetensors", st_raw("[1, 2]  ", two))
    put("bad_junk.safetensors", st_raw('{"a":{%s}} xx' % ENTRY, two))
    put("bad_missing_offsets.safetensors", st_raw('{"a":{"dtype":"F32","shape":[2]}}', two))
    put("bad_missing_dtype.safetensors", st_raw('{"a":{"shape":[2],"data_offsets":[0,8]}}', two))
    put("bad_shape.safetensors", st_raw('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', two))
    put("bad_offsets.safetensors", st_raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[100,108]}}', two))
    put("bad_truncated.safetensors", model[:-20])
    put("bad_size.safetensors", st_raw('{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}', bytes(24)))
    put("bad_dtype.safetensors", st_raw('{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}', two))
    put("bad_overlap.safetensors", st_raw('{"a":{%s},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}'
                                          % ENTRY, bytes(12)))
    put("bad_duplicate.safetensors", st_raw('{"a":{%s},"a":{%s}}' % (ENTRY, ENTRY), two))


def main():
    os.makedirs(OUT, exist_ok=True)
    make_npy()
    make_idx()
    make_csv()
    make_safetensors()
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    assert total < 50 * 1024, "fixtures must stay small (%d bytes)" % total
    print("wrote %d files, %d bytes, to %s" % (len(os.listdir(OUT)), total, OUT))


if __name__ == "__main__":
    main()
