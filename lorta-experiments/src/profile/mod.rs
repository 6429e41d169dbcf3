//! The paper's profiling table (seed Table 5): per method and rank, peak device memory, FLOPs /
//! MACs per step (analytic, see [`flops`]) and ms per training step (forward + backward + AdamW
//! on the adapter parameters only) of a LLaMA model, batch 1 by default.
pub mod flops;
pub mod rss;

use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{backend::AutodiffBackend, backend::Backend, DType, Distribution, Int, Tensor};
use lorta_core::{AdapterConfig, MatrixKind, Method};
use lorta_models::llama::{LlamaConfig, LlamaForCausalLM};
use lorta_models::tuning::{HeadTuning, Tuning};
use serde::Serialize;

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileRow {
    pub method: String,
    pub rank: usize,
    pub ms_per_step: f64,
    pub ms_min: f64,
    pub ms_max: f64,
    pub steps: usize,
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
}

/// Device memory (in use, reserved), where the backend can tell.
pub type MemoryProbe<'a> = &'a dyn Fn() -> Option<(u64, u64)>;

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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite timings"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Runs every (method, rank) of `spec` on backend `B` (wrapped in autodiff).
pub fn run<B: Backend>(spec: &ProfileSpec, device: &B::Device, memory: MemoryProbe<'_>, mut report: impl FnMut(&ProfileRow)) -> Result<Vec<ProfileRow>> {
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
    memory: MemoryProbe<'_>,
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
    let mut model = LlamaForCausalLM::<B>::random(&spec.config, &tuning, spec.dtype, device)?;
    B::sync(device).map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))?;
    eprintln!("[profile] {} r={rank}: model built in {:.1}s", method.label(), t_build.elapsed().as_secs_f64());
    let trainable = model.trainable_params();
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init::<B, LlamaForCausalLM<B>>();
    let (b, t) = (spec.batch, spec.seq_len);
    let ids = Tensor::<B, 2, Int>::random([b, t + 1], Distribution::Uniform(0.0, spec.config.vocab_size as f64), device);
    let inputs = ids.clone().narrow(1, 0, t);
    let targets = ids.narrow(1, 1, t).reshape([b * t]);
    let loss_fn = CrossEntropyLossConfig::new().init(device);

    let mut step = |model: LlamaForCausalLM<B>, probe: bool| -> (LlamaForCausalLM<B>, Option<(u64, u64)>) {
        let logits = model.forward(inputs.clone(), None);
        let v = logits.dims()[2];
        let logits = logits.reshape([b * t, v]).cast(DType::F32);
        let loss = loss_fn.forward(logits, targets.clone());
        let mut peak: Option<(u64, u64)> = None;
        let sample = |peak: &mut Option<(u64, u64)>| {
            if probe {
                let _ = B::sync(device);
                if let Some((u, r)) = memory() {
                    let p = peak.get_or_insert((0, 0));
                    *p = (p.0.max(u), p.1.max(r));
                }
            }
        };
        sample(&mut peak);
        let grads = loss.backward();
        sample(&mut peak);
        let grads = GradientsParams::from_grads(grads, &model);
        let model = optim.step(1e-4, model, grads);
        sample(&mut peak);
        (model, peak)
    };

    for i in 0..spec.warmup {
        let t0 = Instant::now();
        model = step(model, false).0;
        let _ = B::sync(device);
        // the first steps compile and autotune kernels (CUBECL_AUTOTUNE_LEVEL=minimal shortens it)
        eprintln!("[profile] {} r={rank}: warm-up step {} took {:.1}s", method.label(), i + 1, t0.elapsed().as_secs_f64());
    }
    B::sync(device).map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))?;
    let mut times = Vec::with_capacity(spec.steps);
    for _ in 0..spec.steps {
        let t0 = Instant::now();
        model = step(model, false).0;
        B::sync(device).map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    // one extra, instrumented step for memory (synchronising inside it would perturb timings)
    let rss = memory().is_none().then(rss::RssPeak::start).flatten();
    let (model, peak) = step(model, true);
    let rss = rss.and_then(|r| r.finish());
    let memory_measure = match (peak, rss) {
        (Some(_), _) => "device allocator".to_string(),
        (None, Some((_, true))) => "process peak RSS growth".to_string(),
        (None, Some((_, false))) => "process peak RSS growth (upper bound)".to_string(),
        (None, None) => "n/a".to_string(),
    };
    drop(model.valid());
    let cost = flops::llama_step(&spec.config.shape(), spec.config.vocab_size, b, t, Some(&adapter));
    let (lo, hi) = times.iter().fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    Ok(ProfileRow {
        method: method.label().to_string(),
        rank,
        ms_per_step: median(&mut times),
        ms_min: lo,
        ms_max: hi,
        steps: spec.steps,
        peak_memory_bytes: peak.map(|p| p.0).or(rss.map(|r| r.0)),
        memory_measure,
        peak_reserved_bytes: peak.map(|p| p.1),
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
    })
}
