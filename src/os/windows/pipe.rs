//! Named pipes with overlapped I/O, owned buffers and acknowledged
//! cancellation, plus `futures-io` `AsyncRead`/`AsyncWrite` (through
//! internal buffers, cancel-safe).
//!
//! Each read, write and connect is an overlapped op whose `OVERLAPPED`,
//! event and buffer belong to an op-table slot until the kernel reports it
//! over (the protocol is in `src/op/iocp.rs`): dropping a
//! `read_owned` future calls `CancelIoEx` and frees the buffer only when the
//! cancellation's completion arrives.
//!
//! # Examples
//!
//! ```no_run
//! use ebbtide::io::BufResult;
//! use ebbtide::os::windows::pipe::{NamedPipeClient, NamedPipeServer};
//!
//! ebbtide::block_on(async {
//!     let name = r"\\.\pipe\ebbtide-example";
//!     let server = NamedPipeServer::create(name)?;
//!     let client = NamedPipeClient::open(name)?;
//!     server.connect().await?;
//!     client.write_all_owned(b"ping".to_vec()).await.0?;
//!     let BufResult(n, buf) = server.read_owned(Vec::with_capacity(16)).await;
//!     assert_eq!(&buf[..n?], b"ping");
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};

use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, OPEN_EXISTING,
    PIPE_ACCESS_DUPLEX,
};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, DisconnectNamedPipe, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_BYTE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT,
};

use crate::io::{BufResult, IoBuf, IoBufMut};
use crate::op::{self, Kind, Op, OpContext, SharedHandle};
use crate::runtime::context;

const BUFFER_SIZE: u32 = 64 * 1024;

fn wide(name: &OsStr) -> Vec<u16> {
    name.encode_wide().chain(Some(0)).collect()
}

/// The current runtime's op context, or the error that says none is.
fn current() -> io::Result<OpContext> {
    context::current("ebbtide named pipe creation").map(|shared| shared.ops.clone())
}

/// An overlapped pipe handle and the op context its ops use: the named
/// pipes here, and the pipes to a child process (`crate::process`), whose
/// parent ends std opens for overlapped I/O.
pub(crate) struct Pipe {
    pub(crate) handle: Arc<OwnedHandle>,
    pub(crate) ops: OpContext,
    /// The futures-io side: its own buffers and in-flight ops.
    io: IoState,
}

/// State of the `AsyncRead`/`AsyncWrite` implementations. Reads go
/// through an internal buffer filled by one overlapped read at a time;
/// writes copy into an internal buffer and start an overlapped write,
/// which the next write or flush waits for. An in-flight op stays here when
/// a caller's future is dropped, so nothing is lost (cancel-safe).
#[derive(Default)]
struct IoState {
    read: Option<Op<BufResult<usize, Vec<u8>>>>,
    rbuf: Vec<u8>,
    rpos: usize,
    write: Option<Op<BufResult<usize, Vec<u8>>>>,
    wspare: Vec<u8>,
}

impl Pipe {
    /// A pipe on `handle`, which must be open for overlapped I/O
    /// (`FILE_FLAG_OVERLAPPED`): on a synchronous handle each op would
    /// block its caller until the kernel is done.
    pub(crate) fn new(handle: OwnedHandle, ops: OpContext) -> Pipe {
        Pipe {
            handle: Arc::new(handle),
            ops,
            io: IoState::default(),
        }
    }

    fn start_read(&self, buf: Vec<u8>) -> Op<BufResult<usize, Vec<u8>>> {
        op::read_at(&self.ops, &self.dyn_handle(), buf, 0)
    }

