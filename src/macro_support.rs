//! What `#[ebbtide::main]` and `#[ebbtide::test]` expand to call, as
//! `::ebbtide::__private`. Hidden and not part of the API: it changes with
//! `ebbtide-macros`, which the `macros` feature pins to this crate's
//! version.
//!
//! 1. `Options` carries the attribute's arguments, already checked at
//!    compile time (unknown keys, `worker_threads` on a current-thread
//!    runtime and bad durations never get here).
//! 2. `run_main` builds the runtime, blocks on the body and returns its
//!    output; dropping the runtime then drains it as usual (`drain_timeout`).
//! 3. `run_test` does the same on a runtime of its own, then shuts it down
//!    and panics with the shutdown report if the runtime could not stop
//!    everything: a leaked task, op or blocking job fails the test (a task
//!    cancelled at the end does not).

use std::future::Future;
use std::time::Duration;

use crate::runtime::{Runtime, ShutdownReport};

/// The attribute's arguments (see `ebbtide_macros`).
#[derive(Clone, Debug)]
pub struct Options {
    /// `flavor = "multi_thread"` (else current-thread).
    pub multi_thread: bool,
    /// `worker_threads = N` (only with `multi_thread`).
    pub worker_threads: Option<usize>,
    /// `start_paused = true`.
    pub start_paused: bool,
    /// `drain_timeout = "…"`, parsed at compile time.
    pub drain_timeout: Option<Duration>,
}

impl Options {
    fn build(&self, attribute: &str) -> Runtime {
        let mut builder = Runtime::builder();
        match (self.multi_thread, self.worker_threads) {
            (false, _) => builder.current_thread(),
            (true, Some(n)) => builder.worker_threads(n),
            (true, None) => &mut builder,
        };
        if let Some(d) = self.drain_timeout {
            builder.drain_timeout(d);
        }
        if self.start_paused {
            builder.start_paused(true);
        }
        builder
            .build()
            .unwrap_or_else(|e| panic!("{attribute}: cannot build the runtime: {e}"))
    }
}

/// Step 2: `#[ebbtide::main]`'s body.
///
/// # Panics
///
/// If the runtime cannot be built, and with the body's own panic.
pub fn run_main<F: Future>(options: Options, body: F) -> F::Output {
    options.build("#[ebbtide::main]").block_on(body)
}

/// Step 3: `#[ebbtide::test]`'s body.
///
/// # Panics
///
/// If the runtime cannot be built, with the body's own panic, and when the
/// shutdown after the body leaked work (the message is the report).
pub fn run_test<F: Future>(options: Options, body: F) -> F::Output {
    let rt = options.build("#[ebbtide::test]");
    let output = rt.block_on(body);
    let drain = rt.handle().shared.config.drain_timeout;
    check_report(&rt.shutdown(drain));
    output
}

/// Step 3's verdict.
fn check_report(report: &ShutdownReport) {
    if report.tasks_leaked > 0 || report.ops_leaked > 0 || report.blocking_leaked > 0 {
        panic!(
            "#[ebbtide::test]: the test's runtime could not stop all its work at shutdown \
             (a task stuck in `poll`, an I/O operation the OS never acknowledged, or a blocking \
             job still running): {report}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn fails(report: ShutdownReport) -> bool {
        std::panic::catch_unwind(|| check_report(&report)).is_err()
    }

    #[test]
    fn a_report_with_leaked_tasks_ops_or_blocking_jobs_fails_the_test() {
        assert!(fails(ShutdownReport {
            tasks_leaked: 1,
            ..Default::default()
        }));
        assert!(fails(ShutdownReport {
            ops_leaked: 1,
            ..Default::default()
        }));
        assert!(fails(ShutdownReport {
            blocking_leaked: 1,
            ..Default::default()
        }));
    }

    #[test]
    fn a_report_with_only_completed_or_cancelled_tasks_passes() {
        assert!(!fails(ShutdownReport {
            completed: 3,
            cancelled: 2,
            ops_cancelled: 1,
            ..Default::default()
        }));
    }
}
