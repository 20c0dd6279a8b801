//! The child processes a runtime spawned, for its shutdown (step 3 of
//! `shutdown.rs`): children marked `kill_on_drop` are killed and reaped
//! before the report; the others still running are counted.
//!
//! The runtime knows children only through the [`Tracked`] trait
//! (`crate::process` implements it), and holds them weakly: a child that
//! was waited for and dropped leaves the list by itself.

use std::sync::{Mutex, Weak};
use std::time::Instant;

/// What shutdown asks of one child.
pub(crate) trait Tracked: Send + Sync {
    /// If the child is still running: kill it and reap it (waiting until
    /// `until` at most) when it was spawned with `kill_on_drop`. Returns
    /// what became of it.
    fn settle(&self, until: Instant) -> Settled;
}

/// What [`Tracked::settle`] found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// It had exited already (reaped now if it was not).
    Exited,
    /// It was running with `kill_on_drop`: killed and reaped.
    Killed,
    /// It is running and was left running (no `kill_on_drop`, or it did not
    /// die by `until`).
    Running,
}

/// A runtime's children, held weakly.
#[derive(Default)]
pub(crate) struct Children {
    list: Mutex<Vec<Weak<dyn Tracked>>>,
}

impl Children {
    /// Tracks `child` until it is dropped. Prunes dropped entries as it goes,
    /// so the list stays as long as the number of live children.
    pub(crate) fn insert(&self, child: Weak<dyn Tracked>) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        if list.len() >= 64 && list.len().is_power_of_two() {
            list.retain(|c| c.strong_count() > 0);
        }
        list.push(child);
    }

    /// Shutdown: settles every live child; returns `(killed, running)`.
    /// No lock is held while a child is settled.
    pub(crate) fn settle_all(&self, until: Instant) -> (usize, usize) {
        let live: Vec<_> =
            std::mem::take(&mut *self.list.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .filter_map(|c| c.upgrade())
                .collect();
        let (mut killed, mut running) = (0, 0);
        for child in live {
            match child.settle(until) {
                Settled::Exited => {}
                Settled::Killed => killed += 1,
                Settled::Running => running += 1,
            }
        }
        (killed, running)
    }
}
