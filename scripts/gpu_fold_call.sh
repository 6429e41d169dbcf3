#!/usr/bin/env bash
# One device call: the folding trunk's training step at L = 256, 12 blocks, bf16 — transformers'
# ESMFold trunk with PEFT LoRA (scripts/gpu_fold_reference.py) and ours (`fold --profile`, LoRA,
# LoRTA, full) on the same shapes, then ours in the paper's variant (outer product mean, structure
# module + FAPE). Run from the repo root with the binary at .gpu/lorta-experiments (cuda build);
# results under $OUT, a short table printed last.
#
#   OUT=/tmp/out scripts/gpu_fold_call.sh                             # H200
#   OUT=/tmp/out BACKEND=ndarray DTYPE=f32 PY_DEVICE=cpu L=12 BLOCKS=1 DIMS=32,16,8 STEPS=2 \
#     WARMUP=1 BIN=target/debug/lorta-experiments scripts/gpu_fold_call.sh   # local smoke test
set -u
: "${OUT:?set OUT to the output folder}"
BIN=${BIN:-.gpu/lorta-experiments}
BACKEND=${BACKEND:-cuda}
DTYPE=${DTYPE:-bf16}
PY_DEVICE=${PY_DEVICE:-cuda}
L=${L:-256}
BLOCKS=${BLOCKS:-12}
DIMS=${DIMS:-1024,128,32}       # sequence dim, pair dim, head width (ESMFold's)
RANK=${RANK:-8}
OURS_METHODS=${OURS_METHODS:-lora:$RANK,lorta:$RANK,full}   # REF_METHODS (lora,full) for the reference
STEPS=${STEPS:-20}              # timed steps, after WARMUP untimed ones
WARMUP=${WARMUP:-3}
IFS=, read -r SEQ_DIM PAIR_DIM HEAD_WIDTH <<< "$DIMS"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>/dev/null || echo "no nvidia-smi" > "$OUT/gpu.txt"
mkdir -p /tmp/kc
ls .gpu/kc.part.* >/dev/null 2>&1 && cat .gpu/kc.part.* | tar xzf - -C /tmp/kc
export CUDA_CACHE_PATH=/tmp/kc/nv CUDA_CACHE_MAXSIZE=4294967296
KC=(); [ "$BACKEND" != ndarray ] && KC=(--kernel-cache /tmp/kc/cubecl)

T=$(date +%s)
PYTHONUNBUFFERED=1 timeout "${REF_LIMIT:-240}" python3 scripts/gpu_fold_reference.py --device "$PY_DEVICE" --dtype "$DTYPE" \
  --length "$L" --blocks "$BLOCKS" --seq-dim "$SEQ_DIM" --pair-dim "$PAIR_DIM" --head-width "$HEAD_WIDTH" \
  --ranks "$RANK" --methods "${REF_METHODS:-lora,full}" --steps "$STEPS" --warmup $((WARMUP + 2)) --out "$OUT/reference.json" \
  > "$OUT/reference.log" 2>&1
echo "reference rc=$? after $(( $(date +%s) - T ))s"

COMMON=(fold --profile --preset gpu --backend "$BACKEND" --dtype "$DTYPE" --length "$L" --blocks "$BLOCKS" --dims "$DIMS"
  --profile-steps "$STEPS" --warmup "$WARMUP" --quiet "${KC[@]}")
T=$(date +%s)
timeout "${OURS_LIMIT:-420}" "$BIN" "${COMMON[@]}" --pair-update s2p --methods "$OURS_METHODS" \
  --out "$OUT/ours-s2p" > "$OUT/ours-s2p.jsonl" 2> "$OUT/ours-s2p.err"
echo "ours (sequence-to-pair, as transformers) rc=$? after $(( $(date +%s) - T ))s"
T=$(date +%s)
timeout "${PAPER_LIMIT:-300}" "$BIN" "${COMMON[@]}" --pair-update opm --structure --methods "lora:$RANK,lorta:$RANK" \
  --out "$OUT/ours-paper" > "$OUT/ours-paper.jsonl" 2> "$OUT/ours-paper.err"
echo "ours (paper: outer product mean + structure module + FAPE) rc=$? after $(( $(date +%s) - T ))s"
[ "$BACKEND" != ndarray ] && [ "${PACK_KC:-0}" = 1 ] && (cd /tmp/kc && tar czf /tmp/kc.tar.gz .) && split -b 15m /tmp/kc.tar.gz "$OUT/kc.part."

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def rows(p):
    try:
        return [json.loads(l) for l in open(p) if l.startswith("{")]
    except FileNotFoundError:
        return []
try:
    ref = json.load(open(os.path.join(out, "reference.json")))
except (FileNotFoundError, json.JSONDecodeError):
    ref = {"meta": {}, "rows": []}
m = ref["meta"]
print(f"\nFolding trunk training step: {m.get('blocks', '?')} blocks, L = {m.get('length', '?')}, {m.get('dtype', '?')}, {m.get('device', '?')}")
print("| implementation | pair update | structure | method | rank | trainable params | median ms/step | peak GiB |")
print("|---|---|---|---|---|---|---|---|")
gib = lambda b: "n/a" if b is None else f"{b / 2**30:.2f}"
for r in ref["rows"]:
    rank = r["rank"] if r["rank"] is not None else "-"
    print(f"| PyTorch + PEFT | seq-to-pair | off | {r['method']} | {rank} | {r['trainable_params']:,} | {r['median_ms']:.1f} | {r['peak_gib']:.2f} |")
for name, pu in (("ours-s2p.jsonl", "seq-to-pair"), ("ours-paper.jsonl", "outer product mean")):
    for r in rows(os.path.join(out, name)):
        rank = r["rank"] if r["rank"] is not None else "-"
        print(f"| ours ({r['backend']}) | {pu} | {'on' if r['structure'] else 'off'} | {r['method']} | {rank} | {r['trainable_params']:,} | {r['ms_median']:.1f} | {gib(r['peak_memory_bytes'])} |")
PY
# The device returns only a few files: with TAR=FILE (e.g. $OUT/results.tgz, OUT elsewhere) all results travel as one.
[ -n "${TAR:-}" ] && tar czf "$TAR" -C "$OUT" .
