#!/usr/bin/env bash
# One GPU-machine call for the GPU-training measurements (issue 9), part A or B:
#   A: numerical checks (scripts/gpu_checks.py), MiniLM GLUE training start-up (cold and warm
#      kernel cache) and step times vs PyTorch + PEFT (f32 and bf16), the wgpu rows;
#   B: RoBERTa-base architecture (random weights) step times vs PyTorch + PEFT, LLaMA-2-7B bf16
#      profile vs PEFT, 7B cold/warm start-up.
# Needs (carried, see README "Measuring on a GPU"): .gpu/lorta-experiments.xz (release build with
# --features cuda,wgpu), .gpu/minilm (all-MiniLM-L6-v2, f16 copy), .gpu/roberta-base (config +
# tokenizer), .gpu/glue, .gl/*.deb (Vulkan loader). Writes under $OUT; prints tables last.
#   bash scripts/gpu_train_call.sh A          # or B, or a list of stages:
#   bash scripts/gpu_train_call.sh "checks minilm wgpu roberta 7b"
# RUN_LIMIT (s, default 180) bounds every process, so one hung run cannot eat the call.
set -u
part=${1:-A}
case "$part" in A) stages="checks minilm wgpu" ;; B) stages="roberta 7b" ;; *) stages=$part ;; esac
has() { case " $stages " in *" $1 "*) return 0 ;; esac; return 1; }
LIMIT=${RUN_LIMIT:-180}
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
G=.gpu
if [ ! -x $G/lorta-experiments ]; then
  python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"
  chmod +x $G/lorta-experiments
