//! `generate`: continues a prompt with a LLaMA causal LM (optionally adapted) — an HF folder, a
//! GGUF file or a llama2.c checkpoint (`--tokenizer tok.bin`) — greedy or with temperature /
//! top-p sampling; `--chat "..."` wraps the text in the model's chat template. Prints the text
//! (when there is a tokenizer) and the ids.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use lorta_models::hub::resolve_model_dir;
use lorta_models::llama::GenerationConfig;
use lorta_models::lm_tokenizer::ChatMessage;
use lorta_models::load::{load_llama_any, parse_dtype, LoadOptions};

use crate::backend::BackendKind;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// HF folder (or a name in the local HF cache), a `.gguf` file, or a llama2.c `.bin`.
    #[arg(long)]
    pub model: String,
    /// Tokenizer file: a llama2.c tokenizer `.bin` (needed for llama2.c checkpoints), a
    /// tokenizer.json, or a GGUF; default: the model's own.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Prompt text (needs a tokenizer).
    #[arg(long, conflicts_with_all = ["prompt_ids", "chat"])]
    pub prompt: Option<String>,
    /// A user message, wrapped in the model's chat template (with the generation prompt).
    #[arg(long, conflicts_with = "prompt_ids")]
    pub chat: Option<String>,
    /// System message for `--chat` (default: the template's own, if any).
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    /// Prompt token ids, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub prompt_ids: Option<Vec<u32>>,
    #[arg(long, default_value_t = 20)]
    pub max_new_tokens: usize,
    /// Greedy decoding (the same as --temperature 0).
    #[arg(long, conflicts_with = "temperature")]
    pub greedy: bool,
    /// 0 = greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop tokens (default: the model's and tokenizer's EOS ids).
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

/// A model file as given, or a folder / cached hub name resolved.
pub fn model_path(model: &str) -> Result<PathBuf> {
    let p = Path::new(model);
    Ok(if p.is_file() { p.to_path_buf() } else { resolve_model_dir(model)? })
}

fn run_on<B: Backend>(args: &Args, device: &B::Device) -> Result<()> {
    let path = model_path(&args.model)?;
    let dtype = parse_dtype(&args.dtype).with_context(|| format!("unknown --dtype `{}` (f32, f16, bf16)", args.dtype))?;
    let opts = LoadOptions::inference().with_adapter(args.adapter.clone()).with_dtype(dtype);
    let lm = load_llama_any::<B>(&path, args.tokenizer.as_deref(), &opts, device)?;
    let prompt: Vec<u32> = match (&args.prompt, &args.chat, &args.prompt_ids) {
        (Some(text), None, None) => lm.tokenizer()?.encode(text, true)?,
        (None, Some(text), None) => {
            let mut messages = Vec::new();
            if let Some(s) = &args.system {
                messages.push(ChatMessage::new("system", s.clone()));
            }
            messages.push(ChatMessage::user(text.clone()));
            lm.tokenizer()?.encode_chat(&messages, true)?
        }
        (None, None, Some(ids)) => ids.clone(),
        _ => bail!("give one of --prompt \"...\", --chat \"...\" or --prompt-ids 1,2,3"),
    };
    let cfg = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        temperature: if args.greedy { 0.0 } else { args.temperature },
        top_p: args.top_p,
        seed: args.seed,
        stop_tokens: if args.stop.is_empty() { lm.stop_ids() } else { args.stop.clone() },
    };
    let ids = lm.model.generate(&prompt, &cfg)?;
    if let Some(t) = &lm.tokenizer {
        // a chat prints the answer only; a plain prompt its continuation with the prompt
        let shown = if args.chat.is_some() { &ids[prompt.len()..] } else { &ids[..] };
        println!("{}", t.decode(shown, true)?);
    }
    println!("ids: {}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
    Ok(())
}
