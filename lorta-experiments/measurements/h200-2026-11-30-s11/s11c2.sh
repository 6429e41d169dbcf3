#!/usr/bin/env bash
# session 11, call 2: the HEAD binary (blocked row broadcasts in RMSNorm/LayerNorm/LoRTA, RoPE by
# one flip, ordered double buffering for column-major right sides, batched column-major products
# kept off the cyclic kernels): 7B auto (census) / default / PEFT in one call; exact check of the
# 2-D column-major kernels; RoBERTa bf16 default / auto up to 8192 rows / PEFT; 7B kernel profile.
set -u
OUT=${OUT:?}; mkdir -p $OUT
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
xz -dc $G/lorta-experiments.xz > $G/lorta-experiments && xz -dc $G/matmul-strategies.xz > $G/matmul-strategies && chmod +x $G/lorta-experiments $G/matmul-strategies
BIN=$G/lorta-experiments
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora,lorta --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
t0=$SECONDS; LORTA_MATMUL_CENSUS=1 timeout 150 $BIN $P7 > $OUT/7b-auto-cold.jsonl 2> $OUT/7b-auto-cold.log; echo "7b auto cold rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
t0=$SECONDS; timeout 80 $BIN $P7 > $OUT/7b-auto.jsonl 2> $OUT/7b-auto.log; echo "7b auto warm rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
t0=$SECONDS; timeout 120 $BIN $P7 --matmul-kernel default > $OUT/7b-default.jsonl 2> $OUT/7b-default.log; echo "7b default rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
t0=$SECONDS; timeout 80 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 > $OUT/7b-peft.jsonl 2> $OUT/7b-peft.log; echo "7b peft rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
timeout 90 $G/matmul-strategies --iters 10 --strategies ordered_double_mma_r8,specialized_tma_mma --check \
  --shapes 128x4096x4096t,128x4096x11008t,128x11008x4096t,4096x768x768t \
  --json $OUT/matmul-check.json > $OUT/matmul-check.md 2> $OUT/matmul-check.err
echo "check rc=$? $((SECONDS-T))s" >> $OUT/stages.txt
RES=$OUT/glue.jsonl
ours() {
  local label=$1; shift
  local dir=/tmp/runs/$label; rm -rf "$dir"
  if timeout ${LIMIT:-90} $BIN train --quiet --out "$dir" "$@" >"$OUT/$label.log" 2>&1; then
    python3 -c "import json,sys; r=json.load(open('$dir/run.json')); r.pop('step_ms',None); r['label']='$label'; print(json.dumps(r))" >>"$RES"
  else echo "{\"label\": \"$label\", \"error\": \"see $label.log\"}" >>"$RES"; fi
}
COMMON="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps --dtype bf16 --model $G/roberta-base --random-weights --backend cuda"
if [ $SECONDS -lt 330 ]; then
  ours roberta-default $COMMON --matmul-kernel default
  LORTA_MATMUL_AUTO_MAX_ROWS=8192 ours roberta-auto8192 $COMMON
  timeout 90 python3 scripts/glue_peft_reference.py --out /tmp/peft-rob.json --model $G/roberta-base --random-weights --task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16 --dtype bf16 > $OUT/peft-roberta.log 2>&1 \
    && python3 -c "import json; d=json.load(open('/tmp/peft-rob.json')); d.pop('history',None); d['label']='peft-roberta'; print(json.dumps(d))" >> $RES
  echo "roberta $((SECONDS-T))s" >> $OUT/stages.txt
fi
if [ $SECONDS -lt 400 ]; then
  LIMIT=90 ROWS=60 METHODS=lorta OUT=$OUT/kprof bash scripts/gpu_kernel_profile.sh > $OUT/kprof.txt 2>&1
  echo "kernel profile $((SECONDS-T))s" >> $OUT/stages.txt
fi
tar czf /tmp/all.tgz -C $OUT . && mv /tmp/all.tgz $OUT/all.tgz
cat $OUT/stages.txt
for f in 7b-auto-cold 7b-auto 7b-default 7b-peft; do python3 -c "
import json,sys
for l in open('$OUT/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    print('$f', r.get('method'), r.get('rank'), 'median %.1f'%r['ms_per_step'], 'min %.1f'%r['ms_min'])"; done
grep -i "first\|warm" $OUT/7b-auto-cold.log | head -4
awk -F'|' 'NR>2 {print $2,$4,$5,$10}' $OUT/matmul-check.md
python3 -c "
import json
for l in open('$RES'):
    r=json.loads(l); print(r.get('label'), r.get('error') or '', r.get('median_step_ms', r.get('ms_per_step_median', '')), r.get('first_step_seconds',''))"
sed -n '/matmul census/,/^$/p' $OUT/7b-auto-cold.log | head -45
head -25 $OUT/kprof/kernels.txt 2>/dev/null | cut -c1-150
