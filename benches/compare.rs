//! Side-by-side scheduler benchmark: ebbtide vs tokio vs smol.
//!
//! `cargo bench --bench compare [-- [--quick] [--json PATH] [FILTER]]`
//!
//! Every workload is written once, generically over [`Rt`] / [`Spawner`], so
//! the three runtimes run exactly the same code: the same futures, the same
//! channels (`tokio::sync::oneshot` in `ping_pong`, `smol::channel`
//! elsewhere: both work on any executor), the same boxing. Only the
//! runtime-specific primitives differ: `spawn`, detaching, `yield_now`,
//! `sleep`, `block_on`.
//!
//! The workloads mirror tokio's `benches/rt_multi_threaded.rs` (the
//! `rt_multi` set, run with the core count and with 4 workers) and
//! async-executor's `benches/executor.rs` (the `executor` set), plus a timer
//! insert/remove workload. Each runtime is built once per worker count; the
//! three are measured interleaved in one process, 1 warm-up round plus 7
//! measured rounds (3 with `--quick`), with the order of the runtimes
//! rotated every round. One sample is `iters` back-to-back iterations,
//! `iters` being calibrated per workload (the same for all three runtimes)
//! so that a sample of the slowest runtime lasts about the target time.
//!
//! Runtimes:
//! - ebbtide: `Runtime::builder().worker_threads(n)`; `block_on` runs the
//!   root future on the calling thread, tasks run on the `n` workers.
//! - tokio: `new_multi_thread().worker_threads(n).enable_time()`; same shape.
//! - smol: one `async_executor::Executor`, `n` threads each running
//!   `async_io::block_on(ex.run(shutdown))`; `block_on` is
//!   `async_io::block_on(ex.run(fut))`, i.e. the calling thread also runs
//!   tasks while it waits (the usual smol set-up; smol has no other way to
//!   give the root future access to a multi-threaded executor's context).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_executor::Executor;
use common::smol_rt::SmolRt;
use common::{median, watchdog};

// ---------------------------------------------------------------------------
// The runtime abstraction
// ---------------------------------------------------------------------------

/// What a task needs from its runtime. Cheap to copy into tasks (a ZST for
/// ebbtide and tokio, which spawn through their thread-local context; a
/// `&'static Executor` for smol).
trait Spawner: Copy + Send + Sync + 'static {
    /// Spawns from inside the runtime (a task or the `block_on` future);
    /// the returned future yields the task's output.
    fn spawn<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Spawns from inside the runtime and lets the task run on its own.
    fn detach<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// The runtime's own `yield_now`.
    fn yield_now() -> impl Future<Output = ()> + Send;

    /// The runtime's own timer future (registers when first polled).
    fn sleep(d: Duration) -> impl Future + Send + 'static;

    /// Opts out of cooperative budgeting (tokio); identity elsewhere.
    fn unconstrained<F: Future + Send>(f: F) -> impl Future<Output = F::Output> + Send;
}

/// A built runtime, driven from the benchmark's main thread.
trait Rt {
    type S: Spawner;

    /// Runs `f` to completion on the calling thread.
    fn block_on<F: Future>(&self, f: F) -> F::Output;

    /// The spawner tasks use (valid inside `block_on` and tasks only).
    fn spawner(&self) -> Self::S;

    /// Spawns from outside the runtime (the main thread, not in `block_on`).
    fn spawn_remote<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    fn workers(&self) -> usize;
}

// --- ebbtide ---------------------------------------------------------------

struct EbbRt {
    rt: ebbtide::runtime::Runtime,
    workers: usize,
}

#[derive(Clone, Copy)]
struct EbbSp;

impl EbbRt {
    fn new(workers: usize) -> EbbRt {
        let rt = ebbtide::runtime::Runtime::builder()
            .worker_threads(workers)
            .thread_name("bench-ebbtide")
            .build()
            .expect("build ebbtide runtime");
        EbbRt { rt, workers }
    }
}

impl Spawner for EbbSp {
    fn spawn<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = ebbtide::spawn(f);
        async move { h.await.expect("ebbtide task failed") }
    }

    fn detach<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        ebbtide::spawn(f).detach();
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        ebbtide::yield_now()
    }

    fn sleep(d: Duration) -> impl Future + Send + 'static {
        ebbtide::time::sleep(d)
    }

    fn unconstrained<F: Future + Send>(f: F) -> impl Future<Output = F::Output> + Send {
        f
    }
}

