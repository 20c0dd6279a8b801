//! The reactor: one OS poller per runtime (`sys`'s epoll poller on Linux,
//! `polling`'s kqueue or IOCP poller elsewhere), the registered sources, the
//! timers, and the hand-off of completion events to a completion backend.
//!
//! Any thread of the runtime may *drive* the reactor, one at a time: the
//! driver lock is taken with `try_lock`, so a thread that finds it busy parks
//! instead. The executor decides who drives (see `executor::worker`).
//!
//! # Driving, step by step
//!
//! 1. Take the driver lock (or return: someone else drives).
//! 2. Read the earliest timer deadline and record that the driver blocks.
//! 3. Ask the caller's `before_block` whether work arrived meanwhile (the
//!    executor's Dekker-style check against lost wakeups); if so, wait with a
//!    zero timeout.
//! 4. `Poller::wait` until an event, the deadline, or `Poller::notify`.
//!    On a paused clock (`clock`), wait with a zero timeout instead and,
//!    if nothing arrived, move the clock to the deadline (auto-advance;
//!    the steps and their reasons are in `clock`).
//! 5. Collect the wakers of ready sources and due timers, and the keys of
//!    completion events (those the `Completions` object the reactor was
//!    built with claims), then release the driver lock.
//! 6. Hand each completion key to the `Completions` object (it finishes the
//!    op, wakes its future, and drops a cancelled op's buffer: user code,
//!    so no lock is held), then call the collected wakers.
//!
//! The reactor knows nothing of ops: a completion backend (`crate::op`)
//! gives it the `Completions` object at construction. Where there is no
//! completion backend, every event is a readiness event.
//!
//! Timers are due by the reactor's `Clock`: real time, or a virtual time a
//! test controls (`time::pause`).
//!
//! The reactor of the runtime current on a thread is `Reactor::current`
//! (the runtime's context sets it with `Reactor::enter`), so I/O objects
//! and timers find it without knowing the runtime.

mod clock;
mod sleep;
mod source;
mod timers;

pub(crate) use clock::now;
pub use clock::Instant;
pub use sleep::Sleep;
pub(crate) use source::{Direction, Source};
pub(crate) use timers::{deadline_after, TimerKey, Timers};

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use polling::{Event, PollMode};
use slab::Slab;

use crate::sys::{Completion, Events, IoBackend, Poller, RawSource};

/// A completion backend's side of the poller: the events it registered
/// (under keys it recognizes), handed over with no lock held (step 6).
pub(crate) trait Completions: Send + Sync {
    /// Whether poller key `key` is one of this backend's completions rather
    /// than a registered source.
    fn is_completion(&self, key: usize) -> bool;
    /// Finishes the op of `done` (its key, and the OS's result where the
    /// poller reports one: io_uring). `poller` is the reactor's, for
    /// re-arming or removing the event.
    fn complete(&self, poller: &Poller, done: Completion);
}

/// The I/O and timer driver of one runtime.
pub(crate) struct Reactor {
    /// The OS poller (`sys::Poller`: epoll, kqueue or IOCP).
    poller: Poller,
    /// Whether the poller supports edge-triggered mode (see `source`).
    edge: bool,
    /// Registered handles by key; locked only to insert, remove, or look up.
    sources: Mutex<Slab<Arc<Source>>>,
    /// Pending timers.
    pub(crate) timers: Timers,
    /// The time the timers are measured against: real, or paused by a test
    /// (`clock`, which also states the auto-advance steps).
    pub(crate) clock: clock::Clock,
    /// Set by every `notify`: a paused clock's driver does not auto-advance
    /// past a wake that arrived while it looked for events (`clock`, step 3).
    notified: AtomicBool,
    /// Held by the thread currently driving; `try_lock` decides who drives.
    driver: Mutex<Driver>,
    /// Set at runtime teardown: new registrations and waits fail.
    closed: AtomicBool,
    /// The completion backend's handler, if the platform has one.
    completions: Option<Box<dyn Completions>>,
    /// The backend the poller resolved to.
    backend: IoBackend,
}

/// Buffers owned by whoever drives.
struct Driver {
    events: Events,
    wakers: Vec<Waker>,
    /// Completion events, handled after the driver lock is gone.
    completions: Vec<Completion>,
}

