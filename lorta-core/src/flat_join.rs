//! Many tensors as one flat tensor, their elements in row-major order one part after the other,
//! in few kernel launches.
//!
//! The flat-buffer AdamW (`lorta-experiments`' `train::optim`) joins every adapter gradient into
//! one tensor each step: LLaMA-2-7B with LoRA on q, k, v, o has 256 of them. burn's `cat` launches
//! one copy per part, and a transposed part (LoRA's `B` gradient) needs another copy to be
//! flattened first: ~350 launches, ~6 ms of a ~100 ms step on an H200 where each launch costs the
//! host ~20 µs (session 17's kernel trace). A backend given a kernel ([`register_join_kernel`];
//! CubeCL backends: [`cube::register`]) joins many parts per launch and reads strided parts in
//! place; any other backend reshapes and concatenates.
use crate::backend_registry::BackendRegistry;
use burn::tensor::{backend::Backend, ops::FloatTensor, Shape, Tensor, TensorMetadata, TensorPrimitive};

#[cfg(feature = "cubecl")]
pub mod cube;

/// A backend's own join: `parts` (at least two, one dtype) to one rank-1 tensor.
pub type JoinKernel<B> = fn(Vec<FloatTensor<B>>) -> FloatTensor<B>;

static JOIN_KERNELS: BackendRegistry = BackendRegistry::new();

/// Joins backend `B`'s tensors with `kernel` (replaces an earlier one).
pub fn register_join_kernel<B: Backend>(kernel: JoinKernel<B>) {
    JOIN_KERNELS.insert::<B, _>(kernel);
}

/// Removes `B`'s kernel: its joins go back to reshape and `cat`.
pub fn unregister_join_kernel<B: Backend>() {
    JOIN_KERNELS.remove::<B>();
}

/// Whether `B` joins through a kernel of its own.
pub fn has_join_kernel<B: Backend>() -> bool {
    JOIN_KERNELS.get::<B, JoinKernel<B>>().is_some()
}

/// `parts` (any ranks and layouts, one dtype) as one rank-1 tensor: each part's elements in
/// row-major order, the parts one after the other. Panics on an empty list or mixed dtypes (a
/// caller's bug, not input).
pub fn join_flat<B: Backend>(mut parts: Vec<FloatTensor<B>>) -> Tensor<B, 1> {
    assert!(!parts.is_empty(), "join_flat: no parts");
    let dtype = parts[0].dtype();
    assert!(parts.iter().all(|p| p.dtype() == dtype), "join_flat: parts of different dtypes");
    let flat = |p: FloatTensor<B>| {
        let n = p.shape().num_elements();
        B::float_reshape(p, Shape::new([n]))
    };
    let joined = if parts.len() == 1 {
        flat(parts.pop().expect("one part"))
    } else {
        match JOIN_KERNELS.get::<B, JoinKernel<B>>() {
            Some(kernel) => kernel(parts),
            None => B::float_cat(parts.into_iter().map(flat).collect(), 0),
        }
    };
    Tensor::from_primitive(TensorPrimitive::Float(joined))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestBackend;
    use burn::tensor::TensorData;

    /// Row-major order of each part (a transposed view and a strided slice included), parts in
    /// order: the fallback that backends without a kernel take and kernels are checked against.
    #[test]
    fn joins_parts_in_row_major_order() {
        let device = Default::default();
        let a = Tensor::<TestBackend, 2>::from_data(TensorData::new((0..6).map(|v| v as f32).collect::<Vec<_>>(), [2, 3]), &device);
        let b = a.clone().transpose();
        let c = Tensor::<TestBackend, 3>::from_data(TensorData::new((10..34).map(|v| v as f32).collect::<Vec<_>>(), [2, 3, 4]), &device)
            .slice([0..2, 1..3, 1..3]);
        let joined = join_flat::<TestBackend>(vec![a.into_primitive().tensor(), b.into_primitive().tensor(), c.into_primitive().tensor()]);
        let got: Vec<f32> = joined.into_data().to_vec().unwrap();
        let want = [0., 1., 2., 3., 4., 5., 0., 3., 1., 4., 2., 5., 15., 16., 19., 20., 27., 28., 31., 32.];
        assert_eq!(got, want);
    }
}
