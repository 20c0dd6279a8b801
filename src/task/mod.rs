//! Tasks: spawning, yielding, and opting out of the cooperative budget.
//!
//! The crate root re-exports the spawning functions; this module is the
//! one place for everything about tasks.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

mod builder;
pub use builder::Builder;
mod join_set;
pub use join_set::JoinSet;

pub use crate::executor::{yield_now, JoinError, JoinHandle, YieldNow};
pub use crate::{spawn, spawn_blocking, spawn_local};

/// Runs `future` with no cooperative budget: its ready operations never
/// make it yield (`crate::coop`). For a loop that must not be interrupted
/// between two operations; it can then starve its thread, as any future
/// that never returns `Pending` can.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(ebbtide::task::unconstrained(async {
///     for _ in 0..1_000 {
///         ebbtide::time::sleep(std::time::Duration::ZERO).await; // never yields
///     }
/// }));
/// ```
pub fn unconstrained<F: Future>(future: F) -> Unconstrained<F> {
    Unconstrained { future }
}

pin_project_lite::pin_project! {
    /// The future of [`unconstrained`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless awaited"]
    pub struct Unconstrained<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Unconstrained<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _unconstrained = crate::coop::Scope::unconstrained();
        self.project().future.poll(cx)
    }
}
