//! HTTP: the same hyper hello-world served by ebbtide, tokio and smol, each
//! in its own process, loaded by `wrk`.
//!
//! `cargo bench --bench http --features hyper [-- [--quick] [--rounds N] [--secs S] [--conns C]]`
//!
//! The server is this bench binary re-executed as `--server VARIANT`: it
//! binds `127.0.0.1:0`, prints `listening ADDR`, and serves until killed.
//! Every variant runs hyper 1.x with hyper-util's `server::conn::auto`
//! (HTTP/1.1, HTTP/2 detected), the runtime's timer set on both, one task
//! per connection, `TCP_NODELAY`, and one worker thread (the server has one
//! core):
//! - `ebbtide`: `ebbtide::hyper::serve` (`EbbtideIo`, `EbbtideExecutor`,
//!   `EbbtideTimer`; the graceful-shutdown watch included), 1 worker.
//! - `tokio`: multi-thread runtime with 1 worker, `tokio::net`, hyper-util's
//!   `TokioIo` / `TokioExecutor` / `TokioTimer`.
//! - `smol`: one `async_executor::Executor` on 1 thread
//!   (`benches/common/smol_rt.rs`), `async_io::Async<TcpStream>`,
//!   smol-hyper's `FuturesIo` / `SmolExecutor` / `SmolTimer`.
//!
//! Every handler answers `GET /` with `Hello, world!` (13 bytes). The
//! server is pinned to core 0 and `wrk` to core 1 (`taskset`); `wrk -t1
//! -cC --latency` runs a warm-up (1 s) and then the
//! measured window (5 s; 1 s with `--quick`) with C = 64 keep-alive
//! connections. Per sample: requests/s and p99 latency (wrk's), and the
//! server's **CPU time per request**: utime + stime of the server process
//! (`/proc/PID/stat`, every thread) across the window, divided by wrk's
//! request count. CPU per request is the steadiest of the three on a
//! shared machine: another process taking the core lowers requests/s but
//! not the work each request costs.
//!
//! Rounds (5; 1 with `--quick`) run the variants in a rotated order, a
//! fresh server process per sample. The table shows min / median / max per
//! variant and the ratios of medians vs tokio (CPU/request and p99:
//! **< 1: ebbtide better**; req/s: **> 1: ebbtide better**), and `bg%`,
//! the share of the machine's CPU other processes used while the variant
//! was measured (the server and wrk, reaped children, are not counted).
//!
//! Needs `wrk` and `taskset` (Linux); without them it says so and exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::load::CpuTicks;
use common::median;

const VARIANTS: [&str; 3] = ["ebbtide", "tokio", "smol"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--server") {
        server::run(args.get(i + 1).map_or("", String::as_str));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let opt = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let cfg = Config {
        rounds: opt("--rounds", if quick { 1 } else { 5 }) as usize,
        warmup_secs: 1,
        secs: opt("--secs", if quick { 1 } else { 5 }),
        conns: opt("--conns", 64),
    };
    if !has("wrk") || !has("taskset") {
        println!("http: skipped (needs `wrk` and `taskset`: scripts/setup.sh installs wrk)");
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (server_core, wrk_core) = if cores >= 2 { ("0", "1") } else { ("0", "0") };
    println!(
        "http: hyper hello-world, wrk -t1 -c{} {} s x {} rounds; server on core {server_core}, wrk on core {wrk_core}",
        cfg.conns, cfg.secs, cfg.rounds
    );
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); VARIANTS.len()];
    let mut bg: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    for round in 0..cfg.rounds {
        for k in 0..VARIANTS.len() {
            let v = (round + k) % VARIANTS.len();
            let before = CpuTicks::now();
            let s = sample(VARIANTS[v], &cfg, server_core, wrk_core);
            // The server and wrk are reaped children: their CPU counts as
            // this process's own, not as background.
            bg[v].push(CpuTicks::now().background_since(before));
            println!(
                "  round {round} {:8} {:>9.0} req/s  p99 {:>7.0} us  {:>6.2} us CPU/req  errors {}",
                VARIANTS[v], s.rps, s.p99_us, s.cpu_us_per_req, s.errors
            );
            samples[v].push(s);
        }
    }
    report(&mut samples, &mut bg);
}

