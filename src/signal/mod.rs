//! Signals: [`ctrl_c`] everywhere, `Signals` streams on Unix.
//!
//! # Delivery
//!
//! A Unix signal handler interrupts whatever its thread was doing, maybe
//! inside the allocator or holding one of the runtime's locks, so it may not
//! allocate, lock or call a waker. The work is therefore split by the
//! self-pipe trick; the handlers and the pipe are the platform's
//! (`sys::signal`), the rest is here, the same on every platform:
//!
//! 1. **Register, then install.** A `Receiver` makes a self-pipe and
//!    registers its read end with the current runtime's reactor, then
//!    installs handlers that write to the other end. Registering first
//!    means that outside a runtime the call fails before any signal's
//!    disposition changes.
//! 2. **Handler: flag, then byte.** On a delivery, a handler sets the
//!    signal's pending flag and writes one byte to the pipe, and does
//!    nothing else (on Unix an atomic store and a `write(2)`, both
//!    async-signal-safe; on Windows, where Ctrl-C is a console control
//!    event handled on a thread the console creates, the same two steps).
//! 3. **Reactor: readable.** The byte makes the read end readable, and the
//!    reactor wakes the task waiting on it as for any I/O handle, on a
//!    runtime thread, with each waker's panics caught. No waker is called
//!    from a handler.
//! 4. **Task: drain, then flags.** The receiver drains the pipe, *then*
//!    takes the pending flags. A byte written after the drain leaves the
//!    pipe readable, so no delivery is lost; many deliveries of one signal
//!    between two polls coalesce into one item, and an item always follows
//!    the last delivery.
//! 5. **Drop: handlers, then pipe.** Dropping a receiver removes its
//!    handlers first, then deregisters and closes the read end, so no
//!    handler writes to a closed pipe. When the last receiver wanting a
//!    signal is dropped, the signal does again what it did before the
//!    first one: on Unix it gets back its earlier disposition (e.g.
//!    `SIGTERM` terminates again); on Windows the console handler passes
//!    Ctrl-C on to the default handler, which ends the process.

use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll};

use crate::io::Async;
use crate::sys;

// Unix signal streams and signal numbers.
#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use libc::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
#[cfg(unix)]
pub use unix::Signals;

/// Waits for Ctrl-C (`SIGINT` on Unix; Ctrl-C or Ctrl-Break on Windows).
///
/// # Errors
///
/// If no runtime is current, or the handler cannot be installed.
///
/// # Examples
///
/// ```no_run
/// ebbtide::block_on(async {
///     ebbtide::signal::ctrl_c().await?;
///     println!("bye");
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    Receiver::new(sys::signal::CTRL_C)?.recv().await.map(drop)
}

/// A self-pipe registered with the reactor, and the handlers that write to
/// it: the steps of the module doc for one set of signals.
pub(crate) struct Receiver {
    /// The installed handlers and their pending flags. Declared before
    /// `pipe`, so dropped first (step 5).
    handlers: sys::signal::Handlers,
    /// The read end, registered with the current runtime's reactor.
    pipe: Async<sys::signal::PipeReader>,
}

impl Receiver {
    /// Step 1.
    pub(crate) fn new(signals: &[i32]) -> io::Result<Receiver> {
        let (reader, writer) = sys::signal::self_pipe()?;
        let pipe = Async::new(reader)?;
        let handlers = sys::signal::Handlers::install(signals, writer)?;
        Ok(Receiver { handlers, pipe })
    }

