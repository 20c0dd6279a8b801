//! io_uring: the completion backend on Linux (`sys::uring` is the ring).
//!
//! The kernel reads and writes an op's memory after `io_uring_enter`
//! returns, and `IORING_OP_ASYNC_CANCEL` is itself asynchronous: freeing a
//! buffer when its future is dropped would let the kernel write into freed
//! memory. The op table's protocol (`crate::op`) is followed as on IOCP:
//!
//! 1. **Submit.** The op's state — the buffer (or the path of an open),
//!    and every other piece of memory the kernel reads or writes (a
//!    datagram op's `msghdr`, its iovec and the socket address; an
//!    accept's address storage and length; a connect's address, and its
//!    socket), a reference to the file that keeps its descriptor open, the reactor
//!    (whose poller holds the ring), the entry as submitted, and
//!    the function that turns the kernel's result into the op's output —
//!    is boxed and moved into an op-table slot (`submit_owned`); the
//!    submission entry is built from pointers into that box (a buffer's
//!    bytes do not move with the value: the `IoBuf` contract) and carries
//!    the slot's key as its user data. Then it is pushed to the ring
//!    (`Ring::push`; submitted by the driver before its next wait, or by
//!    the pusher's own `io_uring_enter` when a driver is blocked). If the
//!    push fails, the op is completed at once with the error.
//! 2. **Complete.** The reactor reaps the completion and, with no lock
//!    held, calls this backend's `Completions::complete` with the user
//!    data and the result. A `-ECANCELED` for an op whose slot is still
//!    `Submitted` is a cancel nobody asked for (the kernel drops the
//!    requests of a thread that exits, and any thread may have submitted
//!    the op): the state keeps the entry it was submitted with, and the
//!    same entry goes in again, under the table's lock so that a cancel
//!    cannot slip in between. Otherwise the state is taken out of the
//!    slot, the result
//!    applied (a read grows the buffer's initialized length; a `RECVMSG`
//!    decodes the sender's address the kernel wrote into the state; an
//!    open or an accept owns its new descriptor), and the output handed
//!    to the slot: the future takes it, or, if the future was dropped, it
//!    is dropped now — after the kernel is done with it. An open whose
//!    future was dropped closes the descriptor it produced; a connection
//!    accepted for a dropped accept goes to its listener's stash
//!    (`op::AcceptStash`) for the next accept, never closed or leaked; the
//!    bytes a dropped stream recv got go to its stream's stash
//!    (`op::ReadStash`) for the next read, and the datagram a dropped
//!    `RECVMSG` got to its socket's (`op::DatagramStash`); a
//!    connect whose future was dropped closes its socket only now, so its
//!    descriptor number is never reused under the op.
//! 3. **Cancel.** Dropping the future marks the slot `Cancelling` and,
//!    under the table's lock, pushes an `ASYNC_CANCEL` for the op's user
//!    data (its own completion is ignored: `sys::uring::IGNORED_TAG`). The
//!    slot is freed only by step 2, when the *original* op's completion
//!    arrives: `-ECANCELED`, or its real result if it won the race (then
//!    the result is discarded and counted in `ops_completed_after_cancel`).
//!    A second cancel finds the slot `Cancelling` and does nothing.
//! 4. **Stale completions.** A completion whose slot is missing or of
//!    another generation is counted (`ops_stale_completions`) and never
//!    written through.
//! 5. **Shutdown.** The runtime's settle step keeps driving the ring until
//!    every cancelled op was acknowledged (bounded by the deadline). An op
//!    still in flight then is counted in `ops_leaked`; its state — which
//!    holds the reactor and so the ring — is retained for the life of the process, so neither
//!    its buffer nor the ring's memory is ever freed under the kernel.
//! 6. **Close.** Socket ops on a borrowed socket (recv, send, datagrams,
//!    accept) name its descriptor number in the entry, and an entry can
//!    wait in the queue until the driver's next wait. The socket can only
//!    be closed once the op's future is gone (the future borrows it), so
//!    the cancel of such an op (step 3) hands the queued entries to the
//!    kernel at once (`Ring::flush`), which takes its own reference to the
//!    file with each entry: an op (or its cancel) never lands on a new
//!    socket that took the number. Closing a socket costs nothing extra.
//!
//! # Which ops go through the ring
//!
//! Files: `read_at` (after the inline cached read, `sys::read_file_at_cached`,
//! which costs one `preadv2` and no op at all when the pages are cached:
//! the ring takes only reads that would wait for the disk), `write_at`,
//! `sync_all` / `sync_data` and `open`.
//!
//! Sockets use readiness by default, through the epoll instance the ring
//! polls, and, with `Builder::io_uring_sockets(true)`, these go through
//! the ring, one entry per call, with no system call tried first:
//!
//! - the owned-buffer calls of TCP and Unix streams (`read_owned`,
//!   `write_owned`, `write_all_owned`, and their split halves): `RECV` /
//!   `SEND`;
//! - the owned-buffer datagram calls with an address, UDP's and
//!   `UnixDatagram`'s `recv_from_owned` / `send_to_owned`: `RECVMSG` /
//!   `SENDMSG`, whose `msghdr`, iovec and address storage live in the
//!   slot's state;
//! - `TcpListener::accept` / `UnixListener::accept` (the async fns, not
//!   `poll_accept`): `ACCEPT`. A connection the kernel accepts for an
//!   accept whose future was dropped (it won the race with the cancel) is
//!   counted in `ops_completed_after_cancel` and kept by the listener,
//!   whose next accept (or `poll_accept`) returns it first; one that
//!   arrives after the cancel waits in the kernel's queue;
//! - `TcpStream::connect`, `TcpSocket::connect`, `UnixStream::connect`:
//!   `CONNECT`, the slot owning the socket and its address.
//!
//! The datagram, accept and connect opcodes are probed when the ring is
//! set up (`sys::uring` step 1); a kernel without one keeps those calls
//! on readiness. On a keep-alive HTTP
//! server the ring path makes far fewer system calls (its submissions are
//! batched, once per driver wait) but costs more CPU per request than
//! readiness on the same backend: a `RECV` submitted before the request
//! arrives is parked on the kernel's internal poll and completed by task
//! work, a longer path than a readiness event followed by `recv`. So
//! readiness is the default, by that measurement. Connected datagram
//! calls (`recv_owned` / `send_owned` of `UdpSocket` and `UnixDatagram`),
//! the borrowed-buffer calls, `poll_accept`, `peek`, the futures-io
//! traits, `Async<T>` and the `try_*` calls always use readiness.
//! `docs/benchmarks.md` ("io_uring") has the runs.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::Arc;

