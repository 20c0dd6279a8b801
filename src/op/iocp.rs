//! Overlapped I/O: the completion backend on Windows.
//!
//! The kernel writes into an op's `OVERLAPPED` and buffer after the call
//! returns, and `CancelIoEx` is itself asynchronous: the one place where
//! freeing early means writes into freed memory (asyncio's bpo-23095). The
//! op table's protocol (`crate::op`) is followed to the letter:
//!
//! 1. **Submit.** The op's state — a boxed `OVERLAPPED` whose `hEvent` is a
//!    fresh manual-reset event, the buffer, and a reference to the file or
//!    pipe handle — moves into an op-table slot (`submit_owned`). The event
//!    is registered with the runtime's one `polling` port
//!    (`Poller::add_waitable`: a thread-pool wait that posts a packet) under the
//!    key `COMPLETION_KEY_BIT | slot key`; the reactor hands such keys to
//!    this backend's `Completions` object instead of looking up a source.
//!    `polling` may only queue the registration for its next `wait`, so the
//!    poller wakes the thread that waits (`sys::polling_poller`, which says
//!    why: else an op submitted as a driver goes to sleep is never
//!    reported). Then `ReadFile` / `WriteFile` / `ConnectNamedPipe` is
//!    called with pointers into the boxed state.
//! 2. **Immediate outcomes.** If the call fails with anything but
//!    `ERROR_IO_PENDING`, the kernel did not take the op and will not signal
//!    the event: the waitable is removed and the op is completed at once
//!    with the error (the buffer comes back). `ERROR_PIPE_CONNECTED` from
//!    `ConnectNamedPipe` is success, completed the same way. A call that
//!    *succeeds synchronously* still signals the event, so it goes through
//!    step 3 like a pending one: one path, and no second "completion" for
//!    an op that already finished.
//! 3. **Completion.** The reactor sees the event's packet and calls
//!    `Completions::complete` after releasing its driver lock. Under the
//!    table's lock (`OpTable::take_owned_if_done`) it asks
//!    `GetOverlappedResult(.., bWait = FALSE)`; if the op is still pending
//!    (`ERROR_IO_INCOMPLETE`: a spurious signal), the state stays in its
//!    slot and the waitable is re-armed (with the same wake-up as step 1)
//!    — a state taken out only to look
//!    would let a cancel meanwhile find nothing to cancel, and the op would
//!    stay in flight. Otherwise the state is taken out, the waitable
//!    removed, the event closed, and the result with the buffer handed to
//!    the slot (`complete`): the future takes it, or, if it was dropped,
//!    the buffer is dropped now — after the kernel is done with it.
//! 4. **Cancel.** Dropping the future marks the slot `Cancelling` and, under
//!    the table's lock (so step 3 cannot free the state meanwhile), calls
//!    the state's `OwnedState::cancel`: `CancelIoEx(handle, overlapped)`. The slot is freed only by step 3:
//!    the completion arrives with `ERROR_OPERATION_ABORTED` (or success, if
//!    the op won the race). A second cancel finds the slot `Cancelling` and
//!    does nothing; `CancelIoEx` on an op that already completed fails with
//!    `ERROR_NOT_FOUND`, which is ignored.
//! 5. **Stale completions.** A packet whose slot is missing or of another
//!    generation is counted (`ops_stale_completions`) and ignored: nothing
//!    is written through it. (The one packet that may come after its slot
//!    was freed by design, a cancelled wait's, is ignored uncounted:
//!    `wait.rs`, step 4.)
//! 6. **Shutdown.** The settle step keeps the reactor running until every
//!    cancelled op was acknowledged (bounded); an op still pending then is
//!    counted in `ops_leaked` and its state — `OVERLAPPED`, buffer, event,
//!    handle — is retained for the life of the process, never freed.
//!
//! The other kind of op on this port waits for a handle to be signalled
//! (a process exit): `wait.rs`, whose steps follow these.
//!
//! Why events and `add_waitable` rather than associating the handles with
//! the port: `polling` owns its port and does not hand it out, and one
//! port per runtime is the rule. A wait packet per op costs an event and a
//! registration, which the measurements will say whether to replace.

use std::cell::UnsafeCell;
use std::io;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, OwnedHandle, RawHandle};
use std::sync::Arc;

