//! Which runtime is current on this thread.
//!
//! Three thread-locals, each set by a guard that restores the previous value:
//!
//! - `CURRENT`: the runtime `spawn`, `Handle::current` and timers use. Set on
//!   worker threads, `block_on` callers, blocking-pool threads, and by
//!   `Handle::enter`.
//! - `IN_RUNTIME`: this thread is a worker or inside `block_on`; a nested
//!   `block_on` here would stall the runtime, so it panics instead.
//! - `LOCAL`: where `spawn_local` puts `!Send` tasks.
//!
//! Every access uses `try_with`: a runtime kept in a `thread_local!` is
//! dropped by the thread-local destructors at thread exit, when these slots
//! may already be gone, and its shutdown must still run (with no context).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use std::io;

use super::{Handle, Shared};
use crate::executor::LocalTasks;
use crate::reactor::{outside_runtime, EnterGuard as ReactorGuard};

thread_local! {
    static CURRENT: RefCell<Option<Handle>> = const { RefCell::new(None) };
    static IN_RUNTIME: Cell<bool> = const { Cell::new(false) };
    static LOCAL: RefCell<Option<Rc<LocalTasks>>> = const { RefCell::new(None) };
}

/// The message of the nested-`block_on` panic.
pub(crate) const NESTED_BLOCK_ON: &str = "ebbtide: `block_on` called on a thread that is already \
    running an ebbtide runtime (a worker, or inside another `block_on`). Blocking here would \
    stall every task scheduled on this thread. Use `.await` on the future instead, or move the \
    blocking section into `ebbtide::spawn_blocking`.";

/// Restores the previous context when dropped.
#[must_use]
pub(crate) struct ContextGuard {
    prev_handle: Option<Handle>,
    prev_in_runtime: bool,
    prev_local: Option<Option<Rc<LocalTasks>>>,
    /// The reactor current for `io::Async::new`, restored with the rest.
    _reactor: ReactorGuard,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let prev = self.prev_handle.take();
        // `try_with`: at thread exit the slots may already be destroyed.
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
        let _ = IN_RUNTIME.try_with(|c| c.set(self.prev_in_runtime));
        if let Some(prev) = self.prev_local.take() {
            let _ = LOCAL.try_with(|c| *c.borrow_mut() = prev);
        }
    }
}

/// Makes `shared` current (no nested-`block_on` check): blocking threads
/// and `Handle::enter`.
pub(crate) fn enter_handle(shared: &Arc<Shared>) -> ContextGuard {
    let handle = Handle {
        shared: shared.clone(),
    };
    // `try_with`: the global runtime's exit hook runs after the main
    // thread's slots are destroyed; then there is no "current" to set.
    let prev_handle = CURRENT
        .try_with(|c| c.borrow_mut().replace(handle))
        .unwrap_or(None);
    ContextGuard {
        prev_handle,
        prev_in_runtime: in_runtime_thread(),
        prev_local: None,
        _reactor: shared.reactor.enter(),
    }
}

/// Marks this thread as running `shared` (worker or `block_on`).
///
/// # Panics
///
/// If the thread already runs a runtime: [`NESTED_BLOCK_ON`].
pub(crate) fn enter_runtime_thread(
    shared: &Arc<Shared>,
    local: Option<Rc<LocalTasks>>,
) -> ContextGuard {
    assert!(!in_runtime_thread(), "{NESTED_BLOCK_ON}");
    let mut guard = enter_handle(shared);
    let _ = IN_RUNTIME.try_with(|c| c.set(true));
    // At thread exit (a runtime dropped by a thread-local's destructor) the
    // slot may be gone: then there is no `spawn_local` target to set.
    guard.prev_local = LOCAL
        .try_with(|c| std::mem::replace(&mut *c.borrow_mut(), local))
        .ok();
    guard
}

pub(crate) fn in_runtime_thread() -> bool {
    IN_RUNTIME.try_with(Cell::get).unwrap_or(false)
}

/// Calls `f` with the current runtime, if any. During thread (or process)
/// exit, after the slot is destroyed, there is none.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<Shared>>) -> R) -> R {
    let mut f = Some(f);
    let r = CURRENT.try_with(|c| {
        let f = f.take().expect("called once");
        f(c.borrow().as_ref().map(|h| &h.shared))
    });
    match r {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called yet"))(None),
    }
}

/// The current runtime, or the error that says which call (`what`) needed
/// one: the one lookup every public I/O constructor uses.
pub(crate) fn current(what: &str) -> io::Result<Arc<Shared>> {
    with_current(|s| s.cloned()).ok_or_else(|| outside_runtime(what))
}

/// Calls `f` with this thread's `spawn_local` target, if any.
pub(crate) fn with_local<R>(f: impl FnOnce(Option<&Rc<LocalTasks>>) -> R) -> R {
    let mut f = Some(f);
    let r = LOCAL.try_with(|c| {
        let f = f.take().expect("called once");
        f(c.borrow().as_ref())
    });
    match r {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called yet"))(None),
    }
}
