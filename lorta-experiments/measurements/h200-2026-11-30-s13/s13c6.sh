#!/usr/bin/env bash
# session 13, call 6: same binary and (warm) machine as calls 4-5. MiniLM RTE LoRA r8 f32 and bf16
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
for dt in f32 bf16; do
  timeout 120 $BIN train --quiet --out /tmp/runs/minilm-$dt $COMMON --dtype $dt > $W/minilm-$dt.log 2>&1; st minilm-$dt $?
  cp /tmp/runs/minilm-$dt/run.json $W/minilm-$dt.json 2>/dev/null
  timeout 90 python3 scripts/glue_peft_reference.py --out $W/peft-minilm-$dt.json $PCOMMON --dtype $dt > $W/peft-minilm-$dt.log 2>&1; st peft-minilm-$dt $?
done
for i in 1 2; do
  timeout 80 $PEFT7 > $W/peft-$i.jsonl 2> $W/peft-$i.log; st peft-$i $?
  timeout 80 $BIN $P7 > $W/ours-warm-$i.jsonl 2> $W/ours-warm-$i.log; st ours-warm-$i $?
done
timeout 80 $PEFT7 > $W/peft-3.jsonl 2> $W/peft-3.log; st peft-3 $?
cat $W/stages.txt
for f in peft-1 ours-warm-1 peft-2 ours-warm-2 peft-3; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    c=r.get('main_thread_cpu_ms_per_step')
    print('%-12s %-6s median %6.1f min %6.1f max %6.1f cpu main %s' % ('$f', r.get('method'), r['ms_per_step'], r['ms_min'], r['ms_max'], c and round(c,1)))"; done
python3 -c "
import json
for n in ['minilm-f32','peft-minilm-f32','minilm-bf16','peft-minilm-bf16']:
    try: r=json.load(open('$W/'+n+'.json'))
    except Exception as e: print(n, 'missing', e); continue
    print(n, 'median_step_ms', r.get('median_step_ms'), 'first_step_s', r.get('first_step_seconds'))"
tar czf $OUT/all.tgz -C $W .
