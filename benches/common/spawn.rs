//! Spawning onto a runtime through a handle, from any thread (the
//! benchmark's main thread included), for the benches that drive their
//! runtimes from outside (`echo.rs`, `process.rs`): one [`Spawn`] type per
//! runtime, so a workload is written once, generic over it.

use std::future::Future;
use std::pin::Pin;

use async_executor::Executor;

/// A spawned task's output, boxed so that the returned future does not
/// borrow the spawner.
pub(crate) type Task<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Spawns onto one runtime from any thread (a handle, not a thread-local).
pub(crate) trait Spawn: Clone + Send + Sync + 'static {
    /// Spawns `f`; the returned future yields its output.
    fn spawn<F>(&self, f: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
}

/// ebbtide, through its runtime's handle.
#[derive(Clone)]
pub(crate) struct EbbSp(pub(crate) ebbtide::runtime::Handle);

impl Spawn for EbbSp {
    fn spawn<F>(&self, f: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = self.0.spawn(f);
        Box::pin(async move { h.await.expect("ebbtide task failed") })
    }
}

/// tokio, through its runtime's handle.
#[derive(Clone)]
pub(crate) struct TokioSp(pub(crate) tokio::runtime::Handle);

impl Spawn for TokioSp {
    fn spawn<F>(&self, f: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = self.0.spawn(f);
        Box::pin(async move { h.await.expect("tokio task failed") })
    }
}

/// smol, through the executor of `SmolRt` (`smol_rt.rs`).
#[derive(Clone)]
pub(crate) struct SmolSp(pub(crate) &'static Executor<'static>);

impl Spawn for SmolSp {
    fn spawn<F>(&self, f: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Box::pin(self.0.spawn(f))
    }
}
