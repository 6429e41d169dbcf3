#!/usr/bin/env python3
"""GGUF fixtures for lorta-models/tests/gguf.rs, made with the `gguf` Python package and
checked with transformers:

- tests/fixtures/gguf/quants.gguf: for each ggml type T (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
  Q8_0, Q4_K, Q5_K, Q6_K) a small tensor `T` of that type and `ref.T`, its dequantization by
  `gguf.quants.dequantize`, stored as F32. Types the package can quantize are quantized from
  random values; K-quants (the package only dequantizes them) are random blocks with their
  f16 scale fields set to small finite values.
- tests/fixtures/gguf/tiny-llama.gguf: a tiny random LLaMA (GQA, untied head) with a mix of
  those types, Q/K rows permuted as llama.cpp's converter does, a GPT-2-style byte-level BPE
  tokenizer (pre-tokenizer "smollm") with special tokens and SmolLM2's chat template.
- tests/fixtures/gguf/tiny-llama.json: logits of transformers' LlamaForCausalLM loading that
  GGUF with `gguf_file=` (its own dequantization and Q/K un-permutation), plus the ids of
  transformers' GGUF tokenizer on a few texts and the rendered chat prompt.

Usage: python3 scripts/make_gguf_fixtures.py  (deterministic: fixed seeds)
"""
import json
import os
import shutil
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = os.path.join(os.path.dirname(__file__), "..", "lorta-models", "tests", "fixtures", "gguf")
K_TYPES = {T.Q4_K: (144, [(0, 2e-3), (2, 1e-3)]), T.Q5_K: (176, [(0, 1e-3), (2, 1e-3)]), T.Q6_K: (210, [(208, 2e-3)])}


