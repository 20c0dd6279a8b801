//! Unix signals through the self-pipe trick.
//!
//! 1. `Signals::new` makes a non-blocking socket pair, registers the read
//!    end with the current runtime's reactor, and installs one handler per
//!    signal through `signal-hook-registry` (which chains to earlier
//!    handlers and saves/restores `errno`).
//! 2. The handler does two async-signal-safe things and nothing else: it
//!    sets the signal's pending flag (an atomic store) and `write`s one byte
//!    to the pipe (ignoring `EAGAIN`: a full pipe already means "wake up").
//!    No allocation, no lock.
//! 3. The stream drains the pipe, *then* reads the flags: a signal whose
//!    byte arrives after the drain leaves the pipe readable, so it is never
//!    lost; many deliveries of one signal coalesce into one item, with at
//!    least one item after the last delivery.
//! 4. Dropping `Signals` unregisters its handlers before closing the pipe.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use signal_hook_registry::SigId;

use crate::io::Async;

/// Signals `signal-hook-registry` refuses (it panics on them).
const FORBIDDEN: [i32; 5] = [
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGSEGV,
];

/// A stream of the Unix signals it was created for; see the module doc.
pub(crate) struct Signals {
    /// Read end of the self-pipe.
    pipe: Async<UnixStream>,
    /// `(signal, pending)`, shared with the handlers.
    pending: Arc<[(i32, AtomicBool)]>,
    /// Registered handlers, removed on drop.
    ids: Vec<SigId>,
}

impl Signals {
    pub(crate) fn new(signals: &[i32]) -> io::Result<Signals> {
        if let Some(&sig) = signals.iter().find(|s| FORBIDDEN.contains(s)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "ebbtide: signal {sig} cannot be handled: SIGKILL and SIGSTOP cannot be \
                     caught, and SIGILL, SIGFPE and SIGSEGV are not safe to handle asynchronously"
                ),
            ));
        }
        let (read, write) = UnixStream::pair()?;
        write.set_nonblocking(true)?;
        let pipe = Async::new(read)?;
        let pending: Arc<[(i32, AtomicBool)]> = signals
            .iter()
            .map(|&s| (s, AtomicBool::new(false)))
            .collect();
        let write = Arc::new(write);
        let mut me = Signals {
            pipe,
            pending,
            ids: Vec::new(),
        };
        for index in 0..signals.len() {
            let pending = me.pending.clone();
            let write = write.clone();
            let handler = move || {
                // Step 2: async-signal-safe only.
                pending[index].1.store(true, Ordering::SeqCst);
                let byte = 1u8;
                // SAFETY: `write` (an Arc held by this closure) keeps the
                // descriptor open; the buffer is one valid byte.
                unsafe { libc::write(write.as_raw_fd(), (&byte as *const u8).cast(), 1) };
            };
            // SAFETY: the handler only performs an atomic store and a
            // `write(2)`, both async-signal-safe; it neither allocates nor
            // locks nor panics.
            let id = unsafe { signal_hook_registry::register(signals[index], handler) }.map_err(
                |e| {
                    io::Error::new(
                        e.kind(),
                        format!("ebbtide: cannot handle signal {}: {e}", signals[index]),
                    )
                },
            )?;
            me.ids.push(id);
        }
        Ok(me)
    }

    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<i32>> {
        loop {
            // Step 3: drain, then look at the flags.
            let mut buf = [0u8; 128];
            loop {
                match self.pipe.get_ref().read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if let Some((sig, _)) = self
                .pending
                .iter()
                .find(|(_, p)| p.swap(false, Ordering::SeqCst))
            {
                return Poll::Ready(Ok(*sig));
            }
            std::task::ready!(self.pipe.poll_readable(cx))?;
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // Step 4: no handler writes to the pipe after this.
        for id in self.ids.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}
