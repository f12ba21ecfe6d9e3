#!/usr/bin/env python3
"""cuda_target.py: `--target cuda` output of every models/ and test model, without a GPU.

  cuda_target.py kernels NNC ROOT NVRTC_PTX SET|CASE...
      `nnc MODEL --emit cuda` (training, --inference, and for models/ files --inference --weights W) through
      NVRTC (NVRTC_PTX, this directory's nvrtc_ptx.c, with the runtime's options) for compute_80 and
      compute_90 (a warning in NVRTC's log fails), then `ptxas -v` for sm_80 and sm_90; for models/ files
      also `nvcc -cubin -arch=sm_90 -Werror all-warnings`. A register spill (ptxas's "N bytes spill
      stores") is printed, not a failure.
  cuda_target.py host NNC ROOT RUNTIME_DIR SET|CASE...
      `nnc MODEL --target cuda -o m.c` (training and --inference): m.c through gcc and clang (when present)
      `-std=c99 -Wall -Wextra -Werror -pedantic`, also with `-include runtime/cuda/nnc_cuda.h` (the
      generated declarations agree with the runtime's); linked with a main that calls every entry point
      against libnnc_cuda_runtime and the toolkit's stub libcuda; run without the emulator, M_init fails
      naming NNC_CUDA_EMULATE (or succeeds, on a machine with a GPU).
  cuda_target.py emulate NNC ROOT RUNTIME_DIR SET|CASE...
      Emulator = host. A main.c written here, built twice: with the model at `--target cuda` (linked with
      RUNTIME_DIR/libnnc_cuda_runtime.so, run with NNC_CUDA_EMULATE=1) and at `--target c` (NNC_NO_BLAS).
      It calls M_init(m, 1234) (or the model starts from --weights W), prints every tensor of the table
      (M_get_tensor on the cuda side), then predict at n = B (the maximum batch), 1 and 3 (n varying between
      replays of the graph), eval at B and 3 with metrics; 3 train steps at n = B, 3, B (the last through
      M_train_step_metrics), every tensor after the first and the last; predict and eval again; the _device
      entry points with host arrays (the emulator's device pointers are host pointers; the host build calls
      the plain ones); every float tensor set to 0.5 times itself by M_set_tensor, read back (it must be
      bitwise what was set) and a predict after it. Values before the first train step must agree within
      rtol 1e-4, atol 1e-5, those after it within rtol 1e-3, atol 1e-4 (int32 exactly, NaN equals NaN).
      Variants: `full` (as above) and `inference` (`--inference --weights W`: predicts and _device only).
  cuda_target.py fixtures NNC ROOT NPYCMP STCMP SET|CASE...
      The fixtures' own references, through the CLI under NNC_CUDA_EMULATE=1: each tests/ops case by
      `nnc predict --target cuda` against its expected_*.npy (NumPy/PyTorch; npycmp: rtol 1e-4, atol 1e-5)
      and against `nnc predict --target c`; each tests/train case by `nnc train --target cuda --steps K
      --no-shuffle` against expected.safetensors (PyTorch; stcmp: rtol 1e-3, atol 1e-4) and against
      `nnc train --target c`.

SETs and CASEs as tests/mcu/mcu.py's (its enumeration is imported): models, levels, grad, train, ops, misc;
a CASE is SET/NAME. Known failures: tests/cuda_target/known_failures.txt, `ID: reason` a line, ID as printed
(MODE:SET/NAME[:model]/VARIANT) or a shell pattern (`host:*/train:clang`); a listed case that fails prints
KNOWN; a line whose cases (some, in this run) all pass fails the run, so that the list stays true.
Exit 0 all pass, 1 some case failed, 2 usage, 77 (skip) when a tool is missing (nvrtc_ptx or ptxas for
kernels; the runtime library for host, emulate, fixtures). NNC_CUDA_TARGET_JOBS sets the parallel jobs
(default 2); NNC_CUDA_TARGET_KEEP=DIR keeps the files there; NNC_CUDA_TARGET_DEVICE=1 runs the cuda side of
emulate, fixtures and cli on the GPU instead of the emulator (on a machine with one);
NNC_CUDA_TARGET_LEVELS="-O0 -O1" adds a training variant at each of those levels (kernels: train-O0; host:
train-O0 and its compilers; emulate: full-O0), the long tests' setting.
What it does not do: run on a GPU (tests/gpu/run.sh does), or judge which side is wrong.
"""
import concurrent.futures
import contextlib
import fnmatch
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True          # nothing written into the source tree
sys.path.insert(0, os.path.join(HERE, "..", "mcu"))
import mcu  # noqa: E402  (the sets of models, safetensors, the tensor table, sample data)

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
PREDICT_TOL = (1e-4, 1e-5)
TRAIN_TOL = (1e-3, 1e-4)
SEED = 1234
STUBS = "/usr/local/cuda/lib64/stubs"
TIMEOUT = 300


def other_levels():
    """NNC_CUDA_TARGET_LEVELS: more levels than the default -O2, each one more training variant (-O0 -O1)"""
    return [lv for lv in os.environ.get("NNC_CUDA_TARGET_LEVELS", "").split() if lv != "-O2"]


def run(cmd, cwd=None, env=None, timeout=TIMEOUT):
    try:
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "timed out after %d s: %s" % (timeout, " ".join(cmd))
    return r.returncode, r.stdout + r.stderr


def emulator_env(cache):
    """the environment of a cuda run: the emulator, or the GPU with NNC_CUDA_TARGET_DEVICE=1"""
    env = dict(os.environ)
    env.update(NNC_CACHE_DIR=cache, NNC_CUDA_QUIET="1")
    if os.environ.get("NNC_CUDA_TARGET_DEVICE") == "1":
        env.pop("NNC_CUDA_EMULATE", None)
    else:
        env["NNC_CUDA_EMULATE"] = "1"
    return env


