//! The readiness loop every socket operation runs (steps 1–3 of the
//! protocol in the `net` module doc), its owned-buffer forms (steps 4–6),
//! and what all socket types share: registration, connect completion, and
//! the `futures-io` / raw-handle trait impls.

use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};

use socket2::{SockAddr, SockRef, Socket};

use crate::io::{AsSourceHandle, Async, BufResult, IoBuf, IoBufMut};
use crate::op::{self, OpContext};
pub(crate) use crate::reactor::Direction;
use crate::reactor::Reactor;
use crate::runtime::context;

/// Fails, saying which call (`what`) needed a runtime, unless one is current.
pub(crate) fn ensure_runtime(what: &str) -> io::Result<()> {
    Reactor::current(what).map(drop)
}

/// Registers `io` with the current runtime, saying which call needed one
/// if there is none.
///
/// # Errors
///
/// Outside a runtime; as for [`Async::new`].
pub(crate) fn register<T: AsSourceHandle>(io: T, what: &str) -> io::Result<Async<T>> {
    Async::with_reactor(io, Reactor::current(what)?)
}

/// Steps 1–3: runs `op` until it returns something other than
/// `WouldBlock` (retrying `Interrupted` at once), waiting for `dir`
/// readiness in between.
pub(crate) fn poll_io<T: AsSourceHandle, R>(
    io: &Async<T>,
    dir: Direction,
    cx: &mut Context<'_>,
    mut op: impl FnMut(&T) -> io::Result<R>,
) -> Poll<io::Result<R>> {
    io.poll_op(dir, cx, &mut op, |_| false)
}

/// A stream socket's read call: `recv`, plus what it proves about the
/// receive queue.
pub(crate) trait StreamSocket: AsSourceHandle {
    /// Whether this is a socket (`recv` / `send` apply), not a pipe: only
    /// sockets' owned-buffer calls go to the completion backend.
    const IS_SOCKET: bool = true;
    /// One `recv` into `buf`: the bytes read and, when `hint` asks and the
    /// OS says so, how many are still queued after it (Linux TCP:
    /// `sys::tcp_recv`; `reactor::source` step 7 says when to ask).
    fn recv_stream(
        &self,
        buf: &mut [MaybeUninit<u8>],
        hint: bool,
    ) -> io::Result<(usize, Option<usize>)>;
}

impl StreamSocket for std::net::TcpStream {
    fn recv_stream(
        &self,
        buf: &mut [MaybeUninit<u8>],
        hint: bool,
    ) -> io::Result<(usize, Option<usize>)> {
        crate::sys::tcp_recv(self, buf, hint)
    }
}

#[cfg(unix)]
impl StreamSocket for std::os::unix::net::UnixStream {
    fn recv_stream(
        &self,
        buf: &mut [MaybeUninit<u8>],
        _hint: bool,
    ) -> io::Result<(usize, Option<usize>)> {
        Ok((SockRef::from(self).recv(buf)?, None))
    }
}

/// `buf` as the uninitialized bytes a `recv` writes into.
///
/// # Safety
///
/// Only initialized bytes may be written through the result (as `recv`
/// and the stashes write), so that `buf` stays initialized.
pub(crate) unsafe fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have one layout; the caller
    // writes only initialized bytes.
    unsafe { &mut *(std::ptr::from_mut::<[u8]>(buf) as *mut [MaybeUninit<u8>]) }
}

/// A stream's [`op::ReadStash`]: made by its first read through a ring,
/// looked at by every read of the stream after that.
pub(crate) type StashCell = OnceLock<Arc<op::ReadStash>>;

/// A datagram socket's [`op::DatagramStash`]: made by its first receive
/// through a ring, looked at by every receive after that.
pub(crate) type DatagramCell = OnceLock<Arc<op::DatagramStash>>;

/// A datagram that a dropped ring receive got, if one is kept: copied into
/// `buf` (taken out unless `peek`), with its sender. Every receive of a
/// datagram socket calls this first.
pub(crate) fn stashed_datagram(
    stash: &DatagramCell,
    buf: &mut [u8],
    peek: bool,
) -> Option<(usize, SockAddr)> {
    let stash = stash.get()?;
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have one layout, and the
    // stash writes only initialized bytes, so `buf` stays initialized.
    let out = unsafe { as_uninit(buf) };
    stash.take_into(out, peek)
}

/// A datagram receive with its sender: a kept datagram
/// ([`stashed_datagram`], its sender converted by `addr`), else `os` (a
/// `recvfrom`, or its `MSG_PEEK` form when `peek`).
pub(crate) fn recv_from_kept<A>(
    stash: &DatagramCell,
    buf: &mut [u8],
    peek: bool,
    addr: impl FnOnce(SockAddr) -> io::Result<A>,
    os: impl FnOnce(&mut [u8]) -> io::Result<(usize, A)>,
) -> io::Result<(usize, A)> {
    match stashed_datagram(stash, buf, peek) {
        Some((n, from)) => Ok((n, addr(from)?)),
        None => os(buf),
    }
}

