#!/usr/bin/env bash
# session 8, call 1 (fresh machine): warm per-kernel profiles of the folding trunk step (12 blocks, L 256, bf16,
# fusion build): LoRA r8 and LoRTA r8, after one unprofiled run that fills the kernel cache
set -u
OUT=${OUT:?}; R=/tmp/s8c1; mkdir -p $R
G=.gpu
python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"; chmod +x $G/lorta-experiments
left() { echo $(( ${BUDGET:-560} - SECONDS )); }
cap() { local a=$1 b=$(left); [ $a -lt $b ] && echo $a || echo $b; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $R/gpu.txt 2>&1
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels PYTHONUNBUFFERED=1
FA="fold --profile --preset gpu --backend cuda --dtype bf16 --length 256 --blocks 12 --dims 1024,128,32 --pair-update s2p"
T=$SECONDS; timeout $(cap 240) $G/lorta-experiments $FA --profile-steps 3 --warmup 2 --methods lora:8,lorta:8 --out /tmp/fw > $R/warm.jsonl 2> $R/warm.err
echo "warm-up rc=$? $((SECONDS-T))s" >> $R/stages.txt
for m in lora lorta; do
  printf '[profiling.logger]\nlevel = "full"\nfile = "/tmp/prof-%s.log"\n' $m > cubecl.toml
  T=$SECONDS; timeout $(cap 120) $G/lorta-experiments $FA --profile-steps 1 --warmup 1 --methods $m:8 --out /tmp/fp-$m > $R/prof-$m.jsonl 2> $R/prof-$m.err
  echo "profile $m rc=$? $((SECONDS-T))s" >> $R/stages.txt
  rm -f cubecl.toml
  python3 scripts/cubecl_profile_summary.py /tmp/prof-$m.log 80 > $R/kernels-$m.txt 2>&1
  gzip -c /tmp/prof-$m.log > $R/prof-$m.log.gz
done
tar czf $OUT/s8c1.tgz -C $R .
cat $R/stages.txt; cat $R/warm.jsonl | cut -c1-300; head -30 $R/kernels-lora.txt | cut -c1-150
