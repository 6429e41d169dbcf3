#!/usr/bin/env bash
# session 9, calls 2–3: wait (at most LIM seconds) for the background `fold --preset gpu` of s9c1.sh, then
# pack what it wrote so far (checkpoints' weights excluded) into $OUT/s9.tgz.
set -u
OUT=${OUT:?}; R=/tmp/s9
T=$SECONDS
while [ ! -e $R/fold.done ] && [ $((SECONDS - T)) -lt ${LIM:-560} ]; do sleep 5; done
[ -e $R/fold.done ] && cat $R/fold.done >> $R/stages.txt
[ -d /tmp/fold-gpu ] && (cd /tmp/fold-gpu && find . -type f ! -name '*.safetensors' | tar czf $R/fold-gpu.tgz -T -)
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader >> $R/nvidia-smi.txt 2>&1
tar czf $OUT/s9.tgz -C $R --exclude=fold-gpu.tgz . ; cp $R/fold-gpu.tgz $OUT/ 2>/dev/null
cat $R/stages.txt; tail -c 1200 $R/fold.err; tail -8 $R/fold.out
