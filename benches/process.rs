//! Child processes: `ebbtide::process` vs `tokio::process` vs async-process
//! (on smol's executor), in one process.
//!
//! `cargo bench --bench process [-- [--quick] [--rounds N] [FILTER]]`
//!
//! Workloads (sizes full / `--quick`):
//! - `spawn_wait`: `/bin/true` run 1,000 / 200 times, at most 64 at a time:
//!   64 tasks each take the next index from a shared counter and run
//!   `Command::new("/bin/true").status().await` until all are taken.
//! - `pipe`: one `cat` with stdin and stdout piped; one task writes 64 / 8
//!   MiB into its stdin in 64 KiB `write_all`s and then closes it, another
//!   reads its stdout into a 64 KiB buffer until end-of-file, counting the
//!   bytes and summing them (checked against what was written, so all three
//!   move the same data); then the child is waited for.
//!
//! Runtimes, 2 workers each (this machine's cores), built once:
//! - ebbtide: `Runtime::builder().worker_threads(2)`, `ebbtide::process`.
//! - tokio: `new_multi_thread().worker_threads(2).enable_all()`,
//!   `tokio::process`.
//! - async-process: on one `async_executor::Executor` run by 2 threads, each
//!   `async_io::block_on(ex.run(..))` (`benches/common/smol_rt.rs`, as in
//!   every bench). async-process reaps through its own `async-process`
//!   thread (started on first use, in the warm-up).
//!
//! A sample is one run of a workload: its root task is spawned onto the
//! runtime from the main thread, which then only parks until it is done
//! (`futures_lite::future::block_on` on the join handle), like `echo.rs`.
//! Per workload: 1 warm-up round, then 7 measured rounds (3 with
//! `--quick`; `--rounds N` overrides), the order of the runtimes rotated
//! every round. Per sample it records:
//! - **wall**: elapsed time of the run;
//! - **cpu**: this process's user + system time (every thread: workers,
//!   reactors, async-process's reaper thread), `getrusage(RUSAGE_SELF)`,
//!   the same counters as `/proc/self/stat`'s utime + stime but in µs
//!   instead of 10 ms ticks;
//! - **child cpu**: the reaped children's user + system time,
//!   `getrusage(RUSAGE_CHILDREN)` (= cutime + cstime). A child's CPU is not
//!   in the parent's, and a child only counts once it is reaped: every
//!   workload reaps all its children before it returns.
//!
//! The table shows, per workload and metric, the median (min) per runtime
//! and the ratios ebbtide/tokio (`e/t`) and ebbtide/async-process (`e/a`):
//! the ratio of the medians, then (min–max) of the ratios of the samples of
//! the same round. **< 1: ebbtide faster.** `bg%` is the share of the
//! machine's CPU that other processes used during the workload's samples
//! (from `/proc/stat`, minus this process and its children): on this shared
//! machine, trust rows with a low `bg%`, and prefer the CPU rows.
//!
//! The run aborts if a sample leaves descriptors open (pipes, pidfds) or a
//! sample hangs for 60 s (watchdog).

mod common;

use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fds::{check_fds, open_fds};
use common::load::CpuTicks;
use common::smol_rt::SmolRt;
use common::spawn::{EbbSp, SmolSp, Spawn, TokioSp};
use common::{median, watchdog};

const WORKERS: usize = 2;
/// Children of `spawn_wait` running at once, at most.
const IN_FLIGHT: usize = 64;
/// `pipe`'s write size and read buffer, the same for every runtime.
const CHUNK: usize = 64 * 1024;
/// A sample that takes longer than this is reported as a hang.
const HANG_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The three process APIs
// ---------------------------------------------------------------------------

/// One library's child processes: what the workloads need of it.
trait Procs: 'static {
    type Child: Send + 'static;
    type Stdin: Send + 'static;
    type Stdout: Send + 'static;

    /// `Command::new("/bin/true").status()`.
    fn run_true() -> impl Future<Output = io::Result<ExitStatus>> + Send;
    /// Starts `cat` with stdin and stdout piped (inside the runtime).
    fn spawn_cat() -> io::Result<(Self::Child, Self::Stdin, Self::Stdout)>;
    fn write_all(
        stdin: &mut Self::Stdin,
        buf: &[u8],
    ) -> impl Future<Output = io::Result<()>> + Send;
    fn read(
        stdout: &mut Self::Stdout,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send;
    fn wait(child: Self::Child) -> impl Future<Output = io::Result<ExitStatus>> + Send;
}