def nnc_c(nnc, case, flags, out):
    """nnc CASE FLAGS -o out; raises RuntimeError"""
    cmd = [nnc] + case.nnc_args() + flags + ["-o", out]
    rc, log = run(cmd)
    if rc != 0:
        raise RuntimeError("%s exited %d:\n%s" % (" ".join(cmd), rc, mcu.tail(log)))


def case_weights(nnc, case, tmp):
    """the case's own weights, else deterministic ones for every parameter and state tensor (mcu.py's)"""
    if case.weights:
        return case.weights
    w = os.path.join(tmp, "w.safetensors")
    if not os.path.exists(w):
        nnc_c(nnc, case, [], os.path.join(tmp, "t.c"))
        mcu.make_weights(os.path.join(tmp, "t.c"), w)
    return w


# ---------------------------------------------------------------------------------------------------------
# kernels: NVRTC, ptxas, nvcc

SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
FUNC = re.compile(r"Compiling entry function '([^']+)' for '(sm_\d+)'")


def spills(log):
    """[(function, arch, stores, loads)] with a nonzero spill"""
    out, func = [], None
    for line in log.splitlines():
        m = FUNC.search(line)
        if m:
            func = m.groups()
            continue
        m = SPILL.search(line)
        if m and func and (int(m.group(1)) or int(m.group(2))):
            out.append((func[0], func[1], int(m.group(1)), int(m.group(2))))
    return out


