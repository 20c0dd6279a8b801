//! The worker loop, shared by worker threads and by the `block_on` caller of
//! a current-thread runtime.
//!
//! # One iteration
//!
//! 1. If this thread drives a `block_on` future and it was woken, poll it.
//! 2. Take a task: LIFO slot (≤ 3 in a row), local queue, this thread's
//!    `spawn_local` queue, injector; every 61st tick the injector goes first
//!    and the reactor is polled without blocking (timers and I/O make
//!    progress even when no worker is idle).
//! 3. None? Search: steal half of another worker's queue, then the injector.
//! 4. Still none? Park (protocol in `idle`): register idle, re-check, then
//!    either drive the reactor (block in `Poller::wait` until the next timer)
//!    or, if another thread drives it, sleep on the parker.
//!
//! Around every poll the worker publishes what it polls (`NowPolling`) and
//! reads its stall clock after it (`stall`, steps 1–3); a park or a
//! maintenance tick restarts the clock.

use std::cell::{RefCell, RefMut};
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWakerVTable, Wake, Waker};
use std::time::Duration;

use parking::Parker;

use super::park::WakeTarget;
use super::stall::{NowPolling, PollClock};
use super::task::{self, Runnable};
use super::{
    LocalTasks, Producer, ProducerCell, Scheduler, Waiter, LIFO, LOCAL_QUEUE_CAPACITY, PRODUCER,
    WORKER,
};
use crate::reactor::{Drive, Reactor};

/// Ticks between fairness checks of the injector and non-blocking polls of
/// the reactor.
const MAINTENANCE_INTERVAL: u32 = 61;
/// Consecutive LIFO-slot runs before the slot yields to the queue.
const MAX_LIFO_RUNS: u32 = 3;
/// Most tasks moved from the injector to a local queue at once.
const INJECTOR_BATCH: usize = 64;

/// The vtable of the wakers [`MainWake::waker`] makes (null until the
/// first): how [`MainWake::is_waker`] tells them from every other waker.
static MAIN_WAKER_VTABLE: AtomicPtr<RawWakerVTable> = AtomicPtr::new(std::ptr::null_mut());

/// The wake flag of a `block_on` future.
///
/// # Its waker never unwinds
///
/// A `JoinHandle` hands async-task this waker as it is, where any other
/// waker is wrapped first (`crate::wake`, step 3: async-task calls the
/// awaiter's waker inside its abort-on-panic guard). That is sound because
/// every step of this waker is the runtime's own code, none of which
/// panics:
///
/// 1. clone: an `Arc` increment;
/// 2. wake: an atomic swap, then `WakeTarget::unpark` (a lock that ignores
///    poisoning, the parker's unpark, a `Poller::notify` whose error is
///    ignored);
/// 3. drop: an `Arc` decrement; the last one drops the waiter and the
///    reactor reference, which by then holds no user waker or buffer (the
///    runtime's shutdown took them out before it let go of the reactor).
pub(crate) struct MainWake {
    woken: AtomicBool,
    waiter: WakeTarget,
    reactor: Arc<Reactor>,
    /// Where `block_on` was called, for stall reports; `None` for the
    /// runtime's own waits (shutdown), which are not reported.
    site: Option<&'static Location<'static>>,
}

impl MainWake {
    pub(crate) fn new(waiter: Arc<Waiter>, reactor: Arc<Reactor>) -> Arc<MainWake> {
        MainWake::at(waiter, reactor, None)
    }

    /// For a `block_on` called at `site`.
    pub(crate) fn at(
        waiter: Arc<Waiter>,
        reactor: Arc<Reactor>,
        site: Option<&'static Location<'static>>,
    ) -> Arc<MainWake> {
        Arc::new(MainWake {
            woken: AtomicBool::new(true),
            waiter: WakeTarget::new(waiter),
            reactor,
            site,
        })
    }

    /// After a poll of the future: the stall clock's step (or a restart,
    /// for a wait of the runtime's own).
    #[inline]
    pub(crate) fn polled(&self, clock: &mut PollClock, stall: &super::StallDetector) {
        match self.site {
            Some(site) => clock.polled(stall, site, None, true),
            None => clock.restart(),
        }
    }