impl Rt for EbbRt {
    type S = EbbSp;

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn spawner(&self) -> EbbSp {
        EbbSp
    }

    fn spawn_remote<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = self.rt.handle().spawn(f);
        async move { h.await.expect("ebbtide task failed") }
    }

    fn workers(&self) -> usize {
        self.workers
    }
}

// --- tokio -----------------------------------------------------------------

struct TokioRt {
    rt: tokio::runtime::Runtime,
    workers: usize,
}

#[derive(Clone, Copy)]
struct TokioSp;

impl TokioRt {
    fn new(workers: usize) -> TokioRt {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("bench-tokio")
            .enable_time()
            .build()
            .expect("build tokio runtime");
        TokioRt { rt, workers }
    }
}

impl Spawner for TokioSp {
    fn spawn<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = tokio::spawn(f);
        async move { h.await.expect("tokio task failed") }
    }

    fn detach<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(tokio::spawn(f));
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }

    fn sleep(d: Duration) -> impl Future + Send + 'static {
        tokio::time::sleep(d)
    }

    fn unconstrained<F: Future + Send>(f: F) -> impl Future<Output = F::Output> + Send {
        tokio::task::unconstrained(f)
    }
}

impl Rt for TokioRt {
    type S = TokioSp;

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn spawner(&self) -> TokioSp {
        TokioSp
    }

    fn spawn_remote<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = self.rt.spawn(f);
        async move { h.await.expect("tokio task failed") }
    }

    fn workers(&self) -> usize {
        self.workers
    }
}

// --- smol ------------------------------------------------------------------

#[derive(Clone, Copy)]
struct SmolSp(&'static Executor<'static>);

impl Spawner for SmolSp {
    fn spawn<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(f)
    }

    fn detach<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.spawn(f).detach();
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        futures_lite::future::yield_now()
    }

    fn sleep(d: Duration) -> impl Future + Send + 'static {
        async_io::Timer::after(d)
    }

    fn unconstrained<F: Future + Send>(f: F) -> impl Future<Output = F::Output> + Send {
        f
    }
}

impl Rt for SmolRt {
    type S = SmolSp;

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        async_io::block_on(self.ex.run(f))
    }

    fn spawner(&self) -> SmolSp {
        SmolSp(self.ex)
    }

    fn spawn_remote<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.ex.spawn(f)
    }

    fn workers(&self) -> usize {
        SmolRt::workers(self)
    }
}

// ---------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------

/// Problem sizes (the defaults are those of the upstream benches).
#[derive(Clone, Copy, Debug)]
struct Sizes {
    /// rt_multi: tasks per spawn_many_* iteration.
    spawn: usize,
    /// rt_multi: ping-pong pairs per iteration.
    pings: usize,
    /// rt_multi: yield_many tasks and yields per task.
    yield_tasks: usize,
    yield_steps: usize,
    /// rt_multi: length of the spawn chain.
    chain: usize,
    /// executor: tasks in spawn_many.
    light: usize,
    /// executor: TASKS x STEPS of spawn_recursively, yield_now and channels.
    rec: (usize, usize),
    yields: (usize, usize),
    channels: (usize, usize),
    /// Timers inserted and removed per iteration.
    timers: usize,
    /// Timers inserted and removed per iteration of `timers_1m`.
    timers_big: usize,
    /// Timers of 1-10 ms that all fire, per iteration of `timers_fire`.
    timers_fire: usize,
}

