#!/usr/bin/env bash
# session 13, call 5: MiniLM f32 (exact products) regression check, same binary as call 4:
# default, LORTA_PERSISTENT_WEIGHTS=0, without stacked_block, both off; PEFT f32 once.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
xz -dc $G/minilm/model.safetensors.xz > $G/minilm/model.safetensors
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
COMMON="--task rte --glue-dir $G/glue --model $G/minilm --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps --backend cuda --dtype f32"
NOBLOCK=rms_norm,layer_norm,attention,add_update,swiglu
run() { local name=$1; shift; env "$@" timeout 120 $BIN train --quiet --out /tmp/runs/$name $COMMON > $W/$name.log 2>&1; st $name $?; cp /tmp/runs/$name/run.json $W/$name.json 2>/dev/null; }
run f32-warmup LORTA_X=1
run f32-default LORTA_X=1
run f32-no-persistent LORTA_PERSISTENT_WEIGHTS=0
run f32-no-block LORTA_FUSED_OPS=$NOBLOCK
run f32-neither LORTA_PERSISTENT_WEIGHTS=0 LORTA_FUSED_OPS=$NOBLOCK
run f32-no-fused LORTA_FUSED_OPS=none
timeout 90 python3 scripts/glue_peft_reference.py --out $W/peft-f32.json --task rte --glue-dir $G/glue --model $G/minilm --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16 --dtype f32 > $W/peft-f32.log 2>&1; st peft-f32 $?
cat $W/stages.txt
python3 -c "
import json
for n in ['f32-warmup','f32-default','f32-no-persistent','f32-no-block','f32-neither','f32-no-fused','peft-f32']:
    try: r=json.load(open('$W/'+n+'.json'))
    except Exception as e: print(n, 'missing', e); continue
    print('%-18s median_step_ms %s first_step_s %s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
tar czf $OUT/all.tgz -C $W .