use polling::{Event, PollMode};

use super::future::{ended, Ended};
use super::table::{Cancel, Erased, OpKey, OpTable, OwnedState, Taken};
use super::{JobQueue, Op};
use crate::io::{BufResult, IoBuf, IoBufMut};
use crate::reactor::{Completions, Reactor};
use crate::sys::windows_io::{self, Started, OVERLAPPED};
use crate::sys::{Completion, Poller};

pub(crate) use crate::sys::windows_io::OverlappedCall as Kind;
pub(crate) use wait::wait_signalled;

mod wait;

/// Poller keys with this bit set are completion events (step 3).
const COMPLETION_KEY_BIT: usize = 1 << 62;

/// The OS side of one op, owned by its slot while the kernel may use it:
/// what the port waits on, and how to read the op's result.
pub(crate) trait PortState: OwnedState {
    /// The handle registered with the port (step 1): the op's event, or
    /// the handle a wait op waits for (`wait.rs`).
    fn waitable(&self) -> RawHandle;
    /// Step 3: the op's result once it is over, `None` while it is still
    /// in flight (a spurious signal). Never blocks.
    fn outcome(&self) -> Option<io::Result<usize>>;
}

struct State<B> {
    /// Written by the kernel while the op is in flight: only raw pointers
    /// to it exist, never references.
    ov: UnsafeCell<OVERLAPPED>,
    event: OwnedHandle,
    handle: SharedHandle,
    buf: B,
    /// Applied to the buffer with the kernel's result, once it is final (a
    /// successful read grows the buffer's initialized length).
    on_done: fn(&mut B, &io::Result<usize>),
}

// SAFETY: the OVERLAPPED holds only the event handle (a kernel object name,
// valid from any thread) and kernel scratch; the buffer is Send; the state
// moves between threads only as a whole, inside the op table's slot.
unsafe impl<B: Send> Send for State<B> {}

impl<B: Send + 'static> PortState for State<B> {
    fn waitable(&self) -> RawHandle {
        self.event.as_raw_handle()
    }

    fn outcome(&self) -> Option<io::Result<usize>> {
        // SAFETY: the handle is open (the state holds it) and the
        // OVERLAPPED is the one the op was submitted with.
        unsafe { windows_io::result(self.handle.as_raw_handle(), self.ov.get()) }
    }
}

impl<B: Send + 'static> OwnedState for State<B> {
    /// Step 4.
    fn cancel(&self, _key: OpKey) -> Cancel {
        // SAFETY: the handle is open (the state holds it); the OVERLAPPED
        // pointer identifies the op and stays valid until its completion,
        // which cannot be processed while the caller holds the table's lock.
        unsafe { windows_io::cancel(self.handle.as_raw_handle(), self.ov.get()) };
        Cancel::Requested
    }

    fn finish(mut self: Box<Self>, res: io::Result<usize>) -> Erased {
        (self.on_done)(&mut self.buf, &res);
        let State { buf, .. } = *self; // closes the event, drops the handle ref
        ended(Ended::Returned(BufResult(res, buf)))
    }
}

/// What submitting an op needs: the table its slot goes in and the pool
/// that runs blocking jobs; and the reactor, whose port the ops' events are registered with. One per runtime; I/O objects keep a
/// clone.
#[derive(Clone)]
pub(crate) struct OpContext {
    pub(crate) table: Arc<OpTable>,
    pub(crate) jobs: Arc<dyn JobQueue>,
    /// The reactor, whose port the ops' events are registered with.
    pub(crate) reactor: Arc<Reactor>,
}

impl OpContext {
    pub(crate) fn new(
        table: Arc<OpTable>,
        jobs: Arc<dyn JobQueue>,
        reactor: &Arc<Reactor>,
    ) -> Self {
        OpContext {
            table,
            jobs,
            reactor: reactor.clone(),
        }
    }

    /// Whether every file's positional ops go through this backend (the
    /// ring); on Windows only files opened for overlapped I/O do, which
    /// each file knows itself.
    pub(crate) fn completes_files(&self) -> bool {
        false
    }

    /// No ring here: stream sockets always use readiness.
    pub(crate) fn with_ring_sockets(self, _on: bool) -> Self {
        self
    }
}

