//! How busy the machine was: CPU ticks from `/proc/stat` and
//! `/proc/self/stat`, to tell how much other processes loaded it during a
//! sample (`echo.rs`, `process.rs`).

/// CPU time in clock ticks (`USER_HZ`), to tell how much other processes
/// loaded the machine during a sample (all zero where `/proc` is missing).
#[derive(Clone, Copy, Default)]
pub(crate) struct CpuTicks {
    /// All CPUs, busy (not idle or waiting for I/O).
    busy: u64,
    /// All CPUs, every state.
    total: u64,
    /// This process, user and system, and its children that it reaped
    /// (their CPU is this benchmark's load, not other processes').
    own: u64,
}

impl CpuTicks {
    pub(crate) fn now() -> CpuTicks {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8) // user nice system idle iowait irq softirq steal
            .filter_map(|f| f.parse().ok())
            .collect();
        let total: u64 = cpu.iter().sum();
        let idle = cpu.get(3).unwrap_or(&0) + cpu.get(4).unwrap_or(&0);
        // Fields after the `(comm)`: state is the 3rd field, then utime,
        // stime, cutime and cstime are the 14th to the 17th.
        let me = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after_comm = me.rsplit_once(')').map_or("", |(_, rest)| rest);
        let own = after_comm
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
        CpuTicks {
            busy: total - idle,
            total,
            own,
        }
    }

    /// Percent of the machine's CPU time that other processes used
    /// between `earlier` and `self`.
    pub(crate) fn background_since(self, earlier: CpuTicks) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        let busy = self.busy.saturating_sub(earlier.busy);
        let own = self.own.saturating_sub(earlier.own);
        match total {
            0 => 0.0,
            _ => 100.0 * busy.saturating_sub(own) as f64 / total as f64,
        }
    }
}
