#!/usr/bin/env bash
# session 10, call 1: (1) matmul kernel survey (cubek strategies on our products' shapes, bf16),
# (2) trunk table: PEFT LoRA r8 vs ours LoRA r8 (stacked A factors, new) / LoRTA r8, (3) ours LoRA r8
# with LORTA_STACKED_LORA=0 on the same warm kernel cache (A/B of the stacking).
set -u
OUT=${OUT:?}; R=$OUT; mkdir -p $R
G=.gpu
for b in lorta-experiments matmul-strategies; do
  [ -x $G/$b ] || { python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/$b.xz'), open('$G/$b','wb'))"; chmod +x $G/$b; }
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $R/gpu.txt 2>&1
T=$SECONDS
timeout ${SURVEY_LIMIT:-200} $G/matmul-strategies --json $R/matmul-bf16.json > $R/matmul-bf16.md 2> $R/matmul-bf16.err
echo "matmul survey rc=$? $((SECONDS-T))s" >> $R/stages.txt
T=$SECONDS
REF_METHODS=lora OURS_METHODS=lora:8,lorta:8 STEPS=20 WARMUP=3 PAPER_LIMIT=1 REF_LIMIT=200 OURS_LIMIT=200 \
  OUT=$R/trunk bash scripts/gpu_fold_call.sh > $R/trunk-table.md 2>&1
echo "trunk table $((SECONDS-T))s" >> $R/stages.txt
T=$SECONDS
LORTA_STACKED_LORA=0 timeout 150 $G/lorta-experiments fold --profile --preset gpu --backend cuda --dtype bf16 --length 256 --blocks 12 \
  --dims 1024,128,32 --profile-steps 20 --warmup 3 --quiet --kernel-cache /tmp/kc/cubecl --pair-update s2p --methods lora:8 \
  --out $R/trunk-unstacked > $R/trunk-unstacked.jsonl 2> $R/trunk-unstacked.err
echo "trunk unstacked rc=$? $((SECONDS-T))s" >> $R/stages.txt
cat $R/stages.txt
grep -v "^| .*unavailable" $R/matmul-bf16.md | head -5
cat $R/matmul-bf16.err | tail -15
tail -6 $R/trunk-table.md
python3 -c "
import json
for l in open('$R/trunk-unstacked.jsonl'):
    if l.startswith('{'):
        r=json.loads(l); print('unstacked', r['method'], r['ms_median'], r.get('peak_memory_bytes'))
"