struct Config {
    rounds: usize,
    warmup_secs: u64,
    secs: u64,
    conns: u64,
}

#[derive(Clone, Default)]
struct Sample {
    rps: f64,
    p99_us: f64,
    cpu_us_per_req: f64,
    errors: u64,
}

fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One server process, warmed up, then measured.
fn sample(variant: &str, cfg: &Config, server_core: &str, wrk_core: &str) -> Sample {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Server(
        Command::new("taskset")
            .args(["-c", server_core])
            .arg(exe)
            .args(["--server", variant])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the server's address");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{variant} server said {line:?}"))
        .to_owned();
    let url = format!("http://{addr}/");
    let _ = wrk(wrk_core, cfg.conns, cfg.warmup_secs, &url);
    let cpu0 = proc_cpu_ticks(child.0.id());
    let out = wrk(wrk_core, cfg.conns, cfg.secs, &url);
    let cpu1 = proc_cpu_ticks(child.0.id());
    drop(child);
    let requests = parse_requests(&out);
    let ticks = cpu1.saturating_sub(cpu0);
    let tick_us = 1e6 / clock_ticks_per_sec() as f64;
    Sample {
        rps: parse_after(&out, "Requests/sec:").unwrap_or(0.0),
        p99_us: parse_p99_us(&out).unwrap_or(f64::NAN),
        cpu_us_per_req: ticks as f64 * tick_us / requests.max(1) as f64,
        errors: parse_errors(&out),
    }
}

fn wrk(core: &str, conns: u64, secs: u64, url: &str) -> String {
    let out = Command::new("taskset")
        .args(["-c", core, "wrk", "-t1", "--latency"])
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .arg(url)
        .output()
        .expect("run wrk");
    assert!(out.status.success(), "wrk failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server process, killed and reaped when dropped (also when the bench
/// panics).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of process `pid` (all its threads), in clock ticks.
fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // After `(comm)`: state is field 3; utime and stime are 14 and 15.
    after_comm
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum()
}

#[cfg(not(unix))]
fn clock_ticks_per_sec() -> u64 {
    100
}

#[cfg(unix)]
fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 {
        n as u64
    } else {
        100
    }
}

fn parse_after(out: &str, key: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// wrk's "N requests in 5.00s, ..." line.
fn parse_requests(out: &str) -> u64 {
    out.lines()
        .find_map(|l| {
            let (n, rest) = l.trim().split_once(' ')?;
            rest.starts_with("requests in").then(|| n.parse().ok())?
        })
        .unwrap_or(0)
}

/// wrk's latency distribution line "99%  1.23ms", in microseconds.
fn parse_p99_us(out: &str) -> Option<f64> {
    let v = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))?
        .trim();
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let num: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => num,
        "ms" => num * 1e3,
        "s" => num * 1e6,
        "m" => num * 60e6,
        _ => return None,
    })
}

