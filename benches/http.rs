//! HTTP/1.1 keep-alive hello-world served by ebbtide (on each I/O backend),
//! tokio, smol, compio and monoio, each in its own process, loaded by `wrk`.
//!
//! `cargo bench --bench http --features hyper [-- [--quick] [--rounds N] [--secs S] [--conns C] [--only VARIANT[,VARIANT...]] [--json PATH]]`
//!
//! The server is this bench binary re-executed as `--server VARIANT`: it
//! binds `127.0.0.1:0`, prints `listening ADDR` (or `unavailable: WHY` when
//! its runtime cannot be built here, e.g. io_uring refused: the row then
//! says so), and serves until killed. Every server has one thread doing
//! the work (the server has one core), one task per connection and
//! `TCP_NODELAY`. Two kinds of server:
//!
//! **hyper** (`hyper-*`): hyper 1.x with hyper-util's `server::conn::auto`
//! (HTTP/1.1, HTTP/2 detected), the runtime's timer set on both; every
//! handler answers `GET /` with `Hello, world!` (13 bytes):
//! - `hyper-ebb-epoll` / `hyper-ebb-uring`: `ebbtide::hyper::serve`
//!   (`EbbtideIo`, `EbbtideExecutor`, `EbbtideTimer`; the graceful-shutdown
//!   watch included), 1 worker, built with `io_backend(IoBackend::Epoll)` /
//!   `io_backend(IoBackend::IoUring)`.
//! - `hyper-tokio`: multi-thread runtime with 1 worker, `tokio::net`,
//!   hyper-util's `TokioIo` / `TokioExecutor` / `TokioTimer`.
//! - `hyper-smol`: one `async_executor::Executor` on 1 thread
//!   (`benches/common/smol_rt.rs`), `async_io::Async<TcpStream>`,
//!   smol-hyper's `FuturesIo` / `SmolExecutor` / `SmolTimer`.
//!
//! **raw** (`raw-*`): hyper does not run on compio or monoio directly, so a
//! minimal HTTP/1.1 keep-alive responder, the same logic on each runtime's
//! owned-buffer TCP API, makes those rows comparable among themselves (not
//! with the hyper rows: no parsing, no `date` header). Per connection it
//! loops:
//! 1. read into an owned 4 KiB buffer (reused);
//! 2. count the request heads the bytes complete (each ends with
//!    `\r\n\r\n`; a partial head is kept for the next read; wrk sends no
//!    bodies and does not pipeline, so this is one per read);
//! 3. write that many copies of a fixed `200 OK` response with
//!    `Content-Length: 13` and `Hello, world!` from an owned buffer (reused)
//!    with write-all; end-of-file or an error closes the connection.
//!
//! The raw variants: `raw-ebb-epoll` / `raw-ebb-uring` (ebbtide,
//! `read_owned` / `write_all_owned`, 1 worker, on `IoBackend::Epoll` /
//! `IoBackend::IoUring`, sockets by readiness on both), `raw-ebb-uring-ring`
//! (the same on io_uring with `io_uring_sockets(true)`: every read and
//! write one op in the ring), `raw-tokio` (1 worker; tokio has no owned-buffer
//! socket API: `AsyncReadExt::read` into the buffer, `write_all` from the
//! other), `raw-compio` (one compio runtime on the io_uring driver on the
//! main thread; `AsyncRead::read(Vec)`, `AsyncWriteExt::write_all(Vec)`)
//! and `raw-monoio` (one `RuntimeBuilder::<IoUringDriver>` runtime on the
//! main thread; `AsyncReadRent::read(Vec)`, `AsyncWriteRentExt::write_all(Vec)`);
//! compio and monoio are Linux only.
//!
//! The server is pinned to core 0 and `wrk` to core 1 (`taskset`); `wrk -t1
//! -cC --latency` runs a warm-up (1 s) and then the measured window (5 s;
//! 1 s with `--quick`) with C = 64 keep-alive connections. Per sample:
//! requests/s and p99 latency (wrk's), and the server's **CPU time per
//! request**: utime + stime of the server process (`/proc/PID/stat`, every
//! thread) across the window, divided by wrk's request count. CPU per
//! request is the steadiest of the three on a shared machine: another
//! process taking the core lowers requests/s but not the work each request
//! costs.
//!
//! **System calls per request**, on the server side only (what a server
//! operator sees): after the measured window, a third `wrk` run of 1 s
//! loads the same server while `perf stat -e raw_syscalls:sys_enter -p PID`
//! counts every system call the server process's threads enter (wrk starts
//! once perf holds an event on every server thread, and perf is stopped
//! with `SIGINT` right after wrk returns); the count divided by that run's
//! requests is the column. A separate window, so that the tracepoint's cost
//! stays out of the CPU column. Where `perf` cannot count that tracepoint
//! (no permission, no tracefs), `strace -c -f -p PID` counts instead (its
//! ptrace stops slow the server in that window only); without either, the
//! column says `n/a`. The header line names the method used;
//! `HTTP_BENCH_SYSCALLS=perf|strace|none` forces one.
//! `scripts/setup.sh` installs `wrk` and `perf` (Debian's `linux-perf`).
//!
//! Rounds (5; 1 with `--quick`) run the variants in a rotated order, a
//! fresh server process per sample. The table shows min / median / max per
//! variant, the median syscalls per request, and `bg%`, the share of the
//! machine's CPU other processes used while the variant was measured (the
//! server and wrk, reaped children, are not counted). Ratios of medians
//! follow: each hyper row vs `hyper-tokio`, each raw row vs `raw-tokio`,
//! and the raw ebbtide rows vs `raw-compio` and `raw-monoio` (CPU/request
//! and p99: **< 1: better**; req/s: **> 1: better**).
//!
//! `--json PATH` also writes the CPU medians for
//! `scripts/plot-benchmarks.py`, paired like the ratios: one entry per
//! ebbtide variant that ran, named `http cpu/req VARIANT`, `{"name",
//! "ebbtide_ns", "tokio_ns", "smol_ns", "compio_ns", "monoio_ns"}`: the
//! median CPU ns per request of that variant and of each peer of its kind
//! that ran (a hyper row: `hyper-tokio`, `hyper-smol`; a raw row:
//! `raw-tokio`, `raw-compio`, `raw-monoio`), a peer's key only where it
//! ran; a variant with no peer has no entry.
//!
//! Needs `wrk` and `taskset` (Linux); without them it says so and exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::load::CpuTicks;
use common::median;