/// A connected datagram socket's receive: a kept datagram, else `os` (a
/// `recv`).
pub(crate) fn recv_kept(
    stash: &DatagramCell,
    buf: &mut [u8],
    os: impl FnOnce(&mut [u8]) -> io::Result<usize>,
) -> io::Result<usize> {
    match stashed_datagram(stash, buf, false) {
        Some((n, _)) => Ok(n),
        None => os(buf),
    }
}

/// A datagram socket's `ready(interest)`: readable at once while a kept
/// datagram waits, else the socket's readiness.
pub(crate) async fn datagram_ready<T: AsSourceHandle>(
    io: &Async<T>,
    stash: &DatagramCell,
    interest: crate::io::Interest,
) -> io::Result<crate::io::Ready> {
    if interest.is_readable() && stash.get().is_some_and(|s| s.has_datagram()) {
        return Ok(crate::io::Ready::EMPTY.with(crate::io::Interest::READABLE));
    }
    io.ready(interest).await
}

/// The stash of a stream that never reads through a ring (Unix pipes).
#[cfg(unix)]
pub(crate) static NO_STASH: StashCell = StashCell::new();

/// `op::ReadStash` step 3 for a read into `buf` (`consume: false` for a
/// peek): `Ready(Some(n))` stashed bytes copied, `Ready(None)` none
/// stashed, `Pending` while a dropped read may still bring some (with no
/// `cx`, the caller reports `WouldBlock`).
#[inline]
pub(crate) fn poll_stashed(
    stash: &StashCell,
    cx: Option<&mut Context<'_>>,
    buf: &mut [MaybeUninit<u8>],
    consume: bool,
) -> Poll<Option<usize>> {
    match stash.get() {
        Some(stash) => stash.poll_take(cx, buf, consume),
        None => Poll::Ready(None),
    }
}

/// [`poll_stashed`] for the calls that never wait (`try_read`,
/// `try_peek`): `Some` result to return instead of reading.
pub(crate) fn try_stashed(
    stash: &StashCell,
    buf: &mut [u8],
    consume: bool,
) -> Option<io::Result<usize>> {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have one layout, and the
    // stash writes only initialized bytes, so `buf` stays initialized.
    let buf = unsafe { as_uninit(buf) };
    match poll_stashed(stash, None, buf, consume) {
        Poll::Ready(None) => None,
        Poll::Ready(Some(n)) => Some(Ok(n)),
        Poll::Pending => Some(Err(io::ErrorKind::WouldBlock.into())),
    }
}

