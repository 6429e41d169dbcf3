#!/usr/bin/env bash
# session 13, call 7: call 6 again for MiniLM only (call 6 reused call 4's run folders: our runs refused to overwrite them), fresh --out folders.
# ours vs PEFT, then LLaMA-2-7B bf16 B1xT128 r4 PEFT / ours / PEFT / ours / PEFT.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
[ -x $G/lorta-experiments ] || { xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments; }
[ -f $G/minilm/model.safetensors ] || xz -dc $G/minilm/model.safetensors.xz > $G/minilm/model.safetensors
BIN=$G/lorta-experiments
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json --methods lora,lorta"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
COMMON="--task rte --glue-dir $G/glue --model $G/minilm --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps --backend cuda"
PCOMMON="--task rte --glue-dir $G/glue --model $G/minilm --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16"
for run in f32 bf16 f32-again; do
  dt=${run%-again}
  rm -rf /tmp/runs7/minilm-$run; timeout 120 $BIN train --quiet --out /tmp/runs7/minilm-$run $COMMON --dtype $dt > $W/minilm-$run.log 2>&1; st minilm-$run $?
  cp /tmp/runs7/minilm-$run/run.json $W/minilm-$run.json 2>/dev/null
  timeout 90 python3 scripts/glue_peft_reference.py --out $W/peft-minilm-$run.json $PCOMMON --dtype $dt > $W/peft-minilm-$run.log 2>&1; st peft-minilm-$run $?
done
cat $W/stages.txt
python3 -c "
import json
for n in ['minilm-f32','peft-minilm-f32','minilm-bf16','peft-minilm-bf16','minilm-f32-again','peft-minilm-f32-again']:
    try: r=json.load(open('$W/'+n+'.json'))
    except Exception as e: print(n, 'missing', e); continue
    print(n, 'median_step_ms', r.get('median_step_ms'), 'first_step_s', r.get('first_step_seconds'))"
tar czf $OUT/all.tgz -C $W .