use socket2::{SockAddr, SockAddrStorage, Socket};

use super::future::{ended, Ended};
use super::table::{Cancel, Erased, OpKey, OpTable, OwnedState};
use super::{JobQueue, Op, OpenAccess};
use crate::io::{BufResult, IoBuf, IoBufMut};
use crate::reactor::{Completions, Reactor};
use crate::sys::uring::{args, ops, Entry, IGNORED_TAG};
use crate::sys::{Completion, Poller};

/// What a slot owns on this backend.
pub(crate) type Owned = Box<dyn OwnedState>;

/// The file an op runs on, kept open until the op is acknowledged.
type SharedFd = Arc<dyn AsRawFd + Send + Sync>;

/// What submitting an op needs: the table its slot goes in, the pool that
/// runs blocking jobs, and the reactor, whose poller carries the ring (or
/// none, when the runtime runs on plain epoll). One per runtime; I/O
/// objects keep a clone.
#[derive(Clone)]
pub(crate) struct OpContext {
    pub(crate) table: Arc<OpTable>,
    pub(crate) jobs: Arc<dyn JobQueue>,
    /// The reactor, whose poller holds the ring (if it runs on one) and
    /// whose driver submits the ring's entries.
    reactor: Arc<Reactor>,
    /// Whether the reactor's poller has a ring.
    ring: bool,
    /// Sockets' owned-buffer calls, `accept` and `connect` go through the
    /// ring too (`Builder::io_uring_sockets`); otherwise they use
    /// readiness.
    sockets: bool,
    /// The optional socket opcodes the ring's kernel has (bit `n`: opcode
    /// `n`, `sys::uring` step 1); an op whose opcode is missing uses
    /// readiness.
    socket_ops: u64,
}

