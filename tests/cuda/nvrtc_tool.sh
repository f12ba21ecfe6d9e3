#!/bin/sh
# nvrtc_tool.sh TEST_PROGRAM NVRTC_TOOL PTXAS DIR: nnc_cuda_nvrtc on test_cuda_runtime's kernel source: an sm_80
# cubin, compute_90 PTX that ptxas assembles for sm_90 without spills, and a compile error's message and exit
# code. PTXAS may be empty (not found): that step is left out. Exit 77 (skip) when NVRTC cannot be loaded.
set -e
test_program=$1 tool=$2 ptxas=$3 dir=$4
rm -rf "$dir"
mkdir -p "$dir"
"$test_program" source "$dir/rt_test.cu"
"$tool" sm_80 "$dir/rt_test.cu" "$dir/rt_test.sm80.cubin"
"$tool" compute_90 "$dir/rt_test.cu" "$dir/rt_test.ptx"
[ "$(head -c 4 "$dir/rt_test.sm80.cubin" | od -An -c | tr -d ' ')" = '177ELF' ] || { echo "not an ELF cubin"; exit 1; }
for k in k_axpy k_sum k_count; do
    grep -q "\.entry $k(" "$dir/rt_test.ptx" || { echo "no .entry $k in the PTX"; exit 1; }
done
if [ -n "$ptxas" ]; then
    "$ptxas" -arch=sm_90 -v -o "$dir/rt_test.sm90.cubin" "$dir/rt_test.ptx" 2> "$dir/ptxas.log"
    [ "$(grep -c "Compiling entry function" "$dir/ptxas.log")" = 3 ] || { cat "$dir/ptxas.log"; exit 1; }
    if grep "bytes spill" "$dir/ptxas.log" | grep -qv "0 bytes spill stores, 0 bytes spill loads"; then
        cat "$dir/ptxas.log"
        echo "register spills"
        exit 1
    fi
fi
printf '#define NNC_GLOBAL extern "C" __global__\nNNC_GLOBAL void k_broken(float *x)\n{\n    x[0] = nope;\n}\n' \
    > "$dir/broken.cu"
status=0
"$tool" sm_90 "$dir/broken.cu" "$dir/broken.cubin" 2> "$dir/broken.err" || status=$?
[ "$status" = 1 ] || { echo "a compile error gave exit $status"; exit 1; }
grep -q '^nnc_cuda: NVRTC: k_broken: broken.cu(4): error: identifier "nope" is undefined' "$dir/broken.err" ||
    { cat "$dir/broken.err"; exit 1; }
[ ! -e "$dir/broken.cubin" ] || { echo "a cubin was written after an error"; exit 1; }
echo "nvrtc_tool: sm_80 cubin, compute_90 PTX${ptxas:+ assembled by ptxas without spills}, compile error reported"
