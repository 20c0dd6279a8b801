//! Graceful shutdown: stop intake, drain, cancel, settle, join, close.
//!
//! # The steps
//!
//! 1. `shutdown(deadline)` or `Handle::begin_shutdown()` moves the runtime
//!    Running → Draining, once (a compare-exchange: idempotent, any thread),
//!    and wakes the reactor with `Poller::notify`. That is all the trigger
//!    does, so it is async-signal-safe. The `shutdown_requested()` futures
//!    are woken by the first runtime thread that notices (a worker after
//!    waking or at its maintenance tick, or `shutdown` itself): waking them
//!    takes a lock, which a signal handler must not.
//! 2. **Draining** until no task is alive or `deadline` passes: new spawns
//!    are refused (`try_spawn` → `SpawnError::ShuttingDown`; `spawn` returns
//!    a handle that resolves cancelled); running tasks, I/O, timers and the
//!    blocking pool keep working so in-flight work can finish.
//! 3. **Cancelling**: child processes are settled first (`children.rs`):
//!    those spawned with `kill_on_drop(true)` that still run are killed and
//!    reaped (within `SETTLE`), the others still running are counted and
//!    left to the background reaper. Then the runtime's cancel flag is set
//!    and every live task is woken. A woken task is queued as usual and its next poll drops its
//!    future (a panic in its `Drop` is caught and reported to its
//!    `JoinHandle`). The future is never dropped inside the wake: libraries
//!    call `wake` under their own locks (async-channel, event-listener), and
//!    a future that drops a listener of the same event would deadlock on
//!    that lock. The workers poll the queued tasks, and so does this thread
//!    while it waits (every `HELP_INTERVAL`), so cancellation proceeds even
//!    when every worker is stuck. Bounded by `SETTLE`.
//! 4. **Settling** in-flight I/O operations (`crate::op`, step 6 there):
//!    cancelling the tasks dropped their op futures, which marked the slots
//!    `Cancelling`; the reactor and the blocking pool keep running until the
//!    op table is empty or the settle bound passes. Readiness ops hold no
//!    OS state between polls and never occupy a slot. Ops whose future was
//!    dropped in flight are counted in `ops_cancelled`; ops still
//!    unacknowledged after the join (step 5) are counted in `ops_leaked`,
//!    and whatever OS state their slots own is never freed.
//! 5. **Joining**: workers are told to stop and joined until `JOIN_GRACE`
//!    past the settle bound, each only once its thread has exited, so a join
//!    never blocks; a worker stuck in a task that never yields is detached
//!    and counted in `workers_leaked`. So is, on Windows, a worker of a
//!    runtime dropped by thread-local destructors: those run under the
//!    loader lock, which a thread needs to exit, so its workers finish only
//!    after the shutdown returns. Blocking jobs still running
//!    then are detached and counted in `blocking_leaked`; queued ones that
//!    never started are cancelled.
//! 6. **Closing**: queued tasks are dropped (on this thread, outside every
//!    wake), the reactor is closed and every waker it still held is woken
//!    (panic-isolated): whatever waits on it polls again and learns that
//!    the runtime is gone (I/O objects return an error, timers panic with a
//!    message saying so) instead of waiting forever. A task woken after this
//!    (it ran on a detached worker) is dropped by a reaper thread, never
//!    inside the wake (`executor`). The poller is freed with the last
//!    reference to the runtime.
//! 7. `Drop for Runtime` runs the same steps with the builder's
//!    `drain_timeout`; on a runtime thread (inside a task or `block_on`) it
//!    hands them to a background thread, so it never blocks a worker.
//!
//! The report names the spawn sites (location and task name) of the tasks
//! it cancelled (counted by the task set from step 1 on, as each cancelled
//! future is dropped) and of the tasks it leaked that it can name: those a
//! detached worker is stuck polling (each worker publishes what it polls).
//! Most frequent first, at most 16 of each.
//!
//! Every wait above has a bound, so `shutdown(d)` returns within
//! `d + SETTLE + JOIN_GRACE` whatever the tasks do. The one exception is a
//! current-thread runtime whose only thread is stuck inside a task's `poll`:
//! nothing can preempt it.
//!
//! # After `fork`
//!
//! A forked child has a copy of the runtime's memory but none of its
//! threads: a multi-threaded runtime (the global one included) cannot run
//! tasks there, and work the child hands it waits forever, as with tokio.
//! Build a new runtime in the child instead. Shutting the copy down in the
//! child (its `Drop`, or the global runtime's exit hook) only stops intake
//! and returns at once, counting the tasks and workers as leaked: it never
//! waits the drain timeout for threads that do not exist.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;

