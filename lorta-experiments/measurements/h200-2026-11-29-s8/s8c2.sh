#!/usr/bin/env bash
# session 8, call 2: `table2 --preset gpu` (MiniLM, full RTE/MRPC/CoLA/STS-B train splits, f32) and its LoRA row
# by PyTorch + PEFT (scripts/glue_peft_reference.py, same data and settings). The preset's four methods run as
# four processes side by side (one --config per method, t2/m<i>.toml = table2.toml with one [[methods]]), PEFT
# beside them: one device call instead of ~17 min in a row. Step times here are therefore contended.
set -u
OUT=${OUT:?}; R=/tmp/s8c2; mkdir -p $R
G=.gpu
[ -x $G/lorta-experiments ] || { python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"; chmod +x $G/lorta-experiments; }
export PYTHONUNBUFFERED=1 LORTA_MINILM_DIR=$PWD/$G/minilm LORTA_SHARED_DATA=$PWD/$G
LIM=${LIM:-520}
for i in 0 1 2 3; do
  ( T=$SECONDS; LORTA_KERNEL_CACHE=/tmp/kc$i timeout $LIM $G/lorta-experiments table2 --preset gpu --backend cuda --config $G/t2/m$i.toml \
      --out /tmp/t2/m$i > $R/m$i.log 2>&1; echo "method $i rc=$? $((SECONDS-T))s" >> $R/stages.txt ) &
done
declare -A EPOCHS=([rte]=16 [mrpc]=3 [cola]=8 [stsb]=8)
declare -A HEAD_LR=([rte]=1e-2 [mrpc]=4e-3 [cola]=1e-3 [stsb]=5e-3)
( for t in rte mrpc cola stsb; do
    T=$SECONDS
    timeout $LIM python3 scripts/glue_peft_reference.py --task "$t" --model $G/minilm --glue-dir $G/glue --rank 8 --alpha 8 \
      --targets query,value --epochs "${EPOCHS[$t]}" --batch-size 32 --eval-batch-size 128 --max-seq-len 128 \
      --lr 4e-4 --head-lr "${HEAD_LR[$t]}" --warmup-ratio 0.06 --max-grad-norm 1000 --pad-to-multiple 16 \
      --out $R/peft-lora-$t.json > $R/peft-lora-$t.log 2>&1
    echo "peft $t rc=$? $((SECONDS-T))s" >> $R/stages.txt
  done ) &
wait
for i in 0 1 2 3; do mkdir -p $R/m$i; cp /tmp/t2/m$i/table.md /tmp/t2/m$i/results.* /tmp/t2/m$i/settings.json /tmp/t2/m$i/plot.png $R/m$i/ 2>/dev/null; done
find /tmp/t2 -name '*.json' -size -200k | tar czf $R/t2-json.tgz -T - 2>/dev/null
tar czf $OUT/s8c2.tgz -C $R .
cat $R/stages.txt
for i in 0 1 2 3; do cat /tmp/t2/m$i/table.md 2>/dev/null | grep '^|' ; done
python3 - $R <<'PY'
import json, sys, os
key = {"rte": "accuracy", "mrpc": "accuracy", "cola": "mcc", "stsb": "pearson"}
cells = []
for t in key:
    p = os.path.join(sys.argv[1], f"peft-lora-{t}.json")
    if not os.path.exists(p): cells.append(f"{t} n/a"); continue
    d = json.load(open(p))
    best = max(h["metrics"][key[t]] for h in d["history"] if "metrics" in h)
    cells.append(f"{t} {100*best:.1f} ({d['median_step_ms']:.1f} ms)")
print("PEFT LoRA r8 best dev:", " | ".join(cells))
PY