/// [`try_stashed`] for a vectored read: stashed bytes go to the first
/// non-empty buffer.
pub(crate) fn try_stashed_vectored(
    stash: &StashCell,
    bufs: &mut [io::IoSliceMut<'_>],
) -> Option<io::Result<usize>> {
    let first = bufs.iter_mut().find(|b| !b.is_empty())?;
    try_stashed(stash, first, true)
}

/// A stream's `ready(interest)`: readable at once while bytes are stashed
/// (after every dropped ring read settled), else the socket's readiness.
pub(crate) async fn stream_ready<T: AsSourceHandle>(
    io: &Async<T>,
    stash: &StashCell,
    interest: crate::io::Interest,
) -> io::Result<crate::io::Ready> {
    if let Some(stash) = stash.get() {
        if interest.is_readable() && poll_fn(|cx| stash.poll_has_bytes(cx)).await {
            return Ok(crate::io::Ready::EMPTY.with(crate::io::Interest::READABLE));
        }
    }
    io.ready(interest).await
}

/// A stream's `peek`: stashed bytes (left in the stash) if any, else
/// `peek` (`recv(MSG_PEEK)`) by readiness.
pub(crate) async fn peek_stream<T: AsSourceHandle>(
    io: &Async<T>,
    stash: &StashCell,
    buf: &mut [u8],
    mut peek: impl FnMut(&T, &mut [u8]) -> io::Result<usize>,
) -> io::Result<usize> {
    {
        // SAFETY: as in `try_stashed`.
        let out = unsafe { as_uninit(buf) };
        if let Some(n) = poll_fn(|cx| poll_stashed(stash, Some(cx), out, false)).await {
            return Ok(n);
        }
    }
    io_with(io, Direction::Read, |s| peek(s, buf)).await
}

/// [`poll_io`] for one read from a *stream* socket into `buf`. A read
/// that proves the receive queue empty (short, `0 < n < len`, or a full
/// one whose queue hint is 0) lets the next read wait for an event instead
/// of trying a `recv` that would fail (`reactor::source` step 6). The
/// hint is asked for only after a read that filled its buffer (step 7).
/// Bytes that dropped ring reads received (`stash`) come first. Never for
/// datagrams.
pub(crate) fn poll_stream_read<T: StreamSocket>(
    io: &Async<T>,
    stash: &StashCell,
    cx: &mut Context<'_>,
    buf: &mut [MaybeUninit<u8>],
) -> Poll<io::Result<usize>> {
    if let Some(n) = ready!(poll_stashed(stash, Some(cx), buf, true)) {
        return Poll::Ready(Ok(n));
    }
    let len = buf.len();
    let hint = io.last_read_was_full();
    let drained = |&(n, left): &(usize, Option<usize>)| n > 0 && (n < len || left == Some(0));
    let (n, _) = ready!(io.poll_op(
        Direction::Read,
        cx,
        &mut |s| s.recv_stream(buf, hint),
        drained
    ))?;
    io.note_read(len > 0 && n == len);
    Poll::Ready(Ok(n))
}

/// One attempt of `op` that never waits and registers no interest (the
/// `try_*` methods): `WouldBlock` when not ready, which clears the sticky
/// readiness so a later `readable()`/`writable()` waits (`reactor::source`
/// step 4).
///
/// # Errors
///
/// Whatever `op` returns, `WouldBlock` included.
pub(crate) fn try_io<T: AsSourceHandle, R>(
    io: &Async<T>,
    dir: Direction,
    op: impl FnMut(&T) -> io::Result<R>,
) -> io::Result<R> {
    io.try_op(dir, op, |_| false)
}

/// [`try_io`] for one read from a *stream* socket: a read that proves the
/// receive queue empty clears readiness as [`poll_stream_read`] does.
///
/// # Errors
///
/// The OS error of `recv`; `WouldBlock` when nothing is queued.
pub(crate) fn try_stream_read<T: StreamSocket>(
    io: &Async<T>,
    stash: &StashCell,
    buf: &mut [u8],
) -> io::Result<usize> {
    if let Some(res) = try_stashed(stash, buf, true) {
        return res;
    }
    let len = buf.len();
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have one layout, and
    // `recv_stream` only writes initialized bytes into it, so `buf` stays
    // initialized.
    let buf = unsafe { as_uninit(buf) };
    let hint = io.last_read_was_full();
    let drained = |&(n, left): &(usize, Option<usize>)| n > 0 && (n < len || left == Some(0));
    let (n, _) = io.try_op(Direction::Read, |s| s.recv_stream(buf, hint), drained)?;
    io.note_read(len > 0 && n == len);
    Ok(n)
}

/// [`poll_io`] as a future. Cancel-safe if `op` is: nothing is held
/// between attempts.
pub(crate) async fn io_with<T: AsSourceHandle, R>(
    io: &Async<T>,
    dir: Direction,
    mut op: impl FnMut(&T) -> io::Result<R>,
) -> io::Result<R> {
    poll_fn(|cx| poll_io(io, dir, cx, &mut op)).await
}

/// One read into `buf`'s spare capacity by `read` (a poll function given
/// the spare bytes); `Ok(0)` at once if there are none.
///
/// # Safety
///
/// `read` must return how many bytes it initialized at the start of the
/// slice it was given (as `recv` does).
#[inline]
unsafe fn poll_into_spare<B: IoBufMut>(
    buf: &mut B,
    read: impl FnOnce(&mut [MaybeUninit<u8>]) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<usize>> {
    if buf.buf_len() == buf.buf_capacity() {
        return Poll::Ready(Ok(0));
    }
    let n = ready!(read(buf.spare_mut()))?;
    // SAFETY: the caller's contract: `n` bytes at the start of the spare
    // capacity are initialized now.
    unsafe { buf.advance_init(n) };
    Poll::Ready(Ok(n))
}

/// One `recvfrom` into `buf`'s spare capacity. The caller handles an empty
/// spare capacity (there is no sender to report without a datagram).
pub(crate) fn poll_recv_from_owned<T: AsSourceHandle, B: IoBufMut>(
    io: &Async<T>,
    cx: &mut Context<'_>,
    buf: &mut B,
) -> Poll<io::Result<(usize, SockAddr)>> {
    let (n, from) = ready!(poll_io(io, Direction::Read, cx, |s| SockRef::from(s)
        .recv_from(buf.spare_mut())))?;
    // SAFETY: `recvfrom` wrote `n` bytes at the start of the spare
    // capacity (at most its length).
    unsafe { buf.advance_init(n) };
    Poll::Ready(Ok((n, from)))
}

/// Submits an owned-buffer op to the current runtime's completion backend
/// (`submit`: `op::recv`, `op::send`, `op::recv_from`, `op::send_to`,
/// `op::connect`), or gives the buffer (or socket) back
/// when the backend does not take it (no ring: readiness, steps 4–6).
#[inline]
fn to_backend<B, O>(buf: B, submit: impl FnOnce(&OpContext, B) -> Result<O, B>) -> Result<O, B> {
    if !op::ring_sockets_in_process() {
        return Err(buf);
    }
    context::with_current(|shared| match shared {
        Some(shared) => submit(&shared.ops, buf),
        None => Err(buf),
    })
}

/// Steps 4–6 for stream reads: the future owns `buf` until it returns it.
/// On the io_uring backend, one `RECV` through the ring instead (the op
/// table's slot owns `buf` while the kernel may write it; if the future
/// is dropped, what the read got goes to `stash`, which every read of the
/// stream looks at first: `op::ReadStash`).
pub(crate) fn read_owned<'a, T: StreamSocket, B: IoBufMut>(
    io: &'a Async<T>,
    stash: &'a StashCell,
    buf: B,
) -> ReadOwned<'a, T, B> {
    let state = if may_use_ring::<T>() {
        ReadState::Start(buf)
    } else {
        ReadState::Ready(buf)
    };
    ReadOwned { io, stash, state }
}

