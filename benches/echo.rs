//! TCP echo over loopback: ebbtide (futures-io, and owned buffers on each
//! I/O backend) vs tokio, smol, compio and monoio, in one process.
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
//! with `--quick`); the results are round trips per second (messages/s) in
//! the window and the **CPU time per message**: the process's user +
//! system time over the window (`/proc/self/stat`, every thread) divided by
//! the round trips in it. CPU per message covers both ends of the echo
//! (client and server run in this process) and is far less moved by other
//! load on a shared machine than messages/s.
//!
//! **Clients run on the same runtime as the server**, as in the usual
//! single-process echo benches: the runtime under test does both ends of
//! every connection, so a round trip costs two sends, two receives and the
//! wake-ups in between, all scheduled by that runtime on its threads. No
//! other runtime's threads compete for the 2 cores, and no foreign client
//! load generator can favour one runtime. The benchmark's main thread only
//! starts a cell, sleeps through the warm-up and the window (flipping an
//! atomic phase flag the clients read after each round trip), and waits
//! for the result: it never runs tasks or polls a reactor.
//!
//! Variants, each on 2 threads (this machine's cores; the core count in
//! general):
//! - `ebbtide`: ebbtide on `IoBackend::Epoll`, 2 workers, `ebbtide::net`
//!   through the futures-io traits (`write_all`, `read_exact` from
//!   `futures_lite`).
//! - `ebbtide-owned`: the same epoll runtime through `write_all_owned` /
//!   `read_owned`, one reused `Vec` per direction and connection.
//! - `ebbtide-owned-uring`: the owned-buffer code of `ebbtide-owned` on a
//!   runtime built with `io_backend(IoBackend::IoUring)` and
//!   `io_uring_sockets(true)`: every read and write is one op in the ring;
//!   where `build()` refuses io_uring, its row says `unavailable: <error>`.
//! - `tokio`: multi-thread runtime, `tokio::net` with `AsyncReadExt` /
//!   `AsyncWriteExt`.
//! - `smol`: one `async_executor::Executor` run by 2 threads
//!   (`benches/common/smol_rt.rs`, as in every bench),
//!   `async_io::Async<std::net::TcpStream>`.
//! - `compio` (Linux): 2 threads, each with its own compio runtime on the
//!   io_uring driver (`benches/common/tpc.rs`) and its share of the cell:
//!   connection `i` goes to thread `i % 2`, both ends of it, on a listener
//!   of that thread's own. Owned buffers: the server `AsyncRead::read(Vec)`
//!   then `AsyncWriteExt::write_all(Vec)`; the client `write_all` then
//!   `AsyncReadExt::append` until the echo is in.
//! - `monoio` (Linux): the same shape on monoio
//!   (`RuntimeBuilder::<IoUringDriver>`), `AsyncReadRent::read(Vec)` /
//!   `AsyncWriteRentExt::write_all(Vec)`, the client's
//!   `AsyncReadRentExt::read_exact(Vec)`.
//!
//! Every ebbtide, tokio and smol runtime is built once; compio's and
//! monoio's runtimes are built per sample, on their threads, before the
//! warm-up. Per cell, the variants run interleaved: 5 rounds (1 with
//! `--quick`; `--rounds N` overrides), the order rotated every round. The
//! table has one line per cell and variant: median (best) messages/s,
//! median (min–max) CPU µs per message, the ratios of medians — messages/s
//! vs tokio (**> 1: faster**) and CPU per message vs tokio, compio and
//! monoio (**< 1: cheaper**) — and `bg%`, the share of the machine's CPU
//! that other processes used during the cell (from `/proc/stat`, minus this
//! process): on a shared machine, trust cells with a low `bg%`. `--json
//! PATH` writes `[{"name", "ebbtide_ns", "tokio_ns", "smol_ns"}]` in ns per
//! message (lower is better), one entry per cell for the futures-io variant,
//! one named `…-owned` for the owned one on epoll and one named
//! `…-owned-uring` for it on io_uring (where it ran).
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

