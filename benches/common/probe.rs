//! What the callgrind probes (`sched_probe.rs`, `spawn_probe.rs`,
//! `timers_probe.rs`) share: their command line, `WORD... N [OPTION]`, and
//! the wall and CPU time of their work, printed as `wall=…ms cpu=…ms`
//! (wall time to confirm a run; the instruction counts decide).

use std::fmt;
use std::time::{Duration, Instant};

/// A probe's command line: `words` leading words (the runtime first), the
/// size `N`, then an optional word.
pub(crate) struct ProbeArgs {
    /// The words before `N`.
    pub(crate) words: Vec<String>,
    /// The size knob.
    pub(crate) n: usize,
    /// The word after `N`, if any.
    pub(crate) option: Option<String>,
}

impl ProbeArgs {
    /// Reads `words` words and `N` from the command line; `None` (after
    /// printing `usage: {usage}`) when there are fewer, as under a plain
    /// `cargo bench`, which passes only `--bench`.
    ///
    /// # Panics
    ///
    /// If `N` is not a number.
    pub(crate) fn parse(words: usize, usage: &str) -> Option<ProbeArgs> {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        if args.len() <= words {
            eprintln!("usage: {usage}");
            return None;
        }
        let option = args.get(words + 1).cloned();
        let n = args[words].parse().expect("N: a number");
        args.truncate(words);
        Some(ProbeArgs {
            words: args,
            n,
            option,
        })
    }
}

/// Wall and CPU time (this process, every thread) since it started.
pub(crate) struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    pub(crate) fn start() -> Stopwatch {
        Stopwatch {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    /// The time since [`Stopwatch::start`].
    pub(crate) fn elapsed(&self) -> Times {
        Times {
            wall: self.wall.elapsed(),
            cpu: cpu_time().saturating_sub(self.cpu),
        }
    }
}

/// What a [`Stopwatch`] measured; displays as `wall=1.23ms cpu=4.56ms`.
#[derive(Clone, Copy)]
pub(crate) struct Times {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
}

impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wall={:.2}ms cpu={:.2}ms",
            self.wall.as_secs_f64() * 1e3,
            self.cpu.as_secs_f64() * 1e3
        )
    }
}

/// CPU time of this process (zero where not measured).
#[cfg(unix)]
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant the
    // kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(unix))]
fn cpu_time() -> Duration {
    Duration::ZERO
}
