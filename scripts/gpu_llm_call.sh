#!/usr/bin/env bash
# One device call for issue 10 part 5 (run from the repo root): Table 3's COPA rows with our
# binary (`table3 --preset quick`, SmolLM2-135M-Instruct GGUF, every step timed), a PyTorch+PEFT
# COPA reference on the same data and model, a short DPO run of ours and TRL+PEFT's on the same
# HH-RLHF pairs; then one table of median step times side by side.
#
# Inputs (env, defaults for the GPU machine):
#   BIN=.gpu/lorta-experiments (a --features cuda build)   BACKEND=cuda   PYDEV=cuda
#   MODEL=.gpu/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch_smollm2.sh; transformers needs the
#         `gguf` package to read it)   DATA=.gpu/data (superglue/COPA/*.jsonl, llm/hh_rlhf/*.jsonl.gz;
#         falls back to ../shared/data)   PRESET=quick   T3_METHODS= (all rows)   DPO_STEPS=30
#   T3_LIMIT / PY_LIMIT / DPO_LIMIT: seconds per stage.   PY_FULL=0: skip the PyTorch full fine-tuning row.
# CPU check with tiny settings (what was run before committing):
#   OUT=/tmp/gpu_llm BIN=target/debug/lorta-experiments BACKEND=ndarray PYDEV=cpu PRESET=smoke \
#   MODEL=lorta-experiments/tests/fixtures/llm/tiny-llama DATA=../shared/data DPO_STEPS=8 \
#   T3_METHODS=lora-r8,lorta-r4 PY_STEPS=8 PY_WARMUP=2 DPO_MAXLEN=128 scripts/gpu_llm_call.sh
#   STAGES="table3 dpo" (default; either alone).
#   WHEELS=DIR: install every wheel there first (the GPU machine lacks gguf, trl, datasets, dill,
#         multiprocess; `pip download --no-deps` them here and carry the folder).
set -u
OUT=${OUT:?set OUT}
[ -n "${WHEELS:-}" ] && python3 -m pip install -q --no-deps --no-index "$WHEELS"/*.whl
BIN=${BIN:-.gpu/lorta-experiments}
BACKEND=${BACKEND:-cuda}
PYDEV=${PYDEV:-cuda}
PRESET=${PRESET:-quick}
MODEL=${MODEL:-.gpu/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-.gpu/data}
[ -d "$DATA/superglue/COPA" ] || DATA=../shared/data
HH=${HH:-$DATA/llm/hh_rlhf/harmless-base_test.jsonl.gz}
DPO_STEPS=${DPO_STEPS:-30}
DPO_MAXLEN=${DPO_MAXLEN:-512}
PY_STEPS=${PY_STEPS:-60}
PY_WARMUP=${PY_WARMUP:-5}
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt"
METHODS_ARG=()
STAGES=${STAGES:-table3 dpo}   # table3: COPA rows (ours + PyTorch/PEFT); dpo: DPO (ours + TRL)
[ -n "${T3_METHODS:-}" ] && METHODS_ARG=(--methods "$T3_METHODS")

if [[ " $STAGES " == *" table3 "* ]]; then
  T0=$(date +%s)
  timeout "${T3_LIMIT:-900}" "$BIN" table3 --preset "$PRESET" --backend "$BACKEND" --tasks copa "${METHODS_ARG[@]}" \
    --model "$MODEL" --data-dir "$DATA/superglue" --out "$OUT/table3" --time-steps 2> "$OUT/table3.err" | tee "$OUT/table3.out"
  echo "table3 rc=$? after $(( $(date +%s) - T0 ))s" | tee -a "$OUT/stages.txt"

  T0=$(date +%s)
  PY_RUNS=("lora --rank 8 --alpha 16 --targets q_proj,v_proj")
  [ "${PY_FULL:-1}" = 1 ] && PY_RUNS+=("full")   # PY_FULL=0: the LoRA reference only
  for m in "${PY_RUNS[@]}"; do
    PYTHONUNBUFFERED=1 timeout "${PY_LIMIT:-300}" python3 scripts/table3_copa_reference.py --model "$MODEL" --copa-dir "$DATA/superglue/COPA" \
      --method $m --steps "$PY_STEPS" --warmup "$PY_WARMUP" --device "$PYDEV" --eval 2>> "$OUT/peft.err" | tee -a "$OUT/peft.jsonl"
  done
  echo "peft rc=$? after $(( $(date +%s) - T0 ))s" | tee -a "$OUT/stages.txt"
fi

if [[ " $STAGES " == *" dpo "* ]]; then
  T0=$(date +%s)
  for m in "lora --rank 8 --targets q,k,v,o" "lorta --rank 8 --targets q,o"; do
    name=$(echo "$m" | awk '{print $1 "-r" $3}')
    timeout "${DPO_LIMIT:-600}" "$BIN" dpo --backend "$BACKEND" --model "$MODEL" --data "$HH" --max-train-pairs 256 --eval-pairs 16 \
      --batch-size 4 --max-steps "$DPO_STEPS" --eval-every "$DPO_STEPS" --method $m --alpha 16 --max-len "$DPO_MAXLEN" --max-prompt-len $(( DPO_MAXLEN / 2 )) \
      --warmup-steps 0 --time-steps --quiet --out "$OUT/dpo-$name" 2> "$OUT/dpo-$name.err" > /dev/null
    echo "dpo $name rc=$?" | tee -a "$OUT/stages.txt"
  done
  PYTHONUNBUFFERED=1 timeout "${PY_LIMIT:-300}" python3 scripts/dpo_reference.py --model "$MODEL" --data "$HH" --pairs 256 --steps "$DPO_STEPS" \
    --warmup "$PY_WARMUP" --batch-size 4 --rank 8 --alpha 16 --targets q_proj,k_proj,v_proj,o_proj --max-length "$DPO_MAXLEN" --device "$PYDEV" \
    2>> "$OUT/trl.err" | tee "$OUT/trl.jsonl"
  echo "dpo stages after $(( $(date +%s) - T0 ))s" | tee -a "$OUT/stages.txt"
fi

python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
def lines(p):
    try:
        return [json.loads(l) for l in open(p) if l.startswith('{"')]
    except FileNotFoundError:
        return []
def med(run):
    s = run.get("step_ms") or []
    m = run.get("median_step_ms")
    if m is None and s:
        m = statistics.median(s[5:] if len(s) > 5 else s)
    return m, len(s)
rows = []
for run in sorted(glob.glob(os.path.join(out, "table3/runs/*/copa/*/seed*/run.json"))):
    cell = os.path.dirname(run)
    m, n = med(json.load(open(run)))
    met = json.load(open(os.path.join(cell, "metrics.json"))) if os.path.exists(os.path.join(cell, "metrics.json")) else {}
    rows.append(("ours", "copa " + cell.split("/")[-2], m, n, met.get("score"), met.get("trainable_params")))