use crate::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use crate::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle as ThreadHandle;
use std::time::{Duration, Instant};

use slab::Slab;

use super::{context, Shared};
use crate::executor::{MainWake, Site, Worker};
use crate::reactor::Sleep;
use crate::sys;

/// Step 3's bound past the drain deadline.
const SETTLE: Duration = Duration::from_millis(50);
/// Step 5's bound past the settle bound.
const JOIN_GRACE: Duration = Duration::from_millis(40);
/// Steps 3–4: how often the shutting-down thread polls queued tasks.
const HELP_INTERVAL: Duration = Duration::from_millis(1);
/// Spawn sites listed per kind (cancelled, leaked) in a report; the rest
/// are counted in `cancelled_unlisted` / `leaked_unlisted`.
pub(crate) const MAX_SITES: usize = 16;

/// A runtime's stage, in order: a stage only ever moves forward (stored as
/// its `u8` in one atomic, so step 1 stays one compare-exchange).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
enum Stage {
    Running = 0,
    /// Step 1 on: no new tasks.
    Draining = 1,
    /// Step 3 on: tasks are cancelled.
    Cancelling = 2,
    /// Step 5 on: threads are stopping.
    Stopped = 3,
}

/// Where a runtime is in its life (step numbers above).
pub(crate) struct Lifecycle {
    state: AtomicU8,
    /// Step 1's waiters have been woken.
    announced: AtomicBool,
    /// `shutdown_requested()` futures waiting for step 1.
    requested: Mutex<Slab<Waker>>,
}

