//! Calling wakers the runtime does not own, without letting them hurt it.
//!
//! A waker is user code: whoever polled us chose it, and its `wake`,
//! `clone` and `drop` may panic. The runtime calls wakers from its reactor
//! (I/O events, timers), from shutdown, and from async-task when a task
//! finishes (the waker of whoever awaits the `JoinHandle`). So:
//!
//! 1. Every waker the runtime calls goes through [`wake`] or
//!    [`wake_by_ref`]: the call runs inside `catch_unwind`; a panic is
//!    counted (process-wide: a waker belongs to its caller, not to one
//!    runtime; [`Metrics::waker_panics`](crate::runtime::Metrics)) and the
//!    caller goes on with the next waker. The payload is dropped inside
//!    `catch_unwind` too; only a payload whose own `Drop` panics is leaked.
//! 2. The runtime never calls a waker with one of its own locks held (each
//!    call site collects wakers first), so a waker that re-enters the
//!    runtime (spawns, wakes, drops a task) cannot deadlock it.
//! 3. async-task calls a `JoinHandle` awaiter's waker inside its
//!    abort-on-panic guard, where an unwind aborts the process. The
//!    `JoinHandle` therefore never hands async-task the caller's waker: it
//!    hands it an [`Isolated`] waker, whose `wake` and `drop` catch panics
//!    as in step 1 (and whose `clone` is an `Arc` increment that cannot
//!    panic). The exceptions are the runtime's own wakers, which run only
//!    the runtime's code and never unwind: a `block_on` future's
//!    (`executor::worker::MainWake`) and that of the task being polled
//!    (`executor::task::is_polling_task_waker`); they are handed over as
//!    they are.

use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

/// Panics caught from wakers in this process (step 1).
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Panics caught from wakers so far, in this process.
pub(crate) fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// Runs `f` (a waker's `wake` or `drop`), catching and counting a panic.
fn isolated(f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        PANICS.fetch_add(1, Ordering::Relaxed);
        // The payload's own `Drop` may panic too: only that one is leaked.
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    }
}

/// Step 1: `waker.wake()`, panic-isolated (its drop too).
pub(crate) fn wake(waker: Waker) {
    isolated(move || waker.wake());
}

/// Step 1: `waker.wake_by_ref()`, panic-isolated.
pub(crate) fn wake_by_ref(waker: &Waker) {
    isolated(|| waker.wake_by_ref());
}

/// Drops `waker`, panic-isolated.
pub(crate) fn drop_waker(waker: Waker) {
    isolated(move || drop(waker));
}

/// Step 3: a waker that forwards to `inner` and never unwinds.
pub(crate) struct Isolated {
    inner: ManuallyDrop<Waker>,
}

impl Isolated {
    /// A waker forwarding to `inner`.
    pub(crate) fn waker(inner: &Waker) -> (Arc<Isolated>, Waker) {
        let arc = Arc::new(Isolated {
            inner: ManuallyDrop::new(inner.clone()),
        });
        let waker = Waker::from(arc.clone());
        (arc, waker)
    }

    /// Whether waking this wakes the same task as `other`.
    pub(crate) fn will_wake(&self, other: &Waker) -> bool {
        self.inner.will_wake(other)
    }
}

impl Wake for Isolated {
    fn wake(self: Arc<Self>) {
        wake_by_ref(&self.inner);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        wake_by_ref(&self.inner);
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        // SAFETY: `inner` is taken exactly once, here, and never used after.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        drop_waker(inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Panicky;

    impl Wake for Panicky {
        fn wake(self: Arc<Self>) {
            panic!("waker panics on purpose");
        }
    }

    #[test]
    fn a_panicking_waker_is_counted_and_does_not_unwind() {
        let before = panics();
        let w = Waker::from(Arc::new(Panicky));
        wake_by_ref(&w);
        let (_, isolated) = Isolated::waker(&w);
        isolated.wake_by_ref();
        isolated.wake();
        assert!(panics() >= before + 3);
    }
}
