//! Forward + backward of an adapted Q/K/V/O layer stack at equal rank: LoRA vs LoRTA in rank
//! space vs LoRTA with ΔW rebuilt densely each step (the paper's implementation), plus every
//! other method. Shapes: RoBERTa-base width (d = 768, h = 12), `LORTA_BENCH_LAYERS` layers
//! (default 4), 256 tokens. Ratios are read off one run (same process, same machine state).
use burn::tensor::{Distribution, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lorta_bench::{forward_backward, LayerStack, Path};
use lorta_core::{AdapterConfig, MatrixKind, Method, ModelShape};

type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;

fn shape() -> ModelShape {
    let layers = std::env::var("LORTA_BENCH_LAYERS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    ModelShape::new(768, 12, layers, 3072)
}

fn bench_lora_vs_lorta(c: &mut Criterion) {
    let device = Default::default();
    let mut group = c.benchmark_group("layer_stack_fwd_bwd");
    group.sample_size(10);
    let x = Tensor::<B, 2>::random([256, 768], Distribution::Normal(0.0, 1.0), &device);
    for r in [8usize, 64] {
        let cases = [
            ("lora", AdapterConfig::default_for(Method::Lora, r, &MatrixKind::ATTENTION), Path::Native),
            ("lorta_rank_space", lorta_bench::lorta(r), Path::Native),
            ("lorta_dense_rebuild", lorta_bench::lorta(r), Path::LortaDenseRebuild),
        ];
        for (name, cfg, path) in cases {
            let stack = LayerStack::<B>::new(shape(), &cfg, path, &device);
            group.bench_with_input(BenchmarkId::new(name, r), &r, |b, _| {
                b.iter(|| forward_backward(&stack, x.clone()))
            });
        }
    }
    group.finish();
}

fn bench_all_methods(c: &mut Criterion) {
    let device = Default::default();
    let mut group = c.benchmark_group("method_fwd_bwd_r8");
    group.sample_size(10);
    let x = Tensor::<B, 2>::random([256, 768], Distribution::Normal(0.0, 1.0), &device);
    for method in Method::ALL {
        let targets = if method == Method::Ia3 { vec![MatrixKind::Key, MatrixKind::Value] } else { MatrixKind::ATTENTION.to_vec() };
        let cfg = match AdapterConfig::default_for(method, 8, &targets) {
            AdapterConfig::Ia3(mut c) => {
                c.targets = targets.clone();
                AdapterConfig::Ia3(c)
            }
            other => other,
        };
        let stack = LayerStack::<B>::new(shape(), &cfg, Path::Native, &device);
        group.bench_function(method.label(), |b| b.iter(|| forward_backward(&stack, x.clone())));
    }
    group.finish();
}

criterion_group!(benches, bench_lora_vs_lorta, bench_all_methods);
criterion_main!(benches);
