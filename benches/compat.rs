//! What a tokio-only crate costs on ebbtide: a small TCP ping-pong over
//! loopback with tokio's `TcpStream` inside `async_compat::Compat` on an
//! ebbtide runtime, against ebbtide's own `TcpStream`, and against tokio's
//! `TcpStream` on tokio for reference.
//!
//! `cargo bench --bench compat [-- [--quick] [--reps N] [--rounds N]]`
//!
//! One sample: one connection, a client task and a server task on the same
//! runtime (2 workers, this machine's cores). The client writes an `M`-byte
//! message (1 B and 64 B) and reads the `M`-byte echo back, `rounds` times
//! (10,000; 1,000 with `--quick`) after 100 unmeasured warm-up rounds; the
//! server echoes until end-of-file. Both sockets set `TCP_NODELAY`. The
//! main thread only starts a sample and waits for its result on a std
//! channel: it runs no task.
//!
//! Variants:
//! - `ebbtide`: `ebbtide::net::TcpStream` through the futures-io traits.
//! - `compat-client`: the same ebbtide server; the client is tokio's
//!   `TcpStream` inside `Compat` (one tokio-based client crate talking to
//!   an ebbtide or outside server: only its end pays).
//! - `compat`: the same ebbtide runtime, both ends tokio's
//!   `tokio::net::{TcpListener, TcpStream}` and `tokio::io` traits, each
//!   task wrapped in `Compat::new`. tokio's sockets register with the
//!   tokio reactor that async-compat runs on its own thread
//!   (`async-compat/tokio-1`, started on first use): every readiness event
//!   is noticed there and wakes the ebbtide task across threads.
//! - `tokio`: the tokio code of `compat` without `Compat`, on a tokio
//!   multi-thread runtime (2 workers): what the same crate costs at home.
//!
//! Reported per variant and size, the median over `--reps` samples (5; 1
//! with `--quick`), variants interleaved with the order rotated per rep:
//! **CPU time per round trip** (this process's user + system time from
//! `getrusage`, every thread: workers, the compat thread, the idle other
//! runtime), wall time per round trip, and for the compat variants the share of that
//! CPU spent on the `async-compat/tokio-1` thread (from
//! `/proc/self/task/<tid>/schedstat`, ns on CPU). CPU time is far steadier
//! than wall time on a shared machine. Also printed: the threads the
//! process gained when `Compat` was first used (Linux; `/proc/self/task`).
//! A watchdog aborts a sample stuck for 60 s.

mod common;

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_compat::Compat;
use common::{median, watchdog};

const WORKERS: usize = 2;
const WARM_ROUNDS: usize = 100;
const SIZES: [usize; 2] = [1, 64];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Ebbtide,
    CompatClient,
    Compat,
    Tokio,
}

const VARIANTS: [Variant; 4] = [
    Variant::Ebbtide,
    Variant::CompatClient,
    Variant::Compat,
    Variant::Tokio,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Ebbtide => "ebbtide",
            Variant::CompatClient => "compat-client",
            Variant::Compat => "compat",
            Variant::Tokio => "tokio",
        }
    }
}

// ---------------------------------------------------------------------------
// CPU time
// ---------------------------------------------------------------------------

/// This process's user + system time, every thread (zero where
/// `getrusage` is missing).
#[cfg(unix)]
fn process_cpu() -> Duration {
    // SAFETY: `rusage` is plain data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage` for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(not(unix))]
fn process_cpu() -> Duration {
    Duration::ZERO
}

/// This process's threads: (tid, name) from `/proc/self/task` (empty
/// where there is no `/proc`).
fn threads() -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|t| {
        let t = t.ok()?;
        let name = std::fs::read_to_string(t.path().join("comm")).ok()?;
        Some((
            t.file_name().to_string_lossy().into_owned(),
            name.trim_end().to_string(),
        ))
    })
    .collect()
}

/// CPU time of the `async-compat/tokio-1` thread so far (the kernel
/// truncates names to 15 bytes: `async-compat/to`), zero if it is not
/// running or there is no `/proc`.
fn compat_thread_cpu() -> Duration {
    threads()
        .into_iter()
        .find(|(_, name)| name.starts_with("async-compat"))
        .and_then(|(tid, _)| {
            let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
            let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
            Some(Duration::from_nanos(ns))
        })
        .unwrap_or_default()
}

/// What one sample measured, over its measured rounds.
#[derive(Clone, Copy)]
struct Sample {
    cpu: Duration,
    wall: Duration,
    compat_thread: Duration,
}

