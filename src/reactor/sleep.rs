//! `Sleep`: one timer of the reactor's store as a future (the public face
//! is `crate::time`, which re-exports it). Registers on its first pending
//! poll, moves with `reset`, and leaves the store when dropped. It is due
//! once its reactor fired its timer (`Timers::has_fired`: one atomic load,
//! no clock read, no lock), or by its reactor's clock (`clock`: real time,
//! or paused by a test).

use super::{clock, Instant, Reactor, TimerKey};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The panic of a timer polled after its runtime shut down: it could never
/// fire, and a `Sleep` has no error to return.
const RUNTIME_GONE: &str = "ebbtide::time: a timer was polled after its runtime shut down \
    (timers stop with the runtime's reactor); create timers inside a running runtime, and \
    finish the work that awaits them before calling `shutdown`";

/// The future returned by [`sleep`](crate::time::sleep) and
/// [`sleep_until`](crate::time::sleep_until).
///
/// Registers a timer on its first pending poll and removes it when dropped.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    /// The reactor whose timers this uses: given at creation (`Sleep::on`),
    /// else the current runtime's at the first pending poll.
    reactor: Option<Arc<Reactor>>,
    /// The timer's key in that reactor's store, while registered.
    key: Option<TimerKey>,
}

impl Sleep {
    /// A sleep until `deadline` on the reactor current when first polled.
    pub(crate) fn new(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            reactor: None,
            key: None,
        }
    }

    /// A sleep until `deadline` on `reactor`'s timers whatever runtime is
    /// current (or none: a runtime dropped by a thread-local's destructor at
    /// thread exit still needs its shutdown's deadline).
    ///
    /// `deadline` is in real time (the runtime's shutdown computes it from
    /// `std::time::Instant::now()`); it is carried over to the reactor's
    /// clock, which a test may have paused and advanced (`Clock::carry_over`).
    pub(crate) fn on(reactor: &Arc<Reactor>, deadline: std::time::Instant) -> Sleep {
        Sleep {
            deadline: reactor.clock.carry_over(deadline).into(),
            reactor: Some(reactor.clone()),
            key: None,
        }
    }

    /// The instant this sleep completes at.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::{sleep_until, Instant};
    ///
    /// let at = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(sleep_until(at).deadline(), at);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// ebbtide::block_on(async {
    ///     let s = ebbtide::time::sleep(Duration::from_secs(3600));
    ///     assert!(!s.is_elapsed());
    ///     assert!(ebbtide::time::sleep(Duration::ZERO).is_elapsed());
    /// });
    /// ```
    pub fn is_elapsed(&self) -> bool {
        self.now() >= self.deadline.into_std()
    }

    /// The time by this sleep's clock: its reactor's once bound, else the
    /// current runtime's (`clock::now`; real time unless a test paused it).
    #[inline]
    fn now(&self) -> std::time::Instant {
        if clock::all_real() {
            return std::time::Instant::now(); // the hot path: one load
        }
        self.clock_now()
    }

    #[cold]
    fn clock_now(&self) -> std::time::Instant {
        match &self.reactor {
            Some(reactor) => reactor.clock.now(),
            None => clock::now(),
        }
    }

    /// Moves the deadline. A registered timer moves with it and keeps the
    /// waker of the task that polled it last, so that task is woken at the
    /// new deadline even if nothing polls the `Sleep` meanwhile (a deadline
    /// moved from another task or thread, e.g. an idle timeout behind a
    /// mutex).
    ///
    /// Takes an [`Instant`](crate::time::Instant) or a
    /// `std::time::Instant`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::Instant;
    ///
    /// ebbtide::block_on(async {
    ///     let mut s = ebbtide::time::sleep(Duration::from_secs(3600));
    ///     let soon = Instant::now() + Duration::from_millis(1);
    ///     s.reset(soon);
    ///     assert_eq!(s.deadline(), soon);
    ///     s.await;
    /// });
    /// ```
    pub fn reset(&mut self, deadline: impl Into<Instant>) {
        let deadline = deadline.into();
        self.deadline = deadline;
        let (Some(reactor), Some(key)) = (&self.reactor, &mut self.key) else {
            return;
        };
        // `None`: it fired already; the next poll registers afresh (the old
        // key, which `has_fired`, must not complete the moved deadline).
        match reactor.timers.reset(*key, deadline.into_std()) {
            Some((moved, notify)) => {
                *key = moved;
                if notify {
                    reactor.notify();
                }
            }
            None => self.key = None,
        }
    }

    fn deregister(&mut self) {
        if let (Some(reactor), Some(key)) = (&self.reactor, self.key.take()) {
            // A fired timer has left the store already: no lock to take.
            if !reactor.timers.has_fired(key) {
                reactor.timers.remove(key);
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Fired by the reactor (the usual wake-up): due without a clock read.
        let fired = match (&self.reactor, self.key) {
            (Some(reactor), Some(key)) => reactor.timers.has_fired(key),
            _ => false,
        };
        if fired || self.now() >= self.deadline.into_std() {
            // A due timer is a ready operation like any other (`crate::coop`).
            std::task::ready!(crate::coop::poll_proceed(cx));
            self.deregister();
            return Poll::Ready(());
        }
        let this = &mut *self;
        let reactor = this.reactor.get_or_insert_with(|| {
            Reactor::current("ebbtide::time::Sleep::poll").unwrap_or_else(|_| {
                panic!(
                    "ebbtide::time::Sleep polled outside a runtime: await it inside \
                     `block_on` or a spawned task"
                )
            })
        });
        match this.key {
            Some(key) if reactor.timers.update_waker(key, cx.waker()) => {}
            // Not registered yet, or gone without firing due (removed by
            // teardown): register, which reports a closed runtime.
            _ => this.register(cx),
        }
        Poll::Pending
    }
}

impl Sleep {
    fn register(&mut self, cx: &mut Context<'_>) {
        let reactor = self.reactor.as_ref().expect("the reactor is set first");
        if reactor.is_closed() {
            panic!("{RUNTIME_GONE}");
        }
        let (key, notify) = reactor
            .timers
            .insert(self.deadline.into_std(), cx.waker().clone());
        if notify {
            reactor.notify();
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
