//! TCP echo over loopback: ebbtide (futures-io and owned-buffer APIs) vs
//! tokio vs smol, in one process.
//!
//! `cargo bench --bench echo [-- [--quick] [--rounds N] [--json PATH] [FILTER]]`
//!
//! One *cell* is a connection count `C` (1, 64, 256) and a message size `M`
//! (100 B, 1 KiB). For a cell, a runtime runs an echo server (an accept
//! task plus one task per connection, reading into a 4 KiB buffer and
//! writing back what it read) and `C` client tasks, each looping: write `M`
//! bytes, read the `M`-byte echo back in full, check it, count one round
//! trip. All sockets set `TCP_NODELAY`. The clients run for a warm-up
//! (0.25 s; 0.1 s with `--quick`) and then a measured window (2 s; 0.5 s
//! with `--quick`); the result is round trips per second (messages/s) in
//! the window.
//!
//! **Clients run on the same runtime as the server**, as in the usual
//! single-process echo benches: the runtime under test does both ends of
//! every connection, so a round trip costs two sends, two receives and the
//! wake-ups in between, all scheduled by that runtime on its workers. No
//! other runtime's threads compete for the 2 cores, and no foreign client
//! load generator can favour one runtime. The benchmark's main thread only
//! starts a cell, sleeps through the warm-up and the window (flipping an
//! atomic phase flag the clients read after each round trip), and waits
//! for the result: it never runs tasks or polls a reactor.
//!
//! Variants, each with `worker count = 2` (this machine's cores; the
//! core count in general):
//! - `ebbtide`: `ebbtide::net` through the futures-io traits (`write_all`,
//!   `read_exact` from `futures_lite`).
//! - `ebbtide-owned`: the same runtime through `write_all_owned` /
//!   `read_owned`, one reused `Vec` per direction and connection.
//! - `tokio`: multi-thread runtime, `tokio::net` with `AsyncReadExt` /
//!   `AsyncWriteExt`.
//! - `smol`: one `async_executor::Executor` run by 2 threads
//!   (`benches/common/smol_rt.rs`, as in every bench),
//!   `async_io::Async<std::net::TcpStream>`.
//!
//! Every runtime is built once. Per cell, the variants run interleaved: 5
//! rounds (1 with `--quick`; `--rounds N` overrides), the order rotated
//! every round; the table shows the median (and best) messages/s per
//! variant, the throughput ratios of medians ebbtide/tokio and ebbtide/smol
//! (**> 1: ebbtide faster**), and `bg%`, the share of the machine's CPU
//! that other processes used during the cell (from `/proc/stat`, minus this
//! process): on a shared machine, trust cells with a low `bg%`. `--json PATH` writes `[{"name", "ebbtide_ns", "tokio_ns",
//! "smol_ns"}]` in ns per message (lower is better), one entry per cell
//! for the futures-io variant and one named `…-owned` for the owned one.
//!
//! Every cell closes all its sockets before the next starts: clients stop
//! after the window and close, servers see end-of-file and close, the
//! listener closes once it has accepted `C` connections, and the run
//! aborts if the process's open descriptors grow across cells. At most
//! `2 C` + a few sockets are open at once; the soft `RLIMIT_NOFILE` is
//! raised to the hard limit anyway. A watchdog aborts if a cell takes more
//! than 60 s.
//!
//! `--only VARIANT [--conns C] [--size M] [--secs S]` runs one variant on
//! one cell with no warm-up (and builds only that runtime), then prints
//! `round_trips=N`, every round trip the process made: used by
//! `scripts/syscalls-per-echo.sh` to divide `strace -c` counts.

mod common;

use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::fds::{check_fds, open_fds};
use common::load::CpuTicks;
use common::smol_rt::SmolRt;
use common::spawn::{EbbSp, SmolSp, Spawn, TokioSp};
use common::{median, watchdog};

const WORKERS: usize = 2;
/// Server read buffer, the same for every variant.
const SERVER_BUF: usize = 4096;

// ---------------------------------------------------------------------------
// Runtimes
// ---------------------------------------------------------------------------

/// The runtimes a run needs (all of them, or the one `--only` names).
#[derive(Default)]
struct Runtimes {
    ebbtide: Option<ebbtide::runtime::Runtime>,
    tokio: Option<tokio::runtime::Runtime>,
    smol: Option<SmolRt>,
}

