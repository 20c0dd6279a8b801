//! Callgrind probe of the compare suite's scheduler rows: ONE workload of
//! `benches/compare.rs` on ONE runtime (ebbtide, smol or tokio), set up as
//! the suite sets it up (2 workers; smol is one `async_executor::Executor`
//! run by 2 threads plus the `block_on` thread), with `N` its size knob.
//! Instructions per operation are the difference of runs of `N` and `2N`
//! divided by the difference of their operation counts (which cancels the
//! runtime's start-up and shutdown):
//!
//! ```text
//! cargo bench --no-run --bench sched_probe
//! valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file=cg.out \
//!     target/release/deps/sched_probe-* ebbtide spawn_many 20000
//! python3 scripts/cg-split.py cg.out
//! ```
//!
//! Usage: `sched_probe RUNTIME WORKLOAD N [WORKERS]`. The probe prints the
//! number of operations it ran (`ops=`), so per-op figures divide by the
//! difference of the two runs' `ops`:
//!
//! - `spawn_many`, `spawn_many_local`, `spawn_many_remote_idle`,
//!   `spawn_many_remote_busy1`, `spawn_one`, `chained_spawn`: one op is
//!   one task spawned, run and joined (or detached, for the chain).
//! - `ping_pong`: one op is one pair (2 tasks, 2 oneshot messages).
//! - `spawn_recursively`: 100 chains, `N / 100` deep; one op is one level
//!   (a spawn awaited by its parent).
//! - `yield_now`: 100 tasks yielding `N / 100` times each; one op is one
//!   yield.
//! - `channels`: a ring of 100 tasks, the token sent round it `N / 100`
//!   times; one op is one message hop (send + receive).
//!
//! The workload bodies are the compare suite's (copied, run once instead of
//! `iters` times). Under callgrind the threads take turns (`--fair-sched`),
//! so which thread runs what differs from native runs; the instruction
//! counts of the scheduling steps themselves do not. Wake-ups of parked
//! threads are counted as syscalls natively (`perf stat`), not here.
//!
//! For ebbtide the probe also prints the polls its workers made
//! (`worker_polls=`, from `Runtime::metrics`; the rest ran on the
//! `block_on` thread) and their steals, and for `spawn_many_remote_busy1`
//! the passes of the busy loops (`busy_passes=`, one poll each).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_executor::Executor;
use common::smol_rt::SmolRt;

/// Tasks of `spawn_recursively`, `yield_now` and `channels`.
const TASKS: usize = 100;

// --- the compare suite's runtime abstraction (the parts these rows use) ----

trait Spawner: Copy + Send + Sync + 'static {
    fn spawn<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    fn detach<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static;
    fn yield_now() -> impl Future<Output = ()> + Send;
}

trait Rt {
    type S: Spawner;
    fn block_on<F: Future>(&self, f: F) -> F::Output;
    fn spawner(&self) -> Self::S;
    fn spawn_remote<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    fn workers(&self) -> usize;
}

struct EbbRt(ebbtide::runtime::Runtime, usize);

#[derive(Clone, Copy)]
struct EbbSp;

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
}

impl Rt for EbbRt {
    type S = EbbSp;
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }
    fn spawner(&self) -> EbbSp {
        EbbSp
    }
    fn spawn_remote<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = self.0.handle().spawn(f);
        async move { h.await.expect("ebbtide task failed") }
    }
    fn workers(&self) -> usize {
        self.1
    }
}

struct TokioRt(tokio::runtime::Runtime, usize);

#[derive(Clone, Copy)]
struct TokioSp;

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
}

impl Rt for TokioRt {
    type S = TokioSp;
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }
    fn spawner(&self) -> TokioSp {
        TokioSp
    }
    fn spawn_remote<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = self.0.spawn(f);
        async move { h.await.expect("tokio task failed") }
    }
    fn workers(&self) -> usize {
        self.1
    }
}

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

// --- the workloads (compare.rs's bodies, one iteration); each returns its
// --- operation count ---------------------------------------------------------

fn spawn_many_local<R: Rt>(rt: &R, n: usize) -> usize {
    let sp = rt.spawner();
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
    n
}

fn spawn_many_remote_idle<R: Rt>(rt: &R, n: usize) -> usize {
    let handles: Vec<_> = (0..n).map(|_| rt.spawn_remote(async {})).collect();
    rt.block_on(async {
        for h in handles {
            h.await;
        }
    });
    n
}

/// Busy-loop passes of `spawn_many_remote_busy1`'s background tasks.
static BUSY_PASSES: AtomicUsize = AtomicUsize::new(0);

fn spawn_many_remote_busy1<R: Rt>(rt: &R, n: usize) -> usize {
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
    let ops = spawn_many_remote_idle(rt, n);
    flag.store(false, Relaxed);
    rt.block_on(async {
        for h in busy {
            h.await;
        }
    });
    ops
}

fn stall() {
    let now = Instant::now();
    while now.elapsed() < Duration::from_micros(10) {
        std::thread::yield_now();
    }
}

fn ping_pong<R: Rt>(rt: &R, n: usize) -> usize {
    let sp = rt.spawner();
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let rem = Arc::new(AtomicUsize::new(n));
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
    n
}

