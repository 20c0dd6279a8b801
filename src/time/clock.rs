//! The test clock's faces: [`pause`], [`resume`], [`advance`]. The clock
//! itself, and how a paused clock's driver auto-advances, are in
//! `reactor::clock`.

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::context;
use crate::runtime::Shared;

/// The current runtime, checked to be one whose clock may be paused.
fn pausable(what: &str) -> Arc<Shared> {
    let shared = context::current(what).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        shared.config.current_thread,
        "{what} needs a current-thread runtime (`Builder::current_thread`): a paused clock \
         auto-advances when the runtime is idle, which only the one thread of a \
         current-thread runtime can tell"
    );
    shared
}

/// Stops the current runtime's clock: from now on its time moves only by
/// [`advance`], or, when no task can run and the next thing to happen is a
/// timer, by jumping straight to that timer's deadline (auto-advance).
/// [`Instant::now`](super::Instant::now), [`sleep`](super::sleep),
/// [`timeout`](super::timeout) and [`interval`](super::interval()) follow
/// it, so a test of a one-hour timeout finishes at once and always the same
/// way. I/O and wakes from other threads still wake the runtime as usual,
/// and ready I/O is always delivered before time jumps.
///
/// [`Builder::start_paused`](crate::runtime::Builder::start_paused) builds a
/// runtime whose clock starts paused.
///
/// # Panics
///
/// Outside a runtime; on a multi-thread runtime; if the clock is paused
/// already.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::time::{self, Instant};
///
/// let rt = ebbtide::runtime::Runtime::builder().current_thread().build()?;
/// rt.block_on(async {
///     time::pause();
///     let start = Instant::now();
///     time::sleep(Duration::from_secs(3600)).await; // returns at once
///     assert_eq!(start.elapsed(), Duration::from_secs(3600));
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pause() {
    let shared = pausable("ebbtide::time::pause");
    assert!(
        shared.reactor.clock.pause(),
        "ebbtide::time::pause: the clock is paused already"
    );
}

/// Lets a paused clock run at real speed again, from the time it reads now
/// (so it stays behind or ahead of real time by what was skipped: an
/// instant never goes back). Timers then fire in real time.
///
/// # Panics
///
/// Outside a runtime; if the clock is not paused.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::time::{self, Instant};
///
/// let rt = ebbtide::runtime::Runtime::builder().current_thread().start_paused(true).build()?;
/// rt.block_on(async {
///     time::resume();
///     let start = std::time::Instant::now();
///     time::sleep(Duration::from_millis(5)).await; // waits in real time
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn resume() {
    let shared = context::current("ebbtide::time::resume").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        shared.reactor.clock.resume(),
        "ebbtide::time::resume: the clock is not paused (call `time::pause` first)"
    );
}

/// Moves the paused clock forward by `duration`, fires every timer due by
/// then, and yields once so the tasks those timers woke can run.
///
/// `duration` saturates: `Duration::MAX` moves the clock about 30 years
/// (what the timers treat as "never"), firing every timer but those.
///
/// # Panics
///
/// Outside a runtime; if the clock is not paused.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::time::{self, Instant};
///
/// let rt = ebbtide::runtime::Runtime::builder().current_thread().start_paused(true).build()?;
/// rt.block_on(async {
///     let start = Instant::now();
///     let late = ebbtide::spawn(time::sleep(Duration::from_secs(10)));
///     time::advance(Duration::from_secs(9)).await;
///     assert!(!late.is_finished());
///     time::advance(Duration::from_secs(1)).await;
///     late.await.unwrap();
///     assert_eq!(start.elapsed(), Duration::from_secs(10));
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn advance(duration: Duration) {
    let shared = context::current("ebbtide::time::advance").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        shared.reactor.clock.advance(duration),
        "ebbtide::time::advance: the clock is not paused (call `time::pause` first)"
    );
    shared.reactor.fire_due_now();
    drop(shared);
    crate::executor::yield_now().await;
}