impl OpContext {
    pub(crate) fn new(
        table: Arc<OpTable>,
        jobs: Arc<dyn JobQueue>,
        reactor: &Arc<Reactor>,
    ) -> Self {
        let ring = reactor.poller().ring();
        let socket_ops = [
            ops::RecvMsg::CODE,
            ops::SendMsg::CODE,
            ops::Accept::CODE,
            ops::Connect::CODE,
        ]
        .into_iter()
        .filter(|&c| ring.is_some_and(|r| r.supports(c)))
        .fold(0u64, |mask, c| mask | 1 << c);
        OpContext {
            table,
            jobs,
            reactor: reactor.clone(),
            ring: ring.is_some(),
            sockets: false,
            socket_ops,
        }
    }

    /// Whether sockets' calls of opcode `code` (one of the optional ones)
    /// go through the ring: asked for, and the kernel has the opcode.
    fn ring_socket_op(&self, code: u8) -> bool {
        self.ring && self.sockets && self.socket_ops & (1 << code) != 0
    }

    /// Sends sockets' owned-buffer calls, `accept` and `connect` through
    /// the ring (when there is one).
    pub(crate) fn with_ring_sockets(mut self, on: bool) -> Self {
        self.sockets = on;
        if on && self.ring {
            // Before any socket can reach this context: the runtime is
            // still being built.
            super::RING_SOCKETS.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self
    }

    /// Whether every file's positional ops go through this backend (the
    /// ring); on Windows only files opened for overlapped I/O do, which
    /// each file knows itself.
    pub(crate) fn completes_files(&self) -> bool {
        self.ring
    }
}

/// One op's state while the kernel may use it (step 1).
struct State<B, T> {
    /// The memory the kernel reads or writes (a buffer, a path).
    buf: B,
    /// The entry as submitted (without its user data, the slot's key),
    /// for `resubmit`.
    entry: Option<Entry>,
    /// Keeps the op's descriptor open (and its number unreused); `None`
    /// for a socket op, whose socket the caller holds (step 6).
    fd: Option<SharedFd>,
    /// The reactor, whose poller holds the ring: kept alive by every op
    /// in flight (step 5).
    reactor: Arc<Reactor>,
    /// Step 2: the op's output from its memory and the kernel's result.
    finish: fn(B, io::Result<usize>) -> T,
}

impl<B: Send + 'static, T: Send + 'static> OwnedState for State<B, T> {
    /// Step 3.
    fn cancel(&self, key: OpKey) -> Cancel {
        let entry = ops::AsyncCancel::new(key.to_bits() as u64)
            .build()
            .user_data(IGNORED_TAG);
        // SAFETY: a cancel entry holds no pointer. If the push fails (the
        // ring's queue cannot be submitted), the op still completes on its
        // own, which is the acknowledgement the slot waits for.
        let _ = unsafe { push(&self.reactor, &entry) };
        if self.fd.is_none() {
            // Step 6: the caller may close the socket once this returns.
            if let Some(ring) = self.reactor.poller().ring() {
                ring.flush();
            }
        }
        Cancel::Requested
    }

    /// Step 2's exception: the kernel cancelled the op itself (its
    /// submitting thread exited); the same entry goes in again.
    fn resubmit(&self, key: OpKey) -> bool {
        let Some(entry) = &self.entry else {
            return false;
        };
        let entry = entry.clone().user_data(key.to_bits() as u64);
        // SAFETY: the entry points into this state, which its slot still
        // owns, as when it was first pushed.
        unsafe { push(&self.reactor, &entry) }.is_ok()
    }

