//! The timer store: pending timers in a slab; their deadlines in coarse
//! buckets, each sorted once (radix sort) when it begins, plus a min-heap for
//! the few deadlines filed into a bucket that began already.
//!
//! Deadlines are exact (nanoseconds since the store was created, never
//! rounded to a tick): a timer fires at the first `fire_due` whose `now` is
//! at or past its deadline, so never early, and late only by the driver's
//! own wake-up latency. `now` is the reactor clock's (`clock`): real time,
//! or a paused clock's, which the store cannot tell apart.
//!
//! # Design
//!
//! 1. `slots`, a [`Slab`], holds each pending timer: id, deadline, waker. A
//!    `TimerKey` is `(slot index, id)`. Ids never repeat, so a key whose
//!    slot was freed and reused matches nothing: `remove` and `update_waker`
//!    with an old key are no-ops.
//! 2. Each timer also has an `Entry` of 16 bytes: deadline, the id's low 32
//!    bits (order among equal deadlines), slot index. Entries are filed by
//!    *bucket*, `deadline >> BUCKET_SHIFT` (spans of about 16.8 ms): buckets
//!    from `near_end` on go into `far`, a `BTreeMap` from bucket to an
//!    unordered `Vec` (an insert is a push); an entry for a bucket that began
//!    already (before `near_end`) goes to the end of `run` (step 3) if it is
//!    not earlier than `run`'s last entry (deadlines that grow with each
//!    insert, as short sleeps taken one after another do), else into
//!    `near`, a binary min-heap. So every `run` or `near` deadline is
//!    earlier than every `far` one.
//! 3. `fire_due(now)` moves each bucket that has begun to the end of `run`,
//!    sorted by deadline with insertion order kept among equal ones (a
//!    stable radix sort on the 24 bits below the bucket: three counting
//!    passes, `O(n)`), then fires the earlier of `run`'s next entry and
//!    `near`'s top while it is due. Firing from `run` is a cursor step, not
//!    a heap pop (`O(log n)`, a cache miss per level once large): heap
//!    pops were a quarter of the instructions of inserting and firing
//!    100,000 timers (`docs/benchmarks.md`, "Timer store").
//! 4. `remove` only frees the slot, `O(1)`; the timer's entry goes *stale*.
//!    An entry is live while its slot holds a timer with the same deadline and
//!    id bits (a stale entry can pass only for a timer with that very
//!    deadline, which it then fires on time). Stale entries are dropped when
//!    they reach the front of `run` or `near`, and all at once when they outnumber the
//!    pending timers (`sweep_if_stale`): cancel is `O(1)` amortized and there
//!    are at most about two entries per pending timer. Once no timer is
//!    pending, the memory of a burst (over `RETAINED_SLOTS` timers) is freed.
//! 5. The driver wakes (`begin_wait`) at the top of `near` if it is live,
//!    else at the earliest deadline ever filed in the first bucket. If that
//!    timer was removed, the driver wakes early once, the bucket moves into
//!    `run`, and the next deadline is exact: at most one early wake-up per
//!    bucket.
//! 6. `fired_through` (atomic) is one past the latest `now` of `fire_due`,
//!    stored after that call fired every deadline up to `now`. A key
//!    remembers its deadline if it was filed at or after `fired_through`
//!    (else `u64::MAX`): then `has_fired` (deadline below `fired_through`)
//!    proves that a `fire_due` after the insert removed the timer. So a
//!    `Sleep` woken by its timer completes, and drops, with one atomic load:
//!    no clock read, no lock. A timer filed already due (paused clock,
//!    `reset` to the past) takes the ordinary path.
//!
//! # Why this design
//!
//! A `BTreeMap` keyed by deadline descends its tree on every insert and
//! cancel, missing the cache once many timers are pending. One lazy min-heap
//! over all deadlines (slab + heap) cancels in `O(1)`, but each pop walks a
//! heap larger than the cache, so firing is slow. Buckets keep what is
//! ordered at about one bucket of timers, and sorting a bucket once (radix,
//! linear) replaces a heap pop per timer with a cursor step. What is left:
//! firing looks each timer's slot up in the slab, which misses the cache
//! where a map would keep wakers in deadline order. A hierarchical wheel
//! (tokio) rounds deadlines to ticks (this store keeps them exact) and
//! cascades entries through levels, and unlinks from intrusive lists on
//! cancel (two more cache misses); sharding does not help a store that one
//! driver drains. The measurements behind each of
//! these statements are in `docs/benchmarks.md` ("Timer store").
//!
//! # Protocol
//!
//! 1. A [`Sleep`](crate::time::Sleep) registers on its first pending poll
//!    (`insert`), updates its waker on later polls (`update_waker`; kept as
//!    is when it `will_wake` the same task), and removes its entry on drop
//!    (`remove`; a no-op once fired). A poll or drop first asks `has_fired`
//!    (design step 6): if so it is due, or gone, without a lock.
//! 2. The reactor's driver takes its wake-up time before blocking
//!    (`begin_wait`, design step 5), then fires every entry whose deadline
//!    is `<= now` after waking (`fire_due`), collecting wakers to call with
//!    no lock held.
//! 3. An insert that becomes the earliest deadline while the driver is blocked
//!    with a later (or no) timeout returns `true`: the caller must
//!    `Poller::notify` so the driver recomputes its timeout.
//! 4. No waker is cloned, woken or dropped with the lock held: each runs user
//!    code, which may touch timers again.
//! 5. `Sleep::reset` of a registered timer moves it (`reset`): the stored
//!    waker stays, so the task that polled it last is woken at the new
//!    deadline, even if nothing polls the `Sleep` in between (a deadline
//!    moved from another task or thread). Only a timer that already fired
//!    is registered afresh, at its next poll.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Release};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use slab::Slab;

