//! Parameter counting for every method on RoBERTa-base and LLaMA-2-7B shapes (instantiation on
//! the CPU backend, as the `params` command does).
use criterion::{criterion_group, criterion_main, Criterion};
use lorta_core::params::count_trainable;
use lorta_core::{AdapterConfig, MatrixKind, Method, ModelShape};

type B = burn_ndarray::NdArray<f32>;

fn bench_params(c: &mut Criterion) {
    let mut group = c.benchmark_group("param_count");
    group.sample_size(10);
    for (model, shape) in [("roberta-base", ModelShape::roberta_base()), ("llama-2-7b", ModelShape::llama2_7b())] {
        for method in Method::ALL {
            let cfg = AdapterConfig::default_for(method, 8, &[MatrixKind::Query, MatrixKind::Value]);
            group.bench_function(format!("{}/{}", method.label(), model), |b| {
                b.iter(|| count_trainable::<B>(&cfg, &shape, &Default::default()).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_params);
criterion_main!(benches);