/// Socket errors and non-2xx responses wrk reports.
fn parse_errors(out: &str) -> u64 {
    let mut n = 0;
    for l in out.lines().map(str::trim) {
        if let Some(rest) = l.strip_prefix("Socket errors:") {
            n += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
        if let Some(rest) = l.strip_prefix("Non-2xx or 3xx responses:") {
            n += rest.trim().parse::<u64>().unwrap_or(0);
        }
    }
    n
}

fn report(samples: &mut [Vec<Sample>], bg: &mut [Vec<f64>]) {
    let stat = |v: &mut Vec<f64>| -> (f64, f64, f64) {
        let mut v = v.clone();
        let med = median(&mut v);
        (v[0], med, v[v.len() - 1])
    };
    let mut medians = Vec::new();
    println!();
    println!(
        "{:8} | {:>26} | {:>24} | {:>24} | {:>4}",
        "runtime",
        "req/s min / med / max",
        "p99 us min / med / max",
        "CPU us/req min/med/max",
        "bg%"
    );
    for (i, v) in samples.iter_mut().enumerate() {
        let (r0, r1, r2) = stat(&mut v.iter().map(|s| s.rps).collect());
        let (p0, p1, p2) = stat(&mut v.iter().map(|s| s.p99_us).collect());
        let (c0, c1, c2) = stat(&mut v.iter().map(|s| s.cpu_us_per_req).collect());
        let b = median(&mut bg[i]);
        println!(
            "{:8} | {r0:>8.0} {r1:>8.0} {r2:>8.0} | {p0:>7.0} {p1:>7.0} {p2:>8.0} | {c0:>7.2} {c1:>7.2} {c2:>8.2} | {b:>4.0}",
            VARIANTS[i]
        );
        medians.push((r1, p1, c1));
    }
    let (tr, tp, tc) = medians[1];
    for (i, (r, p, c)) in medians.iter().enumerate() {
        if i == 1 {
            continue;
        }
        println!(
            "{}/tokio (medians): req/s {:.2}x, p99 {:.2}x, CPU/req {:.2}x",
            VARIANTS[i],
            r / tr,
            p / tp,
            c / tc
        );
    }
}

/// The servers (`--server VARIANT`): bind, print `listening ADDR`, serve
/// until killed.
mod server {
    use std::convert::Infallible;
    use std::io::Write;

    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response};

    async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        Ok(Response::new(Full::new(Bytes::from_static(
            b"Hello, world!",
        ))))
    }

    fn announce(addr: std::net::SocketAddr) {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening {addr}");
        let _ = out.flush();
    }

    fn forever() -> ! {
        loop {
            std::thread::park();
        }
    }

    pub(crate) fn run(variant: &str) {
        match variant {
            "ebbtide" => ebbtide(),
            "tokio" => tokio(),
            "smol" => smol(),
            other => panic!("unknown server variant {other:?}"),
        }
    }

    fn ebbtide() {
        let rt = ebbtide::runtime::Runtime::builder()
            .worker_threads(1)
            .build()
            .expect("ebbtide runtime");
        let listener = rt
            .block_on(ebbtide::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        announce(listener.local_addr().expect("addr"));
        rt.spawn(ebbtide::hyper::serve(
            listener,
            hyper::service::service_fn(hello),
        ))
        .detach();
        forever()
    }

    fn tokio() {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto;

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        announce(listener.local_addr().expect("addr"));
        rt.spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new());
            builder.http2().timer(TokioTimer::new());
            let builder = std::sync::Arc::new(builder);
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let builder = builder.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(hello);
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        forever()
    }

    /// `SmolExecutor` wants something that is `AsRef<Executor>`.
    #[derive(Clone, Copy)]
    struct Ex(&'static async_executor::Executor<'static>);

    impl AsRef<async_executor::Executor<'static>> for Ex {
        fn as_ref(&self) -> &async_executor::Executor<'static> {
            self.0
        }
    }

    fn smol() {
        use hyper_util::server::conn::auto;
        use smol_hyper::rt::{FuturesIo, SmolExecutor, SmolTimer};

        let rt = super::common::smol_rt::SmolRt::new(1);
        let ex = rt.ex;
        let listener =
            async_io::Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).expect("bind");
        announce(listener.get_ref().local_addr().expect("addr"));
        ex.spawn(async move {
            let mut builder = auto::Builder::new(SmolExecutor::new(Ex(ex)));
            builder.http1().timer(SmolTimer::new());
            builder.http2().timer(SmolTimer::new());
            let builder = std::sync::Arc::new(builder);
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.get_ref().set_nodelay(true);
                let builder = builder.clone();
                ex.spawn(async move {
                    let service = hyper::service::service_fn(hello);
                    let _ = builder
                        .serve_connection(FuturesIo::new(stream), service)
                        .await;
                })
                .detach();
            }
        })
        .detach();
        let _rt = rt;
        forever()
    }
}