fi
for f in .gl/*.deb; do dpkg -x "$f" / 2>/dev/null; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
export PYTHONUNBUFFERED=1
BIN=$G/lorta-experiments
M=$G/minilm
R=$G/roberta-base
GLUE=$G/glue
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels
RES=$OUT/results.jsonl
log() { echo "=== [$(date +%T)] $*" >&2; }
# ours: one `train` run; appends {label, wall_s, run.json} to results.jsonl
ours() {
  local label=$1; shift
  local dir=/tmp/runs/$label
  rm -rf "$dir"
  local t0=$(date +%s.%N)
  if timeout $LIMIT $BIN train --quiet --out "$dir" "$@" >"$OUT/$label.log" 2>&1; then
    local t1=$(date +%s.%N)
    python3 - "$label" "$t0" "$t1" "$dir" >>"$RES" <<'EOF'
import json, sys
label, t0, t1, d = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
run = json.load(open(d + "/run.json")); run.pop("step_ms", None)
try:
    m = json.load(open(d + "/metrics.json")); best = m["best"]["score"]
except Exception:
    best = None
print(json.dumps({"impl": "ours", "label": label, "process_wall_s": round(t1 - t0, 2), "dev_score": best, **run}))
EOF
  else
    echo "{\"impl\": \"ours\", \"label\": \"$label\", \"error\": $(tail -3 "$OUT/$label.log" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" >>"$RES"
  fi
}
peft() {
  local label=$1; shift
  if timeout $LIMIT python3 scripts/glue_peft_reference.py --out /tmp/$label.json "$@" >"$OUT/$label.log" 2>&1; then
    python3 -c "import json; d=json.load(open('/tmp/$label.json')); d.pop('history'); d['label']='$label'; print(json.dumps(d))" >>"$RES"
  else
    echo "{\"impl\": \"pytorch-peft\", \"label\": \"$label\", \"error\": \"see $label.log\"}" >>"$RES"
  fi
}
COMMON="--task rte --glue-dir $GLUE --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PCOMMON="--task rte --glue-dir $GLUE --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$OUT/gpu.txt" 2>&1
if has checks; then
  log "numerical checks"
  timeout $((LIMIT * 2)) python3 scripts/gpu_checks.py --bin $BIN --minilm $M --tf32 --out "$OUT/checks.json" >"$OUT/checks.md" 2>"$OUT/checks.err"
fi
if has minilm; then
  log "MiniLM cold start (empty kernel cache), then warm"
  rm -rf $LORTA_KERNEL_CACHE ~/.nv
  ours minilm-f32-cold --backend cuda --model $M $COMMON
  ours minilm-f32-warm --backend cuda --model $M $COMMON
  peft peft-minilm-f32 --model $M $PCOMMON --dtype f32
  ours minilm-bf16 --backend cuda --model $M $COMMON --dtype bf16
  peft peft-minilm-bf16 --model $M $PCOMMON --dtype bf16
  [ "${SKIP_TF32:-0}" = 1 ] || ours minilm-f32-tf32 --backend cuda --model $M $COMMON --tf32
fi
if has wgpu; then
  log "wgpu"
  ours minilm-wgpu-f32-cold --backend wgpu --model $M $COMMON
  ours minilm-wgpu-f32-warm --backend wgpu --model $M $COMMON
  log "missing Vulkan loader: clear error expected"
  VK_DRIVER_FILES=/nonexistent.json $BIN forward --backend wgpu --model $M --ids 101,2023,102 --out /tmp/x.json >"$OUT/wgpu-no-driver.log" 2>&1
  echo "exit $?" >>"$OUT/wgpu-no-driver.log"
fi
if has roberta; then
  log "RoBERTa-base architecture, random weights"
  ours roberta-f32-cold --backend cuda --model $R --random-weights $COMMON
  ours roberta-f32-warm --backend cuda --model $R --random-weights $COMMON
  peft peft-roberta-f32 --model $R --random-weights $PCOMMON --dtype f32
  ours roberta-bf16 --backend cuda --model $R --random-weights $COMMON --dtype bf16
  peft peft-roberta-bf16 --model $R --random-weights $PCOMMON --dtype bf16
fi
if has 7b; then
  log "LLaMA-2-7B profile (bf16, B1 x T128)"
  t0=$(date +%s)
  timeout $((LIMIT * 2)) $BIN profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora,lorta --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json >"$OUT/profile-7b.jsonl" 2>"$OUT/profile-7b.log"
  echo "{\"label\": \"profile-7b-process\", \"wall_s\": $(( $(date +%s) - t0 ))}" >>"$RES"
  t0=$(date +%s)
  timeout $LIMIT $BIN profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora --ranks 4 --seq-len 128 --steps 1 --warmup 1 --json >"$OUT/profile-7b-warm.jsonl" 2>"$OUT/profile-7b-warm.log"
  echo "{\"label\": \"profile-7b-warm-process\", \"wall_s\": $(( $(date +%s) - t0 ))}" >>"$RES"
  timeout $LIMIT python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 >"$OUT/profile-7b-peft.jsonl" 2>"$OUT/profile-7b-peft.log"
fi
log "done"
cat "$OUT/checks.md" 2>/dev/null
python3 - "$RES" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| run | impl | first step s | process s | median step ms | timed steps | dev |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    if "error" in r:
        print(f"| {r['label']} | {r.get('impl','')} | error: {str(r['error'])[-150:]!r} | | | | |"); continue
    f = lambda k, fmt="{:.1f}": fmt.format(r[k]) if r.get(k) is not None else ""
    print(f"| {r['label']} | {r.get('impl','')} | {f('first_step_seconds')} | {f('process_wall_s') or f('seconds') or f('wall_s', '{}')} | {f('median_step_ms', '{:.2f}')} | {r.get('timed_steps','')} | {r.get('dev_score','') or ''} |")
EOF
cat "$OUT"/profile-7b*.jsonl 2>/dev/null | cut -c1-300
# The device returns only a few files: with TAR=FILE (e.g. $OUT/results.tgz, OUT elsewhere) all results travel as one.
[ -n "${TAR:-}" ] && tar czf "$TAR" -C "$OUT" .
