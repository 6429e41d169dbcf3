#!/usr/bin/env bash
# session 13, call 1: where the host time of a 7B step goes on CUDA. The session-12 binary
# (unstripped, for symbols) runs LoRTA r4 7B bf16 B1xT128 once cold, then warm under `perf record`
# (no call graphs: self time per thread and symbol), then PyTorch + PEFT for the same-call ratio.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
export PYTHONUNBUFFERED=1 LORTA_KERNEL_CACHE=/tmp/lorta-kernels
T=$SECONDS
xz -dc $G/lorta-full.xz > $G/lorta-experiments; chmod +x $G/lorta-experiments
tar xJf $G/perf.txz -C /tmp; PERF="env LD_LIBRARY_PATH=/tmp/perfb/lib /tmp/perfb/perf"
BIN=$G/lorta-experiments
P7="profile --backend cuda --model llama-2-7b --dtype bf16 --ranks 4 --seq-len 128 --steps 20 --warmup 3 --json"
PEFT7="python3 scripts/profile_peft.py --methods lora --ranks 4 --seq-len 128 --steps 20 --warmup 3 --dtype bf16"
st() { echo "$1 rc=$2 $((SECONDS-T))s" >> $W/stages.txt; }
$PERF stat -e task-clock true > $W/perf-check.txt 2>&1; st perf-check $?
cat /proc/sys/kernel/perf_event_paranoid >> $W/perf-check.txt 2>&1
timeout 150 $BIN $P7 --methods lora,lorta > $W/ours-cold.jsonl 2> $W/ours-cold.log; st ours-cold $?
timeout 80 $PEFT7 > $W/peft-1.jsonl 2> $W/peft-1.log; st peft-1 $?
timeout 100 $PERF record -F 997 -o /tmp/perf.data $BIN $P7 --methods lorta > $W/ours-perf.jsonl 2> $W/ours-perf.log; st ours-perf $?
for c in $(cd /tmp && $PERF report -i /tmp/perf.data --sort comm --stdio 2>/dev/null | grep -v '^#' | awk 'NF>=2 && $1 ~ /%/ {print $2}' | head -6); do
  echo "== $c" >> $W/perf-threads.txt
  (cd /tmp && $PERF report -i /tmp/perf.data --comm "$c" --sort dso,sym --stdio 2>/dev/null) | grep -v '^#' | grep -v '^$' | head -45 | cut -c1-200 >> $W/perf-threads.txt
done
(cd /tmp && $PERF report -i /tmp/perf.data --sort comm --stdio 2>/dev/null) | grep -v '^#' | grep -v '^$' | head -12 > $W/perf-comm.txt
timeout 80 $PEFT7 > $W/peft-2.jsonl 2> $W/peft-2.log; st peft-2 $?
cat $W/stages.txt; cat $W/perf-check.txt | tail -3
for f in ours-cold peft-1 ours-perf peft-2; do python3 -c "
import json
for l in open('$W/$f.jsonl'):
    try: r=json.loads(l)
    except Exception: continue
    c=r.get('main_thread_cpu_ms_per_step')
    print('%-12s %-6s median %6.1f min %6.1f max %6.1f cpu main %s' % ('$f', r.get('method'), r['ms_per_step'], r['ms_min'], r['ms_max'], c and round(c,1)))"; done
cat $W/perf-comm.txt
grep -A14 "^==" $W/perf-threads.txt | cut -c1-150 | head -70
tar czf $OUT/all.tgz -C $W .
