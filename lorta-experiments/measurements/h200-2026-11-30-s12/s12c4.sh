#!/usr/bin/env bash
# session 12, call 4: after call 3, LLaMA's attention block (head split, RoPE, attention, head
# merge) as one autodiff node, LoRA's scaling once per group and its O site through the fused
# update join. Ours cold, then PEFT and ours alternated; LORTA_FUSED_OPS=rms_norm,add_update once
# (both attentions composite) for the A/B. Then a LoRTA kernel profile (launch counts).
# Only all.tgz in $OUT.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
BIN=$G/lorta-experiments
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
PEFT="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
timeout 150 $BIN $P7 --methods lora,lorta > $W/ours-cold.jsonl 2> $W/ours-cold.log; st ours-cold $?
timeout 80 $PEFT > $W/peft-1.jsonl 2> $W/peft-1.log; st peft-1 $?
timeout 80 $BIN $P7 --methods lora,lorta > $W/ours-warm-1.jsonl 2> $W/ours-warm-1.log; st ours-warm-1 $?
timeout 80 $PEFT > $W/peft-2.jsonl 2> $W/peft-2.log; st peft-2 $?
timeout 80 $BIN $P7 --methods lora,lorta > $W/ours-warm-2.jsonl 2> $W/ours-warm-2.log; st ours-warm-2 $?
LORTA_FUSED_OPS=rms_norm,add_update timeout 80 $BIN $P7 --methods lora,lorta > $W/ours-no-attention.jsonl 2> $W/ours-no-attention.log; st ours-no-attention $?
timeout 80 $PEFT > $W/peft-3.jsonl 2> $W/peft-3.log; st peft-3 $?
timeout 80 $BIN $P7 --methods lora,lorta > $W/ours-warm-3.jsonl 2> $W/ours-warm-3.log; st ours-warm-3 $?
if [ $((SECONDS-T)) -lt 420 ]; then
  LIMIT=60 ROWS=40 METHODS=lorta OUT=$W/kprof bash scripts/gpu_kernel_profile.sh > $W/kprof.txt 2>&1; st kprof $?
fi
cat $W/stages.txt
for f in ours-cold peft-1 ours-warm-1 peft-2 ours-warm-2 ours-no-attention peft-3 ours-warm-3; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    c=r.get('main_thread_cpu_ms_per_step'); p=r.get('process_cpu_ms_per_step')
    print('%-20s %-6s r%s median %6.1f min %6.1f max %6.1f  cpu main %s proc %s' % ('$f', r.get('method'), r.get('rank'), r['ms_per_step'], r['ms_min'], r['ms_max'], c and round(c,1), p and round(p,1)))"; done
grep -h "warm-up step" $W/ours-cold.log $W/ours-warm-1.log | head -8
head -8 $W/kprof/kernels.txt 2>/dev/null | cut -c1-120
tar czf $OUT/all.tgz -C $W .
