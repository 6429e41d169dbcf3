//! AdamW with decoupled weight decay (PyTorch's `torch.optim.AdamW` update), parameter groups
//! chosen by module path (adapter vs. classification head), global-norm gradient clipping
//! (`torch.nn.utils.clip_grad_norm_`) and a state that can be written to / read from a checkpoint.
//!
//! Parameters that share learning rate, weight decay and step count are updated as one flat
//! tensor (PyTorch's multi-tensor `foreach` AdamW does the same on CUDA): their gradients are
//! joined by one operation (`lorta_core::flat_join`: a few kernel launches on GPU backends),
//! moments and values stay in flat buffers from step to step, and each parameter is a slice of
//! its buffer. A GPU step is bound by the host's cost per tensor
//! operation, and a per-parameter update records ~16 of them (LLaMA-2-7B with LoRA on q,k,v,o
//! has 256 adapter tensors). The state is still written and read per module path.
//!
//! burn 0.21's own `AdamW` is decoupled too (`p ← p·(1 − lr·wd) − lr·update`), but it clips
//! gradients per parameter only and keys its state by `ParamId`, which changes from one process to
//! the next; this one keys everything by module path so a resumed run continues bit for bit.
//!
//! Update for a parameter `p` with gradient `g` (already scaled by the clipping coefficient),
//! step count `t` (from 1), learning rate `lr` and weight decay `wd`:
//! ```text
//! p ← p · (1 − lr·wd)
//! m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
//! p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
//! ```
//! Moments and the update are f32 whatever the parameter's dtype. A bf16/f16 parameter (`fold
//! --dtype bf16` trains its heads, adapters and, under `full`, the trunk in the compute dtype) also
//! keeps an f32 master copy, as PyTorch's mixed precision keeps f32 weights: the update is applied
//! to the master and the parameter is its rounding, so steps smaller than half a bf16 spacing
//! (lr 1e-4 on weights ~0.03 is one) are not rounded away.
use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};
use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ops::FloatTensor, DType, ElementConversion, FloatDType, Tensor, TensorData};
use lorta_core::flat_join::join_flat;
use serde::{Deserialize, Serialize};

/// AdamW hyper-parameters shared by all groups.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// Learning rate and weight decay of one parameter group.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupLr {
    pub lr: f64,
    pub weight_decay: f64,
}

struct Moments<B: Backend> {
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
    t: u64,
    /// f32 master copy of a half-precision parameter.
    master: Option<Tensor<B, 1>>,
}

/// Whether a parameter of this dtype gets an f32 master copy.
fn keeps_master(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16)
}

/// Optimizer state for the inner (non-autodiff) backend `B`, keyed by module path.
pub struct AdamW<B: Backend> {
    pub config: AdamWConfig,
    /// Parameters not in a buffer: after loading a checkpoint, or left out of the last step.
    state: BTreeMap<String, Moments<B>>,
    /// The last step's flat buffers: authoritative for their parameters' values, as a master
    /// copy is (replacing trainable parameters between steps needs a new optimizer or
    /// [`load_tensors`](Self::load_tensors)).
    buffers: Vec<Buffer<B>>,
    /// How many buffers were assembled from per-parameter parts (tests: a steady run reuses them).
    layouts: usize,
}

/// Joins the module-path stack kept by visitors and mappers.
#[derive(Default)]
struct PathStack(Vec<String>);

impl PathStack {
    fn push(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn pop(&mut self) {
        self.0.pop();
    }
    fn path(&self) -> String {
        self.0.join(".")
    }
}

/// Squared global L2 norm of all gradients of the model's parameters, summed on the device.
struct NormVisitor<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    sum_sq: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for NormVisitor<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let n = g.shape().num_elements();
            let s = to_f32(g.reshape([n])).square().sum();
            self.sum_sq = Some(match self.sum_sq.take() {
                Some(acc) => acc + s,
                None => s,
            });
        }
    }
}

fn to_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if x.dtype() == DType::F32 {
        x
    } else {
        x.cast(FloatDType::F32)
    }
}

/// Global gradient norm of `model`'s parameters (those that received a gradient), as a
/// one-element tensor on the device (no host synchronisation); `None` without gradients.
pub fn global_grad_norm_device<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> Option<Tensor<B::InnerBackend, 1>> {
    let mut v = NormVisitor::<B> { grads, sum_sq: None };
    model.visit(&mut v);
    v.sum_sq.map(|s| s.sqrt())
}

