//! Adapter sites: which linear layer of which transformer block an update belongs to, and the
//! model shapes adapters are sized from.
use serde::{Deserialize, Serialize};

/// The kind of linear map inside a transformer block. The order of the attention kinds
/// (q, k, v, o) is the mode order of LoRTA's matrix factor `C_m`, as in the paper's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatrixKind {
    Query,
    Key,
    Value,
    /// Attention output projection.
    Output,
    /// The feed-forward block's second (down) projection; IA3 scales its input.
    FfnDown,
    /// Gate projection of a gated attention (AlphaFold / ESMFold: `o = sigmoid(x·W_gᵀ + b) ⊙
    /// attention(x)` per head, before the output projection); a square `d × d` map whose
    /// output is split by heads like Q, K and V.
    Gate,
}

impl MatrixKind {
    pub const ATTENTION: [MatrixKind; 4] =
        [MatrixKind::Query, MatrixKind::Key, MatrixKind::Value, MatrixKind::Output];
    /// The projections of a gated attention (the ESMFold trunk's), in `C_m` mode order.
    pub const GATED_ATTENTION: [MatrixKind; 5] =
        [MatrixKind::Query, MatrixKind::Key, MatrixKind::Value, MatrixKind::Output, MatrixKind::Gate];

    pub fn short(&self) -> &'static str {
        match self {
            MatrixKind::Query => "q",
            MatrixKind::Key => "k",
            MatrixKind::Value => "v",
            MatrixKind::Output => "o",
            MatrixKind::FfnDown => "ffn_down",
            MatrixKind::Gate => "g",
        }
    }

    pub fn parse_short(s: &str) -> Option<MatrixKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "q" | "query" => Some(MatrixKind::Query),
            "k" | "key" => Some(MatrixKind::Key),
            "v" | "value" => Some(MatrixKind::Value),
            "o" | "output" | "out" => Some(MatrixKind::Output),
            "ffn_down" | "down" => Some(MatrixKind::FfnDown),
            "g" | "gate" => Some(MatrixKind::Gate),
            _ => None,
        }
    }

    /// Parses a comma list such as `q,k,v,o`.
    pub fn parse_list(s: &str) -> Option<Vec<MatrixKind>> {
        s.split(',').map(MatrixKind::parse_short).collect()
    }
}

/// One adapted linear layer: block index and matrix kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Site {
    pub layer: usize,
    pub kind: MatrixKind,
}

impl Site {
    pub fn new(layer: usize, kind: MatrixKind) -> Self {
        Site { layer, kind }
    }
}

/// The shapes adapters need; no weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub layers: usize,
    pub intermediate: usize,
}

impl ModelShape {
    pub fn new(hidden: usize, heads: usize, layers: usize, intermediate: usize) -> Self {
        ModelShape { hidden, heads, kv_heads: heads, head_dim: hidden / heads, layers, intermediate }
    }
    /// RoBERTa-base / BERT-base: d = 768, h = 12, L = 12, d_ff = 3072.
    pub fn roberta_base() -> Self {
        Self::new(768, 12, 12, 3072)
    }
    /// LLaMA-2-7B: d = 4096, h = 32, L = 32, d_ff = 11008.
    pub fn llama2_7b() -> Self {
        Self::new(4096, 32, 32, 11008)
    }

    /// (input, output) features of a site's linear map.
    pub fn dims(&self, kind: MatrixKind) -> (usize, usize) {
        let q = self.heads * self.head_dim;
        let kv = self.kv_heads * self.head_dim;
        match kind {
            MatrixKind::Query | MatrixKind::Gate => (self.hidden, q),
            MatrixKind::Key | MatrixKind::Value => (self.hidden, kv),
            MatrixKind::Output => (q, self.hidden),
            MatrixKind::FfnDown => (self.intermediate, self.hidden),
        }
    }

    pub fn sites(&self, kinds: &[MatrixKind]) -> Vec<Site> {
        (0..self.layers).flat_map(|l| kinds.iter().map(move |&k| Site::new(l, k))).collect()
    }
}

/// How an architecture names its adapted modules, for PEFT-layout adapter files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchNaming {
    /// `model.layers.{l}.self_attn.q_proj`, `... .mlp.down_proj` (LlamaForCausalLM).
    Llama,
    /// `{prefix}encoder.layer.{l}.attention.self.query`, `... .output.dense`
    /// (prefix "roberta.", "bert." or "" for a bare model).
    Bert { prefix: String },
    /// The sequence attention of ESMFold's folding trunk: `Site(l, ·)` is
    /// `trunk.blocks.{l}.seq_attention.{proj.q|proj.k|proj.v|o_proj|g_proj}` (Q, K, V are the
    /// head-interleaved thirds of HF's fused `proj`) and `mlp_seq.mlp.3` (FfnDown).
    EsmFoldSequence,
    /// The triangle attentions of ESMFold's trunk: `Site(2l, ·)` is block l's attention around
    /// the starting node (`trunk.blocks.{l}.tri_att_start.mha.linear_{q,k,v,o,g}`), `Site(2l+1, ·)`
    /// the one around the ending node (`tri_att_end`). No FfnDown sites.
    EsmFoldPair,
}

