#!/usr/bin/env python3
"""Fixtures for the LLM experiment families (Table 3 tasks, SFT, DPO) in lorta-experiments/tests.

Run from the workspace root:

    python3 scripts/make_llm_fixtures.py

Writes
- tests/fixtures/superglue/...: tiny files in the official formats (SuperGLUE COPA and ReCoRD
  JSONL, SQuAD v1.1 JSON, DROP JSON), written here from hand-made examples;
- tests/fixtures/llm/{alpaca.json, orca_dpo.jsonl, hh_rlhf.jsonl}: tiny instruction / preference files;
- tests/fixtures/llm/qa_metrics.json: EM/F1 of chosen prediction/gold cases computed by the
  official SQuAD and DROP evaluation code as shipped in the allennlp-models 2.10.1 wheel
  (`allennlp_models/rc/tools/{squad,drop}.py`, copies of the official scripts; fetched with
  `pip download --no-deps allennlp-models==2.10.1` when not given as ALLENNLP_MODELS_WHEEL; needs
  scipy for DROP's alignment). The SQuAD cases use the v2 script's functions, which agree with
  v1.1's `evaluate-v1.1.py` whenever the gold answer does not normalise to an empty string (all
  cases here);
- tests/fixtures/llm/tiny-llama/: a tiny random LlamaForCausalLM (transformers, seed 0) with a
  byte-level BPE tokenizer trained on the fixture texts (BOS added, ChatML chat template), and
  reference.json: candidate log-likelihoods of the COPA fixture examples and the response-only
  SFT loss of an Alpaca example, computed by transformers in float32;
- tests/fixtures/llm/dpo_trl.json: TRL's DPO sigmoid loss and reward metrics for random sequence
  log-probs, computed by calling `trl.DPOTrainer._compute_loss` (TRL 1.16: the loss has no
  standalone function any more) on a stand-in model that returns the given per-token log-probs,
  with precomputed reference log-probs.
"""

