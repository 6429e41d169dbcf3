//! Loaders for the official file formats and the fixed-seed samples of the MeZO setting.
//!
//! Expected layout under `--data-dir` (the SuperGLUE / SQuAD / DROP release file names):
//! `COPA/{train,val}.jsonl`, `ReCoRD/{train,val}.jsonl` (SuperGLUE JSONL), `SQuAD/train-v1.1.json`
//! and `SQuAD/dev-v1.1.json` (SQuAD v1.1 JSON), `DROP/drop_dataset_train.json` and
//! `DROP/drop_dataset_dev.json` (DROP JSON). The official validation file is the evaluation pool;
//! train and dev come from the train file.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::prompts::{
    answer_continuation, copa_candidate, copa_prompt, drop_prompt, record_prompt, squad_prompt, CopaQuestion, LmExample,
    RecordTemplate, Target,
};
use super::LlmTask;
use crate::glue::epoch_order;

/// (train file, evaluation file) relative to the data folder.
pub fn split_files(task: LlmTask) -> (&'static str, &'static str) {
    match task {
        LlmTask::Copa => ("COPA/train.jsonl", "COPA/val.jsonl"),
        LlmTask::Record => ("ReCoRD/train.jsonl", "ReCoRD/val.jsonl"),
        LlmTask::Squad => ("SQuAD/train-v1.1.json", "SQuAD/dev-v1.1.json"),
        LlmTask::Drop => ("DROP/drop_dataset_train.json", "DROP/drop_dataset_dev.json"),
    }
}

/// Where to get a task's files (for the "missing data" message).
pub fn source_hint(task: LlmTask) -> &'static str {
    match task {
        LlmTask::Copa => "SuperGLUE COPA (https://super.gluebenchmark.com/tasks, COPA.zip: train.jsonl, val.jsonl)",
        LlmTask::Record => "SuperGLUE ReCoRD (https://super.gluebenchmark.com/tasks, ReCoRD.zip: train.jsonl, val.jsonl)",
        LlmTask::Squad => "SQuAD v1.1 (https://rajpurkar.github.io/SQuAD-explorer/: train-v1.1.json, dev-v1.1.json)",
        LlmTask::Drop => "DROP (https://allenai.org/data/drop, drop_dataset.zip: drop_dataset_train.json, drop_dataset_dev.json)",
    }
}

/// Every file of `tasks` missing under `dir`, with where to get it.
pub fn missing_files(dir: &Path, tasks: &[LlmTask]) -> Vec<(LlmTask, PathBuf)> {
    let mut out = Vec::new();
    for &t in tasks {
        let (a, b) = split_files(t);
        for f in [a, b] {
            let p = dir.join(f);
            if !p.is_file() {
                out.push((t, p));
            }
        }
    }
    out
}

/// One message listing every missing file and where it comes from.
pub fn missing_message(dir: &Path, missing: &[(LlmTask, PathBuf)]) -> String {
    let mut s = format!("missing dataset files under {} (--data-dir):\n", dir.display());
    for (t, p) in missing {
        s.push_str(&format!("- {} ({}): from {}\n", p.display(), t.title(), source_hint(*t)));
    }
    s
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn str_field<'a>(v: &'a Value, key: &str, at: &dyn Fn() -> String) -> Result<&'a str> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| anyhow!("{}: missing or non-string field `{key}`", at()))
}

fn id_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// JSON lines (blank lines skipped), each parsed with its 1-based line number for errors.
fn json_lines(path: &Path) -> Result<Vec<(usize, Value)>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| anyhow!("{} line {}: not valid JSON: {e}", path.display(), i + 1))?;
        out.push((i + 1, v));
    }
    Ok(out)
}

