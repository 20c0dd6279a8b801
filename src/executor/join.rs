//! `JoinHandle` and `JoinError`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use async_task::FallibleTask;

use crate::executor::task::{self, MetaRef, Outcome, Payload, QuietOutcome, Runnable, TaskMeta};
use crate::executor::worker::MainWake;
use crate::wake::Isolated;

/// An owned permission to await, abort or cancel a spawned task.
///
/// Awaiting it yields the task's output, or a [`JoinError`] if the task
/// panicked or was cancelled. Dropping it (or calling [`detach`]) lets the
/// task keep running, as in tokio.
///
/// [`detach`]: JoinHandle::detach
///
/// # Examples
///
/// ```
/// let rt = ebbtide::runtime::Runtime::new()?;
/// let out = rt.block_on(async {
///     let handle = ebbtide::spawn(async { 6 * 7 });
///     handle.await
/// });
/// assert_eq!(out.unwrap(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JoinHandle<T> {
    /// `None` only after `detach` or a completed `cancel`.
    task: Option<FallibleTask<QuietOutcome<T>, TaskMeta>>,
    /// The task's metadata (its abort flag); dereferenced only while `task`
    /// is `Some`, which keeps the task allocation alive.
    meta: MetaRef,
    /// Schedules the task so that an abort is acted upon promptly.
    waker: Waker,
    /// What async-task stores as the awaiter: the awaiting task's waker,
    /// wrapped so that its panics cannot reach async-task's abort guard
    /// (`crate::wake`, step 3). Replaced when a different task polls; not
    /// made for the runtime's own wakers, which are handed over unwrapped
    /// (`poll_isolated`).
    awaiter: Option<(Arc<Isolated>, Waker)>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(
        runnable: &Runnable,
        task: async_task::Task<QuietOutcome<T>, TaskMeta>,
    ) -> Self {
        JoinHandle {
            meta: MetaRef::new(task.metadata()),
            waker: runnable.waker(),
            task: Some(task.fallible()),
            awaiter: None,
        }
    }

    /// Requests cancellation and returns at once.
    ///
    /// The task's future is dropped the next time a worker picks the task
    /// (soon: the task is scheduled now). Awaiting the handle afterwards
    /// yields `Err(JoinError)` with [`is_cancelled`](JoinError::is_cancelled),
    /// or `Ok` if the task had already finished. Aborting twice, or a
    /// finished task, does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let h = ebbtide::spawn(std::future::pending::<()>());
    ///     h.abort();
    ///     assert!(h.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        if self.task.is_some() {
            // SAFETY: `self.task` is held (the `MetaRef` invariant).
            unsafe { self.meta.get() }.abort();
            // After the flag: see `task` ("Why the abort flag is read
            // inside `poll`").
            self.waker.wake_by_ref();
        }
    }

    /// Cancels the task and waits until its future has been **dropped**.
    ///
    /// Returns `Some(output)` if the task had already finished, `None` if it
    /// was cancelled (or had panicked). When this resolves, the future's
    /// `Drop` has run — the acknowledged cancellation ebbtide's I/O builds on.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let h = ebbtide::spawn(std::future::pending::<u32>());
    ///     assert_eq!(h.cancel().await, None);
    /// });
    /// ```
    pub async fn cancel(mut self) -> Option<T> {
        self.abort();
        let task = self.task.take()?;
        let mut task = std::pin::pin!(task);
        let awaiter = &mut self.awaiter;
        let out = std::future::poll_fn(|cx| poll_isolated(task.as_mut(), awaiter, cx)).await;
        match out?.take() {
            Outcome::Done(value) => Some(value),
            Outcome::Panicked(_) | Outcome::Aborted => None,
        }
    }

    /// Lets the task run to completion with nobody awaiting it (the same as
    /// dropping the handle).
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     ebbtide::spawn(async { /* runs on */ }).detach();
    /// });
    /// ```
    pub fn detach(mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }

    /// Whether the task has finished: completed, panicked or cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let h = ebbtide::spawn(async {});
    ///     while !h.is_finished() { ebbtide::yield_now().await; }
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let task = this
            .task
            .as_mut()
            .expect("JoinHandle polled after it returned its result");
        let out = std::task::ready!(poll_isolated(Pin::new(task), &mut this.awaiter, cx));
        this.task = None;
        Poll::Ready(match out.map(QuietOutcome::take) {
            Some(Outcome::Done(value)) => Ok(value),
            Some(Outcome::Panicked(payload)) => Err(JoinError::panic(payload)),
            Some(Outcome::Aborted) | None => Err(JoinError::cancelled()),
        })
    }
}

