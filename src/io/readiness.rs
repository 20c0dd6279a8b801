//! `Async<T>`: a non-blocking OS handle registered with the current
//! runtime's reactor.
//!
//! The pattern every operation follows: try the syscall; on `WouldBlock`,
//! wait for the reactor to report readiness, then try again (the protocol is
//! in `reactor::source`). Cancellation is immediate: the kernel holds no
//! buffer between attempts, so dropping a pending read loses nothing.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{Interest, Ready};
use crate::reactor::{runtime_gone, Direction, Reactor, Source};
use crate::sys::{self, AsSourceHandle};

/// A non-blocking I/O handle registered with a runtime's reactor.
///
/// Works with anything that owns a file descriptor (Unix) or a socket
/// (Windows): std sockets, pipes, `UnixStream`s. The handle is put in
/// non-blocking mode, registered with the runtime current when `new` is
/// called, and deregistered before it is closed.
///
/// Any number of tasks may wait on each direction (several `read_with`
/// calls through `&Async<T>`, a `readable()` beside them): an event wakes
/// every one of them. [`readable`](Self::readable) and
/// [`writable`](Self::writable) resolve at once while the handle may be
/// ready, and wait only after an operation has seen `WouldBlock`.
///
/// # Examples
///
/// ```
/// use std::net::{TcpListener, TcpStream};
/// use ebbtide::io::{Async, AsyncReadExt, AsyncWriteExt};
///
/// ebbtide::block_on(async {
///     let listener = Async::new(TcpListener::bind("127.0.0.1:0")?)?;
///     let addr = listener.get_ref().local_addr()?;
///     let mut client = Async::new(TcpStream::connect(addr)?)?;
///     let (server, _) = listener.read_with(|l| l.accept()).await?;
///     let mut server = Async::new(server)?;
///     client.write_all(b"ping").await?;
///     let mut buf = [0; 4];
///     server.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"ping");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Async<T: AsSourceHandle> {
    /// Readiness state in the reactor; removed in `Drop` before `io` closes.
    source: Arc<Source>,
    /// The reactor that holds `source`.
    reactor: Arc<Reactor>,
    /// `None` only during `into_inner`/`Drop`.
    io: Option<T>,
}

impl<T: AsSourceHandle> Async<T> {
    /// Puts `io` in non-blocking mode and registers it with the current
    /// runtime.
    ///
    /// # Errors
    ///
    /// If no runtime is current (the error says so), if the runtime has shut
    /// down, or the OS error of `fcntl`/`ioctlsocket` or the poller.
    pub fn new(io: T) -> io::Result<Async<T>> {
        Async::with_reactor(io, Reactor::current("ebbtide::io::Async::new")?)
    }

    /// Puts `io` in non-blocking mode and registers it with `reactor`.
    pub(crate) fn with_reactor(io: T, reactor: Arc<Reactor>) -> io::Result<Async<T>> {
        sys::set_nonblocking(&io)?;
        Async::registered(io, reactor)
    }

