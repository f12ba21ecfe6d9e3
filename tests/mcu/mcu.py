#!/usr/bin/env python3
"""mcu.py: `--target mcu` output of every models/ and test model, on the Cortex-M4F toolchain and in QEMU.

  mcu.py compile NNC ROOT SET...
      Every model of the SETs (below) compiled with `nnc MODEL --target mcu`, with `--inference`, and both
      again with `--weights W` (W: deterministic values for every parameter and state tensor of the model's
      table, written by this script), then each C file through arm-none-eabi-gcc with the flags the firmware C
      is checked with (-std=c99 -O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Wall -Wextra
      -Werror -pedantic -Wdouble-promotion -c). The object may leave undefined only memcpy, memset,
      memmove, single-precision libm functions (expf, tanhf...) and libgcc's __aeabi_* helpers other than
      the double-precision ones; the C and the header (comments and strings aside) include only
      <stdint.h> <stddef.h> <string.h> <math.h> and the model's own header, and say neither `double`,
      `malloc`, `tgmath` nor `cblas`.
  mcu.py device NNC ROOT BOARD_DIR SET|CASE...
      Host = device. For each model: a main.c written here (the inputs and targets as const arrays in
      flash) that calls M_init, M_predict on sample 0 and, when the model trains, 3 M_train_step on the
      samples 0, 1, 2 at batch 1, printing every output, loss and table tensor (after init, after the
      steps) as its IEEE bits through semihosting. Built twice: `--target mcu` with arm-none-eabi-gcc and
      BOARD_DIR's start-up code, linker script and semihosting (examples/firmware/board), run in
      `qemu-system-arm -M mps2-an386`; and the same model at `--target c` (its default batch, no BLAS)
      built by the host's cc ($CC) with the same main.c, run on the host. Outputs and initial tensors must
      agree within rtol 1e-4, atol 1e-5, losses and trained tensors within rtol 1e-3, atol 1e-4 (NaN equals
      NaN; int32 tensors exactly). Two programs (variants) per model: `full`, the whole model, from --weights
      W where the suite gives weights to train from (tests/train) and for models/ files (frozen layers then
      live in flash), else from M_init(m, 1234)'s initializers; and `inference`, `--inference --weights W`,
      the parameters const in flash, predict only (not run for a model without outputs). W is the case's
      own weights (tests/ops, tests/train), else this script's. Models larger than the board's 4 MB of RAM or
      flash are skipped (printed). One line per model and variant with the largest absolute and relative
      differences.

SETs: models (models/*.nn), levels (tests/levels/models), grad (tests/grad/cases), train (tests/train/cases,
with their data and init weights), ops (tests/ops/cases, with their data and weights), misc (the valid
models of tests/passes, diag, emit, save, cli, cmake, difftest). A CASE is SET/NAME (models/ffn).
Known failures: tests/mcu/known_failures.txt, one `ID: reason` a line, ID as printed: SET/NAME[:model]/VARIANT
(compile: train, inference, train+weights, inference+weights; device: full, inference). A listed case that
fails prints KNOWN and does not fail the run; one that passes fails it, so that the list stays true.
Files that `nnc check` rejects are left out of misc (the suites of invalid models).
Exit 0 all agree, 1 some case failed, 2 usage, 77 (skip) without arm-none-eabi-gcc (and, for `device`,
qemu-system-arm or a host cc). NNC_MCU_JOBS sets the parallel jobs (default 2); NNC_MCU_KEEP=DIR keeps
the files there.
What it does not do: judge which side is wrong, or time anything (bench/mcu measures).
"""
import ast
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ARM_CFLAGS = ["-std=c99", "-O2", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
              "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wdouble-promotion"]
ALLOWED_INCLUDES = {"stdint.h", "stddef.h", "string.h", "math.h"}
LIBM = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "pow", "sqrt", "cbrt", "hypot", "tanh",
        "sinh", "cosh", "asinh", "acosh", "atanh", "sin", "cos", "tan", "asin", "acos", "atan", "atan2",
        "erf", "erfc", "lgamma", "tgamma", "fabs", "floor", "ceil", "round", "trunc", "rint", "nearbyint",
        "lrint", "lround", "fmax", "fmin", "fmod", "fdim", "fma", "remainder", "copysign", "ldexp", "frexp",
        "scalbn", "modf", "nan"}
STEPS = 3
SEED = 1234
PREDICT_TOL = (1e-4, 1e-5)  # rtol, atol
TRAIN_TOL = (1e-3, 1e-4)
TIMEOUT = 120
BOARD_BYTES = 4 * 1024 * 1024 - 128 * 1024    # mps2-an386: 4 MB of flash, 4 MB of RAM (less the stack)


class Skip(Exception):
    """a model that this board cannot hold"""


def fail(msg):
    print("mcu.py: " + msg)
    sys.exit(2)


# ---------------------------------------------------------------------------------------------------------
# the models


