#!/usr/bin/env bash
# Smoke runs of the experiment commands for CI (dev profile: dependencies are built at -O3, so
# this reuses the test build instead of compiling everything again in release).
set -euo pipefail
out="${1:-target/ci-results}"
# The binary `cargo test --workspace` already built (same features as the tests); a separate
# `cargo run -p lorta-experiments` would resolve features differently and rebuild burn.
bin=target/debug/lorta-experiments
if [ ! -x "$bin" ]; then cargo build -q -p lorta-experiments; fi
run() { "$bin" "$@"; }

echo "--- params (Table 4 must match the paper exactly: the command fails otherwise)"
run params --out "$out/params" > /dev/null
echo "params: Table 4 matches the paper"

echo "--- profile (llama-tiny, ndarray)"
run profile --model llama-tiny --dtype f32 --ranks 4,16 --steps 3 --warmup 1 --out "$out/profile"

echo "--- table2 --preset smoke (GLUE from shared/data, all-MiniLM-L6-v2)"
if [ -n "${LORTA_MINILM_DIR:-}" ] && [ -n "${LORTA_SHARED_DATA:-}" ]; then
  run table2 --preset smoke --out "$out/table2"
  cat "$out/table2/table.md"
else
  echo "SKIPPED table2 smoke: LORTA_MINILM_DIR or LORTA_SHARED_DATA not set"
fi

echo "--- fold --preset smoke (fixture chains, tiny trunk)"
run fold --preset smoke --data-dir lorta-experiments/tests/fixtures/proteins/data --cache-dir "$out/fold-cache" --quiet --out "$out/fold"
