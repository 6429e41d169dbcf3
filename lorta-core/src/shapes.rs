//! Equivalent shapes for products and reductions that CubeCL 0.10's default (untuned) kernels run
//! badly; found in per-kernel profiles on an H200 (lorta-experiments/measurements/h200-2026-11-29-s7):
//! - **inner split**: a product with a small output and a long inner dimension runs on the few
//!   cubes that cover its output tiles, each walking the whole inner dimension alone (LoRA's
//!   `x·Aᵀ` at 128 tokens × 4096 inputs, rank 4: four cubes, 190 µs). Computed as a batch of
//!   products over inner-dimension chunks, summed.
//! - **row chunks**: a product with many rows `x·W` has the weight gradient `xᵀ·g`, whose inner
//!   dimension is that row count (the folding trunk's pair LoRA: 65,536 rows, one cube, 3.4 ms).
//!   Computed as a batch of row chunks against a broadcast `W`, so autodiff's `xᵀ·g` is a
//!   batched product plus a sum over chunks.
//! - **two-stage row reduction**: a mean over rows is one thread per row (RMSNorm at 128 tokens ×
//!   4096 features: 0.8 ms; LayerNorm at 4096 tokens × 768: 27–94 µs); summed in blocks of 64
//!   first.
//! - **blocked row broadcast**: `x ∘ s` with one value of `s` per row of `x` has autodiff sum
//!   `g ∘ x` over each row for `s`'s gradient: the same one-thread-per-row reduction in the
//!   backward (RMSNorm's scale in LLaMA-2-7B's step: ~80 launches of 0.4–0.7 ms per step, H200,
//!   measurements/h200-2026-11-30-s11). Computed on `[rows, len/64, 64]` against `s` as
//!   `[rows, 1, 1]`, so the backward sums in two parallel stages.
//!
//! Off unless [`set_shape_rewrites`] turns them on (the GPU backends do; on CPU they gain nothing).
//! `LORTA_SHAPE_REWRITES` picks a subset for measurements: `none`, or a comma list of `inner`,
//! `rows`, `reduce` (unset or `default`: all three; `inner` also governs the same split inside
//! `cube_matmul`'s product node). (Computing few-row products transposed, `(Wᵀ·xᵀ)ᵀ`, was
//! measured 2× slower on LLaMA-2-7B at 128 tokens.)
use burn::tensor::{backend::Backend, ops::FloatTensor, DType, Tensor, TensorPrimitive};
use crate::backend_registry::BackendRegistry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static ON: AtomicBool = AtomicBool::new(false);

