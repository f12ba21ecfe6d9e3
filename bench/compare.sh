#!/usr/bin/env bash
# bench/compare.sh: nnc at an older commit (BASE_REV) against the working tree, in one run: builds both,
# runs bench/driver.py with --systems nnc for each, alternating (base, new, base, new, ...), prints per case
# the median time of each, new/base, the cases outside +-5%, and the losses of both after the same steps.
# See bench/README.md, "Comparing two builds".
#
#   bench/compare.sh 1d1bf64 --quick W2               a quick look at one workload
#   bench/compare.sh 1d1bf64 --quick                  every workload (W1-W5 and W3b): a change that keeps speeds
#   bench/compare.sh 1d1bf64 --repeats 3 --quick W4   3 alternations instead of 2
#
# Every other option goes to bench/driver.py (--quick, --rounds, --cases, --cpu, --min-sample, ...; not
# --systems, --nnc, --out, --report, which this script sets). Exit status: 0 whatever the numbers (it is a
# measurement; the last line says "within 5%: yes" or "no"), 1 when a build or a run fails, 2 for a wrong
# command line.
#
# Environment: NNC=path/to/nnc uses that binary as "new" instead of building the working tree into
# bench/.build/nnc-build; NNC_BASE=path/to/nnc the same for the base; PYTHON: a Python 3 with NumPy (default:
# the first of bench/.venv/bin/python, python3, /usr/bin/python3 that imports numpy).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

usage_() {
    sed -n '2,/^[^#]/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    usage_
    [ $# -ge 1 ] && exit 0 || exit 2
fi
base_rev="$1"
shift
repeats=2
fwd=()
while [ $# -gt 0 ]; do
    case "$1" in
    --repeats) [ $# -ge 2 ] || { echo "compare.sh: --repeats needs a number" >&2; exit 2; }
               repeats="$2"; shift 2 ;;
    --repeats=*) repeats="${1#--repeats=}"; shift ;;
    --systems|--systems=*|--nnc|--nnc=*|--out|--out=*|--report|--report=*)
        echo "compare.sh: $1 is set by compare.sh (it times --systems nnc of two builds)" >&2; exit 2 ;;
    *) fwd+=("$1"); shift ;;
    esac
done
case "$repeats" in ''|*[!0-9]*|0) echo "compare.sh: --repeats wants a positive integer, not '$repeats'" >&2; exit 2 ;; esac

if ! rev="$(git -C "$root" rev-parse --verify --quiet "$base_rev^{commit}")"; then
    echo "compare.sh: '$base_rev' is not a commit of $root" >&2
    exit 2
fi

# ---- a Python with NumPy (bench/data.py writes the data sets with it); no PyTorch/TensorFlow needed ----
py=""
for cand in ${PYTHON:-} "$here/.venv/bin/python" python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import numpy" 2>/dev/null; then
        py="$cand"
        break
    fi
done
if [ -z "$py" ]; then
    echo "compare.sh: needs a Python 3 with NumPy (Debian: apt-get install python3-numpy; or PYTHON=path)" >&2
    exit 1
fi

# ---- the two builds ----
cmake_opts=(-DCMAKE_BUILD_TYPE=Release -DNNC_BUILD_TESTS=OFF -DNNC_BUILD_EXAMPLES=OFF)
short="$(git -C "$root" rev-parse --short "$rev")"
if [ -z "${NNC_BASE:-}" ]; then
    bdir="$here/.build/base-$short"
    if [ ! -f "$bdir/src/.complete" ]; then  # a commit never changes: extract once, then builds are incremental
        echo "[compare] extracting $short into $bdir/src" >&2
        rm -rf "$bdir/src"
        mkdir -p "$bdir/src"
        git -C "$root" archive "$rev" | tar -x -C "$bdir/src"
        touch "$bdir/src/.complete"
    fi
    echo "[compare] building base $short in $bdir/build" >&2
    cmake -S "$bdir/src" -B "$bdir/build" "${cmake_opts[@]}" >/dev/null
    cmake --build "$bdir/build" -j2 >/dev/null
    NNC_BASE="$bdir/build/nnc"
