//! The scheduler: per-worker queues, a global injector, idle bookkeeping.
//!
//! # Where a woken task goes
//!
//! 1. Woken on a worker of this runtime, not by itself: into that worker's
//!    LIFO slot (it runs next, while its data is hot); the task it displaces
//!    moves to the back of the worker's local queue, where others can steal it.
//! 2. Woken by itself while running (`yield_now`): the back of the local
//!    queue, so a yielding task never starves the others.
//! 3. Woken anywhere else: the global injector.
//! 4. Then, only if no worker is searching and some worker is idle, one
//!    worker is woken (see `idle` for the protocol) — except after step 2,
//!    where the worker that re-queues the task is awake by definition.
//!
//! Workers take the LIFO slot at most 3 times in a row, then the local
//! queue, then the injector (checked first every 61st tick for fairness;
//! each visit also moves a batch into the local queue), then steal half of
//! another worker's queue. A multi-threaded `block_on` caller also runs
//! injector tasks while its future is pending and some worker is idle.
//!
//! # What a wake never does
//!
//! Libraries call `wake` while holding their own locks (event-listener and
//! async-channel notify under their list lock). So `schedule`, which runs
//! inside every wake of a task, only ever *queues* the runnable:
//!
//! 1. It never drops a runnable (that would drop the task's future, user
//!    code, inside the caller's lock: a future holding a listener on the
//!    same event deadlocks on it). While shutdown cancels tasks, a woken
//!    task is queued like any other; the thread that polls it next (a
//!    worker, or the shutting-down thread, which helps) drops its future
//!    outside every wake (`task`, step 4). One shortcut keeps that rule:
//!    while shutdown's own cancel loop wakes the registered tasks
//!    (`Scheduler::cancel`), a task scheduled *on that thread* is set aside
//!    in `CANCELLED` and polled by the loop right after the wake returns,
//!    not queued (the loop holds no lock; the wake may, so the poll waits
//!    for it to return). That saves a queue round trip per task.
//! 2. Once teardown has closed the injector, a late wake (a task that was
//!    running on a detached worker) hands the runnable to the `Graveyard`,
//!    whose reaper thread drops it: still never inside the wake.
//! 3. No lock is held while a task is polled or dropped, or a waker is
//!    called; every waker the runtime calls is panic-isolated
//!    (`crate::wake`).

mod idle;
mod join;
mod local;
mod park;
pub(crate) mod registry;
mod ring;
mod stall;
pub(crate) mod task;
mod taskset;
mod worker;

pub use join::{JoinError, JoinHandle};
pub(crate) use local::LocalTasks;
pub(crate) use park::Waiter;
pub use stall::StallReport;
pub(crate) use stall::{PollClock, StallDetector, StallHook};
pub(crate) use task::Site;
pub(crate) use worker::{MainWake, Worker};

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_task::ScheduleInfo;
use concurrent_queue::ConcurrentQueue;
use parking::Parker;

use crate::reactor::Reactor;
use idle::Idle;
use ring::Ring;
use task::{Catching, MetaRef, Runnable, TaskMeta};
pub(crate) use taskset::TaskSet;

/// Capacity of each worker's local queue; overflow goes to the injector.
const LOCAL_QUEUE_CAPACITY: usize = 256;

/// The producer handle of a worker's local queue: whoever holds it pushes
/// and pops (`ring::Local`).
type Producer = ring::Local<Runnable, LOCAL_QUEUE_CAPACITY>;

/// A `Producer` held by a `Worker` and shared with the schedule path on its
/// thread (`PRODUCER`); `None` once the `Worker` has given it back.
type ProducerCell = Rc<RefCell<Option<Producer>>>;

/// One worker's slots in the shared scheduler.
pub(crate) struct WorkerSlot {
    /// Its local run queue, the part anyone may use: other workers steal
    /// half of it (`ring`). Pushes and pops go through the `Producer` in
    /// `owner`.
    pub(crate) queue: Arc<Ring<Runnable, LOCAL_QUEUE_CAPACITY>>,
    /// How to wake it.
    pub(crate) waiter: Arc<Waiter>,
    /// Its parker and the one `Producer` of `queue`, taken together by the
    /// thread that runs as this worker and given back when it stops, so
    /// that thread is the queue's only owner.
    pub(crate) owner: Mutex<Option<(Parker, Producer)>>,
    /// Tasks polled (flushed from the worker's local count when it parks).
    pub(crate) polls: AtomicU64,
    /// Successful steals by this worker.
    pub(crate) steals: AtomicU64,
    /// The task it is polling, for shutdown's report of leaked tasks:
    /// written twice per poll, so on a cache line of its own (the fields
    /// above are read by other workers when they steal or wake this one).
    pub(crate) now_polling: crate::sync::Padded<stall::NowPolling>,
}

