#!/usr/bin/env python3
"""The table of docs/mcu.md: for every models/ file, what `nnc --target mcu --inference` costs on a Cortex-M4
(flash: code and constant data; RAM: the model struct and the stack of one predict; instructions per
predict in QEMU) next to TensorFlow Lite for Microcontrollers (TFLM) for the same network and weights.

    python3 bench/mcu/table.py --nnc BUILD/nnc [--tflm-python VENV/bin/python] [--work DIR]
                               [--random-cnn] [--json FILE] [--markdown FILE] [MODEL ...]

Per model it
  1. makes weights: `nnc train MODEL --steps 1` on random data (seed 0), except the seed CNN, trained for its
     one epoch on the built-in Fashion-MNIST (--random-cnn: random data too), whose checkpoint
     fashion_cnn_finetune also uses;
  2. generates `nnc MODEL --target mcu --inference --weights W -o M.c` and compiles it with arm-none-eabi-gcc
     and the flags below; code = the object's .text, const = its .rodata (the weights), and RAM is the
     header's M_RAM_BYTES (the struct the program declares) plus any .data/.bss of the object, plus the
     input and output arrays the program passes to predict (TFLM's arena holds those too);
  3. links bench/mcu/measure_main.c with examples/firmware/board and runs it in
     `qemu-system-arm -M mps2-an386 -icount shift=0`: instructions per predict (SysTick, 40 instructions
     per tick) and the deepest stack of one predict;
  4. with --tflm-python (a Python with tensorflow, tf-keras, tflite-micro), runs bench/mcu/tflm_arena.py on
     the same weights: TFLM's arena and .tflite size, its output checked against `nnc predict`, and the same
     for the network quantized to int8 (the second table: what TFLM users usually deploy);
  5. for ffn and fashion_cnn_finetune, steps 2 and 3 again without --inference, timing train_step on one
     sample (the third table: training on the device).
The commands it runs are written to WORK/commands.txt. Plain python3; not run by ctest (docs only).
"""
import argparse
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BOARD = os.path.join(ROOT, "examples", "firmware", "board")
CFLAGS = ["-std=c99", "-O2", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
          "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wdouble-promotion"]
LDFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-nostartfiles"]
QEMU = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-icount", "shift=0",
        "-semihosting-config", "enable=on,target=native"]

LOG = []
# The networks that docs/mcu.md trains on the device (examples/firmware): the third table, train_step.
TRAIN_MODELS = ("ffn", "fashion_cnn_finetune")


def run(cmd, timeout=600, merged=False):
    """Runs cmd (a list), records it for commands.txt, returns stdout (and stderr after it with merged: QEMU
    writes semihosting output to its stderr); a failure raises with its stderr."""
    LOG.append(shlex.join(cmd))
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("%s\nexit %d\n%s%s" % (" ".join(cmd), r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
    return r.stdout + r.stderr if merged else r.stdout


# ---- the model file: name, inputs and targets (declaration order) -------------------------------------

def model_decls(path):
    text = open(path).read()
    name = re.search(r"^\s*model\s+(\w+)", text, re.M).group(1)
    decls = []
    for kind, var, dtype, dims in re.findall(r"^\s*(input|target)\s+(\w+)\s*:\s*(f32|i32)\[([^\]]*)\]", text, re.M):
        decls.append((kind, var, dtype, [int(d) for d in dims.split(",") if d.strip()]))
    return name, decls


# ---- random data as .npy, with the standard library ---------------------------------------------------

def write_npy(path, dtype, shape, values):
    descr = {"f32": "<f4", "i32": "<i4"}[dtype]
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape) if len(shape) == 1 else ", ".join(str(d) for d in shape))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%d%s" % (len(values), "f" if dtype == "f32" else "i"), *values))


def random_data(work, model, decls, rows=8):
    """--data NAME=FILE arguments with `rows` random samples of every input and target (fixed seed)."""
    seed = 12345
    args = []
    for kind, var, dtype, dims in decls:
        n = rows
        for d in dims:
            n *= d
        values = []
        for _ in range(n):
            seed = (seed * 1103515245 + 12345) % 2 ** 31
            values.append(seed / 2 ** 31 if dtype == "f32" else seed % 10)
        path = os.path.join(work, "%s_%s.npy" % (model, var))
        write_npy(path, dtype, [rows] + dims, values)
        args += ["--data", "%s=%s" % (var, path)]
    return args