    fn finish(self: Box<Self>, res: io::Result<usize>) -> Erased {
        let State { buf, finish, .. } = *self;
        ended(Ended::Returned(finish(buf, res)))
    }
}

/// Pushes `entry` to `reactor`'s ring and, if its driver is blocked in
/// its wait, submits it (`sys::uring`, step 2). Once the entry is queued
/// the kernel gets it, so a failed submit (the driver's next wait retries
/// it) is not the op's error.
///
/// # Safety
///
/// As for `Ring::push`.
unsafe fn push(reactor: &Reactor, entry: &Entry) -> io::Result<()> {
    let ring = reactor
        .poller()
        .ring()
        .expect("an io_uring op on a runtime with a ring");
    // SAFETY: the caller's contract.
    if unsafe { ring.push(entry) }? {
        let _ = ring.submit();
    }
    Ok(())
}

/// Step 1: boxes the op's state, builds its entry from the boxed memory
/// (`entry`), and pushes it under the new slot's key.
fn submit<B, T>(
    ctx: &OpContext,
    fd: Option<SharedFd>,
    buf: B,
    entry: impl FnOnce(&mut B) -> Entry,
    finish: fn(B, io::Result<usize>) -> T,
) -> Op<T>
where
    B: Send + 'static,
    T: Send + 'static,
{
    let mut state = Box::new(State {
        buf,
        entry: None,
        fd,
        reactor: ctx.reactor.clone(),
        finish,
    });
    // Pointers into the box's memory, which the slot keeps in place.
    let entry = entry(&mut state.buf);
    state.entry = Some(entry.clone());
    let table = &ctx.table;
    let key = table.submit_owned(state);
    let entry = entry.user_data(key.to_bits() as u64);
    // SAFETY: every pointer in `entry` points into the state the slot now
    // owns, which is freed only after this op's completion is reaped (step
    // 2), or never (step 5).
    if let Err(e) = unsafe { push(&ctx.reactor, &entry) } {
        // The kernel never saw the op: complete it with the error.
        if let Some(state) = table.take_owned(key) {
            table.complete(key, state.finish(Err(e)));
        }
    }
    Op::new(table, key)
}

/// The kernel's result as `io::Result` (negative: an `errno`).
fn result(res: i32) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}

/// The reactor's way into this backend (step 2).
struct Uring {
    table: Arc<OpTable>,
}

/// The completion handler the reactor is built with (it receives nothing
/// when the runtime runs on plain epoll).
pub(crate) fn completion_handler(table: &Arc<OpTable>) -> Option<Box<dyn Completions>> {
    Some(Box::new(Uring {
        table: table.clone(),
    }))
}

impl Completions for Uring {
    fn is_completion(&self, _key: usize) -> bool {
        // Readiness events are never completions here: the ring reports
        // completions apart (`Events::completions`).
        false
    }

    /// Step 2, for each reaped completion, with no lock held.
    fn complete(&self, _poller: &Poller, done: Completion) {
        let table = &*self.table;
        let key = OpKey::from_bits(done.key);
        if done.result == -libc::ECANCELED && table.resubmit_if_live(key) {
            // Nobody asked for this cancel: the kernel dropped the op when
            // the thread that submitted it exited. It goes in again.
            return;
        }
        let Some(state) = table.take_owned(key) else {
            // Step 4.
            table.count_stale(key, "ring completion for a missing or stale op slot");
            return;
        };
        let res = result(done.result);
        let succeeded = res.is_ok();
        table.complete_io(key, state.finish(res), succeeded);
    }
}

/// The buffer's spare capacity, as a pointer and a length the kernel takes.
fn spare<B: IoBufMut>(b: &mut B) -> (*mut u8, u32) {
    let len = b.buf_len();
    let spare = (b.buf_capacity() - len).min(u32::MAX as usize) as u32;
    // SAFETY: `len <= capacity`, so the offset is in bounds.
    (unsafe { b.as_buf_mut_ptr().add(len) }, spare)
}

fn read_done<B: IoBufMut>(mut b: B, res: io::Result<usize>) -> BufResult<usize, B> {
    if let Ok(n) = res {
        assert!(
            n <= b.buf_capacity() - b.buf_len(),
            "io_uring read result {n} exceeds the spare capacity"
        );
        // SAFETY: the kernel wrote `n` bytes (at most the length it was
        // given) into the spare capacity.
        unsafe { b.advance_init(n) };
    }
    BufResult(res, b)
}

/// A file's positional read through the ring; the buffer comes back
/// (`Err`) when the runtime has no ring, for the blocking pool.
pub(crate) fn read_file_at<B: IoBufMut>(
    ctx: &OpContext,
    file: &Arc<File>,
    _overlapped: bool,
    buf: B,
    pos: u64,
) -> Result<Op<BufResult<usize, B>>, B> {
    if !ctx.ring {
        return Err(buf);
    }
    let fd = args::Fd(file.as_raw_fd());
    Ok(submit(
        ctx,
        Some(file.clone()),
        buf,
        |b| {
            let (ptr, len) = spare(b);
            ops::Read::new(fd, ptr, len).offset(pos).build()
        },
        read_done,
    ))
}

