//! The synchronization primitives of the protocols loom checks: std's
//! normally, loom's under `--cfg ebbtide_loom` (`.ci/run`'s loom step). The
//! name is the crate's own because a global `--cfg loom` would switch
//! dependencies such as concurrent-queue to loom too.
//!
//! Only the shutdown state machine (`runtime::shutdown::Lifecycle`), the
//! task set (`executor::TaskSet`) and the task registry use these; the
//! rest of the crate uses std directly and is not run under loom (the
//! workers' run queues, `executor::ring`, are checked by Miri: see there).
//! [`Padded`] keeps the hot counters and registry shards of those types
//! on cache lines of their own.

#[cfg(ebbtide_loom)]
pub(crate) use loom::sync::{atomic, Mutex, MutexGuard};
#[cfg(not(ebbtide_loom))]
pub(crate) use std::sync::{atomic, Mutex, MutexGuard};

/// A value alone on its cache line (two lines: adjacent-line prefetching
/// pairs them on x86), so that threads writing neighbouring values do not
/// bounce one line between their cores.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
