//! `Builder`: how a runtime is configured.

use std::io;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::thread_hooks::{Hook, ThreadHooks};
use super::{context, Config, IoBackend, Lifecycle, Runtime, Shared};
use crate::blocking::BlockingPool;
use crate::executor::{Scheduler, StallDetector, StallHook, StallReport, Worker};
use crate::op::{self, OpContext, OpTable};
use crate::reactor::Reactor;

/// Configures and builds a [`Runtime`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::runtime::Runtime;
///
/// let rt = Runtime::builder()
///     .worker_threads(2)
///     .thread_name("my-app")
///     .max_blocking_threads(16)
///     .drain_timeout(Duration::from_millis(500))
///     .build()?;
/// assert_eq!(rt.metrics().workers, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    worker_threads: Option<usize>,
    current_thread: bool,
    thread_name: String,
    max_blocking_threads: usize,
    blocking_keep_alive: Duration,
    drain_timeout: Duration,
    stack_size: Option<usize>,
    on_thread_start: Option<Hook>,
    on_thread_stop: Option<Hook>,
    start_paused: bool,
    /// Polls longer than this are reported (`None`: off).
    stall_threshold: Option<Duration>,
    /// Where stall reports go (default: one line on stderr).
    on_stall: Option<StallHook>,
    /// The I/O backend asked for (`Auto`: the environment, then the best).
    io_backend: IoBackend,
    /// Sockets' owned-buffer calls, accepts and connects through the ring
    /// (io_uring).
    io_uring_sockets: bool,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// Defaults: one worker per available core, threads named
    /// `ebbtide-worker-N`, up to 512 blocking threads kept alive 10 s when
    /// idle, and a 1 s drain timeout.
    pub fn new() -> Builder {
        Builder {
            worker_threads: None,
            current_thread: false,
            thread_name: "ebbtide".into(),
            max_blocking_threads: 512,
            blocking_keep_alive: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(1),
            stack_size: None,
            on_thread_start: None,
            on_thread_stop: None,
            start_paused: false,
            stall_threshold: Some(Duration::from_millis(100)),
            on_stall: None,
            io_backend: IoBackend::Auto,
            io_uring_sockets: false,
        }
    }

    /// The I/O backend (default [`IoBackend::Auto`]: the environment
    /// variable `EBBTIDE_IO_BACKEND` if set, `epoll` or `io_uring`; else
    /// io_uring on Linux when the kernel offers what the runtime needs,
    /// falling back to epoll without an error; the platform's poller
    /// elsewhere). A backend asked for by name that this system cannot
    /// run makes [`build`](Builder::build) fail with
    /// [`ErrorKind::Unsupported`](io::ErrorKind::Unsupported) and the
    /// reason. A runtime reports what it runs on in
    /// [`Metrics::io_backend`](super::Metrics::io_backend).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::runtime::{IoBackend, Runtime};
    ///
    /// let rt = Runtime::builder().io_backend(IoBackend::Auto).build()?;
    /// println!("running on {:?}", rt.metrics().io_backend);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn io_backend(&mut self, backend: IoBackend) -> &mut Builder {
        self.io_backend = backend;
        self
    }

    /// On the io_uring backend, sends sockets' calls through the ring
    /// instead of readiness (default `false`; no effect on other
    /// backends): the owned-buffer reads and writes of TCP and Unix
    /// streams (`read_owned`, `write_owned`, `write_all_owned`, and their
    /// split halves), UDP's and `UnixDatagram`'s `recv_from_owned` /
    /// `send_to_owned`, the listeners' `accept` and the streams'
    /// `connect` (those four where the kernel's ring has the opcode).
    ///
    /// Through the ring a server makes far fewer system calls (the driver submits the
    /// queued entries once per wait), but on the kernels measured it spends more CPU per
    /// request than readiness does (`docs/benchmarks.md`, "io_uring"), so
    /// readiness is the default. Turn it on where system calls are dear
    /// (sandboxed kernels, heavy syscall mitigations) and measure.
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::runtime::{IoBackend, Runtime};
    ///
    /// let rt = Runtime::builder().io_backend(IoBackend::Auto).io_uring_sockets(true).build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn io_uring_sockets(&mut self, on: bool) -> &mut Builder {
        self.io_uring_sockets = on;
        self
    }

    /// Number of worker threads (default: available parallelism).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::builder().worker_threads(3).build()?;
    /// assert_eq!(rt.metrics().workers, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn worker_threads(&mut self, n: usize) -> &mut Builder {
        self.worker_threads = Some(n);
        self.current_thread = false;
        self
    }

    /// No worker threads: the thread calling [`Runtime::block_on`] runs every
    /// task, interleaved with the future it blocks on. Tasks spawned while no
    /// `block_on` is running wait for the next one.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::builder().current_thread().build()?;
    /// let main = std::thread::current().id();
    /// let on = rt.block_on(async { ebbtide::spawn(async { std::thread::current().id() }).await });
    /// assert_eq!(on.unwrap(), main);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn current_thread(&mut self) -> &mut Builder {
        self.current_thread = true;
        self
    }

    /// Prefix of thread names: workers are `{name}-worker-{i}`, blocking
    /// threads `{name}-blocking`, and the blocking pool's monitor (which
    /// starts threads when jobs wait behind blocked ones)
    /// `{name}-blocking-monitor`.
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Builder {
        self.thread_name = name.into();
        self
    }

    /// Upper bound on blocking-pool threads (default 512). Jobs beyond it
    /// wait in a FIFO queue.
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Builder {
        self.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking thread waits for a job before exiting
    /// (default 10 s).
    pub fn blocking_keep_alive(&mut self, d: Duration) -> &mut Builder {
        self.blocking_keep_alive = d;
        self
    }

    /// How long dropping the runtime waits for workers and blocking jobs
    /// before detaching them (default 1 s).
    pub fn drain_timeout(&mut self, d: Duration) -> &mut Builder {
        self.drain_timeout = d;
        self
    }

    /// Stack size of worker and blocking threads (default: std's).
    pub fn thread_stack_size(&mut self, bytes: usize) -> &mut Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Runs `f` on every worker thread and every blocking-pool thread of the
    /// runtime when it starts, before it runs any task, with the runtime
    /// current ([`Handle::current`](super::Handle::current) works there).
    /// Not run on the thread that calls [`Runtime::block_on`] (the only
    /// worker of a [`current_thread`](Builder::current_thread) runtime).
    /// A panic in `f` is caught and counted in
    /// [`Metrics::hook_panics`](super::Metrics::hook_panics); the thread
    /// goes on and runs its tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let started = Arc::new(AtomicUsize::new(0));
    /// let counter = started.clone();
    /// let rt = ebbtide::runtime::Runtime::builder()
    ///     .worker_threads(2)
    ///     .on_thread_start(move || {
    ///         counter.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()?;
    /// rt.block_on(rt.spawn_blocking(|| ())).unwrap(); // starts a blocking thread
    /// rt.shutdown(Duration::from_secs(1));
    /// assert_eq!(started.load(Ordering::SeqCst), 3); // 2 workers, 1 blocking thread
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_thread_start<F>(&mut self, f: F) -> &mut Builder
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.on_thread_start = Some(Hook(Arc::new(f)));
        self
    }

    /// Runs `f` on every worker thread and every blocking-pool thread of the
    /// runtime before it exits, after its last task, with the runtime still
    /// current. Once [`Runtime::shutdown`] returns, every thread it joined
    /// has run it (a thread left running past the deadline runs it when, if
    /// ever, it exits). Panics are caught and counted as for
    /// [`on_thread_start`](Builder::on_thread_start).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let stopped = Arc::new(AtomicUsize::new(0));
    /// let counter = stopped.clone();
    /// let rt = ebbtide::runtime::Runtime::builder()
    ///     .worker_threads(2)
    ///     .on_thread_stop(move || {
    ///         counter.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()?;
    /// assert_eq!(stopped.load(Ordering::SeqCst), 0);
    /// rt.shutdown(Duration::from_secs(1));
    /// assert_eq!(stopped.load(Ordering::SeqCst), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_thread_stop<F>(&mut self, f: F) -> &mut Builder
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.on_thread_stop = Some(Hook(Arc::new(f)));
        self
    }

    /// Whether the runtime's clock starts paused (default `false`), as if
    /// [`time::pause`](crate::time::pause) were its first call: time then
    /// moves only by [`time::advance`](crate::time::advance) or by jumping
    /// to the next timer when every task is idle. For tests; needs
    /// [`current_thread`](Builder::current_thread).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::{self, Instant};
    ///
    /// let rt = ebbtide::runtime::Runtime::builder().current_thread().start_paused(true).build()?;
    /// rt.block_on(async {
    ///     let start = Instant::now();
    ///     let r = time::timeout(Duration::from_secs(60), std::future::pending::<()>()).await;
    ///     assert!(r.is_err());
    ///     assert_eq!(start.elapsed(), Duration::from_secs(60));
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start_paused(&mut self, paused: bool) -> &mut Builder {
        self.start_paused = paused;
        self
    }

    /// A task poll that runs at least this long is a stall (default
    /// 100 ms; `None` turns detection off): it is counted in
    /// [`Metrics::stalled_polls`](super::Metrics::stalled_polls) and, the
    /// first time for each spawn site (location and name), reported to the
    /// [`on_stall`](Self::on_stall) hook, or else as one line on stderr
    /// naming the site and the poll's duration. The polls of `block_on`
    /// futures are timed too; `spawn_blocking` jobs, which are meant to
    /// block, are not. It costs one read of a coarse clock per poll
    /// (`src/executor/stall.rs`; `docs/benchmarks.md`, "Stall detector").
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = ebbtide::runtime::Runtime::builder()
    ///     .current_thread()
    ///     .stall_threshold(None)
    ///     .build()?;
    /// rt.block_on(async { std::thread::sleep(Duration::from_millis(150)) });
    /// assert_eq!(rt.metrics().stalled_polls, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stall_threshold(&mut self, threshold: Option<Duration>) -> &mut Builder {
        self.stall_threshold = threshold;
        self
    }

    /// Sends stall reports (see [`stall_threshold`](Self::stall_threshold))
    /// to `hook` instead of stderr. It runs on the thread that made the
    /// poll, right after it, with no lock held; a panic in it is caught and
    /// counted in
    /// [`Metrics::stall_hook_panics`](super::Metrics::stall_hook_panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let reports = Arc::new(AtomicUsize::new(0));
    /// let count = reports.clone();
    /// let rt = ebbtide::runtime::Runtime::builder()
    ///     .worker_threads(1)
    ///     .stall_threshold(Some(Duration::from_millis(10)))
    ///     .on_stall(move |report| {
    ///         assert!(report.duration >= Duration::from_millis(10));
    ///         count.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()?;
    /// let task = rt.spawn(async { std::thread::sleep(Duration::from_millis(20)) });
    /// rt.block_on(task).unwrap();
    /// // The report follows the poll, perhaps after `block_on` has the
    /// // output; shutting down joins the worker that makes it.
    /// rt.shutdown(Duration::from_secs(1));
    /// assert_eq!(reports.load(Ordering::SeqCst), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_stall<F>(&mut self, hook: F) -> &mut Builder
    where
        F: Fn(&StallReport) + Send + Sync + 'static,
    {
        self.on_stall = Some(StallHook(Arc::new(hook)));
        self
    }

    /// Builds the runtime and starts its worker threads.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `worker_threads(0)` or `max_blocking_threads(0)`,
    /// or `start_paused(true)` without `current_thread`;
    /// the OS error if the poller or a worker thread cannot be created.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = ebbtide::runtime::Runtime::builder().worker_threads(0).build().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn build(&mut self) -> io::Result<Runtime> {
        let workers = match (self.current_thread, self.worker_threads) {
            (true, _) => 1,
            (false, Some(0)) => return Err(invalid("worker_threads must be at least 1")),
            (false, Some(n)) => n,
            (false, None) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.max_blocking_threads == 0 {
            return Err(invalid("max_blocking_threads must be at least 1"));
        }
        if self.start_paused && !self.current_thread {
            return Err(invalid(
                "start_paused(true) needs current_thread(): only a current-thread runtime's \
                 clock can be paused",
            ));
        }
        // Bottom up: the op table, the reactor that hands it completions,
        // the scheduler that parks on the reactor, the pool whose threads
        // enter this runtime.
        let table = Arc::new(OpTable::new());
        let backend = requested_backend(self.io_backend)?;
        let reactor = Arc::new(Reactor::new(op::completion_handler(&table), backend)?);
        if self.start_paused {
            reactor.clock.pause();
        }
        let lifecycle = Arc::new(Lifecycle::new());
        let thread_hooks = Arc::new(ThreadHooks::new(
            self.on_thread_start.clone(),
            self.on_thread_stop.clone(),
        ));
        let announce = lifecycle.clone();
        let scheduler = Arc::new(
            Scheduler::new(
                workers,
                reactor.clone(),
                Box::new(move || announce.announce_if_begun()),
            )
            .with_stall(StallDetector::new(
                self.stall_threshold,
                self.on_stall.clone(),
            )),
        );
        let shared = Arc::new_cyclic(|this: &Weak<Shared>| {
            let this = this.clone();
            let hooks = thread_hooks.clone();
            let blocking = BlockingPool::new(
                self.max_blocking_threads,
                self.blocking_keep_alive,
                format!("{}-blocking", self.thread_name),
                Box::new(move || {
                    let ctx = this.upgrade().map(|shared| context::enter_handle(&shared));
                    let stop = hooks.thread_started();
                    // Dropped in order: the stop hook, then the context.
                    Box::new((stop, ctx))
                }),
            );
            Shared {
                ops: OpContext::new(table, blocking.clone(), &reactor)
                    .with_ring_sockets(self.io_uring_sockets),
                scheduler,
                reactor,
                blocking,
                config: Config {
                    current_thread: self.current_thread,
                    drain_timeout: self.drain_timeout,
                    pid: std::process::id(),
                },
                lifecycle,
                children: Default::default(),
                thread_hooks,
            }
        });
        let pool = Arc::downgrade(&shared.blocking);
        shared
            .reactor
            .clock
            .hold_auto_advance_while(Box::new(move || {
                pool.upgrade().is_some_and(|p| p.is_busy())
            }));
        let mut threads = Vec::new();
        if !self.current_thread {
            for index in 0..workers {
                let mut b = std::thread::Builder::new()
                    .name(format!("{}-worker-{index}", self.thread_name));
                if let Some(size) = self.stack_size {
                    b = b.stack_size(size);
                }
                let s = shared.clone();
                match b.spawn(move || run_worker_thread(s, index)) {
                    Ok(t) => threads.push(t),
                    Err(e) => {
                        drop(Runtime::from_parts(shared, threads)); // stops the started ones
                        return Err(e);
                    }
                }
            }
        }
        Ok(Runtime::from_parts(shared, threads))
    }
}

