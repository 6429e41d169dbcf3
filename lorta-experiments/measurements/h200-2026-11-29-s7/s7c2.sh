#!/usr/bin/env bash
# session 7, call 2 (fresh machine): shape rewrites (lorta_core::shapes) on LLaMA-2-7B bf16 (vs PEFT), the folding
# trunk (fusion build, vs transformers + PEFT) and RoBERTa-base f32/bf16 (vs PEFT); rewrites on/off A/B
set -u
OUT=${OUT:?}; R=/tmp/s7c2; mkdir -p $R
G=.gpu
python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"; chmod +x $G/lorta-experiments
left() { echo $(( ${BUDGET:-565} - SECONDS )); }
cap() { local a=$1 b=$(left); [ $a -lt $b ] && echo $a || echo $b; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $R/gpu.txt 2>&1
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels PYTHONUNBUFFERED=1
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
# 1. 7B: default rewrites (cold), + transpose experiment (warm), PEFT
T=$SECONDS; timeout $(cap 110) $G/lorta-experiments $P7 --methods lora,lorta > $R/7b-default.jsonl 2> $R/7b-default.err; echo "7b-default rc=$? $((SECONDS-T))s" >> $R/stages.txt
T=$SECONDS; LORTA_SHAPE_REWRITES=default,transpose timeout $(cap 80) $G/lorta-experiments $P7 --methods lora,lorta > $R/7b-transpose.jsonl 2> $R/7b-transpose.err; echo "7b-transpose rc=$? $((SECONDS-T))s" >> $R/stages.txt
T=$SECONDS; timeout $(cap 70) python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 > $R/7b-peft.jsonl 2> $R/7b-peft.err; echo "7b-peft rc=$? $((SECONDS-T))s" >> $R/stages.txt
# 2. RoBERTa-base (random weights) f32 and bf16, rewrites on (default) and off; PEFT
RB="train --quiet --backend cuda --model $G/roberta-base --random-weights --task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
T=$SECONDS
for v in "f32 default" "f32 none" "bf16 default" "bf16 none"; do
  set -- $v
  LORTA_SHAPE_REWRITES=$2 timeout $(cap 40) $G/lorta-experiments $RB --dtype $1 --out /tmp/rb-$1-$2 > $R/rb-$1-$2.log 2>&1
  python3 -c "import json; r=json.load(open('/tmp/rb-$1-$2/run.json')); print('ours roberta $1 rewrites=$2', round(r.get('median_step_ms'),2), 'first', round(r.get('first_step_seconds'),1))" >> $R/rb.txt 2>&1
done
for d in f32 bf16; do
  timeout $(cap 40) python3 scripts/glue_peft_reference.py --out /tmp/peft-rb-$d.json --model $G/roberta-base --random-weights --task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16 --dtype $d > $R/peft-rb-$d.log 2>&1
  python3 -c "import json; d=json.load(open('/tmp/peft-rb-$d.json')); print('peft roberta $d', round(d['median_step_ms'],2))" >> $R/rb.txt 2>&1
done
echo "roberta $((SECONDS-T))s" >> $R/stages.txt
# 3. folding trunk, 12 blocks, L256, bf16: transformers + PEFT LoRA r8, ours LoRA r8 / LoRTA r8 (fusion build, rewrites on)
T=$SECONDS
export CUBECL_DEBUG_LOG=$R/cubecl-fold.log
REF_METHODS=lora OURS_METHODS=lora:8,lorta:8 STEPS=10 WARMUP=2 REF_LIMIT=$(cap 80) OURS_LIMIT=$(( $(left) - 15 )) PAPER_LIMIT=1 \
  OUT=$R/fold bash scripts/gpu_fold_call.sh > $R/fold.md 2>&1
echo "fold $((SECONDS-T))s kernels=$(grep -c START_KERNEL_COMPILATION $R/cubecl-fold.log 2>/dev/null)" >> $R/stages.txt
unset CUBECL_DEBUG_LOG; gzip -f $R/cubecl-fold.log
tar czf $OUT/s7c2.tgz -C $R .
cat $R/stages.txt; for f in 7b-default 7b-transpose 7b-peft; do cut -c1-140 $R/$f.jsonl; done; cat $R/rb.txt; tail -5 $R/fold.md; grep -h "step\|ms" $R/fold/ours-s2p.err | tail -4
