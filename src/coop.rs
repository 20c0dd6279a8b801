//! Cooperative scheduling: a budget of ready operations per task poll, so
//! one task looping over resources that are always ready (a socket that
//! never runs dry, a timer already due) cannot keep its thread from its
//! other tasks, its timers and its I/O.
//!
//! 1. Before a task (or a `block_on` future) is polled, the thread's budget
//!    is set to [`PER_POLL`] operations; after the poll, the previous
//!    budget comes back (`Scope`).
//! 2. A resource about to try an operation asks [`poll_proceed`] first,
//!    which takes one unit (an attempt that finds `WouldBlock` costs its
//!    unit too: one thread-local access per operation, not two).
//! 3. With none left, `poll_proceed` wakes the task and returns `Pending`:
//!    the task goes to the back of its queue, everything else runs, and
//!    its next poll starts with a full budget. The operation is not started,
//!    so nothing is lost.
//! 4. Outside a task poll (no scope), and inside `task::unconstrained`,
//!    there is no budget: everything proceeds.
//!
//! The budget is a thread-local byte: one load and one store per
//! operation, no atomic, no syscall.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Ready operations per task poll (tokio uses the same number).
pub(crate) const PER_POLL: u8 = 128;

thread_local! {
    /// `None`: unconstrained; `Some(n)`: `n` operations left in this poll.
    static BUDGET: Cell<Option<u8>> = const { Cell::new(None) };
}

/// Sets the thread's budget until dropped, then restores the previous one
/// (step 1; nested for a `block_on` inside a blocking job, and for
/// `unconstrained`).
#[must_use]
pub(crate) struct Scope(Option<Option<u8>>);

impl Scope {
    /// A fresh budget for one poll.
    pub(crate) fn task() -> Scope {
        Scope::set(Some(PER_POLL))
    }

    /// No budget (`task::unconstrained`).
    pub(crate) fn unconstrained() -> Scope {
        Scope::set(None)
    }

    fn set(budget: Option<u8>) -> Scope {
        // `try_with`: at thread exit the slot may be gone; then no budget.
        Scope(BUDGET.try_with(|b| b.replace(budget)).ok())
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(prev) = self.0 {
            let _ = BUDGET.try_with(|b| b.set(prev));
        }
    }
}

/// Steps 2–3: takes one unit and returns `Ready` if the task may try one
/// more operation in this poll; else wakes it and returns `Pending`.
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    let proceed = BUDGET
        .try_with(|b| match b.get() {
            Some(0) => false,
            Some(n) => {
                b.set(Some(n - 1));
                true
            }
            None => true,
        })
        .unwrap_or(true);
    if proceed {
        return Poll::Ready(());
    }
    crate::wake::wake_by_ref(cx.waker());
    Poll::Pending
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_task_poll_proceeds_per_poll_times_then_yields_once_and_scopes_nest() {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(poll_proceed(&mut cx).is_ready(), "no scope: no budget");
        let scope = Scope::task();
        for _ in 0..PER_POLL {
            assert!(poll_proceed(&mut cx).is_ready());
        }
        assert!(poll_proceed(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken to run again");
        {
            let _free = Scope::unconstrained();
            assert!(poll_proceed(&mut cx).is_ready());
        }
        assert!(
            poll_proceed(&mut cx).is_pending(),
            "the outer budget is back"
        );
        drop(scope);
        assert!(poll_proceed(&mut cx).is_ready(), "and none after the poll");
    }
}
