#!/usr/bin/env bash
# Per-kernel GPU time of LLaMA-2-7B training steps (CubeCL's profiling summary, printed at each sync).
set -u
cat > cubecl.toml <<'T'
[profiling.logger]
level = "basic"
file = "/tmp/prof.log"
T
export CUDA_CACHE_PATH=/tmp/kc/nv CUDA_CACHE_MAXSIZE=4294967296
T0=$(date +%s)
timeout ${LIMIT:-420} .gpu/lorta-experiments profile --backend cuda --model ${MODEL:-llama-2-7b} --dtype bf16 \
  --methods ${METHODS:-lora,lorta} --ranks 4 --seq-len 128 --steps 2 --warmup 2 --json \
  --kernel-cache /tmp/kc/cubecl 2> >(tee $OUT/prof.err >&2) | tee $OUT/prof.jsonl
echo "rc=$? after $(( $(date +%s) - T0 ))s"
rm -f cubecl.toml
ls -la /tmp/prof.log; gzip -c /tmp/prof.log > $OUT/prof.log.gz
(cd /tmp/kc && tar czf /tmp/kc.tar.gz .) && split -b 15m /tmp/kc.tar.gz $OUT/kc.part. ; ls -la $OUT
