//! The synchronization primitives of the protocols loom checks: std's
//! normally, loom's under `--cfg ebbtide_loom` (a crate-specific name: a global `--cfg loom` would switch dependencies such as concurrent-queue to loom too) (`.ci/run`'s loom step).
//!
//! Only the shutdown state machine (`runtime::shutdown::Lifecycle`), the
//! task set (`executor::TaskSet`), the task registry and the workers' run
//! queues (`executor::ring`, checked by Miri rather than loom: see its
//! doc) use these; the rest of the crate uses std directly and is not run
//! under loom.

#[cfg(ebbtide_loom)]
pub(crate) use loom::sync::{atomic, Mutex, MutexGuard};
#[cfg(not(ebbtide_loom))]
pub(crate) use std::sync::{atomic, Mutex, MutexGuard};

/// `UnsafeCell` with loom's closure API, so loom can check every access
/// (`executor::ring`'s slots).
#[cfg(ebbtide_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `UnsafeCell` with loom's closure API, so loom can check every access
/// (`executor::ring`'s slots).
#[cfg(not(ebbtide_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(ebbtide_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(v: T) -> UnsafeCell<T> {
        UnsafeCell(std::cell::UnsafeCell::new(v))
    }

    /// Calls `f` with a pointer for reading.
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a pointer for writing.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// A spin-wait's pause: loom must be told, or it explores the spin forever.
pub(crate) fn spin() {
    #[cfg(ebbtide_loom)]
    loom::thread::yield_now();
    #[cfg(not(ebbtide_loom))]
    std::thread::yield_now();
}

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