    fn start_write(&self, buf: Vec<u8>) -> Op<BufResult<usize, Vec<u8>>> {
        op::write_at(&self.ops, &self.dyn_handle(), buf, 0)
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let io = &mut self.io;
            if io.rpos < io.rbuf.len() {
                let n = out.len().min(io.rbuf.len() - io.rpos);
                out[..n].copy_from_slice(&io.rbuf[io.rpos..io.rpos + n]);
                io.rpos += n;
                return Poll::Ready(Ok(n));
            }
            if out.is_empty() {
                return Poll::Ready(Ok(0));
            }
            if let Some(op) = &mut io.read {
                let BufResult(res, buf) = ready!(Pin::new(op).poll(cx));
                io.read = None;
                io.rbuf = buf;
                io.rpos = 0;
                match res {
                    Ok(0) => return Poll::Ready(Ok(0)),
                    Ok(_) => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let mut buf = std::mem::take(&mut io.rbuf);
            buf.clear();
            buf.reserve(out.len().max(4096));
            self.io.read = Some(self.start_read(buf));
        }
    }

    /// Waits for the write in flight; a short write sends the rest.
    pub(crate) fn poll_write_done(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(op) = &mut self.io.write {
            let BufResult(res, mut buf) = ready!(Pin::new(op).poll(cx));
            self.io.write = None;
            match res {
                Ok(n) if n < buf.len() && n > 0 => {
                    buf.drain(..n);
                    self.io.write = Some(self.start_write(buf));
                }
                Ok(0) if !buf.is_empty() => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Ok(_) => self.io.wspare = buf,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_write_done(cx))?;
        let mut buf = std::mem::take(&mut self.io.wspare);
        buf.clear();
        buf.extend_from_slice(data);
        self.io.write = Some(self.start_write(buf));
        Poll::Ready(Ok(data.len()))
    }

    /// The `AsyncWrite` write still in flight, moved into a pipe of its
    /// own on the same handle (which stays open while either lives), so
    /// that it can be finished with [`poll_write_done`](Self::poll_write_done)
    /// after this one is dropped; `None` if no write is in flight.
    pub(crate) fn split_pending_write(&mut self) -> Option<Pipe> {
        let write = self.io.write.take()?;
        Some(Pipe {
            handle: self.handle.clone(),
            ops: self.ops.clone(),
            io: IoState {
                write: Some(write),
                ..IoState::default()
            },
        })
    }

    fn dyn_handle(&self) -> SharedHandle {
        self.handle.clone()
    }

    pub(crate) async fn read_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        if buf.buf_capacity() == buf.buf_len() {
            return BufResult(Ok(0), buf);
        }
        op::read_at(&self.ops, &self.dyn_handle(), buf, 0).await
    }

    pub(crate) async fn write_owned<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        op::write_at(&self.ops, &self.dyn_handle(), buf, 0).await
    }

    pub(crate) async fn write_all_owned<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        let total = buf.buf_len();
        let mut slice = buf.slice(..total);
        let mut done = 0;
        while done < total {
            let BufResult(res, s) = self.write_owned(slice).await;
            let buf = s.into_inner();
            match res {
                Ok(0) => return BufResult(Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => done += n,
                Err(e) => return BufResult(Err(e), buf),
            }
            slice = buf.slice(done..total);
        }
        BufResult(Ok(()), slice.into_inner())
    }
}

