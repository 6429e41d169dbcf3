#!/usr/bin/env bash
# session 6, call 1 (fresh binary, no autotune): folding trunk vs transformers+PEFT, RoBERTa-base vs PEFT
set -u
OUT=${OUT:?}; R=/tmp/c1; mkdir -p $R
G=.gpu
python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"; chmod +x $G/lorta-experiments
left() { echo $(( ${BUDGET:-470} - SECONDS )); }
cap() { local a=$1 b=$(left); [ $a -lt $b ] && echo $a || echo $b; }
export CUBECL_DEBUG_LOG=$R/cubecl-fold.log
T=$SECONDS; REF_METHODS=lora OURS_METHODS=lora:8,lorta:8 REF_LIMIT=$(cap 100) OURS_LIMIT=$(cap 170) PAPER_LIMIT=$(cap 70) OUT=$R/fold bash scripts/gpu_fold_call.sh > $R/fold.md 2>&1
echo "fold $((SECONDS-T))s kernels=$(grep -c START_KERNEL_COMPILATION $R/cubecl-fold.log 2>/dev/null)" >> $R/stages.txt
unset CUBECL_DEBUG_LOG; gzip -f $R/cubecl-fold.log
T=$SECONDS; OUT=$R/train RUN_LIMIT=80 SKIP_TF32=1 timeout $(cap 200) bash scripts/gpu_train_call.sh "roberta" > $R/train.md 2> $R/train.err; echo "roberta $((SECONDS-T))s" >> $R/stages.txt
tar czf $OUT/c1.tgz -C $R .
cat $R/stages.txt; tail -8 $R/fold.md; tail -9 $R/train.md