/// Global gradient norm of `model`'s parameters, read back to the host.
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, grads: &GradientsParams) -> f64 {
    global_grad_norm_device::<B, M>(model, grads).map_or(0.0, |n| n.into_scalar().elem::<f64>())
}

/// `clip_grad_norm_`'s coefficient: `max_norm / (norm + 1e-6)` when that is below 1, else 1.
pub fn clip_coefficient(norm: f64, max_norm: Option<f64>) -> f64 {
    match max_norm {
        Some(max) if max > 0.0 => (max / (norm + 1e-6)).min(1.0),
        _ => 1.0,
    }
}

/// One parameter's share of a step, gathered before the update.
struct Member<B: Backend> {
    id: ParamId,
    path: String,
    shape: Vec<usize>,
    dtype: DType,
    require_grad: bool,
    lr: GroupLr,
    /// Step count after this step.
    t: u64,
    /// f32 gradient in the parameter's shape (and layout: [`join_flat`] reads strided ones in
    /// place).
    grad: Option<FloatTensor<B>>,
    /// Flat f32 value (its master where kept) and moments, for a parameter not in a buffer.
    own: Option<[Tensor<B, 1>; 3]>,
}

/// Parameters updated together in the last step (same learning rate, weight decay and step
/// count): moments and f32 values as flat tensors, so that the next step over the same
/// parameters neither joins nor splits them (a GPU step of a small model is bound by the host's
/// cost per tensor operation: ~16 per parameter when each had its own update).
struct Buffer<B: Backend> {
    t: u64,
    /// `(path, elements, dtype)` in order.
    members: Vec<(String, usize, DType)>,
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
    p: Tensor<B, 1>,
}

impl<B: Backend> Buffer<B> {
    fn offset(&self, path: &str) -> Option<(usize, usize)> {
        let mut start = 0;
        for (p, n, _) in &self.members {
            if p == path {
                return Some((start, *n));
            }
            start += n;
        }
        None
    }

    /// `x`'s part for the member at `start` with `n` elements (the whole when it is alone).
    fn part(&self, x: &Tensor<B, 1>, start: usize, n: usize) -> Tensor<B, 1> {
        if self.members.len() == 1 {
            x.clone()
        } else {
            x.clone().slice([start..start + n])
        }
    }

    /// Each member's own state.
    fn split(&self) -> Vec<(String, Moments<B>)> {
        let mut start = 0;
        let mut out = Vec::with_capacity(self.members.len());
        for (path, n, dtype) in &self.members {
            let master = keeps_master(*dtype).then(|| self.part(&self.p, start, *n));
            out.push((path.clone(), Moments { m: self.part(&self.m, start, *n), v: self.part(&self.v, start, *n), t: self.t, master }));
            start += n;
        }
        out
    }
}

/// Takes every parameter's gradient out of `grads`, with its state where it is not in a buffer
/// (zeros on a first step).
struct Gather<'a, B: AutodiffBackend, F: Fn(&str) -> GroupLr> {
    opt: &'a mut AdamW<B::InnerBackend>,
    /// Step count of each buffered parameter.
    buffered: HashMap<String, u64>,
    grads: &'a mut GradientsParams,
    group: &'a F,
    path: PathStack,
    members: Vec<Member<B::InnerBackend>>,
}

impl<B: AutodiffBackend, F: Fn(&str) -> GroupLr> ModuleVisitor<B> for Gather<'_, B, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) else {
            return;
        };
        let value = param.val();
        let require_grad = value.is_require_grad();
        let inner = value.inner();
        let shape = inner.dims().to_vec();
        let n = shape.iter().product::<usize>();
        let dtype = inner.dtype();
        let path = self.path.path();
        let lr = (self.group)(&path);
        // moments and the update in f32 whatever the parameter's dtype (mixed precision)
        let (t, own) = match self.buffered.get(&path) {
            Some(&t) => (t, None),
            None => {
                let device = inner.device();
                let (t, m, v, master) = match self.opt.state.remove(&path) {
                    Some(s) => (s.t, s.m, s.v, s.master),
                    None => (0, Tensor::zeros([n], &device), Tensor::zeros([n], &device), None),
                };
                let p = master.unwrap_or_else(|| to_f32(inner.reshape([n])));
                (t, Some([p, m, v]))
            }
        };
        self.members.push(Member { id: param.id, path, shape, dtype, require_grad, lr, t: t + 1, grad: Some(to_f32(grad).into_primitive().tensor()), own });
    }
}

