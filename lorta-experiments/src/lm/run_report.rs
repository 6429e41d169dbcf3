//! Reports of a single LLM training run (`sft`, `dpo`): `summary.md`, `history.csv` and
//! `loss.png` (training loss and the main evaluation metric over steps).
use std::path::Path;

use anyhow::Result;

use crate::report::{csv_string, markdown_table, write_atomic};
use crate::runner::plot;
use crate::train::LogEntry;

pub fn write_run_report(out: &Path, title: &str, settings: &serde_json::Value, main_metric: &str, log: &[LogEntry]) -> Result<String> {
    let keys: Vec<String> = log.first().map(|e| e.metrics.keys().cloned().collect()).unwrap_or_default();
    let mut header = vec!["epoch".to_string(), "step".into(), "lr".into(), "train_loss".into()];
    header.extend(keys.iter().cloned());
    let rows: Vec<Vec<String>> = log
        .iter()
        .map(|e| {
            let mut r = vec![format!("{:.2}", e.epoch), e.step.to_string(), format!("{:.3e}", e.lr), format!("{:.4}", e.train_loss)];
            r.extend(keys.iter().map(|k| e.metrics.get(k).map(|v| format!("{v:.4}")).unwrap_or_default()));
            r
        })
        .collect();
    write_atomic(&out.join("history.csv"), csv_string(&header, &rows)?.as_bytes())?;
    let mut md = format!("# {title}\n\nSettings:\n\n```json\n{}\n```\n\n", serde_json::to_string_pretty(settings)?);
    md.push_str(&markdown_table(&header, &rows));
    let series = vec![
        ("train loss".to_string(), log.iter().map(|e| (e.step as f64, e.train_loss)).collect::<Vec<_>>()),
        (main_metric.to_string(), log.iter().filter_map(|e| e.metrics.get(main_metric).map(|v| (e.step as f64, *v))).collect()),
    ];
    match plot::line_series(&out.join("loss.png"), title, "optimizer step", "loss", &series) {
        Ok(_) => md.push_str("\n![training loss and evaluation metric](loss.png)\n"),
        Err(e) => md.push_str(&format!("\n(loss.png not written: {e})\n")),
    }
    write_atomic(&out.join("summary.md"), md.as_bytes())?;
    Ok(md)
}