    /// The waker of the `block_on` future, which a `JoinHandle` passes to
    /// async-task unwrapped (see "Its waker never unwinds").
    #[inline(never)] // one instantiation of the vtable `is_waker` compares with
    pub(crate) fn waker(self: &Arc<Self>) -> Waker {
        let waker = Waker::from(self.clone());
        let vtable: *const RawWakerVTable = waker.vtable();
        MAIN_WAKER_VTABLE.store(vtable.cast_mut(), Ordering::Relaxed);
        waker
    }

    /// Whether `waker` is one [`MainWake::waker`] made. A `false` for such a
    /// waker (were the vtable duplicated) costs only the wrapper it spares;
    /// a `true` holds only for wakers that run this type's code.
    #[inline]
    pub(crate) fn is_waker(waker: &Waker) -> bool {
        std::ptr::eq(waker.vtable(), MAIN_WAKER_VTABLE.load(Ordering::Relaxed))
    }

    /// The `block_on` thread now sleeps on `waiter`.
    pub(crate) fn retarget(&self, waiter: Arc<Waiter>) {
        self.waiter.set(waiter);
    }

    pub(crate) fn take(&self) -> bool {
        self.woken.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn is_set(&self) -> bool {
        self.woken.load(Ordering::SeqCst)
    }

    /// Marks the future as woken without waking anyone (the caller is about
    /// to poll it).
    pub(crate) fn wake_by_ref_flag(&self) {
        self.woken.store(true, Ordering::SeqCst);
    }
}

impl Wake for MainWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::SeqCst) {
            self.waiter.unpark(&self.reactor);
        }
    }
}

/// A thread running as worker `index` of a scheduler.
///
/// # Invariant
///
/// At most one `Worker` per index exists at a time (`claim` takes the
/// slot's parker and queue `Producer`, `drop` gives them back, both under
/// the slot's mutex), so its thread is the only one that pushes to and pops
/// from that worker's run queue.
pub(crate) struct Worker<'a> {
    sched: &'a Arc<Scheduler>,
    index: usize,
    /// Given back to the slot on drop.
    parker: Option<Parker>,
    /// The producer of this worker's local queue, shared with the schedule
    /// path on this thread (`PRODUCER`); given back with `parker`.
    producer: ProducerCell,
    local: Rc<LocalTasks>,
    tick: u32,
    lifo_runs: u32,
    searching: bool,
    /// Polls not yet added to the shared counter.
    polls: u64,
    /// When the last poll ended (`stall`).
    clock: PollClock,
    /// This worker's slot's `NowPolling`.
    now_polling: &'a NowPolling,
    rng: u32,
}

