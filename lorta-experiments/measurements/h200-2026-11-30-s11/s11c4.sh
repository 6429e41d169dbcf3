#!/usr/bin/env bash
# session 11, call 4: final binary (f32 rank-r products owned by `auto`: our backward splits
# grad·Mᵀ along its 4096-long inner dim). 7B: ours auto cold (census), PEFT, ours auto warm, ours
# default, PEFT again; split-K survey (bf16 chunks of the inner dim as a permuted batch); wgpu
# RoBERTa f32 vs PEFT f32; 7B LoRTA kernel profile. Only all.tgz in $OUT.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; xz -dc $G/matmul-strategies.xz > $G/matmul-strategies; chmod +x $G/lorta-experiments $G/matmul-strategies
BIN=$G/lorta-experiments
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora,lorta --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
LORTA_MATMUL_CENSUS=1 timeout 150 $BIN $P7 > $W/7b-auto-cold.jsonl 2> $W/7b-auto-cold.log; st 7b-auto-cold $?
timeout 80 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 > $W/7b-peft-1.jsonl 2> $W/7b-peft-1.log; st 7b-peft-1 $?
timeout 80 $BIN $P7 > $W/7b-auto-warm.jsonl 2> $W/7b-auto-warm.log; st 7b-auto-warm $?
timeout 120 $BIN $P7 --matmul-kernel default > $W/7b-default.jsonl 2> $W/7b-default.log; st 7b-default $?
timeout 80 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 > $W/7b-peft-2.jsonl 2> $W/7b-peft-2.log; st 7b-peft-2 $?
timeout 60 $G/matmul-strategies --iters 20 --strategies specialized_tma_mma,specialized_cyclic_mma,double_cyclic_mma,ordered_double_mma_r8 \
  --shapes 128x4096x4096,1x2x128x2048x4096p,1x4x128x1024x4096p,1x8x128x512x4096p,128x11008x4096,1x4x128x2752x4096p \
  --json $W/splitk.json > $W/splitk.md 2> $W/splitk.err; st splitk $?
# wgpu (Vulkan loader from .gl), RoBERTa-base architecture, random weights, f32, vs PEFT f32
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
COMMON="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps --model $G/roberta-base --random-weights"
for run in wgpu-f32-cold wgpu-f32-warm; do
  timeout 120 $BIN train --quiet --out /tmp/runs/$run --backend wgpu $COMMON > $W/roberta-$run.log 2>&1; st roberta-$run $?
  cp /tmp/runs/$run/run.json $W/roberta-$run.json 2>/dev/null
done
timeout 90 python3 scripts/glue_peft_reference.py --out $W/peft-roberta-f32.json --model $G/roberta-base --random-weights --task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16 --dtype f32 > $W/peft-roberta-f32.log 2>&1; st peft-roberta-f32 $?
if [ $SECONDS -lt 470 ]; then
  LIMIT=90 ROWS=60 METHODS=lorta OUT=$W/kprof bash scripts/gpu_kernel_profile.sh > $W/kprof.txt 2>&1; st kprof 0
fi
cat $W/stages.txt
for f in 7b-auto-cold 7b-peft-1 7b-auto-warm 7b-default 7b-peft-2; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    print('$f', r.get('method'), r.get('rank'), 'median %.1f'%r['ms_per_step'], 'min %.1f'%r['ms_min'], 'max %.1f'%r['ms_max'])"; done
grep "warm-up step" $W/7b-auto-cold.log $W/7b-auto-warm.log | head -8
awk -F'|' 'NR>2 {print $2,$4,$5,$6}' $W/splitk.md
python3 -c "
import json
for n in ['roberta-wgpu-f32-cold','roberta-wgpu-f32-warm','peft-roberta-f32']:
    try: r=json.load(open('$W/'+n+'.json'))
    except Exception as e: print(n, 'missing', e); continue
    print(n, r.get('median_step_ms'), r.get('first_step_seconds'))"
tail -2 $W/roberta-wgpu-f32-cold.log
sed -n '/matmul census/,/^$/p' $W/7b-auto-cold.log | head -20
head -30 $W/kprof/kernels.txt 2>/dev/null | cut -c1-140
tar czf $OUT/all.tgz -C $W .
