#!/usr/bin/env python3
"""Numerical checks of the GPU backends through the CLI (the GPU machine has no Rust toolchain, so
the parity tests run as `forward` calls): every HF/PEFT parity fixture of lorta-models and the
real all-MiniLM-L6-v2 on ndarray, cuda and wgpu, compared with the transformers/PEFT reference
(the fixtures' reference.json, made on CPU in f32) and with ndarray.

    python3 scripts/gpu_checks.py --bin .gpu/lorta-experiments [--minilm DIR] [--backends ndarray,cuda,wgpu] [--only llama-lora,...]

Prints one row per (model, backend): max |ours − reference| / max |reference| over the compared
outputs, same against ndarray, and whether it is within the tolerance (1e-5 relative for f32).
Exits non-zero if an f32 row is out of tolerance. `--tf32` adds cuda rows with `--tf32`. A
checkpoint stored in f16/bf16 (a copy shrunk for a remote machine) is judged against ndarray on
the same weights, since the reference was made from the f32 original.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

FIX = os.path.join(os.path.dirname(__file__), "..", "lorta-models", "tests", "fixtures")
TOL = 1e-5


def flat(v, out):
    if isinstance(v, list):
        for x in v:
            flat(x, out)
    else:
        out.append(float(v))


def rel(a, b):
    x, y = [], []
    flat(a, x)
    flat(b, y)
    if len(x) != len(y):
        return float("nan")
    scale = max(abs(t) for t in y) or 1.0
    return max(abs(p - q) for p, q in zip(x, y)) / scale


def cases(minilm):
    """(name, model dir, adapter dir or None, token ids of one unpadded row, reference outputs)."""
    out = []
    for name in sorted(os.listdir(FIX)):
        ref_path = os.path.join(FIX, name, "reference.json")
        if not os.path.isfile(ref_path):
            continue
        ref = json.load(open(ref_path))
        if "inputs" not in ref or "input_ids" not in ref["inputs"]:
            continue
        model = os.path.join(FIX, name)
        adapter = None
        if os.path.isdir(os.path.join(model, "adapter")):
            adapter = os.path.join(model, "adapter")
            model = os.path.join(FIX, "llama-tied")
        if name == "minilm":
            if not minilm:
                continue
            model = minilm
        if not os.path.isfile(os.path.join(model, "config.json")):
            continue
        inputs = ref["inputs"]
        # `forward --ids` gives one segment: take the first row without second-segment tokens
        types = inputs.get("token_type_ids") or [[0] * len(r) for r in inputs["input_ids"]]
        r = next((i for i, t in enumerate(types) if not any(t)), None)
        if r is None:
            continue
        ids, mask = inputs["input_ids"][r], inputs.get("attention_mask", [[1] * 10**6] * (r + 1))[r]
        n = sum(1 for m in mask[: len(ids)] if m == 1)
        row = ids[:n]
        expect = {}
        for key in ("logits", "last_hidden_state"):
            if key in ref:
                v = ref[key][r]
                expect[key] = v[:n] if isinstance(v, list) and len(v) == len(ids) else v
        out.append((name, model, adapter, row, expect))
    return out


def half_weights(model):
    """True when the checkpoint's safetensors hold F16/BF16 tensors (e.g. a copy made small for a
    remote machine): the f32 reference no longer applies, the row is judged against ndarray."""
    path = os.path.join(model, "model.safetensors")
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return False
    return any(isinstance(v, dict) and v.get("dtype") in ("F16", "BF16") for v in header.values())


def forward(bin_, backend, model, adapter, ids, extra):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out.json")
        cmd = [bin_, "forward", "--backend", backend, "--model", model, "--ids", ",".join(map(str, ids)), "--out", path] + extra
        if adapter:
            cmd += ["--adapter", adapter]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            return None, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"
        o = json.load(open(path))
        return {k: o[k][0] for k in ("logits", "last_hidden_state") if k in o}, None


def show(r):
    if "error" in r:
        print(f"| {r['model']} | {r['backend']} | error: {r['error'][:120]} | | | no |", flush=True)
    else:
        print(f"| {r['model']} | {r['backend']} | {r['outputs']} | {r['max_rel_vs_hf']:.2e} | {r['max_rel_vs_ndarray']:.2e} | {'yes' if r['within_1e-5'] else 'no'} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--minilm", default=os.environ.get("LORTA_MINILM_DIR"))
    ap.add_argument("--backends", default="ndarray,cuda,wgpu")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", default=None, help="comma-separated fixture names (default: all)")
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else None
    runs = [(b, []) for b in a.backends.split(",")]
    if a.tf32 and "cuda" in a.backends:
        runs.append(("cuda", ["--tf32"]))
    rows, bad = [], 0
    print("| model | backend | outputs | max rel vs HF | max rel vs ndarray | ≤ 1e-5 |")
    print("|---|---|---|---|---|---|", flush=True)
    for name, model, adapter, ids, expect in cases(a.minilm):
        if only is not None and name not in only:
            continue
        base = None
        vs_ndarray_only = half_weights(model)
        for backend, extra in runs:
            got, err = forward(a.bin, backend, model, adapter, ids, extra)
            label = backend + (" --tf32" if extra else "")
            if got is None:
                rows.append({"model": name, "backend": label, "error": err})
                show(rows[-1])
                bad += 1
                continue
            if backend == "ndarray":
                base = got
            keys = [k for k in expect if k in got]
            vs_ref = max((rel(got[k], expect[k]) for k in keys), default=float("nan"))
            vs_nd = max((rel(got[k], base[k]) for k in keys if base and k in base), default=float("nan"))
            judged = vs_nd if vs_ndarray_only else vs_ref
            ok = judged <= TOL or extra  # --tf32 rows are informative
            bad += 0 if ok else 1
            rows.append({"model": name, "backend": label, "outputs": ",".join(keys), "max_rel_vs_hf": vs_ref,
                         "max_rel_vs_ndarray": vs_nd, "within_1e-5": bool(judged <= TOL),
                         "judged_against": "ndarray (half-precision weight copy)" if vs_ndarray_only else "reference"})
            show(rows[-1])  # as it comes: a call cut short by a time limit still reports what ran
    if a.out:
        json.dump(rows, open(a.out, "w"), indent=1)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