/// Turns the rewrites on or off for the whole process.
pub fn set_shape_rewrites(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rewrites {
    inner: bool,
    rows: bool,
    reduce: bool,
}

impl Rewrites {
    const DEFAULT: Rewrites = Rewrites { inner: true, rows: true, reduce: true };

    /// `None` (variable unset) or `default`: all; otherwise the named ones (`none`: nothing).
    fn parse(spec: Option<&str>) -> Rewrites {
        let Some(spec) = spec else { return Self::DEFAULT };
        let has = |name: &str| spec.split(',').any(|w| w.trim() == name || w.trim() == "default");
        Rewrites { inner: has("inner"), rows: has("rows"), reduce: has("reduce") }
    }
}

/// The environment's subset of the rewrites, read once.
fn from_env() -> Rewrites {
    static FROM_ENV: OnceLock<Rewrites> = OnceLock::new();
    *FROM_ENV.get_or_init(|| Rewrites::parse(std::env::var("LORTA_SHAPE_REWRITES").ok().as_deref()))
}

/// The active rewrites: none unless switched on; the environment's subset.
fn active() -> Option<Rewrites> {
    ON.load(Ordering::Relaxed).then(from_env)
}

/// Whether the environment leaves the inner split on (`cube_matmul`'s own node splits its
/// products whenever it is: that node exists only on GPU backends).
#[cfg(feature = "cubecl")]
pub(crate) fn inner_split_enabled() -> bool {
    from_env().inner
}

/// Inner split: outputs at most this many elements (a few 32×128 tiles) ...
const INNER_MAX_OUTPUTS: usize = 16 * 32 * 128;
/// ... and an inner dimension at least this long ...
const INNER_MIN: usize = 1024;
/// ... cut into chunks of this length.
const INNER_CHUNK: usize = 256;
/// Row chunks: at least this many rows, cut into chunks of 512 rows, else of 256 (a pair
/// state padded to a multiple of 16 residues has a multiple of 256 rows), else 512 plus a
/// remainder product ...
const ROWS_MIN: usize = 4096;
const ROW_CHUNKS: [usize; 2] = [512, 256];
/// ... when the right factor is small (its broadcast gradient is materialised per chunk).
const ROWS_MAX_RHS: usize = 1 << 20;
/// Two-stage reduction: rows at least this long (any number of them) ...
const REDUCE_MIN_LEN: usize = 256;
/// ... summed in blocks of this length first.
const REDUCE_BLOCK: usize = 64;

/// Whether a reduction over rows of `len` (or a per-row broadcast's backward) takes two stages.
/// Many rows too: CubeCL's one-thread-per-row reduction of RoBERTa-base's `[4096, 768]`
/// LayerNorm rows took 27 µs plain and 94 µs fused with the residual addition, ~4.5 ms of a
/// 59 ms f32 GLUE step (in-stream kernel trace, H200, measurements h200-2026-12-01-s17).
fn two_stage(len: usize) -> bool {
    len >= REDUCE_MIN_LEN && len.is_multiple_of(REDUCE_BLOCK)
}

/// How [`product`] computes a 2-D `[m, k]·[k, n]` product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    Plain,
    InnerSplit { chunks: usize },
    /// `chunks` batches of `len` rows, then the remaining `m − chunks·len` rows on their own.
    RowChunks { chunks: usize, len: usize },
}

/// The number of inner-dimension chunks an `[m, k]·[k, n]` product of `dtype` is split into, if
/// any (partial sums are added in the operands' dtype: only where that is f32). Also used by
/// `cube_matmul`'s backward, whose products bypass [`product`].
pub(crate) fn inner_split_chunks(m: usize, k: usize, n: usize, dtype: DType) -> Option<usize> {
    (dtype == DType::F32 && m * n <= INNER_MAX_OUTPUTS && k >= INNER_MIN && k.is_multiple_of(INNER_CHUNK)).then_some(k / INNER_CHUNK)
}

fn plan(r: Rewrites, m: usize, k: usize, n: usize, dtype: DType) -> Plan {
    if let Some(chunks) = inner_split_chunks(m, k, n, dtype).filter(|_| r.inner) {
        return Plan::InnerSplit { chunks };
    }
    if r.rows && m >= ROWS_MIN && k * n <= ROWS_MAX_RHS {
        let len = ROW_CHUNKS.into_iter().find(|&c| m.is_multiple_of(c)).unwrap_or(ROW_CHUNKS[0]);
        return Plan::RowChunks { chunks: m / len, len };
    }
    Plan::Plain
}

/// A backend's own matrix product (a kernel chosen for the shape, e.g.
/// `cube_matmul::CubeMatmul::matmul`), used by every product of this module in place of
/// `Tensor::matmul` for that backend type once registered with [`register_matmul_kernel`].
pub type MatmulKernel<B> = fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>;

static KERNELS: BackendRegistry = BackendRegistry::new();

/// Which products (by left shape) a kernel splits along the inner dimension itself, inside its
/// own autodiff node: [`product`] then leaves them whole instead of splitting them into five
/// tracked operations.
pub type SplitsInner = fn(&[usize]) -> bool;

struct Registered<B: Backend> {
    kernel: MatmulKernel<B>,
    splits_inner: SplitsInner,
}

