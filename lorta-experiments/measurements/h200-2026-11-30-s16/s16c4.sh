#!/usr/bin/env bash
# session 16, call 4: split-K for few-row bf16 products (`cube_matmul::split_k`). (a) the routed
# product as the models run it (`matmul-strategies --routed --check`: with and without split-K,
# error against the exact host product of the same bf16 operands) on LLaMA-2-7B's 128-token
# products; (b) LLaMA-2-7B bf16 B1 x T128 LoRA / LoRTA r4 with split-K (default) and
# `LORTA_SPLIT_K=0`, warm processes, beside PyTorch + PEFT LoRA r4 before and after.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
for b in lorta-experiments matmul-strategies; do
  [ -x $G/$b ] || { xz -dc $G/$b.xz > $G/$b; chmod +x $G/$b; }
done
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
SH="128x4096x4096t,128x4096x4096,128x4096x11008t,128x11008x4096t,128x11008x4096,128x4096x11008,512x4096x4096t,256x11008x4096"
timeout 200 $G/matmul-strategies --dtypes bf16 --shapes $SH --iters 30 --strategies ordered_double_mma_r8 --routed --check --json $W/routed.json > $W/routed.md 2> $W/routed.log; st routed $?
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json --methods lora,lorta"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
run7() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-520} ] || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.jsonl 2> $W/$n.log; st $n $?; }
run7 peft7-1 100 $PEFT7
run7 ours7-cold 150 $BIN $P7
run7 ours7-warm 90 $BIN $P7
run7 ours7-nosplit 120 env LORTA_SPLIT_K=0 $BIN $P7
run7 peft7-2 100 $PEFT7
run7 ours7-warm2 90 $BIN $P7
cat $W/stages.txt
grep -E "lorta_routed|ordered" $W/routed.md | awk -F'|' '{printf "%-18s %-26s %s ms  err %s\n", $2, $4, $5, $10}'
grep -h "note:" $W/routed.log | head
for f in peft7-1 ours7-cold ours7-warm ours7-nosplit peft7-2 ours7-warm2; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-14s %-6s median %.1f  min %.1f  max %.1f  cpu/step %s' % ('$f', r.get('method'), r['ms_per_step'], r['ms_min'], r.get('ms_max', 0), r.get('main_thread_cpu_ms_per_step')))" 2>/dev/null; done
grep -h "warm-up step 1 " $W/ours7-cold.log | head -4
tar czf $OUT/all.tgz -C $W .
