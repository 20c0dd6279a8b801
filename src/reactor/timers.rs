//! The timer store: an ordered map from `(deadline, id)` to the waker of the
//! sleeping future.
//!
//! Chosen over a hashed wheel because it gives exact deadlines (a timer never
//! fires early, never rounds to a tick) with `O(log n)` insert and cancel; the
//! `timers_insert_cancel_1m` benchmark measures it against tokio's wheel.
//!
//! # Protocol
//!
//! 1. A [`Sleep`](crate::time::Sleep) registers on its first pending poll
//!    (`insert`), updates its waker only when it changed (`update_waker`), and
//!    removes its entry on drop (`remove`; a no-op once fired).
//! 2. The reactor's driver takes the earliest deadline before blocking
//!    (`begin_wait`), then fires every entry whose deadline is `<= now` after
//!    waking (`fire_due`), collecting wakers to call with no lock held.
//! 3. An insert that becomes the earliest deadline while the driver is blocked
//!    with a later (or no) timeout returns `true`: the caller must
//!    `Poller::notify` so the driver recomputes its timeout.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::task::Waker;
use std::time::Instant;

/// Identifies one registered timer.
pub(crate) type TimerKey = (Instant, u64);

/// All timers of one runtime.
pub(crate) struct Timers {
    /// Entries and the driver's view of them; one lock, held only briefly.
    state: Mutex<State>,
}

struct State {
    /// Pending timers in deadline order; the id breaks ties and makes keys unique.
    entries: BTreeMap<TimerKey, Waker>,
    /// Source of unique ids.
    next_id: u64,
    /// `Some(deadline)` while the driver is blocked: the deadline it will wake
    /// at (`None` inside = no timeout). Lets `insert` notify only when needed.
    driver_wait: Option<Option<Instant>>,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            state: Mutex::new(State {
                entries: BTreeMap::new(),
                next_id: 0,
                driver_wait: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic cannot happen while the lock is held (no user code runs
        // under it), so poisoning carries no information here.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a timer; returns its key and whether the driver must be
    /// notified (step 3).
    pub(crate) fn insert(&self, deadline: Instant, waker: Waker) -> (TimerKey, bool) {
        let mut st = self.lock();
        let key = (deadline, st.next_id);
        st.next_id += 1;
        st.entries.insert(key, waker);
        let notify = match st.driver_wait {
            Some(None) => true,
            Some(Some(wake_at)) => deadline < wake_at,
            None => false,
        };
        if notify {
            // The driver will recompute; don't notify again for later inserts.
            st.driver_wait = Some(Some(deadline));
        }
        (key, notify)
    }

    /// Replaces the waker of a still-pending timer. Returns `false` if the
    /// timer already fired.
    pub(crate) fn update_waker(&self, key: TimerKey, waker: &Waker) -> bool {
        match self.lock().entries.get_mut(&key) {
            Some(w) => {
                w.clone_from(waker);
                true
            }
            None => false,
        }
    }

    /// Cancels a timer (no-op if it already fired).
    pub(crate) fn remove(&self, key: TimerKey) {
        let waker = self.lock().entries.remove(&key);
        drop(waker); // dropped outside the lock: a waker's drop is user code
    }

    /// Step 2: records that the driver is about to block and returns the
    /// earliest deadline.
    pub(crate) fn begin_wait(&self) -> Option<Instant> {
        let mut st = self.lock();
        let next = st.entries.keys().next().map(|k| k.0);
        st.driver_wait = Some(next);
        next
    }

    /// The earliest deadline, without marking the driver as blocked.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.lock().entries.keys().next().map(|k| k.0)
    }

    /// Step 2: the driver woke; moves every due waker into `out`.
    pub(crate) fn fire_due(&self, now: Instant, out: &mut Vec<Waker>) {
        let mut st = self.lock();
        st.driver_wait = None;
        while let Some(entry) = st.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            out.push(entry.remove());
        }
    }

    /// Number of pending timers.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Removes every timer (runtime teardown); wakers are returned so they
    /// are dropped without the lock held.
    pub(crate) fn take_all(&self) -> Vec<Waker> {
        std::mem::take(&mut self.lock().entries)
            .into_values()
            .collect()
    }
}