/// What a slot owns on this backend.
pub(crate) type Owned = Box<dyn PortState>;

/// The file or pipe an op runs on, kept open until the op is acknowledged.
pub(crate) type SharedHandle = Arc<dyn AsRawHandle + Send + Sync>;

fn packet_key(key: OpKey) -> usize {
    COMPLETION_KEY_BIT | key.to_bits()
}

/// Submits one overlapped op (steps 1–2). `target` gives the buffer's
/// pointer and length for the kernel (spare capacity for reads, initialized
/// bytes for writes); the pointer stays valid while the state is in its
/// slot (the `IoBuf` contract: the bytes do not move with the value).
pub(crate) fn submit<B: Send + 'static>(
    ctx: &OpContext,
    handle: &SharedHandle,
    mut buf: B,
    offset: u64,
    kind: Kind,
    target: fn(&mut B) -> (*mut u8, usize),
    on_done: fn(&mut B, &io::Result<usize>),
) -> Op<BufResult<usize, B>> {
    let ops = &ctx.table;
    let event = match windows_io::create_event() {
        Ok(event) => event,
        Err(e) => {
            let key = ops.submit();
            ops.complete(
                key,
                ended(Ended::Returned(BufResult::<usize, B>(Err(e), buf))),
            );
            return Op::new(ops, key);
        }
    };
    let raw_event = event.as_raw_handle();
    let (ptr, len) = target(&mut buf);
    let state: Box<State<B>> = Box::new(State {
        ov: UnsafeCell::new(windows_io::overlapped(offset, raw_event)),
        event,
        handle: handle.clone(),
        buf,
        on_done,
    });
    let ov_ptr = state.ov.get();
    let file = handle.as_raw_handle();
    // Step 1: the slot owns the state from here on; the box does not move.
    let key = ops.submit_owned(state);
    let poller = ctx.reactor.poller();
    // SAFETY: the event stays open until `remove_waitable` (step 2 or 3),
    // or forever if the op is never acknowledged (retained).
    let registered = unsafe {
        poller.add_waitable(
            raw_event,
            Event::readable(packet_key(key)),
            PollMode::Oneshot,
        )
    };
    if let Err(e) = registered {
        finish_now(poller, ops, key, Err(e), false);
        return Op::new(ops, key);
    }
    // SAFETY: `file` is open (the state holds a reference to it); `ptr` is
    // valid for `len` bytes and `ov_ptr` for an OVERLAPPED, both inside the
    // slot's state, which is freed only after the kernel's acknowledgement
    // (steps 3–4).
    if let Started::Done(res) = unsafe { windows_io::start(kind, file, ptr, len, ov_ptr) } {
        finish_now(poller, ops, key, res, true);
    }
    Op::new(ops, key)
}

/// Step 2: the kernel never took the op; complete it here.
fn finish_now(poller: &Poller, ops: &OpTable, key: OpKey, res: io::Result<usize>, added: bool) {
    let Some(state) = ops.take_owned(key) else {
        return;
    };
    if added {
        let _ = poller.remove_waitable(waitable(state.waitable()));
    }
    ops.complete(key, state.finish(res));
}

/// The reactor's way into this backend (step 3).
struct Iocp {
    table: Arc<OpTable>,
}

/// The completion handler the reactor is built with.
pub(crate) fn completion_handler(table: &Arc<OpTable>) -> Option<Box<dyn Completions>> {
    Some(Box::new(Iocp {
        table: table.clone(),
    }))
}

impl Completions for Iocp {
    fn is_completion(&self, key: usize) -> bool {
        key & COMPLETION_KEY_BIT != 0
    }

    /// Step 3, for each completion packet, with no lock held.
    fn complete(&self, poller: &Poller, done: Completion) {
        let bits = done.key;
        let ops = &*self.table;
        let key = OpKey::from_bits(bits & !(COMPLETION_KEY_BIT | wait::WAIT_KEY_BIT));
        let taken = ops.take_owned_if_done(key, |state| {
            let res = state.outcome();
            if res.is_none() {
                // Signalled but not done: wait again. The state stays in
                // its slot, where a cancel finds it (step 4); re-armed
                // under the table's lock, as a cancel is, so the event is
                // open.
                let _ = poller.modify_waitable(
                    waitable(state.waitable()),
                    Event::readable(bits),
                    PollMode::Oneshot,
                );
            }
            res
        });
        match taken {
            Taken::Done(state, res) => {
                let _ = poller.remove_waitable(waitable(state.waitable()));
                ops.complete(key, state.finish(res));
            }
            Taken::InFlight => {}
            Taken::NoSlot => {
                if bits & wait::WAIT_KEY_BIT == 0 {
                    // Step 5: no slot (or no state) for this packet.
                    ops.count_stale(key, "completion packet for a missing or stale op slot");
                } // else the late packet of a cancelled wait (`wait.rs`, step 4)
            }
        }
    }
}