/// The pipes a child was spawned with, or an error naming the missing one.
fn pipes<I, O>(stdin: Option<I>, stdout: Option<O>) -> io::Result<(I, O)> {
    match (stdin, stdout) {
        (Some(i), Some(o)) => Ok((i, o)),
        _ => Err(io::Error::other("cat spawned without its pipes")),
    }
}

struct Ebb;

impl Procs for Ebb {
    type Child = ebbtide::process::Child;
    type Stdin = ebbtide::process::ChildStdin;
    type Stdout = ebbtide::process::ChildStdout;

    async fn run_true() -> io::Result<ExitStatus> {
        ebbtide::process::Command::new("/bin/true").status().await
    }

    fn spawn_cat() -> io::Result<(Self::Child, Self::Stdin, Self::Stdout)> {
        use ebbtide::process::Stdio;
        let mut child = ebbtide::process::Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (i, o) = pipes(child.stdin.take(), child.stdout.take())?;
        Ok((child, i, o))
    }

    async fn write_all(stdin: &mut Self::Stdin, buf: &[u8]) -> io::Result<()> {
        futures_lite::AsyncWriteExt::write_all(stdin, buf).await
    }

    async fn read(stdout: &mut Self::Stdout, buf: &mut [u8]) -> io::Result<usize> {
        futures_lite::AsyncReadExt::read(stdout, buf).await
    }

    async fn wait(mut child: Self::Child) -> io::Result<ExitStatus> {
        child.wait().await
    }
}

struct Tokio;

impl Procs for Tokio {
    type Child = tokio::process::Child;
    type Stdin = tokio::process::ChildStdin;
    type Stdout = tokio::process::ChildStdout;

    async fn run_true() -> io::Result<ExitStatus> {
        tokio::process::Command::new("/bin/true").status().await
    }

    fn spawn_cat() -> io::Result<(Self::Child, Self::Stdin, Self::Stdout)> {
        let mut child = tokio::process::Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (i, o) = pipes(child.stdin.take(), child.stdout.take())?;
        Ok((child, i, o))
    }

    async fn write_all(stdin: &mut Self::Stdin, buf: &[u8]) -> io::Result<()> {
        tokio::io::AsyncWriteExt::write_all(stdin, buf).await
    }

    async fn read(stdout: &mut Self::Stdout, buf: &mut [u8]) -> io::Result<usize> {
        tokio::io::AsyncReadExt::read(stdout, buf).await
    }

    async fn wait(mut child: Self::Child) -> io::Result<ExitStatus> {
        child.wait().await
    }
}

struct AsyncProcess;

impl Procs for AsyncProcess {
    type Child = async_process::Child;
    type Stdin = async_process::ChildStdin;
    type Stdout = async_process::ChildStdout;

    async fn run_true() -> io::Result<ExitStatus> {
        async_process::Command::new("/bin/true").status().await
    }

    fn spawn_cat() -> io::Result<(Self::Child, Self::Stdin, Self::Stdout)> {
        let mut child = async_process::Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (i, o) = pipes(child.stdin.take(), child.stdout.take())?;
        Ok((child, i, o))
    }

    async fn write_all(stdin: &mut Self::Stdin, buf: &[u8]) -> io::Result<()> {
        futures_lite::AsyncWriteExt::write_all(stdin, buf).await
    }

    async fn read(stdout: &mut Self::Stdout, buf: &mut [u8]) -> io::Result<usize> {
        futures_lite::AsyncReadExt::read(stdout, buf).await
    }

    async fn wait(mut child: Self::Child) -> io::Result<ExitStatus> {
        child.status().await
    }
}

// ---------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Work {
    /// `/bin/true` this many times, `IN_FLIGHT` at a time.
    SpawnWait(usize),
    /// This many bytes through `cat`.
    Pipe(usize),
}

impl Work {
    fn name(self) -> String {
        match self {
            Work::SpawnWait(n) => format!("spawn_wait/{n}"),
            Work::Pipe(bytes) => format!("pipe/{}MiB", bytes >> 20),
        }
    }
}

