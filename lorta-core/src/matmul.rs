//! Matrix products that stay f32-accurate on backends whose f32 matmul runs on TF32 tensor
//! cores (burn 0.21's CUDA backend does so with no switch: ~1e-4 relative error instead of ~1e-7).
//! Models and adapters call [`matmul`] instead of `Tensor::matmul`, so one process-wide switch
//! ([`set_exact_f32_matmul`]) makes every product of a forward and backward pass exact.
use crate::shapes::product;
use burn::tensor::{backend::Backend, ops::FloatTensor, DType, FloatDType, Tensor, TensorMetadata, TensorPrimitive};
use crate::backend_registry::BackendRegistry;
use std::sync::atomic::{AtomicBool, Ordering};

static EXACT_F32_MATMUL: AtomicBool = AtomicBool::new(false);

/// Turns the split product of [`matmul`] on or off for the whole process (off by default: on
/// CPU backends and wgpu a plain f32 matmul is already exact).
pub fn set_exact_f32_matmul(on: bool) {
    EXACT_F32_MATMUL.store(on, Ordering::Relaxed);
}

pub fn exact_f32_matmul() -> bool {
    EXACT_F32_MATMUL.load(Ordering::Relaxed)
}

/// A backend's own exact f32 product (the split below as one operation, e.g.
/// `cube_matmul::CubeMatmul::matmul_exact`): the composite costs ~15 tracked operations per
/// product, and a GPU step of a small model is bound by the host's cost per operation.
/// Register a backend and its autodiff wrapper together: fused attention checks the outer type
/// and runs its products on the inner one.
pub type ExactKernel<B> = fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>;

static EXACT_KERNELS: BackendRegistry = BackendRegistry::new();

/// Computes the exact f32 products of backend `B` with `kernel` (replaces an earlier one).
pub fn register_exact_kernel<B: Backend>(kernel: ExactKernel<B>) {
    EXACT_KERNELS.insert::<B, _>(kernel);
}

/// Removes `B`'s exact kernel: its exact products go back to the composite.
pub fn unregister_exact_kernel<B: Backend>() {
    EXACT_KERNELS.remove::<B>();
}

fn exact_kernel<B: Backend>() -> Option<ExactKernel<B>> {
    EXACT_KERNELS.get::<B, ExactKernel<B>>()
}

/// Whether an f32 product of `B` may skip [`matmul`] without losing its precision: the switch
/// is off, or `B` has an exact kernel that [`product_primitive`] takes (fused operations check
/// this before running their products on primitives).
pub fn primitive_products_exact<B: Backend>() -> bool {
    !exact_f32_matmul() || exact_kernel::<B>().is_some()
}

/// `a·b` on primitives (fused operations' forwards): the exact kernel for f32 operands with the
/// switch on, where `B` has one; else the backend's product.
pub fn product_primitive<B: Backend>(a: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
    if exact_f32_matmul() && a.dtype() == DType::F32 {
        if let Some(kernel) = exact_kernel::<B>() {
            return kernel(a, b);
        }
    }
    B::float_matmul(a, b)
}

/// `a·b`; with [`set_exact_f32_matmul`] on and f32 operands, the backend's exact kernel where
/// one is registered (CubeCL backends: `cube_matmul`'s 3xTF32, high parts of 11 bits, one
/// product over a tripled inner dim), else the composite: every operand split into a bf16-exact
/// high part and the remainder (`a = a_hi + a_lo`, `|a_lo| ≤ 2⁻⁸|a|`) and the product
/// `a_hi·b_hi + a_hi·b_lo + a_lo·b_hi + a_lo·b_lo`: the high parts pass TF32 rounding unchanged,
/// the remainders lose 2⁻¹¹ of their own size, so every summand is within ~2⁻¹⁹ of exact instead
/// of TF32's 2⁻¹¹. (Three products, without `a_lo·b_lo`, would leave up to 2⁻¹⁶ with bf16 high
/// parts: measured 2–3e-5 on the LLaMA fixtures.) The correction is added without gradient:
/// backward costs one (TF32) product as usual, the precision PyTorch's own f32 training gets
/// with TF32 allowed.
pub fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    if a.dtype() != DType::F32 || !exact_f32_matmul() {
        return product(a, b);
    }
    match exact_kernel::<B>() {
        Some(kernel) => Tensor::from_primitive(TensorPrimitive::Float(kernel(a.into_primitive().tensor(), b.into_primitive().tensor()))),
        None => split_matmul(a, b),
    }
}

