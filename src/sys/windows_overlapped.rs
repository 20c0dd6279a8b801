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
//!    (`PollerIocpExt::add_waitable`, a wait completion packet) under the
//!    key `COMPLETION_KEY_BIT | slot key`. Then `ReadFile` / `WriteFile` /
//!    `ConnectNamedPipe` is called with pointers into the boxed state.
//! 2. **Immediate outcomes.** If the call fails with anything but
//!    `ERROR_IO_PENDING`, the kernel did not take the op and will not signal
//!    the event: the waitable is removed and the op is completed at once
//!    with the error (the buffer comes back). `ERROR_PIPE_CONNECTED` from
//!    `ConnectNamedPipe` is success, completed the same way. A call that
//!    *succeeds synchronously* still signals the event, so it goes through
//!    step 3 like a pending one: one path, and no second "completion" for
//!    an op that already finished.
//! 3. **Completion.** The reactor sees the event's packet and calls
//!    `on_completion` with no lock held. It takes the state out of the slot
//!    and asks `GetOverlappedResult(.., bWait = FALSE)`; if the op is still
//!    pending (`ERROR_IO_INCOMPLETE`: a spurious signal), the state goes back
//!    and the waitable is re-armed. Otherwise the waitable is removed, the
//!    event closed, and the result with the buffer is handed to the slot
//!    (`complete`): the future takes it, or, if it was dropped, the buffer
//!    is dropped now — after the kernel is done with it.
//! 4. **Cancel.** Dropping the future marks the slot `Cancelling` and, under
//!    the table's lock (so step 3 cannot free the state meanwhile), calls
//!    `CancelIoEx(handle, overlapped)`. The slot is freed only by step 3:
//!    the completion arrives with `ERROR_OPERATION_ABORTED` (or success, if
//!    the op won the race). A second cancel finds the slot `Cancelling` and
//!    does nothing; `CancelIoEx` on an op that already completed fails with
//!    `ERROR_NOT_FOUND`, which is ignored.
//! 5. **Stale completions.** A packet whose slot is missing or of another
//!    generation is counted (`ops_stale_completions`) and ignored: nothing
//!    is written through it.
//! 6. **Shutdown.** The settle step keeps the reactor running until every
//!    cancelled op was acknowledged (bounded); an op still pending then is
//!    counted in `ops_leaked` and its state — `OVERLAPPED`, buffer, event,
//!    handle — is retained for the life of the process, never freed.
//!
//! Why events and `add_waitable` rather than associating the handles with
//! the port: `polling` owns its port and does not hand it out, and one
//! port per runtime is the rule. A wait packet per op costs an event and a
//! registration, which the measurements will say whether to replace.

use std::cell::UnsafeCell;
use std::io;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};
use std::sync::Arc;
use std::task::Waker;

use polling::os::iocp::PollerIocpExt;
use polling::{Event, PollMode, Poller};
use windows_sys::Win32::Foundation::{
    GetLastError, ERROR_BROKEN_PIPE, ERROR_HANDLE_EOF, ERROR_IO_INCOMPLETE, ERROR_IO_PENDING,
    ERROR_MORE_DATA, ERROR_PIPE_CONNECTED, HANDLE,
};
use windows_sys::Win32::Storage::FileSystem::{ReadFile, WriteFile};
use windows_sys::Win32::System::Pipes::ConnectNamedPipe;
use windows_sys::Win32::System::Threading::CreateEventW;
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

use crate::io::BufResult;
use crate::op::{self, Op, OpKey, OpTable, Output};
use crate::runtime::Shared;

/// Poller keys with this bit set are completion events (step 3).
pub(crate) const COMPLETION_KEY_BIT: usize = 1 << 62;

/// Whether a poller key is a completion event (step 3).
pub(crate) fn is_completion_key(key: usize) -> bool {
    key & COMPLETION_KEY_BIT != 0
}

/// What an overlapped op asks the kernel to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `ReadFile` into the buffer's spare capacity.
    Read,
    /// `WriteFile` of the buffer's initialized bytes.
    Write,
    /// `ConnectNamedPipe` (no buffer).
    Connect,
}

/// The OS side of one op, owned by its slot while the kernel may use it.
trait OverlappedState: Send {
    fn handle(&self) -> HANDLE;
    fn overlapped(&self) -> *mut OVERLAPPED;
    fn event(&self) -> HANDLE;
    /// Step 3: builds the op's output from the kernel's result.
    fn finish(self: Box<Self>, res: io::Result<usize>) -> Output;
}

struct State<B> {
    /// Written by the kernel while the op is in flight: only raw pointers
    /// to it exist, never references.
    ov: UnsafeCell<OVERLAPPED>,
    event: OwnedHandle,
    handle: Handle,
    buf: B,
    /// Applied to the buffer with the kernel's result, once it is final (a
    /// successful read grows the buffer's initialized length).
    on_done: fn(&mut B, &io::Result<usize>),
}

