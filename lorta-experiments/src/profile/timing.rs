//! Timing training steps the same way for every `profile` table: untimed warm-up steps (they
//! compile and tune kernels on GPU backends), timed steps each ended by a device sync, then one
//! instrumented step that samples memory (syncing inside a timed step would perturb it).
use std::time::Instant;

use anyhow::{anyhow, Result};
use burn::tensor::backend::Backend;

use super::cpu::CpuClock;
use super::rss::RssPeak;

/// Reads (bytes in use, bytes reserved) of the device; `None` where the backend has no allocator
/// statistics (ndarray).
pub type MemoryReader<'a> = &'a dyn Fn() -> Option<(u64, u64)>;

/// Handed to a step: `sample()` where memory may peak (after forward, backward, update). It does
/// nothing in timed steps.
pub struct MemoryProbe<'a, B: Backend> {
    device: &'a B::Device,
    memory: MemoryReader<'a>,
    on: bool,
    peak: Option<(u64, u64)>,
}

impl<B: Backend> MemoryProbe<'_, B> {
    pub fn sample(&mut self) {
        if self.on {
            let _ = B::sync(self.device);
            if let Some((used, reserved)) = (self.memory)() {
                let p = self.peak.get_or_insert((0, 0));
                *p = (p.0.max(used), p.1.max(reserved));
            }
        }
    }
}

/// What [`time_steps`] measured.
pub struct StepTimes {
    /// Milliseconds of each timed step, in order.
    pub ms: Vec<f64>,
    /// CPU milliseconds per timed step: (calling thread, whole process), see [`CpuClock`].
    pub cpu_ms: (Option<f64>, Option<f64>),
    /// Device peak (in use, reserved) over the instrumented step, where the backend reports it.
    pub device_peak: Option<(u64, u64)>,
    /// Without device statistics: growth of the process's peak RSS over the instrumented step, and
    /// whether the kernel's peak counter could be reset (else an upper bound).
    pub rss_peak: Option<(u64, bool)>,
}

impl StepTimes {
    pub fn median_ms(&self) -> f64 {
        median(&self.ms)
    }

    pub fn min_max_ms(&self) -> (f64, f64) {
        self.ms.iter().fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)))
    }

    /// Peak bytes: the device's, else the RSS growth.
    pub fn peak_bytes(&self) -> Option<u64> {
        self.device_peak.map(|p| p.0).or(self.rss_peak.map(|r| r.0))
    }

    /// What [`peak_bytes`](Self::peak_bytes) measures.
    pub fn memory_measure(&self) -> &'static str {
        match (self.device_peak, self.rss_peak) {
            (Some(_), _) => "device allocator",
            (None, Some((_, true))) => "process peak RSS growth",
            (None, Some((_, false))) => "process peak RSS growth (upper bound)",
            (None, None) => "n/a",
        }
    }
}

/// Median of `v` (NaN when empty).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Runs `warmup` untimed steps (their durations printed as `{label}: warm-up step i took …`),
/// `steps` timed ones and one instrumented step of `step`, which takes the model and returns the
/// updated one.
pub fn time_steps<B: Backend, M>(
    device: &B::Device,
    memory: MemoryReader<'_>,
    mut model: M,
    (warmup, steps): (usize, usize),
    label: &str,
    mut step: impl FnMut(M, &mut MemoryProbe<'_, B>) -> M,
) -> Result<(M, StepTimes)> {
    let sync = || B::sync(device).map_err(|e| anyhow!("device sync failed: {e:?}"));
    let mut probe = MemoryProbe::<B> { device, memory, on: false, peak: None };
    for i in 0..warmup {
        let t0 = Instant::now();
        model = step(model, &mut probe);
        sync()?;
        eprintln!("{label}: warm-up step {} took {:.1}s", i + 1, t0.elapsed().as_secs_f64());
    }
    sync()?;
    let mut ms = Vec::with_capacity(steps);
    let mut last_report = Instant::now();
    let cpu = CpuClock::start();
    for i in 0..steps {
        let t0 = Instant::now();
        model = step(model, &mut probe);
        sync()?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        // slow steps: a run killed by a time limit still shows what it measured
        if last_report.elapsed().as_secs_f64() >= 10.0 && i + 1 < steps {
            eprintln!("{label}: timed step {}/{steps}, median so far {:.1} ms", i + 1, median(&ms));
            last_report = Instant::now();
        }
    }
    let cpu_ms = cpu.per_step_ms(steps);
    let rss = memory().is_none().then(RssPeak::start).flatten();
    probe.on = true;
    model = step(model, &mut probe);
    sync()?;
    let rss_peak = rss.and_then(|r| r.finish());
    Ok((model, StepTimes { ms, cpu_ms, device_peak: probe.peak, rss_peak }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max_and_memory_labels() {
        let t = StepTimes { ms: vec![3.0, 1.0, 4.0, 2.0], cpu_ms: (None, None), device_peak: None, rss_peak: Some((10, false)) };
        assert_eq!(t.median_ms(), 2.5);
        assert_eq!(t.min_max_ms(), (1.0, 4.0));
        assert_eq!((t.peak_bytes(), t.memory_measure()), (Some(10), "process peak RSS growth (upper bound)"));
        let t = StepTimes { ms: vec![5.0, 1.0, 3.0], cpu_ms: (None, None), device_peak: Some((7, 9)), rss_peak: None };
        assert_eq!(t.median_ms(), 3.0);
        assert_eq!((t.peak_bytes(), t.memory_measure()), (Some(7), "device allocator"));
    }
}
