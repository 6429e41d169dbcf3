//! Adapter methods, one folder each (the PEFT `tuners/<method>/` shape): a `Config` that
//! (de)serialises and builds the module, the `#[derive(Module)]` adapter set that owns every
//! parameter of the method across all layers and matrices (shared factors included), and its
//! file keys. Adding a method = a new folder (config implementing [`MethodConfig`] and
//! [`BuildAdapter`], set implementing [`Adapter`]), its `pub mod` line, and one line in the
//! `methods!` registry below.
//!
//! All maps use the PyTorch / PEFT convention: a linear layer is `y = x·Wᵀ` with `W: [out, in]`,
//! and activations are passed flattened to `[tokens, features]`.

pub mod fact;
pub mod ia3;
pub mod loretta;
pub mod lora;
pub mod lorta;
pub mod lotr;
pub(crate) mod shared;
pub mod vera;

#[cfg(test)]
mod tests;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, DType, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::io::TensorMap;
use crate::site::{ArchNaming, MatrixKind, ModelShape, Site};
use crate::Result;

pub use fact::{FactTk, FactTkConfig, FactTt, FactTtConfig};
pub use ia3::{Ia3, Ia3Config};
pub use loretta::{LorettaRep, LorettaRepConfig};
pub use lora::{Lora, LoraConfig};
pub use lorta::{HeadAxis, Lorta, LortaConfig};
pub use lotr::{Lotr, LotrConfig};
pub use vera::{Vera, VeraConfig};

