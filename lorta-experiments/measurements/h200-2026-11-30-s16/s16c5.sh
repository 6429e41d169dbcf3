#!/usr/bin/env bash
# session 16, call 5 (final binary: split-K by default only for `g·W` with an inner dim >= 8192):
# LLaMA-2-7B bf16 B1 x T128 LoRA / LoRTA r4, default and `LORTA_SPLIT_K=0` alternating in warm
# processes, PyTorch + PEFT LoRA r4 before and after.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json --methods lora,lorta"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
run7() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-330} ] || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.jsonl 2> $W/$n.log; st $n $?; }
run7 peft7-1 90 $PEFT7
run7 ours7-cold 120 $BIN $P7
run7 split-1 70 $BIN $P7
run7 nosplit-1 70 env LORTA_SPLIT_K=0 $BIN $P7
run7 split-2 70 $BIN $P7
run7 nosplit-2 70 env LORTA_SPLIT_K=0 $BIN $P7
run7 peft7-2 90 $PEFT7
cat $W/stages.txt
for f in peft7-1 ours7-cold split-1 nosplit-1 split-2 nosplit-2 peft7-2; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-11s %-6s median %.1f  min %.1f  max %.1f  cpu/step %s' % ('$f', r.get('method'), r['ms_per_step'], r['ms_min'], r.get('ms_max', 0), r.get('main_thread_cpu_ms_per_step')))" 2>/dev/null; done
grep -h "warm-up step 1 " $W/ours7-cold.log | head -4
tar czf $OUT/all.tgz -C $W .
