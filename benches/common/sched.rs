//! The compare suite's runtime abstraction and scheduler workloads, one
//! copy for `compare.rs` (which times them) and `sched_probe.rs` (which
//! runs one of them under callgrind).
//!
//! 1. A workload is written once, generic over [`Rt`] / [`Spawner`], so
//!    ebbtide, tokio and smol run the same futures, channels and boxing;
//!    only `spawn`, detaching, `yield_now`, `sleep` and `block_on` are each
//!    runtime's own.
//! 2. A workload runs `iters` back-to-back iterations and returns their
//!    time: set-up that is not the measured work (`busy1`'s background
//!    tasks) happens outside that time. The compare suite divides it by
//!    `iters`; the probe runs the same body (`iters` = 1, or `N` for
//!    `spawn_one`) and ignores it, so both measure the same work per
//!    iteration.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_executor::Executor;

use super::smol_rt::SmolRt;

// ---------------------------------------------------------------------------
// The runtime abstraction
// ---------------------------------------------------------------------------

/// What a task needs from its runtime. Cheap to copy into tasks (a ZST for
/// ebbtide and tokio, which spawn through their thread-local context; a
/// `&'static Executor` for smol).
pub(crate) trait Spawner: Copy + Send + Sync + 'static {
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
pub(crate) trait Rt {
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

    /// How many worker threads run its tasks.
    fn workers(&self) -> usize;
}

// --- ebbtide ---------------------------------------------------------------

/// `Runtime::builder().worker_threads(n)`: `block_on` runs the root future
/// on the calling thread, tasks run on the workers (`bench-ebbtide-*`).
pub(crate) struct EbbRt {
    pub(crate) rt: ebbtide::runtime::Runtime,
    workers: usize,
}

/// Spawns through ebbtide's thread-local context.
#[derive(Clone, Copy)]
pub(crate) struct EbbSp;

impl EbbRt {
    pub(crate) fn new(workers: usize) -> EbbRt {
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

/// `new_multi_thread().worker_threads(n).enable_time()`: the same shape as
/// ebbtide's.
pub(crate) struct TokioRt {
    rt: tokio::runtime::Runtime,
    workers: usize,
}

/// Spawns through tokio's thread-local context.
#[derive(Clone, Copy)]
pub(crate) struct TokioSp;

impl TokioRt {
    pub(crate) fn new(workers: usize) -> TokioRt {
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

/// Spawns on the executor of a [`SmolRt`].
#[derive(Clone, Copy)]
pub(crate) struct SmolSp(&'static Executor<'static>);

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

/// `block_on` is `async_io::block_on(ex.run(f))`: the calling thread also
/// runs tasks while it waits (the usual smol set-up).
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
// Workloads: `iters` iterations each, returning their time
// ---------------------------------------------------------------------------

/// rt_multi `spawn_many_local`: a task spawns `n` empty tasks (onto its
/// worker's local queue) and awaits them all.
pub(crate) fn spawn_many_local<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
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
pub(crate) fn spawn_many_remote_idle<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
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

/// Passes of `spawn_many_remote_busy1`'s background loops so far (one poll
/// each; `sched_probe` prints it).
pub(crate) static BUSY_PASSES: AtomicUsize = AtomicUsize::new(0);

/// rt_multi `spawn_many_remote_busy1`: as `spawn_many_remote_idle`, while
/// 2 x workers background tasks loop on `yield_now` + a 10 µs stall. The
/// background tasks are started before and stopped (and joined) after the
/// timed region, so they never disturb another runtime's samples.
pub(crate) fn spawn_many_remote_busy1<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
    let flag = Arc::new(AtomicBool::new(true));
    let busy: Vec<_> = (0..2 * rt.workers())
        .map(|_| {
            let flag = flag.clone();
            rt.spawn_remote(async move {
                while flag.load(Relaxed) {
                    R::S::yield_now().await;
                    stall();
                    BUSY_PASSES.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();

    let elapsed = spawn_many_remote_idle(rt, n, iters);

    flag.store(false, Relaxed);
    rt.block_on(async {
        for h in busy {
            h.await;
        }
    });
    elapsed
}

/// Keeps the thread busy for 10 µs (yielding it to the OS in between).
fn stall() {
    let now = Instant::now();
    while now.elapsed() < Duration::from_micros(10) {
        std::thread::yield_now();
    }
}

/// rt_multi `ping_pong`: a task spawns `n` tasks; each spawns a partner and
/// they exchange one message each way over `tokio::sync::oneshot`.
pub(crate) fn ping_pong<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
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

/// rt_multi `chained_spawn`: each task spawns the next, `n` deep.
pub(crate) fn chained_spawn<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
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
pub(crate) fn spawn_one<R: Rt>(rt: &R, iters: u64) -> Duration {
    let sp = rt.spawner();
    let start = Instant::now();
    for _ in 0..iters {
        rt.block_on(async { sp.spawn(async {}).await });
    }
    start.elapsed()
}

/// executor `spawn_many_local`: the `block_on` future spawns `n` empty
/// tasks and awaits them all.
pub(crate) fn spawn_many<R: Rt>(rt: &R, n: usize, iters: u64) -> Duration {
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
pub(crate) fn spawn_recursively<R: Rt>(rt: &R, tasks: usize, steps: usize, iters: u64) -> Duration {
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
pub(crate) fn yield_now<R: Rt>(rt: &R, tasks: usize, steps: usize, iters: u64) -> Duration {
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
pub(crate) fn channels<R: Rt>(rt: &R, tasks: usize, steps: usize, iters: u64) -> Duration {
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
