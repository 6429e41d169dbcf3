#!/usr/bin/env bash
# session 13, call 2: persistent weight allocation + stacked_block/stacked_columns + RoPE on rows.
# LLaMA-2-7B bf16 B1xT128 r4 (LoRA, LoRTA): ours cold, PEFT, ours warm, A/B switches
# (LORTA_PERSISTENT_WEIGHTS=0; LORTA_FUSED_OPS without stacked_block), PEFT, ours warm, then
# `perf record` of a LoRTA run (per-thread self time). Only all.tgz in $OUT.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
xz -dc $G/lorta-full.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
tar xJf $G/perf.txz -C /tmp; PERF="env LD_LIBRARY_PATH=/tmp/perfb/lib /tmp/perfb/perf"
BIN=$G/lorta-experiments
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
timeout 150 $BIN $P7 --methods lora,lorta > $W/ours-cold.jsonl 2> $W/ours-cold.log; st ours-cold $?
timeout 80 $PEFT7 > $W/peft-1.jsonl 2> $W/peft-1.log; st peft-1 $?
timeout 80 $BIN $P7 --methods lora,lorta > $W/ours-warm-1.jsonl 2> $W/ours-warm-1.log; st ours-warm-1 $?
LORTA_PERSISTENT_WEIGHTS=0 timeout 80 $BIN $P7 --methods lora,lorta > $W/ours-no-persistent.jsonl 2> $W/ours-no-persistent.log; st ours-no-persistent $?
LORTA_FUSED_OPS=rms_norm,layer_norm,attention,add_update,swiglu timeout 80 $BIN $P7 --methods lora,lorta > $W/ours-no-block.jsonl 2> $W/ours-no-block.log; st ours-no-block $?
timeout 80 $PEFT7 > $W/peft-2.jsonl 2> $W/peft-2.log; st peft-2 $?
timeout 80 $BIN $P7 --methods lora,lorta > $W/ours-warm-2.jsonl 2> $W/ours-warm-2.log; st ours-warm-2 $?
timeout 80 $PERF record -F 997 -o /tmp/perf.data $BIN $P7 --methods lorta --steps 60 > $W/ours-perf.jsonl 2> $W/ours-perf.log; st ours-perf $?
for c in $(cd /tmp && $PERF report -i /tmp/perf.data --sort comm --stdio 2>/dev/null | grep -v '^#' | awk 'NF>=2 && $1 ~ /%/ {print $2}' | head -4); do
  echo "== $c" >> $W/perf-threads.txt
  (cd /tmp && $PERF report -i /tmp/perf.data --comm "$c" --sort dso,sym --stdio 2>/dev/null) | grep -v '^#' | grep -v '^$' | head -60 | cut -c1-200 >> $W/perf-threads.txt
done
(cd /tmp && $PERF report -i /tmp/perf.data --sort comm --stdio 2>/dev/null) | grep -v '^#' | grep -v '^$' | head -8 > $W/perf-comm.txt
cat $W/stages.txt
for f in ours-cold peft-1 ours-warm-1 ours-no-persistent ours-no-block peft-2 ours-warm-2 ours-perf; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    c=r.get('main_thread_cpu_ms_per_step'); p=r.get('process_cpu_ms_per_step')
    print('%-18s %-6s median %6.1f min %6.1f max %6.1f cpu main %s proc %s' % ('$f', r.get('method'), r['ms_per_step'], r['ms_min'], r['ms_max'], c and round(c,1), p and round(p,1)))"; done
grep -h "warm-up step 1" $W/ours-cold.log $W/ours-warm-1.log | head -4
cat $W/perf-comm.txt
grep -A8 "^==" $W/perf-threads.txt | cut -c1-140 | head -40
tar czf $OUT/all.tgz -C $W .