import collections
import glob
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import types
import zipfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "lorta-experiments", "tests", "fixtures")
SG = os.path.join(FIX, "superglue")
LLM = os.path.join(FIX, "llm")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(path, obj, indent=1):
    write(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def jsonl(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


# ---------------------------------------------------------------------------------------------
# Data files in the official formats
# ---------------------------------------------------------------------------------------------

COPA_TRAIN = [
    {"premise": "My body cast a shadow over the grass.", "choice1": "The sun was rising.", "choice2": "The grass was cut.", "question": "cause", "label": 0, "idx": 0},
    {"premise": "I emptied my pockets.", "choice1": "I retrieved a ticket stub.", "choice2": "I found a weapon.", "question": "effect", "label": 0, "idx": 1},
    {"premise": "The girl found a bug in her cereal.", "choice1": "She poured milk in the bowl.", "choice2": "She lost her appetite.", "question": "effect", "label": 1, "idx": 2},
]
COPA_VAL = [
    {"premise": "The man turned on the faucet.", "choice1": "The toilet filled with water.", "choice2": "Water flowed from the spout.", "question": "effect", "label": 1, "idx": 0},
    {"premise": "The woman hired a lawyer.", "choice1": "She decided to sue her employer.", "choice2": "She won the lottery.", "question": "cause", "label": 0, "idx": 1},
]


def record_example(idx, text, entity_strings, queries):
    """ReCoRD JSONL row: entities/answers as inclusive character spans of `text`."""
    ents = []
    for e in entity_strings:
        start = 0
        while True:
            i = text.find(e, start)
            if i < 0:
                break
            ents.append({"start": i, "end": i + len(e) - 1})
            start = i + 1
    qas = []
    for qi, (query, answer) in enumerate(queries):
        i = text.find(answer)
        qas.append({"query": query, "answers": [{"start": i, "end": i + len(answer) - 1, "text": answer}], "idx": qi})
    return {"source": "Fixture", "passage": {"text": text, "entities": ents}, "qas": qas, "idx": idx}


RECORD_TRAIN = [
    record_example(
        0,
        "Barack Obama met Angela Merkel in Berlin. Berlin was cold.\n@highlight\nTalks focused on trade",
        ["Barack Obama", "Angela Merkel", "Berlin"],
        [("Obama visited @placeholder on Tuesday.", "Berlin"), ("@placeholder hosted the talks.", "Angela Merkel")],
    ),
    record_example(1, "Lionel Messi scored twice for Argentina.\n@highlight\nA big win", ["Lionel Messi", "Argentina"], [("@placeholder won the match.", "Argentina")]),
]
RECORD_VAL = [record_example(0, "Paris is the capital of France.\n@highlight\nGeography", ["Paris", "France"], [("@placeholder has a capital city.", "France")])]

SQUAD_TRAIN = {
    "version": "1.1",
    "data": [
        {
            "title": "Super_Bowl_50",
            "paragraphs": [
                {
                    "context": "Super Bowl 50 was won by the Denver Broncos in 2016.",
                    "qas": [
                        {"id": "q1", "question": "Who won Super Bowl 50?", "answers": [{"text": "Denver Broncos", "answer_start": 29}, {"text": "the Denver Broncos", "answer_start": 25}, {"text": "Denver Broncos", "answer_start": 29}]},
                        {"id": "q2", "question": "When was Super Bowl 50 played? ", "answers": [{"text": "2016", "answer_start": 47}]},
                    ],
                }
            ],
        },
        {"title": "Rivers", "paragraphs": [{"context": "The Rhine flows through Basel.", "qas": [{"id": "q3", "question": "Which city does the Rhine flow through?", "answers": [{"text": "Basel", "answer_start": 24}]}]}]},
    ],
}
SQUAD_DEV = {
    "version": "1.1",
    "data": [{"title": "Rivers", "paragraphs": [{"context": "The Danube flows into the Black Sea.", "qas": [{"id": "d1", "question": "Where does the Danube flow?", "answers": [{"text": "the Black Sea", "answer_start": 22}, {"text": "Black Sea", "answer_start": 26}]}]}]}],
}

EMPTY_DATE = {"day": "", "month": "", "year": ""}
DROP_TRAIN = {
    "nfl_1": {
        "passage": "The Bears scored 3 touchdowns. Smith and Jones each caught one.",
        "qa_pairs": [
            {"question": "How many touchdowns did the Bears score?", "answer": {"number": "3", "date": EMPTY_DATE, "spans": []}, "query_id": "a1", "validated_answers": [{"number": "", "date": EMPTY_DATE, "spans": ["three"]}]},
            {"question": "Who caught touchdowns?", "answer": {"number": "", "date": EMPTY_DATE, "spans": ["Smith", "Jones"]}, "query_id": "a2", "validated_answers": []},
        ],
        "wiki_url": "",
    },
    "history_1": {
        "passage": "The treaty was signed on 5 May 1990.",
        "qa_pairs": [{"question": "When was the treaty signed?", "answer": {"number": "", "date": {"day": "5", "month": "May", "year": "1990"}, "spans": []}, "query_id": "b1", "validated_answers": []}],
        "wiki_url": "",
    },
}
DROP_DEV = {
    "nfl_2": {
        "passage": "The Packers kicked 2 field goals in the second quarter.",
        "qa_pairs": [{"question": "How many field goals were kicked?", "answer": {"number": "2", "date": EMPTY_DATE, "spans": []}, "query_id": "c1", "validated_answers": []}],
        "wiki_url": "",
    }
}

ALPACA = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, sleep enough and exercise."},
    {"instruction": "Translate the sentence to French.", "input": "The cat sleeps.", "output": "Le chat dort."},
    {"instruction": "Name a primary color.", "input": "", "output": "Red."},
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
]

ORCA_DPO = [
    {"system": "", "question": "What is 2+2?", "chosen": "2+2 equals 4.", "rejected": "It is 5."},
    {"system": "You are a helpful assistant.", "question": "Name a fruit.", "chosen": "An apple is a fruit.", "rejected": "A chair."},
    {"system": "", "question": "Is the sky blue?", "chosen": "Yes, on a clear day.", "rejected": "No, it is green."},
]

HH_RLHF = [
    {
        "chosen": "\n\nHuman: How do I bake bread?\n\nAssistant: Mix flour, water, yeast and salt, let it rise, then bake.",
        "rejected": "\n\nHuman: How do I bake bread?\n\nAssistant: Buy it.",
    },
    {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: What is the capital of France?\n\nAssistant: Paris.",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: What is the capital of France?\n\nAssistant: I do not know.",
    },
]


def write_data_files():
    write(os.path.join(SG, "COPA", "train.jsonl"), jsonl(COPA_TRAIN))
    write(os.path.join(SG, "COPA", "val.jsonl"), jsonl(COPA_VAL))
    write(os.path.join(SG, "ReCoRD", "train.jsonl"), jsonl(RECORD_TRAIN))
    write(os.path.join(SG, "ReCoRD", "val.jsonl"), jsonl(RECORD_VAL))
    write_json(os.path.join(SG, "SQuAD", "train-v1.1.json"), SQUAD_TRAIN, indent=None)
    write_json(os.path.join(SG, "SQuAD", "dev-v1.1.json"), SQUAD_DEV, indent=None)
    write_json(os.path.join(SG, "DROP", "drop_dataset_train.json"), DROP_TRAIN, indent=None)
    write_json(os.path.join(SG, "DROP", "drop_dataset_dev.json"), DROP_DEV, indent=None)
    write_json(os.path.join(LLM, "alpaca.json"), ALPACA, indent=2)
    write(os.path.join(LLM, "orca_dpo.jsonl"), jsonl(ORCA_DPO))
    write(os.path.join(LLM, "hh_rlhf.jsonl"), jsonl(HH_RLHF))


# ---------------------------------------------------------------------------------------------
# EM/F1 from the official evaluation code
# ---------------------------------------------------------------------------------------------


def load_official_evaluators():
    wheel = os.environ.get("ALLENNLP_MODELS_WHEEL")
    if not wheel:
        cache = os.path.join(tempfile.gettempdir(), "lorta_allennlp_models")
        found = glob.glob(os.path.join(cache, "allennlp_models-2.10.1-*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "allennlp-models==2.10.1", "-d", cache], check=True)
            found = glob.glob(os.path.join(cache, "allennlp_models-2.10.1-*.whl"))
        wheel = found[0]
    out = tempfile.mkdtemp()
    with zipfile.ZipFile(wheel) as z:
        for name in ["allennlp_models/rc/tools/squad.py", "allennlp_models/rc/tools/drop.py"]:
            z.extract(name, out)
    mods = {}
    for name in ["squad", "drop"]:
        spec = importlib.util.spec_from_file_location(f"official_{name}", os.path.join(out, "allennlp_models", "rc", "tools", f"{name}.py"))
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        mods[name] = m
    return mods["squad"], mods["drop"]


SQUAD_CASES = [
    ("Denver Broncos", ["Denver Broncos", "the Denver Broncos"]),
    ("the Denver Broncos!", ["Denver Broncos"]),
    ("The  Denver   Broncos won", ["Denver Broncos"]),
    ("Broncos", ["Denver Broncos", "Carolina Panthers"]),
    ("", ["Denver Broncos"]),
    ("an apple a day", ["apple day"]),
    ("Theater and anthem", ["theater anthem"]),
    ("U.S. Army's 3rd division", ["US Armys 3rd Division"]),
    ("New York-based", ["New Yorkbased"]),
    ("café au lait", ["Café au lait."]),
    ("Élan vital", ["élan VITAL"]),
    ("the the the cat", ["cat"]),
    ("1,000 people", ["1000 people", "a thousand"]),
    ("Saint-Étienne", ["Saint Étienne"]),
    ("A", ["a b"]),
    ("cat cat dog", ["cat dog dog"]),
    ("Mr. Smith (the elder)", ["Smith"]),
    ("42", ["forty-two", "42."]),
    ("\tspaces\nand tabs ", ["spaces and tabs"]),
    ("l'homme", ["lhomme"]),
]

DROP_CASES = [
    ("3", [["3"], ["three"]]),
    ("3.0", [["3"]]),
    ("three", [["3"]]),
    ("4", [["3"]]),
    ("3 touchdowns", [["3"]]),
    ("1,000", [["1000"]]),
    ("-5", [["5"]]),
    ("1e3", [["1000"]]),
    ("Smith", [["Smith", "Jones"]]),
    ("Smith and Jones", [["Smith", "Jones"]]),
    ("Jones", [["Smith", "Jones"], ["Jones"]]),
    ("5 May 1990", [["5 May 1990"]]),
    ("May 1990", [["5 May 1990"]]),
    ("the New-York Times", [["New York Times"]]),
    ("", [["Smith"]]),
    ("2 field goals", [["2"]]),
    ("12.50", [["12.5"]]),
    ("10 million", [["10 million"], ["10,000,000"]]),
    ("1_000", [["1000"]]),
    ("0.5 yards", [["half yard"], [".5"]]),
    ("The Bears", [["Bears"], ["Chicago Bears"]]),
    ("Inf", [["inf"]]),
    ("a 2-yard run", [["2 yard run"]]),
]

DROP_MULTI_CASES = [
    (["Smith", "Jones"], ["Jones", "Smith"]),
    (["Smith"], ["Smith", "Jones"]),
    (["Smith", "Jones", "Brown"], ["Smith", "Jones"]),
    (["Bob Smith", "Jones"], ["Smith", "Tom Jones"]),
    (["3", "4"], ["4", "5"]),
    (["New York", "New Jersey"], ["New Jersey", "York"]),
]


def write_qa_metrics():
    squad, drop = load_official_evaluators()
    out = {"source": "allennlp-models 2.10.1 wheel: allennlp_models/rc/tools/squad.py and drop.py (official evaluation code)", "squad": [], "drop": [], "drop_multi": []}
    for pred, golds in SQUAD_CASES:
        for g in golds:
            assert squad.normalize_answer(g).strip(), "SQuAD cases must not have golds that normalise to empty"
        em = max(squad.compute_exact(pred, g) for g in golds)
        f1 = max(squad.compute_f1(pred, g) for g in golds)
        out["squad"].append({"prediction": pred, "golds": golds, "normalized": squad.normalize_answer(pred), "em": float(em), "f1": float(f1)})
    for pred, golds in DROP_CASES:
        ems, f1s = zip(*[drop.get_metrics(pred, tuple(g)) for g in golds])
        out["drop"].append({"prediction": pred, "golds": golds, "normalized": drop._normalize_answer(pred), "em": float(max(ems)), "f1": float(max(f1s))})
    for pred, gold in DROP_MULTI_CASES:
        em, f1 = drop.get_metrics(tuple(pred), tuple(gold))
        out["drop_multi"].append({"predicted": pred, "gold": gold, "em": float(em), "f1": float(f1)})
    write_json(os.path.join(LLM, "qa_metrics.json"), out)


# ---------------------------------------------------------------------------------------------
# Tiny LLaMA with a real tokenizer, and references computed by transformers
# ---------------------------------------------------------------------------------------------

ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def copa_prompt(ex):
    p = ex["premise"].rstrip()
    if p.endswith("."):
        p = p[:-1]
    return p + (" so " if ex["question"] == "effect" else " because ")


def copa_candidate(c):
    w = c.split(" ")
    if w[0] != "I":
        w[0] = w[0].lower()
    return " ".join(w)


def make_tiny_llama():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    d = os.path.join(LLM, "tiny-llama")
    os.makedirs(d, exist_ok=True)
    corpus = []
    for ex in COPA_TRAIN + COPA_VAL:
        corpus += [ex["premise"], ex["choice1"], ex["choice2"], copa_prompt(ex) + copa_candidate(ex["choice1"])]
    for ex in ALPACA:
        corpus.append((ALPACA_WITH_INPUT if ex["input"] else ALPACA_NO_INPUT).format(**ex) + ex["output"])
    for ex in ORCA_DPO:
        corpus += [ex["question"], ex["chosen"], ex["rejected"]]
    for ex in HH_RLHF:
        corpus += [ex["chosen"], ex["rejected"]]
    corpus += ["Title: Context: Question: Answer: Passage:", "user assistant system"]
    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)])
    tok.save(os.path.join(d, "tokenizer.json"))
    vocab = tok.get_vocab_size()
    write_json(
        os.path.join(d, "tokenizer_config.json"),
        {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "chat_template": CHATML, "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512},
        indent=2,
    )
    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, rms_norm_eps=1e-5, rope_theta=10000.0, initializer_range=0.2, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    model.save_pretrained(d, safe_serialization=True)
    for extra in ["generation_config.json"]:
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    hf_tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "tokenizer.json"), bos_token="<s>", eos_token="</s>", pad_token="<pad>")

    def logprobs(ids):
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        lp = torch.log_softmax(logits, -1)
        return [float(lp[i - 1, ids[i]]) for i in range(1, len(ids))]

    def continuation(prompt, cont, eos=False):
        """ids of prompt+cont (+EOS), and how many leading tokens are the prompt."""
        p = hf_tok.encode(prompt)
        full = hf_tok.encode(prompt + cont) + ([cfg.eos_token_id] if eos else [])
        lp = logprobs(full)
        k = len(full) - len(p)
        tok_lp = lp[-k:]
        return {"ids": full, "prompt_len": len(p), "sum": sum(tok_lp), "mean": sum(tok_lp) / k}

    ref = {"note": "float64 log-softmax of float32 transformers logits; continuation = the last len(encode(prompt+c)) - len(encode(prompt)) tokens", "copa": [], "sft": []}
    for ex in COPA_TRAIN + COPA_VAL:
        prompt = copa_prompt(ex)
        cands = [continuation(prompt, copa_candidate(ex[c])) for c in ["choice1", "choice2"]]
        ref["copa"].append({"idx": ex["idx"], "prompt": prompt, "prompt_ids": hf_tok.encode(prompt), "candidates": cands})
    for ex in ALPACA[:2]:
        prompt = (ALPACA_WITH_INPUT if ex["input"] else ALPACA_NO_INPUT).format(**ex)
        c = continuation(prompt, ex["output"], eos=True)
        n = len(c["ids"]) - c["prompt_len"]
        ref["sft"].append({"prompt": prompt, "response": ex["output"], "ids": c["ids"], "prompt_len": c["prompt_len"], "mean_nll": -c["sum"] / n})
    # chat template rendering (transformers' jinja) for the MT-bench export
    msgs = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a fruit."}]
    ref["chat"] = {"messages": msgs, "rendered": hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, chat_template=CHATML)}
    write_json(os.path.join(d, "reference.json"), ref)


