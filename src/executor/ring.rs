//! A worker's local run queue: a bounded ring that one thread (its owner,
//! the worker) pushes to and pops from, and other threads steal half of.
//!
//! Only the owner ever writes a slot, so a push is a slot write and one
//! release store, with no compare-and-swap (a general multi-producer queue
//! pays one per push and per pop).
//!
//! # Who may do what
//!
//! [`new`] makes a ring and returns its two halves:
//!
//! - [`Ring`], shared through an `Arc`: what any thread may do — `steal`
//!   (step 3), `drain` (step 4), `len`, `is_empty`.
//! - [`Local`], the producer handle: `push` (step 1) and `pop` (step 2),
//!   both on `&mut self`. A ring has exactly one and it is not `Clone`, so
//!   holding `&mut Local` is what makes a thread the owner. Safe code hands
//!   it to another thread only through something that synchronizes (a
//!   worker slot keeps it under a mutex between owners), so the old owner's
//!   last call happens before the new owner's first.
//!
//! # Protocol
//!
//! State: `tail` (`u32`, stored only through the `Local`), `head` (a `u64`
//! packing two `u32` positions, `steal` ≤ `real`), and `CAP` slots; every
//! position is taken modulo 2³² and a slot index is `position % CAP`.
//! Slots in `real..tail` are queued; slots in `steal..real` are being
//! copied out by a stealer; `steal == real` when no steal is in progress.
//!
//! 1. **Push** (`Local`): load `head` (Acquire) for `steal`. If `tail -
//!    steal == CAP` the ring is full (slots still being stolen count): the
//!    value is handed back. Otherwise write slot `tail`, then store `tail +
//!    1` (Release), which publishes the write to whoever loads `tail`.
//! 2. **Pop** (`Local`): compare-and-swap `head` from `(steal, real)` to
//!    `(real + 1, real + 1)` if no steal is in progress, else to `(steal,
//!    real + 1)`; on success slot `real` is the owner's to read. Empty when
//!    `real == tail`. Only the owner may pop, which is why `pop` is on
//!    `Local`: another thread would move `steal` past a slot it has not
//!    read yet, and the owner could overwrite it.
//! 3. **Steal** (`Ring`, any thread but the owner's), in three phases.
//!    *Claim*: if `steal != real`, another steal is in progress: give up.
//!    Load `tail` (Acquire: the slots below it are written), take `n =
//!    ceil((tail - real) / 2)`, compare-and-swap `head` to `(steal, real +
//!    n)`. Pops now start at `real + n`, and pushes still stop at `steal +
//!    CAP`, so nobody writes or reads `steal..steal + n`. *Copy* the `n`
//!    values out. *Release*: compare-and-swap `head` from `(steal, r)` to
//!    `(r, r)` (AcqRel; `r` is wherever the owner's pops have moved
//!    `real`), so the owner's next write into those slots happens after the
//!    reads.
//! 4. **Drain** (`Ring`, teardown): steal until empty. It only steals, so
//!    it is safe even while a leaked worker still owns the ring; dropping
//!    the ring drains it the same way.
//!
//! # How it is checked
//!
//! Miri's data-race detector runs the unit tests:
//! `concurrent_owner_and_thieves_take_each_value_once` has an owner pushing
//! and popping against two thieves, so a step above done wrong (a pop that
//! moves `steal` while a steal is in progress, a `Relaxed` release, a push
//! bounded by `real` instead of `steal`) is a race on a slot. Whether the
//! race happens depends on the schedule, which Miri's seed picks, so
//! `.ci/run` runs several seeds; the results per seed are in
//! `docs/benchmarks.md` ("Run queue checks").
//!
//! The ring is not a loom model, so it uses std's atomics and cell
//! directly, not `crate::sync`'s loom switch: loom does not interleave a
//! thread's load-then-compare-exchange between another thread's plain load
//! and what follows it, which is exactly the push race.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Makes an empty ring of `CAP` values (a power of two, at most 2¹⁶): the
/// part any thread may use, and its one producer handle, for the owner.
pub(crate) fn new<T, const CAP: usize>() -> (Arc<Ring<T, CAP>>, Local<T, CAP>) {
    let ring = Arc::new(Ring {
        head: AtomicU64::new(0),
        tail: AtomicU32::new(0),
        slots: (0..CAP)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect(),
    });
    (ring.clone(), Local { ring })
}

