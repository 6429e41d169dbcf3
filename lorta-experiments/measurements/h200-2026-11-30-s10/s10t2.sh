#!/usr/bin/env bash
# session 10: `table2 --preset gpu --jobs 4` as one process (all four methods, four worker processes
# on the one GPU, empty kernel cache), started with setsid so it can outlive this call; then wait.
set -u
OUT=${OUT:?}; R=/tmp/s10t2; mkdir -p $R
G=.gpu
[ -x $G/lorta-experiments ] || { python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"; chmod +x $G/lorta-experiments; }
if [ ! -e $R/t2.start ]; then
  export LORTA_MINILM_DIR=$PWD/$G/minilm LORTA_SHARED_DATA=$PWD/$G LORTA_KERNEL_CACHE=/tmp/kc-t2
  rm -rf /tmp/kc-t2 /tmp/table2-gpu
  date -u +%FT%TZ > $R/t2.start
  setsid nohup bash -c "S=\$(date +%s); $G/lorta-experiments table2 --preset gpu --backend cuda --jobs 4 --out /tmp/table2-gpu > $R/t2.out 2> $R/t2.err; echo \"table2 --preset gpu --jobs 4 rc=\$? \$((\$(date +%s)-S))s\" > $R/t2.done" > /dev/null 2>&1 < /dev/null &
fi
LIM=$(( ${LIM:-570} - SECONDS ))
while [ ! -e $R/t2.done ] && [ $SECONDS -lt $LIM ]; do sleep 5; done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >> $R/nvsmi.txt 2>&1
cp -r $R $OUT/ 2>/dev/null
[ -e $R/t2.done ] && tar czf $OUT/table2-gpu.tgz -C /tmp table2-gpu --exclude='*.safetensors' --exclude='*.bin'
cat $R/t2.done 2>/dev/null || { echo "still running after $SECONDS s"; tail -c 600 $R/t2.err; ls /tmp/table2-gpu; }
cat /tmp/table2-gpu/table2.md 2>/dev/null | head -20
