//! Operands of the exact f32 product laid out for one TF32 tensor-core product (3xTF32).
//!
//! `x = x_hi + x_lo` with `x_hi` = `x` rounded to 11 significant bits (TF32's precision, so it
//! passes the tensor cores exactly) and `x_lo = x − x_hi` (|x_lo| ≤ 2⁻¹¹|x|; TF32 keeps it to
//! 2⁻¹⁰ of itself). Then `a·b ≈ a_hi·b_hi + a_lo·b_hi + a_hi·b_lo`: the dropped `a_lo·b_lo` and the
//! remainders' own rounding are ≤ 2⁻²¹ of each summand `|a_i b_i|`, a few f32 ulps of the sum.
//! The three terms are one product over a 3× inner dimension, `[a_hi a_lo a_hi]·[b_hi; b_hi; b_lo]`,
//! whose operands one kernel each writes straight from `a` and `b` (a transposed operand stays
//! transposed: its copy is written in its own memory order and read back as a view).
//! Tested through `lorta-core/tests/wgpu_exact_matmul.rs` (row-major, transposed and strided
//! operands, against f64).
use burn::tensor::{ops::FloatTensorOps, DType, Shape};
use burn_cubecl::cubecl;
use burn_cubecl::cubecl::prelude::*;
use burn_cubecl::cubecl::{calculate_cube_count_elemwise, CubeDim};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::{tensor::CubeTensor, BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

/// Which side of the product an operand is: the left one's inner dim is its last, the right
/// one's its second-to-last; their blocks are ordered so that block `s` of the left meets
/// block `s` of the right as `hi·hi`, `lo·hi`, `hi·lo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Lhs,
    Rhs,
}

/// `x` (read as `[outer, k, inner]`, contiguous) to `[outer, 3k, inner]` holding
/// `hi, lo, hi` (`lo_second`) or `hi, hi, lo` along the middle dim.
#[cube(launch_unchecked)]
fn split_kernel(input: &Array<f32>, output: &mut Array<f32>, count: usize, k: usize, inner: usize, #[comptime] lo_second: bool) {
    let i = ABSOLUTE_POS;
    if i >= count {
        terminate!();
    }
    let x = input[i];
    // round to nearest on the 13 dropped bits, carrying into the exponent where it must
    let hi = f32::reinterpret((u32::reinterpret(x) + 0x1000u32) & 0xFFFF_E000u32);
    let lo = x - hi;
    let c = i % inner;
    let rest = i / inner;
    let j = rest % k;
    let o = rest / k;
    let first = (o * 3 * k + j) * inner + c;
    let block = k * inner;
    output[first] = hi;
    if lo_second {
        output[first + block] = lo;
        output[first + 2 * block] = hi;
    } else {
        output[first + block] = hi;
        output[first + 2 * block] = lo;
    }
}

/// Whether `strides` are the contiguous row-major strides of `shape` (size-1 dims ignored).
fn row_major(shape: &[usize], strides: &[usize]) -> bool {
    let mut expected = 1;
    for (&n, &s) in shape.iter().zip(strides).rev() {
        if n != 1 && s != expected {
            return false;
        }
        expected *= n;
    }
    true
}

/// The operand `x` (f32, rank ≥ 2) of the product on `side` as its 3xTF32 layout: the inner
/// dim tripled, blocks as in [`Side`]. A column-major operand (a transposed view) keeps that
/// layout; any other strided operand is made contiguous first.
pub(crate) fn split_operand<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(x: CubeTensor<R>, side: Side) -> CubeTensor<R> {
    type B<R, F, I, BT> = CubeBackend<R, F, I, BT>;
    let rank = x.meta.shape().len();
    assert!(rank >= 2 && x.dtype == DType::F32, "3xTF32 split of a {:?} tensor of rank {rank}", x.dtype);
    let shape = x.meta.shape().to_vec();
    let mut swapped = shape.clone();
    swapped.swap(rank - 2, rank - 1);
    let mut swapped_strides = x.meta.strides().to_vec();
    swapped_strides.swap(rank - 2, rank - 1);
    // physical order: the logical one, or (a transposed view) the last two dims swapped
    let (x, transposed) = if row_major(&shape, x.meta.strides()) {
        (x, false)
    } else if row_major(&swapped, &swapped_strides) {
        (<B<R, F, I, BT> as FloatTensorOps<B<R, F, I, BT>>>::float_swap_dims(x, rank - 2, rank - 1), true)
    } else {
        (burn_cubecl::kernel::into_contiguous(x), false)
    };
    // the inner dim of the product in physical order: last (`inner` 1) or second-to-last
    let physical = x.meta.shape().to_vec();
    let k_last = (side == Side::Lhs) != transposed;
    let k_dim = if k_last { rank - 1 } else { rank - 2 };
    let (k, inner) = (physical[k_dim], if k_last { 1 } else { physical[rank - 1] });
    let mut out_shape = physical.clone();
    out_shape[k_dim] *= 3;
    let count = x.meta.num_elements();
    let out = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::from(out_shape), DType::F32);
    if count > 0 {
        let cube_dim = CubeDim::new(&x.client, count);
        let cube_count = calculate_cube_count_elemwise(&x.client, count, cube_dim);
        let client = x.client.clone();
        // SAFETY: `count` bounds every read of `x` (contiguous, `count` elements) and every write
        // of `out` (`3·count` elements, indices below `3·k·inner·outer`)
        unsafe {
            split_kernel::launch_unchecked(
                &client,
                cube_count,
                cube_dim,
                x.into_array_arg(),
                out.clone().into_array_arg(),
                count,
                k,
                inner,
                side == Side::Lhs,
            );
        }
    }
    if transposed {
        <B<R, F, I, BT> as FloatTensorOps<B<R, F, I, BT>>>::float_swap_dims(out, rank - 2, rank - 1)
    } else {
        out
    }
}