/// Polls `task` with an [`Isolated`] wrapper of `cx`'s waker, made once
/// per awaiting task and kept in `awaiter` (`crate::wake`, step 3); or
/// with `cx` as it is when its waker is one of the runtime's own, which
/// never unwind: a `block_on`'s (`MainWake`), or that of the task being
/// polled (`task::is_polling_task_waker`). That spares an allocation and
/// an indirection per awaited task.
fn poll_isolated<F: Future + Unpin + ?Sized>(
    task: Pin<&mut F>,
    awaiter: &mut Option<(Arc<Isolated>, Waker)>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    if MainWake::is_waker(cx.waker()) || task::is_polling_task_waker(cx.waker()) {
        return task.poll(cx);
    }
    let waker = match awaiter {
        Some((isolated, waker)) if isolated.will_wake(cx.waker()) => waker,
        _ => &awaiter.insert(Isolated::waker(cx.waker())).1,
    };
    task.poll(&mut Context::from_waker(waker))
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task produced no output.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let err = ebbtide::spawn(async { panic!("boom") }).await.unwrap_err();
///     assert!(err.is_panic());
///     assert_eq!(err.to_string(), "task panicked: boom");
///     // Send + Sync: `?` makes it a `Box<dyn Error + Send + Sync>`.
///     let boxed: Box<dyn std::error::Error + Send + Sync> = err.into();
///     assert_eq!(boxed.to_string(), "task panicked: boom");
/// });
/// ```
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    /// The payload behind a mutex and its message read once: `JoinError`
    /// is `Send + Sync` (so `?` turns it into a `Box<dyn Error + Send +
    /// Sync>`) although a payload is only `Send`; the payload is reached
    /// only by value, the message is a copy.
    Panic {
        payload: std::sync::Mutex<Payload>,
        message: Option<String>,
    },
}

