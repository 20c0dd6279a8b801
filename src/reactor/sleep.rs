//! `Sleep`: one timer of the reactor's store as a future (the public face
//! is `crate::time`, which re-exports it). Registers on its first pending
//! poll, moves with `reset`, and leaves the store when dropped. It is due
//! once its reactor fired its timer (`Timers::has_fired`: one atomic load,
//! no clock read, no lock), or by its reactor's clock (`clock`: real time,
//! or paused by a test).
//!
//! # A poll before the timer fired
//!
//! 1. A poll registers the timer with the task's waker, or replaces the
//!    stored waker when another task polls (`Timers::update_waker`), and
//!    remembers which waker the store holds (`WakerId`: its data and vtable
//!    pointers, what `Waker::will_wake` compares).
//! 2. A later poll by a waker with that identity, of a timer that is not
//!    fired (`has_fired` false) but will be (its key remembers its deadline:
//!    `TimerKey::fires_by_marker`), on a reactor not closed, returns
//!    `Pending` at once: the store holds a waker that wakes this task, and
//!    will call it when the timer fires. No clock read, no lock. A timer
//!    whose deadline passed but which the driver has not fired yet is
//!    woken by that fire, a driver turn later.
//! 3. Why the identity cannot lie: the store keeps its clone of the waker
//!    alive until it fires the timer, so no other waker can be allocated at
//!    its address meanwhile; and once `fire_due` took the waker out it
//!    publishes that (`fired_through`) before it wakes, let alone frees, the
//!    waker, so a poll that sees the same address again also sees
//!    `has_fired`.

use super::{clock, Instant, Reactor, TimerKey};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, RawWakerVTable, Waker};

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
    /// Which waker the store holds for the timer while `key` is set: the
    /// one of the last poll that registered it or updated its waker.
    waker: WakerId,
}

/// A waker's identity, as `Waker::will_wake` compares it: its data and
/// vtable pointers (as integers, so `Sleep` stays `Send` and `Sync`).
/// Compared, never dereferenced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct WakerId(usize, usize);

impl WakerId {
    fn of(waker: &Waker) -> WakerId {
        WakerId(
            waker.data() as usize,
            waker.vtable() as *const RawWakerVTable as usize,
        )
    }
}

impl Sleep {
    /// A sleep until `deadline` on the reactor current when first polled.
    pub(crate) fn new(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            reactor: None,
            key: None,
            waker: WakerId::default(),
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
            waker: WakerId::default(),
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
        // Fired by the reactor (the usual wake-up): due without a clock read
        // or a lock, and already out of the store.
        if let (Some(reactor), Some(key)) = (&self.reactor, self.key) {
            if reactor.timers.has_fired(key) {
                // A due timer is a ready operation like any other
                // (`crate::coop`).
                std::task::ready!(crate::coop::poll_proceed(cx));
                self.key = None;
                return Poll::Ready(());
            }
            // Polled again before it fired, by the task the store will wake
            // (a `select!` woken by another branch): nothing to do, so no
            // clock read and no lock (the module doc says why this holds).
            if key.fires_by_marker()
                && WakerId::of(cx.waker()) == self.waker
                && !reactor.is_closed()
            {
                return Poll::Pending;
            }
        }
        self.poll_unfired(cx)
    }
}

impl Sleep {
    /// `poll` of a sleep its reactor has not (surely) fired: due by the
    /// clock, or registered (or its waker updated) and pending. Kept out of
    /// line so the fired path above stays small.
    #[inline(never)]
    fn poll_unfired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.now() >= self.deadline.into_std() {
            std::task::ready!(crate::coop::poll_proceed(cx));
            self.deregister();
            return Poll::Ready(());
        }
        let reactor = self.reactor.get_or_insert_with(|| {
            Reactor::current("ebbtide::time::Sleep::poll").unwrap_or_else(|_| {
                panic!(
                    "ebbtide::time::Sleep polled outside a runtime: await it inside \
                     `block_on` or a spawned task"
                )
            })
        });
        match self.key {
            Some(key) if reactor.timers.update_waker(key, cx.waker()) => {
                self.waker = WakerId::of(cx.waker());
            }
            // Not registered yet, or gone without firing due (removed by
            // teardown): register, which reports a closed runtime.
            _ => self.register(cx),
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
        self.waker = WakerId::of(cx.waker());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::IoBackend;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::Wake;
    use std::time::Duration;

    /// Counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn reactor() -> Arc<Reactor> {
        Arc::new(Reactor::new(None, IoBackend::Auto).expect("a reactor"))
    }

    fn locks(reactor: &Reactor) -> usize {
        reactor.timers.locks.load(SeqCst)
    }

    #[test]
    fn a_sleep_polled_again_by_the_task_it_woke_for_takes_no_lock() {
        let reactor = reactor();
        let deadline = std::time::Instant::now() + Duration::from_secs(3600);
        let mut sleep = Box::pin(Sleep::on(&reactor, deadline));
        let (first, second) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let waker = Waker::from(first.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(sleep.as_mut().poll(&mut cx).is_pending(), "registers");
        let registered = locks(&reactor);
        for _ in 0..3 {
            // A clone has the same identity: still no lock.
            let clone = waker.clone();
            assert!(sleep
                .as_mut()
                .poll(&mut Context::from_waker(&clone))
                .is_pending());
        }
        // Miri gives each use of the std waker's vtable constant its own
        // address, so `will_wake` (and this fast path, which compares the
        // same pointers) says "another waker" for a clone there: the poll
        // then takes the lock, which is correct, only slower.
        if !cfg!(miri) {
            assert_eq!(locks(&reactor), registered, "re-polls took no lock");
        }
        // Another task polls it: the store must learn its waker.
        let other = Waker::from(second.clone());
        assert!(sleep
            .as_mut()
            .poll(&mut Context::from_waker(&other))
            .is_pending());
        assert!(locks(&reactor) > registered, "the waker was swapped");
        let mut wakers = Vec::new();
        reactor.timers.fire_due(deadline, &mut wakers);
        wakers.into_iter().for_each(Waker::wake);
        assert_eq!((first.0.load(SeqCst), second.0.load(SeqCst)), (0, 1));
        assert!(sleep.as_mut().poll(&mut cx).is_ready(), "fired");
    }

    #[test]
    fn a_sleep_filed_behind_the_drivers_last_fire_is_polled_ready_by_the_clock() {
        let reactor = reactor();
        // The driver has fired up to an hour from now, so a timer filed now
        // for an earlier deadline is not told fired by the marker: only the
        // clock says it is due, and a re-poll must read it.
        let now = std::time::Instant::now();
        reactor
            .timers
            .fire_due(now + Duration::from_secs(3600), &mut Vec::new());
        let mut sleep = Box::pin(Sleep::on(&reactor, now + Duration::from_millis(20)));
        let waker = Waker::from(Arc::new(Count::default()));
        let mut cx = Context::from_waker(&waker);
        assert!(sleep.as_mut().poll(&mut cx).is_pending(), "registers");
        while std::time::Instant::now() < now + Duration::from_millis(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(sleep.as_mut().poll(&mut cx).is_ready(), "due by the clock");
        assert_eq!(reactor.timers.len(), 0, "and out of the store");
    }
}
