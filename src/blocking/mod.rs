//! The blocking pool: threads for work that would stall a worker (blocking
//! syscalls, CPU-heavy sections, file I/O on Unix).
//!
//! 1. `spawn_blocking` wraps the closure in a task (so it gets a
//!    `JoinHandle` like any other) and queues its
//!    runnable here.
//! 2. A thread that finishes a job takes the next queued one, and when
//!    the queue is empty it first *spins* (at most one thread per two
//!    cores, for at most `SPIN`, yielding the core between looks) before
//!    it sleeps: short jobs submitted in a stream (cached file reads, a
//!    `stat`) are picked up by the spinner with no futex and no context
//!    switch on either side.
//! 3. Queuing a job wakes nobody while there are at least as many threads
//!    *coming* for jobs as queued jobs: spinning, notified, or started and
//!    not yet looking; each takes one. Otherwise, while fewer than
//!    `target` threads are *working* (running a job, on their way to one,
//!    or spinning) not counting the ones the monitor found blocked (step
//!    4), an idle thread not already notified is notified, or else a new
//!    thread is started, up to `max_blocking_threads`. Past `target` the
//!    job waits in the queue for a working thread to finish its job, and
//!    the monitor is told to watch. `target` is one thread per core (at
//!    least 2): short jobs are CPU work, and more threads than cores only
//!    preempt each other and the workers (measured with cached 4 KiB reads
//!    from 64 tasks on 2 cores: 0.07–0.11 context switches per read with 2,
//!    0.15–0.18 with 4, 0.6 with a thread per waiting job). Counting the threads already on their
//!    way is what keeps the pool small on a loaded machine, where a
//!    notified thread may wait milliseconds for a core: without it every
//!    job queued meanwhile would start one more thread. A spinner that
//!    gives up leaves the spinning count and looks at the queue once more
//!    *under the lock*, the lock `push` holds while it reads the count: so
//!    either `push` saw the spinner (and the job is in the queue when the
//!    spinner looks) or the spinner had left (and `push` woke or started a
//!    thread, or told the monitor).
//! 4. The monitor (one thread per pool, started by the first job that
//!    waits past `target`) keeps jobs from waiting behind threads that
//!    block. Every thread counts the jobs it starts and finishes in its
//!    own slot (odd: in a job). While jobs wait, the monitor looks at the
//!    slots every `TICK` (100 µs; the tick doubles up to `MAX_TICK` while
//!    the queue is empty), reading its own copy of the list outside the
//!    lock (refreshed under it only when a thread came or went): a thread in the same job as at its last look is
//!    *blocked* (sleeping, waiting on the disk or on another job) and no
//!    longer counts as working, so the monitor wakes or starts threads for
//!    the waiting jobs (step 3) until `target` threads work again. After
//!    `LINGER` ticks with an empty queue it sleeps until a job waits again,
//!    and after `keep_alive` asleep it exits. Short jobs in a stream (cached
//!    reads, `stat`) are thus run by about `target` threads that take job
//!    after job with no futex in between, and a job that blocks costs the
//!    others at most a few ticks: the pool grows until `target` threads
//!    make progress, and no job waits in the queue for longer than that
//!    while a thread could be started. This is Go's answer (a monitor
//!    takes over from threads stuck in system calls) to the blocking pool's
//!    question of how many threads short jobs need.
//! 5. A thread idle for `keep_alive` (10 s) exits.
//! 6. At shutdown, queued jobs that never started are cancelled (their
//!    handles resolve as cancelled); running ones are waited for until the
//!    deadline, then left running, detached, and counted. A thread counts
//!    until it has dropped what `ThreadStart` returned (the runtime's stop
//!    hook runs then), so a joined thread has run its stop hook. The
//!    monitor runs no user code; shutdown waits for it to leave too.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::executor::task::{self, Catching, MetaRef, Runnable, Site, TaskMeta};
use crate::executor::{JoinHandle, TaskSet};
use crate::op::{Job, JobQueue};

