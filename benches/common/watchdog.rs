//! The benches' hang watchdog (`compare.rs`, `echo.rs`): a sample stuck
//! longer than its limit is reported, with ebbtide's metrics when it is
//! ebbtide's, and the process exits (3) instead of hanging the whole run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What is being measured now.
struct Progress {
    what: String,
    since: Instant,
    ebbtide: Option<ebbtide::runtime::Handle>,
}

static PROGRESS: Mutex<Option<Progress>> = Mutex::new(None);

/// Starts timing `what` (`ebbtide`: the runtime whose metrics to print).
pub(crate) fn progress(what: String, ebbtide: Option<ebbtide::runtime::Handle>) {
    *PROGRESS.lock().unwrap() = Some(Progress {
        what,
        since: Instant::now(),
        ebbtide,
    });
}

/// Nothing is being measured (between samples, at the end).
pub(crate) fn idle() {
    *PROGRESS.lock().unwrap() = None;
}

/// Starts the watchdog thread: `what` stuck for `limit` is a hang.
pub(crate) fn start(limit: Duration) {
    std::thread::Builder::new()
        .name("bench-watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let guard = PROGRESS.lock().unwrap();
            let Some(p) = guard.as_ref() else { continue };
            if p.since.elapsed() < limit {
                continue;
            }
            eprintln!(
                "\nHANG: {} made no progress for {} s",
                p.what,
                p.since.elapsed().as_secs()
            );
            if let Some(h) = &p.ebbtide {
                eprintln!("ebbtide metrics: {:#?}", h.metrics());
            }
            std::process::exit(3);
        })
        .expect("spawn watchdog");
}