/// An ebbtide runtime on `backend`, or why there is none.
fn ebbtide_rt(backend: ebbtide::runtime::IoBackend) -> Result<ebbtide::runtime::Runtime, String> {
    let rt = ebbtide::runtime::Runtime::builder()
        .worker_threads(WORKERS)
        .thread_name("bench-ebbtide")
        .io_backend(backend)
        // On io_uring, the owned calls go through the ring (the row that
        // measures ring ops for sockets; readiness is the backend's
        // default, measured by the http bench's `raw-ebb-uring`).
        .io_uring_sockets(backend == ebbtide::runtime::IoBackend::IoUring)
        .build()
        .map_err(|e| e.to_string())?;
    match rt.metrics().io_backend {
        b if b == backend => Ok(rt),
        b => Err(format!("asked for {backend:?}, runs {b:?}")),
    }
}

/// The runtimes a run needs (all of them, or the one `--only` names).
/// compio and monoio have none here: they are built per cell, one per
/// thread (`benches/common/tpc.rs`).
#[derive(Default)]
struct Runtimes {
    /// ebbtide on `IoBackend::Epoll` (`ebbtide`, `ebbtide-owned`).
    epoll: Option<Result<ebbtide::runtime::Runtime, String>>,
    /// ebbtide on `IoBackend::IoUring` (`ebbtide-owned-uring`).
    uring: Option<Result<ebbtide::runtime::Runtime, String>>,
    tokio: Option<tokio::runtime::Runtime>,
    smol: Option<SmolRt>,
}

