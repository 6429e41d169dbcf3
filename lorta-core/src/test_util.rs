//! Test helpers: the backend under test and an f64 ndarray reference.
use burn::tensor::{Tensor, TensorData};
use ndarray::{ArrayD, IxDyn};

#[cfg(not(feature = "test-wgpu"))]
pub type TestBackend = burn_ndarray::NdArray<f32>;
#[cfg(feature = "test-wgpu")]
pub type TestBackend = burn_wgpu::Wgpu<f32, i32>;
pub type TestAutodiff = burn_autodiff::Autodiff<TestBackend>;

pub fn device() -> burn::tensor::Device<TestBackend> {
    Default::default()
}

pub fn to_f64<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> ArrayD<f64> {
    let data: TensorData = t.into_data().convert::<f32>();
    let shape: Vec<usize> = data.shape.to_vec();
    let v: Vec<f64> = data.to_vec::<f32>().unwrap().into_iter().map(|x| x as f64).collect();
    ArrayD::from_shape_vec(IxDyn(&shape), v).unwrap()
}

/// max |a - b| / max(1, max |b|)
pub fn rel_err(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shape mismatch");
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b.iter()).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

pub fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64, what: &str) {
    let e = rel_err(a, b);
    assert!(e <= tol, "{what}: relative error {e:.3e} > {tol:.1e}");
}
