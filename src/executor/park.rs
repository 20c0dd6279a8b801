//! How one runtime thread sleeps and is woken.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use parking::{Parker, Unparker};

use crate::reactor::Reactor;

/// The waking side of a runtime thread (worker or `block_on` caller).
///
/// A thread sleeps in one of two places: on its [`Parker`], or inside
/// `Poller::wait` while it drives the reactor. `in_driver` says which, so a
/// wake costs an eventfd write only when the target is in the poller.
pub(crate) struct Waiter {
    unparker: Unparker,
    /// True from just before `Poller::wait` until just after it returns.
    in_driver: AtomicBool,
}

impl Waiter {
    pub(crate) fn pair() -> (Parker, Waiter) {
        let (parker, unparker) = parking::pair();
        (
            parker,
            Waiter {
                unparker,
                in_driver: AtomicBool::new(false),
            },
        )
    }

    /// Wakes the thread wherever it sleeps. Call after publishing the work
    /// (the fence pairs with the one in [`Waiter::enter_driver`]).
    pub(crate) fn unpark(&self, reactor: &Reactor) {
        self.unparker.unpark();
        fence(Ordering::SeqCst);
        if self.in_driver.load(Ordering::SeqCst) {
            reactor.notify();
        }
    }

    /// Marks the thread as about to block in the poller. The caller must
    /// re-check for work afterwards and not block if it finds some.
    pub(crate) fn enter_driver(&self) {
        self.in_driver.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    pub(crate) fn leave_driver(&self) {
        self.in_driver.store(false, Ordering::Release);
    }
}

/// Whom to wake for a thread-bound wake-up (a `block_on` future, `!Send`
/// tasks): the thread's own waiter, or, once it takes over a current-thread
/// runtime's worker slot, that slot's waiter. Switched under a lock, so a
/// wake never goes to a waiter the thread no longer sleeps on.
pub(crate) struct WakeTarget(Mutex<Arc<Waiter>>);

impl WakeTarget {
    pub(crate) fn new(waiter: Arc<Waiter>) -> WakeTarget {
        WakeTarget(Mutex::new(waiter))
    }

    pub(crate) fn set(&self, waiter: Arc<Waiter>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = waiter;
    }

    pub(crate) fn unpark(&self, reactor: &Reactor) {
        // `unpark` runs no user code, so holding the lock is fine.
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unpark(reactor);
    }
}
