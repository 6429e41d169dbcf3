#!/usr/bin/env bash
# Session 18, on the 2-core CI-like machine (no GPU), wgpu on lavapipe: kernel launches of a LoRA
# training step with the session's two changes and without them —
#   all:      defaults (`lorta_core::flat_join` for the optimizer's gradient join, `fused::linear`
#             for LoRA's products);
#   join:     the join only (`LORTA_FUSED_OPS` = every fused operation but `linear`);
#   neither:  session 17's step (`LORTA_FLAT_JOIN=0` as well).
#  1. profile, LoRA r4 on q,k,v,o of an 8-layer LLaMA (64 adapter tensors), one warm-up, three
#     timed steps and one measuring memory; CubeCL logs every launch (`[profiling.logger] level =
#     "minimal"`);
#  2. sft on the tiny fixture LLaMA (LoRA r2 on q,v), 4 steps: losses (identical expected for
#     `join` vs `neither`: the join is a copy; `linear` changes only the order of summation).
# BIN: a release build with `--features wgpu`. Writes `results.md` next to this script.
set -eu
BIN=${BIN:?release build with --features wgpu}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
cd "$work"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} LORTA_KERNEL_CACHE=$work/kernels
F=$root/lorta-experiments/tests/fixtures/llm
NO_LINEAR=rms_norm,layer_norm,attention,add_update,swiglu,stacked_block
for mode in all join neither; do
  case $mode in
    all) env=(LORTA_FLAT_JOIN=1) ;;
    join) env=(LORTA_FLAT_JOIN=1 LORTA_FUSED_OPS=$NO_LINEAR) ;;
    neither) env=(LORTA_FLAT_JOIN=0 LORTA_FUSED_OPS=$NO_LINEAR) ;;
  esac
  printf '[profiling.logger]\nlevel = "minimal"\nfile = "%s"\nappend = false\n' "$work/launches-$mode.log" > cubecl.toml
  env "${env[@]}" "$BIN" profile --backend wgpu --model "$root/lorta-experiments/measurements/h200-2026-11-30-s13/llama-tiny" \
    --dtype f32 --methods lora --ranks 4 --seq-len 32 --steps 3 --warmup 1 --json > "$work/profile-$mode.jsonl" 2> "$work/profile-$mode.log"
  rm cubecl.toml
  env "${env[@]}" "$BIN" sft --backend wgpu --data "$F/alpaca.json" --eval-examples 1 --batch-size 2 --max-steps 4 \
    --method lora --rank 2 --targets q,v --max-len 128 --model "$F/tiny-llama" --quiet --out "$work/sft-$mode" > "$work/sft-$mode.log" 2>&1
done
python3 - "$work" > "$here/results.md" <<'PY'
import collections, json, sys
work = sys.argv[1]
modes = ("all", "join", "neither")
# one line per launch: "Executing <Kernel> | <details> | <Runtime>"
rows = {}
for mode in modes:
    names = collections.Counter()
    for line in open(f"{work}/launches-{mode}.log", errors="replace"):
        if line.startswith("Executing "):
            names[line[len("Executing "):].split(" | ")[0].strip()] += 1
    rows[mode] = names
print("Kernel launches of the whole `profile` process (LoRA r4 on q,k,v,o of an 8-layer LLaMA, 64 adapter "
      "tensors: random init, one warm-up, three timed steps and one measuring memory):\n")
kinds = sorted(set().union(*rows.values()), key=lambda k: -sum(r[k] for r in rows.values()))
print("| kernel | " + " | ".join(modes) + " |")
print("|---|" + "---|" * len(modes))
for k in kinds:
    print(f"| {k} | " + " | ".join(str(rows[m][k]) for m in modes) + " |")
print("| **all** | " + " | ".join(f"**{sum(rows[m].values())}**" for m in modes) + " |")
print()
print("| tiny-fixture sft (LoRA r2 q,v, 4 steps) | eval_loss | train_loss |")
print("|---|---|---|")
for mode in modes:
    met = json.load(open(f"{work}/sft-{mode}/metrics.json"))["last"]
    print(f"| {mode} | {met['metrics']['eval_loss']!r} | {met.get('train_loss')!r} |")
PY
cat "$here/results.md"