// SAFETY: the OVERLAPPED holds only the event handle (a kernel object name,
// valid from any thread) and kernel scratch; the buffer is Send; the state
// moves between threads only as a whole, inside the op table's slot.
unsafe impl<B: Send> Send for State<B> {}

impl<B: Send + 'static> OverlappedState for State<B> {
    fn handle(&self) -> HANDLE {
        self.handle.as_raw_handle()
    }
    fn overlapped(&self) -> *mut OVERLAPPED {
        self.ov.get()
    }
    fn event(&self) -> HANDLE {
        self.event.as_raw_handle()
    }
    fn finish(mut self: Box<Self>, res: io::Result<usize>) -> Output {
        (self.on_done)(&mut self.buf, &res);
        let State { buf, .. } = *self; // closes the event, drops the handle ref
        op::returned(BufResult(res, buf))
    }
}

type Owned = Box<dyn OverlappedState>;

/// The file or pipe an op runs on, kept open until the op is acknowledged.
pub(crate) type Handle = Arc<dyn AsRawHandle + Send + Sync>;

fn packet_key(key: OpKey) -> usize {
    COMPLETION_KEY_BIT | key.to_bits()
}

/// Submits one overlapped op (steps 1–2). `target` gives the buffer's
/// pointer and length for the kernel (spare capacity for reads, initialized
/// bytes for writes); the pointer stays valid while the state is in its
/// slot (the `IoBuf` contract: the bytes do not move with the value).
pub(crate) fn submit<B: Send + 'static>(
    shared: &Arc<Shared>,
    handle: &Handle,
    mut buf: B,
    offset: u64,
    kind: Kind,
    target: fn(&mut B) -> (*mut u8, usize),
    on_done: fn(&mut B, &io::Result<usize>),
) -> Op<BufResult<usize, B>> {
    let ops = &shared.ops;
    // SAFETY: plain FFI: a manual-reset, initially unsignalled, unnamed event.
    let raw_event = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
    if raw_event.is_null() {
        let key = ops.submit();
        ops.complete(
            key,
            op::returned(BufResult::<usize, B>(Err(io::Error::last_os_error()), buf)),
        );
        return Op::from_key(shared, key);
    }
    // SAFETY: `CreateEventW` returned a new handle that nothing else owns.
    let event = unsafe { OwnedHandle::from_raw_handle(raw_event) };
    let (ptr, len) = target(&mut buf);
    // SAFETY: OVERLAPPED is plain data; all-zero is its documented start.
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.Anonymous.Anonymous.Offset = offset as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
    ov.hEvent = raw_event;
    let state: Box<State<B>> = Box::new(State {
        ov: UnsafeCell::new(ov),
        event,
        handle: handle.clone(),
        buf,
        on_done,
    });
    let ov_ptr = state.ov.get();
    let file = handle.as_raw_handle();
    // Step 1: the slot owns the state from here on; the box does not move.
    let key = ops.submit_owned(Box::new(state as Owned));
    let poller = shared.reactor.poller();
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
        return Op::from_key(shared, key);
    }
    let len32 = u32::try_from(len).unwrap_or(u32::MAX);
    // SAFETY: `file` is open (the state holds a reference to it); `ptr` is
    // valid for `len32` bytes and `ov_ptr` for an OVERLAPPED, both inside
    // the slot's state, which is freed only after the kernel's
    // acknowledgement (steps 3–4).
    let ok = unsafe {
        match kind {
            Kind::Read => ReadFile(file, ptr, len32, std::ptr::null_mut(), ov_ptr),
            Kind::Write => WriteFile(file, ptr, len32, std::ptr::null_mut(), ov_ptr),
            Kind::Connect => ConnectNamedPipe(file, ov_ptr),
        }
    };
    if ok == 0 {
        // SAFETY: plain FFI, right after the failed call.
        let code = unsafe { GetLastError() };
        if code == ERROR_PIPE_CONNECTED && kind == Kind::Connect {
            finish_now(poller, ops, key, Ok(0), true);
        } else if code != ERROR_IO_PENDING {
            let res = map_error(code, 0);
            finish_now(poller, ops, key, res, true);
        }
    }
    Op::from_key(shared, key)
}

/// Step 2: the kernel never took the op; complete it here.
fn finish_now(poller: &Poller, ops: &OpTable, key: OpKey, res: io::Result<usize>, added: bool) {
    let Some(owned) = ops.take_owned(key) else {
        return;
    };
    let state = *owned
        .downcast::<Owned>()
        .expect("a Windows slot owns an overlapped state");
    if added {
        let _ = poller.remove_waitable(waitable(state.event()));
    }
    ops.complete(key, state.finish(res));
}