def quantize(x, t, rng, k_scale=1.0):
    """(stored array, dequantized reference) of x's shape in type t."""
    if t == T.F32:
        return x.astype(np.float32), x.astype(np.float32)
    if t in K_TYPES:
        block_bytes, fields = K_TYPES[t]
        rows, cols = x.shape
        raw = rng.integers(0, 256, size=(rows, cols // 256, block_bytes), dtype=np.uint8)
        for off, val in fields:
            raw[:, :, off:off + 2] = np.frombuffer(np.float16(val * k_scale).tobytes(), dtype=np.uint8)
        raw = raw.reshape(rows, -1)
        return raw, quants.dequantize(raw, t)
    q = quants.quantize(x.astype(np.float32), t)
    return q, quants.dequantize(q, t)


def write_quants(rng):
    w = gguf.GGUFWriter(os.path.join(OUT, "quants.gguf"), "quants")
    for t in [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]:
        x = (rng.standard_normal((2, 512)) * 0.7).astype(np.float32)
        q, ref = quantize(x, t, rng)
        w.add_tensor(t.name, q, raw_dtype=t if t != T.F32 else None)
        w.add_tensor("ref." + t.name, ref.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_cpp_permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf permutation of Q/K rows (HF rotate-half → interleaved)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def tiny_tokenizer():
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    byte_chars = list(bytes_to_unicode().values())
    merges = ["Ġ t", "h e", "Ġt he", "Ġ a", "i s", "Ġ is", "Ġ c", "a p", "Ġc ap", "i t", "Ġcap it", "a l", "Ġcapit al",
              "o f", "Ġ of", "Ġ F", "r a", "ĠF ra", "n c", "ĠFra nc", "ĠFranc e", "W h", "Wh a", "Wh at", "u s", "e r",
              "s y", "sy s", "t e", "sys te", "syst em", "a s", "as s", "ass is", "assis t", "assist a", "assista nt"]
    tokens = specials + byte_chars
    seen = set(tokens)
    good = []
    for m in merges:
        a, b = m.split(" ")
        if a in seen and b in seen and a + b not in seen:
            tokens.append(a + b)
            seen.add(a + b)
            good.append(m)
    types = [gguf.TokenType.CONTROL] * len(specials) + [gguf.TokenType.NORMAL] * (len(tokens) - len(specials))
    return tokens, types, good


CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def write_tiny_llama(rng):
    tokens, types, merges = tiny_tokenizer()
    V, d, f, L, H, KV = len(tokens), 64, 256, 3, 4, 2
    dh = d // H
    w = gguf.GGUFWriter(os.path.join(OUT, "tiny-llama.gguf"), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(128)
    w.add_embedding_length(d)
    w.add_block_count(L)
    w.add_feed_forward_length(f)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_rope_dimension_count(dh)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def add(name, x, t, k_scale=1.0):
        q, _ = quantize(x, t, rng, k_scale)
        w.add_tensor(name, q, raw_dtype=t if t not in (T.F32, T.F16) else None)

    g = lambda *s: (rng.standard_normal(s) * 0.08).astype(np.float32)
    add("token_embd.weight", g(V, d), T.Q8_0)
    add("output.weight", g(V, d), T.F16)
    add("output_norm.weight", (1 + 0.1 * rng.standard_normal(d)).astype(np.float32), T.F32)
    kinds = [
        dict(q=T.Q4_0, k=T.Q4_1, v=T.Q8_0, o=T.Q5_0, gate=T.Q5_1, up=T.BF16, down=T.Q4_K),
        dict(q=T.Q8_0, k=T.Q5_0, v=T.Q4_1, o=T.BF16, gate=T.Q4_0, up=T.Q5_1, down=T.Q5_K),
        dict(q=T.F16, k=T.Q8_0, v=T.Q5_1, o=T.Q4_1, gate=T.Q8_0, up=T.Q4_0, down=T.Q6_K),
    ]
    for l, k in enumerate(kinds):
        p = f"blk.{l}"
        add(f"{p}.attn_norm.weight", (1 + 0.1 * rng.standard_normal(d)).astype(np.float32), T.F32)
        add(f"{p}.ffn_norm.weight", (1 + 0.1 * rng.standard_normal(d)).astype(np.float32), T.F32)
        add(f"{p}.attn_q.weight", llama_cpp_permute(g(H * dh, d), H), k["q"])
        add(f"{p}.attn_k.weight", llama_cpp_permute(g(KV * dh, d), KV), k["k"])
        add(f"{p}.attn_v.weight", g(KV * dh, d), k["v"])
        add(f"{p}.attn_output.weight", g(d, H * dh), k["o"])
        add(f"{p}.ffn_gate.weight", g(f, d), k["gate"])
        add(f"{p}.ffn_up.weight", g(f, d), k["up"])
        add(f"{p}.ffn_down.weight", g(d, f), k["down"], k_scale=0.1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def reference():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = tempfile.mkdtemp()
    try:
        shutil.copy(os.path.join(OUT, "tiny-llama.gguf"), tmp)
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file="tiny-llama.gguf", torch_dtype=torch.float32)
        model.eval()
        tok = AutoTokenizer.from_pretrained(tmp, gguf_file="tiny-llama.gguf")
        texts = ["What is the capital of France?", "The 2024 system, 12345 tokens!", "  a\n\nb c"]
        messages = [{"role": "user", "content": "What is the capital of France?"}]
        prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = [tok.encode(t, add_special_tokens=True) for t in texts]
        chat_ids = tok.encode(prompt, add_special_tokens=False)
        seqs = [ids[0], chat_ids[:12]]
        logits = []
        with torch.no_grad():
            for s in seqs:
                logits.append(model(torch.tensor([s])).logits[0].tolist())
        return {
            "note": "made by scripts/make_gguf_fixtures.py with transformers (gguf_file=) and gguf " + gguf.__name__,
            "texts": texts,
            "text_ids": ids,
            "chat_messages": messages,
            "chat_prompt": prompt,
            "chat_ids": chat_ids,
            "logit_inputs": seqs,
            "logits": logits,
        }
    finally:
        shutil.rmtree(tmp)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    write_quants(rng)
    write_tiny_llama(rng)
    ref = reference()
    with open(os.path.join(OUT, "tiny-llama.json"), "w") as fh:
        json.dump(ref, fh)
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()
