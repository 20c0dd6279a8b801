//! Wakeups: none is lost, wakers may be cloned, woken and dropped on any
//! thread, and waking or spawning from a `Drop` impl or from a waker's own
//! `wake` never deadlocks. `yield_now` lets the other ready tasks run.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{current_thread, watchdog, watchdog_for, workers};

/// A million round trips take ~15 s in a debug build; a hang still shows.
const MILLION_WAKES_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);
use ebbtide::runtime::{Handle, Runtime};
use ebbtide::JoinHandle;

/// The state a [`GenerationWaiter`] task and its waking thread share.
#[derive(Default)]
struct PingPong {
    /// Bumped by the waking thread just before each wake.
    generation: AtomicU64,
    /// The highest generation a poll of the task has observed.
    seen: AtomicU64,
    /// The task's current waker.
    waker: Mutex<Option<Waker>>,
    polls: AtomicU64,
}

/// Completes once it has observed generation `target`; every poll records
/// the generation it saw.
struct GenerationWaiter {
    state: Arc<PingPong>,
    target: u64,
}

impl Future for GenerationWaiter {
    type Output = u64;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let st = &self.state;
        st.polls.fetch_add(1, Ordering::SeqCst);
        {
            let mut w = st.waker.lock().unwrap();
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        let g = st.generation.load(Ordering::SeqCst);
        st.seen.fetch_max(g, Ordering::SeqCst);
        if g >= self.target {
            Poll::Ready(st.polls.load(Ordering::SeqCst))
        } else {
            Poll::Pending
        }
    }
}

/// Wakes the task once per generation, each time only after the task has
/// observed the previous one. A lost wakeup leaves the task asleep with an
/// old generation and this loop spinning: the watchdog reports it.
fn wake_every_generation(state: &PingPong, target: u64) {
    for g in 1..=target {
        while state.seen.load(Ordering::SeqCst) < g - 1 {
            std::thread::yield_now();
        }
        state.generation.store(g, Ordering::SeqCst);
        let waker = loop {
            if let Some(w) = state.waker.lock().unwrap().clone() {
                break w;
            }
            std::thread::yield_now();
        };
        if g % 2 == 0 {
            waker.wake();
        } else {
            waker.wake_by_ref();
        }
    }
}

fn a_task_woken_from_another_thread_sees_every_generation(rt: Runtime) {
    // 1,000,000 cross-thread round trips (~15 s in a debug build here).
    // Under Wine each one costs ~10x more, so the Windows run does 100,000.
    let target = if cfg!(windows) { 100_000 } else { 1_000_000 };
    let state = Arc::new(PingPong::default());
    let task = rt.spawn(GenerationWaiter {
        state: state.clone(),
        target,
    });
    let waker_thread = {
        let state = state.clone();
        std::thread::spawn(move || wake_every_generation(&state, target))
    };
    let polls = rt.block_on(task).expect("the task completes");
    waker_thread.join().unwrap();
    assert_eq!(state.seen.load(Ordering::SeqCst), target);
    // Each generation was observed by a poll of its own (the thread waits
    // for it before publishing the next). The first poll may already see
    // generation 1, so `target` polls is the minimum.
    assert!(polls >= target, "{polls} polls for {target} generations");
}

#[test]
fn a_task_woken_a_million_times_from_another_thread_loses_no_wakeup_on_2_workers() {
    watchdog_for(MILLION_WAKES_LIMIT, || {
        a_task_woken_from_another_thread_sees_every_generation(workers(2))
    });
}

#[test]
fn a_task_woken_a_million_times_from_another_thread_loses_no_wakeup_on_current_thread() {
    watchdog_for(MILLION_WAKES_LIMIT, || {
        a_task_woken_from_another_thread_sees_every_generation(current_thread())
    });
}

#[test]
fn a_block_on_future_woken_from_another_thread_loses_no_wakeup() {
    watchdog_for(MILLION_WAKES_LIMIT, || {
        let target = if cfg!(windows) { 100_000 } else { 1_000_000 };
        for rt in [workers(2), current_thread()] {
            let state = Arc::new(PingPong::default());
            let waker_thread = {
                let state = state.clone();
                std::thread::spawn(move || wake_every_generation(&state, target))
            };
            let polls = rt.block_on(GenerationWaiter {
                state: state.clone(),
                target,
            });
            waker_thread.join().unwrap();
            // As in the task version above: the first poll may already see
            // generation 1, so `target` polls is the minimum.
            assert!(polls >= target, "{polls} polls for {target} generations");
        }
    });
}