/// Whether an owned stream call of `T` may go through a ring, and so must
/// decide its path at its first poll ([`ReadOwned`]'s doc): only a socket,
/// and only once some runtime of the process sends sockets' calls to its
/// ring (`op::ring_sockets_in_process`, which never goes back to `false`).
/// Otherwise the call is on readiness from the start.
#[inline]
fn may_use_ring<T: StreamSocket>() -> bool {
    T::IS_SOCKET && op::ring_sockets_in_process()
}

/// The future of [`read_owned`], written out by hand: it is every owned
/// read's hot path, and a nested `async fn` costs a state machine per
/// layer and moves the buffer through each (`docs/benchmarks.md`, "TCP
/// echo", has the count). Its first poll decides the path, in order:
///
/// 1. bytes kept from a dropped ring read, when there are any;
/// 2. the ring, if the runtime sends sockets' calls there (`RingRead`);
/// 3. readiness, steps 1–3 (`poll_stream_read`, which looks at the kept
///    bytes first too).
///
/// While no runtime of the process sends sockets' calls to a ring (the
/// default: [`may_use_ring`] is `false`), there is no ring to choose and
/// no kept bytes to look at before `poll_stream_read` does, so the future
/// starts at step 3. A ring-sockets
/// runtime built before its first poll leaves it there: readiness works on
/// every runtime, and step 3 still takes kept bytes first.
pub(crate) struct ReadOwned<'a, T: StreamSocket, B: IoBufMut> {
    io: &'a Async<T>,
    stash: &'a StashCell,
    state: ReadState<'a, B>,
}

enum ReadState<'a, B: IoBufMut> {
    /// Not decided yet (the first poll, or one waiting for the stash).
    Start(B),
    /// By readiness.
    Ready(B),
    /// Through the ring.
    Ring(RingRead<'a, B>),
    /// Returned its output.
    Done,
}

// The buffer is never pinned (it is moved in and out by value, as the op
// table moves it), so the future may move whatever `B` is.
impl<T: StreamSocket, B: IoBufMut> Unpin for ReadOwned<'_, T, B> {}

impl<'a, T: StreamSocket, B: IoBufMut> ReadOwned<'a, T, B> {
    /// Steps 1–2 of the type's doc (only for a future [`may_use_ring`]
    /// started in `Start`): `Break(output)` when the stash answered, else
    /// the state the read goes on in (`Start` again while it waits for the
    /// stash).
    fn start(
        &self,
        cx: &mut Context<'_>,
        mut buf: B,
    ) -> ControlFlow<BufResult<usize, B>, ReadState<'a, B>> {
        if buf.buf_len() == buf.buf_capacity() {
            return ControlFlow::Continue(ReadState::Ready(buf));
        }
        let stash = self.stash;
        if stash.get().is_some() {
            // SAFETY: the stash writes `n` initialized bytes at the start.
            let stashed = unsafe {
                poll_into_spare(&mut buf, |s| {
                    poll_stashed(stash, Some(cx), s, true).map(|n| Ok(n.unwrap_or(0)))
                })
            };
            match stashed {
                Poll::Pending => return ControlFlow::Continue(ReadState::Start(buf)),
                Poll::Ready(Ok(0)) => {}
                Poll::Ready(res) => return ControlFlow::Break(BufResult(res, buf)),
            }
        }
        let io = self.io;
        match to_backend(buf, |ops, buf| {
            op::recv(ops, sys_raw(io), buf, stash.get_or_init(Default::default))
        }) {
            Ok(op) => ControlFlow::Continue(ReadState::Ring(RingRead {
                op: Some(op),
                stash: stash.get().expect("made for the op just above"),
            })),
            Err(buf) => ControlFlow::Continue(ReadState::Ready(buf)),
        }
    }
}

