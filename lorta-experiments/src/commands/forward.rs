//! `forward`: runs a checkpoint (optionally with an adapter) on token ids or texts and writes
//! JSON with `last_hidden_state` and `logits` (see [`lorta_models::load::ForwardOutput`]).
//! ESM-2 texts use ESM's alphabet (`<cls> … <eos>`); ESMFold takes one-letter amino-acid
//! sequences (`--text MKTAYIAK`, `--recycles N`) and writes `s_s`, `s_z`, `distogram_logits`,
//! `positions`.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use lorta_models::load::{load_llama_any, load_lm_tokenizer, parse_dtype, AutoModel, LoadOptions};
use lorta_models::load::Architecture;

use crate::backend::BackendKind;
use crate::report::write_atomic;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model folder (config.json + model.safetensors) or a name in the local HF cache; or a
    /// LLaMA `.gguf` file, or a llama2.c `.bin` (texts need `--tokenizer`).
    #[arg(long)]
    pub model: String,
    /// Tokenizer file for `--text` with a `.gguf`/llama2.c model (llama2.c tokenizer `.bin`,
    /// tokenizer.json, GGUF); default: the model's own.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Adapter folder: PEFT LoRA/IA3/VeRA, the paper's LoRTA layout, or ours.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Token ids of one sequence, comma separated; repeat for a batch (right-padded, masked).
    #[arg(long)]
    pub ids: Vec<String>,
    /// A text (repeatable), tokenised with the folder's tokenizer, instead of --ids.
    #[arg(long)]
    pub text: Vec<String>,
    /// Output JSON file.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "ndarray")]
    pub backend: BackendKind,
    #[command(flatten)]
    pub gpu: crate::backend::GpuArgs,
    /// Compute dtype: f32, f16 or bf16 (weights of any stored dtype are converted).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// ESMFold: extra trunk passes (HF's `num_recycles`; 0 = one pass).
    #[arg(long, default_value_t = 0)]
    pub recycles: usize,
}

/// `--ids 1,5,9 --ids 1,7` → `[[1,5,9],[1,7]]` (one sequence per occurrence).
pub fn parse_id_lists(raw: &[String]) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    for r in raw {
        let seq: Vec<u32> = r
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse::<u32>().with_context(|| format!("bad token id `{s}` in --ids {r}")))
            .collect::<Result<_>>()?;
        if seq.is_empty() {
            bail!("--ids `{r}` holds no token ids");
        }
        out.push(seq);
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<()> {
    args.gpu.prepare(args.backend, parse_dtype(&args.dtype).unwrap_or(burn::tensor::DType::F32))?;
    crate::with_backend!(args.backend, |B, device| run_on::<B>(&args, &device))
}

fn run_on<B: Backend>(args: &Args, device: &B::Device) -> Result<()> {
    let path = crate::commands::generate::model_path(&args.model)?;
    let dtype = parse_dtype(&args.dtype).with_context(|| format!("unknown --dtype `{}` (f32, f16, bf16)", args.dtype))?;
    let opts = LoadOptions::inference().with_adapter(args.adapter.clone()).with_dtype(dtype);
    let (model, lm_tok) = if path.is_file() {
        // GGUF / llama2.c: a LLaMA causal LM with its (or the given) tokenizer
        let lm = load_llama_any::<B>(&path, args.tokenizer.as_deref(), &opts, device)?;
        (AutoModel::CausalLm(lm.model), lm.tokenizer)
    } else {
        let tok = match &args.tokenizer {
            Some(t) => Some(load_lm_tokenizer(t)?),
            None => None,
        };
        (AutoModel::<B>::load(&path, &opts, device)?, tok)
    };
    let (seqs, types) = match (args.ids.is_empty(), args.text.is_empty()) {
        (false, true) => (ids_from_args(&args.ids)?, None),
        (true, false) => match &lm_tok {
            Some(tok) => (args.text.iter().map(|t| tok.encode(t, true)).collect::<std::result::Result<Vec<_>, _>>()?, None),
            None if path.is_file() => bail!("{}: no tokenizer for --text (a llama2.c checkpoint needs --tokenizer FILE)", path.display()),
            None => model.encode_texts(&path, &args.text)?,
        },
        (false, false) => bail!("give either --ids or --text, not both"),
        (true, true) => bail!("nothing to run: give --ids 1,5,9 (repeatable) or --text \"...\""),
    };
    let out = if model.architecture() == Architecture::ProteinFolding {
        model.fold(&seqs, args.recycles)?
    } else {
        model.forward_ids(&seqs, types.as_deref())?
    };
    let text = serde_json::to_string(&out.to_json())?;
    write_atomic(&args.out, text.as_bytes())?;
    eprintln!("wrote {} ({} sequence(s))", args.out.display(), seqs.len());
    Ok(())
}

fn ids_from_args(raw: &[String]) -> Result<Vec<Vec<u32>>> {
    parse_id_lists(raw)
}
