#!/usr/bin/env bash
# Builds libkernel_trace.so (the CUPTI injection library of kernel_trace.c) on a machine without
# the CUDA toolkit: CUPTI's and CUDA's headers come from NVIDIA's pip wheels (headers only are
# used; CUPTI itself is opened at run time on the GPU machine).
#   bash scripts/kernel_trace/build.sh OUT_DIR
set -euo pipefail
out=${1:?output folder}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && pip download -q --no-deps nvidia-cuda-cupti-cu12 nvidia-cuda-runtime-cu12 nvidia-cuda-nvcc-cu12 \
  && for w in *.whl; do unzip -q -o "$w" 'nvidia/*/include/*'; done)
mkdir -p "$out"
gcc -O2 -Wall -shared -fPIC -I"$tmp/nvidia/cuda_cupti/include" -I"$tmp/nvidia/cuda_runtime/include" \
  -I"$tmp/nvidia/cuda_nvcc/include" "$here/kernel_trace.c" -ldl -o "$out/libkernel_trace.so"
echo "$out/libkernel_trace.so"