/// Completes once `done` is set; stores its waker for other threads.
struct WaitForFlag {
    done: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    polls: Arc<AtomicUsize>,
}

impl Future for WaitForFlag {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.done.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// One of the threads of the test below: `ROUNDS` clones of the task's
/// waker, each woken (by value or by reference) or dropped.
fn wake_clone_drop(slot: &Mutex<Option<Waker>>, wakes: &AtomicUsize, t: usize) {
    const ROUNDS: usize = 20_000;
    let mine = loop {
        if let Some(w) = slot.lock().unwrap().clone() {
            break w;
        }
        std::thread::yield_now();
    };
    let mut held = Vec::new();
    for i in 0..ROUNDS {
        let c = mine.clone();
        match (i + t) % 4 {
            0 => {
                c.wake();
                wakes.fetch_add(1, Ordering::Relaxed);
            }
            1 => {
                c.wake_by_ref();
                wakes.fetch_add(1, Ordering::Relaxed);
            }
            2 => held.push(c), // dropped later, in a batch
            _ => drop(c),
        }
        if held.len() == 64 {
            held.clear();
        }
    }
}

#[test]
fn a_waker_cloned_woken_and_dropped_on_many_threads_stays_sound() {
    watchdog(|| {
        const THREADS: usize = 8;
        for common::Flavour { name, rt, .. } in common::flavours() {
            let done = Arc::new(AtomicBool::new(false));
            let slot = Arc::new(Mutex::new(None::<Waker>));
            let polls = Arc::new(AtomicUsize::new(0));
            let (dropped, guard) = common::drop_flag();
            let task = rt.spawn({
                let wait = WaitForFlag {
                    done: done.clone(),
                    waker: slot.clone(),
                    polls: polls.clone(),
                };
                async move {
                    let _guard = guard;
                    wait.await;
                }
            });
            let wakes = Arc::new(AtomicUsize::new(0));
            // The waking threads run while `block_on` awaits the task (a
            // current-thread runtime polls it only then).
            let conductor = {
                let slot = slot.clone();
                let wakes = wakes.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let threads: Vec<_> = (0..THREADS)
                        .map(|t| {
                            let slot = slot.clone();
                            let wakes = wakes.clone();
                            std::thread::spawn(move || wake_clone_drop(&slot, &wakes, t))
                        })
                        .collect();
                    for t in threads {
                        t.join().unwrap();
                    }
                    done.store(true, Ordering::SeqCst);
                    let last = slot.lock().unwrap().clone();
                    if let Some(w) = last {
                        w.wake();
                    }
                })
            };
            rt.block_on(task).unwrap();
            conductor.join().unwrap();
            assert!(
                dropped.load(Ordering::SeqCst),
                "{name}: the future was dropped"
            );
            let polls = polls.load(Ordering::SeqCst);
            let wakes = wakes.load(Ordering::SeqCst);
            assert!(polls >= 2, "{name}: polled {polls} times");
            assert!(
                polls <= wakes + 2, // + the first poll and the final wake
                "{name}: {polls} polls from {wakes} wakes: polled without a wake"
            );
            // The waker stored by the last poll outlives the task: waking it
            // now is a harmless no-op.
            let stored = slot.lock().unwrap().take();
            if let Some(w) = stored {
                w.wake();
            }
        }
    });
}