impl Runtimes {
    fn build(variants: &[Variant]) -> Runtimes {
        let mut rts = Runtimes::default();
        for v in variants {
            match v {
                Variant::Ebbtide | Variant::EbbtideOwned if rts.ebbtide.is_none() => {
                    rts.ebbtide = Some(
                        ebbtide::runtime::Runtime::builder()
                            .worker_threads(WORKERS)
                            .thread_name("bench-ebbtide")
                            .build()
                            .expect("build ebbtide runtime"),
                    );
                }
                Variant::Tokio => {
                    rts.tokio = Some(
                        tokio::runtime::Builder::new_multi_thread()
                            .worker_threads(WORKERS)
                            .thread_name("bench-tokio")
                            .enable_all()
                            .build()
                            .expect("build tokio runtime"),
                    );
                }
                Variant::Smol => rts.smol = Some(SmolRt::new(WORKERS)),
                _ => {}
            }
        }
        rts
    }

    fn ebb(&self) -> EbbSp {
        EbbSp(
            self.ebbtide
                .as_ref()
                .expect("ebbtide built")
                .handle()
                .clone(),
        )
    }

    /// Runs one cell of variant `v`.
    fn run(&self, v: Variant, cell: Cell, t: Timing) -> Sample {
        match v {
            Variant::Ebbtide => run_cell::<EbbIo>(&self.ebb(), cell, t),
            Variant::EbbtideOwned => run_cell::<EbbOwned>(&self.ebb(), cell, t),
            Variant::Tokio => {
                let sp = TokioSp(self.tokio.as_ref().expect("tokio built").handle().clone());
                run_cell::<TokioIo>(&sp, cell, t)
            }
            Variant::Smol => {
                let sp = SmolSp(self.smol.as_ref().expect("smol built").ex);
                run_cell::<SmolIo>(&sp, cell, t)
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Ebbtide,
    EbbtideOwned,
    Tokio,
    Smol,
}

const VARIANTS: [Variant; 4] = [
    Variant::Ebbtide,
    Variant::EbbtideOwned,
    Variant::Tokio,
    Variant::Smol,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Ebbtide => "ebbtide",
            Variant::EbbtideOwned => "ebbtide-owned",
            Variant::Tokio => "tokio",
            Variant::Smol => "smol",
        }
    }

    fn parse(s: &str) -> Variant {
        VARIANTS
            .into_iter()
            .find(|v| v.name() == s)
            .unwrap_or_else(|| panic!("unknown variant {s:?}: ebbtide, ebbtide-owned, tokio, smol"))
    }
}

// ---------------------------------------------------------------------------
// The echo client and server, once per I/O API
// ---------------------------------------------------------------------------

/// The clients' phase: they count round trips from `MEASURE` on, and stop
/// at `STOP`.
const WARM: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// What one client did.
#[derive(Clone, Copy, Default)]
struct Tally {
    /// Every round trip, warm-up and the last one after `STOP` included.
    total: u64,
    /// Round trips completed while the phase was `MEASURE`.
    measured: u64,
}

impl Tally {
    /// Counts a completed round trip; `false` once the client should stop.
    fn record(&mut self, phase: &AtomicU8) -> bool {
        self.total += 1;
        match phase.load(Relaxed) {
            WARM => true,
            MEASURE => {
                self.measured += 1;
                true
            }
            _ => false,
        }
    }
}

/// One I/O API on one runtime: how to listen, connect, serve and be a client.
trait Echo: 'static {
    type Listener: Send + Sync + 'static;
    type Stream: Send + 'static;

    /// Binds a listener on an ephemeral loopback port.
    fn bind() -> impl Future<Output = io::Result<(Self::Listener, SocketAddr)>> + Send;
    /// Accepts one connection (with `TCP_NODELAY`).
    fn accept(l: &Self::Listener) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Connects to `addr` (with `TCP_NODELAY`).
    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Echoes until end-of-file.
    fn serve(s: Self::Stream) -> impl Future<Output = io::Result<()>> + Send + 'static;
    /// Sends `msg` and reads its echo back until `phase` says stop.
    fn client(
        s: Self::Stream,
        msg: Vec<u8>,
        phase: Arc<AtomicU8>,
    ) -> impl Future<Output = io::Result<Tally>> + Send + 'static;
}

