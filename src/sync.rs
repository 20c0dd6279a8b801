//! The synchronization primitives of the protocols loom checks: std's
//! normally, loom's under `--cfg ebbtide_loom` (a crate-specific name: a global `--cfg loom` would switch dependencies such as concurrent-queue to loom too) (`.ci/run`'s loom step).
//!
//! Only the shutdown state machine (`runtime::shutdown::Lifecycle`), the
//! task set (`executor::TaskSet`) and the task registry use these; the rest
//! of the crate uses std directly and is not run under loom.

#[cfg(ebbtide_loom)]
pub(crate) use loom::sync::{atomic, Mutex, MutexGuard};
#[cfg(not(ebbtide_loom))]
pub(crate) use std::sync::{atomic, Mutex, MutexGuard};