impl Sizes {
    fn full() -> Sizes {
        Sizes {
            spawn: 10_000,
            pings: 1_000,
            yield_tasks: 200,
            yield_steps: 1_000,
            chain: 1_000,
            light: 25_000,
            rec: (300, 300),
            yields: (300, 300),
            channels: (300, 300),
            timers: 100_000,
            timers_big: 1_000_000,
            timers_fire: 100_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Set {
    /// tokio's rt_multi_threaded: run with the core count and with 4 workers.
    RtMulti,
    /// async-executor's executor benches and timers: core count only.
    Executor,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    SpawnManyLocal,
    SpawnManyRemoteIdle,
    SpawnManyRemoteBusy1,
    PingPong,
    YieldMany,
    ChainedSpawn,
    SpawnOne,
    SpawnMany,
    SpawnRecursively,
    YieldNow,
    Channels,
    Timers,
    TimersBig,
    TimersFire,
}

const KINDS: [(Kind, Set, &str); 14] = [
    (Kind::SpawnManyLocal, Set::RtMulti, "spawn_many_local"),
    (
        Kind::SpawnManyRemoteIdle,
        Set::RtMulti,
        "spawn_many_remote_idle",
    ),
    (
        Kind::SpawnManyRemoteBusy1,
        Set::RtMulti,
        "spawn_many_remote_busy1",
    ),
    (Kind::PingPong, Set::RtMulti, "ping_pong"),
    (Kind::YieldMany, Set::RtMulti, "yield_many"),
    (Kind::ChainedSpawn, Set::RtMulti, "chained_spawn"),
    (Kind::SpawnOne, Set::Executor, "spawn_one"),
    (Kind::SpawnMany, Set::Executor, "spawn_many"),
    (Kind::SpawnRecursively, Set::Executor, "spawn_recursively"),
    (Kind::YieldNow, Set::Executor, "yield_now"),
    (Kind::Channels, Set::Executor, "channels"),
    (Kind::Timers, Set::Executor, "timers"),
    (Kind::TimersBig, Set::Executor, "timers_1m"),
    (Kind::TimersFire, Set::Executor, "timers_fire"),
];

fn run_kind<R: Rt>(kind: Kind, sz: &Sizes, rt: &R, iters: u64) -> Duration {
    match kind {
        Kind::SpawnManyLocal => spawn_many_local(rt, sz.spawn, iters),
        Kind::SpawnManyRemoteIdle => spawn_many_remote_idle(rt, sz.spawn, iters),
        Kind::SpawnManyRemoteBusy1 => spawn_many_remote_busy1(rt, sz.spawn, iters),
        Kind::PingPong => ping_pong(rt, sz.pings, iters),
        Kind::YieldMany => yield_many(rt, sz.yield_tasks, sz.yield_steps, iters),
        Kind::ChainedSpawn => chained_spawn(rt, sz.chain, iters),
        Kind::SpawnOne => spawn_one(rt, iters),
        Kind::SpawnMany => spawn_many(rt, sz.light, iters),
        Kind::SpawnRecursively => spawn_recursively(rt, sz.rec.0, sz.rec.1, iters),
        Kind::YieldNow => yield_now(rt, sz.yields.0, sz.yields.1, iters),
        Kind::Channels => channels(rt, sz.channels.0, sz.channels.1, iters),
        Kind::Timers => timers(rt, sz.timers, iters),
        Kind::TimersBig => timers(rt, sz.timers_big, iters),
        Kind::TimersFire => timers_fire(rt, sz.timers_fire, iters),
    }
}

/// rt_multi `spawn_many_local`: a task spawns `n` empty tasks (onto its
/// worker's local queue) and awaits them all.
fn spawn_many_local<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
    let sp = rt.spawner();
    let start = Instant::now();
    for _ in 0..iters {
        rt.block_on(async {
            sp.spawn(async move {
                let mut handles = Vec::with_capacity(n);
                for _ in 0..n {
                    handles.push(sp.spawn(async {}));
                }
                for h in handles {
                    h.await;
                }
            })
            .await
        });
    }
    start.elapsed()
}

/// rt_multi `spawn_many_remote_idle`: the main thread (outside the runtime)
/// spawns `n` empty tasks, then `block_on` awaits them all.
fn spawn_many_remote_idle<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
    let mut handles = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..iters {
        for _ in 0..n {
            handles.push(rt.spawn_remote(async {}));
        }
        rt.block_on(async {
            for h in handles.drain(..) {
                h.await;
            }
        });
    }
    start.elapsed()
}

/// rt_multi `spawn_many_remote_busy1`: as `spawn_many_remote_idle`, while
/// 2 x workers background tasks loop on `yield_now` + a 10 µs stall. The
/// background tasks are started before and stopped (and joined) after the
/// timed region, so they never disturb another runtime's samples.
fn spawn_many_remote_busy1<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
    let flag = Arc::new(AtomicBool::new(true));
    let busy: Vec<_> = (0..2 * rt.workers())
        .map(|_| {
            let flag = flag.clone();
            rt.spawn_remote(async move {
                while flag.load(Relaxed) {
                    R::S::yield_now().await;
                    stall();
                }
            })
        })
        .collect();

