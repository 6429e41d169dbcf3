//! Host memory of this process (Linux `/proc/self/status`), for backends whose allocator cannot
//! report device memory (ndarray): the peak resident set size reached during a step, above the
//! resident set size at its start.
use std::fs;

fn status_kib(key: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// A measurement in progress: `start` then `finish` around the measured work.
pub struct RssPeak {
    start_rss: u64,
    /// Whether the kernel's peak counter was reset at `start` (writing 5 to
    /// `/proc/self/clear_refs`); if not, an earlier, higher peak may be what `finish` sees.
    reset: bool,
}

impl RssPeak {
    /// `None` where `/proc/self/status` is not readable (not Linux).
    pub fn start() -> Option<RssPeak> {
        let reset = fs::write("/proc/self/clear_refs", "5").is_ok();
        Some(RssPeak { start_rss: status_kib("VmRSS:")? * 1024, reset })
    }

    /// Peak RSS growth in bytes since `start`, and whether the peak counter had been reset (an
    /// exact growth) or not (an upper bound).
    pub fn finish(&self) -> Option<(u64, bool)> {
        let hwm = status_kib("VmHWM:")? * 1024;
        Some((hwm.saturating_sub(self.start_rss), self.reset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_sees_a_large_allocation() {
        let Some(p) = RssPeak::start() else { return }; // not Linux
        let v = vec![1u8; 64 << 20];
        std::hint::black_box(&v);
        let (growth, _) = p.finish().unwrap();
        drop(v);
        assert!(growth >= 60 << 20, "growth {growth}");
    }
}
