#!/usr/bin/env bash
# session 11, call 3: f32 adapter products (rank 4: skinny) and attention products, every kernel
# with an exact check; per-kernel profile of the 7B LoRTA step (HEAD binary). Only all.tgz in $OUT.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
[ -x $G/matmul-strategies ] || { xz -dc $G/matmul-strategies.xz > $G/matmul-strategies; chmod +x $G/matmul-strategies; }
S=simple_unit,double_unit,double_cyclic_mma,specialized_cyclic_mma,ordered_double_mma_r8,simple_cyclic_mma,specialized_tma_mma
timeout 150 $G/matmul-strategies --iters 10 --dtypes f32 --strategies $S --check \
  --shapes 128x4x4096,128x4x4096t,128x4096x4,128x4096x4t,4x128x4096,16x128x256x4,16x128x4x256t,128x12x4096t,128x4096x12 \
  --json $W/matmul-f32.json > $W/matmul-f32.md 2> $W/matmul-f32.err
echo "f32 survey rc=$? $((SECONDS-T))s" >> $W/stages.txt
LIMIT=100 ROWS=60 METHODS=lorta OUT=$W/kprof bash scripts/gpu_kernel_profile.sh > $W/kprof.txt 2>&1
echo "kernel profile $((SECONDS-T))s" >> $W/stages.txt
cat $W/stages.txt
awk -F'|' 'NR>2 {print $2,$4,$5,$10}' $W/matmul-f32.md | cut -c1-120
head -50 $W/kprof/kernels.txt | cut -c1-150
tar czf $OUT/all.tgz -C $W .
