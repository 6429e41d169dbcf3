#!/usr/bin/env python3
"""Reference numbers for lorta-models/tests/gguf.rs's SmolLM2 test, from transformers loading
the real SmolLM2-135M-Instruct GGUF with `gguf_file=` (its own dequantization to f32 and its
GGUF tokenizer conversion):
the chat prompt for "What is the capital of France?" (text and ids), the logits at the last
`logits_tokens` positions of that prompt on a fixed subset of the vocabulary (every 48th id plus
each position's top 16), and the greedy continuation (12 tokens).

Usage: python3 scripts/make_smollm2_reference.py $(scripts/fetch_smollm2.sh)
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

OUT = os.path.join(os.path.dirname(__file__), "..", "lorta-models", "tests", "fixtures", "gguf", "smollm2-reference.json")


def main():
    path = sys.argv[1]
    folder, name = os.path.dirname(path), os.path.basename(path)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tok.encode(prompt, add_special_tokens=False)
    n_pos = 4
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
        gen = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False, eos_token_id=tok.eos_token_id)
    positions = list(range(len(ids) - n_pos, len(ids)))
    vocab_ids = set(range(0, logits.shape[1], 48))
    for p in positions:
        vocab_ids.update(torch.topk(logits[p], 16).indices.tolist())
    vocab_ids = sorted(vocab_ids)
    new = gen[0, len(ids):].tolist()
    ref = {
        "note": "made by scripts/make_smollm2_reference.py with transformers (gguf_file=) on SmolLM2-135M-Instruct.Q4_1.gguf",
        "chat_messages": messages,
        "chat_prompt": prompt,
        "chat_ids": ids,
        "logit_positions": positions,
        "logit_vocab_ids": vocab_ids,
        "logits": [[logits[p, v].item() for v in vocab_ids] for p in positions],
        "greedy_ids": new,
        "greedy_text": tok.decode(new, skip_special_tokens=True),
    }
    with open(OUT, "w") as fh:
        json.dump(ref, fh)
    print(json.dumps({k: ref[k] for k in ["chat_prompt", "greedy_ids", "greedy_text"]}))
    print(OUT, os.path.getsize(OUT))


if __name__ == "__main__":
    main()
