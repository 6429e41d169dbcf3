//! End-to-end runs of the LLM commands on the tiny fixture LLaMA (seconds each): `table3
//! --preset smoke` (reports, skip on rerun, interrupted + resumed cell = uninterrupted cell, one
//! message for missing data), `sft` (+ MT-bench export), `mtbench` with a saved adapter, `dpo`.
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lorta-experiments"))
}

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(p)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn run(args: &[String]) -> (bool, String) {
    let o = bin().args(args).env("RUST_BACKTRACE", "0").output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout))
}

fn run_ok(args: &[String]) -> String {
    let (ok, out) = run(args);
    assert!(ok, "{args:?} failed:\n{out}");
    out
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn table3(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = s(&["table3", "--preset", "smoke", "--tasks", "copa,squad", "--methods", "lora-r8,lorta-r4,prefix", "--quiet", "--out"]);
    v.push(out.display().to_string());
    v.extend(s(extra));
    v
}

#[test]
fn table3_smoke_reports_skips_and_resumes() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("t3");
    let text = run_ok(&table3(&out, &[]));
    assert!(text.contains("| LoRTA r4 |") && text.contains("COPA (Acc)") && text.contains("SQuAD (F1)"), "{text}");
    for f in ["table.md", "results.json", "results.csv", "settings.json", "plot.png", "loss_copa.png", "loss_squad.png", "table3.toml"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 3, "{csv}");
    let cell = out.join("runs/smoke/copa/lorta-r4/seed0");
    let m = json(&cell.join("metrics.json"));
    assert_eq!(m["eval_metric"], "eval_accuracy");
    assert_eq!(m["total_steps"], 2);
    // rerun: every cell is skipped, same table
    let (ok, again) = run(&table3(&out, &[]).into_iter().filter(|a| a != "--quiet").collect::<Vec<_>>());
    assert!(ok && again.matches("finished earlier, skipped").count() == 6, "{again}");
    // an interrupted cell, resumed, ends exactly where the uninterrupted one did
    let out2 = t.path().join("t3b");
    let one = |o: &Path, extra: &[&str]| {
        let mut v = s(&["table3", "--preset", "smoke", "--tasks", "copa", "--methods", "lorta-r4", "--quiet", "--out"]);
        v.push(o.display().to_string());
        v.extend(s(extra));
        v
    };
    run_ok(&one(&out2, &["--stop-after", "1"]));
    let c2 = out2.join("runs/smoke/copa/lorta-r4/seed0");
    assert!(c2.join("checkpoint.safetensors").is_file() && !c2.join("metrics.json").exists());
    run_ok(&one(&out2, &[]));
    let m2 = json(&c2.join("metrics.json"));
    // same steps, evaluations, metrics and losses, bit for bit
    let (h1, h2) = (m["history"].as_array().unwrap(), m2["history"].as_array().unwrap());
    assert_eq!(h1.len(), h2.len());
    for (a, b) in h1.iter().zip(h2) {
        assert_eq!(
            (&a["step"], &a["metrics"], &a["lr"], &a["train_loss"]),
            (&b["step"], &b["metrics"], &b["lr"], &b["train_loss"]),
            "resumed run differs from the uninterrupted one"
        );
    }
    assert_eq!(json(&c2.join("run.json"))["resumed"], true);
}

#[test]
fn table3_missing_data_is_one_message() {
    let t = tempfile::tempdir().unwrap();
    let mut args = table3(&t.path().join("o"), &["--data-dir"]);
    args.push(t.path().display().to_string());
    args[4] = "copa,record,squad,drop".into();
    let (ok, out) = run(&args);
    assert!(!ok);
    for f in ["COPA/train.jsonl", "ReCoRD/val.jsonl", "SQuAD/train-v1.1.json", "SQuAD/dev-v1.1.json", "DROP/drop_dataset_dev.json"] {
        assert!(out.contains(f), "{f} not named:\n{out}");
    }
    assert_eq!(out.matches("missing inputs").count(), 1, "{out}");
}

