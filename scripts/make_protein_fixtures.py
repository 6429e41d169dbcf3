#!/usr/bin/env python3
"""Fixtures for the protein tests (lorta-experiments/src/protein, tests/fold_cli.rs).

Run from the workspace root (numpy only; the shared data folder for part 3):

    python3 scripts/make_protein_fixtures.py

Writes under lorta-experiments/tests/fixtures/proteins/:

1. metrics.json: small made-up chains with expected distogram bins, distogram cross-entropy,
   long-range contact precision P@L and P@L/5 and lDDT-Ca, computed here with numpy
   (independently of the Rust code). Logits are not stored: they are
   logits[i, j, k] = u[i, k] v[j, k] + u[j, k] v[i, k] + (k < 19) b[i, j], with u, v, b stored.
   Conventions: boundaries = linspace(2.3125, 21.6875, 63), bin = searchsorted(boundaries**2, d**2,
   side="left") (torch.bucketize / OpenFold's sum(d2 > b2)); contact probability = softmax mass of
   the bins whose upper boundary <= 8 A; true contact = pseudo-beta distance < 8 A; long range =
   j - i >= 24; P@L/f = hits among the top floor(L/f) (>= 1) valid pairs / floor(L/f);
   lDDT-Ca global (AlphaFold 2 `lddt`, cutoff 15 A, thresholds 0.5/1/2/4 A); fape_cases: backbone
   FAPE on CA atoms with frames from N, CA, C (Gram-Schmidt), clamp 10 A, scale 10 A, eps 1e-4,
   averaged over structure-module iterations and chains.
2. synthetic.pdb and synthetic.cif: one made-up chain written in both formats with a numbering
   gap, glycine, a selenomethionine HETATM, a residue without CB, alternate locations (B listed
   first), waters, and a DNA chain; a second model with other coordinates. synthetic.json holds
   what a reader must get (first model, first altloc).
3. data/: a tiny copy of ../shared/data/proteins/pdb (a few small chains per split, the same
   files byte for byte, their index.tsv rows and split rows) for the fold command's smoke tests.
"""

