#!/usr/bin/env bash
# session 7, call 5: DPO on SmolLM2 HH-RLHF, ours (LoRA r8, LoRTA r8) and TRL + PEFT (GGUF loading fixed) in one call;
# binary and first GGUF half from call 4 (same warm machine)
set -u
OUT=${OUT:?}; R=/tmp/s7c5; mkdir -p $R
G=.gpu
[ -x $G/lorta-experiments ] || { echo "binary missing: machine was not kept"; exit 3; }
cat $G/smolA/part $G/smolB/part > $G/SmolLM2-135M-Instruct.Q4_1.gguf
sha256sum $G/SmolLM2-135M-Instruct.Q4_1.gguf | cut -c1-16 | tee $R/gguf.sha
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $R/gpu.txt 2>&1
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels PYTHONUNBUFFERED=1
STAGES=dpo PY_LIMIT=120 DPO_LIMIT=75 DPO_STEPS=30 WHEELS=$G/wheels OUT=$R/llm TAR=$OUT/s7c5.tgz \
  timeout ${BUDGET:-330} bash scripts/gpu_llm_call.sh > $R/llm.md 2> $R/llm.err
echo "llm done $SECONDS s" >> $R/stages.txt
cat $R/stages.txt; cat $R/llm/stages.txt; tail -6 $R/llm.md; tail -3 $R/llm/trl.err | cut -c1-300; cat $R/llm/trl.jsonl | cut -c1-400
