#!/usr/bin/env bash
# session 16, call 1: which CubeCL matmul kernel runs the 3xTF32 products of an exact-f32
# RoBERTa-base GLUE step fastest. (a) `matmul-strategies --dtypes f32` on the tripled-inner-dim
# products of batch 32 x 128 tokens (x·Wᵀ forward: rhs a column-major view; dY·W backward);
# (b) whole training steps, RoBERTa-base f32 exact, with `LORTA_MATMUL_KERNEL` forcing one
# kernel list, beside PyTorch + PEFT f32.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
for b in lorta-experiments matmul-strategies; do
  [ -x $G/$b ] || { xz -dc $G/$b.xz > $G/$b; chmod +x $G/$b; }
done
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
SH="4096x2304x768t,4096x2304x3072t,4096x9216x768t,4096x2304x768,4096x9216x768,4096x2304x3072,4096x2304x8t"
timeout 260 $G/matmul-strategies --dtypes f32 --shapes $SH --iters 20 --json $W/strategies.json > $W/strategies.md 2> $W/strategies.log; st strategies $?
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-540} ] || { st $n skipped; return; }
  timeout ${LIM:-60} $BIN train --quiet --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-540} ] || { st $n skipped; return; }
  timeout ${LIM:-60} python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
R="--model $G/roberta-base --random-weights"
peft peft-roberta-f32 $R $PTASK --dtype f32
ours roberta-f32-auto $R $TASK --backend cuda --dtype f32
for k in double_cyclic_mma specialized_cyclic_mma ordered_double_mma_r8 simple_cyclic_mma; do
  LORTA_MATMUL_KERNEL=$k ours roberta-f32-$k $R $TASK --backend cuda --dtype f32
done
ours roberta-f32-auto2 $R $TASK --backend cuda --dtype f32
cat $W/stages.txt
python3 - "$W" <<'PY'
import json, os, sys
p = sys.argv[1] + "/strategies.json"
rows = json.load(open(p)) if os.path.exists(p) else []
by = {}
for r in rows:
    if r.get("median_ms"): by.setdefault(r["shape"], []).append(r)
for shape, rs in by.items():
    rs.sort(key=lambda r: r["median_ms"])
    keep = rs[:3] + [r for r in rs[3:] if r["strategy"] in ("auto (default)", "specialized_tma_mma", "ordered_double_mma_r8")]
    print(shape, "  ".join("%s %.3f" % (r["strategy"], r["median_ms"]) for r in keep))
PY
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    if 'strategies' in p: continue
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-34s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
