//! The op table: in-flight I/O operations own their buffers and OS state
//! until the backend acknowledges completion or cancellation.
//!
//! # The protocol
//!
//! 1. **Submit.** The operation's state (buffer, file handle, offset; on
//!    completion backends the `OVERLAPPED` too) moves into the backend; a
//!    slot in the runtime's [`OpTable`] records that an operation is in
//!    flight, and the [`Op`] future keeps only the slot's [`OpKey`] (index
//!    and generation). The slot starts `Submitted`.
//! 2. **Complete.** The backend hands the operation's output (the result
//!    *and* the buffer) to [`OpTable::complete`]: a `Submitted` slot becomes
//!    `Completed` and its waker is woken (outside the table's lock). The
//!    future's next poll takes the output and frees the slot.
//! 3. **Drop before completion.** Dropping the future calls
//!    [`OpTable::cancel`]: a `Submitted` slot becomes `Cancelling` and the
//!    backend is asked to cancel. The buffer stays where it is (in the job,
//!    in the slot, in the kernel); nothing is freed.
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
//!      state ([`OpTable::submit_owned`]); the ack is the completion packet
//!      or CQE for that op after the cancel request.
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

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use slab::Slab;

use crate::runtime::Shared;

/// What an op's output is stored as between completion and the future's
/// next poll.
pub(crate) type Output = Box<dyn Any + Send>;

/// Identifies one slot for the life of one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpKey {
    index: u32,
    generation: u32,
}

impl OpKey {
    /// The key packed in 62 bits (30 of generation, 32 of index), for a
    /// backend that must carry it through the OS (a poller key).
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn to_bits(self) -> usize {
        (((self.generation & 0x3FFF_FFFF) as u64) << 32 | self.index as u64) as usize
    }

    /// The key `to_bits` packed. The generation is compared in its low 30
    /// bits only (`find` does the same for unpacked keys).
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn from_bits(bits: usize) -> OpKey {
        let bits = bits as u64;
        OpKey {
            index: bits as u32,
            generation: ((bits >> 32) & 0x3FFF_FFFF) as u32,
        }
    }
}

enum State {
    /// Step 1: in flight; the waker of the future's last poll.
    Submitted(Option<Waker>),
    /// Step 2: the output waits for the future.
    Completed(Output),
    /// Step 3: the future is gone; waiting for the backend's ack.
    Cancelling,
}

struct Slot {
    generation: u32,
    state: State,
    /// State the slot itself owns while the OS uses it (completion
    /// backends); `None` when the job owns it (blocking pool).
    owned: Option<Output>,
}

struct Inner {
    slots: Slab<Slot>,
    next_generation: u32,
}

/// A runtime's table of in-flight operations.
pub(crate) struct OpTable {
    inner: Mutex<Inner>,
    /// Signalled when the table becomes empty (step 6).
    /// Woken when the table becomes empty (step 6).
    emptied: Mutex<Vec<Waker>>,
    submitted: AtomicU64,
    cancelled: AtomicU64,
    stale: AtomicU64,
}