impl ArchNaming {
    /// Module path of a site inside the HF model (without PEFT's `base_model.model.`).
    pub fn module_path(&self, site: Site) -> String {
        let l = site.layer;
        match self {
            ArchNaming::Llama => {
                let leaf = match site.kind {
                    MatrixKind::Query => "self_attn.q_proj",
                    MatrixKind::Key => "self_attn.k_proj",
                    MatrixKind::Value => "self_attn.v_proj",
                    MatrixKind::Output => "self_attn.o_proj",
                    MatrixKind::FfnDown => "mlp.down_proj",
                    MatrixKind::Gate => "self_attn.g_proj",
                };
                format!("model.layers.{l}.{leaf}")
            }
            ArchNaming::Bert { prefix } => {
                let leaf = match site.kind {
                    MatrixKind::Query => "attention.self.query",
                    MatrixKind::Key => "attention.self.key",
                    MatrixKind::Value => "attention.self.value",
                    MatrixKind::Output => "attention.output.dense",
                    MatrixKind::FfnDown => "output.dense",
                    MatrixKind::Gate => "attention.self.gate",
                };
                format!("{prefix}encoder.layer.{l}.{leaf}")
            }
            ArchNaming::EsmFoldSequence => {
                let leaf = match site.kind {
                    MatrixKind::FfnDown => "mlp_seq.mlp.3".to_string(),
                    k => format!("seq_attention.{}", self.target_name(k)),
                };
                format!("trunk.blocks.{l}.{leaf}")
            }
            ArchNaming::EsmFoldPair => {
                let (block, end) = (l / 2, l % 2 == 1);
                match site.kind {
                    MatrixKind::FfnDown => format!("trunk.blocks.{block}.mlp_pair.mlp.3"),
                    k => format!("trunk.blocks.{block}.{}.mha.{}", if end { "tri_att_end" } else { "tri_att_start" }, self.target_name(k)),
                }
            }
        }
    }

    /// The `target_modules` entry PEFT uses for a kind.
    pub fn target_name(&self, kind: MatrixKind) -> &'static str {
        match (self, kind) {
            (ArchNaming::Llama, MatrixKind::Query) => "q_proj",
            (ArchNaming::Llama, MatrixKind::Key) => "k_proj",
            (ArchNaming::Llama, MatrixKind::Value) => "v_proj",
            (ArchNaming::Llama, MatrixKind::Output) => "o_proj",
            (ArchNaming::Llama, MatrixKind::FfnDown) => "down_proj",
            (ArchNaming::Bert { .. }, MatrixKind::Query) => "query",
            (ArchNaming::Bert { .. }, MatrixKind::Key) => "key",
            (ArchNaming::Bert { .. }, MatrixKind::Value) => "value",
            (ArchNaming::Bert { .. }, MatrixKind::Output) => "attention.output.dense",
            (ArchNaming::Bert { .. }, MatrixKind::FfnDown) => "output.dense",
            (ArchNaming::Llama, MatrixKind::Gate) => "g_proj",
            (ArchNaming::Bert { .. }, MatrixKind::Gate) => "gate",
            (ArchNaming::EsmFoldSequence, MatrixKind::Query) => "proj.q",
            (ArchNaming::EsmFoldSequence, MatrixKind::Key) => "proj.k",
            (ArchNaming::EsmFoldSequence, MatrixKind::Value) => "proj.v",
            (ArchNaming::EsmFoldSequence, MatrixKind::Output) => "o_proj",
            (ArchNaming::EsmFoldSequence, MatrixKind::Gate) => "g_proj",
            (ArchNaming::EsmFoldSequence, MatrixKind::FfnDown) => "mlp_seq.mlp.3",
            (ArchNaming::EsmFoldPair, MatrixKind::Query) => "linear_q",
            (ArchNaming::EsmFoldPair, MatrixKind::Key) => "linear_k",
            (ArchNaming::EsmFoldPair, MatrixKind::Value) => "linear_v",
            (ArchNaming::EsmFoldPair, MatrixKind::Output) => "linear_o",
            (ArchNaming::EsmFoldPair, MatrixKind::Gate) => "linear_g",
            (ArchNaming::EsmFoldPair, MatrixKind::FfnDown) => "mlp_pair.mlp.3",
        }
    }

    /// Maps a PEFT `target_modules` entry back to a kind (accepts our short names too).
    pub fn parse_target(&self, name: &str) -> Option<MatrixKind> {
        let all = [
            MatrixKind::Query,
            MatrixKind::Key,
            MatrixKind::Value,
            MatrixKind::Output,
            MatrixKind::FfnDown,
            MatrixKind::Gate,
        ];
        all.into_iter()
            .find(|&k| self.target_name(k) == name)
            .or_else(|| match (self, name) {
                (ArchNaming::Bert { .. }, "dense") => Some(MatrixKind::Output),
                _ => MatrixKind::parse_short(name),
            })
    }
}
