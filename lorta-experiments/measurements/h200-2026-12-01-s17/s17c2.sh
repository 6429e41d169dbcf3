#!/usr/bin/env bash
# session 17, call 2 (binary: 2dbc119 + two-stage log-softmax in the LM losses): the 7B products
# on every kernel family, including the transposed forward `W·xᵀ` (matmul-strategies); in-stream
# traces of LLaMA-2-7B LoRTA r4 with the default kernels, with split-K on every product
# (LORTA_SPLIT_K=all) and with the TMA kernel forced (LORTA_MATMUL_KERNEL=specialized_tma_mma);
# LoRA r4 and PyTorch + PEFT LoRA r4 beside.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
rm -f $G/lorta-experiments $G/matmul-strategies
xz -dc $G/lorta-experiments.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
xz -dc $G/matmul-strategies.xz > $G/matmul-strategies; chmod +x $G/matmul-strategies
BIN=$G/lorta-experiments
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
CUPTI=$(python3 -c "import glob,os,torch; d=os.path.dirname(os.path.dirname(torch.__file__)); print((sorted(glob.glob(d+'/nvidia/**/libcupti.so*', recursive=True))+[''])[0])")
traced() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-500} ] || { st $n skipped; return; }
  CUDA_INJECTION64_PATH=$PWD/$G/libkernel_trace.so KERNEL_TRACE_CUPTI=$CUPTI KERNEL_TRACE_FILE=$W/$n.tsv \
    timeout $lim "$@" > $W/$n.out 2> $W/$n.log; st $n $?; gzip -f $W/$n.tsv 2>/dev/null; }
plain() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-500} ] || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.out 2> $W/$n.log; st $n $?; }
SH=128x4096x4096t,128x4096x11008t,128x11008x4096t,128x4096x4096,128x11008x4096,128x4096x11008,4096x4096x128,11008x4096x128,4096x11008x128
plain bench 150 $G/matmul-strategies --shapes $SH --dtypes bf16 --iters 20 --json $W/bench.json
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
plain ours7-cold 150 $BIN $P7 --methods lorta
traced ours7-lorta 80 $BIN $P7 --methods lorta
traced splitk-lorta 120 env LORTA_SPLIT_K=all $BIN $P7 --methods lorta
traced tma-lorta 120 env LORTA_MATMUL_KERNEL=specialized_tma_mma $BIN $P7 --methods lorta
plain peft7-lora 100 python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16
traced ours7-lora 80 $BIN $P7 --methods lora
cat $W/stages.txt
for n in ours7-cold ours7-lorta splitk-lorta tma-lorta peft7-lora ours7-lora; do python3 -c "
import json
for l in open('$W/$n.out'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-13s %-6s median %.1f ms' % ('$n', r.get('method'), r['ms_per_step']))" 2>/dev/null; done
for n in ours7-lorta splitk-lorta tma-lorta ours7-lora; do python3 scripts/kernel_trace/summary.py $W/$n.tsv.gz --steps 20 --rows 40 --json $W/$n.summary.json > $W/$n.summary.md 2>&1; head -1 $W/$n.summary.md | cut -c1-200; done
grep "best for" $W/bench.log
tar czf $OUT/all.tgz -C $W .
