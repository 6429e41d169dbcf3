#!/usr/bin/env bash
# Per-kernel GPU time of a few training steps (CubeCL's profiler at level "full": every launch is
# synchronised and logged with its kernel configuration and cube count), summarised by
# scripts/cubecl_profile_summary.py. The command runs twice: once unprofiled to fill the kernel
# cache, then profiled, so that the durations do not include JIT compilation (a cold profile
# charges each kernel's compilation to its first launch).
#   OUT=/tmp/out bash scripts/gpu_kernel_profile.sh                      # LLaMA-2-7B, LoRA + LoRTA r4
#   OUT=/tmp/out ARGS="fold --profile --preset gpu --backend cuda --dtype bf16 --length 256 --blocks 12 \
#     --dims 1024,128,32 --profile-steps 1 --warmup 1 --pair-update s2p --methods lora:8 --out /tmp/fp" \
#     bash scripts/gpu_kernel_profile.sh                                 # the folding trunk
# BIN (default .gpu/lorta-experiments), LIMIT (s per run, default 420), ROWS (summary rows, 60).
set -u
: "${OUT:?set OUT to the output folder}"
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
BIN=${BIN:-.gpu/lorta-experiments}
ARGS=${ARGS:-profile --backend cuda --model ${MODEL:-llama-2-7b} --dtype bf16 --methods ${METHODS:-lora,lorta} --ranks 4 --seq-len 128 --steps 2 --warmup 2 --json}
export LORTA_KERNEL_CACHE=${LORTA_KERNEL_CACHE:-/tmp/lorta-kernels}
T0=$(date +%s)
# shellcheck disable=SC2086 # ARGS is a word list
timeout "${LIMIT:-420}" "$BIN" $ARGS > "$OUT/warm-up.out" 2> "$OUT/warm-up.err"
echo "warm-up run rc=$? after $(( $(date +%s) - T0 ))s"
printf '[profiling.logger]\nlevel = "full"\nfile = "/tmp/prof.log"\n' > cubecl.toml
rm -f /tmp/prof.log
T0=$(date +%s)
# shellcheck disable=SC2086
timeout "${LIMIT:-420}" "$BIN" $ARGS > "$OUT/profiled.out" 2> "$OUT/profiled.err"
echo "profiled run rc=$? after $(( $(date +%s) - T0 ))s"
rm -f cubecl.toml
python3 scripts/cubecl_profile_summary.py /tmp/prof.log "${ROWS:-60}" > "$OUT/kernels.txt"
gzip -c /tmp/prof.log > "$OUT/prof.log.gz"
head -40 "$OUT/kernels.txt" | cut -c1-160
