//! The exact f32 product as one operation (`cube_matmul::register_exact`): its 3xTF32 split
//! (three terms as one product over a tripled inner dim), the plain product's gradient, and the
//! fused attention taking it for its forward products. wgpu (lavapipe in CI) runs the same split
//! kernel and plumbing as CUDA — fusion custom operation, autodiff node, broadcast batch dims,
//! transposed operands — with exact f32 products, so only the dropped `a_lo·b_lo` shows.
//! Its own test binary: the exact switch and the registrations are process-wide.
//! `cargo test -p lorta-core --features test-wgpu --test wgpu_exact_matmul`
#![cfg(feature = "test-wgpu")]

mod common;
use common::{host, max_relative_error};

use burn::tensor::{activation::softmax, backend::Backend, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_wgpu::WgpuRuntime;
use lorta_core::cube_matmul;
use lorta_core::fused::{self, Masking};
use lorta_core::matmul::{self, primitive_products_exact, set_exact_f32_matmul, unregister_exact_kernel};

type Wg = burn_wgpu::Wgpu<f32, i32>;
type Ad = Autodiff<Wg>;

/// Entries `h + 0.0014` with `h` in ±{1, 1.25, 1.5, 1.75}: the remainder after the 11-bit high
/// part (0.0014 − 2⁻¹⁰ for the positive ones) makes each cross term ~4e-4 of a summand, far above
/// f32 rounding: a lost, doubled or misplaced block shows.
fn values(n: usize, salt: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let j = (i * 7 + salt * 3) % 8;
            let h = [1.0, 1.25, 1.5, 1.75][j % 4] * if j < 4 { 1.0 } else { -1.0 };
            h + 0.0014
        })
        .collect()
}

fn tensor<B: Backend, const D: usize>(v: &[f64], dims: [usize; D]) -> Tensor<B, D> {
    let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, dims), &Default::default())
}

/// `a·b` in f64 on the host (`a: [batch, m, k]`, `b: [batch or 1, k, n]`).
fn reference(a: &[f64], b: &[f64], [batch, m, k, n]: [usize; 4], b_batched: bool) -> Vec<f32> {
    let mut out = Vec::with_capacity(batch * m * n);
    for t in 0..batch {
        let bt = if b_batched { t } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|l| a[(t * m + i) * k + l] * b[(bt * k + l) * n + j]).sum();
                out.push(s as f32);
            }
        }
    }
    out
}

#[test]
fn exact_product_is_one_operation_with_the_plain_gradient_and_feeds_fused_attention() {
    let (batch, m, k, n) = (2, 6, 40, 5);
    let (av, bv) = (values(batch * m * k, 1), values(k * n, 5));
    let expected = reference(&av, &bv, [batch, m, k, n], false);
    // b read transposed from [n, k], broadcast over the batch
    let bt: Vec<f64> = (0..n * k).map(|i| bv[(i % k) * n + i / k]).collect();
    let run = |exact_on: bool| {
        set_exact_f32_matmul(exact_on);
        let a = tensor::<Ad, 3>(&av, [batch, m, k]).require_grad();
        let b = tensor::<Ad, 3>(&bt, [1, n, k]).require_grad();
        let y = matmul::matmul(a.clone(), b.clone().swap_dims(1, 2));
        let w = tensor::<Ad, 3>(&values(batch * m * n, 2), [batch, m, n]);
        let grads = (y.clone() * w).sum().backward();
        [host(y), host(a.grad(&grads).unwrap()), host(b.grad(&grads).unwrap())]
    };
    let plain = run(false);

    cube_matmul::register_exact::<WgpuRuntime, f32, i32, u32>();
    assert!(primitive_products_exact::<Ad>() && primitive_products_exact::<Wg>());
    let [y, ga, gb] = run(true);
    // the three terms against f64 (lavapipe's own f32 product is exact too: compare both)
    for (what, got) in [("exact kernel", &y), ("plain product", &plain[0])] {
        let err = max_relative_error(got, &expected, what);
        assert!(err < 1e-6, "{what}: relative error {err:e} against f64");
    }
    // a transposed left operand and a row-major right one, each split in its own memory order
    let at: Vec<f64> = (0..batch * k * m)
        .map(|idx| {
            let (t, rest) = (idx / (k * m), idx % (k * m));
            av[(t * m + rest % m) * k + rest / m]
        })
        .collect();
    let y2 = matmul::matmul(tensor::<Wg, 3>(&at, [batch, k, m]).swap_dims(1, 2), tensor::<Wg, 3>(&bv, [1, k, n]));
    let err = max_relative_error(&host(y2), &expected, "transposed lhs");
    assert!(err < 1e-6, "transposed lhs: relative error {err:e} against f64");
    // a strided left operand (the first half of each row of a wider tensor: neither layout,
    // copied first)
    let wide: Vec<f64> = (0..batch * m * 2 * k).map(|idx| if idx % (2 * k) < k { av[(idx / (2 * k)) * k + idx % (2 * k)] } else { 7.0 }).collect();
    let strided = tensor::<Wg, 3>(&wide, [batch, m, 2 * k]).slice([0..batch, 0..m, 0..k]);
    let y3 = matmul::matmul(strided, tensor::<Wg, 3>(&bv, [1, k, n]));
    let err = max_relative_error(&host(y3), &expected, "strided lhs");
    assert!(err < 1e-6, "strided lhs: relative error {err:e} against f64");
    // backward: the plain product's
    for (what, got, want) in [("lhs gradient", &ga, &plain[1]), ("rhs gradient", &gb, &plain[2])] {
        let err = max_relative_error(got, want, what);
        assert!(err < 1e-6, "{what}: {err:e}");
    }

    // fused attention runs under the switch once the kernel is there, and its forward products
    // take it (values as the composite's)
    fused::register::<Wg>();
    let (q, kk, v) = (tensor::<Ad, 4>(&values(64, 3), [1, 2, 4, 8]), tensor::<Ad, 4>(&values(64, 4), [1, 2, 4, 8]), tensor::<Ad, 4>(&values(64, 6), [1, 2, 4, 8]));
    let masking = Masking { scale: 0.125, mask_value: -1e9 };
    let composite = softmax(q.clone().matmul(kk.clone().swap_dims(2, 3)) * masking.scale, 3).matmul(v.clone());
    let out = fused::attention(q.clone(), kk.clone(), v.clone(), None, masking).expect("fused attention under the exact switch");
    let err = max_relative_error(&host(out), &host(composite), "fused attention");
    assert!(err < 1e-5, "fused attention vs composite: {err:e}");

    // without the kernel the switch keeps the composite (fused attention declines)
    unregister_exact_kernel::<Ad>();
    assert!(!primitive_products_exact::<Ad>());
    assert!(fused::attention(q, kk, v, None, masking).is_none(), "no exact kernel: the composite's split products run instead");
    set_exact_f32_matmul(false);
}
