//! Learning-rate schedules of Hugging Face's `transformers.optimization`: linear warmup, then
//! linear decay to zero (`get_linear_schedule_with_warmup`: factor `(total - s) / (total -
//! warmup)` for optimizer step `s`, counted from 0) or half a cosine to zero
//! (`get_cosine_schedule_with_warmup`: `½(1 + cos(π·progress))`, progress `(s - warmup) /
//! (total - warmup)`). During warmup the factor is `s / warmup` for both.
use serde::{Deserialize, Serialize};

/// Shape of the decay after warmup (`--lr-scheduler`; HF's `lr_scheduler_type` names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    #[default]
    Linear,
    Cosine,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearSchedule {
    pub warmup_steps: usize,
    pub total_steps: usize,
    #[serde(default)]
    pub kind: ScheduleKind,
}

impl LinearSchedule {
    /// Warmup of `ceil(ratio · total)` steps (the transformers Trainer's rounding), linear decay.
    pub fn from_ratio(warmup_ratio: f64, total_steps: usize) -> Self {
        Self::with_kind(ScheduleKind::Linear, warmup_ratio, total_steps)
    }

    pub fn with_kind(kind: ScheduleKind, warmup_ratio: f64, total_steps: usize) -> Self {
        let warmup_steps = (warmup_ratio.max(0.0) * total_steps as f64).ceil() as usize;
        LinearSchedule { warmup_steps: warmup_steps.min(total_steps), total_steps, kind }
    }

    /// Multiplier of the base learning rate for the optimizer step `step` (0-based).
    pub fn factor(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return step as f64 / self.warmup_steps.max(1) as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        match self.kind {
            ScheduleKind::Linear => (self.total_steps.saturating_sub(step) as f64 / span).max(0.0),
            ScheduleKind::Cosine => {
                let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
                (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
            }
        }
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

    /// Values of transformers' `get_cosine_schedule_with_warmup(opt, 10, 110)` (num_cycles 0.5):
    /// `lr_lambda(s)` for s = 0, 5, 10, 35, 60, 85, 110.
    #[test]
    fn cosine_matches_transformers() {
        let s = LinearSchedule { warmup_steps: 10, total_steps: 110, kind: ScheduleKind::Cosine };
        let expected = [(0, 0.0), (5, 0.5), (10, 1.0), (35, 0.8535533905932737), (60, 0.5), (85, 0.14644660940672627), (110, 0.0)];
        for (step, want) in expected {
            assert!((s.factor(step) - want).abs() < 1e-12, "step {step}: {} vs {want}", s.factor(step));
        }
        assert_eq!(s.factor(500), 0.0);
    }
}
