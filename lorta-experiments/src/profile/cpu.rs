//! Host CPU time (Linux `/proc` scheduler statistics, nanoseconds on a CPU): of the calling
//! thread and of the whole process, so a profile shows whether a step is bound by the host
//! (the thread that builds and dispatches the step busy for the whole step) or by the device.
use std::collections::HashMap;
use std::fs;

/// First field of a `schedstat` file: nanoseconds spent running.
fn run_ns(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()
}

/// CPU nanoseconds of the calling thread so far; `None` off Linux.
pub fn thread_ns() -> Option<u64> {
    run_ns("/proc/thread-self/schedstat")
}

/// CPU nanoseconds so far of every live thread of this process, by thread id; `None` off Linux.
pub fn threads_ns() -> Option<HashMap<String, u64>> {
    let tasks = fs::read_dir("/proc/self/task").ok()?;
    Some(
        tasks
            .flatten()
            .filter_map(|t| Some((t.file_name().to_string_lossy().into_owned(), run_ns(&format!("{}/schedstat", t.path().display()))?)))
            .collect(),
    )
}

/// CPU time taken between [`CpuClock::start`] and [`CpuClock::per_step_ms`].
pub struct CpuClock {
    thread: Option<u64>,
    threads: Option<HashMap<String, u64>>,
}

impl CpuClock {
    pub fn start() -> CpuClock {
        CpuClock { thread: thread_ns(), threads: threads_ns() }
    }

    /// Milliseconds of CPU per step over `steps` steps: (calling thread, whole process). The
    /// process figure sums the threads alive at the end (a thread that ended in between is
    /// missed; none do in a profile).
    pub fn per_step_ms(&self, steps: usize) -> (Option<f64>, Option<f64>) {
        let per_step = |ns: u64| ns as f64 / 1e6 / steps.max(1) as f64;
        let thread = (|| Some(per_step(thread_ns()?.saturating_sub(self.thread?))))();
        let process = (|| {
            let (start, end) = (self.threads.as_ref()?, threads_ns()?);
            Some(per_step(end.iter().map(|(tid, ns)| ns.saturating_sub(start.get(tid).copied().unwrap_or(0))).sum()))
        })();
        (thread, process)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_up_in_both_clocks() {
        let start = std::time::Instant::now();
        let clock = CpuClock::start();
        // a fixed amount of work (tens of ms on any machine), not a fixed time: under a loaded
        // test run this thread may be descheduled for part of it
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        let (thread, process) = clock.per_step_ms(2);
        let wall_ms = start.elapsed().as_secs_f64() * 1e3;
        if cfg!(target_os = "linux") {
            let (thread, process) = (2.0 * thread.expect("thread clock"), 2.0 * process.expect("process clock"));
            assert!(thread >= 2.0, "the loop ran on this thread: {thread} ms");
            assert!(thread <= wall_ms + 1.0, "one thread cannot use more CPU than wall time: {thread} > {wall_ms}");
            assert!(process >= 0.99 * thread, "the process includes this thread: {process} vs {thread}");
        }
    }
}
