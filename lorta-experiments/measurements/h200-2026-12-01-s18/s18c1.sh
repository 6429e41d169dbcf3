#!/usr/bin/env bash
# session 18, call 1: session 18's two launch cuts — the optimizer's gradient join in a few
# launches (`lorta_core::flat_join`) and LoRA's products with row-major factor gradients
# (`fused::linear`) — against session 17's step (`LORTA_FLAT_JOIN=0` and `LORTA_FUSED_OPS` without
# `linear`), alternating processes: LLaMA-2-7B bf16 LoRA r4 beside PEFT LoRA r4 (two PEFT runs),
# LoRTA r4 once; in-stream kernel traces of the LoRA step both ways; RoBERTa-base f32 (random
# weights) LoRA r8 on q,v both ways beside PEFT; a tiny-fixture LoRA sft both ways (losses equal
# up to summation order).
set -u
: "${OUT:?}"; W=/tmp/s18c1; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels-s18 XDG_RUNTIME_DIR=/tmp
T=$SECONDS
rm -f $G/lorta-experiments; xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
BIN=$G/lorta-experiments
# one archive, rewritten after every stage: at most 8 files come back from a call, and a call cut
# short still returns what ran (session 19's run of this script wrote ~50 files under $OUT and got 8)
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; tar czf $OUT/s18c1.tgz -C /tmp s18c1 2>/dev/null; }
CUPTI=$(python3 -c "import glob,os,torch; d=os.path.dirname(os.path.dirname(torch.__file__)); print((sorted(glob.glob(d+'/nvidia/**/libcupti.so*', recursive=True))+[''])[0])")
traced() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-520} ] || { st $n skipped; return; }
  CUDA_INJECTION64_PATH=$PWD/$G/libkernel_trace.so KERNEL_TRACE_CUPTI=$CUPTI KERNEL_TRACE_FILE=$W/$n.tsv \
    timeout $lim "$@" > $W/$n.out 2> $W/$n.log; local rc=$?; gzip -f $W/$n.tsv 2>/dev/null; st $n $rc; }  # traces: ~1-2 MB each
plain() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-520} ] || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.out 2> $W/$n.log; st $n $?; }
OFF="env LORTA_FLAT_JOIN=0 LORTA_FUSED_OPS=rms_norm,layer_norm,attention,add_update,swiglu,stacked_block"
# a tiny fixture LLaMA's LoRA sft run: the same losses both ways, up to summation order
F=lorta-experiments/tests/fixtures/llm
SFT="sft --backend cuda --data $F/alpaca.json --eval-examples 1 --batch-size 2 --max-steps 4 --method lora --rank 2 --targets q,v --max-len 128 --model $F/tiny-llama"
plain sft-on 90 $BIN $SFT --out $W/sft-on
plain sft-off 90 $OFF $BIN $SFT --out $W/sft-off
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
plain ours7-lora-cold 120 $BIN $P7 --methods lora
plain peft7-lora-1 100 $PEFT7
plain ours7-lora-1 60 $BIN $P7 --methods lora
plain ours7-lora-off-1 60 $OFF $BIN $P7 --methods lora
plain ours7-lora-2 60 $BIN $P7 --methods lora
plain ours7-lora-off-2 60 $OFF $BIN $P7 --methods lora
plain ours7-lorta 80 $BIN $P7 --methods lorta
plain peft7-lora-2 100 $PEFT7
traced trace7-lora 60 $BIN $P7 --methods lora
traced trace7-lora-off 60 $OFF $BIN $P7 --methods lora
# RoBERTa-base f32 exact, LoRA r8 q,v: 48 adapter tensors
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps --backend cuda --dtype f32"
PTASK="--task rte --glue-dir $G/glue --rank 8 --targets query,value --batch-size 32 --max-seq-len 128 --max-steps 40 --no-eval --pad-to-multiple 16 --dtype f32"
R="--model $G/roberta-base --random-weights"
ours() { local n=$1; shift; [ $SECONDS -lt ${STOP:-520} ] || { st $n skipped; return; }
  timeout 90 "$@" --quiet --out /tmp/runs/$n > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
ours r32-cold $BIN train $R $TASK
ours r32-on $BIN train $R $TASK
ours r32-off $OFF $BIN train $R $TASK
[ $SECONDS -lt ${STOP:-520} ] && { timeout 90 python3 scripts/glue_peft_reference.py --out $W/peft-r32.json $R $PTASK > $W/peft-r32.log 2>&1; st peft-r32 $?; }
ours r32-on-2 $BIN train $R $TASK
cat $W/stages.txt
for n in sft-on sft-off; do python3 -c "
import json; m=json.load(open('$W/$n/metrics.json')); print('$n', 'eval_loss', repr(m['last']['metrics']['eval_loss']), 'train_loss', repr(m['last'].get('train_loss')))" 2>&1 | tail -1; done
for n in ours7-lora-cold peft7-lora-1 ours7-lora-1 ours7-lora-off-1 ours7-lora-2 ours7-lora-off-2 ours7-lorta peft7-lora-2 trace7-lora trace7-lora-off; do python3 -c "
import json
for l in open('$W/$n.out'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-17s %-6s median %.1f ms' % ('$n', r.get('method'), r['ms_per_step']))" 2>/dev/null; done
for n in trace7-lora trace7-lora-off; do python3 scripts/kernel_trace/summary.py $W/$n.tsv.gz --steps 20 --rows 40 --json $W/$n.summary.json > $W/$n.summary.md 2>&1; head -1 $W/$n.summary.md | cut -c1-220; done
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*r32*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-11s median %6.2f ms  first %6.2f s' % (n, r.get('median_step_ms') or 0, r.get('first_step_seconds') or 0))"
tar czf $OUT/s18c1.tgz -C /tmp s18c1
