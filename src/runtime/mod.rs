//! The runtime value: its builder, handle, `block_on`, metrics and teardown.
//!
//! A [`Runtime`] owns one scheduler, one reactor (one OS poller), one op
//! table and one blocking pool, and wires them together: this layer is the
//! only one that sees them all (`Shared`). Nothing in the core is global;
//! the global runtime used by [`crate::spawn`] outside any runtime is a thin
//! layer (`global.rs`).

mod block_on;
mod builder;
pub(crate) mod children;
pub(crate) mod context;
mod global;
mod handle;
mod metrics;
mod shutdown;
mod thread_hooks;

pub use crate::executor::StallReport;
pub use crate::sys::IoBackend;
pub use builder::Builder;
pub use handle::{EnterGuard, Handle, SpawnError, TryCurrentError};
pub use metrics::Metrics;
pub use shutdown::{shutdown_requested, ShutdownReport, ShutdownRequested, TaskSite};

pub(crate) use shutdown::Lifecycle;

pub(crate) use global::global;

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle as ThreadHandle;
use std::time::Duration;

use crate::blocking::BlockingPool;
use crate::executor::{JoinHandle, Scheduler, Site};
use crate::op::OpContext;
use crate::reactor::Reactor;

/// Everything the threads of one runtime share. Only this layer and the
/// public faces (`net`, `fs`, `time`, `signal`, `os`) hold it; each lower
/// layer holds just its own parts.
pub(crate) struct Shared {
    pub(crate) scheduler: Arc<Scheduler>,
    pub(crate) reactor: Arc<Reactor>,
    pub(crate) blocking: Arc<BlockingPool>,
    /// In-flight I/O operations that own their buffers (`crate::op`).
    pub(crate) ops: OpContext,
    pub(crate) config: Config,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Child processes spawned here (`crate::process`), for shutdown.
    pub(crate) children: children::Children,
    /// `Builder::on_thread_start` / `on_thread_stop`, run by worker and
    /// blocking-pool threads.
    pub(crate) thread_hooks: Arc<thread_hooks::ThreadHooks>,
}

impl Shared {
    /// Spawns a `Send` task; refused (cancelled at once) while shutting down.
    #[track_caller]
    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_at(future, Site::caller())
    }

    /// `spawn`, for a task spawned at `site` (its caller's location, and a
    /// name).
    pub(crate) fn spawn_at<F>(&self, future: F, site: Site) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.scheduler
            .spawn(future, site, || !self.lifecycle.is_shutting_down())
    }

    /// Runs `f` on the blocking pool.
    #[track_caller]
    pub(crate) fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_blocking_at(f, Site::caller())
    }

    /// `spawn_blocking`, for a job spawned at `site`.
    pub(crate) fn spawn_blocking_at<F, R>(&self, f: F, site: Site) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.blocking.spawn(&self.scheduler.tasks, f, site)
    }
}

/// Builder settings the runtime keeps.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// The `block_on` caller is the only worker.
    pub(crate) current_thread: bool,
    /// How long dropping the runtime waits for its threads.
    pub(crate) drain_timeout: Duration,
    /// The process that built the runtime; a forked child differs, and has
    /// none of its threads (`shutdown`, "After `fork`").
    pub(crate) pid: u32,
}

/// An ebbtide runtime: worker threads, a reactor, timers and a blocking pool.
///
/// Dropping it runs [`shutdown`](Runtime::shutdown) with the builder's
/// [`drain_timeout`](Builder::drain_timeout) (default 1 s): tasks get that
/// long to finish, the rest are cancelled, nothing waits past the bound.
/// Dropped on a runtime thread (inside a task or `block_on`), it does that
/// on a background thread instead, so it never blocks a worker.
///
/// # Examples
///
/// ```
/// use ebbtide::runtime::Runtime;
///
/// let rt = Runtime::new()?;
/// let sum = rt.block_on(async {
///     let tasks: Vec<_> = (0..10u64).map(|i| ebbtide::spawn(async move { i * i })).collect();
///     let mut sum = 0;
///     for t in tasks {
///         sum += t.await.unwrap();
///     }
///     sum
/// });
/// assert_eq!(sum, 285);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    handle: Handle,
    /// Worker threads, taken by the first shutdown.
    threads: Mutex<Vec<ThreadHandle<()>>>,
    /// The first shutdown's report; its lock serializes concurrent calls.
    report: Mutex<Option<ShutdownReport>>,
}

