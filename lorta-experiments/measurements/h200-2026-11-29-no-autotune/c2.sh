#!/usr/bin/env bash
# session 6, call 2: SmolLM2 COPA rows + DPO vs PEFT/TRL (binary and first GGUF half from call 1)
set -u
OUT=${OUT:?}; R=/tmp/c2; mkdir -p $R
G=.gpu
[ -x $G/lorta-experiments ] || { echo "binary missing: machine was not kept"; exit 3; }
cat $G/smolA/part $G/smolB/part > $G/SmolLM2-135M-Instruct.Q4_1.gguf
sha256sum $G/SmolLM2-135M-Instruct.Q4_1.gguf | cut -c1-16 | tee $R/gguf.sha
python3 -m pip install --no-deps -q $G/wheels/gguf-*.whl $G/wheels/trl-*.whl > $R/pip.log 2>&1
python3 -c "import gguf, trl, datasets, accelerate; print('python deps ok', trl.__version__)" >> $R/stages.txt 2>&1
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels PYTHONUNBUFFERED=1
T3_LIMIT=150 T3_METHODS=lora-r8,lorta-r8 PY_LIMIT=45 PY_STEPS=40 DPO_LIMIT=60 DPO_STEPS=30 \
  OUT=$R/llm timeout 420 bash scripts/gpu_llm_call.sh > $R/llm.md 2> $R/llm.err
echo "llm done $SECONDS s" >> $R/stages.txt
tar czf $OUT/c2.tgz -C $R .
cat $R/stages.txt; cat $R/llm/stages.txt; tail -9 $R/llm.md
