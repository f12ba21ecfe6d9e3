#!/usr/bin/env python3
"""roundtrip.py: PyTorch-exported ONNX models (tests/onnx/fixtures/roundtrip/NAME) through everything a user
does with them in nnc: predict, fine-tune with `nnc train`, compile for a Cortex-M4F.

  roundtrip.py --nnc NNC --npycmp NPYCMP CHECK CASE_DIR

CASE_DIR is tests/onnx/fixtures/roundtrip/NAME: model.onnx, x.npy, y.npy (ONNX Runtime's output) and meta.json.
CHECK is one of:
  predict  `nnc summary model.onnx` and `nnc predict model.onnx` (the file read directly) equal to y.npy; then
           `nnc import model.onnx -o m.nn`, `nnc check m.nn` (exit 0, nothing printed), `nnc predict m.nn
           --weights m.safetensors` equal to y.npy. Outputs at rtol 1e-4, atol 1e-5 (npycmp's forward tolerance).
  train    fine-tuning: the imported m.nn gets `target label: i32[]`, a cross-entropy loss on its output and
           `optimizer sgd(lr=0.1)` before its closing brace; `nnc check` on it is silent; `nnc train --steps 1
           --batch 5 --no-shuffle` from m.safetensors on x.npy and tests/onnx_roundtrip/fixtures/NAME/label.npy;
           the step's loss (--log) equal to PyTorch's (rtol 1e-4); after the step, the loss on the same samples
           in eval mode (--val: from the logits, which a saturated softmax output hides) at rtol 1e-3 and `nnc
           predict` with the saved weights equal to PyTorch's outputs, y_step1.npy, at rtol 1e-3, atol 1e-4 (the
           one-training-step tolerance). The references are make_train_refs.py's (what the step mirrors is in
           its docstring).
  mcu      firmware: `nnc ft.nn --target mcu --weights m.safetensors` (ft.nn: the fine-tuning model of `train`,
           so predict and train_step) and `nnc model.onnx --target mcu` (predict), each through arm-none-eabi-gcc
           with tests/mcu's flags (-std=c99 -O2 -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Wall
           -Wextra -Werror -pedantic -Wdouble-promotion -c) and tests/mcu's checks of what the C includes and what
           the object leaves undefined.
  device   ft.nn from m.safetensors in QEMU's mps2-an386 (--board: examples/firmware/board), through
           tests/mcu/mcu.py's host = device program: predict of sample 0 and 3 train steps at batch 1, every
           output, loss and tensor against the same program built for the host at --target c (mcu.py's
           tolerances); and the device's prediction of sample 0 equal to y.npy[0] (rtol 1e-4, atol 1e-5).
Exit 0 pass, 1 fail, 2 usage; 77 (skip) when nnc was built without ONNX (NNC_HAVE_ONNX=0 in the environment),
for `train`, `mcu` and `device` when CASE has no reference under fixtures/, for `mcu` and `device` without
arm-none-eabi-gcc, for `device` without qemu-system-arm or when the firmware is larger than the board.
What it does not do: decide which operator is wrong (tests/onnx's suites run the operators one by one).
"""
import argparse
import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True   # mcu.py / make_fixtures.py are imported from the source tree: leave it clean
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TIMEOUT = 300
LOSS_RTOL = 1e-4


class Failed(Exception):
    pass