macro_rules! pipe_io {
    ($ty:ident) => {
        impl $ty {
            /// Reads into the buffer's spare capacity (up to its capacity
            /// minus its length); the length grows by the count. `Ok(0)` at
            /// the end of the stream (the other end closed) or when the
            /// buffer has no spare capacity.
            ///
            /// Dropping the future cancels the read (`CancelIoEx`); the
            /// buffer is freed when the kernel acknowledges.
            ///
            /// # Errors
            ///
            /// The OS error, with the buffer.
            pub async fn read_owned<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
                self.pipe.read_owned(buf).await
            }

            /// Writes the buffer's initialized bytes; returns how many were
            /// written.
            ///
            /// # Errors
            ///
            /// The OS error, with the buffer.
            pub async fn write_owned<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
                self.pipe.write_owned(buf).await
            }

            /// Writes all the buffer's initialized bytes.
            ///
            /// # Errors
            ///
            /// The first OS error, with the buffer.
            pub async fn write_all_owned<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
                self.pipe.write_all_owned(buf).await
            }
        }

        /// Reads through an internal buffer filled by one overlapped read
        /// at a time; cancel-safe (a dropped read leaves its data here).
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().pipe.poll_read(cx, buf)
            }
        }

        /// Writes copy into an internal buffer and start an overlapped
        /// write; the next write, `flush` or `close` waits for it.
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().pipe.poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().pipe.poll_write_done(cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().pipe.poll_write_done(cx)
            }
        }

        impl AsRawHandle for $ty {
            fn as_raw_handle(&self) -> RawHandle {
                self.pipe.handle.as_raw_handle()
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("handle", &self.pipe.handle.as_raw_handle())
                    .finish()
            }
        }
    };
}

/// The server end of a named pipe: one instance, waiting for one client.
pub struct NamedPipeServer {
    pub(crate) pipe: Pipe,
}

impl NamedPipeServer {
    /// Creates the first instance of pipe `name` (`\\.\pipe\...`), byte
    /// mode, local clients only.
    ///
    /// # Errors
    ///
    /// The OS error of `CreateNamedPipeW` (e.g. access denied when the name
    /// is taken), or the "outside a runtime" error.
    pub fn create(name: impl AsRef<OsStr>) -> io::Result<NamedPipeServer> {
        Self::create_with(name.as_ref(), FILE_FLAG_FIRST_PIPE_INSTANCE)
    }

    /// Creates another instance of an existing pipe `name`, for the next
    /// client.
    ///
    /// # Errors
    ///
    /// As for [`create`](NamedPipeServer::create).
    pub fn create_instance(name: impl AsRef<OsStr>) -> io::Result<NamedPipeServer> {
        Self::create_with(name.as_ref(), 0)
    }

    fn create_with(name: &OsStr, extra: u32) -> io::Result<NamedPipeServer> {
        let ops = current()?;
        let name = wide(name);
        // SAFETY: `name` is NUL-terminated; the rest are plain values.
        let raw = unsafe {
            CreateNamedPipeW(
                name.as_ptr(),
                PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | extra,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                PIPE_UNLIMITED_INSTANCES,
                BUFFER_SIZE,
                BUFFER_SIZE,
                0,
                std::ptr::null(),
            )
        };
        if raw == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new handle nothing else owns.
        let handle = unsafe { OwnedHandle::from_raw_handle(raw) };
        Ok(NamedPipeServer {
            pipe: Pipe::new(handle, ops),
        })
    }

    /// Waits for a client to connect (at once if one already did).
    ///
    /// # Errors
    ///
    /// The OS error of `ConnectNamedPipe`.
    pub async fn connect(&self) -> io::Result<()> {
        let BufResult(res, ()) = op::submit(
            &self.pipe.ops,
            &self.pipe.dyn_handle(),
            (),
            0,
            Kind::Connect,
            |_| (std::ptr::null_mut(), 0),
            |_, _| {},
        )
        .await;
        res.map(drop)
    }