/// The method registry: one line per method, in display order —
/// `Variant(ConfigType, SetType) = "PEFT_TYPE", "Label", ["names", "accepted", "by --method"];`
/// (the first name is the canonical one shown in help texts). It generates [`Method`],
/// [`AdapterConfig`], [`AdapterSet`] and every dispatch over them; the types come from the
/// method's folder, whose config implements [`MethodConfig`] and [`BuildAdapter`] and whose set
/// implements [`Adapter`].
macro_rules! methods {
    ($($variant:ident($config:ident, $set:ident) = $peft:literal, $label:literal, [$first:literal $(, $alias:literal)*];)+) => {
        /// Identifies a method; `peft_type` is the string written in `adapter_config.json`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Method {
            $($variant,)+
        }

        impl Method {
            pub const ALL: [Method; [$($peft),+].len()] = [$(Method::$variant),+];
            pub fn peft_type(&self) -> &'static str {
                match self {
                    $(Method::$variant => $peft,)+
                }
            }
            /// Display name as used in the paper's tables.
            pub fn label(&self) -> &'static str {
                match self {
                    $(Method::$variant => $label,)+
                }
            }
            /// Canonical `--method` name (`fact-tt`).
            pub fn cli_name(&self) -> &'static str {
                match self {
                    $(Method::$variant => $first,)+
                }
            }
        }

        impl std::str::FromStr for Method {
            type Err = String;
            /// Case-insensitive; `-`, `_` and spaces are interchangeable.
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                let norm = s.to_ascii_lowercase().replace(['_', ' '], "-");
                $(if norm == $first $(|| norm == $alias)* {
                    return Ok(Method::$variant);
                })+
                Err(format!(
                    "unknown method `{s}`; expected one of {}",
                    Method::ALL.iter().map(|m| m.cli_name()).collect::<Vec<_>>().join(", ")
                ))
            }
        }

        /// Serializable configuration of any method (the `method` field selects the variant).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "method", rename_all = "snake_case")]
        pub enum AdapterConfig {
            $($variant($config),)+
        }

        /// All parameters of one adapter method for a whole model.
        #[derive(Module, Debug)]
        pub enum AdapterSet<B: Backend> {
            $($variant($set<B>),)+
        }

        impl AdapterConfig {
            pub fn method(&self) -> Method {
                match self {
                    $(AdapterConfig::$variant(c) => c.method(),)+
                }
            }
            pub fn rank(&self) -> Option<usize> {
                match self {
                    $(AdapterConfig::$variant(c) => c.rank(),)+
                }
            }
            pub fn targets(&self) -> &[MatrixKind] {
                match self {
                    $(AdapterConfig::$variant(c) => c.targets(),)+
                }
            }
            pub fn validate(&self, shape: &ModelShape) -> Result<()> {
                match self {
                    $(AdapterConfig::$variant(c) => c.validate(shape),)+
                }
            }

            /// Builds the adapter set for a model; parameters drawn from `seed` on the host.
            pub fn init<B: Backend>(&self, shape: &ModelShape, seed: u64, device: &B::Device) -> Result<AdapterSet<B>> {
                self.validate(shape)?;
                let mut rng = crate::init::seeded(seed);
                Ok(match self {
                    $(AdapterConfig::$variant(c) => AdapterSet::$variant(BuildAdapter::<B>::build(c, shape, &mut rng, device)?),)+
                })
            }

            /// A default config of `method` at rank `r` on `targets` (α = r unless the method's
            /// recipe says otherwise), as used by the `params` table.
            pub fn default_for(method: Method, r: usize, targets: &[MatrixKind]) -> AdapterConfig {
                match method {
                    $(Method::$variant => AdapterConfig::$variant(<$config as MethodConfig>::default_for(r, targets)),)+
                }
            }
        }

        impl<B: Backend> AdapterSet<B> {
            pub fn config(&self) -> AdapterConfig {
                match self {
                    $(AdapterSet::$variant(a) => AdapterConfig::$variant(a.config.clone()),)+
                }
            }
        }

        impl<B: Backend> Adapter<B> for AdapterSet<B> {
            fn method(&self) -> Method {
                match self { $(AdapterSet::$variant(a) => a.method(),)+ }
            }
            fn targets(&self) -> &[MatrixKind] {
                match self { $(AdapterSet::$variant(a) => a.targets(),)+ }
            }
            fn adapts(&self, site: Site) -> bool {
                match self { $(AdapterSet::$variant(a) => a.adapts(site),)+ }
            }
            fn delta(&self, site: Site, x: Tensor<B, 2>) -> Option<Tensor<B, 2>> {
                match self { $(AdapterSet::$variant(a) => a.delta(site, x),)+ }
            }
            fn delta_weight(&self, site: Site) -> Option<Tensor<B, 2>> {
                match self { $(AdapterSet::$variant(a) => a.delta_weight(site),)+ }
            }
            fn scale_input(&self, site: Site, x: Tensor<B, 2>) -> Tensor<B, 2> {
                match self { $(AdapterSet::$variant(a) => a.scale_input(site, x),)+ }
            }
            fn adapt_output(&self, site: Site, x: Tensor<B, 2>, base: Tensor<B, 2>) -> Tensor<B, 2> {
                match self { $(AdapterSet::$variant(a) => a.adapt_output(site, x, base),)+ }
            }
            fn merge_weight(&self, site: Site, w: Tensor<B, 2>) -> Tensor<B, 2> {
                match self { $(AdapterSet::$variant(a) => a.merge_weight(site, w),)+ }
            }
            fn save_tensors(&self, naming: &ArchNaming) -> TensorMap {
                match self { $(AdapterSet::$variant(a) => a.save_tensors(naming),)+ }
            }
            fn load_tensors(self, tensors: &mut TensorMap, naming: &ArchNaming) -> Result<Self> {
                Ok(match self {
                    $(AdapterSet::$variant(a) => AdapterSet::$variant(a.load_tensors(tensors, naming)?),)+
                })
            }
        }
    };
}

methods! {
    Lora(LoraConfig, Lora) = "LORA", "LoRA", ["lora"];
    Lorta(LortaConfig, Lorta) = "LORTA", "LoRTA", ["lorta"];
    Vera(VeraConfig, Vera) = "VERA", "VeRA", ["vera"];
    Ia3(Ia3Config, Ia3) = "IA3", "IA3", ["ia3"];
    FactTt(FactTtConfig, FactTt) = "FACT_TT", "FacT-TT", ["fact-tt", "facttt"];
    FactTk(FactTkConfig, FactTk) = "FACT_TK", "FacT-TK", ["fact-tk", "facttk"];
    Lotr(LotrConfig, Lotr) = "LOTR", "LoTR", ["lotr"];
    LorettaRep(LorettaRepConfig, LorettaRep) = "LORETTA_REP", "LoReTTA_rep", ["loretta-rep", "loretta"];
}

impl Method {
    pub fn from_peft_type(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.peft_type().eq_ignore_ascii_case(s))
    }
}

