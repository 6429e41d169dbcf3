#!/usr/bin/env bash
# session 11, call 1: (1) matmul survey: exact check of the routed kernels on attention-style
# (permuted-head) batched products, speed of the 7B products with rows and columns swapped;
# (2) 7B per-kernel profile with the HEAD binary (auto routing); (3) 7B auto vs PEFT timed.
set -u
OUT=${OUT:?}; mkdir -p $OUT
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
xz -dc $G/lorta-experiments.xz > $G/lorta-experiments && xz -dc $G/matmul-strategies.xz > $G/matmul-strategies && chmod +x $G/lorta-experiments $G/matmul-strategies
ALL=specialized_tma_mma,specialized_cyclic_mma,double_cyclic_mma
timeout 150 $G/matmul-strategies --iters 5 --strategies $ALL --check \
  --shapes 32x12x128x32x128tp,32x12x128x128x32p,32x12x128x32x128t,32x12x128x128x32,4x8x64x32x64tp,1x32x128x128x128tp,1x32x128x128x128p,384x128x32x128t \
  --json $OUT/matmul-check.json > $OUT/matmul-check.md 2> $OUT/matmul-check.err
echo "check rc=$? $((SECONDS-T))s" >> $OUT/stages.txt
timeout 120 $G/matmul-strategies --iters 20 --strategies $ALL,simple_tma_mma,simple_tma_cmma_multirows,ordered_double_mma_r8 \
  --shapes 128x4096x4096,128x4096x4096t,4096x4096x128,4096x4096x128t,128x4096x11008,11008x4096x128,128x11008x4096,128x11008x4096t,4096x11008x128,4096x11008x128t \
  --json $OUT/matmul-7b.json > $OUT/matmul-7b.md 2> $OUT/matmul-7b.err
echo "7b survey rc=$? $((SECONDS-T))s" >> $OUT/stages.txt
LIMIT=150 ROWS=80 OUT=$OUT/kprof bash scripts/gpu_kernel_profile.sh > $OUT/kprof.txt 2>&1
echo "kernel profile $((SECONDS-T))s" >> $OUT/stages.txt
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora,lorta --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
t0=$SECONDS; timeout 100 $G/lorta-experiments $P7 > $OUT/7b-auto.jsonl 2> $OUT/7b-auto.log; echo "7b auto rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
t0=$SECONDS; timeout 80 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 > $OUT/7b-peft.jsonl 2> $OUT/7b-peft.log; echo "7b peft rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
tar czf /tmp/all.tgz -C $OUT . && mv /tmp/all.tgz $OUT/all.tgz
cat $OUT/stages.txt
awk -F'|' 'NR>2 {print $2,$4,$5,$9,$10}' $OUT/matmul-check.md | cut -c1-150
awk -F'|' 'NR>2 {print $2,$4,$5,$6,$8}' $OUT/matmul-7b.md | cut -c1-150
head -45 $OUT/kprof/kernels.txt | cut -c1-170
cat $OUT/7b-auto.jsonl $OUT/7b-peft.jsonl | python3 -c '
import json,sys
for l in sys.stdin:
    try: r=json.loads(l)
    except Exception: continue
    print(r.get("impl"), r.get("method"), r.get("rank"), "median", r.get("ms_per_step"), "first", r.get("first_step_s", r.get("warmup_first_ms")))'
tail -3 $OUT/7b-auto.log $OUT/7b-peft.log
