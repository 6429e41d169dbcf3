#!/usr/bin/env bash
# `table2 --preset gpu` on one H200 plus its LoRA row by PyTorch + PEFT on the same data and
# settings (scripts/glue_peft_reference.py), in one GPU-machine call.
#   TASKS=rte,mrpc METHODS_OURS=all bash scripts/gpu_table2_call.sh
# Needs .gpu/lorta-experiments(.xz), .gpu/minilm, .gpu/glue (see scripts/gpu_train_call.sh).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}
TASKS=${TASKS:-rte,mrpc,cola,stsb}
mkdir -p "$OUT"
G=.gpu
if [ ! -x $G/lorta-experiments ]; then
  python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"
  chmod +x $G/lorta-experiments
fi
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=${LORTA_KERNEL_CACHE:-/tmp/lorta-kernels}
export LORTA_MINILM_DIR=$PWD/$G/minilm LORTA_SHARED_DATA=$PWD/$G
t0=$(date +%s)
$G/lorta-experiments table2 --preset gpu --backend cuda --tasks "$TASKS" --out /tmp/table2-gpu >"$OUT/table2-gpu.log" 2>&1
echo "table2 --preset gpu ($TASKS): $(( $(date +%s) - t0 )) s, exit $?" >>"$OUT/table2-gpu.log"
tar czf "$OUT/table2-gpu.tgz" -C /tmp table2-gpu
# PyTorch + PEFT, LoRA r8 (alpha 8) on query/value, the preset's epochs and the table's learning rates
declare -A EPOCHS=([rte]=16 [mrpc]=3 [cola]=8 [stsb]=8 [sst2]=6 [qnli]=3)
declare -A HEAD_LR=([rte]=1e-2 [mrpc]=4e-3 [cola]=1e-3 [stsb]=5e-3 [sst2]=4e-3 [qnli]=4e-3)
for t in ${TASKS//,/ }; do
  t1=$(date +%s)
  python3 scripts/glue_peft_reference.py --task "$t" --model $G/minilm --glue-dir $G/glue --rank 8 --alpha 8 \
    --targets query,value --epochs "${EPOCHS[$t]}" --batch-size 32 --eval-batch-size 128 --max-seq-len 128 \
    --lr 4e-4 --head-lr "${HEAD_LR[$t]}" --warmup-ratio 0.06 --max-grad-norm 1000 --pad-to-multiple 16 \
    --out "$OUT/peft-lora-$t.json" >"$OUT/peft-lora-$t.log" 2>&1
  echo "peft $t: $(( $(date +%s) - t1 )) s" >>"$OUT/table2-gpu.log"
done
tail -5 "$OUT/table2-gpu.log"
cat /tmp/table2-gpu/table2.md 2>/dev/null || ls /tmp/table2-gpu
python3 - "$OUT" "$TASKS" <<'EOF'
import json, sys, os
out, tasks = sys.argv[1], sys.argv[2].split(",")
key = {"rte": "accuracy", "mrpc": "accuracy", "cola": "mcc", "stsb": "pearson", "sst2": "accuracy", "qnli": "accuracy"}
print("| PyTorch + PEFT LoRA r8 | " + " | ".join(tasks) + " |")
print("|---|" + "---|" * len(tasks))
cells = []
for t in tasks:
    p = os.path.join(out, f"peft-lora-{t}.json")
    if not os.path.exists(p):
        cells.append("n/a"); continue
    d = json.load(open(p))
    best = max(h["metrics"][key[t]] for h in d["history"] if "metrics" in h)
    cells.append(f"{100 * best:.1f} (median step {d['median_step_ms']:.1f} ms)")
print("| best dev | " + " | ".join(cells) + " |")
EOF
# The device returns only a few files: with TAR=FILE (e.g. $OUT/results.tgz, OUT elsewhere) all results travel as one.
[ -n "${TAR:-}" ] && tar czf "$TAR" -C "$OUT" .
