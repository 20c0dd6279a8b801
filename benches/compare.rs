//! Side-by-side scheduler benchmark: ebbtide vs tokio vs smol.
//!
//! `cargo bench --bench compare [-- [--quick] [--json PATH] [FILTER]]`
//!
//! Every workload is written once, generically over `Rt` / `Spawner`
//! (`benches/common/sched.rs`, which also holds the scheduler workloads
//! `sched_probe.rs` runs under callgrind), so the three runtimes run
//! exactly the same code: the same futures, the same
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
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::sched::{self, EbbRt, Rt, Spawner, TokioRt};
use common::smol_rt::SmolRt;
use common::{median, watchdog};

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
        Kind::SpawnManyLocal => sched::spawn_many_local(rt, sz.spawn, iters),
        Kind::SpawnManyRemoteIdle => sched::spawn_many_remote_idle(rt, sz.spawn, iters),
        Kind::SpawnManyRemoteBusy1 => sched::spawn_many_remote_busy1(rt, sz.spawn, iters),
        Kind::PingPong => sched::ping_pong(rt, sz.pings, iters),
        Kind::YieldMany => yield_many(rt, sz.yield_tasks, sz.yield_steps, iters),
        Kind::ChainedSpawn => sched::chained_spawn(rt, sz.chain, iters),
        Kind::SpawnOne => sched::spawn_one(rt, iters),
        Kind::SpawnMany => sched::spawn_many(rt, sz.light, iters),
        Kind::SpawnRecursively => sched::spawn_recursively(rt, sz.rec.0, sz.rec.1, iters),
        Kind::YieldNow => sched::yield_now(rt, sz.yields.0, sz.yields.1, iters),
        Kind::Channels => sched::channels(rt, sz.channels.0, sz.channels.1, iters),
        Kind::Timers => timers(rt, sz.timers, iters),
        Kind::TimersBig => timers(rt, sz.timers_big, iters),
        Kind::TimersFire => timers_fire(rt, sz.timers_fire, iters),
    }
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
