#!/usr/bin/env bash
# session 9, call 1 (fresh machine): (1) the folding trunk's training step at L 256, 12 blocks, bf16 —
# PyTorch + PEFT LoRA r8 and ours LoRA r8 / LoRTA r8 in this one call (scripts/gpu_fold_call.sh, own
# kernel cache); (2) then `fold --preset gpu` as one uninterrupted process with an empty kernel cache,
# started in its own session (setsid) so that it outlives this call; s9wait.sh collects it.
set -u
OUT=${OUT:?}; R=/tmp/s9; mkdir -p $R
G=.gpu
[ -x $G/lorta-experiments ] || { python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"; chmod +x $G/lorta-experiments; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $R/gpu.txt 2>&1
T=$SECONDS
REF_METHODS=lora OURS_METHODS=lora:8,lorta:8 STEPS=20 WARMUP=3 PAPER_LIMIT=1 REF_LIMIT=200 OURS_LIMIT=280 \
  OUT=$R/trunk bash scripts/gpu_fold_call.sh > $R/trunk-table.md 2>&1
echo "trunk table $((SECONDS-T))s" >> $R/stages.txt
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels LORTA_PROTEIN_DATA=$PWD/$G/proteins
rm -rf /tmp/lorta-kernels /tmp/fold-gpu
date -u +%FT%TZ > $R/fold.start
setsid nohup bash -c "S=\$(date +%s); $G/lorta-experiments fold --preset gpu --backend cuda --out /tmp/fold-gpu > $R/fold.out 2> $R/fold.err; echo \"fold --preset gpu rc=\$? \$((\$(date +%s)-S))s\" > $R/fold.done" > /dev/null 2>&1 < /dev/null &
LIM=$(( ${BUDGET:-570} - SECONDS )) bash lorta-experiments/measurements/h200-2026-11-30-s9/s9wait.sh
cat $R/trunk-table.md | tail -12
