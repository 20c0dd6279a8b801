//! What every task carries: its metadata, the panic-catching wrapper around
//! the user's future, and the output cell whose drop cannot unwind.
//!
//! # Why a wrapper
//!
//! `async-task` drops the future and the output inside its own state
//! machine. A panic there (a future whose `Drop` panics) must never unwind
//! through it or through a worker. So every user future is wrapped in
//! [`Catching`], which:
//!
//! 1. polls the future inside `catch_unwind`; a panic becomes the task's
//!    output (`Err(payload)`), reported by the `JoinHandle` as `is_panic`;
//! 2. drops the future *itself*, inside `catch_unwind`, as soon as it
//!    completes (a panic there is reported the same way) or when the task is
//!    cancelled (a panic there is counted in `Metrics::drop_panics`);
//! 3. keeps the runtime's live-task count: one per future not yet dropped.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::executor::Counters;

/// A panic payload, as `std::panic::catch_unwind` returns it.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Stored in every task's header (`async_task` metadata).
#[derive(Debug, Default)]
pub(crate) struct TaskMeta {
    /// Set by `JoinHandle::abort`; whoever pops the task next drops it
    /// instead of polling it.
    aborted: AtomicBool,
}

impl TaskMeta {
    pub(crate) fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }
}

/// A task's runnable, as the queues hold it.
pub(crate) type Runnable = async_task::Runnable<TaskMeta>;

/// Runs `runnable` unless its `JoinHandle` aborted it. Every runner (worker,
/// `block_on` thread, blocking thread) goes through here.
pub(crate) fn run(runnable: Runnable) {
    if runnable.metadata().is_aborted() {
        // Dropping the runnable drops the future (through `Catching`, which
        // cannot unwind) and wakes the JoinHandle with "cancelled".
        drop(runnable);
        return;
    }
    // `Catching` and `Output` stop every panic from user code; this is the
    // last line of defence so that a worker thread never dies.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
        std::mem::forget(payload); // its own Drop could panic again
    }
}

/// A task's result; its `Drop` never unwinds, whatever `T`'s does.
pub(crate) struct Output<T>(Option<Result<T, Payload>>);

impl<T> Output<T> {
    pub(crate) fn take(mut self) -> Result<T, Payload> {
        self.0.take().expect("an Output is taken once")
    }
}

impl<T> Drop for Output<T> {
    fn drop(&mut self) {
        drop_quietly(self.0.take());
    }
}

/// Drops `value`, catching a panic from its `Drop`; returns the payload.
/// The payload of a *second* panic (its own drop) is leaked, never dropped.
fn drop_caught<V>(value: V) -> Result<(), Payload> {
    catch_unwind(AssertUnwindSafe(move || drop(value)))
}

/// Drops `value`; a panic in its `Drop` is swallowed (payload leaked).
/// Returns whether it panicked.
fn drop_quietly<V>(value: V) -> bool {
    match drop_caught(value) {
        Ok(()) => false,
        Err(payload) => {
            std::mem::forget(payload);
            true
        }
    }
}

pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Running { #[pin] fut: F },
        Done,
    }
}

pin_project! {
    /// The wrapper around every task's future (see the module doc).
    pub(crate) struct Catching<F> {
        #[pin]
        stage: Stage<F>,
        counters: Arc<Counters>,
    }

    impl<F> PinnedDrop for Catching<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Err(payload) = drop_stage(this.stage, this.counters) {
                this.counters.drop_panics.fetch_add(1, Ordering::Relaxed);
                std::mem::forget(payload);
            }
        }
    }
}

/// Drops the future in place (if still there) and counts it dead.
fn drop_stage<F>(mut stage: Pin<&mut Stage<F>>, counters: &Counters) -> Result<(), Payload> {
    if let Stage::Done = *stage {
        return Ok(());
    }
    counters.alive.fetch_sub(1, Ordering::Relaxed);
    // `Pin::set` drops the old value in place; if that drop unwinds, the
    // assignment still completes, so `stage` is `Done` either way.
    catch_unwind(AssertUnwindSafe(|| stage.set(Stage::Done)))
}

impl<F> Catching<F> {
    pub(crate) fn new(fut: F, counters: Arc<Counters>) -> Catching<F> {
        counters.alive.fetch_add(1, Ordering::Relaxed);
        Catching {
            stage: Stage::Running { fut },
            counters,
        }
    }
}

impl<F: Future> Future for Catching<F> {
    type Output = Output<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let StageProj::Running { fut } = this.stage.as_mut().project() else {
            unreachable!("async-task never polls a completed future");
        };
        let result = match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => Ok(value),
            Err(payload) => Err(payload),
        };
        // Drop the future now, on this thread, where a panic can be caught.
        let dropped = drop_stage(this.stage, this.counters);
        let result = match (result, dropped) {
            (Ok(value), Err(payload)) => {
                drop_quietly(value);
                Err(payload)
            }
            (Err(payload), Err(second)) => {
                std::mem::forget(second);
                Err(payload)
            }
            (result, Ok(())) => result,
        };
        if result.is_err() {
            this.counters.panics.fetch_add(1, Ordering::Relaxed);
        }
        Poll::Ready(Output(Some(result)))
    }
}