impl<B: Backend> Clone for Registered<B> {
    fn clone(&self) -> Self {
        Registered { kernel: self.kernel, splits_inner: self.splits_inner }
    }
}

/// Routes every product on backend `B` through `kernel` (replaces an earlier registration).
pub fn register_matmul_kernel<B: Backend>(kernel: MatmulKernel<B>) {
    register_matmul_kernel_splitting::<B>(kernel, |_| false);
}

/// [`register_matmul_kernel`] for a kernel that does the inner split of the products
/// `splits_inner` names on its own.
pub fn register_matmul_kernel_splitting<B: Backend>(kernel: MatmulKernel<B>, splits_inner: SplitsInner) {
    KERNELS.insert::<B, _>(Registered::<B> { kernel, splits_inner });
}

/// Removes `B`'s kernel: its products go back to `Tensor::matmul`.
pub fn unregister_matmul_kernel<B: Backend>() {
    KERNELS.remove::<B>();
}

fn registered<B: Backend>() -> Option<Registered<B>> {
    KERNELS.get::<B, Registered<B>>()
}

/// `a·b` through `B`'s registered kernel, else `Tensor::matmul`.
fn matmul_raw<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    match registered::<B>() {
        Some(Registered { kernel, .. }) => {
            let out = kernel(a.into_primitive().tensor(), b.into_primitive().tensor());
            Tensor::from_primitive(TensorPrimitive::Float(out))
        }
        None => a.matmul(b),
    }
}

/// `a·b` (any rank; rank-2 products may take one of the rewritten shapes).
pub fn product<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    match active() {
        Some(r) if D == 2 => product_with(r, a, b),
        _ => matmul_raw(a, b),
    }
}

fn product_with<B: Backend, const D: usize>(r: Rewrites, a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    let ([m, k], [_, n]) = (dims2(&a), dims2(&b));
    let (a2, b2): (Tensor<B, 2>, Tensor<B, 2>) = (rank_cast(a), rank_cast(b));
    let y = match plan(r, m, k, n, a2.dtype()) {
        Plan::Plain => matmul_raw(a2, b2),
        Plan::InnerSplit { .. } if registered::<B>().is_some_and(|r| (r.splits_inner)(&[m, k])) => matmul_raw(a2, b2),
        Plan::InnerSplit { chunks } => inner_split(a2, b2, chunks),
        Plan::RowChunks { chunks, len } => row_chunks(a2, b2, chunks, len),
    };
    rank_cast(y)
}

/// A rank-2 tensor seen as `Tensor<B, D2>` of the same shape (`D2 == 2` where called): no
/// operation, where `reshape` to the same shape would still record an autodiff node per call,
/// and the GPU step is bound by the host's cost per operation.
fn rank_cast<B: Backend, const D: usize, const D2: usize>(t: Tensor<B, D>) -> Tensor<B, D2> {
    debug_assert!(D == 2 && D2 == 2, "rank_cast between rank-2 tensors only");
    Tensor::from_primitive(t.into_primitive())
}

fn dims2<B: Backend, const D: usize>(t: &Tensor<B, D>) -> [usize; 2] {
    let d = t.dims();
    [d[0], d[1]]
}

/// `Σ_c a[:, chunk c]·b[chunk c, :]` as one batched product and a sum over the batch.
fn inner_split<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>, chunks: usize) -> Tensor<B, 2> {
    let ([m, k], [_, n]) = (a.dims(), b.dims());
    let len = k / chunks;
    let a3 = a.reshape([m, chunks, len]).swap_dims(0, 1);
    let b3 = b.reshape([chunks, len, n]);
    matmul_raw(a3, b3).sum_dim(0).reshape([m, n])
}

