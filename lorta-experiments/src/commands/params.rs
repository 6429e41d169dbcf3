//! `params`: parameter counts of every method on the paper's shapes, by instantiating the
//! adapters (no weights needed). The first table is the seed's Table 4 with the paper's numbers.
use std::path::PathBuf;

use anyhow::{bail, Result};
use lorta_core::params::{count_trainable, ParamRow};
use lorta_core::{AdapterConfig, MatrixKind, Method, ModelShape};

use crate::report::{csv_string, markdown_table, thousands, write_atomic, write_json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ranks for the all-methods table.
    #[arg(long, value_delimiter = ',', default_values_t = vec![4usize, 8, 16, 64])]
    pub ranks: Vec<usize>,
    /// Print JSON rows `{method, model, matrices, rank, params}` instead of markdown.
    #[arg(long)]
    pub json: bool,
    /// Also write params.json, params.csv and params.md here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Table 4 of the seed (LLaMA-2-7B, M = 2): (method, rank, paper's count).
pub const TABLE4: [(Method, usize, usize); 10] = [
    (Method::Lora, 4, 2_097_152),
    (Method::Lora, 64, 33_554_432),
    (Method::FactTt, 4, 33_792),
    (Method::FactTt, 64, 786_432),
    (Method::FactTk, 4, 33_088),
    (Method::FactTk, 64, 790_528),
    (Method::Lotr, 4, 33_792),
    (Method::Lotr, 64, 786_432),
    (Method::Lorta, 4, 17_160),
    (Method::Lorta, 64, 274_560),
];

fn models() -> Vec<(&'static str, ModelShape)> {
    vec![("roberta-base", ModelShape::roberta_base()), ("llama-2-7b", ModelShape::llama2_7b())]
}

fn targets(m: usize) -> Vec<MatrixKind> {
    match m {
        2 => vec![MatrixKind::Query, MatrixKind::Value],
        _ => MatrixKind::ATTENTION.to_vec(),
    }
}

fn count(method: Method, model: &str, shape: &ModelShape, m: usize, rank: usize) -> Result<ParamRow> {
    let config = AdapterConfig::default_for(method, rank, &targets(m));
    let params = count_with_ndarray(&config, shape)?;
    Ok(ParamRow {
        method: method.label().to_string(),
        model: model.to_string(),
        matrices: config.targets().len(),
        rank: config.rank(),
        params,
    })
}

#[cfg(feature = "ndarray")]
fn count_with_ndarray(config: &AdapterConfig, shape: &ModelShape) -> Result<usize> {
    Ok(count_trainable::<crate::backend::NdArray>(config, shape, &Default::default())?)
}
#[cfg(not(feature = "ndarray"))]
fn count_with_ndarray(_config: &AdapterConfig, _shape: &ModelShape) -> Result<usize> {
    bail!("`params` instantiates adapters on the CPU and needs the `ndarray` feature")
}

/// Table 4 rows (method, rank, ours, paper).
pub fn table4() -> Result<Vec<(ParamRow, usize)>> {
    let shape = ModelShape::llama2_7b();
    TABLE4.iter().map(|&(method, r, paper)| Ok((count(method, "llama-2-7b", &shape, 2, r)?, paper))).collect()
}

/// Every method on every model, M ∈ {2, 4}, at the given ranks (IA3 once per model: rankless).
pub fn all_rows(ranks: &[usize]) -> Result<Vec<ParamRow>> {
    let mut rows = Vec::new();
    for (name, shape) in models() {
        for method in Method::ALL {
            if method == Method::Ia3 {
                rows.push(count(method, name, &shape, 0, 1)?);
                continue;
            }
            for m in [2, 4] {
                for &r in ranks {
                    rows.push(count(method, name, &shape, m, r)?);
                }
            }
        }
    }
    Ok(rows)
}

pub fn run(args: Args) -> Result<()> {
    if args.ranks.contains(&0) {
        bail!("--ranks: ranks must be at least 1");
    }
    let t4 = table4()?;
    let mismatches: Vec<String> = t4
        .iter()
        .filter(|(row, paper)| row.params != *paper)
        .map(|(row, paper)| format!("{} r={}: {} vs paper {}", row.method, row.rank.unwrap_or(0), row.params, paper))
        .collect();
    let rows = all_rows(&args.ranks)?;

    let header4: Vec<String> = ["method", "rank", "params (ours)", "paper (Table 4)", "match"].map(String::from).to_vec();
    let body4: Vec<Vec<String>> = t4
        .iter()
        .map(|(r, p)| {
            vec![
                r.method.clone(),
                r.rank.map(|x| x.to_string()).unwrap_or_default(),
                thousands(r.params),
                thousands(*p),
                if r.params == *p { "yes".into() } else { "NO".into() },
            ]
        })
        .collect();
    let header: Vec<String> = ["method", "model", "matrices", "rank", "params"].map(String::from).to_vec();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.method.clone(),
                r.model.clone(),
                r.matrices.to_string(),
                r.rank.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
                thousands(r.params),
            ]
        })
        .collect();
    let md = format!(
        "## Table 4: LLaMA-2-7B, M = 2 (Q, V)\n\n{}\n## All methods (M = adapted matrices per layer; IA3 adapts K, V and the FFN input)\n\n{}",
        markdown_table(&header4, &body4),
        markdown_table(&header, &body)
    );
    let mut all: Vec<ParamRow> = t4.iter().map(|(r, _)| r.clone()).collect();
    all.extend(rows.iter().cloned());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        println!("{md}");
    }
    if let Some(dir) = &args.out {
        write_json(&dir.join("params.json"), &all)?;
        let csv_rows: Vec<Vec<String>> = all
            .iter()
            .map(|r| vec![r.method.clone(), r.model.clone(), r.matrices.to_string(), r.rank.map(|x| x.to_string()).unwrap_or_default(), r.params.to_string()])
            .collect();
        write_atomic(&dir.join("params.csv"), csv_string(&header, &csv_rows)?.as_bytes())?;
        write_atomic(&dir.join("params.md"), md.as_bytes())?;
        eprintln!("wrote {}/params.{{json,csv,md}}", dir.display());
    }
    if !mismatches.is_empty() {
        bail!("parameter counts differ from the paper's Table 4: {}", mismatches.join("; "));
    }
    Ok(())
}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use super::*;

    #[test]
    fn table4_matches_the_paper_exactly() {
        for (row, paper) in table4().unwrap() {
            assert_eq!(row.params, paper, "{} r={:?}", row.method, row.rank);
        }
    }
}