/// Completes once `go` is set; parks its waker in `slot`.
fn victim(go: Arc<AtomicBool>, slot: Arc<Mutex<Option<Waker>>>) -> impl Future<Output = ()> {
    std::future::poll_fn(move |cx| {
        *slot.lock().unwrap() = Some(cx.waker().clone());
        if go.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
}

/// When dropped: spawns `spawn` tasks (sending their handles) and wakes the
/// victim task.
struct SpawnAndWakeOnDrop {
    handle: Handle,
    spawn: u32,
    handles: mpsc::Sender<JoinHandle<u32>>,
    go: Arc<AtomicBool>,
    victim: Arc<Mutex<Option<Waker>>>,
}

impl Drop for SpawnAndWakeOnDrop {
    fn drop(&mut self) {
        for i in 0..self.spawn {
            let h = self.handle.spawn(async move {
                ebbtide::yield_now().await;
                i
            });
            // The receiver may be gone only if the test already failed.
            let _ = self.handles.send(h);
        }
        self.go.store(true, Ordering::SeqCst);
        if let Some(w) = self.victim.lock().unwrap().take() {
            w.wake();
        }
    }
}

#[test]
fn a_futures_drop_that_spawns_and_wakes_other_tasks_does_not_deadlock() {
    watchdog(|| {
        const SPAWNED: u32 = 50;
        for common::Flavour { name, rt, .. } in common::flavours() {
            for aborted in [false, true] {
                for _round in 0..20 {
                    let go = Arc::new(AtomicBool::new(false));
                    let slot = Arc::new(Mutex::new(None));
                    let (tx, rx) = mpsc::channel();
                    let dropper = SpawnAndWakeOnDrop {
                        handle: rt.handle().clone(),
                        spawn: SPAWNED,
                        handles: tx,
                        go: go.clone(),
                        victim: slot.clone(),
                    };
                    let victim = rt.spawn(victim(go, slot));
                    let values = rt.block_on(async move {
                        let h = ebbtide::spawn(async move {
                            let _d = dropper;
                            if aborted {
                                std::future::pending::<()>().await;
                            }
                            ebbtide::yield_now().await;
                        });
                        if aborted {
                            h.abort();
                            assert!(h.await.unwrap_err().is_cancelled());
                        } else {
                            h.await.unwrap();
                        }
                        // The drop ran before the handle resolved: every
                        // spawned handle is in the channel already.
                        let spawned: Vec<_> = rx.try_iter().collect();
                        assert_eq!(spawned.len(), SPAWNED as usize);
                        let mut values = Vec::new();
                        for h in spawned {
                            values.push(h.await.unwrap());
                        }
                        victim.await.unwrap();
                        values
                    });
                    assert_eq!(
                        values,
                        (0..SPAWNED).collect::<Vec<_>>(),
                        "{name}, aborted: {aborted}"
                    );
                }
            }
        }
    });
}

#[test]
fn a_drop_that_spawns_during_shutdown_neither_deadlocks_nor_panics() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            let go = Arc::new(AtomicBool::new(false));
            let slot = Arc::new(Mutex::new(None));
            let (tx, rx) = mpsc::channel();
            let (victim_dropped, victim_guard) = common::drop_flag();
            let victim_fut = victim(go.clone(), slot.clone());
            rt.spawn(async move {
                let _g = victim_guard;
                victim_fut.await
            });
            for _ in 0..10 {
                let dropper = SpawnAndWakeOnDrop {
                    handle: rt.handle().clone(),
                    spawn: 5,
                    handles: tx.clone(),
                    go: go.clone(),
                    victim: slot.clone(),
                };
                rt.spawn(async move {
                    let _d = dropper;
                    std::future::pending::<()>().await
                });
            }
            drop(tx);
            // A short drain: the pending tasks are cancelled, their drops
            // spawn (refused: the runtime is shutting down) and wake.
            let report = rt.shutdown(Duration::from_millis(20));
            assert_eq!(report.workers_leaked, 0, "{name}: {report}");
            assert_eq!(report.tasks_leaked, 0, "{name}: {report}");
            assert!(victim_dropped.load(Ordering::SeqCst), "{name}: {report}");
            let spawned: Vec<_> = rx.try_iter().collect();
            assert_eq!(spawned.len(), 50, "{name}");
            for h in spawned {
                // Refused during shutdown: resolves at once, cancelled.
                let r = futures_lite::future::block_on(h);
                assert!(r.unwrap_err().is_cancelled(), "{name}");
            }
        }
    });
}

/// A waker that re-enters the runtime: each `wake` spawns a task (its
/// handle is sent out) before waking the task it stands for; its `Drop`
/// spawns one too.
struct SpawningWaker {
    inner: Waker,
    handle: Handle,
    handles: mpsc::Sender<JoinHandle<u32>>,
}

impl SpawningWaker {
    fn spawn_one(&self, tag: u32) {
        let _ = self.handles.send(self.handle.spawn(async move { tag }));
    }
}

