"""Turns a results JSON written by driver.py into markdown (bench/RESULTS.md for a full run).

  python bench/report.py bench/results/STAMP.json [-o RESULTS.md]

Every system's GFLOP/s uses the same FLOP count: nnc's (`nnc summary --json`: flops_train per sample × the
rows of a train step or epoch, flops_forward per sample × the rows predicted). "ratio" is the system's time
over nnc's: above 1, nnc is faster.
"""
import argparse
import json
import os
import sys

DESCR = {
    "W1.sgd.train": "W1 train step, SGD, full batch of 100,000 (1 feature)",
    "W1.adam.train": "W1 train step, Adam, full batch of 100,000",
    "W2.full.train": "W2 train step, full batch of 1000",
    "W2.b32.train": "W2 train step, batch 32",
    "W2.predict1": "W2 predict, batch 1 (latency)",
    "W3.train": "W3 train step, Adam, full batch of 1000",
    "W3b.train": "W3b train step (batchnorm + dropout), Adam, full batch of 1000",
    "W4.train": "W4 train step, Adam, batch 32",
    "W4.fit": "W4 fit: one epoch of 1000 samples at batch 32, shuffled",
    "W4.predict": "W4 predict 1000 rows",
    "W5.train": "W5 train step, batch 32",
    "W5.epoch": "W5 one Fashion-MNIST epoch (60,000 images, batch 32, shuffled)",
    "W5.predict": "W5 predict the 10,000 test images",
    "W5.predict1": "W5 predict, batch 1 (latency)",
}
WL_TITLE = {
    "W1": "W1: linear regression, 100k samples, full batch",
    "W2": "W2: 10-50-1 MLP (relu), MSE, SGD, 1000 samples",
    "W3": "W3: 100-128-10 classifier, Adam, full batch of 1000",
    "W3b": "W3b: 100-256-128-10 with batchnorm and dropout, Adam, full batch of 1000",
    "W4": "W4: 10-64-1 Keras regression MLP, Adam, batch 32",
    "W5": "W5: the Fashion-MNIST CNN (conv 32 3x3, maxpool 2, dense 10), Adam, batch 32",
}
SYSTEM_DESCR = {
    "nnc": "nnc's generated C, timed in-process by nnc_timer.c (OPENBLAS_CORETYPE unset)",
    "nnc-haswell": "the same binaries with OPENBLAS_CORETYPE=Haswell",
    "handwritten": "hand-written C loops (bench/handwritten/), same compiler and flags",
    "torch-eager": "PyTorch eager: nn.Sequential, torch.optim, the usual loop; DataLoader for epochs",
    "torch-compile": "torch.compile(model) and torch.compile(opt.step)",
    "keras": "Keras 3 model.fit / model.predict, compile() defaults",
    "keras-xla": "Keras 3 model.fit / model.predict, compile(jit_compile=True)",
    "tf-function": "@tf.function train step with tf.GradientTape, tf.data for epochs",
    "jax": "jax.jit of the whole step, Adam/SGD written out with tree_map",
    "numpy": "NumPy forward/backward/update by hand",
}
HAND_REF_US = {"W2.b32.train": 7, "W4.train": 11, "W1.sgd.train": 44, "W1.adam.train": None}


def fmt_t(us):
    if us is None:
        return "—"
    if us < 1000:
        return f"{us:.3g} µs" if us < 100 else f"{us:.0f} µs"
    if us < 1e6:
        return f"{us / 1e3:.3g} ms"
    return f"{us / 1e6:.3g} s"


