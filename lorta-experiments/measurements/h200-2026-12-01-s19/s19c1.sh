#!/usr/bin/env bash
# session 19, call 1: `fused::linear`'s backward products plain (TF32) like every exact product's,
# where session 18's were exact (RoBERTa-base f32 LoRA +3 ms in s18's call): RoBERTa-base f32
# default / session 17's step (`OFF`) / the join alone off, alternating beside two PEFT runs;
# RoBERTa-base bf16 and MiniLM (random weights) f32 / bf16 beside PEFT; LLaMA-2-7B bf16 LoRA and
# LoRTA r4 beside three PEFT LoRA r4 runs (PEFT's own step moves between calls).
set -u
: "${OUT:?}"; W=/tmp/w19; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels-s19 XDG_RUNTIME_DIR=/tmp
T=$SECONDS
rm -f $G/lorta-experiments; xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
BIN=$G/lorta-experiments
# one archive, rewritten after every stage: at most 8 files come back, and a call cut short
# still returns what ran
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; tar czf $OUT/s19c1.tgz -C $W . 2>/dev/null; }
go() { [ $SECONDS -lt ${STOP:-480} ]; }
OFF="env LORTA_FLAT_JOIN=0 LORTA_FUSED_OPS=rms_norm,layer_norm,attention,add_update,swiglu,stacked_block"
JOIN_OFF="env LORTA_FLAT_JOIN=0"
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps --backend cuda"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
R="--model $G/roberta-base --random-weights"; M="--model $G/minilm-random --random-weights"
ours() { local n=$1; shift; go || { st $n skipped; return; }
  timeout 90 "$@" --quiet --out /tmp/runs/$n > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; go || { st $n skipped; return; }
  timeout 90 python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
ours r32-cold      $BIN train $R $TASK --dtype f32
ours r32-on        $BIN train $R $TASK --dtype f32
ours r32-off       $OFF $BIN train $R $TASK --dtype f32
peft peft-r32      $R $PTASK --dtype f32
ours r32-on-2      $BIN train $R $TASK --dtype f32
ours r32-joinoff   $JOIN_OFF $BIN train $R $TASK --dtype f32
ours r32-off-2     $OFF $BIN train $R $TASK --dtype f32
peft peft-r32-2    $R $PTASK --dtype f32
ours rbf-cold      $BIN train $R $TASK --dtype bf16
ours rbf-on        $BIN train $R $TASK --dtype bf16
peft peft-rbf      $R $PTASK --dtype bf16
ours m32-cold      $BIN train $M $TASK --dtype f32
ours m32-on        $BIN train $M $TASK --dtype f32
peft peft-m32      $M $PTASK --dtype f32
ours mbf-cold      $BIN train $M $TASK --dtype bf16
ours mbf-on        $BIN train $M $TASK --dtype bf16
peft peft-mbf      $M $PTASK --dtype bf16
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
p7() { local n=$1 lim=$2; shift 2; go || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.out 2> $W/$n.log; st $n $?; }
p7 ours7-lora-cold 120 $BIN $P7 --methods lora
p7 peft7-lora-1    100 $PEFT7
p7 ours7-lora-1     60 $BIN $P7 --methods lora
p7 ours7-lorta-1    60 $BIN $P7 --methods lorta
p7 peft7-lora-2    100 $PEFT7
p7 ours7-lora-2     60 $BIN $P7 --methods lora
p7 ours7-lorta-2    60 $BIN $P7 --methods lorta
p7 peft7-lora-3    100 $PEFT7
cat $W/stages.txt
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-12s median %6.2f ms  first %6.2f s' % (n, r.get('median_step_ms') or 0, r.get('first_step_seconds') or 0))"
for n in ours7-lora-cold peft7-lora-1 ours7-lora-1 ours7-lorta-1 peft7-lora-2 ours7-lora-2 ours7-lorta-2 peft7-lora-3; do python3 -c "
import json
for l in open('$W/$n.out'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-16s %-6s median %.1f ms' % ('$n', r.get('method'), r['ms_per_step']))" 2>/dev/null; done
tar czf $OUT/s19c1.tgz -C $W .