/// What `drive` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Drive {
    /// Another thread holds the driver.
    Busy,
    /// Waited and dispatched; the count of wakers called.
    Woke(usize),
}

impl Reactor {
    /// A reactor on the backend `requested` resolves to (`sys::new_poller`).
    pub(crate) fn new(
        completions: Option<Box<dyn Completions>>,
        requested: IoBackend,
    ) -> io::Result<Reactor> {
        let (poller, backend) = crate::sys::new_poller(requested)?;
        Ok(Reactor {
            edge: poller.supports_edge(),
            poller,
            sources: Mutex::new(Slab::new()),
            timers: Timers::new(),
            clock: clock::Clock::new(),
            notified: AtomicBool::new(false),
            driver: Mutex::new(Driver {
                events: Events::new(),
                wakers: Vec::new(),
                completions: Vec::new(),
            }),
            closed: AtomicBool::new(false),
            completions,
            backend,
        })
    }

    /// The backend this reactor runs on.
    pub(crate) fn backend(&self) -> IoBackend {
        self.backend
    }

    /// Wakes the thread blocked in `Poller::wait`, if any. One CAS and at
    /// most one eventfd write: safe from any thread.
    pub(crate) fn notify(&self) {
        if self.clock.is_paused() {
            self.notified.store(true, Ordering::SeqCst);
        }
        // An error here means the notification pipe is gone (teardown);
        // there is no driver left to wake.
        let _ = self.poller.notify();
    }

