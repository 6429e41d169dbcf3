#!/usr/bin/env bash
# session 15, call 2 (3xTF32 binary, 30b8c63): CubeCL kernel profiles of RoBERTa-base GLUE steps
# (f32 exact, f32 --tf32, bf16; 3 steps each, warm kernel cache); MiniLM parity on CUDA vs
# ndarray; MiniLM f32 / bf16 GLUE steps beside PyTorch + PEFT.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
[ -f $G/minilm/model.safetensors ] || xz -dc $G/minilm/model.safetensors.xz > $G/minilm/model.safetensors
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --time-steps"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
R="--model $G/roberta-base --random-weights"
M="--model $G/minilm"
# kernel profiles: an unprofiled run fills the cache, then 3 profiled steps
kprof() { local n=$1; shift
  timeout 60 $BIN train --quiet --out /tmp/runs/$n-fill $R $TASK --max-steps 3 "$@" > $W/$n-fill.log 2>&1
  printf '[profiling.logger]\nlevel = "full"\nfile = "/tmp/prof-%s.log"\n' $n > cubecl.toml
  timeout 60 $BIN train --quiet --out /tmp/runs/$n $R $TASK --max-steps 3 "$@" > $W/$n.log 2>&1; st $n $?
  rm -f cubecl.toml
  python3 scripts/cubecl_profile_summary.py /tmp/prof-$n.log 40 > $W/$n-kernels.txt; }
kprof kprof-f32 --backend cuda --dtype f32
kprof kprof-tf32 --backend cuda --dtype f32 --tf32
kprof kprof-bf16 --backend cuda --dtype bf16
timeout 90 python3 scripts/gpu_checks.py --bin $BIN --backends ndarray,cuda --minilm $G/minilm --only minilm > $W/checks.log 2>&1; st checks $?
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-500} ] || { st $n skipped; return; }
  timeout ${LIM:-80} $BIN train --quiet --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
peft() { local n=$1; shift; [ $SECONDS -lt ${STOP:-500} ] || { st $n skipped; return; }
  timeout ${LIM:-80} python3 scripts/glue_peft_reference.py --out $W/$n.json "$@" > $W/$n.log 2>&1; st $n $?; }
ours minilm-f32 $M $TASK --max-steps 40 --backend cuda --dtype f32
peft peft-minilm-f32 $M $PTASK --dtype f32
ours minilm-bf16 $M $TASK --max-steps 40 --backend cuda --dtype bf16
peft peft-minilm-bf16 $M $PTASK --dtype bf16
cat $W/stages.txt
for n in kprof-f32 kprof-tf32 kprof-bf16; do echo "== $n"; head -14 $W/$n-kernels.txt | cut -c1-110; done
tail -8 $W/checks.log
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-24s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
