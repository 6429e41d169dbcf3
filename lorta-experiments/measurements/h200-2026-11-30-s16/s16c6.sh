#!/usr/bin/env bash
# session 16, call 6 (final binary: the exact f32 products' TF32 parts take the TMA kernel first on
# a column-major right side too; split-K off by default): parity checks on CUDA (every fixture,
# f32 exact), RoBERTa-base f32 exact beside PyTorch + PEFT f32.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
R="--model $G/roberta-base --random-weights"
timeout 70 $BIN train --quiet --out /tmp/runs/f32-1 $R $TASK --backend cuda --dtype f32 > $W/roberta-f32-1.log 2>&1; st roberta-f32-1 $?
cp /tmp/runs/f32-1/run.json $W/roberta-f32-1.json 2>/dev/null
timeout 60 python3 scripts/glue_peft_reference.py --out $W/peft-roberta-f32.json $R $PTASK --dtype f32 > $W/peft-roberta-f32.log 2>&1; st peft-roberta-f32 $?
timeout 40 $BIN train --quiet --out /tmp/runs/f32-2 $R $TASK --backend cuda --dtype f32 > $W/roberta-f32-2.log 2>&1; st roberta-f32-2 $?
cp /tmp/runs/f32-2/run.json $W/roberta-f32-2.json 2>/dev/null
[ $SECONDS -lt 200 ] && timeout 150 python3 scripts/gpu_checks.py --bin $BIN --backends ndarray,cuda --out $W/checks.md > $W/checks.log 2>&1; st checks $?
cat $W/stages.txt
tail -25 $W/checks.md 2>/dev/null || tail -20 $W/checks.log
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-24s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
