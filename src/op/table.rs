//! The slots of the op table: keys, generations, the three states of a slot,
//! and the graveyard for state the OS never gave back (steps 1–6 of the
//! protocol in `op/mod.rs`).

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::backend::Owned;

/// An op's output between completion and the future's next poll. One table
/// holds ops of many output types; only `Op<T>`'s constructors make keys,
/// so the type behind a key is the `T` of the future that holds it
/// (`future.rs` takes it back out).
pub(crate) type Erased = Box<dyn Any + Send>;

/// The bits of a generation that a key carries through the OS (a completion
/// backend packs index and generation into one poller key, `OpKey::to_bits`).
/// Generations are compared in these bits only.
const GENERATION_MASK: u32 = 0x3FFF_FFFF;

/// The state a completion backend's slot owns while the OS uses it (the
/// backend's `Owned` is a box of a trait with this one as supertrait).
pub(crate) trait OwnedState: Send {
    /// Step 3: asks the OS to cancel the op. Called under the table's lock,
    /// so the backend cannot finish and free the state meanwhile. Says
    /// whether an acknowledgement is still to come (step 4).
    /// `key` is the op's own (what the OS knows it by, on io_uring).
    fn cancel(&self, key: OpKey) -> Cancel;
    /// The OS dropped the op on its own (io_uring cancels the requests of
    /// a thread that exits): submits it again, and says whether it did.
    #[cfg(all(target_os = "linux", not(miri)))]
    fn resubmit(&self, _key: OpKey) -> bool {
        false
    }
    /// Step 2: the OS is done with the state; builds the op's output (the
    /// result with the buffer) from the OS's result.
    #[cfg(any(windows, target_os = "linux", test))]
    fn finish(self: Box<Self>, res: std::io::Result<usize>) -> Erased;
}

/// What [`OwnedState::cancel`] left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// The OS may still use the state: its completion is the
    /// acknowledgement, and the slot waits for it (step 4).
    Requested,
    /// The OS holds nothing of the op any more (it wrote no memory of it,
    /// and the cancel withdrew the wait itself): the cancel is its own
    /// acknowledgement, and the slot is freed at once.
    Acknowledged,
}

/// What [`OpTable::take_owned_if_done`] found.
#[cfg(any(windows, test))]
pub(crate) enum Taken<R> {
    /// No slot of this op, or none that owns state: a stale signal.
    NoSlot,
    /// The op is still in flight; its state stays in the slot.
    InFlight,
    /// The OS is done: the state, taken out, and the op's result.
    Done(Owned, R),
}

/// Identifies one slot for the life of one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpKey {
    index: u32,
    generation: u32,
}

impl OpKey {
    /// The key packed in 62 bits (30 of generation, 32 of index), for a
    /// backend that must carry it through the OS (a poller key).
    #[cfg(any(windows, target_os = "linux", test))] // completion backends that pack keys
    pub(crate) fn to_bits(self) -> usize {
        (u64::from(self.generation & GENERATION_MASK) << 32 | u64::from(self.index)) as usize
    }

    /// The key `to_bits` packed.
    #[cfg(any(windows, target_os = "linux", test))]
    pub(crate) fn from_bits(bits: usize) -> OpKey {
        let bits = bits as u64;
        OpKey {
            index: bits as u32,
            generation: (bits >> 32) as u32 & GENERATION_MASK,
        }
    }
}

enum State {
    /// Step 1: in flight; the waker of the future's last poll.
    Submitted(Option<Waker>),
    /// Step 2: the output waits for the future.
    Completed(Erased),
    /// Step 3: the future is gone; waiting for the backend's ack.
    Cancelling,
}

struct Slot {
    generation: u32,
    state: State,
    /// State the slot itself owns while the OS uses it (completion
    /// backends); `None` when a job owns it (blocking pool).
    owned: Option<Owned>,
}

struct Inner {
    slots: Slab<Slot>,
    next_generation: u32,
}

/// A runtime's table of in-flight operations.
pub(crate) struct OpTable {
    inner: Mutex<Inner>,
    /// Woken when the table becomes empty (step 6).
    emptied: Mutex<Vec<Waker>>,
    submitted: AtomicU64,
    cancelled: AtomicU64,
    stale: AtomicU64,
    /// Ops that succeeded after their cancel was requested (step 4).
    completed_after_cancel: AtomicU64,
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
            completed_after_cancel: AtomicU64::new(0),
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
    /// retained forever if the ack never comes.
    #[cfg(any(windows, target_os = "linux", test))] // completion backends
    pub(crate) fn submit_owned(&self, owned: Owned) -> OpKey {
        self.insert(Some(owned))
    }