fn check_echo(got: &[u8], sent: &[u8]) -> io::Result<()> {
    match got == sent {
        true => Ok(()),
        false => Err(io::Error::other("echo differs from the message sent")),
    }
}

/// ebbtide through the futures-io traits.
struct EbbIo;

impl Echo for EbbIo {
    type Listener = ebbtide::net::TcpListener;
    type Stream = ebbtide::net::TcpStream;

    async fn bind() -> io::Result<(Self::Listener, SocketAddr)> {
        let l = ebbtide::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        Ok((l, addr))
    }

    async fn accept(l: &Self::Listener) -> io::Result<Self::Stream> {
        let (s, _) = l.accept().await?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        let s = ebbtide::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    fn serve(s: Self::Stream) -> impl Future<Output = io::Result<()>> + Send + 'static {
        serve_futures_io(s)
    }

    fn client(
        s: Self::Stream,
        msg: Vec<u8>,
        phase: Arc<AtomicU8>,
    ) -> impl Future<Output = io::Result<Tally>> + Send + 'static {
        client_futures_io(s, msg, phase)
    }
}

/// Echo server through futures-io (ebbtide and smol).
async fn serve_futures_io<S>(mut s: S) -> io::Result<()>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; SERVER_BUF];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n]).await?;
    }
}

/// Echo client through futures-io (ebbtide and smol).
async fn client_futures_io<S>(mut s: S, msg: Vec<u8>, phase: Arc<AtomicU8>) -> io::Result<Tally>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    let mut back = vec![0u8; msg.len()];
    let mut tally = Tally::default();
    loop {
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        check_echo(&back, &msg)?;
        if !tally.record(&phase) {
            return Ok(tally);
        }
    }
}

/// ebbtide through `read_owned` / `write_all_owned`.
struct EbbOwned;

impl Echo for EbbOwned {
    type Listener = ebbtide::net::TcpListener;
    type Stream = ebbtide::net::TcpStream;

    fn bind() -> impl Future<Output = io::Result<(Self::Listener, SocketAddr)>> + Send {
        EbbIo::bind()
    }

    fn accept(l: &Self::Listener) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        EbbIo::accept(l)
    }

    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        EbbIo::connect(addr)
    }

    async fn serve(s: Self::Stream) -> io::Result<()> {
        use ebbtide::io::BufResult;
        let mut buf = Vec::with_capacity(SERVER_BUF);
        loop {
            buf.clear();
            let BufResult(n, b) = s.read_owned(buf).await;
            if n? == 0 {
                return Ok(());
            }
            let BufResult(res, b) = s.write_all_owned(b).await;
            res?;
            buf = b;
        }
    }

    async fn client(s: Self::Stream, mut msg: Vec<u8>, phase: Arc<AtomicU8>) -> io::Result<Tally> {
        use ebbtide::io::BufResult;
        let size = msg.len();
        let mut back = Vec::with_capacity(size);
        let mut tally = Tally::default();
        loop {
            let BufResult(res, m) = s.write_all_owned(msg).await;
            res?;
            msg = m;
            // The server sends nothing beyond the echo, so reading into
            // spare capacity past `size` cannot take the next message's.
            back.clear();
            while back.len() < size {
                let BufResult(n, b) = s.read_owned(back).await;
                back = b;
                if n? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            check_echo(&back, &msg)?;
            if !tally.record(&phase) {
                return Ok(tally);
            }
        }
    }
}

/// tokio: `tokio::net` with `AsyncReadExt` / `AsyncWriteExt`.
struct TokioIo;

impl Echo for TokioIo {
    type Listener = tokio::net::TcpListener;
    type Stream = tokio::net::TcpStream;

    async fn bind() -> io::Result<(Self::Listener, SocketAddr)> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        Ok((l, addr))
    }

    async fn accept(l: &Self::Listener) -> io::Result<Self::Stream> {
        let (s, _) = l.accept().await?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    async fn serve(mut s: Self::Stream) -> io::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0u8; SERVER_BUF];
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            s.write_all(&buf[..n]).await?;
        }
    }

    async fn client(mut s: Self::Stream, msg: Vec<u8>, phase: Arc<AtomicU8>) -> io::Result<Tally> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut back = vec![0u8; msg.len()];
        let mut tally = Tally::default();
        loop {
            s.write_all(&msg).await?;
            s.read_exact(&mut back).await?;
            check_echo(&back, &msg)?;
            if !tally.record(&phase) {
                return Ok(tally);
            }
        }
    }
}