fn check_success(what: &str, status: ExitStatus) -> io::Result<()> {
    match status.success() {
        true => Ok(()),
        false => Err(io::Error::other(format!("{what} failed: {status}"))),
    }
}

/// `Work::SpawnWait`: `IN_FLIGHT` lanes share the `n` runs.
async fn spawn_wait<P: Procs, S: Spawn>(sp: S, n: usize) -> io::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let lanes: Vec<_> = (0..IN_FLIGHT.min(n))
        .map(|_| {
            let next = next.clone();
            sp.spawn(async move {
                while next.fetch_add(1, Relaxed) < n {
                    check_success("/bin/true", P::run_true().await?)?;
                }
                io::Result::Ok(())
            })
        })
        .collect();
    for lane in lanes {
        lane.await?;
    }
    Ok(())
}

/// What went through the pipe: byte count and byte sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Moved {
    bytes: u64,
    sum: u64,
}

impl Moved {
    fn add(&mut self, buf: &[u8]) {
        self.bytes += buf.len() as u64;
        self.sum = buf
            .iter()
            .fold(self.sum, |s, &b| s.wrapping_add(u64::from(b)));
    }
}

/// The block `pipe` writes again and again.
fn chunk() -> Vec<u8> {
    (0..CHUNK).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// What `pipe` must read back for `total` bytes written.
fn expected(total: usize) -> Moved {
    let mut one = Moved::default();
    one.add(&chunk());
    let n = (total / CHUNK) as u64;
    Moved {
        bytes: one.bytes * n,
        sum: one.sum.wrapping_mul(n),
    }
}

/// `Work::Pipe`: one writer task, one reader task, then the wait.
async fn pipe<P: Procs, S: Spawn>(sp: S, total: usize) -> io::Result<Moved> {
    let (child, mut stdin, mut stdout) = P::spawn_cat()?;
    let writer = sp.spawn(async move {
        let block = chunk();
        for _ in 0..total / CHUNK {
            P::write_all(&mut stdin, &block).await?;
        }
        io::Result::Ok(()) // dropping `stdin` closes it: `cat` sees end-of-file
    });
    let reader = sp.spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        let mut moved = Moved::default();
        loop {
            match P::read(&mut stdout, &mut buf).await? {
                0 => return io::Result::Ok(moved),
                n => moved.add(&buf[..n]),
            }
        }
    });
    writer.await?;
    let moved = reader.await?;
    check_success("cat", P::wait(child).await?)?;
    Ok(moved)
}

/// Runs `work` as one task on the runtime behind `sp`; this thread only
/// parks until it is done.
fn run_work<P: Procs, S: Spawn>(sp: &S, work: Work) -> io::Result<()> {
    let sp2 = sp.clone();
    let root = sp.spawn(async move {
        match work {
            Work::SpawnWait(n) => spawn_wait::<P, S>(sp2, n).await,
            Work::Pipe(total) => {
                let moved = pipe::<P, S>(sp2, total).await?;
                match moved == expected(total) {
                    true => Ok(()),
                    false => Err(io::Error::other(format!(
                        "read back {moved:?}, wrote {:?}",
                        expected(total)
                    ))),
                }
            }
        }
    });
    futures_lite::future::block_on(root)
}

// ---------------------------------------------------------------------------
// Runtimes, measurement
// ---------------------------------------------------------------------------

const NAMES: [&str; 3] = ["ebbtide", "tokio", "async-process"];

struct Runtimes {
    ebbtide: ebbtide::runtime::Runtime,
    tokio: tokio::runtime::Runtime,
    smol: SmolRt,
}

impl Runtimes {
    fn build() -> Runtimes {
        Runtimes {
            ebbtide: ebbtide::runtime::Runtime::builder()
                .worker_threads(WORKERS)
                .thread_name("bench-ebbtide")
                .build()
                .expect("build ebbtide runtime"),
            tokio: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .thread_name("bench-tokio")
                .enable_all()
                .build()
                .expect("build tokio runtime"),
            smol: SmolRt::new(WORKERS),
        }
    }

    /// Runs `work` on runtime `which` (an index into `NAMES`).
    fn run(&self, which: usize, work: Work) -> io::Result<()> {
        match which {
            0 => run_work::<Ebb, _>(&EbbSp(self.ebbtide.handle().clone()), work),
            1 => run_work::<Tokio, _>(&TokioSp(self.tokio.handle().clone()), work),
            _ => run_work::<AsyncProcess, _>(&SmolSp(self.smol.ex), work),
        }
    }
}