const VARIANTS: [&str; 10] = [
    "hyper-ebb-epoll",
    "hyper-ebb-uring",
    "hyper-tokio",
    "hyper-smol",
    "raw-ebb-epoll",
    "raw-ebb-uring",
    "raw-ebb-uring-ring",
    "raw-tokio",
    "raw-compio",
    "raw-monoio",
];

/// Width of the variant-name column: the longest name.
const NAME_W: usize = {
    let mut w = 0;
    let mut i = 0;
    while i < VARIANTS.len() {
        if VARIANTS[i].len() > w {
            w = VARIANTS[i].len();
        }
        i += 1;
    }
    w
};

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
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_owned).collect());
    let json = args
        .iter()
        .position(|a| a == "--json")
        .map(|i| args.get(i + 1).expect("--json needs a PATH").clone());
    for o in only.iter().flatten() {
        assert!(
            VARIANTS.contains(&o.as_str()),
            "--only {o:?}: one of {VARIANTS:?}"
        );
    }
    let cfg = Config {
        rounds: opt("--rounds", if quick { 1 } else { 5 }) as usize,
        warmup_secs: 1,
        secs: opt("--secs", if quick { 1 } else { 5 }),
        syscall_secs: 1,
        conns: opt("--conns", 64),
        counter: SyscallCounter::detect(),
    };
    if !has("wrk") || !has("taskset") {
        println!("http: skipped (needs `wrk` and `taskset`: scripts/setup.sh installs wrk)");
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (server_core, wrk_core) = if cores >= 2 { ("0", "1") } else { ("0", "0") };
    println!(
        "http: wrk -t1 -c{} {} s x {} rounds; server on core {server_core}, wrk on core {wrk_core}; \
         syscalls/request: {}",
        cfg.conns,
        cfg.secs,
        cfg.rounds,
        cfg.counter.describe()
    );
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); VARIANTS.len()];
    let mut bg: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    let mut unavailable: Vec<Option<String>> = vec![None; VARIANTS.len()];
    for round in 0..cfg.rounds {
        for k in 0..VARIANTS.len() {
            let v = (round + k) % VARIANTS.len();
            if unavailable[v].is_some()
                || only
                    .as_ref()
                    .is_some_and(|o| !o.iter().any(|o| o == VARIANTS[v]))
            {
                continue;
            }
            let before = CpuTicks::now();
            let s = match sample(VARIANTS[v], &cfg, server_core, wrk_core) {
                Ok(s) => s,
                Err(why) => {
                    println!("  round {round} {:NAME_W$} unavailable: {why}", VARIANTS[v]);
                    unavailable[v] = Some(why);
                    continue;
                }
            };
            // The server and wrk are reaped children: their CPU counts as
            // this process's own, not as background.
            bg[v].push(CpuTicks::now().background_since(before));
            println!(
                "  round {round} {:NAME_W$} {:>9.0} req/s  p99 {:>7.0} us  {:>6.2} us CPU/req  {:>5.2} syscalls/req  errors {}",
                VARIANTS[v], s.rps, s.p99_us, s.cpu_us_per_req, s.syscalls_per_req, s.errors
            );
            samples[v].push(s);
        }
    }
    let medians = report(&mut samples, &mut bg, &unavailable);
    if let Some(path) = json {
        write_json(&path, &medians);
    }
}

