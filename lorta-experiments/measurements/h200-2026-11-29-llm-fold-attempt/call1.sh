#!/usr/bin/env bash
# session 5, call 1: parity fixtures on cuda (4-product split, host RoPE) + folding trunk vs transformers+PEFT
set -u
OUT=${OUT:?}
G=.gpu
python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"
chmod +x $G/lorta-experiments
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $OUT/gpu.txt
T=$(date +%s)
timeout ${CHECK_LIMIT:-170} python3 scripts/gpu_checks.py --bin $G/lorta-experiments --backends ndarray,cuda --out $OUT/checks.json > $OUT/checks.md 2> $OUT/checks.err
echo "checks rc=$? $(( $(date +%s) - T ))s" | tee -a $OUT/stages.txt
REF_LIMIT=${REF_LIMIT:-110} OURS_LIMIT=${OURS_LIMIT:-170} PAPER_LIMIT=${PAPER_LIMIT:-110} OUT=$OUT/fold bash scripts/gpu_fold_call.sh 2>&1 | tail -20
cat $OUT/stages.txt
cat $OUT/checks.md
