"""The benchmark driver: builds the C workers, starts every system as a long-lived worker process, collects
timing samples alternating between systems, and writes the results JSON (then report.py writes markdown).

Run through bench/run.sh (which makes the virtual environment and builds nnc); directly:
  bench/.venv/bin/python bench/driver.py --nnc PATH/TO/nnc [--quick] [--systems a,b] [W2 W5 ...]

How a number is made: every system runs in its own process (one per compiled model for the C systems), set
up and warmed up once (the first call, where tracing and compiling happen, is timed and reported apart). Then
for each of R rounds, for each case, every system in turn (the order rotating from round to round) is asked
for one sample: a group of back-to-back calls lasting at least MIN_S (one call for epochs and whole-data-set
predictions), reported as time per call. The table shows the median of the R samples. The Fashion-MNIST epoch
is not run at set-up: its first round is a warm-up epoch (reported as the first call), then E more rounds.
"""
import argparse
import datetime
import json
import os
import platform
import select
import shutil
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(BENCH, "peers"))
import workloads as W  # noqa: E402

WORKLOADS = ["W1", "W2", "W3", "W3b", "W4", "W5"]

# case -> (nnc model file, compiled batch, nnc_timer kind, data (x, y) for the case, output elements per sample)
NNC_CASES = {
    "W1.sgd.train": ("w1_sgd", 100_000, "train:100000", ("w1_x", "w1_y"), 1),
    "W1.adam.train": ("w1_adam", 100_000, "train:100000", ("w1_x", "w1_y"), 1),
    "W2.full.train": ("w2", 1000, "train:1000", ("w2_x", "w2_y"), 1),
    "W2.b32.train": ("w2", 32, "train:32", ("w2_x", "w2_y"), 1),
    "W2.predict1": ("w2", 32, "predict:1", ("w2_x", "w2_y"), 1),
    "W3.train": ("w3", 1000, "train:1000", ("w3_x", "w3_y"), 10),
    "W3b.train": ("w3b", 1000, "train:1000", ("w3_x", "w3_y"), 10),
    "W4.train": ("w4", 32, "train:32", ("w4_x", "w4_y"), 1),
    "W4.fit": ("w4", 32, "epoch", ("w4_x", "w4_y"), 1),
    "W4.predict": ("w4", 32, "predict_all", ("w4_x", "w4_y"), 1),
    "W5.train": ("w5", 32, "train:32", ("fmnist_train_x", "fmnist_train_y"), 10),
    "W5.epoch": ("w5", 32, "epoch", ("fmnist_train_x", "fmnist_train_y"), 10),
    "W5.predict": ("w5", 32, "predict_all", ("fmnist_test_x", "fmnist_test_y"), 10),
    "W5.predict1": ("w5", 32, "predict:1", ("fmnist_train_x", "fmnist_train_y"), 10),
}
# rows behind the whole-data-set cases (for FLOPs)
ROWS = {"W4.fit": 1000, "W4.predict": 1000, "W5.epoch": 60000, "W5.predict": 10000}
HANDWRITTEN = {"w1": ["W1.sgd.train", "W1.adam.train"], "w2": ["W2.b32.train", "W2.full.train", "W2.predict1"],
               "w4": ["W4.train"]}