/// Takes the measurement around `rounds` of `round`.
struct Meter {
    cpu: Duration,
    at: Instant,
    compat_thread: Duration,
}

impl Meter {
    fn start() -> Meter {
        Meter {
            compat_thread: compat_thread_cpu(),
            cpu: process_cpu(),
            at: Instant::now(),
        }
    }

    fn stop(self) -> Sample {
        let wall = self.at.elapsed();
        let cpu = process_cpu() - self.cpu;
        Sample {
            cpu,
            wall,
            compat_thread: compat_thread_cpu().saturating_sub(self.compat_thread),
        }
    }
}

// ---------------------------------------------------------------------------
// The ping-pong, once per I/O API
// ---------------------------------------------------------------------------

/// An ebbtide server (its sockets, the futures-io traits) and a client
/// task on the current ebbtide runtime: ebbtide's own `TcpStream`, or
/// (`tokio_client`) tokio's inside `Compat`.
async fn ebbtide_ping_pong(size: usize, rounds: usize, tokio_client: bool) -> io::Result<Sample> {
    use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
    let listener = ebbtide::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = ebbtide::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; size];
        while s.read_exact(&mut buf).await.is_ok() {
            s.write_all(&buf).await?;
        }
        io::Result::Ok(())
    });
    let sample = match tokio_client {
        true => Compat::new(tokio_client_rounds(addr, size, rounds)).await?,
        false => {
            let mut c = ebbtide::net::TcpStream::connect(addr).await?;
            c.set_nodelay(true)?;
            let msg = vec![7u8; size];
            let mut back = vec![0u8; size];
            let mut meter = None;
            for i in 0..WARM_ROUNDS + rounds {
                if i == WARM_ROUNDS {
                    meter = Some(Meter::start());
                }
                c.write_all(&msg).await?;
                c.read_exact(&mut back).await?;
            }
            assert_eq!(back, msg, "echo differs from the message sent");
            meter.expect("rounds > 0").stop()
        }
    };
    server
        .await
        .map_err(|e| io::Error::other(e.to_string()))??;
    Ok(sample)
}

/// tokio's sockets and `tokio::io` traits; the server is a task `spawn`
/// starts at once (on ebbtide inside `Compat`, or on tokio), returning a
/// future of its result.
async fn tokio_ping_pong<S, H>(size: usize, rounds: usize, spawn: S) -> io::Result<Sample>
where
    S: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<()>> + Send>>) -> H,
    H: std::future::Future<Output = io::Result<()>>,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = spawn(Box::pin(async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; size];
        while s.read_exact(&mut buf).await.is_ok() {
            s.write_all(&buf).await?;
        }
        Ok(())
    }));
    let sample = tokio_client_rounds(addr, size, rounds).await?;
    server.await?;
    Ok(sample)
}

/// The client with tokio's `TcpStream`: connects, runs the warm-up and the
/// measured rounds, closes.
async fn tokio_client_rounds(addr: SocketAddr, size: usize, rounds: usize) -> io::Result<Sample> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await?;
    c.set_nodelay(true)?;
    let msg = vec![7u8; size];
    let mut back = vec![0u8; size];
    let mut meter = None;
    for i in 0..WARM_ROUNDS + rounds {
        if i == WARM_ROUNDS {
            meter = Some(Meter::start());
        }
        c.write_all(&msg).await?;
        c.read_exact(&mut back).await?;
    }
    assert_eq!(back, msg, "echo differs from the message sent");
    Ok(meter.expect("rounds > 0").stop())
}

struct Runtimes {
    ebbtide: ebbtide::runtime::Runtime,
    tokio: tokio::runtime::Runtime,
}

impl Runtimes {
    /// Runs one sample of `v` as a task; the main thread only waits.
    fn run(&self, v: Variant, size: usize, rounds: usize) -> Sample {
        let (tx, rx) = mpsc::channel();
        match v {
            Variant::Ebbtide | Variant::CompatClient => {
                let tokio_client = v == Variant::CompatClient;
                self.ebbtide.spawn(async move {
                    let _ = tx.send(ebbtide_ping_pong(size, rounds, tokio_client).await);
                });
            }
            Variant::Compat => {
                self.ebbtide.spawn(Compat::new(async move {
                    let spawn = |f| {
                        let h = ebbtide::spawn(Compat::new(f));
                        async { h.await.map_err(|e| io::Error::other(e.to_string()))? }
                    };
                    let _ = tx.send(tokio_ping_pong(size, rounds, spawn).await);
                }));
            }
            Variant::Tokio => {
                self.tokio.spawn(async move {
                    let spawn = |f| {
                        let h = tokio::spawn(f);
                        async { h.await.map_err(|e| io::Error::other(e.to_string()))? }
                    };
                    let _ = tx.send(tokio_ping_pong(size, rounds, spawn).await);
                });
            }
        }
        rx.recv()
            .expect("the sample's task ended without a result")
            .unwrap_or_else(|e| panic!("{} ping-pong failed: {e}", v.name()))
    }
}