    let mut handles = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..iters {
        for _ in 0..n {
            handles.push(rt.spawn_remote(async {}));
        }
        rt.block_on(async {
            for h in handles.drain(..) {
                h.await;
            }
        });
    }
    let elapsed = start.elapsed();

    flag.store(false, Relaxed);
    rt.block_on(async {
        for h in busy {
            h.await;
        }
    });
    elapsed
}

fn stall() {
    let now = Instant::now();
    while now.elapsed() < Duration::from_micros(10) {
        std::thread::yield_now();
    }
}

/// rt_multi `ping_pong`: a task spawns `n` tasks; each spawns a partner and
/// they exchange one message each way over `tokio::sync::oneshot`.
fn ping_pong<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
    let sp = rt.spawner();
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let rem = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..iters {
        rem.store(n, Relaxed);
        let done_tx = done_tx.clone();
        let rem = rem.clone();
        rt.block_on(async {
            sp.detach(async move {
                for _ in 0..n {
                    let rem = rem.clone();
                    let done_tx = done_tx.clone();
                    sp.detach(async move {
                        let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
                        let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
                        sp.detach(async move {
                            rx1.await.unwrap();
                            tx2.send(()).unwrap();
                        });
                        tx1.send(()).unwrap();
                        rx2.await.unwrap();
                        if 1 == rem.fetch_sub(1, Relaxed) {
                            done_tx.try_send(()).unwrap();
                        }
                    });
                }
            });
            done_rx.recv().await.unwrap();
        });
    }
    start.elapsed()
}

/// rt_multi `yield_many`: `tasks` tasks spawned from the main thread, each
/// yielding `steps` times; `block_on` awaits them all.
fn yield_many<R: Rt>(rt: &R, tasks: usize, steps: usize, iters: u64) -> Duration {
    let mut handles = Vec::with_capacity(tasks);
    let start = Instant::now();
    for _ in 0..iters {
        for _ in 0..tasks {
            handles.push(rt.spawn_remote(async move {
                for _ in 0..steps {
                    R::S::yield_now().await;
                }
            }));
        }
        rt.block_on(async {
            for h in handles.drain(..) {
                h.await;
            }
        });
    }
    start.elapsed()
}

/// rt_multi `chained_spawn`: each task spawns the next, `n` deep.
fn chained_spawn<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
    fn link<S: Spawner>(sp: S, done: smol::channel::Sender<()>, n: usize) {
        if n == 0 {
            done.try_send(()).unwrap();
        } else {
            sp.detach(async move { link(sp, done, n - 1) });
        }
    }

    let sp = rt.spawner();
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let start = Instant::now();
    for _ in 0..iters {
        let done_tx = done_tx.clone();
        rt.block_on(async {
            sp.detach(async move { link(sp, done_tx, n) });
            done_rx.recv().await.unwrap();
        });
    }
    start.elapsed()
}

/// executor `spawn_one`: `block_on` spawns one empty task and awaits it.
fn spawn_one<R: Rt>(rt: &R, iters: u64) -> Duration {
    let sp = rt.spawner();
    let start = Instant::now();
    for _ in 0..iters {
        rt.block_on(async { sp.spawn(async {}).await });
    }
    start.elapsed()
}

/// executor `spawn_many_local`: the `block_on` future spawns `n` empty
/// tasks and awaits them all.
fn spawn_many<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
    let sp = rt.spawner();
    let start = Instant::now();
    for _ in 0..iters {
        rt.block_on(async {
            let mut handles = Vec::with_capacity(n);
            for _ in 0..n {
                handles.push(sp.spawn(async {}));
            }
            for h in handles {
                h.await;
            }
        });
    }
    start.elapsed()
}

