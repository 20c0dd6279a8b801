//! `Handle`: a cheap, cloneable reference to a runtime, usable from any
//! thread.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::context::{self, ContextGuard};
use super::{Metrics, Shared};
use crate::executor::JoinHandle;

/// A reference to a runtime: spawn onto it from any thread.
///
/// # Examples
///
/// ```
/// use ebbtide::runtime::{Handle, Runtime};
///
/// let rt = Runtime::new()?;
/// rt.block_on(async {
///     let handle = Handle::current();
///     let t = std::thread::spawn(move || handle.spawn(async { "from a plain thread" }));
///     assert_eq!(t.join().unwrap().await.unwrap(), "from a plain thread");
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl Handle {
    /// The runtime current on this thread.
    ///
    /// # Panics
    ///
    /// Outside a runtime (not in a task, `block_on`, blocking job, or
    /// [`Handle::enter`] scope). Use [`Handle::try_current`] to check.
    pub fn current() -> Handle {
        Handle::try_current().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The runtime current on this thread, or an error outside one.
    ///
    /// # Errors
    ///
    /// [`TryCurrentError`] when no runtime is current.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ebbtide::runtime::Handle::try_current().is_err());
    /// ```
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        context::with_current(|s| s.cloned())
            .map(|shared| Handle { shared })
            .ok_or(TryCurrentError { _priv: () })
    }

    /// Spawns a task on this runtime. The task starts at once and keeps
    /// running if the returned handle is dropped.
    ///
    /// If the runtime is shutting down, the task is not run and the handle
    /// resolves to a cancelled [`JoinError`](crate::JoinError); use
    /// [`try_spawn`](Self::try_spawn) to learn it up front.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared.spawn(future)
    }

    /// Spawns a task, or returns why it cannot run.
    ///
    /// # Errors
    ///
    /// [`SpawnError::ShuttingDown`] once the runtime is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// let h = rt.handle().try_spawn(async { 1 }).expect("runtime is running");
    /// assert_eq!(rt.block_on(h).unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.shared.lifecycle.is_shutting_down() {
            return Err(SpawnError::ShuttingDown);
        }
        Ok(self.shared.spawn(future))
    }

    /// Runs `f` on this runtime's blocking pool.
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.shared.spawn_blocking(f)
    }

    /// Makes this runtime current on this thread until the guard drops, so
    /// that [`crate::spawn`] and timers created here use it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// let _guard = rt.handle().enter();
    /// let h = ebbtide::spawn(async { 2 });
    /// assert_eq!(rt.block_on(h).unwrap(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn enter(&self) -> EnterGuard<'_> {
        EnterGuard {
            _guard: context::enter_handle(&self.shared),
            _handle: PhantomData,
        }
    }

    /// Starts a graceful shutdown and returns at once: new spawns are
    /// refused from now on, [`shutdown_requested`](super::shutdown_requested)
    /// futures resolve, and running tasks keep going until someone calls
    /// [`Runtime::shutdown`](super::Runtime::shutdown) (or drops the
    /// runtime), which drains them with its deadline. Idempotent; callable
    /// from any thread, from inside a task, and from a signal handler: it is
    /// one compare-exchange and one `Poller::notify` (an eventfd or pipe
    /// write), both async-signal-safe.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// rt.handle().begin_shutdown();
    /// assert!(rt.handle().is_shutting_down());
    /// assert!(rt.handle().try_spawn(async {}).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn begin_shutdown(&self) {
        self.shared.begin_shutdown();
    }

    /// Whether a shutdown has started (intake is stopped).
    pub fn is_shutting_down(&self) -> bool {
        self.shared.lifecycle.is_shutting_down()
    }

    /// A snapshot of the runtime's tasks.
    pub fn metrics(&self) -> Metrics {
        let s = &self.shared;
        let sched = &s.scheduler;
        let c = &sched.tasks;
        let (blocking_threads, idle_blocking_threads, blocking_queue_depth) = s.blocking.stats();
        Metrics {
            workers: sched.workers.len(),
            idle_workers: sched.idle_workers(),
            alive_tasks: c.alive.load(Ordering::Relaxed),
            spawned_tasks: c.spawned.load(Ordering::Relaxed),
            polls: sched
                .workers
                .iter()
                .map(|w| w.polls.load(Ordering::Relaxed))
                .sum(),
            steals: sched
                .workers
                .iter()
                .map(|w| w.steals.load(Ordering::Relaxed))
                .sum(),
            injector_depth: sched.injector.len(),
            local_queue_depth: sched.workers.iter().map(|w| w.queue.len()).sum(),
            blocking_threads,
            idle_blocking_threads,
            blocking_queue_depth,
            panicked_tasks: c.panics.load(Ordering::Relaxed),
            drop_panics: c.drop_panics.load(Ordering::Relaxed),
            waker_panics: crate::wake::panics(),
            hook_panics: s.thread_hooks.panics(),
            timers: s.reactor.timers.len(),
            io_sources: s.reactor.source_count(),
            io_backend: s.reactor.backend(),
            ops_submitted: s.ops.table.submitted(),
            ops_in_flight: s.ops.table.len(),
            ops_cancelled: s.ops.table.cancelled(),
            ops_completed_after_cancel: s.ops.table.completed_after_cancel(),
            ops_stale_completions: s.ops.table.stale_completions(),
            stalled_polls: sched.stall.stalled_polls.load(Ordering::Relaxed),
            stall_hook_panics: sched.stall.hook_panics.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// Returned by [`Handle::enter`]; restores the previous runtime when dropped.
#[must_use = "the runtime is current only while the guard lives"]
pub struct EnterGuard<'a> {
    _guard: ContextGuard,
    /// Ties the guard to the handle and keeps it `!Send` (it restores a
    /// thread-local of the thread that created it).
    _handle: PhantomData<(&'a Handle, *const ())>,
}

impl fmt::Debug for EnterGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnterGuard")
    }
}

/// Returned by [`Handle::try_current`] outside a runtime.
pub struct TryCurrentError {
    _priv: (),
}

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no ebbtide runtime is current on this thread: call this inside \
             `Runtime::block_on`, a spawned task or blocking job, or after `Handle::enter()`",
        )
    }
}

impl fmt::Debug for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TryCurrentError({self})")
    }
}

impl std::error::Error for TryCurrentError {}

/// Why [`Handle::try_spawn`] refused a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// The runtime is shutting down and accepts no new tasks; spawn on a
    /// running runtime, or finish the work in the task that is draining.
    ShuttingDown,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::ShuttingDown => f.write_str(
                "ebbtide: the runtime is shutting down and accepts no new tasks; \
                 spawn on a running runtime instead",
            ),
        }
    }
}

impl std::error::Error for SpawnError {}