PEERS = {  # system -> peer file
    "torch-eager": "torch_peer.py", "torch-compile": "torch_peer.py", "keras": "keras_peer.py",
    "keras-xla": "keras_peer.py", "tf-function": "tf_peer.py", "jax": "jax_peer.py", "numpy": "numpy_peer.py",
}
SYSTEMS = ["nnc", "nnc-haswell", "handwritten"] + list(PEERS)
LONG = {"W4.fit", "W5.epoch", "W4.predict", "W5.predict"}  # one call per sample
EPOCH = {"W5.epoch"}  # its own repetition count (it is the slow one)


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    log("$", " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def case_workload(case):
    return case.split(".")[0]


class Worker:
    def __init__(self, system, label, cmd, env, logdir, pin):
        self.system, self.label = system, label
        if pin is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", str(pin)] + cmd
        self.log = open(os.path.join(logdir, f"{label}.log"), "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     env=env, text=True, bufsize=1)
        self.ready = None
        self.error = None

    def read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise TimeoutError(f"{self.label}: no answer in {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.label}: exited (code {self.proc.poll()}); see its log")
        return json.loads(line)

    def wait_ready(self, timeout):
        try:
            self.ready = self.read(timeout)
        except Exception as e:  # noqa: BLE001
            self.error = str(e)
            log("FAILED", self.error)
            self.close()
        return self.ready

    def sample(self, case, min_s, timeout=900):
        self.proc.stdin.write(f"run {case} {min_s}\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.proc.kill()
        self.log.close()


def machine():
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    keep = ("Architecture", "Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "L1d cache",
            "L2 cache", "L3 cache", "Hypervisor vendor", "CPU max MHz", "BogoMIPS")
    d = {}
    for line in out.splitlines():
        k, _, v = line.partition(":")
        if k.strip() in keep:
            d[k.strip()] = v.strip()
    flags = next((ln.split(":", 1)[1].split() for ln in out.splitlines() if ln.startswith("Flags")), [])
    d["simd"] = " ".join(f for f in ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags)
    d["kernel"] = platform.release()
    d["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="*", help=f"subset of {' '.join(WORKLOADS)} (default: all)")
    ap.add_argument("--nnc", default=os.environ.get("NNC", os.path.join(BENCH, ".build", "nnc-build", "nnc")))
    ap.add_argument("--quick", action="store_true", help="3 rounds, shorter samples, one epoch")
    ap.add_argument("--rounds", type=int, help="samples per case and system (default 7, quick 3)")
    ap.add_argument("--epoch-rounds", type=int, help="samples of the Fashion-MNIST epoch for the C systems "
                    "(default 5, quick 1), after one warm-up epoch")
    ap.add_argument("--peer-epoch-rounds", type=int, help="the same for the Python peers (default 2, quick 1): "
                    "their epochs take 30-90 s each")
    ap.add_argument("--min-sample", type=float, help="seconds per sample group (default 0.2, quick 0.05)")
    ap.add_argument("--systems", help=f"comma-separated subset of {','.join(SYSTEMS)}")
    ap.add_argument("--cases", help="comma-separated case names (e.g. W2.b32.train), after the workload filter")
    ap.add_argument("--cpu", type=int, default=1, help="pin every worker to this CPU with taskset (-1: no pin)")
    ap.add_argument("--cc", default=os.environ.get("BENCH_CC") or ("clang" if shutil.which("clang") else "cc"))
    ap.add_argument("--cflags", default=os.environ.get("BENCH_CFLAGS",
                                                       "-std=c99 -O2 -march=native -ffp-contract=on -fno-math-errno"))
    ap.add_argument("--out", help="results JSON (default bench/results/DATE-TIME.json)")
    ap.add_argument("--report", help="markdown to write (default: bench/RESULTS.md for a full run, "
                                     "bench/results/DATE-TIME.md otherwise)")
    a = ap.parse_args()
    rounds = a.rounds or (3 if a.quick else 7)
    epoch_rounds = a.epoch_rounds or (1 if a.quick else 5)
    peer_epoch_rounds = a.peer_epoch_rounds or (1 if a.quick else 2)
    min_s = a.min_sample if a.min_sample is not None else (0.05 if a.quick else 0.2)
    wls = a.workloads or WORKLOADS
    for w in wls:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}; choose from {' '.join(WORKLOADS)}")
    cases = [c for c in W.CASES if case_workload(c) in wls]
    if a.cases:
        cases = [c for c in cases if c in a.cases.split(",")]
    systems = a.systems.split(",") if a.systems else SYSTEMS
    for s in systems:
        if s not in SYSTEMS:
            ap.error(f"unknown system {s}; choose from {','.join(SYSTEMS)}")
    full = not a.workloads and not a.systems and not a.cases and not a.quick
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    out = a.out or os.path.join(BENCH, "results", stamp + ".json")
    report = a.report or (os.path.join(BENCH, "RESULTS.md") if full else os.path.join(BENCH, "results", stamp + ".md"))
    build = os.path.join(BENCH, ".build")
    gen, bins, logdir = (os.path.join(build, d) for d in ("gen", "bin", "logs/" + stamp))
    for d in (gen, bins, logdir):
        os.makedirs(d, exist_ok=True)
    data = os.path.join(BENCH, ".data")
    pin = None if a.cpu < 0 else a.cpu
    t_start = time.time()

    # ---- data, C builds, FLOP counts, peak ----
    import data as datamod
    datamod.main(data)
    cflags = a.cflags.split()
    cc = [a.cc] + cflags
    nnc_version = subprocess.run([a.nnc, "--version"], capture_output=True, text=True).stdout.strip()
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip()
    if git:
        nnc_version += f" (source {git})"
    flops = {}
    for m in sorted({NNC_CASES[c][0] for c in cases}):
        s = json.loads(subprocess.run([a.nnc, "summary", "--json", os.path.join(BENCH, "workloads", m + ".nn")],
                                      capture_output=True, text=True, check=True).stdout)
        flops[m] = {"forward": s["flops_forward"], "train": s["flops_train"], "params": s["params"]}
    case_flops = {}
    for c in cases:
        m, batch, kind, _, _ = NNC_CASES[c]
        wkind = W.CASES[c][1]
        n = ROWS.get(c, int(kind.split(":")[1]) if ":" in kind else batch)
        case_flops[c] = flops[m]["train" if wkind in ("train", "fit") else "forward"] * n
    timers = {}  # (model, batch) -> binary
    nnc_build = {}  # "model_bB" -> seconds of `nnc` and of the C compiler: nnc's ahead-of-time compile
    if {"nnc", "nnc-haswell"} & set(systems):
        for c in cases:
            m, batch = NNC_CASES[c][:2]
            if (m, batch) in timers:
                continue
            src = os.path.join(gen, f"{m}_b{batch}.c")
            t0 = time.perf_counter()
            sh([a.nnc, os.path.join(BENCH, "workloads", m + ".nn"), "--batch", str(batch), "-o", src, "--shim"])
            t1 = time.perf_counter()
            # the model alone, as a user's build compiles it (the timer is linked in a second step)
            sh(cc + ["-c", "-o", src[:-2] + ".o", src])
            t2 = time.perf_counter()
            exe = os.path.join(bins, f"nnc_{m}_b{batch}")
            sh(cc + [f"-DMAX_BATCH={batch}", "-o", exe, os.path.join(BENCH, "nnc_timer.c"), src[:-2] + ".o",
                     "-lopenblas", "-lm"])
            timers[(m, batch)] = exe
            nnc_build[f"{m}_b{batch}"] = {"nnc_s": round(t1 - t0, 4), "cc_s": round(t2 - t1, 4)}
    hand = {}
    if "handwritten" in systems:
        for f, cs in HANDWRITTEN.items():
            if set(cs) & set(cases):
                exe = os.path.join(bins, f"handwritten_{f}")
                sh(cc + ["-o", exe, os.path.join(BENCH, "handwritten", f + ".c"), "-lm"])
                hand[f] = exe
    peak_exe = os.path.join(bins, "peak")
    sh(cc + ["-o", peak_exe, os.path.join(BENCH, "peak.c"), "-lopenblas", "-lm"])

    base_env = dict(os.environ)
    coretype_in_env = base_env.pop("OPENBLAS_CORETYPE", None)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "NNC_THREADS",
              "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TORCHINDUCTOR_COMPILE_THREADS"):
        base_env[k] = "1"
    base_env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false --xla_force_host_platform_device_count=1"
    base_env["JAX_PLATFORMS"] = "cpu"
    base_env["KERAS_BACKEND"] = "tensorflow"
    base_env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    haswell_env = dict(base_env, OPENBLAS_CORETYPE="Haswell")

    def pinned(cmd):
        return (["taskset", "-c", str(pin)] + cmd) if pin is not None and shutil.which("taskset") else cmd

    peak = {}
    for label, env in (("default", base_env), ("OPENBLAS_CORETYPE=Haswell", haswell_env)):
        r = subprocess.run(pinned([peak_exe] + (["--quick"] if a.quick else [])), capture_output=True, text=True,
                           env=env, check=True)
        peak[label] = json.loads(r.stdout)
        log("peak", label, r.stdout.strip())

    # ---- workers ----
    workers = []  # all processes
    route = {}  # (system, case) -> Worker
    load_start = os.getloadavg()

    def start(system, label, cmd, env, cs):
        log("starting", label)
        wk = Worker(system, label, cmd, env, logdir, pin)
        t0 = time.time()
        r = wk.wait_ready(timeout=1800)
        workers.append(wk)
        if r:
            log(f"ready {label} in {time.time() - t0:.1f} s")
            for c in r["cases"]:
                route[(system, c)] = wk

    deferred = [c for c in cases if c in EPOCH]
    for system in systems:
        if system in ("nnc", "nnc-haswell"):
            env = base_env if system == "nnc" else haswell_env
            for (m, batch), exe in timers.items():
                args, cur = [exe, "--system", system, "--defer", ",".join(deferred) or ","], None
                cs = [c for c in cases if NNC_CASES[c][:2] == (m, batch)]
                for c in cs:
                    _, _, kind, (xn, yn), outk = NNC_CASES[c]
                    if cur != (xn, yn):
                        args += ["--x", os.path.join(data, xn + ".npy"), "--y", os.path.join(data, yn + ".npy")]
                        cur = (xn, yn)
                    args += ["--out", str(outk), "--case", f"{c}={kind}"]
                start(system, f"{system}_{m}_b{batch}", args, env, cs)
        elif system == "handwritten":
            for f, exe in hand.items():
                start(system, f"handwritten_{f}", [exe, data], base_env, HANDWRITTEN[f])
        else:
            mine = [c for c in cases]
            cmd = [sys.executable, os.path.join(BENCH, "peers", PEERS[system]), "--system", system, "--data", data,
                   "--cases", ",".join(mine), "--defer", ",".join(deferred)]
            start(system, system, cmd, base_env, mine)

    # ---- rounds ----
    samples = {c: {s: [] for s in systems} for c in cases}
    warmup = {}  # (case, system) -> the deferred case's first call, seconds

    def wanted(c, s, r):
        """does round r sample case c of system s? An epoch's round 0 is its warm-up."""
        if c not in EPOCH:
            return r < rounds
        return r <= (epoch_rounds if s in ("nnc", "nnc-haswell") else peer_epoch_rounds)

    errors = []
    total = max(rounds, 1 + max(epoch_rounds, peer_epoch_rounds) if deferred else 0)
    for r in range(total):
        log(f"round {r + 1}/{total}")
        for c in cases:
            order = systems[r % len(systems):] + systems[:r % len(systems)]
            for s in order:
                wk = route.get((s, c))
                if not wk or wk.error or not wanted(c, s, r):
                    continue
                try:
                    ans = wk.sample(c, 0 if c in LONG else min_s)
                    if "us" in ans and c in EPOCH and r == 0:
                        warmup[(c, s)] = ans["us"] * 1e-6
                    elif "us" in ans:
                        samples[c][s].append(ans["us"])
                    else:
                        errors.append(f"{s} {c}: {ans}")
                except Exception as e:  # noqa: BLE001
                    wk.error = str(e)
                    errors.append(f"{s} {c}: {e}")
                    log("FAILED", s, c, e)
    load_end = os.getloadavg()
    for wk in workers:
        wk.close()

    # ---- results ----
    res = {"date": datetime.date.today().isoformat(), "stamp": stamp, "machine": machine(),
           "config": {"rounds": rounds, "epoch_rounds": epoch_rounds, "peer_epoch_rounds": peer_epoch_rounds, "min_sample_s": min_s, "quick": a.quick,
                      "pinned_cpu": pin, "cc": " ".join(cc), "workloads": wls, "systems": systems,
                      "nnc": nnc_version, "OPENBLAS_CORETYPE_in_environment": coretype_in_env,
                      "XLA_FLAGS": base_env["XLA_FLAGS"], "wall_s": round(time.time() - t_start, 1)},
           "loadavg": {"start": load_start, "end": load_end}, "peak": peak, "flops": flops,
           "case_flops": case_flops, "errors": errors, "systems": {}, "cases": {}, "nnc_build": nnc_build,
           "nnc_build_for_case": {c: f"{NNC_CASES[c][0]}_b{NNC_CASES[c][1]}" for c in cases}}
    for wk in workers:
        entry = res["systems"].setdefault(wk.system, {"processes": {}})
        entry["processes"][wk.label] = {"info": (wk.ready or {}).get("info"), "error": wk.error,
                                        "skipped": (wk.ready or {}).get("skipped")}
    for c in cases:
        res["cases"][c] = {}
        for s in systems:
            wk = route.get((s, c))
            xs = sorted(samples[c][s])
            if not xs:
                continue
            med = xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
            meta = wk.ready["cases"][c]
            res["cases"][c][s] = {"median_us": med, "min_us": xs[0], "samples_us": samples[c][s],
                                  "first_call_s": warmup.get((c, s), meta.get("first_call_s")),
                                  "note": meta.get("note")}
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    log("wrote", out)
    if full:
        shutil.copyfile(out, os.path.join(BENCH, "RESULTS.json"))
    sh([sys.executable, os.path.join(BENCH, "report.py"), out, "-o", report])
    log(f"wrote {report} ({time.time() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