def kernels_case(nnc, case, tmp, tools):
    """[(variant, problem or None, note)]"""
    results = []
    variants = [("train", []), ("inference", ["--inference"])]
    if case.ident.startswith("models/"):
        variants.append(("inference+weights", None))
    variants += [("train" + level, [level]) for level in other_levels()]
    for variant, flags in variants:
        try:
            if flags is None:
                flags = ["--inference", "--weights", case_weights(nnc, case, tmp)]
            cu = os.path.join(tmp, variant.replace("+", "_") + ".cu")
            cmd = [nnc] + case.nnc_args() + flags + ["--emit", "cuda"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
            if r.returncode != 0:
                raise RuntimeError("%s exited %d:\n%s" % (" ".join(cmd), r.returncode, mcu.tail(r.stderr)))
            with open(cu, "w") as f:
                f.write(r.stdout)
            notes = []
            kernels = len(re.findall(r"^NNC_GLOBAL void", r.stdout, re.M))
            for arch in ("80", "90"):
                ptx = cu[:-3] + "_%s.ptx" % arch
                rc, log = run([tools["nvrtc"], cu, "compute_" + arch, ptx])
                if rc != 0:
                    raise RuntimeError("NVRTC compute_%s:\n%s" % (arch, mcu.tail(log, 20)))
                rc, log = run(["ptxas", "-arch=sm_" + arch, "-v", ptx, "-o", ptx[:-4] + ".cubin"])
                if rc != 0:
                    raise RuntimeError("ptxas -arch=sm_%s:\n%s" % (arch, mcu.tail(log, 20)))
                for func, sm, st, ld in spills(log):
                    notes.append("spill %s %s: %d bytes stores, %d bytes loads" % (func, sm, st, ld))
            if case.ident.startswith("models/") and variant == "train" and tools.get("nvcc"):
                rc, log = run([tools["nvcc"], "-cubin", "-arch=sm_90", "-Werror", "all-warnings", "-x", "cu", cu,
                               "-o", cu[:-3] + "_nvcc.cubin"])
                if rc != 0:
                    raise RuntimeError("nvcc -cubin -arch=sm_90:\n%s" % mcu.tail(log, 20))
            nvcc = case.ident.startswith("models/") and variant == "train" and tools.get("nvcc")
            results.append((variant, None, "%d kernels%s" % (kernels, ", nvcc too" if nvcc else ""), notes))
        except (RuntimeError, OSError, ValueError) as e:
            results.append((variant, str(e), "", []))
    return results


# ---------------------------------------------------------------------------------------------------------
# host: the generated C with every warning, against the runtime's header, linked with the stub libcuda

LINK_MAIN = r"""/* main.c: written by tests/cuda_target/cuda_target.py; links every entry point of the model */
#include <stdio.h>
#include <string.h>
#include "m.h"

int main(void)
{
    static %(struct)s m;
    int rc = %(p)s_init(&m, 1u);
    const char *e = %(p)s_error(&m);
    printf("init %%d: %%s\n", rc, e ? e : "");
    void *volatile keep[] = {%(entries)s};
    (void)keep;
    if (rc == 0) %(p)s_free(&m);
    return 0;
}
"""


def header_entries(h_path):
    """(prefix, struct name, [entry point names]) from the generated cuda header"""
    with open(h_path) as f:
        text = f.read()
    m = re.search(r"^int (\w+)_init\((\w+) \*m, uint64_t seed\);", text, re.M)
    if not m:
        raise ValueError("no `int M_init(M *m, uint64_t seed)` in %s" % h_path)
    prefix, struct_name = m.group(1), m.group(2)
    names = re.findall(r"^(?:const )?\w+ \*?(%s_\w+)\(" % re.escape(prefix), text, re.M)
    return prefix, struct_name, [n for n in names if n != prefix + "_init"]


def host_case(nnc, case, tmp, tools):
    """each variant's C through every compiler (variant:gcc, variant:clang), then linked and run (variant)"""
    results = []
    for variant, flags in [("train", []), ("inference", ["--inference"])] + [
            ("train" + level, [level]) for level in other_levels()]:
        d = os.path.join(tmp, variant)
        os.makedirs(d, exist_ok=True)
        try:
            mc = os.path.join(d, "m.c")
            nnc_c(nnc, case, flags + ["--target", "cuda"], mc)
            prefix, struct_name, entries = header_entries(os.path.join(d, "m.h"))
        except (RuntimeError, OSError, ValueError) as e:
            results.append((variant, str(e), "", []))
            continue
        for cc in tools["ccs"]:
            problem = None
            for extra in ([], ["-include", tools["header"]]):
                rc, log = run([cc] + STRICT + ["-O1"] + extra + ["-c", mc, "-o", os.path.join(d, "m.o")])
                if rc != 0:
                    problem = "%s %s:\n%s" % (os.path.basename(cc), " ".join(STRICT + extra), mcu.tail(log, 20))
                    break
            results.append(("%s:%s" % (variant, os.path.basename(cc)), problem,
                            "-Werror, and with -include nnc_cuda.h", []))
        try:
            with open(os.path.join(d, "main.c"), "w") as f:
                f.write(LINK_MAIN % {"struct": struct_name, "p": prefix,
                                     "entries": ", ".join("(void *)%s" % e for e in entries)})
            exe = os.path.join(d, "m")
            cmd = ([tools["ccs"][0], "-std=c99", "-I", d, os.path.join(d, "main.c"), mc, "-o", exe,
                    "-L" + tools["runtime"], "-lnnc_cuda_runtime", "-Wl,-rpath," + tools["runtime"]]
                   + (["-L" + STUBS, "-lcuda"] if tools["stub"] else []) + ["-lm"])
            rc, log = run(cmd)
            if rc != 0:
                raise RuntimeError("link:\n%s" % mcu.tail(log, 20))
            env = dict(os.environ)
            env.pop("NNC_CUDA_EMULATE", None)
            rc, out = run([exe], env=env, timeout=120)
            m = re.match(r"init (-?\d+): (.*)", out)
            if rc != 0 or not m:
                raise RuntimeError("the linked program exited %d:\n%s" % (rc, mcu.tail(out)))
            if m.group(1) != "0" and "NNC_CUDA_EMULATE" not in m.group(2):
                raise RuntimeError("M_init failed without naming NNC_CUDA_EMULATE: %s" % m.group(2))
            results.append((variant, None, "linked (%d entry points%s), run: %s" % (
                len(entries), ", stub libcuda" if tools["stub"] else "",
                "a GPU" if m.group(1) == "0" else "no GPU, M_init names NNC_CUDA_EMULATE"), []))
        except (RuntimeError, OSError, ValueError) as e:
            results.append((variant, str(e), "", []))
    return results


# ---------------------------------------------------------------------------------------------------------
# emulate: the same main.c against --target cuda (emulated) and --target c

MAIN = r"""/* main.c: written by tests/cuda_target/cuda_target.py for %(ident)s; do not edit. Built against the model
 * at --target cuda (NNC_CT_CUDA) and at --target c; prints every value as its IEEE bits ("= TAG:K:NAME COUNT",
 * then the words), so that the two runs can be compared. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m.h"

static %(struct)s model_;
static unsigned char scratch_[%(scratch)d];
static unsigned char scratch2_[%(scratch)d];

static void *load_(const char *path, size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 4);
    FILE *f = fopen(path, "rb");
    if (!p || !f || fread(p, 1, bytes, f) != bytes) {
        printf("main: cannot read %%s\n", path);
        exit(2);
    }
    fclose(f);
    return p;
}

static void check_(const char *what)
{
#ifdef NNC_CT_CUDA
    const char *e = %(p)s_error(&model_);
    if (e) {
        printf("main: %%s: %%s\n", what, e);
        exit(1);
    }
#else
    (void)what;
#endif
}

static void dump_(const char *tag, int k, const char *name, const void *data, long count)
{
    printf("= %%s:", tag);
    if (k >= 0) printf("%%d", k);
    else printf("-");
    printf(":");
    for (int i = 0; name[i] && i < 48; i++) putchar(name[i] > ' ' && name[i] <= '~' ? name[i] : '?');
    printf(" %%ld\n", count);
    for (long i = 0; i < count; i++) {
        uint32_t w;
        memcpy(&w, (const char *)data + 4 * i, 4);
        printf("%%08x%%c", (unsigned)w, (i %% 8 == 7 || i == count - 1) ? '\n' : ' ');
    }
}

static long count_(int k)
{
    long c = 1;
    for (int d = 0; d < %(p)s_tensors[k].rank; d++) c *= %(p)s_tensors[k].shape[d];
    return c;
}

static void get_(int k, void *buf)
{
#ifdef NNC_CT_CUDA
    if (%(p)s_get_tensor(&model_, k, buf) != 0) {
        printf("main: %(p)s_get_tensor(%%d) failed: %%s\n", k, %(p)s_error(&model_) ? %(p)s_error(&model_) : "");
        exit(1);
    }
#else
    const nnc_tensor_info *t = &%(p)s_tensors[k];
    memcpy(buf, t->data ? t->data : (const void *)((const char *)&model_ + t->offset), (size_t)count_(k) * 4);
#endif
}

static void set_(int k, const void *buf)
{
#ifdef NNC_CT_CUDA
    if (%(p)s_set_tensor(&model_, k, buf) != 0) {
        printf("main: %(p)s_set_tensor(%%d) failed: %%s\n", k, %(p)s_error(&model_) ? %(p)s_error(&model_) : "");
        exit(1);
    }
#else
    memcpy((char *)&model_ + %(p)s_tensors[k].offset, buf, (size_t)count_(k) * 4);
#endif
}

static void dump_tensors_(const char *tag)
{
    for (int k = 0; k < %(p)s_num_tensors; k++) {
        get_(k, scratch_);
        dump_(tag, k, %(p)s_tensors[k].name, scratch_, count_(k));
    }
}

/* every float tensor set to half itself; read back, it must be what was set */
static void halve_tensors_(void)
{
    for (int k = 0; k < %(p)s_num_tensors; k++) {
        if (%(p)s_tensors[k].dtype != 0 || %(p)s_tensors[k].data) continue;
        get_(k, scratch_);
        for (long i = 0; i < count_(k); i++) {
            float v;
            memcpy(&v, scratch_ + 4 * i, 4);
            v *= 0.5f;
            memcpy(scratch_ + 4 * i, &v, 4);
        }
        set_(k, scratch_);
        get_(k, scratch2_);
        if (memcmp(scratch_, scratch2_, (size_t)count_(k) * 4) != 0) {
            printf("main: tensor %%d (%%s) read back is not what was set\n", k, %(p)s_tensors[k].name);
            exit(1);
        }
    }
}

int main(void)
{
%(loads)s#ifdef NNC_CT_CUDA
    if (%(p)s_init(&model_, %(seed)du) != 0) {
        printf("main: %(p)s_init failed: %%s\n", %(p)s_error(&model_) ? %(p)s_error(&model_) : "");
        return 1;
    }
#else
    %(p)s_init(&model_, %(seed)du);
#endif
    dump_tensors_("f.init");
%(body)s    printf("= end:-:- 0\n");
#ifdef NNC_CT_CUDA
    %(p)s_free(&model_);
#endif
    return 0;
}
"""


def interface(host_h, cuda_h):
    """what main.c needs, from the host header (shapes) and the cuda one (the _device entry points)"""
    prefix, struct_name, predict, train, ins, outs = mcu.parse_interface(host_h)
    with open(host_h) as f:
        htext = f.read()
    with open(cuda_h) as f:
        ctext = f.read()
    batch = int(re.search(r"^#define \w+_MAX_BATCH (\d+)", htext, re.M).group(1))
    nmetrics = int(re.search(r"^#define \w+_NUM_METRICS (\d+)", htext, re.M).group(1))
    has = {e: re.search(r"\b%s_%s\(" % (re.escape(prefix), e), ctext) is not None
           for e in ("eval", "train_step", "train_step_metrics", "predict_device", "eval_device",
                     "train_step_device")}
    has["host_eval"] = re.search(r"\b%s_eval\(" % re.escape(prefix), htext) is not None
    has["host_train_step_metrics"] = re.search(r"\b%s_train_step_metrics\(" % re.escape(prefix), htext) is not None
    return dict(prefix=prefix, struct=struct_name, predict=predict, train=train, ins=ins, outs=outs, batch=batch,
                nmetrics=nmetrics, has=has)


def write_arrays(case, tmp, itf, ir):
    """the inputs and targets as .bin files of B samples; [(C type, name, count)] of each, in train order"""
    classes = max(2, itf["outs"][0][1][-1] if itf["outs"] and itf["outs"][0][1] else 2)
    with open(case.path, encoding="utf-8", errors="replace") as f:
        onehot = re.search(r"(?<!sparse_)categorical_crossentropy\(", f.read()) is not None
    params = itf["train"] if itf["train"] is not None else [p for p in itf["predict"] if p[0]]
    names = [m for m, _ in itf["ins"]] + [n for n in ir if n not in [m for m, _ in itf["ins"]]]
    if len(names) < len(params):
        raise ValueError("the entry points' inputs (%s) and the IR's (%s) disagree"
                         % (", ".join(p[2] for p in params), ", ".join(names)))
    out = []
    for i, (const, ctype, pname) in enumerate(params):
        mname = names[i]
        dtype, shape = ir[mname]
        vals = mcu.sample_values(case, mname, dtype, shape, itf["batch"], classes, onehot and i >= len(itf["ins"]))
        fmt = "<%d%s" % (len(vals), "i" if ctype == "int32_t" else "f")
        with open(os.path.join(tmp, "a%d.bin" % i), "wb") as f:
            f.write(struct.pack(fmt, *vals))
        out.append((ctype, "a%d" % i, mcu.count_of(shape)))
    return out


def main_body(itf, arrays, full):
    """the calls of main.c; full: train, eval and the tensor round trip too"""
    p, b, nm = itf["prefix"], itf["batch"], itf["nmetrics"]
    lines = []
    ni = len(itf["ins"])
    ins = ", ".join(a[1] for a in arrays[:ni])
    all_args = ", ".join(a[1] for a in arrays)
    outs = ["o%d" % i for i in range(len(itf["outs"]))]
    out_decl = "".join("    nnc_real *%s = calloc(%d, sizeof(nnc_real));\n" % (o, max(1, b * mcu.count_of(s)))
                       for o, (_, s) in zip(outs, itf["outs"]))
    int_outs = [o for o, prm in zip(outs, [q for q in itf["predict"] if not q[0]]) if prm[1] == "int32_t"]
    if int_outs:       # int32 outputs: the prototype says int32_t *
        for o in int_outs:
            out_decl = out_decl.replace("nnc_real *%s =" % o, "int32_t *%s =" % o)
    lines.append(out_decl)
    lines.append("    nnc_real metrics[%d] = {0};\n    nnc_real loss;\n" % max(1, nm))

    def predict(tag, n, device=False):
        fn = "%s_predict%s" % (p, "_device" if device and itf["has"]["predict_device"] else "")
        if device:
            args = (ins + ", " if ins else "") + ", ".join(outs)
            lines.append("#ifdef NNC_CT_CUDA\n    %s(&model_, %d, %s);\n#else\n"
                         "    %s_predict(&model_, %d, %s);\n#endif\n" % (fn, n, args, p, n, args))
        else:
            lines.append("    %s(&model_, %d, %s%s);\n" % (fn, n, ins + ", " if ins else "", ", ".join(outs)))
        lines.append('    check_("%s");\n' % fn)
        for o, (name, shape) in zip(outs, itf["outs"]):
            lines.append('    dump_("%s", -1, "%s", %s, %d);\n' % (tag, name, o, n * mcu.count_of(shape)))

    def ev(tag, n, device=False):
        fn = "%s_eval%s" % (p, "_device" if device else "")
        if device:
            lines.append("#ifdef NNC_CT_CUDA\n    loss = %s(&model_, %d, %s, metrics);\n#else\n"
                         "    loss = %s_eval(&model_, %d, %s, metrics);\n#endif\n" % (fn, n, all_args, p, n, all_args))
        else:
            lines.append("    loss = %s(&model_, %d, %s, metrics);\n" % (fn, n, all_args))
        lines.append('    check_("%s");\n    dump_("%s", -1, "loss", &loss, 1);\n' % (fn, tag))
        if nm:
            lines.append('    dump_("%s", -1, "metrics", metrics, %d);\n' % (tag, nm))

    def step(tag, n, how):
        if how == "metrics":
            call = "%s_train_step_metrics(&model_, %d, %s, metrics)" % (p, n, all_args)
        elif how == "device":
            host = ("%s_train_step_metrics(&model_, %d, %s, metrics)" % (p, n, all_args)
                    if itf["has"]["host_train_step_metrics"] else "%s_train_step(&model_, %d, %s)" % (p, n, all_args))
            lines.append("#ifdef NNC_CT_CUDA\n    loss = %s_train_step_device(&model_, %d, %s, metrics);\n#else\n"
                         "    loss = %s;\n#endif\n" % (p, n, all_args, host))
            call = None
        else:
            call = "%s_train_step(&model_, %d, %s)" % (p, n, all_args)
        if call:
            lines.append("    loss = %s;\n" % call)
        lines.append('    check_("train step");\n    dump_("%s", -1, "loss", &loss, 1);\n' % tag)
        if how != "plain" and nm:
            lines.append('    dump_("%s", -1, "metrics", metrics, %d);\n' % (tag, nm))

    small = min(3, b)
    has_out = bool(itf["outs"])
    if has_out:
        predict("f.p1", b)
        predict("f.p2", 1)
        predict("f.p3", small)
        predict("f.d1", 2 if b >= 2 else 1, device=True)
    trains = full and itf["train"] is not None
    if full and itf["has"]["eval"] and itf["has"]["host_eval"] and itf["train"] is not None:
        ev("f.e1", b)
        ev("f.e2", small)
        if itf["has"]["eval_device"]:
            ev("f.e3", 1, device=True)
    if trains:
        step("t.s1", b, "plain")
        lines.append('    dump_tensors_("t.after1");\n')
        step("t.s2", small, "plain")
        step("t.s3", b, "metrics" if itf["has"]["train_step_metrics"] and itf["has"]["host_train_step_metrics"]
             else "plain")
        lines.append('    dump_tensors_("t.after3");\n')
        if has_out:
            predict("t.p4", b)
        if itf["has"]["eval"] and itf["has"]["host_eval"]:
            ev("t.e4", b)
        if itf["has"]["train_step_device"]:
            step("t.s4", small, "device")
            lines.append('    dump_tensors_("t.after4");\n')
    if full:
        lines.append("    halve_tensors_();\n")
        lines.append('    dump_tensors_("%s.halved");\n' % ("t" if trains else "f"))
        if has_out:
            predict("%s.p5" % ("t" if trains else "f"), b)
    return "".join(lines)


def write_main(path, case, itf, arrays, full):
    loads = "".join('    %s *%s = load_("%s.bin", %d);\n' % (ct, name, name, 4 * itf["batch"] * c)
                    for ct, name, c in arrays)
    with open(path, "w") as f:
        f.write(MAIN % {"ident": case.ident, "struct": itf["struct"], "p": itf["prefix"], "seed": SEED,
                        "scratch": 4 * max(1, itf["scratch"]), "loads": loads, "body": main_body(itf, arrays, full)})


def compare(dev, host, table, int_outputs, one_step=False):
    """problems, values compared, max abs and rel difference; one_step: after the first train step only the
    losses (tests/grad models train at lr 1 and diverge: their weights then amplify rounding)"""
    problems, values, mabs, mrel = [], 0, 0.0, 0.0
    for key, hv in host.items():
        tag, k, name = key.split(":", 2)
        if one_step and tag.startswith("t.") and tag not in ("t.s1", "t.after1") and name != "loss":
            continue
        entry = table[int(k)] if k != "-" and int(k) < len(table) else None
        if key not in dev:
            problems.append("%s: printed by the host, not by the emulator" % key)
            continue
        dv = dev[key]
        if len(dv) != len(hv):
            problems.append("%s: %d values on the emulator, %d on the host" % (key, len(dv), len(hv)))
            continue
        exact = (entry is not None and entry[3] == 1) or (entry is None and name in int_outputs)
        rtol, atol = TRAIN_TOL if tag.startswith("t.") else PREDICT_TOL
        for i, (a, b) in enumerate(zip(dv, hv)):
            values += 1
            if exact:
                if a != b:
                    problems.append("%s[%d]: emulator %d, host %d (int32)" % (key, i, a, b))
                    break
                continue
            fa, fb = mcu.as_float(a), mcu.as_float(b)
            if fa != fa and fb != fb:
                continue
            d = abs(fa - fb)
            mabs = max(mabs, d)
            if fb != 0:
                mrel = max(mrel, d / abs(fb))
            if not (fa == fb or d <= atol + rtol * abs(fb)):
                problems.append("%s[%d]: emulator %.9g, host %.9g (rtol %g, atol %g)" % (key, i, fa, fb, rtol, atol))
                break
    for key in dev:
        if key not in host:
            problems.append("%s: printed by the emulator, not by the host" % key)
    return problems, values, mabs, mrel


def emulate_variant(nnc, case, d, flags, full, tools, cache):
    os.makedirs(os.path.join(d, "cuda"), exist_ok=True)
    os.makedirs(os.path.join(d, "host"), exist_ok=True)
    nnc_c(nnc, case, flags + ["--target", "cuda"], os.path.join(d, "cuda", "m.c"))
    nnc_c(nnc, case, flags, os.path.join(d, "host", "m.c"))
    itf = interface(os.path.join(d, "host", "m.h"), os.path.join(d, "cuda", "m.h"))
    table = mcu.read_table(os.path.join(d, "host", "m.c"))
    itf["scratch"] = max([mcu.count_of(t[1]) for t in table] + [1])
    ir = mcu.ir_inputs(nnc, case)
    arrays = write_arrays(case, d, itf, ir)
    main = os.path.join(d, "main.c")
    write_main(main, case, itf, arrays, full)
    cc = tools["cc"]
    builds = {}
    for side in ("cuda", "host"):
        exe = os.path.join(d, side, "m")
        cmd = [cc, "-std=c99", "-O1", "-I", os.path.join(d, side), main, os.path.join(d, side, "m.c"), "-o", exe]
        if side == "cuda":
            cmd += ["-DNNC_CT_CUDA", "-L" + tools["runtime"], "-lnnc_cuda_runtime", "-Wl,-rpath," + tools["runtime"]]
        else:
            cmd += ["-DNNC_NO_BLAS"]
        rc, log = run(cmd + ["-lm"])
        if rc != 0:
            raise RuntimeError("%s (%s program):\n%s" % (cc, side, mcu.tail(log, 20)))
        rc, out = run([exe], cwd=d, env=emulator_env(cache) if side == "cuda" else None)
        if rc != 0:
            raise RuntimeError("the %s program exited %d:\n%s" % (side, rc, mcu.tail(out[-3000:], 20)))
        builds[side] = mcu.parse_dump(out)
        if builds[side] is None:
            raise RuntimeError("the %s program stopped early:\n%s" % (side, mcu.tail(out[-2000:])))
    int_outputs = [name for (name, _), prm in zip(itf["outs"], [q for q in itf["predict"] if not q[0]])
                   if prm[1] == "int32_t"]
    one_step = case.ident.startswith("grad/")
    problems, values, mabs, mrel = compare(builds["cuda"], builds["host"], table, int_outputs, one_step)
    note = "%6d values, max abs %.3g rel %.3g%s" % (values, mabs, mrel, " (tensors: 1 step)" if one_step else "")
    return problems, note


def emulate_case(nnc, case, tmp, tools):
    results = []
    try:
        weights = case_weights(nnc, case, tmp)
        trains = case.weights is not None or not case.seed_init
        variants = [("full", ["--weights", weights] if trains else [], True),
                    ("inference", ["--inference", "--weights", weights], False)]
        variants += [("full" + level, variants[0][1] + [level], True) for level in other_levels()]
    except (RuntimeError, OSError, ValueError) as e:
        return [("full", str(e), "", [])]
    for variant, flags, full in variants:
        try:
            problems, note = emulate_variant(nnc, case, os.path.join(tmp, variant), flags, full, tools,
                                             tools["cache"])
            results.append((variant, "\n".join("    " + p for p in problems[:5]) if problems else None, note, []))
        except ValueError as e:
            if variant == "inference" and "no M_predict" in str(e):
                continue        # nothing to predict: a model that only has a loss
            results.append((variant, str(e), "", []))
        except (RuntimeError, OSError) as e:
            results.append((variant, str(e), "", []))
    return results


# ---------------------------------------------------------------------------------------------------------
# fixtures: the ops and train suites' own references, through the CLI


def read_case_args(path):
    """{data: [(NAME, FILE)], output: [NAME], option: [ARG], batch, steps}"""
    out = {"data": [], "output": [], "option": [], "batch": None, "steps": None}
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            if w[0] == "data":
                out["data"].append((w[1], os.path.join(os.path.dirname(path), w[2])))
            elif w[0] == "output":
                out["output"].append(w[1])
            elif w[0] == "option":
                out["option"] += w[1:]
            elif w[0] in ("batch", "steps"):
                out[w[0]] = w[1]
    return out


def fixtures_case(nnc, case, tmp, tools):
    cdir = os.path.dirname(case.path)
    args = read_case_args(os.path.join(cdir, "args"))
    data = [x for name, f in args["data"] for x in ("--data", "%s=%s" % (name, f))]
    env = emulator_env(tools["cache"])
    problems = []
    if case.ident.startswith("ops/"):
        for target in ("cuda", "c"):
            outs = [x for o in args["output"] for x in ("-o", "%s=%s/%s_%s.npy" % (o, tmp, target, o))]
            cmd = ([nnc, "predict", case.path, "--weights", os.path.join(cdir, "weights.safetensors")] + data + outs
                   + args["option"] + ["--target", target])
            rc, log = run(cmd, env=env)
            if rc != 0:
                return [("predict", "%s exited %d:\n%s" % (" ".join(cmd), rc, mcu.tail(log)), "", [])]
        for o in args["output"]:
            for ref, what in ((os.path.join(cdir, "expected_%s.npy" % o), "the fixture"),
                              ("%s/c_%s.npy" % (tmp, o), "--target c")):
                rc, log = run([tools["npycmp"], "%s/cuda_%s.npy" % (tmp, o), ref])
                if rc != 0:
                    problems.append("output %s against %s: %s" % (o, what, log.strip()))
        return [("predict", "\n".join("    " + p for p in problems) if problems else None,
                 "%d outputs" % len(args["output"]), [])]
    saved = {}
    for target in ("cuda", "c"):
        saved[target] = os.path.join(tmp, target + ".safetensors")
        cmd = ([nnc, "train", case.path, "--weights", os.path.join(cdir, "init.safetensors")] + data
               + ["--steps", args["steps"], "--no-shuffle", "--batch", args["batch"], "--save", saved[target],
                  "--quiet", "--target", target])
        rc, log = run(cmd, env=env)
        if rc != 0:
            return [("train", "%s exited %d:\n%s" % (" ".join(cmd), rc, mcu.tail(log)), "", [])]
    note = ""
    for ref, what, extra in ((os.path.join(cdir, "expected.safetensors"), "PyTorch", ["--no-extra", "opt."]),
                             (saved["c"], "--target c", [])):
        rc, log = run([tools["stcmp"], "-v"] + extra + [saved["cuda"], ref])
        if rc != 0:
            problems.append("against %s: %s" % (what, log.strip()))
        elif what == "PyTorch":
            note = log.strip().splitlines()[-1][:110] if log.strip() else ""
    return [("train", "\n".join("    " + p for p in problems) if problems else None,
             "%s steps at batch %s; %s" % (args["steps"], args["batch"], note), [])]


# ---------------------------------------------------------------------------------------------------------
# cli: nnc train, predict and bench --target cuda under the emulator, and without it

CLI_MODEL = """# cuda_target.py's model for the command line: dropout (masks drawn on the device), int32 labels,
# a metric
model drop {
    input  x: f32[12]
    target label: i32[]
    h = dense(x, 16, activation=relu)
    output probs = dense(dropout(h, 0.3), 3, activation=softmax)
    loss sparse_categorical_crossentropy(probs, label)
    metric accuracy = accuracy(probs, label)
    optimizer adam(lr=0.01)
    train(epochs=1, batch=8)
}
"""


def write_npy(path, descr, shape, values):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d," % d for d in shape) if len(shape) == 1 else ", ".join(str(d) for d in shape))
    header += " " * (-(len(header) + 11) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%d%s" % (len(values), "f" if descr == "<f4" else "i"), *values))


def cli_checks(nnc, tmp, tools):
    """[(check, problem or None, note)]"""
    out = []
    model = os.path.join(tmp, "drop.nn")
    with open(model, "w") as f:
        f.write(CLI_MODEL)
    r = mcu.Rand("cli")
    rows = 21                    # 2 full batches of 8 and a partial one of 5
    write_npy(os.path.join(tmp, "x.npy"), "<f4", [rows, 12], [mcu.f32(r.uniform(-1, 1)) for _ in range(rows * 12)])
    write_npy(os.path.join(tmp, "label.npy"), "<i4", [rows], [int(r.uniform(0, 3)) % 3 for _ in range(rows)])
    data = ["--data", "x=" + os.path.join(tmp, "x.npy"), "--data", "label=" + os.path.join(tmp, "label.npy")]
    env = emulator_env(tools["cache"])
    saved, preds = {}, {}
    for target in ("cuda", "c"):
        saved[target] = os.path.join(tmp, "w_%s.safetensors" % target)
        cmd = [nnc, "train", model] + data + ["--epochs", "2", "--seed", "7", "--save", saved[target], "--quiet",
                                             "--target", target]
        rc, log = run(cmd, env=env)
        if rc != 0:
            out.append(("train", "%s exited %d:\n%s" % (" ".join(cmd), rc, mcu.tail(log)), ""))
            return out
    rc, log = run([tools["stcmp"], "-v", saved["cuda"], saved["c"]])
    out.append(("train", None if rc == 0 else "the saved weights differ:\n" + mcu.tail(log),
                "2 epochs of 21 samples at batch 8 (shuffled, dropout, seed 7): " + log.strip()[:90]))
    for target in ("cuda", "c"):
        preds[target] = os.path.join(tmp, "p_%s.npy" % target)
        cmd = [nnc, "predict", model, "--weights", saved["c"], "--data", "x=" + os.path.join(tmp, "x.npy"),
               "-o", "probs=" + preds[target], "--target", target]
        rc, log = run(cmd, env=env)
        if rc != 0:
            out.append(("predict", "%s exited %d:\n%s" % (" ".join(cmd), rc, mcu.tail(log)), ""))
            break
    else:
        rc, log = run([tools["npycmp"], preds["cuda"], preds["c"]])
        out.append(("predict", None if rc == 0 else "the outputs differ: " + log.strip(), "21 samples"))
    bench, problem = {}, None
    for target in ("cuda", "c"):
        cmd = [nnc, "bench", model, "--json", "--iters", "3", "--target", target]
        rc, log = run(cmd, env=env)
        try:
            bench[target] = json.loads(log[log.index("{"):log.rindex("}") + 1])
        except ValueError:
            problem = "%s exited %d, printed no JSON object:\n%s" % (" ".join(cmd), rc, mcu.tail(log))
            break
    if problem is None:
        keys = sorted(bench["c"])
        times = [k for k in keys if k.endswith("_us")]
        if not set(keys) <= set(bench["cuda"]):
            problem = "--target cuda prints %s, --target c %s" % (sorted(bench["cuda"]), keys)
        elif bench["cuda"].get("target", "cuda") != "cuda" or bench["cuda"].get("device", "emulator") != "emulator":
            problem = "not the emulated cuda target: %s" % bench["cuda"]
        elif not times or not all(isinstance(bench["cuda"][k], (int, float)) and bench["cuda"][k] > 0 for k in times):
            problem = "times not positive: %s" % bench["cuda"]
        elif bench["cuda"].get("batch") != 8 or bench["cuda"].get("model") != "drop":
            problem = "model or batch wrong: %s" % bench["cuda"]
    out.append(("bench", problem, "--json: %s" % json.dumps(bench.get("cuda"))[:100]))
    env = dict(os.environ)
    env.pop("NNC_CUDA_EMULATE", None)
    cmd = [nnc, "train", model] + data + ["--steps", "1", "--save", os.path.join(tmp, "w_gpu.safetensors"),
                                         "--quiet", "--target", "cuda"]
    rc, log = run(cmd, env=env)
    gpu = shutil.which("nvidia-smi") is not None and run(["nvidia-smi", "-L"])[0] == 0
    if gpu:
        problem = None if rc == 0 else "on a GPU: exit %d:\n%s" % (rc, mcu.tail(log))
    else:
        problem = (None if rc == 1 and "NNC_CUDA_EMULATE" in log
                   else "without a GPU and NNC_CUDA_EMULATE: exit %d (want 1 and a message naming it):\n%s"
                   % (rc, mcu.tail(log)))
    out.append(("no_emulator", problem, "exit %d: %s" % (rc, " ".join(log.split())[:100])))
    return out


def cli_case(nnc, case, tmp, tools):
    return [(check, problem, note, []) for check, problem, note in cli_checks(nnc, tmp, tools)]


# ---------------------------------------------------------------------------------------------------------


def read_known():
    known = {}
    path = os.path.join(HERE, "known_failures.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    ident, _, why = line.partition(": ")
                    known[ident.strip()] = why.strip()
    return known


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)


def tools_for(mode, argv):
    tools = {"cc": os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")}
    if mode == "kernels":
        tools["nvrtc"] = os.path.abspath(argv[0])
        if not os.path.exists(tools["nvrtc"]):
            skip("no NVRTC driver %s (the CUDA toolkit's NVRTC was not found at configure time)" % argv[0])
        for t in ("ptxas",):
            if not (shutil.which(t) or os.path.exists("/usr/local/cuda/bin/" + t)):
                skip("no %s (the CUDA toolkit)" % t)
        os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + "/usr/local/cuda/bin"
        tools["nvcc"] = shutil.which("nvcc")
        return tools, argv[1:]
    if mode in ("fixtures", "cli"):
        tools["npycmp"], tools["stcmp"] = os.path.abspath(argv[0]), os.path.abspath(argv[1])
        tools["bench_fields"] = ["predict", "train_step", "us"]
        return tools, argv[2:]
    tools["runtime"] = os.path.abspath(argv[0])
    if not os.path.exists(os.path.join(tools["runtime"], "libnnc_cuda_runtime.so")):
        skip("no libnnc_cuda_runtime.so in %s (built only with the CUDA toolkit)" % tools["runtime"])
    if not tools["cc"]:
        skip("no host C compiler (cc)")
    if mode == "host":
        tools["ccs"] = [c for c in (shutil.which("gcc"), shutil.which("clang")) if c]
        tools["stub"] = os.path.exists(os.path.join(STUBS, "libcuda.so"))
        tools["header"] = os.path.join(HERE, "..", "..", "runtime", "cuda", "nnc_cuda.h")
    return tools, argv[1:]


MODES = {"kernels": kernels_case, "host": host_case, "emulate": emulate_case, "fixtures": fixtures_case,
         "cli": cli_case}


def main():
    if len(sys.argv) < 5 or sys.argv[1] not in MODES:
        print(__doc__)
        sys.exit(2)
    mode, nnc, root = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    tools, sets = tools_for(mode, sys.argv[4:])
    if mode in ("fixtures", "cli") and "NNC_CUDA_TARGET_RUNTIME" not in os.environ and not os.path.exists(
            os.path.join(os.path.dirname(nnc), "libnnc_cuda_runtime.so")):
        skip("no libnnc_cuda_runtime.so beside %s (built only with the CUDA toolkit)" % nnc)
    if mode == "cli":
        sets = ["cli"]
    if not sets:
        print("cuda_target.py: no set given")
        sys.exit(2)
    cases = [mcu.Case("cli/drop", "")] if mode == "cli" else mcu.select(sets, root, nnc)
    if mode == "fixtures":
        cases = [c for c in cases if c.ident.startswith(("ops/", "train/"))]
    known = read_known()
    unexpected, seen_known, spilled, matched = [], [], 0, {}
    jobs = int(os.environ.get("NNC_CUDA_TARGET_JOBS", "2"))
    keep = os.environ.get("NNC_CUDA_TARGET_KEEP")
    if keep:
        os.makedirs(keep, exist_ok=True)
    with (tempfile.TemporaryDirectory(prefix="nnc_cuda_target.") if not keep else contextlib.nullcontext(keep)) as tmp:
        tools["cache"] = os.path.join(tmp, "cache")
        os.makedirs(tools["cache"], exist_ok=True)

        def one(i_case):
            i, case = i_case
            d = os.path.join(tmp, str(i))
            os.makedirs(d, exist_ok=True)
            return case, MODES[mode](nnc, case, d, tools)
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            for case, results in pool.map(one, enumerate(cases)):
                for variant, problem, note, notes in results:
                    key = "%s:%s/%s" % (mode, case.ident, variant)
                    pat = next((k for k in known if fnmatch.fnmatchcase(key, k)), None)
                    if pat is not None:
                        matched.setdefault(pat, [0, 0])[problem is None] += 1
                    if problem is None:
                        print("ok   %-56s %s" % (key, note))
                    elif pat is not None:
                        seen_known.append(key)
                        print("KNOWN %s: %s\n%s" % (key, known[pat], problem if problem.startswith("    ")
                                                     else mcu.tail(problem, 6)))
                    else:
                        unexpected.append(key)
                        print("FAIL %s:\n%s\n    again: NNC_CUDA_TARGET_KEEP=/tmp/ct python3 %s %s NNC ROOT ... %s"
                              % (key, problem if problem.startswith("    ") else mcu.tail(problem, 20),
                                 os.path.relpath(__file__), mode, case.ident.split(":")[0]))
                    for n in notes:
                        spilled += 1
                        print("     %s" % n)
                sys.stdout.flush()
    for pat, (failed, passed) in sorted(matched.items()):
        if failed == 0:
            unexpected.append(pat)
            print("FIXED %s: listed in known_failures.txt (%s), and its %d cases pass: remove the line"
                  % (pat, known[pat], passed))
    if unexpected:
        print("%d unexpected: %s" % (len(unexpected), " ".join(unexpected)))
        sys.exit(1)
    print("%d models: all pass, but for %d known failures (tests/cuda_target/known_failures.txt)%s"
          % (len(cases), len(seen_known), "; %d register spills reported" % spilled if mode == "kernels" else ""))


if __name__ == "__main__":
    main()