    /// Registers `io` with the current runtime as it is, with no `fcntl`:
    /// for a handle that is only ever polled, never read or written (a
    /// process-exit descriptor), whose blocking mode does not matter.
    ///
    /// # Errors
    ///
    /// As for [`Async::new`], without the `fcntl` error.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn polled_only(io: T) -> io::Result<Async<T>> {
        Async::registered(io, Reactor::current("ebbtide::io::Async::new")?)
    }

    /// Registers `io` with `reactor`.
    fn registered(io: T, reactor: Arc<Reactor>) -> io::Result<Async<T>> {
        // SAFETY: `io` owns the handle and is stored in the returned value;
        // `Drop`/`into_inner` call `remove_source` before releasing it.
        let source = unsafe { reactor.insert_source(sys::raw(&io))? };
        Ok(Async {
            source,
            reactor,
            io: Some(io),
        })
    }

    /// The inner I/O object.
    pub fn get_ref(&self) -> &T {
        self.io.as_ref().expect("io is present until drop")
    }

    /// Deregisters the handle and returns the inner object (still in
    /// non-blocking mode).
    ///
    /// # Errors
    ///
    /// The poller's error if deregistration fails; the object is dropped then.
    pub fn into_inner(mut self) -> io::Result<T> {
        let io = self.io.take().expect("io is present until drop");
        self.reactor.remove_source(&self.source)?;
        Ok(io)
    }

    /// The reactor's poller, or the "runtime gone" error once it closed.
    fn poller(&self) -> io::Result<&crate::sys::Poller> {
        if self.reactor.is_closed() {
            return Err(runtime_gone());
        }
        Ok(self.reactor.poller())
    }

    /// `reactor::source` step 2: ready now, or wait for an event.
    fn poll_ready(
        &self,
        dir: Direction,
        since: &mut Option<u32>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        self.source.poll_ready(self.poller()?, dir, since, cx)
    }

    /// `reactor::source` step 4: after a `WouldBlock` (whose event tick was
    /// `tick`, if known), wait for the next event.
    fn poll_wait(
        &self,
        dir: Direction,
        tick: Option<u32>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        self.source.poll_wait(self.poller()?, dir, tick, cx)
    }

    /// For a caller whose non-blocking read just returned `WouldBlock`:
    /// `Ready` when a readiness event arrived since that may make a retry
    /// succeed (at most one retry is spent on an event that came before the
    /// `WouldBlock`), `Pending` until then. Every task polling this is woken.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_wait(Direction::Read, None, cx)
    }

    /// Like [`poll_readable`](Self::poll_readable), for writes.
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_wait(Direction::Write, None, cx)
    }

    /// Waits until the handle may be readable: at once if no read has seen
    /// `WouldBlock` since the last readiness event, otherwise at the next
    /// event.
    ///
    /// # Errors
    ///
    /// If the runtime has shut down, or the poller fails to re-arm.
    pub async fn readable(&self) -> io::Result<()> {
        let mut since = None;
        poll_fn(|cx| self.poll_ready(Direction::Read, &mut since, cx)).await
    }

    /// Waits until the handle may be writable: at once if no write has seen
    /// `WouldBlock` since the last readiness event (an idle connected
    /// stream is writable), otherwise at the next event.
    ///
    /// # Errors
    ///
    /// As for [`readable`](Self::readable).
    pub async fn writable(&self) -> io::Result<()> {
        let mut since = None;
        poll_fn(|cx| self.poll_ready(Direction::Write, &mut since, cx)).await
    }

    /// Waits until the handle may be ready in one of the directions of
    /// `interest`, and says which: each direction resolves as
    /// [`readable`](Self::readable) / [`writable`](Self::writable) would.
    ///
    /// # Errors
    ///
    /// As for [`readable`](Self::readable).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use ebbtide::io::{Async, Interest};
    ///
    /// ebbtide::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let stream = Async::new(TcpStream::connect(listener.local_addr()?)?)?;
    ///     let ready = stream.ready(Interest::READABLE | Interest::WRITABLE).await?;
    ///     assert!(ready.is_writable());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        let mut since = [None, None];
        poll_fn(|cx| {
            let mut ready = Ready::EMPTY;
            for (dir, want) in [
                (Direction::Read, Interest::READABLE),
                (Direction::Write, Interest::WRITABLE),
            ] {
                if interest.add(want) == interest {
                    let since = &mut since[dir as usize];
                    if self.poll_ready(dir, since, cx)?.is_ready() {
                        ready = ready.with(want);
                    }
                }
            }
            if ready.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(Ok(ready))
            }
        })
        .await
    }

    /// Runs the non-blocking `op` until it stops returning `WouldBlock`,
    /// waiting for readability in between.
    ///
    /// # Errors
    ///
    /// Whatever `op` returns other than `WouldBlock` (and `Interrupted`,
    /// which is retried at once), or a readiness error.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe if `op` is: nothing is held between attempts.
    pub async fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        poll_fn(|cx| self.poll_with(Direction::Read, cx, &mut op)).await
    }

    /// Like [`read_with`](Self::read_with), waiting for writability.
    ///
    /// # Errors
    ///
    /// As for [`read_with`](Self::read_with).
    pub async fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        poll_fn(|cx| self.poll_with(Direction::Write, cx, &mut op)).await
    }

    fn poll_with<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        op: &mut impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_op(dir, cx, op, |_| false)
    }

    /// One attempt of `op` that never waits and registers no interest (the
    /// `try_*` socket methods): `WouldBlock` is returned to the caller, and
    /// clears the direction's readiness as a waiting operation's would
    /// (`reactor::source` step 4), so a later `readable()`/`writable()`
    /// waits for the next event. `Interrupted` is retried at once;
    /// `drained` as for [`poll_op`](Self::poll_op).
    pub(crate) fn try_op<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&T) -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        loop {
            let tick = self.source.tick(dir);
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.source.clear_ready(dir, tick);
                    return Err(e);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(r) => {
                    self.source.on_success(dir, tick, drained(&r));
                    return Ok(r);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `reactor::source` step 7: the last stream read filled its buffer.
    pub(crate) fn last_read_was_full(&self) -> bool {
        self.source.last_read_was_full()
    }

    /// `reactor::source` step 7: records a stream read's fullness.
    pub(crate) fn note_read(&self, full: bool) {
        self.source.note_read(full);
    }

    /// The loop every readiness operation runs (module doc, and
    /// `reactor::source` steps 5–6): try `op`, retrying `Interrupted` at
    /// once; on `WouldBlock`, wait for `dir` and try again. `drained(&r)`
    /// says a successful result proves the receive queue empty (a short
    /// *stream* read); then the next read waits for an event instead of
    /// trying first. It is `|_| false` for everything else.
    pub(crate) fn poll_op<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        op: &mut impl FnMut(&T) -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        // A task that completed its budget of operations yields first.
        std::task::ready!(crate::coop::poll_proceed(cx));
        loop {
            if dir == Direction::Read && self.source.skip_read_try() {
                std::task::ready!(self.poll_ready(dir, &mut None, cx))?;
            }
            let tick = self.source.tick(dir);
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(r) => {
                    self.source.on_success(dir, tick, drained(&r));
                    return Poll::Ready(Ok(r));
                }
                res => return Poll::Ready(res),
            }
            std::task::ready!(self.poll_wait(dir, Some(tick), cx))?;
        }
    }
}

impl<T: AsSourceHandle> Drop for Async<T> {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            // Deregister first (the `Source` invariant), then close.
            let _ = self.reactor.remove_source(&self.source);
            drop(io);
        }
    }
}

impl<T: AsSourceHandle + fmt::Debug> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async").field("io", &self.io).finish()
    }
}

impl<T: AsSourceHandle> futures_lite::AsyncRead for Async<T>
where
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_with(Direction::Read, cx, &mut |mut io: &T| io.read(buf))
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_with(Direction::Read, cx, &mut |mut io: &T| {
            io.read_vectored(bufs)
        })
    }
}

impl<T: AsSourceHandle> futures_lite::AsyncWrite for Async<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_with(Direction::Write, cx, &mut |mut io: &T| io.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_with(Direction::Write, cx, &mut |mut io: &T| {
            io.write_vectored(bufs)
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_with(Direction::Write, cx, &mut |mut io: &T| io.flush())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