impl Lifecycle {
    pub(crate) fn new() -> Lifecycle {
        Lifecycle {
            state: AtomicU8::new(Stage::Running as u8),
            announced: AtomicBool::new(false),
            requested: Mutex::new(Slab::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slab<Waker>> {
        // No user code runs under this lock.
        self.requested.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step 1's transition: an atomic compare-exchange and nothing else, so
    /// it is async-signal-safe. Returns whether this call made it.
    pub(crate) fn begin(&self) -> bool {
        self.state
            .compare_exchange(
                Stage::Running as u8,
                Stage::Draining as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    fn advance(&self, to: Stage) {
        self.state.fetch_max(to as u8, Ordering::AcqRel);
    }

    /// Draining or later: no new tasks.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.state.load(Ordering::Acquire) >= Stage::Draining as u8
    }

    /// Wakes the `shutdown_requested()` futures once shutdown has begun, the
    /// first time a runtime thread calls this (not signal-safe: locks). A
    /// load and nothing else while running: cheap enough for every wake-up.
    pub(crate) fn announce_if_begun(&self) {
        if !self.is_shutting_down() || self.announced.load(Ordering::Acquire) {
            return;
        }
        if self.announced.swap(true, Ordering::AcqRel) {
            return;
        }
        let wakers: Vec<Waker> = self.lock().drain().collect();
        for w in wakers {
            crate::wake::wake(w);
        }
    }

    fn poll_requested(&self, key: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_shutting_down() {
            return Poll::Ready(());
        }
        let mut waiters = self.lock();
        match key.and_then(|k| waiters.get_mut(k)) {
            Some(w) => w.clone_from(cx.waker()),
            None => *key = Some(waiters.insert(cx.waker().clone())),
        }
        drop(waiters);
        if self.is_shutting_down() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn forget(&self, key: usize) {
        let waker = self.lock().try_remove(key);
        drop(waker);
    }
}

/// What a shutdown did, returned by
/// [`Runtime::shutdown`](super::Runtime::shutdown).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rt = ebbtide::runtime::Runtime::new()?;
/// rt.spawn(async { ebbtide::time::sleep(Duration::from_millis(5)).await });
/// rt.spawn(std::future::pending::<()>());
/// let report = rt.shutdown(Duration::from_millis(200));
/// assert_eq!(report.cancelled, 1); // the pending one
/// assert_eq!(report.workers_leaked, 0);
/// println!("{report}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Tasks that ran to completion (returned or panicked) over the
    /// runtime's life, including those that finished while draining.
    pub completed: u64,
    /// Tasks whose future this shutdown dropped before completion.
    pub cancelled: u64,
    /// Tasks whose future could not be dropped (stuck inside `poll` on a
    /// leaked worker, or `!Send` tasks of a thread still in `block_on`).
    /// A `spawn_blocking` job still running is not counted here but in
    /// `blocking_leaked`.
    pub tasks_leaked: usize,
    /// In-flight owned-buffer I/O operations (blocking-pool file ops,
    /// overlapped ops) whose future was dropped before completion during
    /// this shutdown; each was asked to cancel, and its buffer is freed only
    /// once the OS acknowledged it (`ops_leaked` counts those that never
    /// did by the end).
    pub ops_cancelled: u64,
    /// In-flight I/O operations left allocated on purpose because the OS
    /// had not acknowledged them by the end: their buffers and OS state are
    /// never freed while the OS may still write to them.
    pub ops_leaked: u64,
    /// Blocking-pool threads still running a job at the end (a
    /// `spawn_blocking` closure or a file operation), detached.
    pub blocking_leaked: usize,
    /// Worker threads stuck in a task that never yields, detached.
    pub workers_leaked: usize,
    /// Child processes spawned with `kill_on_drop(true)` that were still
    /// running: killed and reaped before this report.
    pub children_killed: usize,
    /// Child processes still running, left running (spawned without
    /// `kill_on_drop`; each is reaped in the background when it exits, so
    /// none is left a zombie).
    pub children_running: usize,
    /// Time from the start of the shutdown to its return.
    pub elapsed: Duration,
    /// Where the `cancelled` tasks were spawned: one entry per spawn site
    /// (location and name), most frequent first, at most 16.
    pub cancelled_sites: Vec<TaskSite>,
    /// Cancelled tasks not in `cancelled_sites` (past the cap).
    pub cancelled_unlisted: u64,
    /// Where the leaked tasks that can be named were spawned: those a
    /// detached worker was stuck polling. Most frequent first, at most 16.
    pub leaked_sites: Vec<TaskSite>,
    /// Leaked tasks not in `leaked_sites`: past the cap, or with no known
    /// site (a `!Send` task of a thread still in `block_on`, a task queued
    /// behind a stuck one).
    pub leaked_unlisted: usize,
}

/// A spawn site in a [`ShutdownReport`]: where tasks were spawned (the
/// caller of `spawn`, `spawn_local`, `spawn_blocking`, or a
/// [`task::Builder`](crate::task::Builder)'s spawn method), their name if
/// they have one, and how many.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rt = ebbtide::runtime::Runtime::new()?;
/// let line = line!() + 1;
/// rt.spawn(std::future::pending::<()>());
/// let report = rt.shutdown(Duration::ZERO);
/// let site = &report.cancelled_sites[0];
/// assert_eq!((site.location.line(), site.count), (line, 1));
/// let column = site.location.column();
/// assert_eq!(site.to_string(), format!("1 at {}:{line}:{column}", file!()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskSite {
    /// Where they were spawned.
    pub location: &'static Location<'static>,
    /// Their name, if they were spawned by a named
    /// [`task::Builder`](crate::task::Builder).
    pub name: Option<Arc<str>>,
    /// How many tasks.
    pub count: usize,
}

impl fmt::Display for TaskSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.count, self.location)?;
        if let Some(name) = &self.name {
            write!(f, " ({name})")?;
        }
        Ok(())
    }
}

/// `sites` (with counts; the same site may come more than once) as a
/// report's list: merged by location and name, most frequent first (then
/// by file, line, column), at most `MAX_SITES`; and the count left out.
fn list_sites(sites: impl IntoIterator<Item = (Site, u64)>, total: u64) -> (Vec<TaskSite>, u64) {
    let mut merged: HashMap<(&'static Location<'static>, Option<String>), u64> = HashMap::new();
    for (site, count) in sites {
        let name = site.name.map(|n| String::clone(&n));
        *merged.entry((site.location, name)).or_insert(0) += count;
    }
    let mut list: Vec<_> = merged.into_iter().collect();
    list.sort_by(|((a, an), ac), ((b, bn), bc)| {
        (bc, a.file(), a.line(), a.column(), an).cmp(&(ac, b.file(), b.line(), b.column(), bn))
    });
    list.truncate(MAX_SITES);
    let listed: u64 = list.iter().map(|(_, count)| count).sum();
    let list = list
        .into_iter()
        .map(|((location, name), count)| TaskSite {
            location,
            name: name.map(|n| Arc::from(n.as_str())),
            count: usize::try_from(count).unwrap_or(usize::MAX),
        })
        .collect();
    (list, total.saturating_sub(listed))
}

/// "N what" and, if any site is listed, ": site, site, and N more".
fn write_sites(
    f: &mut fmt::Formatter<'_>,
    count: u64,
    what: &str,
    sites: &[TaskSite],
    unlisted: u64,
) -> fmt::Result {
    write!(f, "{count} {what}")?;
    for (i, site) in sites.iter().enumerate() {
        f.write_str(if i == 0 { ": " } else { ", " })?;
        write!(f, "{site}")?;
    }
    if !sites.is_empty() && unlisted > 0 {
        write!(f, ", and {unlisted} more")?;
    }
    Ok(())
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A list of sites ends with "; ", a bare count with ", ".
        let sep = |sites: &[TaskSite]| if sites.is_empty() { ", " } else { "; " };
        write!(
            f,
            "shutdown in {:.1?}: {} tasks completed, ",
            self.elapsed, self.completed
        )?;
        let (cancelled, leaked) = (&self.cancelled_sites, &self.leaked_sites);
        write_sites(
            f,
            self.cancelled,
            "cancelled",
            cancelled,
            self.cancelled_unlisted,
        )?;
        f.write_str(sep(cancelled))?;
        let leaked_count = self.tasks_leaked as u64;
        write_sites(
            f,
            leaked_count,
            "leaked",
            leaked,
            self.leaked_unlisted as u64,
        )?;
        write!(
            f,
            "; {} ops cancelled, {} leaked; {} blocking jobs and {} workers left running; \
             {} child processes killed, {} left running",
            self.ops_cancelled,
            self.ops_leaked,
            self.blocking_leaked,
            self.workers_leaked,
            self.children_killed,
            self.children_running
        )
    }
}