fi
if [ -z "${NNC:-}" ]; then
    build="$here/.build/nnc-build"
    echo "[compare] building the working tree in $build" >&2
    cmake -S "$root" -B "$build" "${cmake_opts[@]}" >/dev/null
    cmake --build "$build" -j2 >/dev/null
    NNC="$build/nnc"
fi
for b in "$NNC_BASE" "$NNC"; do
    [ -x "$b" ] || { echo "compare.sh: $b is not an executable" >&2; exit 1; }
done

# ---- timing: base, new, base, new, ... ----
out="$here/results/compare-$(date +%Y-%m-%d-%H%M%S)"
mkdir -p "$out"
echo "[compare] base $short ($NNC_BASE) against the working tree ($NNC); results in $out" >&2
for ((i = 1; i <= repeats; i++)); do
    for side in base new; do
        if [ "$side" = base ]; then bin="$NNC_BASE"; else bin="$NNC"; fi
        echo "[compare] run $i/$repeats: $side" >&2
        "$py" "$here/driver.py" --nnc "$bin" --systems nnc --out "$out/$side-$i.json" \
            --report "$out/$side-$i.md" ${fwd[@]+"${fwd[@]}"}
    done
done

# ---- the table, and the losses of both builds after the same training steps ----
exec "$py" - "$out" "$short" "$NNC_BASE" "$NNC" "$repeats" <<'EOF'
import glob, json, os, shlex, subprocess, sys

out, short, nnc_base, nnc_new, repeats = sys.argv[1:6]
BENCH = os.path.dirname(os.path.dirname(os.path.abspath(out)))
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.join(BENCH, "peers"))
import driver  # noqa: E402  (its main() only runs as a script; importing it needs no framework)

TOL = 0.05
runs = {s: [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, s + "-*.json")),
                                               key=lambda p: int(p.rsplit("-", 1)[1][:-5]))]
        for s in ("base", "new")}


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def fmt_us(us):
    return f"{us / 1e6:.3f} s" if us >= 1e6 else f"{us / 1e3:.3f} ms" if us >= 1e3 else f"{us:.2f} us"


cases = list(runs["new"][0]["cases"])
print(f"\nnnc {short} (base) against the working tree (new): {repeats} alternation(s), "
      f"{runs['new'][0]['config']['rounds']} samples per case and run")
print(f"load average at the start of each run: "
      + ", ".join(f"{s}{i + 1} {r['loadavg']['start'][0]:.2f}" for i in range(int(repeats)) for s, rs in runs.items()
                  for r in rs[i:i + 1]))
hdr = ("case", "base", "new", "new/base", "", "per-run medians base | new")
rows, outside, missing = [], [], []
for c in cases:
    pooled = {s: [x for r in rs for x in r["cases"].get(c, {}).get("nnc", {}).get("samples_us", [])]
              for s, rs in runs.items()}
    if not pooled["base"] or not pooled["new"]:
        missing.append(c)
        rows.append((c, "-", "-", "-", "FAILED", ""))
        continue
    b, n = median(pooled["base"]), median(pooled["new"])
    ratio = n / b
    flag = ""
    if ratio > 1 + TOL:
        flag = "SLOWER"
    elif ratio < 1 - TOL:
        flag = "faster"
    if flag:
        outside.append(c)
    per = " ".join(fmt_us(r["cases"][c]["nnc"]["median_us"]) for r in runs["base"] if c in r["cases"] and r["cases"][c])
    per += " | " + " ".join(fmt_us(r["cases"][c]["nnc"]["median_us"]) for r in runs["new"] if c in r["cases"] and r["cases"][c])
    rows.append((c, fmt_us(b), fmt_us(n), f"{ratio:.3f}", flag, per))
widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
for r in [hdr] + rows:
    print("  ".join(str(v).rjust(w) if 0 < i < 4 else str(v).ljust(w) for i, (v, w) in enumerate(zip(r, widths))).rstrip())
