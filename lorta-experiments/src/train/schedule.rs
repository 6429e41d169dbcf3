//! Learning-rate schedule: linear warmup then linear decay to zero, as Hugging Face's
//! `get_linear_schedule_with_warmup` (the factor for optimizer step `s`, counted from 0, is
//! `s / warmup` during warmup and `(total - s) / (total - warmup)` after it).
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearSchedule {
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl LinearSchedule {
    /// Warmup of `ceil(ratio · total)` steps (the transformers Trainer's rounding).
    pub fn from_ratio(warmup_ratio: f64, total_steps: usize) -> Self {
        let warmup_steps = (warmup_ratio.max(0.0) * total_steps as f64).ceil() as usize;
        LinearSchedule { warmup_steps: warmup_steps.min(total_steps), total_steps }
    }

    /// Multiplier of the base learning rate for the optimizer step `step` (0-based).
    pub fn factor(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return step as f64 / self.warmup_steps.max(1) as f64;
        }
        let rest = self.total_steps.saturating_sub(step) as f64;
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        (rest / span).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_linear_decay() {
        let s = LinearSchedule::from_ratio(0.06, 100);
        assert_eq!(s.warmup_steps, 6);
        let f: Vec<f64> = (0..=100).map(|i| s.factor(i)).collect();
        assert_eq!(f[0], 0.0);
        assert!((f[3] - 0.5).abs() < 1e-12);
        assert_eq!(f[6], 1.0);
        assert!((f[53] - 47.0 / 94.0).abs() < 1e-12);
        assert!((f[99] - 1.0 / 94.0).abs() < 1e-12);
        assert_eq!(f[100], 0.0);
        assert_eq!(s.factor(1000), 0.0);
        // Monotone up, then monotone down.
        assert!(f[..7].windows(2).all(|w| w[0] < w[1]));
        assert!(f[6..].windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn no_warmup_and_rounding() {
        let s = LinearSchedule::from_ratio(0.0, 10);
        assert_eq!(s.warmup_steps, 0);
        assert_eq!(s.factor(0), 1.0);
        assert!((s.factor(5) - 0.5).abs() < 1e-12);
        // ceil(0.06 * 10) = 1
        assert_eq!(LinearSchedule::from_ratio(0.06, 10).warmup_steps, 1);
        assert_eq!(LinearSchedule::from_ratio(2.0, 10).warmup_steps, 10);
    }
}