fn chained_spawn<R: Rt>(rt: &R, n: usize) -> usize {
    fn link<S: Spawner>(sp: S, done: smol::channel::Sender<()>, n: usize) {
        if n == 0 {
            done.try_send(()).unwrap();
        } else {
            sp.detach(async move { link(sp, done, n - 1) });
        }
    }
    let sp = rt.spawner();
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    rt.block_on(async {
        sp.detach(async move { link(sp, done_tx, n) });
        done_rx.recv().await.unwrap();
    });
    n
}

fn spawn_one<R: Rt>(rt: &R, n: usize) -> usize {
    let sp = rt.spawner();
    for _ in 0..n {
        rt.block_on(async { sp.spawn(async {}).await });
    }
    n
}

fn spawn_many<R: Rt>(rt: &R, n: usize) -> usize {
    let sp = rt.spawner();
    rt.block_on(async {
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            handles.push(sp.spawn(async {}));
        }
        for h in handles {
            h.await;
        }
    });
    n
}

fn spawn_recursively<R: Rt>(rt: &R, n: usize) -> usize {
    fn go<S: Spawner>(sp: S, i: usize) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            if i != 0 {
                sp.spawn(go(sp, i - 1)).await;
            }
        })
    }
    let steps = n / TASKS;
    let sp = rt.spawner();
    rt.block_on(async {
        let mut handles = Vec::with_capacity(TASKS);
        for _ in 0..TASKS {
            handles.push(sp.spawn(go(sp, steps)));
        }
        for h in handles {
            h.await;
        }
    });
    TASKS * steps
}

fn yield_now<R: Rt>(rt: &R, n: usize) -> usize {
    let steps = n / TASKS;
    let sp = rt.spawner();
    rt.block_on(async {
        let mut handles = Vec::with_capacity(TASKS);
        for _ in 0..TASKS {
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
    TASKS * steps
}

fn channels<R: Rt>(rt: &R, n: usize) -> usize {
    let steps = n / TASKS;
    let sp = rt.spawner();
    rt.block_on(async {
        let mut handles = Vec::with_capacity(TASKS);
        let (first_send, first_recv) = smol::channel::bounded::<()>(1);
        let mut current_recv = first_recv;
        for _ in 0..TASKS {
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
    steps * (TASKS + 1)
}

fn run<R: Rt>(rt: &R, workload: &str, n: usize) -> usize {
    match workload {
        "spawn_many_local" => spawn_many_local(rt, n),
        "spawn_many_remote_idle" => spawn_many_remote_idle(rt, n),
        "spawn_many_remote_busy1" => spawn_many_remote_busy1(rt, n),
        "ping_pong" => ping_pong(rt, n),
        "chained_spawn" => chained_spawn(rt, n),
        "spawn_one" => spawn_one(rt, n),
        "spawn_many" => spawn_many(rt, n),
        "spawn_recursively" => spawn_recursively(rt, n),
        "yield_now" => yield_now(rt, n),
        "channels" => channels(rt, n),
        other => panic!("unknown workload {other:?}"),
    }
}

/// CPU time of this process (zero where not measured).
#[cfg(unix)]
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant the
    // kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(unix))]
fn cpu_time() -> Duration {
    Duration::ZERO
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (rt_name, workload, n, workers) = match &args[1..] {
        [rt, w, n, rest @ ..] => (
            rt.as_str(),
            w.as_str(),
            n.parse::<usize>().expect("N: a number"),
            rest.first()
                .map_or(2, |w| w.parse::<usize>().expect("WORKERS: a number")),
        ),
        _ => {
            eprintln!("usage: sched_probe ebbtide|smol|tokio WORKLOAD N [WORKERS]");
            return;
        }
    };
    let (wall, cpu) = (Instant::now(), cpu_time());
    let mut extra = String::new();
    let stamp = || (wall.elapsed(), cpu_time() - cpu);
    let mut times = None;
    let ops = match rt_name {
        "ebbtide" => {
            let rt = ebbtide::runtime::Runtime::builder()
                .worker_threads(workers)
                .thread_name("probe-ebbtide")
                .build()
                .expect("build ebbtide runtime");
            let rt = EbbRt(rt, workers);
            let ops = run(&rt, workload, n);
            times = Some(stamp());
            // Workers flush their poll counts when they park: let them.
            std::thread::sleep(Duration::from_millis(50));
            let m = rt.0.metrics();
            extra = format!(" worker_polls={} steals={}", m.polls, m.steals);
            ops
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("probe-tokio")
                .enable_time()
                .build()
                .expect("build tokio runtime");
            run(&TokioRt(rt, workers), workload, n)
        }
        "smol" => run(&SmolRt::new(workers), workload, n),
        other => panic!("unknown runtime {other:?}: ebbtide, smol or tokio"),
    };
    let (wall, cpu) = times.unwrap_or_else(stamp);
    println!(
        "{rt_name} {workload} n={n} ops={ops} busy_passes={}{extra} wall={:.2}ms cpu={:.2}ms",
        BUSY_PASSES.load(Relaxed),
        wall.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3
    );
}
