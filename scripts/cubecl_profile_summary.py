#!/usr/bin/env python3
"""Per-kernel summary of a CubeCL profiling log (cubecl.toml `[profiling.logger] level = "full"`,
every kernel timed with a device sync): total time and launches per kernel type, then per kernel
type and cube count (the launch grid tells which shapes are slow, e.g. a matmul on one cube).

    python3 scripts/cubecl_profile_summary.py prof.log[.gz] [N rows of the second table]

Durations include each kernel's first-launch compilation, so profile a warm process (kernel cache
filled by an earlier run) when comparing kernels.
"""
import collections
import gzip
import re
import sys
path = sys.argv[1]
rec_re = re.compile(r'^\| ([0-9.]+)(µs|ms|ns|s)\s+\| (.*)$')
unit = {"ns": 1e-6, "µs": 1e-3, "ms": 1.0, "s": 1e3}
recs = []
cur = None
opener = gzip.open if path.endswith(".gz") else open
for line in opener(path, "rt", errors="replace"):
    m = rec_re.match(line)
    if m:
        if cur: recs.append(cur)
        cur = [float(m.group(1)) * unit[m.group(2)], m.group(3).strip(), []]
    elif cur is not None:
        if line.startswith("|"):
            recs.append(cur); cur = None
        else:
            cur[2].append(line.strip())
            if line.startswith("} CubeCount"):
                recs.append(cur); cur = None
if cur: recs.append(cur)
def short(name):
    """Kernel type (last path segment) plus its operation parameter, e.g. `KernelBinop/MulOp`."""
    n = name.split("<")[0].split("::")[-1]
    op = re.findall(r"(\w+Op)\b", name[:300])
    return n + ("/" + op[0] if op else "")
agg = collections.defaultdict(lambda: [0.0, 0])
aggc = collections.defaultdict(lambda: [0.0, 0])
for ms, name, body in recs:
    k = short(name)
    agg[k][0] += ms; agg[k][1] += 1
    cc = body[-1] if body and body[-1].startswith("} CubeCount") else ""
    aggc[(k, cc)][0] += ms; aggc[(k, cc)][1] += 1
tot = sum(v[0] for v in agg.values())
print(f"records {len(recs)} total {tot:.1f} ms")
for k, (ms, n) in sorted(agg.items(), key=lambda x: -x[1][0])[:25]:
    print(f"{ms:10.1f} ms {n:7d}  {ms/n*1000:9.1f} us/launch  {k}")
print("--- by kernel + cube count")
for (k, cc), (ms, n) in sorted(aggc.items(), key=lambda x: -x[1][0])[:int(sys.argv[2]) if len(sys.argv)>2 else 30]:
    print(f"{ms:10.1f} ms {n:6d} {ms/n*1000:9.1f} us  {k} {cc}")