def make_weights(nnc, path, model, decls, work, fashion, have):
    """The checkpoint nnc and TFLM both use for this model, and how it was trained (for the table)."""
    wdir = os.path.join(work, "weights")
    os.makedirs(wdir, exist_ok=True)
    out = os.path.join(wdir, model + ".safetensors")
    if model == "fashion_cnn_finetune" and "fashion_cnn" in have:
        shutil.copyfile(have["fashion_cnn"][0], out)     # the seed CNN's weights, as the model file says
        return out, have["fashion_cnn"][1]
    if model == "fashion_cnn" and fashion:
        run([nnc, "train", path, "--data", "fashion-mnist", "--seed", "0", "--save", out])
        how = "Fashion-MNIST, 1 epoch"
    else:
        run([nnc, "train", path, "--steps", "1", "--batch", "8", "--seed", "0", "--save", out]
            + random_data(work, model, decls))
        how = "one step on random data"
    have[model] = (out, how)
    return out, how


# ---- the generated object ------------------------------------------------------------------------------

def section_sizes(obj):
    """{'text','rodata','data','bss'} bytes of an object, from `arm-none-eabi-size -A`."""
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in run(["arm-none-eabi-size", "-A", obj]).splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].startswith(".") or not parts[1].isdigit():
            continue
        for key in sizes:
            if parts[0] == "." + key or parts[0].startswith("." + key + "."):
                sizes[key] += int(parts[1])
    return sizes


def header_define(header, suffix):
    m = re.search(r"#define\s+\w+_%s\s+\(?\s*(\d+)" % suffix, open(header).read())
    return int(m.group(1)) if m else None


def io_bytes(header):
    """Bytes of the caller's input and output arrays at batch 1, from the prototype comment of M_predict
    ("inputs window [B,24,3]; outputs forecast [B,1]"): nnc's struct holds neither, TFLM's arena both."""
    m = re.search(r"inputs (.*?); outputs (.*?) \*/", open(header).read())
    if not m:
        return None, None

    def total(text):
        return sum(4 * count(int(d) for d in dims.split(",")[1:] if d.strip())
                   for dims in re.findall(r"\[(B[^\]]*)\]", text))
    return total(m.group(1)), total(m.group(2))


def measure_nnc(nnc, path, model, decls, weights, work, train=False):
    """Flash, RAM, instructions and stack of predict (of train_step on one sample with train)."""
    d = os.path.join(work, model + ("-train" if train else ""))
    os.makedirs(d, exist_ok=True)
    c = os.path.join(d, model + ".c")
    h = os.path.join(d, model + ".h")
    obj = os.path.join(d, model + ".o")
    run([nnc, path, "--target", "mcu"] + ([] if train else ["--inference"]) + ["--weights", weights, "-o", c])
    run(["arm-none-eabi-gcc"] + CFLAGS + ["-c", c, "-o", obj])
    rec = {"sections": section_sizes(obj)}
    rec["ram_bytes_header"] = header_define(h, "RAM_BYTES")
    rec["flash_bytes_header"] = header_define(h, "FLASH_BYTES")
    rec["input_bytes"], rec["output_bytes"] = io_bytes(h)
    rec["undefined"] = sorted(line.split()[-1] for line in run(["arm-none-eabi-nm", "-u", obj]).splitlines()
                              if line.strip())
    rec["largest_symbols"] = [line.split()[-1] + " " + str(int(line.split()[1], 16))
                              for line in run(["arm-none-eabi-nm", "--size-sort", "-S", obj]).splitlines()[-4:]]
    rec.update(measure_on_board(model, decls, d, obj, h, train))
    return rec


def count(dims):
    n = 1
    for dim in dims:
        n *= dim
    return n