impl<T: StreamSocket, B: IoBufMut> Future for ReadOwned<'_, T, B> {
    type Output = BufResult<usize, B>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                ReadState::Ready(buf) => {
                    let (io, stash) = (this.io, this.stash);
                    // SAFETY: a stream read returns the bytes `recv` wrote
                    // at the start.
                    let res = ready!(unsafe {
                        poll_into_spare(buf, |s| poll_stream_read(io, stash, cx, s))
                    });
                    let ReadState::Ready(buf) = std::mem::replace(&mut this.state, ReadState::Done)
                    else {
                        unreachable!("matched above")
                    };
                    return Poll::Ready(BufResult(res, buf));
                }
                ReadState::Ring(read) => {
                    let out = ready!(Pin::new(read).poll(cx));
                    this.state = ReadState::Done;
                    return Poll::Ready(out);
                }
                ReadState::Start(_) => {
                    let ReadState::Start(buf) = std::mem::replace(&mut this.state, ReadState::Done)
                    else {
                        unreachable!("matched above")
                    };
                    match this.start(cx, buf) {
                        ControlFlow::Break(out) => return Poll::Ready(out),
                        ControlFlow::Continue(ReadState::Start(buf)) => {
                            this.state = ReadState::Start(buf);
                            return Poll::Pending;
                        }
                        ControlFlow::Continue(next) => this.state = next,
                    }
                }
                ReadState::Done => panic!("`read_owned` polled after it returned"),
            }
        }
    }
}

/// A stream read through a ring; counts itself in the stream's stash if
/// dropped before it took its output (`op::ReadStash` step 1).
struct RingRead<'a, B: IoBufMut> {
    op: Option<op::Op<op::Received<B>>>,
    stash: &'a op::ReadStash,
}

impl<B: IoBufMut> Future for RingRead<'_, B> {
    type Output = BufResult<usize, B>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let op = self.op.as_mut().expect("polled after completion");
        let received = ready!(Pin::new(op).poll(cx));
        self.op = None;
        Poll::Ready(received.take())
    }
}

impl<B: IoBufMut> Drop for RingRead<'_, B> {
    fn drop(&mut self) {
        if let Some(op) = self.op.take() {
            // Step 1, before the cancel (which may drop the output now).
            self.stash.read_dropped();
            drop(op);
        }
    }
}

/// Steps 4–6 for `recv` on a connected datagram socket.
pub(crate) async fn recv_owned<T: AsSourceHandle, B: IoBufMut>(
    io: &Async<T>,
    stash: &DatagramCell,
    mut buf: B,
) -> BufResult<usize, B> {
    let recv = |s: &mut [MaybeUninit<u8>], cx: &mut Context<'_>| {
        if let Some((n, _)) = stash.get().and_then(|st| st.take_into(s, false)) {
            return Poll::Ready(Ok(n));
        }
        poll_io(io, Direction::Read, cx, |sock| SockRef::from(sock).recv(s))
    };
    // SAFETY: `recv` returns the bytes it wrote at the start of `s`.
    let res = poll_fn(|cx| unsafe { poll_into_spare(&mut buf, |s| recv(s, cx)) });
    BufResult(res.await, buf)
}

/// Steps 4–6 for `recvfrom` (on the io_uring backend with ring sockets,
/// one `RECVMSG` through the ring instead, whose slot owns the buffer and
/// the address storage). A buffer with no spare capacity fails at once
/// with `InvalidInput`: `Ok(0)` would need a sender address, and getting
/// one would discard a datagram.
pub(crate) async fn recv_from_owned<T: AsSourceHandle, B: IoBufMut>(
    io: &Async<T>,
    stash: &DatagramCell,
    mut buf: B,
) -> BufResult<(usize, SockAddr), B> {
    if buf.buf_len() == buf.buf_capacity() {
        let e = io::Error::new(
            io::ErrorKind::InvalidInput,
            "recv_from_owned: the buffer has no spare capacity to receive a datagram into",
        );
        return BufResult(Err(e), buf);
    }
    if let Some((n, from)) = stash
        .get()
        .and_then(|st| st.take_into(buf.spare_mut(), false))
    {
        // SAFETY: the stash wrote `n` initialized bytes at the start of the
        // spare capacity.
        unsafe { buf.advance_init(n) };
        return BufResult(Ok((n, from)), buf);
    }
    buf = match to_backend(buf, |ops, buf| {
        op::recv_from(ops, sys_raw(io), buf, stash.get_or_init(Default::default))
    }) {
        Ok(op) => return op.await.take(),
        Err(buf) => buf,
    };
    let res = poll_fn(|cx| poll_recv_from_owned(io, cx, &mut buf)).await;
    BufResult(res, buf)
}