impl JoinError {
    pub(crate) fn cancelled() -> JoinError {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    fn panic(payload: Payload) -> JoinError {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        JoinError {
            repr: Repr::Panic {
                payload: std::sync::Mutex::new(payload),
                message,
            },
        }
    }

    /// The task was aborted, cancelled, or its runtime shut down first.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task's future panicked (in `poll` or in its `Drop`).
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic { .. })
    }

    /// The panic payload, to re-raise with `std::panic::resume_unwind`.
    ///
    /// # Panics
    ///
    /// If the error is not a panic (check [`is_panic`](Self::is_panic)).
    pub fn into_panic(self) -> Box<dyn std::any::Any + Send + 'static> {
        self.try_into_panic()
            .unwrap_or_else(|_| panic!("JoinError::into_panic on a cancelled task"))
    }

    /// The panic payload, or `Err(self)` if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn std::any::Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic { payload, .. } => {
                Ok(payload.into_inner().unwrap_or_else(|e| e.into_inner()))
            }
            Repr::Cancelled => Err(self),
        }
    }

    fn message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic { message, .. } => message.as_deref(),
            Repr::Cancelled => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.message()) {
            (Repr::Cancelled, _) => f.write_str("task was cancelled before it finished"),
            (Repr::Panic { .. }, Some(msg)) => write!(f, "task panicked: {msg}"),
            (Repr::Panic { .. }, None) => f.write_str("task panicked (non-string payload)"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panic { .. } => {
                write!(f, "JoinError::Panic({:?})", self.message().unwrap_or(".."))
            }
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}

/// Unit tests of the unsafe-adjacent paths (the `MetaRef` dereference, the
/// panic-catching wrapper); small enough for Miri (`cargo +nightly miri test --lib`).
#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use crate::runtime::Runtime;

    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn runtimes() -> Vec<Runtime> {
        vec![
            Runtime::builder().current_thread().build().unwrap(),
            Runtime::builder().worker_threads(2).build().unwrap(),
        ]
    }

    #[test]
    fn abort_then_await_reports_cancelled_and_drops_the_future() {
        for rt in runtimes() {
            let dropped = Arc::new(AtomicBool::new(false));
            let guard = SetOnDrop(dropped.clone());
            let h = rt.spawn(async move {
                let _g = guard;
                std::future::pending::<()>().await
            });
            h.abort();
            h.abort(); // twice is harmless
            let err = rt.block_on(h).unwrap_err();
            assert!(err.is_cancelled());
            assert!(dropped.load(Ordering::SeqCst));
        }
    }

    /// Regression: `abort` landing between a runner's pop and async-task's
    /// SCHEDULED→RUNNING transition was lost (the task slept forever). Miri
    /// found the schedule; this loop hit it natively within ~1,000 rounds.
    #[test]
    fn abort_racing_the_first_poll_is_never_lost() {
        let rounds = if cfg!(miri) { 20 } else { 3_000 };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = Runtime::builder().worker_threads(2).build().unwrap();
            for round in 0..rounds {
                let h = rt.spawn(std::future::pending::<()>());
                if round % 2 == 0 {
                    std::thread::yield_now();
                }
                h.abort();
                assert!(rt.block_on(h).unwrap_err().is_cancelled());
            }
            tx.send(()).unwrap();
        });
        rx.recv_timeout(std::time::Duration::from_secs(if cfg!(miri) {
            3_600
        } else {
            60
        }))
        .expect("an aborted task was never woken (lost abort)");
    }

    #[test]
    fn cancel_returns_output_of_a_finished_task() {
        for rt in runtimes() {
            let out = rt.block_on(async {
                let h = crate::spawn(async { 9 });
                while !h.is_finished() {
                    crate::yield_now().await;
                }
                h.cancel().await
            });
            assert_eq!(out, Some(9));
        }
    }

    #[test]
    fn panic_in_poll_and_in_drop_are_reported() {
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                panic!("drop");
            }
        }
        for rt in runtimes() {
            let a = rt.spawn(async { panic!("poll") });
            let b = rt.spawn(async {
                let _p = PanicOnDrop;
            });
            let (a, b) = rt.block_on(async { (a.await, b.await) });
            assert!(a.unwrap_err().is_panic());
            assert!(b.unwrap_err().is_panic());
            assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
        }
    }

    /// Polls `handle` once with the current task's waker; `true` if the
    /// task's waker came wrapped (an `Isolated` awaiter was made).
    async fn poll_once_wrapped<T>(handle: &mut super::JoinHandle<T>) -> bool {
        use std::future::Future;

        std::future::poll_fn(|cx| {
            assert!(std::pin::Pin::new(&mut *handle).poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        handle.awaiter.is_some()
    }

    #[test]
    fn a_handle_awaited_by_block_on_or_a_task_hands_async_task_its_waker_unwrapped() {
        use std::future::Future;
        use std::pin::Pin;
        use std::task::{Context, Waker};

        for rt in runtimes() {
            let (gate, wait) = gate();
            let mut handle = rt.spawn(async move {
                wait.await;
                7
            });
            let wrapped = rt.block_on(poll_once_wrapped(&mut handle));
            assert!(!wrapped, "block_on's own waker needs no wrapper");
            // Awaited from a task: its own waker goes unwrapped too, a
            // waker the task's future made itself is wrapped.
            let mut other = rt.spawn(std::future::pending::<()>());
            let wrapped = rt.block_on(rt.spawn(async move {
                let own = poll_once_wrapped(&mut other).await;
                let foreign = Waker::from(Arc::new(Foreign));
                let mut cx = Context::from_waker(&foreign);
                assert!(Pin::new(&mut other).poll(&mut cx).is_pending());
                let foreign = other.awaiter.is_some();
                other.abort();
                (own, foreign)
            }));
            assert_eq!(wrapped.unwrap(), (false, true), "(own, foreign) wrapped");
            // And the unwrapped waker still wakes `block_on`.
            gate.open();
            assert_eq!(rt.block_on(handle).unwrap(), 7);
        }
    }

    /// A waker of the user's, which the runtime must not trust.
    struct Foreign;

    impl std::task::Wake for Foreign {
        fn wake(self: Arc<Self>) {}
    }

    /// A one-shot gate: the future completes once `open` is called.
    fn gate() -> (Gate, GateWait) {
        let shared = Arc::new((AtomicBool::new(false), std::sync::Mutex::new(None)));
        (Gate(shared.clone()), GateWait(shared))
    }

    type GateState = Arc<(AtomicBool, std::sync::Mutex<Option<std::task::Waker>>)>;

    struct Gate(GateState);

    impl Gate {
        fn open(&self) {
            self.0 .0.store(true, Ordering::SeqCst);
            let waker = self.0 .1.lock().unwrap().take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    struct GateWait(GateState);

    impl std::future::Future for GateWait {
        type Output = ();

        fn poll(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            *self.0 .1.lock().unwrap() = Some(cx.waker().clone());
            if self.0 .0.load(Ordering::SeqCst) {
                return std::task::Poll::Ready(());
            }
            std::task::Poll::Pending
        }
    }
}
