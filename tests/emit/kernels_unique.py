#!/usr/bin/env python3
"""kernels_unique.py: no two kernels of the generated C are the same code (issue 10: deduplication had
silently stopped working). Compiles every models/*.nn at -O0, -O2 and -O2 --inference, cuts each file into
its kernels (`NNC_KERNEL void kN_op(...)` up to the `}` that closes it at column 0), and reports every pair
whose text is identical once the kernel's own name kN is abstracted and the #line directives, which only
say where the code came from, are dropped. It also checks that the entry points pass their buffers by
name (no kernel call takes an arena offset, `A + 128`) and that no two #line directives follow each other
(a dropped repeat of the kernel just before it used to leave a second one).

    kernels_unique.py NNC MODELS_DIR
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

SIG = re.compile(r"^NNC_KERNEL void (k\d+)_")
CALL_OFFSET = re.compile(r"^\s+k\d+_\w+\(.*\bAi? \+ ")


def kernels(text):
    """(name, normalised text) of each kernel in `text`, in order"""
    out, cur, name = [], None, None
    for line in text.split("\n"):
        m = SIG.match(line)
        if m:
            cur, name = [], m.group(1)
        if cur is None:
            continue
        if not line.startswith("#line"):
            cur.append(line)
        if line == "}":
            sig = cur[0][len("NNC_KERNEL void " + name):]
            out.append((name, "\n".join([sig] + cur[1:])))
            cur = None
    return out


def main():
    nnc, models = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(models, "*.nn")))
    if not files:
        print("no models in", models)
        return 1
    status, total = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            for flags in (["-O0"], ["-O2"], ["-O2", "--inference"]):
                out = os.path.join(tmp, "m.c")
                r = subprocess.run([nnc, path, *flags, "-o", out], capture_output=True, text=True)
                what = "%s %s" % (os.path.basename(path), " ".join(flags))
                if r.returncode != 0:
                    print("FAIL nnc", what, r.stderr)
                    status = 1
                    continue
                with open(out) as f:
                    text = f.read()
                ks = kernels(text)
                prev = ""
                for line in text.split("\n"):
                    if CALL_OFFSET.match(line):
                        print("FAIL %s: a call passes an offset, not a name: %s" % (what, line.strip()))
                        status = 1
                    if line.startswith("#line") and prev.startswith("#line"):
                        print("FAIL %s: two #line directives in a row: %s / %s" % (what, prev, line))
                        status = 1
                    prev = line
                if not ks:
                    print("FAIL", what, ": no kernels found (has the signature changed?)")
                    status = 1
                first = {}
                for name, body in ks:
                    if body in first:
                        print("FAIL %s: %s is a copy of %s" % (what, name, first[body]))
                        status = 1
                    else:
                        first[body] = name
                total += len(ks)
    print("%d kernels in %d files checked" % (total, 3 * len(files)))
    return status


if __name__ == "__main__":
    sys.exit(main())