/// The executor half of a runtime.
pub(crate) struct Scheduler {
    /// Tasks woken outside a worker of this runtime.
    pub(crate) injector: ConcurrentQueue<Runnable>,
    pub(crate) workers: Box<[WorkerSlot]>,
    idle: Idle,
    /// Set at teardown (shutdown step 5): workers exit.
    stopping: AtomicBool,
    /// `block_on` threads waiting to take over worker 0 of a current-thread
    /// runtime; woken whenever a worker slot is given back.
    slot_waiters: Mutex<Vec<Arc<Waiter>>>,
    pub(crate) tasks: Arc<TaskSet>,
    /// Step 2 of "What a wake never does": runnables woken after teardown.
    graveyard: Arc<Graveyard>,
    /// The reactor idle workers park on (one of them drives it).
    pub(crate) reactor: Arc<Reactor>,
    /// Reports task polls that run too long (`stall`).
    pub(crate) stall: StallDetector,
    /// Run by workers on every maintenance tick and after every park: the
    /// layer above does there what must not wait for a task (the runtime
    /// announces a shutdown that a signal handler began).
    on_tick: Box<dyn Fn() + Send + Sync>,
}

thread_local! {
    /// The scheduler and worker index this thread runs as, if any. The
    /// pointer is only compared, never dereferenced.
    static WORKER: Cell<(*const Scheduler, usize)> = const { Cell::new((std::ptr::null(), 0)) };
    /// The current worker's LIFO slot (meaningful only while `WORKER` is set).
    static LIFO: Cell<Option<Runnable>> = const { Cell::new(None) };
    /// The current worker's local queue producer, shared with its `Worker`:
    /// set and cleared with `WORKER`.
    static PRODUCER: RefCell<Option<ProducerCell>> = const { RefCell::new(None) };
    /// While `Scheduler::cancel` runs on this thread: that scheduler, and the
    /// runnables its wakes scheduled here, to poll once each wake returns.
    static CANCELLED: RefCell<Option<(*const Scheduler, Vec<Runnable>)>> =
        const { RefCell::new(None) };
}

impl Scheduler {
    pub(crate) fn new(
        workers: usize,
        reactor: Arc<Reactor>,
        on_tick: Box<dyn Fn() + Send + Sync>,
    ) -> Scheduler {
        let count = workers;
        let workers = (0..count)
            .map(|_| {
                let (parker, waiter) = Waiter::pair();
                let (queue, producer) = ring::new();
                WorkerSlot {
                    queue,
                    waiter: Arc::new(waiter),
                    owner: Mutex::new(Some((parker, producer))),
                    polls: AtomicU64::new(0),
                    steals: AtomicU64::new(0),
                    now_polling: crate::sync::Padded(stall::NowPolling::new()),
                }
            })
            .collect();
        Scheduler {
            injector: ConcurrentQueue::unbounded(),
            idle: Idle::new(count),
            workers,
            stopping: AtomicBool::new(false),
            slot_waiters: Mutex::new(Vec::new()),
            tasks: Arc::new(TaskSet::new(count)),
            graveyard: Arc::new(Graveyard::new()),
            reactor,
            stall: StallDetector::off(),
            on_tick,
        }
    }

    /// Reports task polls that run too long with `stall` (off by default).
    pub(crate) fn with_stall(mut self, stall: StallDetector) -> Scheduler {
        self.stall = stall;
        self
    }

    /// Shutdown, after the join: the spawn site of the task worker `index`
    /// is stuck in, if it never returned from a poll.
    pub(crate) fn stuck_task(&self, index: usize) -> Option<Site> {
        self.workers.get(index)?.now_polling.take()
    }

    /// The layer above's per-tick work (see `on_tick`).
    pub(crate) fn tick(&self) {
        (self.on_tick)();
    }

    /// The index of the worker the current thread runs as, for this scheduler.
    fn current_worker(&self) -> Option<usize> {
        let (sched, index) = WORKER.try_with(Cell::get).unwrap_or((std::ptr::null(), 0));
        std::ptr::eq(sched, self).then_some(index)
    }

    /// Steps 1–4 of the module doc. Runs inside a wake, perhaps under the
    /// waker's caller's lock: it only queues (see "What a wake never does").
    pub(crate) fn schedule(&self, runnable: Runnable, info: ScheduleInfo) {
        let Some(runnable) = self.set_aside_if_cancelling(runnable) else {
            return;
        };
        match self.current_worker() {
            Some(_) if !info.woken_while_running => {
                let mut runnable = Some(runnable);
                // `try_with`: a worker being torn down at thread exit has no
                // LIFO slot any more; its local queue may still work.
                let prev = LIFO
                    .try_with(|slot| slot.replace(runnable.take()))
                    .unwrap_or_else(|_| runnable.take());
                let Some(prev) = prev else {
                    return; // only this worker can run the LIFO slot: no wake
                };
                self.push_here(prev);
            }
            Some(_) => {
                // A self-wake (`yield_now`): this worker runs it again soon;
                // whatever else is queued was announced when it was pushed.
                self.push_here(runnable);
                return;
            }
            None => {
                // The injector is unbounded and closed only at teardown.
                if let Err(e) = self.injector.push(runnable) {
                    self.graveyard.bury(e.into_inner());
                    return;
                }
            }
        }
        self.notify_one();
    }