/// Run first on every new pool thread (the runtime makes itself current
/// there, so a job may `spawn`, and runs its start hook); what it returns is
/// dropped when the thread leaves its loop (the stop hook), before it stops
/// counting for `shutdown` (step 6).
pub(crate) type ThreadStart = Box<dyn Fn() -> Box<dyn Any> + Send + Sync>;

/// The blocking pool of one runtime.
pub(crate) struct BlockingPool {
    /// This pool, for the threads it starts and the jobs it wraps.
    this: Weak<BlockingPool>,
    on_thread_start: ThreadStart,
    state: Mutex<State>,
    /// Idle threads wait here for jobs.
    work: Condvar,
    /// The monitor waits here for its next tick, or, asleep, for a job
    /// that waits (step 4).
    watch: Condvar,
    /// `shutdown` waits here for running threads to finish.
    exited: Condvar,
    max_threads: usize,
    /// How many threads work on jobs before a job waits for one (step 3):
    /// one per core, at least 2.
    target: usize,
    keep_alive: Duration,
    thread_name: String,
    /// Threads spinning for a job (step 2); changed only under `state`'s
    /// lock when a spinner gives up (step 3).
    spinning: AtomicUsize,
    /// How many threads may spin at once.
    max_spinning: usize,
    /// `state.queue.len()`, written under the lock, read by spinners
    /// without it.
    queued: AtomicUsize,
}

/// How long a pool thread with nothing to do looks for a job before it
/// sleeps (step 2): longer than the hand-off of a job submitted in a
/// stream, far shorter than the futex sleep and wake it saves.
const SPIN: Duration = Duration::from_micros(50);

/// The monitor's first tick after a job waits (step 4): a thread in the
/// same job for this long is taken as blocked. Short enough that a job
/// behind a blocked thread waits a fraction of a millisecond; long enough
/// that a cached read or a `stat` (a few µs, preemption aside) is never
/// mistaken for one.
const TICK: Duration = Duration::from_micros(100);

/// The monitor's longest tick: each tick that finds the queue empty
/// doubles the next (up to this), so a pool whose queue empties between
/// bursts does not wake its monitor ten thousand times a second.
const MAX_TICK: Duration = Duration::from_millis(1);

/// Ticks with an empty queue before the monitor sleeps (step 4).
const LINGER: u32 = 64;

#[derive(Default)]
struct State {
    queue: VecDeque<Runnable>,
    threads: usize,
    idle: usize,
    /// Idle threads already notified (so a second job starts a thread).
    notified: usize,
    /// Threads started and not yet at their first look at the queue.
    starting: usize,
    /// Threads that left their loop (no longer in `threads`, so a new job
    /// starts a thread) and are dropping what `on_thread_start` returned;
    /// `shutdown` waits for them too.
    exiting: usize,
    /// Threads the monitor found in the same job at two ticks (step 4).
    blocked: usize,
    /// Each live thread's slot (step 4).
    slots: Vec<Arc<Slot>>,
    /// `slots` changed since the monitor last copied it.
    slots_changed: bool,
    monitor: Monitor,
    shutdown: bool,
}

/// One pool thread's progress, as the monitor sees it (step 4).
#[derive(Default)]
struct Slot {
    /// Jobs started plus jobs finished, written by the thread: odd while
    /// it is in a job.
    jobs: AtomicU64,
    /// `jobs` at the monitor's last look; only the monitor uses it.
    seen: AtomicU64,
}

impl Slot {
    /// Whether the thread is in the job it was in at the last look (and
    /// remembers this look for the next).
    fn is_blocked(&self) -> bool {
        let now = self.jobs.load(Ordering::Relaxed);
        let seen = self.seen.swap(now, Ordering::Relaxed);
        now % 2 == 1 && now == seen
    }
}

/// What the monitor does (step 4).
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
enum Monitor {
    /// Not started, or gone (asleep for `keep_alive`, or shutdown).
    #[default]
    Absent,
    /// Ticking: jobs waited recently.
    Watching,
    /// Asleep until a job waits.
    Asleep,
}

