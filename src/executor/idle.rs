//! Who is asleep, who is searching: the bookkeeping that decides whether a
//! wake needs to rouse a worker.
//!
//! # The wake/sleep protocol
//!
//! 1. A wake pushes the task (local queue, LIFO slot or injector), issues a
//!    `SeqCst` fence, then reads `searching` and `idle`: if some worker is
//!    searching, or none is idle, it does nothing more (no syscall).
//! 2. Otherwise it pops one idle worker under the lock, counts it as
//!    searching *before* unparking it (so concurrent wakes skip), and
//!    unparks it: a `Parker` token, plus `Poller::notify` only if that
//!    worker is the one blocked in the poller.
//! 3. A worker that runs out of work becomes searching (at most half the
//!    workers search at once) and steals; when a searcher finds work and was
//!    the last searcher, it wakes another worker (step 2), so that a burst of
//!    work fans out one worker at a time.
//! 4. A worker that finds nothing registers as idle (`park`), issues a
//!    `SeqCst` fence, and re-checks every queue before blocking. Steps 1 and 4
//!    form a Dekker pair: either the waker sees the idle worker, or the
//!    worker sees the pushed task. No wake is lost.
//! 5. On waking, a worker removes itself from the idle list; if a waker
//!    already removed it, it is searching (step 2 counted it).
//! 6. Step 2 also sets the worker's `notified` flag before unparking it. A
//!    worker about to block in the poller re-checks that flag after setting
//!    `in_driver` (the waker reads `in_driver` after the flag): either the
//!    waker sees `in_driver` and notifies the poller, or the worker sees
//!    `notified` and does not block. Without this, a popped worker whose
//!    task was taken by another could sleep in the poller while still
//!    counted as searching, and every later wake would be skipped: the
//!    runtime would hang with work queued.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

pub(crate) struct Idle {
    /// Workers looking for work to steal; while non-zero, wakes are free.
    searching: AtomicUsize,
    /// Length of `sleepers`, readable without the lock.
    idle: AtomicUsize,
    /// Indices of idle workers, most recently parked last.
    sleepers: Mutex<Vec<usize>>,
    /// Number of workers.
    workers: usize,
    /// Per worker: popped by step 2 and not yet awake (step 6).
    notified: Box<[AtomicBool]>,
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            searching: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            workers,
            notified: (0..workers).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<usize>> {
        // No user code runs under this lock.
        self.sleepers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step 1: whether a wake must rouse someone. Call after pushing.
    pub(crate) fn needs_notify(&self) -> bool {
        std::sync::atomic::fence(Ordering::SeqCst);
        self.searching.load(Ordering::SeqCst) == 0 && self.idle.load(Ordering::SeqCst) > 0
    }

    /// Step 2: picks an idle worker to unpark and counts it as searching.
    pub(crate) fn pop_for_notify(&self) -> Option<usize> {
        let mut sleepers = self.lock();
        if self.searching.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let index = sleepers.pop()?;
        self.idle.fetch_sub(1, Ordering::SeqCst);
        self.searching.fetch_add(1, Ordering::SeqCst);
        self.notified[index].store(true, Ordering::SeqCst);
        Some(index)
    }

    /// Step 3: tries to become a searcher (bounded to half the workers).
    pub(crate) fn try_start_searching(&self) -> bool {
        let n = self.searching.load(Ordering::SeqCst);
        if 2 * n >= self.workers.max(2) {
            return false;
        }
        self.searching.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Step 3: a searcher found work; returns whether it was the last one.
    pub(crate) fn stop_searching(&self) -> bool {
        self.searching.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// Step 4: registers `index` as idle (ending its search if it was
    /// searching), then fences; the caller must re-check the queues.
    pub(crate) fn park(&self, index: usize, was_searching: bool) {
        {
            let mut sleepers = self.lock();
            if was_searching {
                self.searching.fetch_sub(1, Ordering::SeqCst);
            }
            sleepers.push(index);
            self.idle.fetch_add(1, Ordering::SeqCst);
        }
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Step 5: leaves the idle list. Returns `true` if the worker is now
    /// searching (a waker took it off the list and counted it).
    pub(crate) fn unpark(&self, index: usize) -> bool {
        let mut sleepers = self.lock();
        match sleepers.iter().position(|&i| i == index) {
            Some(pos) => {
                sleepers.swap_remove(pos);
                self.idle.fetch_sub(1, Ordering::SeqCst);
                false
            }
            None => {
                self.notified[index].store(false, Ordering::SeqCst);
                true
            }
        }
    }

    /// Step 6: whether a waker popped `index` since it registered as idle.
    pub(crate) fn is_notified(&self, index: usize) -> bool {
        self.notified[index].load(Ordering::SeqCst)
    }

    pub(crate) fn idle_count(&self) -> usize {
        self.idle.load(Ordering::Relaxed)
    }
}
