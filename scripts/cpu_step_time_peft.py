"""Training-step time of PyTorch + PEFT on the CPU, in the settings of
`lorta-experiments train --task rte --method lora --rank 8 --targets q,v --batch-size 16
--max-seq-len 128` with all-MiniLM-L6-v2: LoRA r8 (alpha 8) on query/value, a tanh head on [CLS],
AdamW, dropout as the checkpoint's config (train mode), batches padded to their longest row.

    LORTA_MINILM_DIR=... LORTA_SHARED_DATA=../shared/data python3 scripts/cpu_step_time_peft.py --threads 2

Prints one JSON line: median / mean ms per step (forward + backward + optimizer step, tokenisation
excluded) over --steps timed steps after --warmup untimed ones, on the first rows of RTE's train
split in file order.
"""
import argparse, csv, json, os, statistics, time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModel, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--maxlen", type=int, default=128)
ap.add_argument("--r", type=int, default=8)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--warmup", type=int, default=3)
a = ap.parse_args()
torch.manual_seed(0)
torch.set_num_threads(a.threads)
M = os.environ["LORTA_MINILM_DIR"]
G = os.environ.get("LORTA_SHARED_DATA", "../shared/data") + "/glue/RTE/train.tsv"
rows = list(csv.reader(open(G), delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
rows = [(r[1], r[2], 0 if r[3] == "entailment" else 1) for r in rows if len(r) == 4]
tok = AutoTokenizer.from_pretrained(M)
enc = get_peft_model(AutoModel.from_pretrained(M), LoraConfig(r=a.r, lora_alpha=a.r, target_modules=["query", "value"], lora_dropout=0.0))
d = enc.config.hidden_size
head = torch.nn.Sequential(torch.nn.Dropout(enc.config.hidden_dropout_prob), torch.nn.Linear(d, d), torch.nn.Tanh(),
                           torch.nn.Dropout(enc.config.hidden_dropout_prob), torch.nn.Linear(d, 2))
params = [p for p in enc.parameters() if p.requires_grad] + list(head.parameters())
opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
n = a.warmup + a.steps
batches = []
for i in range(n):
    b = rows[(i * a.batch) % len(rows):][: a.batch]
    t = tok([x[0] for x in b], [x[1] for x in b], truncation=True, max_length=a.maxlen, padding=True, return_tensors="pt")
    batches.append((t, torch.tensor([x[2] for x in b])))
enc.train(); head.train()
times = []
for i, (t, y) in enumerate(batches):
    t0 = time.perf_counter()
    h = enc(input_ids=t["input_ids"], attention_mask=t["attention_mask"], token_type_ids=t["token_type_ids"]).last_hidden_state
    loss = torch.nn.functional.cross_entropy(head(h[:, 0]), y)
    opt.zero_grad(); loss.backward(); opt.step()
    if i >= a.warmup:
        times.append((time.perf_counter() - t0) * 1e3)
lens = [int(t["input_ids"].shape[1]) for t, _ in batches[a.warmup:]]
print(json.dumps({"impl": "pytorch+peft", "torch": torch.__version__, "threads": a.threads, "batch": a.batch, "maxlen": a.maxlen,
                  "steps": a.steps, "median_ms": round(statistics.median(times), 1), "mean_ms": round(statistics.mean(times), 1),
                  "mean_padded_len": round(statistics.mean(lens), 1)}))