struct Opts {
    quick: bool,
    reps: Option<usize>,
    rounds: Option<usize>,
}

fn parse_args() -> Opts {
    let mut opts = Opts {
        quick: false,
        reps: None,
        rounds: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = |what: &str| -> Option<usize> {
            let v = args.next().and_then(|v| v.parse().ok());
            Some(v.unwrap_or_else(|| panic!("{what} takes a number")))
        };
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--reps" => opts.reps = number("--reps"),
            "--rounds" => opts.rounds = number("--rounds"),
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown argument {other:?}: --quick, --reps N, --rounds N"),
        }
    }
    opts
}

fn micros(d: Duration, rounds: usize) -> f64 {
    d.as_secs_f64() * 1e6 / rounds as f64
}

fn main() {
    let opts = parse_args();
    let reps = opts.reps.unwrap_or(if opts.quick { 1 } else { 5 }).max(1);
    let rounds = opts
        .rounds
        .unwrap_or(if opts.quick { 1_000 } else { 10_000 })
        .max(1);
    watchdog::start(Duration::from_secs(60));

    let rts = Runtimes {
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
    };

    // The threads `Compat` adds: compare before and after its first use.
    let before = threads();
    watchdog::progress(
        "the first use of Compat".into(),
        Some(rts.ebbtide.handle().clone()),
    );
    rts.run(Variant::Compat, 1, 1);
    watchdog::idle();
    // By thread id: a thread started just before may have been renamed since.
    let added: Vec<String> = threads()
        .into_iter()
        .filter(|(tid, _)| !before.iter().any(|(b, _)| b == tid))
        .map(|(_, name)| name)
        .collect();

    println!(
        "TCP ping-pong over loopback, one connection, client and server tasks on one runtime \
         ({WORKERS} workers); {} mode: {reps} rep(s) x {rounds} round trips per cell, variant \
         order rotated per rep",
        if opts.quick { "quick" } else { "full" }
    );
    println!(
        "threads started by the first use of Compat: {} {added:?}",
        added.len()
    );
    println!(
        "per size and variant: median CPU µs per round trip (every thread of the process), its \
         ratio to ebbtide's, median wall µs per round trip, and the share of the CPU spent on \
         the async-compat/tokio-1 thread\n"
    );
    println!(
        "{:<6} {:<14} | {:>8} {:>9} | {:>8} | {:>13}",
        "size", "variant", "cpu µs", "cpu/ebb", "wall µs", "compat thread"
    );
    for size in SIZES {
        let mut cpu: [Vec<f64>; 4] = Default::default();
        let mut wall: [Vec<f64>; 4] = Default::default();
        let mut share: [Vec<f64>; 4] = Default::default();
        for rep in 0..reps {
            for k in 0..VARIANTS.len() {
                let which = (rep + k) % VARIANTS.len();
                let v = VARIANTS[which];
                let ebb = (v != Variant::Tokio).then(|| rts.ebbtide.handle().clone());
                watchdog::progress(format!("{} B on {} (rep {})", size, v.name(), rep + 1), ebb);
                let s = rts.run(v, size, rounds);
                watchdog::idle();
                cpu[which].push(micros(s.cpu, rounds));
                wall[which].push(micros(s.wall, rounds));
                if matches!(v, Variant::Compat | Variant::CompatClient) && !s.cpu.is_zero() {
                    share[which].push(100.0 * s.compat_thread.as_secs_f64() / s.cpu.as_secs_f64());
                }
            }
        }
        let cpu = cpu.map(|mut v| median(&mut v));
        let wall = wall.map(|mut v| median(&mut v));
        for (k, v) in VARIANTS.into_iter().enumerate() {
            let share = match share[k].is_empty() {
                true => "-".to_string(),
                false => format!("{:.0} %", median(&mut share[k])),
            };
            println!(
                "{:<6} {:<14} | {:>8.2} {:>9.2} | {:>8.2} | {:>13}",
                format!("{size} B"),
                v.name(),
                cpu[k],
                cpu[k] / cpu[0],
                wall[k],
                share
            );
        }
    }
}
