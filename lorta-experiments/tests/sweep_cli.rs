//! `sweep --preset smoke` end to end on lorta-models' tiny BERT fixture: every (method, rank)
//! cell trains, the reports are written, and a rerun skips every finished cell.
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
}
