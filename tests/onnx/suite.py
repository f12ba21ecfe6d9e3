#!/usr/bin/env python3
"""suite.py: run ONNX backend test cases (ONNX's own test data, or ours in its layout) through `nnc predict`.

    python3 tests/onnx/suite.py --nnc NNC --pb2npy PB2NPY --npycmp NPYCMP [options] DIR [DIR...]

Each DIR holds cases test_*/ as ONNX lays them out: model.onnx and test_data_set_*/input_K.pb,
output_K.pb (serialized TensorProtos named as the graph's inputs and outputs). For each case:
  1. every .pb becomes a .npy with pb2npy, which prints the tensor's name (a .pb without one, as in
     ONNX's pytorch-* data, is the K-th graph input that is not an initializer, or the K-th output);
  2. not applicable: a graph input of rank 0, no input at all, or inputs whose first extents differ
     (nnc's axis 0 is the batch: every input must have one, the same in all), decided from the .pb
     shapes before nnc runs. With --freeze, the inputs whose first extent is not the first input's (ONNX's
     node tests give weights as inputs: Conv's W, BatchNormalization's scale, a broadcast operand) are
     appended to a copy of the model as initializers with their test values, and the case runs with the
     rest; when the import refuses that, it is tried once more with every input but the first frozen.
     Only a case with no input or a first input of rank 0 is then not applicable;
  3. `nnc import model.onnx`: exit 1 is unsupported (an unsupported node, or a model the import refuses),
     also when pb2npy could not read the data (a sequence or optional, not a tensor);
  4. `nnc predict model.onnx --data NAME=input.npy ... -o NAME=got.npy ...` per data set, and npycmp
     (rtol 1e-4, atol 1e-5; integer outputs equal) of every output against the reference.
A case fails when a number is wrong, an output is missing, nnc crashes or exits with anything but 0 and 1,
predict exits 1 on a model that imported, or it runs past --timeout, or the model imports but pb2npy cannot
read its data; unsupported when the import exits 1, or it does not and a tensor's data type has no .npy
form (strings, complex).
Prints one line per DIR, `NAME: N passed, M failed, K unsupported, J not applicable` (with --freeze, a
second line: how many of those ran with frozen inputs), then each failing case with the first line of its
reason. Cases named in --known-failures (lines `DIR/test_NAME  # reason`,
default tests/onnx/known_failures.txt) are counted as failed but do not fail the run; one that no longer
fails does (remove it from the list).
Exit 0 when no case failed, 1 when one did or a DIR has no case (that --filter matches), 2 on bad usage, 77 when there is nothing to run (nnc built
without ONNX: --no-onnx; or no DIR exists).
What it does not do: judge which side is wrong, or run cases whose inputs nnc cannot treat as a batch.
"""
import argparse
import ast
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

PASSED, FAILED, UNSUPPORTED, NOT_APPLICABLE = "passed", "failed", "unsupported", "not applicable"
KINDS = (PASSED, FAILED, UNSUPPORTED, NOT_APPLICABLE)
PB2NPY_NO_FORM = 3  # pb2npy's exit code for a tensor with no .npy form
MODEL_GRAPH, GRAPH_INITIALIZER, TENSOR_NAME = 7, 5, 8  # field numbers in onnx.proto: ModelProto.graph,
# GraphProto.initializer, TensorProto.name


def proto_field(number, payload):
    """a length-delimited protobuf field. A message field that appears twice is merged, and repeated fields
    append: a ModelProto followed by graph { initializer: T } is the model with one more initializer."""
    def varint(n):
        out = bytearray()
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def read_varint(data, i):
    n, shift = 0, 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("a malformed protobuf varint")
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return n, i


def wire_fields(data):
    """(field number, payload) of each length-delimited field at the top level of a protobuf message"""
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        wire = key & 7
        if wire == 0:
            _, i = read_varint(data, i)
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        elif wire == 2:
            n, i = read_varint(data, i)
            if i + n > len(data):
                raise ValueError("a truncated protobuf field")
            yield key >> 3, data[i:i + n]
            i += n
        else:
            raise ValueError(f"protobuf wire type {wire}")


def string_field(message, number):
    return next((v.decode("utf-8", "replace") for n, v in wire_fields(message) if n == number), "")


