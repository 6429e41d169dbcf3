//! Mode operations on matricized dense tensors `[batch, prod(dims)]`.
use crate::matmul::matmul;
use burn::tensor::{backend::Backend, Tensor};

/// Moves mode `mode` of a `[batch, prod(dims)]` tensor to the last position.
pub fn move_mode_last<B: Backend>(
    t: Tensor<B, 2>,
    dims: &[usize],
    mode: usize,
) -> (Tensor<B, 2>, Vec<usize>) {
    let batch = t.dims()[0];
    let pre: usize = dims[..mode].iter().product();
    let post: usize = dims[mode + 1..].iter().product();
    let n = dims[mode];
    let out = t.reshape([batch, pre, n, post]).swap_dims(2, 3).reshape([batch, pre * post * n]);
    let mut new_dims: Vec<usize> = dims.to_vec();
    let m = new_dims.remove(mode);
    new_dims.push(m);
    (out, new_dims)
}

/// Permutes the modes: output mode `i` is input mode `perm[i]`.
pub fn permute_modes<B: Backend>(t: Tensor<B, 2>, dims: &[usize], perm: &[usize]) -> Tensor<B, 2> {
    assert_eq!(perm.len(), dims.len(), "permutation length must equal tensor order");
    // Current position of each original mode; moving modes to the end in `perm` order leaves
    // them in exactly that order.
    let mut order: Vec<usize> = (0..dims.len()).collect();
    let mut cur_dims = dims.to_vec();
    let mut t = t;
    for &p in perm {
        let pos = order.iter().position(|&o| o == p).expect("valid permutation");
        let (nt, nd) = move_mode_last(t, &cur_dims, pos);
        t = nt;
        cur_dims = nd;
        let o = order.remove(pos);
        order.push(o);
    }
    t
}

/// Mode-`mode` product with `m: [new, old]`: replaces mode size `old` by `new`.
pub fn mode_product<B: Backend>(
    t: Tensor<B, 2>,
    dims: &[usize],
    mode: usize,
    m: Tensor<B, 2>,
) -> (Tensor<B, 2>, Vec<usize>) {
    let batch = t.dims()[0];
    let [new, old] = m.dims();
    assert_eq!(old, dims[mode], "mode product: matrix columns must equal the mode size");
    let pre: usize = dims[..mode].iter().product();
    let post: usize = dims[mode + 1..].iter().product();
    let out = matmul(t.reshape([batch * pre, old, post]).swap_dims(1, 2), m.transpose().unsqueeze::<3>())
        .swap_dims(1, 2)
        .reshape([batch, pre * new * post]);
    let mut nd = dims.to_vec();
    nd[mode] = new;
    (out, nd)
}
