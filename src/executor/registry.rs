//! Every live `Send` task of a runtime, so that shutdown can reach the ones
//! parked on a waker (not sitting in any queue) and cancel them.
//!
//! 1. `spawn` inserts the task's waker into one shard (chosen round-robin
//!    per thread) and records `(shard, key)` in the task's metadata before the
//!    task is first scheduled.
//! 2. When the task's future is dropped (completed, aborted, cancelled),
//!    `Catching` removes the entry.
//! 3. Shutdown's cancel step takes every entry and wakes it; the woken tasks
//!    are polled once more, see the runtime's cancel flag, and drop their
//!    futures (`task::Catching`).
//!
//! Shards keep the lock uncontended: two lock operations per task lifetime.

use crate::sync::{Mutex, MutexGuard};
use std::cell::Cell;
use std::task::Waker;

use slab::Slab;

pub(crate) struct Registry {
    shards: Box<[Mutex<Slab<Waker>>]>,
}

thread_local! {
    /// Round-robin shard choice, per thread (no shared counter to contend on).
    static NEXT_SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Where a task's entry lives: `shard << 32 | key`, or `NONE`.
pub(crate) type Slot = usize;
pub(crate) const NONE: Slot = usize::MAX;

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
            shards: (0..n).map(|_| Mutex::new(Slab::new())).collect(),
        }
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Slab<Waker>> {
        // No user code runs under these locks (wakers are dropped outside).
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step 1.
    pub(crate) fn insert(&self, waker: Waker) -> Slot {
        let shard = NEXT_SHARD.with(|c| {
            let s = c.get();
            c.set(s.wrapping_add(1));
            s & (self.shards.len() - 1)
        });
        let key = self.lock(shard).insert(waker);
        (shard << 32) | key
    }

    /// Step 2.
    pub(crate) fn remove(&self, slot: Slot) {
        if slot == NONE {
            return;
        }
        let waker = self.lock(slot >> 32).try_remove(slot & 0xFFFF_FFFF);
        drop(waker); // outside the lock
    }

    /// Step 3: every registered waker (entries stay until their task drops).
    pub(crate) fn wakers(&self) -> Vec<Waker> {
        let mut out = Vec::new();
        for shard in 0..self.shards.len() {
            out.extend(self.lock(shard).iter().map(|(_, w)| w.clone()));
        }
        out
    }
}
