//! Every parked `Send` task of a runtime, so that shutdown can reach the
//! ones waiting on a waker (not sitting in any queue) and cancel them.
//!
//! 1. `spawn` marks the task [`LAZY`]: not registered yet. A task that is
//!    queued or running is reached without the registry (shutdown's cancel
//!    flag makes its next poll drop the future, and a cancelling runtime
//!    drops what is scheduled), so only a task that *parks* needs an entry.
//! 2. The first time its future returns `Pending`, `Catching` calls
//!    `TaskSet::register_parked`: the task's waker goes into the shard of
//!    the thread that polled it, `(shard, key)` into the task's
//!    metadata, and then the cancel flag is read again; if it is set, the
//!    task wakes itself. Either step 4 locked the shard after the insert
//!    (it takes the entry and wakes it) or before (the insert found the
//!    shard closed, and the cancel flag's store happened before that
//!    unlock, so before the re-read).
//! 3. When the task's future is dropped (completed, aborted, cancelled),
//!    `Catching` removes the entry, if any.
//! 4. Shutdown's cancel step, after setting the cancel flag, *takes* every
//!    entry, shard by shard, and closes each shard as it empties it: an
//!    insert into a closed shard stores nothing (its task wakes itself by
//!    step 2's re-read). The caller wakes the taken wakers; the woken tasks
//!    are polled once more, see the cancel flag, and drop their futures
//!    (`task::Catching`).
//! 5. Once every shard is closed, a remove (step 3) returns without taking
//!    a lock: its entry is gone, and a closed shard never reuses its key.
//!    A remove that started before that finds an empty shard or its own
//!    entry, never another task's.
//!
//! Moving the wakers out (rather than cloning them and leaving the entries
//! to step 3) spares each cancelled task a reference count increment and
//! decrement and a lock round trip on its shard.
//!
//! A task that completes in its first poll never touches the registry:
//! most tasks of a spawn-heavy load never park, and an insert and a remove
//! are each a cache miss on a shard the spawning and the finishing thread
//! share. Shards keep the lock uncontended: two lock operations per parking
//! task.
//!
//! Each thread keeps to one shard (handed out round-robin the first time it
//! registers), so a shard lists its thread's tasks in the order they
//! parked, and step 4 cancels them in that order: their timers and channel
//! waiters are freed in the order they were made, walking those structures
//! in cache (handing out shards per task instead would stride the cancel
//! order by the shard count; `docs/benchmarks.md`, "Shutdown", has the
//! measurement).

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Mutex, MutexGuard, Padded};
use std::cell::Cell;
use std::task::Waker;

use slab::Slab;

pub(crate) struct Registry {
    /// Each on its own cache line: neighbouring shards are locked by
    /// different threads.
    shards: Box<[Padded<Mutex<Shard>>]>,
    /// Step 5: every shard is closed.
    closed: AtomicBool,
}

#[derive(Default)]
struct Shard {
    entries: Slab<Waker>,
    /// Step 4 took the entries: inserts store nothing.
    closed: bool,
}

thread_local! {
    /// This thread's shard (`usize::MAX`: none chosen yet).
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Hands each thread its shard, round-robin, the first time it registers.
static NEXT_SHARD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Where a task's entry lives: `shard << 32 | key`, or `NONE`.
pub(crate) type Slot = usize;
/// Never registered (local and blocking tasks).
pub(crate) const NONE: Slot = usize::MAX;
/// A `Send` task not registered yet: it registers when it first parks.
pub(crate) const LAZY: Slot = usize::MAX - 1;

impl Registry {
    pub(crate) fn new(workers: usize) -> Registry {
        // Under loom, one shard: the round-robin thread-local would make
        // the shard choice differ between loom's runs of a model.
        let n = if cfg!(ebbtide_loom) {
            1
        } else {
            (workers * 4).next_power_of_two()
        };
        Registry {
            shards: (0..n).map(|_| Padded(Mutex::default())).collect(),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // No user code runs under these locks (wakers are dropped outside).
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step 2: [`NONE`] once the shard is closed (the caller's re-read of
    /// the cancel flag then wakes the task).
    pub(crate) fn insert(&self, waker: Waker) -> Slot {
        let shard = SHARD.with(|c| {
            if c.get() == usize::MAX {
                c.set(NEXT_SHARD.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            }
            c.get() & (self.shards.len() - 1)
        });
        let mut guard = self.lock(shard);
        if guard.closed {
            drop(guard);
            drop(waker); // outside the lock
            return NONE;
        }
        let key = guard.entries.insert(waker);
        (shard << 32) | key
    }

    /// Steps 3 and 5.
    pub(crate) fn remove(&self, slot: Slot) {
        if slot == NONE || slot == LAZY || self.closed.load(Ordering::Acquire) {
            return;
        }
        let waker = self.lock(slot >> 32).entries.try_remove(slot & 0xFFFF_FFFF);
        drop(waker); // outside the lock
    }

    /// Step 4: takes every registered waker and closes the registry.
    pub(crate) fn take_all(&self) -> Vec<Waker> {
        let mut out = Vec::new();
        for shard in 0..self.shards.len() {
            let entries = {
                let mut guard = self.lock(shard);
                guard.closed = true;
                std::mem::take(&mut guard.entries)
            };
            out.reserve(entries.len());
            out.extend(entries.into_iter().map(|(_, w)| w));
        }
        self.closed.store(true, Ordering::Release);
        out
    }

    /// Entries left (for tests).
    #[cfg(all(test, ebbtide_loom))]
    pub(crate) fn len(&self) -> usize {
        (0..self.shards.len())
            .map(|shard| self.lock(shard).entries.len())
            .sum()
    }
}