/// Puts each updated parameter back (in its dtype and shape).
struct Scatter<B: AutodiffBackend> {
    values: HashMap<ParamId, (Tensor<B::InnerBackend, 1>, Vec<usize>, DType, bool)>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Scatter<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some((p, shape, dtype, require_grad)) = self.values.remove(&id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let p = if dtype == DType::F32 { p } else { p.cast(dtype) };
        let shape: [usize; D] = shape.try_into().expect("a parameter keeps its rank");
        let mut out = Tensor::<B, D>::from_inner(p.reshape(shape));
        if require_grad {
            out = out.require_grad();
        }
        Param::from_mapped_value(id, out, mapper)
    }
}

/// `xs` as one flat tensor (one operation; none for a single part).
fn join<B: Backend>(mut xs: Vec<Tensor<B, 1>>) -> Tensor<B, 1> {
    if xs.len() == 1 {
        xs.pop().expect("one part")
    } else {
        Tensor::cat(xs, 0)
    }
}

impl<B: Backend> AdamW<B> {
    pub fn new(config: AdamWConfig) -> Self {
        AdamW { config, state: BTreeMap::new(), buffers: Vec::new(), layouts: 0 }
    }

    /// One step over every parameter of `model` that has a gradient in `grads`. `group` maps a
    /// parameter's module path to its learning rate and weight decay; with `max_grad_norm`,
    /// gradients are first scaled so that their global norm is at most that
    /// (`clip_grad_norm_`'s `max_norm / (norm + 1e-6)`, computed on the device: no host
    /// synchronisation). Returns the model and, when clipping, the global gradient norm before
    /// clipping (on the device).
    pub fn step<AB, M, F>(
        &mut self,
        model: M,
        mut grads: GradientsParams,
        group: &F,
        max_grad_norm: Option<f64>,
    ) -> (M, Option<Tensor<B, 1>>)
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
        F: Fn(&str) -> GroupLr,
    {
        let buffered = self.buffers.iter().flat_map(|b| b.members.iter().map(|(p, _, _)| (p.clone(), b.t))).collect();
        let mut gather = Gather::<AB, F> { opt: self, buffered, grads: &mut grads, group, path: PathStack::default(), members: Vec::new() };
        model.visit(&mut gather);
        let mut members = gather.members;
        // parameters sharing learning rate, weight decay and step count are updated as one flat tensor
        let mut groups: BTreeMap<(u64, u64, u64), Vec<usize>> = BTreeMap::new();
        for (i, member) in members.iter().enumerate() {
            groups.entry((member.lr.lr.to_bits(), member.lr.weight_decay.to_bits(), member.t)).or_default().push(i);
        }
        // one operation per group (a few kernel launches on GPU backends, not one per parameter)
        let joined_grads: Vec<Tensor<B, 1>> =
            groups.values().map(|idx| join_flat::<B>(idx.iter().map(|&i| members[i].grad.take().expect("taken once")).collect())).collect();
        let (norm, scale) = match max_grad_norm {
            Some(max) if max > 0.0 && !joined_grads.is_empty() => {
                let sum_sq = joined_grads.iter().map(|g| g.clone().square().sum()).reduce(|a, b| a + b).expect("one group");
                let norm = sum_sq.sqrt();
                let scale = norm.clone().add_scalar(1e-6).recip().mul_scalar(max).clamp_max(1.0);
                (Some(norm), Some(scale))
            }
            _ => (None, None),
        };
        let c = self.config;
        let mut old: Vec<Option<Buffer<B>>> = std::mem::take(&mut self.buffers).into_iter().map(Some).collect();
        let mut values = HashMap::new();
        let stepped: std::collections::HashSet<String> = members.iter().map(|m| m.path.clone()).collect();
        for (idx, g) in groups.values().zip(joined_grads) {
            let g = match &scale {
                Some(s) => g.mul(s.clone()),
                None => g,
            };
            let (lr, t) = (members[idx[0]].lr, members[idx[0]].t);
            let paths: Vec<&str> = idx.iter().map(|&i| members[i].path.as_str()).collect();
            // the same parameters as a buffer of the last step: its tensors as they are (the
            // learning rate may have moved with the schedule: groups are per step)
            let same = old.iter().position(|b| {
                b.as_ref().is_some_and(|b| b.t + 1 == t && b.members.iter().map(|(p, _, _)| p.as_str()).eq(paths.iter().copied()))
            });
            let [p, m, v] = match same {
                Some(j) => {
                    let b = old[j].take().expect("present");
                    [b.p, b.m, b.v]
                }
                None => {
                    self.layouts += 1;
                    let mut parts: [Vec<Tensor<B, 1>>; 3] = Default::default();
                    for &i in idx {
                        let own = match members[i].own.take() {
                            Some(own) => own,
                            None => {
                                let path = &members[i].path;
                                let b = old.iter().flatten().find(|b| b.offset(path).is_some()).expect("a buffered parameter is in a buffer");
                                let (start, n) = b.offset(path).expect("found");
                                [b.part(&b.p, start, n), b.part(&b.m, start, n), b.part(&b.v, start, n)]
                            }
                        };
                        for (part, x) in parts.iter_mut().zip(own) {
                            part.push(x);
                        }
                    }
                    parts.map(join)
                }
            };
            let m = m.mul_scalar(c.beta1).add(g.clone().mul_scalar(1.0 - c.beta1));
            let v = v.mul_scalar(c.beta2).add(g.square().mul_scalar(1.0 - c.beta2));
            let bc1 = 1.0 - c.beta1.powi(t as i32);
            let bc2 = 1.0 - c.beta2.powi(t as i32);
            let p = if lr.weight_decay != 0.0 { p.mul_scalar(1.0 - lr.lr * lr.weight_decay) } else { p };
            let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(c.eps);
            let p = p - m.clone().div(denom).mul_scalar(lr.lr / bc1);
            let buffer = Buffer {
                t,
                members: idx.iter().map(|&i| (members[i].path.clone(), members[i].shape.iter().product(), members[i].dtype)).collect(),
                m,
                v,
                p,
            };
            let mut start = 0;
            for &i in idx {
                let member = &members[i];
                let n: usize = member.shape.iter().product();
                values.insert(member.id, (buffer.part(&buffer.p, start, n), member.shape.clone(), member.dtype, member.require_grad));
                start += n;
            }
            self.buffers.push(buffer);
        }
        // parameters of the last step's buffers that got no gradient now keep their own state
        for b in old.into_iter().flatten() {
            for (path, st) in b.split() {
                if !stepped.contains(&path) {
                    self.state.insert(path, st);
                }
            }
        }
        let mut scatter = Scatter::<AB> { values };
        (model.map(&mut scatter), norm)
    }

