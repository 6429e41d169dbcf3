#!/usr/bin/env bash
# session 7, call 3: SmolLM2 COPA rows (ours LoRA r8, LoRTA r8, PyTorch + PEFT LoRA r8) and DPO (ours, TRL + PEFT)
# in one call; binary and first GGUF half from the calls before (same warm machine)
set -u
OUT=${OUT:?}; R=/tmp/s7c3; mkdir -p $R
G=.gpu
[ -x $G/lorta-experiments ] || { echo "binary missing: machine was not kept"; exit 3; }
cat $G/smolA/part $G/smolB/part > $G/SmolLM2-135M-Instruct.Q4_1.gguf
sha256sum $G/SmolLM2-135M-Instruct.Q4_1.gguf | cut -c1-16 | tee $R/gguf.sha
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $R/gpu.txt 2>&1
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels PYTHONUNBUFFERED=1
T3_LIMIT=170 T3_METHODS=lora-r8,lorta-r8 PY_FULL=0 PY_LIMIT=130 PY_STEPS=40 DPO_LIMIT=70 DPO_STEPS=30 WHEELS=$G/wheels \
  OUT=$R/llm timeout ${BUDGET:-560} bash scripts/gpu_llm_call.sh > $R/llm.md 2> $R/llm.err
echo "llm done $SECONDS s" >> $R/stages.txt
tar czf $OUT/s7c3.tgz -C $R .
cat $R/stages.txt; cat $R/llm/stages.txt; tail -9 $R/llm.md; tail -3 $R/llm/trl.err
