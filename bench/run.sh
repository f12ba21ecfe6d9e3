#!/usr/bin/env bash
# bench/run.sh: nnc against PyTorch (eager, torch.compile), Keras (fit, default and XLA), a tf.function
# GradientTape loop, JAX (jit) and NumPy by hand, plus hand-written C, on the workloads W1..W5; writes
# bench/RESULTS.md (a full run) or bench/results/STAMP.md (a subset or --quick run). See bench/README.md.
#
#   bench/run.sh                       everything (20-30 minutes on 2 vCPUs)
#   bench/run.sh W2 W5                 a subset of workloads
#   bench/run.sh --quick W2            3 rounds, short samples, one epoch: a quick look
#   bench/run.sh --systems nnc,handwritten,torch-eager W2 W4
#   bench/run.sh --help                every option (they are bench/driver.py's)
#
# Environment: NNC=path/to/nnc uses that binary instead of building one into bench/.build/nnc-build;
# BENCH_CC / BENCH_CFLAGS change the compiler for the generated C (default: clang, nnc's JIT flags);
# PYTHON picks the interpreter the virtual environment is made from.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv"
py="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "[bench] creating $venv" >&2
    "$py" -m venv "$venv"
fi
# the peers: CPU wheels from PyPI (the torch wheel there also pulls CUDA libraries; they are not used)
if ! "$venv/bin/python" -c "import torch, tensorflow, keras, jax, numpy" 2>/dev/null; then
    echo "[bench] installing torch, tensorflow-cpu, jax[cpu], numpy into $venv" >&2
    "$venv/bin/pip" install --quiet torch tensorflow-cpu "jax[cpu]" numpy
fi

if [ -z "${NNC:-}" ]; then
    build="$here/.build/nnc-build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DNNC_BUILD_TESTS=OFF >/dev/null
    cmake --build "$build" -j2 >/dev/null
    export NNC="$build/nnc"
fi

exec "$venv/bin/python" "$here/driver.py" --nnc "$NNC" "$@"
