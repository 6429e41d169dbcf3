#!/usr/bin/env python3
"""Tiny ESM-2 and ESMFold parity fixtures for lorta-models (esm.rs, esmfold.rs).

Run from the workspace root (CPU, float32, deterministic):

    python3 scripts/make_esmfold_fixtures.py

Writes
  lorta-models/tests/fixtures/esm-tiny/       bare EsmModel (keys without `esm.`), vocab.txt,
                                              reference.safetensors (+ reference.json: input ids)
  lorta-models/tests/fixtures/esm1b-tiny/     the same with ESM-1b's absolute positions,
                                              emb_layer_norm_before and no token dropout
  lorta-models/tests/fixtures/esmfold-tiny/   EsmForProteinFolding (ESM part under `esm.`),
                                              reference.safetensors with s_s, s_z,
                                              distogram_logits, positions, frames, angles, states
                                              for num_recycles = 0, 1, 2 (+ reference.json)
  lorta-models/src/residue_constants.json     the AlphaFold residue-constant tables the structure
                                              module needs (from transformers' openfold_utils)

Every parameter is perturbed with random values (AlphaFold zero-initialises many output
projections and gates; a parity test on those would not see errors in the code behind them).
`fp16_esm` is set to False: HF otherwise casts the ESM stem to float16 (`self.esm.half()`).
"""

import json
import os

import torch
from safetensors.torch import save_file
from transformers import EsmConfig, EsmForProteinFolding, EsmModel, EsmTokenizer
from transformers.models.esm.openfold_utils import residue_constants as rc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "lorta-models", "tests", "fixtures")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

VOCAB = [
    "<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K",
    "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
]


def perturb(model, seed, scale=0.2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def esm_config(**extra):
    return dict(
        vocab_size=len(VOCAB),
        mask_token_id=VOCAB.index("<mask>"),
        pad_token_id=VOCAB.index("<pad>"),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=64,
        position_embedding_type="rotary",
        emb_layer_norm_before=False,
        token_dropout=True,
        layer_norm_eps=1e-5,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **extra,
    )


def save_dir(path, model, config, extra_files=None):
    os.makedirs(path, exist_ok=True)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    cfg = config.to_dict()
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    for name, text in (extra_files or {}).items():
        with open(os.path.join(path, name), "w") as f:
            f.write(text)


def make_esm(name="esm-tiny", **overrides):
    torch.manual_seed(0)
    cfg = esm_config(architectures=["EsmModel"])
    cfg.update(overrides)
    config = EsmConfig(**cfg)
    model = EsmModel(config, add_pooling_layer=False).eval()
    perturb(model, 1)
    path = os.path.join(FIX, name)
    save_dir(path, model, config)
    tok = EsmTokenizer(os.path.join(path, "vocab.txt"))
    # one sequence with a <mask> (token-dropout rescaling with mask_ratio_observed > 0), one
    # unknown letter (J → <unk>), right padding
    texts = ["MKTAYIAKQR", "GS<mask>LJV", "ACDE"]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    save_file(
        {"last_hidden_state": out.last_hidden_state.contiguous()},
        os.path.join(path, "reference.safetensors"),
    )
    with open(os.path.join(path, "reference.json"), "w") as f:
        json.dump(
            {
                "texts": texts,
                "input_ids": enc["input_ids"].tolist(),
                "attention_mask": enc["attention_mask"].tolist(),
                "note": "last_hidden_state in reference.safetensors covers every position incl. padding",
            },
            f,
            indent=1,
        )


def esmfold_config():
    return EsmConfig(
        **esm_config(
            architectures=["EsmForProteinFolding"],
            is_folding_model=True,
            vocab_list=VOCAB,
            esmfold_config=dict(
                fp16_esm=False,
                lddt_head_hid_dim=8,
                trunk=dict(
                    num_blocks=2,
                    sequence_state_dim=16,
                    pairwise_state_dim=8,
                    sequence_head_width=8,
                    pairwise_head_width=4,
                    position_bins=4,
                    max_recycles=2,
                    chunk_size=None,
                    structure_module=dict(
                        sequence_dim=12,
                        pairwise_dim=6,
                        ipa_dim=4,
                        resnet_dim=8,
                        num_heads_ipa=2,
                        num_qk_points=2,
                        num_v_points=3,
                        num_blocks=2,
                        num_transition_layers=1,
                        num_resnet_blocks=2,
                    ),
                ),
            ),
        )
    )


def make_esmfold():
    torch.manual_seed(0)
    config = esmfold_config()
    model = EsmForProteinFolding(config).eval()
    perturb(model, 2)
    path = os.path.join(FIX, "esmfold-tiny")
    save_dir(path, model, config)
    # AlphaFold aatype indices (restypes_with_x order: ARNDCQEGHILKMFPSTWYV then X = 20)
    seqs = ["MKTAYIAKQRW", "GSHLXVCE"]
    aa = [[rc.restype_order_with_x.get(c, 20) for c in s] for s in seqs]
    n = max(len(s) for s in aa)
    ids = torch.tensor([s + [0] * (n - len(s)) for s in aa])
    mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in aa])
    refs = {}
    for rec in (0, 1, 2):
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask, num_recycles=rec)
        for key in ("s_s", "s_z", "distogram_logits", "positions", "frames", "angles", "unnormalized_angles", "states"):
            refs[f"r{rec}.{key}"] = out[key].float().contiguous()
    save_file(refs, os.path.join(path, "reference.safetensors"))
    with open(os.path.join(path, "reference.json"), "w") as f:
        json.dump(
            {
                "sequences": seqs,
                "aatype": ids.tolist(),
                "attention_mask": mask.tolist(),
                "recycles": [0, 1, 2],
                "note": "reference.safetensors holds r{N}.{output} for num_recycles = N; every position incl. padding",
            },
            f,
            indent=1,
        )


def dump_residue_constants():
    tables = {
        "source": "transformers.models.esm.openfold_utils.residue_constants (AlphaFold 2); generated by scripts/make_esmfold_fixtures.py",
        "restypes_with_x": list(rc.restypes_with_x),
        "restype_rigid_group_default_frame": rc.restype_rigid_group_default_frame.tolist(),
        "restype_atom14_to_rigid_group": rc.restype_atom14_to_rigid_group.tolist(),
        "restype_atom14_mask": rc.restype_atom14_mask.tolist(),
        "restype_atom14_rigid_group_positions": rc.restype_atom14_rigid_group_positions.tolist(),
    }
    with open(os.path.join(ROOT, "lorta-models", "src", "residue_constants.json"), "w") as f:
        json.dump(tables, f, separators=(",", ":"))


if __name__ == "__main__":
    make_esm()
    make_esm("esm1b-tiny", position_embedding_type="absolute", emb_layer_norm_before=True, token_dropout=False)
    make_esmfold()
    dump_residue_constants()
    print("ok")