    fn insert(&self, owned: Option<Owned>) -> OpKey {
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
            .filter(|s| s.generation & GENERATION_MASK == key.generation & GENERATION_MASK)
    }

    /// Frees `key`'s slot and releases the lock; wakes the step-6 waiters
    /// if the table is now empty. The caller drops what the slot held.
    fn free(&self, mut inner: MutexGuard<'_, Inner>, key: OpKey) -> Slot {
        let slot = inner.slots.remove(key.index as usize);
        let empty = inner.slots.is_empty();
        drop(inner);
        if empty {
            let waiters =
                std::mem::take(&mut *self.emptied.lock().unwrap_or_else(|e| e.into_inner()));
            for w in waiters {
                crate::wake::wake(w);
            }
        }
        slot
    }

    /// Steps 2 and 4: the backend's completion (or ack) for `key`. Wakes
    /// the future and drops a cancelled op's output (its buffer) after the
    /// lock is released; call it with no lock of the caller's held.
    pub(crate) fn complete(&self, key: OpKey, output: Erased) {
        self.complete_io(key, output, false);
    }

    /// [`complete`](OpTable::complete), for a backend that knows whether
    /// the OS did the op (`succeeded`): one that did after its cancel was
    /// requested is counted ([`OpTable::completed_after_cancel`]), its
    /// output discarded.
    pub(crate) fn complete_io(&self, key: OpKey, output: Erased, succeeded: bool) {
        let mut inner = self.lock();
        let Some(slot) = Self::find(&mut inner, key) else {
            // Step 5.
            drop(inner);
            self.count_stale(key, "completion for a missing or stale op slot");
            return drop(output);
        };
        match std::mem::replace(&mut slot.state, State::Cancelling) {
            State::Submitted(waker) => {
                slot.state = State::Completed(output);
                drop(inner);
                if let Some(w) = waker {
                    crate::wake::wake(w);
                }
            }
            State::Cancelling => {
                // Step 4: the buffer comes back here, after the OS is done.
                if succeeded {
                    self.completed_after_cancel.fetch_add(1, Ordering::Relaxed);
                }
                let slot = self.free(inner, key);
                drop((slot.owned, output));
            }
            State::Completed(first) => {
                // A second completion for one op: keep the first, count this.
                slot.state = State::Completed(first);
                drop(inner);
                self.count_stale(key, "op completed twice (second ignored)");
                drop(output);
            }
        }
    }