/// executor `spawn_recursively`: `tasks` chains, each `steps` deep, where
/// every level spawns the next and awaits it.
fn spawn_recursively<R: Rt>(rt: &R, tasks: usize, steps: usize, iters: u64) -> Duration {
    fn go<S: Spawner>(sp: S, i: usize) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            if i != 0 {
                sp.spawn(go(sp, i - 1)).await;
            }
        })
    }

    let sp = rt.spawner();
    let start = Instant::now();
    for _ in 0..iters {
        rt.block_on(async {
            let mut handles = Vec::with_capacity(tasks);
            for _ in 0..tasks {
                handles.push(sp.spawn(go(sp, steps)));
            }
            for h in handles {
                h.await;
            }
        });
    }
    start.elapsed()
}

/// executor `yield_now`: `tasks` tasks spawned by `block_on`, each yielding
/// `steps` times.
fn yield_now<R: Rt>(rt: &R, tasks: usize, steps: usize, iters: u64) -> Duration {
    let sp = rt.spawner();
    let start = Instant::now();
    for _ in 0..iters {
        rt.block_on(async {
            let mut handles = Vec::with_capacity(tasks);
            for _ in 0..tasks {
                handles.push(sp.spawn(async move {
                    for _ in 0..steps {
                        R::S::yield_now().await;
                    }
                }));
            }
            for h in handles {
                h.await;
            }
        });
    }
    start.elapsed()
}

/// executor `channels`: a ring of `tasks` tasks linked by `bounded(1)`
/// channels; the `block_on` future sends a token round it `steps` times.
fn channels<R: Rt>(rt: &R, tasks: usize, steps: usize, iters: u64) -> Duration {
    let sp = rt.spawner();
    let start = Instant::now();
    for _ in 0..iters {
        rt.block_on(async {
            let mut handles = Vec::with_capacity(tasks);
            let (first_send, first_recv) = smol::channel::bounded::<()>(1);
            let mut current_recv = first_recv;
            for _ in 0..tasks {
                let (next_send, next_recv) = smol::channel::bounded::<()>(1);
                let recv = std::mem::replace(&mut current_recv, next_recv);
                handles.push(sp.spawn(async move {
                    for _ in 0..steps {
                        recv.recv().await.unwrap();
                        next_send.send(()).await.unwrap();
                    }
                }));
            }
            for _ in 0..steps {
                first_send.send(()).await.unwrap();
                current_recv.recv().await.unwrap();
            }
            for h in handles {
                h.await;
            }
        });
    }
    start.elapsed()
}

/// timers: a task creates `n` sleeps (1 s + i µs), polls each once so it
/// registers with the runtime's timer store, then drops them all.
fn timers<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
    let sp = rt.spawner();
    let start = Instant::now();
    for _ in 0..iters {
        rt.block_on(async {
            sp.spawn(R::S::unconstrained(async move {
                let mut sleeps: Vec<Pin<Box<_>>> = (0..n)
                    .map(|i| {
                        Box::pin(R::S::sleep(
                            Duration::from_secs(1) + Duration::from_micros(i as u64),
                        ))
                    })
                    .collect();
                std::future::poll_fn(|cx| {
                    for s in &mut sleeps {
                        assert!(s.as_mut().poll(cx).is_pending(), "a 1 s sleep completed");
                    }
                    Poll::Ready(())
                })
                .await;
                drop(sleeps);
            }))
            .await
        });
    }
    start.elapsed()
}

