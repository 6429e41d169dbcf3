#!/usr/bin/env bash
# session 17, call 4 (call 3's binary): MiniLM bf16 ran at 15-17 ms per step until the first
# epoch's partial last batch (26 rows), ~28 ms after it, and ~28 ms from the start in the next
# process (call 3). Here: a fresh kernel cache filled by a run that stops before the partial
# batch (76 steps), then warm runs from it, traced; and traced warm runs from call 3's cache
# (when this machine still has it), to find the kernel that changed.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 XDG_RUNTIME_DIR=/tmp
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
[ -f $G/minilm/model.safetensors ] || xz -dc $G/minilm/model.safetensors.xz > $G/minilm/model.safetensors
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
ls /tmp/lorta-kernels > /dev/null 2>&1 && echo "call 3 cache present: $(du -sh /tmp/lorta-kernels)" >> $W/stages.txt
CUPTI=$(python3 -c "import glob,os,torch; d=os.path.dirname(os.path.dirname(torch.__file__)); print((sorted(glob.glob(d+'/nvidia/**/libcupti.so*', recursive=True))+[''])[0])")
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --time-steps --backend cuda --dtype bf16 --model $G/minilm"
run() { local n=$1 cache=$2 steps=$3 trace=$4; [ $SECONDS -lt 400 ] || { st $n skipped; return; }
  if [ $trace = 1 ]; then
    CUDA_INJECTION64_PATH=$PWD/$G/libkernel_trace.so KERNEL_TRACE_CUPTI=$CUPTI KERNEL_TRACE_FILE=$W/$n.tsv LORTA_KERNEL_CACHE=$cache \
      timeout 90 $BIN train $TASK --max-steps $steps --quiet --out /tmp/runs/$n > $W/$n.log 2>&1; st $n $?; gzip -f $W/$n.tsv
    python3 scripts/kernel_trace/summary.py $W/$n.tsv.gz --steps 20 --rows 30 --json $W/$n.summary.json > $W/$n.summary.md 2>&1
  else
    LORTA_KERNEL_CACHE=$cache timeout 90 $BIN train $TASK --max-steps $steps --quiet --out /tmp/runs/$n > $W/$n.log 2>&1; st $n $?
  fi
  cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
run fresh-76      /tmp/kc-a 76 0
run fresh-warm-76 /tmp/kc-a 76 0
run fresh-warm-tr /tmp/kc-a 60 1
[ -d /tmp/lorta-kernels ] && run call3-warm-tr /tmp/lorta-kernels 60 1
run fresh-80      /tmp/kc-a 80 0
run fresh-warm-80 /tmp/kc-a 80 0
cat $W/stages.txt
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    if 'summary' in p: continue
    r=json.load(open(p)); n=os.path.basename(p)[:-5]; s=r['step_ms']
    print('%-14s median %6.2f ms  last steps %s' % (n, r.get('median_step_ms') or 0, [round(x,1) for x in s[-6:]]))"
for n in fresh-warm-tr call3-warm-tr; do head -12 $W/$n.summary.md 2>/dev/null | cut -c1-160; done
tar czf $OUT/all.tgz -C $W .
