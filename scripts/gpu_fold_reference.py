#!/usr/bin/env python3
"""Reference training-step cost of ESMFold's folding trunk in PyTorch (transformers + PEFT), the
side-by-side for our `fold` profile.

Model: transformers' `EsmFoldingTrunk` blocks (the `EsmForProteinFolding` trunk) with random
weights, ESMFold's dimensions (sequence state 1024, pair state 128, head width 32), `--blocks`
blocks (12 = the paper), plus the relative-position pair embedding and the distogram head.
One step = trunk forward from random sequence features (no ESM-2, no structure module, no
recycling), distogram cross-entropy on random bins, backward, AdamW on the trainable
parameters. Timed: median of `--steps` steps after `--warmup` steps (CUDA synchronised).

Methods: `lora` = PEFT LoRA (rank r, alpha = r) on every trunk attention projection:
`seq_attention.{proj, o_proj, g_proj}` and `tri_att_{start,end}.mha.linear_{q,k,v,o,g}`
(PEFT adapts HF's fused q/k/v `proj` as one [3d, d] matrix; ours splits it into three sites);
`full` = every trunk weight trainable.

    python3 scripts/gpu_fold_reference.py                      # H200: L=256, 12 blocks, bf16
    python3 scripts/gpu_fold_reference.py --device cpu --dtype f32 --length 16 --blocks 1 \
        --seq-dim 64 --pair-dim 32 --steps 3 --warmup 1        # smoke test

Writes `$OUT/fold_reference.json` (or --out) and prints a markdown table last.
"""

import argparse
import json
import os
import statistics
import time

import torch
from torch import nn


def build(args, dtype, device):
    from transformers.models.esm.configuration_esm import TrunkConfig
    from transformers.models.esm.modeling_esmfold import EsmFoldRelativePosition, EsmFoldTriangularSelfAttentionBlock

    cfg = TrunkConfig(
        num_blocks=args.blocks,
        sequence_state_dim=args.seq_dim,
        pairwise_state_dim=args.pair_dim,
        sequence_head_width=args.head_width,
        pairwise_head_width=args.head_width,
        chunk_size=None,
    )

    class Trunk(nn.Module):
        def __init__(self):
            super().__init__()
            self.pairwise_positional_embedding = EsmFoldRelativePosition(cfg)
            self.blocks = nn.ModuleList([EsmFoldTriangularSelfAttentionBlock(cfg) for _ in range(cfg.num_blocks)])
            self.distogram_head = nn.Linear(cfg.pairwise_state_dim, 64)

        def forward(self, s, mask, residx):
            b, l, _ = s.shape
            z = s.new_zeros(b, l, l, cfg.pairwise_state_dim) + self.pairwise_positional_embedding(residx, mask=mask)
            for block in self.blocks:
                s, z = block(s, z, mask=mask, residue_index=residx, chunk_size=None)
            logits = self.distogram_head(z)
            return (logits + logits.transpose(1, 2)) / 2

    torch.manual_seed(0)
    model = Trunk()
    # AlphaFold zero-initialises many output projections; random values give a realistic cost
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    return model.to(device=device, dtype=dtype)


TARGETS = r".*(seq_attention\.(proj|o_proj|g_proj)|mha\.linear_[qkvog])$"


def measure(args, method, rank, dtype, device):
    import peft

    model = build(args, dtype, device)
    if method == "lora":
        lcfg = peft.LoraConfig(r=rank, lora_alpha=rank, target_modules=TARGETS, lora_dropout=0.0)
        model = peft.get_peft_model(model, lcfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    g = torch.Generator(device="cpu").manual_seed(1)
    b, l = args.batch, args.length
    s = torch.randn(b, l, args.seq_dim, generator=g).to(device=device, dtype=dtype)
    mask = torch.ones(b, l, dtype=torch.long, device=device)
    residx = torch.arange(l, device=device).expand(b, l)
    target = torch.randint(0, 64, (b, l, l), generator=g).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        logits = model(s, mask, residx)
        loss = nn.functional.cross_entropy(logits.float().reshape(-1, 64), target.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append((time.perf_counter() - t0) * 1000.0)
        print(f"{method} r{rank} step {step}: loss {loss.item():.4f} {(time.perf_counter() - t0) * 1000.0:.1f} ms", flush=True)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "method": method,
        "rank": rank if method == "lora" else None,
        "trainable_params": n_train,
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "peak_gib": peak,
        "steps": args.steps,
        "warmup": args.warmup,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--seq-dim", type=int, default=1024)
    ap.add_argument("--pair-dim", type=int, default=128)
    ap.add_argument("--head-width", type=int, default=32)
    ap.add_argument("--ranks", default="1,4,8")
    ap.add_argument("--methods", default="lora,full")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    rows = []
    for method in args.methods.split(","):
        ranks = [int(r) for r in args.ranks.split(",")] if method == "lora" else [0]
        for r in ranks:
            rows.append(measure(args, method, r, dtype, device))
    meta = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "dtype": args.dtype,
        "length": args.length,
        "batch": args.batch,
        "blocks": args.blocks,
        "seq_dim": args.seq_dim,
        "pair_dim": args.pair_dim,
        "head_width": args.head_width,
    }
    out = args.out or os.path.join(os.environ.get("OUT", "."), "fold_reference.json")
    with open(out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print()
    print(f"PyTorch + PEFT ESMFold trunk: {args.blocks} blocks, L = {args.length}, batch {args.batch}, {args.dtype}, {meta['device']}")
    print()
    print("| method | rank | trainable params | median ms/step | min | max | peak GiB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        rank = r["rank"] if r["rank"] is not None else "-"
        print(f"| {r['method']} | {rank} | {r['trainable_params']:,} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | {r['max_ms']:.1f} | {r['peak_gib']:.2f} |")


if __name__ == "__main__":
    main()