    pub(crate) fn poller(&self) -> &Poller {
        &self.poller
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Runs the steps in the module doc. `timeout_cap` bounds the wait
    /// (`Some(ZERO)` for a non-blocking poll); `before_block` returns `true`
    /// when work arrived and the wait must not block; `after_wake` runs right
    /// after `wait` returns, before any waker is called.
    pub(crate) fn drive(
        &self,
        timeout_cap: Option<Duration>,
        before_block: impl FnOnce() -> bool,
        after_wake: impl FnOnce(),
    ) -> Drive {
        let mut drv = match self.driver.try_lock() {
            Ok(d) => d,
            Err(std::sync::TryLockError::WouldBlock) => return Drive::Busy,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        };
        let blocking = timeout_cap != Some(Duration::ZERO);
        let deadline = if blocking {
            self.timers.begin_wait()
        } else {
            self.timers.next_deadline()
        };
        // `clock`, "Auto-advance": a candidate only while paused and about
        // to block until a timer.
        let paused = blocking && deadline.is_some() && self.clock.is_paused();
        if paused {
            self.notified.store(false, Ordering::SeqCst);
        }
        let now = self.clock.now();
        let mut timeout = deadline.map(|d| d.saturating_duration_since(now));
        if let Some(cap) = timeout_cap {
            timeout = Some(timeout.map_or(cap, |t| t.min(cap)));
        }
        let work = before_block(); // auto-advance step 1
        if work {
            timeout = Some(Duration::ZERO);
        }
        let advance_to = if paused && !work {
            self.auto_advance_wait(&mut timeout, deadline)
        } else {
            None
        };
        let d = &mut *drv;
        d.events.clear();
        if self.poller.wait(&mut d.events, timeout).is_err() {
            // EINTR and friends: treat as a spurious wake-up.
            d.events.clear();
        }
        after_wake();
        if let Some(at) = advance_to {
            self.auto_advance(at, &d.events);
        }
        self.dispatch(&mut drv);
        let mut wakers = std::mem::take(&mut drv.wakers);
        let mut completions = std::mem::take(&mut drv.completions);
        drop(drv);
        // Step 6.
        if let Some(handler) = &self.completions {
            for done in completions.drain(..) {
                handler.complete(&self.poller, done);
            }
        }
        let n = wakers.len();
        for w in wakers.drain(..) {
            crate::wake::wake(w); // panic-isolated: a waker is user code
        }
        // Hand the allocations back if nobody took the driver meanwhile.
        if let Ok(mut d) = self.driver.try_lock() {
            if d.wakers.capacity() < wakers.capacity() {
                d.wakers = wakers;
            }
            if d.completions.capacity() < completions.capacity() {
                d.completions = completions;
            }
        }
        Drive::Woke(n)
    }

    /// Auto-advance steps 2 and 5 (`clock`): the deadline this wait may
    /// move a paused clock to, with the wait's timeout set for it.
    #[cold]
    fn auto_advance_wait(
        &self,
        timeout: &mut Option<Duration>,
        deadline: Option<std::time::Instant>,
    ) -> Option<std::time::Instant> {
        if self.clock.is_held() {
            *timeout = timeout.map(|t| t.min(clock::HELD_POLL));
            return None;
        }
        *timeout = Some(Duration::ZERO);
        deadline
    }

    /// Auto-advance step 3: nothing happened, so nothing can before `at`.
    #[cold]
    fn auto_advance(&self, at: std::time::Instant, events: &Events) {
        if events.is_empty() && !self.notified.load(Ordering::SeqCst) {
            self.clock.advance_to(at);
        }
    }

    /// Step 5: turns events and due timers into wakers in `drv.wakers`, and
    /// completion events into keys in `drv.completions`.
    fn dispatch(&self, drv: &mut MutexGuard<'_, Driver>) {
        let Driver {
            events,
            wakers,
            completions,
        } = &mut **drv;
        completions.extend_from_slice(crate::sys::completions(events));
        if !events.is_empty() {
            let sources = self.lock_sources();
            for ev in events.iter() {
                if let Some(handler) = &self.completions {
                    if handler.is_completion(ev.key) {
                        completions.push(Completion {
                            key: ev.key,
                            result: 0,
                        });
                        continue;
                    }
                }
                let Some(source) = sources.get(ev.key) else {
                    continue; // removed after the event was queued
                };
                if let Some(rearm) = source.on_event(&ev, wakers) {
                    // `source` is still in the slab, so still registered.
                    if source.modify(&self.poller, rearm).is_err() {
                        // Wake the waiters so their next I/O call surfaces the error.
                        source.take_wakers(wakers);
                    }
                }
            }
        }
        self.timers.fire_due(self.clock.now(), wakers);
    }

    fn lock_sources(&self) -> MutexGuard<'_, Slab<Arc<Source>>> {
        // No user code runs under this lock.
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `raw` for readiness events.
    ///
    /// # Safety
    ///
    /// `raw` must stay open until [`Reactor::remove_source`] has returned for
    /// the returned source.
    pub(crate) unsafe fn insert_source(&self, raw: RawSource) -> io::Result<Arc<Source>> {
        if self.is_closed() {
            return Err(runtime_gone());
        }
        let mut sources = self.lock_sources();
        let entry = sources.vacant_entry();
        let source = Arc::new(Source::new(entry.key(), raw, self.edge));
        let (interest, mode) = if self.edge {
            (Event::all(entry.key()), PollMode::Edge)
        } else {
            // Both directions once, so the first event reports the
            // handle's initial readiness as edge mode does (`source`).
            (Event::all(entry.key()), PollMode::Oneshot)
        };
        // SAFETY: the caller keeps `raw` open until `remove_source`, which
        // deletes it from the poller first.
        unsafe { self.poller.add_with_mode(raw, interest, mode)? };
        entry.insert(source.clone());
        Ok(source)
    }

    /// Deregisters `source`; its handle may be closed after this returns.
    pub(crate) fn remove_source(&self, source: &Source) -> io::Result<()> {
        let removed = self.lock_sources().try_remove(source.key);
        let mut wakers = Vec::new();
        source.take_wakers(&mut wakers);
        drop(removed);
        drop(wakers);
        source.delete(&self.poller)
    }

    /// Fires the timers due by the clock's time now, with I/O events that
    /// are ready (a zero-timeout drive); if another thread drives, wakes it
    /// to do so. For `time::advance`, which moves a paused clock.
    pub(crate) fn fire_due_now(&self) {
        if self.drive(Some(Duration::ZERO), || false, || {}) == Drive::Busy {
            self.notify();
        }
    }

    /// Number of registered sources.
    pub(crate) fn source_count(&self) -> usize {
        self.lock_sources().len()
    }

    /// Teardown: refuses new registrations and returns every stored waker so
    /// the caller drops them outside the locks.
    pub(crate) fn close(&self) -> Vec<Waker> {
        self.closed.store(true, Ordering::Release);
        let mut wakers = self.timers.take_all();
        for (_, s) in self.lock_sources().iter() {
            s.take_wakers(&mut wakers);
        }
        self.notify();
        wakers
    }
}

thread_local! {
    /// The reactor of the runtime current on this thread (set with the
    /// runtime's context, `runtime::context`), for registering handles.
    static CURRENT: RefCell<Option<Arc<Reactor>>> = const { RefCell::new(None) };
}

/// Restores the previously current reactor when dropped.
#[must_use]
pub(crate) struct EnterGuard(Option<Option<Arc<Reactor>>>);

impl Reactor {
    /// Makes this reactor current on this thread until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> EnterGuard {
        // `try_with`: at thread exit the slot may already be gone.
        EnterGuard(
            CURRENT
                .try_with(|c| c.borrow_mut().replace(self.clone()))
                .ok(),
        )
    }

