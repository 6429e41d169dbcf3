#!/usr/bin/env bash
# session 14, call 1 (binary of 9bf6109, session 13's final): the rows not re-measured since
# sessions 6/11 — RoBERTa-base architecture (random weights) f32 exact / bf16 on CUDA vs PyTorch +
# PEFT, and the wgpu (Vulkan) rows: MiniLM f32 cold/warm, RoBERTa f32, each beside PEFT in this call.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
[ -f $G/minilm/model.safetensors ] || xz -dc $G/minilm/model.safetensors.xz > $G/minilm/model.safetensors
for f in .gl/*.deb; do dpkg -x "$f" / 2>/dev/null; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-540} ] || { st $n skipped; return; }
  timeout ${LIM:-100} $BIN train --quiet --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-540} ] || { st $n skipped; return; }
  timeout ${LIM:-100} python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
R="--model $G/roberta-base --random-weights"
M="--model $G/minilm"
ours roberta-f32-cold $R $TASK --backend cuda --dtype f32
peft peft-roberta-f32 $R $PTASK --dtype f32
ours roberta-bf16 $R $TASK --backend cuda --dtype bf16
peft peft-roberta-bf16 $R $PTASK --dtype bf16
ours roberta-f32-warm $R $TASK --backend cuda --dtype f32
ours minilm-wgpu-f32-cold $M $TASK --backend wgpu --dtype f32
ours minilm-wgpu-f32-warm $M $TASK --backend wgpu --dtype f32
peft peft-minilm-f32 $M $PTASK --dtype f32
ours roberta-wgpu-f32 $R $TASK --backend wgpu --dtype f32
ours roberta-wgpu-bf16 $R $TASK --backend wgpu --dtype bf16
cat $W/stages.txt
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-22s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
