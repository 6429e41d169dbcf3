#!/usr/bin/env python3
"""TRL + PEFT reference for `dpo`: DPOTrainer (sigmoid loss, β) on the same preference pairs
with a LoRA adapter, the reference policy being the model with the adapter disabled (TRL's
default for PEFT models), timed step by step (device synchronised at every step boundary).

Pairs: HH-RLHF JSONL(.gz) (prompt = the chosen transcript up to its last "\\n\\nAssistant:",
pairs whose rejected transcript does not share it are skipped, as in lorta-experiments) or
Orca-DPO JSON/JSONL; the first --pairs usable pairs in file order.

Prints one JSON line: median / mean step time (ms) after --warmup steps, peak memory, the last
logged DPO loss and reward accuracy.

  python3 scripts/dpo_reference.py --model DIR_OR_GGUF --data ../shared/data/llm/hh_rlhf/harmless-base_test.jsonl.gz \
      --pairs 256 --steps 30 --batch-size 4 --rank 8 --alpha 16 --device cuda --dtype bf16
"""

import argparse
import gzip
import json
import os
import statistics
import time

import torch

ASSISTANT = "\n\nAssistant:"


def read_rows(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def pairs_from(rows):
    out = []
    for r in rows:
        if "question" in r:
            sys_ = r.get("system") or ""
            prompt = f"\n\nHuman: {r['question']}{ASSISTANT}" if not sys_.strip() else f"\n\nHuman: {sys_}\n\n{r['question']}{ASSISTANT}"
            out.append({"prompt": prompt, "chosen": " " + r["chosen"], "rejected": " " + r["rejected"]})
            continue
        c, rj = r["chosen"], r["rejected"]
        i = c.rfind(ASSISTANT)
        if i < 0:
            continue
        cut = i + len(ASSISTANT)
        if not rj.startswith(c[:cut]):
            continue
        out.append({"prompt": c[:cut], "chosen": c[cut:], "rejected": rj[cut:]})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--out", default=None, help="TRL output folder (default: a temp folder)")
    a = ap.parse_args()

    import tempfile

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    if a.model.endswith(".gguf"):
        d, f = os.path.dirname(os.path.abspath(a.model)), os.path.basename(a.model)
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=dtype)
        # transformers dequantizes GGUF weights to `dtype` on load but keeps the model marked as
        # GGUF-quantized, and Trainer refuses to train such a model; the weights are plain tensors
        model.hf_quantizer = None
        if not isinstance(getattr(type(model), "is_quantized", None), property):
            model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    else:
        tok = AutoTokenizer.from_pretrained(a.model)
        model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=dtype)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    pairs = pairs_from(read_rows(a.data))[: a.pairs]
    ds = Dataset.from_list(pairs)

    times, logs = [], []
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            sync()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            sync()
            times.append(time.perf_counter() - self.t0)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs:
                logs_list.append(dict(logs))

    logs_list = logs
    out = a.out or tempfile.mkdtemp()
    cfg = DPOConfig(
        output_dir=out, beta=a.beta, learning_rate=a.lr, per_device_train_batch_size=a.batch_size, gradient_accumulation_steps=1,
        max_steps=a.steps, max_length=a.max_length, logging_steps=1, save_strategy="no", report_to=[], lr_scheduler_type="constant",
        bf16=(a.dtype == "bf16"), use_cpu=not a.device.startswith("cuda"), seed=0, dataloader_num_workers=0,
    )
    peft_cfg = LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=0.0, target_modules=a.targets.split(","), task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok, peft_config=peft_cfg, callbacks=[Timer()])
    if a.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    timed = times[a.warmup :] if len(times) > a.warmup else times
    last = next((l for l in reversed(logs_list) if "loss" in l), {})
    print(json.dumps({
        "impl": "trl+peft",
        "task": "dpo",
        "method": f"lora r{a.rank}",
        "pairs": len(pairs),
        "batch_size": a.batch_size,
        "steps_timed": len(timed),
        "median_ms": 1000 * statistics.median(timed),
        "mean_ms": 1000 * statistics.fmean(timed),
        "first_step_ms": 1000 * times[0] if times else None,
        "last_loss": last.get("loss"),
        "last_reward_accuracy": last.get("rewards/accuracies"),
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if a.device.startswith("cuda") else None,
    }))


if __name__ == "__main__":
    main()
