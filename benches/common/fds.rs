//! Descriptor leak check between samples (`echo.rs`, `process.rs`): every
//! socket, pipe and pidfd a sample opened must be closed before the next.

use std::time::{Duration, Instant};

/// Open descriptors of this process (0 where `/proc` is missing).
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Descriptors a runtime may open lazily on first use (smol's reactor)
/// without it being a leak.
pub(crate) const FD_SLACK: usize = 16;

/// Aborts if descriptors stay above `baseline + FD_SLACK` for a second
/// after the run named `after` (a cell, a sample) ended.
pub(crate) fn check_fds(baseline: usize, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let now = open_fds();
        if now <= baseline + FD_SLACK {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("descriptor leak: {now} open after {after}, {baseline} at start");
            std::process::exit(4);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
