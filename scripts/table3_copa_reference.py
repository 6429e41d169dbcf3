#!/usr/bin/env python3
"""PyTorch + PEFT reference for `table3` COPA cells: the same data, prompts, loss and optimiser
as lorta-experiments, timed step by step.

- data: SuperGLUE COPA train.jsonl (all rows, file order) and val.jsonl;
- prompt: MeZO's (premise without its final ".", then " so " / " because "), candidates with
  the first word lower-cased unless "I"; candidate tokens = the last len(enc(prompt+cand)) -
  len(enc(prompt)) tokens;
- loss: cross-entropy over the two candidates' mean token log-likelihoods (MeZO's
  train_as_classification); evaluation: the candidate with the higher mean log-likelihood;
- AdamW (β 0.9/0.999, eps 1e-8, wd 0), constant lr, clipping at 1.0, batches of --batch-size
  examples in a seeded shuffled order.

Prints one JSON line: median / mean step time (ms) over the steps after --warmup (each step
synchronised), peak memory, final accuracy.

  python3 scripts/table3_copa_reference.py --model DIR_OR_GGUF --copa-dir ../shared/data/superglue/COPA \
      --method lora --rank 8 --alpha 16 --targets q_proj,v_proj --steps 50 --warmup 5 --device cuda --dtype bf16
"""

import argparse
import json
import os
import random
import statistics
import time

import torch
import torch.nn.functional as F


def load_model(path, dtype, device):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path.endswith(".gguf"):
        d, f = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=dtype)
    else:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype)
    return tok, model.to(device)


def copa_rows(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def prompt_and_candidates(ex):
    p = ex["premise"].rstrip()
    if p.endswith("."):
        p = p[:-1]
    p += " so " if ex["question"] == "effect" else " because "

    def cand(c):
        w = c.split(" ")
        if w[0] != "I":
            w[0] = w[0].lower()
        return " ".join(w)

    return p, [cand(ex["choice1"]), cand(ex["choice2"])]


def batch_logprob_means(model, seqs, pad_id, device):
    """seqs: list of (ids, target_start) → mean log-prob of the target tokens, [n]."""
    s = max(len(i) for i, _ in seqs)
    ids = torch.full((len(seqs), s), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), s), dtype=torch.long)
    tmask = torch.zeros((len(seqs), s - 1))
    for r, (i, t0) in enumerate(seqs):
        ids[r, : len(i)] = torch.tensor(i)
        att[r, : len(i)] = 1
        tmask[r, t0 - 1 : len(i) - 1] = 1.0
    ids, att, tmask = ids.to(device), att.to(device), tmask.to(device)
    logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
    lp = torch.log_softmax(logits, -1).gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (lp * tmask).sum(1) / tmask.sum(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--copa-dir", required=True)
    ap.add_argument("--method", default="lora", choices=["lora", "full"])
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--eval", action="store_true", help="evaluate on val.jsonl after training")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    tok, model = load_model(a.model, dtype, a.device)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    if a.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=0.0, target_modules=a.targets.split(",")))
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=a.lr, weight_decay=0.0)
    model.train()

    def encode_ex(ex):
        p, cands = prompt_and_candidates(ex)
        pi = tok.encode(p)
        out = []
        for c in cands:
            full = tok.encode(p + c)
            out.append((full, min(len(pi), len(full) - 1)))
        return out, ex["label"]

    train = [encode_ex(e) for e in copa_rows(os.path.join(a.copa_dir, "train.jsonl"))]
    rng = random.Random(a.seed)
    order = []
    times = []
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    if a.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for step in range(a.steps):
        if len(order) < a.batch_size:
            idx = list(range(len(train)))
            rng.shuffle(idx)
            order += idx
        batch, order = order[: a.batch_size], order[a.batch_size :]
        seqs = [s for i in batch for s in train[i][0]]
        labels = torch.tensor([train[i][1] for i in batch], device=a.device)
        sync()
        t0 = time.perf_counter()
        means = batch_logprob_means(model, seqs, pad, a.device).view(len(batch), 2)
        loss = F.cross_entropy(means, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        sync()
        times.append(time.perf_counter() - t0)
    timed = times[a.warmup :] if len(times) > a.warmup else times
    out = {
        "impl": "pytorch+peft" if a.method == "lora" else "pytorch",
        "task": "copa",
        "method": f"{a.method} r{a.rank}" if a.method == "lora" else "full",
        "trainable_params": n_trainable,
        "steps_timed": len(timed),
        "median_ms": 1000 * statistics.median(timed) if timed else None,
        "mean_ms": 1000 * statistics.fmean(timed) if timed else None,
        "first_step_ms": 1000 * times[0] if times else None,
        "last_loss": float(loss.detach()) if times else None,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if a.device.startswith("cuda") else None,
    }
    if a.eval:
        model.eval()
        val = [encode_ex(e) for e in copa_rows(os.path.join(a.copa_dir, "val.jsonl"))]
        hits = 0
        with torch.no_grad():
            for cands, label in val:
                m = batch_logprob_means(model, cands, pad, a.device)
                hits += int(int(torch.argmax(m)) == label)
        out["val_accuracy"] = hits / len(val)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
