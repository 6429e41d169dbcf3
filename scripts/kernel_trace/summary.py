#!/usr/bin/env python3
"""Where a training step's GPU time goes, from an in-stream kernel trace (`kernel_trace.c`).

    python3 scripts/kernel_trace/summary.py trace.tsv[.gz] --steps 20 [--rows 40] [--json out.json]

The window is the last `--steps` training steps, found from a kernel launched once per step (see
`step_window`; `--launches-per-step` picks among candidates when needed). Reports
per step: wall span, GPU-busy time (union of kernel intervals), idle gaps between kernels, and per
kernel name (and launch grid) the count, total and mean time.
"""
import argparse
import collections
import gzip
import json
import re
import statistics


def read(path):
    opener = gzip.open if path.endswith(".gz") else open
    rows = []
    with opener(path, "rt", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 6)
            if len(parts) != 7:
                continue
            kind, start, end, stream, grid, block, name = parts
            rows.append((int(start), int(end), kind, int(stream), grid, block, name))
    rows.sort()
    return rows


def short(name):
    # CubeCL names carry a hash suffix per compiled variant; cuBLAS/cutlass names are long templates
    name = re.sub(r"_[0-9a-f]{8,}$", "", name)
    return name if len(name) <= 90 else name[:87] + "..."


def step_window(names, steps, per_step=0):
    """(first, end) kernel indices of the last `steps` training steps.

    A step launches the same kernels in the same order, so some kernel runs exactly once per step
    (the loss, an optimizer kernel): its launches are `P` kernels apart for many steps in a row,
    while a kernel launched once per layer repeats at a smaller distance that breaks between
    steps. The step is the largest distance that stays the same (within 2 %, for batches of other
    lengths) over at least `steps` launches in a row; warm-up before and an evaluation after the
    timed steps fall outside that run."""
    where = {}
    for i, n in enumerate(names):
        where.setdefault(n, []).append(i)
    best = None
    for pos in where.values():
        if len(pos) <= steps:
            continue
        diffs = [b - a for a, b in zip(pos, pos[1:])]
        run_start = 0
        for j in range(1, len(diffs) + 1):
            if j == len(diffs) or abs(diffs[j] - diffs[run_start]) > 0.02 * diffs[run_start]:
                if j - run_start >= steps:
                    p = sorted(diffs[run_start:j])[(j - run_start) // 2]
                    if (not per_step or abs(p - per_step) <= 0.02 * per_step) and (best is None or p > best[0]):
                        # the run's last `steps` steps: launches run_start..j of this kernel
                        best = (p, pos[j - steps], pos[j])
                run_start = j
    if best is None:
        raise SystemExit(f"no kernel launched once per step for {steps} steps in a row; pass --launches-per-step")
    return best[1], best[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--steps", type=int, required=True, help="timed steps at the end of the trace")
    ap.add_argument("--launches-per-step", type=int, default=0)
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--json")
    a = ap.parse_args()
    rows = [r for r in read(a.trace) if r[2] == "kernel"]
    if not rows:
        raise SystemExit(f"{a.trace}: no kernel records")
    first, end = step_window([r[6] for r in rows], a.steps, a.launches_per_step)
    window = rows[first:end]
    t0, t1 = window[0][0], max(r[1] for r in window)
    span = t1 - t0
    busy, cur_s, cur_e, gaps = 0, window[0][0], window[0][1], []
    for s, e, *_ in window[1:]:
        if s > cur_e:
            busy += cur_e - cur_s
            gaps.append(s - cur_e)
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    busy += cur_e - cur_s
    by_name = collections.defaultdict(list)
    by_grid = collections.defaultdict(list)
    for s, e, _, _, grid, block, name in window:
        by_name[short(name)].append(e - s)
        by_grid[(short(name), grid, block)].append(e - s)
    n = a.steps
    out = {
        "kernels_per_step": len(window) / n,
        "span_ms_per_step": span / n / 1e6,
        "busy_ms_per_step": busy / n / 1e6,
        "busy_fraction": busy / span,
        "gaps_per_step": len(gaps) / n,
        "gap_ms_per_step": sum(gaps) / n / 1e6,
        "median_gap_us": statistics.median(gaps) / 1e3 if gaps else 0.0,
        "kernels": [
            {"name": k, "per_step": len(v) / n, "ms_per_step": sum(v) / n / 1e6, "mean_us": sum(v) / len(v) / 1e3}
            for k, v in sorted(by_name.items(), key=lambda kv: -sum(kv[1]))
        ],
        "launches": [
            {"name": k[0], "grid": k[1], "block": k[2], "per_step": len(v) / n, "ms_per_step": sum(v) / n / 1e6,
             "mean_us": sum(v) / len(v) / 1e3}
            for k, v in sorted(by_grid.items(), key=lambda kv: -sum(kv[1]))
        ],
    }
    print(f"{a.trace}: {out['kernels_per_step']:.0f} kernels/step, span {out['span_ms_per_step']:.2f} ms/step, "
          f"GPU busy {out['busy_ms_per_step']:.2f} ms ({100 * out['busy_fraction']:.0f} %), "
          f"{out['gaps_per_step']:.0f} gaps/step totalling {out['gap_ms_per_step']:.2f} ms (median {out['median_gap_us']:.1f} µs)")
    print(f"| kernel | per step | ms/step | mean µs |\n|---|---|---|---|")
    for k in out["kernels"][: a.rows]:
        print(f"| `{k['name']}` | {k['per_step']:.0f} | {k['ms_per_step']:.3f} | {k['mean_us']:.1f} |")
    print(f"\n| kernel | grid | block | per step | ms/step | mean µs |\n|---|---|---|---|---|---|")
    for k in out["launches"][: a.rows]:
        print(f"| `{k['name']}` | {k['grid']} | {k['block']} | {k['per_step']:.0f} | {k['ms_per_step']:.3f} | {k['mean_us']:.1f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
