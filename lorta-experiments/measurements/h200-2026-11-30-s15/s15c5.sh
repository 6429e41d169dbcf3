#!/usr/bin/env bash
# session 15, call 5 (final binary: wgpu through the SPIR-V compiler on Vulkan): parity checks on
# wgpu (every fixture and MiniLM, against transformers / ndarray); MiniLM f16 / f32 and
# RoBERTa-base f16 on wgpu beside PyTorch + PEFT; LLaMA-2-7B LoRA / LoRTA r4 in a cold and a warm
# process beside PEFT (the cold one with 10 warm-up steps instead of 3: does its slow LoRTA come
# from kernels still compiled after the third step?).
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
timeout 110 python3 scripts/gpu_checks.py --bin $BIN --backends ndarray,wgpu --minilm $G/minilm --out $W/checks.json > $W/checks.md 2> $W/checks.log; st checks $?
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-300} ] || { st $n skipped; return; }
  timeout ${LIM:-60} $BIN train --quiet --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-300} ] || { st $n skipped; return; }
  timeout ${LIM:-60} python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
M="--model $G/minilm"
R="--model $G/roberta-base --random-weights"
ours minilm-wgpu-f16 $M $TASK --backend wgpu --dtype f16
peft peft-minilm-f16 $M $PTASK --dtype f16
ours minilm-wgpu-f32 $M $TASK --backend wgpu --dtype f32
ours roberta-wgpu-f16 $R $TASK --backend wgpu --dtype f16
peft peft-roberta-f16 $R $PTASK --dtype f16
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json --methods lora,lorta"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
run7() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP7:-420} ] || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.jsonl 2> $W/$n.log; st $n $?; }
run7 ours7-cold 110 $BIN ${P7/--warmup 3/--warmup 10}
run7 peft7 90 $PEFT7
run7 ours7-warm 90 $BIN $P7
cat $W/stages.txt
cat $W/checks.md
for f in ours7-cold peft7 ours7-warm; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-12s %-6s median %.1f  min %.1f  max %.1f  cpu/step %s' % ('$f', r.get('method'), r['ms_per_step'], r['ms_min'], r.get('ms_max', 0), r.get('main_thread_cpu_ms_per_step')))" 2>/dev/null; done
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    if 'checks' in p: continue
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-24s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
