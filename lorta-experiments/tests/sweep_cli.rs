//! `sweep --preset smoke` end to end on lorta-models' tiny BERT fixture (every (method, rank) cell
//! trains, the reports are written, a rerun skips every finished cell), and other CLI hardening:
//! ragged GLUE rows are reported (warning + `data.json`), `profile` runs on ndarray without flags.
use std::path::{Path, PathBuf};
use std::process::Command;

fn run_ok(args: &[String]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_lorta-experiments")).args(args).output().unwrap();
    assert!(o.status.success(), "{:?} failed:\n{}\n{}", args, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout)
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn sweep_smoke_writes_curves_and_rerun_skips() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let args: Vec<String> = [
        "sweep", "--preset", "smoke", "--task", "rte", "--methods", "lorta,lora", "--ranks", "1,2", "--seeds", "1,2", "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "--model".into(),
        fixture("../lorta-models/tests/fixtures/bert-tiny").display().to_string(),
        "--glue-dir".into(),
        fixture("tests/fixtures/glue").display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ])
    .collect();
    run_ok(&args);
    for f in ["sweep.md", "results.json", "results.csv", "plot.png", "settings.json", "sweep.toml"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(md.contains("LoRTA") && md.contains("LoRA") && md.contains("plot.png"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "{json}");
    // Two seeds per point; LoRTA's parameter count grows linearly in r, LoRA's too, LoRA's faster.
    for p in points {
        assert_eq!(p["score"]["values"].as_array().unwrap().len(), 2);
    }
    let params = |m: &str, r: u64| points.iter().find(|p| p["method"] == m && p["rank"] == r).unwrap()["params"].as_u64().unwrap();
    assert_eq!(params("LoRTA", 2), 2 * params("LoRTA", 1));
    assert_eq!(params("LoRA", 2), 2 * params("LoRA", 1));
    assert!(params("LoRA", 1) > params("LoRTA", 1));
    assert_eq!(std::fs::read_to_string(out.join("results.csv")).unwrap().lines().count(), 1 + 8);
    assert_eq!(&std::fs::read(out.join("plot.png")).unwrap()[..4], b"\x89PNG");
    // Rerun without --quiet: all 8 cells skipped, identical CSV.
    let before = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let log = run_ok(&args.iter().filter(|a| *a != "--quiet").cloned().collect::<Vec<_>>());
    assert_eq!(log.matches("skipped").count(), 8, "{log}");
    assert_eq!(std::fs::read_to_string(out.join("results.csv")).unwrap(), before);
    // --force --jobs 2: every cell retrained by two worker processes at once (a log beside each
    // cell folder), the same results as one after another.
    let log = run_ok(&args.iter().cloned().chain(["--force".into(), "--jobs".into(), "2".into()]).collect::<Vec<_>>());
    assert!(!log.contains("skipped"), "{log}");
    assert_eq!(std::fs::read_to_string(out.join("results.csv")).unwrap(), before);
    let logs = walk(&out).into_iter().filter(|p| p.to_string_lossy().ends_with(".worker.log")).count();
    assert_eq!(logs, 8);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn ragged_rows_warn_and_are_counted_in_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let glue = tmp.path().join("glue");
    std::fs::create_dir_all(glue.join("RTE")).unwrap();
    for f in ["train.tsv", "dev.tsv"] {
        std::fs::copy(fixture("tests/fixtures/glue/RTE").join(f), glue.join("RTE").join(f)).unwrap();
    }
    let train = glue.join("RTE/train.tsv");
    let mut text = std::fs::read_to_string(&train).unwrap();
    let ragged_line = text.lines().count() + 1;
    text.push_str("99\ta\tstray\ttab\tentailment\n");
    std::fs::write(&train, text).unwrap();
    let out = tmp.path().join("run");
    let args: Vec<String> = ["train", "--task", "rte", "--method", "lora", "--rank", "2", "--max-steps", "1", "--batch-size", "2", "--max-seq-len", "16", "--quiet"]
        .iter()
        .map(|s| s.to_string())
        .chain([
            "--model".into(),
            fixture("../lorta-models/tests/fixtures/bert-tiny").display().to_string(),
            "--glue-dir".into(),
            glue.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ])
        .collect();
    let log = run_ok(&args);
    let warning = format!("skipped 1 row(s) (line {ragged_line})");
    assert_eq!(log.matches(&warning).count(), 1, "one warning for the file expected:\n{log}");
    assert!(log.contains(&train.display().to_string()), "{log}");
    let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("data.json")).unwrap()).unwrap();
    assert_eq!(data["skipped_rows_total"], 1);
    assert_eq!(data["skipped_rows"][0]["lines"], serde_json::json!([ragged_line]));
}

#[test]
fn profile_runs_on_ndarray_with_default_dtype_and_reports_rss() {
    let args: Vec<String> = ["profile", "--model", "llama-tiny", "--methods", "lora", "--ranks", "2", "--steps", "1", "--warmup", "0", "--json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let log = run_ok(&args);
    let row: serde_json::Value = log.lines().find_map(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| panic!("no JSON row in\n{log}"));
    assert_eq!(row["dtype"], "F32", "{row}");
    assert!(row["memory_measure"].as_str().unwrap().starts_with("process peak RSS growth"), "{row}");
    assert!(row["peak_memory_bytes"].is_u64(), "{row}");
}
