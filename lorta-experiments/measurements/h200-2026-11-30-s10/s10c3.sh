#!/usr/bin/env bash
# session 10, call 3: correctness and speed of the routed matmul kernels after call 2's NaN
# (MiniLM bf16 with every product routed). (1) survey with an exact f64 host reference, column-major
# right sides (transposed after the cast) and batched attention-like products; (2) MiniLM and
# RoBERTa bf16 training, auto (rank-2 products only) vs default vs every product routed: same seed,
# the losses must agree; (3) 7B profile auto; (4) trunk: PEFT and ours (auto) in this call.
set -u
OUT=${OUT:?}; mkdir -p $OUT
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
BIN=$G/lorta-experiments; M=$G/minilm; R=$G/roberta-base; GLUE=$G/glue
RES=$OUT/results.jsonl
ours() {
  local label=$1; shift
  local dir=/tmp/runs/$label; rm -rf "$dir"
  local t0=$(date +%s.%N)
  if timeout ${LIMIT:-100} $BIN train --quiet --out "$dir" "$@" >"$OUT/$label.log" 2>&1; then
    python3 - "$label" "$t0" "$(date +%s.%N)" "$dir" >>"$RES" <<'PY'
import json, sys, os
label, t0, t1, d = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
run = json.load(open(d + "/run.json")); run.pop("step_ms", None)
log = [json.loads(l) for l in open(d + "/log.jsonl")] if os.path.exists(d + "/log.jsonl") else []
print(json.dumps({"impl": "ours", "label": label, "process_wall_s": round(t1 - t0, 2), "log": log[-2:], **run}))
PY
  else
    echo "{\"impl\": \"ours\", \"label\": \"$label\", \"error\": $(grep -v '^ *[0-9]*: \|^ *at ' "$OUT/$label.log" | tail -3 | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" >>"$RES"
  fi
}
COMMON="--task rte --glue-dir $GLUE --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps --dtype bf16"
ALL=specialized_tma_mma,specialized_cyclic_mma,double_cyclic_mma
T=$SECONDS
timeout 100 $G/matmul-strategies --iters 5 --strategies $ALL \
  --shapes 128x4096x4096t,4096x768x768t,4096x384x1536t,2560x384x384,32x384x384,384x80x32x80t,384x80x80x32,96x128x64x128t,96x128x128x64 \
  --json $OUT/matmul-check.json > $OUT/matmul-check.md 2> $OUT/matmul-check.err
echo "survey rc=$? $((SECONDS-T))s" >> $OUT/stages.txt
ours minilm-auto --backend cuda --model $M $COMMON
ours minilm-default --backend cuda --model $M $COMMON --matmul-kernel default
ours minilm-all --backend cuda --model $M $COMMON --matmul-kernel $ALL
ours roberta-auto --backend cuda --model $R --random-weights $COMMON
ours roberta-default --backend cuda --model $R --random-weights $COMMON --matmul-kernel default
echo "train $((SECONDS-T))s" >> $OUT/stages.txt
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora,lorta --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
t0=$SECONDS; timeout 120 $BIN $P7 > $OUT/profile-7b-auto.jsonl 2> $OUT/profile-7b-auto.log; echo "7b auto rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
t0=$SECONDS; timeout 90 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 > $OUT/profile-7b-peft.jsonl 2> $OUT/profile-7b-peft.log; echo "7b peft rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
if [ $SECONDS -lt ${TRUNK_BEFORE:-330} ]; then
  REF_METHODS=lora OURS_METHODS=lora:8,lorta:8 STEPS=20 WARMUP=3 PAPER_LIMIT=1 REF_LIMIT=100 OURS_LIMIT=150 \
    OUT=$OUT/trunk bash scripts/gpu_fold_call.sh > $OUT/trunk-table.md 2>&1
  echo "trunk $((SECONDS-T))s" >> $OUT/stages.txt
fi
tar czf /tmp/all.tgz -C $OUT . && mv /tmp/all.tgz $OUT/all.tgz
cat $OUT/stages.txt
awk -F'|' 'NR>2 {print $2,$4,$5,$8,$9,$10}' $OUT/matmul-check.md
python3 - "$RES" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "error" in r: print(r["label"], "ERROR", str(r["error"])[-200:]); continue
    lg = r.get("log") or [{}]
    print(r["label"], "first", r.get("first_step_seconds"), "median", r.get("median_step_ms"), "loss@40", lg[-1].get("train_loss"), "dev", lg[-1].get("score"))
PY
for f in $OUT/profile-7b-*.jsonl; do echo "$f"; cut -c1-120 $f; done
tail -5 $OUT/trunk-table.md 2>/dev/null
