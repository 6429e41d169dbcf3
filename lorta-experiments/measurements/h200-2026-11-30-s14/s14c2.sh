#!/usr/bin/env bash
# session 14, call 2 (binary with the exact f32 product as one operation): parity checks on CUDA
# (every fixture + MiniLM, ndarray beside), then MiniLM and RoBERTa-base f32 exact step times vs
# PyTorch + PEFT f32, A/B with the composite (LORTA_EXACT_MATMUL_OP=0) and with f32 products
# routed to the tensor-core kernels (--matmul-kernel list); MiniLM bf16 vs PEFT bf16.
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
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-540} ] || { st $n skipped; return; }
  timeout ${LIM:-100} $BIN train --quiet --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-540} ] || { st $n skipped; return; }
  timeout ${LIM:-100} python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
R="--model $G/roberta-base --random-weights"
M="--model $G/minilm"
TC="--matmul-kernel specialized_tma_mma,ordered_double_mma_r8,simple_cyclic_mma"
timeout 200 python3 scripts/gpu_checks.py --bin $BIN --minilm $G/minilm --backends ndarray,cuda --out $W/checks.json > $W/checks.md 2> $W/checks.err; st checks $?
ours minilm-f32 $M $TASK --backend cuda --dtype f32
peft peft-minilm-f32 $M $PTASK --dtype f32
LORTA_EXACT_MATMUL_OP=0 ours minilm-f32-composite $M $TASK --backend cuda --dtype f32
ours minilm-f32-tc $M $TASK --backend cuda --dtype f32 $TC
ours minilm-bf16 $M $TASK --backend cuda --dtype bf16
peft peft-minilm-bf16 $M $PTASK --dtype bf16
ours roberta-f32 $R $TASK --backend cuda --dtype f32
peft peft-roberta-f32 $R $PTASK --dtype f32
ours roberta-f32-tc $R $TASK --backend cuda --dtype f32 $TC
ours minilm-f32-again $M $TASK --backend cuda --dtype f32
peft peft-minilm-f32-again $M $PTASK --dtype f32
cat $W/stages.txt
tail -25 $W/checks.md
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    n=os.path.basename(p)[:-5]
    if n=='checks': continue
    r=json.load(open(p))
    print('%-24s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
