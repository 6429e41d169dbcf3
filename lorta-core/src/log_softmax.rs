//! Log-softmax over a long last axis (a language model's vocabulary), reduced in two stages.
//!
//! burn 0.21 without autotuning reduces one row per thread (CubeCL's unit routine), so a few rows
//! of many columns run on a single cube: LLaMA-2-7B's `[128, 32000]` f32 logits took 0.69 ms for
//! the max, 1.11 ms for the sum of exponentials and 0.65 ms for the backward's sum (in-stream
//! kernel trace, H200, session 17: 2.4 ms of a 105 ms step). Viewing the axis as `[chunks, CHUNK]` reduces the contiguous
//! 128-long runs first (one output per chunk, many cubes), then the chunks; the backward's sums
//! over the broadcast axes split the same way. Same formula as burn's `log_softmax` (shift by the
//! detached maximum), so values agree to f32 rounding of the sums.

use burn::tensor::{activation::log_softmax, backend::Backend, Int, Tensor};

/// Length of the contiguous runs reduced first.
pub const CHUNK: usize = 128;

/// `log_softmax(x, D - 1)`: in two stages where the last axis is a multiple of [`CHUNK`] with at
/// least two chunks, burn's own otherwise.
pub fn log_softmax_last<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let dims = x.dims();
    let v = dims[D - 1];
    if v % CHUNK != 0 || v < 2 * CHUNK {
        return log_softmax(x, D - 1);
    }
    let rows = dims[..D - 1].iter().product::<usize>();
    let x3: Tensor<B, 3> = x.reshape([rows, v / CHUNK, CHUNK]);
    let max = x3.clone().detach().max_dim(2).max_dim(1);
    let shifted = x3 - max;
    let log_sum_exp = shifted.clone().exp().sum_dim(2).sum_dim(1).log();
    (shifted - log_sum_exp).reshape(dims)
}

/// Mean negative log-likelihood of `targets` (`[n]` class indices) under `logits` (`[n, v]`):
/// the language-modelling cross-entropy, with [`log_softmax_last`].
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let [n] = targets.dims();
    log_softmax_last(logits).gather(1, targets.reshape([n, 1])).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData, Tolerance};
    use burn_autodiff::Autodiff;
    use burn_ndarray::NdArray;

    type B = Autodiff<NdArray<f32>>;

    /// `f(x)` and the gradient of `Σ w·f(x)` with respect to `x`.
    fn grad_of(x: &Tensor<B, 2>, w: &Tensor<B, 2>, f: impl Fn(Tensor<B, 2>) -> Tensor<B, 2>) -> (TensorData, TensorData) {
        let x = x.clone().detach().require_grad();
        let y = f(x.clone());
        let g = (y.clone() * w.clone()).sum().backward();
        (y.into_data(), x.grad(&g).unwrap().into_data())
    }

    #[test]
    fn two_stage_values_and_gradients_match_burns_log_softmax() {
        let device = Default::default();
        // wide logits (scaled so the max shift matters) and one axis that falls back
        for (rows, v) in [(5, 4 * CHUNK), (3, 7 * CHUNK), (2, 100)] {
            let x = Tensor::<B, 2>::random([rows, v], Distribution::Normal(0.0, 8.0), &device);
            let w = Tensor::<B, 2>::random([rows, v], Distribution::Default, &device);
            let (y, g) = grad_of(&x, &w, log_softmax_last);
            let (y_ref, g_ref) = grad_of(&x, &w, |x| log_softmax(x, 1));
            // f32 sums in another order: rounding of values up to ~250 in magnitude
            y.assert_approx_eq::<f32>(&y_ref, Tolerance::rel_abs(1e-6, 1e-5));
            g.assert_approx_eq::<f32>(&g_ref, Tolerance::rel_abs(1e-6, 1e-5));
        }
    }

    #[test]
    fn cross_entropy_is_the_mean_negative_log_likelihood_of_the_targets() {
        let device = Default::default();
        let logits = Tensor::<NdArray<f32>, 2>::random([4, 2 * CHUNK], Distribution::Normal(0.0, 3.0), &device);
        let targets = [3i64, 0, 255, 17];
        let got = cross_entropy(logits.clone(), Tensor::from_data(TensorData::new(targets.to_vec(), [4]), &device)).into_scalar();
        let rows = logits.into_data().to_vec::<f32>().unwrap();
        let want: f64 = targets
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let row = &rows[i * 2 * CHUNK..(i + 1) * 2 * CHUNK];
                let lse = row.iter().map(|&z| (z as f64).exp()).sum::<f64>().ln();
                lse - row[t as usize] as f64
            })
            .sum::<f64>()
            / 4.0;
        assert!((got as f64 - want).abs() < 1e-4 * want.abs().max(1.0), "{got} vs {want}");
    }
}
