#!/usr/bin/env bash
# One device call (run from the repo root with the stripped binary in .gpu/): HF PEFT LoRA on LLaMA-2-7B shapes, then our CUDA binary (bf16, LoRA/LoRTA
# r4/r64) with a persistent kernel cache (.gpu/kc.part.* in, $OUT/kc.part.* out).
set -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
mkdir -p /tmp/kc; ls .gpu/kc.part.* >/dev/null 2>&1 && cat .gpu/kc.part.* | tar xzf - -C /tmp/kc
export CUDA_CACHE_PATH=/tmp/kc/nv CUDA_CACHE_MAXSIZE=4294967296
T1=$(date +%s)
PYTHONUNBUFFERED=1 timeout ${PEFT_LIMIT:-120} python3 scripts/profile_peft.py --methods lora --ranks ${RANKS:-4,64} \
  --seq-len 128 --steps 10 --warmup 3 --dtype bf16 2> $OUT/peft.err | tee $OUT/peft.jsonl
echo "peft rc=$? after $(( $(date +%s) - T1 ))s"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -lms 250 > $OUT/util.csv 2>/dev/null &
SMI=$!
T0=$(date +%s)
timeout ${OURS_LIMIT:-400} .gpu/lorta-experiments profile --backend cuda --model llama-2-7b --dtype bf16 \
  --methods ${METHODS:-lora,lorta} --ranks ${RANKS:-4,64} --seq-len 128 --steps 10 --warmup 2 --json \
  --kernel-cache /tmp/kc/cubecl --out $OUT/ours 2> >(tee $OUT/ours.err >&2) | tee $OUT/ours.jsonl
echo "ours rc=$? after $(( $(date +%s) - T0 ))s"
kill $SMI 2>/dev/null
(cd /tmp/kc && tar czf /tmp/kc.tar.gz .) && split -b 15m /tmp/kc.tar.gz $OUT/kc.part. ; ls -la $OUT
python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def rows(p):
    try: return [json.loads(l) for l in open(p) if l.startswith("{")]
    except FileNotFoundError: return []
ours = rows(os.path.join(out, "ours.jsonl")); peft = {r["rank"]: r for r in rows(os.path.join(out, "peft.jsonl"))}
lora = {r["rank"]: r for r in ours if r["method"] == "LoRA"}
print("| method | r | ours ms | ours peak GiB | PEFT LoRA ms | PEFT peak GiB | ours/PEFT | LoRTA/LoRA |")
for r in ours:
    p = peft.get(r["rank"]); l = lora.get(r["rank"])
    pm = p["ms_per_step"] if p else float("nan"); pg = p["peak_memory_bytes"]/2**30 if p else float("nan")
    print(f"| {r['method']} | {r['rank']} | {r['ms_per_step']:.1f} | {(r['peak_memory_bytes'] or 0)/2**30:.2f} | {pm:.1f} | {pg:.2f} | {r['ms_per_step']/pm:.2f} | {r['ms_per_step']/l['ms_per_step'] if l else float('nan'):.2f} |")
PY
