//! End-to-end tests of `train` (kill -9 + --resume reproduces an uninterrupted run) and
//! `table2` (smoke-sized, rerun skips finished cells), on lorta-models' tiny BERT fixture and
//! the GLUE fixture.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lorta-experiments"))
}

fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lorta-models/tests/fixtures/bert-tiny")
}

fn glue_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/glue")
}

fn train_args(out: &Path, epochs: usize) -> Vec<String> {
    let mut v: Vec<String> = [
        "train", "--task", "rte", "--method", "lorta", "--rank", "4", "--batch-size", "2", "--max-seq-len", "32",
        "--lr", "0.01", "--head-lr", "0.01", "--max-grad-norm", "1.0", "--seed", "7", "--save-every", "1", "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(["--epochs".into(), epochs.to_string()]);
    v.extend(["--model".into(), tiny_model().display().to_string()]);
    v.extend(["--glue-dir".into(), glue_fixture().display().to_string()]);
    v.extend(["--out".into(), out.display().to_string()]);
    v
}

fn run_ok(args: &[String]) -> String {
    let o = bin().args(args).output().unwrap();
    assert!(o.status.success(), "{:?} failed:\n{}\n{}", args, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout)
}

fn read(p: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn checkpoint_step(dir: &Path) -> Option<u64> {
    let bytes = std::fs::read(dir.join("checkpoint.safetensors")).ok()?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).ok()?;
    let state: serde_json::Value = serde_json::from_str(meta.metadata().as_ref()?.get("lorta.train_state")?).ok()?;
    state["global_step"].as_u64()
}

#[test]
fn sigkill_then_resume_matches_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let epochs = 150; // 3 steps per epoch: 450 steps, long enough to be killed mid-run
    let full = tmp.path().join("full");
    run_ok(&train_args(&full, epochs));
    let reference = read(full.join("metrics.json"));
    assert_eq!(reference["total_steps"], 450);

    let killed = tmp.path().join("killed");
    let mut child = bin().args(train_args(&killed, epochs)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    loop {
        if checkpoint_step(&killed).is_some_and(|s| s >= 5) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let at = checkpoint_step(&killed).unwrap();
    assert!(!killed.join("metrics.json").exists(), "the run finished before it could be killed (step {at})");
    assert!(at < 450, "killed at {at}");

    // Without --resume the folder is refused, naming the flag.
    let o = bin().args(train_args(&killed, epochs)).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"), "{}", String::from_utf8_lossy(&o.stderr));

    let mut args = train_args(&killed, epochs);
    args.push("--resume".into());
    run_ok(&args);
    assert_eq!(read(killed.join("metrics.json")), reference, "resumed run (killed at step {at}) differs");
    assert_eq!(
        std::fs::read_to_string(killed.join("log.jsonl")).unwrap(),
        std::fs::read_to_string(full.join("log.jsonl")).unwrap()
    );

    // A resume with different settings is refused and says which.
    let mut args: Vec<String> = train_args(&killed, epochs).into_iter().map(|a| if a == "0.01" { "0.5".into() } else { a }).collect();
    args.push("--resume".into());
    let o = bin().args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("different settings") && err.contains("lr"), "{err}");
}

#[test]
fn stop_and_resume_mid_epoch_is_exact() {
    // with dropout: the resumed run must draw the same masks
    let extra = ["--eval-every", "5", "--bucket", "2", "--dropout", "0.1"].map(String::from);
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    let mut a = train_args(&full, 4);
    a.extend(extra.clone());
    run_ok(&a);
    let part = tmp.path().join("part");
    let mut b = train_args(&part, 4);
    b.extend(extra);
    let mut b1 = b.clone();
    b1.extend(["--stop-after".into(), "4".into()]); // mid-epoch (3 steps per epoch)
    run_ok(&b1);
    assert_eq!(checkpoint_step(&part), Some(4));
    b.push("--resume".into());
    run_ok(&b);
    assert_eq!(read(part.join("metrics.json")), read(full.join("metrics.json")));
}

#[test]
fn missing_inputs_are_listed_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["train", "--task", "qnli", "--method", "lora", "--model"])
        .arg(tmp.path().join("no-model"))
        .arg("--glue-dir")
        .arg(tmp.path().join("no-glue"))
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("no-model") && err.contains("--model DIR"), "{err}");
    assert!(err.contains("QNLI/train.tsv") && err.contains("fetch glue --tasks qnli") && err.contains("--glue-dir"), "{err}");
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn table2_smoke_sized_and_rerun_skips() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t2");
    let args: Vec<String> = vec![
        "table2".into(),
        "--preset".into(),
        "smoke".into(),
        "--model".into(),
        tiny_model().display().to_string(),
        "--glue-dir".into(),
        glue_fixture().display().to_string(),
        "--tasks".into(),
        "rte,qnli".into(),
        "--skip-missing".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    let log = run_ok(&args);
    for f in ["table.md", "results.json", "results.csv", "plot.png", "settings.json", "table2.toml"] {
        assert!(out.join(f).is_file(), "{f} missing; log:\n{log}");
    }
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    for m in ["LoRA r8", "LoTR", "LoRTA r16", "LoRTA r4", "QNLI", "n/a"] {
        assert!(md.contains(m), "{m} not in\n{md}");
    }
    let settings = read(out.join("settings.json"));
    assert_eq!(settings["preset"], "smoke");
    assert_eq!(settings["cells"].as_array().unwrap().len(), 4);
    let png = std::fs::read(out.join("plot.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    // Rerun: every cell is skipped, results identical.
    let before = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let log = run_ok(&args);
    assert_eq!(log.matches("skipped").count(), 4, "{log}");
    assert_eq!(std::fs::read_to_string(out.join("results.csv")).unwrap(), before);
}
