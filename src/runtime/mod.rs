//! The runtime value: its builder, handle, `block_on`, metrics and teardown.
//!
//! A [`Runtime`] owns one scheduler, one reactor (one `polling::Poller`) and
//! one blocking pool. Nothing in the core is global; the global runtime used
//! by [`crate::spawn`] outside any runtime is a thin layer (`global.rs`).

mod block_on;
mod builder;
pub(crate) mod context;
mod global;
mod handle;
mod metrics;

pub use builder::Builder;
pub use handle::{EnterGuard, Handle, SpawnError, TryCurrentError};
pub use metrics::Metrics;

pub(crate) use global::global;

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle as ThreadHandle;
use std::time::{Duration, Instant};

use crate::blocking::BlockingPool;
use crate::executor::{JoinHandle, Scheduler};
use crate::reactor::Reactor;

/// Everything the threads of one runtime share.
pub(crate) struct Shared {
    pub(crate) scheduler: Scheduler,
    pub(crate) reactor: Reactor,
    pub(crate) blocking: BlockingPool,
    pub(crate) config: Config,
}

/// Builder settings the runtime keeps.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// The `block_on` caller is the only worker.
    pub(crate) current_thread: bool,
    /// How long dropping the runtime waits for its threads.
    pub(crate) drain_timeout: Duration,
}

/// An ebbtide runtime: worker threads, a reactor, timers and a blocking pool.
///
/// Dropping it stops the workers, waits up to the builder's
/// [`drain_timeout`](Builder::drain_timeout) for them and for running
/// blocking jobs, then drops every remaining task. Dropped on a runtime
/// thread (inside a task or `block_on`), it does that on a background thread
/// instead, so it never blocks a worker.
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
    threads: Mutex<Vec<ThreadHandle<()>>>,
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

impl Drop for Runtime {
    fn drop(&mut self) {
        let shared = self.handle.shared.clone();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        if context::in_runtime_thread() {
            // Never block (or join ourselves from) a runtime thread.
            let spawned = std::thread::Builder::new()
                .name("ebbtide-teardown".into())
                .spawn(move || shared.teardown(threads));
            if let Err(e) = spawned {
                // No thread to hand the work to: stop the workers without
                // waiting for them; they exit on their own.
                let _ = e;
                self.handle
                    .shared
                    .scheduler
                    .stop(&self.handle.shared.reactor);
            }
            return;
        }
        shared.teardown(threads);
    }
}

impl Shared {
    /// Stops the workers, waits for them (bounded by `drain_timeout`), drops
    /// the remaining tasks, closes the reactor and the blocking pool.
    fn teardown(self: Arc<Self>, threads: Vec<ThreadHandle<()>>) {
        let deadline = Instant::now() + self.config.drain_timeout;
        self.scheduler.stop(&self.reactor);
        for t in threads {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::park_timeout(Duration::from_millis(1));
            }
            if t.is_finished() {
                let _ = t.join(); // workers catch task panics; nothing to report
            }
            // else: a task that never yields holds the worker; it is
            // detached and exits when (if) that task returns.
        }
        self.scheduler.drain();
        let wakers = self.reactor.close();
        drop(wakers);
        self.blocking.shutdown(deadline);
        // Tasks whose last waker was among those dropped were scheduled and
        // dropped (the scheduler is stopping); anything woken since is too.
        self.scheduler.drain();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("current_thread", &self.handle.shared.config.current_thread)
            .field("metrics", &self.metrics())
            .finish()
    }
}
