"""The worker side of the benchmark protocol for the Python peers (the C side is bench/worker.h).

A peer module defines `SYSTEMS` (the variants it runs, e.g. {"torch-eager": ..., "torch-compile": ...}) and a
function `make_case(system, name, data)` that returns a `Case` for a case name it implements, or None. The
driver starts `python peers/X.py --system S --data DIR --cases A,B,...`; `serve` builds every case, times its
first call (tracing/compiling happens there), warms it up, announces itself, then answers `run NAME MIN_S`
with one sample (cases named by --defer, the epochs, are left for the driver: its first sample is the warm-up): a group of back-to-back calls lasting at least MIN_S, reported as µs per unit of work.

Threads: everything is pinned to one thread before any framework is imported (see `single_thread_env`).
"""
import json
import os
import sys
import time


def single_thread_env():
    """Environment for one thread everywhere; the driver sets these too, this is the belt to its braces."""
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TORCHINDUCTOR_COMPILE_THREADS"):
        os.environ.setdefault(k, "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


class Case:
    """One thing to time. `call()` does one unit of work (or `units` units: a Keras fit() call over many steps
    reports per step); `sync()` (JAX) waits for asynchronous work at the end of a group; `reset()` runs before
    each sample, untimed."""

    def __init__(self, call, units=1, sync=None, reset=None, note=None):
        self.call, self.units, self.sync, self.reset, self.note = call, units, sync, reset, note
        self.first_call_s = None

    def run_once(self):
        self.call()
        if self.sync:
            self.sync()

    def sample(self, min_s):
        if self.reset:
            self.reset()
        k = 0
        t0 = time.perf_counter()
        while True:
            self.call()
            k += 1
            if self.sync:
                self.sync()
            t = time.perf_counter()
            if t - t0 >= min_s:
                break
        return (t - t0) / k / self.units * 1e6, k


def load(data_dir, name):
    import numpy as np
    return np.load(os.path.join(data_dir, name + ".npy"))


def serve(module_systems, make_case, info=None):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", required=True, choices=sorted(module_systems))
    ap.add_argument("--data", required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--warm", type=float, default=0.3)
    ap.add_argument("--defer", default="", help="cases not run at set-up: the driver's first sample warms them")
    a = ap.parse_args()
    # the protocol owns the real stdout; anything a library prints goes to stderr
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    cases, announced, skipped = {}, {}, []
    for name in a.cases.split(","):
        t0 = time.perf_counter()
        c = make_case(a.system, name, a.data)
        if c is None:
            skipped.append(name)
            continue
        build_s = time.perf_counter() - t0
        cases[name] = c
        if name in a.defer.split(","):
            announced[name] = {"first_call_s": None, "deferred": True, "build_s": build_s, "units": c.units}
            continue
        t0 = time.perf_counter()
        c.run_once()
        c.first_call_s = time.perf_counter() - t0
        end = time.perf_counter() + a.warm
        n = 0
        while n < 3 or time.perf_counter() < end:  # warm-up: >= 3 more calls and >= `warm` seconds
            c.run_once()
            n += 1
        announced[name] = {"first_call_s": c.first_call_s, "build_s": build_s, "units": c.units}
        if c.note:
            announced[name]["note"] = c.note
        print(f"[{a.system}] {name}: first call {c.first_call_s:.3f} s", file=sys.stderr, flush=True)
    msg = {"ready": True, "system": a.system, "info": info() if info else {}, "cases": announced,
           "skipped": skipped}
    proto.write(json.dumps(msg) + "\n")
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        if parts[0] != "run" or len(parts) != 3 or parts[1] not in cases:
            proto.write(json.dumps({"error": "bad command", "line": line.strip()}) + "\n")
            continue
        us, k = cases[parts[1]].sample(float(parts[2]))
        proto.write(json.dumps({"case": parts[1], "us": us, "calls": k}) + "\n")
