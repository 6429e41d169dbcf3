#!/usr/bin/env bash
# session 19, call 3: `fused::block_selectors` kept once made (an identity uploaded from host
# data per LLaMA layer and step before) — this commit's build against call 1's
# (`.gpu/lorta-experiments-prev.xz`), alternating: LLaMA-2-7B bf16 LoRA / LoRTA r4 beside PEFT
# LoRA r4; RoBERTa-base f32 / bf16 LoRA r8.
set -u
: "${OUT:?}"; W=/tmp/w19c3; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels-s19c3 XDG_RUNTIME_DIR=/tmp
T=$SECONDS
for b in lorta-experiments lorta-experiments-prev; do rm -f $G/$b; xz -dc $G/$b.xz > $G/$b; chmod +x $G/$b; done
NEW=$G/lorta-experiments; PREV=$G/lorta-experiments-prev
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; tar czf $OUT/s19c3.tgz -C $W . 2>/dev/null; }
go() { [ $SECONDS -lt ${STOP:-400} ]; }
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
p7() { local n=$1 lim=$2; shift 2; go || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.out 2> $W/$n.log; st $n $?; }
p7 new7-lora-cold  120 $NEW $P7 --methods lora
p7 peft7-lora-1    100 $PEFT7
p7 prev7-lora-1     60 $PREV $P7 --methods lora
p7 new7-lora-1      60 $NEW $P7 --methods lora
p7 new7-lorta-1     60 $NEW $P7 --methods lorta
p7 prev7-lorta-1    60 $PREV $P7 --methods lorta
p7 peft7-lora-2    100 $PEFT7
p7 new7-lora-2      60 $NEW $P7 --methods lora
p7 prev7-lora-2     60 $PREV $P7 --methods lora
p7 prev7-lorta-2    60 $PREV $P7 --methods lorta
p7 new7-lorta-2     60 $NEW $P7 --methods lorta
p7 peft7-lora-3    100 $PEFT7
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps --backend cuda"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
R="--model $G/roberta-base --random-weights"
ours() { local n=$1; shift; go || { st $n skipped; return; }
  timeout 90 "$@" --quiet --out /tmp/runs/$n > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
ours new-r32-cold $NEW train $R $TASK --dtype f32
ours new-r32      $NEW train $R $TASK --dtype f32
go && { timeout 90 python3 scripts/glue_peft_reference.py --out $W/peft-r32.json $R $PTASK --dtype f32 > $W/peft-r32.log 2>&1; st peft-r32 $?; }
ours new-rbf-cold $NEW train $R $TASK --dtype bf16
ours new-rbf      $NEW train $R $TASK --dtype bf16
go && { timeout 90 python3 scripts/glue_peft_reference.py --out $W/peft-rbf.json $R $PTASK --dtype bf16 > $W/peft-rbf.log 2>&1; st peft-rbf $?; }
cat $W/stages.txt
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-12s median %6.2f ms  first %6.2f s' % (n, r.get('median_step_ms') or 0, r.get('first_step_seconds') or 0))"
for f in $W/*7*.out; do python3 -c "
import json
for l in open('$f'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-16s %-6s median %6.1f ms  main thread %6.1f ms' % ('$(basename $f .out)', r.get('method'), r['ms_per_step'], r.get('main_thread_cpu_ms_per_step') or 0))" 2>/dev/null; done
tar czf $OUT/s19c3.tgz -C $W .
