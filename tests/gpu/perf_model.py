#!/usr/bin/env python3
"""tests/gpu/perf_model.py: the performance model of docs/cuda.md, computed, not typed.

For the bench workloads W2, W3 and W5 (bench/workloads/*.nn at the batches bench/driver.py uses) it counts per
call what `nnc --target cuda` does on a GPU and predicts the time on an H100 SXM from datasheet figures.
What it counts comes from nnc itself:
  - `nnc M.nn --batch B --target cuda -o m.c`: the entry point's record function (each nnc_cuda_launch,
    nnc_cuda_copy, nnc_cuda_fill and nnc_cuda_gemm is one node of the entry's CUDA graph; a launch with its
    grid and block, a cuBLAS product with its m, n, k), struct M_io and the host entry point (the bytes a
    call of n rows copies: `nnc_in`, `nnc_out`, `nnc_end` and the memcpy calls through the pinned buffer);
  - `nnc M.nn --batch B --target cuda --emit cuda`: each kernel's operand shapes (its header comment) and
    how its loops are spread (below);
  - `nnc summary --json`: FLOPs per sample, and the working set.
With an nnc that has no CUDA target it counts from `--emit c` instead (the same kernels, one node each).

Per call:
  nodes   graph nodes (launches, copies, fills), run one after another (the graph is captured from one stream)
  bytes   per kernel, the sum of its operands' sizes (inputs once, outputs once, twice when updated in place);
          per cuBLAS call, A, B and C at the m it is given (the compiled batch's rows, whatever n is)
  FLOPs   `nnc summary --json` flops_forward (predict) or flops_train (train step) times n; per node its own
  chain   per kernel, the longest serial loop one thread runs, from the kernel's mapping and its launch's grid:
            thread/output  a thread owns an output: the reduction's length (times the outputs a grid-stride
                           loop gives it when the outputs outnumber the threads)
            block/output   a block of 256 owns an output (`NNC_SHARED(nnc_real, part, 32)`, a loop
                           `r += blockDim.x`): length/256 + 8 (the fold), times the outputs per block
            columns        a block owns 32 neighbouring outputs, its 8 warps 8 rows at a time (a loop `r += 8`
                           or `p += 8`: column sums, the weight-gradient fold): length/8 + 8
            one thread     all of the kernel's work
  cuBLAS  per nnc_cuda_gemm: max(bytes/BW, FLOPs at FP32 peak, the smallest sgemm kernel's time)
  predicted = call + sum over nodes of (node latency + max(bytes/BW, flops/F, chain x step))
  call      = graph launch + host->device copy of the io block up to the call's n rows of its largest input
              (`nnc_in`: the targets and other inputs whole) + device->host copy of the results (`nnc_out` to
              `nnc_end`) + staging through the pinned buffer (the entry's memcpy calls) + the wait
Sum, not max, across nodes: one stream's nodes run one after another, so a node's latency never hides behind
the previous node's work; max within a kernel: its loads, arithmetic and loop overlap. A working set larger
than the L2 (50 MB) moves its bytes at HBM3's bandwidth instead.
Two mappings of the kernels:
  today    as the printer writes them (from --emit cuda, above)
  planned  besides, each long reduction still on one thread per output moved to a block per output where
           that gives the shorter chain (the same as today when there is none)
Three scenarios (low, central, high) bracket the datasheet figures; see SCENARIOS.

  python3 tests/gpu/perf_model.py                    the table (text); nnc from --nnc, $NNC, PATH, build/nnc
  python3 tests/gpu/perf_model.py --markdown         the same as the markdown table docs/cuda.md quotes
  python3 tests/gpu/perf_model.py --json             machine-readable (tests/gpu/run.sh reads it)
  python3 tests/gpu/perf_model.py --kernels W5.train every node of one case
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
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# H100 SXM5 80 GB: 132 SMs, boost 1.98 GHz, FP32 (non-tensor) 67 TFLOP/s, HBM3 3.35 TB/s, L2 50 MB.
SMS = 132
THREADS_PER_BLOCK = 256
GRID_CAP_BLOCKS = 4096             # the printer's grid: min(ceil(N / 256), 4096) blocks of 256 (31 per SM)
FP32_FLOPS = 67e12
HBM_BW = 3.35e12                    # a working set over L2_BYTES streams from HBM3 at this rate
L2_BYTES = 50e6
SCENARIOS = {
    # node: a graph node's latency (kernel or copy, back to back in one stream); bw: L2 bandwidth;
    # step: one step of a thread's serial loop (an L2 hit, ~260 cycles = 130 ns, over the 4 loads an
    # unrolled loop keeps in flight); local: any other step of a thread's loop (about an FMA's latency);
    # launch: cuGraphLaunch on the CPU; copy: a small host<->device copy's latency; pcie: its bandwidth;
    # host: memcpy into the pinned buffer; wait: the stream synchronisation; gemm: the shortest a cuBLAS
    # sgemm kernel takes, however small (its tiles' prologue and epilogue, a split-k reduction).
    "low": dict(node=1.0e-6, bw=10e12, step=10e-9, local=1e-9, launch=2.0e-6, copy=1.5e-6, pcie=50e9, host=30e9,
                wait=1e-6, gemm=3e-6),
    "central": dict(node=1.5e-6, bw=7e12, step=35e-9, local=2e-9, launch=3.0e-6, copy=2.0e-6, pcie=25e9, host=20e9,
                    wait=2e-6, gemm=5e-6),
    "high": dict(node=2.0e-6, bw=5e12, step=130e-9, local=4e-9, launch=5.0e-6, copy=3.0e-6, pcie=12e9, host=10e9,
                 wait=3e-6, gemm=8e-6),
}

# name, model file under bench/workloads, compiled batch, entry, the call's n, target in microseconds, what
CASES = [
    ("W2.b32.train", "w2", 32, "train", 32, None, "10-50-1 MLP, SGD, train step at batch 32"),
    ("W2.full.train", "w2", 1000, "train", 1000, None, "the same at the full batch of 1000"),
    ("W2.predict1", "w2", 32, "predict", 1, None, "predict one row (compiled batch 32)"),
    ("W3.train", "w3", 1000, "train", 1000, None, "100-128-10 softmax, Adam, train step at batch 1000"),
    ("W3.b2000.train", "w3", 2000, "train", 2000, None, "the same at batch 2000: its first layer through cuBLAS"),
    ("W5.train", "w5", 32, "train", 32, 100.0, "the seed CNN, Adam, train step at batch 32"),
    ("W5.predict", "w5", 32, "predict", 32, None, "the seed CNN, predict 32 images"),
    ("W5.predict1", "w5", 32, "predict", 1, None, "the seed CNN, predict one image"),
]
EPOCH_STEPS = 1875                  # Fashion-MNIST: 60,000 images in batches of 32
EPOCH_TARGET_S = 0.5
SHAPE = re.compile(r"([fi]32)\[([^\]]*)\]")
HEADER = re.compile(r"^/\* (k\d+) ([a-z0-9_]+)(?:  ([A-Za-z0-9_.]+))?: (.*) -> (.*)  \(line (\d+)\) \*/$")


def die(msg):
    print(f"perf_model.py: {msg}", file=sys.stderr)
    sys.exit(1)


def find_nnc(given):
    for cand in (given, os.environ.get("NNC"), shutil.which("nnc"), os.path.join(ROOT, "build", "nnc")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    die("no nnc binary: pass --nnc PATH or set NNC (build it with cmake first)")


def run(cmd, may_fail=False):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        if may_fail:
            return None
        die(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr.strip()}")
    return r.stdout


def shapes(text):
    """'f32[B,10], f32[10]' -> [('f32', ['B', '10']), ('f32', ['10'])]"""
    return [(t, [d.strip() for d in dims.split(",") if d.strip()]) for t, dims in SHAPE.findall(text)]


def elems(shape, n):
    return math.prod(n if d == "B" else int(d) for d in shape[1])


# ---- the kernels: shapes from the header comments, bodies for in-place updates and one-thread kernels ----
def parse_kernels(src):
    kernels, lines = {}, src.split("\n")
    for i, line in enumerate(lines):
        m = HEADER.match(line)
        if not m:
            continue
        kid, op, _, ins, out = m.group(1, 2, 3, 4, 5)
        sig = lines[i + 1]
        name = re.search(r"\b(" + kid + r"_\w+)\(", sig).group(1)
        params = re.findall(r"(const )?(?:nnc_real|int32_t|uint32_t) \*(?:restrict |NNC_RESTRICT )?(\w+)", sig)
        outs = [p for const, p in params if not const and p != "nn"]
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
            reads = [m2 for m2 in re.finditer(r"\b" + o + r"\[[^\]]*\]\s*([-+*/]?=)([^;]*)", body)
                     if m2.group(1) != "=" or re.search(r"\b" + o + r"\[", m2.group(2))]
            rmw.append(bool(reads))
        kernels[name] = dict(op=op, ins=ins_s[nextra:], outs=out_s + ins_s[:nextra], rmw=rmw,
                             mapping=kernel_mapping(body))
    return kernels


def kernel_mapping(body):
    """how the printer spread a kernel's loops, read from its body (docs/cuda.md §5)"""
    if "/* one thread */" in body:
        return "one thread"
    if "NNC_SHARED(" in body and re.search(r"\b(?:r|p) \+= 8\)", body):
        return "columns"  # 32 outputs a block, its 8 warps 8 rows at a time, 8 partial results in shared memory
    if "NNC_SHARED(" in body and re.search(r"\b(?:r|k) \+= blockDim\.x\)", body):
        return "block/output"  # 256 threads a strided part each, shuffles, one partial result per warp
    return "thread/output"  # a grid-stride loop over the outputs (or a block per sequence with barriers)