impl Runtimes {
    fn build(variants: &[Variant]) -> Runtimes {
        use ebbtide::runtime::IoBackend;
        let mut rts = Runtimes::default();
        for v in variants {
            match v {
                Variant::Ebbtide | Variant::EbbtideOwned if rts.epoll.is_none() => {
                    rts.epoll = Some(ebbtide_rt(IoBackend::Epoll));
                }
                Variant::EbbtideOwnedUring => rts.uring = Some(ebbtide_rt(IoBackend::IoUring)),
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

    /// Why variant `v` cannot run here, if it cannot.
    fn unavailable(&self, v: Variant) -> Option<String> {
        let ebb = |rt: &Option<Result<ebbtide::runtime::Runtime, String>>| {
            rt.as_ref().and_then(|r| r.as_ref().err().cloned())
        };
        match v {
            Variant::Ebbtide | Variant::EbbtideOwned => ebb(&self.epoll),
            Variant::EbbtideOwnedUring => ebb(&self.uring),
            Variant::Compio | Variant::Monoio if !cfg!(target_os = "linux") => {
                Some("Linux only (io_uring)".into())
            }
            _ => None,
        }
    }

    /// The ebbtide runtime variant `v` runs on, if it is an ebbtide one.
    fn ebb_rt(&self, v: Variant) -> Option<&ebbtide::runtime::Runtime> {
        let rt = match v {
            Variant::Ebbtide | Variant::EbbtideOwned => &self.epoll,
            Variant::EbbtideOwnedUring => &self.uring,
            _ => return None,
        };
        rt.as_ref().and_then(|r| r.as_ref().ok())
    }

    fn ebb(&self, v: Variant) -> EbbSp {
        EbbSp(self.ebb_rt(v).expect("ebbtide built").handle().clone())
    }

    /// Runs one cell of variant `v`.
    fn run(&self, v: Variant, cell: Cell, t: Timing) -> Sample {
        match v {
            Variant::Ebbtide => run_cell::<EbbIo>(&self.ebb(v), cell, t),
            Variant::EbbtideOwned | Variant::EbbtideOwnedUring => {
                run_cell::<EbbOwned>(&self.ebb(v), cell, t)
            }
            Variant::Tokio => {
                let sp = TokioSp(self.tokio.as_ref().expect("tokio built").handle().clone());
                run_cell::<TokioIo>(&sp, cell, t)
            }
            Variant::Smol => {
                let sp = SmolSp(self.smol.as_ref().expect("smol built").ex);
                run_cell::<SmolIo>(&sp, cell, t)
            }
            #[cfg(target_os = "linux")]
            Variant::Compio => tpc::run_cell(common::tpc::Tpc::Compio, cell, t),
            #[cfg(target_os = "linux")]
            Variant::Monoio => tpc::run_cell(common::tpc::Tpc::Monoio, cell, t),
            #[cfg(not(target_os = "linux"))]
            Variant::Compio | Variant::Monoio => unreachable!("io_uring runtimes are Linux only"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Ebbtide,
    EbbtideOwned,
    EbbtideOwnedUring,
    Tokio,
    Smol,
    Compio,
    Monoio,
}

const VARIANTS: [Variant; 7] = [
    Variant::Ebbtide,
    Variant::EbbtideOwned,
    Variant::EbbtideOwnedUring,
    Variant::Tokio,
    Variant::Smol,
    Variant::Compio,
    Variant::Monoio,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Ebbtide => "ebbtide",
            Variant::EbbtideOwned => "ebbtide-owned",
            Variant::EbbtideOwnedUring => "ebbtide-owned-uring",
            Variant::Tokio => "tokio",
            Variant::Smol => "smol",
            Variant::Compio => "compio",
            Variant::Monoio => "monoio",
        }
    }

    fn parse(s: &str) -> Variant {
        VARIANTS
            .into_iter()
            .find(|v| v.name() == s)
            .unwrap_or_else(|| {
                let names: Vec<_> = VARIANTS.iter().map(|v| v.name()).collect();
                panic!("unknown variant {s:?}: one of {names:?}")
            })
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
    /// CPU time of the whole process (user + system, every thread) in the
    /// window, ns: the runtime's, as the main thread only sleeps.
    cpu_ns: f64,
}

impl Sample {
    fn per_sec(&self) -> f64 {
        self.measured as f64 / self.window.as_secs_f64()
    }

    /// CPU time per round trip (both ends of it), µs.
    fn cpu_us_per_msg(&self) -> f64 {
        self.cpu_ns / 1e3 / self.measured.max(1) as f64
    }
}

/// The measured window, driven from the benchmark's main thread once the
/// clients run: warm-up, `MEASURE`, window, `STOP`. Returns the window's
/// length and the process's CPU time in it.
fn drive_phases(phase: &AtomicU8, t: Timing) -> (Duration, f64) {
    std::thread::sleep(t.warm);
    let cpu0 = common::proc_cpu_ns("self");
    phase.store(MEASURE, Relaxed);
    let start = Instant::now();
    std::thread::sleep(t.window);
    phase.store(STOP, Relaxed);
    let window = start.elapsed();
    (window, common::proc_cpu_ns("self") - cpu0)
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
    let (mut window, mut cpu_ns) = (Duration::ZERO, 0.0);
    if started {
        (window, cpu_ns) = drive_phases(&phase, t);
    }
    phase.store(STOP, Relaxed);
    // A plain parker: this thread polls no reactor and runs no tasks.
    let tallies = futures_lite::future::block_on(driver)
        .unwrap_or_else(|e| panic!("{}: echo failed: {e}", cell.name()));
    Sample {
        measured: tallies.iter().map(|t| t.measured).sum(),
        total: tallies.iter().map(|t| t.total).sum(),
        window,
        cpu_ns,
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
// compio and monoio: one runtime per thread
// ---------------------------------------------------------------------------

/// The io_uring peers (Linux): `WORKERS` threads, each with its own runtime
/// (`benches/common/tpc.rs`) running its share of the cell — connection `i`
/// goes to thread `i % WORKERS`, both its ends: a listener of its own, the
/// client tasks and the server tasks — which is how thread-per-core
/// runtimes spread a load over cores. Buffers are owned `Vec`s, one per
/// direction and connection, reused.
#[cfg(target_os = "linux")]
mod tpc {
    use super::*;
    use common::tpc::Tpc;

    /// One thread's share: listens, connects `conns` clients (messages of
    /// client `first + k * WORKERS`), signals `ready`, waits for every task.
    async fn share(
        tpc: Tpc,
        conns: Vec<usize>,
        size: usize,
        phase: Arc<AtomicU8>,
        ready: mpsc::Sender<()>,
    ) -> io::Result<Vec<Tally>> {
        let tallies = match tpc {
            Tpc::Compio => compio_share(conns, size, phase, &ready).await?,
            Tpc::Monoio => monoio_share(conns, size, phase, &ready).await?,
        };
        Ok(tallies)
    }

    async fn compio_share(
        conns: Vec<usize>,
        size: usize,
        phase: Arc<AtomicU8>,
        ready: &mpsc::Sender<()>,
    ) -> io::Result<Vec<Tally>> {
        use compio::net::{TcpListener, TcpStream};
        let tpc = Tpc::Compio;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let n = conns.len();
        let acceptor = compio::runtime::spawn(async move {
            let mut streams = Vec::with_capacity(n);
            for _ in 0..n {
                let (s, _) = listener.accept().await?;
                s.set_nodelay(true)?;
                streams.push(s);
            }
            io::Result::Ok(streams) // the listener closes here
        });
        let mut clients = Vec::with_capacity(n);
        for i in conns {
            let s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            clients.push(compio_client(s, message(i, size), phase.clone()));
        }
        let servers = acceptor.await.expect("compio acceptor")?;
        let servers = servers.into_iter().map(compio_serve).collect();
        let _ = ready.send(());
        let (tallies, served) =
            futures_lite::future::zip(tpc.join_all(clients), tpc.join_all(servers)).await;
        served.into_iter().collect::<io::Result<()>>()?;
        tallies.into_iter().collect()
    }

    async fn compio_serve(mut s: compio::net::TcpStream) -> io::Result<()> {
        use compio::io::{AsyncRead, AsyncWriteExt};
        use compio::BufResult;
        let mut buf = Vec::with_capacity(SERVER_BUF);
        loop {
            // `read` fills the buffer from its start and sets its length.
            let BufResult(n, b) = s.read(buf).await;
            if n? == 0 {
                return Ok(());
            }
            let BufResult(res, b) = s.write_all(b).await;
            res?;
            buf = b;
        }
    }

    async fn compio_client(
        mut s: compio::net::TcpStream,
        mut msg: Vec<u8>,
        phase: Arc<AtomicU8>,
    ) -> io::Result<Tally> {
        use compio::io::{AsyncReadExt, AsyncWriteExt};
        use compio::BufResult;
        let size = msg.len();
        let mut back = Vec::with_capacity(size);
        let mut tally = Tally::default();
        loop {
            let BufResult(res, m) = s.write_all(msg).await;
            res?;
            msg = m;
            back.clear();
            while back.len() < size {
                // `append` reads into the spare capacity (the server sends
                // nothing beyond the echo).
                let BufResult(n, b) = s.append(back).await;
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

    async fn monoio_share(
        conns: Vec<usize>,
        size: usize,
        phase: Arc<AtomicU8>,
        ready: &mpsc::Sender<()>,
    ) -> io::Result<Vec<Tally>> {
        use monoio::net::{TcpListener, TcpStream};
        let tpc = Tpc::Monoio;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let n = conns.len();
        let acceptor = monoio::spawn(async move {
            let mut streams = Vec::with_capacity(n);
            for _ in 0..n {
                let (s, _) = listener.accept().await?;
                s.set_nodelay(true)?;
                streams.push(s);
            }
            io::Result::Ok(streams) // the listener closes here
        });
        let mut clients = Vec::with_capacity(n);
        for i in conns {
            let s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            clients.push(monoio_client(s, message(i, size), phase.clone()));
        }
        let servers = acceptor.await?;
        let servers = servers.into_iter().map(monoio_serve).collect();
        let _ = ready.send(());
        let (tallies, served) =
            futures_lite::future::zip(tpc.join_all(clients), tpc.join_all(servers)).await;
        served.into_iter().collect::<io::Result<()>>()?;
        tallies.into_iter().collect()
    }

    async fn monoio_serve(mut s: monoio::net::TcpStream) -> io::Result<()> {
        use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
        let mut buf = Vec::with_capacity(SERVER_BUF);
        loop {
            // `read` fills the buffer from its start and sets its length.
            let (n, b) = s.read(buf).await;
            if n? == 0 {
                return Ok(());
            }
            let (res, b) = s.write_all(b).await;
            res?;
            buf = b;
        }
    }

    async fn monoio_client(
        mut s: monoio::net::TcpStream,
        mut msg: Vec<u8>,
        phase: Arc<AtomicU8>,
    ) -> io::Result<Tally> {
        use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
        let size = msg.len();
        let mut back = Vec::with_capacity(size);
        // `read_exact` fills the whole capacity.
        assert_eq!(back.capacity(), size);
        let mut tally = Tally::default();
        loop {
            let (res, m) = s.write_all(msg).await;
            res?;
            msg = m;
            let (res, b) = s.read_exact(back).await;
            back = b;
            res?;
            check_echo(&back, &msg)?;
            if !tally.record(&phase) {
                return Ok(tally);
            }
        }
    }

    /// Runs `cell` on `tpc`'s threads, drives its phases from this thread,
    /// and collects the tallies once every thread has finished.
    pub(super) fn run_cell(tpc: Tpc, cell: Cell, t: Timing) -> Sample {
        let phase = Arc::new(AtomicU8::new(WARM));
        let (ready_tx, ready_rx) = mpsc::channel();
        let size = cell.size;
        let threads = tpc.threads(WORKERS, {
            let phase = phase.clone();
            move |w| {
                let conns: Vec<usize> = (w..cell.conns).step_by(WORKERS).collect();
                share(tpc, conns, size, phase.clone(), ready_tx.clone())
            }
        });
        // Every thread signals once its clients run; one that failed
        // before that has dropped its sender: stop waiting after a while
        // and report its error below.
        let started = (0..WORKERS).all(|_| ready_rx.recv_timeout(Duration::from_secs(20)).is_ok());
        let (mut window, mut cpu_ns) = (Duration::ZERO, 0.0);
        if started {
            (window, cpu_ns) = drive_phases(&phase, t);
        }
        phase.store(STOP, Relaxed);
        let mut tallies = Vec::new();
        for th in threads {
            let share = th.join().expect("runtime thread");
            tallies.extend(
                share.unwrap_or_else(|e| {
                    panic!("{} on {}: echo failed: {e}", cell.name(), tpc.name())
                }),
            );
        }
        Sample {
            measured: tallies.iter().map(|t| t.measured).sum(),
            total: tallies.iter().map(|t| t.total).sum(),
            window,
            cpu_ns,
        }
    }
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
    if let Some(why) = rts.unavailable(v) {
        println!("{}: unavailable: {why}", v.name());
        return;
    }
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
        rts.ebb_rt(v).map(|r| r.handle().clone()),
    );
    let s = rts.run(v, cell, timing);
    watchdog::idle();
    println!(
        "{} {}: {:.0} messages/s over {:.2} s, {:.2} us CPU/message",
        v.name(),
        cell.name(),
        s.per_sec(),
        s.window.as_secs_f64(),
        s.cpu_us_per_msg()
    );
    println!("round_trips={}", s.total);
}

/// One variant's results on one cell.
#[derive(Clone, Default)]
struct Stats {
    /// Why it has none, if it could not run here.
    unavailable: Option<String>,
    /// Median and best (the least disturbed sample: other load only slows
    /// a sample down) messages/s.
    rate: f64,
    best: f64,
    /// Median, min and max CPU µs per message.
    cpu: [f64; 3],
}

struct Row {
    cell: Cell,
    /// Per variant, in `VARIANTS` order.
    stats: Vec<Stats>,
    /// Mean CPU share other processes took during the cell's samples, %.
    background: f64,
}

fn stats(unavailable: Option<String>, samples: &[Sample]) -> Stats {
    if unavailable.is_some() || samples.is_empty() {
        return Stats {
            unavailable,
            ..Stats::default()
        };
    }
    let mut rates: Vec<f64> = samples.iter().map(Sample::per_sec).collect();
    let mut cpu: Vec<f64> = samples.iter().map(Sample::cpu_us_per_msg).collect();
    let cpu_med = median(&mut cpu); // sorts
    Stats {
        unavailable,
        best: rates.iter().copied().fold(0.0, f64::max),
        rate: median(&mut rates),
        cpu: [cpu_med, cpu[0], cpu[cpu.len() - 1]],
    }
}

/// The ratio columns: throughput vs tokio, CPU per message vs tokio,
/// compio and monoio.
const RATIOS: [&str; 4] = ["thr/t", "cpu/t", "cpu/c", "cpu/m"];

fn header() -> String {
    let mut h = format!(
        "| {:<15} | {:<19} | {:>17} | {:>20} |",
        "cell", "variant", "msgs/s med (best)", "CPU us/msg med (min–max)"
    );
    for c in RATIOS {
        let _ = write!(h, " {c:>5} |");
    }
    let _ = write!(h, " {:>3} |", "bg%");
    let _ = write!(
        h,
        "\n|{}|{}|{}:|{}:|",
        "-".repeat(17),
        "-".repeat(21),
        "-".repeat(18),
        "-".repeat(25)
    );
    for _ in 0..RATIOS.len() {
        let _ = write!(h, "{}:|", "-".repeat(6));
    }
    let _ = write!(h, "{}:|", "-".repeat(4));
    h
}

fn row_lines(r: &Row) -> String {
    let pos = |v: Variant| VARIANTS.iter().position(|&x| x == v).expect("a variant");
    let (tok, com, mon) = (
        &r.stats[pos(Variant::Tokio)],
        &r.stats[pos(Variant::Compio)],
        &r.stats[pos(Variant::Monoio)],
    );
    let mut out = String::new();
    for (v, st) in VARIANTS.iter().zip(&r.stats) {
        let _ = write!(out, "| {:<15} | {:<19} |", r.cell.name(), v.name());
        if let Some(why) = &st.unavailable {
            let _ = writeln!(out, " unavailable: {why}");
            continue;
        }
        let _ = write!(out, " {:>17} |", format!("{:.0} ({:.0})", st.rate, st.best));
        let [c, lo, hi] = st.cpu;
        let _ = write!(out, " {:>24} |", format!("{c:.2} ({lo:.2}–{hi:.2})"));
        for ratio in [
            st.rate / tok.rate,
            c / tok.cpu[0],
            c / com.cpu[0],
            c / mon.cpu[0],
        ] {
            let _ = write!(out, " {ratio:>5.2} |");
        }
        let _ = writeln!(out, " {:>3.0} |", r.background);
    }
    out.pop();
    out
}

/// `--json PATH`: one entry per cell for the futures-io variant and one
/// named `…-owned` for the owned-buffer one (epoll), and `…-owned-uring`
/// for the owned-buffer one on io_uring where it ran, in ns per message.
fn write_json(path: &str, rows: &[Row]) {
    let ns = |rate: f64| 1e9 / rate;
    let mut entries = Vec::new();
    for r in rows {
        let rate = |v: Variant| {
            let st = &r.stats[VARIANTS.iter().position(|&x| x == v).expect("a variant")];
            st.unavailable.is_none().then_some(st.rate)
        };
        let (Some(t), Some(s)) = (rate(Variant::Tokio), rate(Variant::Smol)) else {
            continue;
        };
        for (suffix, v) in [
            ("", Variant::Ebbtide),
            ("-owned", Variant::EbbtideOwned),
            ("-owned-uring", Variant::EbbtideOwnedUring),
        ] {
            if let Some(e) = rate(v) {
                entries.push((format!("{}{suffix}", r.cell.name()), [ns(e), ns(t), ns(s)]));
            }
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
    let unavailable: Vec<Option<String>> = VARIANTS.iter().map(|&v| rts.unavailable(v)).collect();
    let fd_baseline = open_fds();
    println!(
        "TCP echo over loopback, clients and server in the same process, {WORKERS} threads per \
         runtime; {} mode: {rounds} round(s) per cell, {} ms warm-up + {} ms window per sample, \
         variant order rotated per round",
        if opts.quick { "quick" } else { "full" },
        timing.warm.as_millis(),
        timing.window.as_millis(),
    );
    println!(
        "msgs/s: round trips (messages) per second; CPU us/msg: the process's CPU time (user + \
         system, all threads: both ends of the echo) per round trip; ratios are of medians: \
         thr/t > 1 and cpu/x < 1 mean this variant is better than tokio (t), compio (c), \
         monoio (m); bg%: mean share of the machine's CPU other processes used during the cell\n"
    );
    println!("{}", header());

    let total = Instant::now();
    let mut rows = Vec::new();
    for cell in cells {
        let mut samples: Vec<Vec<Sample>> = VARIANTS.iter().map(|_| Vec::new()).collect();
        let mut background = Vec::new();
        for round in 0..rounds {
            for k in 0..VARIANTS.len() {
                let which = (round + k) % VARIANTS.len();
                let v = VARIANTS[which];
                if unavailable[which].is_some() {
                    continue;
                }
                let what = format!("{} on {} (round {})", cell.name(), v.name(), round + 1);
                watchdog::progress(what.clone(), rts.ebb_rt(v).map(|r| r.handle().clone()));
                let before = CpuTicks::now();
                let s = rts.run(v, cell, timing);
                background.push(CpuTicks::now().background_since(before));
                watchdog::idle();
                check_fds(fd_baseline, &what);
                samples[which].push(s);
            }
        }
        let row = Row {
            cell,
            stats: samples
                .iter()
                .zip(&unavailable)
                .map(|(s, u)| stats(u.clone(), s))
                .collect(),
            background: background.iter().sum::<f64>() / background.len().max(1) as f64,
        };
        println!("{}", row_lines(&row));
        rows.push(row);
    }
    println!("\ntotal time: {:.1} s", total.elapsed().as_secs_f64());
    if let Some(path) = &opts.json {
        write_json(path, &rows);
    }
}