/// What every adapter method provides. Additive methods implement [`delta`](Adapter::delta)
/// and [`delta_weight`](Adapter::delta_weight); multiplicative ones (IA3) override the
/// input/output hooks and [`merge_weight`](Adapter::merge_weight).
pub trait Adapter<B: Backend> {
    fn method(&self) -> Method;
    /// The matrix kinds this set adapts (its `target_modules`).
    fn targets(&self) -> &[MatrixKind];
    fn adapts(&self, site: Site) -> bool {
        self.targets().contains(&site.kind)
    }
    /// Additive update `Δy = x·ΔWᵀ` for input `x: [n, in]`, or `None` if the site is not
    /// adapted additively.
    fn delta(&self, site: Site, x: Tensor<B, 2>) -> Option<Tensor<B, 2>>;
    /// Dense `ΔW: [out, in]` (for merging and checks; training never calls it).
    fn delta_weight(&self, site: Site) -> Option<Tensor<B, 2>>;
    /// Applied to the input before the base map (IA3 scales the FFN's down-projection input).
    fn scale_input(&self, _site: Site, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x
    }
    /// Output of the adapted linear map, from its input and the frozen base output.
    fn adapt_output(&self, site: Site, x: Tensor<B, 2>, base: Tensor<B, 2>) -> Tensor<B, 2> {
        match self.delta(site, x) {
            Some(d) => base + d,
            None => base,
        }
    }
    /// The merged weight `W' : [out, in]` such that `x·W'ᵀ` equals the adapted map.
    fn merge_weight(&self, site: Site, w: Tensor<B, 2>) -> Tensor<B, 2> {
        match self.delta_weight(site) {
            Some(d) => w + d,
            None => w,
        }
    }
    /// Every tensor of the adapter file, keyed as in the file.
    fn save_tensors(&self, naming: &ArchNaming) -> TensorMap;
    /// Replaces the parameters with the file's tensors (shape-checked; keys are consumed so the
    /// caller can report unknown ones).
    fn load_tensors(self, tensors: &mut TensorMap, naming: &ArchNaming) -> Result<Self>
    where
        Self: Sized;
}

/// What each method's config provides.
pub trait MethodConfig: Clone {
    fn method(&self) -> Method;
    fn rank(&self) -> Option<usize>;
    fn targets(&self) -> &[MatrixKind];
    /// Validates against the model shape (e.g. LoRTA needs square heads-split matrices).
    fn validate(&self, shape: &ModelShape) -> Result<()>;
    /// The config at rank `rank` on `targets` with the method's default hyper-parameters.
    fn default_for(rank: usize, targets: &[MatrixKind]) -> Self;
}

/// How a method's config makes its adapter set (implemented in the method's folder).
pub trait BuildAdapter<B: Backend>: MethodConfig + Sized {
    type Set: Adapter<B>;
    /// Draws the initial parameters from `rng` (already validated against `shape`).
    fn build(&self, shape: &ModelShape, rng: &mut StdRng, device: &B::Device) -> Result<Self::Set>;
}

impl<B: Backend> AdapterSet<B> {
    /// Trainable parameters (adapters hold frozen tensors as constants, not `Param`s).
    pub fn num_trainable(&self) -> usize {
        self.num_params()
    }

    /// Convenience for `[batch, seq, in]` activations.
    pub fn adapt_output3(&self, site: Site, x: Tensor<B, 3>, base: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, s, i] = x.dims();
        let o = base.dims()[2];
        self.adapt_output(site, x.reshape([b * s, i]), base.reshape([b * s, o])).reshape([b, s, o])
    }
    pub fn scale_input3(&self, site: Site, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, s, i] = x.dims();
        self.scale_input(site, x.reshape([b * s, i])).reshape([b, s, i])
    }
}

/// A per-forward view of an [`AdapterSet`]: methods whose factors are shared by every site
/// (LoRTA) precompute the shared products once per forward pass instead of once per site.
/// Models call [`AdapterSet::step`] at the start of a forward and hand the view to their layers.
#[derive(Debug)]
pub enum AdapterStep<'a, B: Backend> {
    Lorta(lorta::LortaStep<B>),
    Plain(&'a AdapterSet<B>),
}

impl<B: Backend> AdapterSet<B> {
    pub fn step(&self) -> AdapterStep<'_, B> {
        match self {
            AdapterSet::Lorta(l) => l.step().map(AdapterStep::Lorta).unwrap_or(AdapterStep::Plain(self)),
            other => AdapterStep::Plain(other),
        }
    }
}

// casts `x` to `dtype` when it differs (mixed precision: a half-precision base with f32 adapters)
use crate::fused::downcast as to_dtype;

impl<B: Backend> AdapterSet<B> {
    /// The dtype of the adapter's parameters (that of its first float parameter; f32 if none).
    pub fn dtype(&self) -> DType {
        struct First(Option<DType>);
        impl<B: Backend> ModuleVisitor<B> for First {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if self.0.is_none() {
                    self.0 = Some(param.val().dtype());
                }
            }
        }
        let mut v = First(None);
        self.visit(&mut v);
        v.0.unwrap_or(DType::F32)
    }
}

