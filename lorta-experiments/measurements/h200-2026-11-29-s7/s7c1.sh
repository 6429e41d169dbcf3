#!/usr/bin/env bash
# session 7, call 1: LLaMA-2-7B profile after the fusion fix (cold + warm start, vs PEFT), the folding
# trunk without kernel fusion (timing + per-kernel profile), RoBERTa f32 split forms
set -u
OUT=${OUT:?}; R=/tmp/s7c1; mkdir -p $R
G=.gpu
for b in lorta-experiments lorta-experiments-nf; do
  python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('$G/$b.xz'), open('$G/$b','wb'))"; chmod +x $G/$b
done
left() { echo $(( ${BUDGET:-570} - SECONDS )); }
cap() { local a=$1 b=$(left); [ $a -lt $b ] && echo $a || echo $b; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > $R/gpu.txt 2>&1
(python3 --version; python3 -m pip install -q --no-deps --no-index $G/wheels/*.whl; python3 -c "import trl, datasets, gguf; print('trl ok', trl.__version__, datasets.__version__)"; python3 -m pip list 2>/dev/null | grep -iE "^(pyarrow|xxhash|pandas|fsspec|requests|pyyaml|tqdm|accelerate|peft|transformers|torch) ") > $R/pydeps.txt 2>&1
# 1. 7B: cold process (fresh machine), warm process, PEFT
T=$SECONDS; OUT=$R/train RUN_LIMIT=$(cap 100) timeout $(cap 300) bash scripts/gpu_train_call.sh "7b" > $R/train7b.md 2> $R/train7b.err; echo "7b $((SECONDS-T))s" >> $R/stages.txt
# 2. fold without fusion: 12 blocks, L256, bf16, LoRA r8
mkdir -p $R/fold; export CUBECL_DEBUG_LOG=$R/fold/cubecl.log
T=$SECONDS
timeout $(cap 125) $G/lorta-experiments-nf fold --profile --preset gpu --backend cuda --dtype bf16 --length 256 --blocks 12 --dims 1024,128,32 \
  --profile-steps 10 --warmup 2 --pair-update s2p --methods lora:8 --kernel-cache /tmp/kc-nf --out $R/fold/run > $R/fold/nf.jsonl 2> $R/fold/nf.err
echo "fold-nofusion rc=$? $((SECONDS-T))s kernels=$(grep -c START_KERNEL_COMPILATION $R/fold/cubecl.log 2>/dev/null)" >> $R/stages.txt
unset CUBECL_DEBUG_LOG; gzip -f $R/fold/cubecl.log
# 3. per-kernel profile of one no-fusion step (warm cache)
printf '[profiling.logger]\nlevel = "full"\nfile = "%s"\n' $R/fold/prof.log > cubecl.toml
T=$SECONDS
timeout $(cap 50) $G/lorta-experiments-nf fold --profile --preset gpu --backend cuda --dtype bf16 --length 256 --blocks 12 --dims 1024,128,32 \
  --profile-steps 1 --warmup 1 --pair-update s2p --methods lora:8 --kernel-cache /tmp/kc-nf --out $R/fold/run2 > $R/fold/prof.jsonl 2> $R/fold/prof.err
echo "fold-profile rc=$? $((SECONDS-T))s" >> $R/stages.txt
rm -f cubecl.toml; gzip -f $R/fold/prof.log
# 3b. per-kernel profile of one LLaMA-2-7B LoRA r4 step (warm cache)
printf '[profiling.logger]\nlevel = "full"\nfile = "%s"\n' $R/prof7b.log > cubecl.toml
T=$SECONDS
LORTA_KERNEL_CACHE=/tmp/lorta-kernels timeout $(cap 50) $G/lorta-experiments profile --backend cuda --model llama-2-7b --dtype bf16 --methods lora --ranks 4 --seq-len 128 --steps 1 --warmup 1 --json > $R/prof7b.jsonl 2> $R/prof7b.err
echo "7b-profile rc=$? $((SECONDS-T))s" >> $R/stages.txt
rm -f cubecl.toml; gzip -f $R/prof7b.log
# 4. RoBERTa-base f32: split as four products (default) vs one concatenated product vs --tf32; PEFT f32
T=$SECONDS
RB="train --quiet --backend cuda --model $G/roberta-base --random-weights --task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
for v in default concat tf32; do
  extra=""; [ $v = tf32 ] && extra="--tf32"
  LORTA_F32_SPLIT=$v timeout $(cap 45) $G/lorta-experiments $RB $extra --out /tmp/rb-$v > $R/rb-$v.log 2>&1
  python3 -c "import json; r=json.load(open('/tmp/rb-$v/run.json')); print('roberta-f32-$v', r.get('median_step_ms'), r.get('first_step_seconds'))" >> $R/rb.txt 2>&1
done
timeout $(cap 60) python3 scripts/glue_peft_reference.py --out /tmp/peft-rb.json --model $G/roberta-base --random-weights --task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16 --dtype f32 > $R/peft-rb.log 2>&1
python3 -c "import json; d=json.load(open('/tmp/peft-rb.json')); d.pop('history'); print('peft-roberta-f32', json.dumps(d)[:300])" >> $R/rb.txt 2>&1
echo "roberta $((SECONDS-T))s" >> $R/stages.txt
tar czf $OUT/s7c1.tgz -C $R .
cat $R/stages.txt; tail -14 $R/pydeps.txt; tail -6 $R/train7b.md; cut -c1-300 $R/fold/nf.jsonl; tail -2 $R/fold/nf.err; zcat $R/fold/prof.log.gz 2>/dev/null | sort -t'|' -k3 -r | head -5 | cut -c1-200; cat $R/rb.txt
