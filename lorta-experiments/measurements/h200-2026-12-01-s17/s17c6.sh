#!/usr/bin/env bash
# session 17, call 6 (48e955e): the LLM training commands on CUDA with partial batches padded to
# full rows (tiny fixture LLaMA: sft 3 examples in batches of 2, dpo 2 pairs in a batch of 3,
# table3 smoke), then one more LLaMA-2-7B LoRA r4 / LoRTA r4 sample beside PEFT LoRA r4.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels-c6 XDG_RUNTIME_DIR=/tmp
T=$SECONDS
rm -f $G/lorta-experiments; xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
BIN=$G/lorta-experiments
F=lorta-experiments/tests/fixtures/llm
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
run() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-200} ] || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.out 2> $W/$n.log; st $n $?; }
run sft 90 $BIN sft --backend cuda --data $F/alpaca.json --eval-examples 1 --batch-size 2 --max-steps 4 --method lora --rank 2 --targets q,v --quiet --max-len 128 --model $F/tiny-llama --out $W/sft-run
run dpo 90 $BIN dpo --backend cuda --model $F/tiny-llama --data $F/orca_dpo.jsonl --eval-pairs 1 --batch-size 3 --max-steps 2 --method lora --rank 2 --targets q,v --quiet --max-len 96 --out $W/dpo-run
run table3 120 $BIN table3 --backend cuda --preset smoke --tasks copa,squad --methods lora-r8,lorta-r4 --quiet --out $W/t3-run
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
run ours7-lorta-cold 100 $BIN $P7 --methods lorta
run peft7-lora 90 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16
run ours7-lora 90 $BIN $P7 --methods lora
run ours7-lorta 60 $BIN $P7 --methods lorta
cat $W/stages.txt
python3 -c "
import json
for n,k in (('sft','eval_loss'),('dpo','loss')):
    m=json.load(open('$W/%s-run/metrics.json' % n)); print(n, k, m['last']['metrics'][k], 'train_loss', m['last'].get('train_loss'))
" 2>&1
tail -5 $W/t3-run/table.md 2>/dev/null
for n in ours7-lorta-cold peft7-lora ours7-lora ours7-lorta; do python3 -c "
import json
for l in open('$W/$n.out'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-17s %-6s median %.1f ms' % ('$n', r.get('method'), r['ms_per_step']))" 2>/dev/null; done
tail -3 $W/sft.log $W/dpo.log $W/table3.log
tar czf $OUT/all.tgz -C $W .
