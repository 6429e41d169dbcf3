#!/usr/bin/env bash
# session 16, call 2: what bounds each step, from the GPU's own busy fraction. nvidia-smi samples
# `utilization.gpu` (share of time a kernel was running) every 50 ms beside longer runs of the
# rows of the README table; each run's window (start/end, wall clock) goes to windows.txt and the
# busy fraction is averaged over the last 60 % of it (past start-up, inside the timed steps).
# Rows: RoBERTa-base RTE b32 L128 f32 exact / --tf32 / bf16 and PyTorch + PEFT f32 / bf16;
# LLaMA-2-7B bf16 B1 x T128 LoRA / LoRTA r4 (warm process) and PEFT LoRA r4.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
BIN=$G/lorta-experiments
nvidia-smi --query-gpu=timestamp,utilization.gpu,clocks.sm --format=csv,noheader -lms 50 > $W/util.csv 2>&1 &
SMI=$!
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
win() { local n=$1; shift; local s=$(date +%s.%N); "$@"; local rc=$?; echo "$n $s $(date +%s.%N)" >> $W/windows.txt; st $n $rc; }
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 200 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 200 --no-eval --pad-to-multiple 16"
R="--model $G/roberta-base --random-weights"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-400} ] || { st $n skipped; return; }
  win $n timeout 90 $BIN train --quiet --eval-every 1000 --max-eval-samples 32 --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-400} ] || { st $n skipped; return; }
  win $n timeout 90 python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; }
# a short run first fills the kernel cache, so the measured runs start warm
timeout 60 $BIN train --quiet --out /tmp/runs/fill $R ${TASK/--max-steps 200/--max-steps 3} --backend cuda --dtype f32 > $W/fill.log 2>&1; st fill $?
ours roberta-f32 $R $TASK --backend cuda --dtype f32
ours roberta-tf32 $R $TASK --backend cuda --dtype f32 --tf32
ours roberta-bf16 $R $TASK --backend cuda --dtype bf16
peft peft-roberta-f32 $R $PTASK --dtype f32
peft peft-roberta-bf16 $R $PTASK --dtype bf16
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 60 --warmup 3 --json"
run7() { local n=$1; shift; [ $SECONDS -lt ${STOP7:-480} ] || { st $n skipped; return; }
  win $n timeout 100 "$@" > $W/$n.jsonl 2> $W/$n.log; }
run7 ours7-fill $BIN ${P7/--steps 60/--steps 2} --methods lora,lorta
run7 ours7-lora $BIN $P7 --methods lora
run7 ours7-lorta $BIN $P7 --methods lorta
run7 peft7 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 60 --warmup 3 --dtype bf16
kill $SMI
cat $W/stages.txt
python3 - "$W" <<'PY'
import datetime, json, os, sys
w = sys.argv[1]
samples = []
for line in open(w + "/util.csv"):
    parts = [p.strip() for p in line.split(",")]
    try:
        t = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
        samples.append((t, float(parts[1].split()[0]), parts[2]))
    except Exception:
        pass
rows = []
for line in open(w + "/windows.txt"):
    n, s, e = line.split(); s, e = float(s), float(e)
    lo = s + 0.4 * (e - s)
    u = [x[1] for x in samples if lo <= x[0] <= e]
    step = None
    p = os.path.join(w, n + ".json")
    if os.path.exists(p):
        step = json.load(open(p)).get("median_step_ms")
    p = os.path.join(w, n + ".jsonl")
    if os.path.exists(p):
        for l in open(p):
            try: step = json.loads(l)["ms_per_step"]
            except Exception: pass
    rows.append({"run": n, "seconds": round(e - s, 1), "samples": len(u), "gpu_busy_pct": round(sum(u) / len(u), 1) if u else None, "median_step_ms": step})
json.dump(rows, open(w + "/busy.json", "w"), indent=1)
print("| run | window s | samples | GPU busy % (last 60 %) | median ms/step |")
print("|---|---|---|---|---|")
for r in rows:
    print("| %s | %s | %s | %s | %s |" % (r["run"], r["seconds"], r["samples"], r["gpu_busy_pct"], r["median_step_ms"] and round(r["median_step_ms"], 1)))
PY
tar czf $OUT/all.tgz -C $W .
