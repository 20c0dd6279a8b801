//! `Builder::on_thread_start` / `on_thread_stop`: the user's closures run
//! on every thread the runtime starts.
//!
//! 1. A worker thread, or a blocking-pool thread, makes the runtime current,
//!    then calls the start hook, before it runs any task or job (so the hook
//!    may use `Handle::current()`, and set up thread-locals the tasks read).
//! 2. When it leaves its loop it calls the stop hook, still with the runtime
//!    current and after its last task. It does so before shutdown can see
//!    it gone: a worker before its thread exits (shutdown joins it), a
//!    blocking thread before it stops counting in the pool (shutdown waits
//!    for that). So once `shutdown` returns, every thread it joined has run
//!    its stop hook.
//! 3. Each call is user code, so it is panic-isolated: a panic is caught and
//!    counted (`Metrics::hook_panics`) and the thread goes on; a panicking
//!    start hook skips none of the thread's work, and its stop hook still
//!    runs.
//!
//! Hooks run on these threads only: not on the thread in `block_on` (the
//! only worker of a current-thread runtime), nor on helper threads of
//! shutdown.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A hook as the builder keeps it (`Debug` for the builder's sake).
#[derive(Clone)]
pub(crate) struct Hook(pub(crate) Arc<dyn Fn() + Send + Sync + 'static>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fn()")
    }
}

/// One runtime's hooks and the count of their panics.
pub(crate) struct ThreadHooks {
    on_start: Option<Hook>,
    on_stop: Option<Hook>,
    panics: AtomicU64,
}

impl ThreadHooks {
    pub(crate) fn new(on_start: Option<Hook>, on_stop: Option<Hook>) -> ThreadHooks {
        ThreadHooks {
            on_start,
            on_stop,
            panics: AtomicU64::new(0),
        }
    }

    /// Step 1, on the new thread with the runtime current; dropping the
    /// guard is step 2.
    pub(crate) fn thread_started(self: &Arc<Self>) -> StopHookGuard {
        self.call(&self.on_start);
        StopHookGuard(self.clone())
    }

    /// Hook panics caught so far (step 3).
    pub(crate) fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Step 3: calls `hook`, catching and counting its panic.
    fn call(&self, hook: &Option<Hook>) {
        if let Some(Hook(f)) = hook {
            if catch_unwind(AssertUnwindSafe(|| f())).is_err() {
                self.panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Runs the stop hook when dropped (step 2).
pub(crate) struct StopHookGuard(Arc<ThreadHooks>);

impl Drop for StopHookGuard {
    fn drop(&mut self) {
        self.0.call(&self.0.on_stop);
    }
}