impl Shared {
    /// Step 1's trigger: a compare-exchange and `Poller::notify`, both
    /// async-signal-safe.
    pub(crate) fn begin_shutdown(&self) {
        if self.lifecycle.begin() {
            self.reactor.notify();
        }
    }

    /// Steps 1–6; the caller must not be a runtime thread.
    pub(crate) fn shutdown(
        self: &Arc<Self>,
        threads: Vec<ThreadHandle<()>>,
        deadline: Duration,
    ) -> ShutdownReport {
        if std::process::id() != self.config.pid {
            return self.shutdown_forked(threads);
        }
        let start = Instant::now();
        // Saturating: `Duration::MAX` means "drain for as long as it takes".
        let drain_until = crate::reactor::deadline_after(start, deadline);
        let tasks = &self.scheduler.tasks;
        let cancelled_before = tasks.cancelled.load(Ordering::Relaxed);
        tasks.record_cancelled_sites(); // after the read: never more sites than tasks
        let ops_cancelled_start = self.ops.table.cancelled();
        self.begin_shutdown();
        self.lifecycle.announce_if_begun();

        // Step 2.
        self.wait_for(drain_until, false, |cx| tasks.poll_idle(cx));

        // Step 3. A wake never drops a future (`executor`, "What a wake
        // never does"): the tasks these wakes schedule here are polled by
        // `cancel` once each wake has returned, others are queued as usual
        // and polled by the workers or by this thread while it waits; each
        // poll drops the future, with this runtime current so their `Drop`
        // impls find it.
        self.lifecycle.advance(Stage::Cancelling);
        let (children_killed, children_running) = self
            .children
            .settle_all(crate::reactor::deadline_after(Instant::now(), SETTLE));
        {
            let _ctx = context::enter_handle(self);
            self.scheduler.cancel(tasks.start_cancelling());
        }
        let settle_until = crate::reactor::deadline_after(drain_until.max(Instant::now()), SETTLE);
        self.wait_for(settle_until, true, |cx| tasks.poll_idle(cx));

        // Step 4.
        let ops = self.ops.table.clone();
        self.wait_for(settle_until, true, |cx| ops.poll_settled(cx));

        // Step 5.
        self.lifecycle.advance(Stage::Stopped);
        let join_until = crate::reactor::deadline_after(settle_until, JOIN_GRACE);
        self.scheduler.stop();
        let stuck = join_until_deadline(threads, join_until);
        let workers_leaked = stuck.len();
        let stuck_sites: Vec<(Site, u64)> = stuck
            .into_iter()
            .filter_map(|index| self.scheduler.stuck_task(index))
            .map(|site| (site, 1))
            .collect();
        self.scheduler.drain();
        let blocking_leaked = self.blocking.shutdown(join_until);

        // Step 6.
        self.close_reactor();
        self.scheduler.drain(); // anything its wakers queued meanwhile
        let cancelled = tasks.cancelled.load(Ordering::Relaxed) - cancelled_before;
        // A stuck `spawn_blocking` job is counted once, in `blocking_leaked`.
        let tasks_leaked = (tasks.alive.load(Ordering::Relaxed))
            .saturating_sub(tasks.blocking_alive.load(Ordering::Relaxed));
        let (cancelled_sites, cancelled_unlisted) = list_sites(tasks.cancelled_sites(), cancelled);
        let (leaked_sites, leaked_unlisted) = list_sites(stuck_sites, tasks_leaked as u64);
        ShutdownReport {
            completed: tasks.completed.load(Ordering::Relaxed),
            cancelled,
            cancelled_sites,
            cancelled_unlisted,
            tasks_leaked,
            leaked_sites,
            leaked_unlisted: usize::try_from(leaked_unlisted).unwrap_or(usize::MAX),
            ops_cancelled: self.ops.table.cancelled() - ops_cancelled_start,
            ops_leaked: self.ops.table.len() as u64,
            blocking_leaked,
            workers_leaked,
            children_killed,
            children_running,
            elapsed: start.elapsed(),
        }
    }

