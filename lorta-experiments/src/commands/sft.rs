//! `sft`: instruction tuning on Alpaca-format data (response-only loss), optionally followed by
//! the MT-bench answer export with the trained model.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use burn::module::AutodiffModule;

use super::llm_common::{write_llm_results, LlmRunArgs, MethodArgs, OptimArgs};
use crate::instruct::data::{encode_example, load_alpaca, pack, PromptStyle};
use crate::instruct::mtbench::{export_answers, load_questions, MtBenchConfig};
use crate::instruct::task::SftTask;
use crate::lm::load::resolve;
use crate::train::fit;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// HF model folder or cache name.
    #[arg(long)]
    pub model: String,
    /// Alpaca-format JSON / JSONL (instruction, input, output).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = PromptStyle::Alpaca)]
    pub prompt_style: PromptStyle,
    #[arg(long, default_value_t = 512)]
    pub max_len: usize,
    /// Pack several examples into each max-len row.
    #[arg(long)]
    pub pack: bool,
    /// Examples held out for evaluation (the last ones of the file).
    #[arg(long, default_value_t = 200)]
    pub eval_examples: usize,
    #[arg(long)]
    pub max_train_samples: Option<usize>,
    #[command(flatten)]
    pub method: MethodArgs,
    #[command(flatten)]
    pub optim: OptimArgs,
    #[command(flatten)]
    pub run: LlmRunArgs,
    /// After training, write MT-bench answers for this question.jsonl into OUT/mt_bench_answers.jsonl.
    #[arg(long)]
    pub mtbench: Option<PathBuf>,
    #[arg(long, default_value_t = 1024)]
    pub mtbench_max_new_tokens: usize,
    #[arg(long)]
    pub mtbench_limit: Option<usize>,
}

pub fn run(a: Args) -> Result<()> {
    crate::with_backend!(a.run.backend, |B, device| run_on::<burn_autodiff::Autodiff<B>>(&a, &device))
}

fn run_on<B: AutodiffBackend>(a: &Args, device: &B::Device) -> Result<()> {
    let lm = resolve(&a.model)?;
    let tok = lm.tokenizer()?;
    let dtype = a.run.prepare()?;
    let mut examples = load_alpaca(&a.data)?;
    if examples.len() < 2 {
        bail!("{}: need at least 2 examples (train + eval)", a.data.display());
    }
    let n_eval = a.eval_examples.clamp(1, examples.len() - 1);
    let eval_ex = examples.split_off(examples.len() - n_eval);
    if let Some(m) = a.max_train_samples {
        examples.truncate(m);
    }
    let enc = |xs: &[crate::instruct::data::Instruction]| -> Result<Vec<crate::lm::Sequence>> {
        xs.iter().enumerate().map(|(i, e)| encode_example(e, a.prompt_style, &tok, a.max_len).with_context(|| format!("{} example {i}", a.data.display()))).collect()
    };
    let mut train = enc(&examples)?;
    if a.pack {
        train = pack(&train, a.max_len);
    }
    let eval = enc(&eval_ex)?;
    let batch_size = a.optim.batch_size.unwrap_or(16);
    let task = SftTask { train, eval, pad_id: tok.pad_id, batch_size, eval_batch_size: a.optim.eval_batch_size, pad_to_multiple: a.run.pad_to_multiple() };
    let method = a.method.method();
    let tuning = method.tuning(a.optim.seed)?;
    let model = lm.load::<B>(&tuning, dtype, device)?;
    let trainable = model.trainable_params();
    // the paper's lit-gpt recipe: lr 3e-4, weight decay 0.01, 10 % warm-up
    let steps = a.optim.max_steps.unwrap_or(a.optim.epochs * task.train.len().div_ceil(batch_size));
    let mut fit_cfg = a.optim.fit(&method.name, a.optim.lr.unwrap_or(3e-4), a.optim.weight_decay.unwrap_or(0.01), steps);
    if a.optim.warmup_ratio.is_none() && a.optim.warmup_steps.is_none() {
        fit_cfg.warmup_ratio = 0.1;
    }
    let settings = serde_json::json!({
        "command": "sft", "model": lm.describe(), "data": a.data, "prompt_style": a.prompt_style, "max_len": a.max_len, "pack": a.pack,
        "train_rows": task.train.len(), "train_examples": examples.len(), "eval_examples": eval_ex.len(), "batch_size": batch_size,
        "method": method, "dtype": a.run.compute.dtype, "fit": fit_cfg, "trainable_params": trainable,
    });
    let opts = a.run.options(&a.optim);
    let outcome = fit::<B, _>(&task, model, &fit_cfg, &settings, &a.out, &opts, device)?;
    if !outcome.finished {
        return Ok(());
    }
    write_llm_results(&outcome, &settings, &a.out, ("SFT (response-only loss)", "eval_loss"), &lm.describe(), a.run.quiet)?;
    if let Some(q) = &a.mtbench {
        let questions = load_questions(q)?;
        let cfg = MtBenchConfig { model_id: format!("lorta-sft-{}", crate::tables::config::slug(&method.name)), max_new_tokens: a.mtbench_max_new_tokens, temperature: None, seed: a.optim.seed, limit: a.mtbench_limit };
        let file = a.out.join("mt_bench_answers.jsonl");
        let n = export_answers(&outcome.model.valid(), &tok, &questions, &cfg, &file, a.run.quiet)?;
        println!("MT-bench: {n} new answers in {} (judge them with FastChat's gen_judgment.py; judging is not done here)", file.display());
    }
    Ok(())
}