/// CPU time used so far by this process and by its reaped children.
#[derive(Clone, Copy, Default)]
struct Cpu {
    own: Duration,
    children: Duration,
}

impl Cpu {
    #[cfg(unix)]
    fn now() -> Cpu {
        fn usage(who: libc::c_int) -> Duration {
            // SAFETY: `rusage` is plain data; all-zero is a valid value.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: `ru` is a valid, writable `rusage` for the call.
            if unsafe { libc::getrusage(who, &mut ru) } != 0 {
                return Duration::ZERO;
            }
            let tv = |t: libc::timeval| {
                Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
            };
            tv(ru.ru_utime) + tv(ru.ru_stime)
        }
        Cpu {
            own: usage(libc::RUSAGE_SELF),
            children: usage(libc::RUSAGE_CHILDREN),
        }
    }

    #[cfg(not(unix))]
    fn now() -> Cpu {
        Cpu::default()
    }
}

/// One sample: the `METRICS`, in seconds.
type Sample = [f64; 3];

/// What a `Sample` holds, in order (and in the table's order).
const METRICS: [&str; 3] = ["wall", "cpu", "child cpu"];

fn measure(rts: &Runtimes, which: usize, work: Work) -> Sample {
    let (cpu0, t0) = (Cpu::now(), Instant::now());
    rts.run(which, work)
        .unwrap_or_else(|e| panic!("{} on {}: {e}", work.name(), NAMES[which]));
    let (wall, cpu1) = (t0.elapsed(), Cpu::now());
    [
        wall.as_secs_f64(),
        (cpu1.own - cpu0.own).as_secs_f64(),
        (cpu1.children - cpu0.children).as_secs_f64(),
    ]
}

// ---------------------------------------------------------------------------
// Table
// ---------------------------------------------------------------------------

fn fmt_s(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

fn header() -> String {
    let mut h = format!("| {:<15} | {:<9} |", "workload", "metric");
    for name in NAMES {
        let _ = write!(h, " {:>23} |", format!("{name} med (min)"));
    }
    let _ = write!(h, " {:>16} | {:>16} | {:>3} |", "e/t", "e/a", "bg%");
    let _ = write!(h, "\n|{}|{}|", "-".repeat(17), "-".repeat(11));
    for _ in NAMES {
        let _ = write!(h, "{}:|", "-".repeat(24));
    }
    let _ = write!(
        h,
        "{}:|{}:|{}:|",
        "-".repeat(17),
        "-".repeat(17),
        "-".repeat(4)
    );
    h
}

/// `ratio of medians (min–max of the per-round ratios)`.
fn ratio_cell(ebb: &[f64], other: &[f64]) -> String {
    let per_round: Vec<f64> = ebb.iter().zip(other).map(|(e, o)| e / o).collect();
    let lo = per_round.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = per_round.iter().copied().fold(0.0, f64::max);
    let med = median(&mut ebb.to_vec()) / median(&mut other.to_vec());
    format!("{med:.2} ({lo:.2}–{hi:.2})")
}

/// The rows of one workload: one per metric.
fn rows(work: Work, samples: &[Vec<Sample>; 3], background: f64) -> String {
    let mut out = String::new();
    for (m, metric) in METRICS.iter().enumerate() {
        let values: Vec<Vec<f64>> = samples
            .iter()
            .map(|v| v.iter().map(|s| s[m]).collect())
            .collect();
        let _ = write!(out, "| {:<15} | {metric:<9} |", work.name());
        for v in &values {
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let cell = format!("{} ({})", fmt_s(median(&mut v.clone())), fmt_s(min));
            let _ = write!(out, " {cell:>23} |");
        }
        let _ = write!(
            out,
            " {:>16} | {:>16} | {background:>3.0} |",
            ratio_cell(&values[0], &values[1]),
            ratio_cell(&values[0], &values[2])
        );
        out.push('\n');
    }
    out.pop();
    out
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

struct Opts {
    quick: bool,
    rounds: Option<usize>,
    filter: Option<String>,
    /// `--only NAME`: measure this runtime alone (for `perf` / `strace`).
    only: Option<usize>,
}

fn parse_args() -> Opts {
    let mut opts = Opts {
        quick: false,
        rounds: None,
        filter: None,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--rounds" => {
                let n = args.next().expect("--rounds needs a value");
                opts.rounds = Some(n.parse().expect("--rounds: a number"));
            }
            "--only" => {
                let name = args.next().expect("--only needs a runtime");
                let which = NAMES.iter().position(|n| *n == name);
                opts.only = Some(which.unwrap_or_else(|| panic!("--only: one of {NAMES:?}")));
            }
            // `cargo bench` passes `--bench`; ignore it and any other flag.
            s if s.starts_with('-') => {}
            s => opts.filter = Some(s.to_owned()),
        }
    }
    opts
}