/// smol: `async_io::Async<std::net::TcpStream>` through futures-io.
struct SmolIo;

impl Echo for SmolIo {
    type Listener = async_io::Async<std::net::TcpListener>;
    type Stream = async_io::Async<std::net::TcpStream>;

    async fn bind() -> io::Result<(Self::Listener, SocketAddr)> {
        let l = async_io::Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0))?;
        let addr = l.get_ref().local_addr()?;
        Ok((l, addr))
    }

    async fn accept(l: &Self::Listener) -> io::Result<Self::Stream> {
        let (s, _) = l.accept().await?;
        s.get_ref().set_nodelay(true)?;
        Ok(s)
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        let s = async_io::Async::<std::net::TcpStream>::connect(addr).await?;
        s.get_ref().set_nodelay(true)?;
        Ok(s)
    }

    fn serve(s: Self::Stream) -> impl Future<Output = io::Result<()>> + Send + 'static {
        serve_futures_io(s)
    }

    fn client(
        s: Self::Stream,
        msg: Vec<u8>,
        phase: Arc<AtomicU8>,
    ) -> impl Future<Output = io::Result<Tally>> + Send + 'static {
        client_futures_io(s, msg, phase)
    }
}

// ---------------------------------------------------------------------------
// One cell
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Cell {
    conns: usize,
    size: usize,
}

impl Cell {
    fn name(self) -> String {
        format!("echo/{}c/{}B", self.conns, self.size)
    }
}

#[derive(Clone, Copy)]
struct Timing {
    warm: Duration,
    window: Duration,
}

/// One run of one variant on one cell.
struct Sample {
    /// Round trips in the window, all clients together.
    measured: u64,
    /// Every round trip the run made.
    total: u64,
    window: Duration,
}

impl Sample {
    fn per_sec(&self) -> f64 {
        self.measured as f64 / self.window.as_secs_f64()
    }
}

/// Client `i`'s message: distinct per client, so crossed echoes fail.
fn message(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|j| (i * 31 + j) as u8).collect()
}

/// Starts `cell` on the runtime behind `sp`, drives its phases from this
/// thread, and collects the tallies once every socket is closed.
fn run_cell<E: Echo>(sp: &impl Spawn, cell: Cell, t: Timing) -> Sample {
    let phase = Arc::new(AtomicU8::new(WARM));
    let (ready_tx, ready_rx) = mpsc::channel();
    let driver = sp.spawn(drive::<E, _>(sp.clone(), cell, phase.clone(), ready_tx));
    // `Err`: the driver failed before its clients started (reported below).
    let started = ready_rx.recv().is_ok();
    let mut window = Duration::ZERO;
    if started {
        std::thread::sleep(t.warm);
        phase.store(MEASURE, Relaxed);
        let start = Instant::now();
        std::thread::sleep(t.window);
        phase.store(STOP, Relaxed);
        window = start.elapsed();
    }
    phase.store(STOP, Relaxed);
    // A plain parker: this thread polls no reactor and runs no tasks.
    let tallies = futures_lite::future::block_on(driver)
        .unwrap_or_else(|e| panic!("{}: echo failed: {e}", cell.name()));
    Sample {
        measured: tallies.iter().map(|t| t.measured).sum(),
        total: tallies.iter().map(|t| t.total).sum(),
        window,
    }
}