def graph_io_names(model_path):
    """([graph inputs that are not initializers], [graph outputs]) by name, read from model.onnx's wire format
    (ModelProto.graph = 7; GraphProto.initializer = 5, input = 11, output = 12; ValueInfoProto.name = 1;
    TensorProto.name = 8). ONNX's runner feeds input_K.pb to the K-th of those inputs, whatever the .pb's name."""
    with open(model_path, "rb") as f:
        graph = b"".join(v for n, v in wire_fields(f.read()) if n == MODEL_GRAPH)  # repeated fields: merged
    fields = list(wire_fields(graph))
    initializers = {string_field(v, 8) for n, v in fields if n == GRAPH_INITIALIZER}
    inputs = [string_field(v, 1) for n, v in fields if n == 11]
    return [i for i in inputs if i not in initializers], [string_field(v, 1) for n, v in fields if n == 12]


def npy_shape(path):
    """the shape in a .npy header (pb2npy writes versions 1.0 and 2.0)"""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:6] != b"\x93NUMPY":
            raise ValueError(f"{path}: not a .npy file")
        if head[6] == 1:
            n, start = int.from_bytes(head[8:10], "little"), 10
        else:
            n, start = int.from_bytes(head[8:12], "little"), 12
        f.seek(start)
        header = ast.literal_eval(f.read(n).decode("latin1"))
    return tuple(header["shape"])


def first_line(text):
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "(no message)"


def numbered(paths, prefix):
    """input_K.pb / output_K.pb sorted by K"""
    found = []
    for p in paths:
        m = re.fullmatch(prefix + r"_(\d+)\.pb", os.path.basename(p))
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


