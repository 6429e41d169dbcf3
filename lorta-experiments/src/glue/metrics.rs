//! GLUE evaluation metrics in f64: accuracy, binary F1, Matthews correlation,
//! Pearson and Spearman correlation. Conventions follow scikit-learn/scipy
//! (see each function); all functions panic when `preds` and `labels` have
//! different lengths.

use std::collections::BTreeMap;

use super::data::Label;
use super::tasks::{GlueTask, Metric};

fn check_len(a: usize, b: usize) {
    assert_eq!(a, b, "predictions ({a}) and labels ({b}) differ in length");
}

/// Fraction of exact matches; 0 for empty input.
pub fn accuracy(preds: &[usize], labels: &[usize]) -> f64 {
    check_len(preds.len(), labels.len());
    if preds.is_empty() {
        return 0.0;
    }
    let hits = preds.iter().zip(labels).filter(|(p, l)| p == l).count();
    hits as f64 / preds.len() as f64
}

/// Binary F1 with class 1 as the positive class; 0 when there are no true
/// positives, false positives or false negatives at all (scikit-learn with
/// `zero_division=0`).
pub fn f1_binary(preds: &[usize], labels: &[usize]) -> f64 {
    check_len(preds.len(), labels.len());
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    for (&p, &l) in preds.iter().zip(labels) {
        match (p == 1, l == 1) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    let denom = 2 * tp + fp + fn_;
    if denom == 0 {
        0.0
    } else {
        (2 * tp) as f64 / denom as f64
    }
}

/// Matthews correlation coefficient, general multi-class form (Gorodkin's
/// R_K, as scikit-learn's `matthews_corrcoef`); 0 when the denominator is 0
/// (e.g. all predictions in one class).
pub fn matthews_corrcoef(preds: &[usize], labels: &[usize]) -> f64 {
    check_len(preds.len(), labels.len());
    let k = preds
        .iter()
        .chain(labels)
        .copied()
        .max()
        .map_or(0, |m| m + 1);
    let mut t = vec![0f64; k]; // true-class counts
    let mut p = vec![0f64; k]; // predicted-class counts
    let mut correct = 0f64;
    for (&pr, &l) in preds.iter().zip(labels) {
        t[l] += 1.0;
        p[pr] += 1.0;
        if pr == l {
            correct += 1.0;
        }
    }
    let s = preds.len() as f64;
    let tp: f64 = t.iter().zip(&p).map(|(a, b)| a * b).sum();
    let cov_ytyp = correct * s - tp;
    let cov_ypyp = s * s - p.iter().map(|x| x * x).sum::<f64>();
    let cov_ytyt = s * s - t.iter().map(|x| x * x).sum::<f64>();
    if cov_ypyp * cov_ytyt == 0.0 {
        return 0.0;
    }
    cov_ytyp / (cov_ytyt * cov_ypyp).sqrt()
}

/// Pearson correlation coefficient. Returns 0 when either input is constant
/// or has fewer than 2 values (scipy returns NaN there; 0 keeps best-epoch
/// selection well defined).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    check_len(x.len(), y.len());
    let n = x.len();
    if n < 2 {
        return 0.0;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (da, db) = (a - mx, b - my);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    if sxx == 0.0 || syy == 0.0 {
        return 0.0;
    }
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// 1-based ranks with ties given their average rank (scipy `rankdata`
/// method "average").
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        // positions i..j (0-based) share the average of ranks i+1..=j
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    ranks
}

/// Spearman rank correlation: Pearson correlation of average ranks.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    check_len(x.len(), y.len());
    pearson(&average_ranks(x), &average_ranks(y))
}

fn classes(v: &[Label], what: &str) -> Vec<usize> {
    v.iter()
        .map(|l| {
            l.class()
                .unwrap_or_else(|| panic!("{what}: expected class labels, found a score"))
        })
        .collect()
}

