#!/usr/bin/env python3
"""tests/gpu/perf_model.py: the performance model of docs/cuda.md, computed, not typed.

For the bench workloads W2, W3 and W5 (bench/workloads/*.nn at the batches bench/driver.py uses), it counts
per call what `nnc --target cuda` will do on a GPU and predicts the time on an H100 SXM from datasheet
figures. Everything it counts comes from `nnc MODEL --batch B --emit c` (the kernels the entry points call,
in order, and each kernel's operand shapes from its header comment) and `nnc summary --json` (FLOPs per
sample); the CUDA target launches the same kernels, one graph node each, inside one CUDA graph per entry.

Per call:
  nodes    kernels called + device copies (memcpy into the model) + host statements (the step counter):
           each one node of the graph, run one after another (the graph is captured from one stream)
  bytes    per kernel, the sum of its operands' sizes (inputs once, outputs once, twice when updated in place)
  FLOPs    `nnc summary --json` flops_forward (predict) or flops_train (train step) times the batch
  chain    per kernel, the longest serial loop one thread runs (a reduction's length on the thread that owns
           an output, /256 when a block owns it), times the cost of one dependent step
  predicted = call + sum over kernels of (node latency + max(bytes/BW, flops/F, chain)) + copies
  where call = graph launch + host-to-device copy of the inputs + device-to-host copy of the outputs
  + staging through the pinned buffer + the wait. Sum, not max: a graph captured from one stream runs its
  nodes one after another, so a node's latency never overlaps the previous node's work.

Three scenarios (low, central, high) bracket the datasheet figures; see SCENARIOS.

  python3 tests/gpu/perf_model.py                    the table (text), nnc from $NNC, PATH or build/nnc
  python3 tests/gpu/perf_model.py --markdown         the same as the markdown table docs/cuda.md quotes
  python3 tests/gpu/perf_model.py --json             machine-readable (tests/gpu/run.sh reads it)
  python3 tests/gpu/perf_model.py --kernels W5.train every kernel of one case
  python3 tests/gpu/perf_model.py --one-thread 'conv2d_bwd_filter|sum'   kernels (regex on their names)
                                                     that run on a single GPU thread today
Python 3 standard library only. Exit 0, or 1 when nnc fails or its output cannot be read.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# H100 SXM5 (80 GB HBM3), datasheet and commonly measured figures.
SMS = 132
THREADS_PER_BLOCK = 256
GRID_CAP_BLOCKS = 32 * SMS          # the printer's grid: min(ceil(N / 256), 32 * SMs)
BLOCK_REDUCE_MIN = 1024             # a reduction at least this long gets a block per output
FP32_FLOPS = 67e12                  # FP32, non-tensor, dense
HBM_BW = 3.35e12                    # for reference: the working sets below fit the 50 MB L2
SCENARIOS = {
    #            node latency   L2 bandwidth   one dependent step    graph launch   copy latency   PCIe      host memcpy   wait
    "low":     dict(node=1.0e-6, bw=10e12, step=2e-9, launch=2.0e-6, copy=1.5e-6, pcie=50e9, host=30e9, wait=1.0e-6),
    "central": dict(node=1.5e-6, bw=7e12, step=4e-9, launch=3.0e-6, copy=2.0e-6, pcie=25e9, host=20e9, wait=2.0e-6),
    "high":    dict(node=2.0e-6, bw=5e12, step=8e-9, launch=5.0e-6, copy=3.0e-6, pcie=12e9, host=10e9, wait=3.0e-6),
}

# case: (model file under bench/workloads, compiled batch, entry, call's n, target in microseconds, what it is)
CASES = [
    ("W2.b32.train", "w2", 32, "train", 32, None, "10-50-1 MLP, SGD, train step at batch 32"),
    ("W2.full.train", "w2", 1000, "train", 1000, None, "the same at the full batch of 1000"),
    ("W2.predict1", "w2", 32, "predict", 1, None, "predict one row (compiled batch 32)"),
    ("W3.train", "w3", 1000, "train", 1000, None, "100-128-10 softmax, Adam, train step at batch 1000"),
    ("W5.train", "w5", 32, "train", 32, 100.0, "the seed CNN, Adam, train step at batch 32"),
    ("W5.predict", "w5", 32, "predict", 32, None, "the seed CNN, predict 32 images"),
    ("W5.predict1", "w5", 32, "predict", 1, None, "the seed CNN, predict one image"),
]
EPOCH_STEPS = 1875                  # Fashion-MNIST: 60,000 images in batches of 32
EPOCH_TARGET_US = 0.5e6 / EPOCH_STEPS  # 0.5 s per epoch: 266.7 us per step, host-to-device copies included
SHAPE = re.compile(r"([fi]32)\[([^\]]*)\]")
HEADER = re.compile(r"^/\* (k\d+) ([a-z0-9_]+)(?:  ([A-Za-z0-9_.]+))?: (.*) -> (.*)  \(line (\d+)\) \*/$")


def find_nnc(given):
    for cand in (given, os.environ.get("NNC"), shutil.which("nnc"), os.path.join(ROOT, "build", "nnc")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    sys.exit("perf_model.py: no nnc binary: pass --nnc PATH or set NNC (build it with cmake first)")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"perf_model.py: {' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr.strip()}")
    return r.stdout


def shapes(text):
    """'f32[B,10], f32[10]' -> [('f32', ['B', '10']), ('f32', ['10'])]"""
    return [(t, [d.strip() for d in dims.split(",") if d.strip()]) for t, dims in SHAPE.findall(text)]


def elems(shape, n):
    return math.prod(n if d == "B" else int(d) for d in shape[1])


def parse_kernels(c):
    """kernel name -> {op, ins: [shape], outs: [shape], rmw: [bool per output]} from the headers and bodies"""
    kernels, lines = {}, c.split("\n")
    for i, line in enumerate(lines):
        m = HEADER.match(line)
        if not m:
            continue
        kid, op, _, ins, out = m.group(1, 2, 3, 4, 5)
        sig = lines[i + 1]
        name = re.search(r"\b(" + kid + r"_\w+)\(", sig).group(1)
        params = re.findall(r"(const )?(?:nnc_real|int32_t|uint32_t) \*restrict (\w+)", sig)
        outs = [p for const, p in params if not const]
        body = []
        for line2 in lines[i + 2:]:
            if line2.startswith("}"):
                break
            body.append(line2)
        body = "\n".join(body)
        ins_s, out_s = shapes(ins), shapes(out)
        nextra = max(0, len(outs) - 1)  # a kernel with several outputs lists the others first among its operands
        rmw = []
        for o in outs:
            upd = re.search(r"\b" + o + r"\[[^\]]*\]\s*([-+*/]?=)(.*)", body)
            reads = [m2 for m2 in re.finditer(r"\b" + o + r"\[[^\]]*\]\s*([-+*/]?=)([^;]*)", body)
                     if m2.group(1) != "=" or re.search(r"\b" + o + r"\[", m2.group(2))]
            rmw.append(bool(upd) and bool(reads))
        kernels[name] = dict(op=op, ins=ins_s[nextra:], outs=out_s + ins_s[:nextra], rmw=rmw)
    return kernels


def entry_body(c, model, entry):
    fn = {"predict": f"void {model}_predict(", "train": f"nnc_real {model}_train_step_metrics("}[entry]
    m = re.search("^" + re.escape(fn) + r"[^;{]*\)\n\{", c, re.M)
    start = m.start() if m else -1
    if start < 0:
        sys.exit(f"perf_model.py: no {fn.strip('(')} in the generated C")
    end = c.find("\n}\n", start)
    return c[start:end]


def reduction_length(k, n):
    """the longest reduction one output of kernel k folds, and whether the printer gives it a block"""
    ins, out = k["ins"], k["outs"][0]
    out_e = max(1, elems(out, n))
    op = k["op"]
    if op.startswith("matmul") and len(ins) >= 2:
        r = round(math.sqrt(elems(ins[0], n) * elems(ins[1], n) / out_e))
    elif op.startswith("conv2d_bwd_filter") and len(ins) >= 2:
        r = elems(ins[1], n) // max(1, int(out[1][-1]))
    elif op.startswith("conv2d") and len(ins) >= 2:
        r = elems(ins[1], n) // max(1, int(ins[1][1][-1]))
    elif re.search(r"sum|mean|softmax|argmax", op):
        big = max((elems(s, n) for s in ins), default=1)
        r = max(1, big // out_e) if "softmax" not in op else int(out[1][-1]) * 3
    else:
        r = 1
    over_batch = "B" not in out[1] and any("B" in s[1] for s in ins)
    return max(1, r), (r >= BLOCK_REDUCE_MIN or over_batch) and "softmax" not in op


def kernel_cost(k, n, sc, one_thread):
    nbytes = sum(4 * elems(s, n) for s in k["ins"])
    nbytes += sum(4 * elems(s, n) * (2 if rmw else 1) for s, rmw in zip(k["outs"], k["rmw"]))
    out_e = sum(max(1, elems(s, n)) for s in k["outs"])
    r, block = reduction_length(k, n)
    flops = 2.0 * out_e * r
    if one_thread:
        chain = out_e * r
        mapping = "one thread"
    elif block:
        chain = math.ceil(out_e / GRID_CAP_BLOCKS) * (math.ceil(r / THREADS_PER_BLOCK) + 8)  # + the fold
        mapping = "block/output"
    else:
        chain = math.ceil(out_e / (GRID_CAP_BLOCKS * THREADS_PER_BLOCK)) * r
        mapping = "thread/output"
    t_bytes, t_flops, t_chain = nbytes / sc["bw"], flops / FP32_FLOPS, chain * sc["step"]
    return dict(bytes=nbytes, flops=flops, r=r, mapping=mapping, chain=chain, t_bytes=t_bytes, t_flops=t_flops,
                t_chain=t_chain, t_work=max(t_bytes, t_flops, t_chain))


def io_bytes(c, nn_text, entry, n):
    """bytes the call copies host -> device (n, inputs, and targets for a train step) and back (the outputs,
    or the loss of a train step)"""
    hdr = re.search(r"/\* 1 <= n <= MAX_BATCH; inputs (.*?); outputs (.*?) \*/", c)
    if not hdr:
        sys.exit("perf_model.py: the generated C has no 'inputs ...; outputs ...' comment")
    def size(text):  # "image [B,28,28,1], mask [B,4]": every element is 4 bytes (f32 or i32)
        return sum(4 * elems(("", [d.strip() for d in dims.split(",") if d.strip()]), n)
                   for dims in re.findall(r"\w+ \[([^\]]*)\]", text))
    ins, outs = 4 + size(hdr.group(1)), size(hdr.group(2))
    if entry == "train":
        for t, dims in re.findall(r"^\s*target\s+\w+\s*:\s*([fi]32)\[([^\]]*)\]", nn_text, re.M):
            ins += 4 * n * math.prod(int(d) for d in dims.split(",") if d.strip())
        outs = 4  # the loss
    return ins, outs


def model_case(nnc, case, sc_name, one_thread_re):
    name, model, batch, entry, n, target, what = case
    path = os.path.join(ROOT, "bench", "workloads", model + ".nn")
    c = run([nnc, path, "--batch", str(batch), "--emit", "c"])
    summ = json.loads(run([nnc, "summary", "--json", "--batch", str(batch), path]))
    kernels = parse_kernels(c)
    body = entry_body(c, model, entry)
    calls, copies, host = [], 0, 0
    for line in body.split("\n")[1:]:
        s = line.strip()
        m = re.match(r"(k\d+_\w+)\(", s)
        if m:
            calls.append(m.group(1))
        elif s.startswith("memcpy(") or s.startswith("memset("):
            copies += 1
        elif re.match(r"m->\w+\[\d+\] [-+]?= ", s):
            host += 1
    sc = SCENARIOS[sc_name]
    per_kernel = []
    for kname in calls:
        if kname not in kernels:
            sys.exit(f"perf_model.py: {name}: the entry calls {kname}, which has no header comment")
        one = bool(one_thread_re and re.search(one_thread_re, kname))
        per_kernel.append((kname, kernel_cost(kernels[kname], n, sc, one)))
    nodes = len(calls) + copies + host
    in_b, out_b = io_bytes(c, open(path).read(), entry, n)
    flops = summ["flops_train" if entry == "train" else "flops_forward"] * n
    t_call = (sc["launch"] + 2 * sc["copy"] + (in_b + out_b) / sc["pcie"] + (in_b + out_b) / sc["host"]
              + sc["wait"])
    t_launch = nodes * sc["node"]
    t_work = sum(k["t_work"] for _, k in per_kernel)
    total = t_call + t_launch + t_work
    terms = {"launches": t_launch, "call (copies, launch, wait)": t_call, "kernel work": t_work}
    return dict(case=name, what=what, model=model, batch=batch, entry=entry, n=n, kernels=len(calls),
                working_set=summ["ram_bytes"],
                copies=copies, host=host, nodes=nodes, bytes=sum(k["bytes"] for _, k in per_kernel),
                flops=flops, flops_kernels=sum(k["flops"] for _, k in per_kernel), in_bytes=in_b,
                out_bytes=out_b, t_call_us=t_call * 1e6, t_launch_us=t_launch * 1e6,
                t_bytes_us=sum(k["t_bytes"] for _, k in per_kernel) * 1e6, t_flops_us=flops / FP32_FLOPS * 1e6,
                t_chain_us=sum(k["t_chain"] for _, k in per_kernel) * 1e6, t_work_us=t_work * 1e6,
                predicted_us=total * 1e6, dominant=max(terms, key=terms.get), target_us=target,
                per_kernel=[dict(kernel=kn, **{k: v for k, v in kc.items()}) for kn, kc in per_kernel])


def epoch_row(train, sc_name):
    """one Fashion-MNIST epoch: 1875 W5 train steps, each also gathering its shuffled batch on the host"""
    sc = SCENARIOS[sc_name]
    gather = train["in_bytes"] / sc["host"]
    step = train["predicted_us"] + gather * 1e6
    return dict(case="W5.epoch", steps=EPOCH_STEPS, step_us=step, predicted_s=step * EPOCH_STEPS / 1e6,
                target_s=0.5, target_step_us=EPOCH_TARGET_US)


def fmt_us(x):
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def table(rows, ep, md):
    hdr = ["case", "n", "set MB", "nodes", "launches (µs)", "MB moved", "bytes (µs)", "MFLOP", "FLOPs (µs)", "chain (µs)",
           "call (µs)", "predicted µs (low–high)", "target", "dominant"]
    out = []
    for r in rows:
        lo, hi = r["range"]
        tgt = f"≤ {r['target_us']:.0f} µs: {'yes' if hi <= r['target_us'] else 'central ' + ('yes' if r['predicted_us'] <= r['target_us'] else 'NO')}" if r["target_us"] else ""
        out.append([r["case"], str(r["n"]), f"{r['working_set'] / 1e6:.2f}", f"{r['nodes']} ({r['kernels']}k+{r['copies'] + r['host']})",
                    fmt_us(r["t_launch_us"]), f"{r['bytes'] / 1e6:.2f}", fmt_us(r["t_bytes_us"]),
                    f"{r['flops'] / 1e6:.1f}", f"{r['t_flops_us']:.2f}", fmt_us(r["t_chain_us"]),
                    fmt_us(r["t_call_us"]), f"**{fmt_us(r['predicted_us'])}** ({fmt_us(lo)}–{fmt_us(hi)})" if md
                    else f"{fmt_us(r['predicted_us'])} ({fmt_us(lo)}-{fmt_us(hi)})", tgt, r["dominant"]])
    lo, hi = ep["range"]
    out.append(["W5.epoch", f"{EPOCH_STEPS}×32", "", "", "", "", "", "", "", "", "",
                (f"**{ep['predicted_s']:.3f} s** ({lo:.3f}–{hi:.3f})" if md
                 else f"{ep['predicted_s']:.3f} s ({lo:.3f}-{hi:.3f})"),
                f"≤ 0.5 s: {'yes' if hi <= 0.5 else 'central ' + ('yes' if ep['predicted_s'] <= 0.5 else 'NO')}",
                f"{fmt_us(ep['step_us'])} µs/step"])
    if md:
        lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
        lines += ["| " + " | ".join(r) + " |" for r in out]
        return "\n".join(lines)
    w = [max(len(h), *(len(r[i]) for r in out)) for i, h in enumerate(hdr)]
    lines = ["  ".join(h.ljust(w[i]) for i, h in enumerate(hdr))]
    lines += ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in out]
    return "\n".join(lines)


def kernel_table(r):
    lines = [f"{r['case']}: {r['kernels']} kernels, {r['copies']} copies, {r['host']} host statements "
             f"(central scenario; µs per kernel, node latency not included)",
             f"{'kernel':34} {'mapping':13} {'reduce':>7} {'KB':>9} {'bytes µs':>9} {'MFLOP':>8} {'chain µs':>9}"]
    for k in r["per_kernel"]:
        lines.append(f"{k['kernel']:34} {k['mapping']:13} {k['r']:>7} {k['bytes'] / 1e3:>9.1f} "
                     f"{k['t_bytes'] * 1e6:>9.3f} {k['flops'] / 1e6:>8.2f} {k['t_chain'] * 1e6:>9.3f}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nnc", help="the nnc binary (default: $NNC, nnc on PATH, build/nnc)")
    ap.add_argument("--json", action="store_true", help="print the model as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--kernels", metavar="CASE", help="print every kernel of CASE (W5.train, ...)")
    ap.add_argument("--one-thread", metavar="REGEX", default=os.environ.get("NNC_PERF_ONE_THREAD", ""),
                    help="kernels (regex on kN_name) that run on a single GPU thread today")
    a = ap.parse_args()
    nnc = find_nnc(a.nnc)
    rows = []
    for case in CASES:
        per = {s: model_case(nnc, case, s, a.one_thread) for s in SCENARIOS}
        r = per["central"]
        r["range"] = (per["low"]["predicted_us"], per["high"]["predicted_us"])
        r["scenarios"] = {s: round(per[s]["predicted_us"], 2) for s in SCENARIOS}
        rows.append(r)
    w5 = {s: model_case(nnc, CASES[4], s, a.one_thread) for s in SCENARIOS}
    eps = {s: epoch_row(w5[s], s) for s in SCENARIOS}
    ep = eps["central"]
    ep["range"] = (eps["low"]["predicted_s"], eps["high"]["predicted_s"])
    if a.json:
        json.dump({"device": "H100 SXM (datasheet model)", "scenarios": SCENARIOS, "one_thread": a.one_thread,
                   "cases": rows, "epoch": ep}, sys.stdout, indent=1, default=float)
        print()
        return
    if a.kernels:
        r = next((r for r in rows if r["case"] == a.kernels), None)
        if not r:
            sys.exit(f"perf_model.py: no case {a.kernels}; cases: {', '.join(c[0] for c in CASES)}")
        print(kernel_table(r))
        return
    print(table(rows, ep, a.markdown))
    if a.one_thread:
        print(f"\nkernels on one thread: /{a.one_thread}/")


if __name__ == "__main__":
    main()