/// Every map casts its inputs to the adapter's dtype and its result back to the base's: a frozen
/// base in bf16/f16 with adapters in f32 computes the update in f32 and adds it in f32 before
/// rounding (what PEFT does with `autocast_adapter_dtype`).
impl<B: Backend> AdapterStep<'_, B> {
    /// The dtype the adapter computes in.
    pub fn dtype(&self) -> DType {
        match self {
            AdapterStep::Lorta(l) => l.dtype(),
            AdapterStep::Plain(a) => a.dtype(),
        }
    }

    /// [`Self::adapt_output`] for several sites that read the same `x` (Q, K, V): LoRTA projects
    /// `x` onto its shared input factor once for all of them, LoRA onto the sites' stacked A
    /// factors ([`lora::Lora::deltas`]); other methods go site by site.
    pub fn adapt_outputs(&self, sites: &[Site], x: Tensor<B, 2>, bases: Vec<Tensor<B, 2>>) -> Vec<Tensor<B, 2>> {
        let deltas = match self {
            AdapterStep::Lorta(l) => l.deltas(sites, to_dtype(x, l.dtype())),
            AdapterStep::Plain(AdapterSet::Lora(l)) => {
                // the first factor's dtype (AdapterSet::dtype visits every parameter, per call)
                let dt = l.a.first().map_or(DType::F32, |a| a.val().dtype());
                l.deltas(sites, to_dtype(x, dt))
            }
            AdapterStep::Plain(a) => return sites.iter().zip(bases).map(|(&site, base)| self.plain_output(a, site, x.clone(), base)).collect(),
        };
        deltas
            .into_iter()
            .zip(bases)
            .map(|(d, base)| match d {
                Some(d) => crate::fused::add_update(base, d),
                None => base,
            })
            .collect()
    }
    fn plain_output(&self, a: &AdapterSet<B>, site: Site, x: Tensor<B, 2>, base: Tensor<B, 2>) -> Tensor<B, 2> {
        if !a.adapts(site) {
            return base;
        }
        let (dt, out) = (a.dtype(), base.dtype());
        to_dtype(a.adapt_output(site, to_dtype(x, dt), to_dtype(base, dt)), out)
    }
    pub fn adapts(&self, site: Site) -> bool {
        match self {
            AdapterStep::Lorta(l) => l.adapts(site),
            AdapterStep::Plain(a) => a.adapts(site),
        }
    }
    pub fn scale_input(&self, site: Site, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            AdapterStep::Lorta(_) => x,
            // only IA3 scales inputs: skip the casts for the others
            AdapterStep::Plain(a @ AdapterSet::Ia3(_)) => {
                let (dt, out) = (a.dtype(), x.dtype());
                to_dtype(a.scale_input(site, to_dtype(x, dt)), out)
            }
            AdapterStep::Plain(a) => a.scale_input(site, x),
        }
    }
    pub fn adapt_output(&self, site: Site, x: Tensor<B, 2>, base: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            // LoRA's update joins the base through `fused::add_update`, as in `adapt_outputs`
            AdapterStep::Plain(AdapterSet::Lora(_)) => {
                self.adapt_outputs(&[site], x, vec![base]).pop().expect("one output per site")
            }
            AdapterStep::Lorta(l) => {
                let dt = l.dtype();
                match l.delta(site, to_dtype(x, dt)) {
                    Some(d) => crate::fused::add_update(base, d),
                    None => base,
                }
            }
            AdapterStep::Plain(a) => self.plain_output(a, site, x, base),
        }
    }
    pub fn adapt_output3(&self, site: Site, x: Tensor<B, 3>, base: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, s, i] = x.dims();
        let o = base.dims()[2];
        self.adapt_output(site, x.reshape([b * s, i]), base.reshape([b * s, o])).reshape([b, s, o])
    }
    pub fn scale_input3(&self, site: Site, x: Tensor<B, 3>) -> Tensor<B, 3> {
        // only IA3 scales inputs; the others would pay two reshapes for nothing
        if !matches!(self, AdapterStep::Plain(AdapterSet::Ia3(_))) {
            return x;
        }
        let [b, s, i] = x.dims();
        self.scale_input(site, x.reshape([b * s, i])).reshape([b, s, i])
    }
}
