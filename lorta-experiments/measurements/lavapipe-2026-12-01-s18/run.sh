#!/usr/bin/env bash
# Session 18, on the 2-core CI-like machine (no GPU): kernel launches of the optimizer's gradient
# join on wgpu (lavapipe), `lorta_core::flat_join` against burn's `cat` (`LORTA_FLAT_JOIN=0`).
#  1. profile, LoRA r4 on q,k,v,o of an 8-layer LLaMA (64 adapter tensors), 3 steps after one
#     warm-up, every kernel launch logged by CubeCL (`[profiling.logger] level = "minimal"`);
#  2. sft on the tiny fixture LLaMA, 4 steps: the losses must be identical both ways (the join
#     is a copy).
# BIN: a release build with `--features wgpu`. Writes next to this script.
set -eu
BIN=${BIN:?release build with --features wgpu}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
cd "$work"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} LORTA_KERNEL_CACHE=$work/kernels
F=$root/lorta-experiments/tests/fixtures/llm
for mode in on off; do
  flag=1; [ $mode = off ] && flag=0
  printf '[profiling.logger]\nlevel = "minimal"\nfile = "%s"\nappend = false\n' "$work/launches-$mode.log" > cubecl.toml
  LORTA_FLAT_JOIN=$flag "$BIN" profile --backend wgpu --model "$root/lorta-experiments/measurements/h200-2026-11-30-s13/llama-tiny" \
    --dtype f32 --methods lora --ranks 4 --seq-len 32 --steps 3 --warmup 1 --json > "$work/profile-$mode.jsonl" 2> "$work/profile-$mode.log"
  rm cubecl.toml
  LORTA_FLAT_JOIN=$flag "$BIN" sft --backend wgpu --data "$F/alpaca.json" --eval-examples 1 --batch-size 2 --max-steps 4 \
    --method lora --rank 2 --targets q,v --max-len 128 --model "$F/tiny-llama" --quiet --out "$work/sft-$mode" > "$work/sft-$mode.log" 2>&1
done
python3 - "$work" > "$here/results.md" <<'PY'
import collections, json, sys
work = sys.argv[1]
# one line per launch: "Executing <Kernel> | <details> | <Runtime>"
rows = {}
for mode in ("on", "off"):
    names = collections.Counter()
    for line in open(f"{work}/launches-{mode}.log", errors="replace"):
        if line.startswith("Executing "):
            names[line[len("Executing "):].split(" | ")[0].strip()] += 1
    rows[mode] = names
print("Kernel launches of the whole `profile` process (LoRA r4 on q,k,v,o of an 8-layer LLaMA, 64 adapter tensors: random init, one warm-up, three timed steps and one measuring memory; the join launches ten times a step):\n")
kinds = sorted(set(rows["on"]) | set(rows["off"]), key=lambda k: -(rows["off"][k] + rows["on"][k]))
print("| kernel | join on | join off |")
print("|---|---|---|")
for k in kinds:
    print(f"| {k} | {rows['on'][k]} | {rows['off'][k]} |")
print(f"| **all** | **{sum(rows['on'].values())}** | **{sum(rows['off'].values())}** |")
print()
print("| tiny-fixture sft (LoRA r2 q,v, 4 steps) | eval_loss | train_loss |")
print("|---|---|---|")
for mode in ("on", "off"):
    met = json.load(open(f"{work}/sft-{mode}/metrics.json"))["last"]
    print(f"| join {mode} | {met['metrics']['eval_loss']!r} | {met.get('train_loss')!r} |")
PY
cat "$here/results.md"