/// `a·b` with `a`'s first `chunks·len` rows in `chunks` batches against one broadcast `b`, the
/// remaining rows (if any) as a plain product.
fn row_chunks<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>, chunks: usize, len: usize) -> Tensor<B, 2> {
    let ([m, k], [_, n]) = (a.dims(), b.dims());
    let body = chunks * len;
    if body == m {
        return matmul_raw(a.reshape([chunks, len, k]), b.unsqueeze_dim(0)).reshape([m, n]);
    }
    let head = matmul_raw(a.clone().slice([0..body, 0..k]).reshape([chunks, len, k]), b.clone().unsqueeze_dim(0)).reshape([body, n]);
    let tail = matmul_raw(a.slice([body..m, 0..k]), b);
    Tensor::cat(vec![head, tail], 0)
}

/// An elementwise operation of a tensor with one value per row, for [`row_broadcast`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOp {
    /// `x ∘ s`
    Mul,
    /// `x / s`
    Div,
    /// `x − s`
    Sub,
}

impl RowOp {
    fn apply<B: Backend, const K: usize>(self, x: Tensor<B, K>, s: Tensor<B, K>) -> Tensor<B, K> {
        match self {
            RowOp::Mul => x * s,
            RowOp::Div => x / s,
            RowOp::Sub => x - s,
        }
    }
}

/// `x op s` with `s` of `x`'s shape but a last dim of 1 (one value per row); over long rows
/// computed on blocks of each row (see the module notes), so that the backward's sum for `s`
/// is not one thread per row. Other shapes of `s`: the plain broadcast.
pub fn row_broadcast<B: Backend, const D: usize>(x: Tensor<B, D>, s: Tensor<B, D>, op: RowOp) -> Tensor<B, D> {
    row_broadcast_with(matches!(active(), Some(r) if r.reduce), x, s, op)
}

fn row_broadcast_with<B: Backend, const D: usize>(rewrite: bool, x: Tensor<B, D>, s: Tensor<B, D>, op: RowOp) -> Tensor<B, D> {
    let dims = x.dims();
    let len = dims[D - 1];
    let rows = dims.iter().product::<usize>() / len.max(1);
    let blocked = rewrite
        && two_stage(len)
        && s.dims()[..D - 1] == dims[..D - 1]
        && s.dims()[D - 1] == 1;
    if !blocked {
        return op.apply(x, s);
    }
    op.apply(x.reshape([rows, len / REDUCE_BLOCK, REDUCE_BLOCK]), s.reshape([rows, 1, 1])).reshape(dims)
}

/// `x.mean_dim(D - 1)`; over long rows, summed in blocks first (see the module notes).
pub fn mean_last_dim<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    match active() {
        Some(r) if r.reduce => mean_last_dim_two_stage(x),
        _ => x.mean_dim(D - 1),
    }
}

/// [`mean_last_dim`] on a backend primitive (for operations with a hand-written backward),
/// the same two-stage sum over long rows when the rewrites are on.
pub(crate) fn mean_last_dim_primitive<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    mean_last_dim_primitive_with::<B>(matches!(active(), Some(r) if r.reduce), x)
}

fn mean_last_dim_primitive_with<B: Backend>(rewrite: bool, x: FloatTensor<B>) -> FloatTensor<B> {
    use burn::tensor::{Shape, TensorMetadata};
    let dims = x.shape().to_vec();
    let last = dims.len() - 1;
    let len = dims[last];
    let rows = dims.iter().product::<usize>() / len.max(1);
    if !(rewrite && two_stage(len)) {
        return B::float_mean_dim(x, last);
    }
    let blocks = B::float_sum_dim(B::float_reshape(x, Shape::new([rows * (len / REDUCE_BLOCK), REDUCE_BLOCK])), 1);
    let sums = B::float_sum_dim(B::float_reshape(blocks, Shape::new([rows, len / REDUCE_BLOCK])), 1);
    let mut out = dims;
    out[last] = 1;
    B::float_reshape(B::float_div_scalar(sums, (len as f64).into()), Shape::from(out))
}