    /// Steps 3 and 4: the next signal delivered.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<io::Result<i32>> {
        loop {
            self.pipe.get_ref().drain()?;
            if let Some(signal) = self.handlers.take_pending() {
                return Poll::Ready(Ok(signal));
            }
            std::task::ready!(self.pipe.poll_readable(cx))?;
        }
    }

    async fn recv(&self) -> io::Result<i32> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl crate::runtime::Handle {
    /// Starts a graceful shutdown of this runtime on Ctrl-C (see
    /// [`Handle::begin_shutdown`](crate::runtime::Handle::begin_shutdown)).
    /// The watching task ends by itself once a shutdown starts, so it never
    /// holds up the drain.
    ///
    /// # Errors
    ///
    /// If the handler cannot be installed.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// rt.handle().shutdown_on_ctrl_c()?;
    /// // ... serve until Ctrl-C, then: rt.shutdown(deadline)
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_on_ctrl_c(&self) -> io::Result<()> {
        self.shutdown_on(sys::signal::CTRL_C)
    }

    /// Spawns the watcher: `begin_shutdown` when one of `signals` arrives,
    /// unless a shutdown starts first. The handlers are installed before
    /// this returns.
    fn shutdown_on(&self, signals: &[i32]) -> io::Result<()> {
        let receiver = {
            let _enter = self.enter();
            Receiver::new(signals)?
        };
        let handle = self.clone();
        self.spawn(async move {
            let triggered =
                futures_lite::future::or(async { receiver.recv().await.is_ok() }, async {
                    crate::runtime::shutdown_requested().await;
                    false
                })
                .await;
            if triggered {
                handle.begin_shutdown();
            }
        });
        Ok(())
    }
}

// Real self-pipes and sockets: not under Miri, which cannot run them.
#[cfg(all(test, not(miri)))]
mod tests {
    use std::future::Future;
    use std::sync::{Mutex, PoisonError};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use super::*;
    use crate::runtime::Runtime;
    use crate::time::sleep;

    /// Held by each test that delivers Ctrl-C: the delivery reaches every
    /// receiver in the process, and each test expects only its own.
    static DELIVERS_CTRL_C: Mutex<()> = Mutex::new(());

    /// `fut`'s output if a wake makes it ready within `limit`, else `None`.
    /// Unlike `time::timeout`, the deadline is looked at first: a lost wake
    /// fails here even though a poll at the deadline would find the signal.
    async fn woken_within<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
        futures_lite::future::or(
            async {
                sleep(limit).await;
                None
            },
            async { Some(fut.await) },
        )
        .await
    }

    /// The system delivers Ctrl-C on a thread of its own on Windows (a
    /// signal may arrive on any thread on Unix); the waiting task must be
    /// woken all the same.
    #[test]
    fn ctrl_c_from_another_thread_wakes_a_waiting_ctrl_c() {
        let _alone = DELIVERS_CTRL_C
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let mut deliverer: Option<JoinHandle<()>> = None;
        rt.block_on(async {
            let mut fut = std::pin::pin!(ctrl_c());
            let woken = poll_fn(|cx| {
                let p = fut.as_mut().poll(cx);
                if deliverer.is_none() {
                    assert!(p.is_pending(), "no Ctrl-C yet");
                    deliverer = Some(std::thread::spawn(sys::signal::simulate_ctrl_c));
                }
                p
            });
            woken_within(Duration::from_secs(30), woken)
                .await
                .expect("the Ctrl-C woke the future")
                .unwrap();
        });
        deliverer.unwrap().join().unwrap();
    }

    #[test]
    fn shutdown_on_ctrl_c_starts_a_graceful_shutdown() {
        let _alone = DELIVERS_CTRL_C
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        rt.handle().shutdown_on_ctrl_c().unwrap();
        assert!(!rt.handle().is_shutting_down());
        // The handler is installed on return from shutdown_on_ctrl_c; let
        // the watcher start waiting too, so that it must be woken.
        rt.block_on(sleep(Duration::from_millis(10)));
        sys::signal::simulate_ctrl_c();
        rt.block_on(woken_within(
            Duration::from_secs(30),
            crate::runtime::shutdown_requested(),
        ))
        .expect("Ctrl-C started a shutdown");
        let report = rt.shutdown(Duration::from_secs(5));
        assert_eq!(report.cancelled, 0, "the watcher ends by itself: {report}");
    }
}
