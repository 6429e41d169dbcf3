//! The paper's profiling table (seed Table 5): per method and rank, peak device memory, FLOPs /
//! MACs per step (analytic, see [`flops`]) and ms per training step (forward + backward + AdamW
//! on the adapter parameters only) of a LLaMA model, batch 1 by default.
pub mod cpu;
pub mod flops;
pub mod rss;
pub mod step_optim;
pub mod timing;

use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::{backend::AutodiffBackend, backend::Backend, DType, Distribution, Int, Tensor};
use lorta_core::{AdapterConfig, MatrixKind, Method};
use lorta_models::llama::{LlamaConfig, LlamaForCausalLM};
use lorta_models::tuning::{HeadTuning, Tuning};
use serde::Serialize;

use step_optim::StepOptimizer;
use timing::{time_steps, MemoryProbe};

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileRow {
    pub method: String,
    pub rank: usize,
    pub ms_per_step: f64,
    pub ms_min: f64,
    pub ms_max: f64,
    pub steps: usize,
    /// CPU milliseconds per timed step of the thread that runs the step (builds the graph,
    /// registers and dispatches the kernels). Close to `ms_per_step` does not by itself mean
    /// host-bound: the thread also spins while it waits for room in the queue to the device
    /// (LLaMA-2-7B on an H200: equal to the step time with the GPU 96 % busy). `None` off Linux.
    pub main_thread_cpu_ms_per_step: Option<f64>,
    /// The same for all threads of the process (the backends' device threads included).
    pub process_cpu_ms_per_step: Option<f64>,
    /// Peak bytes over one instrumented step: in use on the device (GPU backends), or the growth
    /// of the process's peak resident set size (ndarray); `memory_measure` says which.
    pub peak_memory_bytes: Option<u64>,
    /// What `peak_memory_bytes` measures: `device allocator`, `process peak RSS growth`, or
    /// `process peak RSS growth (upper bound)` when the kernel's peak counter could not be reset.
    pub memory_measure: String,
    /// Peak bytes reserved by the allocator pool.
    pub peak_reserved_bytes: Option<u64>,
    pub flops: u64,
    pub macs: u64,
    pub forward_flops: u64,
    pub forward_macs: u64,
    pub trainable_params: usize,
    pub model: String,
    pub seq_len: usize,
    pub batch: usize,
    pub dtype: String,
    pub backend: String,
    /// `--matmul-kernel` in effect (`auto`, `default`, a kernel list; `-` on ndarray).
    pub matmul_kernel: String,
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct ProfileSpec {
    pub model_name: String,
    pub config: LlamaConfig,
    pub methods: Vec<Method>,
    pub ranks: Vec<usize>,
    pub seq_len: usize,
    pub batch: usize,
    pub dtype: DType,
    pub steps: usize,
    pub warmup: usize,
    pub backend: String,
    pub matmul_kernel: String,
}

pub use timing::MemoryReader;

/// Built-in configs: `llama-2-7b` and `llama-tiny` (llama2.c's stories260K width, 2 layers, MHA).
pub fn named_config(name: &str) -> Option<LlamaConfig> {
    match name {
        "llama-2-7b" | "llama2-7b" => Some(LlamaConfig::llama2_7b()),
        "llama-tiny" => {
            let mut c = LlamaConfig::llama2_7b();
            c.vocab_size = 512;
            c.hidden_size = 64;
            c.intermediate_size = 172;
            c.num_hidden_layers = 2;
            c.num_attention_heads = 8;
            c.num_key_value_heads = 8;
            c.head_dim = 8;
            c.max_position_embeddings = 512;
            Some(c)
        }
        _ => None,
    }
}

/// Runs every (method, rank) of `spec` on backend `B` (wrapped in autodiff).
pub fn run<B: Backend>(spec: &ProfileSpec, device: &B::Device, memory: MemoryReader<'_>, mut report: impl FnMut(&ProfileRow)) -> Result<Vec<ProfileRow>> {
    let mut rows = Vec::new();
    for &method in &spec.methods {
        for &rank in &spec.ranks {
            let row = profile_one::<burn_autodiff::Autodiff<B>>(spec, method, rank, device, memory)
                .with_context(|| format!("profiling {} r={rank}", method.label()))?;
            report(&row);
            rows.push(row);
        }
    }
    Ok(rows)
}

fn profile_one<B: AutodiffBackend>(
    spec: &ProfileSpec,
    method: Method,
    rank: usize,
    device: &B::Device,
    memory: MemoryReader<'_>,
) -> Result<ProfileRow> {
    if rank == 0 {
        bail!("rank must be at least 1");
    }
    let adapter = AdapterConfig::default_for(method, rank, &MatrixKind::ATTENTION);
    let adapter = match adapter {
        // the paper's LoRA / LoRTA recipes use α = 2r (scaling 2); it does not change the cost
        AdapterConfig::Lora(c) => AdapterConfig::Lora(c.with_alpha(2.0 * rank as f64)),
        AdapterConfig::Lorta(c) => AdapterConfig::Lorta(c.with_alpha(2.0 * rank as f64)),
        other => other,
    };
    // f32 adapters on a half-precision base, as PEFT's default (`autocast_adapter_dtype`)
    let trainable_dtype = (spec.dtype != DType::F32 && spec.dtype != DType::F64).then_some(DType::F32);
    let tuning = Tuning::adapter(adapter.clone()).with_head(HeadTuning::Frozen).with_trainable_dtype(trainable_dtype);
    let t_build = Instant::now();
    let model = LlamaForCausalLM::<B>::random(&spec.config, &tuning, spec.dtype, device)?;
    B::sync(device).map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))?;
    eprintln!("[profile] {} r={rank}: model built in {:.1}s", method.label(), t_build.elapsed().as_secs_f64());
    let trainable = model.trainable_params();
    let mut optim = StepOptimizer::<B, LlamaForCausalLM<B>>::new(false);
    let (b, t) = (spec.batch, spec.seq_len);
    let ids = Tensor::<B, 2, Int>::random([b, t + 1], Distribution::Uniform(0.0, spec.config.vocab_size as f64), device);
    let inputs = ids.clone().narrow(1, 0, t);
    let targets = ids.narrow(1, 1, t).reshape([b * t]);

    let step = |model: LlamaForCausalLM<B>, probe: &mut MemoryProbe<'_, B>| {
        let logits = model.forward(inputs.clone(), None);
        let v = logits.dims()[2];
        let logits = logits.reshape([b * t, v]).cast(DType::F32);
        let loss = lorta_core::log_softmax::cross_entropy(logits, targets.clone());
        probe.sample();
        let grads = loss.backward();
        probe.sample();
        let grads = GradientsParams::from_grads(grads, &model);
        let model = optim.step(model, grads);
        probe.sample();
        model
    };
    // the first steps compile and autotune kernels (CUBECL_AUTOTUNE_LEVEL=minimal shortens it)
    let label = format!("[profile] {} r={rank}", method.label());
    let (model, times) = time_steps::<B, _>(device, memory, model, (spec.warmup, spec.steps), &label, step)?;
    drop(model.valid());
    let cost = flops::llama_step(&spec.config.shape(), spec.config.vocab_size, b, t, Some(&adapter));
    let (lo, hi) = times.min_max_ms();
    Ok(ProfileRow {
        method: method.label().to_string(),
        rank,
        ms_per_step: times.median_ms(),
        ms_min: lo,
        ms_max: hi,
        steps: spec.steps,
        main_thread_cpu_ms_per_step: times.cpu_ms.0,
        process_cpu_ms_per_step: times.cpu_ms.1,
        peak_memory_bytes: times.peak_bytes(),
        memory_measure: times.memory_measure().to_string(),
        peak_reserved_bytes: times.device_peak.map(|p| p.1),
        flops: cost.step_flops,
        macs: cost.step_macs,
        forward_flops: cost.forward_flops,
        forward_macs: cost.forward_macs,
        trainable_params: trainable,
        model: spec.model_name.clone(),
        seq_len: t,
        batch: b,
        dtype: format!("{:?}", spec.dtype),
        backend: spec.backend.clone(),
        matmul_kernel: spec.matmul_kernel.clone(),
    })
}
