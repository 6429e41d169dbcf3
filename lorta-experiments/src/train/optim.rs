//! AdamW with decoupled weight decay (PyTorch's `torch.optim.AdamW` update), parameter groups
//! chosen by module path (adapter vs. classification head), global-norm gradient clipping
//! (`torch.nn.utils.clip_grad_norm_`) and a state that can be written to / read from a checkpoint.
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
use std::collections::BTreeMap;

use anyhow::{bail, Result};
use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, ElementConversion, FloatDType, Tensor, TensorData};
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
    state: BTreeMap<String, Moments<B>>,
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

fn to_f32<B: Backend>(x: Tensor<B, 1>) -> Tensor<B, 1> {
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

struct StepMapper<'a, B: AutodiffBackend, F: Fn(&str) -> GroupLr> {
    opt: &'a mut AdamW<B::InnerBackend>,
    grads: &'a mut GradientsParams,
    group: &'a F,
    /// Clipping coefficient (one element, on the device); `None`: no clipping.
    scale: Option<Tensor<B::InnerBackend, 1>>,
    path: PathStack,
}

impl<B: AutodiffBackend, F: Fn(&str) -> GroupLr> ModuleMapper<B> for StepMapper<'_, B, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let path = self.path.path();
        let g = (self.group)(&path);
        let inner = tensor.inner();
        let shape = inner.shape();
        let n = shape.num_elements();
        let device = inner.device();
        // Moments and the update in f32 whatever the parameter's dtype (mixed precision).
        let param_dtype = inner.dtype();
        let grad = to_f32(grad.reshape([n]));
        let grad = match &self.scale {
            Some(s) => grad.mul(s.clone()),
            None => grad,
        };
        let c = self.opt.config;
        let st = self.opt.state.remove(&path).unwrap_or_else(|| Moments {
            m: Tensor::zeros([n], &device),
            v: Tensor::zeros([n], &device),
            t: 0,
            master: None,
        });
        let t = st.t + 1;
        let m = st.m.mul_scalar(c.beta1).add(grad.clone().mul_scalar(1.0 - c.beta1));
        let v = st.v.mul_scalar(c.beta2).add(grad.square().mul_scalar(1.0 - c.beta2));
        let bc1 = 1.0 - c.beta1.powi(t as i32);
        let bc2 = 1.0 - c.beta2.powi(t as i32);
        let mut p = match st.master {
            Some(master) => master,
            None => to_f32(inner.reshape([n])),
        };
        if g.weight_decay != 0.0 {
            p = p.mul_scalar(1.0 - g.lr * g.weight_decay);
        }
        let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(c.eps);
        let p = p - m.clone().div(denom).mul_scalar(g.lr / bc1);
        let master = keeps_master(param_dtype).then(|| p.clone());
        let p = if param_dtype == DType::F32 { p } else { p.cast(param_dtype) };
        self.opt.state.insert(path, Moments { m, v, t, master });
        let mut out = Tensor::<B, D>::from_inner(p.reshape(shape));
        if require_grad {
            out = out.require_grad();
        }
        Param::from_mapped_value(id, out, mapper)
    }
}

impl<B: Backend> AdamW<B> {
    pub fn new(config: AdamWConfig) -> Self {
        AdamW { config, state: BTreeMap::new() }
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
        let (norm, scale) = match max_grad_norm {
            Some(max) if max > 0.0 => match global_grad_norm_device::<AB, M>(&model, &grads) {
                Some(norm) => {
                    let scale = norm.clone().add_scalar(1e-6).recip().mul_scalar(max).clamp_max(1.0);
                    (Some(norm), Some(scale))
                }
                None => (None, None),
            },
            _ => (None, None),
        };
        let mut mapper = StepMapper::<AB, F> { opt: self, grads: &mut grads, group, scale, path: PathStack::default() };
        (model.map(&mut mapper), norm)
    }

    /// Number of parameters with a state.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Host copies of the state: tensors `adamw.m.<path>`, `adamw.v.<path>` (and
    /// `adamw.master.<path>` for half-precision parameters) and step counts.
    pub fn to_tensors(&self) -> (BTreeMap<String, TensorData>, BTreeMap<String, u64>) {
        let mut tensors = BTreeMap::new();
        let mut steps = BTreeMap::new();
        for (path, s) in &self.state {
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