class Run:
    """one check of one case: the tools, the case's files and a scratch directory"""

    def __init__(self, args, tmp):
        self.nnc, self.npycmp, self.board = args.nnc, args.npycmp, args.board
        self.dir = os.path.abspath(args.case_dir.rstrip("/"))
        self.name = os.path.basename(self.dir)
        self.tmp = tmp
        with open(os.path.join(self.dir, "meta.json")) as f:
            self.meta = json.load(f)
        self.ref = os.path.join(HERE, "fixtures", self.name)
        self.problems = []
        self.notes = []
        self.skipped = None
        self.imported_nn = None
        self.x = "%s=%s" % (self.meta["input"], self.path("x.npy"))   # --data for the graph's input

    def path(self, f):
        return os.path.join(self.dir, f)

    def out(self, f):
        return os.path.join(self.tmp, f)

    def tool(self, cmd, what):
        """runs cmd; raises Failed with the first lines of its output when it does not exit 0"""
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Failed("%s: timed out after %d s" % (what, TIMEOUT))
        if r.returncode != 0:
            lines = (r.stderr + r.stdout).strip().splitlines()
            raise Failed("%s: exit %d\n    %s" % (what, r.returncode, "\n    ".join(lines[:6])))
        return r

    def nnc_(self, *args):
        return self.tool([self.nnc] + list(args), "nnc " + args[0])

    def compare(self, got, want, what, rtol, atol):
        r = subprocess.run([self.npycmp, "--rtol", str(rtol), "--atol", str(atol), got, want],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.problems.append("%s (rtol %g, atol %g): %s" % (what, rtol, atol, (r.stdout + r.stderr).strip()))

    def step(self, fn, *args):
        """fn's failure is one problem; the checks after it that do not need its result still run"""
        try:
            return fn(*args)
        except Failed as e:
            self.problems.append(str(e))
            return None

    def imported(self):
        """m.nn and m.safetensors from `nnc import`, once per run"""
        if self.imported_nn is None:
            self.nnc_("import", self.path("model.onnx"), "-o", self.out("m.nn"))
            self.imported_nn = self.out("m.nn")
        return self.imported_nn

    def check_silent(self, nn, what):
        r = self.nnc_("check", nn)
        if (r.stderr + r.stdout).strip():
            raise Failed("nnc check %s printed:\n    %s" % (what, (r.stderr + r.stdout).strip()[:600]))


# ---------------------------------------------------------------------------------------------------------
# predict


def check_predict(run):
    run.step(run.nnc_, "summary", run.path("model.onnx"))

    def from_onnx():
        run.nnc_("predict", run.path("model.onnx"), "--data", run.x, "-o", run.out("y_onnx.npy"))
        run.compare(run.out("y_onnx.npy"), run.path("y.npy"), "predict model.onnx", 1e-4, 1e-5)

    def from_nn():
        nn = run.imported()
        run.check_silent(nn, "of the imported .nn")
        run.nnc_("predict", nn, "--weights", run.out("m.safetensors"), "--data", run.x,
                 "-o", run.out("y_nn.npy"))
        run.compare(run.out("y_nn.npy"), run.path("y.npy"), "predict of the imported .nn", 1e-4, 1e-5)

    run.step(from_onnx)
    run.step(from_nn)


# ---------------------------------------------------------------------------------------------------------
# train


def fine_tune_model(run):
    """the imported .nn with a target, a loss on the graph's output and an optimizer: ft.nn"""
    nn = run.imported()
    with open(nn) as f:
        text = f.read()
    output = run.meta["output"]
    outputs = re.findall(r"^\s*output\s+([A-Za-z_]\w*)", text, re.M)
    if outputs != [output]:
        raise Failed("the imported .nn's outputs are %s, not ONNX's [%s]" % (outputs, output))
    with open(os.path.join(run.ref, "ref.json")) as f:
        ref = json.load(f)
    loss = ref["loss_line"].replace("(y,", "(%s," % output)
    end = text.rstrip().rfind("}")
    if end < 0:
        raise Failed("no closing brace in the imported .nn")
    lines = "\n    target label: i32[]\n    %s\n    optimizer sgd(lr=%s)\n" % (loss, repr(ref["lr"]))
    ft = run.out("ft.nn")
    with open(ft, "w") as f:
        f.write(text[:end] + lines + text[end:])
    return ft, ref


def check_train(run):
    ft, ref = fine_tune_model(run)
    run.check_silent(ft, "of the fine-tuning .nn")
    label = os.path.join(run.ref, "label.npy")
    run.nnc_("train", ft, "--weights", run.out("m.safetensors"), "--data", run.x, "--data", "label=" + label,
             "--val", run.x, "--val", "label=" + label, "--steps", "1", "--batch", str(ref["batch"]),
             "--no-shuffle", "--quiet", "--save", run.out("s.safetensors"), "--log", run.out("log.csv"))
    with open(run.out("log.csv")) as f:
        rows = list(csv.DictReader(f))
    if len(rows) != 1 or "loss" not in rows[0] or "val_loss" not in rows[0]:
        raise Failed("nnc train --log: expected one row with loss and val_loss, got %s" % rows)
    for key, what, rtol in (("loss", "loss of the step", LOSS_RTOL),
                            ("val_loss", "loss after the step (--val, eval mode)", 1e-3)):
        got = float(rows[0][key])
        if not abs(got - ref[key]) <= rtol * abs(ref[key]):
            run.problems.append("%s: nnc %.9g, PyTorch %.9g (rtol %g)" % (what, got, ref[key], rtol))
        run.notes.append("%s %.7g (PyTorch %.7g)" % (key, got, ref[key]))
    run.nnc_("predict", ft, "--weights", run.out("s.safetensors"), "--data", run.x,
             "-o", run.out("p.npy"))
    run.compare(run.out("p.npy"), os.path.join(run.ref, "y_step1.npy"), "predict after one train step", 1e-3, 1e-4)


# ---------------------------------------------------------------------------------------------------------
# mcu


def load_mcu():
    spec = importlib.util.spec_from_file_location("nnc_mcu", os.path.join(ROOT, "tests", "mcu", "mcu.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cross_compile(run, mcu, c_file, what):
    h_file = c_file[:-2] + ".h"
    for p in mcu.check_source(c_file, h_file):
        run.problems.append("%s: %s" % (what, p))
    obj = c_file[:-2] + ".o"
    run.tool(["arm-none-eabi-gcc"] + mcu.ARM_CFLAGS + ["-c", c_file, "-o", obj], "arm-none-eabi-gcc " + what)
    bad = [s for s in mcu.undefined(obj) if not mcu.allowed_undefined(s)]
    if bad:
        run.problems.append("%s: undefined in the object: %s" % (what, " ".join(bad)))


def on_device(run, mcu, ft):
    """the fine-tuning model in QEMU against the host program (mcu.py), and the device's y against y.npy[0]"""
    label = os.path.join(run.ref, "label.npy")
    case = mcu.Case("onnx_roundtrip/" + run.name, ft, data={run.meta["input"]: run.path("x.npy"), "label": label},
                    weights=run.out("m.safetensors"))
    host_cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    tmp = run.out("device")
    os.makedirs(tmp)
    device = mcu.Device(run.board, tmp)
    d, h, table, iface, trained = mcu.build_and_run(run.nnc, case, tmp, ["--weights", case.weights], True,
                                                    mcu.STEPS, device, host_cc)
    diff = mcu.Diff()
    int_outputs = [p for c, t, p in iface[2] if not c and t == "int32_t"]
    for p in mcu.compare(d, h, table, int_outputs, diff):
        run.problems.append("QEMU against the host program: " + p)
    if not trained:
        run.problems.append("QEMU: the fine-tuning firmware has no train step")
    key = "out:-:" + [name for const, _, name in iface[2] if not const][0]
    y_dev = [mcu.as_float(w) for w in d.get(key, [])]
    y_shape, y_ref = mcu.read_npy(run.path("y.npy"))
    want = y_ref[:len(y_ref) // y_shape[0]]
    if len(y_dev) != len(want):
        raise Failed("QEMU printed %d values of %s, y.npy has %d a sample" % (len(y_dev), key, len(want)))
    worst = max(abs(a - b) - (1e-5 + 1e-4 * abs(b)) for a, b in zip(y_dev, want))
    if not worst <= 0:
        run.problems.append("QEMU: sample 0's prediction differs from y.npy[0]: device %s, ONNX Runtime %s"
                            % (["%.7g" % v for v in y_dev], ["%.7g" % v for v in want]))
    run.notes.append("QEMU: %d values against the host, max abs %.2g; sample 0 against ONNX Runtime, max abs %.2g"
                     % (diff.values, diff.abs, max(abs(a - b) for a, b in zip(y_dev, want))))


def check_mcu(run):
    mcu = load_mcu()

    def fine_tune_firmware():
        ft, _ = fine_tune_model(run)
        run.nnc_(ft, "--target", "mcu", "--weights", run.out("m.safetensors"), "-o", run.out("fw.c"))
        cross_compile(run, mcu, run.out("fw.c"), "fw.c (the fine-tuning .nn)")

    def onnx_firmware():
        run.nnc_(run.path("model.onnx"), "--target", "mcu", "-o", run.out("fw2.c"))
        cross_compile(run, mcu, run.out("fw2.c"), "fw2.c (model.onnx)")

    run.step(fine_tune_firmware)
    run.step(onnx_firmware)


def check_device(run):
    mcu = load_mcu()

    def device():
        ft, _ = fine_tune_model(run)
        on_device(run, mcu, ft)
    try:
        run.step(device)
    except mcu.Skip as e:
        run.skipped = "skipped: %s" % e
    except (RuntimeError, ValueError, OSError) as e:
        run.problems.append("QEMU: %s" % e)


# ---------------------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nnc", required=True)
    p.add_argument("--npycmp", required=True)
    p.add_argument("--board", help="examples/firmware/board, for the device check")
    p.add_argument("--keep", help="keep the files in this directory")
    p.add_argument("check", choices=["predict", "train", "mcu", "device"])
    p.add_argument("case_dir")
    args = p.parse_args()
    if os.environ.get("NNC_HAVE_ONNX", "1") == "0":
        print("skipped: nnc was built without ONNX import")
        return 77
    name = os.path.basename(os.path.abspath(args.case_dir.rstrip("/")))
    if args.check != "predict" and not os.path.exists(os.path.join(HERE, "fixtures", name, "ref.json")):
        print("skipped: no fine-tuning reference for %s (make_train_refs.py)" % name)
        return 77
    if args.check in ("mcu", "device"):
        for tool in ["arm-none-eabi-gcc", "arm-none-eabi-nm"] + (["qemu-system-arm"] if args.check == "device" else []):
            if shutil.which(tool) is None:
                print("skipped: no %s (Debian: gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm)" % tool)
                return 77
    if args.check == "device" and not args.board:
        p.error("the device check needs --board")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        tmp_ctx = None
        tmp = args.keep
    else:
        tmp_ctx = tempfile.TemporaryDirectory(prefix="nnc_onnx_rt.")
        tmp = tmp_ctx.name
    run = Run(args, tmp)
    try:
        run.step({"predict": check_predict, "train": check_train, "mcu": check_mcu,
                  "device": check_device}[args.check], run)
    finally:
        if tmp_ctx:
            tmp_ctx.cleanup()
    for problem in run.problems:
        print("FAIL %s %s: %s" % (args.check, run.name, problem))
    if run.problems:
        return 1
    if run.skipped:
        print(run.skipped)
        return 77
    print("ok %s %s%s" % (args.check, run.name, ": " + "; ".join(run.notes) if run.notes else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
