//! End-to-end tests of `fold` on the fixture chains (tests/fixtures/proteins/data): the smoke
//! preset writes its tables and plot, a stopped run resumed with --resume ends where an
//! uninterrupted one does, finished methods are reused, bad inputs are clear errors, and
//! `--profile` prints one row per method.
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lorta-experiments"))
}

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proteins/data")
}

fn fold_args(out: &Path, cache: &Path, methods: &str) -> Vec<String> {
    let mut v: Vec<String> = ["fold", "--preset", "smoke", "--quiet", "--seed", "3"].iter().map(|s| s.to_string()).collect();
    v.extend(["--methods".into(), methods.into()]);
    v.extend(["--data-dir".into(), data().display().to_string()]);
    v.extend(["--cache-dir".into(), cache.display().to_string()]);
    v.extend(["--out".into(), out.display().to_string()]);
    v
}

fn run(args: &[String]) -> (bool, String) {
    let o = bin().args(args).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout))
}

fn read(p: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

#[test]
fn smoke_preset_trains_every_method_and_writes_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let (ok, log) = run(&fold_args(&out, &tmp.path().join("cache"), "lora:2,lorta:2,full"));
    assert!(ok, "{log}");
    for f in ["table.md", "results.json", "results.csv", "loss_curves.png", "data_report.json", "lora-r2/metrics.json", "lorta-r2/checkpoint.safetensors", "full/log.jsonl"] {
        assert!(out.join(f).is_file(), "{f} missing:\n{log}");
    }
    let res = read(out.join("results.json"));
    let rows = res["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let params: Vec<u64> = rows.iter().map(|r| r["trainable_params"].as_u64().unwrap()).collect();
    assert!(params[1] < params[0] && params[0] < params[2], "LoRTA < LoRA < full: {params:?}");
    for r in rows {
        let m = &r["metrics"];
        assert_eq!(m["n_p_at_l"], 3.0, "{r}");
        let p = m["p_at_l"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{r}");
        assert!(m["distogram_ce"].as_f64().unwrap().is_finite(), "{r}");
        assert!(m["lddt_ca"].as_f64().unwrap().is_finite(), "{r}");
        assert!(!r["loss_curve"].as_array().unwrap().is_empty());
    }
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(md.contains("LoRTA r2") && md.contains("P@L/5"), "{md}");
    let data_report = read(out.join("data_report.json"));
    assert_eq!(data_report[0]["loaded"], 4);
    assert_eq!(data_report[1]["loaded"], 3);
    // a second run reuses every finished method
    let (ok, log) = run(&fold_args(&out, &tmp.path().join("cache"), "lora:2,lorta:2,full"));
    assert!(ok, "{log}");
    assert_eq!(read(out.join("results.json"))["rows"], res["rows"]);
}

#[test]
fn stopped_run_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let full = tmp.path().join("full");
    let (ok, log) = run(&fold_args(&full, &cache, "lorta:2"));
    assert!(ok, "{log}");
    let part = tmp.path().join("part");
    let mut args = fold_args(&part, &cache, "lorta:2");
    args.extend(["--stop-after".into(), "2".into()]);
    let (ok, log) = run(&args);
    assert!(ok && log.contains("--resume"), "{log}");
    assert!(!part.join("results.json").exists());
    // without --resume the checkpoint is not overwritten
    let (ok, log) = run(&fold_args(&part, &cache, "lorta:2"));
    assert!(!ok && log.contains("--resume"), "{log}");
    let mut args = fold_args(&part, &cache, "lorta:2");
    args.push("--resume".into());
    let (ok, log) = run(&args);
    assert!(ok, "{log}");
    let a = read(full.join("lorta-r2/metrics.json"));
    let b = read(part.join("lorta-r2/metrics.json"));
    // bit for bit: the masks of each step depend only on (seed, step), the checkpoint is exact
    assert_eq!(a["metrics"], b["metrics"]);
    assert_eq!(a["loss_curve"], b["loss_curve"]);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = fold_args(&tmp.path().join("o"), &tmp.path().join("c"), "lora:2");
    let i = args.iter().position(|a| a == "--data-dir").unwrap();
    args[i + 1] = tmp.path().join("nowhere").display().to_string();
    let (ok, log) = run(&args);
    assert!(!ok && log.contains("index.tsv") && log.contains("--data-dir"), "{log}");
    let (ok, log) = run(&fold_args(&tmp.path().join("o2"), &tmp.path().join("c"), "vera:2"));
    assert!(!ok && log.contains("--methods"), "{log}");
    // a validation chain that is not in its file: an error naming file and chain
    let d = tmp.path().join("data");
    copy_dir(&data(), &d);
    let split = d.join("splits/val_psicov150.tsv");
    let text = std::fs::read_to_string(&split).unwrap().replacen("1guu.pdb.gz\tA", "1guu.pdb.gz\tQ", 1);
    std::fs::write(&split, text).unwrap();
    let mut args = fold_args(&tmp.path().join("o3"), &tmp.path().join("c"), "lora:2");
    let i = args.iter().position(|a| a == "--data-dir").unwrap();
    args[i + 1] = d.display().to_string();
    let (ok, log) = run(&args);
    assert!(!ok && log.contains("1guu.pdb.gz: chain Q not found"), "{log}");
}

/// `--esm DIR`: a (tiny, transformers-made) ESM-2 checkpoint feeds the trunk its hidden states;
/// the run trains, records the folder, and differs from the run on learned residue embeddings. A
/// folder that is not an ESM-2 checkpoint is an error naming --esm.
#[test]
fn esm_checkpoint_feeds_the_trunk() {
    let tmp = tempfile::tempdir().unwrap();
    let esm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lorta-models/tests/fixtures/esm-tiny");
    let with_esm = |out: &Path, dir: &Path| {
        let mut args = fold_args(out, &tmp.path().join("cache"), "lora:2");
        args.extend(["--esm".to_string(), dir.display().to_string()]);
        run(&args)
    };
    let (ok, log) = with_esm(&tmp.path().join("esm"), &esm);
    assert!(ok, "{log}");
    let settings = read(tmp.path().join("esm/settings.json"));
    assert!(settings["esm"].as_str().is_some_and(|s| s.ends_with("esm-tiny")), "{settings}");
    let m = &read(tmp.path().join("esm/results.json"))["rows"][0]["metrics"];
    assert!(m["distogram_ce"].as_f64().unwrap().is_finite(), "{m}");
    let (ok, log) = run(&fold_args(&tmp.path().join("plain"), &tmp.path().join("cache"), "lora:2"));
    assert!(ok, "{log}");
    let plain = &read(tmp.path().join("plain/results.json"))["rows"][0]["metrics"];
    assert_ne!(m["distogram_ce"], plain["distogram_ce"], "--esm changed nothing");
    let (ok, log) = with_esm(&tmp.path().join("bad"), &data());
    assert!(!ok && log.contains("--esm"), "{log}");
}

#[test]
fn profile_mode_prints_one_row_per_method() {
    let tmp = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "fold", "--profile", "--preset", "smoke", "--length", "12", "--profile-steps", "2", "--warmup", "1", "--methods", "lora:2,lorta:2",
        "--structure", "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([tmp.path().display().to_string()])
    .collect();
    let o = bin().args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<serde_json::Value> = stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["method"], "lorta");
    assert!(rows[0]["ms_median"].as_f64().unwrap() > 0.0);
    assert!(tmp.path().join("profile.md").is_file());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
