//! Timers: [`sleep`], [`sleep_until`], [`timeout`], [`interval`].
//!
//! Timers live in the reactor of the runtime that first polls them (see
//! `reactor::timers` for the store and its protocol). A timer never fires
//! early: it completes only once `Instant::now() >= deadline`.

mod interval;

pub use interval::{interval, interval_at, Interval, MissedTickBehavior};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

pub(crate) use crate::reactor::deadline_after;
use crate::reactor::TimerKey;
use crate::runtime::{context, Shared};

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
/// use std::time::{Duration, Instant};
///
/// ebbtide::block_on(async {
///     let start = Instant::now();
///     ebbtide::time::sleep(Duration::from_millis(10)).await;
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    // An overflowing deadline (e.g. `Duration::MAX`) means "never".
    sleep_until(deadline_after(Instant::now(), duration))
}

/// Waits until `deadline`.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// ebbtide::block_on(async {
///     let deadline = Instant::now() + Duration::from_millis(5);
///     ebbtide::time::sleep_until(deadline).await;
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        runtime: None,
        key: None,
    }
}

/// A [`sleep_until`] on `shared`'s timers whatever runtime is current (or
/// none: a runtime dropped by a thread-local's destructor at thread exit
/// still needs its shutdown's deadline).
pub(crate) fn sleep_until_on(shared: &Arc<Shared>, deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        runtime: Some(shared.clone()),
        key: None,
    }
}

/// The panic of a timer polled after its runtime shut down: it could never
/// fire, and a `Sleep` has no error to return.
const RUNTIME_GONE: &str = "ebbtide::time: a timer was polled after its runtime shut down \
    (timers stop with the runtime's reactor); create timers inside a running runtime, and \
    finish the work that awaits them before calling `shutdown`";

/// The future returned by [`sleep`] and [`sleep_until`].
///
/// Registers a timer on its first pending poll and removes it when dropped.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    /// The runtime whose timers this uses: given at creation
    /// (`sleep_until_on`), else the one current at the first pending poll.
    runtime: Option<Arc<Shared>>,
    /// The timer's key in that runtime's store, while registered.
    key: Option<TimerKey>,
}

impl Sleep {
    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline. A registered timer moves with it and keeps the
    /// waker of the task that polled it last, so that task is woken at the
    /// new deadline even if nothing polls the `Sleep` meanwhile (a deadline
    /// moved from another task or thread, e.g. an idle timeout behind a
    /// mutex).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// ebbtide::block_on(async {
    ///     let mut s = ebbtide::time::sleep(Duration::from_secs(3600));
    ///     s.reset(Instant::now() + Duration::from_millis(1));
    ///     s.await;
    /// });
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        let (Some(shared), Some(key)) = (&self.runtime, &mut self.key) else {
            return;
        };
        // `None`: it fired already; the next poll registers afresh.
        if let Some((moved, notify)) = shared.reactor.timers.reset(*key, deadline) {
            *key = moved;
            if notify {
                shared.reactor.notify();
            }
        }
    }

    fn deregister(&mut self) {
        if let (Some(shared), Some(key)) = (&self.runtime, self.key.take()) {
            shared.reactor.timers.remove(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self.deregister();
            return Poll::Ready(());
        }
        let this = &mut *self;
        let shared = this.runtime.get_or_insert_with(|| {
            context::with_current(|s| s.cloned()).unwrap_or_else(|| {
                panic!(
                    "ebbtide::time::Sleep polled outside a runtime: await it inside \
                     `block_on` or a spawned task"
                )
            })
        });
        match this.key {
            Some(key) if shared.reactor.timers.update_waker(key, cx.waker()) => {}
            // Not registered yet, or gone without firing due (removed by
            // teardown): register, which reports a closed runtime.
            _ => this.register(cx),
        }
        Poll::Pending
    }
}

impl Sleep {
    fn register(&mut self, cx: &mut Context<'_>) {
        let shared = self.runtime.as_ref().expect("the runtime is set first");
        if shared.reactor.is_closed() {
            panic!("{RUNTIME_GONE}");
        }
        let (key, notify) = shared
            .reactor
            .timers
            .insert(self.deadline, cx.waker().clone());
        if notify {
            shared.reactor.notify();
        }
        self.key = Some(key);
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.key.is_some())
            .finish()
    }
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

/// Runs `future` until `deadline`; see [`timeout`].
///
/// # Errors
///
/// [`Elapsed`] if the deadline passes first.
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
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
