#!/usr/bin/env bash
# session 10, call 2: the routed matmul kernels (`--matmul-kernel auto`, CUDA's new default) against
# burn's own selection (`--matmul-kernel default`) and PyTorch + PEFT, all in this one call:
# (1) kernel survey of the auto list with output differences, (2) MiniLM RTE LoRA r8 bf16 step,
# (3) RoBERTa-base (random) bf16 step, (4) LLaMA-2-7B profile bf16 B1xT128 LoRA r4 / LoRTA r4.
set -u
OUT=${OUT:?}; mkdir -p $OUT
G=.gpu
for b in lorta-experiments matmul-strategies; do
  [ -x $G/$b ] || { python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/$b.xz'), open('$G/$b','wb'))"; chmod +x $G/$b; }
done
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
BIN=$G/lorta-experiments; M=$G/minilm; R=$G/roberta-base; GLUE=$G/glue
RES=$OUT/results.jsonl
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $OUT/gpu.txt 2>&1
ours() {
  local label=$1; shift
  local dir=/tmp/runs/$label; rm -rf "$dir"
  local t0=$(date +%s.%N)
  if timeout ${LIMIT:-120} $BIN train --quiet --out "$dir" "$@" >"$OUT/$label.log" 2>&1; then
    python3 - "$label" "$t0" "$(date +%s.%N)" "$dir" >>"$RES" <<'PY'
import json, sys
label, t0, t1, d = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
run = json.load(open(d + "/run.json")); run.pop("step_ms", None)
import os
log = [json.loads(l) for l in open(d + "/log.jsonl")] if os.path.exists(d + "/log.jsonl") else []
print(json.dumps({"impl": "ours", "label": label, "process_wall_s": round(t1 - t0, 2), "log": log[-3:], **run}))
PY
  else
    echo "{\"impl\": \"ours\", \"label\": \"$label\", \"error\": $(tail -3 "$OUT/$label.log" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" >>"$RES"
  fi
}
peft() {
  local label=$1; shift
  if timeout ${LIMIT:-120} python3 scripts/glue_peft_reference.py --out /tmp/$label.json "$@" >"$OUT/$label.log" 2>&1; then
    python3 -c "import json; d=json.load(open('/tmp/$label.json')); d.pop('history'); d['label']='$label'; print(json.dumps(d))" >>"$RES"
  else
    echo "{\"impl\": \"pytorch-peft\", \"label\": \"$label\", \"error\": \"see $label.log\"}" >>"$RES"
  fi
}
COMMON="--task rte --glue-dir $GLUE --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
PCOMMON="--task rte --glue-dir $GLUE --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
T=$SECONDS
timeout 90 $G/matmul-strategies --strategies specialized_tma_mma,specialized_cyclic_mma,double_cyclic_mma --json $OUT/matmul-auto.json > $OUT/matmul-auto.md 2> $OUT/matmul-auto.err
echo "survey $((SECONDS-T))s" >> $OUT/stages.txt
rm -rf $LORTA_KERNEL_CACHE
ours minilm-bf16-auto-cold --backend cuda --model $M $COMMON --dtype bf16
ours minilm-bf16-auto --backend cuda --model $M $COMMON --dtype bf16
ours minilm-bf16-default --backend cuda --model $M $COMMON --dtype bf16 --matmul-kernel default
peft peft-minilm-bf16 --model $M $PCOMMON --dtype bf16
echo "minilm $((SECONDS-T))s" >> $OUT/stages.txt
ours roberta-bf16-auto --backend cuda --model $R --random-weights $COMMON --dtype bf16
ours roberta-bf16-default --backend cuda --model $R --random-weights $COMMON --dtype bf16 --matmul-kernel default
peft peft-roberta-bf16 --model $R --random-weights $PCOMMON --dtype bf16
echo "roberta $((SECONDS-T))s" >> $OUT/stages.txt
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora,lorta --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
t0=$SECONDS; timeout 150 $BIN $P7 > $OUT/profile-7b-auto.jsonl 2> $OUT/profile-7b-auto.log; echo "7b auto rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
t0=$SECONDS; timeout 120 $BIN $P7 --matmul-kernel default > $OUT/profile-7b-default.jsonl 2> $OUT/profile-7b-default.log; echo "7b default rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
t0=$SECONDS; timeout 100 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16 > $OUT/profile-7b-peft.jsonl 2> $OUT/profile-7b-peft.log; echo "7b peft rc=$? $((SECONDS-t0))s" >> $OUT/stages.txt
tar czf $OUT/all.tgz -C $OUT --exclude=all.tgz . 2>/dev/null
cat $OUT/stages.txt
grep -c "" $OUT/matmul-auto.md; awk -F'|' 'NR>2 {print $2,$4,$5,$8,$9}' $OUT/matmul-auto.md | head -40
python3 - "$RES" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "error" in r: print(r["label"], "ERROR", str(r["error"])[-200:]); continue
    f = lambda k: r.get(k)
    print(r["label"], "first", f("first_step_seconds"), "proc", f("process_wall_s") or f("seconds"), "median", f("median_step_ms"), "log", str(r.get("log"))[-160:])
PY
for f in $OUT/profile-7b-*.jsonl; do echo "$f"; cut -c1-260 $f; done