impl Wake for SpawningWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.spawn_one(1);
        self.inner.wake_by_ref();
    }
}

impl Drop for SpawningWaker {
    fn drop(&mut self) {
        self.spawn_one(2);
    }
}

/// Polls `F` with a [`SpawningWaker`] wrapping the task's waker.
struct WithSpawningWaker<F> {
    inner: Pin<Box<F>>,
    handle: Handle,
    handles: mpsc::Sender<JoinHandle<u32>>,
}

impl<F: Future> Future for WithSpawningWaker<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::new(SpawningWaker {
            inner: cx.waker().clone(),
            handle: self.handle.clone(),
            handles: self.handles.clone(),
        }));
        self.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

fn with_spawning_waker<F: Future>(
    inner: F,
    handles: &mpsc::Sender<JoinHandle<u32>>,
) -> WithSpawningWaker<F> {
    WithSpawningWaker {
        inner: Box::pin(inner),
        handle: Handle::current(),
        handles: handles.clone(),
    }
}

#[test]
fn a_waker_whose_wake_and_drop_spawn_does_not_deadlock() {
    watchdog(|| {
        const TASKS: usize = 100;
        for common::Flavour { name, rt, .. } in common::flavours() {
            let (tx, rx) = mpsc::channel::<JoinHandle<u32>>();
            let spawned = rt.block_on(async move {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|i| {
                        let tx = tx.clone();
                        ebbtide::spawn(async move {
                            // Woken by the timer store (the reactor driver).
                            with_spawning_waker(
                                ebbtide::time::sleep(Duration::from_millis(1 + i as u64 % 3)),
                                &tx,
                            )
                            .await;
                            // Woken by another task's completion.
                            let other = ebbtide::spawn(async {
                                ebbtide::time::sleep(Duration::from_millis(1)).await;
                            });
                            with_spawning_waker(other, &tx).await.unwrap();
                            // Woken from inside its own poll.
                            with_spawning_waker(ebbtide::yield_now(), &tx).await;
                            // Registered with a timer, then dropped unfired:
                            // the timer store drops the waker.
                            let r = ebbtide::time::timeout(
                                Duration::from_millis(1),
                                with_spawning_waker(
                                    ebbtide::time::sleep(Duration::from_secs(3600)),
                                    &tx,
                                ),
                            )
                            .await;
                            assert!(r.is_err());
                        })
                    })
                    .collect();
                drop(tx);
                for t in tasks {
                    t.await.unwrap();
                }
                // Every task is done, but the runtime may still hold (and
                // later drop) a few of our wakers; collect what was spawned.
                let mut all = Vec::new();
                while let Ok(h) = rx.try_recv() {
                    all.push(h);
                }
                let n = all.len();
                for h in all {
                    let tag = h.await.unwrap();
                    assert!(tag == 1 || tag == 2);
                }
                n
            });
            // At least one wake per wait (4 waits per task).
            assert!(
                spawned >= 4 * TASKS,
                "{name}: {spawned} spawned from wakers"
            );
        }
    });
}

/// Polls once, logging `id` each time, and yields between polls.
async fn log_and_yield(id: char, times: usize, log: Arc<Mutex<Vec<char>>>) {
    for _ in 0..times {
        log.lock().unwrap().push(id);
        ebbtide::yield_now().await;
    }
}

fn assert_alternates(log: &[char], times: usize) {
    assert_eq!(log.len(), 2 * times, "{log:?}");
    for pair in log.windows(2) {
        assert_ne!(
            pair[0], pair[1],
            "a task ran twice in a row although another was ready: {log:?}"
        );
    }
}

#[test]
fn two_tasks_yielding_on_one_thread_alternate_on_current_thread() {
    watchdog(|| {
        const TIMES: usize = 200;
        let rt = current_thread();
        let log = Arc::new(Mutex::new(Vec::new()));
        rt.block_on({
            let log = log.clone();
            async move {
                let a = ebbtide::spawn(log_and_yield('a', TIMES, log.clone()));
                let b = ebbtide::spawn(log_and_yield('b', TIMES, log));
                a.await.unwrap();
                b.await.unwrap();
            }
        });
        assert_alternates(&log.lock().unwrap(), TIMES);
    });
}