    /// Number of parameters with a state.
    pub fn len(&self) -> usize {
        self.state.len() + self.buffers.iter().map(|b| b.members.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Host copies of the state: tensors `adamw.m.<path>`, `adamw.v.<path>` (and
    /// `adamw.master.<path>` for half-precision parameters) and step counts.
    pub fn to_tensors(&self) -> (BTreeMap<String, TensorData>, BTreeMap<String, u64>) {
        let mut tensors = BTreeMap::new();
        let mut steps = BTreeMap::new();
        let buffered: Vec<(String, Moments<B>)> = self.buffers.iter().flat_map(|b| b.split()).collect();
        for (path, s) in self.state.iter().chain(buffered.iter().map(|(p, s)| (p, s))) {
            tensors.insert(format!("adamw.m.{path}"), s.m.clone().into_data());
            tensors.insert(format!("adamw.v.{path}"), s.v.clone().into_data());
            if let Some(master) = &s.master {
                tensors.insert(format!("adamw.master.{path}"), master.clone().into_data());
            }
            steps.insert(path.clone(), s.t);
        }
        (tensors, steps)
    }

    /// Restores the state written by [`to_tensors`](Self::to_tensors); `what` names the file.
    pub fn load_tensors(
        &mut self,
        tensors: &mut BTreeMap<String, TensorData>,
        steps: &BTreeMap<String, u64>,
        device: &B::Device,
        what: &str,
    ) -> Result<()> {
        self.state.clear();
        self.buffers.clear();
        for (path, &t) in steps {
            let mut take = |kind: &str, required: bool| -> Result<Option<Tensor<B, 1>>> {
                let key = format!("adamw.{kind}.{path}");
                let Some(d) = tensors.remove(&key) else {
                    return if required { bail!("{what}: optimizer tensor `{key}` missing") } else { Ok(None) };
                };
                if d.shape.len() != 1 {
                    bail!("{what}: optimizer tensor `{key}` has shape {:?}, expected one dimension", d.shape);
                }
                Ok(Some(Tensor::from_data(d, (device, DType::F32))))
            };
            let (m, v) = (take("m", true)?.unwrap(), take("v", true)?.unwrap());
            let master = take("master", false)?;
            self.state.insert(path.clone(), Moments { m, v, t, master });
        }
        if let Some(k) = tensors.keys().find(|k| k.starts_with("adamw.")) {
            bail!("{what}: optimizer tensor `{k}` has no step count in the checkpoint's state");
        }
        Ok(())
    }
}

/// The trainable parameters (`require_grad`) of a model, by module path, on the host.
pub fn trainable_tensors<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M) -> BTreeMap<String, TensorData> {
    struct V<B: Backend> {
        path: PathStack,
        out: BTreeMap<String, TensorData>,
        _b: std::marker::PhantomData<B>,
    }
    impl<B: Backend> ModuleVisitor<B> for V<B> {
        fn enter_module(&mut self, name: &str, _c: &str) {
            self.path.push(name);
        }
        fn exit_module(&mut self, _name: &str, _c: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let t = param.val();
            if t.is_require_grad() {
                self.out.insert(self.path.path(), t.into_data());
            }
        }
    }
    let mut v = V::<B> { path: PathStack::default(), out: BTreeMap::new(), _b: std::marker::PhantomData };
    model.visit(&mut v);
    v.out
}

/// Module paths and sizes of the trainable parameters.
pub fn trainable_paths<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M) -> Vec<(String, usize)> {
    trainable_tensors::<B, M>(model).into_iter().map(|(k, d)| (k, d.shape.iter().product())).collect()
}

/// Replaces every trainable parameter of `model` with the tensor stored under its path
/// (shape-checked). Every trainable parameter must be present; keys are consumed.
pub fn load_trainable<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: M,
    tensors: &mut BTreeMap<String, TensorData>,
    what: &str,
) -> Result<M> {
    struct L<'a, B: Backend> {
        path: PathStack,
        tensors: &'a mut BTreeMap<String, TensorData>,
        errors: Vec<String>,
        _b: std::marker::PhantomData<B>,
    }
    impl<B: AutodiffBackend> ModuleMapper<B> for L<'_, B> {
        fn enter_module(&mut self, name: &str, _c: &str) {
            self.path.push(name);
        }
        fn exit_module(&mut self, _name: &str, _c: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            if !tensor.is_require_grad() {
                return Param::from_mapped_value(id, tensor, mapper);
            }
            let path = self.path.path();
            let Some(d) = self.tensors.remove(&path) else {
                self.errors.push(format!("parameter `{path}` missing"));
                return Param::from_mapped_value(id, tensor, mapper);
            };
            let expected = tensor.dims().to_vec();
            if d.shape.to_vec() != expected {
                self.errors.push(format!("parameter `{path}` has shape {:?}, the model expects {expected:?}", d.shape));
                return Param::from_mapped_value(id, tensor, mapper);
            }
            // in the model's dtype (a bf16 parameter read back as the default float type
            // made a resumed bf16 `fold` run fail with a dtype mismatch)
            let (device, dtype) = (tensor.device(), tensor.dtype());
            let t = Tensor::<B, D>::from_data(d, (&device, dtype)).require_grad();
            Param::from_mapped_value(id, t, mapper)
        }
    }
    let mut l = L::<B> { path: PathStack::default(), tensors, errors: Vec::new(), _b: std::marker::PhantomData };
    let model = model.map(&mut l);
    if !l.errors.is_empty() {
        bail!("{what}: {}", l.errors.join("; "));
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::tensor::Tolerance;

    type TB = burn_autodiff::Autodiff<crate::backend::NdArray>;

    #[derive(Module, Debug)]
    struct Toy<B: Backend> {
        w: Param<Tensor<B, 1>>,
        head: Param<Tensor<B, 2>>,
    }

    fn toy(w: [f32; 3], h: [[f32; 2]; 1]) -> Toy<TB> {
        let d = Default::default();
        Toy {
            w: Param::from_tensor(Tensor::from_floats(w, &d).require_grad()),
            head: Param::from_tensor(Tensor::from_floats(h, &d).require_grad()),
        }
    }

    fn loss(m: &Toy<TB>) -> Tensor<TB, 1> {
        // L = Σ w² · c + Σ head   → ∂L/∂w = 2cw, ∂L/∂head = 1
        let c = Tensor::<TB, 1>::from_floats([1.0, 2.0, 3.0], &Default::default());
        (m.w.val().square() * c).sum() + m.head.val().sum()
    }

    fn grads_of(m: &Toy<TB>) -> GradientsParams {
        GradientsParams::from_grads::<TB, Toy<TB>>(loss(m).backward(), m)
    }

    /// Hand computation of PyTorch's AdamW for one scalar parameter.
    fn reference(p0: f64, grads: &[f64], lr: f64, wd: f64) -> f64 {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        let (mut p, mut m, mut v) = (p0, 0.0, 0.0);
        for (i, &g) in grads.iter().enumerate() {
            let t = (i + 1) as i32;
            p *= 1.0 - lr * wd;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            p -= lr / (1.0 - b1.powi(t)) * m / (v.sqrt() / (1.0 - b2.powi(t)).sqrt() + eps);
        }
        p
    }

    #[test]
    fn adamw_matches_hand_computed_decoupled_steps() {
        let mut model = toy([0.5, -1.0, 2.0], [[0.25, -0.75]]);
        let mut opt = AdamW::<crate::backend::NdArray>::new(AdamWConfig::default());
        let group = |path: &str| {
            if path.starts_with("head") {
                GroupLr { lr: 0.1, weight_decay: 0.0 }
            } else {
                GroupLr { lr: 0.01, weight_decay: 0.5 }
            }
        };
        // Track each scalar's gradient history by replaying the computation on f64.
        let mut w = [0.5f64, -1.0, 2.0];
        let mut hist: [Vec<f64>; 3] = Default::default();
        for _ in 0..3 {
            let grads = grads_of(&model);
            for i in 0..3 {
                hist[i].push(2.0 * (i as f64 + 1.0) * w[i]);
            }
            let (m2, _) = opt.step::<TB, _, _>(model, grads, &group, None);
            model = m2;
            for i in 0..3 {
                w[i] = reference([0.5, -1.0, 2.0][i], &hist[i], 0.01, 0.5);
            }
        }
        let got: Vec<f32> = model.w.val().into_data().to_vec().unwrap();
        for i in 0..3 {
            assert!((got[i] as f64 - w[i]).abs() < 1e-6, "w[{i}]: {} vs {}", got[i], w[i]);
        }
        let head: Vec<f32> = model.head.val().into_data().to_vec().unwrap();
        let h0 = reference(0.25, &[1.0, 1.0, 1.0], 0.1, 0.0);
        assert!((head[0] as f64 - h0).abs() < 1e-6, "{} vs {h0}", head[0]);
        assert_eq!(opt.len(), 2);
        // Decoupled decay: with zero gradient the parameter shrinks by exactly (1 − lr·wd).
        let p = reference(2.0, &[0.0], 0.01, 0.5);
        assert!((p - 2.0 * (1.0 - 0.005)).abs() < 1e-12);
    }

    #[test]
    fn matches_burn_adamw_single_step() {
        // burn's own AdamW is decoupled as well: one step from zero state must agree.
        use burn::optim::{AdamWConfig as BurnCfg, Optimizer};
        let model = toy([0.5, -1.0, 2.0], [[0.25, -0.75]]);
        let grads = grads_of(&model);
        let mut theirs = BurnCfg::new().with_weight_decay(0.5).with_epsilon(1e-8).init::<TB, Toy<TB>>();
        let a = theirs.step(0.01, model.clone(), grads);
        let grads = grads_of(&model);
        let mut ours = AdamW::<crate::backend::NdArray>::new(AdamWConfig::default());
        let (b, _) = ours.step::<TB, _, _>(model, grads, &|_: &str| GroupLr { lr: 0.01, weight_decay: 0.5 }, None);
        a.w.val().into_data().assert_approx_eq::<f32>(&b.w.val().into_data(), Tolerance::absolute(1e-6));
    }

    #[test]
    fn global_norm_clipping() {
        let model = toy([3.0, 0.0, 0.0], [[0.0, 0.0]]);
        // grads: w = [6, 0, 0], head = [1, 1] → norm √38
        let grads = grads_of(&model);
        let n = global_grad_norm::<TB, _>(&model, &grads);
        assert!((n - 38f64.sqrt()).abs() < 1e-5, "{n}");
        assert!((clip_coefficient(n, Some(1.0)) - 1.0 / (n + 1e-6)).abs() < 1e-12);
        assert_eq!(clip_coefficient(n, Some(1000.0)), 1.0);
        assert_eq!(clip_coefficient(n, None), 1.0);
        // With clipping, the first Adam step is unchanged in direction (sign) but the state holds
        // the clipped gradient: m = 0.1 · g · coef.
        let mut opt = AdamW::<crate::backend::NdArray>::new(AdamWConfig::default());
        let (_, norm) = opt.step::<TB, _, _>(model, grads, &|_: &str| GroupLr { lr: 0.1, weight_decay: 0.0 }, Some(1.0));
        let norm = norm.expect("clipping reports the norm").into_scalar().elem::<f64>();
        assert!((norm - 38f64.sqrt()).abs() < 1e-5);
        let (t, _) = opt.to_tensors();
        let m: Vec<f32> = t["adamw.m.w"].to_vec().unwrap();
        assert!((m[0] as f64 - 0.1 * 6.0 / (norm + 1e-6)).abs() < 1e-6, "{m:?}");
    }

    #[test]
    fn a_parameter_without_gradient_keeps_its_state() {
        // w and head share a group: one buffer in step 1; step 2 updates w alone (head has no
        // gradient: its state leaves the buffer unchanged); step 3 both again, at different step counts
        let mut model = toy([0.5, -1.0, 2.0], [[0.25, -0.75]]);
        let mut opt = AdamW::<crate::backend::NdArray>::new(AdamWConfig::default());
        let (lr, wd) = (0.01, 0.5);
        let group = |_: &str| GroupLr { lr, weight_decay: wd };
        let mut w = [0.5f64, -1.0, 2.0];
        let mut hist: [Vec<f64>; 3] = Default::default();
        for step in 0..3 {
            let mut grads = grads_of(&model);
            if step == 1 {
                grads.remove::<crate::backend::NdArray, 2>(model.head.id).expect("head has a gradient");
            }
            for i in 0..3 {
                hist[i].push(2.0 * (i as f64 + 1.0) * w[i]);
            }
            model = opt.step::<TB, _, _>(model, grads, &group, None).0;
            for i in 0..3 {
                w[i] = reference([0.5, -1.0, 2.0][i], &hist[i], lr, wd);
            }
            assert_eq!(opt.len(), 2, "step {step}: both parameters keep a state");
        }
        let got: Vec<f32> = model.w.val().into_data().to_vec().unwrap();
        for i in 0..3 {
            assert!((got[i] as f64 - w[i]).abs() < 1e-6, "w[{i}]: {} vs {}", got[i], w[i]);
        }
        let head: Vec<f32> = model.head.val().into_data().to_vec().unwrap();
        for (j, h0) in [0.25, -0.75].into_iter().enumerate() {
            let want = reference(h0, &[1.0, 1.0], lr, wd);
            assert!((head[j] as f64 - want).abs() < 1e-6, "head[{j}]: {} vs {want} (two updates, not three)", head[j]);
        }
        let (_, steps) = opt.to_tensors();
        assert_eq!(steps.get("w"), Some(&3));
        assert_eq!(steps.get("head"), Some(&2));
        // buffers assembled: step 1 (w, head), step 2 (w alone), step 3 (head from its own state;
        // w's buffer of step 2 reused)
        assert_eq!(opt.layouts, 3);
    }

    #[test]
    fn a_changing_learning_rate_keeps_the_buffers() {
        // a linear schedule moves the learning rate every step: the parameters stay one buffer
        let mut model = toy([0.5, -1.0, 2.0], [[0.25, -0.75]]);
        let mut opt = AdamW::<crate::backend::NdArray>::new(AdamWConfig::default());
        let lrs = [0.01, 0.02, 0.005, 0.0125];
        let mut w = 0.5f64;
        let mut hist = Vec::new();
        let mut p = w;
        for lr in lrs {
            let grads = grads_of(&model);
            hist.push(2.0 * w);
            model = opt.step::<TB, _, _>(model, grads, &|_: &str| GroupLr { lr, weight_decay: 0.0 }, None).0;
            // PyTorch's AdamW with the learning rate of each step
            let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
            let (mut m, mut v) = (0.0, 0.0);
            p = 0.5;
            for (i, &g) in hist.iter().enumerate() {
                let t = (i + 1) as i32;
                m = b1 * m + (1.0 - b1) * g;
                v = b2 * v + (1.0 - b2) * g * g;
                p -= lrs[i] / (1.0 - b1.powi(t)) * m / (v.sqrt() / (1.0 - b2.powi(t)).sqrt() + eps);
            }
            w = p;
        }
        let got: Vec<f32> = model.w.val().into_data().to_vec().unwrap();
        assert!((got[0] as f64 - p).abs() < 1e-6, "{} vs {p}", got[0]);
        assert_eq!(opt.layouts, 1, "one buffer, assembled once");
    }

    #[test]
    fn state_and_params_round_trip() {
        let mut model = toy([0.5, -1.0, 2.0], [[0.25, -0.75]]);
        let mut opt = AdamW::<crate::backend::NdArray>::new(AdamWConfig::default());
        let group = |_: &str| GroupLr { lr: 0.05, weight_decay: 0.1 };
        for _ in 0..2 {
            let grads = grads_of(&model);
            model = opt.step::<TB, _, _>(model, grads, &group, None).0;
        }
        let params = trainable_tensors::<TB, _>(&model);
        assert_eq!(params.keys().cloned().collect::<Vec<_>>(), vec!["head".to_string(), "w".to_string()]);
        let (mut t, steps) = opt.to_tensors();
        let mut opt2 = AdamW::<crate::backend::NdArray>::new(AdamWConfig::default());
        opt2.load_tensors(&mut t, &steps, &Default::default(), "test").unwrap();
        let mut p = params.clone();
        let mut model2 = load_trainable::<TB, _>(toy([0.0; 3], [[0.0, 0.0]]), &mut p, "test").unwrap();
        assert!(p.is_empty());
        // One more step on both: identical.
        let grads = grads_of(&model);
        model = opt.step::<TB, _, _>(model, grads, &group, None).0;
        let grads = grads_of(&model2);
        model2 = opt2.step::<TB, _, _>(model2, grads, &group, None).0;
        assert_eq!(model.w.val().into_data(), model2.w.val().into_data());
        // Missing / mis-shaped parameters are reported by path.
        let mut bad = params.clone();
        bad.remove("w");
        let err = load_trainable::<TB, _>(toy([0.0; 3], [[0.0, 0.0]]), &mut bad, "ckpt.safetensors").unwrap_err();
        assert!(err.to_string().contains("ckpt.safetensors: parameter `w` missing"), "{err}");
    }

    /// A parameter whose dtype is not the backend's default float keeps it through a checkpoint
    /// (f64 on ndarray here; bf16 on CUDA, where a resumed `fold --dtype bf16` run failed).
    #[test]
    fn loading_keeps_each_parameters_dtype() {
        let cast = |m: Toy<TB>| Toy { w: m.w.map(|t| t.cast(DType::F64).detach().require_grad()), head: m.head };
        let model = cast(toy([0.5, -1.0, 2.0], [[0.25, -0.75]]));
        let mut params = trainable_tensors::<TB, _>(&model);
        assert_eq!(params["w"].dtype, DType::F64);
        let loaded = load_trainable::<TB, _>(cast(toy([0.0; 3], [[0.0, 0.0]])), &mut params, "test").unwrap();
        assert_eq!(loaded.w.val().dtype(), DType::F64);
        assert_eq!(loaded.head.val().dtype(), DType::F32);
        assert_eq!(loaded.w.val().into_data(), model.w.val().into_data());
    }

    /// Master copies travel with the optimizer state; only half-precision parameters keep one.
    #[test]
    fn master_copies_round_trip() {
        assert!(keeps_master(DType::BF16) && keeps_master(DType::F16));
        assert!(!keeps_master(DType::F32) && !keeps_master(DType::F64));
        let d = Default::default();
        let mut opt = AdamW::<crate::backend::NdArray>::new(AdamWConfig::default());
        let t = |v: [f32; 2]| Tensor::<crate::backend::NdArray, 1>::from_floats(v, &d);
        opt.state.insert("a".into(), Moments { m: t([1.0, 2.0]), v: t([3.0, 4.0]), t: 5, master: Some(t([0.125, -0.5])) });
        opt.state.insert("b".into(), Moments { m: t([1.0, 2.0]), v: t([3.0, 4.0]), t: 2, master: None });
        let (mut tensors, steps) = opt.to_tensors();
        assert!(tensors.contains_key("adamw.master.a") && !tensors.contains_key("adamw.master.b"));
        let mut back = AdamW::<crate::backend::NdArray>::new(AdamWConfig::default());
        back.load_tensors(&mut tensors, &steps, &d, "test").unwrap();
        assert_eq!(back.state["a"].master.clone().unwrap().into_data(), t([0.125, -0.5]).into_data());
        assert!(back.state["b"].master.is_none());
        assert_eq!(back.state["a"].t, 5);
    }
}
