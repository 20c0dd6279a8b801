//! The op table: in-flight I/O operations own their buffers and OS state
//! until the backend acknowledges completion or cancellation.
//!
//! # The protocol
//!
//! 1. **Submit.** The operation's state (buffer, file handle, offset; on
//!    completion backends the `OVERLAPPED` too) moves into the backend; a
//!    slot in the runtime's [`OpTable`] records that an operation is in
//!    flight, and the [`Op`] future keeps only the slot's [`OpKey`](table::OpKey) (index
//!    and generation). The slot starts `Submitted`.
//! 2. **Complete.** The backend hands the operation's output (the result
//!    *and* the buffer) to [`OpTable::complete`]: a `Submitted` slot becomes
//!    `Completed` and its waker is woken (outside the table's lock). The
//!    future's next poll takes the output and frees the slot.
//! 3. **Drop before completion.** Dropping the future calls
//!    [`OpTable::cancel`]: a `Submitted` slot becomes `Cancelling` and the
//!    backend is asked to cancel. The buffer stays where it is (in the job,
//!    in the slot, in the kernel); nothing is freed, unless the backend says
//!    its cancel was the acknowledgement itself (step 4's last case).
//! 4. **Acknowledge.** The slot is freed only when the backend says the
//!    operation is over: its completion arrives at a `Cancelling` slot, which
//!    frees the slot and drops the output, buffer included, there and then.
//!    - Blocking pool (files, DNS): the job owns the buffer; the ack is the
//!      job returning (or the job being dropped unrun at shutdown). A
//!      blocking syscall cannot be interrupted, so "cancel" only marks the
//!      slot.
//!    - Readiness backends (epoll, kqueue, AFD): the syscall is tried, and on
//!      `WouldBlock` the future waits for readiness and tries again. The
//!      kernel never holds the buffer between attempts, so submission and
//!      acknowledgement happen within one `poll`: those ops keep their buffer
//!      in the future itself and never need a slot (`crate::net`). This is
//!      the same rule, not an exception: the buffer is freed exactly when
//!      the OS is done with it, which there is immediately.
//!    - Completion backends (IOCP overlapped, io_uring): the slot owns the op
//!      state (`OpTable::submit_owned`, a box of the backend's
//!      [`OwnedState`](table::OwnedState)); the ack is the completion packet or CQE for that op
//!      after the cancel request.
//!    - Waits for a handle to be signalled (IOCP: a process exit): the
//!      kernel holds no memory of the op, only the handle the port waits
//!      on, so the cancel withdraws that wait and is its own ack
//!      ([`Cancel::Acknowledged`](table::Cancel)): the slot is freed there
//!      and then, which keeps a dropped wait for a child that never exits
//!      out of the shutdown's settle step.
//! 5. **Stale completions.** A completion whose slot is missing, or whose
//!    generation differs (the index was reused), is a bug in a backend: it
//!    is counted ([`OpTable::stale_completions`], a runtime metric), reported
//!    in debug builds, and its output is dropped; it is never stored in a
//!    slot it does not belong to.
//! 6. **Shutdown** (the runtime's step 4, "settling"): after tasks were
//!    cancelled, the runtime waits until the table is empty or the settle
//!    bound passes ([`OpTable::poll_settled`]; on a current-thread runtime
//!    the waiting thread drives the reactor meanwhile). Ops still unacknowledged then
//!    are counted as `ops_leaked`; their slots, and any state a slot owns,
//!    are never freed while the OS may still write to them: a slot that owns
//!    OS state when the table is dropped is leaked on purpose.
//!
//! No lock is held while a waker is called or an output is dropped.
//!
//! # Where things are
//!
//! - `table.rs`: slots, keys and generations, the three slot states, the
//!   graveyard for state never acknowledged (steps 1–6).
//! - `future.rs`: [`Op<T>`], the caller's side (steps 1–3).
//! - `blocking.rs`: the blocking-pool backend (files, DNS), behind the
//!   [`JobQueue`] trait the runtime's pool implements.
//! - One file per completion backend, chosen by the table below:
//!   `iocp.rs` (Windows overlapped I/O, and `iocp/wait.rs`: waits for a
//!   handle, such as a process exit, on the same port); `uring.rs` (Linux
//!   io_uring: files; a runtime on plain epoll has no ring, and its ops
//!   go to the blocking pool as with `none.rs`); `none.rs` where there is
//!   none.
//!   The reactor hands a completion backend its events through the
//!   [`Completions`](crate::reactor::Completions) object the backend gives
//!   it at construction (`completion_handler`).

mod blocking;
mod future;
mod table;

