//! The runtime's tasks as a whole: counters, the registry of live tasks,
//! and the cancel flag that shutdown's cancel step sets.
//!
//! Built on `crate::sync` so that the loom model in
//! `src/runtime/shutdown.rs` runs this code, not a copy of it.

use std::collections::HashMap;
use std::task::{Context, Poll, Waker};

use super::registry::{self, Registry};
use super::task::Site;
use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::sync::{Mutex, MutexGuard, Padded};

/// The runtime's tasks as a whole: counters, the registry of live tasks,
/// and the cancel flag (shared with every task's `Catching`).
pub(crate) struct TaskSet {
    /// Tasks spawned since the runtime started. The three busy counters
    /// each have their own cache line: spawning threads write `spawned`
    /// and `alive`, the threads that finish tasks `alive` and `completed`.
    pub(crate) spawned: Padded<AtomicU64>,
    /// Futures not yet dropped.
    pub(crate) alive: Padded<AtomicUsize>,
    /// Tasks that ran to completion (returned or panicked).
    pub(crate) completed: Padded<AtomicU64>,
    /// Tasks whose future was dropped before completing.
    pub(crate) cancelled: AtomicU64,
    /// Tasks whose future panicked (in poll or in its completion drop).
    pub(crate) panics: AtomicU64,
    /// Panics caught while dropping a cancelled task's future.
    pub(crate) drop_panics: AtomicU64,
    /// `spawn_blocking` jobs not yet returned or dropped (a subset of
    /// `alive`): shutdown counts a stuck one in `blocking_leaked` only.
    pub(crate) blocking_alive: AtomicUsize,
    /// Live `Send` tasks, for shutdown's cancel step.
    pub(crate) registry: Registry,
    /// Shutdown's cancel step: every task's next poll drops its future.
    cancelling: AtomicBool,
    /// Woken when `alive` drops to zero (shutdown waits on it).
    idle_waiters: Mutex<Vec<Waker>>,
    /// Set by shutdown: from then on each cancelled task's spawn site is
    /// counted in `cancelled_sites` (a lock per cancelled task, never per
    /// poll, and none before shutdown).
    recording_sites: AtomicBool,
    cancelled_sites: Mutex<SiteCounts>,
}

/// Spawn site → how many tasks, keyed by the location's and the name's
/// addresses (the entry holds the name, so its address is not reused).
#[derive(Default)]
struct SiteCounts {
    /// The site counted last, and its index: tasks cancelled one after the
    /// other mostly come from one site, and then need no hashing.
    last: Option<((usize, usize), usize)>,
    sites: Vec<(Site, u64)>,
    index: HashMap<(usize, usize), usize>,
}

impl SiteCounts {
    fn count(&mut self, site: &Site) {
        let key = (
            site.location as *const _ as usize,
            site.name
                .as_ref()
                .map_or(0, |n| std::sync::Arc::as_ptr(n) as usize),
        );
        let at = match self.last {
            Some((last, at)) if last == key => at,
            _ => {
                let next = self.sites.len();
                let at = *self.index.entry(key).or_insert(next);
                if at == next {
                    self.sites.push((site.clone(), 0));
                }
                self.last = Some((key, at));
                at
            }
        };
        self.sites[at].1 += 1;
    }
}

impl TaskSet {
    pub(crate) fn new(workers: usize) -> TaskSet {
        TaskSet {
            spawned: Padded(AtomicU64::new(0)),
            alive: Padded(AtomicUsize::new(0)),
            completed: Padded(AtomicU64::new(0)),
            cancelled: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            drop_panics: AtomicU64::new(0),
            blocking_alive: AtomicUsize::new(0),
            registry: Registry::new(workers),
            cancelling: AtomicBool::new(false),
            idle_waiters: Mutex::new(Vec::new()),
            recording_sites: AtomicBool::new(false),
            cancelled_sites: Mutex::new(SiteCounts::default()),
        }
    }

    /// A task's future was dropped before completing (`task`, step 5).
    pub(crate) fn count_cancelled(&self, site: &Site) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
        if !self.recording_sites.load(Ordering::Relaxed) {
            return;
        }
        let mut sites = self
            .cancelled_sites
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        sites.count(site);
    }

    /// Shutdown: count the spawn sites of the tasks cancelled from now on.
    pub(crate) fn record_cancelled_sites(&self) {
        self.recording_sites.store(true, Ordering::Relaxed);
    }

    /// The spawn sites counted since `record_cancelled_sites`, with counts.
    pub(crate) fn cancelled_sites(&self) -> Vec<(Site, u64)> {
        let sites = self
            .cancelled_sites
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        sites.sites.clone()
    }

    pub(crate) fn is_cancelling(&self) -> bool {
        self.cancelling.load(Ordering::Acquire)
    }

    /// Shutdown's cancel step: from now on every poll cancels; takes the
    /// wakers of every registered task (registry step 4), to be woken by
    /// the caller.
    pub(crate) fn start_cancelling(&self) -> Vec<Waker> {
        self.cancelling.store(true, Ordering::Release);
        self.registry.take_all()
    }

    /// Registry step 2: a `Send` task's future returned `Pending` for the
    /// first time; returns its registry slot. Wakes the task at once
    /// (`waker`) if shutdown's cancel step has begun, so its next poll
    /// cancels it.
    pub(crate) fn register_parked(&self, waker: &Waker) -> registry::Slot {
        let slot = self.registry.insert(waker.clone());
        if self.is_cancelling() {
            crate::wake::wake_by_ref(waker);
        }
        slot
    }

    /// A task's future was dropped.
    pub(crate) fn task_dropped(&self, slot: registry::Slot) {
        self.registry.remove(slot);
        if self.alive.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waiters = std::mem::take(&mut *self.lock_idle_waiters());
            for w in waiters {
                crate::wake::wake(w);
            }
        }
    }

    fn lock_idle_waiters(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.idle_waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Ready` once no task is alive; otherwise registers `cx`'s waker.
    pub(crate) fn poll_idle(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.alive.load(Ordering::Acquire) == 0 {
            return Poll::Ready(());
        }
        let mut waiters = self.lock_idle_waiters();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        drop(waiters);
        // Re-check: the last task may have died before we registered.
        if self.alive.load(Ordering::Acquire) == 0 {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