/// SuperGLUE COPA JSONL (premise, choice1, choice2, question = cause|effect, label 0|1, idx).
/// `need_labels`: unlabelled rows (the test file) are an error.
pub fn load_copa(path: &Path, need_labels: bool) -> Result<Vec<LmExample>> {
    let mut out = Vec::new();
    for (line, v) in json_lines(path)? {
        let at = || format!("{} line {line}", path.display());
        let premise = str_field(&v, "premise", &at)?;
        let c1 = str_field(&v, "choice1", &at)?;
        let c2 = str_field(&v, "choice2", &at)?;
        let q = match str_field(&v, "question", &at)? {
            "cause" => CopaQuestion::Cause,
            "effect" => CopaQuestion::Effect,
            other => bail!("{}: `question` is `{other}` (expected cause or effect)", at()),
        };
        let label = match v.get("label").and_then(Value::as_u64) {
            Some(l @ (0 | 1)) => l as usize,
            Some(l) => bail!("{}: `label` is {l} (expected 0 or 1)", at()),
            None if need_labels => bail!("{}: no `label` (an unlabelled test file?)", at()),
            None => 0,
        };
        out.push(LmExample {
            id: id_string(v.get("idx")),
            prompt: copa_prompt(premise, q),
            target: Target::Choice { candidates: vec![copa_candidate(c1), copa_candidate(c2)], correct: vec![label] },
        });
    }
    Ok(out)
}

/// SuperGLUE ReCoRD JSONL: `{"idx", "passage": {"text", "entities": [{"start", "end"}]},
/// "qas": [{"idx", "query", "answers": [{"start", "end", "text"}]}]}`, one example per query.
/// Entity spans are inclusive character offsets; candidates are the distinct entity strings,
/// sorted (as the HF `super_glue/record` export lists them). Queries whose answers are not
/// among the entities are an error.
pub fn load_record(path: &Path, template: RecordTemplate) -> Result<Vec<LmExample>> {
    let mut out = Vec::new();
    for (line, v) in json_lines(path)? {
        let at = || format!("{} line {line}", path.display());
        let passage = v.get("passage").ok_or_else(|| anyhow!("{}: no `passage`", at()))?;
        let text = str_field(passage, "text", &at)?;
        let chars: Vec<char> = text.chars().collect();
        let span = |e: &Value, what: &str| -> Result<String> {
            let s = e.get("start").and_then(Value::as_u64).ok_or_else(|| anyhow!("{}: {what} without `start`", at()))? as usize;
            let t = e.get("end").and_then(Value::as_u64).ok_or_else(|| anyhow!("{}: {what} without `end`", at()))? as usize;
            if s > t || t >= chars.len() {
                bail!("{}: {what} span {s}..={t} outside the passage ({} characters)", at(), chars.len());
            }
            Ok(chars[s..=t].iter().collect())
        };
        let mut entities = Vec::new();
        for e in v["passage"].get("entities").and_then(Value::as_array).ok_or_else(|| anyhow!("{}: no `passage.entities`", at()))? {
            entities.push(span(e, "entity")?);
        }
        entities.sort();
        entities.dedup();
        let qas = v.get("qas").and_then(Value::as_array).ok_or_else(|| anyhow!("{}: no `qas`", at()))?;
        for (qi, qa) in qas.iter().enumerate() {
            let at_q = || format!("{} qas[{qi}]", at());
            let query = str_field(qa, "query", &at_q)?;
            let mut answers: Vec<String> = Vec::new();
            for a in qa.get("answers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
                let t = match a.get("text").and_then(Value::as_str) {
                    Some(t) => t.to_string(),
                    None => span(a, "answer")?,
                };
                if !answers.contains(&t) {
                    answers.push(t);
                }
            }
            if answers.is_empty() {
                bail!("{}: no answers (an unlabelled test file?)", at_q());
            }
            let correct: Vec<usize> = answers.iter().filter_map(|a| entities.iter().position(|e| e == a)).collect();
            if correct.is_empty() {
                bail!("{}: none of the answers {:?} is among the passage entities", at_q(), answers);
            }
            let (prompt, candidates) = record_prompt(template, text, query, &entities);
            out.push(LmExample { id: id_string(qa.get("idx")), prompt, target: Target::Choice { candidates, correct } });
        }
    }
    Ok(out)
}