for r in lines(os.path.join(out, "peft.jsonl")):
    rows.append((r["impl"], "copa " + r["method"], r["median_ms"], r["steps_timed"], r.get("val_accuracy"), r["trainable_params"]))
for run in sorted(glob.glob(os.path.join(out, "dpo-*/run.json"))):
    d = os.path.dirname(run)
    m, n = med(json.load(open(run)))
    met = json.load(open(os.path.join(d, "metrics.json"))) if os.path.exists(os.path.join(d, "metrics.json")) else {}
    last = (met.get("last") or {}).get("metrics", {})
    rows.append(("ours", os.path.basename(d), m, n, last.get("rewards_accuracy"), (met.get("settings") or {}).get("trainable_params")))
for r in lines(os.path.join(out, "trl.jsonl")):
    rows.append((r["impl"], "dpo " + r["method"], r["median_ms"], r["steps_timed"], r.get("last_reward_accuracy"), None))
def f(x, p=1):
    return "–" if x is None else (f"{x:.{p}f}" if isinstance(x, float) else str(x))
print("| impl | run | median ms/step | steps | score (COPA acc / DPO reward acc) | trainable params |")
print("|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {f(r[2])} | {r[3]} | {f(r[4], 3)} | {f(r[5])} |")
PY
# The device returns only a few files: with TAR=FILE (e.g. $OUT/results.tgz, OUT elsewhere) all results travel as one.
[ -n "${TAR:-}" ] && tar czf "$TAR" --exclude="*.safetensors" --exclude="*.gguf" -C "$OUT" .