/// A bounded single-producer, multi-consumer ring of `CAP` values: the part
/// any thread may use (steps 3 and 4 of the module doc). Pushes and pops go
/// through its [`Local`].
pub(crate) struct Ring<T, const CAP: usize> {
    /// `steal << 32 | real`.
    head: AtomicU64,
    tail: AtomicU32,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: values move between threads through the ring (so `T: Send`); the
// protocol gives each slot one reader or one writer at a time.
unsafe impl<T: Send, const CAP: usize> Send for Ring<T, CAP> {}
// SAFETY: as above.
unsafe impl<T: Send, const CAP: usize> Sync for Ring<T, CAP> {}

/// The producer handle of a ring: steps 1 and 2 of the module doc.
///
/// # Invariant
///
/// It is the only `Local` of `ring` ([`new`] makes one, and it is not
/// `Clone`), so while `push` or `pop` holds `&mut self`, no other thread
/// pushes or pops: those are the owner's slot writes and `tail` stores.
pub(crate) struct Local<T, const CAP: usize> {
    ring: Arc<Ring<T, CAP>>,
}

fn pack(steal: u32, real: u32) -> u64 {
    (u64::from(steal) << 32) | u64::from(real)
}

fn unpack(head: u64) -> (u32, u32) {
    ((head >> 32) as u32, head as u32)
}

impl<T, const CAP: usize> Local<T, CAP> {
    /// Step 1. `Err(value)` when full.
    pub(crate) fn push(&mut self, value: T) -> Result<(), T> {
        let ring = &*self.ring;
        let (steal, _) = unpack(ring.head.load(Ordering::Acquire));
        // Only the `Local` stores `tail`: its own last store is what it reads.
        let tail = ring.tail.load(Ordering::Relaxed);
        if tail.wrapping_sub(steal) as usize >= CAP {
            return Err(value);
        }
        // SAFETY: `steal <= tail < steal + CAP`: slot `tail` is outside
        // `steal..tail` (queued or being stolen), so no stealer reads it,
        // and only the `Local`, which `&mut self` holds, writes slots.
        unsafe { (*ring.slot(tail).get()).write(value) };
        ring.tail.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Step 2.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let ring = &*self.ring;
        let tail = ring.tail.load(Ordering::Relaxed);
        let mut head = ring.head.load(Ordering::Acquire);
        loop {
            let (steal, real) = unpack(head);
            if real == tail {
                return None;
            }
            let next_real = real.wrapping_add(1);
            let next = match steal == real {
                true => pack(next_real, next_real),
                false => pack(steal, next_real),
            };
            match ring
                .head
                .compare_exchange(head, next, Ordering::AcqRel, Ordering::Acquire)
            {
                // SAFETY: a push wrote slot `real` before `tail` passed it,
                // and the compare-and-swap gave it to us alone; no push can
                // reach it again before we return (pushes need the `Local`,
                // which `&mut self` holds).
                Ok(_) => return Some(unsafe { (*ring.slot(real).get()).assume_init_read() }),
                Err(actual) => head = actual,
            }
        }
    }
}

impl<T, const CAP: usize> Ring<T, CAP> {
    const MASK: u32 = {
        assert!(CAP.is_power_of_two() && CAP <= 1 << 16);
        CAP as u32 - 1
    };

    fn slot(&self, pos: u32) -> &UnsafeCell<MaybeUninit<T>> {
        &self.slots[(pos & Self::MASK) as usize]
    }

    /// Step 3: moves about half of this ring's values out, from any thread
    /// but the owner's: the first is returned, the rest go to `rest` (the
    /// stealer's own ring, through its `Local`). `None` if empty or another
    /// steal is in progress.
    pub(crate) fn steal(&self, mut rest: impl FnMut(T)) -> Option<T> {
        // Claim.
        let mut head = self.head.load(Ordering::Acquire);
        let (from, n) = loop {
            let (steal, real) = unpack(head);
            if steal != real {
                return None;
            }
            let tail = self.tail.load(Ordering::Acquire);
            let queued = tail.wrapping_sub(real);
            if queued == 0 {
                return None;
            }
            if queued as usize > CAP {
                // Pops and pushes between our two loads: `head` is stale.
                head = self.head.load(Ordering::Acquire);
                continue;
            }
            let n = queued.div_ceil(2);
            match self.head.compare_exchange(
                head,
                pack(steal, real.wrapping_add(n)),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break (steal, n),
                Err(actual) => head = actual,
            }
        };
        // Copy.
        let take = |pos: u32| {
            // SAFETY: the claim put `from..from + n` below `real` and kept
            // `steal` at `from`: pops skip these slots and pushes cannot
            // reach them, so this is their only access until the release;
            // each was written before `tail` (loaded with Acquire) passed it.
            unsafe { (*self.slot(pos).get()).assume_init_read() }
        };
        let first = take(from);
        for i in 1..n {
            rest(take(from.wrapping_add(i)));
        }
        // Release.
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let (steal, real) = unpack(head);
            debug_assert_eq!(steal, from, "one steal at a time");
            match self.head.compare_exchange(
                head,
                pack(real, real),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(first),
                Err(actual) => head = actual,
            }
        }
    }