/// SQuAD v1.1 JSON: `{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
/// "answers": [{"text", "answer_start"}]}]}]}]}`; gold answers in file order (duplicates kept,
/// as the official script takes the max over them).
pub fn load_squad(path: &Path) -> Result<Vec<LmExample>> {
    let v: Value = serde_json::from_str(&read_text(path)?).map_err(|e| anyhow!("{}: not valid JSON: {e}", path.display()))?;
    let data = v.get("data").and_then(Value::as_array).ok_or_else(|| anyhow!("{}: no top-level `data` list (not SQuAD v1.1 JSON)", path.display()))?;
    let mut out = Vec::new();
    for (ai, article) in data.iter().enumerate() {
        let at_a = || format!("{} data[{ai}]", path.display());
        let title = article.get("title").and_then(Value::as_str).unwrap_or("");
        let paras = article.get("paragraphs").and_then(Value::as_array).ok_or_else(|| anyhow!("{}: no `paragraphs`", at_a()))?;
        for (pi, p) in paras.iter().enumerate() {
            let at_p = || format!("{}.paragraphs[{pi}]", at_a());
            let context = str_field(p, "context", &at_p)?;
            for (qi, qa) in p.get("qas").and_then(Value::as_array).ok_or_else(|| anyhow!("{}: no `qas`", at_p()))?.iter().enumerate() {
                let at_q = || format!("{}.qas[{qi}]", at_p());
                let question = str_field(qa, "question", &at_q)?;
                let mut golds = Vec::new();
                for a in qa.get("answers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
                    golds.push(vec![str_field(a, "text", &at_q)?.to_string()]);
                }
                if golds.is_empty() {
                    bail!("{}: no answers (SQuAD v2 unanswerable questions are not part of v1.1)", at_q());
                }
                let train_continuation = answer_continuation(&golds[0][0]);
                out.push(LmExample {
                    id: id_string(qa.get("id")),
                    prompt: squad_prompt(title, context, question),
                    target: Target::Generate { golds, train_continuation },
                });
            }
        }
    }
    Ok(out)
}

/// The strings of one DROP answer object, as the official `answer_json_to_strings`: the number
/// if non-empty, else the spans, else the date as "day month year". `None` when all are empty.
pub fn drop_answer_strings(a: &Value) -> Option<Vec<String>> {
    let number = match a.get("number") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if !number.is_empty() {
        return Some(vec![number]);
    }
    let spans: Vec<String> = a.get("spans").and_then(Value::as_array).map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
    if !spans.is_empty() {
        return Some(spans);
    }
    let d = a.get("date")?;
    let f = |k: &str| id_string(d.get(k));
    let (day, month, year) = (f("day"), f("month"), f("year"));
    if day.is_empty() && month.is_empty() && year.is_empty() {
        return None;
    }
    Some(vec![format!("{day} {month} {year}")])
}

/// DROP JSON: `{passage_id: {"passage", "qa_pairs": [{"question", "query_id", "answer",
/// "validated_answers"}]}}`. Golds = the answer then the validated answers (as the official
/// evaluator); questions without any non-empty answer are an error.
pub fn load_drop(path: &Path) -> Result<Vec<LmExample>> {
    let v: Value = serde_json::from_str(&read_text(path)?).map_err(|e| anyhow!("{}: not valid JSON: {e}", path.display()))?;
    let obj = v.as_object().ok_or_else(|| anyhow!("{}: expected an object keyed by passage id (DROP JSON)", path.display()))?;
    let mut out = Vec::new();
    for (pid, p) in obj {
        let at_p = || format!("{} passage `{pid}`", path.display());
        let passage = str_field(p, "passage", &at_p)?;
        for (qi, qa) in p.get("qa_pairs").and_then(Value::as_array).ok_or_else(|| anyhow!("{}: no `qa_pairs`", at_p()))?.iter().enumerate() {
            let at_q = || format!("{}.qa_pairs[{qi}]", at_p());
            let question = str_field(qa, "question", &at_q)?;
            let mut golds = Vec::new();
            if let Some(a) = qa.get("answer").and_then(drop_answer_strings) {
                golds.push(a);
            }
            for a in qa.get("validated_answers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(s) = drop_answer_strings(a) {
                    golds.push(s);
                }
            }
            if golds.is_empty() {
                bail!("{}: no non-empty answer", at_q());
            }
            let train_continuation = answer_continuation(&golds[0][0]);
            out.push(LmExample {
                id: id_string(qa.get("query_id")),
                prompt: drop_prompt(passage, question),
                target: Target::Generate { golds, train_continuation },
            });
        }
    }
    Ok(out)
}

