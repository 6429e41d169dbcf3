#!/usr/bin/env bash
# session 17, call 1 (binary 2dbc119): in-stream kernel traces (CUPTI activity records through
# scripts/kernel_trace, no per-kernel sync) of LLaMA-2-7B bf16 B1 x T128 LoRTA r4 / LoRA r4 and
# PyTorch + PEFT LoRA r4, RoBERTa-base f32 exact and PyTorch + PEFT f32; MiniLM bf16 beside PEFT.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
[ -f $G/minilm/model.safetensors ] || xz -dc $G/minilm/model.safetensors.xz > $G/minilm/model.safetensors
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
CUPTI=$(python3 -c "import glob,os,torch; d=os.path.dirname(os.path.dirname(torch.__file__)); print((sorted(glob.glob(d+'/nvidia/**/libcupti.so*', recursive=True))+sorted(glob.glob(d+'/torch/lib/libcupti*'))+[''])[0])")
echo "cupti: $CUPTI" >> $W/stages.txt
# traced NAME CMD...: the command with the injection library, trace gzipped beside its output
traced() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-480} ] || { st $n skipped; return; }
  CUDA_INJECTION64_PATH=$PWD/$G/libkernel_trace.so KERNEL_TRACE_CUPTI=$CUPTI KERNEL_TRACE_FILE=$W/$n.tsv \
    timeout $lim "$@" > $W/$n.out 2> $W/$n.log; st $n $?; gzip -f $W/$n.tsv 2>/dev/null; }
plain() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-480} ] || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.out 2> $W/$n.log; st $n $?; }
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
plain ours7-cold 150 $BIN $P7 --methods lorta
traced ours7-lorta 90 $BIN $P7 --methods lorta
traced peft7-lora 100 $PEFT7
traced ours7-lora 90 $BIN $P7 --methods lora
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
R="--model $G/roberta-base --random-weights"
plain roberta-f32-cold 80 $BIN train --quiet --out /tmp/runs/r0 $R $TASK --backend cuda --dtype f32
traced roberta-f32 60 $BIN train --quiet --out /tmp/runs/r1 $R $TASK --backend cuda --dtype f32
cp /tmp/runs/r1/run.json $W/roberta-f32.json 2>/dev/null
traced peft-roberta-f32 60 python3 scripts/glue_peft_reference.py --out $W/peft-roberta-f32.json $R $PTASK --dtype f32
M="--model $G/minilm"
plain minilm-bf16-cold 70 $BIN train --quiet --out /tmp/runs/m0 $M $TASK --backend cuda --dtype bf16
plain minilm-bf16 40 $BIN train --quiet --out /tmp/runs/m1 $M $TASK --backend cuda --dtype bf16
cp /tmp/runs/m1/run.json $W/minilm-bf16.json 2>/dev/null
plain peft-minilm-bf16 50 python3 scripts/glue_peft_reference.py --out $W/peft-minilm-bf16.json $M $PTASK --dtype bf16
cat $W/stages.txt
for n in ours7-lorta ours7-lora peft7-lora; do python3 -c "
import json
for l in open('$W/$n.out'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-12s %-6s median %.1f ms' % ('$n', r.get('method'), r['ms_per_step']))" 2>/dev/null; done
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-20s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
for n in ours7-lorta peft7-lora ours7-lora; do python3 scripts/kernel_trace/summary.py $W/$n.tsv.gz --steps 20 --rows 12 --json $W/$n.summary.json > $W/$n.summary.md 2>&1; head -1 $W/$n.summary.md; done
for n in roberta-f32 peft-roberta-f32; do python3 scripts/kernel_trace/summary.py $W/$n.tsv.gz --steps 20 --rows 12 --json $W/$n.summary.json > $W/$n.summary.md 2>&1; head -1 $W/$n.summary.md; done
head -16 $W/ours7-lorta.summary.md
tar czf $OUT/all.tgz -C $W .