    /// "After `fork`": stop intake and return at once. The workers are the
    /// parent's threads, absent here, and their locks may be held forever,
    /// so nothing is drained, cancelled or joined; what is left is counted
    /// as leaked.
    fn shutdown_forked(&self, threads: Vec<ThreadHandle<()>>) -> ShutdownReport {
        self.lifecycle.begin();
        let workers_leaked = threads.len();
        // Their handles name the parent's threads: neither join nor detach.
        std::mem::forget(threads);
        let tasks_leaked = self.scheduler.tasks.alive.load(Ordering::Relaxed);
        ShutdownReport {
            tasks_leaked,
            leaked_unlisted: tasks_leaked,
            workers_leaked,
            ..ShutdownReport::default()
        }
    }

    /// Step 6: closes the reactor and wakes every waker it still held, each
    /// panic-isolated and outside its locks. Whatever they belong to (a
    /// `block_on` on another thread, a task on a detached worker) polls
    /// again and learns that the runtime is gone (I/O errors, timers panic)
    /// instead of waiting forever.
    fn close_reactor(&self) {
        for w in self.reactor.close() {
            crate::wake::wake(w);
        }
    }

    /// Waits until `cond` is ready or `deadline` passes. On a current-thread
    /// runtime whose worker slot is free, this thread runs the tasks
    /// meanwhile; otherwise it parks (with a timeout: never relying on a
    /// worker that may be stuck) and, if `cancelling`, polls injector tasks
    /// itself every millisecond, each poll dropping a cancelled future.
    fn wait_for(
        self: &Arc<Self>,
        deadline: Instant,
        cancelling: bool,
        cond: impl FnMut(&mut Context<'_>) -> Poll<()> + Unpin,
    ) {
        let mut wait = WaitFor {
            cond,
            sleep: Sleep::on(&self.reactor, deadline),
        };
        if self.config.current_thread {
            if let Some(mut worker) = Worker::claim(&self.scheduler, 0, None) {
                let ctx = context::enter_runtime_thread(self, Some(worker.local().clone()));
                let main = MainWake::new(worker.waiter().clone(), self.reactor.clone());
                worker.run(Pin::new(&mut wait), Some(&main));
                drop(worker); // gives the slot back while the context is set
                drop(ctx);
                return;
            }
        }
        let _ctx = cancelling.then(|| context::enter_handle(self));
        let (parker, unparker) = parking::pair();
        let waker = Waker::from(unparker);
        let mut cx = Context::from_waker(&waker);
        loop {
            if cancelling {
                self.scheduler.run_injector_cancelling();
            }
            if (wait.cond)(&mut cx).is_ready() {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let until = if cancelling {
                deadline.min(now + HELP_INTERVAL)
            } else {
                deadline
            };
            parker.park_deadline(until);
        }
    }
}

/// Joins `threads` (worker `i` is `threads[i]`) until `deadline`; returns
/// the indices of those that had to be detached.
/// A thread is joined only once it has exited (`sys::thread_has_exited`),
/// so a join never blocks: one that cannot exit before the deadline (stuck
/// in a task, or, on Windows, waiting for the loader lock that a thread
/// running thread-local destructors holds) is detached and counted.
fn join_until_deadline(threads: Vec<ThreadHandle<()>>, deadline: Instant) -> Vec<usize> {
    let mut leaked = Vec::new();
    for (index, t) in threads.into_iter().enumerate() {
        while !sys::thread_has_exited(&t) && Instant::now() < deadline {
            std::thread::park_timeout(Duration::from_millis(1));
        }
        if sys::thread_has_exited(&t) {
            let _ = t.join(); // workers catch task panics; nothing to report
        } else {
            leaked.push(index); // detached: exits when (if) its task returns
        }
    }
    leaked
}

/// `cond`, or the deadline's timer (which the current-thread worker loop
/// drives), whichever comes first.
struct WaitFor<C> {
    cond: C,
    sleep: Sleep,
}

impl<C: FnMut(&mut Context<'_>) -> Poll<()> + Unpin> Future for WaitFor<C> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if (self.cond)(cx).is_ready() {
            return Poll::Ready(());
        }
        Pin::new(&mut self.sleep).poll(cx)
    }
}