/// About 30 years: a deadline this far out means "never", and stays
/// representable (`Instant` arithmetic past it may overflow).
const NEVER: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `start + after`, saturating: a sum past what `Instant` holds (e.g.
/// `Duration::MAX`) is a deadline about 30 years out, which means "never"
/// and still leaves room for the small margins added to deadlines.
pub(crate) fn deadline_after(start: Instant, after: Duration) -> Instant {
    start
        .checked_add(after.min(NEVER))
        .or_else(|| start.checked_add(NEVER))
        .unwrap_or(start)
}

/// Identifies one registered timer; stays harmless after the timer fired or
/// was removed (it then matches nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    /// Slot in `State::slots`.
    index: usize,
    /// The timer's unique id: tells it from a later timer in the same slot.
    id: u64,
    /// Its deadline in nanoseconds since `Timers::base` if it was later than
    /// every `fire_due` so far when filed, else `u64::MAX` (design step 6).
    fired_below: u64,
}

impl TimerKey {
    /// Whether `has_fired` will hold once `fire_due` removed this key's
    /// timer: it was filed at or after every `fire_due` so far (design step
    /// 6). Else only the clock tells that it is due.
    pub(crate) fn fires_by_marker(&self) -> bool {
        self.fired_below != u64::MAX
    }
}

/// All timers of one runtime.
pub(crate) struct Timers {
    /// Deadlines are stored as nanoseconds since this instant.
    base: Instant,
    /// Entries and the driver's view of them; one lock, held only briefly.
    state: Mutex<State>,
    /// One past the latest `now` of `fire_due`, in nanoseconds since `base`:
    /// every timer filed before with a deadline below it has fired (design
    /// step 6). Written under the lock, read without it.
    fired_through: AtomicU64,
    /// Lock acquisitions, for tests of the paths that take none.
    #[cfg(test)]
    pub(crate) locks: std::sync::atomic::AtomicUsize,
}

/// A bucket spans `2^BUCKET_SHIFT` ns (about 16.8 ms).
const BUCKET_SHIFT: u32 = 24;

/// Below this many entries the store is never swept for stale ones.
const MIN_SWEEP: usize = 64;

/// Once no timer is pending, allocations for more timers than this are freed.
const RETAINED_SLOTS: usize = 1024;

struct State {
    /// Pending timers (design step 1).
    slots: Slab<Slot>,
    /// The entries of the buckets moved before `near_end`, and of the later
    /// inserts into them that came in order, in deadline order, then
    /// insertion order; those before `run_pos` are done (design steps 2
    /// and 3).
    run: Vec<Entry>,
    /// The first entry of `run` not yet fired or discarded.
    run_pos: usize,
    /// Entries filed after their bucket moved (before `near_end`) that
    /// `run` could not take in order, earliest first (design step 2).
    near: BinaryHeap<Reverse<Entry>>,
    /// The first bucket number not yet moved into `near`.
    near_end: u64,
    /// Entries of the buckets from `near_end` on, by bucket (design step 2).
    far: BTreeMap<u64, Bucket>,
    /// Entries in `far`; with `near.len()`, tells when stale ones dominate
    /// (design step 4).
    far_len: usize,
    /// Source of unique ids.
    next_id: u64,
    /// `Some(at)` while the driver is blocked: the deadline it will wake at,
    /// in nanoseconds since `Timers::base` (`u64::MAX`: no timeout, or one
    /// beyond what `Instant` holds, which no insert can precede by much).
    /// Lets `insert` notify only when needed.
    driver_wait: Option<u64>,
}

/// One pending timer.
struct Slot {
    /// Matches the `id` of its key.
    id: u64,
    /// Deadline, in nanoseconds since `Timers::base`.
    at: u64,
    /// Woken when the timer fires.
    waker: Waker,
}

/// A deadline in `near` or `far`; live while its slot still holds the same
/// timer, stale after that timer fired or was removed.
#[derive(Clone, Copy)]
struct Entry {
    /// Deadline, in nanoseconds since `Timers::base`.
    at: u64,
    /// Low bits of the timer's id: insertion order among equal deadlines.
    seq: u32,
    /// The slot to check for liveness; not part of the order.
    index: u32,
}

/// The unordered entries of one span of `2^BUCKET_SHIFT` ns.
struct Bucket {
    /// The earliest `at` ever pushed (it may be stale): a lower bound on the
    /// bucket's live deadlines.
    min_at: u64,
    /// In insertion order, stale ones included.
    entries: Vec<Entry>,
}

impl Entry {
    fn bucket(&self) -> u64 {
        self.at >> BUCKET_SHIFT
    }

