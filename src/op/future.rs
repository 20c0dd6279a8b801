//! `Op<T>`: the future of one submitted operation (steps 1–3 of the
//! protocol in `op/mod.rs`, from the caller's side).

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::table::{Erased, OpKey, OpTable};

/// How an op ended, as stored in its slot: the backend's output, or the
/// panic of the job that was computing it (resumed in the awaiting task).
pub(crate) enum Ended<T> {
    Returned(T),
    Panicked(Box<dyn Any + Send>),
}

/// The output a backend stores for an op whose future is an `Op<T>`.
pub(crate) fn ended<T: Send + 'static>(ended: Ended<T>) -> Erased {
    Box::new(ended)
}

/// The future of one submitted operation: only the slot key (step 1).
///
/// Resolves to the op's output `T`; dropping it early is step 3.
pub(crate) struct Op<T: Send + 'static> {
    table: Arc<OpTable>,
    key: Option<OpKey>,
    _output: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> Op<T> {
    /// The future of the op a backend submitted under `key`; the backend
    /// completes that slot with `ended::<T>(..)`.
    pub(crate) fn new(table: &Arc<OpTable>, key: OpKey) -> Op<T> {
        Op {
            table: table.clone(),
            key: Some(key),
            _output: PhantomData,
        }
    }

    /// The op's slot key, until it completes.
    #[cfg(all(windows, test))] // the IOCP seed test
    pub(crate) fn key(&self) -> Option<OpKey> {
        self.key
    }
}

impl<T: Send + 'static> Future for Op<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let key = self.key.expect("Op polled after completion");
        let out = std::task::ready!(self.table.poll(key, cx));
        self.key = None;
        // Only `Op::new` makes a future for a key, and its backend
        // completes that key with `ended::<T>`: the type always matches.
        match *out
            .downcast::<Ended<T>>()
            .expect("an op's output has its future's type")
        {
            Ended::Returned(out) => Poll::Ready(out),
            Ended::Panicked(payload) => resume_unwind(payload),
        }
    }
}

impl<T: Send + 'static> Drop for Op<T> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.table.cancel(key);
        }
    }
}