impl Runtime {
    /// A multi-threaded runtime with one worker per available core.
    ///
    /// # Errors
    ///
    /// If the poller cannot be created (e.g. `EMFILE`) or a worker thread
    /// cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// assert!(rt.metrics().workers >= 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A [`Builder`] to configure a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::builder().current_thread().build()?;
    /// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, threads: Vec<ThreadHandle<()>>) -> Runtime {
        Runtime {
            handle: Handle { shared },
            threads: Mutex::new(threads),
            report: Mutex::new(None),
        }
    }

    /// Runs `future` to completion on the current thread, with this runtime
    /// current: tasks it spawns run on the runtime's workers (on a
    /// current-thread runtime, on this thread, interleaved with `future`).
    /// `spawn_local` tasks run on this thread; those still pending when
    /// `future` completes are cancelled.
    ///
    /// # Panics
    ///
    /// If called on a thread that already runs a runtime (a worker, or inside
    /// another `block_on`): blocking there would stall it. Use `.await` or
    /// [`spawn_blocking`](crate::spawn_blocking) instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// let v = rt.block_on(async {
    ///     ebbtide::time::sleep(std::time::Duration::from_millis(1)).await;
    ///     "done"
    /// });
    /// assert_eq!(v, "done");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle.shared.block_on(future)
    }

    /// Spawns a task on this runtime; see [`Handle::spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// let h = rt.spawn(async { 5 });
    /// assert_eq!(rt.block_on(h).unwrap(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Runs `f` on this runtime's blocking pool; see [`crate::spawn_blocking`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// let h = rt.spawn_blocking(|| std::thread::current().name().map(str::to_owned));
    /// assert!(rt.block_on(h).unwrap().unwrap().starts_with("ebbtide-blocking"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.handle.spawn_blocking(f)
    }

    /// A handle to this runtime, to spawn from other threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// let handle = rt.handle().clone();
    /// let h = std::thread::spawn(move || handle.spawn(async { 3 })).join().unwrap();
    /// assert_eq!(rt.block_on(h).unwrap(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// A snapshot of the runtime's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::builder().worker_threads(1).build()?;
    /// assert_eq!(rt.metrics().workers, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.handle.metrics()
    }
}

impl Runtime {
    /// Shuts the runtime down gracefully: stops intake, lets tasks finish
    /// until `deadline`, cancels the rest, joins the workers, closes the
    /// reactor, and reports what happened. The steps are in
    /// `src/runtime/shutdown.rs`; it returns within `deadline` plus about
    /// 100 ms whatever the tasks do (a task that never yields costs its
    /// worker, which is detached and reported).
    ///
    /// Idempotent and callable from any thread: later calls wait for the
    /// first and return its report. Called on a runtime thread, the steps
    /// run on a helper thread while this one waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// for i in 0..100u64 {
    ///     rt.spawn(async move { ebbtide::time::sleep(Duration::from_millis(i % 5)).await });
    /// }
    /// let report = rt.shutdown(Duration::from_secs(5));
    /// assert_eq!(report.completed, 100);
    /// assert!(rt.handle().try_spawn(async {}).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = &*report {
            return r.clone();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let shared = self.handle.shared.clone();
        let r = if context::in_runtime_thread() {
            std::thread::Builder::new()
                .name("ebbtide-shutdown".into())
                .spawn(move || shared.shutdown(threads, deadline))
                .and_then(|t| {
                    t.join()
                        .map_err(|_| std::io::Error::other("shutdown panicked"))
                })
                .unwrap_or_else(|e| {
                    panic!("ebbtide: cannot run shutdown off the runtime thread: {e}")
                })
        } else {
            shared.shutdown(threads, deadline)
        };
        *report = Some(r.clone());
        r
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let done = self
            .report
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if done {
            return;
        }
        let threads = std::mem::take(self.threads.get_mut().unwrap_or_else(|e| e.into_inner()));
        let shared = self.handle.shared.clone();
        let deadline = shared.config.drain_timeout;
        if context::in_runtime_thread() {
            // Never block (or join ourselves from) a runtime thread.
            let spawned = std::thread::Builder::new()
                .name("ebbtide-shutdown".into())
                .spawn(move || {
                    shared.shutdown(threads, deadline);
                });
            if spawned.is_err() {
                // No thread to hand the steps to: at least stop intake and
                // the workers; they exit on their own.
                self.handle.shared.begin_shutdown();
                self.handle.shared.scheduler.stop();
            }
            return;
        }
        shared.shutdown(threads, deadline);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("current_thread", &self.handle.shared.config.current_thread)
            .field("io_backend", &self.handle.shared.reactor.backend())
            .field("metrics", &self.metrics())
            .finish()
    }
}