    /// Whether this entry belongs to the timer now in its slot. A stale entry
    /// can pass only for a timer with the very same deadline, so firing it
    /// is still exact.
    fn is_live(&self, slots: &Slab<Slot>) -> bool {
        slots
            .get(self.index as usize)
            .is_some_and(|s| s.at == self.at && s.id as u32 == self.seq)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Bucket {
    fn new(e: Entry) -> Bucket {
        Bucket {
            min_at: e.at,
            entries: vec![e],
        }
    }

    fn push(&mut self, e: Entry) {
        self.min_at = self.min_at.min(e.at);
        self.entries.push(e);
    }
}

impl State {
    /// Whether `key`'s timer is still pending.
    fn holds(&self, key: TimerKey) -> bool {
        self.slots.get(key.index).is_some_and(|s| s.id == key.id)
    }

    /// Design step 2: files `e` by its bucket.
    fn push(&mut self, e: Entry) {
        let bucket = e.bucket();
        if bucket < self.near_end {
            // Not earlier than the last of `run` (deadlines that grow with
            // each insert): appending keeps `run` in order, and firing it is
            // a cursor step where the heap would pop.
            if self.run.last().is_none_or(|last| *last <= e) {
                self.run.push(e);
            } else {
                self.near.push(Reverse(e));
            }
        } else {
            self.far_len += 1;
            // Deadlines mostly grow: try the last bucket before searching.
            if let Some(mut last) = self.far.last_entry() {
                if *last.key() == bucket {
                    last.get_mut().push(e);
                    return;
                }
            }
            match self.far.get_mut(&bucket) {
                Some(b) => b.push(e),
                None => {
                    self.far.insert(bucket, Bucket::new(e));
                }
            }
        }
    }

    /// Design step 3: moves every bucket that began by `now` to the end of
    /// `run`, each sorted once.
    fn pull_due(&mut self, now: u64) {
        if self.run_pos == self.run.len() {
            self.run.clear();
            self.run_pos = 0;
        }
        while let Some(first) = self.far.first_entry() {
            if *first.key() > now >> BUCKET_SHIFT {
                break;
            }
            let (bucket, b) = first.remove_entry();
            self.near_end = bucket + 1;
            self.far_len -= b.entries.len();
            // Later buckets hold later deadlines: appending keeps `run` in
            // order.
            sort_bucket_into(b.entries, &mut self.run);
        }
    }

    /// The earliest live entry of `near`, after discarding stale ones.
    fn peek_near(&mut self) -> Option<Entry> {
        while let Some(&top) = self.run.get(self.run_pos) {
            if top.is_live(&self.slots) {
                break;
            }
            self.run_pos += 1;
        }
        while let Some(&Reverse(top)) = self.near.peek() {
            if top.is_live(&self.slots) {
                break;
            }
            self.near.pop();
        }
        match (self.run.get(self.run_pos), self.near.peek()) {
            (Some(&r), Some(&Reverse(h))) => Some(r.min(h)),
            (Some(&r), None) => Some(r),
            (None, Some(&Reverse(h))) => Some(h),
            (None, None) => None,
        }
    }

    /// Design step 3: fires, in order, every entry of `run` and `near` due
    /// at `now`, dropping the stale ones it passes. One step per entry: the
    /// earlier of the two fronts is taken, then its slot is checked once.
    fn fire_through(&mut self, now: u64, out: &mut Vec<Waker>) {
        loop {
            let (e, from_run) = match (self.run.get(self.run_pos), self.near.peek()) {
                (Some(&r), Some(&Reverse(h))) if h < r => (h, false),
                (Some(&r), _) => (r, true),
                (None, Some(&Reverse(h))) => (h, false),
                (None, None) => return,
            };
            if e.at > now {
                return;
            }
            if from_run {
                self.run_pos += 1;
            } else {
                self.near.pop();
            }
            if e.is_live(&self.slots) {
                out.push(self.slots.remove(e.index as usize).waker);
            }
        }
    }

    /// Design step 5: when the driver must wake: the earliest live deadline in
    /// `near`, else the earliest (possibly stale) one of the first bucket.
    fn wake_at(&mut self) -> Option<u64> {
        match self.peek_near() {
            Some(e) => Some(e.at),
            None => self.far.first_key_value().map(|(_, b)| b.min_at),
        }
    }

    /// Design step 4: once stale entries outnumber live timers, drops them
    /// all.
    fn sweep_if_stale(&mut self) {
        let stored = self.stored();
        if self.slots.is_empty() {
            self.release();
        } else if stored > MIN_SWEEP && stored > 2 * self.slots.len() {
            let slots = &self.slots;
            self.near.retain(|Reverse(e)| e.is_live(slots));
            self.run.drain(..self.run_pos);
            self.run_pos = 0;
            self.run.retain(|e| e.is_live(slots));
            self.far.retain(|_, b| {
                b.entries.retain(|e| e.is_live(slots));
                b.min_at = b.entries.iter().map(|e| e.at).min().unwrap_or(u64::MAX);
                !b.entries.is_empty()
            });
            self.far_len = self.far.values().map(|b| b.entries.len()).sum();
        }
    }

    /// Entries stored, stale ones included.
    fn stored(&self) -> usize {
        self.run.len() - self.run_pos + self.near.len() + self.far_len
    }

    /// Design step 4, no timer pending: drops every (stale) entry, and gives
    /// the memory of a burst of timers back.
    fn release(&mut self) {
        self.far.clear();
        self.far_len = 0;
        if self.slots.capacity() > RETAINED_SLOTS {
            self.slots = Slab::new();
            self.near = BinaryHeap::new();
            self.run = Vec::new();
        } else {
            self.near.clear();
            self.run.clear();
        }
        self.run_pos = 0;
    }
}

/// Sorts the entries of one bucket by deadline, ties in insertion order
/// (the order of `entries`), and appends them to `out` (design step 3).
///
/// A least-significant-digit radix sort on the deadline's bits below
/// `BUCKET_SHIFT` (the bucket's entries share the bits above): three stable
/// passes of 8 bits, `O(n)`, where a comparison sort costs `O(n log n)`.
fn sort_bucket_into(mut entries: Vec<Entry>, out: &mut Vec<Entry>) {
    const PASSES: u32 = BUCKET_SHIFT / 8;
    const _: () = assert!(PASSES * 8 == BUCKET_SHIFT && PASSES % 2 == 1);
    let start = out.len();
    out.extend_from_slice(&entries);
    if entries.len() < 64 {
        out[start..].sort_by_key(|e| e.at); // stable
        return;
    }
    // One read of the entries counts the digits of every pass, and tells
    // whether they are in order already (deadlines that grow with each
    // insert: then `out` holds the result).
    let mut counts = [[0usize; 256]; PASSES as usize];
    let mut sorted = true;
    let mut last = 0;
    for e in &entries {
        sorted &= last <= e.at;
        last = e.at;
        for (pass, c) in counts.iter_mut().enumerate() {
            c[digit(e, pass as u32 * 8)] += 1;
        }
    }
    if sorted {
        return;
    }
    // Odd pass count: the passes go `entries` -> `out`, `out` -> `entries`,
    // ..., and the last one lands in `out`.
    for (pass, c) in counts.iter_mut().enumerate() {
        let shift = pass as u32 * 8;
        if pass % 2 == 0 {
            radix_pass(&entries, &mut out[start..], shift, c);
        } else {
            radix_pass(&out[start..], &mut entries, shift, c);
        }
    }
}

/// The 8 deadline bits of `e` from `shift`.
fn digit(e: &Entry, shift: u32) -> usize {
    ((e.at >> shift) & 0xff) as usize
}

/// One stable counting-sort pass of `src` into `dst` by the 8 deadline bits
/// from `shift`, whose counts are `counts`. A pass where every entry has the
/// same digit is a copy.
fn radix_pass(src: &[Entry], dst: &mut [Entry], shift: u32, counts: &mut [usize; 256]) {
    if counts.contains(&src.len()) {
        dst.copy_from_slice(src);
        return;
    }
    let mut sum = 0;
    for c in counts.iter_mut() {
        (*c, sum) = (sum, sum + *c);
    }
    for e in src {
        let d = digit(e, shift);
        dst[counts[d]] = *e;
        counts[d] += 1;
    }
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            base: Instant::now(),
            state: Mutex::new(State {
                slots: Slab::new(),
                run: Vec::new(),
                run_pos: 0,
                near: BinaryHeap::new(),
                near_end: 0,
                far: BTreeMap::new(),
                far_len: 0,
                next_id: 0,
                driver_wait: None,
            }),
            fired_through: AtomicU64::new(0),
            #[cfg(test)]
            locks: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        #[cfg(test)]
        self.locks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A panic cannot happen while the lock is held (no user code runs
        // under it), so poisoning carries no information here.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nanoseconds from `base` to `t` (exact), `None` if `t` is earlier,
    /// saturating 584 years out.
    fn nanos(&self, t: Instant) -> Option<u64> {
        let d = t.checked_duration_since(self.base)?;
        // Cheaper than `as_nanos` (a 128-bit product) and its conversion.
        Some(
            d.as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.subsec_nanos())),
        )
    }

    /// The instant `at` stands for (`None`: beyond what `Instant` holds).
    fn instant(&self, at: u64) -> Option<Instant> {
        self.base.checked_add(Duration::from_nanos(at))
    }

    /// Registers a timer; returns its key and whether the driver must be
    /// notified (protocol step 3).
    pub(crate) fn insert(&self, deadline: Instant, waker: Waker) -> (TimerKey, bool) {
        let at = self.at(deadline);
        let mut st = self.lock();
        self.insert_locked(&mut st, at, waker)
    }

    /// `deadline` as the store keeps it. A deadline before `base` has passed
    /// for every `now` `fire_due` will see, so firing it at `base` is not
    /// early.
    fn at(&self, deadline: Instant) -> u64 {
        self.nanos(deadline).unwrap_or(0)
    }

    #[inline(always)]
    fn insert_locked(&self, st: &mut State, at: u64, waker: Waker) -> (TimerKey, bool) {
        let id = st.next_id;
        st.next_id += 1;
        let index = st.slots.insert(Slot { id, at, waker });
        st.push(Entry {
            at,
            seq: id as u32,
            index: u32::try_from(index).expect("ebbtide: more than 2^32 pending timers"),
        });
        let notify = st.driver_wait.is_some_and(|wake_at| at < wake_at);
        if notify {
            // The driver will recompute; don't notify again for later inserts.
            st.driver_wait = Some(at);
        }
        // Design step 6: `fired_through` only grows, under this lock.
        let fired_below = if at >= self.fired_through.load(Acquire) {
            at
        } else {
            u64::MAX
        };
        (
            TimerKey {
                index,
                id,
                fired_below,
            },
            notify,
        )
    }

    /// Replaces the waker of a still-pending timer. Returns `false` if the
    /// timer already fired (or was removed).
    pub(crate) fn update_waker(&self, key: TimerKey, waker: &Waker) -> bool {
        match self.lock().slots.get(key.index) {
            Some(s) if s.id == key.id => {
                if s.waker.will_wake(waker) {
                    return true;
                }
            }
            _ => return false,
        }
        // Protocol step 4: clone with the lock released, swap under it, drop
        // the old waker after releasing it again.
        let new = waker.clone();
        let old = match self.lock().slots.get_mut(key.index) {
            Some(s) if s.id == key.id => std::mem::replace(&mut s.waker, new),
            _ => return false, // fired meanwhile; `new` is dropped unlocked
        };
        drop(old);
        true
    }

    /// Moves a still-pending timer to `deadline`, keeping its waker (protocol
    /// step 5). Returns the timer's new key and whether the driver must be
    /// notified (step 3), or `None` if it already fired or was removed.
    pub(crate) fn reset(&self, key: TimerKey, deadline: Instant) -> Option<(TimerKey, bool)> {
        let mut st = self.lock();
        if !st.holds(key) {
            return None;
        }
        let slot = st.slots.remove(key.index);
        let moved = self.insert_locked(&mut st, self.at(deadline), slot.waker);
        st.sweep_if_stale();
        Some(moved)
    }

    /// Whether `key`'s timer surely fired: its deadline is below the `now`
    /// of a `fire_due` that ran after it was filed (design step 6). No lock
    /// and no clock read; `false` may still mean it fired.
    pub(crate) fn has_fired(&self, key: TimerKey) -> bool {
        key.fired_below < self.fired_through.load(Acquire)
    }

    /// Cancels a timer (no-op if it already fired or was removed).
    pub(crate) fn remove(&self, key: TimerKey) {
        let slot = {
            let mut st = self.lock();
            if !st.holds(key) {
                return;
            }
            let slot = st.slots.remove(key.index);
            st.sweep_if_stale();
            slot
        };
        drop(slot); // dropped outside the lock: a waker's drop is user code
    }

    /// Protocol step 2: records that the driver is about to block and
    /// returns when it must wake (design step 5).
    pub(crate) fn begin_wait(&self) -> Option<Instant> {
        let mut st = self.lock();
        let at = st.wake_at().filter(|&at| self.instant(at).is_some());
        st.driver_wait = Some(at.unwrap_or(u64::MAX));
        at.and_then(|at| self.instant(at))
    }

    /// When the driver must wake (design step 5), without marking it as
    /// blocked.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let at = self.lock().wake_at()?;
        self.instant(at)
    }