impl OpTable {
    pub(crate) fn new() -> OpTable {
        OpTable {
            inner: Mutex::new(Inner {
                slots: Slab::new(),
                next_generation: 0,
            }),
            emptied: Mutex::new(Vec::new()),
            submitted: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            stale: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No user code runs under this lock (wakers and drops happen after
        // it is released), so a poisoned lock holds consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step 1, for a backend that keeps the op state elsewhere (a job).
    pub(crate) fn submit(&self) -> OpKey {
        self.insert(None)
    }

    /// Step 1, for a backend whose slot owns the op state while the OS uses
    /// it (completion backends). `owned` is dropped only after the ack, or
    /// leaked if the ack never comes.
    // For the completion backends (IOCP overlapped: the Windows issue).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn submit_owned(&self, owned: Output) -> OpKey {
        self.insert(Some(owned))
    }

    fn insert(&self, owned: Option<Output>) -> OpKey {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.lock();
        let generation = inner.next_generation;
        inner.next_generation = generation.wrapping_add(1);
        let index = inner.slots.insert(Slot {
            generation,
            state: State::Submitted(None),
            owned,
        });
        OpKey {
            index: u32::try_from(index).expect("more than 2^32 ops in flight"),
            generation,
        }
    }

    fn find(inner: &mut Inner, key: OpKey) -> Option<&mut Slot> {
        inner
            .slots
            .get_mut(key.index as usize)
            .filter(|s| s.generation & 0x3FFF_FFFF == key.generation & 0x3FFF_FFFF)
    }

    /// Steps 2 and 4: the backend's completion (or ack) for `key`.
    pub(crate) fn complete(&self, key: OpKey, output: Output) {
        let mut wakers = Vec::new();
        let mut garbage = Vec::new();
        self.complete_deferred(key, output, &mut wakers, &mut garbage);
        drop(garbage);
        for w in wakers {
            crate::wake::wake(w);
        }
    }

    /// `complete` for the reactor's driver: the waker to call and what to
    /// drop go to `wakers` and `garbage`, for after its lock is released.
    pub(crate) fn complete_deferred(
        &self,
        key: OpKey,
        output: Output,
        wakers: &mut Vec<Waker>,
        garbage: &mut Vec<Output>,
    ) {
        let mut inner = self.lock();
        let Some(slot) = Self::find(&mut inner, key) else {
            // Step 5.
            drop(inner);
            self.stale.fetch_add(1, Ordering::Relaxed);
            #[cfg(debug_assertions)]
            eprintln!("ebbtide: completion for a missing or stale op slot {key:?} (ignored)");
            garbage.push(output);
            return;
        };
        match std::mem::replace(&mut slot.state, State::Cancelling) {
            State::Submitted(waker) => {
                slot.state = State::Completed(output);
                drop(inner);
                wakers.extend(waker);
            }
            State::Cancelling => {
                let slot = inner.slots.remove(key.index as usize);
                let empty = inner.slots.is_empty();
                drop(inner);
                if empty {
                    self.wake_emptied();
                }
                // The buffer comes back here.
                garbage.extend(slot.owned);
                garbage.push(output);
            }
            State::Completed(first) => {
                // A second completion for one op: keep the first, count this.
                slot.state = State::Completed(first);
                drop(inner);
                self.stale.fetch_add(1, Ordering::Relaxed);
                #[cfg(debug_assertions)]
                eprintln!("ebbtide: op {key:?} completed twice (second ignored)");
                garbage.push(output);
            }
        }
    }

    /// Step 2's other half: the future's poll.
    fn poll(&self, key: OpKey, cx: &mut Context<'_>) -> Poll<Output> {
        let mut inner = self.lock();
        let slot = Self::find(&mut inner, key).expect("an op's slot outlives its future");
        match &mut slot.state {
            State::Completed(_) => {
                let slot = inner.slots.remove(key.index as usize);
                let empty = inner.slots.is_empty();
                drop(inner);
                if empty {
                    self.wake_emptied();
                }
                drop(slot.owned);
                match slot.state {
                    State::Completed(out) => Poll::Ready(out),
                    _ => unreachable!(),
                }
            }
            State::Submitted(w) => {
                if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    let old = w.replace(cx.waker().clone());
                    drop(inner);
                    drop(old);
                }
                Poll::Pending
            }
            State::Cancelling => unreachable!("a cancelled op is never polled"),
        }
    }

    /// Completion backends: takes the op state a slot owns, to finish the op
    /// (`None` if the slot is gone or another completion holds it). The
    /// slot stays; `complete` or `restore_owned` follows.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn take_owned(&self, key: OpKey) -> Option<Output> {
        let mut inner = self.lock();
        Self::find(&mut inner, key).and_then(|s| s.owned.take())
    }

    /// Puts back what `take_owned` took (the OS was not done after all).
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn restore_owned(&self, key: OpKey, owned: Output) {
        let mut inner = self.lock();
        match Self::find(&mut inner, key) {
            Some(slot) => slot.owned = Some(owned),
            None => {
                drop(inner);
                self.stale.fetch_add(1, Ordering::Relaxed);
                // The slot vanished under an op the OS still holds: never
                // free its state.
                GRAVEYARD
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(owned);
            }
        }
    }

    /// Step 3: the future is dropped before it took its output. A slot
    /// that owns OS state asks the backend to cancel (under the lock, so
    /// the state cannot be completed and freed meanwhile); a second cancel
    /// finds the slot `Cancelling` and does nothing.
    pub(crate) fn cancel(&self, key: OpKey) {
        let mut inner = self.lock();
        let Some(slot) = Self::find(&mut inner, key) else {
            return;
        };
        match std::mem::replace(&mut slot.state, State::Cancelling) {
            State::Submitted(waker) => {
                if let Some(owned) = &slot.owned {
                    crate::sys::cancel_owned(owned);
                }
                drop(inner);
                self.cancelled.fetch_add(1, Ordering::Relaxed);
                drop(waker);
            }
            State::Completed(out) => {
                // Completed but never taken: the ack already came.
                let slot = inner.slots.remove(key.index as usize);
                let empty = inner.slots.is_empty();
                drop(inner);
                if empty {
                    self.wake_emptied();
                }
                drop((slot.owned, out));
            }
            State::Cancelling => {}
        }
    }

