//! `generate`: continues a prompt with a LLaMA checkpoint (optionally adapted), greedy or with
//! temperature / top-p sampling; prints the text (when the folder has a tokenizer) and the ids.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use lorta_models::hub::{resolve_model_dir, ModelDir};
use lorta_models::llama::{GenerationConfig, LlamaForCausalLM};
use lorta_models::load::{parse_dtype, LoadOptions};
use lorta_models::tokenizer::TextTokenizer;

use crate::backend::BackendKind;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Prompt text (needs the folder's tokenizer).
    #[arg(long, conflicts_with = "prompt_ids")]
    pub prompt: Option<String>,
    /// Prompt token ids, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub prompt_ids: Option<Vec<u32>>,
    #[arg(long, default_value_t = 20)]
    pub max_new_tokens: usize,
    /// 0 = greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop tokens (default: the config's eos_token_id).
    #[arg(long, value_delimiter = ',')]
    pub stop: Vec<u32>,
    #[arg(long, value_enum, default_value = "ndarray")]
    pub backend: BackendKind,
    #[command(flatten)]
    pub gpu: crate::backend::GpuArgs,
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

pub fn run(args: Args) -> Result<()> {
    args.gpu.prepare(args.backend, parse_dtype(&args.dtype).unwrap_or(burn::tensor::DType::F32))?;
    crate::with_backend!(args.backend, |B, device| run_on::<B>(&args, &device))
}

fn run_on<B: Backend>(args: &Args, device: &B::Device) -> Result<()> {
    let dir = resolve_model_dir(&args.model)?;
    let dtype = parse_dtype(&args.dtype).with_context(|| format!("unknown --dtype `{}` (f32, f16, bf16)", args.dtype))?;
    let md = ModelDir::new(&dir)?;
    let tok = if md.has_tokenizer() { Some(TextTokenizer::from_dir(&dir, None)?) } else { None };
    let prompt: Vec<u32> = match (&args.prompt, &args.prompt_ids) {
        (Some(text), None) => match &tok {
            Some(t) => t.encode(text)?.ids,
            None => bail!("{} has no tokenizer.json; pass --prompt-ids instead of --prompt", dir.display()),
        },
        (None, Some(ids)) => ids.clone(),
        _ => bail!("give --prompt \"...\" or --prompt-ids 1,2,3"),
    };
    let opts = LoadOptions::inference().with_adapter(args.adapter.clone()).with_dtype(dtype);
    let model = LlamaForCausalLM::<B>::load(&dir, &opts, device)?;
    let cfg = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        stop_tokens: args.stop.clone(),
    };
    let ids = model.generate(&prompt, &cfg)?;
    if let Some(t) = &tok {
        println!("{}", t.decode(&ids, true)?);
    }
    println!("ids: {}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
    Ok(())
}