/// Steps 4–6 for one `sendto` of the buffer's initialized bytes to
/// `target` (`op` sends by readiness); on the io_uring backend with ring
/// sockets, one `SENDMSG` through the ring instead.
pub(crate) async fn send_to_owned<T: AsSourceHandle, B: IoBuf>(
    io: &Async<T>,
    buf: B,
    target: &SockAddr,
    op: impl FnMut(&T, &[u8]) -> io::Result<usize>,
) -> BufResult<usize, B> {
    match to_backend(buf, |ops, buf| op::send_to(ops, sys_raw(io), buf, target)) {
        Ok(op) => op.await,
        Err(buf) => send_owned(io, buf, op).await,
    }
}

/// One `accept` through the current runtime's ring, when it takes
/// sockets' calls (`None`: accept by readiness). The op's output owns the
/// new socket: one accepted after the future was dropped goes to the
/// listener's `stash`, which its next accept takes from first.
pub(crate) fn accept_through_ring<T: AsSourceHandle>(
    io: &Async<T>,
    stash: &Arc<op::AcceptStash>,
) -> Option<op::AcceptOp> {
    if !op::ring_sockets_in_process() {
        return None;
    }
    context::with_current(|shared| op::accept(&shared?.ops, sys_raw(io), stash))
}

/// Starts connecting the non-blocking `socket` to `addr`, and says
/// whether the handshake is over (`true`) or must still be waited for
/// with [`finish_connect`] once the socket is registered (`false`).
///
/// Through the current runtime's ring when it takes sockets' calls (one
/// `CONNECT`, which owns the socket until the kernel is done with it, and
/// usually waits for the handshake itself); otherwise a non-blocking
/// `connect`.
///
/// # Errors
///
/// The connection's error (`ConnectionRefused`, …).
pub(crate) async fn start_connect(socket: Socket, addr: &SockAddr) -> io::Result<(Socket, bool)> {
    let socket = match to_backend(socket, |ops, s| op::connect(ops, s, addr.clone())) {
        Ok(op) => {
            let BufResult(res, socket) = op.await;
            return match res {
                Ok(()) => Ok((socket, true)),
                // Some kernels end a `CONNECT` with the handshake still
                // under way: it finishes by readiness.
                Err(e) if crate::sys::connect_in_progress(&e) => Ok((socket, false)),
                Err(e) => Err(e),
            };
        }
        Err(socket) => socket,
    };
    match socket.connect(addr) {
        Err(e) if !crate::sys::connect_in_progress(&e) => Err(e),
        _ => Ok((socket, false)),
    }
}

/// Steps 4–6 for a single send of the buffer's initialized bytes with
/// `op` (`write`, `send`, `send_to`). An empty buffer sends nothing and
/// returns `Ok(0)` only if `op` does.
pub(crate) async fn send_owned<T: AsSourceHandle, B: IoBuf>(
    io: &Async<T>,
    buf: B,
    mut op: impl FnMut(&T, &[u8]) -> io::Result<usize>,
) -> BufResult<usize, B> {
    let res = io_with(io, Direction::Write, |s| op(s, buf.as_init())).await;
    BufResult(res, buf)
}

/// The raw handle of `io`'s socket, for a completion backend.
fn sys_raw<T: AsSourceHandle>(io: &Async<T>) -> crate::sys::RawSource {
    crate::sys::raw(io.get_ref())
}

/// One `write` of the buffer's initialized bytes (a stream's `write_owned`);
/// one `SEND` through the ring on the io_uring backend.
pub(crate) async fn write_owned<T: StreamSocket, B: IoBuf>(
    io: &Async<T>,
    buf: B,
) -> BufResult<usize, B>
where
    for<'a> &'a T: Write,
{
    let buf = if T::IS_SOCKET {
        match to_backend(buf, |ops, buf| op::send(ops, sys_raw(io), buf)) {
            Ok(op) => return op.await,
            Err(buf) => buf,
        }
    } else {
        buf
    };
    send_owned(io, buf, |mut s, bytes| s.write(bytes)).await
}