    /// Step 2's other half: the future's poll.
    pub(crate) fn poll(&self, key: OpKey, cx: &mut Context<'_>) -> Poll<Erased> {
        let mut inner = self.lock();
        let slot = Self::find(&mut inner, key).expect("an op's slot outlives its future");
        match &mut slot.state {
            State::Completed(_) => {
                let slot = self.free(inner, key);
                drop(slot.owned);
                match slot.state {
                    State::Completed(out) => Poll::Ready(out),
                    _ => unreachable!("matched Completed above"),
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

    /// Completion backends: takes the state a slot owns, to finish the op
    /// (`None` if the slot is gone or another completion holds it). The
    /// slot stays; `complete` follows.
    #[cfg(any(windows, target_os = "linux", test))]
    pub(crate) fn take_owned(&self, key: OpKey) -> Option<Owned> {
        let mut inner = self.lock();
        Self::find(&mut inner, key).and_then(|s| s.owned.take())
    }

    /// An op the OS ended without being asked to (its slot is still
    /// `Submitted`): submits it again (`OwnedState::resubmit`), under the
    /// lock, so a cancel cannot slip in between; says whether it did.
    #[cfg(all(target_os = "linux", not(miri)))]
    pub(crate) fn resubmit_if_live(&self, key: OpKey) -> bool {
        let mut inner = self.lock();
        match Self::find(&mut inner, key) {
            Some(Slot {
                state: State::Submitted(_),
                owned: Some(owned),
                ..
            }) => owned.resubmit(key),
            _ => false,
        }
    }

    /// Step 2 on a backend whose signal can come before the op is over
    /// (an overlapped op's event): asks `done` for the op's result and
    /// takes the state out only if there is one, all under the lock. A
    /// state taken out to look and put back would leave a window in which
    /// a cancel (step 3) finds the slot without its state, asks the OS
    /// nothing, and the op stays in flight with no one to end it.
    #[cfg(any(windows, test))]
    pub(crate) fn take_owned_if_done<R>(
        &self,
        key: OpKey,
        done: impl FnOnce(&Owned) -> Option<R>,
    ) -> Taken<R> {
        let mut inner = self.lock();
        let Some(slot) = Self::find(&mut inner, key) else {
            return Taken::NoSlot;
        };
        let Some(result) = slot.owned.as_ref().and_then(done) else {
            return if slot.owned.is_some() {
                Taken::InFlight
            } else {
                Taken::NoSlot
            };
        };
        let owned = slot.owned.take().expect("checked above");
        Taken::Done(owned, result)
    }

    /// Step 3: the future is dropped before it took its output. A slot
    /// that owns OS state asks the backend to cancel (under the lock, so
    /// the state cannot be completed and freed meanwhile); if the backend
    /// says the cancel was its own acknowledgement, the slot is freed now
    /// (step 4). A second cancel finds the slot `Cancelling`, or gone, and
    /// does nothing.
    pub(crate) fn cancel(&self, key: OpKey) {
        let mut inner = self.lock();
        let Some(slot) = Self::find(&mut inner, key) else {
            return;
        };
        match std::mem::replace(&mut slot.state, State::Cancelling) {
            State::Submitted(waker) => {
                // A slot that owns nothing (a blocking job's) is
                // acknowledged when the job returns.
                let cancel = slot
                    .owned
                    .as_ref()
                    .map_or(Cancel::Requested, |owned| owned.cancel(key));
                self.cancelled.fetch_add(1, Ordering::Relaxed);
                if cancel == Cancel::Acknowledged {
                    // Step 4 at once: nothing of the op is left in flight.
                    let slot = self.free(inner, key);
                    drop((slot.owned, waker));
                    return;
                }
                drop(inner);
                drop(waker);
            }
            State::Completed(out) => {
                // Completed but never taken: the ack already came.
                let slot = self.free(inner, key);
                drop((slot.owned, out));
            }
            State::Cancelling => {}
        }
    }

    /// Step 5: a completion that found no slot of its op.
    pub(crate) fn count_stale(&self, key: OpKey, what: &str) {
        self.stale.fetch_add(1, Ordering::Relaxed);
        if cfg!(debug_assertions) {
            eprintln!("ebbtide: {what}: {key:?}");
        }
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

    /// Ops the OS completed after their cancel was requested (their
    /// output, buffer included, was dropped: step 4).
    pub(crate) fn completed_after_cancel(&self) -> u64 {
        self.completed_after_cancel.load(Ordering::Relaxed)
    }

    /// Step 5's count.
    pub(crate) fn stale_completions(&self) -> u64 {
        self.stale.load(Ordering::Relaxed)
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
static GRAVEYARD: Mutex<Vec<Owned>> = Mutex::new(Vec::new());

fn retain_forever(owned: Vec<Owned>) {
    GRAVEYARD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(owned);
}

/// How many ops' state this process has retained forever (step 6).
#[cfg(all(test, not(windows)))] // read by the owned-state tests below
pub(crate) fn retained_forever() -> usize {
    GRAVEYARD.lock().unwrap_or_else(|e| e.into_inner()).len()
}

impl Drop for OpTable {
    fn drop(&mut self) {
        // Step 6: state a slot still owns may be in the kernel's hands; it
        // is retained, never freed. (Slots whose state a job owns hold none:
        // the job keeps the table alive until it returns.)
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        let owned: Vec<Owned> = inner.slots.drain().filter_map(|s| s.owned).collect();
        if !owned.is_empty() {
            retain_forever(owned);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[derive(Default)]
    struct Flag(AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
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
    fn packed_keys_round_trip_in_the_generation_mask() {
        let table = OpTable::new();
        let key = table.submit();
        assert_eq!(OpKey::from_bits(key.to_bits()), key);
        let wide = OpKey {
            index: 7,
            generation: u32::MAX,
        };
        let back = OpKey::from_bits(wide.to_bits());
        assert_eq!(back.index, 7);
        assert_eq!(back.generation, GENERATION_MASK);
        assert!(wide.to_bits() < 1 << 62, "bits 62 and 63 stay free");
    }

    #[test]
    fn the_last_freed_slot_wakes_the_settle_waiters() {
        let table = OpTable::new();
        let key = table.submit();
        let woken = std::sync::Arc::new(Flag::default());
        let waker = Waker::from(woken.clone());
        assert!(table
            .poll_settled(&mut Context::from_waker(&waker))
            .is_pending());
        table.cancel(key);
        assert!(
            !woken.0.load(Ordering::SeqCst),
            "cancel alone frees nothing"
        );
        table.complete(key, Box::new(()));
        assert!(woken.0.load(Ordering::SeqCst));
        assert!(table
            .poll_settled(&mut Context::from_waker(&waker))
            .is_ready());
    }
}

/// The slot tests with state the slot owns (Windows' slots own port
/// state, which these stand-ins are not).
#[cfg(all(test, not(windows)))]
mod owned_tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Slot-owned state that counts its drops and cancels, and answers
    /// each cancel with its third field.
    struct Counted(Arc<AtomicUsize>, Arc<AtomicUsize>, Cancel);

    impl OwnedState for Counted {
        fn cancel(&self, _key: OpKey) -> Cancel {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.2
        }
        fn finish(self: Box<Self>, _: std::io::Result<usize>) -> Erased {
            Box::new(())
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn slots_owning_os_state_are_leaked_not_freed_when_the_table_drops() {
        let (dropped, cancels): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let table = OpTable::new();
        let key = table.submit_owned(Box::new(Counted(
            dropped.clone(),
            cancels.clone(),
            Cancel::Requested,
        )));
        table.cancel(key);
        table.cancel(key); // a second cancel asks the OS nothing more
        assert_eq!(cancels.load(Ordering::SeqCst), 1);
        let before = retained_forever();
        drop(table);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        assert_eq!(retained_forever(), before + 1);
    }

    #[test]
    fn an_acknowledged_cancel_drops_the_owned_state_once() {
        let (dropped, cancels): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let table = OpTable::new();
        let key = table.submit_owned(Box::new(Counted(
            dropped.clone(),
            cancels,
            Cancel::Requested,
        )));
        table.cancel(key);
        let owned = table.take_owned(key).expect("the slot owns it");
        table.complete(key, owned.finish(Ok(0))); // the backend's ack
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_cancel_after_a_look_at_an_op_still_in_flight_reaches_the_os() {
        let (dropped, cancels): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let table = OpTable::new();
        let key = table.submit_owned(Box::new(Counted(
            dropped.clone(),
            cancels.clone(),
            Cancel::Requested,
        )));
        // The backend looks: not done (a signal before the op's end).
        let looked = table.take_owned_if_done(key, |_| None::<usize>);
        assert!(matches!(looked, Taken::InFlight));
        // The state is still in the slot, so the cancel asks the OS.
        table.cancel(key);
        assert_eq!(cancels.load(Ordering::SeqCst), 1);
        // The OS acknowledges: the state comes out with its result, once.
        let Taken::Done(owned, n) = table.take_owned_if_done(key, |_| Some(7)) else {
            panic!("the op is done");
        };
        assert_eq!(n, 7);
        assert!(matches!(
            table.take_owned_if_done(key, |_| Some(7)),
            Taken::NoSlot
        ));
        table.complete(key, owned.finish(Ok(0)));
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert_eq!(table.len(), 0);
        assert!(matches!(
            table.take_owned_if_done(key, |_| Some(7)),
            Taken::NoSlot
        ));
    }

    #[test]
    fn a_cancel_that_is_its_own_acknowledgement_frees_the_slot_at_once() {
        let (dropped, cancels): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let table = OpTable::new();
        let key = table.submit_owned(Box::new(Counted(
            dropped.clone(),
            cancels.clone(),
            Cancel::Acknowledged,
        )));
        table.cancel(key);
        assert_eq!(table.len(), 0, "freed by the cancel");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert_eq!(table.cancelled(), 1);
        table.cancel(key); // the slot is gone: nothing more
        assert_eq!(cancels.load(Ordering::SeqCst), 1);
        table.complete(key, Box::new(())); // a late completion: stale
        assert_eq!(table.stale_completions(), 1);
    }
}
