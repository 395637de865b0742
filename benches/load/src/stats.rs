//! Latency histogram and `/proc` sampling of the server under test.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two: relative error of a reported value is at most 1/32.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS + 1) as usize) * SUB as usize;

/// Lock-free log-linear histogram of nanosecond values, shared by every client task.
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let shift = exp - SUB_BITS;
    (((shift + 1) as u64) * SUB + ((v >> shift) & (SUB - 1))) as usize
}

/// Midpoint of a bucket's range, in the recorded unit.
fn bucket_value(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let low = (SUB + i % SUB) << shift;
    low + ((1u64 << shift) >> 1)
}

impl Histogram {
    pub fn record(&self, v: u64) {
        self.counts[bucket_of(v)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(v, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Ordering::Relaxed);
        }
        self.max.store(0, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// A frozen copy of a [`Histogram`].
pub struct Snapshot {
    counts: Vec<u64>,
    max: u64,
}

impl Snapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), or 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_value(i).min(self.max);
            }
        }
        self.max
    }
}

/// CPU time and resident memory of one process at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// utime + stime, microseconds.
    pub cpu_us: u64,
    /// VmRSS, KiB.
    pub rss_kib: u64,
}

fn clock_ticks_per_sec() -> u64 {
    #[allow(unsafe_code)]
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Reads `/proc/PID/stat` and `/proc/PID/status` (`pid` 0 means this process).
pub fn sample(pid: u32) -> std::io::Result<ProcSample> {
    let dir = if pid == 0 {
        "/proc/self".to_string()
    } else {
        format!("/proc/{pid}")
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| std::io::Error::other("malformed stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let ticks = |i: usize| -> u64 { fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0) };
    let cpu_ticks = ticks(11) + ticks(12);
    let status = std::fs::read_to_string(format!("{dir}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(ProcSample {
        cpu_us: cpu_ticks * 1_000_000 / clock_ticks_per_sec(),
        rss_kib,
    })
}

/// Samples the server (if a pid was given) and this process together.
#[derive(Clone, Copy, Debug, Default)]
pub struct Probe {
    pub server: Option<ProcSample>,
    pub tool: ProcSample,
    pub at: Option<std::time::Instant>,
    /// Cumulative time some runnable task waited for a CPU (`/proc/pressure/cpu`), µs.
    pub cpu_stall_us: Option<u64>,
}

fn cpu_stall_us() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

impl Probe {
    pub fn take(pid: Option<u32>) -> Self {
        Self {
            server: pid.and_then(|p| sample(p).ok()),
            tool: sample(0).unwrap_or_default(),
            at: Some(std::time::Instant::now()),
            cpu_stall_us: cpu_stall_us(),
        }
    }

    /// Share of the time between `self` and `later` during which some task on the machine
    /// was waiting for a CPU, percent: how contended the machine was.
    pub fn cpu_pressure_pct(&self, later: &Probe) -> Option<f64> {
        let wall = later.at?.duration_since(self.at?).as_secs_f64();
        let stall = later.cpu_stall_us?.saturating_sub(self.cpu_stall_us?) as f64 / 1e6;
        (wall > 0.0).then(|| stall / wall * 100.0)
    }

    /// Server CPU microseconds spent between `self` and `later`.
    pub fn server_cpu_us(&self, later: &Probe) -> Option<u64> {
        Some(later.server?.cpu_us.saturating_sub(self.server?.cpu_us))
    }

    /// This tool's CPU use between `self` and `later`, as a percentage of one core.
    pub fn tool_cpu_pct(&self, later: &Probe) -> f64 {
        let wall = match (self.at, later.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        if wall <= 0.0 {
            return 0.0;
        }
        later.tool.cpu_us.saturating_sub(self.tool.cpu_us) as f64 / 1e6 / wall * 100.0
    }
}

/// Raises this process's soft open-files limit to the hard limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: `lim` is a valid, writable rlimit for the duration of both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for v in [
            0u64,
            1,
            31,
            32,
            33,
            63,
            64,
            100,
            1000,
            123_456,
            9_999_999,
            u64::MAX / 2,
        ] {
            let b = bucket_of(v);
            assert!(b >= last);
            last = b;
            let back = bucket_value(b);
            let err = (back as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err <= 1.0 / 32.0 + 1e-9, "v={v} back={back}");
        }
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 1000);
        let p50 = s.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.04, "{p50}");
        assert_eq!(s.max(), 1_000_000);
        assert!(s.quantile(1.0) <= 1_000_000);
    }
}
