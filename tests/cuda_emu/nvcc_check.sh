#!/bin/sh
# nvcc_check.sh KERNELS.cu OUT_DIR: kernels.cu is CUDA: nvcc -cubin accepts it for sm_80 and sm_90 with every
# warning an error. Exit 77 (skip) without nvcc ($NVCC, else nvcc on PATH, else /usr/local/cuda/bin/nvcc).
kernels=$1
out=$2
nvcc=${NVCC:-}
[ -n "$nvcc" ] || nvcc=$(command -v nvcc 2>/dev/null)
[ -n "$nvcc" ] || { [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc; }
if [ -z "$nvcc" ]; then
    echo "SKIP: no nvcc (set NVCC or put the CUDA toolkit's bin on PATH)"
    exit 77
fi
mkdir -p "$out" || exit 1
for sm in 80 90; do
    "$nvcc" -cubin -arch=sm_$sm -Werror all-warnings -o "$out/kernels_sm$sm.cubin" "$kernels" || {
        echo "FAIL: $nvcc rejects $kernels for sm_$sm"
        exit 1
    }
done
echo "nvcc accepts $kernels for sm_80 and sm_90"