/// The split product of [`matmul`], whatever the switch says.
pub fn split_matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    // (One product over a 4× inner dimension, `[a_hi a_lo a_hi a_lo]·[b_hi; b_hi; b_lo; b_lo]`,
    // was measured no faster on an H200: RoBERTa-base 153.0 vs 151.2 ms per step.)
    split_matmul_with(a, b, |x| x.cast(FloatDType::BF16).cast(FloatDType::F32))
}

/// [`split_matmul`] with the high part computed by `high` (a rounding to 8 significant bits);
/// separate so that tests on backends without bf16 (ndarray) can round on the host.
fn split_matmul_with<B: Backend, const D: usize>(
    a: Tensor<B, D>,
    b: Tensor<B, D>,
    high: impl Fn(Tensor<B, D>) -> Tensor<B, D>,
) -> Tensor<B, D> {
    let split = |x: Tensor<B, D>| {
        let hi = high(x.clone());
        let lo = x - hi.clone();
        (hi, lo)
    };
    let fast = product(a.clone(), b.clone());
    let (a_hi, a_lo) = split(a.detach());
    let (b_hi, b_lo) = split(b.detach());
    let exact = product(a_hi.clone(), b_hi.clone()) + product(a_hi, b_lo.clone()) + product(a_lo.clone(), b_hi) + product(a_lo, b_lo);
    let correction = exact - fast.clone().detach();
    fast + correction
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestAutodiff, TestBackend};
    use burn::tensor::{Distribution, TensorData, Tolerance};

    /// bf16 rounding on the host (ndarray has no bf16 cast), bit-identical to the device cast.
    fn bf16_high<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
        let shape = x.shape();
        let values: Vec<f32> = x.to_data().to_vec().unwrap();
        let rounded: Vec<f32> = values.into_iter().map(|v| half::bf16::from_f32(v).to_f32()).collect();
        Tensor::from_data(TensorData::new(rounded, shape), &x.device())
    }

    /// On an exact-f32 backend the four partial products sum to the plain product up to f32
    /// rounding, a few ε·(|a|·|b|) elementwise; a lost or doubled cross term would be up to
    /// 2⁻⁸(|a|·|b|) (a lost `a_lo·b_lo`, ≤ 2⁻¹⁶, is caught in most runs, not all).
    /// (The global switch is not toggled here: tests run in parallel.)
    #[test]
    fn split_product_matches_plain_product() {
        let device = Default::default();
        let a = Tensor::<TestBackend, 3>::random([2, 32, 16], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<TestBackend, 3>::random([2, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let bound: Vec<f32> = a.clone().abs().matmul(b.clone().abs()).into_data().to_vec().unwrap();
        let plain: Vec<f32> = a.clone().matmul(b.clone()).into_data().to_vec().unwrap();
        let split: Vec<f32> = split_matmul_with(a, b, bf16_high).into_data().to_vec().unwrap();
        for ((s, p), m) in split.iter().zip(&plain).zip(&bound) {
            let allowed = m * 32.0 * f32::EPSILON;
            assert!((s - p).abs() <= allowed, "split {s} vs plain {p}: off by {} > {allowed}", (s - p).abs());
        }
    }

    /// The correction carries no gradient: backward is the plain product's.
    #[test]
    fn split_product_has_the_plain_gradient() {
        let device = Default::default();
        let a = Tensor::<TestAutodiff, 2>::random([4, 6], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let b = Tensor::<TestAutodiff, 2>::random([6, 3], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let grads = split_matmul_with(a.clone(), b.clone(), bf16_high).sum().backward();
        let (ga, gb) = (a.grad(&grads).unwrap(), b.grad(&grads).unwrap());
        let grads = a.clone().matmul(b.clone()).sum().backward();
        ga.into_data().assert_approx_eq::<f32>(&a.grad(&grads).unwrap().into_data(), Tolerance::absolute(1e-6));
        gb.into_data().assert_approx_eq::<f32>(&b.grad(&grads).unwrap().into_data(), Tolerance::absolute(1e-6));
    }
}
