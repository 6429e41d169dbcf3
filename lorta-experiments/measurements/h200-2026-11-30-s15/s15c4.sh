#!/usr/bin/env bash
# session 15, call 4: (a) LLaMA-2-7B bf16 B1xT128 r4 with and without the inner-dimension split of
# small-output products (LORTA_SHAPE_REWRITES=rows,reduce turns it off, also inside the matmul
# node), PEFT LoRA r4 before and after; (b) wgpu through CubeCL's SPIR-V compiler (build with
# `--features cuda,wgpu-spirv`, 52fe0ff + the shapes switch; its CUDA path is the default build's, so it
# also runs (a)) against the default WGSL build (078a9ca): RoBERTa-base f32 / f16 steps.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels XDG_RUNTIME_DIR=/tmp
T=$SECONDS
for b in lorta-experiments lorta-spirv; do
  [ -x $G/$b ] || { xz -dc $G/$b.xz > $G/$b; chmod +x $G/$b; }
done
for f in .gl/*.deb; do dpkg -x "$f" / 2>/dev/null; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
BIN=$G/lorta-experiments; SPV=$G/lorta-spirv
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json --methods lora,lorta"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
run7() { local n=$1 lim=$2; shift 2; [ $SECONDS -lt ${STOP:-330} ] || { st $n skipped; return; }
  timeout $lim "$@" > $W/$n.jsonl 2> $W/$n.log; st $n $?; }
run7 peft7-1 100 $PEFT7
run7 split7-1 150 $SPV $P7
run7 nosplit7-1 110 env LORTA_SHAPE_REWRITES=rows,reduce $SPV $P7
run7 peft7-2 100 $PEFT7
run7 split7-2 110 $SPV $P7
TASK="--task rte --glue-dir $G/glue --method lora --rank 8 --targets q,v --batch-size 32 --max-seq-len 128 --max-steps 40 --time-steps"
ours() { local n=$1 bin=$2; shift 2; [ $SECONDS -lt ${STOP:-530} ] || { st $n skipped; return; }
  timeout ${LIM:-60} $bin train --quiet --out /tmp/runs/$n "$@" > $W/$n.log 2>&1; st $n $?; cp /tmp/runs/$n/run.json $W/$n.json 2>/dev/null; }
R="--model $G/roberta-base --random-weights"
ours wgsl-roberta-f16 $BIN $R $TASK --backend wgpu --dtype f16
ours spirv-roberta-f16 "env LORTA_KERNEL_CACHE=/tmp/lorta-kernels-spv $SPV" $R $TASK --backend wgpu --dtype f16
ours spirv-roberta-f32 "env LORTA_KERNEL_CACHE=/tmp/lorta-kernels-spv $SPV" $R $TASK --backend wgpu --dtype f32
ours wgsl-roberta-f32 $BIN $R $TASK --backend wgpu --dtype f32
cat $W/stages.txt
for f in peft7-1 split7-1 nosplit7-1 peft7-2 split7-2; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    print('%-12s %-6s median %.1f  min %.1f  max %.1f  cpu/step %s' % ('$f', r.get('method'), r['ms_per_step'], r['ms_min'], r.get('ms_max', 0), r.get('main_thread_cpu_ms_per_step')))" 2>/dev/null; done
python3 -c "
import json,glob,os
for p in sorted(glob.glob('$W/*.json')):
    r=json.load(open(p)); n=os.path.basename(p)[:-5]
    print('%-24s median %s ms  first %s s' % (n, r.get('median_step_ms'), r.get('first_step_seconds')))"
for n in spirv-roberta-f16 spirv-roberta-f32; do grep -i "error\|panic" $W/$n.log | head -3; done
tar czf $OUT/all.tgz -C $W .