struct Config {
    rounds: usize,
    warmup_secs: u64,
    secs: u64,
    /// The length of the syscall-counting window.
    syscall_secs: u64,
    conns: u64,
    counter: SyscallCounter,
}

#[derive(Clone, Default)]
struct Sample {
    rps: f64,
    p99_us: f64,
    cpu_us_per_req: f64,
    /// NaN where no counter could run.
    syscalls_per_req: f64,
    errors: u64,
}

fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How system calls are counted on the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SyscallCounter {
    /// `perf stat -e raw_syscalls:sys_enter -p PID`.
    Perf,
    /// `strace -c -f -p PID`.
    Strace,
    None,
}

impl SyscallCounter {
    /// `HTTP_BENCH_SYSCALLS=perf|strace|none` if set; else perf if it
    /// counts the tracepoint here (a probe on `true`), else strace if
    /// present.
    fn detect() -> SyscallCounter {
        match std::env::var("HTTP_BENCH_SYSCALLS").as_deref() {
            Ok("perf") => return SyscallCounter::Perf,
            Ok("strace") => return SyscallCounter::Strace,
            Ok("none") => return SyscallCounter::None,
            _ => {}
        }
        let perf_counts = Command::new("perf")
            .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"])
            .stdout(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| parse_perf_count(&String::from_utf8_lossy(&o.stderr)))
            .is_some_and(|n| n > 0);
        match () {
            _ if perf_counts => SyscallCounter::Perf,
            _ if has("strace") => SyscallCounter::Strace,
            _ => SyscallCounter::None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            SyscallCounter::Perf => {
                "perf stat -e raw_syscalls:sys_enter -p SERVER over a separate 1 s wrk run"
            }
            SyscallCounter::Strace => "strace -c -f -p SERVER over a separate 1 s wrk run",
            SyscallCounter::None => "n/a (neither perf nor strace can count here)",
        }
    }