impl<'a> Worker<'a> {
    /// Takes worker `index`'s parker and marks this thread as that worker,
    /// until the `Worker` is dropped (also on unwind). `local`: this thread's
    /// existing `!Send` tasks, retargeted to wake the slot (a `block_on`
    /// thread taking over a current-thread runtime). `None` if another
    /// thread already runs as that worker.
    pub(crate) fn claim(
        sched: &'a Arc<Scheduler>,
        index: usize,
        local: Option<Rc<LocalTasks>>,
    ) -> Option<Worker<'a>> {
        let slot = &sched.workers[index];
        let (parker, producer) = slot
            .owner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        let producer = Rc::new(RefCell::new(Some(producer)));
        WORKER.with(|w| w.set((&**sched as *const Scheduler, index)));
        // At thread exit the thread-local may be gone: then this thread's
        // wakes go to the injector (`Scheduler::push_here`).
        let _ = PRODUCER.try_with(|p| *p.borrow_mut() = Some(producer.clone()));
        let local = match local {
            Some(local) => {
                local.retarget(slot.waiter.clone());
                local
            }
            None => Rc::new(LocalTasks::new(sched.clone(), slot.waiter.clone())),
        };
        Some(Worker {
            sched,
            index,
            parker: Some(parker),
            producer,
            local,
            tick: 0,
            lifo_runs: 0,
            searching: false,
            polls: 0,
            clock: PollClock::start(&sched.stall),
            now_polling: &slot.now_polling,
            rng: 0x9E37_79B9 ^ (index as u32).wrapping_mul(0x85EB_CA6B),
        })
    }

    pub(crate) fn local(&self) -> &Rc<LocalTasks> {
        &self.local
    }

    pub(crate) fn waiter(&self) -> &Arc<Waiter> {
        &self.sched().workers[self.index].waiter
    }

    /// This worker's end of its local queue, for a push or a pop.
    fn producer(&self) -> RefMut<'_, Producer> {
        RefMut::map(self.producer.borrow_mut(), |p| {
            p.as_mut().expect("held until drop")
        })
    }

    fn sched(&self) -> &'a Scheduler {
        self.sched
    }

    fn reactor(&self) -> &'a Reactor {
        &self.sched.reactor
    }

    /// Runs tasks until `main` completes (current-thread `block_on`) or, for
    /// a worker thread (`main_wake` is `None`), until the runtime stops.
    pub(crate) fn run<F: Future>(
        &mut self,
        mut main: Pin<&mut F>,
        main_wake: Option<&Arc<MainWake>>,
    ) -> Option<F::Output> {
        let main_waker = main_wake.map(MainWake::waker);
        loop {
            if let (Some(flag), Some(waker)) = (main_wake, &main_waker) {
                if flag.take() {
                    let _budget = crate::coop::Scope::task();
                    let poll = main.as_mut().poll(&mut Context::from_waker(waker));
                    flag.polled(&mut self.clock, &self.sched.stall);
                    if let Poll::Ready(v) = poll {
                        return Some(v);
                    }
                }
            } else if self.sched().is_stopping() {
                return None;
            }
            if let Some(r) = self.next_task() {
                self.run_task(r);
                continue;
            }
            if let Some(r) = self.search() {
                self.run_task(r);
                continue;
            }
            self.park(main_wake.map(|m| &**m));
            self.sched().tick();
        }
    }

    fn run_task(&mut self, runnable: Runnable) {
        if self.searching {
            self.searching = false;
            if self.sched().idle.stop_searching() {
                // Last searcher found work: there may be more; fan out.
                self.sched().notify_one();
            }
        }
        self.polls += 1;
        let site = runnable.metadata().site();
        let location = site.location;
        if site.name.is_some() {
            return self.run_named(runnable);
        }
        self.now_polling.enter(location);
        task::run(runnable);
        self.now_polling.leave();
        if let Some(elapsed) = self.clock.lap() {
            self.clock
                .stalled(&self.sched.stall, elapsed, location, None, false);
        }
    }

    /// `run_task` for a named task: its name is published as well, and
    /// held across the poll (the task may be freed by the time it returns).
    #[inline(never)]
    fn run_named(&mut self, runnable: Runnable) {
        let site = runnable.metadata().site();
        let location = site.location;
        if let Some(name) = &site.name {
            self.now_polling.enter_named(location, name);
        }
        task::run(runnable);
        let name = self.now_polling.leave_named();
        self.clock
            .polled(&self.sched.stall, location, name.as_ref(), false);
    }

    /// Step 2 of the module doc.
    fn next_task(&mut self) -> Option<Runnable> {
        let sched = self.sched();
        self.tick = self.tick.wrapping_add(1);
        if self.tick % MAINTENANCE_INTERVAL == 0 {
            self.maintenance();
            if let Some(r) = self.pop_injector() {
                return Some(r);
            }
        }
        if let Some(r) = LIFO.try_with(|s| s.take()).ok().flatten() {
            if self.lifo_runs < MAX_LIFO_RUNS {
                self.lifo_runs += 1;
                return Some(r);
            }
            sched.push_local(&mut self.producer(), r);
        }
        self.lifo_runs = 0;
        if let Some(r) = self.producer().pop() {
            return Some(r);
        }
        if let Some(r) = self.local.pop() {
            return Some(r);
        }
        self.pop_injector()
    }

    /// Takes one task from the injector and moves a fair share of the rest
    /// (up to half the local queue's room) into the local queue, so a worker
    /// busy with yielding tasks still drains remote spawns at full speed.
    fn pop_injector(&mut self) -> Option<Runnable> {
        let sched = self.sched();
        let first = sched.injector.pop().ok()?;
        let local = &sched.workers[self.index].queue;
        let room = (LOCAL_QUEUE_CAPACITY / 2).saturating_sub(local.len());
        let share = sched.injector.len() / sched.workers.len() + 1;
        let mut producer = self.producer();
        for _ in 0..room.min(share).min(INJECTOR_BATCH) {
            let Ok(r) = sched.injector.pop() else { break };
            sched.push_local(&mut producer, r);
        }
        Some(first)
    }

    /// Non-blocking reactor poll, if nobody else is driving; and the
    /// shutdown announcement a signal handler cannot make (see
    /// `runtime::shutdown`, step 1).
    fn maintenance(&mut self) {
        self.flush_stats();
        self.reactor().drive(Some(Duration::ZERO), || false, || {});
        self.sched().tick();
        self.clock.restart();
    }

    /// Step 3: steal half of a random other worker's queue.
    fn search(&mut self) -> Option<Runnable> {
        let sched = self.sched();
        if !self.searching {
            if !sched.idle.try_start_searching() {
                return None;
            }
            self.searching = true;
        }
        let n = sched.workers.len();
        let start = self.next_rand() as usize % n;
        for k in 0..n {
            let victim = (start + k) % n;
            if victim == self.index {
                continue;
            }
            if let Some(r) = self.steal_from(victim) {
                sched.workers[self.index]
                    .steals
                    .fetch_add(1, Ordering::Relaxed);
                return Some(r);
            }
        }
        self.pop_injector()
    }

    fn steal_from(&self, victim: usize) -> Option<Runnable> {
        let sched = self.sched();
        let mut producer = self.producer();
        sched.workers[victim]
            .queue
            .steal(|r| sched.push_local(&mut producer, r))
    }

    fn next_rand(&mut self) -> u32 {
        // xorshift32: cheap victim selection, no quality needed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        self.rng
    }

    fn has_work(&self, main: Option<&MainWake>) -> bool {
        self.sched().idle.is_notified(self.index)
            || self.sched().has_shared_work()
            || !self.local.is_empty()
            || main.is_some_and(MainWake::is_set)
            || (main.is_none() && self.sched().is_stopping())
    }

    /// Step 4: the sleep half of the protocol in `idle`.
    fn park(&mut self, main: Option<&MainWake>) {
        self.flush_stats();
        let sched = self.sched();
        sched
            .idle
            .park(self.index, std::mem::take(&mut self.searching));
        if self.has_work(main) {
            self.searching = sched.idle.unpark(self.index);
            return;
        }
        let waiter = self.waiter().clone();
        let mut searching_after = None;
        let drove = self.reactor().drive(
            None,
            || {
                waiter.enter_driver();
                self.has_work(main)
            },
            || {
                waiter.leave_driver();
                // Leave the idle list before waking tasks, so that their
                // wakes rouse *other* workers.
                searching_after = Some(sched.idle.unpark(self.index));
            },
        );
        self.searching = match (drove, searching_after) {
            (Drive::Woke(_), Some(s)) => s,
            _ => {
                self.parker.as_ref().expect("held until drop").park();
                sched.idle.unpark(self.index)
            }
        };
        self.clock.restart();
    }

    fn flush_stats(&mut self) {
        if self.polls > 0 {
            let slot = &self.sched().workers[self.index];
            slot.polls
                .fetch_add(std::mem::take(&mut self.polls), Ordering::Relaxed);
        }
    }
}

