#!/usr/bin/env bash
# session 7, call 4 (fresh machine): RoBERTa-base f32 with the shape rewrites (cold), per-kernel profile of the folding
# trunk step (fusion build, rewrites on); leaves the binary and the first GGUF half for call 5
set -u
OUT=${OUT:?}; R=/tmp/s7c4; mkdir -p $R
G=.gpu
python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/lorta-experiments.xz'), open('$G/lorta-experiments','wb'))"; chmod +x $G/lorta-experiments
left() { echo $(( ${BUDGET:-250} - SECONDS )); }
cap() { local a=$1 b=$(left); [ $a -lt $b ] && echo $a || echo $b; }
export LORTA_KERNEL_CACHE=/tmp/lorta-kernels PYTHONUNBUFFERED=1
RB="train --quiet --backend cuda --model $G/roberta-base --random-weights --task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
T=$SECONDS; timeout $(cap 75) $G/lorta-experiments $RB --dtype f32 --out /tmp/rb-f32 > $R/rb-f32.log 2>&1; echo "roberta f32 rc=$? $((SECONDS-T))s" >> $R/stages.txt
python3 -c "import json; r=json.load(open('/tmp/rb-f32/run.json')); print('ours roberta f32 rewrites=default', round(r.get('median_step_ms'),2), 'first', round(r.get('first_step_seconds'),1))" >> $R/stages.txt 2>&1
printf '[profiling.logger]\nlevel = "full"\nfile = "%s"\n' /tmp/prof-fold.log > cubecl.toml
T=$SECONDS
timeout $(cap 160) $G/lorta-experiments fold --profile --preset gpu --backend cuda --dtype bf16 --length 256 --blocks 12 --dims 1024,128,32 \
  --profile-steps 1 --warmup 1 --pair-update s2p --methods lora:8 --kernel-cache /tmp/kc --out /tmp/fp > $R/fold-prof.jsonl 2> $R/fold-prof.err
echo "fold-profile rc=$? $((SECONDS-T))s" >> $R/stages.txt
rm -f cubecl.toml
python3 scripts/cubecl_profile_summary.py /tmp/prof-fold.log 60 > $R/fold-kprof.txt 2>&1 || (gzip -c /tmp/prof-fold.log > /tmp/p.gz; python3 scripts/cubecl_profile_summary.py /tmp/p.gz 60 > $R/fold-kprof.txt 2>&1)
tar czf $OUT/s7c4.tgz -C $R .
cat $R/stages.txt; head -45 $R/fold-kprof.txt | cut -c1-160
