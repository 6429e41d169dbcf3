#!/usr/bin/env bash
# session 15, call 3 (final binary: 3xTF32, `fold --profile` on the flat-buffer AdamW for
# adapters): the ESMFold folding trunk step (12 blocks, L 256, bf16; PEFT LoRA r8 beside ours
# LoRA r8 / LoRTA r8, paper variant skipped), then MiniLM f16 on wgpu (Vulkan) and CUDA beside
# PyTorch + PEFT f16, and RoBERTa-base f32 exact once more beside PEFT.
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
OUT=$W/fold REF_METHODS=lora OURS_METHODS=lora:8,lorta:8 PAPER_LIMIT=1 REF_LIMIT=150 OURS_LIMIT=200 \
  bash scripts/gpu_fold_call.sh > $W/fold.log 2>&1; st fold $?
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-520} ] || { st $n skipped; return; }
  timeout ${LIM:-70} $BIN train --quiet --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-520} ] || { st $n skipped; return; }
  timeout ${LIM:-70} python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
M="--model $G/minilm"
R="--model $G/roberta-base --random-weights"
ours minilm-wgpu-f16 $M $TASK --backend wgpu --dtype f16
ours minilm-cuda-f16 $M $TASK --backend cuda --dtype f16
peft peft-minilm-f16 $M $PTASK --dtype f16
ours roberta-f32 $R $TASK --backend cuda --dtype f32
peft peft-roberta-f32 $R $PTASK --dtype f32
cat $W/stages.txt
tail -12 $W/fold.log
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-24s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