/// Lateness samples (ns past the deadline) of the `timers_fire` iterations
/// just run; the harness moves them to the runtime that ran them.
static LATENESS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// `n` tasks each sleep 1-10 ms (spread evenly) from their first poll and
/// record how late they woke (timer lateness plus the wait for a worker
/// once 100,000 wakes arrive together); an iteration ends when all have
/// fired. The time per iteration is
/// dominated by the 10 ms of the longest sleep, so the row mostly shows
/// overhead on top of that; the lateness percentiles are printed after the
/// table.
fn timers_fire<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
    let sp = rt.spawner();
    let start = Instant::now();
    let mut late = Vec::with_capacity(n * iters as usize);
    for _ in 0..iters {
        let lates: Vec<u64> = rt.block_on(async {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let d = Duration::from_millis(1)
                        + Duration::from_nanos(9_000_000 * i as u64 / n as u64);
                    sp.spawn(async move {
                        // The sleep's own deadline is taken after this one,
                        // so waking before `deadline` would be early.
                        let deadline = Instant::now() + d;
                        R::S::sleep(d).await;
                        let now = Instant::now();
                        assert!(now >= deadline, "a timer fired early");
                        (now - deadline).as_nanos() as u64
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(n);
            for h in handles {
                out.push(h.await);
            }
            out
        });
        late.extend(lates);
    }
    let elapsed = start.elapsed();
    LATENESS.lock().unwrap().extend(late);
    elapsed
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

struct Trio {
    e: EbbRt,
    t: TokioRt,
    s: SmolRt,
}

const NAMES: [&str; 3] = ["ebbtide", "tokio", "smol"];

impl Trio {
    fn new(workers: usize) -> Trio {
        Trio {
            e: EbbRt::new(workers),
            t: TokioRt::new(workers),
            s: SmolRt::new(workers),
        }
    }

    fn progress(&self, which: usize, workload: &str, phase: &str) {
        let handle = (which == 0).then(|| self.e.rt.handle().clone());
        watchdog::progress(format!("{workload} on {} ({phase})", NAMES[which]), handle);
    }

    /// Time of `iters` iterations of `kind` on runtime `which` (0, 1, 2).
    fn run(&self, which: usize, kind: Kind, sz: &Sizes, iters: u64) -> Duration {
        match which {
            0 => run_kind(kind, sz, &self.e, iters),
            1 => run_kind(kind, sz, &self.t, iters),
            _ => run_kind(kind, sz, &self.s, iters),
        }
    }
}

/// A sample that makes no progress for this long is reported as a hang.
const HANG_LIMIT: Duration = Duration::from_secs(30);

struct Opts {
    quick: bool,
    json: Option<String>,
    filter: Option<String>,
}

fn parse_args() -> Opts {
    let mut opts = Opts {
        quick: false,
        json: None,
        filter: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--json" => opts.json = Some(args.next().expect("--json needs a PATH")),
            // `cargo bench` passes `--bench`; ignore it and any other flag.
            s if s.starts_with('-') => {}
            s => opts.filter = Some(s.to_owned()),
        }
    }
    opts
}

struct Row {
    name: String,
    iters: u64,
    /// Per runtime: (min, median, max) ns per iteration over the rounds.
    stats: [(f64, f64, f64); 3],
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn header() -> String {
    format!(
        "| {:<34} | {:>7} | {:>29} | {:>29} | {:>29} | {:>5} | {:>5} |\n|{}|{}|{}|{}|{}|{}|{}|",
        "workload",
        "iters",
        "ebbtide med (min–max)",
        "tokio med (min–max)",
        "smol med (min–max)",
        "e/t",
        "e/s",
        "-".repeat(36),
        "-".repeat(8) + ":",
        "-".repeat(30) + ":",
        "-".repeat(30) + ":",
        "-".repeat(30) + ":",
        "-".repeat(6) + ":",
        "-".repeat(6) + ":",
    )
}

fn row_line(r: &Row) -> String {
    let cell = |(min, med, max): (f64, f64, f64)| {
        format!("{} ({}–{})", fmt_ns(med), fmt_ns(min), fmt_ns(max))
    };
    format!(
        "| {:<34} | {:>7} | {:>29} | {:>29} | {:>29} | {:>5.2} | {:>5.2} |",
        r.name,
        r.iters,
        cell(r.stats[0]),
        cell(r.stats[1]),
        cell(r.stats[2]),
        r.stats[0].1 / r.stats[1].1,
        r.stats[0].1 / r.stats[2].1,
    )
}

fn main() {
    let opts = parse_args();
    // --quick keeps the sizes (so its numbers compare with a full run's)
    // and cuts the rounds and the sample length.
    let sizes = Sizes::full();
    let (rounds, target) = if opts.quick {
        (3usize, Duration::from_millis(12))
    } else {
        (7usize, Duration::from_millis(60))
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut worker_counts = vec![cores];
    if cores != 4 {
        worker_counts.push(4);
    }

    println!(
        "ebbtide vs tokio vs smol: {cores} cores, {} mode (1 warm-up + {rounds} measured rounds, \
         ~{} ms per sample), sizes {:?}",
        if opts.quick { "quick" } else { "full" },
        target.as_millis(),
        sizes
    );
    println!("cells: median (min–max over the rounds) time per iteration; e/t, e/s: ratio of medians (< 1: ebbtide faster)\n");
    println!("{}", header());

    watchdog::start(HANG_LIMIT);
    let total = Instant::now();
    let mut rows = Vec::new();
    let mut lateness_lines = Vec::new();
    for (wi, &workers) in worker_counts.iter().enumerate() {
        let selected: Vec<_> = KINDS
            .iter()
            .filter(|(_, set, _)| wi == 0 || *set == Set::RtMulti)
            .map(|&(kind, _, name)| (kind, format!("{name}/{workers}w")))
            .filter(|(_, name)| {
                opts.filter
                    .as_ref()
                    .is_none_or(|f| name.contains(f.as_str()))
            })
            .collect();
        if selected.is_empty() {
            continue;
        }
        let trio = Trio::new(workers);
        for (kind, name) in selected {
            // Calibrate: one iteration on each runtime (also a first warm-up).
            let slowest = (0..3)
                .map(|w| {
                    trio.progress(w, &name, "calibration");
                    trio.run(w, kind, &sizes, 1)
                })
                .max()
                .unwrap_or_default();
            let iters = (target.as_nanos() / slowest.as_nanos().max(1)).clamp(1, 1_000_000) as u64;

            let mut samples: [Vec<f64>; 3] = Default::default();
            let mut lateness: [Vec<u64>; 3] = Default::default();
            for round in 0..=rounds {
                for k in 0..3 {
                    let which = (round + k) % 3;
                    let phase = if round == 0 {
                        "warm-up".to_owned()
                    } else {
                        format!("round {round}")
                    };
                    trio.progress(which, &name, &phase);
                    let d = trio.run(which, kind, &sizes, iters);
                    let late = std::mem::take(&mut *LATENESS.lock().unwrap());
                    if round > 0 {
                        samples[which].push(d.as_nanos() as f64 / iters as f64);
                        lateness[which].extend(late);
                    }
                }
            }
            let stats = samples.map(|mut v| {
                let min = v.iter().copied().fold(f64::INFINITY, f64::min);
                let max = v.iter().copied().fold(0.0, f64::max);
                (min, median(&mut v), max)
            });
            if lateness.iter().any(|l| !l.is_empty()) {
                let cells: Vec<String> = lateness
                    .iter_mut()
                    .enumerate()
                    .map(|(k, l)| {
                        l.sort_unstable();
                        format!(
                            "{} p50 {} p99 {}",
                            NAMES[k],
                            fmt_ns(percentile(l, 0.5) as f64),
                            fmt_ns(percentile(l, 0.99) as f64)
                        )
                    })
                    .collect();
                lateness_lines.push(format!("{name}: lateness {}", cells.join(", ")));
            }
            let row = Row { name, iters, stats };
            println!("{}", row_line(&row));
            rows.push(row);
        }
    }
    watchdog::idle();
    if !lateness_lines.is_empty() {
        println!();
    }
    for line in &lateness_lines {
        println!("{line}");
    }
    println!("\ntotal time: {:.1} s", total.elapsed().as_secs_f64());
    check_no_global_runtime();

    if let Some(path) = opts.json {
        let rows: Vec<_> = rows
            .into_iter()
            .map(|r| (r.name, r.stats.map(|(_, med, _)| med)))
            .collect();
        common::write_json(&path, &rows);
    }
}

/// The ebbtide spawner goes through the thread-local context; used outside a
/// runtime it would silently spawn on ebbtide's lazily started global
/// runtime instead of the one being measured. Its workers are named
/// `ebbtide-worker-*` (ours are `bench-ebbtide-worker-*`): make sure none
/// ever started.
fn check_no_global_runtime() {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for entry in dir.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        assert!(
            !comm.starts_with("ebbtide-work"),
            "a benchmark spawned onto ebbtide's global runtime (thread {comm:?})"
        );
    }
}