    /// Step 5 for a backend that could not even find the slot.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn count_stale(&self) {
        self.stale.fetch_add(1, Ordering::Relaxed);
    }

    /// Ops in flight or waiting for their future (not yet freed).
    pub(crate) fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// Ops whose future was dropped before completion.
    pub(crate) fn cancelled(&self) -> u64 {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Ops submitted since the runtime started.
    pub(crate) fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }

    /// Step 5's count.
    pub(crate) fn stale_completions(&self) -> u64 {
        self.stale.load(Ordering::Relaxed)
    }

    fn wake_emptied(&self) {
        let waiters = std::mem::take(&mut *self.emptied.lock().unwrap_or_else(|e| e.into_inner()));
        for w in waiters {
            crate::wake::wake(w);
        }
    }

    /// Step 6: `Ready` once no op is in flight; otherwise registers `cx`'s
    /// waker, woken when the table empties.
    pub(crate) fn poll_settled(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.len() == 0 {
            return Poll::Ready(());
        }
        self.emptied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cx.waker().clone());
        // Re-check: the last op may have gone before we registered.
        if self.len() == 0 {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// Op state whose acknowledgement never came, kept for the life of the
/// process: the OS may still write to it, so it is never freed (step 6).
/// Kept reachable rather than `mem::forget`-ten, so that leak checkers
/// (Miri, ASan) see a deliberate retention, and so it can be counted.
static GRAVEYARD: Mutex<Vec<Output>> = Mutex::new(Vec::new());

/// How many ops' state this process has retained forever (step 6).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn retained_forever() -> usize {
    GRAVEYARD.lock().unwrap_or_else(|e| e.into_inner()).len()
}

impl Drop for OpTable {
    fn drop(&mut self) {
        // Step 6: state a slot still owns may be in the kernel's hands; it
        // is retained, never freed. (Slots whose state a job owns hold none:
        // the job keeps the table alive until it returns.)
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        let owned: Vec<Output> = inner.slots.drain().filter_map(|s| s.owned).collect();
        if !owned.is_empty() {
            GRAVEYARD
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(owned);
        }
    }
}

impl fmt::Debug for OpTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpTable")
            .field("in_flight", &self.len())
            .field("cancelled", &self.cancelled())
            .field("stale", &self.stale_completions())
            .finish()
    }
}

/// The future of one submitted operation: only the slot key (step 1).
///
/// Resolves to the op's output `T`; dropping it early is step 3.
pub(crate) struct Op<T: Send + 'static> {
    shared: Arc<Shared>,
    key: Option<OpKey>,
    _output: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> Op<T> {
    /// Runs `job(state)` on the runtime's blocking pool as an op: the job
    /// owns `state` (the buffer included) and returns the output; the slot
    /// is freed when it returns, whether or not the future is still there
    /// (step 4). A job dropped unrun (the pool shut down) completes the op
    /// with `unrun(state)`, which gives the buffer back with an error; a job
    /// that panics completes it with the panic, resumed in the awaiting task
    /// (the buffer was dropped by the unwinding).
    pub(crate) fn blocking<S, F>(shared: &Arc<Shared>, state: S, job: F, unrun: fn(S) -> T) -> Op<T>
    where
        S: Send + 'static,
        F: FnOnce(S) -> T + Send + 'static,
    {
        let key = shared.ops.submit();
        let job = BlockingOp {
            shared: shared.clone(),
            key,
            state: Some(state),
            job: Some(job),
            unrun,
        };
        shared.blocking.push_job(shared, move || job.run());
        Op {
            shared: shared.clone(),
            key: Some(key),
            _output: PhantomData,
        }
    }
}

/// How a blocking op ended, as stored in its slot.
enum Ended<T> {
    Returned(T),
    Panicked(Box<dyn Any + Send>),
}