/// All examples of one file of `task`.
pub fn load_file(task: LlmTask, path: &Path, record_template: RecordTemplate) -> Result<Vec<LmExample>> {
    let ex = match task {
        LlmTask::Copa => load_copa(path, true)?,
        LlmTask::Record => load_record(path, record_template)?,
        LlmTask::Squad => load_squad(path)?,
        LlmTask::Drop => load_drop(path)?,
    };
    if ex.is_empty() {
        bail!("{}: no examples", path.display());
    }
    Ok(ex)
}

/// Sample sizes (MeZO/LoReTTA: 1000 / 500 / 1000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSizes {
    pub train: usize,
    pub dev: usize,
    pub eval: usize,
}

impl Default for SplitSizes {
    fn default() -> Self {
        SplitSizes { train: 1000, dev: 500, eval: 1000 }
    }
}

/// The three samples of one task and where they came from.
#[derive(Clone, Debug)]
pub struct TaskSplits {
    pub task: LlmTask,
    pub train: Vec<LmExample>,
    /// Model selection.
    pub dev: Vec<LmExample>,
    /// Reported.
    pub eval: Vec<LmExample>,
    pub train_file: PathBuf,
    pub eval_file: PathBuf,
    /// How the samples were drawn, in words (for settings.json).
    pub note: String,
}

/// Fixed-seed samples. Train and dev are disjoint draws from the train file (a permutation of
/// it, first `train` then `dev` examples); eval is drawn from the official validation file.
/// COPA keeps MeZO's arrangement: its whole 400-example train file for training and the 100
/// official validation examples as both dev and eval (capped by the sizes for smoke runs).
pub fn sample_splits(task: LlmTask, train_pool: Vec<LmExample>, eval_pool: Vec<LmExample>, sizes: SplitSizes, seed: u64) -> (Vec<LmExample>, Vec<LmExample>, Vec<LmExample>, String) {
    // distinct streams for the two files (the `epoch` argument of the shared shuffler)
    const TRAIN_STREAM: u64 = 0x7261_696e;
    const EVAL_STREAM: u64 = 0x6576_616c;
    if task == LlmTask::Copa {
        let train: Vec<LmExample> = train_pool.into_iter().take(sizes.train).collect();
        let n_val = eval_pool.len();
        let dev: Vec<LmExample> = eval_pool.iter().take(sizes.dev).cloned().collect();
        let eval: Vec<LmExample> = eval_pool.into_iter().take(sizes.eval).collect();
        let note = format!("COPA as MeZO: {} train examples (train.jsonl in file order), dev = eval = the first {}/{} of val.jsonl", train.len(), eval.len(), n_val);
        return (train, dev, eval, note);
    }
    let order = epoch_order(train_pool.len(), seed, TRAIN_STREAM);
    let n_train = sizes.train.min(order.len());
    let n_dev = sizes.dev.min(order.len() - n_train);
    let mut slots: Vec<Option<LmExample>> = train_pool.into_iter().map(Some).collect();
    let train: Vec<LmExample> = order[..n_train].iter().map(|&i| slots[i].take().expect("permutation")).collect();
    let dev: Vec<LmExample> = order[n_train..n_train + n_dev].iter().map(|&i| slots[i].take().expect("permutation")).collect();
    let eval_order = epoch_order(eval_pool.len(), seed, EVAL_STREAM);
    let n_eval = sizes.eval.min(eval_order.len());
    let mut eslots: Vec<Option<LmExample>> = eval_pool.into_iter().map(Some).collect();
    let eval: Vec<LmExample> = eval_order[..n_eval].iter().map(|&i| eslots[i].take().expect("permutation")).collect();
    let note = format!(
        "seed {seed}: {n_train} train + {n_dev} dev drawn without overlap from {} train-file examples, {n_eval} eval drawn from {} validation-file examples",
        slots.len(),
        eslots.len()
    );
    (train, dev, eval, note)
}