    /// Protocol step 2: the driver woke; moves every due waker into `out`.
    pub(crate) fn fire_due(&self, now: Instant, out: &mut Vec<Waker>) {
        // Saturated deadlines (`u64::MAX`) never compare as due.
        let now = self.nanos(now).map(|n| n.min(u64::MAX - 1));
        let mut st = self.lock();
        st.driver_wait = None;
        let Some(now) = now else { return }; // before `base`: nothing is due
        st.pull_due(now);
        st.fire_through(now, out);
        // Design step 6: every timer due at `now` is out of the store.
        if now + 1 > self.fired_through.load(Acquire) {
            self.fired_through.store(now + 1, Release);
        }
        if st.slots.is_empty() {
            st.release();
        }
    }

    /// Number of pending timers.
    pub(crate) fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// Removes every timer (runtime teardown); wakers are returned so they
    /// are dropped without the lock held.
    pub(crate) fn take_all(&self) -> Vec<Waker> {
        let mut st = self.lock();
        st.near = BinaryHeap::new();
        st.run = Vec::new();
        st.run_pos = 0;
        st.far = BTreeMap::new();
        st.far_len = 0;
        std::mem::take(&mut st.slots)
            .into_iter()
            .map(|(_, s)| s.waker)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::task::Wake;

    const US: Duration = Duration::from_micros(1);

    /// Wakers that record, in `log`, the order they were woken in.
    #[derive(Default)]
    struct Log(Mutex<Vec<usize>>);

    struct Probe {
        id: usize,
        log: Arc<Log>,
    }

    impl Wake for Probe {
        fn wake(self: Arc<Self>) {
            self.log.0.lock().unwrap().push(self.id);
        }
    }

    impl Log {
        fn waker(self: &Arc<Self>, id: usize) -> Waker {
            Waker::from(Arc::new(Probe {
                id,
                log: self.clone(),
            }))
        }

        /// Fires what is due at `now` and returns the ids woken, in order.
        fn fire(&self, timers: &Timers, now: Instant) -> Vec<usize> {
            let mut out = Vec::new();
            timers.fire_due(now, &mut out);
            out.into_iter().for_each(Waker::wake);
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    fn noop() -> Waker {
        Waker::noop().clone()
    }

    #[test]
    fn fire_due_wakes_in_deadline_order_then_insertion_order() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let t0 = Instant::now() + Duration::from_secs(1);
        for (id, at) in [(0, 3), (1, 1), (2, 2), (3, 1), (4, 3), (5, 0)] {
            t.insert(t0 + at * US, log.waker(id));
        }
        assert_eq!(log.fire(&t, t0 + 2 * US), [5, 1, 3, 2]);
        assert_eq!(t.len(), 2);
        assert_eq!(log.fire(&t, t0 + 3 * US), [0, 4]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_timer_fires_at_its_exact_deadline_and_not_a_nanosecond_before() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let deadline = Instant::now() + Duration::from_millis(10) + Duration::from_nanos(7);
        t.insert(deadline, log.waker(0));
        assert_eq!(t.next_deadline(), Some(deadline));
        assert!(log.fire(&t, deadline - Duration::from_nanos(1)).is_empty());
        assert_eq!(log.fire(&t, deadline), [0]);
    }

    #[test]
    fn a_deadline_already_past_at_creation_fires_on_the_next_fire_due() {
        let past = Instant::now();
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        t.insert(past, log.waker(0));
        assert!(t.next_deadline().is_some_and(|d| d >= past));
        assert_eq!(log.fire(&t, Instant::now()), [0]);
    }

    #[test]
    fn a_deadline_decades_away_is_kept_exactly_and_never_fires() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let now = Instant::now();
        let far = now + Duration::from_secs(86_400 * 365 * 30);
        t.insert(far, log.waker(0));
        assert_eq!(t.next_deadline(), Some(far));
        assert!(log
            .fire(&t, now + Duration::from_secs(86_400 * 365))
            .is_empty());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn remove_cancels_a_pending_timer_and_is_a_noop_once_fired_or_removed() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let t0 = Instant::now() + Duration::from_secs(1);
        let (a, _) = t.insert(t0, log.waker(0));
        let (b, _) = t.insert(t0 + US, log.waker(1));
        let (c, _) = t.insert(t0 + 2 * US, log.waker(2));
        t.remove(b);
        assert_eq!(t.len(), 2);
        assert_eq!(log.fire(&t, t0), [0]);
        t.remove(a); // fired
        t.remove(b); // already removed
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.next_deadline(),
            Some(t0 + 2 * US),
            "b's stale entry is skipped"
        );
        assert_eq!(log.fire(&t, t0 + 2 * US), [2]);
        t.remove(c);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn an_old_key_does_not_touch_a_new_timer_in_its_reused_slot() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let t0 = Instant::now() + Duration::from_secs(1);
        let (old, _) = t.insert(t0, log.waker(0));
        t.remove(old);
        let (new, _) = t.insert(t0 + US, log.waker(1));
        assert_eq!(new.index, old.index, "the slot is reused");
        t.remove(old);
        assert!(!t.update_waker(old, &log.waker(9)));
        assert_eq!(t.len(), 1, "the old key cancelled nothing");
        assert!(
            log.fire(&t, t0).is_empty(),
            "the old heap entry did not fire the new timer early"
        );
        assert_eq!(log.fire(&t, t0 + US), [1]);
    }

    #[test]
    fn a_stale_entry_with_the_same_deadline_fires_the_new_timer_on_time() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let t0 = Instant::now() + Duration::from_secs(1);
        let (old, _) = t.insert(t0, log.waker(0));
        t.remove(old);
        t.insert(t0, log.waker(1));
        assert_eq!(log.fire(&t, t0), [1]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn update_waker_swaps_the_waker_until_the_timer_fires() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let t0 = Instant::now() + Duration::from_secs(1);
        let (key, _) = t.insert(t0, log.waker(0));
        let same = log.waker(1);
        assert!(t.update_waker(key, &same));
        assert!(t.update_waker(key, &same.clone()), "will_wake: kept as is");
        assert_eq!(log.fire(&t, t0), [1]);
        assert!(!t.update_waker(key, &same), "fired");
    }

    #[test]
    fn insert_notifies_only_when_it_moves_a_blocked_drivers_deadline_earlier() {
        let t = Timers::new();
        let t0 = Instant::now() + Duration::from_secs(1);
        assert!(!t.insert(t0, noop()).1, "driver not blocked");
        assert_eq!(t.begin_wait(), Some(t0));
        assert!(!t.insert(t0, noop()).1, "same deadline");
        assert!(!t.insert(t0 + US, noop()).1, "later deadline");
        assert!(t.insert(t0 - US, noop()).1, "earlier deadline");
        assert!(
            !t.insert(t0 - US, noop()).1,
            "the driver will recompute already"
        );
        assert!(t.insert(t0 - 2 * US, noop()).1, "earlier still");
        t.fire_due(t0 - Duration::from_secs(1), &mut Vec::new());
        assert!(!t.insert(t0 - 3 * US, noop()).1, "driver awake");
    }

    #[test]
    fn insert_notifies_a_driver_blocked_without_timeout() {
        let t = Timers::new();
        let t0 = Instant::now() + Duration::from_secs(1);
        assert_eq!(t.begin_wait(), None);
        assert!(t.insert(t0, noop()).1);
        assert!(
            !t.insert(t0 + US, noop()).1,
            "the driver will recompute already"
        );
    }

    #[test]
    fn next_deadline_does_not_mark_the_driver_blocked() {
        let t = Timers::new();
        assert_eq!(t.next_deadline(), None);
        assert!(!t.insert(Instant::now(), noop()).1);
    }

    #[test]
    fn take_all_returns_every_waker_and_leaves_old_keys_inert() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let t0 = Instant::now() + Duration::from_secs(1);
        let keys: Vec<_> = (0..5).map(|i| t.insert(t0, log.waker(i)).0).collect();
        t.remove(keys[1]);
        let wakers = t.take_all();
        assert_eq!((wakers.len(), t.len()), (4, 0));
        assert_eq!(t.next_deadline(), None);
        let (new, _) = t.insert(t0, log.waker(7));
        for &k in &keys {
            t.remove(k);
            assert!(!t.update_waker(k, &noop()));
        }
        assert!(t.update_waker(new, &noop()));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn many_timers_inserted_then_removed_leave_nothing_and_sweep_stale_entries() {
        let n = if cfg!(miri) { 2_000 } else { 100_000 };
        let t = Timers::new();
        let t0 = Instant::now() + Duration::from_secs(1);
        let stored = |t: &Timers| {
            let st = t.lock();
            st.stored()
        };
        // Ascending deadlines removed in order (the benchmark's pattern),
        // then deadlines scattered over ~3 s removed in a scattered order.
        for (deadline_stride, remove_stride) in [(1, 1), (7919, 7)] {
            let keys: Vec<_> = (0..n)
                .map(|i| {
                    let at = t0 + ((i * deadline_stride) % n) as u32 * 30 * US;
                    t.insert(at, noop()).0
                })
                .collect();
            assert_eq!((t.len(), stored(&t)), (n, n));
            for (removed, i) in (0..n).map(|i| (i * remove_stride) % n).enumerate() {
                t.remove(keys[i]);
                let live = n - removed - 1;
                assert!(stored(&t) <= (2 * live).max(MIN_SWEEP) + 1);
            }
            assert_eq!((t.len(), stored(&t)), (0, 0));
            assert!(t.lock().far.is_empty());
            assert_eq!(t.lock().slots.capacity(), 0, "the burst's memory is freed");
        }
        // The same when the burst fires instead.
        for i in 0..n {
            t.insert(t0 + i as u32 * US, noop());
        }
        t.fire_due(t0 + n as u32 * US, &mut Vec::new());
        assert_eq!((t.len(), stored(&t), t.lock().slots.capacity()), (0, 0, 0));
    }

    /// The instant `ms` milliseconds into bucket number `bucket` of `t`.
    fn in_bucket(t: &Timers, bucket: u64, ms: u64) -> Instant {
        t.base + Duration::from_nanos(bucket << BUCKET_SHIFT) + Duration::from_millis(ms)
    }

    #[test]
    fn timers_in_later_buckets_fire_in_deadline_order() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let b = 100; // some 1.7 s after `base`
        for (id, bucket, ms) in [(0, b + 2, 1), (1, b, 5), (2, b + 1, 0), (3, b, 2)] {
            t.insert(in_bucket(&t, bucket, ms), log.waker(id));
        }
        assert_eq!(t.lock().far.len(), 3);
        assert_eq!(log.fire(&t, in_bucket(&t, b, 3)), [3]);
        assert_eq!(t.lock().far.len(), 2, "bucket `b` moved into `near`");
        // Bucket `b` is in `near` now: an insert there goes to the heap.
        t.insert(in_bucket(&t, b, 4), log.waker(4));
        assert_eq!(t.next_deadline(), Some(in_bucket(&t, b, 4)));
        assert_eq!(log.fire(&t, in_bucket(&t, b + 3, 0)), [4, 1, 2, 0]);
        assert_eq!((t.len(), t.lock().far.len()), (0, 0));
    }