impl BlockingPool {
    pub(crate) fn new(
        max_threads: usize,
        keep_alive: Duration,
        thread_name: String,
        on_thread_start: ThreadStart,
    ) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new_cyclic(|this| BlockingPool {
            this: this.clone(),
            on_thread_start,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            watch: Condvar::new(),
            exited: Condvar::new(),
            max_threads,
            target: cores.max(2),
            keep_alive,
            thread_name,
            spinning: AtomicUsize::new(0),
            max_spinning: cores,
            queued: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock, so poisoning cannot carry meaning.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job and makes sure a thread will take it (step 3).
    fn push(&self, runnable: Runnable) {
        let mut st = self.lock();
        if st.shutdown {
            drop(st);
            drop(runnable); // cancels the job
            return;
        }
        st.queue.push_back(runnable);
        self.queued.store(st.queue.len(), Ordering::Relaxed);
        let (start, waits) = self.provide(&mut st);
        let watch = waits && self.watch(&mut st);
        drop(st);
        self.start_threads(start);
        if watch {
            self.start_monitor();
        }
    }

    /// Step 3: notifies idle threads for queued jobs that no thread is
    /// coming for, and counts the threads to start (the caller starts them
    /// once the lock is released), while fewer than `target` threads work.
    /// Also returns whether a job still waits because `target` threads
    /// work (so the monitor should watch).
    fn provide(&self, st: &mut State) -> (usize, bool) {
        let mut start = 0;
        loop {
            let coming = self.spinning.load(Ordering::Relaxed) + st.notified + st.starting;
            if st.queue.len() <= coming {
                return (start, false);
            }
            let working = st.threads - st.idle + st.notified;
            if working.saturating_sub(st.blocked) >= self.target {
                return (start, true);
            }
            if st.idle > st.notified {
                st.notified += 1;
                self.work.notify_one();
            } else if st.threads < self.max_threads {
                st.threads += 1;
                st.starting += 1;
                start += 1;
            } else {
                return (start, false); // waits in the queue for a busy thread
            }
        }
    }

    /// Starts `n` threads counted by `provide`.
    fn start_threads(&self, n: usize) {
        for _ in 0..n {
            let this = self.this.clone();
            let spawned = std::thread::Builder::new()
                .name(self.thread_name.clone())
                .spawn(move || {
                    if let Some(pool) = this.upgrade() {
                        pool.thread_main();
                    }
                });
            if spawned.is_err() {
                // Out of threads (EAGAIN): the job stays queued for a live
                // thread, or for the next spawn to retry.
                let mut st = self.lock();
                st.threads -= 1;
                st.starting -= 1;
                drop(st);
                self.exited.notify_all();
            }
        }
    }

    /// Step 4: has the monitor watch; `true` when it must be started.
    fn watch(&self, st: &mut State) -> bool {
        match st.monitor {
            Monitor::Watching => false,
            Monitor::Asleep => {
                st.monitor = Monitor::Watching;
                self.watch.notify_one();
                false
            }
            Monitor::Absent => {
                st.monitor = Monitor::Watching;
                true
            }
        }
    }

    fn start_monitor(&self) {
        let this = self.this.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-monitor", self.thread_name))
            .spawn(move || {
                if let Some(pool) = this.upgrade() {
                    pool.monitor_main();
                }
            });
        if spawned.is_err() {
            // No monitor: the pool grows as if no thread worked, so no job
            // waits on one that blocks.
            let mut st = self.lock();
            st.monitor = Monitor::Absent;
            st.blocked = st.threads;
            let (start, _) = self.provide(&mut st);
            drop(st);
            self.start_threads(start);
            self.exited.notify_all();
        }
    }

    /// The monitor's loop (step 4).
    fn monitor_main(&self) {
        let mut st = self.lock();
        let mut tick = TICK;
        let mut quiet = 0;
        // The slots as last copied: read outside the lock, so a look at
        // hundreds of threads does not hold up `push`.
        let mut watched: Vec<Arc<Slot>> = Vec::new();
        while !st.shutdown {
            if st.monitor == Monitor::Asleep {
                let (guard, timeout) = self
                    .watch
                    .wait_timeout(st, self.keep_alive)
                    .unwrap_or_else(|e| e.into_inner());
                st = guard;
                if timeout.timed_out() && st.monitor == Monitor::Asleep {
                    break;
                }
                tick = TICK;
                quiet = 0;
                continue;
            }
            st = self
                .watch
                .wait_timeout(st, tick)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if st.slots_changed {
                st.slots_changed = false;
                watched.clone_from(&st.slots);
            }
            drop(st);
            // A thread gone since the copy left its slot even: not blocked.
            let blocked = watched.iter().filter(|slot| slot.is_blocked()).count();
            st = self.lock();
            if st.shutdown {
                break;
            }
            st.blocked = blocked;
            let (start, _) = self.provide(&mut st);
            if start > 0 {
                drop(st);
                self.start_threads(start);
                st = self.lock();
            }
            if st.queue.is_empty() {
                tick = (tick * 2).min(MAX_TICK);
                quiet += 1;
                if quiet >= LINGER && st.monitor == Monitor::Watching {
                    // What it knew of blocked threads is stale by the time
                    // it wakes again.
                    st.blocked = 0;
                    st.monitor = Monitor::Asleep;
                }
            } else {
                tick = TICK;
                quiet = 0;
            }
        }
        st.monitor = Monitor::Absent;
        drop(st);
        self.exited.notify_all();
    }

    /// The loop of one pool thread (steps 2, 3 and 5).
    fn thread_main(&self) {
        let started = (self.on_thread_start)();
        let slot = Arc::new(Slot::default());
        let mut jobs = 0;
        let mut st = self.lock();
        st.starting -= 1;
        st.slots.push(slot.clone());
        st.slots_changed = true;
        // Spun since the last job: spin once, then sleep (step 2).
        let mut spun = false;
        loop {
            if let Some(runnable) = st.queue.pop_front() {
                self.queued.store(st.queue.len(), Ordering::Relaxed);
                drop(st);
                jobs += 1;
                slot.jobs.store(jobs, Ordering::Relaxed);
                task::run(runnable);
                jobs += 1;
                slot.jobs.store(jobs, Ordering::Relaxed);
                st = self.lock();
                spun = false;
                continue;
            }
            if st.shutdown {
                break;
            }
            if !spun && self.spinning.load(Ordering::Relaxed) < self.max_spinning {
                spun = true;
                self.spinning.fetch_add(1, Ordering::Relaxed);
                drop(st);
                self.spin();
                st = self.lock();
                self.spinning.fetch_sub(1, Ordering::Relaxed);
                continue; // looks at the queue under the lock (step 3)
            }
            let (guard, got_job) = self.wait_for_job(st);
            st = guard;
            if !got_job {
                break;
            }
        }
        st.slots.retain(|s| !Arc::ptr_eq(s, &slot));
        st.slots_changed = true;
        st.threads -= 1;
        st.exiting += 1;
        drop(st);
        drop(started); // runs user code (the stop hook): outside the lock
        self.lock().exiting -= 1;
        self.exited.notify_all();
    }

    /// Step 2: looks for a queued job for up to `SPIN`, giving the core
    /// away between looks (on a busy machine the job's submitter may need
    /// it); returns when one is seen or the time is up.
    fn spin(&self) {
        let start = Instant::now();
        loop {
            for _ in 0..16 {
                if self.queued.load(Ordering::Relaxed) > 0 {
                    return;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= SPIN {
                return;
            }
            std::thread::yield_now();
        }
    }

    /// Waits as an idle thread; `false` when the thread should exit (idle
    /// for `keep_alive`, or shutdown).
    fn wait_for_job<'a>(&self, mut st: MutexGuard<'a, State>) -> (MutexGuard<'a, State>, bool) {
        st.idle += 1;
        let deadline = Instant::now() + self.keep_alive;
        loop {
            let timeout = deadline.saturating_duration_since(Instant::now());
            st = self
                .work
                .wait_timeout(st, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if st.notified > 0 {
                st.notified -= 1;
                st.idle -= 1;
                return (st, true);
            }
            if st.shutdown || Instant::now() >= deadline {
                st.idle -= 1;
                return (st, false);
            }
        }
    }

    /// Whether a job is queued or running: some thread is neither idle nor
    /// spinning (both counts change only under the lock held here; a
    /// thread still starting counts as busy). A paused clock does not
    /// auto-advance meanwhile (`reactor::clock`): the job may finish and
    /// wake a task before the next timer would have fired.
    pub(crate) fn is_busy(&self) -> bool {
        let st = self.lock();
        !st.queue.is_empty() || st.threads > st.idle + self.spinning.load(Ordering::Relaxed)
    }

    /// Step 6: cancels queued jobs and waits until `deadline` for running
    /// ones and the monitor; returns how many threads were still busy then.
    pub(crate) fn shutdown(&self, deadline: Instant) -> usize {
        let queued: Vec<Runnable> = {
            let mut st = self.lock();
            st.shutdown = true;
            self.queued.store(0, Ordering::Relaxed);
            st.queue.drain(..).collect()
        };
        self.work.notify_all();
        self.watch.notify_all();
        drop(queued); // cancelled outside the lock
        let mut st = self.lock();
        while st.threads + st.exiting > 0 || st.monitor != Monitor::Absent {
            let timeout = deadline.saturating_duration_since(Instant::now());
            if timeout.is_zero() {
                break;
            }
            st = self
                .exited
                .wait_timeout(st, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        st.threads + st.exiting
    }

    /// `(threads, idle, queued)`.
    pub(crate) fn stats(&self) -> (usize, usize, usize) {
        let st = self.lock();
        (st.threads, st.idle, st.queue.len())
    }
}

impl JobQueue for BlockingPool {
    /// Queues an internal job (an I/O op's, see `crate::op`): not a task, so
    /// it has no `JoinHandle` and is not counted in the runtime's task
    /// counts. A job the pool refuses or cancels at shutdown is dropped
    /// unrun; the job's own `Drop` reports that.
    fn push_job(&self, job: Job) {
        let this = self.this.clone();
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::new(Site::caller()))
            .spawn(
                move |_: &TaskMeta| BlockingJob(Some(job)),
                move |r| match this.upgrade() {
                    Some(pool) => pool.push(r),
                    None => drop(r), // the pool is gone: cancelled
                },
            );
        task.detach();
        runnable.schedule();
    }
}

impl BlockingPool {
    /// Step 1: runs `f` on the pool as a task of `tasks`, spawned at `site`.
    pub(crate) fn spawn<F, R>(
        self: &Arc<Self>,
        tasks: &Arc<TaskSet>,
        f: F,
        site: Site,
    ) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        tasks.spawned.fetch_add(1, Ordering::Relaxed);
        let tasks = tasks.clone();
        let pool = self.clone();
        let alive = BlockingAlive::new(tasks.clone());
        let job = move || {
            let _alive = alive;
            f()
        };
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::new(site))
            .spawn(
                move |meta: &TaskMeta| {
                    Catching::new(BlockingJob(Some(job)), tasks, MetaRef::new(meta))
                },
                move |r| pool.push(r),
            );
        let handle = JoinHandle::new(&runnable, task);
        runnable.schedule();
        handle
    }
}

/// Counts a `spawn_blocking` job in `TaskSet::blocking_alive` until it
/// returns or is dropped unrun.
struct BlockingAlive(Arc<TaskSet>);

impl BlockingAlive {
    fn new(tasks: Arc<TaskSet>) -> BlockingAlive {
        tasks.blocking_alive.fetch_add(1, Ordering::Relaxed);
        BlockingAlive(tasks)
    }
}

impl Drop for BlockingAlive {
    fn drop(&mut self) {
        self.0.blocking_alive.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A closure as a future that completes on its first poll.
struct BlockingJob<F>(Option<F>);

impl<F> Unpin for BlockingJob<F> {}

impl<F: FnOnce() -> R, R> Future for BlockingJob<F> {
    type Output = R;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<R> {
        let f = self.0.take().expect("a blocking job runs once");
        std::task::Poll::Ready(f())
    }
}