/// The GLUE metrics of `task` (keys from [`Metric::key`]: `accuracy`, `f1`,
/// `mcc`, `pearson`, `spearman`). Classification tasks need class labels,
/// STS-B scores (class labels are also accepted there and read as numbers).
pub fn task_metrics(task: GlueTask, preds: &[Label], labels: &[Label]) -> BTreeMap<String, f64> {
    check_len(preds.len(), labels.len());
    let mut out = BTreeMap::new();
    if task.is_regression() {
        let p: Vec<f64> = preds.iter().map(|l| l.as_f64()).collect();
        let y: Vec<f64> = labels.iter().map(|l| l.as_f64()).collect();
        for m in task.metrics() {
            let v = match m {
                Metric::Pearson => pearson(&p, &y),
                Metric::Spearman => spearman(&p, &y),
                _ => unreachable!("regression task with classification metric"),
            };
            out.insert(m.key().to_string(), v);
        }
        return out;
    }
    let p = classes(preds, "predictions");
    let y = classes(labels, "labels");
    for m in task.metrics() {
        let v = match m {
            Metric::Accuracy => accuracy(&p, &y),
            Metric::F1 => f1_binary(&p, &y),
            Metric::Matthews => matthews_corrcoef(&p, &y),
            Metric::Pearson | Metric::Spearman => {
                unreachable!("classification task with regression metric")
            }
        };
        out.insert(m.key().to_string(), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::path::Path;

    const TOL: f64 = 1e-9;

    fn fixture() -> Value {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/glue_metrics.json");
        let s = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
        serde_json::from_str(&s).unwrap()
    }

    fn usizes(v: &Value) -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    }

    fn f64s(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    fn close(name: &str, metric: &str, got: f64, want: f64) {
        assert!(
            (got - want).abs() <= TOL,
            "{name}/{metric}: got {got}, expected {want}"
        );
    }

    #[test]
    fn classification_matches_sklearn() {
        let f = fixture();
        let cases = f["classification"].as_array().unwrap();
        assert!(!cases.is_empty());
        for c in cases {
            let name = c["name"].as_str().unwrap();
            let (p, y) = (usizes(&c["preds"]), usizes(&c["labels"]));
            let e = &c["expected"];
            close(
                name,
                "accuracy",
                accuracy(&p, &y),
                e["accuracy"].as_f64().unwrap(),
            );
            close(name, "f1", f1_binary(&p, &y), e["f1"].as_f64().unwrap());
            close(
                name,
                "mcc",
                matthews_corrcoef(&p, &y),
                e["mcc"].as_f64().unwrap(),
            );
        }
    }

    #[test]
    fn regression_matches_scipy() {
        let f = fixture();
        let cases = f["regression"].as_array().unwrap();
        assert!(!cases.is_empty());
        for c in cases {
            let name = c["name"].as_str().unwrap();
            let (p, y) = (f64s(&c["preds"]), f64s(&c["labels"]));
            let e = &c["expected"];
            close(
                name,
                "pearson",
                pearson(&p, &y),
                e["pearson"].as_f64().unwrap(),
            );
            close(
                name,
                "spearman",
                spearman(&p, &y),
                e["spearman"].as_f64().unwrap(),
            );
        }
    }

    #[test]
    fn multiclass_mcc() {
        // sklearn.metrics.matthews_corrcoef([0,1,2,2,1,0,2], [0,2,2,1,1,0,2])
        // = (c*s - sum t*p) / sqrt((s^2 - sum p^2)(s^2 - sum t^2)); by hand:
        // s=7, c=5, t=(2,2,3), p=(2,2,3) -> (35-17)/sqrt(32*32) = 0.5625
        let y = [0, 1, 2, 2, 1, 0, 2];
        let p = [0, 2, 2, 1, 1, 0, 2];
        close("multiclass", "mcc", matthews_corrcoef(&p, &y), 0.5625);
        assert_eq!(matthews_corrcoef(&[], &[]), 0.0);
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 20.0, 5.0]),
            vec![2.0, 3.5, 3.5, 1.0]
        );
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn task_metric_sets() {
        let y: Vec<Label> = [1, 0, 1, 1].iter().map(|&c| Label::Class(c)).collect();
        let p: Vec<Label> = [1, 0, 0, 1].iter().map(|&c| Label::Class(c)).collect();
        let m = task_metrics(GlueTask::Mrpc, &p, &y);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["accuracy", "f1"]);
        close("mrpc", "accuracy", m["accuracy"], 0.75);
        close("mrpc", "f1", m["f1"], 0.8);
        let m = task_metrics(GlueTask::Cola, &p, &y);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["mcc"]);
        let m = task_metrics(GlueTask::Rte, &p, &y);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["accuracy"]);
        let ys: Vec<Label> = [1.0, 2.0, 3.0].iter().map(|&s| Label::Score(s)).collect();
        let ps: Vec<Label> = [1.5, 2.5, 2.6].iter().map(|&s| Label::Score(s)).collect();
        let m = task_metrics(GlueTask::Stsb, &ps, &ys);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["pearson", "spearman"]);
        close("stsb", "spearman", m["spearman"], 1.0);
        for t in GlueTask::ALL {
            let m = if t.is_regression() {
                task_metrics(t, &ps, &ys)
            } else {
                task_metrics(t, &p, &y)
            };
            assert!(m.contains_key(t.main_metric().key()), "{t}");
        }
    }
}
