//! Products routed through a chosen CubeCL kernel (`cube_matmul`) give the values and gradients
//! of burn's own product, on wgpu (lavapipe in CI, where only the unit kernel runs; the same
//! plumbing — fusion custom operation, autodiff backward with broadcast batch dims, transposed
//! operands — carries the tensor-core kernels on CUDA).
//! `cargo test -p lorta-core --features test-wgpu --test wgpu_cube_matmul`
#![cfg(feature = "test-wgpu")]

mod common;
use common::{host, max_relative_error};

use burn::tensor::{backend::Backend, DType, FloatDType, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_wgpu::WgpuRuntime;
use lorta_core::cube_matmul::{self, Kernel, KernelChoice};
use lorta_core::shapes::{product, unregister_matmul_kernel};

type Wg = burn_wgpu::Wgpu<f32, i32>;
type Ad = Autodiff<Wg>;

fn tensor<B: Backend, const D: usize>(dims: [usize; D], salt: usize) -> Tensor<B, D> {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|i| (((i + salt) * 37 % 101) as f32 / 50.0) - 1.0).collect();
    Tensor::from_data(TensorData::new(v, dims), &Default::default())
}

fn close(a: &[f32], b: &[f32], what: &str) {
    let err = max_relative_error(a, b, what);
    assert!(err < 1e-5, "{what}: routed vs burn's product, relative error {err:e}");
}

/// `y = a·b` (b optionally read transposed from `[.., n, k]`), loss `Σ y ⊙ w`: values and both gradients.
fn run<const D: usize>(a_dims: [usize; D], b_dims: [usize; D], transpose_b: bool) -> [Vec<f32>; 3] {
    let a = tensor::<Ad, D>(a_dims, 1).require_grad();
    let b = tensor::<Ad, D>(b_dims, 7).require_grad();
    let b_used = if transpose_b { b.clone().swap_dims(D - 2, D - 1) } else { b.clone() };
    let y = product(a.clone(), b_used);
    let w = tensor::<Ad, D>(y.dims(), 3);
    let grads = (y.clone() * w).sum().backward();
    [host(y), host(a.grad(&grads).unwrap()), host(b.grad(&grads).unwrap())]
}