/// The cell's root task: listens, connects `conns` clients, signals
/// `ready`, then waits for every client and server task to finish (so all
/// their sockets are closed when it returns).
async fn drive<E: Echo, S: Spawn>(
    sp: S,
    cell: Cell,
    phase: Arc<AtomicU8>,
    ready: mpsc::Sender<()>,
) -> io::Result<Vec<Tally>> {
    let (listener, addr) = E::bind().await?;
    let acceptor = sp.spawn({
        let sp = sp.clone();
        async move {
            let mut servers = Vec::with_capacity(cell.conns);
            for _ in 0..cell.conns {
                let s = E::accept(&listener).await?;
                servers.push(sp.spawn(E::serve(s)));
            }
            io::Result::Ok(servers) // the listener closes here
        }
    });
    let mut clients = Vec::with_capacity(cell.conns);
    for i in 0..cell.conns {
        let s = E::connect(addr).await?;
        clients.push(sp.spawn(E::client(s, message(i, cell.size), phase.clone())));
    }
    let servers = acceptor.await?;
    let _ = ready.send(());
    let mut tallies = Vec::with_capacity(cell.conns);
    for c in clients {
        tallies.push(c.await?);
    }
    for s in servers {
        s.await?;
    }
    Ok(tallies)
}

// ---------------------------------------------------------------------------
// Watchdog, descriptors
// ---------------------------------------------------------------------------

/// A cell that takes longer than this is reported as a hang.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// Raises the soft descriptor limit to the hard one (for large `--conns`).
#[cfg(unix)]
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid `rlimit` read by the call only; raising
        // the soft limit up to the hard one needs no privilege.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

#[cfg(not(unix))]
fn raise_fd_limit() {}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

struct Opts {
    quick: bool,
    rounds: Option<usize>,
    json: Option<String>,
    filter: Option<String>,
    only: Option<Variant>,
    conns: usize,
    size: usize,
    secs: f64,
}

fn parse_args() -> Opts {
    let mut opts = Opts {
        quick: false,
        rounds: None,
        json: None,
        filter: None,
        only: None,
        conns: 64,
        size: 100,
        secs: 2.0,
    };
    let mut args = std::env::args().skip(1);
    let value = |flag: &str, args: &mut dyn Iterator<Item = String>| {
        args.next()
            .unwrap_or_else(|| panic!("{flag} needs a value"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--json" => opts.json = Some(value("--json", &mut args)),
            "--rounds" => opts.rounds = Some(number(&value("--rounds", &mut args))),
            "--only" => opts.only = Some(Variant::parse(&value("--only", &mut args))),
            "--conns" => opts.conns = number(&value("--conns", &mut args)),
            "--size" => opts.size = number(&value("--size", &mut args)),
            "--secs" => opts.secs = number(&value("--secs", &mut args)),
            // `cargo bench` passes `--bench`; ignore it and any other flag.
            s if s.starts_with('-') => {}
            s => opts.filter = Some(s.to_owned()),
        }
    }
    opts
}

fn number<T: std::str::FromStr>(s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| panic!("expected a number, got {s:?}"))
}

/// `--only`: one variant, one cell, no warm-up; prints every round trip.
fn run_only(v: Variant, opts: &Opts) {
    let rts = Runtimes::build(&[v]);
    let cell = Cell {
        conns: opts.conns,
        size: opts.size,
    };
    let timing = Timing {
        warm: Duration::ZERO,
        window: Duration::from_secs_f64(opts.secs),
    };
    watchdog::progress(
        format!("{} on {}", cell.name(), v.name()),
        rts.ebbtide.as_ref().map(|r| r.handle().clone()),
    );
    let s = rts.run(v, cell, timing);
    watchdog::idle();
    println!(
        "{} {}: {:.0} messages/s over {:.2} s",
        v.name(),
        cell.name(),
        s.per_sec(),
        s.window.as_secs_f64()
    );
    println!("round_trips={}", s.total);
}

struct Row {
    cell: Cell,
    /// Median messages/s per variant, in `VARIANTS` order.
    rates: [f64; 4],
    /// Best sample's messages/s per variant (other load only slows a
    /// sample down, so this is the least disturbed one).
    best: [f64; 4],
    /// Mean CPU share other processes took during the cell's samples, %.
    background: f64,
}

fn header() -> String {
    let mut h = format!("| {:<15} |", "cell");
    for v in VARIANTS {
        let _ = write!(h, " {:>17} |", v.name());
    }
    for c in ["e/t", "e/s", "eo/t", "eo/s", "bg%"] {
        let _ = write!(h, " {c:>5} |");
    }
    let _ = write!(h, "\n|{}|", "-".repeat(17));
    for _ in VARIANTS {
        let _ = write!(h, "{}:|", "-".repeat(18));
    }
    for _ in 0..5 {
        let _ = write!(h, "{}:|", "-".repeat(6));
    }
    h
}