errors = [f"{s}{i + 1}: {e}" for s, rs in runs.items() for i, r in enumerate(rs) for e in r.get("errors", [])]
for e in errors:
    print("error:", e)

# Losses: the driver's JSON has one info.loss per worker process (the last train step of a warm-up whose length
# depends on the speed), so it cannot be compared between builds. Instead each train case runs here in its own
# nnc_timer process with --warm 0: seed-0 initial weights, the first call and exactly 3 more, the same data.
cfg = runs["new"][0]["config"]
cc = shlex.split(cfg["cc"])
data = os.path.join(BENCH, ".data")
lossdir = os.path.join(out, "loss")
print("\nloss after 4 train calls of each train case (seed 0, the same batches), base | new:")
loss_diff = []
built = {}


def loss_of(side, nnc, c):
    m, batch, kind, (xn, yn), outk = driver.NNC_CASES[c]
    key = (side, m, batch)
    if key not in built:
        d = os.path.join(lossdir, side)
        os.makedirs(d, exist_ok=True)
        src, exe = os.path.join(d, f"{m}_b{batch}.c"), os.path.join(d, f"timer_{m}_b{batch}")
        subprocess.run([nnc, os.path.join(BENCH, "workloads", m + ".nn"), "--batch", str(batch), "-o", src, "--shim"],
                       check=True)
        subprocess.run(cc + [f"-DMAX_BATCH={batch}", "-o", exe, os.path.join(BENCH, "nnc_timer.c"), src,
                             "-lopenblas", "-lm"], check=True)
        built[key] = exe
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NNC_THREADS="1", OMP_NUM_THREADS="1")
    r = subprocess.run([built[key], "--system", "nnc", "--warm", "0", "--x", os.path.join(data, xn + ".npy"),
                        "--y", os.path.join(data, yn + ".npy"), "--out", str(outk), "--case", f"{c}={kind}"],
                       input="quit\n", capture_output=True, text=True, timeout=600, env=env, check=True)
    return json.loads(r.stdout.splitlines()[0])["info"]["loss"]


for c in cases:
    kind = driver.NNC_CASES[c][2]
    if not (kind.startswith("train") or kind == "epoch") or c in driver.EPOCH:
        continue  # predictions have no loss; the 60,000-image epoch takes too long for a check
    try:
        lb, ln = loss_of("base", nnc_base, c), loss_of("new", nnc_new, c)
    except (subprocess.SubprocessError, OSError, ValueError, KeyError) as e:
        print(f"  {c}: could not run: {e}")
        loss_diff.append(c)
        continue
    if lb is None or ln is None:
        note = "NOT FINITE"
    elif lb == ln:
        note = "identical"
    else:
        rel = abs(ln - lb) / max(abs(lb), 1e-30)
        note = f"rel. diff {rel:.1e}" + (" DIFFERS" if rel > 1e-4 else "")
    if lb is None or ln is None or "DIFFERS" in note:
        loss_diff.append(c)
    print(f"  {c:16s} {lb!s:>12} | {ln!s:<12} {note}")

same_c = [k for k in sorted(built) if k[0] == "base" and ("new",) + k[1:] in built]
if same_c:
    def text(side, m, b):
        return open(os.path.join(lossdir, side, f"{m}_b{b}.c"), "rb").read()
    print("generated C, base against new: " + ", ".join(
        f"{m}_b{b} {'identical' if text('base', m, b) == text('new', m, b) else 'differs'}" for _, m, b in same_c)
        + f" (in {lossdir})")

print()
if missing or errors:
    print(f"cases without samples or with errors: {', '.join(missing) or '-'}; {len(errors)} error(s)")
print(f"outside 5%: {', '.join(outside) if outside else 'none'}")
print(f"losses: {'differ: ' + ', '.join(loss_diff) if loss_diff else 'the same (within 1e-4)'}")
print(f"within 5%: {'no' if outside or missing else 'yes'}")
EOF