/// Maps a failed op's error code; the end of a pipe or file is a read of
/// `n` (0) bytes, a partial message read is a read of `n` bytes.
fn map_error(code: u32, n: usize) -> io::Result<usize> {
    match code {
        ERROR_BROKEN_PIPE | ERROR_HANDLE_EOF | ERROR_MORE_DATA => Ok(n),
        _ => Err(io::Error::from_raw_os_error(code as i32)),
    }
}

/// Step 3, called by the reactor for each completion packet.
pub(crate) fn on_completion(
    poller: &Poller,
    ops: &OpTable,
    bits: usize,
    wakers: &mut Vec<Waker>,
    garbage: &mut Vec<Output>,
) {
    let key = OpKey::from_bits(bits & !COMPLETION_KEY_BIT);
    let Some(owned) = ops.take_owned(key) else {
        // Step 5: no slot (or no state) for this packet.
        ops.count_stale();
        return;
    };
    let state = match owned.downcast::<Owned>() {
        Ok(s) => *s,
        Err(other) => {
            ops.restore_owned(key, other);
            ops.count_stale();
            return;
        }
    };
    let mut n: u32 = 0;
    // SAFETY: the handle is open (the state holds it) and the OVERLAPPED is
    // the one the op was submitted with; bWait = FALSE never blocks.
    let ok = unsafe { GetOverlappedResult(state.handle(), state.overlapped(), &mut n, 0) };
    let code = if ok == 0 {
        // SAFETY: plain FFI, right after the failed call.
        unsafe { GetLastError() }
    } else {
        0
    };
    if ok == 0 && code == ERROR_IO_INCOMPLETE {
        // Signalled but not done: put it back and wait again.
        let event = state.event();
        ops.restore_owned(key, Box::new(state));
        let _ = poller.modify_waitable(waitable(event), Event::readable(bits), PollMode::Oneshot);
        return;
    }
    let _ = poller.remove_waitable(waitable(state.event()));
    let res = if ok != 0 {
        Ok(n as usize)
    } else {
        map_error(code, n as usize)
    };
    ops.complete_deferred(key, state.finish(res), wakers, garbage);
}

/// Step 4, called by the op table under its lock when a future is dropped.
pub(crate) fn cancel_owned(owned: &Output) {
    let Some(state) = (**owned).downcast_ref::<Owned>() else {
        return;
    };
    // SAFETY: the handle is open (the state holds it); the OVERLAPPED
    // pointer identifies the op and stays valid until its completion, which
    // cannot be processed while the caller holds the table's lock. An
    // already-finished op makes this fail with ERROR_NOT_FOUND: ignored.
    unsafe { CancelIoEx(state.handle(), state.overlapped()) };
}

/// A borrowed event handle for `polling`'s waitable API.
fn waitable<'a>(event: HANDLE) -> BorrowedHandle<'a> {
    // SAFETY: callers hold the op state that owns the event, so it is open
    // for as long as the borrow is used (one `polling` call).
    unsafe { BorrowedHandle::borrow_raw(event) }
}

/// The asyncio seed scenario (bpo-23095) at the protocol level, run under
/// Wine by `.ci/run`: overlapped pipe reads dropped at random points, some
/// cancelled twice, and a runtime shut down with reads pending. A probe
/// buffer records whether the kernel's final result for its op had been
/// seen (`on_done` runs only then) at the moment the buffer is dropped.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::windows::pipe::{NamedPipeClient, NamedPipeServer};
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

    fn read_probe(
        pipe: &crate::os::windows::pipe::Pipe,
        probe: Probe,
    ) -> Op<BufResult<usize, Probe>> {
        submit(
            &pipe.shared,
            &(pipe.handle.clone() as Handle),
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

    #[test]
    fn dropped_and_twice_cancelled_reads_free_each_buffer_once_after_its_ack() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let ledger = Arc::new(Ledger::default());
        let shared = rt.handle().shared.clone();
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
                            shared.ops.cancel(key); // cancelled twice
                        }
                    }
                }
                if i % 64 == 0 {
                    // Drain the bytes nobody read, so reads keep pending.
                    while shared.ops.len() > 0 {
                        crate::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            drop((server, client));
            let _ = completed;
        });
        wait_until("every op acknowledged", || shared.ops.len() == 0);
        assert_eq!(ledger.made.load(Ordering::SeqCst), total as usize);
        assert_eq!(ledger.dropped.load(Ordering::SeqCst), total as usize);
        assert_eq!(ledger.dropped_before_ack.load(Ordering::SeqCst), 0);
        assert_eq!(ledger.acked.load(Ordering::SeqCst), total as usize);
        assert_eq!(shared.ops.stale_completions(), 0);
        assert!(shared.ops.cancelled() > 0);
    }

    #[test]
    fn shutdown_with_reads_pending_settles_every_overlapped_op() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let ledger = Arc::new(Ledger::default());
        let shared = rt.handle().shared.clone();
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
        assert_eq!(shared.ops.stale_completions(), 0);
        drop((server, client));
    }
}
