#!/usr/bin/env bash
# session 17, call 5 (final binary: + partial training batches padded to the full batch on GPU
# backends): MiniLM bf16 / f32 across the first epoch's end (80 steps), cold then two warm
# processes, beside PyTorch + PEFT; RoBERTa-base f32 / bf16 final rows; LLaMA-2-7B LoRTA / LoRA
# r4 beside PEFT LoRA r4.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels-c5 XDG_RUNTIME_DIR=/tmp
T=$SECONDS
rm -f $G/lorta-experiments; xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
[ -f $G/minilm/model.safetensors ] || xz -dc $G/minilm/model.safetensors.xz > $G/minilm/model.safetensors
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 80 --time-steps --backend cuda"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 80 --no-eval --pad-to-multiple 16"
R="--model $G/roberta-base --random-weights"; M="--model $G/minilm"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-420} ] || { st $n skipped; return; }
  timeout 90 $BIN train "$@" --quiet --out /tmp/runs/$n > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-420} ] || { st $n skipped; return; }
  timeout 90 python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
ours mbf-cold   $M $TASK --dtype bf16
ours mbf-warm-1 $M $TASK --dtype bf16
peft peft-mbf   $M $PTASK --dtype bf16
ours mbf-warm-2 $M $TASK --dtype bf16
ours m32-cold   $M $TASK --dtype f32
ours m32-warm   $M $TASK --dtype f32
peft peft-m32   $M $PTASK --dtype f32
ours r32-cold   $R $TASK --dtype f32
ours r32-warm   $R $TASK --dtype f32
peft peft-r32   $R $PTASK --dtype f32
ours rbf-cold   $R $TASK --dtype bf16
ours rbf-warm   $R $TASK --dtype bf16
peft peft-rbf   $R $PTASK --dtype bf16
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
p7() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-420} ] || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.out 2> $W/$n.log; st $n $?; }
p7 ours7-lorta-cold 120 $BIN $P7 --methods lorta
p7 peft7-lora 100 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16
p7 ours7-lorta 60 $BIN $P7 --methods lorta
p7 ours7-lora 90 $BIN $P7 --methods lora
cat $W/stages.txt
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]; s=r.get('step_ms') or []
    print('%-11s median %6.2f ms  first %6.2f s  steps 70-80 %s' % (n, r.get('median_step_ms') or 0, r.get('first_step_seconds') or 0, [round(x,1) for x in s[69:]]))"
for n in ours7-lorta-cold ours7-lorta ours7-lora peft7-lora; do python3 -c "
import json
for l in open('$W/$n.out'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-17s %-6s median %.1f ms' % ('$n', r.get('method'), r['ms_per_step']))" 2>/dev/null; done
tar czf $OUT/all.tgz -C $W .
