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

/// ESMFold's trunk as the paper runs it (12 blocks, sequence state 1024, pair state 128, head
/// width 32): the sequence-attention site family (d = 1024, h = 32, L = 12) and the
/// triangle-attention family (d = 128, h = 4, 2L = 24: attention around the starting and the
/// ending node of every block), each with its own adapter (one LoRTA tensor per family).
pub fn evoformer_shapes() -> (ModelShape, ModelShape) {
    (ModelShape::new(1024, 32, 12, 4096), ModelShape::new(128, 4, 24, 512))
}

/// Ranks of the Evoformer table: LoRA r1/r4/r8 (the paper's protein runs) and LoRTA ranks.
pub const EVOFORMER_LORA_RANKS: [usize; 3] = [1, 4, 8];
pub const EVOFORMER_LORTA_RANKS: [usize; 6] = [1, 4, 8, 16, 32, 64];

/// One Evoformer row: (method, M, rank, sequence-family params, pair-family params).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EvoformerRow {
    pub method: String,
    pub matrices: usize,
    pub rank: usize,
    pub sequence_params: usize,
    pub pair_params: usize,
    pub params: usize,
}

/// LoRA and LoRTA on the 12-block trunk, M = 4 (Q, K, V, O) and M = 5 (+ the attention gate).
pub fn evoformer_rows() -> Result<Vec<EvoformerRow>> {
    let (seq, pair) = evoformer_shapes();
    let mut rows = Vec::new();
    for kinds in [MatrixKind::ATTENTION.to_vec(), MatrixKind::GATED_ATTENTION.to_vec()] {
        for (method, ranks) in [(Method::Lora, &EVOFORMER_LORA_RANKS[..]), (Method::Lorta, &EVOFORMER_LORTA_RANKS[..])] {
            for &r in ranks {
                let config = AdapterConfig::default_for(method, r, &kinds);
                let (s, p) = (count_with_ndarray(&config, &seq)?, count_with_ndarray(&config, &pair)?);
                rows.push(EvoformerRow { method: method.label().into(), matrices: kinds.len(), rank: r, sequence_params: s, pair_params: p, params: s + p });
            }
        }
    }
    Ok(rows)
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
    let evo = evoformer_rows()?;
    let header_evo: Vec<String> =
        ["method", "matrices", "rank", "sequence attention", "triangle attention", "params"].map(String::from).to_vec();
    let body_evo: Vec<Vec<String>> = evo
        .iter()
        .map(|r| {
            vec![
                r.method.clone(),
                r.matrices.to_string(),
                r.rank.to_string(),
                thousands(r.sequence_params),
                thousands(r.pair_params),
                thousands(r.params),
            ]
        })
        .collect();
    let md = format!(
        "## Table 4: LLaMA-2-7B, M = 2 (Q, V)\n\n{}\n## All methods (M = adapted matrices per layer; IA3 adapts K, V and the FFN input)\n\n{}\n\
         ## Evoformer: ESMFold trunk, 12 blocks (sequence state 1024, 32 heads; pair state 128, 4 heads per triangle attention)\n\n\
         Site families: sequence attention (d = 1024, L = 12) and triangle attentions (d = 128, 2 per block, 24 in all); \
         M = 4: Q, K, V, O; M = 5: + the attention gate. One LoRTA tensor per family.\n\n{}",
        markdown_table(&header4, &body4),
        markdown_table(&header, &body),
        markdown_table(&header_evo, &body_evo)
    );
    let mut all: Vec<ParamRow> = t4.iter().map(|(r, _)| r.clone()).collect();
    all.extend(rows.iter().cloned());
    all.extend(evo.iter().map(|r| ParamRow {
        method: r.method.clone(),
        model: "esmfold-trunk-12".into(),
        matrices: r.matrices,
        rank: Some(r.rank),
        params: r.params,
    }));
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

    /// Closed forms: LoRA 2·d·r per matrix; LoRTA (d + d/h + h + L + M)·r per family.
    #[test]
    fn evoformer_table_matches_the_closed_forms() {
        let rows = evoformer_rows().unwrap();
        assert_eq!(rows.len(), 2 * (EVOFORMER_LORA_RANKS.len() + EVOFORMER_LORTA_RANKS.len()));
        for r in &rows {
            let m = r.matrices;
            let (seq, pair) = match r.method.as_str() {
                "LoRA" => (12 * m * 2 * 1024 * r.rank, 24 * m * 2 * 128 * r.rank),
                "LoRTA" => ((1024 + 32 + 32 + 12 + m) * r.rank, (128 + 32 + 4 + 24 + m) * r.rank),
                other => panic!("unexpected method {other}"),
            };
            assert_eq!((r.sequence_params, r.pair_params), (seq, pair), "{r:?}");
            assert_eq!(r.params, seq + pair);
        }
        // the headline comparison: LoRTA r8 is ~120× smaller than LoRA r8 with the gate
        let find = |method: &str, m: usize, rank: usize| rows.iter().find(|r| r.method == method && r.matrices == m && r.rank == rank).unwrap().params;
        assert_eq!(find("LoRA", 5, 8), 1_228_800);
        assert_eq!(find("LoRTA", 5, 8), 10_384);
    }

    #[test]
    fn table4_matches_the_paper_exactly() {
        for (row, paper) in table4().unwrap() {
            assert_eq!(row.params, paper, "{} r={:?}", row.method, row.rank);
        }
    }
}
