#!/bin/sh
# run.sh: runs built libFuzzer targets for a while each, one at a time, from the in-tree corpora.
#
#   tests/fuzz/run.sh FUZZ_BIN_DIR SECONDS [TARGET...]     (default: every target; TARGET as in `parser`)
#
# FUZZ_BIN_DIR holds fuzz_parser, fuzz_npy, ... (a build with -DNNC_FUZZ=ON, see docs/testing.md). Each
# target starts from tests/fuzz/corpus/TARGET (copied: the tree is not modified) with its dictionary, runs
# SECONDS seconds, and must end without a crash, a sanitizer report, a timeout (10 s per input) or running
# out of memory (2 GB). A failing input is kept in $NNC_FUZZ_ARTIFACTS (default ./fuzz-artifacts) and
# its path printed; reproduce it with `FUZZ_BIN_DIR/fuzz_TARGET FILE`. Exit status: 0 when every target
# came back clean, 1 otherwise, 2 on bad usage.
# What it does not do: build (tests/fuzz/ci.sh does), or merge what it finds into the tree.
set -u
bin=${1:?usage: run.sh FUZZ_BIN_DIR SECONDS [TARGET...]}
secs=${2:?usage: run.sh FUZZ_BIN_DIR SECONDS [TARGET...]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 0 ] && set -- parser compile safetensors npy idx idx_gz csv onnx
artifacts=${NNC_FUZZ_ARTIFACTS:-$(pwd)/fuzz-artifacts}
mkdir -p "$artifacts" || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_fuzzrun.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export ASAN_OPTIONS
bad=0
for t in "$@"; do
    exe=$bin/fuzz_$t
    if [ ! -x "$exe" ]; then
        echo "FAIL $t: $exe is not built"
        bad=1
        continue
    fi
    case $t in
    parser | compile) dict=nn.dict ;;
    idx | idx_gz) dict=idx.dict ;;
    *) dict=$t.dict ;;
    esac
    mkdir -p "$tmp/$t"
    cp "$here/corpus/$t"/* "$tmp/$t"/ 2>/dev/null
    "$exe" -dict="$here/$dict" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$tmp/$t" >"$tmp/$t.log" 2>&1
    rc=$?
    stats=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$tmp/$t.log" | tail -n 1 | tr -s "[:space:]" " ")
    if [ $rc -eq 0 ]; then
        echo "ok   $t: $stats"
    else
        bad=1
        echo "FAIL $t (exit $rc): $(grep -m1 -E "SUMMARY|ERROR" "$tmp/$t.log")"
        grep -E "Test unit written to" "$tmp/$t.log" | sed 's/^/    /'
        grep -E "^ +#[0-9]+ 0x" "$tmp/$t.log" | head -n 12 | sed 's/^/    /'
    fi
done
exit $bad