fn mean_last_dim_two_stage<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let dims = x.dims();
    let len = dims[D - 1];
    let rows = dims.iter().product::<usize>() / len.max(1);
    if !two_stage(len) {
        return x.mean_dim(D - 1);
    }
    let blocks: Tensor<B, 2> = x.reshape([rows * (len / REDUCE_BLOCK), REDUCE_BLOCK]).sum_dim(1).reshape([rows, len / REDUCE_BLOCK]);
    let mut out = dims;
    out[D - 1] = 1;
    blocks.sum_dim(1).div_scalar(len as f64).reshape(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TestAutodiff, TestBackend};
    use burn::tensor::{Distribution, Tolerance};

    /// A registered kernel takes every product of its backend type, plain and rewritten, and
    /// only that type's; unregistering restores `Tensor::matmul`. (NdArray<f64>: no other test
    /// uses it, so the registration cannot leak into them.)
    #[test]
    fn registered_kernels_take_the_products_of_their_backend() {
        use burn::tensor::ops::FloatTensorOps;
        use std::sync::atomic::AtomicUsize;
        type B64 = burn_ndarray::NdArray<f64>;
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        fn counting(lhs: FloatTensor<B64>, rhs: FloatTensor<B64>) -> FloatTensor<B64> {
            CALLS.fetch_add(1, Ordering::SeqCst);
            <B64 as FloatTensorOps<B64>>::float_matmul(lhs, rhs)
        }
        let device = Default::default();
        let a = Tensor::<B64, 2>::random([8, 4], Distribution::Default, &device);
        let b = Tensor::<B64, 2>::random([4, 3], Distribution::Default, &device);
        let expected = a.clone().matmul(b.clone());
        register_matmul_kernel::<B64>(counting);
        let routed = product(a.clone(), b.clone());
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        routed.into_data().assert_approx_eq::<f64>(&expected.into_data(), Tolerance::default());
        // rewritten products go through the kernel too (row chunks: batch + tail)
        let tall = Tensor::<B64, 2>::random([ROWS_MIN + 3, 4], Distribution::Default, &device);
        product_with(Rewrites::DEFAULT, tall, b.clone());
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
        product(Tensor::<TestBackend, 2>::ones([2, 2], &Default::default()), Tensor::ones([2, 2], &Default::default()));
        assert_eq!(CALLS.load(Ordering::SeqCst), 3, "another backend's products are untouched");
        unregister_matmul_kernel::<B64>();
        product(a, b);
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
    }

    /// A kernel registered as splitting the inner dim itself gets the small-output product whole
    /// (one call, rank 2); a plain registration gets the rewrite's batched chunks (rank 3).
    /// (`NdArray<f32, i32>`: an f32 backend type no other test registers.)
    #[test]
    fn splitting_kernels_get_small_output_products_whole() {
        use burn::tensor::ops::FloatTensorOps;
        use burn::tensor::TensorMetadata;
        use std::sync::Mutex;
        type F32 = burn_ndarray::NdArray<f32, i32>;
        static RANKS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
        fn recording(lhs: FloatTensor<F32>, rhs: FloatTensor<F32>) -> FloatTensor<F32> {
            RANKS.lock().unwrap().push(lhs.shape().num_dims());
            <F32 as FloatTensorOps<F32>>::float_matmul(lhs, rhs)
        }
        let device = Default::default();
        // f32 explicitly: ndarray's one CPU device keeps the float dtype another backend type
        // last used on it (an f64 test before this one made `random` give f64 here)
        let x = Tensor::<F32, 2>::random([128, 4096], Distribution::Default, &device).cast(burn::tensor::FloatDType::F32);
        let k = Tensor::<F32, 2>::random([4096, 4], Distribution::Default, &device).cast(burn::tensor::FloatDType::F32);
        assert_eq!(x.dtype(), DType::F32);
        let expected = x.clone().matmul(k.clone());
        register_matmul_kernel::<F32>(recording);
        let split = product_with(Rewrites::DEFAULT, x.clone(), k.clone());
        assert_eq!(std::mem::take(&mut *RANKS.lock().unwrap()), vec![3], "plain registration: the rewrite's batched chunks");
        register_matmul_kernel_splitting::<F32>(recording, |lhs| lhs == [128, 4096]);
        let whole = product_with(Rewrites::DEFAULT, x.clone(), k.clone());
        assert_eq!(std::mem::take(&mut *RANKS.lock().unwrap()), vec![2], "splitting registration: the product whole");
        product_with(Rewrites::DEFAULT, x.narrow(0, 0, 64), k);
        assert_eq!(std::mem::take(&mut *RANKS.lock().unwrap()), vec![3], "shapes the kernel does not split are rewritten");
        unregister_matmul_kernel::<F32>();
        for y in [split, whole] {
            y.into_data().assert_approx_eq::<f32>(&expected.clone().into_data(), Tolerance::relative(1e-4));
        }
    }

    #[test]
    fn plans_follow_the_shapes() {
        let r = Rewrites::DEFAULT;
        // LoRA's x·Aᵀ at 128 tokens × 4096, rank 4: inner split in 16 chunks; not in bf16
        assert_eq!(plan(r, 128, 4096, 4, DType::F32), Plan::InnerSplit { chunks: 16 });
        assert_eq!(plan(r, 128, 4096, 4, DType::BF16), Plan::Plain);
        // pair rows of the folding trunk: 65,536 rows in chunks of 512
        assert_eq!(plan(r, 65536, 128, 8, DType::BF16), Plan::RowChunks { chunks: 128, len: 512 });
        // 240 residues padded from a shorter crop: 57,600 rows, chunks of 256; 4097 rows: a remainder
        assert_eq!(plan(r, 240 * 240, 128, 8, DType::BF16), Plan::RowChunks { chunks: 225, len: 256 });
        assert_eq!(plan(r, 4097, 128, 8, DType::BF16), Plan::RowChunks { chunks: 8, len: 512 });
        // a big frozen weight is not broadcast per chunk
        assert_eq!(plan(r, 4096, 768, 3072, DType::F32), Plan::Plain);
        // a 7B projection at 128 tokens: plain
        assert_eq!(plan(r, 128, 4096, 4096, DType::BF16), Plan::Plain);
        assert_eq!(plan(Rewrites::parse(Some("none")), 128, 4096, 4, DType::F32), Plan::Plain);
    }

    #[test]
    fn parse_picks_subsets() {
        assert_eq!(Rewrites::parse(None), Rewrites::DEFAULT);
        assert_eq!(Rewrites::parse(Some("none")), Rewrites { inner: false, rows: false, reduce: false });
        assert_eq!(Rewrites::parse(Some("rows, reduce")), Rewrites { inner: false, rows: true, reduce: true });
        assert_eq!(Rewrites::parse(Some("inner,rows,reduce")), Rewrites::DEFAULT);
        assert_eq!(Rewrites::parse(Some("default")), Rewrites::DEFAULT);
    }

    /// Every rewritten shape gives the plain product's value and gradients (up to summation order).
    #[test]
    fn rewritten_products_match_the_plain_product() {
        let device = Default::default();
        let all = Rewrites::DEFAULT;
        for (m, k, n, want) in [
            (8, 2048, 4, Plan::InnerSplit { chunks: 8 }),
            (8192, 16, 8, Plan::RowChunks { chunks: 16, len: 512 }),
            (4352, 16, 8, Plan::RowChunks { chunks: 17, len: 256 }),
            (4099, 16, 8, Plan::RowChunks { chunks: 8, len: 512 }),
        ] {
            assert_eq!(plan(all, m, k, n, DType::F32), want);
            let a = Tensor::<TestAutodiff, 2>::random([m, k], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let b = Tensor::<TestAutodiff, 2>::random([n, k], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let weights = Tensor::<TestAutodiff, 2>::random([m, n], Distribution::Normal(0.0, 1.0), &device);
            let plain = a.clone().matmul(b.clone().transpose());
            let ours = product_with(all, a.clone(), b.clone().transpose());
            let scale = (k as f32).sqrt();
            ours.clone().into_data().assert_approx_eq::<f32>(&plain.clone().into_data(), Tolerance::absolute(1e-4 * scale));
            let gp = (plain * weights.clone()).sum().backward();
            let go = (ours * weights).sum().backward();
            for (x, tol) in [(&a, 1e-4 * (n as f32).sqrt()), (&b, 1e-4 * (m as f32).sqrt())] {
                x.grad(&go).unwrap().into_data().assert_approx_eq::<f32>(&x.grad(&gp).unwrap().into_data(), Tolerance::absolute(tol));
            }
        }
    }

    /// Blocked and plain broadcasts agree in value and in both gradients, for every op.
    #[test]
    fn row_broadcast_matches_the_plain_broadcast_with_gradients() {
        let device = Default::default();
        let x = Tensor::<TestAutodiff, 3>::random([2, 3, 2048], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let s = Tensor::<TestAutodiff, 3>::random([2, 3, 1], Distribution::Uniform(0.5, 2.0), &device).require_grad();
        let weights = Tensor::<TestAutodiff, 3>::random([2, 3, 2048], Distribution::Normal(0.0, 1.0), &device);
        for op in [RowOp::Mul, RowOp::Div, RowOp::Sub] {
            let plain = op.apply(x.clone(), s.clone());
            let blocked = row_broadcast_with(true, x.clone(), s.clone(), op);
            blocked.clone().into_data().assert_approx_eq::<f32>(&plain.clone().into_data(), Tolerance::absolute(1e-5));
            let gp = (plain * weights.clone()).sum().backward();
            let gb = (blocked * weights.clone()).sum().backward();
            for t in [&x, &s] {
                t.grad(&gb).unwrap().into_data().assert_approx_eq::<f32>(&t.grad(&gp).unwrap().into_data(), Tolerance::absolute(1e-3));
            }
        }
    }

    #[test]
    fn two_stage_mean_matches_mean_dim() {
        let device = Default::default();
        let x = Tensor::<TestBackend, 3>::random([2, 3, 2048], Distribution::Normal(1.0, 2.0), &device);
        let ours = mean_last_dim_two_stage(x.clone());
        assert_eq!(ours.dims(), [2, 3, 1]);
        ours.into_data().assert_approx_eq::<f32>(&x.clone().mean_dim(2).into_data(), Tolerance::absolute(1e-5));
        // many rows of a transformer's width (MiniLM: 384) take the two stages too
        let z = Tensor::<TestBackend, 2>::random([2048, 384], Distribution::Normal(1.0, 2.0), &device);
        mean_last_dim_two_stage(z.clone()).into_data().assert_approx_eq::<f32>(&z.mean_dim(1).into_data(), Tolerance::absolute(1e-5));
        // short rows: the plain reduction
        let y = Tensor::<TestBackend, 2>::random([4, 100], Distribution::Normal(0.0, 1.0), &device);
        mean_last_dim_two_stage(y.clone()).into_data().assert_approx_eq::<f32>(&y.mean_dim(1).into_data(), Tolerance::absolute(1e-6));
    }

    /// The primitive two-stage mean equals the one-stage mean (a rank-3 input, rows × 1024).
    #[test]
    fn primitive_two_stage_mean_equals_mean_dim() {
        let x = Tensor::<TestBackend, 3>::random([2, 3, 1024], Distribution::Normal(1.0, 2.0), &Default::default());
        let two = mean_last_dim_primitive_with::<TestBackend>(true, x.clone().into_primitive().tensor());
        let two: Tensor<TestBackend, 3> = Tensor::from_primitive(TensorPrimitive::Float(two));
        assert_eq!(two.dims(), [2, 3, 1]);
        two.into_data().assert_approx_eq::<f32>(&x.mean_dim(2).into_data(), Tolerance::absolute(1e-5));
    }
}
