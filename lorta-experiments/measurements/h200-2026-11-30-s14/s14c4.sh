#!/usr/bin/env bash
# session 14, call 4 (final binary: exact f32 product as one operation, f32 products routed in
# exact runs, `train`'s AdamW over flat per-group buffers, also used by `profile`):
# LLaMA-2-7B bf16 B1xT128 r4 PEFT / ours / PEFT / ours; MiniLM and RoBERTa-base GLUE steps
# (f32 exact and bf16) each beside PyTorch + PEFT; MiniLM on wgpu (Vulkan) f32 beside PEFT f32.
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
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json --methods lora,lorta"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
timeout 100 $PEFT7 > $W/peft7-1.jsonl 2> $W/peft7-1.log; st peft7-1 $?
timeout 170 $BIN $P7 > $W/ours7-1.jsonl 2> $W/ours7-1.log; st ours7-1 $?
timeout 100 $PEFT7 > $W/peft7-2.jsonl 2> $W/peft7-2.log; st peft7-2 $?
timeout 120 $BIN $P7 > $W/ours7-2.jsonl 2> $W/ours7-2.log; st ours7-2 $?
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-540} ] || { st $n skipped; return; }
  timeout ${LIM:-100} $BIN train --quiet --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-540} ] || { st $n skipped; return; }
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
ours minilm-wgpu-f32 $M $TASK --backend wgpu --dtype f32
ours roberta-wgpu-f32 $R $TASK --backend wgpu --dtype f32
cat $W/stages.txt
for f in peft7-1 ours7-1 peft7-2 ours7-2; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-10s %-6s median %.1f  min %.1f  max %.1f  cpu/step %s' % ('$f', r.get('method'), r['ms_per_step'], r['ms_min'], r.get('ms_max', 0), r.get('main_thread_cpu_ms_per_step')))"; done
grep -h "warm-up step 1 \|warm-up step 2 " $W/ours7-1.log $W/ours7-2.log | head -8
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-24s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