def reduction_length(k, n):
    """(outputs, the length of the reduction behind each): the shapes say it for the ops of these models"""
    ins, out, op = k["ins"], k["outs"][0], k["op"]
    out_e = max(1, elems(out, n))
    if op.startswith("matmul") and len(ins) >= 2:  # [M,K] x [K,N] in any transposition: K = sqrt(|a||b|/|y|)
        r = round(math.sqrt(elems(ins[0], n) * elems(ins[1], n) / out_e))
    elif op.startswith("conv2d_bwd_filter") and len(ins) >= 2:  # dy [B,OH,OW,F] -> dw [KH,KW,C,F]
        r = elems(ins[1], n) // max(1, int(out[1][-1]))
    elif op.startswith("conv2d") and len(ins) >= 2:  # w [KH,KW,C,F]: KH*KW*C per output
        r = elems(ins[1], n) // max(1, int(ins[1][1][-1]))
    elif "softmax" in op:  # a row per thread: max, sum, scale
        out_e, r = out_e // max(1, int(out[1][-1])), 3 * int(out[1][-1])
    elif re.search(r"sum|mean|argmax", op):
        r = max(1, max((elems(s, n) for s in ins), default=1) // out_e)
    else:
        r = 1
    return out_e, max(1, r)


STREAM_MIN = 256  # a reduction at least this long streams its operand from L2: each step waits on a load


def chains(k, n, launch):
    """the longest thread's serial loop as (streaming steps, local steps), today and planned, and the planned
    mapping; launch is the node's (grid, block). A streaming step is one step of a long reduction over a large
    operand (its load is an L2 hit that the thread waits for); a local step is any other step of a thread's
    loops (short reductions, the outputs a grid-stride loop gives one thread, pooling windows, a block's fold
    in shared memory: loads that overlap, L1 hits)."""
    out_e, r = reduction_length(k, n)
    grid, block_dim = launch or (GRID_CAP_BLOCKS, THREADS_PER_BLOCK)

    def steps(count, length):
        return (count * length, 0) if length >= STREAM_MIN else (0, count * length)

    def blocks(outputs_per_block, split):  # every output a block's work, its threads `split` ways
        waves = math.ceil(math.ceil(out_e / outputs_per_block) / grid)
        return (waves * math.ceil(r / split), waves * 8)  # + the fold: 8 steps (shuffles or 8 rows' partials)
    mapping = k["mapping"]
    if mapping == "one thread":  # every output in a row: streaming steps only for long reductions
        today = steps(out_e, r)
    elif mapping == "block/output":
        today = blocks(1, block_dim)
    elif mapping == "columns":
        today = blocks(32, 8)
    else:
        today = steps(math.ceil(out_e / (grid * block_dim)), r)
    if mapping == "thread/output" and r >= STREAM_MIN:  # what a block per output would give instead
        grid = min(out_e, GRID_CAP_BLOCKS)
        alt = blocks(1, THREADS_PER_BLOCK)
        if alt[0] * 20 + alt[1] < today[0] * 20 + today[1]:
            return today, alt, "block/output"
    return today, today, mapping


def chain_s(steps, sc):
    return steps[0] * sc["step"] + steps[1] * sc["local"]


def kernel_cost(k, n, launch):
    nbytes = sum(4 * elems(s, n) for s in k["ins"])
    nbytes += sum(4 * elems(s, n) * (2 if rmw else 1) for s, rmw in zip(k["outs"], k["rmw"]))
    out_e, r = reduction_length(k, n)
    today, planned, how = chains(k, n, launch)
    return dict(bytes=nbytes, flops=2.0 * out_e * r, outputs=out_e, r=r, chain_today=today,
                chain_planned=planned, planned_mapping=how, mapping_today=k["mapping"], floor=0.0)


def gemm_cost(m, n, k):
    """a cuBLAS call C[m,n] = A[m,k] B[k,n] (FP32, beta 0): A and B read once, C written once; at least the
    scenario's smallest sgemm kernel (the `floor` marks it)"""
    return dict(bytes=4 * (m * k + k * n + m * n), flops=2.0 * m * n * k, outputs=m * n, r=k, chain_today=(0, 0),
                chain_planned=(0, 0), planned_mapping="cuBLAS", mapping_today="cuBLAS", floor=1.0)


# ---- the nodes of an entry point ----
def record_nodes(host_c, model, entry):
    """[(kind, kernel index, (grid, block)) or ("gemm", None, (m, n, k)) or ("copy", None, None)] from the CUDA
    host C's record function"""
    fn = {"predict": "predict", "train": "train_step"}[entry]
    m = re.search(rf"^static void {model}_{fn}_record\(void \*\w+\)\n\{{\n(.*?)^\}}", host_c, re.S | re.M)
    if not m:
        die(f"no {model}_{fn}_record in the CUDA host C")
    nodes = []
    for line in m.group(1).split("\n"):
        s = line.strip()
        lm = re.match(r"nnc_cuda_launch\(c, (\d+), (\d+), (\d+),", s)
        gm = re.match(r"nnc_cuda_gemm\(c, [01], [01], (\d+), (\d+), (\d+),", s)
        if lm:
            nodes.append(("launch", int(lm.group(1)), (int(lm.group(2)), int(lm.group(3)))))
        elif gm:
            nodes.append(("gemm", None, tuple(int(x) for x in gm.groups())))
        elif s.startswith("nnc_cuda_copy(") or s.startswith("nnc_cuda_fill("):
            nodes.append(("copy", None, None))
    return nodes


def c_nodes(c, model, entry):
    """the same from the host target's C (an nnc without --target cuda): kernels called, copies, host statements"""
    fn = {"predict": f"void {model}_predict(", "train": f"nnc_real {model}_train_step_metrics("}[entry]
    m = re.search("^" + re.escape(fn) + r"[^;{]*\)\n\{(.*?)^\}", c, re.S | re.M)
    if not m:
        die(f"no {fn.strip('(')} in the generated C")
    nodes = []
    for line in m.group(1).split("\n"):
        s = line.strip()
        km = re.match(r"(k\d+_\w+)\(", s)
        if km:
            nodes.append(("launch", km.group(1), None))
        elif s.startswith("memcpy(") or s.startswith("memset(") or re.match(r"m->\w+\[\d+\] [-+]?= ", s):
            nodes.append(("copy", None, None))  # a copy, or a host statement that becomes a one-thread kernel
    if entry == "train":
        nodes.append(("copy", None, None))  # the loss into the io block
    return nodes


def io_fields(host_c, model):
    """struct M_io as {member: (offset, bytes)} and its size (every member 4-byte elements)"""
    m = re.search(rf"^struct {model}_io \{{\n(.*?)^\}};", host_c, re.S | re.M)
    if not m:
        die(f"no struct {model}_io in the CUDA host C")
    fields, off = {}, 0
    for line in m.group(1).split("\n"):
        fm = re.match(r"\s*(?:nnc_real|int32_t|float|uint32_t) (\w+)(?:\[(\d+)\])?;", line)
        if fm:
            size = 4 * int(fm.group(2) or 1)
            fields[fm.group(1)] = (off, size)
            off += size
    return fields, off


def c_size_expr(expr, model, fields, total, n):
    """the value of a size expression of the host entry point (offsetof, sizeof, n) for the call's n"""
    e = re.sub(rf"offsetof\(struct {model}_io, (\w+)\)", lambda m: str(fields[m.group(1)][0]), expr)
    e = re.sub(r"sizeof nnc_h->(\w+)", lambda m: str(fields[m.group(1)][1]), e)
    e = e.replace(f"sizeof(struct {model}_io)", str(total))
    e = re.sub(r"sizeof\((?:nnc_real|int32_t|float|uint32_t)\)", "4", e).replace("(size_t)", "")
    if not re.fullmatch(r"[0-9n+*/() -]+", e):
        die(f"cannot read the size '{expr}' in the CUDA host C")
    return int(eval(e, {"__builtins__": {}}, {"n": n}))  # digits, n and arithmetic only (checked above)


def io_sizes(host_c, model, entry, n):
    """what a call of n rows copies, from the host entry point: (to the device, back from it, into the pinned
    buffer, out of it). The device copies are [0, nnc_in) and [nnc_out, nnc_end) of struct M_io."""
    fn = {"predict": f"void {model}_predict(", "train": f"nnc_real {model}_train_step_metrics("}[entry]
    m = re.search("^" + re.escape(fn) + r"[^;{]*\)\n\{(.*?)^\}", host_c, re.S | re.M)
    if not m:
        die(f"no {fn.strip('(')} in the CUDA host C")
    body = m.group(1)
    fields, total = io_fields(host_c, model)
    at = {}
    for var in ("nnc_in", "nnc_out", "nnc_end"):
        vm = re.search(rf"const size_t {var} = ([^;]*);", body)
        if not vm:
            die(f"no {var} in {fn.strip('(')} of the CUDA host C")
        at[var] = c_size_expr(vm.group(1), model, fields, total, n)
    host_in = 4 + sum(c_size_expr(x, model, fields, total, n)
                      for x in re.findall(r"^    memcpy\(nnc_h->\w+, \w+, (.*)\);$", body, re.M))
    host_out = sum(c_size_expr(x, model, fields, total, n)
                   for x in re.findall(r"^    memcpy\(\w+, nnc_h->\w+, (.*)\);$", body, re.M))
    host_out += 4 if "return nnc_h->loss;" in body else 0
    return at["nnc_in"], at["nnc_end"] - at["nnc_out"], host_in, host_out


def c_io_sizes(c, nn_text, entry, n):
    """the same from the host target's C: inputs (and targets) in, outputs and loss out"""
    hdr = re.search(r"/\* 1 <= n <= MAX_BATCH; inputs (.*?); outputs (.*?) \*/", c)
    if not hdr:
        die("the generated C has no 'inputs ...; outputs ...' comment")

    def size(text):  # "image [B,28,28,1], mask [B,4]": every element 4 bytes
        return sum(4 * elems(("", [d.strip() for d in dims.split(",") if d.strip()]), n)
                   for dims in re.findall(r"\w+ \[([^\]]*)\]", text))
    ins, outs = 4 + size(hdr.group(1)), 4 + size(hdr.group(2))
    for _, dims in re.findall(r"^\s*target\s+\w+\s*:\s*([fi]32)\[([^\]]*)\]", nn_text, re.M):
        ins += 4 * n * math.prod(int(d) for d in dims.split(",") if d.strip())
    return ins, outs


# ---- one case ----
def count_case(nnc, case, tmp):
    """everything about a case that does not depend on the scenario"""
    name, model, batch, entry, n, target, what = case
    path = os.path.join(ROOT, "bench", "workloads", model + ".nn")
    summ = json.loads(run([nnc, "summary", "--json", "--batch", str(batch), path]))
    flops = summ["flops_train" if entry == "train" else "flops_forward"] * n
    out_c = os.path.join(tmp, f"{model}_b{batch}.c")
    have_cuda = run([nnc, path, "--batch", str(batch), "--target", "cuda", "-o", out_c], may_fail=True) is not None
    if have_cuda:
        host_c = open(out_c).read()
        src = run([nnc, path, "--batch", str(batch), "--target", "cuda", "--emit", "cuda"])
        names = re.search(rf"{model}_kernel_names\[\] = \{{(.*?)\}};", host_c).group(1)
        names = re.findall(r'"(\w+)"', names)
        nodes = [(kind, names[i] if i is not None else None, shape)
                 for kind, i, shape in record_nodes(host_c, model, entry)]
        io_in, io_out, host_in, host_out = io_sizes(host_c, model, entry, n)
    else:
        src = run([nnc, path, "--batch", str(batch), "--emit", "c"])
        nodes = c_nodes(src, model, entry)
        host_in, host_out = c_io_sizes(src, open(path).read(), entry, n)
        io_in, io_out = host_in, host_out
    kernels = parse_kernels(src)
    per = []
    for kind, kname, shape in nodes:
        if kind == "launch":
            if kname not in kernels:
                die(f"{name}: node {kname} has no header comment in the kernel source")
            per.append(dict(node=kname, **kernel_cost(kernels[kname], n, shape)))
        elif kind == "gemm":
            per.append(dict(node="(cuBLAS %dx%dx%d)" % shape, **gemm_cost(*shape)))
        else:
            per.append(dict(node="(copy)", bytes=0, flops=0.0, outputs=0, r=0, chain_today=(0, 0), chain_planned=(0, 0),
                            planned_mapping="", mapping_today="", floor=0.0))
    return dict(case=name, what=what, model=model, batch=batch, entry=entry, n=n, target_us=target,
                source="--target cuda" if have_cuda else "--emit c", working_set=summ["ram_bytes"], flops=flops,
                nodes=len(nodes), kernels=sum(1 for k in nodes if k[0] == "launch"),
                gemms=sum(1 for k in nodes if k[0] == "gemm"), io_in=io_in, io_out=io_out,
                host_in=host_in, host_out=host_out, bytes=sum(p["bytes"] for p in per), per_node=per)


def predict(c, sc):
    """the times of a counted case under scenario sc, in microseconds"""
    t_call = (sc["launch"] + 2 * sc["copy"] + (c["io_in"] + c["io_out"]) / sc["pcie"]
              + (c["host_in"] + c["host_out"]) / sc["host"] + sc["wait"])
    t_nodes = c["nodes"] * sc["node"]
    bw = sc["bw"] if c["working_set"] <= L2_BYTES else HBM_BW
    t_bytes = sum(p["bytes"] for p in c["per_node"]) / bw
    t_flops = c["flops"] / FP32_FLOPS
    res = dict(call=t_call, launches=t_nodes, bytes=t_bytes, flops=t_flops)
    for way in ("today", "planned"):
        work = sum(max(p["bytes"] / bw, p["flops"] / FP32_FLOPS, chain_s(p["chain_" + way], sc),
                       p["floor"] * sc["gemm"]) for p in c["per_node"])
        res["chain_" + way] = sum(chain_s(p["chain_" + way], sc) for p in c["per_node"])
        res["work_" + way] = work
        res[way] = t_call + t_nodes + work
        terms = {"launches": t_nodes, "call": t_call, "chains": res["chain_" + way],
                 "bytes": t_bytes, "FLOPs": t_flops}
        res["dominant_" + way] = max(terms, key=terms.get)
    return {k: v * 1e6 for k, v in res.items() if not k.startswith("dominant")} | \
        {k: v for k, v in res.items() if k.startswith("dominant")}


def model_all(nnc):
    with tempfile.TemporaryDirectory(prefix="nnc-perf-") as tmp:
        counted = [count_case(nnc, case, tmp) for case in CASES]
    for c in counted:
        c["us"] = {s: predict(c, sc) for s, sc in SCENARIOS.items()}
    w5 = next(c for c in counted if c["case"] == "W5.train")
    epoch = {}
    for s, sc in SCENARIOS.items():
        gather = w5["host_in"] / sc["host"] * 1e6  # the shuffled batch gathered on the host before each step
        epoch[s] = {way: (w5["us"][s][way] + gather) * EPOCH_STEPS / 1e6 for way in ("today", "planned")}
    return counted, dict(case="W5.epoch", steps=EPOCH_STEPS, target_s=EPOCH_TARGET_S, s=epoch)


# ---- output ----
def f(x):
    return f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def verdict(lo, mid, hi, target):
    if target is None:
        return ""
    if hi <= target:
        return "yes"
    if lo > target:
        return "no"
    return "yes (central)" if mid <= target else "no (central)"


def table(counted, epoch, md):
    """the table; the planned columns only where some case's plan differs from today's kernels"""
    ways = ("today", "planned")
    if all(abs(c["us"][s]["today"] - c["us"][s]["planned"]) < 0.05 for c in counted for s in SCENARIOS):
        ways = ("today",)
    names = {"today": "today: " if len(ways) > 1 else "", "planned": "planned: "}
    hdr = ["case", "n", "nodes", "cuBLAS", "launches µs", "MB moved", "bytes µs", "MFLOP", "FLOPs µs", "call µs"]
    for w in ways:
        hdr += [f"{names[w]}chains µs", f"{names[w]}predicted µs (low–high)"]
    hdr += ["target", "met " + " / ".join(ways)]
    rows = []
    for c in counted:
        u, lo, hi = c["us"]["central"], c["us"]["low"], c["us"]["high"]
        tgt = f"≤ {c['target_us']:.0f} µs" if c["target_us"] else ""
        row = [c["case"], str(c["n"]), str(c["nodes"]), str(c["gemms"]), f(u["launches"]),
               f"{c['bytes'] / 1e6:.2f}", f(u["bytes"]), f"{c['flops'] / 1e6:.1f}", f"{u['flops']:.2f}", f(u["call"])]
        for w in ways:
            row += [f(u["chain_" + w]), f"{f(u[w])} ({f(lo[w])}–{f(hi[w])})"]
        row += [tgt, " / ".join(verdict(lo[w], u[w], hi[w], c["target_us"]) for w in ways) if c["target_us"] else ""]
        rows.append(row)
    e = epoch["s"]
    row = ["W5.epoch", f"{EPOCH_STEPS}×32"] + [""] * 8
    for w in ways:
        row += ["", f"{e['central'][w]:.3f} s ({e['low'][w]:.3f}–{e['high'][w]:.3f})"]
    row += ["≤ 0.5 s", " / ".join(verdict(e["low"][w], e["central"][w], e["high"][w], EPOCH_TARGET_S) for w in ways)]
    rows.append(row)
    if md:
        out = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(hdr)]
    return "\n".join("  ".join(x.ljust(w[i]) for i, x in enumerate(r)) for r in [hdr] + rows)


