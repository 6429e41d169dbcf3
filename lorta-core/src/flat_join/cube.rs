//! [`super::join_flat`] on CubeCL backends: up to `parts_per_launch` parts per kernel launch,
//! each read through its own shape and strides (no copy for a transposed or sliced part), and
//! under burn-fusion one custom operation for the whole join.
use burn::tensor::{DType, Shape, TensorMetadata};
use burn_cubecl::cubecl;
use burn_cubecl::cubecl::prelude::*;
use burn_cubecl::cubecl::{calculate_cube_count_elemwise, CubeDim};
use burn_cubecl::fusion::FusionCubeRuntime;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::{tensor::CubeTensor, BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{client::GlobalFusionClient, Fusion, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes `parts` (their elements in row-major order, one part after the other) to
/// `output[offset..offset + ends[last]]`; `ends[t]` is the element count of parts `0..=t`.
#[cube(launch_unchecked)]
fn join_kernel(parts: &Sequence<Tensor<f32>>, output: &mut Array<f32>, ends: Sequence<usize>, offset: usize) {
    let count = comptime![parts.len()];
    let last = comptime![count - 1];
    let i = ABSOLUTE_POS;
    if i >= ends[last] {
        terminate!();
    }
    let mut start = 0usize;
    #[unroll]
    for t in 0..count {
        let end = ends[t];
        if i >= start && i < end {
            let part = parts.index(t);
            let rank = part.rank();
            let mut rest = i - start;
            let mut at = 0usize;
            for d in 0..rank {
                let dim = rank - 1 - d;
                let n = part.shape(dim);
                at += (rest % n) * part.stride(dim);
                rest /= n;
            }
            output[offset + i] = part[at];
        }
        start = end;
    }
}

/// Parts per launch of runtime `R` (set by [`register`]).
static PARTS_PER_LAUNCH: AtomicUsize = AtomicUsize::new(8);

/// The join on the plain CubeCL backend (f32 parts; other dtypes concatenate).
fn join<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(parts: Vec<CubeTensor<R>>) -> CubeTensor<R> {
    type B<R, F, I, BT> = CubeBackend<R, F, I, BT>;
    use burn::tensor::ops::FloatTensorOps;
    if parts.iter().any(|p| p.dtype != DType::F32) {
        let flat = parts
            .into_iter()
            .map(|p| {
                let n = p.meta.num_elements();
                <B<R, F, I, BT> as FloatTensorOps<B<R, F, I, BT>>>::float_reshape(p, Shape::new([n]))
            })
            .collect();
        return <B<R, F, I, BT> as FloatTensorOps<B<R, F, I, BT>>>::float_cat(flat, 0);
    }
    let total: usize = parts.iter().map(|p| p.meta.num_elements()).sum();
    let first = &parts[0];
    let (client, device) = (first.client.clone(), first.device.clone());
    let out = empty_device_contiguous_dtype(client.clone(), device, Shape::new([total]), DType::F32);
    let per_launch = PARTS_PER_LAUNCH.load(Ordering::Relaxed).max(1);
    let mut offset = 0;
    let mut parts = parts.into_iter().filter(|p| p.meta.num_elements() > 0).peekable();
    while parts.peek().is_some() {
        let chunk: Vec<CubeTensor<R>> = parts.by_ref().take(per_launch).collect();
        let mut ends = SequenceArg::<R, usize>::new();
        let mut tensors = SequenceArg::<R, Tensor<f32>>::new();
        let mut end = 0;
        for part in chunk {
            end += part.meta.num_elements();
            ends.push(end);
            tensors.push(part.into_tensor_arg());
        }
        let cube_dim = CubeDim::new(&client, end);
        let cube_count = calculate_cube_count_elemwise(&client, end, cube_dim);
        // SAFETY: each part is read at offsets its own shape and strides give (elements
        // `0..count` in row-major order); `out` is written at `offset..offset + end`, within its
        // `total` elements
        unsafe {
            join_kernel::launch_unchecked(&client, cube_count, cube_dim, tensors, out.clone().into_array_arg(), ends, offset);
        }
        offset += end;
    }
    out
}

/// The join as one custom fusion operation (nothing fuses into it).
#[derive(Debug)]
struct FusedJoin<B> {
    desc: CustomOpIr,
    _backend: PhantomData<B>,
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> Operation<FusionCubeRuntime<R>> for FusedJoin<CubeBackend<R, F, I, BT>> {
    fn execute(&self, handles: &mut HandleContainer<<FusionCubeRuntime<R> as burn_fusion::FusionRuntime>::FusionHandle>) {
        let parts = self.desc.inputs.iter().map(|ir| handles.get_float_tensor::<CubeBackend<R, F, I, BT>>(ir)).collect();
        let out = &self.desc.outputs[0];
        handles.register_float_tensor::<CubeBackend<R, F, I, BT>>(&out.id, join::<R, F, I, BT>(parts));
    }
}

fn fused_join<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    parts: Vec<FusionTensor<FusionCubeRuntime<R>>>,
) -> FusionTensor<FusionCubeRuntime<R>> {
    let client: GlobalFusionClient<FusionCubeRuntime<R>> = parts[0].client.clone();
    let streams = OperationStreams::with_inputs(parts.iter());
    let total: usize = parts.iter().map(|p| p.shape().num_elements()).sum();
    let out = TensorIr::uninit(client.create_empty_handle(), Shape::new([total]), parts[0].dtype);
    let inputs: Vec<TensorIr> = parts.into_iter().map(|p| p.into_ir()).collect();
    let desc = CustomOpIr::new("lorta_flat_join", &inputs, &[out]);
    client.register(streams, OperationIr::Custom(desc.clone()), FusedJoin::<CubeBackend<R, F, I, BT>> { desc, _backend: PhantomData }).output()
}

/// Gives runtime `R`'s plain and fused backends the join kernel, `parts_per_launch` parts per
/// launch (each part is one storage binding: wgpu adapters allow fewer than CUDA).
pub fn register<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(parts_per_launch: usize) {
    PARTS_PER_LAUNCH.store(parts_per_launch.max(1), Ordering::Relaxed);
    super::register_join_kernel::<CubeBackend<R, F, I, BT>>(join::<R, F, I, BT>);
    super::register_join_kernel::<Fusion<CubeBackend<R, F, I, BT>>>(fused_join::<R, F, I, BT>);
}
