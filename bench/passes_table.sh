#!/bin/sh
# bench/passes_table.sh: what the optimizing passes buy on each model (docs/passes.md is made from it).
#
#   bench/passes_table.sh [path/to/nnc] [MODEL.nn...]     (default nnc: build/nnc; default: models/*.nn)
#
# Prints a markdown table with one row per model, for its train step: IR values, kernels and arena at
# -O0 / -O1 / -O2 (`nnc summary --json`), the arena's lower bound at -O2 (the largest total of buffers
# live at once in -O2's schedule) and the ratio to it, and the median train-step time at -O0 and -O2
# (`nnc bench --json`, at the model's batch; NNC_BENCH_ARGS adds options, e.g. "--iters 50"). Then the
# targets of the optimizing-passes issue, each with its verdict:
#   - the -O2 train-step arena is within 10% of the lower bound and at most half of -O0's, for the MLP
#     and CNN models (every model but linear_regression and the LSTM);
#   - fusion cuts the kernels of models/mlp_bn.nn's train step by at least 40% (-O2 against -O0);
#   - -O2's train step is faster than -O0's on every model.
# Times are wall-clock medians on this machine: run it on an idle one. Needs python3 (JSON).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:-$here/../build/nnc}
[ $# -gt 0 ] && shift
[ -x "$nnc" ] || { echo "passes_table.sh: no nnc at $nnc" >&2; exit 2; }
[ $# -gt 0 ] || set -- "$here"/../models/*.nn
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_passes_table.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

for model in "$@"; do
    name=$(basename "$model" .nn)
    for o in 0 1 2; do
        "$nnc" summary "$model" --json -O$o >"$tmp/$name.summary$o.json"
    done
    for o in 0 2; do
        # shellcheck disable=SC2086
        "$nnc" bench "$model" --json -O$o ${NNC_BENCH_ARGS:-} >"$tmp/$name.bench$o.json"
    done
    echo "$name" >>"$tmp/models"
done

python3 - "$tmp" <<'EOF'
import json, sys, os
tmp = sys.argv[1]
names = open(os.path.join(tmp, "models")).read().split()
def load(n, what):
    with open(os.path.join(tmp, f"{n}.{what}.json")) as f:
        return json.load(f)

rows, facts = [], {}
for n in names:
    s = [load(n, f"summary{o}") for o in (0, 1, 2)]
    b0, b2 = load(n, "bench0"), load(n, "bench2")
    ir = [x["ir_values"]["train_step"] for x in s]
    k = [x["kernels"]["train_step"] for x in s]
    arena = [x["arena_bytes"]["train_step"] for x in s]
    lb = s[2]["arena_lower_bound_bytes"]["train_step"]
    t0, t2 = b0["train_step_us"], b2["train_step_us"]
    facts[n] = dict(k=k, arena=arena, lb=lb, t0=t0, t2=t2)
    kib = lambda v: f"{v / 1024:.1f}"
    us = lambda t: f"{t:.0f}" if t >= 100 else f"{t:.3g}"
    rows.append(f"| {n} | {s[2]['batch']} | {' / '.join(map(str, ir))} | {' / '.join(map(str, k))} | "
                f"{' / '.join(kib(a) for a in arena)} | {kib(lb)} | {arena[2] / lb:.2f} | "
                f"{us(t0)} | {us(t2)} | {t0 / t2:.2f}x |")

print("| model | batch | IR values -O0 / -O1 / -O2 | kernels -O0 / -O1 / -O2 | arena KiB -O0 / -O1 / -O2 "
      "| lower bound KiB | -O2 / bound | train step µs -O0 | -O2 | speedup |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
print("\n".join(rows))
print()

def verdict(ok): return "holds" if ok else "does NOT hold"
mem = [n for n in names if n != "linear_regression" and "lstm" not in n]
print("Targets (train step):")
for n in mem:
    f = facts[n]
    ok = f["arena"][2] <= 1.10 * f["lb"] and 2 * f["arena"][2] <= f["arena"][0]
    print(f"- {n}: arena at -O2 {f['arena'][2]} B = {f['arena'][2] / f['lb']:.2f} x the lower bound, "
          f"{f['arena'][2] / f['arena'][0]:.2f} x -O0's: {verdict(ok)}")
if "mlp_bn" in facts:
    k = facts["mlp_bn"]["k"]
    cut = 1 - k[2] / k[0]
    print(f"- mlp_bn: kernels {k[0]} at -O0, {k[2]} at -O2, {cut:.0%} fewer (target 40%): {verdict(cut >= 0.40)}")
slow = [n for n in names if facts[n]["t2"] >= facts[n]["t0"]]
print(f"- -O2 faster than -O0 on every train step: {verdict(not slow)}"
      + (f" (not on {', '.join(slow)})" if slow else ""))
EOF