#[test]
fn sft_then_mtbench_answers() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("sft");
    let questions = t.path().join("q.jsonl");
    std::fs::write(
        &questions,
        "{\"question_id\": 81, \"category\": \"writing\", \"turns\": [\"Write a poem.\", \"Shorter.\"]}\n{\"question_id\": 101, \"category\": \"math\", \"turns\": [\"2+2?\", \"3+3?\"]}\n",
    )
    .unwrap();
    let model = fixture("llm/tiny-llama").display().to_string();
    let mut args = s(&["sft", "--data", &fixture("llm/alpaca.json").display().to_string(), "--eval-examples", "1", "--batch-size", "2", "--max-steps", "2"]);
    args.extend(s(&["--method", "lora", "--rank", "2", "--targets", "q,v", "--quiet", "--prompt-style", "chat", "--pack", "--max-len", "128", "--model", &model]));
    args.extend(s(&["--out", &out.display().to_string(), "--mtbench", &questions.display().to_string(), "--mtbench-max-new-tokens", "3"]));
    run_ok(&args);
    for f in ["metrics.json", "summary.md", "history.csv", "loss.png", "adapter/adapter_config.json", "mt_bench_answers.jsonl"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let m = json(&out.join("metrics.json"));
    assert!(m["last"]["metrics"]["eval_loss"].as_f64().unwrap().is_finite());
    let answers: Vec<serde_json::Value> = std::fs::read_to_string(out.join("mt_bench_answers.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[1]["question_id"], 101);
    assert_eq!(answers[0]["choices"][0]["turns"].as_array().unwrap().len(), 2);
    // the saved adapter loads back for a separate export; an existing file is resumed
    let file = t.path().join("answers.jsonl");
    let mut mt = s(&["mtbench", "--model", &model, "--questions", &questions.display().to_string(), "--max-new-tokens", "3", "--limit", "1", "--quiet"]);
    mt.extend(s(&["--adapter", &out.join("adapter").display().to_string(), "--out", &file.display().to_string()]));
    assert!(run_ok(&mt).contains("1 new answers"));
    assert!(run_ok(&mt).contains("0 new answers"));
}

#[test]
fn dpo_smoke_logs_rewards_and_refuses_full_finetuning() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("dpo");
    let model = fixture("llm/tiny-llama").display().to_string();
    let base = |method: &str, out: &Path| {
        let mut v = s(&["dpo", "--model", &model, "--data", &fixture("llm/orca_dpo.jsonl").display().to_string(), "--eval-pairs", "1"]);
        v.extend(s(&["--batch-size", "2", "--max-steps", "2", "--method", method, "--rank", "2", "--targets", "q,v", "--quiet", "--max-len", "96"]));
        v.extend(s(&["--out", &out.display().to_string()]));
        v
    };
    run_ok(&base("lora", &out));
    let m = json(&out.join("metrics.json"));
    for k in ["loss", "rewards_accuracy", "rewards_margin", "rewards_chosen", "rewards_rejected"] {
        assert!(m["last"]["metrics"][k].as_f64().is_some(), "{k} not logged: {m}");
    }
    assert!(out.join("adapter/adapter_model.safetensors").is_file());
    // the paper's DPO schedule unless told otherwise
    assert_eq!(m["settings"]["fit"]["lr_scheduler"], "cosine", "{}", m["settings"]["fit"]);
    let (ok, err) = run(&base("full", &t.path().join("full")));
    assert!(!ok && err.contains("reference policy"), "{err}");
}

/// With lengths padded to buckets (as on a GPU backend), the training losses keep an epoch's
/// partial batch at the full batch's rows; training and evaluation still run and log finite
/// values (SFT: 3 training examples in batches of 2 over two epochs; DPO: 2 pairs in a batch of 3;
/// table3's smoke preset).
#[test]
fn partial_batches_padded_to_full_rows_train() {
    let t = tempfile::tempdir().unwrap();
    let model = fixture("llm/tiny-llama").display().to_string();
    let sft_out = t.path().join("sft");
    let mut sft = s(&["sft", "--data", &fixture("llm/alpaca.json").display().to_string(), "--eval-examples", "1", "--batch-size", "2", "--max-steps", "4"]);
    sft.extend(s(&["--method", "lora", "--rank", "2", "--targets", "q,v", "--quiet", "--max-len", "128", "--pad-to-multiple", "16", "--model", &model]));
    sft.extend(s(&["--out", &sft_out.display().to_string()]));
    run_ok(&sft);
    let m = json(&sft_out.join("metrics.json"));
    assert!(m["last"]["metrics"]["eval_loss"].as_f64().unwrap().is_finite(), "{m}");
    assert!(m["last"]["train_loss"].as_f64().unwrap().is_finite(), "{m}");
    let dpo_out = t.path().join("dpo");
    let mut dpo = s(&["dpo", "--model", &model, "--data", &fixture("llm/orca_dpo.jsonl").display().to_string(), "--eval-pairs", "1"]);
    dpo.extend(s(&["--batch-size", "3", "--max-steps", "2", "--method", "lora", "--rank", "2", "--targets", "q,v", "--quiet", "--max-len", "96"]));
    dpo.extend(s(&["--pad-to-multiple", "16", "--out", &dpo_out.display().to_string()]));
    run_ok(&dpo);
    let m = json(&dpo_out.join("metrics.json"));
    assert!(m["last"]["metrics"]["loss"].as_f64().unwrap().is_finite(), "{m}");
    // table3's candidate classification (COPA: two sequences per example)
    let t3 = t.path().join("t3");
    run_ok(&table3(&t3, &["--pad-to-multiple", "16"]));
    assert!(t3.join("results.json").is_file());
}