#[test]
fn two_tasks_yielding_on_one_worker_alternate() {
    watchdog(|| {
        const TIMES: usize = 200;
        let rt = workers(1);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        // Spawned from a task on the only worker (not awaited by `block_on`,
        // whose thread could run tasks too): both land in that worker's queue.
        rt.spawn({
            let log = log.clone();
            async move {
                let a = ebbtide::spawn(log_and_yield('a', TIMES, log.clone()));
                let b = ebbtide::spawn(log_and_yield('b', TIMES, log));
                a.await.unwrap();
                b.await.unwrap();
                tx.send(()).unwrap();
            }
        });
        rx.recv_timeout(common::WATCHDOG)
            .expect("both tasks finish");
        assert_alternates(&log.lock().unwrap(), TIMES);
    });
}

#[test]
fn a_task_spinning_on_yield_now_does_not_starve_a_task_spawned_from_outside() {
    watchdog(|| {
        let rt = workers(1);
        let flag = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let spins = Arc::new(AtomicU64::new(0));
        rt.spawn({
            let flag = flag.clone();
            let spins = spins.clone();
            async move {
                while !flag.load(Ordering::SeqCst) {
                    spins.fetch_add(1, Ordering::Relaxed);
                    ebbtide::yield_now().await;
                }
                tx.send(()).unwrap();
            }
        });
        // Make sure the spinner occupies the worker first.
        while spins.load(Ordering::Relaxed) < 10 {
            std::thread::yield_now();
        }
        rt.spawn(async move { flag.store(true, Ordering::SeqCst) });
        rx.recv_timeout(common::WATCHDOG)
            .expect("the spawned task never ran next to a yielding one");
    });
}

