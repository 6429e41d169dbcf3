#!/usr/bin/env bash
# session 15, call 1: (a) burn-fusion on/off for LLaMA-2-7B bf16 B1xT128 r4 (the default build
# against `--no-default-features --features ndarray,cuda`, same source), PEFT LoRA r4 before,
# and after; (b) the 3xTF32 exact product: parity checks on CUDA (every fixture) and
# RoBERTa-base f32 / bf16 GLUE steps beside PyTorch + PEFT.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
for b in lorta-experiments lorta-nofusion; do
  [ -x $G/$b ] || { xz -dc $G/$b.xz > $G/$b; chmod +x $G/$b; }
done
BIN=$G/lorta-experiments; NOF=$G/lorta-nofusion
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json --methods lora,lorta"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
run7() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-400} ] || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.jsonl 2> $W/$n.log; st $n $?; }
run7 peft7-1 100 $PEFT7
run7 fusion7-1 150 $BIN $P7
run7 nofusion7-1 150 env LORTA_KERNEL_CACHE=/tmp/lorta-kernels-nof $NOF $P7
run7 peft7-2 100 $PEFT7
[ $SECONDS -lt 480 ] && timeout 100 python3 scripts/gpu_checks.py --bin $BIN --backends ndarray,cuda --out $W/checks.md > $W/checks.log 2>&1; st checks $?
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-540} ] || { st $n skipped; return; }
  timeout ${LIM:-80} $BIN train --quiet --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-540} ] || { st $n skipped; return; }
  timeout ${LIM:-80} python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
R="--model $G/roberta-base --random-weights"
ours roberta-f32 $R $TASK --backend cuda --dtype f32
peft peft-roberta-f32 $R $PTASK --dtype f32
ours roberta-tf32 $R $TASK --backend cuda --dtype f32 --tf32
ours roberta-bf16 $R $TASK --backend cuda --dtype bf16
peft peft-roberta-bf16 $R $PTASK --dtype bf16
cat $W/stages.txt
for f in peft7-1 fusion7-1 nofusion7-1 peft7-2 nofusion7-2 fusion7-2; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-12s %-6s median %.1f  min %.1f  max %.1f  cpu/step %s' % ('$f', r.get('method'), r['ms_per_step'], r['ms_min'], r.get('ms_max', 0), r.get('main_thread_cpu_ms_per_step')))" 2>/dev/null; done
grep -h "warm-up step 1 " $W/fusion7-1.log $W/nofusion7-1.log | head -6
tail -25 $W/checks.md 2>/dev/null || tail -20 $W/checks.log
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-24s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