/// A file's positional write through the ring, as [`read_file_at`].
pub(crate) fn write_file_at<B: IoBuf>(
    ctx: &OpContext,
    file: &Arc<File>,
    _overlapped: bool,
    buf: B,
    pos: u64,
) -> Result<Op<BufResult<usize, B>>, B> {
    if !ctx.ring {
        return Err(buf);
    }
    let fd = args::Fd(file.as_raw_fd());
    Ok(submit(
        ctx,
        Some(file.clone()),
        buf,
        |b| {
            let len = b.buf_len().min(u32::MAX as usize) as u32;
            // The kernel only reads through a write's pointer.
            ops::Write::new(fd, b.as_buf_ptr(), len).offset(pos).build()
        },
        |b, res| BufResult(res, b),
    ))
}

/// `fsync` (or `fdatasync`, `data_only`) through the ring; `None` when the
/// runtime has no ring.
pub(crate) fn sync_file(
    ctx: &OpContext,
    file: &Arc<File>,
    data_only: bool,
) -> Option<Op<io::Result<()>>> {
    if !ctx.ring {
        return None;
    }
    let fd = args::Fd(file.as_raw_fd());
    let flags = if data_only {
        args::FsyncFlags::DATASYNC
    } else {
        args::FsyncFlags::empty()
    };
    Some(submit(
        ctx,
        Some(file.clone()),
        (),
        |_| ops::Fsync::new(fd).flags(flags).build(),
        |(), res| res.map(drop),
    ))
}

