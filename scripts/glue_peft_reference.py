#!/usr/bin/env python3
"""PyTorch + PEFT reference for `lorta-experiments train` on GLUE: the same data files, model,
head, hyperparameters, batch size, sequence length and dtype, with step times measured the same
way (device synchronised after every step; median after 5 warm-up steps) and the dev metric after
every epoch. One JSON object is printed at the end (and written to --out).

    python3 scripts/glue_peft_reference.py --task rte --model $LORTA_MINILM_DIR \
        --glue-dir ../shared/data/glue --rank 8 --targets query,value --epochs 3 --batch-size 32

Model: HF `AutoModelForSequenceClassification` (BERT: pooler dense + tanh + classifier on [CLS];
RoBERTa: classifier.dense + tanh + out_proj), LoRA from PEFT on the attention projections, the whole
head trainable (PEFT's `modules_to_save`), dropout off unless --dropout (our models train without
dropout). `--random-weights` builds the architecture of --model's config.json with random weights
(timing only). Optimizer: torch AdamW with an adapter and a head learning rate, linear warmup/decay,
global-norm clipping, as `train`.
"""
import argparse
import csv
import json
import math
import os
import random
import statistics
import time

import numpy as np
import torch

csv.field_size_limit(1 << 30)

# task: (folder, has_header, text_a column, text_b column or None, label column, labels or None for regression)
TASKS = {
    "rte": ("RTE", True, 1, 2, 3, ["entailment", "not_entailment"]),
    "qnli": ("QNLI", True, 1, 2, 3, ["entailment", "not_entailment"]),
    "mrpc": ("MRPC", True, 3, 4, 0, ["0", "1"]),
    "cola": ("CoLA", False, 3, None, 1, ["0", "1"]),
    "sst2": ("SST-2", True, 0, None, 1, ["0", "1"]),
    "stsb": ("STS-B", True, 7, 8, 9, None),
}