/// Loads and samples one task from `data_dir`.
pub fn load_task_splits(data_dir: &Path, task: LlmTask, sizes: SplitSizes, seed: u64, record_template: RecordTemplate) -> Result<TaskSplits> {
    let missing = missing_files(data_dir, &[task]);
    if !missing.is_empty() {
        bail!("{}", missing_message(data_dir, &missing));
    }
    let (tf, ef) = split_files(task);
    let (train_file, eval_file) = (data_dir.join(tf), data_dir.join(ef));
    let train_pool = load_file(task, &train_file, record_template)?;
    let eval_pool = load_file(task, &eval_file, record_template)?;
    let (train, dev, eval, note) = sample_splits(task, train_pool, eval_pool, sizes, seed);
    if train.is_empty() || dev.is_empty() || eval.is_empty() {
        bail!("{}: the sample sizes leave an empty split (train {}, dev {}, eval {})", task.title(), train.len(), dev.len(), eval.len());
    }
    Ok(TaskSplits { task, train, dev, eval, train_file, eval_file, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/superglue")
    }

    fn shared() -> Option<PathBuf> {
        let base = std::env::var_os("LORTA_SHARED_DATA").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
        let d = base.join("superglue");
        d.join("COPA/train.jsonl").is_file().then_some(d)
    }

    #[test]
    fn real_copa() {
        let Some(dir) = shared() else {
            eprintln!("skipped: ../shared/data/superglue/COPA not found");
            return;
        };
        let train = load_copa(&dir.join("COPA/train.jsonl"), true).unwrap();
        let val = load_copa(&dir.join("COPA/val.jsonl"), true).unwrap();
        assert_eq!((train.len(), val.len()), (400, 100));
        // val idx 0: "The man turned on the faucet." effect; label 1
        assert_eq!(val[0].prompt, "The man turned on the faucet so ");
        assert_eq!(
            val[0].target,
            Target::Choice { candidates: vec!["the toilet filled with water.".into(), "water flowed from the spout.".into()], correct: vec![1] }
        );
        assert_eq!(train[0].prompt, "My body cast a shadow over the grass because ");
        let e = load_copa(&dir.join("COPA/test.jsonl"), true).unwrap_err().to_string();
        assert!(e.contains("test.jsonl line 1") && e.contains("label"), "{e}");
        let s = load_task_splits(&dir, LlmTask::Copa, SplitSizes::default(), 0, RecordTemplate::Gpt3).unwrap();
        assert_eq!((s.train.len(), s.dev.len(), s.eval.len()), (400, 100, 100));
    }

    #[test]
    fn fixture_files_in_official_formats() {
        let d = fixtures();
        let copa = load_copa(&d.join("COPA/train.jsonl"), true).unwrap();
        assert_eq!(copa.len(), 3);
        let rec = load_record(&d.join("ReCoRD/train.jsonl"), RecordTemplate::Gpt3).unwrap();
        assert_eq!(rec.len(), 3, "one example per query");
        let Target::Choice { candidates, correct } = &rec[0].target else { panic!() };
        assert_eq!(candidates.len(), 3, "distinct entities: {candidates:?}");
        assert_eq!(candidates[correct[0]], " Obama visited Berlin on Tuesday.");
        assert!(rec[0].prompt.starts_with("Barack Obama met Angela Merkel in Berlin."), "{}", rec[0].prompt);
        assert!(rec[0].prompt.ends_with("- Talks focused on trade\n-"), "{}", rec[0].prompt);
        let squad = load_squad(&d.join("SQuAD/train-v1.1.json")).unwrap();
        assert_eq!(squad.len(), 3);
        assert_eq!(squad[0].id, "q1");
        assert_eq!(squad[0].prompt, "Title: Super_Bowl_50\nContext: Super Bowl 50 was won by the Denver Broncos in 2016.\nQuestion: Who won Super Bowl 50?\nAnswer:");
        assert_eq!(squad[0].train_continuation(), " Denver Broncos\n");
        let Target::Generate { golds, .. } = &squad[0].target else { panic!() };
        assert_eq!(golds.len(), 3);
        let drop = load_drop(&d.join("DROP/drop_dataset_train.json")).unwrap();
        assert_eq!(drop.len(), 3);
        // passages come in key order (serde_json maps are sorted): look questions up by id
        let by_id = |id: &str| drop.iter().find(|e| e.id == id).unwrap().target.clone();
        let Target::Generate { golds, train_continuation } = by_id("a1") else { panic!() };
        assert_eq!(golds[0], vec!["3".to_string()]);
        assert_eq!(golds[1], vec!["three".to_string()]);
        assert_eq!(train_continuation, " 3\n");
        let Target::Generate { golds, .. } = by_id("a2") else { panic!() };
        assert_eq!(golds[0], vec!["Smith".to_string(), "Jones".to_string()]);
        let Target::Generate { golds, .. } = by_id("b1") else { panic!() };
        assert_eq!(golds[0], vec!["5 May 1990".to_string()]);
    }

    #[test]
    fn bad_files_name_the_place() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.jsonl");
        std::fs::write(&p, "{\"premise\":\"a\",\"choice1\":\"b\",\"choice2\":\"c\",\"question\":\"why\",\"label\":0}\n").unwrap();
        let e = load_copa(&p, true).unwrap_err().to_string();
        assert!(e.contains("x.jsonl line 1") && e.contains("why"), "{e}");
        std::fs::write(&p, "{\"premise\":\"a\"\n").unwrap();
        assert!(load_copa(&p, true).unwrap_err().to_string().contains("line 1"));
        std::fs::write(&p, "{\"data\": [{\"title\": \"t\", \"paragraphs\": [{\"context\": \"c\", \"qas\": [{\"id\": \"1\", \"question\": \"q\", \"answers\": []}]}]}]}").unwrap();
        let e = load_squad(&p).unwrap_err().to_string();
        assert!(e.contains("data[0].paragraphs[0].qas[0]") && e.contains("no answers"), "{e}");
        std::fs::write(&p, "{\"idx\":0,\"passage\":{\"text\":\"abc\",\"entities\":[{\"start\":0,\"end\":9}]},\"qas\":[]}\n").unwrap();
        let e = load_record(&p, RecordTemplate::Gpt3).unwrap_err().to_string();
        assert!(e.contains("outside the passage"), "{e}");
        // one message for everything missing
        let miss = missing_files(t.path(), &LlmTask::ALL);
        assert_eq!(miss.len(), 8);
        let m = missing_message(t.path(), &miss);
        assert!(m.contains("ReCoRD/val.jsonl") && m.contains("drop_dataset_dev.json") && m.contains("dev-v1.1.json") && m.contains("rajpurkar"), "{m}");
    }

    #[test]
    fn sampling_is_seeded_and_disjoint() {
        let pool = |n: usize| -> Vec<LmExample> {
            (0..n).map(|i| LmExample { id: i.to_string(), prompt: String::new(), target: Target::Generate { golds: vec![vec!["a".into()]], train_continuation: String::new() } }).collect()
        };
        let sizes = SplitSizes { train: 10, dev: 5, eval: 7 };
        let (tr, dv, ev, _) = sample_splits(LlmTask::Squad, pool(30), pool(20), sizes, 3);
        assert_eq!((tr.len(), dv.len(), ev.len()), (10, 5, 7));
        let ids: std::collections::BTreeSet<String> = tr.iter().chain(&dv).map(|e| e.id.clone()).collect();
        assert_eq!(ids.len(), 15, "train and dev overlap");
        let (tr2, _, ev2, _) = sample_splits(LlmTask::Squad, pool(30), pool(20), sizes, 3);
        assert_eq!(tr, tr2);
        assert_eq!(ev, ev2);
        let (tr3, _, _, _) = sample_splits(LlmTask::Squad, pool(30), pool(20), sizes, 4);
        assert_ne!(tr, tr3, "another seed draws another sample");
        // small files: everything is used, dev gets what is left
        let (tr, dv, ev, _) = sample_splits(LlmTask::Drop, pool(12), pool(3), sizes, 0);
        assert_eq!((tr.len(), dv.len(), ev.len()), (10, 2, 3));
    }
}