/// Entry point of a worker thread: claims worker `index`, makes the runtime
/// current, runs the start hook (`thread_hooks`), and runs the worker loop
/// until the scheduler stops; then the stop hook.
fn run_worker_thread(shared: Arc<Shared>, index: usize) {
    let Some(mut worker) = Worker::claim(&shared.scheduler, index, None) else {
        return;
    };
    let ctx = context::enter_runtime_thread(&shared, Some(worker.local().clone()));
    let stop = shared.thread_hooks.thread_started();
    worker.run(std::pin::pin!(std::future::pending::<()>()), None);
    drop(worker); // releases the slot while the context is still set
    drop(stop); // after the thread's last task, before it exits
    drop(ctx);
}

/// `requested`, or for `Auto` the environment's `EBBTIDE_IO_BACKEND`.
fn requested_backend(requested: IoBackend) -> io::Result<IoBackend> {
    if requested != IoBackend::Auto {
        return Ok(requested);
    }
    match std::env::var("EBBTIDE_IO_BACKEND") {
        Err(std::env::VarError::NotPresent) => Ok(IoBackend::Auto),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(IoBackend::Auto),
            "epoll" => Ok(IoBackend::Epoll),
            "io_uring" | "iouring" | "uring" => Ok(IoBackend::IoUring),
            "kqueue" => Ok(IoBackend::Kqueue),
            "iocp" => Ok(IoBackend::Iocp),
            _ => Err(invalid_env(&v)),
        },
        Err(std::env::VarError::NotUnicode(v)) => Err(invalid_env(&v.to_string_lossy())),
    }
}

fn invalid_env(value: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "ebbtide: EBBTIDE_IO_BACKEND={value:?} names no I/O backend \
             (expected `auto`, `epoll` or `io_uring`)"
        ),
    )
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("ebbtide::runtime::Builder: {msg}"),
    )
}