/// Resolves when the current runtime starts shutting down (step 1), so a
/// server can stop accepting and finish its in-flight requests.
///
/// # Panics
///
/// When polled outside a runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rt = ebbtide::runtime::Runtime::new()?;
/// let server = rt.spawn(async {
///     ebbtide::runtime::shutdown_requested().await;
///     "stopped accepting, finishing up"
/// });
/// rt.handle().begin_shutdown();
/// assert_eq!(rt.block_on(server).unwrap(), "stopped accepting, finishing up");
/// let report = rt.shutdown(Duration::from_secs(1));
/// assert_eq!(report.cancelled, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn shutdown_requested() -> ShutdownRequested {
    ShutdownRequested {
        shared: None,
        key: None,
    }
}

/// The future returned by [`shutdown_requested`].
#[must_use = "futures do nothing unless awaited"]
pub struct ShutdownRequested {
    shared: Option<Arc<Shared>>,
    key: Option<usize>,
}

impl Future for ShutdownRequested {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let shared = this.shared.get_or_insert_with(|| {
            context::with_current(|s| s.cloned()).unwrap_or_else(|| {
                panic!("ebbtide::runtime::shutdown_requested polled outside a runtime")
            })
        });
        shared.lifecycle.poll_requested(&mut this.key, cx)
    }
}

impl Drop for ShutdownRequested {
    fn drop(&mut self) {
        if let (Some(shared), Some(key)) = (&self.shared, self.key) {
            shared.lifecycle.forget(key);
        }
    }
}

impl fmt::Debug for ShutdownRequested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownRequested").finish_non_exhaustive()
    }
}

/// A loom model of the shutdown state machine racing a spawn, a
/// cross-thread wake made under a library's lock (as `Event::notify` wakes)
/// and a `shutdown_requested()` waiter. It runs the real `Lifecycle`,
/// `TaskSet` and task registry (built on `crate::sync`); the executor's
/// queue and async-task's task state are modelled by a small state per
/// task (idle / scheduled / dropped), with the same rules as
/// `Scheduler::schedule` (always queue, never drop inside a wake) and
/// `Catching` (a cancelling poll drops the future, whose `Drop` takes the
/// library's lock).
///
/// Run by `.ci/run`: `RUSTFLAGS="--cfg ebbtide_loom" cargo test --lib loom_`.
#[cfg(all(test, ebbtide_loom))]
mod loom_model {
    use super::*;
    use crate::executor::registry;
    use crate::executor::TaskSet;
    use loom::sync::atomic::AtomicUsize;
    use std::task::Wake;