def measure_on_board(model, decls, d, obj, header, train):
    """Instructions per predict (train_step) and its deepest stack, in QEMU (bench/mcu/measure_main.c)."""
    inputs = [(dtype, dims) for kind, _, dtype, dims in decls if kind == "input"]
    targets = [(dtype, dims) for kind, _, dtype, dims in decls if kind == "target"]
    if len(inputs) != 1 or inputs[0][0] != "f32" or (train and len(targets) != 1):
        return {"instructions_per_predict": None, "why_not": "measure_main.c handles one f32 input, one target"}
    elf = os.path.join(d, model + ".elf")
    extra_defs = []
    if train:
        extra_defs = ["-DTARGET_T=" + ("float" if targets[0][0] == "f32" else "int32_t"),
                      "-DTARGET_COUNT=%d" % count(targets[0][1])]

    def build(calls):
        objs = []
        defs = ["-DMODEL=" + model, '-DMODEL_HEADER="%s"' % os.path.basename(header),
                "-DIN_FLOATS=%d" % count(inputs[0][1]), "-DCALLS=%d" % calls] + extra_defs
        for src, extra in ((os.path.join(HERE, "measure_main.c"), defs + ["-I", d]),
                           (os.path.join(BOARD, "board.c"), []), (os.path.join(BOARD, "startup.c"), [])):
            o = os.path.join(d, os.path.basename(src)[:-2] + ".o")
            run(["arm-none-eabi-gcc"] + CFLAGS + ["-I", BOARD] + extra + ["-c", src, "-o", o])
            objs.append(o)
        run(["arm-none-eabi-gcc"] + LDFLAGS + ["-T", os.path.join(BOARD, "mps2_an386.ld")] + objs + [obj]
            + ["-lm", "-lc", "-lgcc", "-o", elf])
        out = run(QEMU + ["-kernel", elf], timeout=300, merged=True)
        vals = dict(line.split(None, 1) for line in out.splitlines() if " " in line)
        return int(vals["instructions_per_predict"]), int(vals["stack_bytes"]), vals["first_output"].strip()

    first, stack, y0 = build(1)
    calls = max(1, min(1000, 4000000 // max(first, 1)))   # about 4 M instructions: SysTick's 40 are noise
    ipp, stack, y0 = build(calls) if calls > 1 else (first, stack, y0)
    text = run(["arm-none-eabi-size", elf]).splitlines()[1].split()
    return {"instructions_per_predict": ipp, "calls_timed": calls, "stack_bytes": stack, "first_output_bits": y0,
            "elf_text": int(text[0]), "elf_data": int(text[1]), "elf_bss": int(text[2])}


# ---- the table -------------------------------------------------------------------------------------

def fmt(v):
    return "n/a" if v is None else "{:,}".format(v)


def fmt_stack(v):
    return "≤ 64" if v == 64 else fmt(v)     # measure_main.c does not paint the 64 bytes below main


def markdown(rows):
    out = ["| model | params | nnc code (.text) | nnc const (.rodata) | nnc RAM (struct) | nnc stack | "
           "instructions per predict | TFLM .tflite | TFLM arena (activations + interpreter) | "
           "nnc RAM / TFLM arena |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    out[0] = out[0].replace("nnc RAM (struct)", "nnc RAM: struct + input + output")
    for r in rows:
        n = r.get("nnc") or {}
        t = r.get("tflm") or {}
        sec = n.get("sections", {})
        ram = None
        ram_text = "n/a"
        if n.get("ram_bytes_header") is not None and n.get("input_bytes") is not None:
            struct_ram = n["ram_bytes_header"] + sec.get("data", 0) + sec.get("bss", 0)
            ram = struct_ram + n["input_bytes"] + n["output_bytes"]
            ram_text = "%s + %s + %s = %s" % (fmt(struct_ram), fmt(n["input_bytes"]), fmt(n["output_bytes"]),
                                              fmt(ram))
        stack = n.get("stack_bytes")
        if t.get("status") == "ok":
            tflite = fmt(t["tflite_bytes"])
            arena = "%s (%s + %s)" % (fmt(t["arena_total_bytes"]), fmt(t["arena_head_bytes"]),
                                      fmt(t["arena_tail_bytes"]))
            ratio = "%.2f" % (ram / t["arena_total_bytes"]) if ram is not None else "n/a"
        elif not t:
            tflite = arena = "not run"
            ratio = "n/a"
        else:
            tflite = arena = "not measurable" + (": " + t["reason"] if t.get("reason") else "")
            ratio = "n/a"
        if "error" in n:
            out.append("| %s | %s | %s | | | | | %s | %s | |" % (r["model"], fmt(r.get("params")),
                                                               "nnc failed: " + n["error"], tflite, arena))
            continue
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["model"], fmt(r.get("params")), fmt(sec.get("text")), fmt(sec.get("rodata")), ram_text, fmt_stack(stack),
            fmt(n.get("instructions_per_predict")), tflite, arena, ratio))
    int8 = [r for r in rows if (r.get("tflm") or {}).get("int8")]
    if int8:
        out += ["", "| model (TFLM int8, for reference) | int8 .tflite | int8 arena (activations + interpreter) | "
                "nnc float32 const | nnc float32 RAM |", "|---|---:|---:|---:|---:|"]
        for r in int8:
            q = r["tflm"]["int8"]
            n = r.get("nnc") or {}
            sec = n.get("sections", {})
            ram = None
            if n.get("ram_bytes_header") is not None and n.get("input_bytes") is not None:
                ram = n["ram_bytes_header"] + sec["data"] + sec["bss"] + n["input_bytes"] + n["output_bytes"]
            if q.get("status") != "ok":
                out.append("| %s | not measurable: %s | | %s | %s |" % (r["model"], q.get("reason", ""),
                                                                      fmt(sec.get("rodata")), fmt(ram)))
                continue
            out.append("| %s | %s | %s (%s + %s) | %s | %s |" % (
                r["model"], fmt(q["tflite_bytes"]), fmt(q["arena_total_bytes"]), fmt(q["arena_head_bytes"]),
                fmt(q["arena_tail_bytes"]), fmt(sec.get("rodata")), fmt(ram)))
    train = [r for r in rows if "nnc_train" in r]
    if train:
        out += ["", "| model (train_step, batch 1) | nnc code (.text) | nnc const (.rodata) | nnc RAM (struct) | "
                "nnc stack | instructions per train_step |", "|---|---:|---:|---:|---:|---:|"]
        for r in train:
            n = r["nnc_train"]
            if "error" in n:
                out.append("| %s | nnc failed: %s | | | | |" % (r["model"], n["error"]))
                continue
            sec = n["sections"]
            ram = None if n.get("ram_bytes_header") is None else n["ram_bytes_header"] + sec["data"] + sec["bss"]
            out.append("| %s | %s | %s | %s | %s | %s |" % (r["model"], fmt(sec["text"]), fmt(sec["rodata"]),
                                                            fmt(ram), fmt_stack(n.get("stack_bytes")),
                                                            fmt(n.get("instructions_per_predict"))))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models_list", nargs="*", metavar="MODEL", help="model names (default: every models/*.nn)")
    ap.add_argument("--nnc", required=True, help="the host nnc executable")
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    ap.add_argument("--work", default="mcu-table", help="folder for weights, generated C, objects, programs")
    ap.add_argument("--random-cnn", action="store_true",
                    help="train the seed CNN one step on random data, not an epoch of Fashion-MNIST")
    ap.add_argument("--tflm-python", help="a Python with tensorflow, tf-keras and tflite-micro")
    ap.add_argument("--tflm-json", help="TFLM figures already measured by tflm_arena.py --json")
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--markdown", help="write the table here (default: stdout)")
    args = ap.parse_args()
    nnc = os.path.abspath(args.nnc)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    names = args.models_list or sorted(f[:-3] for f in os.listdir(args.models) if f.endswith(".nn"))
    if "fashion_cnn_finetune" in names and "fashion_cnn" not in names:
        names.insert(0, "fashion_cnn")

    rows, have = [], {}
    for file_name in names:
        path = os.path.join(os.path.abspath(args.models), file_name + ".nn")
        model, decls = model_decls(path)
        row = {"model": file_name, "params": json.loads(run([nnc, "summary", path, "--json"]))["params"]}
        weights, row["weights"] = make_weights(nnc, path, file_name, decls, work, not args.random_cnn, have)
        try:
            row["nnc"] = measure_nnc(nnc, path, model, decls, weights, work)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            said = [line for line in str(e).splitlines() if "error" in line] or str(e).splitlines() or ["failed"]
            row["nnc"] = {"error": said[0][:200]}
            print("%s: %s" % (file_name, e), file=sys.stderr)
        if file_name in TRAIN_MODELS:
            try:
                row["nnc_train"] = measure_nnc(nnc, path, model, decls, weights, work, train=True)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                said = [line for line in str(e).splitlines() if "error" in line] or str(e).splitlines() or ["failed"]
                row["nnc_train"] = {"error": said[0][:200]}
        rows.append(row)
        print("%-22s %s %s" % (file_name, json.dumps(row["nnc"]), json.dumps(row.get("nnc_train"))), file=sys.stderr)

    tflm = {}
    if args.tflm_python:
        tj = os.path.join(work, "tflm.json")
        run([args.tflm_python, os.path.join(HERE, "tflm_arena.py"), "--nnc", nnc, "--models", args.models,
             "--weights-dir", os.path.join(work, "weights"), "--tflite-dir", os.path.join(work, "tflite"),
             "--int8", "--json", tj] + names, timeout=1800)
        args.tflm_json = tj
    if args.tflm_json:
        tflm = {r["model"]: r for r in json.load(open(args.tflm_json))}
    for row in rows:
        row["tflm"] = tflm.get(row["model"])

    table = markdown(rows)
    with open(os.path.join(work, "commands.txt"), "w") as f:
        f.write("\n".join(LOG) + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
            f.write("\n")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    else:
        sys.stdout.write(table)


if __name__ == "__main__":
    main()
