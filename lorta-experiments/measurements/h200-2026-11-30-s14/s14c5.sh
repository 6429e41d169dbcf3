#!/usr/bin/env bash
# session 14, call 5 (final binary): the ESMFold folding trunk's training step (12 blocks, L 256,
# bf16, sequence-to-pair as transformers) — PyTorch + PEFT LoRA r8 and ours LoRA r8 / LoRTA r8,
# cold kernel cache (the paper variant skipped: PAPER_LIMIT=1).
set -u
: "${OUT:?}"
G=.gpu
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
RESULT=$OUT/all.tgz; OUT=/tmp/fold REF_METHODS=lora OURS_METHODS=lora:8,lorta:8 PAPER_LIMIT=1 REF_LIMIT=150 OURS_LIMIT=300 TAR=$RESULT \
  bash scripts/gpu_fold_call.sh