    const IDLE: u8 = 0;
    const SCHEDULED: u8 = 1;
    const RUNNING: u8 = 2;
    /// Woken while running: async-task reschedules it after the poll.
    const RUNNING_WOKEN: u8 = 3;
    const DROPPED: u8 = 4;

    /// One task: its async-task-like state and what happened to it.
    struct Task {
        state: AtomicU8,
        drops: AtomicUsize,
        polls: AtomicUsize,
        slot: AtomicUsize,
    }

    struct World {
        life: Lifecycle,
        tasks: TaskSet,
        queue: loom::sync::Mutex<Vec<Arc<Task>>>,
        /// A library's lock (event-listener's list): held by whoever calls
        /// `wake` from `notify`, and taken by a task's `Drop`.
        foreign: loom::sync::Mutex<()>,
    }

    struct TaskWaker {
        world: Arc<World>,
        task: Arc<Task>,
    }

    impl Wake for TaskWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            let state = &self.task.state;
            loop {
                let (from, to) = match state.load(Ordering::Acquire) {
                    IDLE => (IDLE, SCHEDULED),
                    RUNNING => (RUNNING, RUNNING_WOKEN),
                    // Already scheduled: async-task still writes the state
                    // (a same-value compare-exchange, AcqRel) so that the
                    // thread that runs the task next sees everything before
                    // this wake, the cancel flag included. Without it, this
                    // model loses the cancel (loom found it).
                    s @ (SCHEDULED | RUNNING_WOKEN) => (s, s),
                    _ => return, // dropped
                };
                if state
                    .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    if from == IDLE {
                        self.world.schedule(self.task.clone());
                    }
                    return;
                }
            }
        }
    }

    impl World {
        /// `Scheduler::schedule`: queue, or drop once cancelling.
        fn schedule(&self, task: Arc<Task>) {
            // Queue, always: a wake never drops a future (it may run under
            // a library's lock, `foreign`, which the future's drop takes).
            self.queue.lock().unwrap().push(task);
        }

        /// `Catching`'s drop of the future: exactly once. Like a dropped
        /// `EventListener`, the future's `Drop` takes the library's lock.
        fn drop_task(&self, task: &Task) {
            drop(self.foreign.lock().unwrap());
            task.state.store(DROPPED, Ordering::Release);
            task.drops.fetch_add(1, Ordering::AcqRel);
            self.tasks.task_dropped(task.slot.load(Ordering::Acquire));
        }

        /// A worker: polls queued tasks; a cancelling poll drops the future,
        /// otherwise the task parks again (pending), registering itself the
        /// first time (`Catching::poll`, registry step 2).
        fn run_queue(self: &Arc<Self>) {
            loop {
                let Some(task) = self.queue.lock().unwrap().pop() else {
                    return;
                };
                // async-task's `run` takes the task with an AcqRel update.
                task.state.swap(RUNNING, Ordering::AcqRel);
                if self.tasks.is_cancelling() {
                    self.drop_task(&task);
                    continue;
                }
                task.polls.fetch_add(1, Ordering::AcqRel); // returned Pending
                if task.slot.load(Ordering::Acquire) == registry::LAZY {
                    let waker = std::task::Waker::from(Arc::new(TaskWaker {
                        world: self.clone(),
                        task: task.clone(),
                    }));
                    let slot = self.tasks.register_parked(&waker);
                    task.slot.store(slot, Ordering::Release);
                }
                let parked = task
                    .state
                    .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if !parked {
                    // Woken during the poll: scheduled again.
                    task.state.store(SCHEDULED, Ordering::Release);
                    self.schedule(task);
                }
            }
        }

        /// `Shared::spawn`: refused once shutting down, else counted and
        /// scheduled (registered when it first parks).
        fn spawn(self: &Arc<Self>) -> Option<Arc<Task>> {
            if self.life.is_shutting_down() {
                return None;
            }
            let task = Arc::new(Task {
                state: AtomicU8::new(SCHEDULED),
                drops: AtomicUsize::new(0),
                polls: AtomicUsize::new(0),
                slot: AtomicUsize::new(registry::LAZY),
            });
            self.tasks.alive.fetch_add(1, Ordering::Relaxed);
            self.schedule(task.clone());
            Some(task)
        }
    }

    struct Flag(AtomicUsize);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::AcqRel);
        }
    }

    #[test]
    fn loom_shutdown_races_a_spawn_a_wake_and_a_waiter() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let world = Arc::new(World {
                life: Lifecycle::new(),
                tasks: TaskSet::new(1),
                queue: loom::sync::Mutex::new(Vec::new()),
                foreign: loom::sync::Mutex::new(()),
            });
            // A task parked on some event before shutdown starts.
            let parked = world.spawn().expect("running");
            world.run_queue();
            let parked_waker = std::task::Waker::from(Arc::new(TaskWaker {
                world: world.clone(),
                task: parked.clone(),
            }));

            // Another thread spawns a task, then wakes the parked one under
            // the library's lock, as `Event::notify` does. If that wake
            // dropped the (cancelled) task, its `Drop` would take the same
            // lock on the same thread: loom reports the deadlock.
            let w = world.clone();
            let spawner = loom::thread::spawn(move || {
                let spawned = w.spawn();
                let notify = w.foreign.lock().unwrap();
                parked_waker.wake();
                drop(notify);
                w.run_queue();
                spawned
            });
            // A `shutdown_requested()` waiter on a third thread.
            let w = world.clone();
            let waiter = loom::thread::spawn(move || {
                let flag = Arc::new(Flag(AtomicUsize::new(0)));
                let waker = std::task::Waker::from(flag.clone());
                let mut key = None;
                let ready = w
                    .life
                    .poll_requested(&mut key, &mut Context::from_waker(&waker))
                    .is_ready();
                (ready, flag)
            });

            // Shutdown: steps 1 and 3 (a zero drain deadline).
            assert!(world.life.begin());
            world.life.announce_if_begun();
            world.life.advance(Stage::Cancelling);
            for w in world.tasks.start_cancelling() {
                w.wake();
            }
            world.run_queue();

            let spawned = spawner.join().unwrap();
            let (ready, flag) = waiter.join().unwrap();
            world.run_queue(); // the final drain (step 5)

            // The waiter was either ready at once or woken: never lost.
            assert!(ready || flag.0.load(Ordering::Acquire) == 1);
            // Every task that was admitted is dropped exactly once, and
            // nothing is alive afterwards.
            assert_eq!(parked.drops.load(Ordering::Acquire), 1);
            if let Some(t) = &spawned {
                assert_eq!(t.drops.load(Ordering::Acquire), 1);
            }
            assert_eq!(world.tasks.alive.load(Ordering::Acquire), 0);
            assert!(world.queue.lock().unwrap().is_empty());
            // The cancel step emptied and closed the registry.
            assert_eq!(world.tasks.registry.len(), 0);
        });
    }
}

