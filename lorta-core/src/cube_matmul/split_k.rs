//! Split-K for the few-row half-precision products of an LLM step at short sequences: the inner
//! dimension cut into `c` chunks, one batched product of the chunks with f32 partial results (as
//! cuBLAS's split-K keeps its partial sums in f32), their sum, one rounding to the operands' dtype.
//!
//! Off by default: measured on an H200, it did not change LLaMA-2-7B's training step (see
//! [`SplitK::Off`]); `LORTA_SPLIT_K=auto` splits the one form that was faster per product,
//! `LORTA_SPLIT_K=all` every product the chunk rule accepts.
//!
//! Why: at 128 tokens a `[128, 4096]·[4096, 11008]` product has few output tiles, so only some of
//! the GPU's multiprocessors stream the weight; chunks multiply the tiles by `c`. Measured on an
//! H200 (bf16, `matmul-strategies`, lorta-experiments/measurements/h200-2026-11-30-s16, call 3),
//! the chunk products alone, each launch synchronised: x·Wᵀ of `down_proj` 0.406 → 0.114 ms,
//! `g·W` through `gate_proj` 0.406 → 0.121 ms, `q_proj` 0.108 → 0.061 ms.
//!
//! Two forms, both batched products of row-major operands (which every tensor-core kernel reads):
//! - right side row-major (`g·W`, the backward through a frozen `[out, in]` weight): `[c, m, k/c]`
//!   views of the left side times `[c, k/c, n]` views of the right one;
//! - right side column-major (`x·Wᵀ`, every forward product of a linear layer): the transposed
//!   product `W·xᵀ`, the weight's `[c, n, k/c]` row blocks times a copy of `xᵀ` (`m·k` elements,
//!   small at these `m`), summed and transposed back.
use super::{run_first_accepting, tma_readable, Kernel};
use burn::tensor::{ops::FloatTensorOps, DType, Shape};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::{tensor::CubeTensor, BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Chunks shorter than this are not worth it (the bench's best chunk lengths: 1024 for an inner
/// dim of 4096, 1376 for 11008).
const MIN_CHUNK: usize = 1024;
/// At most this many chunks.
const MAX_CHUNKS: usize = 16;
/// Outputs of at most this many elements: beyond, the product has tiles enough for every
/// multiprocessor (e.g. 128 × 16384).
const MAX_OUTPUTS: usize = 1 << 21;

/// The kernels the chunk products try, in order (H200 survey: the TMA kernel was the fastest on
/// every split shape, e.g. `4×[4096,1024]·[1024,128]` 0.061 ms against 0.067 for the specialized
/// cyclic one; the unit kernel runs where no tensor-core kernel does, e.g. lavapipe in tests).
const KERNELS: [Kernel; 4] = [Kernel::SpecializedTmaMma, Kernel::SpecializedCyclicMma, Kernel::DoubleCyclicMma, Kernel::SimpleUnit];

static SPLITS: AtomicUsize = AtomicUsize::new(0);

/// How many products were split along their inner dimension here so far (tests, reports).
pub fn split_k_products() -> usize {
    SPLITS.load(Ordering::Relaxed)
}

/// Which products split ([`set_split_k`], `LORTA_SPLIT_K`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitK {
    /// None (the default). In LLaMA-2-7B's training step at 128 tokens neither form changed the
    /// step time (H200, call 5 of measurements/h200-2026-11-30-s16, alternating processes: LoRTA
    /// r4 91.3 / 97.4 ms with `auto`, 91.8 / 91.9 without; LoRA 100.2 / 134.5 vs 100.0 / 121.6),
    /// though the synchronised per-product times differ (call 4).
    Off,
    /// The form that measured faster per product as routed (`LORTA_SPLIT_K=auto`): a row-major
    /// right side with an inner dim of at least [`AUTO_MIN_INNER`] (LLaMA-2-7B's `g·W` through
    /// `gate_proj` / `up_proj` at 128 tokens: 0.38 → 0.15 ms per synchronised product, call 4).
    /// At an inner dim of 4096, and in the transposed form, the extra copy, sum and cast cost
    /// more than the chunks gain.
    Auto,
    /// Every product the chunk rule accepts, both forms (`LORTA_SPLIT_K=all`).
    All,
}

/// Inner dims from which [`SplitK::Auto`] splits.
pub const AUTO_MIN_INNER: usize = 8192;

/// [`set_split_k`]'s choice (0: none made, 1 + the variant's index otherwise).
static CHOICE: AtomicU8 = AtomicU8::new(0);

/// Sets which products split for the whole process (overrides `LORTA_SPLIT_K`).
pub fn set_split_k(mode: SplitK) {
    CHOICE.store(1 + mode as u8, Ordering::Relaxed);
}

/// [`set_split_k`]'s choice, else `LORTA_SPLIT_K` (`auto`, `all`; read once), else [`SplitK::Off`].
pub(super) fn mode() -> SplitK {
    static FROM_ENV: OnceLock<SplitK> = OnceLock::new();
    match CHOICE.load(Ordering::Relaxed) {
        1 => SplitK::Off,
        2 => SplitK::Auto,
        3 => SplitK::All,
        _ => *FROM_ENV.get_or_init(|| match std::env::var("LORTA_SPLIT_K").as_deref().map(str::trim) {
            Err(_) | Ok("") | Ok("0") | Ok("off") => SplitK::Off,
            Ok("auto") | Ok("1") => SplitK::Auto,
            Ok("all") => SplitK::All,
            Ok(other) => {
                eprintln!("warning: LORTA_SPLIT_K=`{other}` is not off, auto or all; split-K stays off");
                SplitK::Off
            }
        }),
    }
}

/// The number of chunks for an inner dimension of `k`: the largest power of two up to
/// [`MAX_CHUNKS`] that cuts `k` into chunks of at least [`MIN_CHUNK`], each a multiple of 16
/// (tensor-core tiles, 16-byte TMA strides); `None` when there is none (k < 2048).
pub fn chunks(k: usize) -> Option<usize> {
    let mut best = None;
    let mut c = 2;
    while c <= MAX_CHUNKS {
        if k.is_multiple_of(c) && k / c >= MIN_CHUNK && (k / c).is_multiple_of(16) {
            best = Some(c);
        }
        c *= 2;
    }
    best
}

/// `lhs·rhs` (rank 2, bf16/f16, row-major left side) split along the inner dimension, or `None`
/// when the split does not apply (shape, layout, dtype, switched off) or no kernel launched.
pub(super) fn product<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    lhs: &CubeTensor<R>,
    rhs: &CubeTensor<R>,
    rhs_col: bool,
) -> Option<CubeTensor<R>> {
    type B<R, F, I, BT> = CubeBackend<R, F, I, BT>;
    let dtype = lhs.dtype;
    let (lshape, rshape) = (lhs.meta.shape().to_vec(), rhs.meta.shape().to_vec());
    let (&[m, k], &[k2, n]) = (lshape.as_slice(), rshape.as_slice()) else { return None };
    if !matches!(dtype, DType::BF16 | DType::F16) || rhs.dtype != dtype || k != k2 || m * n > MAX_OUTPUTS {
        return None;
    }
    match mode() {
        SplitK::Off => return None,
        SplitK::Auto if rhs_col || k < AUTO_MIN_INNER => return None,
        _ => {}
    }
    let c = chunks(k)?;
    let len = k / c;
    // the views below are plain reshapes and transposes only of contiguous tensors
    let weight_rows = rhs_col.then(|| B::<R, F, I, BT>::float_swap_dims(rhs.clone(), 0, 1));
    if !lhs.is_contiguous() || !weight_rows.as_ref().map_or(rhs.is_contiguous(), |w| w.is_contiguous()) {
        return None;
    }
    let (a, b) = match weight_rows {
        // [c, m, len]·[c, len, n]
        None => (
            B::<R, F, I, BT>::float_swap_dims(B::<R, F, I, BT>::float_reshape(lhs.clone(), Shape::new([m, c, len])), 0, 1),
            B::<R, F, I, BT>::float_reshape(rhs.clone(), Shape::new([c, len, n])),
        ),
        // (W·xᵀ)ᵀ: [c, n, len]·[c, len, m]
        Some(w) => {
            let xt = into_contiguous(B::<R, F, I, BT>::float_swap_dims(lhs.clone(), 0, 1));
            (
                B::<R, F, I, BT>::float_swap_dims(B::<R, F, I, BT>::float_reshape(w, Shape::new([n, c, len])), 0, 1),
                B::<R, F, I, BT>::float_reshape(xt, Shape::new([c, len, m])),
            )
        }
    };
    let tma = tma_readable(&a) && tma_readable(&b);
    let partial = run_first_accepting(&a, &b, &KERNELS, DType::F32, (false, false), tma)?;
    let [rows, cols] = if rhs_col { [n, m] } else { [m, n] };
    let sum = B::<R, F, I, BT>::float_reshape(B::<R, F, I, BT>::float_sum_dim(partial, 0), Shape::new([rows, cols]));
    let sum = if rhs_col { into_contiguous(B::<R, F, I, BT>::float_swap_dims(sum, 0, 1)) } else { sum };
    SPLITS.fetch_add(1, Ordering::Relaxed);
    Some(B::<R, F, I, BT>::float_cast(sum, dtype.into()))
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn chunks_are_powers_of_two_of_at_least_1024_in_multiples_of_16() {
        assert_eq!(chunks(4096), Some(4));
        assert_eq!(chunks(11008), Some(8)); // 1376 each
        assert_eq!(chunks(14336), Some(8));
        assert_eq!(chunks(2048), Some(2));
        assert_eq!(chunks(1024), None);
        assert_eq!(chunks(3000), None); // 1500: not a multiple of 16
        assert_eq!(chunks(1 << 16), Some(16));
    }
}