fn row_line(r: &Row) -> String {
    let [e, eo, t, s] = r.rates;
    let mut line = format!("| {:<15} |", r.cell.name());
    for (med, best) in r.rates.iter().zip(r.best) {
        let _ = write!(line, " {:>17} |", format!("{med:.0} ({best:.0})"));
    }
    for ratio in [e / t, e / s, eo / t, eo / s] {
        let _ = write!(line, " {ratio:>5.2} |");
    }
    let _ = write!(line, " {:>5.0} |", r.background);
    line
}

/// `--json PATH`: one entry per cell for the futures-io variant and one
/// named `…-owned` for the owned-buffer one, in ns per message.
fn write_json(path: &str, rows: &[Row]) {
    let ns = |rate: f64| 1e9 / rate;
    let mut entries = Vec::new();
    for r in rows {
        let [e, eo, t, s] = r.rates;
        for (suffix, ebb) in [("", e), ("-owned", eo)] {
            entries.push((
                format!("{}{suffix}", r.cell.name()),
                [ns(ebb), ns(t), ns(s)],
            ));
        }
    }
    common::write_json(path, &entries);
}

fn main() {
    let opts = parse_args();
    raise_fd_limit();
    watchdog::start(HANG_LIMIT);
    if let Some(v) = opts.only {
        run_only(v, &opts);
        return;
    }

    let rounds = opts.rounds.unwrap_or(if opts.quick { 1 } else { 5 }).max(1);
    let timing = match opts.quick {
        true => Timing {
            warm: Duration::from_millis(100),
            window: Duration::from_millis(500),
        },
        false => Timing {
            warm: Duration::from_millis(250),
            window: Duration::from_secs(2),
        },
    };
    let cells: Vec<Cell> = [100, 1024]
        .into_iter()
        .flat_map(|size| [1, 64, 256].map(|conns| Cell { conns, size }))
        .filter(|c| {
            opts.filter
                .as_ref()
                .is_none_or(|f| c.name().contains(f.as_str()))
        })
        .collect();

    let rts = Runtimes::build(&VARIANTS);
    let fd_baseline = open_fds();
    println!(
        "TCP echo over loopback, clients and server on the same runtime, {WORKERS} workers each; \
         {} mode: {rounds} round(s) per cell, {} ms warm-up + {} ms window per sample, \
         variant order rotated per round",
        if opts.quick { "quick" } else { "full" },
        timing.warm.as_millis(),
        timing.window.as_millis(),
    );
    println!(
        "cells: median (best) round trips (messages) per second; e = ebbtide (futures-io), \
         eo = ebbtide-owned; ratios are of medians and of throughput: > 1 means ebbtide is \
         faster; bg%: mean share of the machine's CPU other processes used during the cell\n"
    );
    println!("{}", header());

    let total = Instant::now();
    let mut rows = Vec::new();
    for cell in cells {
        let mut samples: [Vec<f64>; 4] = Default::default();
        let mut background = Vec::new();
        for round in 0..rounds {
            for k in 0..VARIANTS.len() {
                let which = (round + k) % VARIANTS.len();
                let v = VARIANTS[which];
                let what = format!("{} on {} (round {})", cell.name(), v.name(), round + 1);
                let ebb =
                    matches!(v, Variant::Ebbtide | Variant::EbbtideOwned).then(|| rts.ebb().0);
                watchdog::progress(what.clone(), ebb);
                let before = CpuTicks::now();
                let s = rts.run(v, cell, timing);
                background.push(CpuTicks::now().background_since(before));
                watchdog::idle();
                check_fds(fd_baseline, &what);
                samples[which].push(s.per_sec());
            }
        }
        let row = Row {
            cell,
            best: samples
                .each_ref()
                .map(|v| v.iter().copied().fold(0.0, f64::max)),
            rates: samples.map(|mut v| median(&mut v)),
            background: background.iter().sum::<f64>() / background.len() as f64,
        };
        println!("{}", row_line(&row));
        rows.push(row);
    }
    println!("\ntotal time: {:.1} s", total.elapsed().as_secs_f64());
    if let Some(path) = &opts.json {
        write_json(path, &rows);
    }
}
