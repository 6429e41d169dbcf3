#!/usr/bin/env bash
# session 14, call 6 (final binary: AdamW buffers kept across a schedule's changing learning rate;
# call 4's `train` runs rebuilt them every step): MiniLM and RoBERTa-base GLUE steps, f32 exact and
# bf16, each beside PyTorch + PEFT, MiniLM f32 twice.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
[ -f $G/minilm/model.safetensors ] || xz -dc $G/minilm/model.safetensors.xz > $G/minilm/model.safetensors
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-330} ] || { st $n skipped; return; }
  timeout ${LIM:-100} $BIN train --quiet --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-330} ] || { st $n skipped; return; }
  timeout ${LIM:-100} python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
R="--model $G/roberta-base --random-weights"
M="--model $G/minilm"
ours minilm-f32 $M $TASK --backend cuda --dtype f32
peft peft-minilm-f32 $M $PTASK --dtype f32
ours minilm-bf16 $M $TASK --backend cuda --dtype bf16
peft peft-minilm-bf16 $M $PTASK --dtype bf16
ours minilm-f32-2 $M $TASK --backend cuda --dtype f32
peft peft-minilm-f32-2 $M $PTASK --dtype f32
ours roberta-f32 $R $TASK --backend cuda --dtype f32
peft peft-roberta-f32 $R $PTASK --dtype f32
ours roberta-bf16 $R $TASK --backend cuda --dtype bf16
peft peft-roberta-bf16 $R $PTASK --dtype bf16
cat $W/stages.txt
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-24s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
