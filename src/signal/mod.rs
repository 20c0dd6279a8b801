//! Signals: [`ctrl_c`] everywhere, [`Signals`] streams on Unix.
//!
//! A signal handler only records the signal and wakes the reactor (the
//! self-pipe trick on Unix: an atomic store and one `write(2)`; see
//! `src/sys/unix_signal.rs`). Everything else — waking tasks, starting a
//! shutdown — happens on runtime threads. Many deliveries of one signal may
//! coalesce into one item, but an item always follows the last delivery.
//! When no `Signals` stream wants a signal any more, it gets back the
//! disposition it had before (on Unix; e.g. `SIGTERM` terminates again).

use std::future::Future;
use std::io;
#[cfg(unix)]
use std::pin::Pin;
#[cfg(unix)]
use std::task::{Context, Poll};

use crate::sys;

#[cfg(unix)]
pub use libc::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};

/// Waits for Ctrl-C (`SIGINT` on Unix; Ctrl-C or Ctrl-Break on Windows).
///
/// # Errors
///
/// If the handler cannot be installed, or (Unix) no runtime is current.
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
    #[cfg(unix)]
    {
        let mut signals = Signals::new([SIGINT])?;
        std::future::poll_fn(|cx| signals.0.poll_next(cx))
            .await
            .map(drop)
    }
    #[cfg(windows)]
    {
        let mut ctrl_c = sys::signal::CtrlC::new()?;
        std::future::poll_fn(|cx| ctrl_c.poll(cx)).await
    }
}

/// A stream of Unix signals, registered with the current runtime.
///
/// Yields each signal number at least once after it is delivered; many
/// deliveries between two polls coalesce. While it exists, the signals'
/// default actions (e.g. terminate on `SIGTERM`) are replaced by delivery
/// here (after calling a handler installed before, if any). Once the last
/// `Signals` wanting a signal is dropped, the signal does what it did before
/// the first one was created: its default action, nothing if it was
/// ignored, or the earlier handler.
///
/// # Examples
///
/// ```
/// use ebbtide::signal::{Signals, SIGUSR1};
/// use futures_lite::StreamExt;
///
/// ebbtide::block_on(async {
///     let mut signals = Signals::new([SIGUSR1])?;
///     unsafe { libc::raise(SIGUSR1) };
///     assert_eq!(signals.next().await.unwrap()?, SIGUSR1);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(unix)]
pub struct Signals(sys::signal::Signals);

#[cfg(unix)]
impl Signals {
    /// Starts receiving `signals`.
    ///
    /// # Errors
    ///
    /// If no runtime is current, a signal cannot be handled (`SIGKILL`,
    /// `SIGSTOP`, or a number out of range), or the self-pipe cannot be
    /// created.
    pub fn new(signals: impl IntoIterator<Item = i32>) -> io::Result<Signals> {
        let signals: Vec<i32> = signals.into_iter().collect();
        sys::signal::Signals::new(&signals).map(Signals)
    }

    /// Waits for the next signal.
    ///
    /// # Errors
    ///
    /// If the runtime has shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a signal is consumed only when this resolves.
    pub async fn recv(&mut self) -> io::Result<i32> {
        std::future::poll_fn(|cx| self.0.poll_next(cx)).await
    }
}

#[cfg(unix)]
impl futures_lite::Stream for Signals {
    type Item = io::Result<i32>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_next(cx).map(Some)
    }
}

#[cfg(unix)]
impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals")
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
        #[cfg(unix)]
        return self.shutdown_on_signals([SIGINT]);
        #[cfg(windows)]
        {
            let ctrl_c = sys::signal::CtrlC::new()?;
            self.shutdown_when(async move {
                let mut ctrl_c = ctrl_c;
                std::future::poll_fn(|cx| ctrl_c.poll(cx)).await
            });
            Ok(())
        }
    }

    /// Starts a graceful shutdown of this runtime when any of `signals`
    /// arrives (e.g. `[SIGINT, SIGTERM]` for a server).
    ///
    /// The watching task holds a [`Signals`] until a signal arrives or a
    /// shutdown starts; then the signals act as before (see [`Signals`]), so
    /// a second `SIGTERM` during the drain terminates the process.
    ///
    /// # Errors
    ///
    /// As for [`Signals::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::signal::{SIGINT, SIGTERM, SIGUSR2};
    ///
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// rt.handle().shutdown_on_signals([SIGINT, SIGTERM, SIGUSR2])?;
    /// unsafe { libc::raise(SIGUSR2) };
    /// rt.block_on(ebbtide::runtime::shutdown_requested());
    /// println!("{}", rt.shutdown(Duration::from_secs(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(unix)]
    pub fn shutdown_on_signals(&self, signals: impl IntoIterator<Item = i32>) -> io::Result<()> {
        let mut signals = {
            let _enter = self.enter();
            Signals::new(signals)?
        };
        self.shutdown_when(async move { signals.recv().await.map(drop) });
        Ok(())
    }

    /// Spawns the watcher: `begin_shutdown` when `trigger` resolves, unless a
    /// shutdown starts first.
    fn shutdown_when(&self, trigger: impl Future<Output = io::Result<()>> + Send + 'static) {
        let handle = self.clone();
        self.spawn(async move {
            let triggered = futures_lite::future::or(async { trigger.await.is_ok() }, async {
                crate::runtime::shutdown_requested().await;
                false
            })
            .await;
            if triggered {
                handle.begin_shutdown();
            }
        });
    }
}