/// Writes all the buffer's initialized bytes. On error, how many were
/// written before it is not reported (as in tokio-uring and compio). On
/// the io_uring backend, one `SEND` through the ring per chunk the kernel
/// takes.
pub(crate) fn write_all_owned<T: StreamSocket, B: IoBuf>(
    io: &Async<T>,
    buf: B,
) -> WriteAllOwned<'_, T, B>
where
    for<'b> &'b T: Write,
{
    let state = if may_use_ring::<T>() {
        WriteState::Start(buf)
    } else {
        WriteState::Ready { buf, done: 0 }
    };
    WriteAllOwned { io, state }
}

/// The future of [`write_all_owned`], written out by hand for the reason
/// [`ReadOwned`] is. Its first poll decides the path: through the ring if
/// the runtime sends sockets' calls there (one `SEND` per chunk the kernel
/// takes; if a later chunk finds no runtime current, the rest goes by
/// readiness), else by readiness (steps 1–3, a `write` per chunk).
pub(crate) struct WriteAllOwned<'a, T: StreamSocket, B: IoBuf> {
    io: &'a Async<T>,
    state: WriteState<B>,
}

enum WriteState<B: IoBuf> {
    /// Not polled yet.
    Start(B),
    /// By readiness: `done` bytes written.
    Ready { buf: B, done: usize },
    /// Through the ring: `op` sends the chunk after the first `done` bytes.
    Ring {
        op: op::Op<BufResult<usize, crate::io::Slice<B>>>,
        done: usize,
    },
    /// Returned its output.
    Done,
}

// As for `ReadOwned`: the buffer is never pinned.
impl<T: StreamSocket, B: IoBuf> Unpin for WriteAllOwned<'_, T, B> {}

impl<T: StreamSocket, B: IoBuf> WriteAllOwned<'_, T, B>
where
    for<'b> &'b T: Write,
{
    /// The path of the rest of a write from byte `done` of `buf` (only
    /// for a future [`may_use_ring`] started in `Start`): one more op in
    /// the ring, or readiness when no runtime is current to take it.
    fn start(&self, buf: B, done: usize) -> WriteState<B> {
        let total = buf.buf_len();
        if done >= total {
            return WriteState::Ready { buf, done };
        }
        let io = self.io;
        match to_backend(buf.slice(done..total), |ops, s| {
            op::send(ops, sys_raw(io), s)
        }) {
            Ok(op) => WriteState::Ring { op, done },
            Err(rest) => WriteState::Ready {
                buf: rest.into_inner(),
                done,
            },
        }
    }
}

impl<T: StreamSocket, B: IoBuf> Future for WriteAllOwned<'_, T, B>
where
    for<'b> &'b T: Write,
{
    type Output = BufResult<(), B>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                WriteState::Ready { buf, done } => {
                    let bytes = buf.as_init();
                    let res = loop {
                        if *done >= bytes.len() {
                            break Ok(());
                        }
                        let written = ready!(poll_io(this.io, Direction::Write, cx, |mut s| s
                            .write(&bytes[*done..])));
                        match written {
                            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                            Ok(n) => *done += n,
                            Err(e) => break Err(e),
                        }
                    };
                    let WriteState::Ready { buf, .. } =
                        std::mem::replace(&mut this.state, WriteState::Done)
                    else {
                        unreachable!("matched above")
                    };
                    return Poll::Ready(BufResult(res, buf));
                }
                WriteState::Ring { op, done } => {
                    let BufResult(res, slice) = ready!(Pin::new(op).poll(cx));
                    let buf = slice.into_inner();
                    let total = buf.buf_len();
                    let res = match res {
                        Ok(0) if total > 0 => Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => Ok(*done + n),
                        Err(e) => Err(e),
                    };
                    match res {
                        Ok(done) if done < total => this.state = this.start(buf, done),
                        res => {
                            this.state = WriteState::Done;
                            return Poll::Ready(BufResult(res.map(drop), buf));
                        }
                    }
                }
                WriteState::Start(_) => {
                    let WriteState::Start(buf) =
                        std::mem::replace(&mut this.state, WriteState::Done)
                    else {
                        unreachable!("matched above")
                    };
                    this.state = this.start(buf, 0);
                }
                WriteState::Done => panic!("`write_all_owned` polled after it returned"),
            }
        }
    }
}

/// Waits for a non-blocking `connect` (already started) to finish.
///
/// # Errors
///
/// The connection's error (`SO_ERROR`), e.g. `ConnectionRefused`.
pub(crate) async fn finish_connect<T: AsSourceHandle>(io: &Async<T>) -> io::Result<()> {
    loop {
        io.writable().await?;
        let socket = SockRef::from(io.get_ref());
        if let Some(e) = socket.take_error()? {
            return Err(e);
        }
        match socket.peer_addr() {
            Ok(_) => return Ok(()),
            // Woken before the handshake finished: wait again.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => return Err(e),
        }
    }
}