    #[test]
    fn a_large_bucket_fires_in_deadline_order_then_insertion_order() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let b = 100;
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        // 1,000 deadlines over one bucket, every nanosecond bit in play, and
        // pairs of equal deadlines (insertion order decides those).
        let mut expected: Vec<(u64, usize)> = (0..1_000)
            .map(|id| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let at = if id % 10 == 9 {
                    12_345
                } else {
                    rng % (1 << BUCKET_SHIFT)
                };
                t.insert(
                    in_bucket(&t, b, 0) + Duration::from_nanos(at),
                    log.waker(id),
                );
                (at, id)
            })
            .collect();
        expected.sort(); // by deadline, then id (= insertion order)
        let fired = log.fire(&t, in_bucket(&t, b + 1, 0));
        assert_eq!(fired, expected.iter().map(|e| e.1).collect::<Vec<_>>());
        // Part of a bucket: exactly the due prefix, in order.
        let half = in_bucket(&t, b + 2, 0) + Duration::from_nanos(1 << (BUCKET_SHIFT - 1));
        for (id, &(at, _)) in expected.iter().enumerate() {
            t.insert(
                in_bucket(&t, b + 2, 0) + Duration::from_nanos(at),
                log.waker(id),
            );
        }
        let due = expected
            .iter()
            .filter(|e| e.0 <= 1 << (BUCKET_SHIFT - 1))
            .count();
        assert_eq!(log.fire(&t, half), (0..due).collect::<Vec<_>>());
        assert_eq!(t.len(), expected.len() - due);
    }

    #[test]
    fn timers_removed_after_their_bucket_was_sorted_do_not_fire() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let b = 100;
        let keys: Vec<_> = (0..200)
            .map(|i| {
                t.insert(in_bucket(&t, b, 1) + i * US, log.waker(i as usize))
                    .0
            })
            .collect();
        // The bucket moves (sorted) on the first fire; then every third
        // goes (too few for a sweep: their entries stay in `run`, stale).
        assert_eq!(log.fire(&t, in_bucket(&t, b, 1)), [0]);
        for k in keys.iter().skip(1).step_by(3) {
            t.remove(*k);
        }
        assert_eq!((t.len(), t.lock().stored()), (132, 199), "not swept");
        let rest: Vec<usize> = (1..200).filter(|i| i % 3 != 1).collect();
        assert_eq!(log.fire(&t, in_bucket(&t, b, 2)), rest);
        assert_eq!((t.len(), t.lock().stored()), (0, 0));
    }

    #[test]
    fn has_fired_holds_only_after_a_fire_due_that_removed_the_timer() {
        let t = Timers::new();
        let t0 = Instant::now() + Duration::from_secs(1);
        let (a, _) = t.insert(t0, noop());
        let (b, _) = t.insert(t0 + US, noop());
        assert!(!t.has_fired(a));
        t.fire_due(t0, &mut Vec::new());
        assert!(t.has_fired(a) && !t.has_fired(b));
        // Filed below what has fired already: never claimed fired, since
        // it is still pending until the next `fire_due`.
        let (late, _) = t.insert(t0 - US, noop());
        assert_eq!(t.len(), 2);
        assert!(!t.has_fired(late));
        t.fire_due(t0 + US, &mut Vec::new());
        assert!(!t.has_fired(late) && t.has_fired(b));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn next_deadline_of_a_later_bucket_is_its_earliest_deadline() {
        let t = Timers::new();
        let b = 100;
        t.insert(in_bucket(&t, b, 9), noop());
        t.insert(in_bucket(&t, b, 3), noop());
        t.insert(in_bucket(&t, b + 1, 1), noop());
        assert_eq!(t.begin_wait(), Some(in_bucket(&t, b, 3)));
    }

    #[test]
    fn a_removed_bucket_minimum_wakes_the_driver_early_but_fires_nothing_early() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let b = 100;
        let (early, _) = t.insert(in_bucket(&t, b, 3), log.waker(0));
        t.insert(in_bucket(&t, b, 9), log.waker(1));
        t.remove(early);
        // The bucket still reports its earliest deadline ever inserted.
        assert_eq!(t.begin_wait(), Some(in_bucket(&t, b, 3)));
        assert!(log.fire(&t, in_bucket(&t, b, 3)).is_empty());
        assert_eq!(t.begin_wait(), Some(in_bucket(&t, b, 9)), "exact again");
        assert_eq!(log.fire(&t, in_bucket(&t, b, 9)), [1]);
    }

    #[test]
    fn a_sweep_recomputes_each_buckets_earliest_deadline() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let b = 100;
        let keys: Vec<_> = (0..200)
            .map(|i| t.insert(in_bucket(&t, b, i % 10), log.waker(i as usize)).0)
            .collect();
        // Remove every timer due in the first 5 ms of the bucket, then more,
        // until stale entries outnumber live ones and get swept.
        let early = keys.iter().enumerate().filter(|(i, _)| i % 10 < 5);
        let late = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 10 >= 5 && *i >= 60);
        for (_, &k) in early.chain(late) {
            t.remove(k);
        }
        assert_eq!(t.len(), 30);
        assert!(t.lock().far_len <= 60, "swept");
        assert_eq!(t.begin_wait(), Some(in_bucket(&t, b, 5)));
    }

    #[test]
    fn random_inserts_removes_and_fires_match_an_ordered_map() {
        use std::collections::BTreeMap;

        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |below: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % below
        };
        // The reference: deadline order, insertion order among equals.
        let mut model = BTreeMap::<(Instant, usize), TimerKey>::new();
        let mut keys = Vec::new();
        let mut now = t.base;
        let mut sweeps = 0;
        let stored = |t: &Timers| {
            let st = t.lock();
            st.stored()
        };
        let steps = if cfg!(miri) { 1_000 } else { 50_000 };
        for id in 0..steps {
            match next(10) {
                0..=4 => {
                    // Deadlines up to 200 ms (about 12 buckets) ahead.
                    let deadline = now + Duration::from_micros(next(200_000));
                    let key = t.insert(deadline, log.waker(id)).0;
                    model.insert((deadline, id), key);
                    keys.push((deadline, id, key));
                }
                5..=8 if !keys.is_empty() => {
                    // Pending or already fired.
                    let (deadline, id, key) = keys.swap_remove(next(keys.len() as u64) as usize);
                    let stored_before = stored(&t);
                    t.remove(key);
                    sweeps += usize::from(stored(&t) + 1 < stored_before);
                    model.remove(&(deadline, id));
                }
                _ => {
                    now += Duration::from_micros(next(5_000));
                    let due: Vec<_> = model.range(..(now, usize::MAX)).map(|(k, _)| *k).collect();
                    for k in &due {
                        model.remove(k);
                    }
                    let fired = log.fire(&t, now);
                    assert_eq!(fired, due.iter().map(|k| k.1).collect::<Vec<_>>());
                }
            }
            assert_eq!(t.len(), model.len());
            if let Some(&(first, _)) = model.keys().next() {
                let wake = t
                    .next_deadline()
                    .expect("a wake-up while timers are pending");
                assert!(wake <= first, "the driver never wakes late");
            }
        }
        assert!(sweeps > 0, "stale entries were swept");
    }

    #[test]
    fn an_in_order_insert_into_a_begun_bucket_joins_the_run_not_the_heap() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let b = 100;
        t.insert(in_bucket(&t, b, 1), log.waker(0));
        t.insert(in_bucket(&t, b, 2), log.waker(1));
        assert_eq!(log.fire(&t, in_bucket(&t, b, 1)), [0], "bucket `b` began");
        t.insert(in_bucket(&t, b, 5), log.waker(2)); // after run's last
        t.insert(in_bucket(&t, b, 5), log.waker(3)); // equal: after it
        t.insert(in_bucket(&t, b, 3), log.waker(4)); // earlier: the heap
        {
            let st = t.lock();
            assert_eq!((st.run.len() - st.run_pos, st.near.len()), (3, 1));
        }
        assert_eq!(t.next_deadline(), Some(in_bucket(&t, b, 2)));
        assert_eq!(log.fire(&t, in_bucket(&t, b + 1, 0)), [1, 4, 2, 3]);
    }

    #[test]
    fn a_large_bucket_filed_in_order_or_with_shared_digits_fires_in_order() {
        let (t, log) = (Timers::new(), Arc::new(Log::default()));
        let b = 100;
        // In order (equal pairs included): the sort finds nothing to do.
        let in_order: Vec<u64> = (0..300).map(|i| 1_000 + i / 2 * 7).collect();
        // Scattered, all below 2^16 ns into the bucket: the top digit is the
        // same for all, so that pass is a plain copy.
        let shared: Vec<u64> = (0..300u64).map(|i| (i * 7919) % 65_536).collect();
        for (round, ats) in [in_order, shared].into_iter().enumerate() {
            let bucket = b + 2 * round as u64;
            for (id, &at) in ats.iter().enumerate() {
                t.insert(
                    in_bucket(&t, bucket, 0) + Duration::from_nanos(at),
                    log.waker(id),
                );
            }
            let mut expected: Vec<(u64, usize)> =
                ats.iter().enumerate().map(|(id, &at)| (at, id)).collect();
            expected.sort();
            let fired = log.fire(&t, in_bucket(&t, bucket + 1, 0));
            assert_eq!(fired, expected.iter().map(|e| e.1).collect::<Vec<_>>());
        }
        assert_eq!(t.len(), 0);
    }
}