impl Drop for Worker<'_> {
    /// Gives the worker identity back (also when a `block_on` future panics):
    /// local tasks are cancelled here, on their own thread; the LIFO task
    /// returns to the shared queue; `block_on` threads waiting for a
    /// current-thread runtime's slot are woken to take it over.
    fn drop(&mut self) {
        self.flush_stats();
        if self.searching {
            self.sched().idle.stop_searching();
        }
        if let Some(r) = LIFO.try_with(|s| s.take()).ok().flatten() {
            self.sched().push_local(&mut self.producer(), r);
        }
        let _ = WORKER.try_with(|w| w.set((std::ptr::null(), 0)));
        let _ = PRODUCER.try_with(|p| p.borrow_mut().take());
        self.local.shutdown();
        let slot = &self.sched().workers[self.index];
        *slot.owner.lock().unwrap_or_else(|e| e.into_inner()) =
            self.parker.take().zip(self.producer.take());
        self.sched().wake_slot_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use std::sync::Arc;

    use super::{Scheduler, Worker};
    use crate::reactor::Reactor;
    use crate::runtime::Runtime;

    /// A one-worker scheduler on its own reactor: the executor alone.
    fn scheduler() -> Arc<Scheduler> {
        let reactor = Arc::new(Reactor::new(None, crate::sys::IoBackend::Auto).expect("a poller"));
        Arc::new(Scheduler::new(1, reactor, Box::new(|| {})))
    }

    /// `claim` hands a worker slot, with the one producer handle of its
    /// local queue, to one thread at a time: no second claim succeeds while
    /// a `Worker` holds it, and dropping the `Worker` gives it back.
    #[test]
    fn a_worker_slot_and_its_queue_producer_are_claimed_once_at_a_time() {
        let sched = &scheduler();
        let first = Worker::claim(sched, 0, None).expect("the slot is free");
        assert!(Worker::claim(sched, 0, None).is_none(), "claimed twice");
        std::thread::scope(|s| {
            s.spawn(|| assert!(Worker::claim(sched, 0, None).is_none(), "claimed twice"));
        });
        drop(first);
        std::thread::scope(|s| {
            s.spawn(|| {
                let next = Worker::claim(sched, 0, None).expect("given back on drop");
                assert!(next.producer().pop().is_none());
            });
        });
    }

    /// Step 1 of "Where a woken task goes", through the producer the
    /// schedule path reaches on a worker's thread: a task woken there takes
    /// the LIFO slot and the one it displaces goes to the local queue; the
    /// `Worker`'s drop queues the LIFO task too, and the next claim runs
    /// both.
    #[test]
    fn a_task_woken_on_a_worker_displaces_the_lifo_task_into_its_local_queue() {
        let sched = &scheduler();
        let queue = &sched.workers[0].queue;
        let worker = Worker::claim(sched, 0, None).expect("the slot is free");
        let first = sched.spawn(async { 1 }, crate::executor::Site::caller(), || true);
        assert_eq!(queue.len(), 0, "the first task takes the LIFO slot");
        let second = sched.spawn(async { 2 }, crate::executor::Site::caller(), || true);
        assert_eq!(queue.len(), 1, "the displaced task is in the local queue");
        drop(worker);
        assert_eq!(queue.len(), 2, "the LIFO task is queued on drop");
        let next = Worker::claim(sched, 0, None).expect("given back on drop");
        while let Some(r) = next.producer().pop() {
            super::task::run(r);
        }
        drop(next);
        let sum =
            futures_lite::future::block_on(async { first.await.unwrap() + second.await.unwrap() });
        assert_eq!(sum, 3);
        assert!(queue.is_empty());
    }

    /// Regression for protocol step 6 in `idle`: a notified worker must not
    /// fall asleep in the poller while counted as searching. Alternates
    /// `block_on` bursts (whose thread competes for injector tasks) with
    /// remote spawns that only workers can run. The race is rare natively
    /// (hence thousands of rounds); Miri's schedules reach it in a few, so
    /// a handful of rounds per seed suffices there.
    #[test]
    fn remote_spawns_after_block_on_bursts_are_never_stranded() {
        let rounds = if cfg!(miri) { 5 } else { 3_000 };
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let (tx, rx) = mpsc::channel();
        for round in 0..rounds {
            rt.block_on(async {
                let hs: Vec<_> = (0..4).map(|_| crate::spawn(crate::yield_now())).collect();
                for h in hs {
                    h.await.unwrap();
                }
            });
            for _ in 0..4 {
                let tx = tx.clone();
                rt.spawn(async move {
                    crate::yield_now().await;
                    tx.send(()).unwrap();
                });
            }
            for _ in 0..4 {
                rx.recv_timeout(Duration::from_secs(if cfg!(miri) { 3_600 } else { 30 }))
                    .unwrap_or_else(|_| {
                        panic!("round {round}: a task was stranded: {:?}", rt.metrics())
                    });
            }
        }
    }
}