    /// Disconnects the client, so the instance can `connect` another.
    ///
    /// # Errors
    ///
    /// The OS error of `DisconnectNamedPipe`.
    pub fn disconnect(&self) -> io::Result<()> {
        // SAFETY: the handle is open (owned by `self`).
        if unsafe { DisconnectNamedPipe(self.pipe.handle.as_raw_handle()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

pipe_io!(NamedPipeServer);

/// The client end of a named pipe.
pub struct NamedPipeClient {
    pub(crate) pipe: Pipe,
}

impl NamedPipeClient {
    /// Opens pipe `name` for reading and writing.
    ///
    /// # Errors
    ///
    /// The OS error of `CreateFileW`: `NotFound` when no such pipe exists,
    /// `ERROR_PIPE_BUSY` (231) when every instance is taken (retry after a
    /// short sleep), or the "outside a runtime" error.
    pub fn open(name: impl AsRef<OsStr>) -> io::Result<NamedPipeClient> {
        let ops = current()?;
        let name = wide(name.as_ref());
        // SAFETY: `name` is NUL-terminated; the rest are plain values.
        let raw = unsafe {
            CreateFileW(
                name.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                0,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                std::ptr::null_mut(),
            )
        };
        if raw == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new handle nothing else owns.
        let handle = unsafe { OwnedHandle::from_raw_handle(raw) };
        Ok(NamedPipeClient {
            pipe: Pipe::new(handle, ops),
        })
    }
}

pipe_io!(NamedPipeClient);

/// The asyncio seed scenario (bpo-23095) at the protocol level of the
/// IOCP backend (`crate::op`'s `iocp.rs`), run under
/// Wine by `.ci/run`: overlapped pipe reads dropped at random points, some
/// cancelled twice, and a runtime shut down with reads pending. A probe
/// buffer records whether the kernel's final result for its op had been
/// seen (`on_done` runs only then) at the moment the buffer is dropped.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Runtime;
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    #[derive(Default)]
    struct Ledger {
        made: AtomicUsize,
        dropped: AtomicUsize,
        dropped_before_ack: AtomicUsize,
        acked: AtomicUsize,
    }

    struct Probe {
        vec: Vec<u8>,
        acked: AtomicBool,
        ledger: Arc<Ledger>,
    }

    impl Probe {
        fn new(ledger: &Arc<Ledger>) -> Probe {
            ledger.made.fetch_add(1, Ordering::SeqCst);
            Probe {
                vec: Vec::with_capacity(16),
                acked: AtomicBool::new(false),
                ledger: ledger.clone(),
            }
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            if !self.acked.load(Ordering::SeqCst) {
                self.ledger
                    .dropped_before_ack
                    .fetch_add(1, Ordering::SeqCst);
            }
            self.ledger.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn read_probe(pipe: &Pipe, probe: Probe) -> Op<BufResult<usize, Probe>> {
        op::submit(
            &pipe.ops,
            &(pipe.handle.clone() as SharedHandle),
            probe,
            0,
            Kind::Read,
            |p| (p.vec.as_mut_ptr(), p.vec.capacity()),
            |p, res| {
                p.acked.store(true, Ordering::SeqCst);
                p.ledger.acked.fetch_add(1, Ordering::SeqCst);
                if let Ok(n) = res {
                    // SAFETY: the kernel wrote `n` bytes at the start.
                    unsafe { p.vec.set_len(*n) };
                }
            },
        )
    }

    fn pipe_pair(name: &str) -> (NamedPipeServer, NamedPipeClient) {
        let server = NamedPipeServer::create(name).unwrap();
        let client = NamedPipeClient::open(name).unwrap();
        (server, client)
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Runs `body` on its own thread; panics if it hangs (a completion
    /// never reported, or a lost wake), re-raises its panic. Generous: the
    /// body takes seconds, many more on a loaded machine under Wine.
    fn watchdog(body: impl FnOnce() + Send + 'static) {
        let limit = Duration::from_secs(180);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            body();
            let _ = tx.send(());
        });
        match rx.recv_timeout(limit) {
            Ok(()) => thread.join().unwrap(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                std::panic::resume_unwind(thread.join().unwrap_err())
            }
            Err(_) => panic!("watchdog: the test did not finish within {limit:?}"),
        }
    }

    #[test]
    fn dropped_and_twice_cancelled_reads_free_each_buffer_once_after_its_ack() {
        watchdog(dropped_and_twice_cancelled_reads);
    }

    fn dropped_and_twice_cancelled_reads() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let ledger = Arc::new(Ledger::default());
        let table = rt.handle().shared.ops.table.clone();
        let total = 10_000u64;
        rt.block_on(async {
            let name = format!(r"\\.\pipe\ebbtide-seed-{}", std::process::id());
            let (server, client) = pipe_pair(&name);
            server.connect().await.unwrap();
            let waker = std::task::Waker::noop();
            let mut rng = Rng(0x2545_f491_4f6c_dd1d);
            let mut completed = 0u64;
            for i in 0..total {
                // A quarter of the reads find a byte waiting.
                if i % 4 == 0 {
                    client.write_all_owned(b"x").await.0.unwrap();
                }
                let mut op = Box::pin(read_probe(&server.pipe, Probe::new(&ledger)));
                let key = op.key().expect("submitted");
                let mut done = None;
                for _ in 0..rng.next() % 4 {
                    if let Poll::Ready(out) = op.as_mut().poll(&mut Context::from_waker(waker)) {
                        done = Some(out);
                        break;
                    }
                    crate::yield_now().await;
                }
                match done {
                    Some(BufResult(res, probe)) => {
                        res.unwrap();
                        assert!(probe.acked.load(Ordering::SeqCst));
                        completed += 1;
                    }
                    None => {
                        drop(op);
                        if i % 3 == 0 {
                            table.cancel(key); // cancelled twice
                        }
                    }
                }
                if i % 64 == 0 {
                    // Every dropped read acknowledged before more start.
                    let start = Instant::now();
                    while table.len() > 0 {
                        assert!(
                            start.elapsed() < Duration::from_secs(30),
                            "iteration {i}: {} ops never acknowledged ({} cancelled, {} \
                             completed after cancel, {} stale)",
                            table.len(),
                            table.cancelled(),
                            table.completed_after_cancel(),
                            table.stale_completions(),
                        );
                        crate::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            drop((server, client));
            let _ = completed;
        });
        wait_until("every op acknowledged", || table.len() == 0);
        assert_eq!(ledger.made.load(Ordering::SeqCst), total as usize);
        assert_eq!(ledger.dropped.load(Ordering::SeqCst), total as usize);
        assert_eq!(ledger.dropped_before_ack.load(Ordering::SeqCst), 0);
        assert_eq!(ledger.acked.load(Ordering::SeqCst), total as usize);
        assert_eq!(table.stale_completions(), 0);
        assert!(table.cancelled() > 0);
    }

    #[test]
    fn shutdown_with_reads_pending_settles_every_overlapped_op() {
        watchdog(shutdown_with_reads_pending);
    }

    fn shutdown_with_reads_pending() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let ledger = Arc::new(Ledger::default());
        let table = rt.handle().shared.ops.table.clone();
        let name = format!(r"\\.\pipe\ebbtide-settle-{}", std::process::id());
        let (server, client) = rt.block_on(async {
            let (server, client) = pipe_pair(&name);
            server.connect().await.unwrap();
            (Arc::new(server), Arc::new(client))
        });
        let started = Arc::new(AtomicUsize::new(0));
        for i in 0..100 {
            let (server, client, ledger, started) = (
                server.clone(),
                client.clone(),
                ledger.clone(),
                started.clone(),
            );
            rt.spawn(async move {
                let pipe = if i % 2 == 0 {
                    &server.pipe
                } else {
                    &client.pipe
                };
                let op = read_probe(pipe, Probe::new(&ledger));
                started.fetch_add(1, Ordering::SeqCst);
                let _ = op.await;
            });
        }
        wait_until("reads submitted", || started.load(Ordering::SeqCst) == 100);
        let report = rt.shutdown(Duration::ZERO);
        assert_eq!(report.ops_cancelled, 100, "{report}");
        assert_eq!(report.ops_leaked, 0, "{report}");
        assert_eq!(ledger.dropped.load(Ordering::SeqCst), 100);
        assert_eq!(ledger.dropped_before_ack.load(Ordering::SeqCst), 0);
        assert_eq!(table.stale_completions(), 0);
        drop((server, client));
    }
}