/// Borrowed-buffer read: the `futures-io` `poll_read` of every stream.
pub(crate) fn poll_read<T: StreamSocket>(
    io: &Async<T>,
    stash: &StashCell,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have one layout, and
    // `recv_stream` only writes initialized bytes into it, so `buf` stays
    // initialized.
    let buf = unsafe { as_uninit(buf) };
    poll_stream_read(io, stash, cx, buf)
}

/// Vectored form of [`poll_read`] (stashed bytes go to the first non-empty
/// buffer).
pub(crate) fn poll_read_vectored<T: AsSourceHandle>(
    io: &Async<T>,
    stash: &StashCell,
    cx: &mut Context<'_>,
    bufs: &mut [io::IoSliceMut<'_>],
) -> Poll<io::Result<usize>>
where
    for<'a> &'a T: Read,
{
    if let Some(first) = bufs.iter_mut().find(|b| !b.is_empty()) {
        // SAFETY: as in `poll_read`: the stash writes initialized bytes.
        let first = unsafe { as_uninit(first) };
        if let Some(n) = ready!(poll_stashed(stash, Some(cx), first, true)) {
            return Poll::Ready(Ok(n));
        }
    }
    poll_io(io, Direction::Read, cx, |mut s| s.read_vectored(bufs))
}

/// Borrowed-buffer write: the `futures-io` `poll_write` of every stream.
pub(crate) fn poll_write<T: AsSourceHandle>(
    io: &Async<T>,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>>
where
    for<'a> &'a T: Write,
{
    poll_io(io, Direction::Write, cx, |mut s| s.write(buf))
}

/// Vectored form of [`poll_write`].
pub(crate) fn poll_write_vectored<T: AsSourceHandle>(
    io: &Async<T>,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>>
where
    for<'a> &'a T: Write,
{
    poll_io(io, Direction::Write, cx, |mut s| s.write_vectored(bufs))
}

/// Closing a stream for writing (the `futures-io` `poll_close`): shuts down
/// the write half, so the peer reads end-of-file.
///
/// `NotConnected` means the connection is already gone (the peer reset it,
/// or a write already failed with `EPIPE`/`ECONNRESET`): there is no write
/// half left to close, which is what the closer asked for, so it is `Ok`
/// (as in tokio). The explicit `shutdown(how)` methods still report it.
pub(crate) fn close_write<T: AsSourceHandle>(io: &Async<T>) -> io::Result<()> {
    match SockRef::from(io.get_ref()).shutdown(std::net::Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        res => res,
    }
}

/// `AsyncRead` + `AsyncWrite` for a stream type `$ty` (a struct with an
/// `io: Async<_>` field and a `stash: StashCell` one) and for `&$ty`. Flushing is a no-op (sockets have
/// no user-space buffer); closing is [`close_write`].
macro_rules! stream_io_traits {
    ($ty:ty) => {
        impl futures_lite::AsyncRead for &$ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::net::socket::poll_read(&self.io, &self.stash, cx, buf)
            }

            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::net::socket::poll_read_vectored(&self.io, &self.stash, cx, bufs)
            }
        }

        impl futures_lite::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::net::socket::poll_read(&self.io, &self.stash, cx, buf)
            }

            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::net::socket::poll_read_vectored(&self.io, &self.stash, cx, bufs)
            }
        }

        impl futures_lite::AsyncWrite for &$ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::net::socket::poll_write(&self.io, cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::net::socket::poll_write_vectored(&self.io, cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready($crate::net::socket::close_write(&self.io))
            }
        }

        impl futures_lite::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::net::socket::poll_write(&self.io, cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::net::socket::poll_write_vectored(&self.io, cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready($crate::net::socket::close_write(&self.io))
            }
        }
    };
}
pub(crate) use stream_io_traits;

/// `AsFd`/`AsRawFd` (Unix) or `AsSocket`/`AsRawSocket` (Windows) for a
/// socket type with an `io: Async<_>` field: borrowing the handle is safe;
/// the type still owns and closes it.
macro_rules! raw_handle_traits {
    ($ty:ty) => {
        #[cfg(unix)]
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.io.get_ref())
            }
        }

        #[cfg(unix)]
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(self.io.get_ref())
            }
        }

        #[cfg(windows)]
        impl std::os::windows::io::AsSocket for $ty {
            fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
                std::os::windows::io::AsSocket::as_socket(self.io.get_ref())
            }
        }

        #[cfg(windows)]
        impl std::os::windows::io::AsRawSocket for $ty {
            fn as_raw_socket(&self) -> std::os::windows::io::RawSocket {
                std::os::windows::io::AsRawSocket::as_raw_socket(self.io.get_ref())
            }
        }
    };
}
pub(crate) use raw_handle_traits;
