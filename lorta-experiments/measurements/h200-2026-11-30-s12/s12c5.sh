#!/usr/bin/env bash
# session 12, call 5: why the warm process's first 7B LoRA step grew from 2.3 s (call 1) to
# 10 s (call 4). A cold run fills the kernel cache, then warm runs log every kernel they still
# compile (CubeCL's compilation logger writes a kernel only on a cache miss): all fused
# operations, and LORTA_FUSED_OPS=none. Only all.tgz in $OUT.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
BIN=$G/lorta-experiments
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 3 --warmup 3 --json --methods lora"
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
timeout 150 $BIN $P7 > $W/cold.jsonl 2> $W/cold.log; st cold $?
for v in all none; do
  printf '[compilation.logger]\nlevel = "basic"\nfile = "%s"\n' "$W/compile-$v.log" > cubecl.toml
  LORTA_FUSED_OPS=$v timeout 100 $BIN $P7 > $W/warm-$v.jsonl 2> $W/warm-$v.log; st warm-$v $?
  rm -f cubecl.toml
done
cat $W/stages.txt
for v in all none; do
  echo "== warm $v: $(grep -h 'warm-up step' $W/warm-$v.log | head -2 | tr '\n' ' ')"
  echo "kernels compiled: $(grep -c '__global__' $W/compile-$v.log 2>/dev/null)"
  grep -o '__global__ void [A-Za-z_0-9]*' $W/compile-$v.log 2>/dev/null | sort | uniq -c | sort -rn | head -12
done
for f in $W/compile-*.log; do gzip -f $f; done
tar czf $OUT/all.tgz -C $W .