#[cfg(all(test, not(ebbtide_loom)))]
mod tests {
    use std::io;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    use crate::op::job_not_run;
    use crate::runtime::Runtime;

    fn wait_until(mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(30), "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Step 4 (settle) with a blocking op whose job outlives the deadline:
    /// counted as leaked, and its buffer is dropped only when the job
    /// returns, after shutdown.
    #[test]
    fn shutdown_counts_an_unacknowledged_op_as_leaked_and_never_frees_it_early() {
        struct Buf(Arc<AtomicBool>, Arc<AtomicUsize>);
        impl Drop for Buf {
            fn drop(&mut self) {
                assert!(!self.0.load(Ordering::SeqCst), "dropped while its job ran");
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let ops = rt.handle().shared.ops.clone();
        let (running, dropped) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (tx, rx) = mpsc::channel::<()>();
        let job_running = running.clone();
        let op = ops.blocking(
            Buf(running.clone(), dropped.clone()),
            move |buf| {
                job_running.store(true, Ordering::SeqCst);
                let _ = rx.recv();
                job_running.store(false, Ordering::SeqCst);
                (io::Result::Ok(7usize), buf)
            },
            |buf| (Err(job_not_run()), buf),
        );
        let task = rt.spawn(async move {
            let _ = op.await;
        });
        wait_until(|| running.load(Ordering::SeqCst));
        let report = rt.shutdown(Duration::from_millis(10));
        assert_eq!(report.ops_cancelled, 1, "{report}");
        assert_eq!(report.ops_leaked, 1, "{report}");
        assert_eq!(report.blocking_leaked, 1, "{report}");
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        tx.send(()).unwrap();
        wait_until(|| dropped.load(Ordering::SeqCst) == 1);
        wait_until(|| ops.table.len() == 0);
        drop(task);
    }
}
