#!/usr/bin/env bash
# session 16, call 3: LLaMA-2-7B's 128-token products (bf16) whole and split along the inner
# dimension (`C x` batches of k/C, summed afterwards), forward `x·Wᵀ` (suffix t), backward `g·W`,
# and the forward as `W·xᵀ` (the long side as rows). Call 2 found the GPU busy 96 % of a LoRTA
# step: the kernels' own time bounds it, and the skinny products are its largest part.
set -u
: "${OUT:?}"; W=/tmp/w; rm -rf $W; mkdir -p $W
G=.gpu
[ -x $G/matmul-strategies ] || { xz -dc $G/matmul-strategies.xz > $G/matmul-strategies; chmod +x $G/matmul-strategies; }
S="auto (default),specialized_tma_mma,ordered_double_mma_r8,double_cyclic_mma,specialized_cyclic_mma,simple_tma_mma,simple_cyclic_mma_multirows"
A="128x4096x4096t,4x128x1024x4096t,8x128x512x4096t,4x4096x1024x128,8x4096x512x128,128x4096x4096,4x128x1024x4096,8x128x512x4096"
B="128x4096x11008t,4x128x1024x11008t,128x11008x4096t,8x128x1376x4096t,128x11008x4096,8x128x1376x4096,128x4096x11008,4x128x1024x11008,8x11008x512x128,8x4096x1376x128"
timeout 280 $G/matmul-strategies --dtypes bf16 --shapes $A --iters 30 --strategies "$S" --json $W/a.json > $W/a.md 2> $W/a.log; echo "a rc=$?"
timeout 280 $G/matmul-strategies --dtypes bf16 --shapes $B --iters 30 --strategies "$S" --json $W/b.json > $W/b.md 2> $W/b.log; echo "b rc=$?"
python3 - "$W" <<'PY'
import json, os, sys
w = sys.argv[1]
for f in ("a.json", "b.json"):
    p = os.path.join(w, f)
    if not os.path.exists(p): continue
    by = {}
    for r in json.load(open(p)):
        if r.get("median_ms"): by.setdefault(r["shape"], []).append(r)
    for shape, rs in by.items():
        rs.sort(key=lambda r: r["median_ms"])
        print("%-22s" % shape, "  ".join("%s %.4f" % (r["strategy"].split(" ")[0], r["median_ms"]) for r in rs[:4]))
PY
tail -n 3 $W/a.log $W/b.log
tar czf $OUT/all.tgz -C $W .
