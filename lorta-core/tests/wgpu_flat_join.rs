//! The optimizer's gradient join on CubeCL (`flat_join::cube`): parts of any rank and layout
//! (transposed, sliced) read in place, several per launch, the plain and the fused backend, equal
//! bit for bit to reshape-and-`cat`. wgpu (lavapipe in CI) runs the same kernel and fusion
//! operation as CUDA. Its own test binary: the registration is process-wide.
//! `cargo test -p lorta-core --features test-wgpu --test wgpu_flat_join`
#![cfg(feature = "test-wgpu")]

#[allow(dead_code)] // helpers shared with the other wgpu test files
mod common;
use common::host;

use burn::tensor::{backend::Backend, Tensor, TensorData};
use burn_wgpu::WgpuRuntime;
use lorta_core::flat_join::{self, join_flat};

/// burn-wgpu with kernel fusion (the `test-wgpu` feature turns it on) and the plain backend.
type Fused = burn_wgpu::Wgpu<f32, i32>;
type Plain = burn_cubecl::CubeBackend<WgpuRuntime, f32, i32, u32>;

fn check<B: Backend>(what: &str) {
    let device: B::Device = Default::default();
    let mut next = 0.0f32;
    let mut fresh = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                next += 1.0;
                next * 0.5 - 3.0
            })
            .collect()
    };
    let mut prims = Vec::new();
    let mut expected: Vec<f32> = Vec::new();
    // row-major [3, 4]
    let a = fresh(12);
    expected.extend(&a);
    prims.push(Tensor::<B, 2>::from_data(TensorData::new(a, [3, 4]), &device).into_primitive().tensor());
    // [3, 5] read transposed: the view's row-major order is b's column order
    let b = fresh(15);
    expected.extend((0..15).map(|i| b[(i % 3) * 5 + i / 3]));
    prims.push(Tensor::<B, 2>::from_data(TensorData::new(b, [3, 5]), &device).transpose().into_primitive().tensor());
    // [2, 3, 4] sliced to [2, 2, 2] (strided, offset)
    let c = fresh(24);
    for i in 0..2 {
        for j in 1..3 {
            for k in 1..3 {
                expected.push(c[i * 12 + j * 4 + k]);
            }
        }
    }
    prims.push(Tensor::<B, 3>::from_data(TensorData::new(c, [2, 3, 4]), &device).slice([0..2, 1..3, 1..3]).into_primitive().tensor());
    // one element
    let d = fresh(1);
    expected.extend(&d);
    prims.push(Tensor::<B, 1>::from_data(TensorData::new(d, [1]), &device).into_primitive().tensor());
    // [2, 3, 2, 2] permuted to [2, 2, 3, 2]
    let e = fresh(24);
    for i in 0..2 {
        for k in 0..2 {
            for j in 0..3 {
                for l in 0..2 {
                    expected.push(e[((i * 3 + j) * 2 + k) * 2 + l]);
                }
            }
        }
    }
    prims.push(Tensor::<B, 4>::from_data(TensorData::new(e, [2, 3, 2, 2]), &device).swap_dims(1, 2).into_primitive().tensor());
    // more row-major parts, so that the last launch is a partial one
    for n in [7, 33, 5] {
        let f = fresh(n);
        expected.extend(&f);
        prims.push(Tensor::<B, 1>::from_data(TensorData::new(f, [n]), &device).into_primitive().tensor());
    }
    let joined = join_flat::<B>(prims.clone());
    assert_eq!(joined.dims(), [expected.len()], "{what}: length");
    assert_eq!(host(joined), expected, "{what}: kernel join");
    flat_join::unregister_join_kernel::<B>();
    assert_eq!(host(join_flat::<B>(prims)), expected, "{what}: reshape-and-cat fallback");
}

#[test]
fn joins_strided_parts_in_few_launches_on_plain_and_fused_backends() {
    // four parts per launch: the nine parts take three launches, the last one partial
    flat_join::cube::register::<WgpuRuntime, f32, i32, u32>(4);
    assert!(flat_join::has_join_kernel::<Fused>() && flat_join::has_join_kernel::<Plain>());
    check::<Plain>("plain");
    check::<Fused>("fused");
}
