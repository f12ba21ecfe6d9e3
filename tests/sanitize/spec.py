#!/usr/bin/env python3
"""spec.py: the interface of a compiled model, for the sanitize driver (sanitize.c says the format).

    spec.py MODEL.h IR.txt [--inference]

MODEL.h is the header nnc wrote (its predict comment lists inputs and outputs with their shapes, in the
order of the shim's io array; the train_step prototype lists the targets after the inputs); IR.txt is
`nnc MODEL.nn --emit ir` (the targets' shapes, and the class counts of one_hot, which bound the values of
i32 inputs and targets). Python 3 standard library only.
"""
import re
import sys


def count(shape):
    n = 1
    for d in shape.split(",")[1:]:
        n *= int(d)
    return n


def main():
    header, ir = open(sys.argv[1]).read(), open(sys.argv[2]).read()
    inference = "--inference" in sys.argv[3:]
    batch = re.search(r"#define \w+_MAX_BATCH (\d+)", header).group(1)
    m = re.search(r"/\* 1 <= n <= MAX_BATCH; inputs (.*?); outputs(.*?) \*/\n[^\n]*_predict\(([^)]*)\)", header)
    if not m:
        sys.exit("spec.py: no predict in %s" % sys.argv[1])
    pairs = lambda s: re.findall(r"(\S+) \[([^\]]*)\]", s)
    ins, outs = pairs(m.group(1)), pairs(m.group(2))
    params = [p.strip() for p in m.group(3).split(",")[2:]]
    types = ["i32" if p.startswith("int32_t") or p.startswith("const int32_t") else "f32" for p in params]
    classes = [int(c) for c in re.findall(r"= one_hot %\d+ \{(\d+)\}", ir)]
    hi = min(classes) if classes else 2
    lines = ["batch " + batch]
    if inference:
        lines.append("inference 1")
    for (name, shape), t in zip(ins, types):
        lines.append("input %s %s %d %d" % (name, t, count(shape), hi))
    for (name, shape), t in zip(outs, types[len(ins):]):
        lines.append("output %s %s %d" % (name, t, count(shape)))
    if not inference:
        tm = re.search(r"\w+_train_step\(([^)]*)\)", header) or re.search(r"\w+_eval\(([^)]*)\)", header)
        if tm:
            tparams = [p.strip() for p in tm.group(1).split(",")[2 + len(ins):]]
            tparams = [p for p in tparams if not p.endswith("*metrics")]
            # the targets: the IR's inputs that are not inputs of predict, in order (C names may be mangled)
            seen, order = {}, []
            for name, shape in re.findall(r"= input (\S+) : [fi]32\[([^\]]*)\]", ir):
                if name not in seen:
                    seen[name] = shape
                    order.append(name)
            tnames = [n for n in order if n not in {i for i, _ in ins}]
            if len(tnames) != len(tparams):
                sys.exit("spec.py: %d targets in the header, %d in the IR" % (len(tparams), len(tnames)))
            for p, name in zip(tparams, tnames):
                t = "i32" if "int32_t" in p else "f32"
                lines.append("target %s %s %d %d" % (name, t, count(seen[name]), hi))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