    /// Attaches to `pid`; `stop` ends the count and returns it.
    fn start(self, pid: u32) -> Option<Child> {
        let pid = pid.to_string();
        let mut cmd = match self {
            SyscallCounter::Perf => {
                let mut c = Command::new("perf");
                c.args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", &pid]);
                c
            }
            SyscallCounter::Strace => {
                let mut c = Command::new("strace");
                c.args(["-c", "-f", "-p", &pid]);
                c
            }
            SyscallCounter::None => return None,
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        // Wait until it counts on every thread of the server before the
        // load starts (at most 10 s; then count anyway).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.attached(child.id(), &pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Some(child)
    }

    /// Whether the counter `counter` watches every thread of `pid`: perf
    /// holds one `perf_event` descriptor per thread; strace is every
    /// thread's tracer.
    fn attached(self, counter: u32, pid: &str) -> bool {
        let threads: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        match self {
            SyscallCounter::Perf => {
                let events = std::fs::read_dir(format!("/proc/{counter}/fd"))
                    .map(|d| {
                        d.filter_map(Result::ok)
                            .filter_map(|e| std::fs::read_link(e.path()).ok())
                            .filter(|l| l.to_string_lossy().contains("perf_event"))
                            .count()
                    })
                    .unwrap_or(0);
                events >= threads.len()
            }
            SyscallCounter::Strace => threads.iter().all(|t| {
                std::fs::read_to_string(t.join("status")).is_ok_and(|st| {
                    st.lines()
                        .find_map(|l| l.strip_prefix("TracerPid:"))
                        .is_some_and(|v| v.trim() == counter.to_string())
                })
            }),
            SyscallCounter::None => true,
        }
    }

    /// Stops the counter (`SIGINT`: both print their summary) and returns
    /// the number of system calls it saw.
    fn stop(self, child: Child) -> Option<u64> {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().ok()?;
        let err = String::from_utf8_lossy(&out.stderr);
        match self {
            SyscallCounter::Perf => parse_perf_count(&err),
            SyscallCounter::Strace => parse_strace_total(&err),
            SyscallCounter::None => None,
        }
    }
}

/// `perf stat -x,`'s line `COUNT,,raw_syscalls:sys_enter,...`.
fn parse_perf_count(out: &str) -> Option<u64> {
    out.lines()
        .find(|l| l.contains("raw_syscalls:sys_enter"))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.trim().parse().ok())
}

