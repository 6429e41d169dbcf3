#!/usr/bin/env bash
# session 19, call 2: the same source built without burn-fusion (`--no-default-features
# --features ndarray,cuda`; session 14 measured it level with the fused build on LLaMA-2-7B,
# before the hand-fused layer operations, which both builds have) against the default build,
# alternating: LLaMA-2-7B bf16 LoRA / LoRTA r4 beside PEFT LoRA r4; RoBERTa-base f32 / bf16.
set -u
: "${OUT:?}"; W=/tmp/w19c2; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels-s19c2 XDG_RUNTIME_DIR=/tmp
T=$SECONDS
for b in lorta-experiments lorta-experiments-nf; do rm -f $G/$b; xz -dc $G/$b.xz > $G/$b; chmod +x $G/$b; done
ON=$G/lorta-experiments; NF="env LORTA_KERNEL_CACHE=/tmp/lorta-kernels-s19c2-nf $G/lorta-experiments-nf"
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; tar czf $OUT/s19c2.tgz -C $W . 2>/dev/null; }
go() { [ $SECONDS -lt ${STOP:-480} ]; }
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
p7() { local n=$1 lim=$2; shift 2; go || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.out 2> $W/$n.log; st $n $?; }
p7 on7-lora-cold  120 $ON $P7 --methods lora
p7 nf7-lora-cold  120 $NF $P7 --methods lora
p7 peft7-lora-1   100 $PEFT7
p7 on7-lora-1      60 $ON $P7 --methods lora
p7 nf7-lora-1      60 $NF $P7 --methods lora
p7 on7-lorta-1     60 $ON $P7 --methods lorta
p7 nf7-lorta-1     90 $NF $P7 --methods lorta
p7 peft7-lora-2   100 $PEFT7
p7 nf7-lora-2      60 $NF $P7 --methods lora
p7 on7-lora-2      60 $ON $P7 --methods lora
p7 nf7-lorta-2     60 $NF $P7 --methods lorta
p7 on7-lorta-2     60 $ON $P7 --methods lorta
p7 peft7-lora-3   100 $PEFT7
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps --backend cuda"
R="--model $G/roberta-base --random-weights"
ours() { local n=$1; shift; go || { st $n skipped; return; }
  timeout 90 "$@" --quiet --out /tmp/runs/$n > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
ours nf-rbf-cold $NF train $R $TASK --dtype bf16
ours nf-rbf      $NF train $R $TASK --dtype bf16
ours on-rbf-cold $ON train $R $TASK --dtype bf16
ours on-rbf      $ON train $R $TASK --dtype bf16
ours nf-r32-cold $NF train $R $TASK --dtype f32
ours nf-r32      $NF train $R $TASK --dtype f32
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
tar czf $OUT/s19c2.tgz -C $W .