# ---------------------------------------------------------------------------------------------
# TRL's DPO loss
# ---------------------------------------------------------------------------------------------


def trl_dpo_case(beta, chosen_tok, rejected_tok, ref_chosen, ref_rejected):
    """Runs trl.DPOTrainer._compute_loss on per-token log-probs (batch [chosen..., rejected...])."""
    from trl import DPOTrainer

    n, t = chosen_tok.shape
    log_probs = torch.cat([chosen_tok, rejected_tok], 0)
    mask = (log_probs != 0).long()
    completion_mask = torch.cat([torch.zeros(2 * n, 1, dtype=torch.long), mask], 1)

    class StandIn(torch.nn.Module):
        training = True

        def forward(self, **kw):
            z = torch.zeros_like(log_probs)
            return types.SimpleNamespace(log_probs=log_probs, entropy=z, mean_logits=z, is_top1=torch.zeros_like(mask, dtype=torch.bool))

    class Acc:
        device = torch.device("cpu")

        def gather(self, x):
            return x

        gather_for_metrics = gather

        def unwrap_model(self, m):
            return m

    model = StandIn()
    fake = types.SimpleNamespace(
        model=model, accelerator=Acc(), aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True, f_divergence_type="reverse_kl",
        loss_types=["sigmoid"], loss_weights=[1.0], beta=beta, use_weighting=False, label_smoothing=0.0,
        _metrics={"train": collections.defaultdict(list), "eval": collections.defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
    )
    inputs = {
        "input_ids": torch.ones(2 * n, t + 1, dtype=torch.long),
        "attention_mask": torch.ones(2 * n, t + 1, dtype=torch.long),
        "completion_mask": completion_mask,
        "ref_chosen_logps": ref_chosen,
        "ref_rejected_logps": ref_rejected,
    }
    loss = DPOTrainer._compute_loss(fake, model, inputs, False)
    m = fake._metrics["train"]
    return {
        "beta": beta,
        "chosen_logps": chosen_tok.sum(1).tolist(),
        "rejected_logps": rejected_tok.sum(1).tolist(),
        "ref_chosen_logps": ref_chosen.tolist(),
        "ref_rejected_logps": ref_rejected.tolist(),
        "loss": float(loss),
        "rewards_chosen": m["rewards/chosen"][0],
        "rewards_rejected": m["rewards/rejected"][0],
        "rewards_accuracies": m["rewards/accuracies"][0],
        "rewards_margins": m["rewards/margins"][0],
    }


def write_dpo_fixture():
    import trl

    g = torch.Generator().manual_seed(0)
    cases = []
    for beta, n, t in [(0.1, 4, 6), (0.5, 3, 5), (1.0, 2, 3), (0.1, 1, 4)]:
        tok = -torch.rand(2 * n, t, generator=g, dtype=torch.float64) * 3.0
        # ragged completions: zero (masked) tail positions
        for i in range(2 * n):
            keep = 1 + int(torch.randint(0, t, (1,), generator=g))
            tok[i, keep:] = 0.0
        ref = -torch.rand(2 * n, generator=g, dtype=torch.float64) * 3.0 * t / 2
        cases.append(trl_dpo_case(beta, tok[:n], tok[n:], ref[:n], ref[n:]))
    write_json(os.path.join(LLM, "dpo_trl.json"), {"source": f"trl {trl.__version__} DPOTrainer._compute_loss, loss_type sigmoid, float64", "cases": cases})


if __name__ == "__main__":
    write_data_files()
    write_qa_metrics()
    make_tiny_llama()
    write_dpo_fixture()
    print("fixtures written under", FIX)
