//! `forward`: runs a checkpoint (optionally with an adapter) on token ids or texts and writes
//! JSON with `last_hidden_state` and `logits` (see [`lorta_models::load::ForwardOutput`]).
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use lorta_models::hub::resolve_model_dir;
use lorta_models::load::{parse_dtype, AutoModel, LoadOptions};
use lorta_models::tokenizer::TextTokenizer;

use crate::backend::BackendKind;
use crate::report::write_atomic;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model folder (config.json + model.safetensors) or a name in the local HF cache.
    #[arg(long)]
    pub model: String,
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
    let dir = resolve_model_dir(&args.model)?;
    let dtype = parse_dtype(&args.dtype).with_context(|| format!("unknown --dtype `{}` (f32, f16, bf16)", args.dtype))?;
    let opts = LoadOptions::inference().with_adapter(args.adapter.clone()).with_dtype(dtype);
    let model = AutoModel::<B>::load(&dir, &opts, device)?;
    let (seqs, types) = match (args.ids.is_empty(), args.text.is_empty()) {
        (false, true) => (ids_from_args(&args.ids)?, None),
        (true, false) => {
            let tok = TextTokenizer::from_dir(&dir, None)?;
            let enc = args.text.iter().map(|t| tok.encode(t)).collect::<std::result::Result<Vec<_>, _>>()?;
            (enc.iter().map(|e| e.ids.clone()).collect(), Some(enc.into_iter().map(|e| e.type_ids).collect::<Vec<_>>()))
        }
        (false, false) => bail!("give either --ids or --text, not both"),
        (true, true) => bail!("nothing to run: give --ids 1,5,9 (repeatable) or --text \"...\""),
    };
    let out = model.forward_ids(&seqs, types.as_deref())?;
    let text = serde_json::to_string(&out.to_json())?;
    write_atomic(&args.out, text.as_bytes())?;
    eprintln!("wrote {} ({} sequence(s))", args.out.display(), seqs.len());
    Ok(())
}

fn ids_from_args(raw: &[String]) -> Result<Vec<Vec<u32>>> {
    parse_id_lists(raw)
}