    /// Step 1's shortcut: inside this scheduler's cancel loop, on its
    /// thread, keeps `runnable` for the loop; otherwise hands it back.
    fn set_aside_if_cancelling(&self, runnable: Runnable) -> Option<Runnable> {
        if !self.tasks.is_cancelling() {
            return Some(runnable);
        }
        let mut runnable = Some(runnable);
        let _ = CANCELLED.try_with(|c| match &mut *c.borrow_mut() {
            Some((sched, set_aside)) if std::ptr::eq(*sched, self) => {
                set_aside.extend(runnable.take());
            }
            _ => {}
        });
        runnable
    }

    /// Shutdown's cancel step on the calling thread (not a worker): wakes
    /// each of `wakers` (panic-isolated) and, after each wake returns, polls
    /// the tasks it scheduled here, each poll dropping a future; what they
    /// wake in turn is polled the same way.
    pub(crate) fn cancel(&self, wakers: Vec<std::task::Waker>) {
        // At thread exit (a runtime dropped by a thread-local's destructor)
        // the slot may be gone: then nothing is set aside and the woken
        // tasks are simply queued.
        let _ =
            CANCELLED.try_with(|c| *c.borrow_mut() = Some((self as *const Scheduler, Vec::new())));
        let mut batch = Vec::new();
        for w in wakers {
            crate::wake::wake(w);
            loop {
                take_set_aside(&mut batch);
                if batch.is_empty() {
                    break;
                }
                for r in batch.drain(..) {
                    task::run(r); // no lock held, no wake in progress
                }
            }
        }
        let _ = CANCELLED.try_with(|c| *c.borrow_mut() = None);
    }

    /// Steps 1–2: queues `runnable` on the local queue of the worker this
    /// thread runs as, through `PRODUCER`; on the injector if that queue is
    /// full or out of reach (the thread-local is gone at thread exit).
    fn push_here(&self, runnable: Runnable) {
        let mut runnable = Some(runnable);
        let _ = PRODUCER.try_with(|p| {
            // Not borrowed already: the `Worker` borrows it only around a
            // queue operation, which runs no task code and wakes nothing.
            if let Some(cell) = &*p.borrow() {
                if let Some(producer) = cell.borrow_mut().as_mut() {
                    self.push_local(producer, runnable.take().expect("pushed once"));
                }
            }
        });
        if let Some(r) = runnable {
            self.push_overflow(r);
        }
    }

    /// Queues `runnable` on `producer`'s queue (the calling worker's own),
    /// or on the injector when it is full.
    fn push_local(&self, producer: &mut Producer, runnable: Runnable) {
        if let Err(r) = producer.push(runnable) {
            self.push_overflow(r);
        }
    }

    /// Queues on the injector what a local queue could not take.
    fn push_overflow(&self, runnable: Runnable) {
        if let Err(e) = self.injector.push(runnable) {
            self.graveyard.bury(e.into_inner());
        }
    }

    /// Wakes one idle worker if nobody is searching (protocol step 1–2).
    pub(crate) fn notify_one(&self) {
        if !self.idle.needs_notify() {
            return;
        }
        if let Some(index) = self.idle.pop_for_notify() {
            self.workers[index].waiter.unpark(&self.reactor);
        }
    }

    /// Whether any shared queue holds a task (the re-check of step 4).
    pub(crate) fn has_shared_work(&self) -> bool {
        !self.injector.is_empty() || self.workers.iter().any(|w| !w.queue.is_empty())
    }

    /// Registers `waiter` to be woken when a worker slot is given back.
    /// Register *before* checking `slot_is_free`: the two locks order it
    /// against `wake_slot_waiters`, so no hand-over is missed.
    pub(crate) fn wait_for_slot(&self, waiter: &Arc<Waiter>) {
        let mut waiters = self.slot_waiters.lock().unwrap_or_else(|e| e.into_inner());
        if !waiters.iter().any(|w| Arc::ptr_eq(w, waiter)) {
            waiters.push(waiter.clone());
        }
    }

