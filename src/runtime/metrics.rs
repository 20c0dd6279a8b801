//! A snapshot of a runtime's counters.

use std::fmt;

/// Counters read from a running runtime by
/// [`Runtime::metrics`](super::Runtime::metrics) or
/// [`Handle::metrics`](super::Handle::metrics).
///
/// Each field is read separately (relaxed), so a snapshot taken while tasks
/// run is approximate; totals are exact once the runtime is quiet.
///
/// # Examples
///
/// ```
/// let rt = ebbtide::runtime::Runtime::builder().worker_threads(2).build()?;
/// rt.block_on(async { ebbtide::spawn(async {}).await.unwrap() });
/// let m = rt.metrics();
/// assert_eq!(m.workers, 2);
/// assert_eq!(m.spawned_tasks, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Worker threads (1 for a current-thread runtime: the `block_on` caller).
    pub workers: usize,
    /// Workers currently idle (parked or blocked in the poller).
    pub idle_workers: usize,
    /// Tasks whose future has not been dropped yet (includes blocking jobs).
    pub alive_tasks: usize,
    /// Tasks spawned since the runtime started (includes blocking jobs).
    pub spawned_tasks: u64,
    /// Task polls completed by workers (flushed when a worker parks).
    pub polls: u64,
    /// Successful steals from another worker's queue.
    pub steals: u64,
    /// Tasks waiting in the global injector queue.
    pub injector_depth: usize,
    /// Tasks waiting in workers' local queues.
    pub local_queue_depth: usize,
    /// Threads in the blocking pool (busy or idle).
    pub blocking_threads: usize,
    /// Blocking-pool threads waiting for a job.
    pub idle_blocking_threads: usize,
    /// Blocking jobs queued and not yet started.
    pub blocking_queue_depth: usize,
    /// Tasks whose future panicked (reported to their `JoinHandle`).
    pub panicked_tasks: u64,
    /// Panics caught while dropping a cancelled task's future that had no
    /// one to report them to (its task was dropped unpolled at teardown);
    /// a `JoinHandle` reports the others (`JoinError::is_panic`).
    pub drop_panics: u64,
    /// Panics caught from wakers the runtime called (I/O events, timers,
    /// a `JoinHandle`'s awaiter, shutdown): the wake is skipped, the thread
    /// goes on. Counted for the whole process, since a waker belongs to
    /// whoever polled, not to one runtime.
    pub waker_panics: u64,
    /// Panics caught from the `on_thread_start` / `on_thread_stop` hooks
    /// ([`Builder::on_thread_start`](super::Builder::on_thread_start)): the
    /// thread went on.
    pub hook_panics: u64,
    /// Pending timers.
    pub timers: usize,
    /// I/O handles registered with the reactor.
    pub io_sources: usize,
    /// The I/O backend the runtime runs on (never `Auto`).
    pub io_backend: super::IoBackend,
    /// Owned-buffer operations submitted to the op table since the start
    /// (blocking-pool and completion-backend ops; readiness ops need no slot).
    pub ops_submitted: u64,
    /// Op-table slots not yet freed: in flight, completed and not yet
    /// taken, or cancelled and waiting for the OS's acknowledgement.
    pub ops_in_flight: usize,
    /// Ops whose future was dropped before they completed.
    pub ops_cancelled: u64,
    /// Ops the OS completed after their future was dropped and their
    /// cancel requested (a completion backend's race, won by the op): the
    /// result was discarded and the buffer dropped then.
    pub ops_completed_after_cancel: u64,
    /// Completions for a missing or stale op slot (a backend bug; never
    /// written through). Should stay 0.
    pub ops_stale_completions: u64,
    /// Task (and `block_on`) polls that ran at least the stall threshold
    /// ([`Builder::stall_threshold`](super::Builder::stall_threshold)),
    /// each counted; only the first of each spawn site is reported.
    pub stalled_polls: u64,
    /// Panics caught from the
    /// [`on_stall`](super::Builder::on_stall) hook.
    pub stall_hook_panics: u64,
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} workers ({} idle), {} tasks alive / {} spawned, {} polls, {} steals, \
             queues {} injector + {} local, blocking {} threads ({} idle, {} queued), \
             {} panics ({} in wakers, {} in thread hooks), {} timers, {} io sources ({:?}), ops {} in flight / {} submitted \
             ({} cancelled, {} stale), {} stalled polls",
            self.workers,
            self.idle_workers,
            self.alive_tasks,
            self.spawned_tasks,
            self.polls,
            self.steals,
            self.injector_depth,
            self.local_queue_depth,
            self.blocking_threads,
            self.idle_blocking_threads,
            self.blocking_queue_depth,
            self.panicked_tasks,
            self.waker_panics,
            self.hook_panics,
            self.timers,
            self.io_sources,
            self.io_backend,
            self.ops_in_flight,
            self.ops_submitted,
            self.ops_cancelled,
            self.ops_stale_completions,
            self.stalled_polls
        )
    }
}