    /// The reactor current on this thread, or the error that says which
    /// call needed one (`what`).
    pub(crate) fn current(what: &str) -> io::Result<Arc<Reactor>> {
        CURRENT
            .try_with(|c| c.borrow().clone())
            .ok()
            .flatten()
            .ok_or_else(|| outside_runtime(what))
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        if let Some(prev) = self.0.take() {
            let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
        }
    }
}

/// The error of a call that needs a runtime, made where none is current.
pub(crate) fn outside_runtime(what: &str) -> io::Error {
    io::Error::other(format!(
        "ebbtide: {what} called outside a runtime: call it inside `block_on`, a task, \
         or after `Handle::enter()`"
    ))
}

/// The error an I/O object returns once its runtime is gone.
pub(crate) fn runtime_gone() -> io::Error {
    io::Error::other(
        "ebbtide: the runtime this I/O object was registered with has shut down; \
         create the object again inside a running runtime",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    const KEY: usize = 1 << 62;

    /// A completion backend that claims `KEY` and records how it was called.
    struct Recorder {
        reactor: std::sync::OnceLock<std::sync::Weak<Reactor>>,
        calls: AtomicUsize,
        driver_was_free: AtomicBool,
    }

    impl Completions for Arc<Recorder> {
        fn is_completion(&self, key: usize) -> bool {
            key == KEY
        }

        fn complete(&self, _poller: &Poller, done: Completion) {
            assert_eq!(done.key, KEY);
            self.calls.fetch_add(1, Ordering::SeqCst);
            let reactor = self.reactor.get().and_then(|r| r.upgrade()).unwrap();
            // Step 6: the driver lock is released before completions run.
            let free = reactor.driver.try_lock().is_ok();
            self.driver_was_free.store(free, Ordering::SeqCst);
        }
    }

    /// Steps 5–6: an event under a key the completion backend claims goes
    /// to it (not to a source lookup), once, after the driver lock is gone.
    #[test]
    #[cfg(not(miri))] // Miri's stand-in poller registers no handles
    fn completion_events_go_to_the_backend_with_no_lock_held() {
        let recorder = Arc::new(Recorder {
            reactor: std::sync::OnceLock::new(),
            calls: AtomicUsize::new(0),
            driver_was_free: AtomicBool::new(false),
        });
        let reactor =
            Arc::new(Reactor::new(Some(Box::new(recorder.clone())), IoBackend::Auto).unwrap());
        recorder.reactor.set(Arc::downgrade(&reactor)).unwrap();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"x", socket.local_addr().unwrap()).unwrap();
        // SAFETY: `socket` outlives the registration (deleted below).
        unsafe {
            reactor
                .poller()
                .add_with_mode(
                    crate::sys::raw(&socket),
                    Event::readable(KEY),
                    PollMode::Oneshot,
                )
                .unwrap()
        };
        for _ in 0..100 {
            reactor.drive(Some(Duration::from_millis(100)), || false, || {});
            if recorder.calls.load(Ordering::SeqCst) > 0 {
                break;
            }
        }
        assert_eq!(recorder.calls.load(Ordering::SeqCst), 1);
        assert!(recorder.driver_was_free.load(Ordering::SeqCst));
        // Oneshot: no second event without re-arming.
        reactor.drive(Some(Duration::from_millis(20)), || false, || {});
        assert_eq!(recorder.calls.load(Ordering::SeqCst), 1);
        // SAFETY: `socket` is still open.
        reactor
            .poller()
            .delete(unsafe { crate::sys::borrow(crate::sys::raw(&socket)) })
            .unwrap();
    }
}