class Case:
    def __init__(self, tools, directory, tmp):
        self.tools, self.dir, self.tmp = tools, directory, tmp

    def run_tool(self, argv, timeout=None):
        """CompletedProcess; on a timeout the whole process group (nnc and any compiler it started) is killed"""
        p = subprocess.Popen(argv, cwd=self.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             errors="replace", start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise
        return subprocess.CompletedProcess(argv, p.returncode, out, err)

    def message(self, stderr):
        """nnc's first error line, with the case's paths shortened"""
        line = first_line(stderr).replace(self.dir + "/", "").replace(self.tmp + "/", "")
        return re.sub(r"\bmodel_set\d+\.onnx\b", "model.onnx", line)  # a frozen copy is still the case's model

    def convert(self, pb, npy):
        """(name, None) or (None, (kind, reason))"""
        r = self.run_tool([self.tools.pb2npy, pb, npy])
        if r.returncode == 0:
            return r.stdout.rstrip("\n"), None
        kind = UNSUPPORTED if r.returncode == PB2NPY_NO_FORM else FAILED
        return None, (kind, f"pb2npy {os.path.relpath(pb, self.dir)}: {first_line(r.stderr)}")

    def load_set(self, set_dir, k):
        """the data set's inputs and outputs as [(name, npy, pb)] lists, or an outcome"""
        entries = sorted(os.listdir(set_dir))
        got = {}
        for kind in ("input", "output"):
            got[kind] = []
            for pb in numbered([os.path.join(set_dir, e) for e in entries], kind):
                npy = os.path.join(self.tmp, f"set{k}_{os.path.basename(pb)[:-3]}.npy")
                name, outcome = self.convert(pb, npy)
                if outcome:
                    return None, None, outcome
                got[kind].append((name, npy, pb))
        if not got["output"]:
            return None, None, (FAILED, f"{os.path.basename(set_dir)}: no output_K.pb")
        if any(not name for kind in got for name, _, _ in got[kind]):
            problem = self.name_by_position(got)
            if problem:
                return None, None, (FAILED, problem)
        return got["input"], got["output"], None

    def name_by_position(self, got):
        """.pb files with no name (ONNX's pytorch-* data) are the graph's K-th input or output"""
        names = dict(zip(("input", "output"), graph_io_names(os.path.join(self.dir, "model.onnx"))))
        for kind in got:
            if len(got[kind]) > len(names[kind]):
                return f"{len(got[kind])} {kind} .pb files for {len(names[kind])} graph {kind}s"
            got[kind] = [(name or names[kind][k], npy, pb) for k, (name, npy, pb) in enumerate(got[kind])]
        return None

    def plan(self, inputs):
        """(names of the inputs to freeze, None) or (None, why the case is not applicable)"""
        if not inputs:
            return None, "no graph input to carry a batch"
        shapes = [(name, npy_shape(npy)) for name, npy, _ in inputs]
        first = shapes[0][1]
        off = {name for name, shape in shapes if not shape or shape[0] != first[0]} if first else None
        if not off:
            return (set(), None) if off is not None else (None, f"input '{shapes[0][0]}' has rank 0")
        if self.tools.freeze:
            return off, None
        for name, shape in shapes:
            if not shape:
                return None, f"input '{name}' has rank 0"
        return None, "inputs differ in their first extent: " + ", ".join(f"{n} {list(s)}" for n, s in shapes)

    def freeze(self, k, inputs, frozen):
        """model.onnx with the frozen inputs' tensors appended as initializers, and the inputs left as data"""
        if not frozen:
            return os.path.join(self.dir, "model.onnx"), inputs
        with open(os.path.join(self.dir, "model.onnx"), "rb") as f:
            model = f.read()
        tensors = b""
        for name, _, pb in inputs:
            if name in frozen:
                with open(pb, "rb") as f:  # named as the input it replaces (ONNX's pytorch-* .pb have no name)
                    tensors += proto_field(GRAPH_INITIALIZER, f.read() + proto_field(TENSOR_NAME, name.encode()))
        path = os.path.join(self.tmp, f"model_set{k}.onnx")
        with open(path, "wb") as f:
            f.write(model + proto_field(MODEL_GRAPH, tensors))
        return path, [i for i in inputs if i[0] not in frozen]

    def nnc(self, args):
        """nnc's CompletedProcess, or an outcome when it crashed, timed out or exited with neither 0 nor 1"""
        try:
            r = self.run_tool([self.tools.nnc] + args, timeout=self.tools.timeout)
        except subprocess.TimeoutExpired:
            return None, (FAILED, f"nnc {args[0]}: timed out after {self.tools.timeout} s")
        if r.returncode not in (0, 1):
            how = f"killed by signal {-r.returncode}" if r.returncode < 0 else f"exit {r.returncode}"
            return None, (FAILED, f"nnc {args[0]} {how}: {self.message(r.stderr)}")
        return r, None

    def predict(self, k, model, inputs, outputs):
        args = ["predict", model]
        for name, npy, _ in inputs:
            args += ["--data", f"{name}={npy}"]
        got = []
        for j, (name, _, _) in enumerate(outputs):
            path = os.path.join(self.tmp, f"set{k}_got_{j}.npy")
            args += ["-o", f"{name}={path}"]
            got.append(path)
        r, outcome = self.nnc(args)
        if outcome:
            return outcome
        if r.returncode == 1:
            return FAILED, f"nnc predict exit 1 after the import succeeded: {self.message(r.stderr)}"
        for path, (name, want, _) in zip(got, outputs):
            if not os.path.exists(path):
                return FAILED, f"output '{name}' was not written"
            c = self.run_tool([self.tools.npycmp, path, want])
            if c.returncode != 0:
                return FAILED, f"output '{name}': {first_line(c.stdout + c.stderr).replace(path + ': ', '')}"
        return None

    def import_(self, model):
        """None when nnc imports the model, else an outcome (unsupported for exit 1)"""
        r, outcome = self.nnc(["import", model, "-o", os.path.join(self.tmp, "model.nn")])
        if outcome or r.returncode == 0:
            return outcome
        return UNSUPPORTED, self.message(r.stderr)

    def run(self):
        """(kind, reason, whether inputs were frozen)"""
        sets = sorted(e for e in os.listdir(self.dir) if e.startswith("test_data_set_"))
        if not os.path.exists(os.path.join(self.dir, "model.onnx")) or not sets:
            return FAILED, "no model.onnx or no test_data_set_*", False
        loaded, data_problem, frozen = [], None, set()
        for k, s in enumerate(sets):
            inputs, outputs, data_problem = self.load_set(os.path.join(self.dir, s), k)
            if data_problem:
                break
            off, why = self.plan(inputs)
            if why:
                return NOT_APPLICABLE, why, False
            frozen |= off
            loaded.append((inputs, outputs))
        # data pb2npy cannot read (a sequence, a string) is judged after the import: nnc refusing the model
        # is the case's outcome; nnc accepting a model whose data no test can feed is not a pass
        if data_problem:
            outcome = self.import_(os.path.join(self.dir, "model.onnx"))
            return outcome + (False,) if outcome else data_problem + (False,)
        outcome = self.import_(self.freeze(0, loaded[0][0], frozen)[0])
        if outcome and outcome[0] == UNSUPPORTED and self.tools.freeze and len(loaded[0][0]) - len(frozen) > 1:
            # weights given as inputs of the batch's extent (Conv's W of [1, 1, 3, 3] beside x of [1, 1, 5, 5])
            # (kept only when nnc imports it: otherwise the case is reported as given)
            all_but_first = {name for name, _, _ in loaded[0][0][1:]}
            if not self.import_(self.freeze(0, loaded[0][0], all_but_first)[0]):
                frozen, outcome = all_but_first, None
        if outcome:
            return outcome + (bool(frozen),)
        for k, (inputs, outputs) in enumerate(loaded):
            model, data = self.freeze(k, inputs, frozen)
            outcome = self.predict(k, model, data, outputs)
            if outcome:
                return outcome[0], f"{sets[k]}: {outcome[1]}" if len(sets) > 1 else outcome[1], bool(frozen)
        return PASSED, "", bool(frozen)


def run_case(tools, directory):
    tmp = tempfile.mkdtemp(prefix="nnc_onnx_")
    try:
        return Case(tools, directory, tmp).run()
    except (OSError, ValueError, SyntaxError, IndexError) as e:
        return FAILED, f"harness: {e}", False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_known_failures(path):
    known = {}
    if not path or not os.path.exists(path):
        return known
    with open(path, encoding="utf-8") as f:
        for line in f:
            case, _, reason = line.partition("#")
            if case.strip():
                known[case.strip()] = reason.strip()
    return known


def print_top_reasons(label, reasons):
    """the unsupported cases' reasons by count, node names left out: what to implement first"""
    counts = {}
    for r in reasons:
        r = re.sub(r"node '[^']*' ", "", r.replace("nnc: error: model.onnx: ", ""))
        counts[r] = counts.get(r, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if top:
        print(f"  {label}, unsupported by reason:")
    for r, n in top:
        print(f"    {n:4d}  {r}")


def run_dir(directory, args, known, pool):
    label = os.path.basename(os.path.normpath(directory))
    cases = sorted(e for e in os.listdir(directory) if e.startswith("test_") and os.path.isdir(os.path.join(directory, e)))
    if args.filter:
        cases = [c for c in cases if re.search(args.filter, c)]
    futures = [pool.submit(run_case, args, os.path.join(directory, c)) for c in cases]
    results = [(c, f.result()) for c, f in zip(cases, futures)]
    counts = {k: 0 for k in KINDS}
    unexpected, lines, frozen = 0, [], 0
    for case, (kind, reason, was_frozen) in results:
        counts[kind] += 1
        frozen += was_frozen
        reason = f"{reason} (inputs frozen)" if was_frozen and reason else reason
        key = f"{label}/{case}"
        if key in known and kind != FAILED:
            unexpected += 1
            lines.append(f"  FAIL {key}: listed in known_failures.txt but {kind} now; remove it from the list")
        elif kind == FAILED and key in known:
            lines.append(f"  known failure {key}: {reason}")
        elif kind == FAILED:
            unexpected += 1
            lines.append(f"  FAIL {key}: {reason}")
        elif kind == UNSUPPORTED and args.list_unsupported:
            lines.append(f"  unsupported {key}: {reason}")
        elif kind == NOT_APPLICABLE and args.list_not_applicable:
            lines.append(f"  not applicable {key}: {reason}")
    if not cases:  # a suite that runs nothing must not pass (a renamed case, a --filter that matches none)
        unexpected += 1
        lines.append(f"  FAIL {label}: no case test_* {'matches --filter' if args.filter else 'in ' + directory}")
    print(f"{label}: {counts[PASSED]} passed, {counts[FAILED]} failed, {counts[UNSUPPORTED]} unsupported, "
          f"{counts[NOT_APPLICABLE]} not applicable")
    if args.freeze:
        print(f"  ({frozen} of them with inputs frozen as initializers)")
    for line in lines:
        print(line)
    if args.list_unsupported:
        print_top_reasons(label, [reason for _, (kind, reason, _) in results if kind == UNSUPPORTED])
    sys.stdout.flush()
    counts["frozen"] = frozen
    return label, counts, unexpected


def docs_row(label, counts):
    return (f"| {label} | {counts[PASSED]} | {counts[FAILED]} | {counts[UNSUPPORTED]} | {counts[NOT_APPLICABLE]} | "
            f"{counts['frozen']} |")


def check_docs(path, totals, write):
    """the counts table of docs/onnx.md (rows `| DIR | passed | failed | unsupported | not applicable | frozen |`)
    against this run: each directory run has its row, with these numbers (--write-docs rewrites them)"""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    problems = []
    for label, counts in totals.items():
        want = docs_row(label, counts)
        rows = [k for k, line in enumerate(lines) if line.startswith(f"| {label} |")]
        if not rows:
            problems.append(f"{path} has no row for {label}: add `{want}` to its table of counts")
        elif lines[rows[0]] != want:
            if write:
                lines[rows[0]] = want
            else:
                problems.append(f"{path} says `{lines[rows[0]]}`, this run counts `{want}` "
                                f"(tests/onnx/suite.py --write-docs {path} ... updates it)")
    if write:
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    for p in problems:
        print(f"  FAIL {p}")
    return len(problems)


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description="Run ONNX backend test cases through nnc predict.")
    p.add_argument("--nnc", required=True)
    p.add_argument("--pb2npy", help="tests/onnx/pb2npy (not needed with --no-onnx)")
    p.add_argument("--npycmp", help="tests/tools/npycmp (not needed with --no-onnx)")
    p.add_argument("--jobs", type=int, default=2, help="cases run in parallel (default 2)")
    p.add_argument("--filter", help="only cases whose name matches this regular expression")
    p.add_argument("--list-unsupported", action="store_true", help="print each unsupported case with nnc's first error line")
    p.add_argument("--list-not-applicable", action="store_true", help="print each not applicable case with the reason")
    p.add_argument("--json", help="write the counts per directory to this file")
    p.add_argument("--timeout", type=float, default=60, help="seconds per nnc run (default 60)")
    p.add_argument("--freeze", action="store_true",
                   help="inputs whose first extent is not the first input's become initializers instead of not applicable")
    p.add_argument("--known-failures", default=os.path.join(here, "known_failures.txt"))
    p.add_argument("--no-onnx", action="store_true", help="nnc was built without ONNX: skip (exit 77)")
    p.add_argument("--docs", help="fail unless this file's table of counts has these directories' numbers")
    p.add_argument("--write-docs", help="rewrite the rows of this file's table of counts for the directories run")
    p.add_argument("dirs", nargs="+", metavar="DIR")
    args = p.parse_args()
    for tool in ("nnc", "pb2npy", "npycmp"):  # the cases run in temporary directories
        if getattr(args, tool):
            setattr(args, tool, os.path.abspath(getattr(args, tool)))
    if not args.no_onnx and (not args.pb2npy or not args.npycmp):
        p.error("--pb2npy and --npycmp are required")
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    return args


def main():
    args = parse_args()
    if args.no_onnx:
        print("skipped: nnc was built without ONNX import (NNC_HAVE_ONNX 0)")
        return 77
    dirs = [os.path.abspath(d) for d in args.dirs if os.path.isdir(d)]
    for d in args.dirs:
        if not os.path.isdir(d):
            print(f"{d}: no such directory; skipped")
    if not dirs:
        print("skipped: none of the data directories exists (Debian's libonnx-testdata installs /usr/share/libonnx-testdata)")
        return 77
    known = read_known_failures(args.known_failures)
    totals, failed = {}, 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for d in dirs:
            label, counts, unexpected = run_dir(d, args, known, pool)
            totals[label] = counts
            failed += unexpected
    if (args.docs or args.write_docs) and not args.filter:
        failed += check_docs(args.write_docs or args.docs, totals, bool(args.write_docs))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({k: {kind.replace(" ", "_"): n for kind, n in v.items()} for k, v in totals.items()}, f, indent=1, sort_keys=True)
            f.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
