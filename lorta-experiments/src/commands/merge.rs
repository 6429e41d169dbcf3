//! `merge`: writes a checkpoint folder with an adapter merged into the base weights (same tensor
//! names and dtypes as the input); `forward` on it matches `forward --adapter` on the original.
use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::backend::Backend;
use lorta_models::hub::resolve_model_dir;

use crate::backend::BackendKind;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base model folder or cached hub name.
    #[arg(long)]
    pub model: String,
    /// Adapter folder (PEFT LoRA/IA3/VeRA, LoRTA, ours).
    #[arg(long)]
    pub adapter: PathBuf,
    /// Output folder (created).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "ndarray")]
    pub backend: BackendKind,
    #[command(flatten)]
    pub gpu: crate::backend::GpuArgs,
}

pub fn run(args: Args) -> Result<()> {
    args.gpu.prepare(args.backend, burn::tensor::DType::F32)?;
    crate::with_backend!(args.backend, |B, device| run_on::<B>(&args, &device))
}

fn run_on<B: Backend>(args: &Args, device: &B::Device) -> Result<()> {
    let dir = resolve_model_dir(&args.model)?;
    let s = lorta_models::merge::merge_adapter::<B>(&dir, &args.adapter, &args.out, device)?;
    eprintln!(
        "merged {} adapter into {} tensor(s), copied {} unchanged; wrote {}",
        s.method,
        s.merged_tensors.len(),
        s.copied_tensors,
        args.out.display()
    );
    Ok(())
}