    pub(crate) fn slot_is_free(&self, index: usize) -> bool {
        self.workers[index]
            .owner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn wake_slot_waiters(&self) {
        let waiters =
            std::mem::take(&mut *self.slot_waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for w in waiters {
            w.unpark(&self.reactor);
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Teardown: refuse new work and wake every worker so it exits.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for w in self.workers.iter() {
            w.waiter.unpark(&self.reactor);
        }
        self.reactor.notify();
    }

    /// Drops every queued task (after the workers have exited), on the
    /// calling thread; later wakes go to the graveyard.
    pub(crate) fn drain(&self) {
        self.injector.close();
        while let Ok(r) = self.injector.pop() {
            drop(r);
        }
        let mut stolen = Vec::new();
        for w in self.workers.iter() {
            // Safe with a leaked worker still running: drain only steals.
            // Collected first: no future is dropped inside the ring's claim.
            w.queue.drain(|r| stolen.push(r));
        }
        drop(stolen);
    }

    /// Shutdown's cancel step, on the shutting-down thread: runs queued
    /// tasks from the injector (each poll drops a cancelled task's future),
    /// so cancellation proceeds even when every worker is stuck in a task.
    pub(crate) fn run_injector_cancelling(&self) {
        while let Ok(r) = self.injector.pop() {
            task::run(r);
        }
    }

    pub(crate) fn idle_workers(&self) -> usize {
        self.idle.idle_count()
    }
}

/// Moves what `Scheduler::cancel`'s wakes set aside on this thread into
/// `batch` (which keeps its capacity across swaps).
fn take_set_aside(batch: &mut Vec<Runnable>) {
    let _ = CANCELLED.try_with(|c| {
        if let Some((_, set_aside)) = &mut *c.borrow_mut() {
            std::mem::swap(set_aside, batch);
        }
    });
}

/// Runnables scheduled after teardown closed the injector (step 2 of "What
/// a wake never does"): a wake may not drop them, nobody will run them, so
/// a short-lived reaper thread drops them.
struct Graveyard {
    runnables: ConcurrentQueue<Runnable>,
    /// A reaper thread is draining `runnables`.
    reaping: AtomicBool,
}

impl Graveyard {
    fn new() -> Graveyard {
        Graveyard {
            runnables: ConcurrentQueue::unbounded(),
            reaping: AtomicBool::new(false),
        }
    }

    /// Queues `runnable` for the reaper, starting one if none runs.
    fn bury(self: &Arc<Self>, runnable: Runnable) {
        // Unbounded and never closed: this cannot fail.
        if let Err(e) = self.runnables.push(runnable) {
            std::mem::forget(e.into_inner());
        }
        if self.reaping.swap(true, Ordering::AcqRel) {
            return; // the running reaper re-checks the queue before it exits
        }
        let graveyard = self.clone();
        let started = std::thread::Builder::new()
            .name("ebbtide-reaper".into())
            .spawn(move || graveyard.reap());
        if started.is_err() {
            // No thread to be had: keeping the runnables (leaking them if no
            // later reaper starts) is sound; dropping them here is not.
            self.reaping.store(false, Ordering::Release);
        }
    }

    fn reap(&self) {
        loop {
            while let Ok(r) = self.runnables.pop() {
                drop(r); // `Catching` catches a panicking `Drop`
            }
            self.reaping.store(false, Ordering::SeqCst);
            // A `bury` between the last pop and the store saw `reaping` set
            // and left its runnable to us.
            if self.runnables.is_empty() || self.reaping.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }
}

impl Scheduler {
    /// Spawns a `Send` task, spawned at `site`. `admit` is asked once the
    /// task exists: `false` (the runtime is draining) cancels it at once,
    /// and its handle resolves as cancelled.
    pub(crate) fn spawn<F>(
        self: &Arc<Self>,
        future: F,
        site: Site,
        admit: impl FnOnce() -> bool,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let tasks = &self.tasks;
        tasks.spawned.fetch_add(1, Ordering::Relaxed);
        let tasks = tasks.clone();
        let sched = self.clone();
        let schedule = move |r: Runnable, info: ScheduleInfo| {
            sched.schedule(r, info);
        };
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::registered_lazily(site))
            .spawn(
                move |meta: &TaskMeta| Catching::new(future, tasks, MetaRef::new(meta)),
                async_task::WithInfo(schedule),
            );
        let handle = JoinHandle::new(&runnable, task);
        if !admit() {
            // Draining: no new work. Dropping the runnable cancels the task;
            // the handle resolves as cancelled.
            drop(runnable);
            return handle;
        }
        // The registry entry is made when the task first parks (`registry`).
        runnable.schedule();
        handle
    }
}

/// Yields once to the scheduler: the task goes to the back of its worker's
/// queue, letting every other ready task run first.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     for _ in 0..3 {
///         ebbtide::yield_now().await;
///     }
/// });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
