//! Timers: [`sleep`], [`sleep_until`], [`timeout`], [`interval()`], the
//! [`Instant`] they measure with, and the test clock: [`pause`],
//! [`resume`], [`advance`].
//!
//! Timers live in the reactor of the runtime that first polls them (see
//! `reactor::timers` for the store and its protocol). A timer never fires
//! early: it completes only once the runtime's clock reads at or past its
//! deadline. That clock is real time unless a test paused it (`reactor::
//! clock` states how a paused clock moves, and the auto-advance steps).

mod clock;
mod interval;

pub use clock::{advance, pause, resume};
pub use interval::{interval, interval_at, Interval, MissedTickBehavior};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

pub(crate) use crate::reactor::deadline_after;
pub use crate::reactor::{Instant, Sleep};

/// Waits until `duration` has elapsed.
///
/// # Panics
///
/// When polled outside a runtime (the returned future may be created
/// anywhere), or after its runtime shut down (a timer could never fire
/// then; I/O objects return an error in that case instead).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::time::Instant;
///
/// ebbtide::block_on(async {
///     let start = Instant::now();
///     ebbtide::time::sleep(Duration::from_millis(10)).await;
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    // An overflowing deadline (e.g. `Duration::MAX`) means "never".
    sleep_until(deadline_after(crate::reactor::now(), duration))
}

/// Waits until `deadline`: an [`Instant`], or a `std::time::Instant`
/// (the same value; see [`Instant`] on mixing the two under a paused clock).
///
/// # Panics
///
/// As [`sleep`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::time::Instant;
///
/// ebbtide::block_on(async {
///     let deadline = Instant::now() + Duration::from_millis(5);
///     ebbtide::time::sleep_until(deadline).await;
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn sleep_until(deadline: impl Into<Instant>) -> Sleep {
    Sleep::new(deadline.into())
}

/// Runs `future` with a time limit.
///
/// # Errors
///
/// [`Elapsed`] if `duration` passes first; `future` is dropped then.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::time::{sleep, timeout};
///
/// ebbtide::block_on(async {
///     let slow = timeout(Duration::from_millis(5), sleep(Duration::from_secs(60))).await;
///     assert!(slow.is_err());
///     let fast = timeout(Duration::from_secs(60), async { 7 }).await;
///     assert_eq!(fast.unwrap(), 7);
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// Runs `future` until `deadline` (an [`Instant`] or a
/// `std::time::Instant`); see [`timeout`].
///
/// # Errors
///
/// [`Elapsed`] if the deadline passes first.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::time::{timeout_at, Instant};
///
/// ebbtide::block_on(async {
///     let deadline = Instant::now() + Duration::from_millis(5);
///     let r = timeout_at(deadline, std::future::pending::<()>()).await;
///     assert!(r.is_err());
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn timeout_at<F: Future>(deadline: impl Into<Instant>, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep_until(deadline),
    }
}

pin_project! {
    /// The future returned by [`timeout`].
    #[must_use = "futures do nothing unless awaited"]
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        // Outside the budget: a future that spent it (an always-ready loop)
        // must still time out (`crate::coop`).
        let _unconstrained = crate::coop::Scope::unconstrained();
        Pin::new(this.sleep)
            .poll(cx)
            .map(|()| Err(Elapsed { _priv: () }))
    }
}

/// The error of a [`timeout`] whose time ran out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    _priv: (),
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}