/// `open(2)` flags for `access`, as std computes them (`None` for the
/// combinations std rejects: the blocking pool's std call reports them).
fn open_flags(a: &OpenAccess) -> Option<i32> {
    let access = match (a.read, a.write, a.append) {
        (true, false, false) => libc::O_RDONLY,
        (false, true, false) => libc::O_WRONLY,
        (true, true, false) => libc::O_RDWR,
        (false, _, true) => libc::O_WRONLY | libc::O_APPEND,
        (true, _, true) => libc::O_RDWR | libc::O_APPEND,
        (false, false, false) => return None,
    };
    if !a.write && !a.append && (a.truncate || a.create || a.create_new) {
        return None;
    }
    if a.append && a.truncate && !a.create_new {
        return None;
    }
    let creation = match (a.create, a.truncate, a.create_new) {
        (_, _, true) => libc::O_CREAT | libc::O_EXCL,
        (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
        (true, false, false) => libc::O_CREAT,
        (false, true, false) => libc::O_TRUNC,
        (false, false, false) => 0,
    };
    Some(access | creation)
}

/// `openat(AT_FDCWD, path, ..)` through the ring, with std's flags for
/// `access` and mode `0o666`; `None` when the runtime has no ring (or the
/// path or flags are ones std rejects: its own call reports them). The
/// output owns the new descriptor, so an open whose future was dropped
/// closes what it opened.
pub(crate) fn open_file(
    ctx: &OpContext,
    path: &Path,
    access: &OpenAccess,
) -> Option<Op<io::Result<File>>> {
    if !ctx.ring {
        return None;
    }
    let flags = open_flags(access)?;
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mode = 0o666;
    Some(submit(
        ctx,
        None,
        path,
        |p| {
            ops::OpenAt::new(args::Fd(libc::AT_FDCWD), p.as_ptr())
                .flags(flags | libc::O_CLOEXEC)
                .mode(mode)
                .build()
        },
        |_, res| {
            // SAFETY: a successful open returns a new descriptor that
            // nothing else owns.
            res.map(|fd| File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
        },
    ))
}

/// One `recv` on a connected socket through the ring; the buffer comes
/// back (`Err`) when the runtime has no ring or does not send sockets'
/// calls to it. The socket stays open while
/// its owner lives: the future borrows it, and a request in the kernel
/// holds its own reference to the socket.
///
/// The output goes to the stream's `stash` if the future is dropped
/// (`op::ReadStash`), so the bytes of a read that won the race with its
/// cancel are not lost.
pub(crate) fn recv<B: IoBufMut>(
    ctx: &OpContext,
    fd: crate::sys::RawSource,
    buf: B,
    stash: &Arc<super::ReadStash>,
) -> Result<Op<super::Received<B>>, B> {
    if !(ctx.ring && ctx.sockets) {
        return Err(buf);
    }
    Ok(submit(
        ctx,
        None,
        (buf, stash.clone()),
        |(b, _)| {
            let (ptr, len) = spare(b);
            ops::Recv::new(args::Fd(fd), ptr, len).build()
        },
        |(b, stash), res| super::Received::new(read_done(b, res), stash),
    ))
}

/// One `send` of the buffer's initialized bytes through the ring (with
/// `MSG_NOSIGNAL`), as [`recv`].
pub(crate) fn send<B: IoBuf>(
    ctx: &OpContext,
    fd: crate::sys::RawSource,
    buf: B,
) -> Result<Op<BufResult<usize, B>>, B> {
    if !(ctx.ring && ctx.sockets) {
        return Err(buf);
    }
    Ok(submit(
        ctx,
        None,
        buf,
        |b| {
            let len = b.buf_len().min(u32::MAX as usize) as u32;
            ops::Send::new(args::Fd(fd), b.as_buf_ptr(), len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        },
        |b, res| BufResult(res, b),
    ))
}

/// A datagram op's memory (`RECVMSG` / `SENDMSG`): the buffer, and the
/// `msghdr` with the iovec and the address it points to. It lives in the
/// op's boxed state, so the pointers `point` stores stay valid while the
/// slot owns it (step 1).
struct Msg<B> {
    buf: B,
    iov: libc::iovec,
    /// The sender (written by `RECVMSG`) or the target (read by `SENDMSG`).
    addr: SockAddrStorage,
    msg: libc::msghdr,
}

// SAFETY: the raw pointers in `iov` and `msg` point into this value and
// into the buffer's bytes; only the kernel uses them, while the slot owns
// the value. Moving the value to another thread moves what they point at
// with it (and `B: Send`).
unsafe impl<B: Send> Send for Msg<B> {}

impl<B> Msg<B> {
    fn new(buf: B, addr: SockAddrStorage, addr_len: libc::socklen_t) -> Self {
        // SAFETY: all-zero `iovec` and `msghdr` are valid values (null
        // pointers, zero lengths); `msghdr` may have private padding
        // fields, so it cannot be written as a literal.
        let (iov, mut msg): (libc::iovec, libc::msghdr) =
            unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        msg.msg_namelen = addr_len;
        Msg {
            buf,
            iov,
            addr,
            msg,
        }
    }

    /// Points the `msghdr` at one iovec of `len` bytes at `ptr` (the
    /// buffer's) and at the address, where this value lies now (in the
    /// op's box); returns the `msghdr`.
    fn point(&mut self, ptr: *mut u8, len: usize) -> *mut libc::msghdr {
        self.iov = libc::iovec {
            iov_base: ptr.cast(),
            iov_len: len,
        };
        self.msg.msg_iov = &mut self.iov;
        self.msg.msg_iovlen = 1;
        self.msg.msg_name = ptr::from_mut(&mut self.addr).cast();
        &mut self.msg
    }
}

/// One `recvmsg` of a datagram into the buffer's spare capacity through
/// the ring, with the sender's address; the buffer comes back (`Err`)
/// when the ring does not take sockets' calls (or lacks `RECVMSG`). The
/// slot owns the buffer, the iovec, the `msghdr` and the address storage
/// the kernel writes the sender into. The socket stays open as for
/// [`recv`].
pub(crate) fn recv_from<B: IoBufMut>(
    ctx: &OpContext,
    fd: crate::sys::RawSource,
    buf: B,
    stash: &Arc<super::DatagramStash>,
) -> Result<super::RecvFromOp<B>, B> {
    if !ctx.ring_socket_op(ops::RecvMsg::CODE) {
        return Err(buf);
    }
    let addr = SockAddrStorage::zeroed();
    let addr_len = addr.size_of();
    Ok(submit(
        ctx,
        None,
        (Msg::new(buf, addr, addr_len), stash.clone()),
        |(m, _)| {
            let (ptr, len) = spare(&mut m.buf);
            ops::RecvMsg::new(args::Fd(fd), m.point(ptr, len as usize)).build()
        },
        |(m, stash), res| {
            let Msg { buf, addr, msg, .. } = m;
            let BufResult(res, buf) = read_done(buf, res);
            // SAFETY: the kernel wrote the sender's address into `addr`
            // and its length into `msg_namelen` (zeroed storage, if it
            // wrote none: an unspecified address).
            let from = unsafe { SockAddr::new(addr, msg.msg_namelen) };
            super::ReceivedFrom::new(BufResult(res.map(|n| (n, from)), buf), stash)
        },
    ))
}

/// One `sendmsg` of the buffer's initialized bytes to `target` through
/// the ring (with `MSG_NOSIGNAL`), as [`recv_from`]: the slot owns the
/// buffer, the iovec, the `msghdr` and a copy of the address.
pub(crate) fn send_to<B: IoBuf>(
    ctx: &OpContext,
    fd: crate::sys::RawSource,
    buf: B,
    target: &SockAddr,
) -> Result<Op<BufResult<usize, B>>, B> {
    if !ctx.ring_socket_op(ops::SendMsg::CODE) {
        return Err(buf);
    }
    let msg = Msg::new(buf, target.clone().as_storage(), target.len());
    Ok(submit(
        ctx,
        None,
        msg,
        |m| {
            let len = m.buf.buf_len();
            // The kernel only reads through a send's pointers.
            let ptr = m.buf.as_buf_ptr().cast_mut();
            ops::SendMsg::new(args::Fd(fd), m.point(ptr, len))
                .flags(libc::MSG_NOSIGNAL as u32)
                .build()
        },
        |m, res| BufResult(res, m.buf),
    ))
}

/// The memory `ACCEPT` writes the peer's address into, and the stash of
/// the listener it accepts for.
struct Peer {
    addr: SockAddrStorage,
    len: libc::socklen_t,
    stash: Arc<super::AcceptStash>,
}

/// One `accept4` (`SOCK_CLOEXEC | SOCK_NONBLOCK`) through the ring: the
/// new connection's socket and the peer's address; `None` when the ring
/// does not take sockets' calls (or lacks `ACCEPT`). The slot owns the
/// address storage; the output owns the new socket, so a connection
/// accepted after its future was dropped goes to the listener's `stash`
/// when the slot drops the output (counted in
/// `ops_completed_after_cancel`), for the next accept. The listener stays
/// open as for [`recv`].
pub(crate) fn accept(
    ctx: &OpContext,
    fd: crate::sys::RawSource,
    stash: &Arc<super::AcceptStash>,
) -> Option<super::AcceptOp> {
    if !ctx.ring_socket_op(ops::Accept::CODE) {
        return None;
    }
    let addr = SockAddrStorage::zeroed();
    let len = addr.size_of();
    Some(submit(
        ctx,
        None,
        Peer {
            addr,
            len,
            stash: stash.clone(),
        },
        |p| {
            ops::Accept::new(args::Fd(fd), ptr::from_mut(&mut p.addr).cast(), &mut p.len)
                .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
                .build()
        },
        |p, res| {
            res.map(|fd| {
                // SAFETY: a successful accept returns a new descriptor
                // that nothing else owns.
                let socket = Socket::from(unsafe { OwnedFd::from_raw_fd(fd as i32) });
                // SAFETY: the kernel wrote the peer's address into `addr`
                // and its length into `len`.
                let peer = unsafe { SockAddr::new(p.addr, p.len) };
                super::Accepted::new((socket, peer), p.stash)
            })
        },
    ))
}

/// A connect's memory: the socket itself (closed by the slot if the
/// future was dropped, after the kernel is done) and the address the
/// kernel reads.
struct Connecting {
    socket: Socket,
    addr: SockAddr,
}

/// `connect(socket, addr)` through the ring; the socket comes back
/// (`Err`) when the ring does not take sockets' calls (or lacks
/// `CONNECT`), and with the result when it did. The slot owns the socket
/// and the address until the kernel's completion: a dropped connect
/// closes its socket only then, so its descriptor number is never reused
/// under the op. (The kernel waits for the handshake itself, except on
/// some older kernels, which end the op with `EINPROGRESS` or `EALREADY`:
/// the caller then waits by readiness.)
pub(crate) fn connect(
    ctx: &OpContext,
    socket: Socket,
    addr: SockAddr,
) -> Result<Op<BufResult<(), Socket>>, Socket> {
    if !ctx.ring_socket_op(ops::Connect::CODE) {
        return Err(socket);
    }
    Ok(submit(
        ctx,
        None,
        Connecting { socket, addr },
        |c| {
            let fd = args::Fd(c.socket.as_raw_fd());
            ops::Connect::new(fd, c.addr.as_ptr().cast(), c.addr.len()).build()
        },
        |c, res| BufResult(res.map(drop), c.socket),
    ))
}
