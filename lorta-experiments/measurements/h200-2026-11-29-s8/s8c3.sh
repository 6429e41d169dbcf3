#!/usr/bin/env bash
# session 8, call 3 (fresh machine): `fold --preset gpu` end to end (12-block trunk, outer product mean, structure
# module + FAPE, bf16, LoRA r8 / LoRTA r8 / full, 200 steps each, PSICOV-150 metrics), cold kernel cache.
# Resumable: call 4 continues it with --resume if the time limit cut it.
set -u
OUT=${OUT:?}; R=/tmp/s8c3; mkdir -p $R
G=.gpu
[ -x $G/lorta-experiments ] || { python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"; chmod +x $G/lorta-experiments; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $R/gpu.txt 2>&1
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels LORTA_PROTEIN_DATA=$PWD/$G/proteins
T=$SECONDS
timeout ${LIM:-560} $G/lorta-experiments fold --preset gpu --backend cuda ${RESUME:-} --out /tmp/fold-gpu > $R/fold${RESUME:+-resumed}.out 2> $R/fold${RESUME:+-resumed}.err
echo "fold --preset gpu ${RESUME:-} rc=$? $((SECONDS-T))s" >> $R/stages.txt
(cd /tmp/fold-gpu && find . -type f ! -name '*.safetensors' | tar czf $R/fold-gpu.tgz -T -)
tar czf $OUT/s8c3.tgz -C $R .
cat $R/stages.txt; tail -c 1500 $R/fold${RESUME:+-resumed}.err; cat $R/fold${RESUME:+-resumed}.out | tail -20