    /// Step 4: takes every value out, from any thread (the owner may be a
    /// leaked worker still running).
    pub(crate) fn drain(&self, mut f: impl FnMut(T)) {
        loop {
            match self.steal(&mut f) {
                Some(v) => f(v),
                // Empty, or another steal in progress (it finishes soon).
                None if self.is_empty() => return,
                None => std::thread::yield_now(),
            }
        }
    }

    /// How many values are queued (exact for the owner, a snapshot for
    /// others).
    pub(crate) fn len(&self) -> usize {
        // `head` first: `real` never passes the `tail` read after it.
        let (_, real) = unpack(self.head.load(Ordering::Acquire));
        let tail = self.tail.load(Ordering::Acquire);
        (tail.wrapping_sub(real) as usize).min(CAP)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T, const CAP: usize> Drop for Ring<T, CAP> {
    /// Drops the values still queued (step 4; with `&mut self`, no steal is
    /// in progress).
    fn drop(&mut self) {
        self.drain(drop);
    }
}

#[cfg(all(test, not(ebbtide_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn fifo_order_full_and_wrap_around() {
        let (r, mut owner) = new::<u32, 4>();
        for round in 0..5u32 {
            for i in 0..4 {
                owner.push(round * 10 + i).unwrap();
            }
            assert_eq!(owner.push(99), Err(99), "a full ring hands the value back");
            assert_eq!(r.len(), 4);
            for i in 0..4 {
                assert_eq!(owner.pop(), Some(round * 10 + i));
            }
            assert_eq!(owner.pop(), None);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn steal_takes_the_older_half_and_the_owner_keeps_the_rest() {
        let (r, mut owner) = new::<u32, 8>();
        for i in 0..5 {
            owner.push(i).unwrap();
        }
        let mut rest = Vec::new();
        assert_eq!(r.steal(|v| rest.push(v)), Some(0));
        assert_eq!(rest, [1, 2], "ceil(5 / 2) = 3 values stolen");
        assert_eq!(owner.pop(), Some(3));
        assert_eq!(owner.pop(), Some(4));
        assert_eq!(r.steal(|_| unreachable!()), None, "empty");
        // The stolen slots are free again: the ring holds 8 once more.
        for i in 0..8 {
            owner.push(i).unwrap();
        }
        assert!(owner.push(8).is_err());
    }

    /// Counts live values, so a test sees every value dropped exactly once.
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn drop_and_drain_drop_every_value_once() {
        let live = Arc::new(AtomicUsize::new(0));
        let make = || {
            live.fetch_add(1, Ordering::SeqCst);
            Counted(live.clone())
        };
        let (r, mut owner) = new::<Counted, 8>();
        for _ in 0..6 {
            assert!(owner.push(make()).is_ok());
        }
        drop(owner.pop());
        let mut drained = 0;
        r.drain(|v| {
            drained += 1;
            drop(v);
        });
        assert_eq!((drained, live.load(Ordering::SeqCst)), (5, 0));
        for _ in 0..3 {
            assert!(owner.push(make()).is_ok());
        }
        drop((r, owner));
        assert_eq!(live.load(Ordering::SeqCst), 0, "Drop drops what is queued");
    }

    /// The owner pushes and pops while two thieves steal: every value is
    /// taken exactly once (Miri checks the slot accesses for races).
    #[test]
    fn concurrent_owner_and_thieves_take_each_value_once() {
        let n: u32 = if cfg!(miri) { 300 } else { 200_000 };
        let (ring, mut owner) = new::<u32, 16>();
        let seen: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let (ring, seen, done) = (ring.clone(), seen.clone(), done.clone());
                std::thread::spawn(move || {
                    let (_, mut mine) = new::<u32, 16>();
                    let mark = |v: u32| seen[v as usize].fetch_add(1, Ordering::SeqCst);
                    loop {
                        let finished = done.load(Ordering::SeqCst);
                        if let Some(v) = ring.steal(|v| mine.push(v).map_err(mark).unwrap_or(())) {
                            mark(v);
                        }
                        while let Some(v) = mine.pop() {
                            mark(v);
                        }
                        if finished && ring.is_empty() {
                            return;
                        }
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        let mark = |v: u32| seen[v as usize].fetch_add(1, Ordering::SeqCst);
        for v in 0..n {
            if let Err(v) = owner.push(v) {
                mark(v); // full: the owner "overflows" it elsewhere
            }
            if v % 3 == 0 {
                if let Some(v) = owner.pop() {
                    mark(v);
                }
            }
        }
        done.store(true, Ordering::SeqCst);
        for t in thieves {
            t.join().unwrap();
        }
        while let Some(v) = owner.pop() {
            mark(v);
        }
        let wrong: Vec<_> = (0..n)
            .filter(|&v| seen[v as usize].load(Ordering::SeqCst) != 1)
            .collect();
        assert!(wrong.is_empty(), "values not taken exactly once: {wrong:?}");
    }
}