/// Counts its drops; parks the task's waker in `slot` on every poll.
struct ParkWaker {
    slot: Arc<Mutex<Option<Waker>>>,
    polls: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl Future for ParkWaker {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ParkWaker {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// One runtime of each flavour whose `Drop` drains for at most 10 ms.
fn short_drain_runtimes() -> Vec<(&'static str, Runtime)> {
    let short = Duration::from_millis(10);
    let b = |n: Option<usize>| {
        let mut b = Runtime::builder();
        match n {
            None => b.current_thread(),
            Some(n) => b.worker_threads(n),
        };
        b.drain_timeout(short).build().unwrap()
    };
    vec![
        ("current_thread", b(None)),
        ("1 worker", b(Some(1))),
        ("2 workers", b(Some(2))),
    ]
}

/// After async-executor's `tests/drop.rs::executor_cancels_everything`: a
/// pending task's waker, kept by someone else, outlives the runtime. The
/// runtime's end drops the future exactly once; waking the waker afterwards
/// (by reference, by value, from another thread) polls nothing and drops
/// nothing more; the handle says cancelled; the last waker drops quietly.
#[test]
fn a_waker_kept_past_the_runtimes_end_wakes_nothing_and_drops_quietly() {
    watchdog(|| {
        for via_shutdown in [true, false] {
            for (name, rt) in short_drain_runtimes() {
                let slot = Arc::new(Mutex::new(None));
                let (polls, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
                let h = rt.spawn(ParkWaker {
                    slot: slot.clone(),
                    polls: polls.clone(),
                    drops: drops.clone(),
                });
                rt.block_on(async {
                    while slot.lock().unwrap().is_none() {
                        ebbtide::yield_now().await;
                    }
                });
                if via_shutdown {
                    let report = rt.shutdown(Duration::ZERO);
                    assert_eq!(report.cancelled, 1, "{name}: {report}");
                }
                drop(rt);
                assert_eq!(drops.load(Ordering::SeqCst), 1, "{name}: dropped once");
                let polled = polls.load(Ordering::SeqCst);
                let w = slot.lock().unwrap().take().expect("the waker was kept");
                w.wake_by_ref();
                let by_value = w.clone();
                by_value.wake();
                let other = w.clone();
                std::thread::spawn(move || {
                    other.wake_by_ref();
                    drop(other);
                })
                .join()
                .unwrap();
                let err = futures_lite::future::block_on(h).unwrap_err();
                assert!(err.is_cancelled(), "{name}: {err:?}");
                w.wake(); // the last reference
                assert_eq!(polls.load(Ordering::SeqCst), polled, "{name}: polled again");
                assert_eq!(drops.load(Ordering::SeqCst), 1, "{name}: dropped twice");
            }
        }
    });
}

/// Wakes (by reference or by value) and drops a waker when dropped, then
/// reports that it ran.
struct WakeAtThreadExit {
    waker: Option<Waker>,
    by_ref: bool,
    done: mpsc::Sender<()>,
}

impl Drop for WakeAtThreadExit {
    fn drop(&mut self) {
        let w = self.waker.take().unwrap();
        if self.by_ref {
            w.wake_by_ref();
        } else {
            w.wake();
        }
        let _ = self.done.send(());
    }
}

thread_local! {
    /// Destroyed at thread exit, after every runtime the thread used.
    static AT_EXIT: std::cell::RefCell<Vec<WakeAtThreadExit>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Registers `cx`'s waker to be woken by this thread's exit.
fn wake_at_thread_exit(cx: &Context<'_>, by_ref: bool, done: &mpsc::Sender<()>) {
    let entry = WakeAtThreadExit {
        waker: Some(cx.waker().clone()),
        by_ref,
        done: done.clone(),
    };
    AT_EXIT.with(|v| v.borrow_mut().push(entry));
}

/// The child side of the test below; returns how many wakers were woken
/// by thread-local destructors.
fn wake_from_thread_local_destructors() -> usize {
    let (done, woken) = mpsc::channel();
    let mut expected = 0;
    for by_ref in [true, false] {
        for (_, rt) in short_drain_runtimes() {
            let done = done.clone();
            std::thread::spawn(move || {
                // A task that finishes in the poll that registers (tokio's
                // case), on whatever thread runs it: a worker's thread-local
                // is destroyed when the runtime's drop joins that worker.
                let d = done.clone();
                rt.block_on(rt.spawn(std::future::poll_fn(move |cx| {
                    wake_at_thread_exit(cx, by_ref, &d);
                    Poll::Ready(())
                })))
                .unwrap();
                // A task still pending when the runtime ends.
                let (d, parked) = (done.clone(), Arc::new(AtomicBool::new(false)));
                let p = parked.clone();
                rt.spawn(std::future::poll_fn(move |cx| {
                    if !p.swap(true, Ordering::SeqCst) {
                        wake_at_thread_exit(cx, by_ref, &d);
                    }
                    Poll::<()>::Pending
                }));
                // The `block_on` future itself.
                let mut registered = false;
                rt.block_on(std::future::poll_fn(|cx| {
                    if parked.load(Ordering::SeqCst) && registered {
                        return Poll::Ready(());
                    }
                    if !registered {
                        registered = true;
                        wake_at_thread_exit(cx, by_ref, &done);
                    }
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }));
                drop(rt);
            })
            .join()
            .unwrap();
            expected += 3;
        }
    }
    drop(done);
    let mut n = 0;
    while woken.recv_timeout(WATCHDOG_CHILD).is_ok() {
        n += 1;
    }
    assert_eq!(n, expected);
    n
}

/// How long the child waits for the last thread-local destructor.
const WATCHDOG_CHILD: Duration = Duration::from_secs(10);

/// After tokio's `rt_common.rs::wake_by_ref_from_thread_local` and
/// `wake_by_val_from_thread_local`: wakers of a finished task, of a task
/// cancelled by the runtime's end, and of a `block_on` future, kept in a
/// thread-local and woken and dropped by its destructor at thread exit,
/// after the runtime (and perhaps the runtime's own thread-locals) is gone.
/// No panic in a destructor (which would abort the process). Runs in a
/// child process, which an abort would kill.
#[test]
fn wakers_woken_by_thread_local_destructors_after_the_runtime_is_gone_are_harmless() {
    const CHILD: &str = "EBBTIDE_TLS_WAKER_CHILD";
    const NAME: &str =
        "wakers_woken_by_thread_local_destructors_after_the_runtime_is_gone_are_harmless";
    if std::env::var_os(CHILD).is_some() {
        let n = wake_from_thread_local_destructors();
        println!("woken at thread exit: {n}");
        return;
    }
    let out = watchdog(|| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child died: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("woken at thread exit: 18"), "{stdout}");
}
