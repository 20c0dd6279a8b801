//! Unix signal streams: a `Receiver` for the signals a user names.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Receiver;

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
pub struct Signals(Receiver);

impl Signals {
    /// Starts receiving `signals`.
    ///
    /// # Errors
    ///
    /// If no runtime is current, a signal cannot be handled (`SIGKILL`,
    /// `SIGSTOP`, `SIGILL`, `SIGFPE`, `SIGSEGV`, or a number out of range),
    /// or the self-pipe cannot be created.
    pub fn new(signals: impl IntoIterator<Item = i32>) -> io::Result<Signals> {
        let signals: Vec<i32> = signals.into_iter().collect();
        Receiver::new(&signals).map(Signals)
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
        self.0.recv().await
    }
}

impl futures_lite::Stream for Signals {
    type Item = io::Result<i32>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(Some)
    }
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals")
    }
}

impl crate::runtime::Handle {
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
    pub fn shutdown_on_signals(&self, signals: impl IntoIterator<Item = i32>) -> io::Result<()> {
        let signals: Vec<i32> = signals.into_iter().collect();
        self.shutdown_on(&signals)
    }
}