#[test]
fn routed_products_match_burns_in_values_and_gradients() {
    let cases: Vec<(&str, Box<dyn Fn() -> [Vec<f32>; 3]>)> = vec![
        ("[6,5]·[5,7]", Box::new(|| run([6, 5], [5, 7], false))),
        ("[6,5]·[7,5]ᵀ", Box::new(|| run([6, 5], [7, 5], true))),
        ("[3,6,5]·[1,5,7] (broadcast)", Box::new(|| run([3, 6, 5], [1, 5, 7], false))),
        ("[2,3,6,5]·[2,3,5,4]", Box::new(|| run([2, 3, 6, 5], [2, 3, 5, 4], false))),
    ];
    let plain: Vec<_> = cases.iter().map(|(_, f)| f()).collect();
    // rank-4 factors at 128 rows: `auto` owns these f32 products (burn's kernel, our node, which
    // splits products with a small output and an inner dim of 4096 along the inner dim)
    let skinny: Vec<(&str, Box<dyn Fn() -> [Vec<f32>; 3]>)> = vec![
        ("[128,4]·[4,4096]", Box::new(|| run([128, 4], [4, 4096], false))),
        ("[128,4]·[4096,4]ᵀ", Box::new(|| run([128, 4], [4096, 4], true))),
        // LoRTA's x·K / LoRA's x·Aᵀ: the forward itself is split, inside our node
        ("[128,4096]·[4096,4]", Box::new(|| run([128, 4096], [4096, 4], false))),
    ];
    let plain_skinny: Vec<_> = skinny.iter().map(|(_, f)| f()).collect();
    assert!(cube_matmul::kernel_decisions().is_empty(), "nothing routed before registration");

    cube_matmul::set_kernels(KernelChoice::List(vec![Kernel::SimpleUnit]));
    cube_matmul::register::<WgpuRuntime, f32, i32, u32>();
    for ((what, f), reference) in cases.iter().zip(&plain) {
        let routed = f();
        for (part, (r, p)) in ["value", "lhs gradient", "rhs gradient"].iter().zip(routed.iter().zip(reference)) {
            close(r, p, &format!("{what} {part}"));
        }
    }
    let decisions = cube_matmul::kernel_decisions();
    // the forward problems and the backward ones (grad·bᵀ, aᵀ·grad), identical problems counted once
    for lhs in [vec![6, 5], vec![3, 6, 5], vec![2, 3, 6, 5], vec![6, 7], vec![3, 5, 6], vec![2, 3, 6, 4]] {
        assert!(decisions.iter().any(|d| d.1 == lhs), "no routed product with lhs {lhs:?}: {decisions:?}");
    }
    assert!(decisions.iter().all(|d| d.3 == Some(Kernel::SimpleUnit)), "every product took the unit kernel: {decisions:?}");

    // `auto` routes no f32 product: they keep burn's own (fused) path, nothing is decided
    cube_matmul::set_kernels(KernelChoice::Auto);
    let (what, f) = &cases[0];
    for (r, p) in f().iter().zip(&plain[0]) {
        close(r, p, &format!("{what} under auto"));
    }
    assert!(cube_matmul::kernel_decisions().is_empty(), "{:?}", cube_matmul::kernel_decisions());
    let splits = cube_matmul::backward_splits();
    for ((what, f), reference) in skinny.iter().zip(&plain_skinny) {
        for (part, (r, p)) in ["value", "lhs gradient", "rhs gradient"].iter().zip(f().iter().zip(reference)) {
            close(r, p, &format!("{what} {part} under auto"));
        }
    }
    assert_eq!(cube_matmul::backward_splits(), splits + 3, "the two lhs gradients and the x·K-like forward split along the inner dim");
    assert!(cube_matmul::kernel_decisions().is_empty(), "f32: no kernel launched by the routing {:?}", cube_matmul::kernel_decisions());

    // f16 at 128 rows with an inner dim of 2048: split-K (two chunks, f32 partial sums), in both
    // forms (`x·W` and `x·Wᵀ` through the transposed product), against the host product of the
    // same f16 values; on lavapipe the chunks take the unit kernel
    // (both forms at this inner dim only under `all`; `auto` splits `x·W` from 8192 on)
    cube_matmul::set_split_k(cube_matmul::SplitK::Auto);
    let split_k = cube_matmul::split_k_products();
    // (read back: fusion runs the product lazily, under the mode of that moment)
    host(product(tensor::<Ad, 2>([128, 2048], 1).cast(FloatDType::F16), tensor::<Ad, 2>([2048, 256], 7).cast(FloatDType::F16)));
    assert_eq!(cube_matmul::split_k_products(), split_k, "auto: an inner dim of 2048 stays whole");
    cube_matmul::set_split_k(cube_matmul::SplitK::All);
    let split_k = cube_matmul::split_k_products();
    for (b_dims, transpose_b) in [([2048, 256], false), ([256, 2048], true)] {
        let a = tensor::<Ad, 2>([128, 2048], 1).cast(FloatDType::F16);
        let b = tensor::<Ad, 2>(b_dims, 7).cast(FloatDType::F16);
        let (ha, hb) = (host(a.clone()), host(b.clone()));
        let b_used = if transpose_b { b.swap_dims(0, 1) } else { b };
        let y = product(a, b_used);
        assert_eq!(y.dtype(), DType::F16);
        let mut expected = vec![0f32; 128 * 256];
        for i in 0..128 {
            for j in 0..256 {
                let dot: f64 = (0..2048).map(|p| ha[i * 2048 + p] as f64 * hb[if transpose_b { j * 2048 + p } else { p * 256 + j }] as f64).sum();
                expected[i * 256 + j] = dot as f32;
            }
        }
        let err = max_relative_error(&host(y), &expected, "split-K");
        // one f16 rounding of the result (2⁻¹¹ relative to an entry, entries up to the largest)
        assert!(err < 1e-3, "split-K f16 product (b transposed: {transpose_b}): relative error {err:e}");
    }
    assert_eq!(cube_matmul::split_k_products(), split_k + 2, "both f16 products split along the inner dim");
    assert!(
        cube_matmul::kernel_decisions().iter().any(|d| d.0 == DType::F16 && d.1 == vec![2, 128, 1024] && d.2 == vec![2, 1024, 256]),
        "the x·W chunks as one batched product: {:?}",
        cube_matmul::kernel_decisions()
    );
    unregister_matmul_kernel::<Ad>();
}