/// `strace -c`'s last line `100.00  S  U  CALLS  [ERRORS]  total`.
fn parse_strace_total(out: &str) -> Option<u64> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with("total"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// One server process, warmed up, then measured; `Err` when the server
/// says its runtime cannot run here.
fn sample(
    variant: &str,
    cfg: &Config,
    server_core: &str,
    wrk_core: &str,
) -> Result<Sample, String> {
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
    if let Some(why) = line.trim().strip_prefix("unavailable: ") {
        return Err(why.to_owned());
    }
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{variant} server said {line:?}"))
        .to_owned();
    let url = format!("http://{addr}/");
    let pid = child.0.id();
    let _ = wrk(wrk_core, cfg.conns, cfg.warmup_secs, &url);
    let cpu0 = common::proc_cpu_ns(&pid.to_string());
    let out = wrk(wrk_core, cfg.conns, cfg.secs, &url);
    let cpu1 = common::proc_cpu_ns(&pid.to_string());
    // The syscall window: its own wrk run, the counter attached.
    let syscalls_per_req = match cfg.counter.start(pid) {
        Some(counter) => {
            let out = wrk(wrk_core, cfg.conns, cfg.syscall_secs, &url);
            cfg.counter
                .stop(counter)
                .map_or(f64::NAN, |n| n as f64 / parse_requests(&out).max(1) as f64)
        }
        None => f64::NAN,
    };
    drop(child);
    let requests = parse_requests(&out);
    Ok(Sample {
        rps: parse_after(&out, "Requests/sec:").unwrap_or(0.0),
        p99_us: parse_p99_us(&out).unwrap_or(f64::NAN),
        cpu_us_per_req: (cpu1 - cpu0) / 1e3 / requests.max(1) as f64,
        syscalls_per_req,
        errors: parse_errors(&out),
    })
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

/// Prints the table and the ratios; returns the medians of req/s, p99,
/// CPU/request and syscalls/request per variant (`None`: it did not run).
fn report(
    samples: &mut [Vec<Sample>],
    bg: &mut [Vec<f64>],
    unavailable: &[Option<String>],
) -> Vec<Option<[f64; 4]>> {
    let stat = |v: &mut Vec<f64>| -> (f64, f64, f64) {
        let mut v = v.clone();
        let med = median(&mut v);
        (v[0], med, v[v.len() - 1])
    };
    // Medians of req/s, p99, CPU/request and syscalls/request per variant.
    let mut medians: Vec<Option<[f64; 4]>> = vec![None; VARIANTS.len()];
    println!();
    println!(
        "{:NAME_W$} | {:>26} | {:>24} | {:>24} | {:>8} | {:>4}",
        "server",
        "req/s min / med / max",
        "p99 us min / med / max",
        "CPU us/req min/med/max",
        "sys/req",
        "bg%"
    );
    for (i, v) in samples.iter_mut().enumerate() {
        if let Some(why) = &unavailable[i] {
            println!("{:NAME_W$} | unavailable: {why}", VARIANTS[i]);
            continue;
        }
        if v.is_empty() {
            continue; // `--only` another one
        }
        let (r0, r1, r2) = stat(&mut v.iter().map(|s| s.rps).collect());
        let (p0, p1, p2) = stat(&mut v.iter().map(|s| s.p99_us).collect());
        let (c0, c1, c2) = stat(&mut v.iter().map(|s| s.cpu_us_per_req).collect());
        let (_, s1, _) = stat(&mut v.iter().map(|s| s.syscalls_per_req).collect());
        let b = median(&mut bg[i]);
        println!(
            "{:NAME_W$} | {r0:>8.0} {r1:>8.0} {r2:>8.0} | {p0:>7.0} {p1:>7.0} {p2:>8.0} | {c0:>7.2} {c1:>7.2} {c2:>8.2} | {s1:>8.2} | {b:>4.0}",
            VARIANTS[i]
        );
        medians[i] = Some([r1, p1, c1, s1]);
    }
    let idx = |name: &str| VARIANTS.iter().position(|v| *v == name).expect("a variant");
    let ratio = |x: usize, base: usize| {
        let (Some(a), Some(b)) = (medians[x], medians[base]) else {
            return;
        };
        println!(
            "{}/{} (medians): req/s {:.2}x, p99 {:.2}x, CPU/req {:.2}x, syscalls/req {:.2}x",
            VARIANTS[x],
            VARIANTS[base],
            a[0] / b[0],
            a[1] / b[1],
            a[2] / b[2],
            a[3] / b[3]
        );
    };
    for x in ["hyper-ebb-epoll", "hyper-ebb-uring", "hyper-smol"] {
        ratio(idx(x), idx("hyper-tokio"));
    }
    for x in [
        "raw-ebb-epoll",
        "raw-ebb-uring",
        "raw-ebb-uring-ring",
        "raw-compio",
        "raw-monoio",
    ] {
        ratio(idx(x), idx("raw-tokio"));
    }
    for x in ["raw-ebb-epoll", "raw-ebb-uring", "raw-ebb-uring-ring"] {
        for base in ["raw-compio", "raw-monoio"] {
            ratio(idx(x), idx(base));
        }
    }
    medians
}

/// Ebbtide variants and the peers of the same kind they are compared with.
struct Pairing {
    ebbtide: &'static [&'static str],
    /// `(JSON key without `_ns`, peer variant)`.
    peers: &'static [(&'static str, &'static str)],
}

/// The pairs of `--json`: hyper vs hyper, raw vs raw.
const PAIRS: [Pairing; 2] = [
    Pairing {
        ebbtide: &["hyper-ebb-epoll", "hyper-ebb-uring"],
        peers: &[("tokio", "hyper-tokio"), ("smol", "hyper-smol")],
    },
    Pairing {
        ebbtide: &["raw-ebb-epoll", "raw-ebb-uring", "raw-ebb-uring-ring"],
        peers: &[
            ("tokio", "raw-tokio"),
            ("compio", "raw-compio"),
            ("monoio", "raw-monoio"),
        ],
    },
];

/// `--json PATH`: per ebbtide variant that ran, its median CPU ns per
/// request and those of its peers that ran (`medians` from `report`).
fn write_json(path: &str, medians: &[Option<[f64; 4]>]) {
    let cpu_ns = |name: &str| {
        let i = VARIANTS.iter().position(|v| *v == name).expect("a variant");
        medians[i].map(|m| m[2] * 1e3)
    };
    let mut rows = Vec::new();
    for Pairing { ebbtide, peers } in PAIRS {
        for &e in ebbtide {
            let Some(ebbtide_ns) = cpu_ns(e) else {
                continue;
            };
            let peers: Vec<_> = peers
                .iter()
                .filter_map(|&(key, peer)| Some((key, cpu_ns(peer)?)))
                .collect();
            if !peers.is_empty() {
                rows.push(common::JsonRow {
                    name: format!("http cpu/req {e}"),
                    ebbtide_ns,
                    peers,
                });
            }
        }
    }
    common::write_json_rows(path, &rows);
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

    /// Says why the server cannot run here (the parent reports the row as
    /// unavailable) and exits.
    fn unavailable(why: impl std::fmt::Display) -> ! {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "unavailable: {why}");
        let _ = out.flush();
        std::process::exit(0)
    }

    pub(crate) fn run(variant: &str) {
        use ebbtide::runtime::IoBackend;
        match variant {
            "hyper-ebb-epoll" => ebbtide(IoBackend::Epoll),
            "hyper-ebb-uring" => ebbtide(IoBackend::IoUring),
            "hyper-tokio" => tokio(),
            "hyper-smol" => smol(),
            "raw-ebb-epoll" => raw::ebbtide(IoBackend::Epoll, false),
            "raw-ebb-uring" => raw::ebbtide(IoBackend::IoUring, false),
            "raw-ebb-uring-ring" => raw::ebbtide(IoBackend::IoUring, true),
            "raw-tokio" => raw::tokio(),
            #[cfg(target_os = "linux")]
            "raw-compio" => raw::compio(),
            #[cfg(target_os = "linux")]
            "raw-monoio" => raw::monoio(),
            #[cfg(not(target_os = "linux"))]
            "raw-compio" | "raw-monoio" => unavailable("Linux only (io_uring)"),
            other => panic!("unknown server variant {other:?}"),
        }
    }

    /// A 1-worker ebbtide runtime on `backend`, or the server says why not
    /// and exits.
    fn ebbtide_rt(
        backend: ebbtide::runtime::IoBackend,
        ring_sockets: bool,
    ) -> ebbtide::runtime::Runtime {
        let rt = ebbtide::runtime::Runtime::builder()
            .worker_threads(1)
            .io_backend(backend)
            .io_uring_sockets(ring_sockets)
            .build()
            .unwrap_or_else(|e| unavailable(e));
        match rt.metrics().io_backend {
            b if b == backend => rt,
            b => unavailable(format!("asked for {backend:?}, runs {b:?}")),
        }
    }

    fn ebbtide(backend: ebbtide::runtime::IoBackend) {
        let rt = ebbtide_rt(backend, false);
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

    /// The raw HTTP/1.1 responder on each runtime's owned-buffer TCP API
    /// (steps in the module doc).
    mod raw {
        use super::{announce, forever};
        use std::io;

        /// What every raw server answers to every request.
        pub(super) const RESPONSE: &[u8] =
            b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";
        /// The read buffer's capacity.
        const BUF: usize = 4096;

        /// Splits a connection's byte stream into request heads (ending
        /// with `\r\n\r\n`): the bytes of an incomplete head wait here for
        /// the next read.
        #[derive(Default)]
        pub(super) struct Heads {
            partial: Vec<u8>,
        }

        impl Heads {
            /// Feeds the bytes of one read; returns how many heads they
            /// complete.
            pub(super) fn feed(&mut self, data: &[u8]) -> usize {
                if self.partial.is_empty() {
                    let (n, rest) = Self::count(data);
                    self.partial.extend_from_slice(rest);
                    n
                } else {
                    self.partial.extend_from_slice(data);
                    let (n, rest) = Self::count(&self.partial);
                    let keep = rest.len();
                    let start = self.partial.len() - keep;
                    self.partial.drain(..start);
                    n
                }
            }

            /// Complete heads in `data`, and the bytes after the last one.
            fn count(data: &[u8]) -> (usize, &[u8]) {
                let (mut n, mut rest) = (0, data);
                while let Some(i) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
                    n += 1;
                    rest = &rest[i + 4..];
                }
                (n, rest)
            }
        }

        /// Fills `out` with `n` responses.
        fn responses(out: &mut Vec<u8>, n: usize) {
            out.clear();
            for _ in 0..n {
                out.extend_from_slice(RESPONSE);
            }
        }

        pub(super) fn ebbtide(backend: ebbtide::runtime::IoBackend, ring_sockets: bool) {
            let rt = super::ebbtide_rt(backend, ring_sockets);
            let listener = rt
                .block_on(ebbtide::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind");
            announce(listener.local_addr().expect("addr"));
            rt.spawn(async move {
                loop {
                    let Ok((s, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = s.set_nodelay(true);
                    ebbtide::spawn(ebbtide_conn(s)).detach();
                }
            })
            .detach();
            forever()
        }

        async fn ebbtide_conn(s: ebbtide::net::TcpStream) -> io::Result<()> {
            use ebbtide::io::BufResult;
            let (mut heads, mut rbuf, mut wbuf) = (
                Heads::default(),
                Vec::with_capacity(BUF),
                Vec::with_capacity(BUF),
            );
            loop {
                rbuf.clear();
                let BufResult(n, b) = s.read_owned(rbuf).await;
                rbuf = b;
                if n? == 0 {
                    return Ok(());
                }
                responses(&mut wbuf, heads.feed(&rbuf));
                if !wbuf.is_empty() {
                    let BufResult(res, b) = s.write_all_owned(wbuf).await;
                    res?;
                    wbuf = b;
                }
            }
        }

        pub(super) fn tokio() {
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
                loop {
                    let Ok((s, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = s.set_nodelay(true);
                    tokio::spawn(tokio_conn(s));
                }
            });
            forever()
        }

        async fn tokio_conn(mut s: tokio::net::TcpStream) -> io::Result<()> {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut heads, mut rbuf, mut wbuf) =
                (Heads::default(), vec![0; BUF], Vec::with_capacity(BUF));
            loop {
                let n = s.read(&mut rbuf).await?;
                if n == 0 {
                    return Ok(());
                }
                responses(&mut wbuf, heads.feed(&rbuf[..n]));
                s.write_all(&wbuf).await?;
            }
        }

        /// One compio runtime (io_uring driver) on this thread.
        #[cfg(target_os = "linux")]
        pub(super) fn compio() {
            crate::common::tpc::Tpc::Compio.block_on(async {
                let listener = compio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                announce(listener.local_addr().expect("addr"));
                loop {
                    let Ok((s, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = s.set_nodelay(true);
                    compio::runtime::spawn(compio_conn(s)).detach();
                }
            })
        }

        #[cfg(target_os = "linux")]
        async fn compio_conn(mut s: compio::net::TcpStream) -> io::Result<()> {
            use compio::io::{AsyncRead, AsyncWriteExt};
            use compio::BufResult;
            let (mut heads, mut rbuf, mut wbuf) = (
                Heads::default(),
                Vec::with_capacity(BUF),
                Vec::with_capacity(BUF),
            );
            loop {
                // `read` fills the buffer from its start and sets its length.
                let BufResult(n, b) = s.read(rbuf).await;
                rbuf = b;
                if n? == 0 {
                    return Ok(());
                }
                responses(&mut wbuf, heads.feed(&rbuf));
                if !wbuf.is_empty() {
                    let BufResult(res, b) = s.write_all(wbuf).await;
                    res?;
                    wbuf = b;
                }
            }
        }

        /// One monoio runtime (`IoUringDriver`) on this thread.
        #[cfg(target_os = "linux")]
        pub(super) fn monoio() {
            crate::common::tpc::Tpc::Monoio.block_on(async {
                let listener = monoio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                announce(listener.local_addr().expect("addr"));
                loop {
                    let Ok((s, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = s.set_nodelay(true);
                    monoio::spawn(monoio_conn(s));
                }
            })
        }

        #[cfg(target_os = "linux")]
        async fn monoio_conn(mut s: monoio::net::TcpStream) -> io::Result<()> {
            use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
            let (mut heads, mut rbuf, mut wbuf) = (
                Heads::default(),
                Vec::with_capacity(BUF),
                Vec::with_capacity(BUF),
            );
            loop {
                // `read` fills the buffer from its start and sets its length.
                let (n, b) = s.read(rbuf).await;
                rbuf = b;
                if n? == 0 {
                    return Ok(());
                }
                responses(&mut wbuf, heads.feed(&rbuf));
                if !wbuf.is_empty() {
                    let (res, b) = s.write_all(wbuf).await;
                    res?;
                    wbuf = b;
                }
            }
        }
    }
}
