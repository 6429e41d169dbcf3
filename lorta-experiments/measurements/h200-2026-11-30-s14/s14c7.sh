#!/usr/bin/env bash
# session 14, call 7 (final binary, 03c6951): LLaMA-2-7B bf16 B1xT128 LoRTA r4 alone in its process
# (every other row ran it after LoRA in the same process), twice, then PEFT LoRA r4.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json --methods lorta"
timeout 100 $G/lorta-experiments $P7 > $W/lorta-1.jsonl 2> $W/lorta-1.log; st lorta-1 $?
timeout 60 $G/lorta-experiments $P7 > $W/lorta-2.jsonl 2> $W/lorta-2.log; st lorta-2 $?
timeout 60 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 > $W/peft7.jsonl 2> $W/peft7.log; st peft7 $?
cat $W/stages.txt
for f in lorta-1 lorta-2 peft7; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-8s %-6s median %.1f  min %.1f  max %.1f  cpu/step %s' % ('$f', r.get('method'), r['ms_per_step'], r['ms_min'], r.get('ms_max', 0), r.get('main_thread_cpu_ms_per_step')))"; done
tar czf $OUT/all.tgz -C $W .