/// A blocking op's job: completes its slot exactly once, with the job's
/// output, its panic, or (dropped unrun) `unrun(state)`.
struct BlockingOp<S, F, T: Send + 'static> {
    shared: Arc<Shared>,
    key: OpKey,
    state: Option<S>,
    job: Option<F>,
    unrun: fn(S) -> T,
}

impl<S, F, T> BlockingOp<S, F, T>
where
    S: Send + 'static,
    F: FnOnce(S) -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(mut self) {
        let (state, job) = (self.state.take(), self.job.take());
        let ended = match catch_unwind(AssertUnwindSafe(|| (job.unwrap())(state.unwrap()))) {
            Ok(out) => Ended::Returned(out),
            Err(payload) => Ended::Panicked(payload),
        };
        // Everything the job owned is back in `ended` or dropped: the ack.
        self.shared.ops.complete(self.key, Box::new(ended));
    }
}

impl<S, F, T: Send + 'static> Drop for BlockingOp<S, F, T> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let out: Ended<T> = Ended::Returned((self.unrun)(state));
            self.shared.ops.complete(self.key, Box::new(out));
        }
    }
}

impl<T: Send + 'static> Op<T> {
    /// The op's slot key, until it completes.
    #[cfg_attr(not(all(windows, test)), allow(dead_code))]
    pub(crate) fn key(&self) -> Option<OpKey> {
        self.key
    }

    /// The future of an op a completion backend submitted under `key`.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn from_key(shared: &Arc<Shared>, key: OpKey) -> Op<T> {
        Op {
            shared: shared.clone(),
            key: Some(key),
            _output: PhantomData,
        }
    }
}

/// The output a completion backend stores for an op whose future is an
/// `Op<T>`.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn returned<T: Send + 'static>(value: T) -> Output {
    Box::new(Ended::Returned(value))
}

impl<T: Send + 'static> Future for Op<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let key = self.key.expect("Op polled after completion");
        let out = std::task::ready!(self.shared.ops.poll(key, cx));
        self.key = None;
        match *out
            .downcast::<Ended<T>>()
            .expect("op output type matches its future")
        {
            Ended::Returned(out) => Poll::Ready(out),
            Ended::Panicked(payload) => resume_unwind(payload),
        }
    }
}

impl<T: Send + 'static> Drop for Op<T> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.shared.ops.cancel(key);
        }
    }
}