def load_split(glue_dir, task, split):
    folder, header, a, b, lab, labels = TASKS[task]
    path = os.path.join(glue_dir, folder, f"{split}.tsv")
    with open(path, encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if header:
        rows = rows[1:]
    out = []
    for r in rows:
        need = max(a, b if b is not None else 0, lab)
        if len(r) <= need:
            continue  # ragged rows are skipped by our loader too (and counted)
        y = float(r[lab]) if labels is None else labels.index(r[lab])
        out.append((r[a], r[b] if b is not None else None, y))
    return out


def metrics(task, preds, labels):
    p, y = np.asarray(preds), np.asarray(labels)
    if task == "stsb":
        return {"pearson": float(np.corrcoef(p, y)[0, 1])}
    acc = float((p == y).mean())
    out = {"accuracy": acc}
    if task == "mrpc":
        tp = float(((p == 1) & (y == 1)).sum()); fp = float(((p == 1) & (y == 0)).sum()); fn = float(((p == 0) & (y == 1)).sum())
        out["f1"] = 2 * tp / max(2 * tp + fp + fn, 1.0)
    if task == "cola":
        tp = ((p == 1) & (y == 1)).sum(); tn = ((p == 0) & (y == 0)).sum(); fp = ((p == 1) & (y == 0)).sum(); fn = ((p == 0) & (y == 1)).sum()
        den = math.sqrt(float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
        out["mcc"] = float(tp * tn - fp * fn) / den if den > 0 else 0.0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", required=True, choices=sorted(TASKS))
    ap.add_argument("--model", required=True)
    ap.add_argument("--glue-dir", required=True)
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=None)
    ap.add_argument("--targets", default="query,value")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--max-train-samples", type=int, default=None)
    ap.add_argument("--max-eval-samples", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--eval-batch-size", type=int, default=64)
    ap.add_argument("--max-seq-len", type=int, default=128)
    ap.add_argument("--pad-to-multiple", type=int, default=1)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--head-lr", type=float, default=4e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--warmup-ratio", type=float, default=0.06)
    ap.add_argument("--max-grad-norm", type=float, default=1000.0)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-eval", action="store_true", help="timing runs: skip the dev evaluations")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(a.seed); random.seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 is f32 (PyTorch's default)
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(a.device)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[a.dtype]
    regression = TASKS[a.task][5] is None
    num_labels = 1 if regression else len(TASKS[a.task][5])

    t_start = time.perf_counter()
    train = load_split(a.glue_dir, a.task, "train")[: a.max_train_samples]
    dev_rows = load_split(a.glue_dir, a.task, "dev")[: a.max_eval_samples]
    tok = AutoTokenizer.from_pretrained(a.model)
    cfg = AutoConfig.from_pretrained(a.model, num_labels=num_labels, hidden_dropout_prob=a.dropout,
                                     attention_probs_dropout_prob=a.dropout, classifier_dropout=a.dropout)
    if a.random_weights:
        model = AutoModelForSequenceClassification.from_config(cfg)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(a.model, config=cfg)
    head = ["classifier", "pooler"] if cfg.model_type == "bert" else ["classifier"]
    lcfg = LoraConfig(r=a.rank, lora_alpha=a.alpha if a.alpha is not None else a.rank, lora_dropout=0.0,
                      target_modules=a.targets.split(","), modules_to_save=head)
    model = get_peft_model(model.to(dtype), lcfg).to(dev)
    head_params = [p for n, p in model.named_parameters() if p.requires_grad and "modules_to_save" in n]
    adapter_params = [p for n, p in model.named_parameters() if p.requires_grad and "modules_to_save" not in n]
    for p in head_params:  # head in f32 like ours (mixed precision: frozen base in the compute dtype)
        p.data = p.data.float()
    opt = torch.optim.AdamW([{"params": adapter_params, "lr": a.lr}, {"params": head_params, "lr": a.head_lr}],
                            weight_decay=a.weight_decay)
    steps_per_epoch = math.ceil(len(train) / a.batch_size)
    total = a.max_steps or a.epochs * steps_per_epoch
    warm = int(math.ceil(a.warmup_ratio * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(warm, 1) if s < warm else max(0.0, (total - s) / max(total - warm, 1)))
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def encode(batch):
        t = tok([b[0] for b in batch], [b[1] for b in batch] if batch[0][1] is not None else None, truncation=True,
                max_length=a.max_seq_len, padding=True, pad_to_multiple_of=a.pad_to_multiple if a.pad_to_multiple > 1 else None,
                return_tensors="pt")
        return {k: v.to(dev) for k, v in t.items()}

    def forward(batch):
        with torch.autocast(dev.type, dtype=dtype, enabled=a.dtype != "f32"):
            return model(**encode(batch)).logits.float()

    def evaluate():
        model.eval(); preds = []
        with torch.no_grad():
            for i in range(0, len(dev_rows), a.eval_batch_size):
                lg = forward(dev_rows[i:i + a.eval_batch_size])
                preds += lg[:, 0].tolist() if regression else lg.argmax(-1).tolist()
        model.train()
        return metrics(a.task, preds, [r[2] for r in dev_rows])

    step_ms, history, step, first_step_s = [], [], 0, None
    model.train()
    rng = random.Random(a.seed)
    while step < total:
        order = list(range(len(train))); rng.shuffle(order)
        losses = []
        for i in range(0, len(order), a.batch_size):
            if step >= total:
                break
            batch = [train[j] for j in order[i:i + a.batch_size]]
            t0 = time.perf_counter()
            logits = forward(batch)
            y = torch.tensor([b[2] for b in batch], device=dev)
            loss = torch.nn.functional.mse_loss(logits[:, 0], y.float()) if regression else torch.nn.functional.cross_entropy(logits, y.long())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if a.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(adapter_params + head_params, a.max_grad_norm)
            opt.step(); sched.step(); step += 1
            losses.append(loss.detach())
            sync()
            step_ms.append((time.perf_counter() - t0) * 1000)
            if first_step_s is None:
                first_step_s = time.perf_counter() - t_start
        entry = {"step": step, "train_loss": float(torch.stack(losses).float().mean()) if losses else None}
        if not a.no_eval:
            entry["metrics"] = evaluate()
        history.append(entry)
        print(json.dumps(entry), flush=True)
    timed = step_ms[5:]
    out = {
        "impl": "pytorch-peft", "task": a.task, "model": a.model, "random_weights": a.random_weights, "rank": a.rank,
        "targets": a.targets, "dtype": a.dtype, "batch_size": a.batch_size, "max_seq_len": a.max_seq_len,
        "steps": step, "median_step_ms": statistics.median(timed) if timed else None, "timed_steps": len(timed),
        "first_step_seconds": first_step_s, "seconds": time.perf_counter() - t_start, "history": history,
        "trainable_params": sum(p.numel() for p in adapter_params + head_params),
        "torch": torch.__version__, "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
    }
    print(json.dumps(out))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