def fmt_x(r):
    if r is None:
        return "—"
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("-o", "--out")
    a = ap.parse_args()
    R = json.load(open(a.results))
    peak = R["peak"]["default"]["fma_gflops"]
    cases = R["cases"]
    systems = [s for s in R["config"]["systems"] if any(s in cases[c] for c in cases)]
    L = []
    p = L.append

    def t(c, s):
        e = cases.get(c, {}).get(s)
        return e["median_us"] if e else None

    def ratio(c, s):
        a_, b_ = t(c, s), t(c, "nnc")
        return a_ / b_ if a_ and b_ else None

    def gflops(c, s):
        us = t(c, s)
        return R["case_flops"][c] / (us * 1e3) if us else None

    cfg, m = R["config"], R["machine"]
    p(f"# nnc benchmark results ({R['date']})")
    p("")
    p("Written by `bench/run.sh` (see bench/README.md for what is measured and how); regenerate with "
      "`bench/run.sh`, or `bench/run.sh --quick W2` for a quick look at one workload.")
    p("")
    p("## Machine and set-up")
    p("")
    p("| | |")
    p("|---|---|")
    p(f"| CPU | {m.get('Model name', '?')} ({m.get('Architecture', '')}), {m.get('CPU(s)', '?')} vCPU, "
      f"{m.get('Hypervisor vendor', 'bare metal')} guest; SIMD: {m.get('simd', '')} |")
    p(f"| caches | L1d {m.get('L1d cache', '?')}, L2 {m.get('L2 cache', '?')}, L3 {m.get('L3 cache', '?')} |")
    p(f"| memory, kernel | {m.get('memory_gib')} GiB, Linux {m.get('kernel')} |")
    p(f"| single-core FMA peak (peak.c, {R['peak']['default']['isa']}, {R['peak']['default']['chains']} chains) "
      f"| **{peak:.1f} GFLOP/s** |")
    for lab, pk in R["peak"].items():
        sg = pk["sgemm"]
        p(f"| OpenBLAS sgemm, 1 thread, {lab} (core {pk['openblas_corename']}) | 1000×128×100: "
          f"{sg['1000x128x100']:.1f} GFLOP/s, 2048³: {sg['2048x2048x2048']:.1f} GFLOP/s |")
    p(f"| nnc | {cfg['nnc']}; generated C built with `{cfg['cc']}` |")
    vers = []
    for s, e in R["systems"].items():
        for proc in e["processes"].values():
            info = proc.get("info") or {}
            for k in ("torch", "tensorflow", "keras", "jax", "numpy"):
                if k in info and f"{k} {info[k]}" not in vers:
                    vers.append(f"{k} {info[k]}")
    p(f"| peers | {', '.join(vers)}; Keras on the TensorFlow back end |")
    ka = next((pr["info"].get("jit_compile_resolved") for pr in R["systems"].get("keras", {}).get("processes", {})
               .values() if pr.get("info")), None)
    if ka:
        p(f"| Keras `jit_compile=\"auto\"` resolved to | {', '.join(f'{k}: {v}' for k, v in sorted(ka.items()))} |")
    p(f"| threads | one everywhere: OMP/MKL/OPENBLAS_NUM_THREADS=1, NNC_THREADS=1, torch.set_num_threads(1), "
      f"TF intra/inter-op 1, XLA_FLAGS=`{cfg['XLA_FLAGS']}`; every worker pinned to CPU {cfg['pinned_cpu']} |")
    p(f"| OPENBLAS_CORETYPE | {cfg['OPENBLAS_CORETYPE_in_environment'] or 'unset'} in the calling environment; "
      f"unset for every system except nnc-haswell |")
    p(f"| samples | {cfg['rounds']} rounds, systems alternating, each sample a group of calls of ≥ "
      f"{cfg['min_sample_s']} s after warm-up; the median is shown. The Fashion-MNIST epoch: one warm-up epoch, "
      f"then {cfg['epoch_rounds']} (C systems) or {cfg.get('peer_epoch_rounds', cfg['epoch_rounds'])} (Python "
      f"peers, whose epochs take 30-90 s) timed epochs |")
    la = R["loadavg"]
    p(f"| load average | {la['start'][0]:.1f} at the start, {la['end'][0]:.1f} at the end "
      f"(2 vCPUs; above ~1 other work shared the machine) |")
    p(f"| wall time | {cfg['wall_s'] / 60:.1f} min |")
    p("")
    p("Systems:")
    p("")
    for s in systems:
        p(f"- **{s}**: {SYSTEM_DESCR.get(s, s)}")
    p("")

    # ---- targets ----
    p("## Targets")
    p("")
    p("| target | measured | holds |")
    p("|---|---|---|")

    def yes(b):
        return "—" if b is None else ("**yes**" if b else "no")

    for c in ("W1.sgd.train", "W1.adam.train", "W2.full.train", "W2.b32.train", "W4.train"):
        if c not in cases or "nnc" not in cases[c]:
            continue
        r = ratio(c, "torch-eager")
        p(f"| {c}: ≥ 20× faster than PyTorch eager | {fmt_x(r)} | {yes(None if r is None else r >= 20)} |")
        best = [(ratio(c, s), s) for s in ("torch-compile", "keras-xla", "jax") if ratio(c, s)]
        if best:
            rb, sb = min(best)
            p(f"| {c}: ≥ 3× faster than the best of torch.compile / Keras-XLA / JAX | {fmt_x(rb)} (vs {sb}) "
              f"| {yes(rb >= 3)} |")
    for c, ref in HAND_REF_US.items():
        if c in cases and "nnc" in cases[c] and "handwritten" in cases[c]:
            r = t(c, "nnc") / t(c, "handwritten")
            fig = f" (issue's figure {ref} µs)" if ref else ""
            p(f"| {c}: within 1.2× of hand-written C{fig} | nnc {fmt_t(t(c, 'nnc'))}, "
              f"hand-written {fmt_t(t(c, 'handwritten'))}: {r:.2f}× | {yes(r <= 1.2)} |")
    if "W3.train" in cases and "nnc" in cases["W3.train"]:
        g = gflops("W3.train", "nnc")
        p(f"| W3 train step ≥ 60% of the FMA peak | {g:.1f} GFLOP/s = {100 * g / peak:.0f}% | "
          f"{yes(g / peak >= 0.6)} |")
    if "W5.train" in cases and "nnc" in cases["W5.train"]:
        r = ratio("W5.train", "torch-eager")
        p(f"| W5 train step ≥ 8× faster than PyTorch eager | {fmt_x(r)} | {yes(None if r is None else r >= 8)} |")
    if "W5.epoch" in cases and "nnc" in cases["W5.epoch"]:
        e = t("W5.epoch", "nnc") / 1e6
        p(f"| W5 Fashion-MNIST epoch ≤ 3 s | {e:.2f} s | {yes(e <= 3)} |")
    for c in ("W2.predict1", "W5.predict1"):
        if c in cases and "nnc" in cases[c]:
            r = ratio(c, "torch-eager")
            p(f"| {c}: ≥ 20× faster than PyTorch eager | {fmt_x(r)} | {yes(None if r is None else r >= 20)} |")
    p("")

    # ---- overview ----
    p("## Overview (median time per call)")
    p("")
    p("| case | " + " | ".join(systems) + " |")
    p("|---|" + "---|" * len(systems))
    for c in cases:
        p(f"| {c} | " + " | ".join(fmt_t(t(c, s)) for s in systems) + " |")
    p("")
    p("Ratio to nnc (above 1: nnc is faster):")
    p("")
    p("| case | " + " | ".join(s for s in systems if s != "nnc") + " |")
    p("|---|" + "---|" * (len(systems) - 1))
    for c in cases:
        p(f"| {c} | " + " | ".join(fmt_x(ratio(c, s)) for s in systems if s != "nnc") + " |")
    p("")

    # ---- per workload ----
    wls = []
    for c in cases:
        w = c.split(".")[0]
        if w not in wls:
            wls.append(w)
    for w in wls:
        p(f"## {WL_TITLE.get(w, w)}")
        p("")
        fl = R["flops"]
        for c in [c for c in cases if c.split(".")[0] == w]:
            p(f"### {c}: {DESCR.get(c, c)}")
            p("")
            p(f"FLOPs per call (nnc's count): {R['case_flops'][c]:,}")
            p("")
            p("| system | time (median) | min | ratio to nnc | GFLOP/s | % of FMA peak | first call | note |")
            p("|---|---|---|---|---|---|---|---|")
            for s in systems:
                e = cases[c].get(s)
                if not e:
                    continue
                g = gflops(c, s)
                fc = e.get("first_call_s")
                p(f"| {s} | {fmt_t(e['median_us'])} | {fmt_t(e['min_us'])} | {fmt_x(ratio(c, s))} | {g:.2f} | "
                  f"{100 * g / peak:.1f}% | {fmt_t(fc * 1e6) if fc is not None else '—'} | {e.get('note') or ''} |")
            p("")
        if w == "W4" and "W4.fit" in cases and "W4.predict" in cases:
            p("Fit/predict ratio (one epoch of fit over 1000 rows ÷ predicting the same 1000 rows):")
            p("")
            p("| system | fit epoch | predict 1000 | fit / predict |")
            p("|---|---|---|---|")
            for s in systems:
                f_, pr = t("W4.fit", s), t("W4.predict", s)
                if f_ and pr:
                    p(f"| {s} | {fmt_t(f_)} | {fmt_t(pr)} | {f_ / pr:.1f} |")
            p("")
        del fl

    # ---- compile times ----
    comp = [s for s in ("torch-compile", "keras", "keras-xla", "tf-function", "jax") if s in systems]
    if comp:
        p("## Compile / trace time (first call, excluded from the step times)")
        p("")
        p("The first call of each case in its worker, where tracing and compiling happen. For nnc, the ahead-of-"
          "time compile instead: `nnc MODEL.nn -o m.c` plus the C compiler on m.c (the model compiled at that "
          "case's batch). The W5.epoch row is the warm-up epoch: compiling plus a whole epoch. A Keras train "
          "row is the first `fit()` call, several epochs. Workers compile their cases one after another, so later "
          "cases can find some caches warm.")
        p("")
        nb = R.get("nnc_build", {})
        p("| case | nnc (nnc + cc) | " + " | ".join(comp) + " |")
        p("|---|---|" + "---|" * len(comp))
        for c in cases:
            b = nb.get(R.get("nnc_build_for_case", {}).get(c, ""))
            row = [f"{b['nnc_s'] + b['cc_s']:.2f} s ({b['nnc_s']:.2f} + {b['cc_s']:.2f})" if b else "—"]
            for s in comp:
                e = cases[c].get(s)
                row.append(f"{e['first_call_s']:.2f} s" if e and e.get("first_call_s") is not None else "—")
            p(f"| {c} | " + " | ".join(row) + " |")
        p("")
    if R.get("errors"):
        p("## Errors")
        p("")
        for e in R["errors"]:
            p(f"- {e}")
        p("")
    for s, e in R["systems"].items():
        for lab, pr in e["processes"].items():
            if pr.get("error"):
                p(f"- worker {lab} failed: {pr['error']}")
    # the hand-written analysis of the targets a full run misses (profiles, plans): bench/ANALYSIS.md
    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ANALYSIS.md")
    if os.path.exists(analysis):
        p("")
        p(open(analysis).read().rstrip())
    text = "\n".join(L) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
