#!/usr/bin/env python3
"""Expected GLUE-metric values (scikit-learn / scipy) for the Rust metric tests.

Run from the workspace root:

    python3 scripts/make_metric_fixtures.py

Writes lorta-experiments/tests/fixtures/glue_metrics.json.
Classification cases: accuracy, binary F1 (pos_label=1), Matthews corrcoef.
Regression cases: Pearson r (scipy.stats.pearsonr), Spearman rho
(scipy.stats.spearmanr; ties get average ranks).
"""

import json
import os

import numpy as np
import scipy
import scipy.stats
import sklearn
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "lorta-experiments", "tests", "fixtures", "glue_metrics.json")


def r(x):
    return float("%.12g" % float(x))


def cls_case(name, labels, preds, note=""):
    labels = [int(v) for v in labels]
    preds = [int(v) for v in preds]
    return {
        "name": name,
        "note": note,
        "labels": labels,
        "preds": preds,
        "expected": {
            "accuracy": r(accuracy_score(labels, preds)),
            # zero_division=0: F1 is 0 when there are no predicted and no true positives
            "f1": r(f1_score(labels, preds, pos_label=1, average="binary", zero_division=0)),
            "mcc": r(matthews_corrcoef(labels, preds)),
        },
    }


def reg_case(name, labels, preds, note=""):
    labels = [float(v) for v in labels]
    preds = [float(v) for v in preds]
    return {
        "name": name,
        "note": note,
        "labels": labels,
        "preds": preds,
        "expected": {
            "pearson": r(scipy.stats.pearsonr(labels, preds)[0]),
            "spearman": r(scipy.stats.spearmanr(labels, preds)[0]),
        },
    }


def main():
    rng = np.random.default_rng(20240607)
    classification = []
    labels = rng.integers(0, 2, size=50)
    preds = np.where(rng.random(50) < 0.7, labels, 1 - labels)  # ~70% agreement
    classification.append(cls_case("random_binary_50", labels, preds, "seeded random, ~70% agreement"))
    classification.append(
        cls_case("all_pred_zero", [0, 1, 1, 0, 1, 0, 0, 1, 1, 1], [0] * 10,
                 "degenerate: all predictions one class -> sklearn MCC = 0, F1 = 0 (zero_division=0)")
    )
    classification.append(
        cls_case("all_pred_one", [0, 1, 1, 0, 1, 0, 0, 1, 1, 1], [1] * 10,
                 "degenerate: all predictions the positive class -> MCC = 0")
    )
    classification.append(cls_case("perfect", [0, 1, 1, 0, 1], [0, 1, 1, 0, 1], "perfect predictions"))
    classification.append(cls_case("inverted", [0, 1, 1, 0, 1], [1, 0, 0, 1, 0], "all wrong -> MCC = -1"))
    classification.append(
        cls_case("small_hand", [1, 1, 0, 0, 1, 0, 1, 1], [1, 0, 0, 1, 1, 0, 1, 0], "hand-written small case")
    )

    regression = []
    y = rng.uniform(0.0, 5.0, size=50)
    yhat = y + rng.normal(0.0, 1.0, size=50)
    regression.append(reg_case("random_50", np.round(y, 6), np.round(yhat, 6), "seeded STS-B-like scores"))
    regression.append(
        reg_case(
            "ties",
            [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 4.0, 5.0, 0.5, 2.0],
            [1.5, 1.5, 2.5, 3.0, 3.0, 3.0, 4.5, 4.5, 0.0, 2.5],
            "ties in both labels and preds; Spearman uses average ranks",
        )
    )
    regression.append(
        reg_case("negative", [1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 3.5, 3.6, 1.0, 0.2], "mostly anti-correlated")
    )

    out = {
        "meta": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "note": "accuracy=sklearn.accuracy_score; f1=sklearn.f1_score(pos_label=1, average='binary', "
            "zero_division=0); mcc=sklearn.matthews_corrcoef (0 when a marginal is empty); "
            "pearson=scipy.stats.pearsonr; spearman=scipy.stats.spearmanr (average ranks for ties). "
            "Values rounded to 12 significant digits.",
        },
        "classification": classification,
        "regression": regression,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
