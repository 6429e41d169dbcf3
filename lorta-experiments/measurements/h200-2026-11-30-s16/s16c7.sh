#!/usr/bin/env bash
# session 16, call 7: RoBERTa-base bf16 (RTE shapes, 200 steps) with the 4,096-row bf16 products
# routed (`LORTA_MATMUL_AUTO_MAX_ROWS=4096`: auto's kernel lists instead of burn's kernel) against
# the default, beside PyTorch + PEFT bf16 over the same 200 steps.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 200 --time-steps --eval-every 1000 --max-eval-samples 32"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 200 --no-eval --pad-to-multiple 16"
R="--model $G/roberta-base --random-weights"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-200} ] || { st $n skipped; return; }
  timeout 60 "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
ours bf16-default $BIN train --quiet --out /tmp/runs/bf16-default $R $TASK --backend cuda --dtype bf16
timeout 50 python3 scripts/glue_peft_reference.py --out $W/peft-bf16.json $R $PTASK --dtype bf16 > $W/peft-bf16.log 2>&1; st peft-bf16 $?
ours bf16-rows4096 env LORTA_MATMUL_AUTO_MAX_ROWS=4096 $BIN train --quiet --out /tmp/runs/bf16-rows4096 $R $TASK --backend cuda --dtype bf16
ours bf16-default2 $BIN train --quiet --out /tmp/runs/bf16-default2 $R $TASK --backend cuda --dtype bf16
ours bf16-rows4096b env LORTA_MATMUL_AUTO_MAX_ROWS=4096 $BIN train --quiet --out /tmp/runs/bf16-rows4096b $R $TASK --backend cuda --dtype bf16
cat $W/stages.txt
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-18s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
