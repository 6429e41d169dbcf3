//! Forward + backward of an adapted Q/K/V/O layer stack at equal rank: LoRA vs LoRTA in rank
//! space vs LoRTA with ΔW rebuilt densely each step (the paper's implementation), plus every
//! other method. Shapes: RoBERTa-base width (d = 768, h = 12), `LORTA_BENCH_LAYERS` layers
//! (default 4), 256 tokens. Ratios are read off one run (same process, same machine state).
//! ndarray always; `--features wgpu` / `--features cuda` add the same groups on those backends
//! (each iteration ends with a device sync, so GPU time is measured, not launch time).
use burn::tensor::{backend::AutodiffBackend, Distribution, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lorta_bench::{forward_backward, LayerStack, Path};
use lorta_core::{AdapterConfig, MatrixKind, Method, ModelShape};

fn shape() -> ModelShape {
    let layers = std::env::var("LORTA_BENCH_LAYERS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    ModelShape::new(768, 12, layers, 3072)
}

fn step<B: AutodiffBackend>(stack: &LayerStack<B>, x: &Tensor<B, 2>, device: &B::Device) {
    let grads = forward_backward(stack, x.clone());
    B::sync(device).expect("device sync");
    drop(grads);
}

fn bench_lora_vs_lorta<B: AutodiffBackend>(c: &mut Criterion, backend: &str, device: B::Device) {
    let mut group = c.benchmark_group(format!("layer_stack_fwd_bwd/{backend}"));
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
            group.bench_with_input(BenchmarkId::new(name, r), &r, |b, _| b.iter(|| step(&stack, &x, &device)));
        }
    }
    group.finish();
}

fn bench_all_methods<B: AutodiffBackend>(c: &mut Criterion, backend: &str, device: B::Device) {
    let mut group = c.benchmark_group(format!("method_fwd_bwd_r8/{backend}"));
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
        group.bench_function(method.label(), |b| b.iter(|| step(&stack, &x, &device)));
    }
    group.finish();
}

fn ndarray_benches(c: &mut Criterion) {
    type B = burn_autodiff::Autodiff<burn_ndarray::NdArray<f32>>;
    bench_lora_vs_lorta::<B>(c, "ndarray", Default::default());
    bench_all_methods::<B>(c, "ndarray", Default::default());
}

#[cfg(feature = "wgpu")]
fn wgpu_benches(c: &mut Criterion) {
    type B = burn_autodiff::Autodiff<burn_wgpu::Wgpu<f32, i32>>;
    bench_lora_vs_lorta::<B>(c, "wgpu", Default::default());
    bench_all_methods::<B>(c, "wgpu", Default::default());
}
#[cfg(not(feature = "wgpu"))]
fn wgpu_benches(_: &mut Criterion) {}

#[cfg(feature = "cuda")]
fn cuda_benches(c: &mut Criterion) {
    type B = burn_autodiff::Autodiff<burn_cuda::Cuda<f32, i32>>;
    bench_lora_vs_lorta::<B>(c, "cuda", Default::default());
    bench_all_methods::<B>(c, "cuda", Default::default());
}
#[cfg(not(feature = "cuda"))]
fn cuda_benches(_: &mut Criterion) {}

fn benches(c: &mut Criterion) {
    ndarray_benches(c);
    wgpu_benches(c);
    cuda_benches(c);
}

criterion_group!(all, benches);
criterion_main!(all);
