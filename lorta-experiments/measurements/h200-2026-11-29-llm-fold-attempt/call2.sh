#!/usr/bin/env bash
# session 5, call 2: SmolLM2 COPA rows + DPO vs PEFT/TRL (issue 10 part 5); RoBERTa-base step time vs PEFT
set -u
OUT=${OUT:?}
G=.gpu
[ -x $G/lorta-experiments ] || { echo "binary missing: machine was not kept"; exit 3; }
cat $G/smolA/part $G/smolB/part > $G/SmolLM2-135M-Instruct.Q4_1.gguf
sha256sum $G/SmolLM2-135M-Instruct.Q4_1.gguf | cut -c1-16 | tee $OUT/gguf.sha
python3 -c "import gguf" 2>/dev/null || pip install --no-deps -q $G/wheels/gguf-*.whl 2>&1 | tail -1
python3 -c "import trl" 2>/dev/null || pip install --no-deps -q $G/wheels/trl-*.whl 2>&1 | tail -1
python3 -c "import gguf, trl, datasets, accelerate; print('python deps ok', trl.__version__)" 2>&1 | tail -1 | tee -a $OUT/stages.txt
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels PYTHONUNBUFFERED=1
T3_LIMIT=${T3_LIMIT:-230} T3_METHODS=${T3_METHODS:-lora-r8,lorta-r4,lorta-r8,ft} PY_LIMIT=${PY_LIMIT:-70} PY_STEPS=40 DPO_LIMIT=${DPO_LIMIT:-80} DPO_STEPS=30 \
  OUT=$OUT/llm bash scripts/gpu_llm_call.sh > $OUT/llm.md 2> $OUT/llm.err
echo "llm done $SECONDS s" | tee -a $OUT/stages.txt
cat $OUT/llm.md | tail -25