import gzip
import json
import os
import shutil

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "lorta-experiments", "tests", "fixtures", "proteins")
SHARED = os.environ.get("LORTA_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
PDB_DIR = os.path.join(SHARED, "proteins", "pdb")

BOUNDARIES = np.linspace(2.3125, 21.6875, 63)
CONTACT_BINS = int(np.sum(BOUNDARIES <= 8.0))


def r(x):
    return float("%.10g" % float(x))


def random_walk(rng, n, step=3.8):
    """A compact random chain: each step 3.8 A in a direction biased back toward the origin."""
    x = np.zeros((n, 3))
    for i in range(1, n):
        d = rng.normal(size=3) - 0.08 * x[i - 1]
        x[i] = x[i - 1] + step * d / np.linalg.norm(d)
    return x


# ---------------------------------------------------------------- 1. metrics
def metrics_case(rng, n, mask_frac):
    pb = np.round(random_walk(rng, n) + rng.normal(scale=0.5, size=(n, 3)), 3)
    mask = rng.random(n) > mask_frac
    d = np.sqrt(((pb[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    d2 = ((pb[:, None, :] - pb[None, :, :]) ** 2).sum(-1)
    bins = np.searchsorted(BOUNDARIES.astype(np.float32) ** 2, d2.astype(np.float32), side="left")
    pair_mask = mask[:, None] & mask[None, :]
    u = np.round(rng.normal(size=(n, 64)), 4)
    v = np.round(rng.normal(size=(n, 64)), 4)
    noise = rng.normal(scale=1.0, size=(n, n))
    b = np.round(2.5 * (d < 8.0) + noise + noise.T, 4)
    logits = u[:, None, :] * v[None, :, :] + u[None, :, :] * v[:, None, :]
    logits[:, :, :CONTACT_BINS] += b[:, :, None]
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    ce_all = -np.take_along_axis(logp, bins[..., None], -1)[..., 0]
    ce = (ce_all * pair_mask).sum() / (1e-6 + pair_mask.sum())
    probs = np.exp(logp)[..., :CONTACT_BINS].sum(-1)

    def precision(f):
        cand = []
        for i in range(n):
            for j in range(i + 24, n):
                if mask[i] and mask[j]:
                    cand.append((probs[i, j], d[i, j] < 8.0))
        if not cand:
            return None
        order = np.argsort(-np.array([c[0] for c in cand]), kind="stable")
        k = max(1, n // f)
        hits = sum(cand[o][1] for o in order[:k])
        return hits / k

    true_ca = np.round(random_walk(rng, n), 3)
    pred_ca = np.round(true_ca + rng.normal(scale=1.2, size=(n, 3)), 3)
    dt = np.sqrt(((true_ca[:, None] - true_ca[None]) ** 2).sum(-1))
    dp = np.sqrt(((pred_ca[:, None] - pred_ca[None]) ** 2).sum(-1))
    score_mask = (dt < 15.0) & (mask[:, None] & mask[None, :]) & ~np.eye(n, dtype=bool)
    err = np.abs(dt - dp)
    s = 0.25 * sum((err < t).astype(float) for t in (0.5, 1.0, 2.0, 4.0))
    lddt = (s * score_mask).sum() / score_mask.sum()
    return {
        "l": n,
        "pseudo_beta": pb.tolist(),
        "mask": mask.tolist(),
        "u": u.tolist(),
        "v": v.tolist(),
        "b": b.tolist(),
        "bins": bins.reshape(-1).tolist(),
        "cross_entropy": r(ce),
        "p_at_l": None if precision(1) is None else r(precision(1)),
        "p_at_l5": None if precision(5) is None else r(precision(5)),
        "contact_prob_0_30": None if n <= 30 else r(probs[0, 30]),
        "true_ca": true_ca.tolist(),
        "pred_ca": pred_ca.tolist(),
        "lddt_ca": r(lddt),
    }


def rigid_from_three_points(n, ca, c):
    """AlphaFold 2 Alg. 21 (Gram-Schmidt): rotation with columns e1, e2, e3 and origin CA."""
    v1 = c - ca
    v2 = n - ca
    e1 = v1 / np.sqrt((v1 ** 2).sum(-1, keepdims=True) + 1e-8)
    u2 = v2 - e1 * (e1 * v2).sum(-1, keepdims=True)
    e2 = u2 / np.sqrt((u2 ** 2).sum(-1, keepdims=True) + 1e-8)
    e3 = np.cross(e1, e2)
    return np.stack([e1, e2, e3], axis=-1), ca


def fape_np(pred, truth, mask, clamp=10.0, scale=10.0, eps=1e-4):
    """Backbone FAPE on CA atoms, averaged over iterations k and batch b (OpenFold compute_fape)."""
    k, b = pred.shape[:2]
    out = []
    for ki in range(k):
        for bi in range(b):
            def local(bb):
                r, t = rigid_from_three_points(bb[:, 0], bb[:, 1], bb[:, 2])
                d = bb[None, :, 1, :] - t[:, None, :]  # [i, j, 3]
                return np.einsum("ijx,ixc->ijc", d, r)  # R_i^T (x_j - t_i)
            e = np.sqrt(((local(pred[ki, bi]) - local(truth[bi])) ** 2).sum(-1) + eps)
            e = np.minimum(e, clamp) / scale
            m = mask[bi]
            out.append((e * m[:, None] * m[None, :]).sum() / ((eps + m.sum()) ** 2))
    return float(np.mean(out))


def fape_case(rng, k, b, l):
    truth = np.stack([np.stack([random_walk(rng, l) + rng.normal(scale=0.8, size=(l, 3)) for _ in range(3)], 1) for _ in range(b)])
    pred = np.stack([truth + rng.normal(scale=2.0 + 2 * ki, size=truth.shape) for ki in range(k)])
    mask = (rng.random((b, l)) > 0.2).astype(float)
    truth, pred = truth.astype(np.float32), pred.astype(np.float32)
    return {"k": k, "b": b, "l": l, "pred": pred.reshape(-1).tolist(), "truth": truth.reshape(-1).tolist(),
            "mask": mask.reshape(-1).tolist(), "fape": r(fape_np(pred.astype(np.float64), truth.astype(np.float64), mask))}


def write_metrics():
    rng = np.random.default_rng(11)
    cases = [metrics_case(rng, 40, 0.1), metrics_case(rng, 33, 0.25), metrics_case(rng, 20, 0.0)]
    fape_cases = [fape_case(rng, 2, 2, 9), fape_case(rng, 1, 1, 14)]
    with open(os.path.join(OUT, "metrics.json"), "w") as f:
        json.dump({"contact_bins": CONTACT_BINS, "boundaries": BOUNDARIES.tolist(), "cases": cases, "fape_cases": fape_cases}, f)
        f.write("\n")


# ---------------------------------------------------------------- 2. synthetic structures
# (resname, resnum, hetero, atoms to write) — ATOM names N CA C O CB
RESIDUES = [
    ("MET", 1, False, "N CA C O CB"),
    ("ALA", 2, False, "N CA C O CB"),
    ("GLY", 3, False, "N CA C O"),
    ("MSE", 4, True, "N CA C O CB"),
    # residues 5-7 missing (gap of 3), chain continues at 8
    ("LYS", 8, False, "N CA C O"),  # CB missing: pseudo-beta masked
    ("SER", 9, False, "N CA C O CB"),  # has alternate locations B (listed first) and A
    ("VAL", 10, False, "N CA C O CB"),
]
OBSERVED_POS = [0, 1, 2, 3, 7, 8, 9]  # positions in the gapped chain of 10 residues


def synthetic_atoms(rng, model_shift):
    """Atoms of chain A: list of dicts. Residue i sits at the walk position of its gapped index."""
    walk = random_walk(rng, 10)
    atoms = []
    for (name, num, het, names), p in zip(RESIDUES, OBSERVED_POS):
        ca = walk[p] + model_shift
        off = {"N": [-1.2, 0.6, 0.1], "CA": [0, 0, 0], "C": [1.3, 0.5, -0.2], "O": [1.9, 1.4, 0.3], "CB": [0.1, -1.1, 1.0]}
        for a in names.split():
            atoms.append({"res": name, "num": num, "het": het, "atom": a, "alt": "", "xyz": np.round(ca + off[a], 3)})
    # alternate locations of SER 9's CB: B first (occupancy 0.4), then A
    for a in atoms:
        if a["num"] == 9 and a["atom"] == "CB":
            base = a["xyz"]
            a["alt"] = "B"
            a["xyz"] = np.round(base + [0.3, 0.2, 0.1], 3)
            atoms.insert(atoms.index(a) + 1, dict(a, alt="A", xyz=np.round(base - [0.3, 0.2, 0.1], 3)))
            break
    return atoms


def element(atom):
    return "SE" if atom == "SE" else atom[0]


def pdb_line(serial, a, chain):
    rec = "HETATM" if a["het"] else "ATOM  "
    name = a["atom"] if len(a["atom"]) == 4 else " " + a["atom"].ljust(3)
    x, y, z = a["xyz"]
    occ = 0.5 if a["alt"] else 1.0
    return (
        f"{rec}{serial:5d} {name}{a['alt'] or ' '}{a['res']:>3s} {chain}{a['num']:4d}    "
        f"{x:8.3f}{y:8.3f}{z:8.3f}{occ:6.2f}{20.0:6.2f}          {element(a['atom']):>2s}"
    )


def dna_atoms():
    return [
        {"res": " DA", "num": 1, "het": False, "atom": "P", "alt": "", "xyz": np.array([30.0, 30.0, 30.0])},
        {"res": " DA", "num": 1, "het": False, "atom": "C1'", "alt": "", "xyz": np.array([31.0, 30.5, 30.0])},
    ]


def waters():
    return [{"res": "HOH", "num": 101, "het": True, "atom": "O", "alt": "", "xyz": np.array([-20.0, 5.0, 5.0])}]


def write_synthetic():
    rng = np.random.default_rng(5)
    m1 = synthetic_atoms(rng, np.zeros(3))
    m2 = synthetic_atoms(rng, np.array([50.0, 0.0, 0.0]))
    lines = ["HEADER    MADE-UP TEST STRUCTURE                  29-NOV-26   XXXX"]
    cif_rows = []
    serial = 1
    for model_no, atoms in ((1, m1), (2, m2)):
        lines.append(f"MODEL     {model_no:4d}")
        for a in atoms:
            lines.append(pdb_line(serial, a, "A"))
            cif_rows.append((serial, a, "A", model_no))
            serial += 1
        lines.append(f"TER   {serial:5d}      VAL A  10")
        serial += 1
        for a in dna_atoms():
            lines.append(pdb_line(serial, dict(a, res=a["res"].strip()), "B"))
            cif_rows.append((serial, dict(a, res=a["res"].strip()), "B", model_no))
            serial += 1
        for a in waters():
            lines.append(pdb_line(serial, a, "A"))
            cif_rows.append((serial, a, "A", model_no))
            serial += 1
        lines.append("ENDMDL")
    lines.append("END")
    with open(os.path.join(OUT, "synthetic.pdb"), "w") as f:
        f.write("\n".join(lines) + "\n")

    cols = [
        "group_PDB", "id", "type_symbol", "label_atom_id", "label_alt_id", "label_comp_id", "label_asym_id",
        "label_entity_id", "label_seq_id", "pdbx_PDB_ins_code", "Cartn_x", "Cartn_y", "Cartn_z", "occupancy",
        "B_iso_or_equiv", "pdbx_formal_charge", "auth_seq_id", "auth_asym_id", "pdbx_PDB_model_num",
    ]
    out = ["data_XXXX", "#", "loop_"] + [f"_atom_site.{c}" for c in cols]
    for serial, a, chain, model_no in cif_rows:
        x, y, z = a["xyz"]
        label_asym = {"A": "A" if a["res"] != "HOH" else "C", "B": "B"}[chain]
        entity = {"A": "1", "B": "2", "C": "3"}[label_asym]
        seq_id = str(a["num"]) if a["res"] != "HOH" else "."
        atom = a["atom"]
        atom_q = f'"{atom}"' if "'" in atom else atom
        out.append(
            " ".join([
                "HETATM" if a["het"] else "ATOM", str(serial), element(atom), atom_q, a["alt"] or ".", a["res"], label_asym,
                entity, seq_id, "?", f"{x:.3f}", f"{y:.3f}", f"{z:.3f}", "0.50" if a["alt"] else "1.00", "20.00", "?",
                str(a["num"]), chain, str(model_no),
            ])
        )
    out.append("#")
    with open(os.path.join(OUT, "synthetic.cif"), "w") as f:
        f.write("\n".join(out) + "\n")

    # What a reader must produce: gapped chain of 10, first model, first altloc (B).
    seq = ["X"] * 10
    pb = [[0.0, 0.0, 0.0]] * 10
    pb_mask = [False] * 10
    observed = [False] * 10
    one = {"MET": "M", "ALA": "A", "GLY": "G", "MSE": "M", "LYS": "K", "SER": "S", "VAL": "V"}
    for (name, num, het, names), p in zip(RESIDUES, OBSERVED_POS):
        seq[p] = one[name]
        observed[p] = True
        want = "CA" if name == "GLY" else "CB"
        hits = [a for a in m1 if a["num"] == num and a["atom"] == want]
        if hits:
            pb[p] = hits[0]["xyz"].tolist()  # first listed altloc (B for SER 9)
            pb_mask[p] = True
    with open(os.path.join(OUT, "synthetic.json"), "w") as f:
        json.dump({"chain": "A", "sequence": "".join(seq), "observed": observed, "pseudo_beta": pb,
                   "pseudo_beta_mask": pb_mask, "gap_positions": 3, "not_protein_chain": "B"}, f, indent=1)
        f.write("\n")


# ---------------------------------------------------------------- 3. tiny data folder
TRAIN = [
    ("kortemme_covariation_pfam40/1BXY_A.pdb.gz", "A"),
    ("kortemme_covariation_pfam40/1UCS_A.pdb.gz", "A"),
    ("kortemme_covariation_pfam40/2O9S_A.pdb.gz", "A"),
    ("biopython_testpdb/1A8O.cif.gz", "A"),
]
VAL = [
    ("psicov150_gremlin_rf/1guu.pdb.gz", "A"),
    ("psicov150_gremlin_rf/1brf.pdb.gz", "A"),
    ("psicov150_gremlin_rf/1ku3.pdb.gz", "A"),
]


def write_data_folder():
    dst = os.path.join(OUT, "data")
    if os.path.isdir(dst):
        shutil.rmtree(dst)
    os.makedirs(os.path.join(dst, "splits"))
    with open(os.path.join(PDB_DIR, "index.tsv")) as f:
        index = f.read().splitlines()
    wanted = set(TRAIN + VAL)
    rows = [index[0]] + [l for l in index[1:] if (l.split("\t")[0], l.split("\t")[3]) in wanted]
    assert len(rows) == len(wanted) + 1, "some fixture chains are missing from index.tsv"
    with open(os.path.join(dst, "index.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    for name, chains in (("train", TRAIN), ("val_psicov150", VAL)):
        with open(os.path.join(PDB_DIR, "splits", f"{name}.tsv")) as f:
            split = f.read().splitlines()
        keep = [split[0]] + [l for l in split[1:] if (l.split("\t")[0], l.split("\t")[1]) in set(chains)]
        assert len(keep) == len(chains) + 1, f"some fixture chains are missing from splits/{name}.tsv"
        with open(os.path.join(dst, "splits", f"{name}.tsv"), "w") as f:
            f.write("\n".join(keep) + "\n")
    for path, _ in TRAIN + VAL:
        os.makedirs(os.path.join(dst, os.path.dirname(path)), exist_ok=True)
        shutil.copyfile(os.path.join(PDB_DIR, path), os.path.join(dst, path))
        with gzip.open(os.path.join(dst, path)) as g:
            g.read()  # the copy decompresses


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    write_metrics()
    write_synthetic()
    if os.path.isdir(PDB_DIR):
        write_data_folder()
    else:
        print(f"{PDB_DIR} not found: data/ not rewritten")
    print(f"fixtures written to {OUT}")