class Case:
    """one model: SET/NAME[:model], its file, --model, and what its suite gives (data, weights, options)"""

    def __init__(self, ident, path, model=None, data=None, weights=None, options=None, seed_init=True):
        self.ident = ident + (":" + model if model else "")
        self.path = path
        self.model = model
        self.data = data or {}          # NAME -> .npy path
        self.weights = weights          # the case's own weights, or None
        self.options = options or []
        self.seed_init = seed_init      # program 1 starts from M_init(m, SEED) when there are no weights

    def nnc_args(self):
        return [self.path] + (["--model", self.model] if self.model else []) + self.options


def read_args(path):
    """tests/ops and tests/train `args` files: data NAME FILE, option ARGS..., other lines ignored"""
    data, options = {}, []
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) == 3 and w[0] == "data":
                data[w[1]] = os.path.join(os.path.dirname(path), w[2])
            elif w and w[0] == "option":
                options += w[1:]
    return data, options


def model_names(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return re.findall(r"^\s*model\s+([A-Za-z_]\w*)", f.read(), re.M)


def files_case(prefix, path, **kw):
    """cases of one .nn file: the file itself, or each model when it defines several"""
    ident = prefix + "/" + os.path.splitext(os.path.basename(path))[0]
    names = model_names(path)
    if len(names) > 1:
        return [Case(ident, path, model=m, **kw) for m in names]
    return [Case(ident, path, **kw)]


def valid(nnc, path, model):
    """nnc check accepts the file's model"""
    r = subprocess.run([nnc, "check", path] + (["--model", model] if model else []), capture_output=True, text=True)
    return r.returncode == 0


def cases_of(set_name, root, nnc):
    tests = os.path.join(root, "tests")
    out = []
    if set_name in ("models", "levels", "grad"):
        d = {"models": os.path.join(root, "models"), "levels": os.path.join(tests, "levels", "models"),
             "grad": os.path.join(tests, "grad", "cases")}[set_name]
        for f in sorted(os.listdir(d)):
            if f.endswith(".nn"):
                # models/ files train from this script's weights (frozen layers in flash), the others from
                # M_init's initializers
                out += files_case(set_name, os.path.join(d, f), seed_init=set_name != "models")
    elif set_name in ("train", "ops"):
        d = os.path.join(tests, set_name, "cases")
        for c in sorted(os.listdir(d)):
            model = os.path.join(d, c, "model.nn")
            if not os.path.exists(model):
                continue
            data, options = read_args(os.path.join(d, c, "args"))
            w = os.path.join(d, c, "init.safetensors" if set_name == "train" else "weights.safetensors")
            model_opt = None
            if "--model" in options:
                i = options.index("--model")
                model_opt = options[i + 1]
                options = options[:i] + options[i + 2:]
            # the cases' own batch sizes are the host's business; the device compiles batch 1
            options = [o for i, o in enumerate(options)
                       if o != "--batch" and (i == 0 or options[i - 1] != "--batch")]
            case = Case(set_name + "/" + c, model, model=model_opt, data=data,
                        weights=w if os.path.exists(w) else None, options=options)
            out.append(case)
    elif set_name == "misc":
        dirs = [os.path.join(tests, "passes", "cases"), os.path.join(tests, "diag", "valid"),
                os.path.join(tests, "diag", "warnings"), os.path.join(tests, "emit"),
                os.path.join(tests, "save"), os.path.join(tests, "cli", "fixtures"),
                os.path.join(tests, "cmake", "consumer"), os.path.join(tests, "difftest", "found"),
                os.path.join(tests, "cuda_target", "cases")]
        for d in dirs:
            if not os.path.isdir(d):
                continue
            for f in sorted(os.listdir(d)):
                p = os.path.join(d, f)
                if f.endswith(".nn"):
                    # the models that nnc check accepts (a file may define an invalid one beside them)
                    out += [c for c in files_case("misc/" + os.path.relpath(d, tests).replace(os.sep, "_"), p)
                            if valid(nnc, c.path, c.model)]
    else:
        fail("unknown set %s (models, levels, grad, train, ops, misc)" % set_name)
    return out


def select(args, root, nnc):
    cases = []
    for a in args:
        set_name, _, name = a.partition("/")
        got = cases_of(set_name, root, nnc)
        if name:
            got = [c for c in got if c.ident == a or c.ident.startswith(a + ":")]
            if not got:
                fail("no case %s" % a)
        cases += got
    return cases


def read_known(root):
    known = {}
    path = os.path.join(root, "tests", "mcu", "known_failures.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    # an ID may hold ':' before a model's name: the reason follows ': '
                    ident, _, why = line.partition(": ")
                    known[ident.strip()] = why.strip()
    return known


# ---------------------------------------------------------------------------------------------------------
# files: .npy, safetensors, the tensor table


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError("%s is not a .npy file" % path)
    if data[6] == 1:
        length, start = struct.unpack("<H", data[8:10])[0], 10
    else:
        length, start = struct.unpack("<I", data[8:12])[0], 12
    header = ast.literal_eval(data[start:start + length].decode("latin1"))
    if header.get("fortran_order"):
        raise ValueError("%s: Fortran order" % path)
    fmt = {"<f4": "f", "<i4": "i", "<i8": "q", "<f8": "d", "|u1": "B", "|i1": "b"}[header["descr"]]
    count = 1
    for d in header["shape"]:
        count *= d
    values = struct.unpack_from("<%d%s" % (count, fmt), data, start + length)
    return list(header["shape"]), list(values)


TABLE_LINE = re.compile(r'^\s*\{"((?:[^"\\]|\\.)*)", (\d+), \{([\d, ]+)\}, ([^,]+(?:\([^)]*\))?), (\d+), (\d+), (\d+), '
                        r'([^}]*)\},\s*$')


def read_table(c_path):
    """the tensor table of a generated .c: [(name, shape, trainable, dtype, kind)]"""
    out = []
    with open(c_path) as f:
        for line in f:
            m = TABLE_LINE.match(line)
            if m:
                rank = int(m.group(2))
                shape = [int(x) for x in m.group(3).split(",")][:rank]
                out.append((unescape(m.group(1)), shape, int(m.group(5)), int(m.group(6)), int(m.group(7))))
    return out


def unescape(s):
    """the text of a C string literal (simple, octal and hexadecimal escapes)"""
    out, i = bytearray(), 0
    simple = {"n": 10, "t": 9, "r": 13, "\\": 92, '"': 34, "'": 39, "?": 63, "a": 7, "b": 8, "f": 12, "v": 11}
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        e = s[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e == "x":
            j = i + 2
            while j < len(s) and s[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(s[i + 2:j], 16) & 255)
            i = j
        else:
            j = i + 1
            while j < len(s) and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(int(s[i + 1:j], 8) & 255)
            i = j
    return out.decode("utf-8", "replace")


def count_of(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Rand:
    """a small deterministic generator (xorshift32) seeded from a name"""

    def __init__(self, name):
        self.s = (zlib.crc32(name.encode()) | 1) & 0xFFFFFFFF

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def uniform(self, lo, hi):
        return lo + (hi - lo) * ((self.next() >> 8) / 16777216.0)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def tensor_values(name, shape, dtype):
    """deterministic values for a parameter or state tensor, of the scale an initializer would choose"""
    r, n = Rand("w:" + name), count_of(shape)
    if dtype == 1:
        return [0] * n
    leaf = name.rsplit(".", 1)[-1]
    if "var" in leaf:
        return [f32(r.uniform(0.5, 1.5)) for _ in range(n)]
    if leaf in ("gamma", "scale"):
        return [f32(r.uniform(0.8, 1.2)) for _ in range(n)]
    if len(shape) >= 2:
        a = (1.0 / max(1, n // shape[-1])) ** 0.5
        return [f32(r.uniform(-a, a)) for _ in range(n)]
    return [f32(r.uniform(-0.1, 0.1)) for _ in range(n)]


def write_safetensors(path, tensors):
    """tensors: [(name, shape, dtype 0|1, values)]"""
    header, blobs, offset = {}, [], 0
    for name, shape, dtype, values in tensors:
        blob = struct.pack("<%d%s" % (len(values), "f" if dtype == 0 else "i"), *values)
        header[name] = {"dtype": "F32" if dtype == 0 else "I32", "shape": shape,
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def make_weights(c_path, path):
    """W for a model: every parameter and state tensor of its table (kind 0 and 1)"""
    table = [t for t in read_table(c_path) if t[4] in (0, 1)]
    write_safetensors(path, [(name, shape, dtype, tensor_values(name, shape, dtype))
                             for name, shape, _, dtype, _ in table])


# ---------------------------------------------------------------------------------------------------------
# checks of the C


def strip_c(text):
    """the C without comments and string or character literals"""
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'',
                  lambda m: " " if m.group(0).startswith("/") else '""', text, flags=re.S)


def check_source(c_path, h_path):
    problems = []
    own = os.path.basename(h_path)
    for p in (c_path, h_path):
        with open(p, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for inc in re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', text, re.M):
            if inc not in ALLOWED_INCLUDES and inc != own:
                problems.append("%s includes <%s>" % (os.path.basename(p), inc))
        code = strip_c(text)
        for word in ("double", "malloc", "calloc", "realloc", "free", "tgmath", "cblas", "printf", "long double"):
            if re.search(r"\b%s\b" % word, code):
                problems.append("%s says `%s`" % (os.path.basename(p), word))
    return problems


def allowed_undefined(sym):
    if sym in ("memcpy", "memset", "memmove"):
        return True
    if sym.startswith("__aeabi_"):
        # libgcc's helpers, except double-precision arithmetic and conversions (no double on this FPU)
        return not re.match(r"__aeabi_(c?d|[a-z]+2d$)", sym)
    return sym.endswith("f") and sym[:-1] in LIBM


def undefined(obj):
    r = subprocess.run(["arm-none-eabi-nm", "-u", obj], capture_output=True, text=True)
    return [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]


def run(cmd, cwd=None, timeout=TIMEOUT):
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "timed out after %d s: %s" % (timeout, " ".join(cmd))
    return r.returncode, r.stdout + r.stderr


def tail(text, n=12):
    lines = text.strip().splitlines()
    return "\n".join("    " + l for l in lines[:n]) + ("\n    ..." if len(lines) > n else "")


def compile_case(nnc, case, tmp):
    """[(variant, problem)] for the four variants of one model; and the undefined symbols seen"""
    problems, seen = [], set()
    stem = os.path.join(tmp, "m")
    variants = [("train", []), ("inference", ["--inference"]), ("train+weights", None),
                ("inference+weights", None)]
    weights = os.path.join(tmp, "w.safetensors")
    for variant, extra in variants:
        if extra is None:
            if not os.path.exists(weights):
                problems.append((variant, "no weights: the train variant did not compile"))
                continue
            extra = ["--weights", weights] + (["--inference"] if variant.startswith("inference") else [])
        out = "%s_%s" % (stem, variant.replace("+", "_"))
        rc, log = run([nnc] + case.nnc_args() + ["--target", "mcu"] + extra + ["-o", out + ".c"])
        if rc != 0:
            problems.append((variant, "nnc exited %d:\n%s" % (rc, tail(log))))
            continue
        if variant == "train":
            make_weights(out + ".c", weights)
        for p in check_source(out + ".c", out + ".h"):
            problems.append((variant, p))
        rc, log = run(["arm-none-eabi-gcc"] + ARM_CFLAGS + ["-c", out + ".c", "-o", out + ".o"])
        if rc != 0:
            problems.append((variant, "arm-none-eabi-gcc:\n%s" % tail(log)))
            continue
        syms = undefined(out + ".o")
        seen.update(syms)
        bad = [s for s in syms if not allowed_undefined(s)]
        if bad:
            problems.append((variant, "undefined in the object: " + " ".join(bad)))
    return problems, seen


# ---------------------------------------------------------------------------------------------------------
# host = device


def c_name(ident):
    return re.sub(r"\W", "_", ident)


def parse_interface(h_path):
    """(prefix, struct, predict params, train_step params or None): params [(const, type, name)]"""
    with open(h_path) as f:
        text = f.read()
    m = re.search(r"^void (\w+)_predict\((\w+) \*m, int n, ([^)]*)\);", text, re.M)
    if not m:
        raise ValueError("no M_predict in %s" % h_path)
    prefix, struct_name = m.group(1), m.group(2)

    def params(s):
        out = []
        for p in s.split(","):
            p = p.strip()
            mm = re.match(r"(const )?(nnc_real|int32_t) \*(\w+)$", p)
            if not mm:
                raise ValueError("unexpected parameter %r in %s" % (p, h_path))
            out.append((bool(mm.group(1)), mm.group(2), mm.group(3)))
        return out

    predict = params(m.group(3))
    t = re.search(r"^nnc_real %s_train_step\(\w+ \*m, int n, ([^)]*)\);" % re.escape(prefix), text, re.M)
    train = params(t.group(1)) if t else None
    shapes = re.search(r"/\* 1 <= n <= MAX_BATCH; inputs (.*?); outputs(.*?) \*/", text)
    if not shapes:
        raise ValueError("no inputs/outputs comment in %s" % h_path)

    def dims(s):
        return [(n, [int(d) for d in sh.split(",")[1:] if d]) for n, sh in re.findall(r"(\S+) \[([^\]]*)\]", s)]

    ins, outs = dims(shapes.group(1)), dims(shapes.group(2))
    return prefix, struct_name, predict, train, ins, outs


def ir_inputs(nnc, case):
    """{name: (dtype, per-sample shape)} of every input and target in the model's IR"""
    rc, text = run([nnc] + case.nnc_args() + ["--emit", "ir", "-O0"])
    if rc != 0:
        raise ValueError("nnc --emit ir exited %d:\n%s" % (rc, tail(text)))
    out = {}
    for m in re.finditer(r"^%\d+ = input (\S+) : (f32|i32)\[B,?([^\]]*)\]", text, re.M):
        out[m.group(1)] = (m.group(2), [int(d) for d in m.group(3).split(",") if d])
    return out


def sample_values(case, name, dtype, shape, samples, classes, onehot):
    """samples x count values: from the case's data file when it has one (cycling), else generated"""
    n = count_of(shape)
    if name in case.data:
        fshape, vals = read_npy(case.data[name])
        rows = fshape[0] if fshape else 1
        per = len(vals) // max(1, rows)
        if per != n:
            raise ValueError("%s: %s has %d values a sample, the model wants %d" % (case.ident, name, per, n))
        out = []
        for s in range(samples):
            out += vals[(s % rows) * per:(s % rows + 1) * per]
        return [int(v) for v in out] if dtype == "i32" else [f32(float(v)) for v in out]
    r = Rand("x:%s:%s" % (case.ident, name))
    if dtype == "i32":
        return [int(r.uniform(0, classes)) % classes for _ in range(samples * n)]
    if onehot:
        out = []
        for _ in range(samples * n // shape[-1]):
            row = [0.0] * shape[-1]
            row[int(r.uniform(0, shape[-1])) % shape[-1]] = 1.0
            out += row
        return out
    return [f32(r.uniform(-1, 1)) for _ in range(samples * n)]


def c_array(ctype, name, values):
    if ctype == "int32_t":
        body = ", ".join(str(int(v)) for v in values)
    else:
        body = ", ".join(("%.9g" % v) + ("f" if re.search(r"[.e]", "%.9g" % v) else ".0f") for v in values)
        body = body.replace("inf.0f", "INFINITY").replace("nan.0f", "NAN")
    lines, line = [], "   "
    for item in body.split(", "):
        if len(line) + len(item) > 110:
            lines.append(line)
            line = "   "
        line += " " + item + ","
    lines.append(line)
    return "static const %s %s[%d] = {\n%s\n};\n" % (ctype, name, max(1, len(values)), "\n".join(lines))


MAIN_TEMPLATE = r"""/* main.c: written by tests/mcu/mcu.py for %(ident)s; do not edit. Runs M_init, M_predict on sample 0
 * and, when the model trains, %(steps)d train steps at batch 1, printing every value as its IEEE bits
 * ("= NAME COUNT" then the words), the same program on the device and on the host. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "%(header)s"

#ifdef NNC_MCU_HOST
#include <stdio.h>
static void put_(const char *s) { fputs(s, stdout); }
#else
#include "board.h"
static void put_(const char *s) { board_puts(s); }
#endif

static %(struct)s model_;

%(arrays)s
static char line_[160];

static char *hex_(char *p, uint32_t w)
{
    for (int shift = 28; shift >= 0; shift -= 4) *p++ = "0123456789abcdef"[(w >> shift) & 15u];
    return p;
}

/* s, at most 48 characters, each outside '!'..'~' written as '?' (names are any text) */
static char *text_(char *p, const char *s)
{
    for (int i = 0; s[i] && i < 48; i++) *p++ = (s[i] > ' ' && s[i] <= '~') ? s[i] : '?';
    return p;
}

static char *number_(char *p, uint32_t v)
{
    char digits[12];
    int n = 0;
    do { digits[n++] = (char)('0' + v %% 10u); v /= 10u; } while (v);
    while (n) *p++ = digits[--n];
    return p;
}

/* "= TAG:K:NAME COUNT", then 8 words a line (K: the tensor's index in the table, or '-') */
static void dump_(const char *tag, int k, const char *name, const void *data, int32_t count)
{
    char *p = text_(line_, "=");
    *p++ = ' ';
    p = text_(p, tag);
    *p++ = ':';
    if (k >= 0) p = number_(p, (uint32_t)k);
    else *p++ = '-';
    *p++ = ':';
    p = text_(p, name);
    *p++ = ' ';
    p = number_(p, (uint32_t)count);
    *p++ = '\n';
    *p = 0;
    put_(line_);
    p = line_;
    for (int32_t i = 0; i < count; i++) {
        uint32_t w;
        memcpy(&w, (const char *)data + 4 * i, 4);
        p = hex_(p, w);
        *p++ = (i %% 8 == 7 || i == count - 1) ? '\n' : ' ';
        if (p[-1] == '\n') {
            *p = 0;
            put_(line_);
            p = line_;
        }
    }
}

static void dump_tensors_(const char *tag)
{
    for (int k = 0; k < %(prefix)s_num_tensors; k++) {
        const nnc_tensor_info *t = &%(prefix)s_tensors[k];
        int32_t count = 1;
        for (int d = 0; d < t->rank; d++) count *= t->shape[d];
        dump_(tag, k, t->name, t->data ? t->data : (const void *)((const char *)&model_ + t->offset), count);
    }
}

int main(void)
{
    %(prefix)s_init(&model_, %(seed)du);
    dump_tensors_("init");
    %(prefix)s_predict(&model_, 1, %(predict_args)s);
%(dump_outputs)s%(train)s    put_("= end:-:- 0\n");
    return 0;
}
"""

TRAIN_TEMPLATE = r"""    for (int s = 0; s < %(steps)d; s++) {
        const nnc_real loss = %(prefix)s_train_step(&model_, 1, %(train_args)s);
        dump_("loss", s, "step", &loss, 1);
    }
    dump_tensors_("trained");
"""


def write_main(path, case, header, iface, ir, train, samples):
    prefix, struct_name, predict, train_params, ins, outs = iface
    pred_inputs = [p for p in predict if p[0]]
    pred_outputs = [p for p in predict if not p[0]]
    if len(pred_inputs) != len(ins) or len(pred_outputs) != len(outs):
        raise ValueError("the predict prototype and its comment disagree")
    arrays, pargs, dumps = [], [], []
    classes = max(2, outs[0][1][-1] if outs and outs[0][1] else 2)
    with open(case.path, encoding="utf-8", errors="replace") as f:
        onehot = re.search(r"(?<!sparse_)categorical_crossentropy\(", f.read()) is not None
    names = {}                                   # C parameter name -> array name
    for (const, ctype, pname), (mname, shape) in zip(pred_inputs, ins):
        dtype = "i32" if ctype == "int32_t" else "f32"
        arr = "in_" + c_name(pname)
        arrays.append(c_array(ctype, arr, sample_values(case, mname, dtype, shape, samples, classes, False)))
        names[pname] = (arr, count_of(shape))
        pargs.append(arr)
    for (const, ctype, pname), (mname, shape) in zip(pred_outputs, outs):
        arr = "out_" + c_name(pname)
        arrays.append("static %s %s[%d];\n" % (ctype, arr, max(1, count_of(shape))))
        pargs.append(arr)
        dumps.append('    dump_("out", -1, "%s", %s, %d);\n' % (pname, arr, count_of(shape)))
    train_text = ""
    if train:
        targs = []
        tnames = [n for n in ir if n not in [m for m, _ in ins]]
        extra = train_params[len(pred_inputs):]
        if len(tnames) != len(extra):
            raise ValueError("the train step's targets (%s) and the IR's (%s) disagree"
                             % (", ".join(p[2] for p in extra), ", ".join(tnames)))
        for pname in [p[2] for p in train_params[:len(pred_inputs)]]:
            arr, n = names[pname]
            targs.append("%s + s * %d" % (arr, n))
        for (const, ctype, pname), mname in zip(extra, tnames):
            dtype, shape = ir[mname]
            arr = "tg_" + c_name(pname)
            arrays.append(c_array(ctype, arr, sample_values(case, mname, dtype, shape, samples, classes, onehot)))
            targs.append("%s + s * %d" % (arr, count_of(shape)))
        train_text = TRAIN_TEMPLATE % {"steps": STEPS, "prefix": prefix, "train_args": ", ".join(targs)}
    with open(path, "w") as f:
        f.write(MAIN_TEMPLATE % {
            "ident": case.ident, "steps": STEPS, "header": header, "struct": struct_name,
            "arrays": "".join(arrays), "prefix": prefix, "seed": SEED,
            "predict_args": ", ".join(pargs), "dump_outputs": "".join(dumps), "train": train_text})


def parse_dump(text):
    """{TAG:NAME: [words]} from a program's output; None when it did not reach the end"""
    out, cur = {}, None
    for line in text.splitlines():
        if line.startswith("= "):
            w = line.split()
            if w[1].startswith("end:"):
                return out
            cur = w[1]
            out[cur] = []
        elif cur is not None and re.match(r"^[0-9a-f]{8}( [0-9a-f]{8})*$", line):
            out[cur] += [int(x, 16) for x in line.split()]
    return None


def as_float(w):
    return struct.unpack("<f", struct.pack("<I", w))[0]


class Diff:
    def __init__(self):
        self.abs = self.rel = 0.0
        self.values = 0

    def add(self, a, b):
        if a != a and b != b:
            return
        d = abs(a - b)
        self.abs = max(self.abs, d)
        if b != 0:
            self.rel = max(self.rel, d / abs(b))


def compare(device, host, table, int_outputs, diff):
    """problems: every tensor, output and loss the host printed must be on the device and agree"""
    problems = []
    for key, hv in host.items():
        tag, k, name = key.split(":", 2)
        entry = table[int(k)] if tag in ("init", "trained") and int(k) < len(table) else None
        if key not in device:
            # a firmware model keeps no generator when nothing draws from it after M_init
            if entry and entry[0] == "rng.state" and tag in ("init", "trained"):
                continue
            problems.append("%s: printed by the host, not by the device" % key)
            continue
        dv = device[key]
        if len(dv) != len(hv):
            problems.append("%s: %d values on the device, %d on the host" % (key, len(dv), len(hv)))
            continue
        exact = (entry is not None and entry[3] == 1) or (tag == "out" and name in int_outputs)
        rtol, atol = TRAIN_TOL if tag in ("trained", "loss") else PREDICT_TOL
        for i, (a, b) in enumerate(zip(dv, hv)):
            diff.values += 1
            if exact:
                if a != b:
                    problems.append("%s[%d]: device %d, host %d (int32)" % (key, i, a, b))
                    break
                continue
            fa, fb = as_float(a), as_float(b)
            diff.add(fa, fb)
            if not ((fa != fa and fb != fb) or fa == fb or abs(fa - fb) <= atol + rtol * abs(fb)):
                problems.append("%s[%d]: device %.9g, host %.9g (rtol %g, atol %g)" % (key, i, fa, fb, rtol, atol))
                break
    for key in device:
        if key not in host:
            problems.append("%s: printed by the device, not by the host" % key)
    return problems


class Device:
    def __init__(self, board, tmp):
        self.board = board
        self.objs = []
        for src in ("startup.c", "board.c"):
            obj = os.path.join(tmp, src + ".o")
            rc, log = run(["arm-none-eabi-gcc"] + ARM_CFLAGS + ["-I", board, "-c", os.path.join(board, src),
                                                                 "-o", obj])
            if rc != 0:
                print("FAIL: the board's %s does not compile:\n%s" % (src, tail(log)))
                sys.exit(1)
            self.objs.append(obj)


def build_and_run(nnc, case, tmp, flags, train, samples, device, host_cc):
    """(device output, host output, table, interface) or raises RuntimeError with the problem"""
    os.makedirs(tmp, exist_ok=True)
    mcu, host = os.path.join(tmp, "mcu"), os.path.join(tmp, "host")
    os.makedirs(mcu, exist_ok=True)
    os.makedirs(host, exist_ok=True)
    cmd = [nnc] + case.nnc_args() + ["--target", "mcu"] + flags + ["-o", os.path.join(mcu, "m.c")]
    rc, log = run(cmd)
    if rc != 0:
        raise RuntimeError("%s exited %d:\n%s" % (" ".join(cmd), rc, tail(log)))
    hcmd = [nnc] + case.nnc_args() + flags + ["-o", os.path.join(host, "m.c")]
    rc, log = run(hcmd)
    if rc != 0:
        raise RuntimeError("%s exited %d:\n%s" % (" ".join(hcmd), rc, tail(log)))
    with open(os.path.join(mcu, "m.h")) as f:
        header = f.read()
    for what in ("RAM", "FLASH"):
        m = re.search(r"^#define \w+_%s_BYTES (\d+)" % what, header, re.M)
        if m and int(m.group(1)) > BOARD_BYTES:
            raise Skip("%s bytes of %s: more than the board's %d" % (m.group(1), what, BOARD_BYTES))
    iface = parse_interface(os.path.join(mcu, "m.h"))
    if iface[3] is None:
        train = False
    ir = ir_inputs(nnc, case)
    main = os.path.join(tmp, "main.c")
    write_main(main, case, "m.h", iface, ir, train, samples)
    elf = os.path.join(mcu, "m.elf")
    cmd = (["arm-none-eabi-gcc"] + ARM_CFLAGS + ["-I", mcu, "-I", device.board, main, os.path.join(mcu, "m.c")]
           + device.objs + ["-nostartfiles", "-T", os.path.join(device.board, "mps2_an386.ld"),
                            "-Wl,--gc-sections", "-o", elf, "-lm"])
    rc, log = run(cmd)
    if rc != 0:
        raise RuntimeError("arm-none-eabi-gcc (device program):\n%s" % tail(log))
    qemu = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting-config", "enable=on,target=native", "-kernel", elf]
    rc, dev_out = run(qemu, cwd=mcu, timeout=TIMEOUT)
    if rc != 0:
        raise RuntimeError("qemu exited %d (qemu-system-arm -M mps2-an386 ... -kernel %s):\n%s"
                           % (rc, elf, tail(dev_out)))
    exe = os.path.join(host, "m")
    cmd = [host_cc, "-std=c99", "-O2", "-DNNC_MCU_HOST", "-DNNC_NO_BLAS", "-I", host, main,
           os.path.join(host, "m.c"), "-o", exe, "-lm"]
    rc, log = run(cmd)
    if rc != 0:
        raise RuntimeError("%s (host program):\n%s" % (host_cc, tail(log)))
    rc, host_out = run([exe])
    if rc != 0:
        raise RuntimeError("the host program exited %d:\n%s" % (rc, tail(host_out)))
    d, h = parse_dump(dev_out), parse_dump(host_out)
    if d is None:
        raise RuntimeError("the device program stopped early:\n%s" % tail(dev_out[-2000:]))
    if h is None:
        raise RuntimeError("the host program stopped early")
    return d, h, read_table(os.path.join(host, "m.c")), iface, train


def device_case(nnc, case, tmp, device, host_cc):
    """[(variant, problem or None, Diff, note)]"""
    results = []
    base = os.path.join(tmp, "weights")
    os.makedirs(base, exist_ok=True)
    # the model's table, for W
    rc, log = run([nnc] + case.nnc_args() + ["--target", "mcu", "-o", os.path.join(base, "t.c")])
    if rc != 0:
        return [("full", "nnc %s --target mcu exited %d:\n%s" % (" ".join(case.nnc_args()), rc, tail(log)),
                 Diff(), "")]
    weights = case.weights
    if weights is None:
        weights = os.path.join(base, "w.safetensors")
        make_weights(os.path.join(base, "t.c"), weights)
    with open(os.path.join(base, "t.h")) as f:
        trains = "_train_step(" in f.read()
    try:
        outputs = parse_interface(os.path.join(base, "t.h"))[5]
    except ValueError as e:
        return [("full", str(e), Diff(), "")]
    # program 1 starts from W where the suite gives weights to train from (tests/train) or where the
    # model is a models/ file; from M_init's initializers otherwise (ops models do not train: their
    # initializers get tested here, their weights in program 2)
    own = (case.weights is not None and trains) or not case.seed_init
    variants = [("full", ["--weights", weights] if own else [], "weights" if own else "seed %d" % SEED),
                ("inference", ["--inference", "--weights", weights], "weights, const")]
    for variant, flags, note in variants:
        diff = Diff()
        if variant == "inference" and not outputs:
            continue            # nothing to predict: a model that only has a loss (tests/grad)
        try:
            d, h, table, iface, trains = build_and_run(nnc, case, os.path.join(tmp, variant), flags,
                                                       variant == "full", STEPS, device, host_cc)
            int_outputs = [p for c, t, p in iface[2] if not c and t == "int32_t"]
            problems = compare(d, h, table, int_outputs, diff)
            if variant == "full" and trains:
                note += ", %d train steps" % STEPS
            if not iface[5]:
                note = "no outputs, " + note
            results.append((variant, "\n".join("    " + p for p in problems[:5]) if problems else None, diff, note))
        except Skip as e:
            results.append((variant, None, diff, "skipped: " + str(e)))
        except (RuntimeError, ValueError, OSError) as e:
            results.append((variant, str(e), diff, note))
    return results


# ---------------------------------------------------------------------------------------------------------


KNOWN_SEEN = []
MODE = []


def report(ident, variant, problem, known, unexpected):
    key = ident + "/" + variant
    k = known.get(key)
    if problem is None:
        if k is not None:
            unexpected.append(key)
            return "FIXED %s: listed in tests/mcu/known_failures.txt (%s) but passes: remove the line" % (key, k)
        return None
    if k is not None:
        KNOWN_SEEN.append(key)
        return "KNOWN %s: %s\n%s" % (key, k, problem if problem.startswith("    ") else tail(problem, 6))
    unexpected.append(key)
    again = "    again: NNC_MCU_KEEP=/tmp/mcu python3 %s %s NNC ROOT%s %s  (keeps main.c and both builds)" % (
        os.path.relpath(__file__), MODE[0], " BOARD_DIR" if MODE[0] == "device" else "", ident.split(":")[0])
    return "FAIL %s:\n%s\n%s" % (key, problem if problem.startswith("    ") else tail(problem, 20), again)


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("compile", "device"):
        print(__doc__)
        sys.exit(2)
    mode, nnc, root = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    MODE.append(mode)
    for tool in ["arm-none-eabi-gcc", "arm-none-eabi-nm"] + (["qemu-system-arm"] if mode == "device" else []):
        if shutil.which(tool) is None:
            print("SKIP: no %s (Debian: gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm)" % tool)
            sys.exit(77)
    host_cc = None
    if mode == "device":
        host_cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not host_cc:
            print("SKIP: no host C compiler (cc)")
            sys.exit(77)
        board = os.path.abspath(sys.argv[4])
        sets = sys.argv[5:]
    else:
        sets = sys.argv[4:]
    if not sets:
        fail("no set given")
    known = read_known(root)
    jobs = int(os.environ.get("NNC_MCU_JOBS", "2"))
    cases = select(sets, root, nnc)
    unexpected = []
    keep = os.environ.get("NNC_MCU_KEEP")       # a directory to keep the files in, for debugging
    if keep:
        os.makedirs(keep, exist_ok=True)
    with (tempfile.TemporaryDirectory(prefix="nnc_mcu.") if not keep else contextlib.nullcontext(keep)) as tmp:
        if mode == "compile":
            def one(i_case):
                i, case = i_case
                d = os.path.join(tmp, str(i))
                os.makedirs(d)
                return case, compile_case(nnc, case, d)
            allsyms = set()
            with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
                for case, (problems, syms) in pool.map(one, enumerate(cases)):
                    allsyms |= syms
                    by_variant = {}
                    for v, p in problems:
                        by_variant.setdefault(v, []).append(p)
                    lines = []
                    for v in ("train", "inference", "train+weights", "inference+weights"):
                        msg = report(case.ident, v, "\n".join(by_variant[v]) if v in by_variant else None,
                                     known, unexpected)
                        if msg:
                            lines.append(msg)
                    print("\n".join(lines) if lines else "ok   %s" % case.ident, flush=True)
            print("%d models, 4 variants each; undefined in the objects: %s"
                  % (len(cases), " ".join(sorted(allsyms)) or "nothing"))
        else:
            device = Device(board, tmp)

            def one(i_case):
                i, case = i_case
                return case, device_case(nnc, case, os.path.join(tmp, str(i)), device, host_cc)
            with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
                for case, results in pool.map(one, enumerate(cases)):
                    for variant, problem, diff, note in results:
                        msg = report(case.ident, variant, problem, known, unexpected)
                        if msg:
                            print(msg, flush=True)
                        if problem is None and note.startswith("skipped"):
                            print("skip %-48s %-9s %s" % (case.ident, variant, note), flush=True)
                        elif problem is None:
                            print("ok   %-48s %-9s %6d values, max abs %.3g rel %.3g (%s)"
                                  % (case.ident, variant, diff.values, diff.abs, diff.rel, note), flush=True)
    if unexpected:
        print("%d unexpected: %s" % (len(unexpected), " ".join(unexpected)))
        sys.exit(1)
    print("%d models: all %s, but for %d known failures (tests/mcu/known_failures.txt)"
          % (len(cases), "agree" if mode == "device" else "compile", len(KNOWN_SEEN)))


if __name__ == "__main__":
    main()
