#!/usr/bin/env python3
"""Side-by-side reference for `lorta-experiments profile`: HF PEFT on the same architecture,
shapes, dtype and training step (forward + backward + AdamW on adapter parameters only).

Random weights with the LLaMA-2-7B architecture (timing does not depend on the values), batch 1,
sequence length T. Prints one JSON line per (method, rank) with the same fields our `profile
--json` prints, so a ratio can be taken in the same device call.

    python3 scripts/profile_peft.py --ranks 4,64 --seq-len 128 --steps 20 --dtype bf16

Methods: `lora` is PEFT's LoraConfig on q,k,v,o. `lorta_dense` is the paper's implementation
style (ΔW of every matrix rebuilt from the CP factors each step, PyTorch), `lorta_rank` the same
function applied in rank space in plain PyTorch — the measured anchors in REFERENCE.md.
"""
import argparse
import json
import math
import statistics
import time

import torch


def llama_config(args):
    from transformers import LlamaConfig

    if args.model == "llama-2-7b":
        return LlamaConfig(hidden_size=4096, intermediate_size=11008, num_attention_heads=32,
                           num_key_value_heads=32, num_hidden_layers=32, vocab_size=32000,
                           max_position_embeddings=4096, rms_norm_eps=1e-5)
    if args.model == "llama-tiny":
        return LlamaConfig(hidden_size=64, intermediate_size=172, num_attention_heads=8,
                           num_key_value_heads=8, num_hidden_layers=2, vocab_size=512,
                           max_position_embeddings=512)
    raise SystemExit(f"unknown --model {args.model}")


class LortaShared(torch.nn.Module):
    """CP factors shared by every adapted projection (paper layout, head split on the input)."""

    def __init__(self, d, h, L, M, r, dtype, device):
        super().__init__()
        dh = d // h
        p = lambda *s: torch.nn.Parameter(torch.randn(*s, dtype=dtype, device=device) * 0.1)
        self.A, self.B, self.C_h, self.C_l, self.C_m = p(d, r), p(r, dh), p(h, r), p(L, r), p(M, r)
        self.h, self.dh, self.r = h, dh, r


class LortaLinear(torch.nn.Module):
    def __init__(self, base, shared, layer, m, mode, scaling):
        super().__init__()
        self.base, self.shared, self.layer, self.m, self.mode, self.scaling = base, shared, layer, m, mode, scaling

    def forward(self, x):
        s = self.shared
        y = self.base(x)
        c = s.C_m[self.m] * s.C_l[self.layer]
        if self.mode == "dense":  # paper's _compute_weights_from_tensor: h matmuls per matrix per step
            w = torch.cat([s.A @ torch.diag(s.C_h[i] * c) @ s.B for i in range(s.h)], dim=1)
            return y + self.scaling * (x @ w.T)
        xs = x.reshape(*x.shape[:-1], s.h, s.dh)             # [..., h, dh]
        z = torch.einsum("...hj,rj->...hr", xs, s.B)          # contract head dim with B
        z = (z * s.C_h).sum(-2) * c                            # weight by C_h, sum heads, scale
        return y + self.scaling * (z @ s.A.T)


def build(args, method, r):
    from transformers import LlamaForCausalLM

    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[args.dtype]
    cfg = llama_config(args)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(cfg).to(dtype)
    device = next(model.parameters()).device
    for p in model.parameters():
        p.requires_grad_(False)
    names = ["q_proj", "k_proj", "v_proj", "o_proj"]
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=names, lora_dropout=0.0))
    else:
        shared = LortaShared(cfg.hidden_size, cfg.num_attention_heads, cfg.num_hidden_layers, 4, r, dtype, device)
        model.lorta_shared = shared
        mode = "dense" if method == "lorta_dense" else "rank"
        for l, layer in enumerate(model.model.layers):
            for m, n in enumerate(names):
                setattr(layer.self_attn, n, LortaLinear(getattr(layer.self_attn, n), shared, l, m, mode, 2.0))
    params = [p for p in model.parameters() if p.requires_grad]
    return model, params, device, cfg


def run(args, method, r):
    model, params, device, cfg = build(args, method, r)
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq_len), device=device)

    def step():
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    row = {
        "impl": "pytorch-peft" if method == "lora" else "pytorch",
        "method": method,
        "rank": r,
        "ms_per_step": statistics.median(times),
        "ms_min": min(times),
        "ms_max": max(times),
        "peak_memory_bytes": peak,
        "trainable_params": sum(p.numel() for p in params),
        "dtype": args.dtype,
        "seq_len": args.seq_len,
        "batch": args.batch,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
    }
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-2-7b")
    ap.add_argument("--methods", default="lora,lorta_rank,lorta_dense")
    ap.add_argument("--ranks", default="4,64")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    for method in args.methods.split(","):
        for r in map(int, args.ranks.split(",")):
            print(json.dumps(run(args, method, r)), flush=True)


if __name__ == "__main__":
    main()
