//! Mean ± sample standard deviation over seeds.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Score {
    pub mean: f64,
    pub std: f64,
    pub values: Vec<f64>,
}

impl Score {
    /// `None` for no values; the std is the sample std (n − 1), 0 for one value.
    pub fn from_values(values: Vec<f64>) -> Option<Score> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = if values.len() > 1 { (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
        Some(Score { mean, std, values })
    }
    /// `62.0 ± 2.0`, or `71.2` for one value.
    pub fn fmt(&self) -> String {
        if self.values.len() > 1 {
            format!("{:.1} ± {:.1}", self.mean, self.std)
        } else {
            format!("{:.1}", self.mean)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_std() {
        let s = Score::from_values(vec![60.0, 62.0, 64.0]).unwrap();
        assert!((s.mean - 62.0).abs() < 1e-12 && (s.std - 2.0).abs() < 1e-12);
        assert_eq!(s.fmt(), "62.0 ± 2.0");
        assert_eq!(Score::from_values(vec![71.25]).unwrap().fmt(), "71.2");
        assert!(Score::from_values(vec![]).is_none());
    }
}