// The completion backend: one per platform, each with the same items
// (`Owned`, `OpContext`: what submitting an op needs there,
// `completion_handler`, `read_file_at`, `write_file_at`).
#[cfg(windows)]
mod iocp;
#[cfg(windows)]
use iocp as backend;
#[cfg(all(target_os = "linux", not(miri)))]
mod uring;
#[cfg(all(target_os = "linux", not(miri)))]
use uring as backend;
#[cfg(not(any(windows, all(target_os = "linux", not(miri)))))]
mod none;
#[cfg(not(any(windows, all(target_os = "linux", not(miri)))))]
use none as backend;

#[cfg(windows)]
pub(crate) use iocp::{read_at, submit, wait_signalled, write_at, Kind, SharedHandle};

pub(crate) use backend::{
    accept, completion_handler, connect, open_file, read_file_at, recv, recv_from, send, send_to,
    sync_file, write_file_at, OpContext,
};
pub(crate) use blocking::{job_not_run, Job, JobQueue};
pub(crate) use future::Op;
pub(crate) use table::OpTable;

/// Whether any runtime of this process was built to send sockets' calls
/// through its ring (`OpContext::with_ring_sockets`); never cleared. While
/// none was, a socket's owned-buffer call goes straight to readiness,
/// without looking up the current runtime (a thread-local) to ask it.
static RING_SOCKETS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a socket call might go through a ring (`RING_SOCKETS`): `false`
/// means it never does, `true` that the current runtime decides.
#[inline]
pub(crate) fn ring_sockets_in_process() -> bool {
    RING_SOCKETS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A datagram receive's op (`recv_from`): the count and the sender, with
/// the buffer.
pub(crate) type RecvFromOp<B> = Op<ReceivedFrom<B>>;

/// The datagrams a socket's receives through a completion backend got
/// after their futures were dropped (each won the race with its cancel),
/// each with its sender, kept for the socket's next receive of any kind:
/// a dropped receive loses no datagram. (No waiting as for streams'
/// `ReadStash`: datagrams carry no order to keep.)
#[derive(Debug, Default)]
pub(crate) struct DatagramStash {
    queue: std::sync::Mutex<std::collections::VecDeque<(Vec<u8>, socket2::SockAddr)>>,
    /// Whether a datagram was ever kept here: receives on a socket that
    /// never had one take no lock.
    used: std::sync::atomic::AtomicBool,
}

impl DatagramStash {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::VecDeque<(Vec<u8>, socket2::SockAddr)>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The oldest kept datagram copied into `out` (truncated to it, as
    /// `recvfrom` truncates): the count copied and the sender. Taken out
    /// unless `peek`.
    pub(crate) fn take_into(
        &self,
        out: &mut [std::mem::MaybeUninit<u8>],
        peek: bool,
    ) -> Option<(usize, socket2::SockAddr)> {
        if !self.used.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let mut queue = self.lock();
        let (bytes, from) = queue.front()?;
        let n = out.len().min(bytes.len());
        for (dst, src) in out.iter_mut().zip(bytes) {
            dst.write(*src);
        }
        let from = from.clone();
        if !peek {
            queue.pop_front();
        }
        Some((n, from))
    }

    /// Whether a datagram is kept (a readiness wait resolves at once).
    pub(crate) fn has_datagram(&self) -> bool {
        self.used.load(std::sync::atomic::Ordering::Acquire) && !self.lock().is_empty()
    }

    fn push(&self, bytes: Vec<u8>, from: socket2::SockAddr) {
        self.lock().push_back((bytes, from));
        self.used.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// A datagram receive's output through a completion backend: taken by the
/// receive's future, or, if that was dropped, its datagram goes to the
/// socket's [`DatagramStash`] when the op's slot drops it.
pub(crate) struct ReceivedFrom<B: crate::io::IoBufMut> {
    out: Option<crate::io::BufResult<(usize, socket2::SockAddr), B>>,
    stash: std::sync::Arc<DatagramStash>,
}

impl<B: crate::io::IoBufMut> ReceivedFrom<B> {
    /// The output, for `stash`'s socket (made by the io_uring backend
    /// only).
    #[cfg_attr(not(all(target_os = "linux", not(miri))), allow(dead_code))]
    pub(crate) fn new(
        out: crate::io::BufResult<(usize, socket2::SockAddr), B>,
        stash: std::sync::Arc<DatagramStash>,
    ) -> ReceivedFrom<B> {
        ReceivedFrom {
            out: Some(out),
            stash,
        }
    }

    /// The output, for the receive's caller.
    pub(crate) fn take(mut self) -> crate::io::BufResult<(usize, socket2::SockAddr), B> {
        self.out.take().expect("present until taken or dropped")
    }
}

impl<B: crate::io::IoBufMut> Drop for ReceivedFrom<B> {
    fn drop(&mut self) {
        if let Some(crate::io::BufResult(Ok((n, from)), buf)) = self.out.take() {
            let len = buf.buf_len();
            // SAFETY: the receive appended `n` initialized bytes, so the
            // last `n` of the buffer's `len` initialized ones are the
            // datagram.
            let got = unsafe { std::slice::from_raw_parts(buf.as_buf_ptr().add(len - n), n) };
            self.stash.push(got.to_vec(), from);
        }
    }
}

/// An accept's op: the new connection (its socket and the peer's address).
pub(crate) type AcceptOp = Op<std::io::Result<Accepted>>;

/// One accepted connection: the socket and the peer's address.
pub(crate) type Connection = (socket2::Socket, socket2::SockAddr);

/// The connections the kernel accepted for accept ops whose futures were
/// dropped (they won the race with the cancel), kept in their listener's
/// stash for its next accept: a dropped accept loses no connection.
#[derive(Debug, Default)]
pub(crate) struct AcceptStash {
    conns: std::sync::Mutex<std::collections::VecDeque<Connection>>,
    /// Whether `conns` may hold any, so that every accept of a listener
    /// whose stash was never used (all of them on readiness) takes no lock.
    used: std::sync::atomic::AtomicBool,
}

impl AcceptStash {
    /// The oldest kept connection, if any.
    pub(crate) fn pop(&self) -> Option<Connection> {
        if !self.used.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        self.lock().pop_front()
    }

    fn push(&self, conn: Connection) {
        self.lock().push_back(conn);
        self.used.store(true, std::sync::atomic::Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Connection>> {
        // Only pushes and pops run under this lock.
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A connection an accept op returns: taken by the accept's future, or,
/// if that was dropped, kept in the listener's stash when the op's slot
/// drops it.
pub(crate) struct Accepted {
    conn: Option<Connection>,
    stash: std::sync::Arc<AcceptStash>,
}

impl Accepted {
    /// The connection, for `stash`'s listener (made by the io_uring
    /// backend only).
    #[cfg_attr(not(all(target_os = "linux", not(miri))), allow(dead_code))]
    pub(crate) fn new(conn: Connection, stash: std::sync::Arc<AcceptStash>) -> Accepted {
        Accepted {
            conn: Some(conn),
            stash,
        }
    }

    /// The connection, for the accept's caller.
    pub(crate) fn take(mut self) -> Connection {
        self.conn.take().expect("present until taken or dropped")
    }
}

impl Drop for Accepted {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.stash.push(conn);
        }
    }
}

/// What a stream's reads through a completion backend received after
/// their futures were dropped (each won the race with its cancel), kept in
/// order for the stream's next read, so that a dropped read loses no
/// bytes of the stream.
///
/// 1. A read future dropped before it took its output counts itself in
///    `dropped` ([`ReadStash::read_dropped`]), *before* its op is
///    cancelled (the cancel may drop the output at once).
/// 2. That op's output, dropped untaken when the kernel acknowledges
///    ([`Received`]'s `Drop`), appends the bytes it holds, uncounts
///    itself and wakes the readers waiting (step 3) — no lock held.
/// 3. Every read of the stream first looks here ([`ReadStash::poll_take`]):
///    while `dropped` is not zero it waits, since a dropped read may still
///    bring bytes that come before anything a new read would get; then it
///    takes the stashed bytes, if any, instead of reading.
#[derive(Debug, Default)]
pub(crate) struct ReadStash {
    inner: std::sync::Mutex<StashInner>,
    /// Whether a read was ever dropped here: reads of a stream that never
    /// had one take no lock.
    used: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct StashInner {
    bytes: std::collections::VecDeque<u8>,
    /// Step 1's count: dropped reads whose outputs are still to come.
    dropped: usize,
    waiters: Vec<std::task::Waker>,
}

impl ReadStash {
    fn lock(&self) -> std::sync::MutexGuard<'_, StashInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step 1.
    pub(crate) fn read_dropped(&self) {
        self.lock().dropped += 1;
        self.used.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Step 2.
    fn settle(&self, bytes: &[u8]) {
        let waiters = {
            let mut inner = self.lock();
            inner.bytes.extend(bytes);
            inner.dropped -= 1;
            if inner.dropped == 0 {
                std::mem::take(&mut inner.waiters)
            } else {
                Vec::new()
            }
        };
        for w in waiters {
            crate::wake::wake(w);
        }
    }

    /// Step 3 for a readiness wait (`readable()`): `Ready(true)` when
    /// bytes are stashed, `Ready(false)` when none are, `Pending` while a
    /// dropped read is still in flight.
    pub(crate) fn poll_has_bytes(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<bool> {
        if !self.used.load(std::sync::atomic::Ordering::Acquire) {
            return std::task::Poll::Ready(false);
        }
        match self.settled(Some(cx)) {
            Some(inner) => std::task::Poll::Ready(!inner.bytes.is_empty()),
            None => std::task::Poll::Pending,
        }
    }

    /// The stash once no dropped read is in flight; `None` (with `cx`'s
    /// waker registered for step 2's wake) while one is.
    fn settled(
        &self,
        cx: Option<&mut std::task::Context<'_>>,
    ) -> Option<std::sync::MutexGuard<'_, StashInner>> {
        let mut inner = self.lock();
        if inner.dropped == 0 {
            return Some(inner);
        }
        if let Some(cx) = cx {
            if !inner.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                inner.waiters.push(cx.waker().clone());
            }
        }
        None
    }

    /// Step 3: `Ready(Some(n))` when `n` (> 0) stashed bytes were copied
    /// into `out` (and, if `consume`, taken out), `Ready(None)` when none
    /// are stashed, `Pending` while a dropped read is still in flight (with
    /// no `cx`: `Ready(None)` never comes then, `WouldBlock` does).
    pub(crate) fn poll_take(
        &self,
        cx: Option<&mut std::task::Context<'_>>,
        out: &mut [std::mem::MaybeUninit<u8>],
        consume: bool,
    ) -> std::task::Poll<Option<usize>> {
        use std::task::Poll;
        if !self.used.load(std::sync::atomic::Ordering::Acquire) {
            return Poll::Ready(None);
        }
        let Some(mut inner) = self.settled(cx) else {
            return Poll::Pending;
        };
        let n = out.len().min(inner.bytes.len());
        if n == 0 {
            return Poll::Ready(None);
        }
        for (dst, src) in out.iter_mut().zip(inner.bytes.iter()) {
            dst.write(*src);
        }
        if consume {
            inner.bytes.drain(..n);
        }
        Poll::Ready(Some(n))
    }
}

/// A stream read's output through a completion backend: taken by the
/// read's future, or, if that was dropped, its bytes go to the stream's
/// [`ReadStash`] when the op's slot drops it (step 2).
pub(crate) struct Received<B: crate::io::IoBufMut> {
    out: Option<crate::io::BufResult<usize, B>>,
    stash: std::sync::Arc<ReadStash>,
}

impl<B: crate::io::IoBufMut> Received<B> {
    /// The output, for `stash`'s stream (made by the io_uring backend
    /// only).
    #[cfg_attr(not(all(target_os = "linux", not(miri))), allow(dead_code))]
    pub(crate) fn new(
        out: crate::io::BufResult<usize, B>,
        stash: std::sync::Arc<ReadStash>,
    ) -> Received<B> {
        Received {
            out: Some(out),
            stash,
        }
    }

    /// The output, for the read's caller.
    pub(crate) fn take(mut self) -> crate::io::BufResult<usize, B> {
        self.out.take().expect("present until taken or dropped")
    }
}

impl<B: crate::io::IoBufMut> Drop for Received<B> {
    fn drop(&mut self) {
        if let Some(crate::io::BufResult(res, buf)) = self.out.take() {
            let n = *res.as_ref().unwrap_or(&0);
            let len = buf.buf_len();
            // SAFETY: the read appended `n` initialized bytes, so the last
            // `n` of the buffer's `len` initialized ones are what it got.
            let got = unsafe { std::slice::from_raw_parts(buf.as_buf_ptr().add(len - n), n) };
            self.stash.settle(got);
        }
    }
}

/// How a file is to be opened: `std::fs::OpenOptions`'s access and
/// creation flags, which std does not let one read back (a completion
/// backend that opens files builds its own flags from them).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpenAccess {
    pub(crate) read: bool,
    pub(crate) write: bool,
    pub(crate) append: bool,
    pub(crate) truncate: bool,
    pub(crate) create: bool,
    pub(crate) create_new: bool,
}

impl OpContext {
    /// Runs `job(state)` on the blocking pool as an op; see [`Op::blocking`].
    pub(crate) fn blocking<S, T, F>(&self, state: S, job: F, unrun: fn(S) -> T) -> Op<T>
    where
        S: Send + 'static,
        T: Send + 'static,
        F: FnOnce(S) -> T + Send + 'static,
    {
        Op::blocking(&self.table, &*self.jobs, state, job, unrun)
    }
}
