//! Host-side, seeded initialisers. Values are drawn on the host with a seeded RNG so that every
//! backend (ndarray, wgpu, CUDA) starts from bit-identical parameters.
use burn::tensor::{backend::Backend, Shape, Tensor, TensorData};
use rand::{rngs::StdRng, RngExt, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    Constant(f64),
    Uniform { low: f64, high: f64 },
    Normal { std: f64 },
    /// PyTorch's `kaiming_uniform_(a, fan_in)`: bound = gain·√(3/fan_in), gain = √(2/(1+a²)).
    KaimingUniform { a: f64, fan_in: usize },
}

impl Init {
    /// The LoRA / nn.Linear default: kaiming-uniform with a = √5 (bound 1/√fan_in).
    pub fn kaiming_sqrt5(fan_in: usize) -> Self {
        Init::KaimingUniform { a: 5f64.sqrt(), fan_in }
    }

    pub fn sample(&self, n: usize, rng: &mut StdRng) -> Vec<f32> {
        match *self {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Constant(c) => vec![c as f32; n],
            Init::Uniform { low, high } => uniform(n, low, high, rng),
            Init::KaimingUniform { a, fan_in } => {
                let gain = (2.0 / (1.0 + a * a)).sqrt();
                let bound = gain * (3.0 / fan_in.max(1) as f64).sqrt();
                uniform(n, -bound, bound, rng)
            }
            Init::Normal { std } => (0..n)
                .map(|_| {
                    // Box-Muller: enough for initialisation, no extra dependency.
                    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                    let u2: f64 = rng.random::<f64>();
                    (std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos())
                        as f32
                })
                .collect(),
        }
    }

    pub fn tensor<B: Backend, const D: usize>(
        &self,
        shape: [usize; D],
        rng: &mut StdRng,
        device: &B::Device,
    ) -> Tensor<B, D> {
        let n = shape.iter().product();
        Tensor::from_data(TensorData::new(self.sample(n, rng), Shape::new(shape)), device)
    }
}

fn uniform(n: usize, low: f64, high: f64, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| (low + (high - low) * rng.random::<f64>()) as f32).collect()
}

pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
