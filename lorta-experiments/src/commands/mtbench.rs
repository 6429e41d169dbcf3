//! `mtbench`: MT-bench answers (FastChat format, two turns through the chat template) of a
//! model, optionally with a trained adapter. Judging is external (FastChat `gen_judgment.py`).
use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::Backend;

use crate::backend::BackendKind;
use crate::instruct::mtbench::{export_answers, load_questions, MtBenchConfig};
use crate::lm::load::{parse_dtype_name, resolve};
use lorta_models::tuning::Tuning;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[arg(long)]
    pub model: String,
    /// Adapter folder (PEFT / LoRTA layout, e.g. OUT/adapter of `sft`).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// FastChat's question.jsonl.
    #[arg(long)]
    pub questions: PathBuf,
    /// Answers file (JSON lines; an existing file is resumed).
    #[arg(long)]
    pub out: PathBuf,
    /// model_id written into every answer (default: the model folder's name).
    #[arg(long)]
    pub model_id: Option<String>,
    #[arg(long, default_value_t = 1024)]
    pub max_new_tokens: usize,
    /// One temperature for all questions (default: FastChat's per-category temperatures).
    #[arg(long)]
    pub temperature: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Only the first N questions.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: Args) -> Result<()> {
    crate::with_backend!(a.backend, |B, device| run_on::<B>(&a, &device))
}

fn run_on<B: Backend>(a: &Args, device: &B::Device) -> Result<()> {
    let lm = resolve(&a.model)?;
    let tok = lm.tokenizer()?;
    let model = lm.load_with::<B>(&Tuning::frozen(), parse_dtype_name(&a.dtype)?, a.adapter.clone(), device)?;
    let questions = load_questions(&a.questions)?;
    let model_id = a.model_id.clone().unwrap_or_else(|| {
        let base = std::path::Path::new(&lm.describe()).file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
        match &a.adapter {
            Some(ad) => format!("{base}+{}", ad.display()),
            None => base,
        }
    });
    let cfg = MtBenchConfig { model_id, max_new_tokens: a.max_new_tokens, temperature: a.temperature, seed: a.seed, limit: a.limit };
    let n = export_answers(&model, &tok, &questions, &cfg, &a.out, a.quiet)?;
    println!("{n} new answers written to {} (FastChat format; judge them with FastChat's gen_judgment.py — judging is not done here)", a.out.display());
    Ok(())
}
