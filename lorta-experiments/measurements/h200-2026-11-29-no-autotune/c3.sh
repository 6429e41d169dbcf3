#!/usr/bin/env bash
# session 6, call 3: MiniLM cold/warm start-up and step time vs PEFT (f32, bf16), wgpu rows, checks
set -u
OUT=${OUT:?}; R=/tmp/c3; mkdir -p $R
[ -x .gpu/lorta-experiments ] || { echo "binary missing: machine was not kept"; exit 3; }
left() { echo $(( ${BUDGET:-300} - SECONDS )); }
cap() { local a=$1 b=$(left); [ $a -lt $b ] && echo $a || echo $b; }
T=$SECONDS; OUT=$R/train RUN_LIMIT=80 SKIP_TF32=1 timeout $(cap 220) bash scripts/gpu_train_call.sh "minilm wgpu" > $R/train.md 2> $R/train.err; echo "minilm+wgpu $((SECONDS-T))s" >> $R/stages.txt
T=$SECONDS; OUT=$R/checks RUN_LIMIT=$(( $(left) / 2 )) timeout $(cap 120) bash scripts/gpu_train_call.sh "checks" > $R/checks.md 2> $R/checks.err; echo "checks $((SECONDS-T))s" >> $R/stages.txt
tar czf $OUT/c3.tgz -C $R .
cat $R/stages.txt; tail -12 $R/train.md; head -30 $R/checks/checks.md