/// The error of an op whose job never ran because the runtime shut down.
pub(crate) fn job_not_run() -> io::Error {
    io::Error::other("ebbtide: the runtime shut down before this blocking I/O operation ran")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Runtime;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// A buffer that records whether it was dropped and whether its job was
    /// still running at that moment.
    struct Tracked {
        job_running: Arc<AtomicBool>,
        dropped: Arc<AtomicUsize>,
        dropped_while_running: Arc<AtomicUsize>,
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            if self.job_running.load(Ordering::SeqCst) {
                self.dropped_while_running.fetch_add(1, Ordering::SeqCst);
            }
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    struct Probe {
        job_running: Arc<AtomicBool>,
        dropped: Arc<AtomicUsize>,
        dropped_while_running: Arc<AtomicUsize>,
    }

    impl Probe {
        fn new() -> Probe {
            Probe {
                job_running: Arc::default(),
                dropped: Arc::default(),
                dropped_while_running: Arc::default(),
            }
        }
        fn buf(&self) -> Tracked {
            Tracked {
                job_running: self.job_running.clone(),
                dropped: self.dropped.clone(),
                dropped_while_running: self.dropped_while_running.clone(),
            }
        }
    }

    fn shared_of(rt: &Runtime) -> Arc<Shared> {
        rt.handle().shared.clone()
    }

    /// Submits a job that holds `buf` until `release` receives, then
    /// returns it.
    fn gated_op(
        shared: &Arc<Shared>,
        probe: &Probe,
        release: mpsc::Receiver<()>,
    ) -> Op<(io::Result<usize>, Tracked)> {
        let running = probe.job_running.clone();
        Op::blocking(
            shared,
            probe.buf(),
            move |buf| {
                running.store(true, Ordering::SeqCst);
                let _ = release.recv();
                running.store(false, Ordering::SeqCst);
                (Ok(7), buf)
            },
            |buf| (Err(job_not_run()), buf),
        )
    }

    fn wait_until(mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(30), "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn completed_op_returns_its_buffer_and_frees_the_slot() {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let shared = shared_of(&rt);
        let probe = Probe::new();
        let (tx, rx) = mpsc::channel();
        tx.send(()).unwrap();
        let op = gated_op(&shared, &probe, rx);
        let (res, buf) = rt.block_on(op);
        assert_eq!(res.unwrap(), 7);
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 0);
        drop(buf);
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 1);
        assert_eq!(shared.ops.len(), 0);
        assert_eq!(shared.ops.cancelled(), 0);
    }

    #[test]
    fn dropped_op_keeps_its_buffer_until_the_job_returns() {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let shared = shared_of(&rt);
        let probe = Probe::new();
        let (tx, rx) = mpsc::channel();
        let mut op = Box::pin(gated_op(&shared, &probe, rx));
        rt.block_on(futures_lite::future::poll_once(op.as_mut()));
        wait_until(|| probe.job_running.load(Ordering::SeqCst));
        drop(op); // step 3: the job still runs with the buffer
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 0);
        assert_eq!(shared.ops.len(), 1);
        assert_eq!(shared.ops.cancelled(), 1);
        tx.send(()).unwrap(); // step 4: the job returns, the slot is freed
        wait_until(|| probe.dropped.load(Ordering::SeqCst) == 1);
        assert_eq!(probe.dropped_while_running.load(Ordering::SeqCst), 0);
        wait_until(|| shared.ops.len() == 0);
        assert_eq!(shared.ops.stale_completions(), 0);
    }

    #[test]
    fn shutdown_counts_an_unacknowledged_op_as_leaked_and_never_frees_it_early() {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let shared = shared_of(&rt);
        let probe = Probe::new();
        let (tx, rx) = mpsc::channel();
        let op = gated_op(&shared, &probe, rx);
        let task = rt.spawn(async move {
            let _ = op.await;
        });
        wait_until(|| probe.job_running.load(Ordering::SeqCst));
        let report = rt.shutdown(Duration::from_millis(10));
        assert_eq!(report.ops_cancelled, 1, "{report}");
        assert_eq!(report.ops_leaked, 1, "{report}");
        assert_eq!(report.blocking_leaked, 1, "{report}");
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 0);
        tx.send(()).unwrap();
        wait_until(|| probe.dropped.load(Ordering::SeqCst) == 1);
        assert_eq!(probe.dropped_while_running.load(Ordering::SeqCst), 0);
        wait_until(|| shared.ops.len() == 0);
        drop(task);
    }

    #[test]
    fn op_submitted_after_shutdown_returns_its_buffer_with_an_error() {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let shared = shared_of(&rt);
        rt.shutdown(Duration::ZERO);
        let probe = Probe::new();
        let (_tx, rx) = mpsc::channel();
        let op = gated_op(&shared, &probe, rx);
        let (res, buf) = futures_lite::future::block_on(op);
        let err = res.unwrap_err();
        assert!(err.to_string().contains("shut down"), "{err}");
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 0);
        drop(buf);
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 1);
        assert_eq!(shared.ops.len(), 0);
    }

    #[test]
    fn stale_and_double_completions_are_counted_and_not_written_through() {
        let table = OpTable::new();
        let key = table.submit();
        table.complete(key, Box::new(1u8));
        table.complete(key, Box::new(2u8)); // twice: counted, first kept
        assert_eq!(table.stale_completions(), 1);
        table.cancel(key); // completed, never taken: freed now
        assert_eq!(table.len(), 0);
        table.complete(key, Box::new(3u8)); // missing slot
        assert_eq!(table.stale_completions(), 2);
        let reused = table.submit(); // same index, new generation
        assert_eq!(reused.index, key.index);
        table.complete(key, Box::new(4u8)); // old generation
        assert_eq!(table.stale_completions(), 3);
        assert_eq!(table.len(), 1, "the reused slot is untouched");
        table.cancel(reused);
        table.complete(reused, Box::new(5u8));
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_panicking_job_resumes_its_panic_in_the_awaiting_task() {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let shared = shared_of(&rt);
        let op: Op<u32> = Op::blocking(&shared, (), |()| panic!("job boom"), |()| 0);
        let res = rt.block_on(rt.spawn(op));
        let err = res.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(shared.ops.len(), 0);
    }

    #[test]
    fn slots_owning_os_state_are_leaked_not_freed_when_the_table_drops() {
        let probe = Probe::new();
        let table = OpTable::new();
        let key = table.submit_owned(Box::new(probe.buf()));
        table.cancel(key);
        let before = retained_forever();
        drop(table);
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 0);
        assert_eq!(retained_forever(), before + 1);
    }
}