def kernel_table(c):
    sc = SCENARIOS["central"]
    bw = sc["bw"] if c["working_set"] <= L2_BYTES else HBM_BW
    out = [f"{c['case']} ({c['what']}; counted from {c['source']}): {c['nodes']} nodes, {c['kernels']} of them "
           f"kernels, {c['gemms']} cuBLAS; central scenario, µs per node without its latency (work: the max of "
           f"bytes, FLOPs, today's chain and cuBLAS's least); the call copies {c['io_in']:,} B in, "
           f"{c['io_out']:,} B out",
           f"{'node':30} {'outputs':>8} {'reduce':>7} {'KB':>8} {'bytes µs':>9} {'MFLOP':>7} "
           f"{'today':>13} {'chain µs':>9} {'work µs':>8} {'planned':>13} {'chain µs':>9}"]
    for p in c["per_node"]:
        if p["node"] == "(copy)":
            out.append(f"{'(copy)':30}")
            continue
        work = max(p["bytes"] / bw, p["flops"] / FP32_FLOPS, chain_s(p["chain_today"], sc), p["floor"] * sc["gemm"])
        out.append(f"{p['node']:30} {p['outputs']:>8} {p['r']:>7} {p['bytes'] / 1e3:>8.1f} "
                   f"{p['bytes'] / bw * 1e6:>9.3f} {p['flops'] / 1e6:>7.2f} {p['mapping_today']:>13} "
                   f"{chain_s(p['chain_today'], sc) * 1e6:>9.2f} {work * 1e6:>8.2f} {p['planned_mapping']:>13} "
                   f"{chain_s(p['chain_planned'], sc) * 1e6:>9.2f}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nnc", help="the nnc binary (default: $NNC, nnc on PATH, build/nnc)")
    ap.add_argument("--json", action="store_true", help="print the model as JSON")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--kernels", metavar="CASE", help="print every node of CASE (W5.train, ...)")
    a = ap.parse_args()
    counted, epoch = model_all(find_nnc(a.nnc))
    if a.json:
        json.dump({"device": "H100 SXM (datasheet model)", "scenarios": SCENARIOS, "cases": counted,
                   "epoch": epoch}, sys.stdout, indent=1)
        print()
    elif a.kernels:
        c = next((c for c in counted if c["case"] == a.kernels), None)
        if not c:
            die(f"no case {a.kernels}; cases: {', '.join(x[0] for x in CASES)}")
        print(kernel_table(c))
    else:
        print(table(counted, epoch, a.markdown))
        print(f"\ncounted from nnc {counted[0]['source']}; central scenario in the table, low–high beside it")


if __name__ == "__main__":
    main()
