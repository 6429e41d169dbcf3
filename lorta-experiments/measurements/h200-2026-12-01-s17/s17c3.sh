#!/usr/bin/env bash
# session 17, call 3 (binary: + two-stage row reductions for rows of any count, >= 256 long):
# GLUE steps (RTE, LoRA r8 q,v, batch 32 x 128) of RoBERTa-base (random weights) and MiniLM in
# f32 and bf16 beside PyTorch + PEFT; A/B against the previous reductions
# (LORTA_SHAPE_REWRITES=inner,rows: these models' rows were not rewritten before), alternating;
# one traced RoBERTa-base f32 run.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
rm -f $G/lorta-experiments; xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
[ -f $G/minilm/model.safetensors ] || xz -dc $G/minilm/model.safetensors.xz > $G/minilm/model.safetensors
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
CUPTI=$(python3 -c "import glob,os,torch; d=os.path.dirname(os.path.dirname(torch.__file__)); print((sorted(glob.glob(d+'/nvidia/**/libcupti.so*', recursive=True))+[''])[0])")
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 80 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 80 --no-eval --pad-to-multiple 16"
R="--model $G/roberta-base --random-weights"; M="--model $G/minilm"
# ours NAME [env ...] -- ARGS: one train run, its run.json kept
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-480} ] || { st $n skipped; return; }
  timeout 90 env "$@" --quiet --out /tmp/runs/$n > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-480} ] || { st $n skipped; return; }
  timeout 90 python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
OLD=LORTA_SHAPE_REWRITES=inner,rows
ours r32-cold   X=1  $BIN train $R $TASK --backend cuda --dtype f32
ours r32-old-1  $OLD $BIN train $R $TASK --backend cuda --dtype f32
ours r32-new-1  X=1  $BIN train $R $TASK --backend cuda --dtype f32
peft peft-r32-1 $R $PTASK --dtype f32
ours r32-old-2  $OLD $BIN train $R $TASK --backend cuda --dtype f32
ours r32-new-2  X=1  $BIN train $R $TASK --backend cuda --dtype f32
peft peft-r32-2 $R $PTASK --dtype f32
ours rbf-cold   X=1  $BIN train $R $TASK --backend cuda --dtype bf16
ours rbf-new    X=1  $BIN train $R $TASK --backend cuda --dtype bf16
ours rbf-old    $OLD $BIN train $R $TASK --backend cuda --dtype bf16
peft peft-rbf   $R $PTASK --dtype bf16
ours m32-cold   X=1  $BIN train $M $TASK --backend cuda --dtype f32
ours m32-new    X=1  $BIN train $M $TASK --backend cuda --dtype f32
ours m32-old    $OLD $BIN train $M $TASK --backend cuda --dtype f32
peft peft-m32   $M $PTASK --dtype f32
ours mbf-cold   X=1  $BIN train $M $TASK --backend cuda --dtype bf16
ours mbf-new    X=1  $BIN train $M $TASK --backend cuda --dtype bf16
peft peft-mbf   $M $PTASK --dtype bf16
[ $SECONDS -lt 480 ] && { CUDA_INJECTION64_PATH=$PWD/$G/libkernel_trace.so KERNEL_TRACE_CUPTI=$CUPTI KERNEL_TRACE_FILE=$W/r32-trace.tsv \
  timeout 60 $BIN train $R ${TASK/--max-steps 80/--max-steps 40} --backend cuda --dtype f32 --quiet --out /tmp/runs/tr > $W/r32-trace.log 2>&1; st r32-trace $?; gzip -f $W/r32-trace.tsv;
  python3 scripts/kernel_trace/summary.py $W/r32-trace.tsv.gz --steps 20 --rows 40 --json $W/r32-trace.summary.json > $W/r32-trace.summary.md 2>&1; }
cat $W/stages.txt
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    if 'summary' in p: continue
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-12s median %7.2f ms  first %s s' % (n, r.get('median_step_ms') or 0, r.get('first_step_seconds')))"
head -1 $W/r32-trace.summary.md 2>/dev/null | cut -c1-200
tar czf $OUT/all.tgz -C $W .