/// A borrowed waitable handle for `polling`'s waitable API.
fn waitable<'a>(handle: RawHandle) -> BorrowedHandle<'a> {
    // SAFETY: callers hold the op state that keeps the handle open, for as
    // long as the borrow is used (one `polling` call).
    unsafe { BorrowedHandle::borrow_raw(handle) }
}

/// An overlapped read at `pos` into the buffer's spare capacity (`pos`
/// is ignored by pipes).
pub(crate) fn read_at<B: IoBufMut>(
    ctx: &OpContext,
    handle: &SharedHandle,
    buf: B,
    pos: u64,
) -> Op<BufResult<usize, B>> {
    submit(
        ctx,
        handle,
        buf,
        pos,
        Kind::Read,
        |b| {
            let len = b.buf_len();
            let spare = b.buf_capacity() - len;
            // SAFETY: `len <= capacity`, so the offset is in bounds.
            (unsafe { b.as_buf_mut_ptr().add(len) }, spare)
        },
        |b, res| {
            // On error too (with 0): tells the buffer the kernel is done.
            let n = *res.as_ref().unwrap_or(&0);
            // SAFETY: the kernel wrote `n` bytes into the spare capacity.
            unsafe { b.advance_init(n) }
        },
    )
}

/// An overlapped write at `pos` of the buffer's initialized bytes.
pub(crate) fn write_at<B: IoBuf>(
    ctx: &OpContext,
    handle: &SharedHandle,
    buf: B,
    pos: u64,
) -> Op<BufResult<usize, B>> {
    // The kernel only reads through a write's pointer.
    submit(
        ctx,
        handle,
        buf,
        pos,
        Kind::Write,
        |b| (b.as_buf_ptr().cast_mut(), b.buf_len()),
        |_, _| {},
    )
}

/// A file's positional read (the completion backend for `crate::fs`), for
/// a file opened for overlapped I/O; the buffer comes back (`Err`), for
/// the blocking pool, for any other.
pub(crate) fn read_file_at<B: IoBufMut>(
    ctx: &OpContext,
    file: &Arc<std::fs::File>,
    overlapped: bool,
    buf: B,
    pos: u64,
) -> Result<Op<BufResult<usize, B>>, B> {
    if !overlapped {
        return Err(buf);
    }
    let handle: SharedHandle = file.clone();
    Ok(read_at(ctx, &handle, buf, pos))
}

/// A file's positional write, as [`read_file_at`].
pub(crate) fn write_file_at<B: IoBuf>(
    ctx: &OpContext,
    file: &Arc<std::fs::File>,
    overlapped: bool,
    buf: B,
    pos: u64,
) -> Result<Op<BufResult<usize, B>>, B> {
    if !overlapped {
        return Err(buf);
    }
    let handle: SharedHandle = file.clone();
    Ok(write_at(ctx, &handle, buf, pos))
}

/// `FlushFileBuffers` has no overlapped form: the pool runs it.
pub(crate) fn sync_file(
    _ctx: &OpContext,
    _file: &Arc<std::fs::File>,
    _data_only: bool,
) -> Option<Op<io::Result<()>>> {
    None
}

/// `CreateFileW` has no overlapped form: the pool opens files.
pub(crate) fn open_file(
    _ctx: &OpContext,
    _path: &std::path::Path,
    _access: &super::OpenAccess,
) -> Option<Op<io::Result<std::fs::File>>> {
    None
}

// No socket ops: sockets use readiness.
#[path = "no_socket_ops.rs"]
mod socket_ops;
pub(crate) use socket_ops::{accept, connect, recv, recv_from, send, send_to};