/// One warm-up round and `rounds` measured ones of `work`, the runtimes
/// in rotated order (only `opts.only` if set). Returns the measured
/// samples per runtime, in round order, and the background load (`bg%`)
/// over the measured rounds.
fn measure_work(rts: &Runtimes, work: Work, rounds: usize, opts: &Opts) -> ([Vec<Sample>; 3], f64) {
    let fd_baseline = open_fds();
    let mut samples: [Vec<Sample>; 3] = Default::default();
    let mut start = CpuTicks::now();
    for round in 0..=rounds {
        if round == 1 {
            start = CpuTicks::now();
        }
        for k in 0..NAMES.len() {
            let which = (round + k) % NAMES.len();
            if opts.only.is_some_and(|only| only != which) {
                continue;
            }
            let phase = match round {
                0 => "warm-up".to_owned(),
                r => format!("round {r}"),
            };
            let what = format!("{} on {} ({phase})", work.name(), NAMES[which]);
            let ebb = (which == 0).then(|| rts.ebbtide.handle().clone());
            watchdog::progress(what.clone(), ebb);
            let s = measure(rts, which, work);
            watchdog::idle();
            check_fds(fd_baseline, &what);
            if round > 0 {
                samples[which].push(s);
            }
        }
    }
    (samples, CpuTicks::now().background_since(start))
}

fn main() {
    if !cfg!(unix) {
        println!("process bench: Unix only (/bin/true, cat)");
        return;
    }
    let opts = parse_args();
    let rounds = opts.rounds.unwrap_or(if opts.quick { 3 } else { 7 }).max(1);
    let (spawns, bytes) = match opts.quick {
        true => (200, 8 << 20),
        false => (1000, 64 << 20),
    };
    let works: Vec<Work> = [Work::SpawnWait(spawns), Work::Pipe(bytes)]
        .into_iter()
        .filter(|w| {
            opts.filter
                .as_ref()
                .is_none_or(|f| w.name().contains(f.as_str()))
        })
        .collect();

    watchdog::start(HANG_LIMIT);
    let rts = Runtimes::build();
    println!(
        "child processes: ebbtide::process vs tokio::process vs async-process (smol's executor), \
         {WORKERS} workers each; {} mode: 1 warm-up + {rounds} measured round(s) per workload, \
         runtime order rotated per round; at most {IN_FLIGHT} children in flight, {} KiB pipe chunks",
        if opts.quick { "quick" } else { "full" },
        CHUNK / 1024,
    );
    println!(
        "cells: median (min) per run; cpu = this process (all threads), child cpu = the reaped \
         children; e/t, e/a: ratio of medians (min–max of the per-round ratios), < 1: ebbtide \
         faster; bg%: share of the machine's CPU other processes used\n"
    );
    if opts.only.is_none() {
        println!("{}", header());
    }

    let total = Instant::now();
    for work in works {
        let (samples, bg) = measure_work(&rts, work, rounds, &opts);
        match opts.only {
            None => println!("{}", rows(work, &samples, bg)),
            Some(which) => {
                let mut line = format!(
                    "{} on {}: {} runs, medians:",
                    work.name(),
                    NAMES[which],
                    rounds
                );
                for (m, metric) in METRICS.iter().enumerate() {
                    let mut v: Vec<f64> = samples[which].iter().map(|s| s[m]).collect();
                    let _ = write!(line, " {metric} {}", fmt_s(median(&mut v)));
                }
                println!("{line} (plus 1 warm-up run)");
            }
        }
    }
    println!("\ntotal time: {:.1} s", total.elapsed().as_secs_f64());
}
